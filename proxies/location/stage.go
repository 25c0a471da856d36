package location

import (
	"context"
	"errors"
	"io"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/stores"
)

// StageHostProperty records which API worker holds an image's staged data
// (worker_self_reference_url); other workers proxy the import to it.
const StageHostProperty = "os_glance_stage_host"

// Stage implements domain.Image (ImageDataController.stage): the image goes
// from queued to uploading (compare and swap), its data is written to the
// staging driver as <image id>, and the image is saved with the staged size
// and, when Options.StageHost is set, os_glance_stage_host. Any failure
// removes what was staged and puts the image back in queued; data already
// in staging for the image is a conflict and is left alone.
func (i *image) Stage(ctx context.Context, r io.Reader, in domain.DataIn) error {
	m := i.Next.Meta()
	if m.Status != domain.StatusQueued {
		return &domain.TransitionError{From: m.Status, To: domain.StatusUploading}
	}
	drv := i.st.Staging()
	if drv == nil {
		return domain.Errorf(domain.ErrUnavailable, "No staging area is configured for image data.")
	}
	if err := i.Next.Update(func(m *domain.Meta) error { m.Status = domain.StatusUploading; return nil }); err != nil {
		return err
	}
	if err := i.inner.Save(ctx, i.Next, domain.StatusQueued); err != nil {
		i.unstage()
		return err
	}
	stop := i.keepAlive(ctx, m.ID, domain.StatusUploading)
	obj, err := drv.Put(ctx, m.ID, clientReader{r}, in.Size)
	stop()
	if err != nil {
		if errors.Is(err, stores.ErrExists) {
			// Someone else's staged data: not ours to delete.
			return i.stageFailed(ctx, nil, "", domain.Errorf(domain.ErrConflict, "The image %s has data on staging", m.ID))
		}
		return i.stageFailed(ctx, drv, obj.URL, err)
	}
	final := func(m *domain.Meta) {
		m.Size = domain.Ptr(obj.Size)
		if i.opts.StageHost != "" {
			m.Properties[StageHostProperty] = i.opts.StageHost
		}
	}
	rec := i.Next.Meta()
	final(&rec)
	if err := i.inner.Save(ctx, domain.NewImage(rec), domain.StatusUploading); err != nil {
		return i.stageFailed(ctx, drv, obj.URL, err)
	}
	if err := i.Next.Update(func(m *domain.Meta) error { final(m); return nil }); err != nil {
		i.log().Error("image staged but its record could not follow", "image_id", m.ID, "error", err)
	}
	return nil
}

// clientReader marks the failures of the client's data stream, other than
// its clean end, as errRead: a stage cut off is the client's fault.
type clientReader struct{ r io.Reader }

func (c clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF && !isDomain(err) {
		err = &readError{err}
	}
	return n, err
}

// readError is a failure of the client's data stream: errRead, and the
// stream's own error.
type readError struct{ err error }

func (e *readError) Error() string   { return errRead.Error() + ": " + e.err.Error() }
func (e *readError) Unwrap() []error { return []error{errRead, e.err} }

// unstage resets the image in memory to queued, without a size.
func (i *image) unstage() {
	err := i.Next.Update(func(m *domain.Meta) error {
		m.Status = domain.StatusQueued
		m.Size = nil
		delete(m.Properties, StageHostProperty)
		return nil
	})
	if err != nil {
		i.log().Error("cannot reset image to queued", "image_id", i.Next.Meta().ID, "error", err)
	}
}

// stageFailed undoes a failed stage: it deletes the staged object at url
// (when drv is set), puts the image back in queued, saves that, and returns
// cause as a domain error.
func (i *image) stageFailed(ctx context.Context, drv stores.Driver, url string, cause error) error {
	id := i.Next.Meta().ID
	if drv != nil && url != "" {
		i.deleteData(ctx, drv, url)
	}
	i.unstage()
	if err := i.inner.Save(context.WithoutCancel(ctx), i.Next, domain.StatusUploading); err != nil &&
		!errors.Is(err, domain.ErrNotFound) {
		i.log().Error("cannot reset image to queued after a failed stage", "image_id", id, "error", err)
	}
	return uploadError(ctx, id, cause)
}
