package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// CORSRule is one [cors] or [cors.*] section of glance-api.conf: the origins
// a browser may call the API from and what their requests may carry
// (oslo_middleware/cors.py).
type CORSRule struct {
	// AllowedOrigin lists "scheme://host[:port]" origins; "*" matches any
	// origin that no other rule names.
	AllowedOrigin []string
	// AllowCredentials sends Access-Control-Allow-Credentials: true.
	AllowCredentials bool
	// ExposeHeaders is sent as Access-Control-Expose-Headers on actual
	// requests.
	ExposeHeaders []string
	// MaxAge is Access-Control-Max-Age of a preflight; 0 sends none.
	MaxAge int
	// AllowMethods are the methods a preflight may ask for, compared
	// case-sensitively.
	AllowMethods []string
	// AllowHeaders are the headers a preflight may ask for besides the
	// simple ones, compared case-insensitively.
	AllowHeaders []string
}

// corsSimpleHeaders may always be asked for in a preflight.
var corsSimpleHeaders = []string{"Accept", "Accept-Language", "Content-Type", "Cache-Control",
	"Content-Language", "Expires", "Last-Modified", "Pragma"}

// corsPolicy holds the rules by origin; the first rule naming an origin
// wins, as oslo.middleware skips an origin added twice.
type corsPolicy struct {
	byOrigin map[string]*CORSRule
	// healthPath is answered by the healthcheck even for OPTIONS, which
	// then gets preflight headers on the healthcheck's own response.
	healthPath string
}

func newCORSPolicy(rules []CORSRule, healthPath string) *corsPolicy {
	p := &corsPolicy{byOrigin: map[string]*CORSRule{}, healthPath: healthPath}
	for i := range rules {
		for _, o := range rules[i].AllowedOrigin {
			if _, dup := p.byOrigin[o]; !dup && o != "" {
				p.byOrigin[o] = &rules[i]
			}
		}
	}
	return p
}

// rule returns the rule for a request's Origin and the origin to echo:
// the origin itself, or "*" when only the wildcard rule matches.
func (p *corsPolicy) rule(origin string) (string, *CORSRule) {
	if r, ok := p.byOrigin[origin]; ok {
		return origin, r
	}
	if r, ok := p.byOrigin["*"]; ok {
		return "*", r
	}
	return "", nil
}

// middleware is the cors filter, first in Glance's pipeline. An actual
// request from an allowed origin gets Vary, Access-Control-Allow-Origin,
// -Allow-Credentials and -Expose-Headers on whatever response it earns; a
// request from any other origin goes on without them. Every OPTIONS
// request is answered here, before authentication: Glance's application
// answers none of them with a 2xx, and the filter turns such a response
// into an empty 200, to which a preflight whose origin, method and headers
// are all allowed adds the preflight headers. OPTIONS on the healthcheck
// path is the exception: the healthcheck answers it, and the preflight
// headers go on that answer.
func (p *corsPolicy) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		origin, hasOrigin := r.Header["Origin"]
		if r.Method == http.MethodOptions {
			var set func(http.Header)
			if hasOrigin {
				set = p.preflight(origin[0], r.Header)
			}
			if r.URL.Path == p.healthPath {
				if set != nil {
					c.Response().Before(func() {
						if code := c.Response().Status; code >= 200 && code < 300 {
							set(c.Response().Header())
						}
					})
				}
				return next(c)
			}
			c.Set(ctxRoute, routePreflight)
			h := c.Response().Header()
			if set != nil {
				set(h)
			}
			h.Set(echo.HeaderContentLength, "0")
			c.Response().WriteHeader(http.StatusOK)
			return nil
		}
		if hasOrigin {
			if echoed, rule := p.rule(origin[0]); rule != nil {
				c.Response().Before(func() { actualHeaders(c.Response().Header(), echoed, rule) })
			}
		}
		return next(c)
	}
}

// preflight returns what a valid preflight adds to its response, or nil
// when the origin, the requested method or one of the requested headers
// is not allowed.
func (p *corsPolicy) preflight(origin string, req http.Header) func(http.Header) {
	echoed, rule := p.rule(origin)
	if rule == nil {
		return nil
	}
	methods, ok := req["Access-Control-Request-Method"]
	if !ok {
		return nil
	}
	method := methods[0]
	var asked []string
	for _, v := range req.Values("Access-Control-Request-Headers") {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				asked = append(asked, h)
			}
		}
	}
	if !contains(rule.AllowMethods, method) {
		return nil
	}
	for _, h := range asked {
		if !containsFold(rule.AllowHeaders, h) && !containsFold(corsSimpleHeaders, h) {
			return nil
		}
	}
	return func(h http.Header) {
		h.Set("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", echoed)
		if rule.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if rule.MaxAge != 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(rule.MaxAge))
		}
		h.Set("Access-Control-Allow-Methods", method)
		if len(asked) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(asked, ","))
		}
	}
}

// actualHeaders adds the headers of an actual (non-preflight) request from
// an allowed origin.
func actualHeaders(h http.Header, origin string, rule *CORSRule) {
	if h.Get("Access-Control-Allow-Origin") != "" {
		return
	}
	if v := h.Get("Vary"); v != "" {
		h.Set("Vary", v+",Origin")
	} else {
		h.Set("Vary", "Origin")
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if rule.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(rule.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ","))
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
