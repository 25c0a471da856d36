// Package keystone validates Keystone v3 tokens for the keystone flavor of
// [paste_deploy], as keystonemiddleware's auth_token filter does in front of
// Glance (keystonemiddleware/auth_token/__init__.py, _identity.py,
// _cache.py): the service user logs in with a password, every token is
// checked with GET /v3/auth/tokens, and the answers are kept in a bounded
// in-process cache for token_cache_time.
//
// It is the only importer of gophercloud.
package keystone

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/glance-go/glance-go/domain"
)

// Config is what [keystone_authtoken] says about reaching Keystone. Field
// comments name the option.
type Config struct {
	AuthURL           string // auth_url: Keystone's identity endpoint, where the service user logs in
	AuthType          string // auth_type: only password is supported
	Username          string // username
	Password          string // password
	UserDomainName    string // user_domain_name
	UserDomainID      string // user_domain_id
	ProjectName       string // project_name
	ProjectID         string // project_id
	ProjectDomainName string // project_domain_name
	ProjectDomainID   string // project_domain_id
	RegionName        string // region_name: the region of the identity endpoint in the catalog
	Interface         string // interface: public, internal (default) or admin
	// TokenCacheTime is token_cache_time in seconds: how long a validated
	// token is trusted without asking Keystone again; -1 disables the cache.
	TokenCacheTime int
	// CacheSize bounds the number of cached tokens (glance-go's own; 0
	// means 10000).
	CacheSize int
	// HTTPConnectTimeout is http_connect_timeout in seconds, the limit of
	// one request to Keystone; 0 means defaultHTTPTimeout.
	HTTPConnectTimeout int
	// HTTPRequestMaxRetries is http_request_max_retries: how often a
	// request that could not reach Keystone is tried again.
	HTTPRequestMaxRetries int
	Insecure              bool   // insecure: do not verify Keystone's certificate
	CAFile                string // cafile: the CA bundle for Keystone's certificate
}

// Validate reports a configuration that cannot reach Keystone.
func (c Config) Validate() error {
	if c.AuthType != "password" {
		if c.AuthType == "" {
			return errors.New("[keystone_authtoken] auth_type is not set: glance-go supports auth_type = password")
		}
		return fmt.Errorf("[keystone_authtoken] auth_type = %s is not supported: glance-go supports auth_type = password", c.AuthType)
	}
	for _, o := range []struct{ name, value string }{
		{"auth_url", c.AuthURL}, {"username", c.Username}, {"password", c.Password},
	} {
		if o.value == "" {
			return fmt.Errorf("[keystone_authtoken] %s is not set: the keystone flavor needs it to validate tokens", o.name)
		}
	}
	if c.ProjectName == "" && c.ProjectID == "" {
		return errors.New("[keystone_authtoken] project_name is not set: the keystone flavor needs a project-scoped service user")
	}
	switch c.Interface {
	case "", "public", "internal", "admin":
	default:
		return fmt.Errorf("[keystone_authtoken] interface = %s: must be public, internal or admin", c.Interface)
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			return fmt.Errorf("[keystone_authtoken] cafile = %s: %v", c.CAFile, err)
		}
	}
	return nil
}

// ErrInvalidToken is returned for a token Keystone does not accept: unknown,
// malformed, expired or revoked.
var ErrInvalidToken = errors.New("keystone: token authorization failed")

// staleAfter is how long before its expiry the service user's token is
// replaced, so that a validation never goes out with a token that dies on
// the way.
const staleAfter = 10 * time.Second

// defaultHTTPTimeout bounds a call to Keystone when http_connect_timeout
// is unset.
const defaultHTTPTimeout = 30 * time.Second

// Client validates tokens against Keystone. It is safe for concurrent use.
type Client struct {
	cfg   Config
	log   *slog.Logger
	cache *cache
	http  *http.Client
	now   func() time.Time

	// mu guards provider, identity and login; it is never held across a
	// call to Keystone.
	mu       sync.Mutex
	provider *gophercloud.ProviderClient
	identity *gophercloud.ServiceClient
	login    *loginCall // the service user's first login, while it runs
}

// loginCall is one login of the service user, shared by every validation
// that needs it.
type loginCall struct {
	done     chan struct{}
	provider *gophercloud.ProviderClient
	identity *gophercloud.ServiceClient
	err      error
}

// New returns a Client for cfg. It does not contact Keystone: the service
// user logs in on the first validation, as auth_token does.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Interface == "" {
		cfg.Interface = "internal"
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.Insecure || cfg.CAFile != "" {
		tc := &tls.Config{InsecureSkipVerify: cfg.Insecure} // insecure: the operator's choice, as in keystonemiddleware
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("[keystone_authtoken] cafile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("[keystone_authtoken] cafile = %s holds no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	// Every call to Keystone is bounded: by http_connect_timeout, or by
	// defaultHTTPTimeout when it is unset.
	timeout := time.Duration(cfg.HTTPConnectTimeout) * time.Second
	if timeout <= 0 {
		timeout = defaultHTTPTimeout
	}
	hc := &http.Client{Transport: tr, Timeout: timeout}
	ttl := time.Duration(cfg.TokenCacheTime) * time.Second
	size := cfg.CacheSize
	if size <= 0 {
		size = 10000
	}
	return &Client{cfg: cfg, log: log, cache: newCache(size, ttl), http: hc, now: time.Now}, nil
}

// Token is what a valid token says about its bearer.
type Token struct {
	ProjectID string
	UserID    string
	Roles     []string // lower-cased
	ExpiresAt time.Time
}

// Validate returns the identity behind token. It returns an error wrapping
// ErrInvalidToken when Keystone refuses the token or it has expired (even
// when cached), and one wrapping domain.ErrUnavailable when Keystone cannot
// be asked: unreachable, or refusing the service user's own credentials.
// allowExpired asks Keystone to accept a token past its expiry (within
// Keystone's [token] allow_expired_window), which auth_token does for a user
// token that comes with a valid service token.
func (c *Client) Validate(ctx context.Context, token string, allowExpired bool) (*Token, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, ErrInvalidToken
	}
	key := sha256.Sum256([]byte(token))
	t, ok := c.cache.get(key, c.now())
	if !ok {
		var err error
		if t, err = c.fetch(ctx, token, allowExpired); err != nil {
			return nil, err
		}
		c.cache.put(key, t, c.now())
	}
	if !allowExpired && !c.now().Before(t.ExpiresAt) {
		return nil, fmt.Errorf("%w: the token expired at %s", ErrInvalidToken, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// fetch asks Keystone about token, retrying what did not reach it.
func (c *Client) fetch(ctx context.Context, token string, allowExpired bool) (*Token, error) {
	delay := 500 * time.Millisecond
	for attempt := 0; ; attempt++ {
		t, err := c.fetchOnce(ctx, token, allowExpired)
		if err == nil || errors.Is(err, ErrInvalidToken) || !unreached(err) || attempt >= c.cfg.HTTPRequestMaxRetries {
			if err != nil && !errors.Is(err, ErrInvalidToken) {
				c.log.Error("unable to validate token", "error", err)
				return nil, fmt.Errorf("%w: keystone: %v", domain.ErrUnavailable, err)
			}
			return t, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: keystone: %v", domain.ErrUnavailable, ctx.Err())
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// unreached reports whether err means the request never got an HTTP answer.
func unreached(err error) bool {
	var code gophercloud.ErrUnexpectedResponseCode
	return !errors.As(err, &code)
}

func (c *Client) fetchOnce(ctx context.Context, token string, allowExpired bool) (*Token, error) {
	id, err := c.identityClient(ctx)
	if err != nil {
		return nil, err
	}
	url := id.ServiceURL("auth", "tokens") + "?nocatalog=1"
	if allowExpired {
		url += "&allow_expired=1"
	}
	var r tokens.GetResult
	resp, err := id.Get(ctx, url, &r.Body, &gophercloud.RequestOpts{
		MoreHeaders: map[string]string{"X-Subject-Token": token},
		OkCodes:     []int{200, 203},
	})
	_, r.Header, r.Err = gophercloud.ParseResponse(resp, err)
	if r.Err != nil {
		if gophercloud.ResponseCodeIs(r.Err, http.StatusNotFound) {
			return nil, ErrInvalidToken
		}
		return nil, r.Err
	}
	return parseToken(r)
}

func parseToken(r tokens.GetResult) (*Token, error) {
	tok, err := r.ExtractToken()
	if err != nil {
		return nil, fmt.Errorf("%w: unreadable token data: %v", ErrInvalidToken, err)
	}
	user, err := r.ExtractUser()
	if err != nil {
		return nil, fmt.Errorf("%w: unreadable token data: %v", ErrInvalidToken, err)
	}
	project, err := r.ExtractProject()
	if err != nil {
		return nil, fmt.Errorf("%w: unreadable token data: %v", ErrInvalidToken, err)
	}
	roles, err := r.ExtractRoles()
	if err != nil {
		return nil, fmt.Errorf("%w: unreadable token data: %v", ErrInvalidToken, err)
	}
	if tok.ExpiresAt.IsZero() {
		return nil, fmt.Errorf("%w: the token has no expires_at", ErrInvalidToken)
	}
	t := &Token{UserID: user.ID, ExpiresAt: tok.ExpiresAt}
	if project != nil {
		t.ProjectID = project.ID
	}
	for _, ro := range roles {
		t.Roles = append(t.Roles, strings.ToLower(ro.Name))
	}
	return t, nil
}

// identityClient returns the identity service client of the service user,
// logging in first when there is no token yet or it is about to expire.
// gophercloud logs in again by itself when Keystone answers 401. Callers
// that arrive while the first login runs wait for it, or for their ctx.
func (c *Client) identityClient(ctx context.Context) (*gophercloud.ServiceClient, error) {
	c.mu.Lock()
	if c.identity != nil {
		pc, id := c.provider, c.identity
		c.mu.Unlock()
		exp := pc.TokenExpiry()
		if exp.IsZero() || c.now().Add(staleAfter).Before(exp) {
			return id, nil
		}
		// gophercloud lets one of the callers that find the token stale
		// log in, and the others wait for it.
		if err := pc.Reauthenticate(ctx, pc.Token()); err != nil {
			return nil, fmt.Errorf("service user login: %w", err)
		}
		return id, nil
	}
	call := c.login
	if call == nil {
		call = &loginCall{done: make(chan struct{})}
		c.login = call
		// The login outlives a caller that gives up; the HTTP client's
		// timeout bounds it.
		go c.logIn(context.WithoutCancel(ctx), call)
	}
	c.mu.Unlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return call.identity, call.err
}

// logIn logs the service user in for call, keeps the clients when it
// succeeds, and lets the next caller try again when it fails.
func (c *Client) logIn(ctx context.Context, call *loginCall) {
	call.provider, call.identity, call.err = c.newIdentity(ctx)
	c.mu.Lock()
	if call.err == nil {
		c.provider, c.identity = call.provider, call.identity
	}
	c.login = nil
	c.mu.Unlock()
	close(call.done)
}

// newIdentity logs the service user in and returns its provider and
// identity clients.
func (c *Client) newIdentity(ctx context.Context) (*gophercloud.ProviderClient, *gophercloud.ServiceClient, error) {
	pc, err := openstack.NewClient(c.cfg.AuthURL)
	if err != nil {
		return nil, nil, fmt.Errorf("auth_url %s: %w", c.cfg.AuthURL, err)
	}
	pc.HTTPClient = *c.http
	pc.UserAgent.Prepend("glance-go")
	if err := openstack.Authenticate(ctx, pc, c.authOptions()); err != nil {
		return nil, nil, fmt.Errorf("service user login: %w", err)
	}
	id, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{
		Region:       c.cfg.RegionName,
		Availability: gophercloud.Availability(c.cfg.Interface),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("no identity endpoint in the catalog (interface %s, region %q): %w",
			c.cfg.Interface, c.cfg.RegionName, err)
	}
	return pc, id, nil
}

func (c *Client) authOptions() gophercloud.AuthOptions {
	scope := &gophercloud.AuthScope{ProjectID: c.cfg.ProjectID}
	if scope.ProjectID == "" {
		scope.ProjectName = c.cfg.ProjectName
		scope.DomainID, scope.DomainName = c.cfg.ProjectDomainID, c.cfg.ProjectDomainName
		if scope.DomainID == "" && scope.DomainName == "" {
			scope.DomainID = "default"
		}
	}
	o := gophercloud.AuthOptions{
		IdentityEndpoint: c.cfg.AuthURL,
		Username:         c.cfg.Username,
		Password:         c.cfg.Password,
		DomainID:         c.cfg.UserDomainID,
		DomainName:       c.cfg.UserDomainName,
		Scope:            scope,
		AllowReauth:      true,
	}
	if o.DomainID == "" && o.DomainName == "" {
		o.DomainID = "default"
	}
	return o
}

// ValidateToken is Validate for the API's keystone flavor: the token's
// project, user and roles as a caller.
func (c *Client) ValidateToken(ctx context.Context, token string, allowExpired bool) (*domain.Caller, error) {
	t, err := c.Validate(ctx, token, allowExpired)
	if err != nil {
		return nil, err
	}
	return &domain.Caller{ProjectID: t.ProjectID, UserID: t.UserID, Roles: t.Roles}, nil
}
