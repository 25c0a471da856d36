package e2e

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestErrorBodies(t *testing.T) {
	s := suite.srv
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	missing := "00000000-0000-4000-8000-000000000000"
	errs := []struct {
		name         string
		method, path string
		body         any
		ctype        string
		status       string // the status line: "404 Not Found"
		title, msg   string
	}{
		{"not found", "GET", "/v2/images/" + missing, nil, "", "404 Not Found", "Not Found", "No image found with ID " + missing},
		{"bad request", "GET", "/v2/images?limit=abc", nil, "", "400 Bad Request", "Bad Request", "limit param must be an integer"},
		{"forbidden", "POST", "/v2/images", map[string]any{"status": "active"}, "", "403 Forbidden", "Forbidden",
			"Attribute 'status' is read-only."},
		{"conflict", "PATCH", "/v2/images/" + id, `[{"op": "remove", "path": "/nope"}]`, patchV21, "409 Conflict", "Conflict", ""},
		{"unsupported media type", "PATCH", "/v2/images/" + id, `[]`, "application/json", "415 Unsupported Media Type",
			"Unsupported Media Type", ""},
	}
	for _, tc := range errs {
		code, _ := strconv.Atoi(tc.status[:3])
		t.Run(tc.name+" as JSON", func(t *testing.T) {
			r := s.do(t, tenantA, tc.method, tc.path, tc.body, hdr("Content-Type", tc.ctype), acceptJSON)
			if got := r.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q, want application/json", got)
			}
			body := r.object(t)
			if r.Status != code {
				t.Fatalf("status %d, want %s", r.Status, tc.status)
			}
			checkFields(t, body, map[string]any{"code": tc.status, "title": tc.title})
			msg, _ := body["message"].(string)
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not contain %q", msg, tc.msg)
			}
		})
		for _, accept := range []string{"", "text/plain"} {
			t.Run(tc.name+" as text, Accept "+accept, func(t *testing.T) {
				r := s.do(t, tenantA, tc.method, tc.path, tc.body, hdr("Content-Type", tc.ctype), hdr("Accept", accept))
				if r.Status != code {
					t.Fatalf("status %d, want %s", r.Status, tc.status)
				}
				if got := r.Header.Get("Content-Type"); got != "text/plain; charset=UTF-8" {
					t.Errorf("Content-Type %q, want text/plain; charset=UTF-8", got)
				}
				if body := string(r.Body); !strings.HasPrefix(body, tc.status+"\n\n") || !strings.Contains(body, tc.msg) {
					t.Errorf("body %q, want %q, a blank line and the message %q", body, tc.status, tc.msg)
				}
			})
		}
	}
	t.Run("success bodies are JSON whatever the Accept", func(t *testing.T) {
		for _, accept := range []string{"text/html", "text/plain", "*/*"} {
			s.do(t, tenantA, http.MethodGet, "/v2/images/"+id, nil, hdr("Accept", accept)).want(t, http.StatusOK).object(t)
		}
	})
}

var requestID = regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestRequestID(t *testing.T) {
	s := suite.srv
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	cases := []struct {
		name, method, path string
		body               any
		ctype              string
		status             int
	}{
		{"list", "GET", "/v2/images?limit=1", nil, "", 200},
		{"show", "GET", "/v2/images/" + id, nil, "", 200},
		{"create", "POST", "/v2/images", map[string]any{"name": uniq("reqid")}, "", 201},
		{"tag", "PUT", "/v2/images/" + id + "/tags/t", nil, "", 204},
		{"empty download", "GET", "/v2/images/" + id + "/file", nil, "", 204},
		{"not found", "GET", "/v2/images/00000000-0000-4000-8000-000000000000", nil, "", 404},
		{"bad request", "GET", "/v2/images?limit=x", nil, "", 400},
		{"method not allowed", "PUT", "/v2/images", nil, "", 405},
		{"unsupported media type", "PATCH", "/v2/images/" + id, "[]", "application/json", 415},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tenantA, tc.method, tc.path, tc.body, hdr("Content-Type", tc.ctype)).want(t, tc.status)
			if tc.status == http.StatusCreated {
				s.cleanup(t, r.object(t)["id"].(string))
			}
			got := r.Header.Get("X-Openstack-Request-Id")
			if !requestID.MatchString(got) {
				t.Errorf("x-openstack-request-id %q, want req-<uuid>", got)
			}
			if seen[got] {
				t.Errorf("x-openstack-request-id %q repeated", got)
			}
			seen[got] = true
		})
	}
	echo := []struct{ sent, want string }{
		{"req-0b8e4d49-bd9e-4a1a-9d49-0c1b7b3c5e11", "req-0b8e4d49-bd9e-4a1a-9d49-0c1b7b3c5e11"},
		{"my-request", "req-my-request"},
	}
	for _, tc := range echo {
		t.Run("echo "+tc.sent, func(t *testing.T) {
			// The noauth pipeline makes a fresh id whatever the client sends.
			needTrusted(t)
			r := s.do(t, tenantA, http.MethodGet, "/v2/images?limit=1", nil, hdr("X-Openstack-Request-Id", tc.sent)).want(t, http.StatusOK)
			if got := r.Header.Get("X-Openstack-Request-Id"); got != tc.want {
				t.Errorf("x-openstack-request-id %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := suite.srv
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	img := "/v2/images/" + id
	cases := []struct{ method, path, allow string }{
		{"PUT", "/v2/images", "GET, POST"},
		{"DELETE", "/v2/images", "GET, POST"},
		{"POST", img, "GET, PATCH, DELETE"},
		{"PUT", img, "GET, PATCH, DELETE"},
		{"HEAD", img, "GET, PATCH, DELETE"},
		{"POST", img + "/file", "GET, PUT"},
		{"HEAD", img + "/file", "GET, PUT"},
		{"GET", img + "/tags/x", "PUT, DELETE"},
		{"PUT", img + "/members", "GET, POST"},
		{"POST", img + "/members/x", "GET, PUT, DELETE"},
		{"GET", img + "/actions/deactivate", "POST"},
		{"GET", img + "/actions/reactivate", "POST"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+strings.ReplaceAll(tc.path, id, "{id}"), func(t *testing.T) {
			r := s.do(t, tenantA, tc.method, tc.path, nil, acceptJSON).want(t, http.StatusMethodNotAllowed)
			if got := r.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if tc.method != http.MethodHead {
				checkFields(t, r.object(t), map[string]any{"code": "405 Method Not Allowed"})
			}
		})
	}
}

func TestUnauthenticated(t *testing.T) {
	needTrusted(t)
	s := suite.srv
	cases := []struct {
		name   string
		status string // X-Identity-Status; "" sends none
		path   string
		accept string
	}{
		{"no identity", "", "/v2/images", ""},
		{"identity invalid", "Invalid", "/v2/images", ""},
		{"no identity, JSON", "", "/v2/images", "application/json"},
		{"no identity, image", "", "/v2/images/00000000-0000-4000-8000-000000000000", ""},
		{"project headers without status", "", "/v2/schemas/image", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, nobody, http.MethodGet, tc.path, nil, hdr("X-Identity-Status", tc.status),
				hdr("X-Project-Id", tenantA.Project), hdr("X-Roles", "admin"), hdr("Accept", tc.accept))
			r.want(t, http.StatusUnauthorized)
			if tc.accept != "" {
				checkFields(t, r.object(t), map[string]any{"code": "401 Unauthorized", "title": "Unauthorized"})
			}
		})
	}
	t.Run("versions need no identity", func(t *testing.T) {
		s.do(t, nobody, http.MethodGet, "/versions", nil).want(t, http.StatusOK)
	})
}
