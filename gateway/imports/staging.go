package imports

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/stores"
)

// stagedPath is the file holding image id's staged data.
func (s *Service) stagedPath(id string) string { return filepath.Join(s.cfg.StagingDir, id) }

// stagedURL is the staging driver's location of image id's staged data.
func (s *Service) stagedURL(id string) string { return "file://" + s.stagedPath(id) }

// removeStaged deletes image id's staged data, if there is any
// (_DeleteFromFS).
func (s *Service) removeStaged(ctx context.Context, id string) {
	ctx = context.WithoutCancel(ctx)
	var err error
	if drv := s.cfg.Stores.Staging(); drv != nil {
		err = drv.Delete(ctx, s.stagedURL(id))
	} else {
		err = os.Remove(s.stagedPath(id))
	}
	if err != nil && !errors.Is(err, stores.ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
		s.log.Error("cannot delete staged image data", "image_id", id, "error", err)
	}
}

// put streams r into the staging area as image id's data; size is 0 when
// unknown.
func (s *Service) put(ctx context.Context, id string, r io.Reader, size int64) error {
	drv := s.cfg.Stores.Staging()
	if drv == nil {
		return domain.Errorf(domain.ErrUnavailable, "No staging area is configured for image imports.")
	}
	if s.cfg.SizeCap > 0 {
		if size > s.cfg.SizeCap {
			return tooLarge()
		}
		r = &capReader{r: r, left: s.cfg.SizeCap}
	}
	_, err := drv.Put(ctx, id, r, size)
	var de *domain.Error
	switch {
	case err == nil, errors.As(err, &de):
		return err
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.Is(err, stores.ErrSizeMismatch):
		return domain.Errorf(domain.ErrInvalid, "The downloaded data of image %s does not have the size announced: %v", id, err)
	case errors.Is(err, stores.ErrFull):
		return domain.Errorf(domain.ErrOverLimit, "Image storage media is full: %v", err)
	}
	return domain.Errorf(domain.ErrUnavailable, "Cannot stage the data of image %s: %v", id, err)
}

func tooLarge() error {
	return domain.Errorf(domain.ErrOverLimit, "The incoming image is too large: The provided image is too large.")
}

// capReader fails once more than left bytes have been read.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, tooLarge()
	}
	return n, err
}

// download fetches a web-download URI into the staging area (_WebDownload).
func (s *Service) download(ctx context.Context, id, uri string, n *atomic.Int64) error {
	if s.cfg.WebDownload == nil {
		return domain.Errorf(domain.ErrInvalid, "URI for web-download does not pass filtering: %s", uri)
	}
	// Data left in staging by an earlier import that did not finish is
	// replaced: the import lock makes this flow the only one at work on
	// the image.
	s.removeStaged(ctx, id)
	rc, size, err := s.cfg.WebDownload.Open(ctx, uri)
	if err != nil {
		var de *domain.Error
		if errors.As(err, &de) {
			return err
		}
		return domain.Errorf(domain.ErrUnavailable, "Cannot download %s: %v", uri, err)
	}
	defer rc.Close()
	if size < 0 {
		size = 0
	}
	return s.put(ctx, id, &countingReader{r: rc, n: n}, size)
}

// copyToStaging copies the data of active image m into the staging area
// (_CopyImage): from its location in the default store first, then from
// the others. Data already staged with the image's size is reused.
func (s *Service) copyToStaging(ctx context.Context, m domain.Meta, n *atomic.Int64) error {
	if st, err := os.Stat(s.stagedPath(m.ID)); err == nil {
		if m.Size != nil && st.Size() == *m.Size {
			return nil
		}
		s.log.Debug("found partial image data in staging; staging it again", "image_id", m.ID)
		s.removeStaged(ctx, m.ID)
	}
	locs := slices.Clone(m.Locations)
	def := s.cfg.Stores.DefaultID()
	slices.SortStableFunc(locs, func(a, b domain.Location) int {
		switch {
		case location.StoreOf(a) == def && location.StoreOf(b) != def:
			return -1
		case location.StoreOf(b) == def && location.StoreOf(a) != def:
			return 1
		}
		return 0
	})
	var size int64
	if m.Size != nil {
		size = *m.Size
	}
	for _, l := range locs {
		if l.Status != "" && l.Status != "active" {
			continue
		}
		drv, err := s.cfg.Stores.ForLocation(l.URL, location.StoreOf(l))
		if err != nil {
			continue
		}
		rc, err := drv.Get(ctx, l.URL, 0, -1)
		if err != nil {
			s.log.Warn("image data not found in a store; trying the next", "image_id", m.ID,
				"store", location.StoreOf(l), "error", err)
			continue
		}
		err = s.put(ctx, m.ID, &countingReader{r: rc, n: n}, size)
		rc.Close()
		return err
	}
	return domain.Errorf(domain.ErrNotFound, "Image not found in any configured store")
}
