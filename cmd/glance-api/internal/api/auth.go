package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/glance-go/glance-go/domain"
)

// AuthFunc adapts a function to the Authenticator interface.
type AuthFunc func(r *http.Request) (*domain.Caller, error)

// Authenticate implements Authenticator.
func (f AuthFunc) Authenticate(r *http.Request) (*domain.Caller, error) { return f(r) }

// NoAuth is Glance's unauthenticated-context: every request is an admin with
// no project and no user; identity headers are ignored.
func NoAuth() Authenticator {
	return AuthFunc(func(*http.Request) (*domain.Caller, error) {
		return &domain.Caller{IsAdmin: true}, nil
	})
}

// errNotConfirmed is returned when X-Identity-Status is not Confirmed.
var errNotConfirmed = errors.New("identity not confirmed")

// TrustedHeaders trusts the identity headers that keystonemiddleware sets
// (Glance's "context" filter): X-Identity-Status must be Confirmed, the
// project comes from X-Project-Id (or X-Tenant-Id), roles from X-Roles,
// lower-cased. isAdmin decides context_is_admin; nil means "has role admin".
func TrustedHeaders(isAdmin func(*domain.Caller) bool) Authenticator {
	if isAdmin == nil {
		isAdmin = func(c *domain.Caller) bool { return c.HasRole("admin") }
	}
	return AuthFunc(func(r *http.Request) (*domain.Caller, error) {
		if r.Header.Get("X-Identity-Status") != "Confirmed" {
			return nil, errNotConfirmed
		}
		c := &domain.Caller{
			ProjectID:    r.Header.Get("X-Project-Id"),
			UserID:       r.Header.Get("X-User-Id"),
			Roles:        roleList(r.Header.Get("X-Roles")),
			ServiceRoles: roleList(r.Header.Get("X-Service-Roles")),
		}
		if c.ProjectID == "" {
			c.ProjectID = r.Header.Get("X-Tenant-Id")
		}
		c.IsAdmin = isAdmin(c)
		return c, nil
	})
}

func roleList(h string) []string {
	var out []string
	for _, r := range strings.Split(h, ",") {
		if r = strings.ToLower(strings.TrimSpace(r)); r != "" {
			out = append(out, r)
		}
	}
	return out
}
