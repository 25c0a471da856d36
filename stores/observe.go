package stores

import (
	"context"
	"errors"
	"io"
	"sync"
)

// ErrorFunc is told of a store's failure: the store's id (the backend id
// in multi-store, the driver type in single-store, os_glance_staging_store
// for staging), the operation (put, get, read, delete, size) and the
// error.
type ErrorFunc func(store, op string, err error)

// Observed is a view of a Set whose drivers report their failures to an
// ErrorFunc; the image data layer (proxies/location) uses it so that
// monitoring sees store errors where they surface. A failure the caller
// caused (its context ended, its stream had the wrong length) is not
// reported. The drivers it hands out are the same values every time, so
// they may be compared with each other.
type Observed struct {
	set *Set
	fn  ErrorFunc

	mu       sync.Mutex
	drivers  map[Driver]Driver
	backends map[*Backend]*Backend
}

// Observe returns the view of s that reports to fn.
func Observe(s *Set, fn ErrorFunc) *Observed {
	return &Observed{set: s, fn: fn, drivers: map[Driver]Driver{}, backends: map[*Backend]*Backend{}}
}

// idOfDriver names d for the ErrorFunc.
func (o *Observed) idOfDriver(d Driver) string {
	if d == o.set.staging {
		return StagingID
	}
	for _, b := range o.set.backends {
		if b.Driver == d {
			return b.ID
		}
	}
	if o.set.def != nil && o.set.def.Driver == d && o.set.def.ID != "" {
		return o.set.def.ID
	}
	return typeOf(d)
}

func (o *Observed) wrap(d Driver) Driver {
	if d == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if w, ok := o.drivers[d]; ok {
		return w
	}
	w := &observedDriver{next: d, id: o.idOfDriver(d), fn: o.fn}
	o.drivers[d] = w
	return w
}

func (o *Observed) wrapBackend(b *Backend) *Backend {
	if b == nil {
		return nil
	}
	d := o.wrap(b.Driver)
	o.mu.Lock()
	defer o.mu.Unlock()
	if w, ok := o.backends[b]; ok {
		return w
	}
	c := *b
	c.Driver = d
	o.backends[b] = &c
	return &c
}

// Default is Set.Default, observed.
func (o *Observed) Default() Driver { return o.wrap(o.set.Default()) }

// Staging is Set.Staging, observed.
func (o *Observed) Staging() Driver { return o.wrap(o.set.Staging()) }

// Multi is Set.Multi.
func (o *Observed) Multi() bool { return o.set.Multi() }

// Backend is Set.Backend, observed.
func (o *Observed) Backend(id string) (*Backend, bool) {
	b, ok := o.set.Backend(id)
	return o.wrapBackend(b), ok
}

// Backends is Set.Backends, observed.
func (o *Observed) Backends() []*Backend {
	bs := o.set.Backends()
	out := make([]*Backend, len(bs))
	for i, b := range bs {
		out[i] = o.wrapBackend(b)
	}
	return out
}

// ForURL is Set.ForURL, observed.
func (o *Observed) ForURL(url string) (Driver, error) {
	d, err := o.set.ForURL(url)
	return o.wrap(d), err
}

// ForLocation is Set.ForLocation, observed.
func (o *Observed) ForLocation(url, store string) (Driver, error) {
	d, err := o.set.ForLocation(url, store)
	return o.wrap(d), err
}

// observedDriver reports the errors of next.
type observedDriver struct {
	next Driver
	id   string
	fn   ErrorFunc
}

var _ Driver = (*observedDriver)(nil)

func (d *observedDriver) report(ctx context.Context, op string, err error) {
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrSizeMismatch) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	d.fn(d.id, op, err)
}

func (d *observedDriver) Put(ctx context.Context, id string, r io.Reader, size int64) (Object, error) {
	obj, err := d.next.Put(ctx, id, r, size)
	d.report(ctx, "put", err)
	return obj, err
}

func (d *observedDriver) Get(ctx context.Context, url string, off, n int64) (io.ReadCloser, error) {
	rc, err := d.next.Get(ctx, url, off, n)
	d.report(ctx, "get", err)
	if err != nil {
		return rc, err
	}
	return &observedReader{ReadCloser: rc, ctx: ctx, d: d}, nil
}

func (d *observedDriver) Delete(ctx context.Context, url string) error {
	err := d.next.Delete(ctx, url)
	if !errors.Is(err, ErrNotFound) {
		d.report(ctx, "delete", err)
	}
	return err
}

func (d *observedDriver) Size(ctx context.Context, url string) (int64, error) {
	n, err := d.next.Size(ctx, url)
	d.report(ctx, "size", err)
	return n, err
}

func (d *observedDriver) Schemes() []string { return d.next.Schemes() }

// Unwrap returns the driver that was wrapped.
func (d *observedDriver) Unwrap() Driver { return d.next }

// observedReader reports a failure while an object is read. It keeps the
// driver's WriteTo (sendfile for the file store) reachable.
type observedReader struct {
	io.ReadCloser
	ctx context.Context
	d   *observedDriver
}

func (r *observedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		r.d.report(r.ctx, "read", err)
	}
	return n, err
}

func (r *observedReader) WriteTo(w io.Writer) (int64, error) {
	wt, ok := r.ReadCloser.(io.WriterTo)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{r})
	}
	// A failure here may be the client's side as well as the store's;
	// the request's context tells them apart when the client went away.
	n, err := wt.WriteTo(w)
	if err != nil {
		r.d.report(r.ctx, "read", err)
	}
	return n, err
}
