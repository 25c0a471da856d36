package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// opsServer starts one of our servers in the trusted-auth flavor, with
// extra appended to its configuration, in a directory of its own under
// the suite's. It returns the server and its directory.
func opsServer(t *testing.T, name, extra string) (*process, string) {
	t.Helper()
	if suite.bin == "" {
		t.Skip("needs our own binary: GLANCE_E2E_ENDPOINT is set")
	}
	dir := filepath.Join(suite.tmp, name)
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	conn, port := serverEnv(t, dir)
	text := baseConf(port, conn, dir, "trusted-auth") + extra
	return startConf(t, dir, text, port), dir
}

// TestHealthcheck checks /healthcheck as oslo.middleware's healthcheck
// answers it in Glance's pipeline: before authentication, 200 OK (204 to
// HEAD), and 503 DISABLED BY FILE while the disable file exists.
func TestHealthcheck(t *testing.T) {
	dir := filepath.Join(suite.tmp, "healthcheck")
	off := filepath.Join(dir, "healthcheck_disable")
	p, _ := opsServer(t, "healthcheck", "\n[healthcheck]\ndisable_by_file_path = "+off+"\n")
	srv := &server{URL: p.url, Trusted: true}

	check := func(method string, accept string, status int, ctype, body string) {
		t.Helper()
		r := srv.do(t, nobody, method, "/healthcheck", nil, hdr("Accept", accept))
		if r.Status != status || r.Header.Get("Content-Type") != ctype || string(r.Body) != body {
			t.Errorf("%s /healthcheck (Accept %q): %d %q %q, want %d %q %q", method, accept,
				r.Status, r.Header.Get("Content-Type"), r.Body, status, ctype, body)
		}
	}
	check("GET", "", 200, "text/plain; charset=UTF-8", "OK")
	check("HEAD", "", 204, "", "")
	check("GET", "application/json", 200, "application/json", "{\n    \"detailed\": false,\n    \"reasons\": [\n        \"OK\"\n    ]\n}")
	if err := os.WriteFile(off, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check("GET", "", 503, "text/plain; charset=UTF-8", "DISABLED BY FILE")
	check("HEAD", "", 503, "text/plain; charset=UTF-8", "")
	if err := os.Remove(off); err != nil {
		t.Fatal(err)
	}
	check("GET", "", 200, "text/plain; charset=UTF-8", "OK")
	// The API itself still wants an identity.
	srv.do(t, nobody, "GET", "/v2/images", nil).want(t, http.StatusUnauthorized)
}

// scrape reads /metrics at url and returns every sample by its name and
// sorted labels, e.g. `glance_http_requests_total{code="201",method="POST",route="/v2/images"}`.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	r := (&server{URL: url}).do(t, nobody, "GET", "/metrics", nil).want(t, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: Content-Type %q, want the Prometheus text format", ct)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

var sampleRE = regexp.MustCompile(`^glance_`)

// TestMetrics scrapes /metrics (outside authentication) around a few
// requests: the counters of their routes and statuses move by what was
// sent, the bytes received count the upload, and no upload stays in
// flight.
func TestMetrics(t *testing.T) {
	p, _ := opsServer(t, "metrics", "")
	srv := &server{URL: p.url, Trusted: true}
	before := scrape(t, p.url)

	img := srv.rawImage(t, tenantA, nil)
	id := img["id"].(string)
	data := randomBytes(100_000)
	srv.upload(t, tenantA, id, data)
	srv.do(t, tenantA, "GET", "/v2/images/"+id+"/file", nil).want(t, http.StatusOK)
	srv.do(t, tenantA, "GET", "/v2/images/"+id, nil).want(t, http.StatusOK)
	srv.do(t, tenantA, "GET", "/v2/images/"+id, nil).want(t, http.StatusOK)
	srv.do(t, nobody, "GET", "/v2/images/"+id, nil).want(t, http.StatusUnauthorized)
	after := scrape(t, p.url)

	delta := func(name string) float64 { return after[name] - before[name] }
	for name, want := range map[string]float64{
		`glance_http_requests_total{code="201",method="POST",route="/v2/images"}`:         1,
		`glance_http_requests_total{code="204",method="PUT",route="/v2/images/:id/file"}`: 1,
		`glance_http_requests_total{code="200",method="GET",route="/v2/images/:id/file"}`: 1,
		`glance_http_requests_total{code="200",method="GET",route="/v2/images/:id"}`:      2,
		`glance_http_requests_total{code="401",method="GET",route="/v2/images/:id"}`:      1,
		`glance_http_request_duration_seconds_count{method="GET",route="/v2/images/:id"}`: 3,
		`glance_http_request_body_bytes_total{method="PUT",route="/v2/images/:id/file"}`:  float64(len(data)),
		`glance_http_response_body_bytes_total{method="GET",route="/v2/images/:id/file"}`: float64(len(data)),
	} {
		if got := delta(name); got != want {
			t.Errorf("%s moved by %v, want %v", name, got, want)
		}
	}
	// On SQLite, the upload's save read the image back into the record
	// cache, and the download and the two shows found it there.
	_, cached := after["glance_go_record_cache_hits_total"]
	if sqlite := os.Getenv("GLANCE_E2E_MYSQL_DSN") == ""; cached != sqlite {
		t.Errorf("record cache counters present: %v, want %v (SQLite)", cached, sqlite)
	} else if cached {
		if got := delta("glance_go_record_cache_hits_total"); got < 3 {
			t.Errorf("glance_go_record_cache_hits_total moved by %v, want at least 3", got)
		}
		if after["glance_go_record_cache_entries"] < 1 {
			t.Errorf("glance_go_record_cache_entries = %v", after["glance_go_record_cache_entries"])
		}
	}
	if got, ok := after["glance_uploads_in_flight"]; !ok || got != 0 {
		t.Errorf("glance_uploads_in_flight = %v (present %v), want 0", got, ok)
	}
	for name := range after {
		if strings.Contains(name, id) {
			t.Errorf("a sample is labelled with a raw path: %s", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := after[name]; !ok {
			t.Errorf("no %s sample", name)
		}
	}
	if !hasPrefixKey(after, "glance_build_info{") {
		t.Error("no glance_build_info sample")
	}
}

func hasPrefixKey(m map[string]float64, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// TestMetricsElsewhere serves the metrics on a port of their own
// ([glance_go] metrics_bind), and not at all with metrics = false: then
// /metrics is an unknown path, answered with the version document.
func TestMetricsElsewhere(t *testing.T) {
	mport, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	murl := fmt.Sprintf("http://127.0.0.1:%d", mport)
	p, _ := opsServer(t, "metrics-bind", fmt.Sprintf("\n[glance_go]\nmetrics_bind = 127.0.0.1:%d\n", mport))
	(&server{URL: p.url}).do(t, tenantA, "GET", "/v2/images", nil).want(t, http.StatusOK)
	m := scrape(t, murl)
	if m[`glance_http_requests_total{code="200",method="GET",route="/v2/images"}`] != 1 {
		t.Errorf("the metrics port does not count the API's request: %v", filterGlance(m))
	}
	(&server{URL: p.url}).do(t, nobody, "GET", "/metrics", nil).want(t, http.StatusMultipleChoices)

	off, _ := opsServer(t, "metrics-off", "\n[glance_go]\nmetrics = false\n")
	(&server{URL: off.url}).do(t, nobody, "GET", "/metrics", nil).want(t, http.StatusMultipleChoices)
}

func filterGlance(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if sampleRE.MatchString(k) {
			out[k] = v
		}
	}
	return out
}

// TestCORSRaw sends a browser's requests by hand: a preflight that is
// allowed, one whose header is not, one from another origin, and actual
// requests, including one refused by authentication.
func TestCORSRaw(t *testing.T) {
	origin := "http://127.0.0.1:1"
	p, _ := opsServer(t, "cors-raw", "\n[cors]\nallowed_origin = "+origin+"\n")
	srv := &server{URL: p.url, Trusted: true}

	r := srv.do(t, nobody, "OPTIONS", "/v2/images", nil, hdr("Origin", origin),
		hdr("Access-Control-Request-Method", "POST"), hdr("Access-Control-Request-Headers", "X-Auth-Token, Content-Type"))
	r.want(t, http.StatusOK)
	for k, v := range map[string]string{
		"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Headers": "X-Auth-Token,Content-Type", "Access-Control-Max-Age": "3600", "Vary": "Origin",
		"Content-Length": "0",
	} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("preflight: %s = %q, want %q", k, got, v)
		}
	}
	for _, refused := range [][]opt{
		{hdr("Origin", origin), hdr("Access-Control-Request-Method", "POST"), hdr("Access-Control-Request-Headers", "X-Project-Id")},
		{hdr("Origin", origin), hdr("Access-Control-Request-Method", "OPTIONS")},
		{hdr("Origin", "http://127.0.0.1:2"), hdr("Access-Control-Request-Method", "GET")},
	} {
		r := srv.do(t, nobody, "OPTIONS", "/v2/images", nil, refused...).want(t, http.StatusOK)
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" || len(r.Body) != 0 {
			t.Errorf("refused preflight: Access-Control-Allow-Origin %q, body %q", got, r.Body)
		}
	}
	r = srv.do(t, tenantA, "GET", "/v2/images", nil, hdr("Origin", origin)).want(t, http.StatusOK)
	if r.Header.Get("Access-Control-Allow-Origin") != origin ||
		r.Header.Get("Access-Control-Expose-Headers") != "X-Image-Meta-Checksum,X-Auth-Token,X-Subject-Token,X-Service-Token,X-OpenStack-Request-ID" {
		t.Errorf("actual request: %v", r.Header)
	}
	r = srv.do(t, nobody, "GET", "/v2/images", nil, hdr("Origin", origin)).want(t, http.StatusUnauthorized)
	if r.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Error("a 401 lacks the CORS headers, so a browser cannot read it")
	}
	r = srv.do(t, tenantA, "GET", "/v2/images", nil, hdr("Origin", "http://127.0.0.1:2")).want(t, http.StatusOK)
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("another origin got CORS headers")
	}
}

// TestRequestLog finds the log line of a request by its request id: method,
// route, status, bytes, duration, project and user, and never the token.
func TestRequestLog(t *testing.T) {
	p, _ := opsServer(t, "request-log", "")
	srv := &server{URL: p.url, Trusted: true}
	img := srv.rawImage(t, tenantA, nil)
	reqID := "req-" + randHex(16)
	token := "gAAAA-" + randHex(16)
	srv.do(t, tenantA, "PUT", "/v2/images/"+img["id"].(string)+"/file", []byte("0123456789"),
		hdr("Content-Type", "application/octet-stream"), hdr("X-Openstack-Request-Id", reqID), hdr("X-Auth-Token", token)).
		want(t, http.StatusNoContent)
	var line string
	// The line is written once the response is sent: give the server a
	// moment to flush it, without depending on how long that takes.
	for range 50 {
		b, err := os.ReadFile(p.log)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "request_id="+reqID) && strings.Contains(l, "msg=request ") {
				line = l
			}
		}
		if line != "" || strings.Contains(string(b), token) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if line == "" {
		t.Fatalf("no request line with request_id=%s in %s:\n%s", reqID, p.log, tail(p.log))
	}
	for _, part := range []string{"method=PUT", "route=/v2/images/:id/file", "status=204", "bytes_in=10", "bytes_out=0",
		"duration_ms=", "project=" + tenantA.Project, "user=" + tenantA.User} {
		if !strings.Contains(line, part) {
			t.Errorf("request line lacks %q: %s", part, line)
		}
	}
	if b, _ := os.ReadFile(p.log); strings.Contains(string(b), token) {
		t.Error("the token reached the log")
	}
}
