// Package authz is the outermost ring of the onion: who may change an image
// or its members (the ideas of glance/api/authorization.py, and the owner
// checks of glance/api/v2/images.py, image_data.py and image_members.py).
// An image the caller may not change is handed out read-only: every
// mutation answers 403. The policy layer decides first in most cases; this
// layer is the last line of defence and holds the checks Glance keeps in
// code rather than in policy.
package authz

import (
	"context"
	"io"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
)

// The messages of the 403 answers.
const (
	msgReadOnly    = "Read-only access"
	msgNotOwner    = "You do not own this image"
	msgOwnerChange = "Owner can't be updated by non admin."
	msgDeactivated = "The requested image has been deactivated. Image data download is forbidden."
)

// Layer returns the authorization ring for caller c. A nil caller is
// treated as an anonymous, read-only one.
func Layer(c *domain.Caller) proxies.Layer {
	if c == nil {
		c = &domain.Caller{ReadOnly: true}
	}
	a := &authz{c: c}
	return proxies.Layer{
		Name: "authz",
		Repo: func(next domain.Repo) domain.Repo {
			return &repo{Repo: proxies.Repo{Next: next, Wrap: a.wrap}, a: a}
		},
		Factory: func(next domain.Factory) domain.Factory {
			return &factory{Factory: proxies.Factory{Next: next, Wrap: a.wrap}, a: a}
		},
		Members: func(img domain.Image, next domain.MemberRepo) domain.MemberRepo {
			return &members{Members: proxies.Members{Next: next}, a: a, img: img}
		},
	}
}

type authz struct{ c *domain.Caller }

// mayChange reports whether the caller may change an image with this
// owner: admins any, others only their project's. Ownerless images belong
// to admins.
func (a *authz) mayChange(owner *string) bool {
	return a.c.IsAdmin || a.c.Owns(owner)
}

// refuse returns the 403 for a mutation of an image with this owner, or nil.
func (a *authz) refuse(owner *string) error {
	if a.c.ReadOnly {
		return domain.Errorf(domain.ErrForbidden, msgReadOnly)
	}
	if !a.mayChange(owner) {
		return domain.Errorf(domain.ErrForbidden, msgNotOwner)
	}
	return nil
}

func (a *authz) wrap(img domain.Image) domain.Image {
	return &image{Image: proxies.Image{Next: img}, a: a}
}

type repo struct {
	proxies.Repo
	a *authz
}

type factory struct {
	proxies.Factory
	a *authz
}

type image struct {
	proxies.Image
	a *authz
}

// Peek implements domain.Peeker: this layer shows the record of the layer
// below unchanged.
func (i *image) Peek() *domain.Meta { return domain.Peek(i.Next) }

type members struct {
	proxies.Members
	a   *authz
	img domain.Image
}

var (
	_ domain.Repo       = (*repo)(nil)
	_ domain.Factory    = (*factory)(nil)
	_ domain.Image      = (*image)(nil)
	_ domain.MemberRepo = (*members)(nil)
)

// Add implements domain.Repo.
func (r *repo) Add(ctx context.Context, img domain.Image) error {
	if err := r.a.refuse(img.Meta().Owner); err != nil {
		return err
	}
	return r.Repo.Add(ctx, img)
}

// Save implements domain.Repo.
func (r *repo) Save(ctx context.Context, img domain.Image, from domain.Status) error {
	if err := r.a.refuse(img.Meta().Owner); err != nil {
		return err
	}
	return r.Repo.Save(ctx, img, from)
}

// Remove implements domain.Repo.
func (r *repo) Remove(ctx context.Context, img domain.Image) error {
	if err := r.a.refuse(img.Meta().Owner); err != nil {
		return err
	}
	return r.Repo.Remove(ctx, img)
}

// NewImage implements domain.Factory. The owner defaults to the caller's
// project; only an admin may create an image for another owner.
func (f *factory) NewImage(ctx context.Context, m domain.Meta) (domain.Image, error) {
	c := f.a.c
	if c.ReadOnly {
		return nil, domain.Errorf(domain.ErrForbidden, msgReadOnly)
	}
	if m.Owner == nil {
		if c.ProjectID != "" {
			m.Owner = domain.Ptr(c.ProjectID)
		}
	} else if !c.IsAdmin && *m.Owner != c.ProjectID {
		return nil, domain.Errorf(domain.ErrForbidden, "You are not permitted to create images owned by '%s'.", *m.Owner)
	}
	return f.Factory.NewImage(ctx, m)
}

func (i *image) refuse() error { return i.a.refuse(i.Next.Meta().Owner) }

// Update implements domain.Image.
func (i *image) Update(fn func(*domain.Meta) error) error {
	if err := i.refuse(); err != nil {
		return err
	}
	return i.Next.Update(func(m *domain.Meta) error {
		before := m.Owner
		if err := fn(m); err != nil {
			return err
		}
		if !i.a.c.IsAdmin && !samePtr(before, m.Owner) {
			return domain.Errorf(domain.ErrForbidden, msgOwnerChange)
		}
		return nil
	})
}

func samePtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// SetData implements domain.Image.
func (i *image) SetData(ctx context.Context, r io.Reader, in domain.DataIn) error {
	if err := i.refuse(); err != nil {
		return err
	}
	return i.Next.SetData(ctx, r, in)
}

// Data implements domain.Image: only admins read a deactivated image.
func (i *image) Data(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if !i.a.c.IsAdmin && i.Next.Meta().Status == domain.StatusDeactivated {
		return nil, domain.Errorf(domain.ErrForbidden, msgDeactivated)
	}
	return i.Next.Data(ctx, off, n)
}

// Deactivate implements domain.Image.
func (i *image) Deactivate(ctx context.Context) error {
	if err := i.refuse(); err != nil {
		return err
	}
	return i.Next.Deactivate(ctx)
}

// Reactivate implements domain.Image.
func (i *image) Reactivate(ctx context.Context) error {
	if err := i.refuse(); err != nil {
		return err
	}
	return i.Next.Reactivate(ctx)
}

// Delete implements domain.Image.
func (i *image) Delete(ctx context.Context) error {
	if err := i.refuse(); err != nil {
		return err
	}
	return i.Next.Delete(ctx)
}

func (m *members) shared() (domain.Meta, bool) {
	meta := m.img.Meta()
	return meta, meta.Visibility == domain.VisibilityShared
}

// List implements domain.MemberRepo: only shared images have members.
func (m *members) List(ctx context.Context) ([]domain.Member, error) {
	meta, ok := m.shared()
	if !ok {
		return nil, domain.Errorf(domain.ErrForbidden,
			"Not allowed to list members for image %s: Only shared images have members.", meta.ID)
	}
	return m.Members.List(ctx)
}

// Get implements domain.MemberRepo. Glance answers 404, never 403, here.
func (m *members) Get(ctx context.Context, id string) (domain.Member, error) {
	if _, ok := m.shared(); !ok {
		return domain.Member{}, domain.Errorf(domain.ErrNotFound, "Only shared images have members.")
	}
	return m.Members.Get(ctx, id)
}

// Add implements domain.MemberRepo: the owner or an admin shares a shared
// image.
func (m *members) Add(ctx context.Context, mb domain.Member) error {
	meta, ok := m.shared()
	if m.a.c.ReadOnly {
		return domain.Errorf(domain.ErrForbidden, msgReadOnly)
	}
	if !ok || !m.a.mayChange(meta.Owner) {
		return domain.Errorf(domain.ErrForbidden, "Not allowed to create members for image %s.", meta.ID)
	}
	return m.Members.Add(ctx, mb)
}

// Save implements domain.MemberRepo: only the member itself, or an admin,
// answers a share.
func (m *members) Save(ctx context.Context, mb domain.Member) error {
	meta, ok := m.shared()
	c := m.a.c
	if c.ReadOnly {
		return domain.Errorf(domain.ErrForbidden, msgReadOnly)
	}
	if !c.IsAdmin {
		if !ok || c.Owns(meta.Owner) {
			return domain.Errorf(domain.ErrForbidden, "Not allowed to update members for image %s.", meta.ID)
		}
		if c.ProjectID == "" || mb.MemberID != c.ProjectID {
			return domain.Errorf(domain.ErrNotFound, "%s not found in the member list of the image %s.", mb.MemberID, meta.ID)
		}
	}
	return m.Members.Save(ctx, mb)
}

// Remove implements domain.MemberRepo: the owner or an admin unshares.
func (m *members) Remove(ctx context.Context, mb domain.Member) error {
	meta, ok := m.shared()
	if m.a.c.ReadOnly {
		return domain.Errorf(domain.ErrForbidden, msgReadOnly)
	}
	if !ok || !m.a.mayChange(meta.Owner) {
		return domain.Errorf(domain.ErrForbidden, "Not allowed to delete members for image %s.", meta.ID)
	}
	return m.Members.Remove(ctx, mb)
}
