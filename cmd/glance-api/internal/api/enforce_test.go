package api

import (
	"errors"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

// TestEnforceFailsClosed: a location operation on an image whose chain has
// no policy ring is refused, not allowed.
func TestEnforceFailsClosed(t *testing.T) {
	img := domain.NewImage(domain.Meta{ID: "i1", Status: domain.StatusActive})
	for _, action := range []string{"get_image_location", "delete_image_location", "fetch_image_location", "add_image_location"} {
		if err := enforce(img, action); !errors.Is(err, domain.ErrForbidden) {
			t.Errorf("%s without a policy ring: %v, want ErrForbidden", action, err)
		}
	}
}
