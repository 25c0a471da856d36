package propprotect

import (
	"context"
	"maps"
	"slices"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
)

func reserved(key string) error {
	return domain.Errorf(domain.ErrForbidden, "Attribute '%s' is reserved.", key)
}

// Layer returns the property-protection ring of the onion for caller c.
// Images it hands out show only the extra properties c may read; changes
// to extra properties need create, update or delete on each key changed.
func Layer(r *Rules, c *domain.Caller) proxies.Layer {
	wrap := func(img domain.Image) domain.Image {
		return &image{Image: proxies.Image{Next: img}, rules: r, caller: c}
	}
	return proxies.Layer{
		Name: "propprotect",
		Repo: func(next domain.Repo) domain.Repo {
			return proxies.Repo{Next: next, Wrap: wrap}
		},
		Factory: func(next domain.Factory) domain.Factory {
			return &factory{Factory: proxies.Factory{Next: next, Wrap: wrap}, rules: r, caller: c}
		},
	}
}

type factory struct {
	proxies.Factory
	rules  *Rules
	caller *domain.Caller
}

var _ domain.Factory = (*factory)(nil)

// NewImage needs create on every extra property of the new image.
func (f *factory) NewImage(ctx context.Context, m domain.Meta) (domain.Image, error) {
	for _, k := range slices.Sorted(maps.Keys(m.Properties)) {
		if !f.rules.Allowed(f.caller, k, OpCreate) {
			return nil, reserved(k)
		}
	}
	return f.Factory.NewImage(ctx, m)
}

type image struct {
	proxies.Image
	rules  *Rules
	caller *domain.Caller
}

var _ domain.Image = (*image)(nil)

// split returns the properties c may read and those it may not.
func (i *image) split(props map[string]string) (visible, hidden map[string]string) {
	visible, hidden = map[string]string{}, map[string]string{}
	for k, v := range props {
		if i.rules.Allowed(i.caller, k, OpRead) {
			visible[k] = v
		} else {
			hidden[k] = v
		}
	}
	return visible, hidden
}

// Meta omits the extra properties the caller may not read.
func (i *image) Meta() domain.Meta {
	m := i.Next.Meta()
	m.Properties, _ = i.split(m.Properties)
	return m
}

// Update shows fn only the properties the caller may read, checks each key
// fn creates, changes or removes, and puts the unreadable properties back
// untouched, so that saving never loses them.
func (i *image) Update(fn func(*domain.Meta) error) error {
	return i.Next.Update(func(m *domain.Meta) error {
		visible, hidden := i.split(m.Properties)
		before := maps.Clone(visible)
		m.Properties = visible
		if err := fn(m); err != nil {
			return err
		}
		if m.Properties == nil {
			m.Properties = map[string]string{}
		}
		for _, k := range slices.Sorted(maps.Keys(m.Properties)) {
			old, had := before[k]
			switch {
			case !had:
				if !i.rules.Allowed(i.caller, k, OpCreate) {
					return reserved(k)
				}
			case old != m.Properties[k]:
				if !i.rules.Allowed(i.caller, k, OpUpdate) {
					return reserved(k)
				}
			}
		}
		for _, k := range slices.Sorted(maps.Keys(before)) {
			if _, ok := m.Properties[k]; !ok && !i.rules.Allowed(i.caller, k, OpDelete) {
				return reserved(k)
			}
		}
		for k, v := range hidden {
			if _, set := m.Properties[k]; !set {
				m.Properties[k] = v
			}
		}
		return nil
	})
}
