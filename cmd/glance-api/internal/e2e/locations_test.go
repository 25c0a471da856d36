package e2e

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// locStores is one of our servers with two file stores, "fast" (weight
// 10) and "cheap" (weight 1, the default), and "web", an http store, with
// show_multiple_locations and show_image_direct_url on.
type locStores struct {
	*server
	fast, cheap string // the file stores' directories
}

// startLocStores starts the server of locStores. It skips against an
// external endpoint, whose stores the suite does not know.
func startLocStores(t *testing.T) *locStores {
	t.Helper()
	if suite.bin == "" {
		t.Skip("needs our own server with a multi-store configuration")
	}
	dir := filepath.Join(suite.tmp, "multistore-"+randHex(3))
	ms := &locStores{fast: filepath.Join(dir, "fast"), cheap: filepath.Join(dir, "cheap")}
	for _, d := range []string{ms.fast, ms.cheap, filepath.Join(dir, "staging"), filepath.Join(dir, "tasks")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
enabled_backends = fast:file, cheap:file, web:http
show_multiple_locations = true
show_image_direct_url = true

[database]
connection = sqlite:///%s

[glance_store]
default_backend = cheap

[fast]
filesystem_store_datadir = %s
weight = 10

[cheap]
filesystem_store_datadir = %s
weight = 1

[web]
http_store_timeout = 10

[os_glance_staging_store]
filesystem_store_datadir = %s

[os_glance_tasks_store]
filesystem_store_datadir = %s

[paste_deploy]
flavor = trusted-auth
`, port, filepath.Join(dir, "g.sqlite"), ms.fast, ms.cheap, filepath.Join(dir, "staging"), filepath.Join(dir, "tasks"))
	p := startConf(t, dir, text, port)
	ms.server = &server{URL: p.url, Trusted: true}
	return ms
}

// serveLocationData serves data at <URL>/img from 127.0.0.1 for the http store.
func serveLocationData(t *testing.T, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "img"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL + "/img"
}

// nova is a caller with the service role in tenantA's project, as Nova
// or Cinder would call with a service token.
var nova = &caller{Project: tenantA.Project, User: "e2e-nova", Roles: "member,reader,service"}

// pollImage polls the image until cond holds.
func (s *server) pollImage(t *testing.T, id string, cond func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		img := s.show(t, admin, id)
		if cond(img) {
			return img
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s never reached the expected state: %v", id, img)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func locationsOfImage(t *testing.T, img map[string]any) []map[string]any {
	t.Helper()
	raw, ok := img["locations"].([]any)
	if !ok {
		t.Fatalf("image has no locations list: %v", img)
	}
	var out []map[string]any
	for _, l := range raw {
		out = append(out, l.(map[string]any))
	}
	return out
}

func locationStore(l map[string]any) any {
	md, _ := l["metadata"].(map[string]any)
	return md["store"]
}

func TestMultiStoreUploads(t *testing.T) {
	ms := startLocStores(t)
	data := randomBytes(3<<20 + 5)
	cases := []struct {
		name, header string
		dir          string
		status       int
		msg          string
	}{
		{"default store", "", ms.cheap, 204, ""},
		{"named store", "fast", ms.fast, 204, ""},
		{"unknown store", "nowhere", "", 400, "Store for identifier nowhere not found"},
		{"read-only store", "web", "", 410, "Error in store configuration. Adding images to store is disabled."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := ms.rawImage(t, tenantA, nil)["id"].(string)
			r := ms.do(t, tenantA, http.MethodPut, "/v2/images/"+id+"/file", data, hdr("Content-Type", octet),
				hdr("X-Image-Meta-Store", tc.header), acceptJSON)
			if tc.status != http.StatusNoContent {
				r.wantError(t, tc.status, tc.msg)
				checkFields(t, ms.show(t, tenantA, id), map[string]any{"status": "queued", "size": nil})
				return
			}
			r.want(t, http.StatusNoContent)
			got, err := os.ReadFile(filepath.Join(tc.dir, id))
			if err != nil || string(got) != string(data) {
				t.Fatalf("the data is not in %s: %v", tc.dir, err)
			}
			img := ms.show(t, tenantA, id)
			want := map[string]string{ms.cheap: "cheap", ms.fast: "fast"}[tc.dir]
			if img["stores"] != want {
				t.Errorf("stores = %v, want %s", img["stores"], want)
			}
			if locs := locationsOfImage(t, img); len(locs) != 1 || locationStore(locs[0]) != want ||
				img["direct_url"] != "file://"+filepath.Join(tc.dir, id) {
				t.Errorf("locations %v, direct_url %v", locs, img["direct_url"])
			}
			if body := ms.do(t, tenantA, http.MethodGet, "/v2/images/"+id+"/file", nil).want(t, 200).Body; string(body) != string(data) {
				t.Errorf("download gave %d bytes, want the %d uploaded", len(body), len(data))
			}
		})
	}
}

func TestLocationsPatchAndDeleteFromStore(t *testing.T) {
	ms := startLocStores(t)
	data := randomBytes(1<<20 + 7)
	url := serveLocationData(t, data)
	addWeb := op{Op: "add", Path: "/locations/-", Value: map[string]any{"url": url, "metadata": map[string]any{}}}

	// A queued image gets its data from the web store.
	queued := ms.rawImage(t, tenantA, nil)["id"].(string)
	img := ms.patch(t, tenantA, queued, addWeb).want(t, http.StatusOK).object(t)
	checkFields(t, img, map[string]any{"status": "active", "size": float64(len(data)), "direct_url": url, "stores": "web"})
	if body := ms.do(t, tenantA, http.MethodGet, "/v2/images/"+queued+"/file", nil).want(t, 200).Body; string(body) != string(data) {
		t.Errorf("download from the web store: %d bytes", len(body))
	}

	// Refusals.
	fresh := ms.rawImage(t, tenantA, nil)["id"].(string)
	refusals := []struct {
		name   string
		ops    []op
		as     *caller
		status int
		msg    string
	}{
		{"file URL", []op{{Op: "add", Path: "/locations/-", Value: map[string]any{"url": "file:///etc/passwd", "metadata": map[string]any{}}}},
			tenantA, 400, "Invalid location"},
		{"nothing at the URL", []op{{Op: "add", Path: "/locations/-", Value: map[string]any{"url": url + ".missing", "metadata": map[string]any{}}}},
			tenantA, 400, "Invalid location"},
		{"bad position", []op{{Op: "add", Path: "/locations/7x", Value: map[string]any{"url": url, "metadata": map[string]any{}}}},
			tenantA, 400, "Invalid position for adding a location."},
		{"remove from a queued image", []op{{Op: "remove", Path: "/locations/0"}}, tenantA, 409,
			"It's not allowed to remove locations if image status is queued."},
		{"empty list", []op{{Op: "replace", Path: "/locations", Value: []any{}}}, tenantA, 403,
			"Cannot set locations to empty list."},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(tc.ops)
			ms.do(t, tc.as, http.MethodPatch, "/v2/images/"+fresh, body, hdr("Content-Type", jsonPatch), acceptJSON).
				wantError(t, tc.status, tc.msg)
		})
	}
	checkFields(t, ms.show(t, tenantA, fresh), map[string]any{"status": "queued", "size": nil})

	// An image with data in "fast" and a second location in "web".
	two := ms.rawImage(t, tenantA, nil)["id"].(string)
	ms.do(t, tenantA, http.MethodPut, "/v2/images/"+two+"/file", data, hdr("Content-Type", octet),
		hdr("X-Image-Meta-Store", "fast")).want(t, http.StatusNoContent)
	img = ms.patch(t, tenantA, two, addWeb).want(t, http.StatusOK).object(t)
	checkFields(t, img, map[string]any{"stores": "fast,web", "direct_url": "file://" + filepath.Join(ms.fast, two)})

	steps := []struct {
		name   string
		as     *caller
		path   string
		status int
		msg    string
	}{
		{"member", tenantA, "/v2/stores/fast/" + two, 403, "You are not authorized to complete delete_image_location action."},
		{"unknown store", admin, "/v2/stores/nowhere/" + two, 409, "The selected store nowhere is not available on this node."},
		{"not in that store", admin, "/v2/stores/cheap/" + two, 404, "Image " + two + " is not stored in store cheap."},
		{"not active", admin, "/v2/stores/cheap/" + fresh, 409,
			"It's not allowed to remove image data from store if image status is not 'active'"},
		{"only store", admin, "/v2/stores/web/" + queued, 403,
			"Cannot delete image data from the only store containing it. Consider deleting the image instead."},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			ms.do(t, st.as, http.MethodDelete, st.path, nil, acceptJSON).wantError(t, st.status, st.msg)
		})
	}
	ms.do(t, admin, http.MethodDelete, "/v2/stores/fast/"+two, nil).want(t, http.StatusNoContent)
	if _, err := os.Stat(filepath.Join(ms.fast, two)); !os.IsNotExist(err) {
		t.Errorf("the data is still in the fast store: %v", err)
	}
	checkFields(t, ms.show(t, tenantA, two), map[string]any{"status": "active", "stores": "web", "direct_url": url})
	if body := ms.do(t, tenantA, http.MethodGet, "/v2/images/"+two+"/file", nil).want(t, 200).Body; string(body) != string(data) {
		t.Errorf("download after the delete from fast: %d bytes", len(body))
	}
	ms.do(t, admin, http.MethodDelete, "/v2/stores/web/"+two, nil, acceptJSON).wantError(t, http.StatusForbidden,
		"Cannot delete image data from the only store containing it.")

	// Removing a location through PATCH deletes its data too (admin only).
	three := ms.rawImage(t, tenantA, nil)["id"].(string)
	ms.do(t, tenantA, http.MethodPut, "/v2/images/"+three+"/file", data, hdr("Content-Type", octet)).want(t, http.StatusNoContent)
	ms.patch(t, tenantA, three, addWeb).want(t, http.StatusOK)
	img = ms.patch(t, admin, three, op{Op: "remove", Path: "/locations/0"}).want(t, http.StatusOK).object(t)
	if _, err := os.Stat(filepath.Join(ms.cheap, three)); !os.IsNotExist(err) || img["stores"] != "web" {
		t.Errorf("after removing the cheap location: stores %v, file %v", img["stores"], err)
	}

	// Without multi-store, DELETE /v2/stores is not found.
	if !suite.legacyGlance {
		suite.srv.do(t, admin, http.MethodDelete, "/v2/stores/fast/"+two, nil).want(t, http.StatusNotFound)
	}
}

func TestLocationsAPI(t *testing.T) {
	ms := startLocStores(t)
	data := randomBytes(2<<20 + 1)
	url := serveLocationData(t, data)
	s256 := sha256.Sum256(data)
	s512 := sha512.Sum512(data)
	post := func(t *testing.T, as *caller, id string, body map[string]any) *reply {
		return ms.do(t, as, http.MethodPost, "/v2/images/"+id+"/locations", body, acceptJSON)
	}

	t.Run("validation data", func(t *testing.T) {
		id := ms.rawImage(t, tenantA, nil)["id"].(string)
		post(t, nova, id, map[string]any{"url": url, "validation_data": map[string]any{
			"os_hash_algo": "sha256", "os_hash_value": hex.EncodeToString(s256[:])}}).want(t, http.StatusAccepted)
		img := ms.pollImage(t, id, func(m map[string]any) bool { return m["status"] == "active" })
		checkFields(t, img, map[string]any{"os_hash_algo": "sha256", "os_hash_value": hex.EncodeToString(s256[:]),
			"size": float64(len(data)), "stores": "web"})
	})
	t.Run("validation data that does not match", func(t *testing.T) {
		id := ms.rawImage(t, tenantA, nil)["id"].(string)
		post(t, nova, id, map[string]any{"url": url, "validation_data": map[string]any{
			"os_hash_algo": "sha256", "os_hash_value": strings.Repeat("0", 64)}}).want(t, http.StatusAccepted)
		img := ms.pollImage(t, id, func(m map[string]any) bool { return m["status"] == "queued" })
		if locs := locationsOfImage(t, img); len(locs) != 0 || img["os_hash_value"] != nil {
			t.Errorf("after a mismatch: locations %v, os_hash_value %v", locs, img["os_hash_value"])
		}
	})
	t.Run("without validation data", func(t *testing.T) {
		id := ms.rawImage(t, tenantA, nil)["id"].(string)
		post(t, tenantA, id, map[string]any{"url": url}).want(t, http.StatusAccepted)
		checkFields(t, ms.show(t, tenantA, id), map[string]any{"status": "active"})
		img := ms.pollImage(t, id, func(m map[string]any) bool { return m["os_hash_value"] != nil })
		checkFields(t, img, map[string]any{"os_hash_algo": "sha512", "os_hash_value": hex.EncodeToString(s512[:])})

		var locs []map[string]any
		r := ms.do(t, nova, http.MethodGet, "/v2/images/"+id+"/locations", nil).want(t, http.StatusOK)
		if err := json.Unmarshal(r.Body, &locs); err != nil || len(locs) != 1 || locs[0]["url"] != url ||
			locationStore(locs[0]) != "web" {
			t.Errorf("GET locations: %s (%v)", r.Body, err)
		}
		ms.do(t, tenantA, http.MethodGet, "/v2/images/"+id+"/locations", nil, acceptJSON).
			wantError(t, http.StatusForbidden, "You are not authorized to complete fetch_image_location action.")
		post(t, nova, id, map[string]any{"url": url}).
			wantError(t, http.StatusConflict, "It's not allowed to add locations if image status is active.")
	})
	t.Run("refusals", func(t *testing.T) {
		id := ms.rawImage(t, tenantA, nil)["id"].(string)
		post(t, nova, id, map[string]any{}).wantError(t, http.StatusBadRequest, "'url' is a required property")
		post(t, tenantA, id, map[string]any{"url": "file:///etc/passwd"}).
			wantError(t, http.StatusForbidden, "http store must be enabled to use location API by normal user.")
		post(t, readerA, id, map[string]any{"url": url}).
			wantError(t, http.StatusForbidden, "You are not authorized to complete add_image_location action.")
		post(t, nova, id, map[string]any{"url": url, "validation_data": map[string]any{
			"os_hash_algo": "sha256", "os_hash_value": "abc"}}).
			wantError(t, http.StatusBadRequest, "os_hash_value (abc) is not a valid hexadecimal value")
		post(t, nova, id, map[string]any{"url": url + ".missing"}).wantError(t, http.StatusBadRequest, "Invalid location")
		checkFields(t, ms.show(t, tenantA, id), map[string]any{"status": "queued"})
	})
}
