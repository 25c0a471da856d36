package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/glance-go/glance-go/domain"
)

// TokenValidator checks Keystone tokens (package keystone implements it).
type TokenValidator interface {
	// ValidateToken returns the project, user and lower-cased roles of a
	// valid token. allowExpired accepts a token past its expiry. It
	// returns an error wrapping domain.ErrUnavailable when Keystone could
	// not be asked, and any other error for a token that is not valid.
	ValidateToken(ctx context.Context, token string, allowExpired bool) (*domain.Caller, error)
}

// KeystoneOptions are the [keystone_authtoken] options that decide what
// auth_token does with a request.
type KeystoneOptions struct {
	// WWWAuthenticateURI is www_authenticate_uri (or auth_uri), named by
	// the WWW-Authenticate header of every 401.
	WWWAuthenticateURI string
	// ServiceTokenRoles is service_token_roles: an X-Service-Token must
	// hold one of them to count as a service token.
	ServiceTokenRoles []string
	// ServiceTokenRolesRequired is service_token_roles_required: a service
	// token without those roles makes the request fail.
	ServiceTokenRolesRequired bool
	// DelayAuthDecision is delay_auth_decision: a request without a valid
	// token goes on to Glance's context filter, which answers 401 itself.
	DelayAuthDecision bool
	// IsAdmin decides context_is_admin; nil means "has role admin".
	IsAdmin func(*domain.Caller) bool
	Logger  *slog.Logger
}

// Keystone is the keystone flavor: keystonemiddleware's auth_token followed
// by Glance's context filter (keystonemiddleware/auth_token/__init__.py,
// glance/api/middleware/context.py). The user token comes from X-Auth-Token
// (or X-Storage-Token), an optional service token from X-Service-Token;
// identity headers sent by the client (X-Roles, X-Project-Id, ...) are
// never read. A missing or refused token answers 401 with auth_token's JSON
// body and WWW-Authenticate: Keystone uri="..."; Keystone out of reach
// answers 503.
func Keystone(v TokenValidator, o KeystoneOptions) Authenticator {
	if o.IsAdmin == nil {
		o.IsAdmin = func(c *domain.Caller) bool { return c.HasRole("admin") }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &keystoneAuth{v: v, o: o}
}

type keystoneAuth struct {
	v      TokenValidator
	o      KeystoneOptions
	warned sync.Once
}

const keystoneUnauthorized = `{"error": {"code": 401, "title": "Unauthorized", ` +
	`"message": "The request you have made requires authentication."}}`

func (k *keystoneAuth) Authenticate(r *http.Request) (*domain.Caller, error) {
	ctx := r.Context()
	var serviceRoles []string
	allowExpired := false
	if st := strings.TrimSpace(r.Header.Get("X-Service-Token")); st != "" {
		svc, err := k.v.ValidateToken(ctx, st, false)
		if err != nil {
			return nil, k.refuse(err, "invalid service token")
		}
		passed := false
		for _, want := range k.o.ServiceTokenRoles {
			if svc.HasRole(want) {
				passed = true
			}
		}
		if k.o.ServiceTokenRolesRequired && !passed {
			return nil, k.refuse(errors.New("the service token has none of service_token_roles"), "invalid service token")
		}
		if !passed {
			k.warned.Do(func() {
				k.o.Logger.Warn("a valid token was sent as a service token without any of service_token_roles; " +
					"it is accepted because service_token_roles_required is false")
			})
		}
		serviceRoles = svc.Roles
		allowExpired = passed
	}
	ut := strings.TrimSpace(r.Header.Get("X-Auth-Token"))
	if ut == "" {
		ut = strings.TrimSpace(r.Header.Get("X-Storage-Token"))
	}
	if ut == "" {
		return nil, k.refuse(errors.New("no X-Auth-Token"), "no user token")
	}
	c, err := k.v.ValidateToken(ctx, ut, allowExpired)
	if err != nil {
		return nil, k.refuse(err, "invalid user token")
	}
	caller := &domain.Caller{ProjectID: c.ProjectID, UserID: c.UserID, Roles: c.Roles, ServiceRoles: serviceRoles}
	caller.IsAdmin = k.o.IsAdmin(caller)
	return caller, nil
}

// refuse turns a failed validation into auth_token's answer: 503 when
// Keystone was out of reach, 401 otherwise. With delay_auth_decision both
// go on to the context filter, whose 401 is webob's.
func (k *keystoneAuth) refuse(err error, what string) error {
	header := http.Header{"Www-Authenticate": {`Keystone uri="` + k.o.WWWAuthenticateURI + `"`}}
	unavailable := errors.Is(err, domain.ErrUnavailable)
	if k.o.DelayAuthDecision {
		return &httpError{status: http.StatusUnauthorized, header: header, err: err}
	}
	if unavailable {
		return &httpError{status: http.StatusServiceUnavailable, detail: "The Keystone service is temporarily unavailable.", err: err}
	}
	k.o.Logger.Info("rejecting request", "reason", what, "error", err)
	return &httpError{status: http.StatusUnauthorized, header: header, err: err,
		rawType: "application/json; charset=UTF-8", raw: keystoneUnauthorized}
}
