// Package stores moves image bytes to and from storage backends, and nothing
// else: hashing, quotas and status changes happen above it, in the location
// proxy (glance_store/driver.py is the counterpart).
package stores

import (
	"context"
	"errors"
	"io"
)

// Driver errors. Only proxies/location turns them into domain errors.
var (
	// ErrNotFound: no object at that location.
	ErrNotFound = errors.New("stores: not found")
	// ErrExists: an object with that id is already stored.
	ErrExists = errors.New("stores: already exists")
	// ErrFull: the backend has no room left.
	ErrFull = errors.New("stores: storage full")
	// ErrReadOnly: the driver cannot add or delete data.
	ErrReadOnly = errors.New("stores: read-only store")
	// ErrInUse: the data is in use (RBD clones) and cannot be deleted.
	ErrInUse = errors.New("stores: in use")
	// ErrUnknownScheme: no configured driver serves that location's scheme.
	ErrUnknownScheme = errors.New("stores: unknown location scheme")
	// ErrSizeMismatch: fewer or more bytes arrived than announced.
	ErrSizeMismatch = errors.New("stores: size mismatch")
	// ErrUnavailable: a remote backend cannot be reached or answered with
	// a server error (glance_store's RemoteServiceUnavailable).
	ErrUnavailable = errors.New("stores: backend unavailable")
)

// Object is what a Put stored.
type Object struct {
	URL      string         // the location URI, e.g. file:///var/lib/glance/images/<id>
	Size     int64          // bytes written
	Metadata map[string]any // location metadata; "store" in multi-store
}

// Driver is one storage backend.
type Driver interface {
	// Put streams r into a new object for image id. size is the announced
	// length, 0 when unknown; with a known size, a short or long stream
	// gives ErrSizeMismatch. It returns ErrExists if the id is taken. On any
	// error, and when ctx is cancelled, nothing is left behind.
	Put(ctx context.Context, id string, r io.Reader, size int64) (Object, error)
	// Get opens the object at url from byte off for n bytes (n < 0: to the
	// end). It returns ErrNotFound if there is none.
	Get(ctx context.Context, url string, off, n int64) (io.ReadCloser, error)
	// Delete removes the object at url. It returns ErrNotFound if there is
	// none, ErrInUse if the backend refuses because the data is in use.
	Delete(ctx context.Context, url string) error
	// Size returns the object's length in bytes, or ErrNotFound.
	Size(ctx context.Context, url string) (int64, error)
	// Schemes lists the URI schemes this driver serves.
	Schemes() []string
}
