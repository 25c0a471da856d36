// Package proxies holds the pass-through bases that every layer of the
// gateway's onion embeds (glance/domain/proxy.py). Forwarding is written here
// once: a layer embeds Repo, Image, Factory or Members and overrides only the
// methods it polices.
//
// Images leave a layer's Repo and Factory wrapped by that layer's Wrap func,
// and come back into Add, Save and Remove unwrapped one level, so that the
// database always receives the core image.
package proxies

import (
	"context"
	"io"

	"github.com/glance-go/glance-go/domain"
)

// Repo forwards every domain.Repo call to Next. When Wrap is set, images
// going out are wrapped by it and images coming in are unwrapped once.
type Repo struct {
	Next domain.Repo
	Wrap func(domain.Image) domain.Image // nil: the layer polices repo calls only
}

var _ domain.Repo = Repo{}

func (r Repo) wrap(img domain.Image) domain.Image {
	if r.Wrap == nil || img == nil {
		return img
	}
	return r.Wrap(img)
}

func (r Repo) unwrap(img domain.Image) domain.Image {
	if r.Wrap == nil {
		return img
	}
	return img.Unwrap()
}

// Get implements domain.Repo.
func (r Repo) Get(ctx context.Context, id string) (domain.Image, error) {
	img, err := r.Next.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.wrap(img), nil
}

// List implements domain.Repo.
func (r Repo) List(ctx context.Context, q domain.ListQuery) (domain.Page, error) {
	p, err := r.Next.List(ctx, q)
	if err != nil {
		return p, err
	}
	if r.Wrap != nil {
		for i, img := range p.Images {
			p.Images[i] = r.Wrap(img)
		}
	}
	return p, nil
}

// Add implements domain.Repo.
func (r Repo) Add(ctx context.Context, img domain.Image) error {
	return r.Next.Add(ctx, r.unwrap(img))
}

// Save implements domain.Repo.
func (r Repo) Save(ctx context.Context, img domain.Image, from domain.Status) error {
	return r.Next.Save(ctx, r.unwrap(img), from)
}

// Remove implements domain.Repo.
func (r Repo) Remove(ctx context.Context, img domain.Image) error {
	return r.Next.Remove(ctx, r.unwrap(img))
}

// Image forwards every domain.Image call to Next.
type Image struct {
	Next domain.Image
}

var _ domain.Image = Image{}

// Meta implements domain.Image.
func (i Image) Meta() domain.Meta { return i.Next.Meta() }

// Update implements domain.Image.
func (i Image) Update(fn func(*domain.Meta) error) error { return i.Next.Update(fn) }

// SetData implements domain.Image.
func (i Image) SetData(ctx context.Context, r io.Reader, in domain.DataIn) error {
	return i.Next.SetData(ctx, r, in)
}

// Stage implements domain.Image.
func (i Image) Stage(ctx context.Context, r io.Reader, in domain.DataIn) error {
	return i.Next.Stage(ctx, r, in)
}

// Data implements domain.Image.
func (i Image) Data(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	return i.Next.Data(ctx, off, n)
}

// Deactivate implements domain.Image.
func (i Image) Deactivate(ctx context.Context) error { return i.Next.Deactivate(ctx) }

// Reactivate implements domain.Image.
func (i Image) Reactivate(ctx context.Context) error { return i.Next.Reactivate(ctx) }

// Delete implements domain.Image.
func (i Image) Delete(ctx context.Context) error { return i.Next.Delete(ctx) }

// Unwrap returns Next.
func (i Image) Unwrap() domain.Image { return i.Next }

// Factory forwards NewImage to Next and wraps the result with Wrap.
type Factory struct {
	Next domain.Factory
	Wrap func(domain.Image) domain.Image
}

var _ domain.Factory = Factory{}

// NewImage implements domain.Factory.
func (f Factory) NewImage(ctx context.Context, m domain.Meta) (domain.Image, error) {
	img, err := f.Next.NewImage(ctx, m)
	if err != nil || f.Wrap == nil {
		return img, err
	}
	return f.Wrap(img), nil
}

// Members forwards every domain.MemberRepo call to Next.
type Members struct {
	Next domain.MemberRepo
}

var _ domain.MemberRepo = Members{}

// List implements domain.MemberRepo.
func (m Members) List(ctx context.Context) ([]domain.Member, error) { return m.Next.List(ctx) }

// Get implements domain.MemberRepo.
func (m Members) Get(ctx context.Context, id string) (domain.Member, error) {
	return m.Next.Get(ctx, id)
}

// Add implements domain.MemberRepo.
func (m Members) Add(ctx context.Context, mb domain.Member) error { return m.Next.Add(ctx, mb) }

// Save implements domain.MemberRepo.
func (m Members) Save(ctx context.Context, mb domain.Member) error { return m.Next.Save(ctx, mb) }

// Remove implements domain.MemberRepo.
func (m Members) Remove(ctx context.Context, mb domain.Member) error {
	return m.Next.Remove(ctx, mb)
}

// Layer is one ring of the onion: how it wraps the image repo, the image
// factory and an image's member repo. A nil func leaves that chain as it is.
type Layer struct {
	Name    string
	Repo    func(domain.Repo) domain.Repo
	Factory func(domain.Factory) domain.Factory
	// Members wraps the member repo of img, the image as the outermost layer
	// hands it out.
	Members func(img domain.Image, next domain.MemberRepo) domain.MemberRepo
}

// Stack wraps repo and factory in layers, innermost first.
func Stack(repo domain.Repo, factory domain.Factory, layers ...Layer) (domain.Repo, domain.Factory) {
	for _, l := range layers {
		if l.Repo != nil {
			repo = l.Repo(repo)
		}
		if l.Factory != nil {
			factory = l.Factory(factory)
		}
	}
	return repo, factory
}

// StackMembers wraps the member repo of img in layers, innermost first.
func StackMembers(img domain.Image, members domain.MemberRepo, layers ...Layer) domain.MemberRepo {
	for _, l := range layers {
		if l.Members != nil {
			members = l.Members(img, members)
		}
	}
	return members
}
