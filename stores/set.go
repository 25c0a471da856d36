package stores

import (
	"fmt"
	"strings"
)

// Set is the group of configured drivers: one default driver that receives
// new data, and any others that serve existing locations by URL scheme.
type Set struct {
	def     Driver
	schemes map[string]Driver
}

// NewSet returns a Set whose new data goes to def. Every driver, def first,
// serves the schemes it lists; when two drivers list the same scheme, the
// earlier one wins.
func NewSet(def Driver, others ...Driver) *Set {
	s := &Set{def: def, schemes: map[string]Driver{}}
	for _, d := range append([]Driver{def}, others...) {
		if d == nil {
			continue
		}
		for _, sc := range d.Schemes() {
			sc = strings.ToLower(sc)
			if _, ok := s.schemes[sc]; !ok {
				s.schemes[sc] = d
			}
		}
	}
	return s
}

// Default returns the driver where new image data goes.
func (s *Set) Default() Driver { return s.def }

// ForURL returns the driver that serves a location URL, chosen by its
// scheme. It returns ErrUnknownScheme when no driver serves it.
func (s *Set) ForURL(url string) (Driver, error) {
	sc, _, ok := strings.Cut(url, "://")
	if !ok || sc == "" {
		return nil, fmt.Errorf("%w: %q", ErrUnknownScheme, url)
	}
	d, ok := s.schemes[strings.ToLower(sc)]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownScheme, sc)
	}
	return d, nil
}
