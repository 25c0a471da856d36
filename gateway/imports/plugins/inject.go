package plugins

import (
	"context"
	"maps"
	"strings"

	"github.com/glance-go/glance-go/domain"
)

// reservedPrefix marks the properties Glance keeps for itself; injection
// never sets them.
const reservedPrefix = "os_glance"

// inject is Glance's inject_image_metadata plugin
// (glance/async_/flows/plugins/inject_image_metadata.py): it sets the
// configured properties on the image, unless the caller holds one of the
// ignored roles. Keys in the os_glance namespace are dropped, as Glance's
// set_image_extra_properties drops them.
type inject struct {
	props  map[string]string
	ignore []string
}

func (p *inject) Name() string { return NameInject }

func (p *inject) Run(_ context.Context, s *Staged) (func(*domain.Meta) error, error) {
	if s.Caller != nil {
		for _, role := range p.ignore {
			if s.Caller.HasRole(role) {
				return nil, nil
			}
		}
	}
	props := map[string]string{}
	for k, v := range p.props {
		if !strings.HasPrefix(k, reservedPrefix) {
			props[k] = v
		}
	}
	if len(props) == 0 {
		return nil, nil
	}
	return apply(s, func(m *domain.Meta) error {
		if m.Properties == nil {
			m.Properties = map[string]string{}
		}
		maps.Copy(m.Properties, props)
		return nil
	})
}
