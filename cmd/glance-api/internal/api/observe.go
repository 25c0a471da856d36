package api

import (
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/domain"
)

// RequestStats is what the API reports about one request once it is
// answered.
type RequestStats struct {
	Method string
	// Route is the route's pattern ("/v2/images/:id/file"), or one of
	// "preflight", "unmatched", or a fixed path such as "/healthcheck";
	// never the raw path.
	Route             string
	Status            int
	BytesIn, BytesOut int64
	Duration          time.Duration
}

// Observer receives measurements of the API; package metrics implements it.
type Observer interface {
	// Request is called once for every request, after its response.
	Request(RequestStats)
	// UploadStarted is called when an image data upload or stage begins
	// to read its body; the returned func is called when it ends.
	UploadStarted() (done func())
}

const (
	ctxRoute = "glance.route"
	// routePreflight and routeUnmatched are the route labels of a CORS
	// preflight and of a request that no route matched.
	routePreflight = "preflight"
	routeUnmatched = "unmatched"
)

// observe is the outermost middleware: it counts the bytes of the request
// and of the response, turns a handler's error into its response so that
// the status is known, then writes the request's log line and reports it
// to the Observer. Tokens, passwords and other headers are never logged.
func (s *server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		r := c.Request()
		in := &countingBody{ReadCloser: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = in
		}
		method, path := r.Method, r.URL.Path
		if err := next(c); err != nil {
			c.Error(err)
		}
		st := RequestStats{
			Method:   method,
			Route:    s.routeOf(c),
			Status:   c.Response().Status,
			BytesIn:  in.n,
			BytesOut: c.Response().Size + directBytes(c),
			Duration: time.Since(start),
		}
		if s.opts.Observer != nil {
			s.opts.Observer.Request(st)
		}
		level := slog.LevelInfo
		if st.Route == s.opts.Healthcheck.Path || st.Route == s.opts.MetricsPath {
			// Probes come every few seconds; their lines would drown the rest.
			level = slog.LevelDebug
		}
		attrs := []slog.Attr{
			slog.String("request_id", c.Response().Header().Get(headerRequestID)),
			slog.String("method", method),
			slog.String("route", st.Route),
			slog.String("path", path),
			slog.Int("status", st.Status),
			slog.Int64("bytes_in", st.BytesIn),
			slog.Int64("bytes_out", st.BytesOut),
			slog.Float64("duration_ms", float64(st.Duration.Microseconds())/1000),
		}
		if caller, ok := c.Get(ctxCaller).(*domain.Caller); ok && (caller.ProjectID != "" || caller.UserID != "") {
			attrs = append(attrs, slog.String("project", caller.ProjectID), slog.String("user", caller.UserID))
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs...)
		return nil
	}
}

// routeOf returns the route label of an answered request: the pattern of
// the route echo matched, or what an early middleware recorded.
func (s *server) routeOf(c echo.Context) string {
	if v, ok := c.Get(ctxRoute).(string); ok {
		return v
	}
	if p := c.Path(); s.routeSet[p] {
		return p
	}
	// Answered before routing (a 401, a 400 for a bad request id): ask
	// the router which route the request was for.
	rc := s.e.NewContext(c.Request(), nil)
	s.e.Router().Find(c.Request().Method, c.Request().URL.Path, rc)
	if p := rc.Path(); s.routeSet[p] {
		return p
	}
	return routeUnmatched
}

// inFlight reports an upload to the Observer while h runs.
func (s *server) inFlight(h echo.HandlerFunc) echo.HandlerFunc {
	if s.opts.Observer == nil {
		return h
	}
	return func(c echo.Context) error {
		done := s.opts.Observer.UploadStarted()
		defer done()
		return h(c)
	}
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

const ctxDirectBytes = "glance.direct_bytes"

// wroteDirect records n bytes of a response body written to net/http's
// own ResponseWriter (a download's sendfile path), which echo's Response
// does not count.
func wroteDirect(c echo.Context, n int64) { c.Set(ctxDirectBytes, directBytes(c)+n) }

func directBytes(c echo.Context) int64 {
	n, _ := c.Get(ctxDirectBytes).(int64)
	return n
}
