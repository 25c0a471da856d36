package keystone

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// fakeKeystone is an identity v3 endpoint with just enough behaviour for
// the client: password logins for the service user and token validation.
type fakeKeystone struct {
	t   *testing.T
	srv *httptest.Server
	now func() time.Time

	mu sync.Mutex
	// users maps a valid token to its expiry; absent tokens are 404.
	tokens map[string]time.Time
	// serviceLife is how long a service login's token lives.
	serviceLife time.Duration
	logins      int
	gets        int
	// reject401 makes validation answer 401 to every service token
	// issued before the count of logins reaches it.
	reject401 int
	// status, when set, is the answer to every validation.
	status int
	// loginGate, when set, holds every login until it is closed.
	loginGate chan struct{}
}

func newFakeKeystone(t *testing.T, now func() time.Time) *fakeKeystone {
	f := &fakeKeystone{t: t, now: now, tokens: map[string]time.Time{}, serviceLife: time.Hour}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKeystone) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	gate := f.loginGate
	f.mu.Unlock()
	if gate != nil && r.Method == http.MethodPost {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v3/auth/tokens":
		var body struct {
			Auth struct {
				Identity struct {
					Password struct {
						User struct {
							Name, Password string
							Domain         struct{ ID, Name string }
						}
					}
				}
				Scope struct {
					Project struct {
						Name   string
						Domain struct{ ID, Name string }
					}
				}
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		u := body.Auth.Identity.Password.User
		if u.Name != "glance" || u.Password != "secret" || u.Domain.Name != "Default" ||
			body.Auth.Scope.Project.Name != "service" || body.Auth.Scope.Project.Domain.ID != "default" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprint(w, `{"error": {"code": 401}}`)
			return
		}
		f.logins++
		tok := fmt.Sprintf("service-%d", f.logins)
		exp := f.now().Add(f.serviceLife)
		f.tokens[tok] = exp
		w.Header().Set("X-Subject-Token", tok)
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, `{"token": {"expires_at": %q, "project": {"id": "svc"}, "user": {"id": "glance"},
			"roles": [{"name": "service"}], "catalog": [{"type": "identity", "endpoints": [
			{"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": %q},
			{"interface": "internal", "region_id": "RegionOne", "region": "RegionOne", "url": %q}]}]}}`,
			exp.UTC().Format(time.RFC3339Nano), f.srv.URL+"/v3", f.srv.URL+"/v3")
	case r.Method == http.MethodGet && r.URL.Path == "/v3/auth/tokens":
		f.gets++
		if f.status != 0 {
			w.WriteHeader(f.status)
			return
		}
		caller := r.Header.Get("X-Auth-Token")
		exp, ok := f.tokens[caller]
		var n int
		_, _ = fmt.Sscanf(caller, "service-%d", &n)
		if !ok || !strings.HasPrefix(caller, "service-") || !f.now().Before(exp) || n < f.reject401 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		subject := r.Header.Get("X-Subject-Token")
		exp, ok = f.tokens[subject]
		if !ok || (!f.now().Before(exp) && r.URL.Query().Get("allow_expired") == "") {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_, _ = fmt.Fprintf(w, `{"token": {"expires_at": %q, "project": {"id": "p-%s"}, "user": {"id": "u-%s"},
			"roles": [{"name": "Member"}, {"name": "reader"}]}}`, exp.UTC().Format(time.RFC3339Nano), subject, subject)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeKeystone) counts() (logins, gets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins, f.gets
}

func (f *fakeKeystone) issue(token string, life time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = f.now().Add(life)
}

// clock is a settable time for the client and the fake alike.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClient(t *testing.T, url string, clk *clock, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{AuthURL: url + "/v3", AuthType: "password", Username: "glance", Password: "secret",
		UserDomainName: "Default", ProjectName: "service", Interface: "public", TokenCacheTime: 300}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.now = clk.now
	return c
}

func TestValidate(t *testing.T) {
	clk := &clock{t: time.Now()}
	ks := newFakeKeystone(t, clk.now)
	c := newClient(t, ks.srv.URL, clk, nil)
	ctx := context.Background()
	ks.issue("user-1", time.Hour)

	tok, err := c.Validate(ctx, " user-1 ", false)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ProjectID != "p-user-1" || tok.UserID != "u-user-1" || strings.Join(tok.Roles, ",") != "member,reader" {
		t.Errorf("token %+v", tok)
	}
	if _, err := c.Validate(ctx, "user-1", false); err != nil {
		t.Fatal(err)
	}
	if logins, gets := ks.counts(); logins != 1 || gets != 1 {
		t.Errorf("after two validations: %d logins, %d GETs; want 1 and 1 (the second from the cache)", logins, gets)
	}
	// The cache is keyed by the token's hash, never by the token.
	if _, ok := c.cache.items[sha256.Sum256([]byte("user-1"))]; !ok || c.cache.len() != 1 {
		t.Errorf("cache keys do not hold the token's SHA-256")
	}

	if _, err := c.Validate(ctx, "unknown", false); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("unknown token: %v, want ErrInvalidToken", err)
	}
	if _, err := c.Validate(ctx, "", false); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("empty token: %v, want ErrInvalidToken", err)
	}

	// token_cache_time passes: Keystone is asked again.
	clk.advance(301 * time.Second)
	if _, err := c.Validate(ctx, "user-1", false); err != nil {
		t.Fatal(err)
	}
	if _, gets := ks.counts(); gets != 3 { // user-1, unknown, user-1 again
		t.Errorf("%d GETs after the cache entry ended, want 3", gets)
	}
}

func TestValidateExpiry(t *testing.T) {
	clk := &clock{t: time.Now()}
	ks := newFakeKeystone(t, clk.now)
	c := newClient(t, ks.srv.URL, clk, nil)
	ctx := context.Background()
	ks.issue("short", 10*time.Second)
	if _, err := c.Validate(ctx, "short", false); err != nil {
		t.Fatal(err)
	}
	// Cached for less than token_cache_time: never past expires_at.
	clk.advance(10 * time.Second)
	if _, err := c.Validate(ctx, "short", false); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("expired token: %v, want ErrInvalidToken", err)
	}
	// allow_expired (a user token with a service token) is asked of Keystone.
	if tok, err := c.Validate(ctx, "short", true); err != nil || tok.ProjectID != "p-short" {
		t.Errorf("expired token, allow_expired: %+v, %v", tok, err)
	}
	// The expiry check also applies to an entry still in the cache.
	c.cache.put(sha256.Sum256([]byte("stale")), &Token{ExpiresAt: clk.now().Add(-time.Second)}, clk.now().Add(-2*time.Second))
	if _, err := c.Validate(ctx, "stale", false); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("cached expired token: %v, want ErrInvalidToken", err)
	}
}

func TestValidateNoCache(t *testing.T) {
	clk := &clock{t: time.Now()}
	ks := newFakeKeystone(t, clk.now)
	c := newClient(t, ks.srv.URL, clk, func(cfg *Config) { cfg.TokenCacheTime = -1 })
	ks.issue("user-1", time.Hour)
	for range 3 {
		if _, err := c.Validate(context.Background(), "user-1", false); err != nil {
			t.Fatal(err)
		}
	}
	if _, gets := ks.counts(); gets != 3 || c.cache.len() != 0 {
		t.Errorf("token_cache_time = -1: %d GETs, %d cached; want 3 and 0", gets, c.cache.len())
	}
}

func TestServiceReauth(t *testing.T) {
	clk := &clock{t: time.Now()}
	ks := newFakeKeystone(t, clk.now)
	ks.serviceLife = time.Minute
	c := newClient(t, ks.srv.URL, clk, func(cfg *Config) { cfg.TokenCacheTime = -1 })
	ctx := context.Background()
	ks.issue("user-1", 24*time.Hour)
	if _, err := c.Validate(ctx, "user-1", false); err != nil {
		t.Fatal(err)
	}
	// The service token is about to expire: a new login comes first.
	clk.advance(55 * time.Second)
	if _, err := c.Validate(ctx, "user-1", false); err != nil {
		t.Fatal(err)
	}
	if logins, _ := ks.counts(); logins != 2 {
		t.Errorf("%d logins after the service token neared its expiry, want 2", logins)
	}
	// Keystone refuses the service token (revoked, keys rotated): 401,
	// a new login, and the validation is tried again.
	ks.mu.Lock()
	ks.reject401 = 3
	ks.mu.Unlock()
	if _, err := c.Validate(ctx, "user-1", false); err != nil {
		t.Fatalf("after a 401 for the service token: %v", err)
	}
	if logins, _ := ks.counts(); logins != 3 {
		t.Errorf("%d logins after a 401, want 3", logins)
	}
	// Keystone keeps refusing: Keystone is unusable, the token is not to blame.
	ks.mu.Lock()
	ks.reject401 = 1 << 30
	ks.mu.Unlock()
	if _, err := c.Validate(ctx, "user-1", false); !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("service user refused: %v, want ErrUnavailable", err)
	}
}

func TestUnavailable(t *testing.T) {
	clk := &clock{t: time.Now()}
	ks := newFakeKeystone(t, clk.now)
	c := newClient(t, ks.srv.URL, clk, nil)
	ks.issue("user-1", time.Hour)
	ks.status = http.StatusInternalServerError
	if _, err := c.Validate(context.Background(), "user-1", false); !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("Keystone answers 500: %v, want ErrUnavailable", err)
	}

	// Nothing listens: the request is tried again, then given up.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	down := newClient(t, "http://"+addr, clk, func(cfg *Config) { cfg.HTTPRequestMaxRetries = 1 })
	if _, err := down.Validate(context.Background(), "user-1", false); !errors.Is(err, domain.ErrUnavailable) ||
		errors.Is(err, ErrInvalidToken) {
		t.Errorf("Keystone unreachable: %v, want ErrUnavailable", err)
	}
}

func TestCacheBound(t *testing.T) {
	c := newCache(2, time.Minute)
	now := time.Now()
	for i := range 5 {
		c.put(sha256.Sum256([]byte{byte(i)}), &Token{ExpiresAt: now.Add(time.Hour)}, now)
	}
	if c.len() != 2 {
		t.Errorf("%d entries, want the limit of 2", c.len())
	}
	if _, ok := c.get(sha256.Sum256([]byte{4}), now); !ok {
		t.Errorf("the newest entry was evicted")
	}
	if _, ok := c.get(sha256.Sum256([]byte{0}), now); ok {
		t.Errorf("the oldest entry survived")
	}
	// A token that expires before the entry would is not kept past it.
	c.put(sha256.Sum256([]byte("soon")), &Token{ExpiresAt: now.Add(time.Second)}, now)
	if _, ok := c.get(sha256.Sum256([]byte("soon")), now.Add(2*time.Second)); ok {
		t.Errorf("an entry outlived its token")
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{AuthURL: "http://ks/v3", AuthType: "password", Username: "glance", Password: "x", ProjectName: "service"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.AuthType = "v3token" }, "auth_type = v3token is not supported"},
		{func(c *Config) { c.AuthType = "" }, "auth_type is not set"},
		{func(c *Config) { c.AuthURL = "" }, "auth_url is not set"},
		{func(c *Config) { c.ProjectName = "" }, "project_name is not set"},
		{func(c *Config) { c.Interface = "private" }, "interface = private"},
	} {
		c := good
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

// TestLoginHoldsNoLock: while the service user's first login hangs, the
// validations that arrive meanwhile give up with their own context instead
// of queueing behind it, and the one login serves every caller once
// Keystone answers.
func TestLoginHoldsNoLock(t *testing.T) {
	clk := &clock{t: time.Now()}
	ks := newFakeKeystone(t, clk.now)
	gate := make(chan struct{})
	ks.mu.Lock()
	ks.loginGate = gate
	ks.mu.Unlock()
	c := newClient(t, ks.srv.URL, clk, nil)
	ks.issue("user-1", time.Hour)

	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := c.Validate(ctx, "user-1", false)
		first <- err
	}()
	time.Sleep(100 * time.Millisecond) // the first login is under way
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			if _, err := c.Validate(ctx, "user-1", false); err == nil {
				t.Error("validation during a hung login succeeded")
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("validation during a hung login returned after %v, want about its 200ms deadline", took)
			}
		}()
	}
	wg.Wait()
	close(gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Validate(context.Background(), "user-1", false); err != nil {
		t.Fatal(err)
	}
	if logins, _ := ks.counts(); logins != 1 {
		t.Errorf("%d logins, want 1", logins)
	}
}
