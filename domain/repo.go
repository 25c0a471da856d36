package domain

import (
	"context"
	"crypto/rand"
	"time"
)

// Repo stores and finds images (glance/db ImageRepo and its proxies). A Repo
// is built per request for one Caller, whose visibility it applies.
type Repo interface {
	// Get returns the image with this id. It returns ErrNotFound if the
	// image does not exist, is deleted, or is not visible to the caller.
	Get(ctx context.Context, id string) (Image, error)
	// List returns one page of the images visible to the caller that match q.
	// It returns ErrInvalid if q.Marker names no visible image.
	List(ctx context.Context, q ListQuery) (Page, error)
	// Add stores a new image made by the Factory of the same chain. It
	// returns ErrConflict if the id is taken, even by a deleted image.
	Add(ctx context.Context, img Image) error
	// Save stores img if its stored status is still from (compare and swap).
	// It returns ErrConflict when another request changed the status first,
	// and ErrNotFound when the image was deleted meanwhile.
	Save(ctx context.Context, img Image, from Status) error
	// Remove soft-deletes the image and its properties, tags, members and
	// locations. Call it after img.Delete.
	Remove(ctx context.Context, img Image) error
}

// Page is one page of a listing.
type Page struct {
	Images []Image
	// Full is true when the database returned as many rows as the limit
	// asked for, before any layer dropped one: the API then offers a next
	// link.
	Full bool
}

// ListQuery is a validated GET /v2/images query (reference §2).
type ListQuery struct {
	Limit  int
	Marker string
	// Sort keys in priority order; the database appends created_at and id
	// as tie-breakers.
	Sort []SortKey
	// Visibility is "" (the default listing), "all", or one visibility.
	Visibility string
	// MemberStatus filters images shared with the caller: accepted
	// (default), pending, rejected or all.
	MemberStatus string
	// Hidden lists only os_hidden images when true, only visible ones when false.
	Hidden bool
	// Protected filters on the protected flag when set.
	Protected *bool
	// Tags must all be present.
	Tags []string
	// Filters on columns of the images table.
	Filters []Filter
	// Properties must all match exactly (extra properties).
	Properties map[string]string
}

// SortKey is one sort column and direction.
type SortKey struct {
	Key string // name, status, container_format, disk_format, size, id, created_at, updated_at
	Dir string // asc or desc
}

// Filter is one condition on a column of the images table.
type Filter struct {
	Field string // a column name: name, status, size, created_at, owner, ...
	Op    FilterOp
	// Values holds one value, or several for OpIn. Times are RFC 3339 in UTC.
	Values []string
}

// FilterOp is a comparison of a Filter.
type FilterOp string

// The filter operators of reference §2.
const (
	OpEq  FilterOp = "eq"
	OpNeq FilterOp = "neq"
	OpIn  FilterOp = "in"
	OpGt  FilterOp = "gt"
	OpGte FilterOp = "gte"
	OpLt  FilterOp = "lt"
	OpLte FilterOp = "lte"
)

// Toucher is implemented by repositories that can renew the lease of an
// image whose data is on its way: they set its updated_at to now if its
// status is still status, and give ErrConflict otherwise. Crash recovery
// takes an image in saving, uploading or importing whose record nobody has
// touched for a while for abandoned; a long upload touches its image to
// show it is alive.
type Toucher interface {
	Touch(ctx context.Context, id string, status Status) error
}

// Factory makes new images (glance/domain ImageFactory and its proxies).
type Factory interface {
	// NewImage returns a new queued image built from m. The core factory
	// fills the id (a random UUID when empty), status, timestamps and
	// defaults; the layers check who may create what. Nothing is stored
	// until the repository's Add.
	NewImage(ctx context.Context, m Meta) (Image, error)
}

// CoreFactory is the innermost Factory.
type CoreFactory struct{}

var _ Factory = CoreFactory{}

// NewImage implements Factory.
func (CoreFactory) NewImage(_ context.Context, m Meta) (Image, error) {
	if m.ID == "" {
		m.ID = NewUUID()
	}
	// Microseconds, as Glance keeps them where the database can (SQLite):
	// images created in the same second still sort apart. The wire shows
	// whole seconds.
	now := time.Now().UTC().Truncate(time.Microsecond)
	m.Status = StatusQueued
	if m.Visibility == "" {
		m.Visibility = VisibilityShared
	}
	if !m.Visibility.Valid() {
		return nil, Errorf(ErrInvalid, "Invalid visibility value: %s", m.Visibility)
	}
	if m.MinRAM < 0 || m.MinDisk < 0 {
		return nil, Errorf(ErrInvalid, "Cannot be a negative value")
	}
	m.CreatedAt, m.UpdatedAt = now, now
	m.DeletedAt = nil
	m.Locations = nil
	m.SetTags(m.Tags)
	return NewImage(m), nil
}

// NewUUID returns a random (version 4) UUID in its canonical form.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const digits = "0123456789abcdef"
	var out [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = digits[c>>4], digits[c&0xf]
		j += 2
	}
	return string(out[:])
}
