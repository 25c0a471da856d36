package domain

import (
	"context"
	"io"
	"maps"
	"slices"
	"time"
)

// Meta is an image's record: the columns of Glance's images table plus its
// tags, extra properties and locations. Nullable columns are pointers; nil is
// JSON null on the wire.
type Meta struct {
	ID              string
	Name            *string
	Status          Status
	Visibility      Visibility
	Protected       bool
	Hidden          bool // os_hidden
	Checksum        *string
	HashAlgo        *string // os_hash_algo
	HashValue       *string // os_hash_value
	Owner           *string
	Size            *int64
	VirtualSize     *int64
	ContainerFormat *string
	DiskFormat      *string
	MinRAM          int
	MinDisk         int
	CreatedAt       time.Time
	UpdatedAt       time.Time
	DeletedAt       *time.Time
	Tags            []string          // a set, kept sorted
	Properties      map[string]string // extra properties
	Locations       []Location
	// Member is the caller's project when the image is shared and the
	// caller is not its owner: the policy target's member_id. The database
	// sets it when it loads an image for a caller.
	Member string
}

// Location is where a copy of an image's data lives (image_locations).
type Location struct {
	ID       int64 // row id; 0 until stored
	URL      string
	Metadata map[string]any
	Status   string // active, pending_delete or deleted
}

// Clone returns a deep copy of m.
func (m Meta) Clone() Meta {
	c := m
	// The copies of the nullable fields share one allocation.
	var block *nullables
	str := func(p *string, i int) *string {
		if p == nil {
			return nil
		}
		if block == nil {
			block = new(nullables)
		}
		block.strs[i] = *p
		return &block.strs[i]
	}
	num := func(p *int64, i int) *int64 {
		if p == nil {
			return nil
		}
		if block == nil {
			block = new(nullables)
		}
		block.ints[i] = *p
		return &block.ints[i]
	}
	c.Name = str(m.Name, 0)
	c.Checksum = str(m.Checksum, 1)
	c.HashAlgo = str(m.HashAlgo, 2)
	c.HashValue = str(m.HashValue, 3)
	c.Owner = str(m.Owner, 4)
	c.ContainerFormat = str(m.ContainerFormat, 5)
	c.DiskFormat = str(m.DiskFormat, 6)
	c.Size = num(m.Size, 0)
	c.VirtualSize = num(m.VirtualSize, 1)
	c.DeletedAt = clonePtr(m.DeletedAt)
	c.Tags = slices.Clone(m.Tags)
	c.Properties = maps.Clone(m.Properties)
	if c.Properties == nil {
		c.Properties = map[string]string{}
	}
	if m.Locations != nil {
		c.Locations = make([]Location, len(m.Locations))
		for i, l := range m.Locations {
			l.Metadata = maps.Clone(l.Metadata)
			c.Locations[i] = l
		}
	}
	return c
}

// SetTags replaces the tag set, dropping duplicates and sorting it.
func (m *Meta) SetTags(tags []string) {
	t := slices.Clone(tags)
	slices.Sort(t)
	m.Tags = slices.Compact(t)
}

// nullables holds the values of a cloned Meta's nullable strings and
// integers.
type nullables struct {
	strs [7]string
	ints [2]int64
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Ptr returns a pointer to v, for filling nullable fields.
func Ptr[T any](v T) *T { return &v }

// Peeker is an Image whose record can be read without a copy. A layer
// implements it only if its Meta shows the record of the layer below
// unchanged; a layer that embeds a proxies.Image without saying so is not
// one, so that a new layer that filters Meta is never bypassed.
type Peeker interface {
	// Peek returns the record as Meta would show it, without copying it.
	// The caller must not change it, and must not use it once the image
	// has been changed.
	Peek() *Meta
}

// Peek returns the record of img for reading: without a copy when img is a
// Peeker, a copy from Meta otherwise. The rules of Peeker.Peek apply.
func Peek(img Image) *Meta {
	if p, ok := img.(Peeker); ok {
		return p.Peek()
	}
	m := img.Meta()
	return &m
}

// Image is an image as the handlers and every proxy layer see it. Each layer
// wraps the Image of the layer below it and overrides the methods it polices.
type Image interface {
	// Meta returns a deep copy of the record as this layer shows it.
	Meta() Meta
	// Update applies fn to a copy of the record. The change is kept only if
	// fn and every layer's check on the result succeed; otherwise the image
	// is unchanged and the error is returned. Nothing is stored until the
	// repository's Save.
	Update(fn func(m *Meta) error) error
	// SetData stores the image's data (PUT /file, or one store of an
	// import). On success the image is active and saved, or, for an import
	// that is not done, still importing with one more location; on failure
	// it is back where it was (queued for PUT /file), saved, and no data is
	// left behind.
	SetData(ctx context.Context, r io.Reader, in DataIn) error
	// Stage writes the image's data to the staging area (PUT /stage) for a
	// later glance-direct import. The image goes from queued to uploading
	// and its size is set; on failure it is back in queued and nothing is
	// left in staging.
	Stage(ctx context.Context, r io.Reader, in DataIn) error
	// Data opens the image's data from byte off for n bytes (n < 0: to the
	// end). It returns ErrNoData when the image has no location.
	Data(ctx context.Context, off, n int64) (io.ReadCloser, error)
	// Deactivate and Reactivate move an image between active and
	// deactivated; repeating either is a no-op. Other statuses give
	// ErrForbidden.
	Deactivate(ctx context.Context) error
	Reactivate(ctx context.Context) error
	// Delete marks the image deleted and removes its data from the stores.
	// A protected image gives ErrForbidden. The record is gone only after
	// the repository's Remove.
	Delete(ctx context.Context) error
	// Unwrap returns the image of the layer below, or nil for the core image.
	Unwrap() Image
}

// image is the core domain image: the record and its invariants.
type image struct {
	meta Meta
}

var _ Image = (*image)(nil)

// NewImage returns the core image for a stored record. It is used by the
// database when it loads rows, and by the core factory.
func NewImage(m Meta) Image {
	if m.Properties == nil {
		m.Properties = map[string]string{}
	}
	return &image{meta: m}
}

func (i *image) Meta() Meta    { return i.meta.Clone() }
func (i *image) Peek() *Meta   { return &i.meta }
func (i *image) Unwrap() Image { return nil }

func (i *image) Update(fn func(m *Meta) error) error {
	m := i.meta.Clone()
	if err := fn(&m); err != nil {
		return err
	}
	if err := checkChange(&i.meta, &m); err != nil {
		return err
	}
	m.SetTags(m.Tags)
	i.meta = m
	return nil
}

// checkChange enforces the record's invariants on a change from old to m.
func checkChange(old, m *Meta) error {
	if m.ID != old.ID {
		return Errorf(ErrForbidden, "Attribute 'id' is read-only.")
	}
	if m.Status != old.Status {
		if !CanTransition(old.Status, m.Status) {
			return &TransitionError{From: old.Status, To: m.Status}
		}
		leaving := old.Status == StatusQueued || old.Status == StatusUploading
		if leaving && (m.Status == StatusSaving || m.Status == StatusActive || m.Status == StatusImporting) &&
			(m.DiskFormat == nil || m.ContainerFormat == nil) {
			return Errorf(ErrInvalid, "Properties disk_format, container_format must be set prior to saving data.")
		}
	}
	formatsOpen := old.Status == StatusQueued || old.Status == StatusImporting
	if !formatsOpen {
		if !equalPtr(old.DiskFormat, m.DiskFormat) {
			return Errorf(ErrForbidden, "Attribute disk_format can be only replaced for a queued image.")
		}
		if !equalPtr(old.ContainerFormat, m.ContainerFormat) {
			return Errorf(ErrForbidden, "Attribute container_format can be only replaced for a queued image.")
		}
	}
	if m.MinRAM < 0 || m.MinDisk < 0 {
		return Errorf(ErrInvalid, "Cannot be a negative value")
	}
	return nil
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func (i *image) SetData(context.Context, io.Reader, DataIn) error {
	return Errorf(ErrUnavailable, "No store is configured for image data.")
}

func (i *image) Stage(context.Context, io.Reader, DataIn) error {
	return Errorf(ErrUnavailable, "No staging area is configured for image data.")
}

func (i *image) Data(context.Context, int64, int64) (io.ReadCloser, error) {
	return nil, ErrNoData
}

func (i *image) Deactivate(context.Context) error {
	switch i.meta.Status {
	case StatusDeactivated:
		return nil
	case StatusActive:
		i.meta.Status = StatusDeactivated
		return nil
	}
	return Errorf(ErrForbidden, "Not allowed to deactivate image in status '%s'", i.meta.Status)
}

func (i *image) Reactivate(context.Context) error {
	switch i.meta.Status {
	case StatusActive:
		return nil
	case StatusDeactivated:
		i.meta.Status = StatusActive
		return nil
	}
	return Errorf(ErrForbidden, "Not allowed to reactivate image in status '%s'", i.meta.Status)
}

func (i *image) Delete(context.Context) error {
	if i.meta.Protected {
		return Errorf(ErrForbidden, "Image %s is protected and cannot be deleted.", i.meta.ID)
	}
	if i.meta.Status == StatusDeleted || !CanTransition(i.meta.Status, StatusDeleted) {
		return &TransitionError{From: i.meta.Status, To: StatusDeleted}
	}
	now := time.Now().UTC().Truncate(time.Second)
	i.meta.Status = StatusDeleted
	i.meta.DeletedAt = &now
	return nil
}
