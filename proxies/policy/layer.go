package policy

import (
	"context"
	"errors"
	"io"
	"maps"
	"reflect"
	"slices"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
)

// guard checks policies for one caller. The subject is built once per
// request.
type guard struct {
	e      *Enforcer
	sub    Subject
	subKey string
	caller *domain.Caller
}

func (g *guard) allowed(action string, t Target) bool {
	return g.e.cur.Load().allowed(&g.sub, g.subKey, action, t)
}

func denied(action string) error {
	return domain.Errorf(domain.ErrForbidden, "You are not authorized to complete %s action.", action)
}

func imageNotFound(id string) error {
	return domain.Errorf(domain.ErrNotFound, "No image found with ID %s", id)
}

// enforce checks action on an existing image. A refusal is ErrForbidden,
// or ErrNotFound when the caller may not see the image at all.
func (g *guard) enforce(action string, m domain.Meta) error {
	t := ImageTarget(m)
	if g.allowed(action, t) {
		return nil
	}
	if action == "get_image" || !g.allowed("get_image", t) {
		return imageNotFound(m.ID)
	}
	return denied(action)
}

// Layer returns the policy ring of the onion for caller c: every repository,
// image, factory and member call is checked against the policy of e in
// force at the time of the call.
func Layer(e *Enforcer, c *domain.Caller) proxies.Layer {
	g := &guard{e: e, sub: newSubject(c), caller: c}
	g.subKey = g.sub.key()
	wrap := func(img domain.Image) domain.Image {
		return &image{Image: proxies.Image{Next: img}, g: g}
	}
	return proxies.Layer{
		Name: "policy",
		Repo: func(next domain.Repo) domain.Repo {
			return &repo{Repo: proxies.Repo{Next: next, Wrap: wrap}, g: g}
		},
		Factory: func(next domain.Factory) domain.Factory {
			return &factory{Factory: proxies.Factory{Next: next, Wrap: wrap}, g: g}
		},
		Members: func(img domain.Image, next domain.MemberRepo) domain.MemberRepo {
			return &members{Members: proxies.Members{Next: next}, g: g, img: img}
		},
	}
}

type repo struct {
	proxies.Repo
	g *guard
}

var _ domain.Repo = (*repo)(nil)

// Get checks get_image; an image the caller may not see is not found.
func (r *repo) Get(ctx context.Context, id string) (domain.Image, error) {
	img, err := r.Repo.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !r.g.allowed("get_image", ImageTarget(*domain.Peek(img))) {
		return nil, imageNotFound(id)
	}
	return img, nil
}

// List checks get_images, then drops the images the caller fails get_image
// on. Page.Full stays as the inner page had it.
func (r *repo) List(ctx context.Context, q domain.ListQuery) (domain.Page, error) {
	if !r.g.allowed("get_images", Target{ProjectID: r.g.sub.ProjectID, Owner: r.g.sub.ProjectID}) {
		return domain.Page{}, denied("get_images")
	}
	p, err := r.Repo.List(ctx, q)
	if err != nil {
		return p, err
	}
	kept := p.Images[:0]
	for _, img := range p.Images {
		if r.g.allowed("get_image", ImageTarget(img.Meta())) {
			kept = append(kept, img)
		}
	}
	clear(p.Images[len(kept):])
	p.Images = kept
	return p, nil
}

type factory struct {
	proxies.Factory
	g *guard
}

var _ domain.Factory = (*factory)(nil)

// NewImage checks add_image against the new image's owner, and
// publicize_image or communitize_image for those visibilities.
func (f *factory) NewImage(ctx context.Context, m domain.Meta) (domain.Image, error) {
	owner := f.g.sub.ProjectID
	if m.Owner != nil {
		owner = *m.Owner
	}
	vis := m.Visibility
	if vis == "" {
		vis = domain.VisibilityPrivate
	}
	t := Target{ProjectID: owner, Owner: owner, Visibility: string(vis)}
	if !f.g.allowed("add_image", t) {
		if owner != f.g.sub.ProjectID {
			return nil, domain.Errorf(domain.ErrForbidden, "You are not permitted to create images owned by '%s'", owner)
		}
		return nil, denied("add_image")
	}
	if err := f.g.visibility(vis, t); err != nil {
		return nil, err
	}
	return f.Factory.NewImage(ctx, m)
}

// visibility checks the policy that setting an image public or community
// needs.
func (g *guard) visibility(v domain.Visibility, t Target) error {
	var action string
	switch v {
	case domain.VisibilityPublic:
		action = "publicize_image"
	case domain.VisibilityCommunity:
		action = "communitize_image"
	default:
		return nil
	}
	if !g.allowed(action, t) {
		return denied(action)
	}
	return nil
}

type image struct {
	proxies.Image
	g *guard
}

var _ domain.Image = (*image)(nil)

// Peek implements domain.Peeker: this layer shows the record of the layer
// below unchanged.
func (i *image) Peek() *domain.Meta { return domain.Peek(i.Next) }

// Update checks the change fn makes: publicize_image or communitize_image
// when the visibility becomes public or community; set_image_location when
// locations are added or replaced and delete_image_location when some are
// removed; modify_image for any other change (and for no change at all). A
// refused change is not applied.
func (i *image) Update(fn func(*domain.Meta) error) error {
	return i.Next.Update(func(m *domain.Meta) error {
		before := m.Clone()
		if err := fn(m); err != nil {
			return err
		}
		for _, action := range changeActions(&before, m) {
			if action == "publicize_image" || action == "communitize_image" {
				if err := i.g.visibility(m.Visibility, ImageTarget(before)); err != nil {
					if !i.g.allowed("get_image", ImageTarget(before)) {
						return imageNotFound(before.ID)
					}
					return err
				}
				continue
			}
			if err := i.g.enforce(action, before); err != nil {
				return err
			}
		}
		return nil
	})
}

// changeActions lists the policies a change from old to m needs, in the
// order Glance checks them.
func changeActions(old, m *domain.Meta) []string {
	var out []string
	if m.Visibility != old.Visibility {
		switch m.Visibility {
		case domain.VisibilityPublic:
			out = append(out, "publicize_image")
		case domain.VisibilityCommunity:
			out = append(out, "communitize_image")
		}
	}
	added, removed := locationChanges(old.Locations, m.Locations)
	a, b := old.Clone(), m.Clone()
	a.Locations, b.Locations = nil, nil
	if added || removed {
		// What a location change brings along (a queued image becoming
		// active with the values of the validation data) is part of it,
		// as in Glance's _do_add_locations.
		a.Status, a.Size, a.Checksum, a.HashAlgo, a.HashValue = b.Status, b.Size, b.Checksum, b.HashAlgo, b.HashValue
	}
	other := !reflect.DeepEqual(a, b)
	if other || (!added && !removed) {
		out = append(out, "modify_image")
	}
	if added {
		out = append(out, "set_image_location")
	}
	if removed {
		out = append(out, "delete_image_location")
	}
	return out
}

// locationChanges reports whether new locations appear (or existing ones
// change) and whether some disappear.
func locationChanges(old, cur []domain.Location) (added, removed bool) {
	byURL := func(ls []domain.Location) map[string]domain.Location {
		out := make(map[string]domain.Location, len(ls))
		for _, l := range ls {
			out[l.URL] = l
		}
		return out
	}
	o, c := byURL(old), byURL(cur)
	for u, l := range c {
		ol, ok := o[u]
		if !ok || !maps.EqualFunc(ol.Metadata, l.Metadata, func(x, y any) bool { return reflect.DeepEqual(x, y) }) {
			added = true
		}
	}
	for u := range o {
		if _, ok := c[u]; !ok {
			removed = true
		}
	}
	if !added && !removed && !slices.EqualFunc(old, cur, func(x, y domain.Location) bool { return x.URL == y.URL }) {
		added = true // reordered: a replace of the list
	}
	return added, removed
}

// Enforce checks action on the image as this layer sees it, for the
// location operations that have no method of their own on domain.Image
// (get_image_location, add_image_location, fetch_image_location). A refusal
// is ErrForbidden, or ErrNotFound when the caller may not see the image.
// Handlers find it by unwrapping the image they hold.
func (i *image) Enforce(action string) error { return i.g.enforce(action, i.Next.Meta()) }

// SetData checks upload_image.
func (i *image) SetData(ctx context.Context, r io.Reader, in domain.DataIn) error {
	if err := i.g.enforce("upload_image", i.Next.Meta()); err != nil {
		return err
	}
	return i.Image.SetData(ctx, r, in)
}

// Data checks download_image.
func (i *image) Data(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if err := i.g.enforce("download_image", i.Next.Meta()); err != nil {
		return nil, err
	}
	return i.Image.Data(ctx, off, n)
}

// Deactivate checks deactivate.
func (i *image) Deactivate(ctx context.Context) error {
	if err := i.g.enforce("deactivate", i.Next.Meta()); err != nil {
		return err
	}
	return i.Image.Deactivate(ctx)
}

// Reactivate checks reactivate.
func (i *image) Reactivate(ctx context.Context) error {
	if err := i.g.enforce("reactivate", i.Next.Meta()); err != nil {
		return err
	}
	return i.Image.Reactivate(ctx)
}

// Delete checks delete_image.
func (i *image) Delete(ctx context.Context) error {
	if err := i.g.enforce("delete_image", i.Next.Meta()); err != nil {
		return err
	}
	return i.Image.Delete(ctx)
}

// members checks the member policies of one image. Every call first needs
// get_image on the image (else the image is not found), as Glance's member
// API does.
type members struct {
	proxies.Members
	g   *guard
	img domain.Image
}

var _ domain.MemberRepo = (*members)(nil)

func (m *members) check(action string, t Target) error {
	meta := m.img.Meta()
	if !m.g.allowed("get_image", ImageTarget(meta)) {
		return domain.Errorf(domain.ErrNotFound, "Image %s not found.", meta.ID)
	}
	if !m.g.allowed(action, t) {
		return denied(action)
	}
	return nil
}

// List checks get_members, and keeps the members get_member allows.
func (m *members) List(ctx context.Context) ([]domain.Member, error) {
	t := ImageTarget(m.img.Meta())
	if err := m.check("get_members", t); err != nil {
		return nil, err
	}
	ms, err := m.Members.List(ctx)
	if err != nil {
		return nil, err
	}
	if !m.g.allowed("get_member", t) {
		return []domain.Member{}, nil
	}
	return ms, nil
}

// Get checks get_member. Any refusal is reported as not found.
func (m *members) Get(ctx context.Context, memberID string) (domain.Member, error) {
	meta := m.img.Meta()
	if err := m.check("get_member", ImageTarget(meta)); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return domain.Member{}, err
		}
		return domain.Member{}, domain.Errorf(domain.ErrNotFound,
			"%s not found in the member list of the image %s.", memberID, meta.ID)
	}
	return m.Members.Get(ctx, memberID)
}

// Add checks add_member.
func (m *members) Add(ctx context.Context, mb domain.Member) error {
	if err := m.check("add_member", ImageTarget(m.img.Meta())); err != nil {
		return err
	}
	return m.Members.Add(ctx, mb)
}

// Save checks modify_member, with the member being changed as member_id.
func (m *members) Save(ctx context.Context, mb domain.Member) error {
	t := ImageTarget(m.img.Meta())
	t.MemberID = mb.MemberID
	if err := m.check("modify_member", t); err != nil {
		return err
	}
	return m.Members.Save(ctx, mb)
}

// Remove checks delete_member.
func (m *members) Remove(ctx context.Context, mb domain.Member) error {
	if err := m.check("delete_member", ImageTarget(m.img.Meta())); err != nil {
		return err
	}
	return m.Members.Remove(ctx, mb)
}
