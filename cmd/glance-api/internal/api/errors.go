package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/domain"
)

// httpError is an error resolved to its HTTP form. Its body is rendered the
// way webob renders Glance's exceptions: an explanation (the class default
// when empty), then an optional detail.
type httpError struct {
	status      int
	explanation string
	detail      string
	header      http.Header
	err         error // the cause, for errors.Is and the log
	// raw, when set, is the whole body, of type rawType, whatever the
	// request accepts: an answer that is not webob's.
	raw, rawType string
}

func (e *httpError) Error() string {
	if e.explanation != "" {
		return e.explanation
	}
	if e.detail != "" {
		return e.detail
	}
	return http.StatusText(e.status)
}

func (e *httpError) Unwrap() error { return e.err }

// explain returns an error whose message is the body's explanation, the way
// Glance raises webob errors with explanation=msg.
func explain(status int, format string, args ...any) error {
	return &httpError{status: status, explanation: sprintf(format, args...)}
}

// detailed returns an error whose message follows the status's default
// explanation, the way Glance raises webob errors with a positional message.
func detailed(status int, format string, args ...any) error {
	return &httpError{status: status, detail: sprintf(format, args...)}
}

// withStatus keeps err's message but forces the HTTP status, for the routes
// where Glance maps an error kind differently (a bad transition on delete is
// 400, not 409).
func withStatus(status int, err error) error {
	var he *httpError
	if errors.As(err, &he) {
		c := *he
		c.status = status
		return &c
	}
	return &httpError{status: status, explanation: err.Error(), err: err}
}

// withMessage keeps err's status but shows msg instead, for the routes whose
// Glance controller replaces the message of a whole error kind.
func withMessage(err error, msg string) error {
	return &httpError{status: statusOf(err), explanation: msg, err: err}
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}

// statusOf maps an error to its HTTP status by its domain kind.
func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) && he.status != 0 {
		return he.status
	}
	var ee *echo.HTTPError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var te *domain.TransitionError
	switch {
	case errors.As(err, &te):
		return http.StatusConflict
	case errors.Is(err, domain.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, domain.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, domain.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, domain.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, domain.ErrOverLimit):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, domain.ErrUnsupported):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, domain.ErrGone):
		return http.StatusGone
	case errors.Is(err, domain.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, domain.ErrNoData):
		return http.StatusNoContent
	}
	return http.StatusInternalServerError
}

// resolve turns any error into an *httpError.
func resolve(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		if he.status == 0 {
			c := *he
			c.status = statusOf(he.err)
			return &c
		}
		return he
	}
	var ee *echo.HTTPError
	if errors.As(err, &ee) {
		out := &httpError{status: ee.Code, err: err}
		if s, ok := ee.Message.(string); ok && ee.Code != http.StatusNotFound && ee.Code != http.StatusMethodNotAllowed &&
			s != http.StatusText(ee.Code) {
			out.explanation = s
		}
		return out
	}
	status := statusOf(err)
	if status == http.StatusInternalServerError {
		return &httpError{status: status, err: err}
	}
	return &httpError{status: status, explanation: err.Error(), err: err}
}

// webob's titles and default explanations (whitespace already collapsed).
var statusTitles = map[int]string{
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 413: "Request Entity Too Large",
	415: "Unsupported Media Type", 416: "Request Range Not Satisfiable", 431: "Request Header Fields Too Large",
	500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
}

const (
	explainBadRequest = "The server could not comply with the request since it is either malformed or otherwise incorrect."
	explainServer     = "The server has either erred or is incapable of performing the requested operation."
	// unauthorizedText is webob's 401 explanation.
	unauthorizedText = "This server could not verify that you are authorized to access the document you requested. " +
		"Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to " +
		"supply the credentials required."
)

var defaultExplanations = map[int]string{
	400: explainBadRequest,
	401: unauthorizedText,
	403: "Access was denied to this resource.",
	404: "The resource could not be found.",
	405: explainBadRequest,
	409: "There was a conflict when trying to complete your request.",
	410: "This resource is no longer available. No forwarding address is given.",
	413: "The body of your request was too large for this server.",
	415: explainBadRequest,
	416: "The Range requested is not available.",
	500: explainServer,
	501: explainServer,
	503: "The server is currently unavailable. Please try again at a later time.",
}

func statusLine(status int) (line, title string) {
	title = statusTitles[status]
	if title == "" {
		title = http.StatusText(status)
	}
	return strconv.Itoa(status) + " " + title, title
}

// errorHandler is the echo HTTPErrorHandler: the one place where errors
// become HTTP responses.
func (s *server) errorHandler(err error, c echo.Context) {
	he := resolve(err)
	if he.status == http.StatusInternalServerError {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path,
			"request_id", c.Response().Header().Get(headerRequestID), "error", err)
	}
	if c.Response().Committed {
		return
	}
	writeError(c.Response(), c.Request(), he)
}

// writeError renders he as webob would, negotiating the body on Accept.
func writeError(w *echo.Response, r *http.Request, he *httpError) {
	h := w.Header()
	for k, vs := range he.header {
		h[k] = vs
	}
	if he.status == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctype, body := renderError(he, r)
	if he.raw != "" {
		ctype, body = he.rawType, he.raw
	}
	if r.Method == http.MethodHead {
		body = ""
	}
	h.Set(echo.HeaderContentType, ctype)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	w.WriteHeader(he.status)
	_, _ = w.Write([]byte(body))
}

// renderError returns the content type and body of an error response.
func renderError(he *httpError, r *http.Request) (string, string) {
	line, title := statusLine(he.status)
	switch negotiate(r.Header.Values(echo.HeaderAccept)) {
	case "text/html":
		return "text/html; charset=UTF-8", htmlPage(line, errorBody(he, r, htmlEscape))
	case "application/json":
		var b strings.Builder
		b.WriteString(`{"message": `)
		writePyString(&b, errorBody(he, r, noEscape))
		b.WriteString(`, "code": `)
		writePyString(&b, line)
		b.WriteString(`, "title": `)
		writePyString(&b, title)
		b.WriteString("}")
		return "application/json", b.String()
	}
	return "text/plain; charset=UTF-8", line + "\n\n" + stripTags(errorBody(he, r, noEscape))
}

func htmlPage(line, body string) string {
	return "<html>\n <head>\n  <title>" + line + "</title>\n </head>\n <body>\n  <h1>" + line + "</h1>\n  " +
		body + "\n </body>\n</html>"
}

// errorBody fills webob's body template for the status.
func errorBody(he *httpError, r *http.Request, esc func(string) string) string {
	switch he.status {
	case http.StatusMethodNotAllowed:
		return "The method " + esc(r.Method) + " is not allowed for this resource. <br /><br />\n" + esc(he.detail)
	case http.StatusUnsupportedMediaType:
		ct := r.Header.Get(echo.HeaderContentType)
		if ct == "" {
			ct = "text/plain"
		}
		return "The request media type " + esc(ct) + " is not supported by this server.\n<br /><br />\n" + esc(he.detail)
	}
	expl := he.explanation
	if expl == "" {
		expl = defaultExplanations[he.status]
	}
	return esc(expl) + "<br /><br />\n" + esc(he.detail) + "\n\n"
}

func noEscape(s string) string { return s }

var htmlReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;")

// htmlEscape is webob's html_escape: markup characters as entities and
// non-ASCII as numeric character references.
func htmlEscape(s string) string {
	s = htmlReplacer.Replace(s)
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			var b strings.Builder
			for _, r := range s {
				if r < 0x80 {
					b.WriteRune(r)
				} else {
					b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
				}
			}
			return b.String()
		}
	}
	return s
}

var (
	brRe  = regexp.MustCompile(`(?is)<br.*?>`)
	tagRe = regexp.MustCompile(`(?s)<.*?>`)
)

// stripTags turns an HTML body fragment into webob's plain-text form.
func stripTags(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "\r", "")
	s = brRe.ReplaceAllString(s, "\n")
	s = strings.ReplaceAll(s, "<!--", "")
	s = strings.ReplaceAll(s, "-->", "")
	return tagRe.ReplaceAllString(s, "")
}

// negotiate picks text/html, application/json or "" (plain text) from the
// Accept header values, as webob's acceptable_offers does: highest quality
// first, text/html on ties; a malformed header accepts everything.
func negotiate(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return bestOffer(values, []string{"text/html", "application/json"})
}

// bestOffer returns the first of offers with the highest quality that the
// Accept header values give it (the first of webob's acceptable_offers),
// or "" when none is acceptable; a malformed header accepts everything, so
// it returns offers[0].
func bestOffer(values []string, offers []string) string {
	q := make([]float64, len(offers))
	spec := make([]int, len(offers))
	for i := range spec {
		spec[i] = -1
	}
	header := strings.Join(values, ",")
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		params := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(params[0]))
		typ, sub, ok := strings.Cut(mt, "/")
		if !ok || typ == "" || sub == "" || (typ == "*" && sub != "*") {
			return offers[0]
		}
		quality := 1.0
		for _, p := range params[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					return offers[0]
				}
				quality = f
			}
		}
		for i, o := range offers {
			ot, os, _ := strings.Cut(o, "/")
			s := -1
			switch {
			case typ == ot && sub == os:
				s = 2
			case typ == ot && sub == "*":
				s = 1
			case typ == "*":
				s = 0
			}
			if s > spec[i] {
				spec[i], q[i] = s, quality
			}
		}
	}
	best, bestQ := "", 0.0
	for i, o := range offers {
		if spec[i] >= 0 && q[i] > bestQ {
			best, bestQ = o, q[i]
		}
	}
	return best
}

// logger returns l, or a logger that discards everything.
func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
