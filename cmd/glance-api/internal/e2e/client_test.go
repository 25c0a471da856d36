package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// runID keeps the projects, names and tags of one run apart from those of
// earlier runs against the same long-lived server.
var runID = randHex(4)

// caller is who a request acts for. The trusted flavor reads it from the
// X-* headers Keystone's middleware would set; the noauth flavor ignores it.
type caller struct {
	Project string
	User    string
	Roles   string // X-Roles, comma-separated
}

// The callers of the suite. nobody sends no identity headers at all.
var (
	nobody  *caller
	tenantA = &caller{Project: "e2e-a-" + runID, User: "e2e-user-a", Roles: "member,reader"}
	tenantB = &caller{Project: "e2e-b-" + runID, User: "e2e-user-b", Roles: "member,reader"}
	tenantC = &caller{Project: "e2e-c-" + runID, User: "e2e-user-c", Roles: "member,reader"}
	readerA = &caller{Project: tenantA.Project, User: "e2e-reader-a", Roles: "reader"}
	admin   = &caller{Project: "e2e-admin-" + runID, User: "e2e-admin", Roles: "admin,member,reader"}
)

var httpClient = &http.Client{
	Timeout: 2 * time.Minute,
	// Redirects and compression are part of what is tested: see them raw.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableCompression: true},
}

// reply is a response read in full.
type reply struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

// opt changes a request before it is sent.
type opt func(*http.Request)

// hdr sets a request header; an empty value removes it.
func hdr(key, value string) opt {
	return func(r *http.Request) {
		if value == "" {
			r.Header.Del(key)
			return
		}
		r.Header.Set(key, value)
	}
}

// chunked is a request body sent with Transfer-Encoding: chunked.
type chunked struct{ io.Reader }

// do sends one request as the caller and reads the whole response. body is
// nil, a string or []byte (sent with a Content-Length), a chunked reader, or
// any other value, sent as JSON.
func (s *server) do(t testing.TB, as *caller, method, path string, body any, opts ...opt) *reply {
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case chunked:
		rd = struct{ io.Reader }{b.Reader} // hide the length from net/http
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encoding the body of %s %s: %v", method, path, err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if as != nil {
		req.Header.Set("X-Identity-Status", "Confirmed")
		req.Header.Set("X-Project-Id", as.Project)
		req.Header.Set("X-User-Id", as.User)
		req.Header.Set("X-Roles", as.Roles)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return &reply{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// want fails t unless the reply has the status code.
func (r *reply) want(t testing.TB, status int) *reply {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s %s: got %d, want %d; body: %s", r.Method, r.Path, r.Status, status, clip(r.Body))
	}
	return r
}

// object decodes a JSON object body.
func (r *reply) object(t testing.TB) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, want application/json", r.Method, r.Path, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v: %s", r.Method, r.Path, err, clip(r.Body))
	}
	return m
}

// clip shortens a body for a failure message.
func clip(b []byte) string {
	if !utf8.Valid(b) {
		return fmt.Sprintf("(%d bytes of binary data)", len(b))
	}
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}

// jsonPatch is the media type of PATCH /v2/images/{id} (draft 10).
const jsonPatch = "application/openstack-images-v2.1-json-patch"

// op is one JSON-patch operation of the v2.1 media type.
type op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// patch sends a v2.1 JSON patch.
func (s *server) patch(t testing.TB, as *caller, id string, ops ...op) *reply {
	t.Helper()
	body, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	return s.do(t, as, http.MethodPatch, "/v2/images/"+id, body, hdr("Content-Type", jsonPatch))
}

// createImage creates an image, checks the 201 and deletes the image when
// the test ends.
func (s *server) createImage(t testing.TB, as *caller, body map[string]any) map[string]any {
	t.Helper()
	img := s.do(t, as, http.MethodPost, "/v2/images", body).want(t, http.StatusCreated).object(t)
	id, _ := img["id"].(string)
	if id == "" {
		t.Fatalf("created image has no id: %v", img)
	}
	s.cleanup(t, id)
	return img
}

// cleanup deletes the image as the admin when the test ends, whatever state
// the test left it in.
func (s *server) cleanup(t testing.TB, id string) {
	t.Cleanup(func() {
		s.patch(t, admin, id, op{Op: "replace", Path: "/protected", Value: false})
		s.do(t, admin, http.MethodDelete, "/v2/images/"+id, nil)
	})
}

// rawImage creates a raw/bare image owned by the caller, named uniquely.
func (s *server) rawImage(t testing.TB, as *caller, extra map[string]any) map[string]any {
	t.Helper()
	body := map[string]any{"name": uniq("img"), "disk_format": "raw", "container_format": "bare"}
	for k, v := range extra {
		body[k] = v
	}
	return s.createImage(t, as, body)
}

// upload stores data as the image's data, sized, and checks the 204.
func (s *server) upload(t testing.TB, as *caller, id string, data []byte) {
	t.Helper()
	s.do(t, as, http.MethodPut, "/v2/images/"+id+"/file", data,
		hdr("Content-Type", "application/octet-stream")).want(t, http.StatusNoContent)
}

// show returns the image as the caller sees it, checking the 200.
func (s *server) show(t testing.TB, as *caller, id string) map[string]any {
	t.Helper()
	return s.do(t, as, http.MethodGet, "/v2/images/"+id, nil).want(t, http.StatusOK).object(t)
}

// ownerOf is the owner an image created by the caller gets.
func (s *server) ownerOf(as *caller) any {
	if !s.Trusted || as == nil {
		return nil
	}
	return as.Project
}

var seq atomic.Int64

// uniq returns a name unique to this run.
func uniq(prefix string) string {
	return fmt.Sprintf("e2e-%s-%s-%d", prefix, runID, seq.Add(1))
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// randomBytes returns n bytes of random data.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// ids returns the ids of the images of a list reply, in order.
func ids(t testing.TB, list map[string]any) []string {
	t.Helper()
	imgs, ok := list["images"].([]any)
	if !ok {
		t.Fatalf("list has no images array: %v", list)
	}
	var out []string
	for _, i := range imgs {
		out = append(out, i.(map[string]any)["id"].(string))
	}
	return out
}
