package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
)

func readTestdata(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }

const uuidA = "e900b63e-2a56-4aa8-8fca-bb9d72c50364"

func TestCreateImage(t *testing.T) {
	h := newHarness(t, Options{ImportMethods: []string{"glance-direct", "web-download", "copy-image"}})
	w := h.do("POST", "/v2/images", `{"name": "a", "disk_format": "raw", "container_format": "bare", "tags": ["t1", "t2", "t1"], "foo": "bar", "os_hash_algo": "x"}`, tenantA...)
	if w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	got := decode(t, w)
	id := got["id"].(string)
	if loc := w.Header().Get("Location"); loc != "http://example.com/v2/images/"+id {
		t.Errorf("Location %q", loc)
	}
	if m := w.Header().Get("OpenStack-image-import-methods"); m != "glance-direct,web-download,copy-image" {
		t.Errorf("import methods %q", m)
	}
	want := map[string]any{
		"foo": "bar", "name": "a", "disk_format": "raw", "container_format": "bare", "visibility": "shared",
		"size": nil, "virtual_size": nil, "status": "queued", "checksum": nil, "protected": false,
		"min_ram": 0.0, "min_disk": 0.0, "owner": "tenant-a", "os_hidden": false, "os_hash_algo": nil,
		"os_hash_value": nil, "id": id, "tags": []any{"t1", "t2"}, "self": "/v2/images/" + id,
		"file": "/v2/images/" + id + "/file", "schema": "/v2/schemas/image",
	}
	ts := regexpTime(t, got["created_at"])
	regexpTime(t, got["updated_at"])
	delete(got, "created_at")
	delete(got, "updated_at")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("view\n got %v\nwant %v", got, want)
	}
	if time.Since(ts) > time.Minute {
		t.Errorf("created_at %v", ts)
	}
	// Python json.dumps spacing and key order: extras first, links last.
	if body := w.Body.String(); !strings.HasPrefix(body, `{"foo": "bar", "name": "a", "disk_format": "raw"`) ||
		!strings.HasSuffix(body, `"schema": "/v2/schemas/image"}`) {
		t.Errorf("body shape %s", body)
	}

	noImport := newHarness(t, Options{})
	if w := noImport.do("POST", "/v2/images", `{}`, tenantA...); w.Code != 201 || w.Header().Get("OpenStack-image-import-methods") != "" ||
		w.Header().Values("OpenStack-image-import-methods") != nil {
		t.Errorf("import methods header without methods: %v", w.Header())
	}
	// The caller chooses the id; a taken id conflicts.
	if w := h.do("POST", "/v2/images", `{"id": "`+uuidA+`"}`, tenantA...); w.Code != 201 {
		t.Fatalf("create with id: %d", w.Code)
	}
	w = h.do("POST", "/v2/images", `{"id": "`+uuidA+`"}`, with(tenantA, "Accept", "application/json")...)
	if w.Code != 409 || jsonMessage(t, w) != "Image ID "+uuidA+" already exists!<br /><br />\n\n\n" {
		t.Errorf("duplicate id: %d %s", w.Code, w.Body)
	}
	// Content-Type of a create body is not checked.
	if w := h.do("POST", "/v2/images", `{"name": "x"}`, with(tenantA, "Content-Type", "text/plain")...); w.Code != 201 {
		t.Errorf("text/plain create: %d", w.Code)
	}
}

func regexpTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	ts, err := time.Parse("2006-01-02T15:04:05Z", s)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return ts
}

func TestCreateImageErrors(t *testing.T) {
	h := newHarness(t, Options{DiskFormats: []string{"raw", "qcow2"}})
	tests := []struct {
		name, body string
		want       int
		msg        string // the JSON message, or its prefix ending in "…"
	}{
		{"invalid json", `{"name": `, 400, "Malformed JSON in request body.<br /><br />\n\n\n"},
		{"scalar", `"x"`, 400, "Unexpected body type. Expected list/dict.<br /><br />\n\n\n"},
		{"array", `[{"name": "x"}]`, 400, "Unexpected body type. Expected list/dict.<br /><br />\n\n\n"},
		{"no body", ``, 400, "Body expected in request.<br /><br />\n\n\n"},
		{"read-only status", `{"name": "x", "status": "active"}`, 403, "Attribute 'status' is read-only.<br /><br />\n\n\n"},
		{"read-only self", `{"self": "x"}`, 403, "Attribute 'self' is read-only.<br /><br />\n\n\n"},
		{"read-only size", `{"size": 3}`, 403, "Attribute 'size' is read-only.<br /><br />\n\n\n"},
		{"reserved locations", `{"locations": []}`, 403, "Attribute 'locations' is reserved.<br /><br />\n\n\n"},
		{"reserved deleted", `{"deleted": "x"}`, 403, "Access was denied to this resource.<br /><br />\nAttribute 'deleted' is reserved.\n\n"},
		{"reserved namespace", `{"os_glance_x": "x"}`, 403, "Access was denied to this resource.<br /><br />\nAttribute 'os_glance_x' is reserved.\n\n"},
		{"long custom key", `{"` + strings.Repeat("k", 256) + `": "v"}`, 400, "Custom property should not be greater than 255 characters.<br /><br />\n\n\n"},
		{"disk format enum from options", `{"disk_format": "vmdk"}`, 400,
			"Provided object does not match schema 'image': 'vmdk' is not one of [None, 'raw', 'qcow2']\n\nFailed validating 'enum' in schema['properties']['disk_format']:\n    {'description': 'Format of the disk',\n     'enum': [None, 'raw', 'qcow2'],\n     'type': ['null', 'string']}\n\nOn instance['disk_format']:\n    'vmdk'<br /><br />\n\n\n"},
		{"custom value not string", `{"foo": 1}`, 400,
			"Provided object does not match schema 'image': 1 is not of type 'string'\n\nFailed validating 'type' in schema['additionalProperties']:\n    {'type': 'string'}\n\nOn instance['foo']:\n    1<br /><br />\n\n\n"},
		{"min_ram string", `{"min_ram": "12"}`, 400,
			"Provided object does not match schema 'image': '12' is not of type 'integer'\n\nFailed validating 'type' in schema['properties']['min_ram']:\n    {'description': 'Amount of ram (in MB) required to boot image.',\n     'type': 'integer'}\n\nOn instance['min_ram']:\n    '12'<br /><br />\n\n\n"},
		{"min_ram negative", `{"min_ram": -1}`, 400, "Invalid value '-1' for parameter 'min_ram': Cannot be a negative value<br /><br />\n\n\n"},
		{"min_disk too big", `{"min_disk": 2147483648}`, 400, "'min_disk' value out of range, must not exceed 2147483647.<br /><br />\n\n\n"},
		{"protected not bool", `{"protected": "yes"}`, 400, "Provided object does not match schema 'image': 'yes' is not of type 'boolean'…"},
		{"os_hidden not bool", `{"os_hidden": 1}`, 400, "Provided object does not match schema 'image': 1 is not of type 'boolean'…"},
		{"bad id", `{"id": "abc"}`, 400, "Provided object does not match schema 'image': 'abc' does not match '^([0-9a-fA-F]){8}-…"},
		{"name too long", `{"name": "` + strings.Repeat("n", 256) + `"}`, 400, "Provided object does not match schema 'image': '" + strings.Repeat("n", 256) + "' is too long…"},
		{"name not string", `{"name": 1}`, 400, "Provided object does not match schema 'image': 1 is not of type 'null', 'string'…"},
		{"tag too long", `{"tags": ["` + strings.Repeat("t", 256) + `"]}`, 400, "Provided object does not match schema 'image': '" + strings.Repeat("t", 256) + "' is too long\n\nFailed validating 'maxLength' in schema['properties']['tags']['items']:\n    {'maxLength': 255, 'type': 'string'}\n\nOn instance['tags'][0]:…"},
		{"bad visibility", `{"visibility": "bogus"}`, 400, "Provided object does not match schema 'image': 'bogus' is not one of ['community', 'public', 'private', 'shared']…"},
		{"kernel_id pattern from custom schema", `{"kernel_id": "x"}`, 400, "Provided object does not match schema 'image': 'x' does not match…"},
		{"4-byte name", `{"name": "a😀"}`, 400, "Name can't contain 4 byte unicode characters.<br /><br />\n\n\n"},
		{"4-byte value", `{"os_distro": "😀"}`, 400, "Os_Distro can't contain 4 byte unicode characters.<br /><br />\n\n\n"},
		{"4-byte key", `{"😀": "x"}`, 400, "Property names can't contain 4 byte unicode.<br /><br />\n\n\n"},
		{"other owner", `{"owner": "tenant-b"}`, 403, "You are not permitted to create images owned by 'tenant-b'.<br /><br />\n\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do("POST", "/v2/images", tc.body, with(tenantA, "Accept", "application/json")...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			got := jsonMessage(t, w)
			if p, ok := strings.CutSuffix(tc.msg, "…"); ok {
				if !strings.HasPrefix(got, p) {
					t.Errorf("message %q, want prefix %q", got, p)
				}
			} else if got != tc.msg {
				t.Errorf("message\n got %q\nwant %q", got, tc.msg)
			}
		})
	}
	if n := len(h.st.images); n != 0 {
		t.Errorf("%d images stored by failed creates", n)
	}
}

func TestListQueryErrors(t *testing.T) {
	h := newHarness(t, Options{})
	tests := []struct{ query, msg string }{
		{"limit=abc", "limit param must be an integer"},
		{"limit=-1", "limit param must be positive"},
		{"marker=99999999-9999-9999-9999-999999999999", "No image found with ID 99999999-9999-9999-9999-999999999999"},
		{"sort_key=bogus", "Invalid sort key: bogus. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at."},
		{"sort_dir=up", "Invalid sort direction: up"},
		{"sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc", "Number of sort dirs does not match the number of sort keys"},
		{"sort=name:asc&sort_key=name", "Old and new sorting syntax cannot be combined"},
		{"sort=bogus", "Invalid sort key: bogus. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at."},
		{"sort=name:sideways", "Invalid sort direction: sideways"},
		{"visibility=bogus", "Invalid visibility value: bogus"},
		{"member_status=bogus", "Invalid status: bogus"},
		{"name=xx:foo", "Unable to filter by unknown operator 'xx'."},
		{`name=in:"a,b`, `Invalid filter value "a,b. The quote is not closed.`},
		{`name=in:a"b"`, `Invalid filter value a"b". There is no comma before opening quotation mark.`},
		{`name=in:"a"b`, `Invalid filter value "a"b. There is no comma after closing quotation mark.`},
		{"size_min=abc", "Unable to filter on a range with a non-numeric value."},
		{"created_at=bogus:2020-01-01T00:00:00Z", "Unable to filter on a unknown operator."},
		{"created_at=gt:yesterday", `Bad "created_at" query filter format. Use ISO 8601 DateTime notation.`},
		{"os_hidden=maybe", "Invalid value 'maybe' for 'os_hidden' filter. Valid values are 'true' or 'false'."},
		{"protected=maybe", "Invalid value 'maybe' for 'protected' filter. Valid values are 'true' or 'false'."},
		{"changes-since=2020-01-01", `The "changes-since" filter is no longer available on v2.`},
		{strings.Repeat("tag=t&", 101), "Too many query parameters: at most 100 are accepted."},
		{"id=in:" + strings.Repeat("x,", 1000) + "x", `Too many values in the "id" filter: at most 1000 are accepted.`},
	}
	for _, tc := range tests {
		t.Run(tc.query[:min(len(tc.query), 60)], func(t *testing.T) {
			w := h.do("GET", "/v2/images?"+tc.query, "", with(tenantA, "Accept", "application/json")...)
			if w.Code != 400 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := jsonMessage(t, w); got != tc.msg+"<br /><br />\n\n\n" {
				t.Errorf("message %q, want %q", got, tc.msg)
			}
		})
	}
}

func TestListQueryParsing(t *testing.T) {
	h := newHarness(t, Options{LimitDefault: 7, LimitMax: 50})
	tests := []struct {
		query string
		check func(q domain.ListQuery) bool
	}{
		{"", func(q domain.ListQuery) bool {
			return q.Limit == 7 && q.MemberStatus == "accepted" && !q.Hidden && q.Visibility == "" &&
				reflect.DeepEqual(q.Sort, []domain.SortKey{{Key: "created_at", Dir: "desc"}})
		}},
		{"limit=100000", func(q domain.ListQuery) bool { return q.Limit == 50 }},
		{"limit=0", func(q domain.ListQuery) bool { return q.Limit == 0 }},
		{"sort_key=name&sort_key=size&sort_dir=asc", func(q domain.ListQuery) bool {
			return reflect.DeepEqual(q.Sort, []domain.SortKey{{Key: "name", Dir: "asc"}, {Key: "size", Dir: "asc"}})
		}},
		{"sort=name:asc,size", func(q domain.ListQuery) bool {
			return reflect.DeepEqual(q.Sort, []domain.SortKey{{Key: "name", Dir: "asc"}, {Key: "size", Dir: "desc"}})
		}},
		{"tag=a&tag=b&os_hidden=TRUE&protected=false&member_status=all&visibility=all", func(q domain.ListQuery) bool {
			return reflect.DeepEqual(q.Tags, []string{"a", "b"}) && q.Hidden && q.Protected != nil && !*q.Protected &&
				q.MemberStatus == "all" && q.Visibility == "all"
		}},
		{`name=in:a,"b,c",d&status=active&size_min=1&virtual_size_max=9&owner=p&os_distro=ubuntu&foo=bar&foo=baz`, func(q domain.ListQuery) bool {
			return reflect.DeepEqual(q.Filters, []domain.Filter{
				{Field: "name", Op: domain.OpIn, Values: []string{"a", "b,c", "d"}},
				{Field: "status", Op: domain.OpEq, Values: []string{"active"}},
				{Field: "size", Op: domain.OpGte, Values: []string{"1"}},
				{Field: "virtual_size", Op: domain.OpLte, Values: []string{"9"}},
				{Field: "owner", Op: domain.OpEq, Values: []string{"p"}},
			}) && reflect.DeepEqual(q.Properties, map[string]string{"os_distro": "ubuntu", "foo": "baz"})
		}},
		{"created_at=2020-01-02T03:04:05%2B01:00&updated_at=lte:2020-01-01", func(q domain.ListQuery) bool {
			return reflect.DeepEqual(q.Filters, []domain.Filter{
				{Field: "created_at", Op: domain.OpEq, Values: []string{"2020-01-02T02:04:05Z"}},
				{Field: "updated_at", Op: domain.OpLte, Values: []string{"2020-01-01T00:00:00Z"}},
			})
		}},
		{"name=eq:a:b", func(q domain.ListQuery) bool {
			return reflect.DeepEqual(q.Filters, []domain.Filter{{Field: "name", Op: domain.OpEq, Values: []string{"a:b"}}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			if w := h.do("GET", "/v2/images?"+tc.query, "", tenantA...); w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if !tc.check(h.st.lastQuery) {
				t.Errorf("query %+v", h.st.lastQuery)
			}
		})
	}
}

func TestListLinks(t *testing.T) {
	h := newHarness(t, Options{})
	var ids []string
	for i := 0; i < 3; i++ {
		id := h.create(tenantA, fmt.Sprintf(`{"name": "img%d", "tags": ["a", "b"]}`, i))
		h.st.mu.Lock()
		m := h.st.images[id]
		m.CreatedAt = m.CreatedAt.Add(time.Duration(i) * time.Second)
		h.st.images[id] = m
		h.st.mu.Unlock()
		ids = append([]string{id}, ids...) // newest first
	}
	list := func(query string) map[string]any {
		w := h.do("GET", "/v2/images"+query, "", tenantA...)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", query, w.Code, w.Body)
		}
		return decode(t, w)
	}
	tests := []struct {
		query, first, next string
		n                  int
	}{
		{"", "/v2/images", "", 3},
		{"?limit=1", "/v2/images?limit=1", "/v2/images?limit=1&marker=" + ids[0], 1},
		{"?limit=1&marker=" + ids[0], "/v2/images?limit=1", "/v2/images?limit=1&marker=" + ids[1], 1},
		{"?limit=3", "/v2/images?limit=3", "/v2/images?limit=3&marker=" + ids[2], 3},
		{"?limit=4", "/v2/images?limit=4", "", 3},
		{"?marker=" + ids[2] + "&limit=1", "/v2/images?limit=1", "", 0},
		{"?tag=a&tag=b&limit=1", "/v2/images?tag=b&limit=1", "/v2/images?tag=b&limit=1&marker=" + ids[0], 1},
		{"?sort_key=name&sort_key=status&limit=2", "/v2/images?sort_key=status&limit=2", "/v2/images?sort_key=status&limit=2&marker=" + ids[1], 2},
		{"?name=in:img0,img1&limit=5", "/v2/images?name=in%3Aimg0%2Cimg1&limit=5", "", 2},
		{"?sort=name:asc,created_at:desc", "/v2/images?sort=name%3Aasc%2Ccreated_at%3Adesc", "", 3},
		{"?foo=a+b%26c", "/v2/images?foo=a+b%26c", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			got := list(tc.query)
			if got["first"] != tc.first {
				t.Errorf("first %v, want %s", got["first"], tc.first)
			}
			next, has := got["next"]
			if tc.next == "" && has {
				t.Errorf("unexpected next %v", next)
			}
			if tc.next != "" && next != tc.next {
				t.Errorf("next %v, want %s", next, tc.next)
			}
			if got["schema"] != "/v2/schemas/images" {
				t.Errorf("schema %v", got["schema"])
			}
			if n := len(got["images"].([]any)); n != tc.n {
				t.Errorf("%d images, want %d", n, tc.n)
			}
		})
	}
	if body := h.do("GET", "/v2/images?limit=0", "", tenantA...).Body.String(); body != `{"images": [], "first": "/v2/images?limit=0", "schema": "/v2/schemas/images"}` {
		t.Errorf("empty page %s", body)
	}
}

func TestShowAndView(t *testing.T) {
	h := newHarness(t, Options{ShowMultipleLocations: true, ShowDirectURL: true})
	id := h.create(tenantA, `{"name": "v", "disk_format": "raw", "container_format": "bare", "visibility": "public"}`)
	h.st.mu.Lock()
	m := h.st.images[id]
	m.Properties["os_glance_stage_host"] = "http://worker"
	m.Properties["os_glance_import_task"] = "task"
	h.st.images[id] = m
	h.st.mu.Unlock()
	got := decode(t, h.do("GET", "/v2/images/"+id, "", tenantA...))
	if _, ok := got["os_glance_stage_host"]; ok {
		t.Error("hidden property shown")
	}
	if got["os_glance_import_task"] != "task" {
		t.Error("visible os_glance property missing")
	}
	if locs, ok := got["locations"].([]any); !ok || len(locs) != 0 {
		t.Errorf("locations %v", got["locations"])
	}
	if _, ok := got["direct_url"]; ok {
		t.Error("direct_url without a location")
	}
	if w := h.do("PUT", "/v2/images/"+id+"/file", "data", with(tenantA, "Content-Type", "application/octet-stream")...); w.Code != 204 {
		t.Fatalf("upload %d %s", w.Code, w.Body)
	}
	got = decode(t, h.do("GET", "/v2/images/"+id, "", tenantA...))
	if got["direct_url"] != "file:///fake/"+id {
		t.Errorf("direct_url %v", got["direct_url"])
	}
	if locs := got["locations"].([]any); len(locs) != 1 || locs[0].(map[string]any)["url"] != "file:///fake/"+id {
		t.Errorf("locations %v", locs)
	}
	// Deactivated: non-admins see no locations.
	if w := h.do("POST", "/v2/images/"+id+"/actions/deactivate", "", tenantA...); w.Code != 204 {
		t.Fatalf("deactivate %d", w.Code)
	}
	if locs := decode(t, h.do("GET", "/v2/images/"+id, "", tenantB...))["locations"].([]any); len(locs) != 0 {
		t.Errorf("non-admin sees locations of a deactivated image: %v", locs)
	}
	if locs := decode(t, h.do("GET", "/v2/images/"+id, "", admin...))["locations"].([]any); len(locs) != 1 {
		t.Errorf("admin locations %v", locs)
	}
	plain := newHarness(t, Options{})
	pid := plain.create(tenantA, `{}`)
	got = decode(t, plain.do("GET", "/v2/images/"+pid, "", tenantA...))
	for _, k := range []string{"locations", "direct_url"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s shown although disabled", k)
		}
	}
}

func TestPatch(t *testing.T) {
	h := newHarness(t, Options{})
	id := h.create(tenantA, `{"name": "p", "foo": "bar", "tags": ["t1"]}`)
	path := "/v2/images/" + id
	v21 := with(tenantA, "Content-Type", patchV21, "Accept", "application/json")
	v20 := with(tenantA, "Content-Type", patchV20+"; charset=UTF-8", "Accept", "application/json")
	tests := []struct {
		name    string
		headers []string
		body    string
		want    int
		msg     string
		check   func(m map[string]any) bool
	}{
		{"replace name, add, replace tags, remove", v21,
			`[{"op": "replace", "path": "/name", "value": "q"}, {"op": "add", "path": "/color", "value": "blue"}, {"op": "replace", "path": "/tags", "value": ["b", "a", "b"]}, {"op": "remove", "path": "/foo"}]`,
			200, "", func(m map[string]any) bool {
				_, hasFoo := m["foo"]
				return m["name"] == "q" && m["color"] == "blue" && !hasFoo && reflect.DeepEqual(m["tags"], []any{"a", "b"})
			}},
		{"add existing overwrites", v21, `[{"op": "add", "path": "/color", "value": "red"}]`, 200, "",
			func(m map[string]any) bool { return m["color"] == "red" }},
		{"v2.0 draft", v20, `[{"replace": "/min_ram", "value": 128}]`, 200, "",
			func(m map[string]any) bool { return m["min_ram"] == 128.0 }},
		{"v2.0 add existing", v20, `[{"add": "/color", "value": "x"}]`, 409,
			"There was a conflict when trying to complete your request.<br /><br />\nProperty color already present.\n\n", nil},
		{"empty patch", v21, `[]`, 200, "", func(m map[string]any) bool { return m["name"] == "q" }},
		{"wrong media type", with(tenantA, "Content-Type", "application/json", "Accept", "application/json"), `[]`, 415,
			"The request media type application/json is not supported by this server.\n<br /><br />\n", nil},
		{"no media type", with(tenantA, "Accept", "application/json"), `[]`, 415,
			"The request media type text/plain is not supported by this server.\n<br /><br />\n", nil},
		{"tags append", v21, `[{"op": "add", "path": "/tags/-", "value": "t4"}]`, 400, "Invalid JSON pointer for this resource: '/tags/-'<br /><br />\n\n\n", nil},
		{"replace missing", v21, `[{"op": "replace", "path": "/nosuch", "value": "x"}]`, 409,
			"There was a conflict when trying to complete your request.<br /><br />\nProperty nosuch does not exist.\n\n", nil},
		{"remove missing", v21, `[{"op": "remove", "path": "/nosuch"}]`, 409,
			"There was a conflict when trying to complete your request.<br /><br />\nProperty nosuch does not exist.\n\n", nil},
		{"remove base", v21, `[{"op": "remove", "path": "/name"}]`, 403,
			"Access was denied to this resource.<br /><br />\nProperty name may not be removed.\n\n", nil},
		{"invalid op", v21, `[{"op": "test", "path": "/name", "value": "x"}]`, 400,
			"Invalid operation: `test`. It must be one of the following: add, remove, replace.<br /><br />\n\n\n", nil},
		{"missing op", v21, `[{"path": "/name", "value": "x"}]`, 400,
			"Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.<br /><br />\n\n\n", nil},
		{"missing path", v21, `[{"op": "add", "value": "x"}]`, 400, "Unable to find 'path' in JSON Schema change<br /><br />\n\n\n", nil},
		{"v2.0 two ops", v20, `[{"add": "/a", "remove": "/b"}]`, 400,
			"Operation objects must contain only one member named \"add\", \"remove\", or \"replace\".<br /><br />\n\n\n", nil},
		{"v2.0 no op", v20, `[{"value": 1}]`, 400,
			"Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".<br /><br />\n\n\n", nil},
		{"missing value", v21, `[{"op": "replace", "path": "/name"}]`, 400, "Operation \"replace\" requires a member named \"value\".<br /><br />\n\n\n", nil},
		{"not a list", v21, `{"op": "replace", "path": "/name", "value": "x"}`, 400, "Request body must be a JSON array of operation objects.<br /><br />\n\n\n", nil},
		{"not objects", v21, `["x"]`, 400, "Operations must be JSON objects.<br /><br />\n\n\n", nil},
		{"no body", v21, ``, 400, "Body expected in request.<br /><br />\n\n\n", nil},
		{"pointer without slash", v21, `[{"op": "replace", "path": "name", "value": "x"}]`, 400, "Pointer `name` does not start with \"/\".<br /><br />\n\n\n", nil},
		{"pointer adjacent", v21, `[{"op": "replace", "path": "/a//b", "value": "x"}]`, 400, "Pointer `/a//b` contains adjacent \"/\".<br /><br />\n\n\n", nil},
		{"pointer trailing", v21, `[{"op": "replace", "path": "/a/", "value": "x"}]`, 400, "Pointer `/a/` end with \"/\".<br /><br />\n\n\n", nil},
		{"pointer tilde", v21, `[{"op": "replace", "path": "/a~2", "value": "x"}]`, 400, "Pointer `/a~2` contains \"~\" not part of a recognized escape sequence.<br /><br />\n\n\n", nil},
		{"long custom key", v21, `[{"op": "add", "path": "/` + strings.Repeat("k", 300) + `", "value": "v"}]`, 400,
			"Custom property should not be greater than 255 characters.<br /><br />\n\n\n", nil},
		{"read-only status", v21, `[{"op": "replace", "path": "/status", "value": "active"}]`, 403, "Attribute 'status' is read-only.<br /><br />\n\n\n", nil},
		{"reserved", v21, `[{"op": "add", "path": "/os_glance_x", "value": "x"}]`, 403, "Attribute 'os_glance_x' is reserved.<br /><br />\n\n\n", nil},
		{"reserved deleted_at", v21, `[{"op": "remove", "path": "/deleted_at"}]`, 403, "Attribute 'deleted_at' is reserved.<br /><br />\n\n\n", nil},
		{"owner non-admin", v21, `[{"op": "replace", "path": "/owner", "value": "x"}]`, 403,
			"Access was denied to this resource.<br /><br />\nOwner can't be updated by non admin.\n\n", nil},
		{"custom value type", v21, `[{"op": "add", "path": "/foo", "value": 1}]`, 400,
			"Provided object does not match schema 'image': 1 is not of type 'string'\n\nFailed validating 'type' in schema['additionalProperties']:\n    {'type': 'string'}\n\nOn instance['foo']:\n    1<br /><br />\n\n\n", nil},
		{"disk format", v21, `[{"op": "replace", "path": "/disk_format", "value": "bogus"}]`, 400,
			"Provided object does not match schema 'image': 'bogus' is not one of [None, 'ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']\n\nFailed validating 'enum' in schema['properties']['disk_format']:\n    {'description': 'Format of the disk',\n     'enum': [None,\n              'ami',\n              'ari',\n              'aki',\n              'vhd',\n              'vhdx',\n              'vmdk',\n              'raw',\n              'qcow2',\n              'vdi',\n              'iso',\n              'ploop'],\n     'type': ['null', 'string']}\n\nOn instance['disk_format']:\n    'bogus'<br /><br />\n\n\n", nil},
		{"min_ram negative", v21, `[{"op": "replace", "path": "/min_ram", "value": -5}]`, 400,
			"Invalid value '-5' for parameter 'min_ram': Cannot be a negative value<br /><br />\n\n\n", nil},
		{"locations invisible", v21, `[{"op": "add", "path": "/locations/-", "value": {"url": "http://x", "metadata": {}}}]`, 403,
			"It's not allowed to add locations if locations are invisible.<br /><br />\n\n\n", nil},
		{"locations empty", v21, `[{"op": "replace", "path": "/locations", "value": []}]`, 403,
			"Access was denied to this resource.<br /><br />\nCannot set locations to empty list.\n\n", nil},
		{"4-byte value", v21, `[{"op": "add", "path": "/d", "value": "😀"}]`, 400, "D can't contain 4 byte unicode characters.<br /><br />\n\n\n", nil},
		{"failing op keeps nothing", v21, `[{"op": "replace", "path": "/name", "value": "half"}, {"op": "remove", "path": "/nosuch"}]`, 409, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do("PATCH", path, tc.body, tc.headers...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want == 415 && w.Header().Get("Accept-Patch") != patchV20+", "+patchV21 {
				t.Errorf("Accept-Patch %q", w.Header().Get("Accept-Patch"))
			}
			if tc.msg != "" {
				if got := jsonMessage(t, w); got != tc.msg {
					t.Errorf("message\n got %q\nwant %q", got, tc.msg)
				}
			}
			if tc.check != nil && !tc.check(decode(t, w)) {
				t.Errorf("result %s", w.Body)
			}
		})
	}
	if name := decode(t, h.do("GET", path, "", tenantA...))["name"]; name != "q" {
		t.Errorf("a failed PATCH left name %v", name)
	}
	if w := h.do("PATCH", "/v2/images/nope", `[]`, v21...); w.Code != 404 {
		t.Errorf("PATCH unknown image: %d", w.Code)
	}
	// Visible but not owned: the repository refuses the save.
	h.do("PATCH", path, `[{"op": "replace", "path": "/visibility", "value": "community"}]`, v21...)
	w := h.do("PATCH", path, `[{"op": "replace", "path": "/name", "value": "b"}]`, with(tenantB, "Content-Type", patchV21, "Accept", "application/json")...)
	if w.Code != 403 || jsonMessage(t, w) != "You do not own this image<br /><br />\n\n\n" {
		t.Errorf("PATCH by a non-owner: %d %s", w.Code, w.Body)
	}
}

func TestDeleteImage(t *testing.T) {
	h := newHarness(t, Options{})
	j := with(tenantA, "Accept", "application/json", "Content-Type", patchV21)
	id := h.create(tenantA, `{"protected": true}`)
	w := h.do("DELETE", "/v2/images/"+id, "", j...)
	if w.Code != 403 || jsonMessage(t, w) != "Image "+id+" is protected and cannot be deleted.<br /><br />\n\n\n" {
		t.Errorf("protected delete: %d %s", w.Code, w.Body)
	}
	h.do("PATCH", "/v2/images/"+id, `[{"op": "replace", "path": "/protected", "value": false}]`, j...)
	w = h.do("DELETE", "/v2/images/"+id, "", j...)
	if w.Code != 204 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "0" {
		t.Fatalf("delete: %d %q %v", w.Code, w.Body, w.Header())
	}
	w = h.do("DELETE", "/v2/images/"+id, "", j...)
	if w.Code != 404 || jsonMessage(t, w) != "Failed to find image "+id+" to delete<br /><br />\n\n\n" {
		t.Errorf("second delete: %d %s", w.Code, w.Body)
	}
	if w := h.do("GET", "/v2/images/"+id, "", j...); w.Code != 404 {
		t.Errorf("deleted image shown: %d", w.Code)
	}
	// The id stays taken.
	if w := h.do("POST", "/v2/images", `{"id": "`+id+`"}`, j...); w.Code != 409 {
		t.Errorf("reuse of a deleted id: %d", w.Code)
	}
	// A status the state machine cannot delete from answers 400, not 409.
	id2 := h.create(tenantA, `{}`)
	h.st.deleteErr = &domain.TransitionError{From: domain.StatusSaving, To: domain.StatusDeleted}
	w = h.do("DELETE", "/v2/images/"+id2, "", j...)
	if w.Code != 400 || jsonMessage(t, w) != "Image status transition from saving to deleted is not allowed<br /><br />\n\n\n" {
		t.Errorf("bad transition delete: %d %s", w.Code, w.Body)
	}
}

func TestTagsAndActions(t *testing.T) {
	h := newHarness(t, Options{})
	id := h.create(tenantA, `{"disk_format": "raw", "container_format": "bare"}`)
	j := with(tenantA, "Accept", "application/json")
	tests := []struct {
		name, method, path string
		headers            []string
		want               int
		msg                string
	}{
		{"add tag", "PUT", "/tags/t1", j, 204, ""},
		{"add tag again", "PUT", "/tags/t1", j, 204, ""},
		{"add escaped tag", "PUT", "/tags/a%20b", j, 204, ""},
		{"tag too long", "PUT", "/tags/" + strings.Repeat("x", 256), j, 400, ""},
		{"delete tag", "DELETE", "/tags/t1", j, 204, ""},
		{"delete absent tag", "DELETE", "/tags/nosuch", j, 404, "The resource could not be found.<br /><br />\n\n\n"},
		{"tag by a stranger", "PUT", "/tags/x", with(tenantB, "Accept", "application/json"), 404, ""},
		{"deactivate queued", "POST", "/actions/deactivate", j, 403, "Not allowed to deactivate image in status 'queued'<br /><br />\n\n\n"},
		{"reactivate queued", "POST", "/actions/reactivate", j, 403, "Not allowed to reactivate image in status 'queued'<br /><br />\n\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do(tc.method, "/v2/images/"+id+tc.path, "", tc.headers...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.msg != "" && jsonMessage(t, w) != tc.msg {
				t.Errorf("message %q", jsonMessage(t, w))
			}
		})
	}
	if tags := decode(t, h.do("GET", "/v2/images/"+id, "", j...))["tags"]; !reflect.DeepEqual(tags, []any{"a b"}) {
		t.Errorf("tags %v", tags)
	}
	octet := with(tenantA, "Content-Type", "application/octet-stream")
	if w := h.do("PUT", "/v2/images/"+id+"/file", "abc", octet...); w.Code != 204 {
		t.Fatalf("upload %d", w.Code)
	}
	for _, step := range []struct {
		action string
		status domain.Status
	}{{"deactivate", "deactivated"}, {"deactivate", "deactivated"}, {"reactivate", "active"}, {"reactivate", "active"}} {
		if w := h.do("POST", "/v2/images/"+id+"/actions/"+step.action, "", j...); w.Code != 204 {
			t.Fatalf("%s: %d %s", step.action, w.Code, w.Body)
		}
		if st := decode(t, h.do("GET", "/v2/images/"+id, "", j...))["status"]; st != string(step.status) {
			t.Errorf("after %s: %v", step.action, st)
		}
	}
}

func TestImageData(t *testing.T) {
	h := newHarness(t, Options{})
	data := strings.Repeat("0123456789abcdef", 64)
	id := h.create(tenantA, `{"disk_format": "raw", "container_format": "bare"}`)
	bare := h.create(tenantA, `{}`)
	j := with(tenantA, "Accept", "application/json")
	octet := with(j, "Content-Type", "application/octet-stream")

	if w := h.do("GET", "/v2/images/"+id+"/file", "", j...); w.Code != 204 || w.Body.Len() != 0 {
		t.Errorf("download before upload: %d", w.Code)
	}
	uploads := []struct {
		name, id, body string
		headers        []string
		want           int
		msg            string
	}{
		{"json media type", id, data, with(j, "Content-Type", "application/json"), 415,
			"The request media type application/json is not supported by this server.\n<br /><br />\n"},
		{"no media type", id, data, j, 415, ""},
		{"bad size header", id, data, with(octet, "X-Openstack-Image-Size", "abc"), 400,
			"Invalid or missing image size in request headers.<br /><br />\n\n\n"},
		{"no formats", bare, data, octet, 400,
			"Properties disk_format, container_format must be set prior to saving data.<br /><br />\n\n\n"},
		{"unknown image", "nope", data, octet, 404, ""},
		{"upload", id, data, octet, 204, ""},
		{"again", id, data, octet, 409, "Image status transition from active to saving is not allowed<br /><br />\n\n\n"},
	}
	for _, tc := range uploads {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do("PUT", "/v2/images/"+tc.id+"/file", tc.body, tc.headers...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.msg != "" && jsonMessage(t, w) != tc.msg {
				t.Errorf("message %q", jsonMessage(t, w))
			}
		})
	}
	if st := decode(t, h.do("GET", "/v2/images/"+bare, "", j...))["status"]; st != "queued" {
		t.Errorf("failed upload left status %v", st)
	}

	const md5 = "7dd7e68f1907b4665684355797725b8e"
	downloads := []struct {
		name    string
		headers []string
		want    int
		body    string
		crange  string
		msg     string
	}{
		{"full", nil, 200, data, "", ""},
		{"range", []string{"Range", "bytes=0-9"}, 206, data[:10], "bytes 0-9/1024", ""},
		{"open end", []string{"Range", "bytes=1020-"}, 206, data[1020:], "bytes 1020-1023/1024", ""},
		{"suffix", []string{"Range", "bytes=-4"}, 206, data[1020:], "bytes 1020-1023/1024", ""},
		{"suffix longer than data", []string{"Range", "bytes=-5000"}, 206, data, "bytes 0-1023/1024", ""},
		{"end clamped", []string{"Range", "bytes=5-5000"}, 206, data[5:], "bytes 5-1023/1024", ""},
		{"legacy content-range", []string{"Content-Range", "bytes 0-9/1024"}, 206, data[:10], "bytes 0-9/1024", ""},
		{"start beyond end", []string{"Range", "bytes=5000-6000"}, 416, "", "",
			"The Range requested is not available.<br /><br />\nInvalid start position in Range header. Start position MUST be in the inclusive range [0, 1023].\n\n"},
		{"garbage range", []string{"Range", "pages=1-2"}, 416, "", "", "The Range requested is not available.<br /><br />\nInvalid Range header.\n\n"},
		{"reversed range", []string{"Range", "bytes=9-1"}, 416, "", "", ""},
		{"bad content-range", []string{"Content-Range", "bytes 0-2000/1024"}, 416, "", "",
			"The Range requested is not available.<br /><br />\nInvalid Content-Range header.\n\n"},
		// A length that says the image is larger than it is does not make
		// room for bytes the image does not have.
		{"content-range past the data", []string{"Content-Range", "bytes 0-1999/5000"}, 416, "", "",
			"The Range requested is not available.<br /><br />\nInvalid stop position in Content-Range header. The stop position MUST be in the inclusive range [0, 1023].\n\n"},
		{"multi range", []string{"Range", "bytes=0-1,4-5"}, 400, "", "",
			"Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.<br /><br />\n\n\n"},
	}
	for _, tc := range downloads {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do("GET", "/v2/images/"+id+"/file", "", append(with(j), tc.headers...)...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want >= 400 {
				if tc.msg != "" && jsonMessage(t, w) != tc.msg {
					t.Errorf("message %q", jsonMessage(t, w))
				}
				return
			}
			if w.Body.String() != tc.body {
				t.Errorf("body %d bytes, want %d", w.Body.Len(), len(tc.body))
			}
			hd := w.Header()
			if hd.Get("Content-Type") != "application/octet-stream" || hd.Get("Content-MD5") != md5 ||
				hd.Get("Content-Length") != fmt.Sprint(len(tc.body)) || hd.Get("Content-Range") != tc.crange {
				t.Errorf("headers %v", hd)
			}
		})
	}
	// Deactivated: only admins download.
	h.do("POST", "/v2/images/"+id+"/actions/deactivate", "", j...)
	w := h.do("GET", "/v2/images/"+id+"/file", "", j...)
	if w.Code != 403 || jsonMessage(t, w) != "The requested image has been deactivated. Image data download is forbidden.<br /><br />\n\n\n" {
		t.Errorf("owner download of deactivated: %d %s", w.Code, w.Body)
	}
	if w := h.do("GET", "/v2/images/"+id+"/file", "", admin...); w.Code != 200 || w.Body.String() != data {
		t.Errorf("admin download of deactivated: %d", w.Code)
	}
	// Chunked upload: no length known.
	id3 := h.create(tenantA, `{"disk_format": "raw", "container_format": "bare"}`)
	r := newChunkedPut(t, "/v2/images/"+id3+"/file", data, octet)
	rw := newRecorder()
	h.h.ServeHTTP(rw, r)
	if rw.Code != 204 {
		t.Fatalf("chunked upload %d %s", rw.Code, rw.Body)
	}
	if size := decode(t, h.do("GET", "/v2/images/"+id3, "", j...))["size"]; size != 1024.0 {
		t.Errorf("size after chunked upload %v", size)
	}
}

func TestMembers(t *testing.T) {
	h := newHarness(t, Options{})
	id := h.create(tenantA, `{"name": "s"}`)
	priv := h.create(tenantA, `{"visibility": "private"}`)
	ja := with(tenantA, "Accept", "application/json")
	jb := with(tenantB, "Accept", "application/json")
	jc := []string{"X-Identity-Status", "Confirmed", "X-Tenant-Id", "tenant-c", "Accept", "application/json"}
	base := "/v2/images/" + id + "/members"
	tests := []struct {
		name, method, path, body string
		headers                  []string
		want                     int
		msg                      string
	}{
		{"add", "POST", base, `{"member": "tenant-b"}`, ja, 200, ""},
		{"add again", "POST", base, `{"member": "tenant-b"}`, ja, 409, "Member tenant-b is duplicated for image " + id},
		{"add without member", "POST", base, `{"x": 1}`, ja, 400, "Member to be added not specified"},
		{"add empty member", "POST", base, `{"member": ""}`, ja, 400, "Member can't be empty"},
		{"add no body", "POST", base, ``, ja, 400, "Body expected in request."},
		{"add to private", "POST", "/v2/images/" + priv + "/members", `{"member": "tenant-b"}`, ja, 403, "Not allowed to create members for image " + priv + "."},
		{"member adds", "POST", base, `{"member": "tenant-c"}`, jb, 403, "Not allowed to create members for image " + id + "."},
		{"stranger adds", "POST", base, `{"member": "tenant-c"}`, jc, 404, "Image " + id + " not found."},
		{"owner sets status", "PUT", base + "/tenant-b", `{"status": "accepted"}`, ja, 403, "Not allowed to update members for image " + id + "."},
		{"bogus status", "PUT", base + "/tenant-b", `{"status": "bogus"}`, jb, 400, `Incorrect request: Status must be "pending", "accepted" or "rejected".`},
		{"status missing", "PUT", base + "/tenant-b", `{"x": 1}`, jb, 400, "Status not specified"},
		{"accept", "PUT", base + "/tenant-b", `{"status": "accepted"}`, jb, 200, ""},
		{"show as member", "GET", base + "/tenant-b", "", jb, 200, ""},
		{"show unknown", "GET", base + "/nobody", "", ja, 404, "nobody not found in the member list of the image " + id + "."},
		{"list as member", "GET", base, "", jb, 200, ""},
		{"list as stranger", "GET", base, "", jc, 404, "Image " + id + " not found."},
		{"list on private", "GET", "/v2/images/" + priv + "/members", "", ja, 403, "Not allowed to list members for image " + priv + ": Only shared images have members."},
		{"show on private", "GET", "/v2/images/" + priv + "/members/x", "", ja, 404, "Only shared images have members."},
		{"member deletes", "DELETE", base + "/tenant-b", "", jb, 403, "Not allowed to delete members for image " + id + "."},
		{"owner deletes", "DELETE", base + "/tenant-b", "", ja, 204, ""},
		{"deleted is gone", "GET", base + "/tenant-b", "", ja, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do(tc.method, tc.path, tc.body, tc.headers...)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.msg != "" && jsonMessage(t, w) != tc.msg+"<br /><br />\n\n\n" {
				t.Errorf("message %q, want %q", jsonMessage(t, w), tc.msg)
			}
		})
	}
	w := h.do("POST", base, `{"member": "tenant-c"}`, ja...)
	m := decode(t, w)
	if m["member_id"] != "tenant-c" || m["image_id"] != id || m["status"] != "pending" || m["schema"] != "/v2/schemas/member" {
		t.Errorf("member view %v", m)
	}
	regexpTime(t, m["created_at"])
	h.do("POST", base, `{"member": "tenant-b"}`, ja...)
	list := decode(t, h.do("GET", base, "", ja...))
	if list["schema"] != "/v2/schemas/members" || len(list["members"].([]any)) != 2 {
		t.Errorf("owner list %v", list)
	}
	list = decode(t, h.do("GET", base, "", jb...))
	if ms := list["members"].([]any); len(ms) != 1 || ms[0].(map[string]any)["member_id"] != "tenant-b" {
		t.Errorf("member list %v", list)
	}
}

func TestSchemas(t *testing.T) {
	h := newHarness(t, Options{})
	for _, tc := range []struct{ path, golden string }{
		{"/v2/schemas/image", "schema-image-zed.json"},
		{"/v2/schemas/images", "schema-images-zed.json"},
		{"/v2/schemas/member", "schema-member-zed.json"},
		{"/v2/schemas/members", "schema-members-zed.json"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := h.do("GET", tc.path, "", tenantA...)
			if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%d %v", w.Code, w.Header())
			}
			want, err := readTestdata(tc.golden)
			if err != nil {
				t.Fatal(err)
			}
			var got, exp any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(want, &exp); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("schema differs from %s:\n%s", tc.golden, w.Body)
			}
		})
	}
	// Enums come from the options, custom properties from schema-image.json.
	custom := newHarness(t, Options{DiskFormats: []string{"raw"}, ContainerFormats: []string{"bare"},
		CustomSchema: []byte(`{"properties": {"hw_x": {"type": "string", "enum": ["a"]}}, "required": ["name"]}`)})
	var doc struct {
		Properties map[string]map[string]any
		Required   []string
	}
	if err := json.Unmarshal(custom.do("GET", "/v2/schemas/image", "", tenantA...).Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(doc.Properties["disk_format"]["enum"], []any{nil, "raw"}) ||
		!reflect.DeepEqual(doc.Properties["container_format"]["enum"], []any{nil, "bare"}) ||
		doc.Properties["hw_x"]["is_base"] != false || doc.Properties["os_distro"] != nil ||
		!reflect.DeepEqual(doc.Required, []string{"name"}) {
		t.Errorf("custom schema %+v", doc)
	}
	if w := custom.do("POST", "/v2/images", `{"hw_x": "b", "name": "n"}`, tenantA...); w.Code != 400 {
		t.Errorf("custom enum not enforced: %d", w.Code)
	}
	if w := custom.do("POST", "/v2/images", `{}`, tenantA...); w.Code != 400 {
		t.Errorf("custom required not enforced: %d", w.Code)
	}
}

// TestJSONEncoding checks the Python-compatible string encoders.
func TestJSONEncoding(t *testing.T) {
	tests := []struct{ in, utf8, ascii string }{
		{"plain", `"plain"`, `"plain"`},
		{`q"b\s`, `"q\"b\\s"`, `"q\"b\\s"`},
		{"<br />&", `"<br />&"`, `"<br />&"`},
		{"é😀\n\t\x01\x7f", "\"é😀\\n\\t\\u0001\x7f\"", `"\u00e9\ud83d\ude00\n\t\u0001\u007f"`},
	}
	for _, tc := range tests {
		if got := string(appendString(nil, tc.in)); got != tc.utf8 {
			t.Errorf("appendString(%q) = %s, want %s", tc.in, got, tc.utf8)
		}
		var b strings.Builder
		writePyString(&b, tc.in)
		if b.String() != tc.ascii {
			t.Errorf("writePyString(%q) = %s, want %s", tc.in, b.String(), tc.ascii)
		}
	}
}

func benchImages(n int) []domain.Meta {
	out := make([]domain.Meta, n)
	now := time.Now()
	for i := range out {
		props := map[string]string{}
		for p := 0; p < 10; p++ {
			props[fmt.Sprintf("prop_%d", p)] = fmt.Sprintf("value %d of image %d", p, i)
		}
		out[i] = domain.Meta{ID: domain.NewUUID(), Name: domain.Ptr(fmt.Sprintf("image-%d", i)), Status: domain.StatusActive,
			Visibility: domain.VisibilityShared, Owner: domain.Ptr("tenant-a"), Size: domain.Ptr(int64(1 << 30)),
			Checksum: domain.Ptr("7dd7e68f1907b4665684355797725b8e"), DiskFormat: domain.Ptr("raw"),
			ContainerFormat: domain.Ptr("bare"), CreatedAt: now, UpdatedAt: now, Tags: []string{"a", "b"}, Properties: props}
	}
	return out
}

// BenchmarkImageListView encodes a 1000-image page.
func BenchmarkImageListView(b *testing.B) {
	images := benchImages(1000)
	v := imageView{}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		buf := make([]byte, 0, 64+len(images)*900)
		for i := range images {
			buf = v.appendImage(buf, &images[i])
		}
		size = len(buf)
	}
	b.SetBytes(int64(size))
}

// BenchmarkListImages runs GET /v2/images?limit=1000 end to end on the fake.
func BenchmarkListImages(b *testing.B) {
	st := newFakeStore()
	for _, m := range benchImages(1000) {
		st.images[m.ID] = m
	}
	e := New(fakeGateway{st}, Options{Auth: NoAuth()})
	b.ReportAllocs()
	for b.Loop() {
		w := newRecorder()
		e.ServeHTTP(w, newGet("/v2/images?limit=1000"))
		if w.Code != 200 || !bytes.HasPrefix(w.Body.Bytes(), []byte(`{"images": [{`)) {
			b.Fatalf("%d", w.Code)
		}
	}
}

// TestImageViewMatchesJSON checks the hand-written encoder against
// encoding/json on a record with every field set.
func TestImageViewMatchesJSON(t *testing.T) {
	m := benchImages(1)[0]
	m.VirtualSize = domain.Ptr(int64(5))
	m.HashAlgo, m.HashValue = domain.Ptr("sha512"), domain.Ptr("abc")
	m.Properties["quote\"d"] = "<é>"
	m.ID = `odd"id\é`
	var got map[string]any
	if err := json.Unmarshal(imageView{}.appendImage(nil, &m), &got); err != nil {
		t.Fatal(err)
	}
	if got["self"] != "/v2/images/odd\"id\\é" || got["file"] != "/v2/images/odd\"id\\é/file" || got["quote\"d"] != "<é>" || got["virtual_size"] != 5.0 || got["os_hash_algo"] != "sha512" ||
		got["size"] != float64(1<<30) || got["owner"] != "tenant-a" || len(got) != 22+len(m.Properties) {
		t.Errorf("view %v", got)
	}
}
