// Package api is the HTTP face of glance-go: the Image API v2 routes, the
// version document, authentication, request ids and the one mapping from
// domain errors to webob-shaped HTTP errors (glance/api/v2, glance/common/wsgi.py).
//
// Handlers take an image repository and factory from a Gateway, call the
// domain, and return its errors unchanged; errors.go turns them into HTTP.
package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/stores"
)

// Gateway is what the handlers need; package gateway implements it. Both
// methods build the decorated chain for one caller.
type Gateway interface {
	// Images returns the image repository and factory as the caller sees them.
	Images(c *domain.Caller) (domain.Repo, domain.Factory)
	// Members returns the member repository of img as the caller sees it.
	Members(c *domain.Caller, img domain.Image) domain.MemberRepo
}

// Authenticator turns a request into a caller (the seam for Keystone). An
// error it returns answers 401 with webob's text, unless it is an answer of
// this package's own making (Keystone's 401 and 503).
type Authenticator interface {
	Authenticate(r *http.Request) (*domain.Caller, error)
}

// Options shapes the API the way glance-api.conf does.
type Options struct {
	// LimitDefault and LimitMax are limit_param_default (25) and api_limit_max (1000).
	LimitDefault, LimitMax int
	// ImportMethods is enabled_import_methods, announced on create; empty omits the header.
	ImportMethods []string
	// ShowDirectURL and ShowMultipleLocations are show_image_direct_url and show_multiple_locations.
	ShowDirectURL, ShowMultipleLocations bool
	// HashAlgo is hashing_algorithm, which location validation_data must
	// name; "" means sha512.
	HashAlgo string
	// DiskFormats and ContainerFormats are the [image_format] lists; empty means Glance's defaults.
	DiskFormats, ContainerFormats []string
	// CustomSchema is the content of schema-image.json; nil uses the built-in default.
	CustomSchema []byte
	// PublicEndpoint is the base of absolute hrefs; "" builds them from the request.
	PublicEndpoint string
	// MaxRequestIDLength caps an incoming X-Openstack-Request-Id (64 when 0).
	MaxRequestIDLength int
	// Auth authenticates /v2 requests; nil means NoAuth().
	Auth Authenticator
	// Authorize checks a policy rule that has no image as its target
	// (stores_info_detail, tasks_api_access…); nil allows everything.
	Authorize func(c *domain.Caller, rule string) bool
	// Stores is the configured set of stores, for discovery and the
	// store-related headers; nil means a single store with no details.
	Stores *stores.Set
	// Imports runs stage-and-import and serves tasks; nil answers 404 on
	// those routes.
	Imports Importer
	// Logger receives 500s and one line per request; nil discards.
	Logger *slog.Logger
	// CORS lists the [cors] and [cors.*] rules; empty allows no foreign
	// origin (OPTIONS is still answered, as in Glance).
	CORS []CORSRule
	// Healthcheck is the [healthcheck] endpoint, answered before
	// authentication; a zero Path turns it off.
	Healthcheck Healthcheck
	// Observer, when set, is told of every request and upload.
	Observer Observer
	// Metrics, when set, is served at MetricsPath before authentication.
	Metrics     http.Handler
	MetricsPath string
}

// DefaultDiskFormats is [image_format]disk_formats' default.
var DefaultDiskFormats = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}

// DefaultContainerFormats is [image_format]container_formats' default.
var DefaultContainerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}

// server holds what every handler shares.
type server struct {
	gw      Gateway
	opts    Options
	log     *slog.Logger
	schemas *schemas
	// versionList and pathVersions are the version document and the
	// version prefixes accepted on paths.
	versionList  []version
	pathVersions map[string]bool
	// e is the echo instance, and routeSet the patterns of its routes.
	e        *echo.Echo
	routeSet map[string]bool
}

const (
	headerRequestID = "X-Openstack-Request-Id"
	ctxCaller       = "glance.caller"
	// ctxRequestID is the request's id as Glance's context holds it: the
	// client's as sent, or one made here; the response header always
	// starts with "req-".
	ctxRequestID = "glance.request_id"
)

// New returns a ready echo instance with every route, the middleware and the
// error handler. It panics only if opts.CustomSchema is not a JSON object,
// which is a configuration error found at start-up.
func New(gw Gateway, opts Options) *echo.Echo {
	if opts.LimitDefault <= 0 {
		opts.LimitDefault = 25
	}
	if opts.LimitMax <= 0 {
		opts.LimitMax = 1000
	}
	if opts.MaxRequestIDLength <= 0 {
		opts.MaxRequestIDLength = 64
	}
	if len(opts.DiskFormats) == 0 {
		opts.DiskFormats = DefaultDiskFormats
	}
	if len(opts.ContainerFormats) == 0 {
		opts.ContainerFormats = DefaultContainerFormats
	}
	if opts.Auth == nil {
		opts.Auth = NoAuth()
	}
	sc, err := newSchemas(opts)
	if err != nil {
		panic("api: " + err.Error())
	}
	s := &server{gw: gw, opts: opts, log: logger(opts.Logger), schemas: sc}
	s.versionList = versionsFor(opts.Stores != nil && opts.Stores.Multi())
	s.pathVersions = pathVersionsFor(s.versionList)

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler
	// Glance's pipeline order: cors, healthcheck, then the application's
	// own request handling, with authentication last; observe wraps them
	// all so that every request is counted and logged once.
	e.Pre(s.observe, newCORSPolicy(opts.CORS, opts.Healthcheck.Path).middleware, opts.Healthcheck.middleware,
		s.metrics, s.requestID, recoverPanics, rejectUnknownMethods, s.versionNegotiation, s.authenticate)
	s.routes(e)
	s.e = e
	s.routeSet = map[string]bool{}
	for _, rt := range e.Routes() {
		s.routeSet[rt.Path] = true
	}
	return e
}

// route is one resource of router.py: its handlers by method, in the order
// of its Allow header.
type route struct {
	path     string
	handlers []methodHandler
}

type methodHandler struct {
	method string
	h      echo.HandlerFunc
}

var routedMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}

func (s *server) routes(e *echo.Echo) {
	get := func(h echo.HandlerFunc) methodHandler { return methodHandler{http.MethodGet, h} }
	post := func(h echo.HandlerFunc) methodHandler { return methodHandler{http.MethodPost, h} }
	put := func(h echo.HandlerFunc) methodHandler { return methodHandler{http.MethodPut, h} }
	patch := func(h echo.HandlerFunc) methodHandler { return methodHandler{http.MethodPatch, h} }
	del := func(h echo.HandlerFunc) methodHandler { return methodHandler{http.MethodDelete, h} }

	routes := []route{
		{"/v2/schemas/image", []methodHandler{get(bodyless(s.schemaImage))}},
		{"/v2/schemas/images", []methodHandler{get(bodyless(s.schemaImages))}},
		{"/v2/schemas/member", []methodHandler{get(bodyless(s.schemaMember))}},
		{"/v2/schemas/members", []methodHandler{get(bodyless(s.schemaMembers))}},
		{"/v2/images", []methodHandler{get(s.listImages), post(mutating(s.createImage))}},
		{"/v2/images/:id", []methodHandler{get(bodyless(s.showImage)), patch(mutating(s.updateImage)),
			del(bodyless(mutating(s.deleteImage)))}},
		{"/v2/images/:id/actions/deactivate", []methodHandler{post(bodyless(mutating(s.deactivate)))}},
		{"/v2/images/:id/actions/reactivate", []methodHandler{post(bodyless(mutating(s.reactivate)))}},
		{"/v2/images/:id/file", []methodHandler{get(bodyless(s.download)), put(mutating(s.inFlight(s.upload)))}},
		{"/v2/images/:id/tags/:tag", []methodHandler{put(bodyless(mutating(s.addTag))),
			del(bodyless(mutating(s.deleteTag)))}},
		{"/v2/images/:id/members", []methodHandler{get(bodyless(s.listMembers)), post(mutating(s.addMember))}},
		{"/v2/images/:id/members/:member", []methodHandler{get(bodyless(s.showMember)),
			put(mutating(s.updateMember)), del(bodyless(mutating(s.deleteMember)))}},
	}
	routes = append(routes, s.storeRoutes()...)
	routes = append(routes, s.locationRoutes()...)
	routes = append(routes, s.importRoutes()...)
	for _, rt := range routes {
		allowed := make([]string, 0, len(rt.handlers))
		for _, mh := range rt.handlers {
			allowed = append(allowed, mh.method)
			e.Add(mh.method, rt.path, mh.h)
		}
		reject := rejectMethod(strings.Join(allowed, ", "))
		for _, m := range routedMethods {
			if !contains(allowed, m) {
				e.Add(m, rt.path, reject)
			}
		}
	}
	// wsgi.Router redirects the bare prefix to its slash form.
	e.Any("/v2", func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderContentType, "text/plain; charset=utf8")
		return c.Redirect(http.StatusFound, s.baseURL(c.Request())+"/v2/")
	})
}

// metrics serves the metrics endpoint ahead of authentication.
func (s *server) metrics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.opts.Metrics == nil || c.Request().URL.Path != s.opts.MetricsPath {
			return next(c)
		}
		c.Set(ctxRoute, s.opts.MetricsPath)
		s.opts.Metrics.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

// rejectMethod answers 405 with Glance's Allow list for the resource.
func rejectMethod(allow string) echo.HandlerFunc {
	return func(c echo.Context) error {
		return &httpError{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {allow}}}
	}
}

// recoverPanics turns a panic in a handler or a layer into a logged 500.
func recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return next(c)
	}
}

// rejectUnknownMethods answers 501 for methods no route can serve.
func rejectUnknownMethods(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !contains(routedMethods, c.Request().Method) {
			return &httpError{status: http.StatusNotImplemented}
		}
		return next(c)
	}
}

// requestID adopts or makes the request id and sets it on the response.
func (s *server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(headerRequestID)
		if len(id) > s.opts.MaxRequestIDLength {
			c.Response().Header().Set(headerRequestID, "req-"+domain.NewUUID())
			return explain(http.StatusBadRequest, "x-openstack-request-id is too long, max size %d", s.opts.MaxRequestIDLength)
		}
		if id == "" {
			id = "req-" + domain.NewUUID()
		}
		c.Set(ctxRequestID, id)
		if !strings.HasPrefix(id, "req-") {
			id = "req-" + id
		}
		c.Response().Header().Set(headerRequestID, id)
		return next(c)
	}
}

// authenticate runs the Authenticator for everything under /v2.
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.URL.Path != "/v2" && !strings.HasPrefix(r.URL.Path, "/v2/") {
			return next(c)
		}
		caller, err := s.opts.Auth.Authenticate(r)
		var he *httpError
		if errors.As(err, &he) {
			return he // the Authenticator's own answer (Keystone's 401 and 503)
		}
		if err != nil || caller == nil {
			return &httpError{status: http.StatusUnauthorized, err: err}
		}
		caller.RequestID, _ = c.Get(ctxRequestID).(string)
		c.Set(ctxCaller, caller)
		return next(c)
	}
}

func callerOf(c echo.Context) *domain.Caller {
	if caller, ok := c.Get(ctxCaller).(*domain.Caller); ok {
		return caller
	}
	return &domain.Caller{}
}

// mutating refuses read-only callers (glance.common.utils.mutating).
func mutating(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if callerOf(c).ReadOnly {
			return explain(http.StatusForbidden, "Read-only access")
		}
		return h(c)
	}
}

// bodyless refuses requests that carry a body (router.py body_reject=True).
func bodyless(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if hasBody(c.Request()) {
			return explain(http.StatusBadRequest, "A body is not expected with this request.")
		}
		return h(c)
	}
}

// hasBody reports whether the request carries an entity body, as
// JSONRequestDeserializer.has_body decides it.
func hasBody(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		for _, te := range r.TransferEncoding {
			switch strings.ToLower(te) {
			case "chunked", "compress", "deflate", "gzip", "identity":
				return true
			}
		}
	}
	return r.ContentLength > 0
}

// baseURL is the scheme and host that absolute hrefs start with.
func (s *server) baseURL(r *http.Request) string {
	if s.opts.PublicEndpoint != "" {
		return strings.TrimRight(s.opts.PublicEndpoint, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// noContent answers 204 the way webob does.
func noContent(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/html; charset=UTF-8")
	h.Set(echo.HeaderContentLength, "0")
	return c.NoContent(http.StatusNoContent)
}

// writeJSON sends a pre-encoded JSON body.
func writeJSON(c echo.Context, status int, body []byte) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/json")
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	c.Response().WriteHeader(status)
	_, err := c.Response().Write(body)
	return err
}
