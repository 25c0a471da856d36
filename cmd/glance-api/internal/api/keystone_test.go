package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

// fakeValidator knows a fixed set of tokens; "down" stands for Keystone
// out of reach.
type fakeValidator map[string]*domain.Caller

func (f fakeValidator) ValidateToken(_ context.Context, token string, allowExpired bool) (*domain.Caller, error) {
	if token == "down" {
		return nil, fmt.Errorf("%w: connection refused", domain.ErrUnavailable)
	}
	if token == "expired" && allowExpired {
		return &domain.Caller{ProjectID: "p-exp", Roles: []string{"member"}}, nil
	}
	c, ok := f[token]
	if !ok {
		return nil, errors.New("token authorization failed")
	}
	cp := *c
	return &cp, nil
}

var keystoneTokens = fakeValidator{
	"member": {ProjectID: "p1", UserID: "u1", Roles: []string{"member", "reader"}},
	"admin":  {ProjectID: "p0", UserID: "u0", Roles: []string{"admin", "member", "reader"}},
	"svc":    {ProjectID: "service", UserID: "glance", Roles: []string{"service", "admin"}},
	"nosvc":  {ProjectID: "p2", UserID: "u2", Roles: []string{"member"}},
}

func TestKeystoneAuth(t *testing.T) {
	const uri = `Keystone uri="https://keystone.example.com"`
	for _, tc := range []struct {
		name       string
		opts       KeystoneOptions
		headers    []string
		wantStatus int
		wantBody   string // substring
		wantWWW    string
	}{
		{name: "no token", headers: nil, wantStatus: 401, wantBody: keystoneUnauthorized, wantWWW: uri},
		{name: "trusted headers are no token", headers: admin, wantStatus: 401, wantBody: keystoneUnauthorized, wantWWW: uri},
		{name: "unknown token", headers: []string{"X-Auth-Token", "nope"}, wantStatus: 401, wantWWW: uri},
		{name: "member", headers: []string{"X-Auth-Token", "member"}, wantStatus: 200},
		{name: "X-Storage-Token", headers: []string{"X-Storage-Token", "member"}, wantStatus: 200},
		{name: "Keystone down", headers: []string{"X-Auth-Token", "down"}, wantStatus: 503,
			wantBody: "The Keystone service is temporarily unavailable."},
		{name: "Keystone down, delayed decision", opts: KeystoneOptions{DelayAuthDecision: true},
			headers: []string{"X-Auth-Token", "down"}, wantStatus: 401, wantBody: unauthorizedText, wantWWW: uri},
		{name: "bad token, delayed decision", opts: KeystoneOptions{DelayAuthDecision: true},
			headers: []string{"X-Auth-Token", "nope"}, wantStatus: 401, wantBody: unauthorizedText, wantWWW: uri},
		{name: "valid service token", opts: KeystoneOptions{ServiceTokenRoles: []string{"service"}},
			headers: []string{"X-Auth-Token", "member", "X-Service-Token", "svc"}, wantStatus: 200},
		{name: "invalid service token", opts: KeystoneOptions{ServiceTokenRoles: []string{"service"}},
			headers: []string{"X-Auth-Token", "member", "X-Service-Token", "nope"}, wantStatus: 401, wantWWW: uri},
		{name: "service token without the roles", opts: KeystoneOptions{ServiceTokenRoles: []string{"service"}},
			headers: []string{"X-Auth-Token", "member", "X-Service-Token", "nosvc"}, wantStatus: 200},
		{name: "service token without the roles, required",
			opts:    KeystoneOptions{ServiceTokenRoles: []string{"service"}, ServiceTokenRolesRequired: true},
			headers: []string{"X-Auth-Token", "member", "X-Service-Token", "nosvc"}, wantStatus: 401, wantWWW: uri},
		{name: "expired user token with a service token", opts: KeystoneOptions{ServiceTokenRoles: []string{"service"}},
			headers: []string{"X-Auth-Token", "expired", "X-Service-Token", "svc"}, wantStatus: 200},
		{name: "expired user token with a non-service token", opts: KeystoneOptions{ServiceTokenRoles: []string{"service"}},
			headers: []string{"X-Auth-Token", "expired", "X-Service-Token", "nosvc"}, wantStatus: 401, wantWWW: uri},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.WWWAuthenticateURI = "https://keystone.example.com"
			h := newHarness(t, Options{Auth: Keystone(keystoneTokens, o)})
			w := h.do(http.MethodGet, "/v2/images", "", append(tc.headers, "Accept", "application/json")...)
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
			if !strings.Contains(w.Body.String(), tc.wantBody) {
				t.Errorf("body %s, want it to contain %s", w.Body, tc.wantBody)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.wantWWW {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.wantWWW)
			}
			if tc.wantBody == keystoneUnauthorized && w.Header().Get("Content-Type") != "application/json; charset=UTF-8" {
				t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
			}
		})
	}
}

// TestKeystoneCaller checks the caller built from the tokens: identity
// headers are ignored, admin comes from the policy, service roles from the
// service token.
func TestKeystoneCaller(t *testing.T) {
	var got *domain.Caller
	auth := Keystone(keystoneTokens, KeystoneOptions{ServiceTokenRoles: []string{"service"},
		IsAdmin: func(c *domain.Caller) bool { return c.HasRole("admin") }})
	capture := AuthFunc(func(r *http.Request) (*domain.Caller, error) {
		c, err := auth.Authenticate(r)
		got = c
		return c, err
	})
	h := newHarness(t, Options{Auth: capture})
	h.do(http.MethodGet, "/v2/images", "", with(admin, "X-Auth-Token", "member", "X-Service-Roles", "admin")...)
	if got == nil || got.ProjectID != "p1" || got.UserID != "u1" || got.IsAdmin || len(got.ServiceRoles) != 0 ||
		strings.Join(got.Roles, ",") != "member,reader" {
		t.Errorf("member with spoofed headers: %+v", got)
	}
	h.do(http.MethodGet, "/v2/images", "", "X-Auth-Token", "admin", "X-Service-Token", "svc")
	if got == nil || !got.IsAdmin || strings.Join(got.ServiceRoles, ",") != "service,admin" {
		t.Errorf("admin with a service token: %+v", got)
	}
	got = nil
	w := h.do(http.MethodGet, "/versions", "")
	if w.Code != http.StatusOK || got != nil {
		t.Errorf("GET /versions: %d, authenticated %+v", w.Code, got)
	}
}
