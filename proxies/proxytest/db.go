// Package proxytest holds in-memory fakes for testing the proxy layers and
// their callers without a database, an HTTP server or a real store: a
// domain.Repo and domain.MemberRepo over a shared DB, a stores.Driver, fault
// injectors, and a notification sink that records what it is given.
package proxytest

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// DB is the shared state behind Repo and Members: every image record ever
// added (soft-deleted ones included) and the members of each image. It is
// safe for concurrent use.
type DB struct {
	mu      sync.Mutex
	images  map[string]domain.Meta
	members map[string]map[string]memberRow
	saves   int
}

type memberRow struct {
	m       domain.Member
	deleted bool
}

// NewDB returns an empty DB.
func NewDB() *DB {
	return &DB{images: map[string]domain.Meta{}, members: map[string]map[string]memberRow{}}
}

// Put stores m as it is, replacing any record with the same id. Tests use it
// to seed images in any status.
func (d *DB) Put(m domain.Meta) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.images[m.ID] = m.Clone()
}

// Image returns the stored record of id, deleted or not.
func (d *DB) Image(id string) (domain.Meta, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.images[id]
	return m.Clone(), ok
}

// Saves returns how many Save calls succeeded, across all repos of d.
func (d *DB) Saves() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.saves
}

// PutMember stores a member row directly.
func (d *DB) PutMember(m domain.Member) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.members[m.ImageID] == nil {
		d.members[m.ImageID] = map[string]memberRow{}
	}
	d.members[m.ImageID][m.MemberID] = memberRow{m: m}
}

// Usage returns the bytes stored for owner's images, counted as Glance
// does: size times the number of live locations, over images that are not
// killed, deleted or pending_delete. It has the signature of quota.UsageFunc.
func (d *DB) Usage(_ context.Context, owner string) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var total int64
	for _, m := range d.images {
		if m.Owner == nil || *m.Owner != owner || m.Size == nil {
			continue
		}
		switch m.Status {
		case domain.StatusKilled, domain.StatusDeleted, domain.StatusPendingDelete:
			continue
		}
		for _, l := range m.Locations {
			if l.Status != "deleted" {
				total += *m.Size
			}
		}
	}
	return total, nil
}

// Repo returns a domain.Repo over d that applies c's visibility. A nil
// caller sees and may change everything.
func (d *DB) Repo(c *domain.Caller) *Repo { return &Repo{db: d, c: c} }

// Members returns the member repo of image imageID as c sees it.
func (d *DB) Members(c *domain.Caller, imageID string) *Members {
	return &Members{db: d, c: c, image: imageID}
}

// Repo is an in-memory domain.Repo. It keeps deep copies, compares and
// swaps the status on Save, soft-deletes on Remove, refuses duplicate ids and
// shows a caller only the images Glance's database would.
type Repo struct {
	db *DB
	c  *domain.Caller
}

var _ domain.Repo = (*Repo)(nil)

func (r *Repo) admin() bool { return r.c == nil || r.c.IsAdmin }

// visible is glance/db/utils.py is_image_visible; d.mu must be held.
func (r *Repo) visible(m domain.Meta) bool {
	if r.admin() || m.Owner == nil {
		return true
	}
	if m.Visibility == domain.VisibilityPublic || m.Visibility == domain.VisibilityCommunity {
		return true
	}
	if r.c.Owns(m.Owner) {
		return true
	}
	if m.Visibility == domain.VisibilityShared && r.c.ProjectID != "" {
		row, ok := r.db.members[m.ID][r.c.ProjectID]
		return ok && !row.deleted
	}
	return false
}

func (r *Repo) mutable(m domain.Meta) bool {
	return r.admin() || r.c.Owns(m.Owner)
}

func (r *Repo) load(m domain.Meta) domain.Image {
	m = m.Clone()
	m.Member = ""
	if r.c != nil && m.Visibility == domain.VisibilityShared && r.c.ProjectID != "" && !r.c.Owns(m.Owner) {
		m.Member = r.c.ProjectID
	}
	return domain.NewImage(m)
}

// Get implements domain.Repo.
func (r *Repo) Get(_ context.Context, id string) (domain.Image, error) {
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	m, ok := r.db.images[id]
	if !ok || m.Status == domain.StatusDeleted || m.DeletedAt != nil || !r.visible(m) {
		return nil, domain.Errorf(domain.ErrNotFound, "No image found with ID %s", id)
	}
	return r.load(m), nil
}

// List implements domain.Repo. It honours Limit and Marker and sorts by
// created_at then id, newest first; other query fields are ignored.
func (r *Repo) List(_ context.Context, q domain.ListQuery) (domain.Page, error) {
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	var all []domain.Meta
	for _, m := range r.db.images {
		if m.Status != domain.StatusDeleted && m.DeletedAt == nil && r.visible(m) {
			all = append(all, m)
		}
	}
	slices.SortFunc(all, func(a, b domain.Meta) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if q.Marker != "" {
		i := slices.IndexFunc(all, func(m domain.Meta) bool { return m.ID == q.Marker })
		if i < 0 {
			return domain.Page{}, domain.Errorf(domain.ErrInvalid, "marker not found")
		}
		all = all[i+1:]
	}
	var p domain.Page
	if q.Limit > 0 && len(all) >= q.Limit {
		all = all[:q.Limit]
		p.Full = true
	}
	for _, m := range all {
		p.Images = append(p.Images, r.load(m))
	}
	return p, nil
}

// Add implements domain.Repo.
func (r *Repo) Add(_ context.Context, img domain.Image) error {
	m := img.Meta()
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	if _, ok := r.db.images[m.ID]; ok {
		return domain.Errorf(domain.ErrConflict, "Image ID %s already exists!", m.ID)
	}
	m.Member = ""
	r.db.images[m.ID] = m
	return nil
}

// Save implements domain.Repo.
func (r *Repo) Save(_ context.Context, img domain.Image, from domain.Status) error {
	m := img.Meta()
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	old, ok := r.db.images[m.ID]
	if !ok || old.Status == domain.StatusDeleted || old.DeletedAt != nil || !r.visible(old) {
		return domain.Errorf(domain.ErrNotFound, "No image found with ID %s", m.ID)
	}
	if !r.mutable(old) {
		return domain.Errorf(domain.ErrForbidden, "You do not own this image")
	}
	if from != "" && old.Status != from {
		return domain.Errorf(domain.ErrConflict, "Image status transition from %s to %s is not allowed", old.Status, m.Status)
	}
	m.Member = ""
	m.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	r.db.images[m.ID] = m
	r.db.saves++
	return nil
}

// Remove implements domain.Repo.
func (r *Repo) Remove(_ context.Context, img domain.Image) error {
	m := img.Meta()
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	old, ok := r.db.images[m.ID]
	if !ok || old.Status == domain.StatusDeleted || old.DeletedAt != nil || !r.visible(old) {
		return domain.Errorf(domain.ErrNotFound, "No image found with ID %s", m.ID)
	}
	if !r.mutable(old) {
		return domain.Errorf(domain.ErrForbidden, "You do not own this image")
	}
	now := time.Now().UTC().Truncate(time.Second)
	m.Status = domain.StatusDeleted
	if m.DeletedAt == nil {
		m.DeletedAt = &now
	}
	m.Member = ""
	for i := range m.Locations {
		m.Locations[i].Status = "deleted"
	}
	r.db.images[m.ID] = m
	for id, row := range r.db.members[m.ID] {
		row.deleted = true
		r.db.members[m.ID][id] = row
	}
	return nil
}

// Members is an in-memory domain.MemberRepo for one image and one caller.
// The owner and admins see every member; a member sees only itself.
type Members struct {
	db    *DB
	c     *domain.Caller
	image string
}

var _ domain.MemberRepo = (*Members)(nil)

func (r *Members) seesAll() bool {
	if r.c == nil || r.c.IsAdmin {
		return true
	}
	m, ok := r.db.images[r.image]
	return ok && r.c.Owns(m.Owner)
}

func (r *Members) sees(id string) bool { return r.seesAll() || (r.c != nil && r.c.ProjectID == id) }

// List implements domain.MemberRepo, sorted by member id.
func (r *Members) List(context.Context) ([]domain.Member, error) {
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	var out []domain.Member
	for id, row := range r.db.members[r.image] {
		if !row.deleted && r.sees(id) {
			out = append(out, row.m)
		}
	}
	slices.SortFunc(out, func(a, b domain.Member) int { return cmp.Compare(a.MemberID, b.MemberID) })
	return out, nil
}

// Count returns the number of live members of the image, whoever asks.
func (r *Members) Count() int {
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	n := 0
	for _, row := range r.db.members[r.image] {
		if !row.deleted {
			n++
		}
	}
	return n
}

// Get implements domain.MemberRepo.
func (r *Members) Get(_ context.Context, id string) (domain.Member, error) {
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	row, ok := r.db.members[r.image][id]
	if !ok || row.deleted || !r.sees(id) {
		return domain.Member{}, domain.Errorf(domain.ErrNotFound, "%s not found in the member list of the image %s.", id, r.image)
	}
	return row.m, nil
}

// Add implements domain.MemberRepo. A soft-deleted row is reused.
func (r *Members) Add(_ context.Context, m domain.Member) error {
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	if row, ok := r.db.members[r.image][m.MemberID]; ok && !row.deleted {
		return domain.Errorf(domain.ErrConflict, "Member %s is duplicated for image %s", m.MemberID, r.image)
	}
	if r.db.members[r.image] == nil {
		r.db.members[r.image] = map[string]memberRow{}
	}
	m.ImageID = r.image
	r.db.members[r.image][m.MemberID] = memberRow{m: m}
	return nil
}

// Save implements domain.MemberRepo.
func (r *Members) Save(_ context.Context, m domain.Member) error {
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	row, ok := r.db.members[r.image][m.MemberID]
	if !ok || row.deleted || !r.sees(m.MemberID) {
		return domain.Errorf(domain.ErrNotFound, "%s not found in the member list of the image %s.", m.MemberID, r.image)
	}
	m.ImageID = r.image
	m.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	r.db.members[r.image][m.MemberID] = memberRow{m: m}
	return nil
}

// Remove implements domain.MemberRepo.
func (r *Members) Remove(_ context.Context, m domain.Member) error {
	r.db.mu.Lock()
	defer r.db.mu.Unlock()
	row, ok := r.db.members[r.image][m.MemberID]
	if !ok || row.deleted || !r.sees(m.MemberID) {
		return domain.Errorf(domain.ErrNotFound, "%s not found in the member list of the image %s.", m.MemberID, r.image)
	}
	row.deleted = true
	r.db.members[r.image][m.MemberID] = row
	return nil
}
