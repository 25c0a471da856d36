package stores

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// ReservedPrefix starts the ids of Glance's internal stores
// (os_glance_staging_store, os_glance_tasks_store); user backends may not
// use it.
const ReservedPrefix = "os_glance_"

// StagingID is the id of the reserved staging store in multi-store.
const StagingID = "os_glance_staging_store"

// TasksID is the id of the reserved store that import tasks work in, in
// multi-store.
const TasksID = "os_glance_tasks_store"

// Backend is one configured store: a driver and what the discovery API
// tells of it.
type Backend struct {
	// ID is the backend's id in enabled_backends; "" for the legacy
	// single store.
	ID string
	// Type is the driver type: file, http, rbd.
	Type string
	// Description is store_description.
	Description string
	// Weight orders locations for download and direct_url, highest first.
	Weight int
	// Properties are the type-specific facts /v2/info/stores/detail
	// shows (data_dir, chunk_size, pool…).
	Properties map[string]any
	// Driver moves the bytes.
	Driver Driver
}

// ReadOnly reports whether the backend cannot take new data: the http
// store.
func (b *Backend) ReadOnly() bool { return b.Type == "http" }

// Set is the group of configured stores: the backend that receives new data
// by default, any others that receive data on request (multi-store) or only
// serve existing locations, and the staging area of imports.
type Set struct {
	multi    bool
	def      *Backend
	backends []*Backend // in configuration order
	byID     map[string]*Backend
	schemes  map[string]Driver
	staging  Driver
	tasks    Driver
}

// NewSet returns a single-store Set whose new data goes to def. Every
// driver, def first, serves the schemes it lists; when two drivers list the
// same scheme, the earlier one wins.
func NewSet(def Driver, others ...Driver) *Set {
	s := &Set{byID: map[string]*Backend{}, schemes: map[string]Driver{}}
	if def != nil {
		s.def = &Backend{Driver: def, Type: typeOf(def)}
	}
	for _, d := range append([]Driver{def}, others...) {
		s.addSchemes(d)
	}
	return s
}

// NewMultiSet returns a multi-store Set (enabled_backends). defaultID names
// the backend that receives data when a request names none. Backend ids
// must be unique, non-empty and not reserved.
//
// The Set keeps copies of the backends whose Driver adds the backend's id
// to the metadata of every object it stores ({"store": id}), as
// glance_store does in multi-store; Unwrap on such a driver gives back the
// one configured.
func NewMultiSet(defaultID string, backends ...*Backend) (*Set, error) {
	s := &Set{multi: true, byID: map[string]*Backend{}, schemes: map[string]Driver{}}
	for _, b := range backends {
		switch {
		case b == nil || b.Driver == nil:
			return nil, fmt.Errorf("stores: backend %q has no driver", idOf(b))
		case b.ID == "":
			return nil, fmt.Errorf("stores: a backend has no id")
		case strings.HasPrefix(b.ID, ReservedPrefix):
			return nil, fmt.Errorf("stores: backend id %q uses the reserved prefix %q", b.ID, ReservedPrefix)
		}
		if _, dup := s.byID[b.ID]; dup {
			return nil, fmt.Errorf("stores: backend %q is configured twice", b.ID)
		}
		c := *b
		c.Driver = WithStoreID(b.Driver, b.ID)
		b = &c
		s.byID[b.ID] = b
		s.backends = append(s.backends, b)
		s.addSchemes(b.Driver)
	}
	def, ok := s.byID[defaultID]
	if !ok {
		return nil, fmt.Errorf("stores: default backend %q is not one of enabled_backends", defaultID)
	}
	s.def = def
	return s, nil
}

func idOf(b *Backend) string {
	if b == nil {
		return ""
	}
	return b.ID
}

func (s *Set) addSchemes(d Driver) {
	if d == nil {
		return
	}
	for _, sc := range d.Schemes() {
		sc = strings.ToLower(sc)
		if _, ok := s.schemes[sc]; !ok {
			s.schemes[sc] = d
		}
	}
}

// typeOf guesses a single store's type from its first scheme.
func typeOf(d Driver) string {
	sc := d.Schemes()
	if len(sc) == 0 {
		return ""
	}
	return sc[0]
}

// SetStaging sets the driver of the staging area (node_staging_uri, or
// os_glance_staging_store in multi-store).
func (s *Set) SetStaging(d Driver) { s.staging = d }

// Staging returns the staging driver, nil when none is configured.
func (s *Set) Staging() Driver { return s.staging }

// SetTasks sets the driver of the reserved os_glance_tasks_store, the
// work area of import tasks in multi-store.
func (s *Set) SetTasks(d Driver) { s.tasks = d }

// Tasks returns the tasks store's driver, nil when none is configured.
func (s *Set) Tasks() Driver { return s.tasks }

// Multi reports whether enabled_backends is in use.
func (s *Set) Multi() bool { return s.multi }

// Default returns the driver where new image data goes by default.
func (s *Set) Default() Driver {
	if s.def == nil {
		return nil
	}
	return s.def.Driver
}

// DefaultID returns the id of the default backend, "" in single-store.
func (s *Set) DefaultID() string {
	if s.def == nil {
		return ""
	}
	return s.def.ID
}

// Backend returns the backend with id; "" means the default one. In
// single-store every id gives the default backend.
func (s *Set) Backend(id string) (*Backend, bool) {
	if !s.multi || id == "" {
		return s.def, s.def != nil
	}
	b, ok := s.byID[id]
	return b, ok
}

// Backends returns the user-visible backends in configuration order; in
// single-store, the one default backend.
func (s *Set) Backends() []*Backend {
	if !s.multi {
		if s.def == nil {
			return nil
		}
		return []*Backend{s.def}
	}
	return slices.Clone(s.backends)
}

// ForURL returns the driver that serves a location URL, chosen by its
// scheme. It returns ErrUnknownScheme when no driver serves it.
func (s *Set) ForURL(url string) (Driver, error) {
	sc, _, ok := strings.Cut(url, "://")
	if !ok || sc == "" {
		return nil, fmt.Errorf("%w: %q", ErrUnknownScheme, url)
	}
	d, ok := s.schemes[strings.ToLower(sc)]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownScheme, sc)
	}
	return d, nil
}

// ForLocation returns the driver of a location: the backend named by its
// metadata's store id when there is one in multi-store, else by the URL's
// scheme.
func (s *Set) ForLocation(url, store string) (Driver, error) {
	if s.multi && store != "" {
		if b, ok := s.byID[store]; ok {
			return b.Driver, nil
		}
	}
	return s.ForURL(url)
}

// WithStoreID returns d wrapped so that the metadata of every object its Put
// stores holds {"store": id}. A nil d or an empty id gives d unchanged.
func WithStoreID(d Driver, id string) Driver {
	if d == nil || id == "" {
		return d
	}
	return &storeTagged{next: d, id: id}
}

// storeTagged adds the backend id to what Put returns and forwards every
// other call.
type storeTagged struct {
	next Driver
	id   string
}

var _ Driver = (*storeTagged)(nil)

func (t *storeTagged) Put(ctx context.Context, id string, r io.Reader, size int64) (Object, error) {
	obj, err := t.next.Put(ctx, id, r, size)
	if err != nil {
		return obj, err
	}
	md := make(map[string]any, len(obj.Metadata)+1)
	maps.Copy(md, obj.Metadata)
	md["store"] = t.id
	obj.Metadata = md
	return obj, nil
}

func (t *storeTagged) Get(ctx context.Context, url string, off, n int64) (io.ReadCloser, error) {
	return t.next.Get(ctx, url, off, n)
}

func (t *storeTagged) Delete(ctx context.Context, url string) error { return t.next.Delete(ctx, url) }

func (t *storeTagged) Size(ctx context.Context, url string) (int64, error) {
	return t.next.Size(ctx, url)
}

func (t *storeTagged) Schemes() []string { return t.next.Schemes() }

// Unwrap returns the driver that was wrapped.
func (t *storeTagged) Unwrap() Driver { return t.next }

// Unwrap peels every wrapper that has an Unwrap() Driver method off d, to
// reach a driver's own optional methods.
func Unwrap(d Driver) Driver {
	for {
		u, ok := d.(interface{ Unwrap() Driver })
		if !ok {
			return d
		}
		d = u.Unwrap()
	}
}
