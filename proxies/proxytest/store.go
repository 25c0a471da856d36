package proxytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/glance-go/glance-go/stores"
)

// Driver is an in-memory stores.Driver serving the "mem" scheme, with
// optional faults. Set the exported fields before use.
type Driver struct {
	// PutFailsAfter, when ≥ 0, makes Put fail with PutErr once that many
	// bytes have been read.
	PutFailsAfter int64
	// PutErr is the error of a failing Put; stores.ErrFull when nil.
	PutErr error
	// DeleteErr, when set, is returned by every Delete (and nothing is
	// deleted).
	DeleteErr error
	// GetErr, when set, is returned by every Get.
	GetErr error

	mu      sync.Mutex
	objects map[string][]byte
	deletes int
}

var _ stores.Driver = (*Driver)(nil)

// NewDriver returns an empty driver without faults.
func NewDriver() *Driver {
	return &Driver{PutFailsAfter: -1, objects: map[string][]byte{}}
}

// Schemes implements stores.Driver.
func (d *Driver) Schemes() []string { return []string{"mem"} }

// URL returns the location URL Put gives image id.
func (d *Driver) URL(id string) string { return "mem://" + id }

// Objects returns the URLs of the stored objects, sorted.
func (d *Driver) Objects() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id := range d.objects {
		out = append(out, d.URL(id))
	}
	slices.Sort(out)
	return out
}

// Bytes returns the data stored for image id.
func (d *Driver) Bytes(id string) ([]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.objects[id]
	return bytes.Clone(b), ok
}

// Deletes returns how many objects Delete removed.
func (d *Driver) Deletes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deletes
}

// Put implements stores.Driver.
func (d *Driver) Put(ctx context.Context, id string, r io.Reader, size int64) (stores.Object, error) {
	d.mu.Lock()
	if _, ok := d.objects[id]; ok {
		d.mu.Unlock()
		return stores.Object{}, fmt.Errorf("%w: %s", stores.ErrExists, id)
	}
	d.mu.Unlock()
	var buf bytes.Buffer
	chunk := make([]byte, 32<<10)
	for {
		if err := ctx.Err(); err != nil {
			return stores.Object{}, err
		}
		n, err := r.Read(chunk)
		buf.Write(chunk[:n])
		if d.PutFailsAfter >= 0 && int64(buf.Len()) >= d.PutFailsAfter {
			if d.PutErr != nil {
				return stores.Object{}, d.PutErr
			}
			return stores.Object{}, fmt.Errorf("%w: injected after %d bytes", stores.ErrFull, buf.Len())
		}
		if size > 0 && int64(buf.Len()) > size {
			return stores.Object{}, fmt.Errorf("%w: expected %d bytes, got more", stores.ErrSizeMismatch, size)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return stores.Object{}, err
		}
	}
	if size > 0 && int64(buf.Len()) != size {
		return stores.Object{}, fmt.Errorf("%w: expected %d bytes, got %d bytes", stores.ErrSizeMismatch, size, buf.Len())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.objects[id]; ok {
		return stores.Object{}, fmt.Errorf("%w: %s", stores.ErrExists, id)
	}
	d.objects[id] = buf.Bytes()
	return stores.Object{URL: d.URL(id), Size: int64(buf.Len()), Metadata: map[string]any{}}, nil
}

func (d *Driver) id(url string) (string, error) {
	id, ok := strings.CutPrefix(url, "mem://")
	if !ok {
		return "", fmt.Errorf("%w: %q", stores.ErrUnknownScheme, url)
	}
	return id, nil
}

// Get implements stores.Driver.
func (d *Driver) Get(_ context.Context, url string, off, n int64) (io.ReadCloser, error) {
	if d.GetErr != nil {
		return nil, d.GetErr
	}
	id, err := d.id(url)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	b, ok := d.objects[id]
	d.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s", stores.ErrNotFound, url)
	}
	off = min(max(off, 0), int64(len(b)))
	end := int64(len(b))
	if n >= 0 && off+n < end {
		end = off + n
	}
	return io.NopCloser(bytes.NewReader(b[off:end])), nil
}

// Delete implements stores.Driver.
func (d *Driver) Delete(_ context.Context, url string) error {
	if d.DeleteErr != nil {
		return d.DeleteErr
	}
	id, err := d.id(url)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.objects[id]; !ok {
		return fmt.Errorf("%w: %s", stores.ErrNotFound, url)
	}
	delete(d.objects, id)
	d.deletes++
	return nil
}

// Size implements stores.Driver.
func (d *Driver) Size(_ context.Context, url string) (int64, error) {
	id, err := d.id(url)
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.objects[id]
	if !ok {
		return 0, fmt.Errorf("%w: %s", stores.ErrNotFound, url)
	}
	return int64(len(b)), nil
}

// Stores is a fixed set of one default driver, the shape proxies/location
// asks for, and an optional staging driver.
type Stores struct {
	D stores.Driver
	// Stage is the staging area; nil means none.
	Stage stores.Driver
}

// Staging returns Stage.
func (s Stores) Staging() stores.Driver { return s.Stage }

// Default returns D.
func (s Stores) Default() stores.Driver { return s.D }

// ForURL returns D when it serves url's scheme, stores.ErrUnknownScheme
// otherwise.
func (s Stores) ForURL(url string) (stores.Driver, error) {
	sc, _, _ := strings.Cut(url, "://")
	if slices.Contains(s.D.Schemes(), sc) {
		return s.D, nil
	}
	return nil, fmt.Errorf("%w: %q", stores.ErrUnknownScheme, url)
}

// Multi reports false: Stores is a single store.
func (s Stores) Multi() bool { return false }

// Backend returns D as the default backend, whatever the id.
func (s Stores) Backend(string) (*stores.Backend, bool) {
	if s.D == nil {
		return nil, false
	}
	return &stores.Backend{Type: s.D.Schemes()[0], Driver: s.D}, true
}

// Backends returns the one backend of D.
func (s Stores) Backends() []*stores.Backend {
	b, ok := s.Backend("")
	if !ok {
		return nil
	}
	return []*stores.Backend{b}
}

// ForLocation is ForURL: a single store has no backend ids.
func (s Stores) ForLocation(url, _ string) (stores.Driver, error) { return s.ForURL(url) }
