package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/stores"
)

// harness drives New through httptest with a fake gateway.
type harness struct {
	t  *testing.T
	h  http.Handler
	st *fakeStore
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	st := newFakeStore()
	if opts.Auth == nil {
		opts.Auth = TrustedHeaders(nil)
	}
	return &harness{t: t, h: New(fakeGateway{st}, opts), st: st}
}

// Identities, as header lists.
var (
	admin   = []string{"X-Identity-Status", "Confirmed", "X-Project-Id", "admin-p", "X-Roles", "admin"}
	tenantA = []string{"X-Identity-Status", "Confirmed", "X-Project-Id", "tenant-a", "X-User-Id", "user-a", "X-Roles", "member,reader"}
	tenantB = []string{"X-Identity-Status", "Confirmed", "X-Project-Id", "tenant-b", "X-Roles", "Member"}
)

func (h *harness) do(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	return w
}

func with(base []string, more ...string) []string {
	return append(append([]string{}, base...), more...)
}

// create makes an image as who and returns its id.
func (h *harness) create(who []string, body string) string {
	h.t.Helper()
	w := h.do("POST", "/v2/images", body, who...)
	if w.Code != http.StatusCreated {
		h.t.Fatalf("create %s: %d %s", body, w.Code, w.Body)
	}
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		h.t.Fatal(err)
	}
	return out["id"].(string)
}

func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return out
}

// jsonMessage returns the message of a JSON error body.
func jsonMessage(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	m := decode(t, w)
	msg, _ := m["message"].(string)
	return msg
}

var reqIDRe = regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestVersions(t *testing.T) {
	h := newHarness(t, Options{})
	tests := []struct {
		name, method, path string
		headers            []string
		want               int
		location           string
	}{
		{"root", "GET", "/", nil, 300, ""},
		{"versions", "GET", "/versions", nil, 200, ""},
		{"unknown version", "GET", "/v3/images", nil, 300, ""},
		{"v2.8 needs multi-store", "GET", "/v2.8/images", tenantA, 300, ""},
		{"no version", "GET", "/images", tenantA, 300, ""},
		{"bare v2 redirects", "GET", "/v2", tenantA, 302, "http://example.com/v2/"},
		{"v2 slash is 404", "GET", "/v2/", tenantA, 404, ""},
		{"v2.1 rewritten", "GET", "/v2.1/images", tenantA, 200, ""},
		{"v2.17 rewritten", "GET", "/v2.17/images", tenantA, 200, ""},
		{"media type version", "GET", "/images", with(tenantA, "Accept", "application/vnd.openstack.images-v2.1"), 200, ""},
		{"versions need no auth", "GET", "/versions", []string{"X-Identity-Status", "Invalid"}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do(tc.method, tc.path, "", tc.headers...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.location != "" && w.Header().Get("Location") != tc.location {
				t.Errorf("Location %q, want %q", w.Header().Get("Location"), tc.location)
			}
			if !reqIDRe.MatchString(w.Header().Get("X-Openstack-Request-Id")) {
				t.Errorf("request id %q", w.Header().Get("X-Openstack-Request-Id"))
			}
		})
	}
	w := h.do("GET", "/", "")
	var doc struct {
		Versions []struct {
			ID, Status string
			Links      []struct{ Rel, Href string }
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range doc.Versions {
		ids = append(ids, v.ID+":"+v.Status)
		if len(v.Links) != 1 || v.Links[0].Href != "http://example.com/v2/" || v.Links[0].Rel != "self" {
			t.Errorf("links of %s: %+v", v.ID, v.Links)
		}
	}
	want := "v2.15:SUPPORTED v2.9:SUPPORTED v2.17:CURRENT v2.7:SUPPORTED v2.6:SUPPORTED v2.5:SUPPORTED " +
		"v2.4:SUPPORTED v2.3:SUPPORTED v2.2:SUPPORTED v2.1:SUPPORTED v2.0:SUPPORTED"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("versions %s, want %s", got, want)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}

	multi, err := stores.NewMultiSet("a", &stores.Backend{ID: "a", Type: "file", Driver: proxytest.NewDriver()})
	if err != nil {
		t.Fatal(err)
	}
	ms := newHarness(t, Options{Stores: multi})
	if err := json.Unmarshal(ms.do("GET", "/versions", "").Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	ids = ids[:0]
	for _, v := range doc.Versions {
		ids = append(ids, v.ID+":"+v.Status)
	}
	want = "v2.15:SUPPORTED v2.13:SUPPORTED v2.12:SUPPORTED v2.11:SUPPORTED v2.10:SUPPORTED v2.9:SUPPORTED " +
		"v2.8:SUPPORTED v2.17:CURRENT v2.7:SUPPORTED v2.6:SUPPORTED v2.5:SUPPORTED " +
		"v2.4:SUPPORTED v2.3:SUPPORTED v2.2:SUPPORTED v2.1:SUPPORTED v2.0:SUPPORTED"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("multi-store versions %s, want %s", got, want)
	}
	if code := ms.do("GET", "/v2.12/images", "").Code; code == http.StatusMultipleChoices {
		t.Errorf("GET /v2.12/images with multi-store: %d, want it routed to /v2", code)
	}
	if code := h.do("GET", "/v2.12/images", "").Code; code != http.StatusMultipleChoices {
		t.Errorf("GET /v2.12/images without multi-store: %d, want 300", code)
	}

	pub := newHarness(t, Options{PublicEndpoint: "https://glance.example.org:9292/"})
	if body := pub.do("GET", "/versions", "").Body.String(); !strings.Contains(body, `"href": "https://glance.example.org:9292/v2/"`) {
		t.Errorf("public endpoint not used: %s", body)
	}
}

func TestRequestID(t *testing.T) {
	h := newHarness(t, Options{MaxRequestIDLength: 20})
	tests := []struct {
		name, sent string
		want       int
		wantID     string
	}{
		{"generated", "", 200, ""},
		{"adopted with prefix", "req-abc", 200, "req-abc"},
		{"prefix added", "my-req-id", 200, "req-my-req-id"},
		{"too long", strings.Repeat("x", 21), 400, ""},
		{"at the limit", strings.Repeat("x", 20), 200, "req-" + strings.Repeat("x", 20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hd := with(tenantA, "Accept", "application/json")
			if tc.sent != "" {
				hd = append(hd, "X-Openstack-Request-Id", tc.sent)
			}
			w := h.do("GET", "/v2/images", "", hd...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			got := w.Header().Get("X-Openstack-Request-Id")
			if tc.wantID != "" && got != tc.wantID {
				t.Errorf("id %q, want %q", got, tc.wantID)
			}
			if tc.wantID == "" && !reqIDRe.MatchString(got) {
				t.Errorf("id %q is not req-<uuid>", got)
			}
			if tc.want == 400 && jsonMessage(t, w) != "x-openstack-request-id is too long, max size 20<br /><br />\n\n\n" {
				t.Errorf("message %q", jsonMessage(t, w))
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	h := newHarness(t, Options{})
	id := h.create(tenantA, `{"name": "x"}`)
	json := with(tenantA, "Accept", "application/json")
	tests := []struct {
		name, method, path, body string
		headers                  []string
		want                     int
		allow, message           string
	}{
		{"405 on image", "POST", "/v2/images/" + id, "{}", json, 405, "GET, PATCH, DELETE",
			"The method POST is not allowed for this resource. <br /><br />\n"},
		{"405 HEAD file", "HEAD", "/v2/images/" + id + "/file", "", tenantA, 405, "GET, PUT", ""},
		{"405 images", "DELETE", "/v2/images", "", json, 405, "GET, POST", ""},
		{"405 tags", "GET", "/v2/images/" + id + "/tags/x", "", json, 405, "PUT, DELETE", ""},
		{"405 members", "PUT", "/v2/images/" + id + "/members", "", json, 405, "GET, POST", ""},
		{"405 member", "POST", "/v2/images/" + id + "/members/p", "", json, 405, "GET, PUT, DELETE", ""},
		{"405 action", "GET", "/v2/images/" + id + "/actions/deactivate", "", json, 405, "POST", ""},
		{"405 schema", "POST", "/v2/schemas/image", "", json, 405, "GET", ""},
		// Glance's cors filter turns the application's 501 into an empty 200.
		{"200 OPTIONS", "OPTIONS", "/v2/images", "", json, 200, "", ""},
		{"501 unknown method", "FROB", "/v2/images", "", json, 501, "", ""},
		{"404 unknown path", "GET", "/v2/nonexistent-path", "", json, 404, "", "The resource could not be found.<br /><br />\n\n\n"},
		{"404 unknown image", "GET", "/v2/images/not-a-uuid", "", json, 404, "", "No image found with ID not-a-uuid<br /><br />\n\n\n"},
		{"body on GET", "GET", "/v2/images/" + id, "{}", json, 400, "", "A body is not expected with this request.<br /><br />\n\n\n"},
		{"body on DELETE", "DELETE", "/v2/images/" + id, "x", json, 400, "", "A body is not expected with this request.<br /><br />\n\n\n"},
		{"body on deactivate", "POST", "/v2/images/" + id + "/actions/deactivate", "{}", json, 400, "", "A body is not expected with this request.<br /><br />\n\n\n"},
		{"body on tag PUT", "PUT", "/v2/images/" + id + "/tags/t", "{}", json, 400, "", ""},
		{"401 without identity", "GET", "/v2/images", "", []string{"Accept", "application/json"}, 401, "", unauthorizedText + "<br /><br />\n\n\n"},
		{"401 invalid identity", "GET", "/v2/nothing", "", []string{"X-Identity-Status", "Invalid", "Accept", "application/json"}, 401, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do(tc.method, tc.path, tc.body, tc.headers...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if tc.message != "" && jsonMessage(t, w) != tc.message {
				t.Errorf("message %q, want %q", jsonMessage(t, w), tc.message)
			}
			// The cors filter answers OPTIONS before any request id is made.
			if got := w.Header().Get("X-Openstack-Request-Id"); (got == "") != (tc.method == "OPTIONS") {
				t.Errorf("request id %q", got)
			}
		})
	}
}

func TestReadOnlyCaller(t *testing.T) {
	anon := AuthFunc(func(*http.Request) (*domain.Caller, error) { return &domain.Caller{ReadOnly: true}, nil })
	h := newHarness(t, Options{Auth: anon})
	hd := []string{"Accept", "application/json", "Content-Type", patchV21}
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v2/images", "{}"},
		{"PATCH", "/v2/images/x", "[]"},
		{"DELETE", "/v2/images/x", ""},
		{"PUT", "/v2/images/x/tags/t", ""},
		{"POST", "/v2/images/x/members", `{"member": "p"}`},
		{"POST", "/v2/images/x/actions/deactivate", ""},
	} {
		w := h.do(tc.method, tc.path, tc.body, hd...)
		if w.Code != 403 || jsonMessage(t, w) != "Read-only access<br /><br />\n\n\n" {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
	}
	if w := h.do("GET", "/v2/images", "", hd...); w.Code != 200 {
		t.Errorf("read-only list: %d", w.Code)
	}
}

func TestNoAuthIgnoresHeaders(t *testing.T) {
	c, err := NoAuth().Authenticate(httptest.NewRequest("GET", "/", nil))
	if err != nil || !c.IsAdmin || c.ProjectID != "" || c.UserID != "" {
		t.Fatalf("NoAuth caller %+v, %v", c, err)
	}
	h := newHarness(t, Options{Auth: NoAuth()})
	w := h.do("POST", "/v2/images", `{"name": "n"}`, tenantA...)
	if w.Code != 201 || decode(t, w)["owner"] != nil {
		t.Fatalf("noauth create: %d %s", w.Code, w.Body)
	}
}

func TestTrustedHeaders(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Identity-Status", "Confirmed")
	r.Header.Set("X-Tenant-Id", "p1")
	r.Header.Set("X-User-Id", "u1")
	r.Header.Set("X-Roles", " Admin ,Member,")
	r.Header.Set("X-Service-Roles", "service")
	c, err := TrustedHeaders(nil).Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	if c.ProjectID != "p1" || c.UserID != "u1" || !c.IsAdmin || strings.Join(c.Roles, ",") != "admin,member" ||
		strings.Join(c.ServiceRoles, ",") != "service" {
		t.Errorf("caller %+v", c)
	}
	c, _ = TrustedHeaders(func(*domain.Caller) bool { return false }).Authenticate(r)
	if c.IsAdmin {
		t.Error("isAdmin func ignored")
	}
	r.Header.Set("X-Identity-Status", "Invalid")
	if _, err := TrustedHeaders(nil).Authenticate(r); err == nil {
		t.Error("unconfirmed identity accepted")
	}
}

// TestErrorBodies compares rendered errors with bodies that webob produced
// for the same errors (testdata/webob-errors.json).
func TestErrorBodies(t *testing.T) {
	data, err := readTestdata("webob-errors.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Case, Status, Body string
		Accept             *string
		ContentType        string `json:"content_type"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	errs := map[string]struct {
		he     *httpError
		method string
		ctype  string
	}{
		"expl404":   {&httpError{status: 404, explanation: `No image found with ID x'y"<z>&`}, "GET", ""},
		"detail409": {&httpError{status: 409, detail: "Property foo does not exist."}, "PATCH", ""},
		"plain404":  {&httpError{status: 404}, "GET", ""},
		"m405":      {&httpError{status: 405}, "POST", ""},
		"m415":      {&httpError{status: 415}, "PATCH", "application/json"},
		"uni400":    {&httpError{status: 400, explanation: "caf\u00e9 \U0001F600 tab\tnl\nend"}, "GET", ""},
		"d416":      {&httpError{status: 416, detail: "Invalid Range header."}, "GET", ""},
		"e401":      {&httpError{status: 401}, "GET", ""},
	}
	if len(cases) == 0 {
		t.Fatal("no golden cases")
	}
	for _, gc := range cases {
		e, ok := errs[gc.Case]
		if !ok {
			t.Fatalf("unknown case %s", gc.Case)
		}
		r := httptest.NewRequest(e.method, "/v2/x", nil)
		if gc.Accept != nil {
			r.Header.Set("Accept", *gc.Accept)
		}
		if e.ctype != "" {
			r.Header.Set("Content-Type", e.ctype)
		}
		ct, body := renderError(e.he, r)
		accept := "<none>"
		if gc.Accept != nil {
			accept = *gc.Accept
		}
		if ct != gc.ContentType {
			t.Errorf("%s accept %s: content type %q, want %q", gc.Case, accept, ct, gc.ContentType)
		}
		if body != gc.Body {
			t.Errorf("%s accept %s:\n got %q\nwant %q", gc.Case, accept, body, gc.Body)
		}
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct{ accept, want string }{
		{"", ""},
		{"*/*", "text/html"},
		{"text/html", "text/html"},
		{"application/json", "application/json"},
		{"text/plain", ""},
		{"application/json, text/html", "text/html"},
		{"text/html;q=0.5, application/json", "application/json"},
		{"application/*", "application/json"},
		{"text/*", "text/html"},
		{"garbage;;", "text/html"},
		{"application/json;q=0", ""},
		{"*/*;q=0.1, application/json", "application/json"},
	}
	for _, tc := range tests {
		var vals []string
		if tc.accept != "" {
			vals = []string{tc.accept}
		}
		if got := negotiate(vals); got != tc.want {
			t.Errorf("negotiate(%q) = %q, want %q", tc.accept, got, tc.want)
		}
	}
}

// panicGateway fails every request, to check the 500 path.
type panicGateway struct{}

func (panicGateway) Images(*domain.Caller) (domain.Repo, domain.Factory)    { panic("boom") }
func (panicGateway) Members(*domain.Caller, domain.Image) domain.MemberRepo { panic("boom") }

func TestInternalError(t *testing.T) {
	h := &harness{t: t, h: New(panicGateway{}, Options{Auth: NoAuth()})}
	w := h.do("GET", "/v2/images", "", "Accept", "application/json")
	if w.Code != 500 || jsonMessage(t, w) != explainServer+"<br /><br />\n\n\n" {
		t.Errorf("panic: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("X-Openstack-Request-Id") == "" {
		t.Error("no request id on 500")
	}
}
