package e2e

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

// acceptJSON asks for JSON error bodies.
var acceptJSON = hdr("Accept", "application/json")

// errMessage returns the message of a JSON error body.
func (r *reply) errMessage(t testing.TB) string {
	t.Helper()
	msg, _ := r.object(t)["message"].(string)
	return msg
}

// wantError checks the status and that the JSON error message contains
// msg (when msg is not empty).
func (r *reply) wantError(t testing.TB, status int, msg string) {
	t.Helper()
	r.want(t, status)
	if msg == "" {
		return
	}
	if got := r.errMessage(t); !strings.Contains(got, msg) {
		t.Errorf("%s %s: message %q does not contain %q", r.Method, r.Path, got, msg)
	}
}

func TestVersions(t *testing.T) {
	s := suite.srv
	cases := []struct {
		name, path string
		want       int
	}{
		{"root", "/", http.StatusMultipleChoices},
		{"versions", "/versions", http.StatusOK},
		{"unknown version prefix", "/v3/images", http.StatusMultipleChoices},
	}
	var first []byte
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, nobody, http.MethodGet, tc.path, nil).want(t, tc.want)
			doc := r.object(t)
			vs, _ := doc["versions"].([]any)
			var got []string
			current := 0
			for _, v := range vs {
				m := v.(map[string]any)
				got = append(got, m["id"].(string))
				switch m["status"] {
				case "CURRENT":
					current++
				case "SUPPORTED":
				default:
					t.Errorf("version %v: status %v", m["id"], m["status"])
				}
				links := m["links"].([]any)
				l := links[0].(map[string]any)
				if l["rel"] != "self" || l["href"] != s.URL+"/v2/" {
					t.Errorf("version %v: link %v, want self %s/v2/", m["id"], l, s.URL)
				}
			}
			if current != 1 {
				t.Errorf("%d CURRENT versions, want 1: %v", current, got)
			}
			for _, v := range []string{"v2.0", "v2.1", "v2.2", "v2.3", "v2.4", "v2.5", "v2.6", "v2.7"} {
				if !slices.Contains(got, v) {
					t.Errorf("versions %v lack %s", got, v)
				}
			}
			if first == nil {
				first = r.Body
			} else if string(first) != string(r.Body) {
				t.Errorf("body differs from GET /:\n%s\n%s", first, r.Body)
			}
		})
	}
	t.Run("v2 redirects", func(t *testing.T) {
		r := s.do(t, tenantA, http.MethodGet, "/v2", nil).want(t, http.StatusFound)
		if got := r.Header.Get("Location"); got != s.URL+"/v2/" {
			t.Errorf("Location %q, want %s/v2/", got, s.URL)
		}
	})
	t.Run("minor version prefix", func(t *testing.T) {
		r := s.do(t, tenantA, http.MethodGet, "/v2.1/images?limit=1", nil).want(t, http.StatusOK)
		if _, ok := r.object(t)["images"]; !ok {
			t.Errorf("GET /v2.1/images: no images key: %s", r.Body)
		}
	})
}

var timestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestCreateImage(t *testing.T) {
	s := suite.srv
	t.Run("headers and body", func(t *testing.T) {
		name := uniq("create")
		r := s.do(t, tenantA, http.MethodPost, "/v2/images", map[string]any{
			"name": name, "disk_format": "raw", "container_format": "bare",
			"tags": []string{"t1", "t2", "t1"}, "foo": "bar",
		}).want(t, http.StatusCreated)
		img := r.object(t)
		id, _ := img["id"].(string)
		s.cleanup(t, id)
		if got := r.Header.Get("Location"); got != s.URL+"/v2/images/"+id {
			t.Errorf("Location %q, want %s/v2/images/%s", got, s.URL, id)
		}
		if got := r.Header.Get("OpenStack-image-import-methods"); got != "glance-direct,web-download,copy-image" {
			t.Errorf("OpenStack-image-import-methods %q", got)
		}
		want := map[string]any{
			"name": name, "disk_format": "raw", "container_format": "bare", "foo": "bar",
			"visibility": "shared", "status": "queued", "protected": false, "os_hidden": false,
			"min_ram": 0.0, "min_disk": 0.0, "owner": s.ownerOf(tenantA),
			"size": nil, "virtual_size": nil, "checksum": nil, "os_hash_algo": nil, "os_hash_value": nil,
			"self": "/v2/images/" + id, "file": "/v2/images/" + id + "/file", "schema": "/v2/schemas/image",
		}
		checkFields(t, img, want)
		checkTags(t, img, "t1", "t2")
		for _, k := range []string{"created_at", "updated_at"} {
			if v, _ := img[k].(string); !timestamp.MatchString(v) {
				t.Errorf("%s = %v, want YYYY-MM-DDTHH:MM:SSZ", k, img[k])
			}
		}
		for _, k := range []string{"direct_url", "locations"} {
			if _, ok := img[k]; ok {
				t.Errorf("%s is shown, want it absent by default", k)
			}
		}
	})
	t.Run("empty body", func(t *testing.T) {
		img := s.createImage(t, tenantA, map[string]any{})
		checkFields(t, img, map[string]any{"name": nil, "disk_format": nil, "container_format": nil,
			"visibility": "shared", "status": "queued"})
	})
	t.Run("body sent as text/plain", func(t *testing.T) {
		r := s.do(t, tenantA, http.MethodPost, "/v2/images", `{"name": "plain"}`, hdr("Content-Type", "text/plain"))
		r.want(t, http.StatusCreated)
		s.cleanup(t, r.object(t)["id"].(string))
	})
	t.Run("caller-chosen id", func(t *testing.T) {
		id := domain.NewUUID()
		img := s.createImage(t, tenantA, map[string]any{"id": id, "visibility": "private", "min_ram": 512, "min_disk": 1})
		checkFields(t, img, map[string]any{"id": id, "visibility": "private", "min_ram": 512.0, "min_disk": 1.0})
		s.do(t, tenantA, http.MethodPost, "/v2/images", map[string]any{"id": id}, acceptJSON).
			wantError(t, http.StatusConflict, "Image ID "+id+" already exists!")
	})

	bad := []struct {
		name   string
		body   any
		status int
		msg    string
	}{
		{"read-only status", map[string]any{"status": "active"}, http.StatusForbidden, "Attribute 'status' is read-only."},
		{"read-only checksum", map[string]any{"checksum": "x"}, http.StatusForbidden, "Attribute 'checksum' is read-only."},
		{"read-only self", map[string]any{"self": "/x"}, http.StatusForbidden, "Attribute 'self' is read-only."},
		{"reserved os_glance prefix", map[string]any{"os_glance_foo": "x"}, http.StatusForbidden, "Attribute 'os_glance_foo' is reserved."},
		{"reserved locations", map[string]any{"locations": []any{}}, http.StatusForbidden, "Attribute 'locations' is reserved."},
		{"unknown disk_format", map[string]any{"disk_format": "floppy"}, http.StatusBadRequest, ""},
		{"id not a uuid", map[string]any{"id": "not-a-uuid"}, http.StatusBadRequest, ""},
		{"negative min_ram", map[string]any{"min_ram": -1}, http.StatusBadRequest, ""},
		{"min_ram as string", map[string]any{"min_ram": "12"}, http.StatusBadRequest, ""},
		{"min_disk too large", map[string]any{"min_disk": 2147483648}, http.StatusBadRequest, ""},
		{"protected not boolean", map[string]any{"protected": "yes"}, http.StatusBadRequest, ""},
		{"property value not a string", map[string]any{"foo": 1}, http.StatusBadRequest, ""},
		{"property key too long", map[string]any{strings.Repeat("k", 256): "v"}, http.StatusBadRequest,
			"Custom property should not be greater than 255 characters."},
		{"name too long", map[string]any{"name": strings.Repeat("n", 256)}, http.StatusBadRequest, ""},
		{"4-byte unicode name", map[string]any{"name": "\U0001F600"}, http.StatusBadRequest, "Name can't contain 4 byte unicode characters."},
		{"invalid JSON", "{", http.StatusBadRequest, "Malformed JSON in request body."},
		{"scalar body", "1", http.StatusBadRequest, "Unexpected body type. Expected list/dict."},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tenantA, http.MethodPost, "/v2/images", tc.body, acceptJSON, hdr("Content-Type", "application/json"))
			if r.Status == http.StatusCreated {
				s.cleanup(t, r.object(t)["id"].(string))
			}
			r.wantError(t, tc.status, tc.msg)
		})
	}
}

// checkFields compares the listed fields of an image.
func checkFields(t testing.TB, img map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		got, ok := img[k]
		if !ok {
			t.Errorf("field %s is missing, want %v", k, w)
			continue
		}
		if got != w {
			t.Errorf("field %s = %#v, want %#v", k, got, w)
		}
	}
}

// checkTags compares an image's tags as a set.
func checkTags(t testing.TB, img map[string]any, want ...string) {
	t.Helper()
	raw, ok := img["tags"].([]any)
	if !ok {
		t.Fatalf("tags = %#v, want an array", img["tags"])
	}
	var got []string
	for _, v := range raw {
		got = append(got, v.(string))
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("tags = %v, want %v", got, want)
	}
}

func TestShowImage(t *testing.T) {
	s := suite.srv
	img := s.rawImage(t, tenantA, map[string]any{"color": "red"})
	id := img["id"].(string)
	got := s.show(t, tenantA, id)
	for k, v := range img {
		if k == "tags" {
			continue
		}
		if got[k] != v {
			t.Errorf("show %s = %#v, create said %#v", k, got[k], v)
		}
	}
	missing := []struct{ name, id string }{
		{"unknown uuid", domain.NewUUID()},
		{"not a uuid", "not-a-uuid"},
		{"longer than 36", strings.Repeat("a", 40)},
	}
	for _, tc := range missing {
		t.Run(tc.name, func(t *testing.T) {
			s.do(t, tenantA, http.MethodGet, "/v2/images/"+tc.id, nil, acceptJSON).
				wantError(t, http.StatusNotFound, "No image found with ID "+tc.id)
		})
	}
}

func TestDeleteImage(t *testing.T) {
	s := suite.srv
	t.Run("then gone and id not reusable", func(t *testing.T) {
		id := s.rawImage(t, tenantA, nil)["id"].(string)
		s.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
		s.do(t, tenantA, http.MethodGet, "/v2/images/"+id, nil).want(t, http.StatusNotFound)
		s.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNotFound)
		s.patch(t, tenantA, id, op{Op: "replace", Path: "/name", Value: "x"}).want(t, http.StatusNotFound)
		s.do(t, tenantA, http.MethodPost, "/v2/images", map[string]any{"id": id}, acceptJSON).
			wantError(t, http.StatusConflict, "Image ID "+id+" already exists!")
	})
	t.Run("protected", func(t *testing.T) {
		id := s.rawImage(t, tenantA, map[string]any{"protected": true})["id"].(string)
		s.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil, acceptJSON).
			wantError(t, http.StatusForbidden, "Image "+id+" is protected and cannot be deleted.")
		s.show(t, tenantA, id)
		s.patch(t, tenantA, id, op{Op: "replace", Path: "/protected", Value: false}).want(t, http.StatusOK)
		s.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
	})
	t.Run("with data", func(t *testing.T) {
		id := s.rawImage(t, tenantA, nil)["id"].(string)
		s.upload(t, tenantA, id, randomBytes(1000))
		s.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
		s.do(t, tenantA, http.MethodGet, "/v2/images/"+id+"/file", nil).want(t, http.StatusNotFound)
	})
}

func TestTags(t *testing.T) {
	s := suite.srv
	id := s.rawImage(t, tenantA, map[string]any{"tags": []string{"keep"}})["id"].(string)
	base := "/v2/images/" + id + "/tags/"
	steps := []struct {
		name, method, tag string
		want              int
		tags              []string // the image's tags afterwards, when not nil
	}{
		{"add", http.MethodPut, "new", http.StatusNoContent, []string{"keep", "new"}},
		{"add again is idempotent", http.MethodPut, "new", http.StatusNoContent, []string{"keep", "new"}},
		{"add with a space", http.MethodPut, "with%20space", http.StatusNoContent, []string{"keep", "new", "with space"}},
		{"too long", http.MethodPut, strings.Repeat("t", 256), http.StatusBadRequest, []string{"keep", "new", "with space"}},
		{"delete", http.MethodDelete, "new", http.StatusNoContent, []string{"keep", "with space"}},
		{"delete absent", http.MethodDelete, "new", http.StatusNotFound, []string{"keep", "with space"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			s.do(t, tenantA, st.method, base+st.tag, nil).want(t, st.want)
			checkTags(t, s.show(t, tenantA, id), st.tags...)
		})
	}
	t.Run("unknown image", func(t *testing.T) {
		s.do(t, tenantA, http.MethodPut, "/v2/images/"+domain.NewUUID()+"/tags/x", nil).want(t, http.StatusNotFound)
	})
}
