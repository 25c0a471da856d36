package location

import (
	"context"
	"errors"
	"hash"
	"io"
	"maps"
	"sync"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/stores"
)

// SetData implements domain.Image (ImageProxy.set_data). PUT /file takes a
// queued image through saving to active; an import (in.Import) adds one
// location to an importing image, making it active when in.Activate, or to
// an active one (copy-image). In both modes the data is hashed and its
// format inspected as it flows to the store, and the format is checked
// before the image may become active; a refusal deletes what was written.
func (i *image) SetData(ctx context.Context, r io.Reader, in domain.DataIn) error {
	m := i.Next.Meta()
	if in.Import {
		return i.importData(ctx, r, in, m)
	}
	if m.Status != domain.StatusQueued {
		return &domain.TransitionError{From: m.Status, To: domain.StatusSaving}
	}
	b, err := i.target(in.Store)
	if err != nil {
		return err
	}
	algo, newHash, err := i.hashFor(m)
	if err != nil {
		return err
	}
	if err := i.Next.Update(func(m *domain.Meta) error { m.Status = domain.StatusSaving; return nil }); err != nil {
		return err
	}
	if err := i.inner.Save(ctx, i.Next, domain.StatusQueued); err != nil {
		i.backToQueued()
		return err
	}
	insp := newInspector(&m)
	stop := i.keepAlive(ctx, m.ID, domain.StatusSaving)
	obj, sums, err := upload(ctx, b.Driver, m.ID, r, in.Size, newHash, insp.writers()...)
	stop()
	if err != nil {
		return i.fail(ctx, b.Driver, obj, err)
	}
	vsize, err := i.checkFormat(insp, &m)
	if err != nil {
		return i.fail(ctx, b.Driver, obj, err)
	}
	loc := i.newLocation(b, obj)
	final := func(m *domain.Meta) {
		m.Size = domain.Ptr(sums.n)
		m.Checksum = domain.Ptr(sums.md5)
		m.HashAlgo = domain.Ptr(algo)
		m.HashValue = domain.Ptr(sums.multi)
		if vsize > 0 {
			m.VirtualSize = domain.Ptr(vsize)
		}
		m.Locations = append(m.Locations, loc)
		m.Status = domain.StatusActive
	}
	// The stored record is built apart from the image, so that a failed
	// save leaves the image in saving, from where it may go back to queued.
	rec := i.Next.Meta()
	final(&rec)
	if err := i.inner.Save(ctx, domain.NewImage(rec), domain.StatusSaving); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			i.deleteData(ctx, b.Driver, obj.URL)
			return errGoneDuringUpload(m.ID)
		}
		return i.fail(ctx, b.Driver, obj, err)
	}
	if err := i.Next.Update(func(m *domain.Meta) error { final(m); return nil }); err != nil {
		i.log().Error("image saved active but its record could not follow", "image_id", m.ID, "error", err)
	}
	return nil
}

func errGoneDuringUpload(id string) error {
	return domain.Errorf(domain.ErrGone, "Image %s could not be found after upload. "+
		"The image may have been deleted during the upload.", id)
}

// target returns the backend that receives new data: the one named by
// store in multi-store, else the default one.
func (i *image) target(store string) (*stores.Backend, error) {
	b, ok := i.st.Backend(store)
	if !ok || b == nil || b.Driver == nil {
		if store != "" && i.st.Multi() {
			return nil, domain.Errorf(domain.ErrInvalid, "Store for identifier %s not found", store)
		}
		return nil, domain.Errorf(domain.ErrUnavailable, "No store is configured for image data.")
	}
	if b.ReadOnly() {
		return nil, domain.Errorf(domain.ErrGone, "Error in store configuration. Adding images to store is disabled.")
	}
	return b, nil
}

// hashFor returns the multihash algorithm of m's data: the one already
// recorded on the image, else hashing_algorithm.
func (i *image) hashFor(m domain.Meta) (string, func() hash.Hash, error) {
	algo := i.opts.HashAlgo
	if m.HashAlgo != nil && *m.HashAlgo != "" {
		algo = *m.HashAlgo
	}
	newHash, ok := hashes[algo]
	if !ok {
		return "", nil, domain.Errorf(domain.ErrUnavailable, "Unsupported hashing algorithm %q.", algo)
	}
	return algo, newHash, nil
}

// newLocation is the record of an object Put stored in backend b: in
// multi-store its metadata names the backend.
func (i *image) newLocation(b *stores.Backend, obj stores.Object) domain.Location {
	md := maps.Clone(obj.Metadata)
	if md == nil {
		md = map[string]any{}
	}
	if i.st.Multi() && b.ID != "" {
		md["store"] = b.ID
	}
	return domain.Location{URL: obj.URL, Metadata: md, Status: "active"}
}

// records serialises, within this process, the updates that import mode
// makes to one image's stored record, so that parallel imports of one
// image to several stores do not lose each other's locations.
var records keyedMutex

// importData is SetData for an import: the status is not moved to saving
// and, on failure, it is left as it was (the import flow reverts it); the
// written object is deleted and no location is recorded.
func (i *image) importData(ctx context.Context, r io.Reader, in domain.DataIn, m domain.Meta) error {
	if m.Status != domain.StatusImporting && m.Status != domain.StatusActive {
		return &domain.TransitionError{From: m.Status, To: domain.StatusActive}
	}
	b, err := i.target(in.Store)
	if err != nil {
		return err
	}
	algo, newHash, err := i.hashFor(m)
	if err != nil {
		return err
	}
	insp := newInspector(&m)
	stop := i.keepAlive(ctx, m.ID, m.Status)
	obj, sums, err := upload(ctx, b.Driver, m.ID, r, in.Size, newHash, insp.writers()...)
	stop()
	drop := func(cause error) error {
		if obj.URL != "" {
			i.deleteData(ctx, b.Driver, obj.URL)
		}
		return uploadError(ctx, m.ID, cause)
	}
	if err != nil {
		return drop(err)
	}
	vsize, err := i.checkFormat(insp, &m)
	if err != nil {
		return drop(err)
	}
	loc := i.newLocation(b, obj)

	// The record is read, checked and written under the image's lock;
	// the store is not called under it.
	unlock, err := records.lock(ctx, m.ID)
	if err != nil {
		return drop(err)
	}
	rec, err := i.recordImport(ctx, m.ID, sums, algo, vsize, loc, in.Activate)
	unlock()
	if errors.Is(err, errImageGone) {
		i.deleteData(ctx, b.Driver, obj.URL)
		return errGoneDuringUpload(m.ID)
	}
	if err != nil {
		return drop(err)
	}
	err = i.Next.Update(func(m *domain.Meta) error {
		m.Size, m.Checksum, m.HashAlgo, m.HashValue = rec.Size, rec.Checksum, rec.HashAlgo, rec.HashValue
		m.VirtualSize = rec.VirtualSize
		m.Locations = rec.Locations
		m.Status = rec.Status
		return nil
	})
	if err != nil {
		i.log().Error("image data imported but its record could not follow", "image_id", m.ID, "error", err)
	}
	return nil
}

// errImageGone is recordImport's error for an image deleted meanwhile.
var errImageGone = errors.New("the image was deleted during the import")

// recordImport adds loc, with the data's size and hashes, to the stored
// record of image id, and activates it when asked to. It fails with
// errImageGone when the image no longer exists.
func (i *image) recordImport(ctx context.Context, id string, sums sums, algo string, vsize int64,
	loc domain.Location, activate bool) (domain.Meta, error) {
	cur, err := i.inner.Get(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Meta{}, errImageGone
	}
	if err != nil {
		return domain.Meta{}, err
	}
	rec := cur.Meta()
	if err := verifyUploaded(&rec, sums); err != nil {
		return domain.Meta{}, err
	}
	from := rec.Status
	if from != domain.StatusImporting && from != domain.StatusActive {
		return domain.Meta{}, &domain.TransitionError{From: from, To: domain.StatusActive}
	}
	rec.Size = domain.Ptr(sums.n)
	rec.Checksum = domain.Ptr(sums.md5)
	rec.HashAlgo = domain.Ptr(algo)
	rec.HashValue = domain.Ptr(sums.multi)
	if vsize > 0 {
		rec.VirtualSize = domain.Ptr(vsize)
	}
	rec.Locations = append(rec.Locations, loc)
	if from == domain.StatusImporting && activate {
		rec.Status = domain.StatusActive
	}
	err = i.inner.Save(ctx, domain.NewImage(rec), from)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Meta{}, errImageGone
	}
	return rec, err
}

// verifyUploaded refuses data whose size or hashes differ from those
// already recorded on the image (ImageProxy._verify_uploaded_data): a
// staged size, or the data of another store of the same image.
func verifyUploaded(m *domain.Meta, s sums) error {
	differs := func(attr string) error {
		return domain.Errorf(domain.ErrInvalid, "%s of uploaded data is different from current value set on the image.", attr)
	}
	if m.Size != nil && *m.Size != s.n {
		return differs("size")
	}
	if m.HashValue != nil && *m.HashValue != "" && *m.HashValue != s.multi {
		return differs("os_hash_value")
	}
	if m.Checksum != nil && *m.Checksum != "" && *m.Checksum != s.md5 {
		return differs("checksum")
	}
	return nil
}

// keyedMutex is a set of locks by key, each dropped when unused. Taking
// one waits within a context.
type keyedMutex struct {
	mu   sync.Mutex
	keys map[string]*keyedEntry
}

type keyedEntry struct {
	held chan struct{} // a token while the lock is held
	refs int
}

// lock takes the lock of key, or fails with ctx's error.
func (k *keyedMutex) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.keys == nil {
		k.keys = map[string]*keyedEntry{}
	}
	e := k.keys[key]
	if e == nil {
		e = &keyedEntry{held: make(chan struct{}, 1)}
		k.keys[key] = e
	}
	e.refs++
	k.mu.Unlock()
	done := func() {
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.keys, key)
		}
		k.mu.Unlock()
	}
	select {
	case e.held <- struct{}{}:
	default:
		select {
		case e.held <- struct{}{}:
		case <-ctx.Done():
			done()
			return nil, ctx.Err()
		}
	}
	return func() {
		<-e.held
		done()
	}, nil
}
