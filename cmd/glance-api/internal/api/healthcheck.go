package api

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Healthcheck is the [healthcheck] section: oslo.middleware's healthcheck
// filter as Glance's paste pipeline configures it, ahead of
// authentication.
type Healthcheck struct {
	// Path is answered, for any method; "" turns the healthcheck off.
	Path string
	// Detailed adds each check's details and facts about the process.
	Detailed bool
	// DisableByFile is the disable_by_file backend's file: while it
	// exists the healthcheck answers 503 DISABLED BY FILE. nil leaves the
	// backend out; a pointer to "" keeps it with no file configured.
	DisableByFile *string
}

// healthResult is what one backend reports (pluginbase.HealthcheckResult).
type healthResult struct {
	available       bool
	reason, details string
}

func (hc Healthcheck) results() []healthResult {
	if hc.DisableByFile == nil {
		return nil
	}
	path := *hc.DisableByFile
	switch _, err := os.Stat(path); {
	case path == "":
		return []healthResult{{true, "OK", "No 'disable_by_file_path' configuration value specified"}}
	case err != nil:
		return []healthResult{{true, "OK", fmt.Sprintf("Path '%s' was not found", path)}}
	}
	return []healthResult{{false, "DISABLED BY FILE", fmt.Sprintf("Path '%s' was found", path)}}
}

// healthcheck answers the healthcheck path before anything else looks at
// the request: 200 (204 for HEAD) while every backend is available, 503
// otherwise, in text/plain, text/html or application/json as Accept
// prefers (text/plain when it names none of them).
func (hc Healthcheck) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if hc.Path == "" || r.URL.Path != hc.Path {
			return next(c)
		}
		c.Set(ctxRoute, hc.Path)
		res := hc.results()
		healthy := true
		for _, x := range res {
			healthy = healthy && x.available
		}
		status := http.StatusOK
		if !healthy {
			status = http.StatusServiceUnavailable
		}
		h := c.Response().Header()
		if r.Method == http.MethodHead {
			if healthy {
				return c.NoContent(http.StatusNoContent)
			}
			h.Set(echo.HeaderContentType, "text/plain; charset=UTF-8")
			h.Set(echo.HeaderContentLength, "0")
			return c.NoContent(status)
		}
		var body, ctype string
		accept := r.Header.Values(echo.HeaderAccept)
		offer := "text/plain"
		if len(accept) > 0 {
			offer = bestOffer(accept, []string{"text/plain", "text/html", "application/json"})
		}
		switch offer {
		case "application/json":
			body, ctype = hc.json(res), "application/json"
		case "text/html":
			body, ctype = hc.html(res), "text/html; charset=UTF-8"
		default:
			reasons := make([]string, len(res))
			for i, x := range res {
				reasons[i] = x.reason
			}
			body, ctype = strings.Join(reasons, "\n"), "text/plain; charset=UTF-8"
		}
		h.Set(echo.HeaderContentType, ctype)
		h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
		c.Response().WriteHeader(status)
		_, err := c.Response().Write([]byte(body))
		return err
	}
}

func (hc Healthcheck) json(res []healthResult) string {
	doc := map[string]any{"detailed": hc.Detailed}
	if !hc.Detailed {
		reasons := make([]string, len(res))
		for i, x := range res {
			reasons[i] = x.reason
		}
		doc["reasons"] = reasons
	} else {
		reasons := make([]map[string]string, len(res))
		for i, x := range res {
			reasons[i] = map[string]string{"reason": x.reason, "details": x.details, "class": "HealthcheckResult"}
		}
		doc["reasons"] = reasons
		doc["now"] = time.Now().UTC().Format("2006-01-02 15:04:05.000000")
		doc["platform"] = runtime.GOOS + "-" + runtime.GOARCH
		doc["go_version"] = runtime.Version()
		doc["goroutines"] = runtime.NumGoroutine()
	}
	b, _ := json.MarshalIndent(doc, "", "    ")
	return string(b)
}

// html renders the page oslo.middleware's template renders.
func (hc Healthcheck) html(res []healthResult) string {
	var b strings.Builder
	b.WriteString("<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n")
	if hc.Detailed {
		host, _ := os.Hostname()
		fmt.Fprintf(&b, "<H1>Server status</H1>\n<B>Server hostname:</B><PRE>%s</PRE>\n", html.EscapeString(host))
		fmt.Fprintf(&b, "<B>Current time:</B><PRE>%s</PRE>\n", time.Now().UTC().Format("2006-01-02 15:04:05.000000"))
		fmt.Fprintf(&b, "<B>Go version:</B><PRE>%s</PRE>\n<B>Platform:</B><PRE>%s-%s</PRE>\n<HR></HR>",
			runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	fmt.Fprintf(&b, "\n<H2>Result of %d checks:</H2>\n<TABLE bgcolor=\"#ffffff\" border=\"1\">\n<TBODY>\n<TR>\n", len(res))
	if hc.Detailed {
		b.WriteString("<TH>\nKind\n</TH>\n<TH>\nReason\n</TH>\n<TH>\nDetails\n</TH>\n")
	} else {
		b.WriteString("\n<TH>\nReason\n</TH>")
	}
	b.WriteString("\n</TR>\n")
	for _, x := range res {
		if x.reason == "" {
			continue
		}
		b.WriteString("<TR>\n")
		if hc.Detailed {
			b.WriteString("    <TD>HealthcheckResult</TD>")
		}
		fmt.Fprintf(&b, "\n    <TD>%s</TD>\n", html.EscapeString(x.reason))
		if hc.Detailed {
			fmt.Fprintf(&b, "    <TD>%s</TD>", html.EscapeString(x.details))
		}
		b.WriteString("\n</TR>")
	}
	b.WriteString("\n</TBODY>\n</TABLE>\n<HR></HR>\n\n</BODY>\n</HTML>")
	return b.String()
}
