package e2e

import (
	"net/http"
	"testing"
)

// The two JSON-patch media types of PATCH /v2/images/{id}.
const (
	patchV21 = "application/openstack-images-v2.1-json-patch"
	patchV20 = "application/openstack-images-v2.0-json-patch"
)

func TestPatchImage(t *testing.T) {
	s := suite.srv
	cases := []struct {
		name    string
		as      *caller
		trusted bool   // needs project-scoped callers
		ctype   string // "" sends no Content-Type
		body    string
		status  int
		msg     string
		check   func(t *testing.T, img map[string]any)
	}{
		{name: "replace name", ctype: patchV21, body: `[{"op": "replace", "path": "/name", "value": "renamed"}]`,
			status: http.StatusOK, check: fields(map[string]any{"name": "renamed"})},
		{name: "add property", ctype: patchV21, body: `[{"op": "add", "path": "/color", "value": "blue"}]`,
			status: http.StatusOK, check: fields(map[string]any{"color": "blue", "foo": "bar"})},
		{name: "add existing property sets it", ctype: patchV21, body: `[{"op": "add", "path": "/foo", "value": "baz"}]`,
			status: http.StatusOK, check: fields(map[string]any{"foo": "baz"})},
		{name: "remove property", ctype: patchV21, body: `[{"op": "remove", "path": "/foo"}]`,
			status: http.StatusOK, check: absent("foo")},
		{name: "replace tags", ctype: patchV21, body: `[{"op": "replace", "path": "/tags", "value": ["x", "y", "x"]}]`,
			status: http.StatusOK, check: func(t *testing.T, img map[string]any) { checkTags(t, img, "x", "y") }},
		{name: "several operations", ctype: patchV21 + "; charset=UTF-8",
			body:   `[{"op": "replace", "path": "/min_ram", "value": 512}, {"op": "replace", "path": "/protected", "value": true}, {"op": "replace", "path": "/protected", "value": false}, {"op": "add", "path": "/os_hidden", "value": true}]`,
			status: http.StatusOK, check: fields(map[string]any{"min_ram": 512.0, "protected": false, "os_hidden": true})},
		{name: "replace disk_format while queued", ctype: patchV21, body: `[{"op": "replace", "path": "/disk_format", "value": "qcow2"}]`,
			status: http.StatusOK, check: fields(map[string]any{"disk_format": "qcow2"})},
		{name: "old media type", ctype: patchV20, body: `[{"replace": "/min_ram", "value": 128}, {"add": "/color", "value": "red"}]`,
			status: http.StatusOK, check: fields(map[string]any{"min_ram": 128.0, "color": "red"})},
		{name: "old media type, add existing", ctype: patchV20, body: `[{"add": "/foo", "value": "baz"}]`,
			status: http.StatusConflict, msg: "Property foo already present."},
		{name: "application/json", ctype: "application/json", body: `[]`, status: http.StatusUnsupportedMediaType},
		{name: "no content type", body: `[]`, status: http.StatusUnsupportedMediaType},
		{name: "replace missing property", ctype: patchV21, body: `[{"op": "replace", "path": "/nope", "value": "x"}]`,
			status: http.StatusConflict, msg: "Property nope does not exist."},
		{name: "remove missing property", ctype: patchV21, body: `[{"op": "remove", "path": "/nope"}]`,
			status: http.StatusConflict},
		{name: "read-only status", ctype: patchV21, body: `[{"op": "replace", "path": "/status", "value": "active"}]`,
			status: http.StatusForbidden, msg: "Attribute 'status' is read-only."},
		{name: "read-only checksum", ctype: patchV21, body: `[{"op": "add", "path": "/checksum", "value": "x"}]`,
			status: http.StatusForbidden, msg: "Attribute 'checksum' is read-only."},
		{name: "reserved deleted", ctype: patchV21, body: `[{"op": "replace", "path": "/deleted", "value": "x"}]`,
			status: http.StatusForbidden, msg: "Attribute 'deleted' is reserved."},
		{name: "reserved os_glance prefix", ctype: patchV21, body: `[{"op": "add", "path": "/os_glance_x", "value": "x"}]`,
			status: http.StatusForbidden, msg: "Attribute 'os_glance_x' is reserved."},
		{name: "remove base attribute", ctype: patchV21, body: `[{"op": "remove", "path": "/name"}]`,
			status: http.StatusForbidden, msg: "Property name may not be removed."},
		{name: "unknown op", ctype: patchV21, body: `[{"op": "test", "path": "/name", "value": "x"}]`,
			status: http.StatusBadRequest, msg: "Invalid operation: `test`."},
		{name: "body not a list", ctype: patchV21, body: `{"op": "replace", "path": "/name", "value": "x"}`,
			status: http.StatusBadRequest, msg: "Request body must be a JSON array of operation objects."},
		{name: "array append pointer", ctype: patchV21, body: `[{"op": "add", "path": "/tags/-", "value": "x"}]`,
			status: http.StatusBadRequest, msg: "Invalid JSON pointer for this resource: '/tags/-'"},
		{name: "pointer without slash", ctype: patchV21, body: `[{"op": "replace", "path": "name", "value": "x"}]`,
			status: http.StatusBadRequest, msg: "Pointer `name` does not start with \"/\"."},
		{name: "replace without value", ctype: patchV21, body: `[{"op": "replace", "path": "/name"}]`,
			status: http.StatusBadRequest, msg: `Operation "replace" requires a member named "value".`},
		{name: "property value not a string", ctype: patchV21, body: `[{"op": "add", "path": "/color", "value": 1}]`,
			status: http.StatusBadRequest},
		{name: "min_ram as string", ctype: patchV21, body: `[{"op": "replace", "path": "/min_ram", "value": "12"}]`,
			status: http.StatusBadRequest},
		{name: "negative min_disk", ctype: patchV21, body: `[{"op": "replace", "path": "/min_disk", "value": -1}]`,
			status: http.StatusBadRequest},
		{name: "unknown disk_format", ctype: patchV21, body: `[{"op": "replace", "path": "/disk_format", "value": "floppy"}]`,
			status: http.StatusBadRequest},
		{name: "malformed JSON", ctype: patchV21, body: `[{`, status: http.StatusBadRequest, msg: "Malformed JSON in request body."},
		{name: "publicize as non-admin", trusted: true, ctype: patchV21, body: `[{"op": "replace", "path": "/visibility", "value": "public"}]`,
			status: http.StatusForbidden, msg: "You are not authorized to complete publicize_image action."},
		{name: "change owner as non-admin", trusted: true, ctype: patchV21, body: `[{"op": "replace", "path": "/owner", "value": "someone"}]`,
			status: http.StatusForbidden, msg: "Owner can't be updated by non admin."},
		{name: "change owner as admin", trusted: true, as: admin, ctype: patchV21, body: `[{"op": "replace", "path": "/owner", "value": "someone"}]`,
			status: http.StatusOK, check: fields(map[string]any{"owner": "someone"})},
		{name: "community as owner", trusted: true, ctype: patchV21, body: `[{"op": "replace", "path": "/visibility", "value": "community"}]`,
			status: http.StatusOK, check: fields(map[string]any{"visibility": "community"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.trusted {
				needTrusted(t)
			}
			as := tc.as
			if as == nil {
				as = tenantA
			}
			id := s.rawImage(t, tenantA, map[string]any{"foo": "bar"})["id"].(string)
			r := s.do(t, as, http.MethodPatch, "/v2/images/"+id, tc.body, hdr("Content-Type", tc.ctype), acceptJSON)
			r.wantError(t, tc.status, tc.msg)
			if tc.status == http.StatusUnsupportedMediaType {
				want := patchV20 + ", " + patchV21
				if got := r.Header.Get("Accept-Patch"); got != want {
					t.Errorf("Accept-Patch %q, want %q", got, want)
				}
			}
			img := s.show(t, admin, id)
			if tc.check != nil {
				tc.check(t, r.object(t))
				tc.check(t, img)
			} else if img["foo"] != "bar" || img["name"] == "renamed" {
				t.Errorf("a refused patch changed the image: %v", img)
			}
		})
	}
	t.Run("unknown image", func(t *testing.T) {
		s.patch(t, tenantA, "00000000-0000-4000-8000-000000000000", op{Op: "replace", Path: "/name", Value: "x"}).
			want(t, http.StatusNotFound)
	})
}

// fields returns a check of the listed image fields.
func fields(want map[string]any) func(*testing.T, map[string]any) {
	return func(t *testing.T, img map[string]any) {
		t.Helper()
		checkFields(t, img, want)
	}
}

// absent returns a check that the image lacks a property.
func absent(key string) func(*testing.T, map[string]any) {
	return func(t *testing.T, img map[string]any) {
		t.Helper()
		if v, ok := img[key]; ok {
			t.Errorf("%s = %v, want it removed", key, v)
		}
	}
}
