package stores

import "context"

// Discarder is implemented by drivers that can find and remove what an
// interrupted Put of an image left behind (a partial file, a half-written
// RBD image) from the image id alone, without a location URL: the process
// that was writing died before it could record one. Crash recovery calls it
// only for images whose upload is known to be dead.
type Discarder interface {
	// Discard removes any object, complete or partial, stored for image id
	// by Put. It returns nil when there was nothing to remove.
	Discard(ctx context.Context, id string) error
}

// Lister is implemented by drivers that can enumerate the image ids they
// hold, so that crash recovery can find leftovers in the staging area.
type Lister interface {
	// IDs returns the ids of the objects stored, partial ones included.
	IDs(ctx context.Context) ([]string, error)
}
