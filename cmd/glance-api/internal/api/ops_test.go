package api

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// glanceCORS is a [cors] section with Glance's defaults for everything but
// allowed_origin (glance/common/config.py set_cors_middleware_defaults).
func glanceCORS(origins ...string) CORSRule {
	return CORSRule{
		AllowedOrigin:    origins,
		AllowCredentials: true,
		ExposeHeaders:    []string{"X-Image-Meta-Checksum", "X-Auth-Token", "X-Subject-Token", "X-Service-Token", "X-OpenStack-Request-ID"},
		MaxAge:           3600,
		AllowMethods:     []string{"GET", "PUT", "POST", "DELETE", "PATCH"},
		AllowHeaders: []string{"Content-MD5", "X-Image-Meta-Checksum", "X-Storage-Token", "Accept-Encoding", "X-Auth-Token",
			"X-Identity-Status", "X-Roles", "X-Service-Catalog", "X-User-Id", "X-Tenant-Id", "X-OpenStack-Request-ID"},
	}
}

var corsHeaders = []string{"Vary", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Max-Age",
	"Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Expose-Headers"}

// TestCORS checks the answers of Glance 25.1 with [cors] allowed_origin =
// http://a.example,http://b.example, as recorded from it.
func TestCORS(t *testing.T) {
	disable := filepath.Join(t.TempDir(), "disabled")
	h := newHarness(t, Options{CORS: []CORSRule{glanceCORS("http://a.example", "http://b.example")},
		Healthcheck: Healthcheck{Path: "/healthcheck", DisableByFile: &disable}})
	expose := "X-Image-Meta-Checksum,X-Auth-Token,X-Subject-Token,X-Service-Token,X-OpenStack-Request-ID"
	tests := []struct {
		name, method, path string
		headers            []string
		status             int
		want               map[string]string // every CORS header; absent ones must be missing
	}{
		{"preflight", "OPTIONS", "/v2/images", []string{"Origin", "http://a.example", "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "x-auth-token, content-type"}, 200,
			map[string]string{"Vary": "Origin", "Access-Control-Allow-Origin": "http://a.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Max-Age": "3600", "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "x-auth-token,content-type"}},
		{"preflight without headers", "OPTIONS", "/v2/images/x/file", []string{"Origin", "http://b.example", "Access-Control-Request-Method", "PUT"}, 200,
			map[string]string{"Vary": "Origin", "Access-Control-Allow-Origin": "http://b.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Max-Age": "3600", "Access-Control-Allow-Methods": "PUT"}},
		{"method not allowed", "OPTIONS", "/v2/images", []string{"Origin", "http://a.example", "Access-Control-Request-Method", "OPTIONS"}, 200, nil},
		{"method compared case-sensitively", "OPTIONS", "/v2/images", []string{"Origin", "http://a.example", "Access-Control-Request-Method", "post"}, 200, nil},
		{"header not allowed", "OPTIONS", "/v2/images", []string{"Origin", "http://a.example", "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "x-project-id"}, 200, nil},
		{"origin not allowed", "OPTIONS", "/v2/images", []string{"Origin", "http://c.example", "Access-Control-Request-Method", "POST"}, 200, nil},
		{"no request method", "OPTIONS", "/v2/images", []string{"Origin", "http://a.example"}, 200, nil},
		{"no origin", "OPTIONS", "/v2/images", nil, 200, nil},
		{"actual request", "GET", "/v2/images", append([]string{"Origin", "http://a.example"}, tenantA...), 200,
			map[string]string{"Vary": "Origin", "Access-Control-Allow-Origin": "http://a.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": expose}},
		{"actual request refused by auth", "GET", "/v2/images", []string{"Origin", "http://a.example"}, 401,
			map[string]string{"Vary": "Origin", "Access-Control-Allow-Origin": "http://a.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": expose}},
		{"actual request from another origin", "GET", "/v2/images", append([]string{"Origin", "http://c.example"}, tenantA...), 200, nil},
		{"versions", "GET", "/versions", []string{"Origin", "http://a.example"}, 200,
			map[string]string{"Vary": "Origin", "Access-Control-Allow-Origin": "http://a.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": expose}},
		{"healthcheck", "GET", "/healthcheck", []string{"Origin", "http://a.example"}, 200,
			map[string]string{"Vary": "Origin", "Access-Control-Allow-Origin": "http://a.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": expose}},
		{"preflight of the healthcheck", "OPTIONS", "/healthcheck", []string{"Origin", "http://a.example", "Access-Control-Request-Method", "GET"}, 200,
			map[string]string{"Vary": "Origin", "Access-Control-Allow-Origin": "http://a.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Max-Age": "3600", "Access-Control-Allow-Methods": "GET"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do(tc.method, tc.path, "", tc.headers...)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			for _, k := range corsHeaders {
				got, ok := w.Header()[k]
				want, wantOK := tc.want[k]
				if ok != wantOK || (ok && (len(got) != 1 || got[0] != want)) {
					t.Errorf("%s: got %q, want %q", k, got, want)
				}
			}
			if tc.method == "OPTIONS" && tc.path != "/healthcheck" {
				if w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" || w.Header().Get("Content-Length") != "0" {
					t.Errorf("preflight answer: Content-Type %q, Content-Length %q, body %q, want an empty body without a type",
						w.Header().Get("Content-Type"), w.Header().Get("Content-Length"), w.Body)
				}
			}
		})
	}
}

func TestCORSWildcardAndFirstRuleWins(t *testing.T) {
	star := glanceCORS("*")
	star.AllowCredentials = false
	narrow := glanceCORS("http://a.example")
	narrow.ExposeHeaders = nil
	again := glanceCORS("http://a.example")
	h := newHarness(t, Options{CORS: []CORSRule{narrow, star, again}})
	w := h.do("GET", "/versions", "", "Origin", "http://z.example")
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != "*" || w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("wildcard: Allow-Origin %q, Allow-Credentials %q", got, w.Header().Get("Access-Control-Allow-Credentials"))
	}
	w = h.do("GET", "/versions", "", "Origin", "http://a.example")
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != "http://a.example" || w.Header().Get("Access-Control-Expose-Headers") != "" {
		t.Errorf("first rule: Allow-Origin %q, Expose-Headers %q", got, w.Header().Get("Access-Control-Expose-Headers"))
	}
}

// TestHealthcheck checks the answers of Glance 25.1's healthcheck filter
// (backends = disable_by_file), as recorded from it.
func TestHealthcheck(t *testing.T) {
	disable := filepath.Join(t.TempDir(), "healthcheck_disable")
	h := newHarness(t, Options{Healthcheck: Healthcheck{Path: "/healthcheck", DisableByFile: &disable}})
	html, err := os.ReadFile("testdata/healthcheck-zed.html")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, accept string
		disabled             bool
		status               int
		ctype, body          string
	}{
		{"plain", "GET", "", false, 200, "text/plain; charset=UTF-8", "OK"},
		{"json", "GET", "application/json", false, 200, "application/json", "{\n    \"detailed\": false,\n    \"reasons\": [\n        \"OK\"\n    ]\n}"},
		{"html", "GET", "text/html", false, 200, "text/html; charset=UTF-8", string(html)},
		{"unknown type", "GET", "image/png", false, 200, "text/plain; charset=UTF-8", "OK"},
		{"any method", "POST", "", false, 200, "text/plain; charset=UTF-8", "OK"},
		{"head", "HEAD", "", false, 204, "", ""},
		{"disabled", "GET", "", true, 503, "text/plain; charset=UTF-8", "DISABLED BY FILE"},
		{"disabled json", "GET", "application/json", true, 503, "application/json",
			"{\n    \"detailed\": false,\n    \"reasons\": [\n        \"DISABLED BY FILE\"\n    ]\n}"},
		{"disabled head", "HEAD", "", true, 503, "text/plain; charset=UTF-8", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(disable)
			if tc.disabled {
				if err := os.WriteFile(disable, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var hd []string
			if tc.accept != "" {
				hd = []string{"Accept", tc.accept}
			}
			w := h.do(tc.method, "/healthcheck", "", hd...)
			if w.Code != tc.status || w.Header().Get("Content-Type") != tc.ctype || w.Body.String() != tc.body {
				t.Fatalf("got %d %q %q, want %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body, tc.status, tc.ctype, tc.body)
			}
			if w.Header().Get("X-Openstack-Request-Id") != "" {
				t.Error("the healthcheck answers before any request id is made")
			}
		})
	}
	// Only the exact path; anything else is the API's, behind authentication.
	if w := h.do("GET", "/healthcheck/x", ""); w.Code == 200 {
		t.Errorf("/healthcheck/x: %d", w.Code)
	}
}

// recordingObserver keeps what the API reported.
type recordingObserver struct {
	mu       sync.Mutex
	requests []RequestStats
	uploads  int
}

func (o *recordingObserver) Request(s RequestStats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests = append(o.requests, s)
}

func (o *recordingObserver) UploadStarted() func() {
	o.mu.Lock()
	o.uploads++
	o.mu.Unlock()
	return func() {}
}

func TestObserveAndLog(t *testing.T) {
	var logs bytes.Buffer
	obs := &recordingObserver{}
	h := newHarness(t, Options{Observer: obs, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	w := h.do("POST", "/v2/images", `{"name": "x", "disk_format": "raw", "container_format": "bare"}`,
		append([]string{"Content-Type", "application/json", "X-Auth-Token", "secret-token-value"}, tenantA...)...)
	if w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	id := w.Body.String()[strings.Index(w.Body.String(), `"id": "`)+7:][:36]
	h.do("PUT", "/v2/images/"+id+"/file", "0123456789", append([]string{"Content-Type", "application/octet-stream"}, tenantA...)...)
	h.do("GET", "/v2/images/"+id+"/file", "", tenantA...)
	h.do("GET", "/v2/images/"+id, "") // 401: answered before routing
	h.do("GET", "/v2/no/such/route", "", tenantA...)

	want := []RequestStats{
		{Method: "POST", Route: "/v2/images", Status: 201},
		{Method: "PUT", Route: "/v2/images/:id/file", Status: 204, BytesIn: 10},
		{Method: "GET", Route: "/v2/images/:id/file", Status: 200, BytesOut: 10},
		{Method: "GET", Route: "/v2/images/:id", Status: 401},
		{Method: "GET", Route: routeUnmatched, Status: 404},
	}
	if len(obs.requests) != len(want) {
		t.Fatalf("%d requests observed, want %d: %+v", len(obs.requests), len(want), obs.requests)
	}
	for i, w := range want {
		got := obs.requests[i]
		if got.Method != w.Method || got.Route != w.Route || got.Status != w.Status ||
			(w.BytesIn != 0 && got.BytesIn != w.BytesIn) || (w.BytesOut != 0 && got.BytesOut != w.BytesOut) {
			t.Errorf("request %d: got %+v, want %+v", i, got, w)
		}
	}
	if obs.uploads != 1 {
		t.Errorf("%d uploads observed, want 1", obs.uploads)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var first string
	for _, l := range lines {
		if strings.Contains(l, "msg=request ") {
			first = l
			break
		}
	}
	for _, part := range []string{"method=POST", "route=/v2/images", "status=201", "project=tenant-a", "user=user-a", "request_id=req-"} {
		if !strings.Contains(first, part) {
			t.Errorf("log line %q lacks %q", first, part)
		}
	}
	if strings.Contains(logs.String(), "secret-token-value") {
		t.Error("a token reached the log")
	}
	if n := strings.Count(logs.String(), "msg=request "); n != len(want) {
		t.Errorf("%d request lines, want %d:\n%s", n, len(want), logs.String())
	}
}
