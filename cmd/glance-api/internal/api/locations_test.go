package api

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/gateway"
	"github.com/glance-go/glance-go/proxies/inspect"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/notifier"
	"github.com/glance-go/glance-go/proxies/policy"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/proxies/quota"
	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
	storehttp "github.com/glance-go/glance-go/stores/http"
)

// gwDB adapts proxytest.DB to gateway.Database.
type gwDB struct{ *proxytest.DB }

func (d gwDB) Images(c *domain.Caller) domain.Repo { return d.Repo(c) }
func (d gwDB) Members(c *domain.Caller, id string) domain.MemberRepo {
	return d.DB.Members(c, id)
}

// newGatewayHarness serves opts over the real onion (location, quota,
// policy with the default rules, notifier, authorization) on set.
func newGatewayHarness(t *testing.T, set *stores.Set, opts Options) *harness {
	t.Helper()
	return &harness{t: t, h: newGatewayHandler(t, set, opts)}
}

// newGatewayHandler is the handler of newGatewayHarness.
func newGatewayHandler(t testing.TB, set *stores.Set, opts Options) http.Handler {
	t.Helper()
	enf, err := policy.NewDefault()
	if err != nil {
		t.Fatal(err)
	}
	gw := gateway.New(gateway.Config{
		DB:       gwDB{proxytest.NewDB()},
		Stores:   set,
		Location: location.Options{HashAlgo: "sha512", Formats: inspect.DefaultPolicy()},
		Limits:   quota.Limits{Properties: 128, Tags: 128, Members: 128, Locations: 10, SizeCap: 1 << 40},
		Enforcer: enf,
		Sink:     &proxytest.Sink{},
		Notifier: notifier.Options{},
	})
	opts.Stores = set
	if opts.Auth == nil {
		opts.Auth = TrustedHeaders(nil)
	}
	if opts.HashAlgo == "" {
		opts.HashAlgo = "sha512"
	}
	return jsonErrors(New(gw, opts))
}

// jsonErrors asks for JSON error bodies on every request.
func jsonErrors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") == "" {
			r.Header.Set("Accept", "application/json")
		}
		h.ServeHTTP(w, r)
	})
}

var (
	service = []string{"X-Identity-Status", "Confirmed", "X-Project-Id", "tenant-a", "X-User-Id", "nova", "X-Roles", "member,reader,service"}
	readerA = []string{"X-Identity-Status", "Confirmed", "X-Project-Id", "tenant-a", "X-Roles", "reader"}
)

// locationWorld is a multi-store deployment: file backends "fast" (weight
// 10) and "cheap" (weight 1, the default), and "web", an http backend, with
// a web server on 127.0.0.1 holding the image data.
type locationWorld struct {
	*harness
	fastDir, cheapDir string
	web               *httptest.Server
	data              []byte
	url               string // where the web server has data
}

func newLocationWorld(t *testing.T, opts Options) *locationWorld {
	t.Helper()
	w := &locationWorld{fastDir: t.TempDir(), cheapDir: t.TempDir(), data: []byte(strings.Repeat("glance-go ", 1000))}
	w.web = httptest.NewServer(http.FileServer(http.Dir(writeDir(t, "img", w.data))))
	t.Cleanup(w.web.Close)
	w.url = w.web.URL + "/img"
	fast, err := file.New(file.Config{DataDir: w.fastDir})
	if err != nil {
		t.Fatal(err)
	}
	cheap, err := file.New(file.Config{DataDir: w.cheapDir})
	if err != nil {
		t.Fatal(err)
	}
	web, err := storehttp.New(storehttp.Config{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	set, err := stores.NewMultiSet("cheap",
		&stores.Backend{ID: "fast", Type: "file", Weight: 10, Driver: stores.WithStoreID(fast, "fast")},
		&stores.Backend{ID: "cheap", Type: "file", Weight: 1, Driver: stores.WithStoreID(cheap, "cheap")},
		&stores.Backend{ID: "web", Type: "http", Driver: stores.WithStoreID(web, "web")},
	)
	if err != nil {
		t.Fatal(err)
	}
	opts.ShowMultipleLocations, opts.ShowDirectURL = true, true
	w.harness = newGatewayHarness(t, set, opts)
	return w
}

// writeDir writes one file into a new directory and returns the directory.
func writeDir(t *testing.T, name string, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (w *locationWorld) queued(who []string) string {
	w.t.Helper()
	return w.create(who, `{"disk_format": "raw", "container_format": "bare"}`)
}

func (w *locationWorld) show(id string) map[string]any {
	w.t.Helper()
	r := w.do("GET", "/v2/images/"+id, "", admin...)
	if r.Code != http.StatusOK {
		w.t.Fatalf("show: %d %s", r.Code, r.Body)
	}
	return decode(w.t, r)
}

func (w *locationWorld) patch(who []string, id, ops string) *httptest.ResponseRecorder {
	w.t.Helper()
	return w.do("PATCH", "/v2/images/"+id, ops, with(who, "Content-Type", patchV21)...)
}

// upload stores the world's data as image id in store.
func (w *locationWorld) upload(who []string, id, store string) {
	w.t.Helper()
	hdr := with(who, "Content-Type", "application/octet-stream")
	if store != "" {
		hdr = with(hdr, "X-Image-Meta-Store", store)
	}
	if r := w.do("PUT", "/v2/images/"+id+"/file", string(w.data), hdr...); r.Code != http.StatusNoContent {
		w.t.Fatalf("upload: %d %s", r.Code, r.Body)
	}
}

// eventually polls the image until cond holds.
func (w *locationWorld) eventually(id string, cond func(map[string]any) bool) map[string]any {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := w.show(id)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("image never reached the expected state: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUploadToStore(t *testing.T) {
	tests := []struct {
		name    string
		store   string
		want    int
		wantDir string // "fast" or "cheap"
		wantMsg string
	}{
		{name: "default store", store: "", want: 204, wantDir: "cheap"},
		{name: "named store", store: "fast", want: 204, wantDir: "fast"},
		{name: "unknown store", store: "nowhere", want: 400, wantMsg: "Store for identifier nowhere not found"},
		{name: "read-only store", store: "web", want: 410,
			wantMsg: "Error in store configuration. Adding images to store is disabled."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newLocationWorld(t, Options{})
			id := w.queued(tenantA)
			hdr := with(tenantA, "Content-Type", "application/octet-stream")
			if tc.store != "" {
				hdr = with(hdr, "X-Image-Meta-Store", tc.store)
			}
			r := w.do("PUT", "/v2/images/"+id+"/file", string(w.data), hdr...)
			if r.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", r.Code, tc.want, r.Body)
			}
			m := w.show(id)
			if tc.want != 204 {
				if got := jsonMessage(t, r); !strings.HasPrefix(got, tc.wantMsg) {
					t.Errorf("message %q, want %q", got, tc.wantMsg)
				}
				if m["status"] != "queued" {
					t.Errorf("status %v, want queued", m["status"])
				}
				return
			}
			dir := map[string]string{"fast": w.fastDir, "cheap": w.cheapDir}[tc.wantDir]
			if got, err := os.ReadFile(filepath.Join(dir, id)); err != nil || string(got) != string(w.data) {
				t.Errorf("data not in the %s store: %v", tc.wantDir, err)
			}
			if m["stores"] != tc.wantDir {
				t.Errorf("stores = %v, want %s", m["stores"], tc.wantDir)
			}
			locs, _ := m["locations"].([]any)
			if len(locs) != 1 || locs[0].(map[string]any)["metadata"].(map[string]any)["store"] != tc.wantDir {
				t.Errorf("locations = %v", locs)
			}
		})
	}
}

func TestUploadRefusedByFormatChecks(t *testing.T) {
	w := newLocationWorld(t, Options{})
	id := w.create(tenantA, `{"disk_format": "qcow2", "container_format": "bare"}`)
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "proxies", "inspect", "testdata", "qcow2-backing.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	r := w.do("PUT", "/v2/images/"+id+"/file", string(data), with(tenantA, "Content-Type", "application/octet-stream")...)
	if r.Code != http.StatusUnsupportedMediaType {
		t.Fatalf("status %d, want 415: %s", r.Code, r.Body)
	}
	want := "The request media type application/octet-stream is not supported by this server.\n<br /><br />\nImage failed safety checks"
	if got := jsonMessage(t, r); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if m := w.show(id); m["status"] != "queued" || m["size"] != nil {
		t.Errorf("image after refusal: status %v size %v", m["status"], m["size"])
	}
	if ents, _ := os.ReadDir(w.cheapDir); len(ents) != 0 {
		t.Errorf("files left in the store: %v", ents)
	}
}

func TestPatchLocations(t *testing.T) {
	w := newLocationWorld(t, Options{})
	add := func(url string) string {
		return fmt.Sprintf(`[{"op": "add", "path": "/locations/-", "value": {"url": %q, "metadata": {}}}]`, url)
	}
	// A queued image becomes active with its first location and takes the
	// size the store reports.
	id := w.queued(tenantA)
	r := w.patch(tenantA, id, add(w.url))
	if r.Code != http.StatusOK {
		t.Fatalf("add: %d %s", r.Code, r.Body)
	}
	m := decode(t, r)
	if m["status"] != "active" || m["size"] != float64(len(w.data)) || m["direct_url"] != w.url || m["stores"] != "web" {
		t.Errorf("after add: status %v size %v direct_url %v stores %v", m["status"], m["size"], m["direct_url"], m["stores"])
	}

	queued := w.queued(tenantA)
	withData := w.queued(tenantA)
	w.upload(tenantA, withData, "fast")
	sum := sha512.Sum512(w.data)
	tests := []struct {
		name    string
		id      string
		who     []string
		ops     string
		want    int
		wantMsg string
	}{
		{"restricted scheme", queued, tenantA, add("file:///etc/passwd"), 400, "Invalid location"},
		{"no data there", queued, tenantA, add(w.web.URL + "/missing"), 400, "Invalid location"},
		{"unknown scheme", queued, tenantA, add("swift://x/y"), 400, "Invalid location"},
		{"duplicate", id, tenantA, add(w.url), 400, "The location " + w.url + " already exists"},
		{"bad position", queued, tenantA,
			`[{"op": "add", "path": "/locations/x", "value": {"url": "` + w.url + `", "metadata": {}}}]`, 400,
			"Invalid position for adding a location."},
		{"remove the last one", id, tenantA, `[{"op": "remove", "path": "/locations/0"}]`, 403,
			"Cannot remove last location in the image."},
		{"remove from a queued image", queued, tenantA, `[{"op": "remove", "path": "/locations/0"}]`, 409,
			"It's not allowed to remove locations if image status is queued."},
		{"empty list", id, tenantA, `[{"op": "replace", "path": "/locations", "value": []}]`, 403,
			"Access was denied to this resource.<br /><br />\nCannot set locations to empty list."},
		{"replace with other URLs", withData, tenantA,
			`[{"op": "replace", "path": "/locations", "value": [{"url": "` + w.url + `", "metadata": {}}]}]`, 400,
			"Original locations is not empty: "},
		{"validation data of another algorithm", queued, tenantA,
			`[{"op": "add", "path": "/locations/-", "value": {"url": "` + w.url + `", "metadata": {},
			"validation_data": {"os_hash_algo": "sha256", "os_hash_value": "00"}}}]`, 409,
			"os_hash_algo must be sha512, not sha256"},
		{"validation data of a wrong size", queued, tenantA,
			`[{"op": "add", "path": "/locations/-", "value": {"url": "` + w.url + `", "metadata": {},
			"validation_data": {"os_hash_algo": "sha512", "os_hash_value": "00"}}}]`, 409,
			"os_hash_value (00) is not the correct size for sha512 (should be 64 bytes)"},
		{"validation data against an active image", withData, tenantA,
			`[{"op": "add", "path": "/locations/-", "value": {"url": "` + w.url + `", "metadata": {},
			"validation_data": {"os_hash_algo": "sha512", "os_hash_value": "` + strings.Repeat("0", 128) + `"}}}]`, 409,
			"os_hash_value is already set with a different value"},
		{"not the owner", queued, tenantB, add(w.url), 404, ""},
		{"reader", queued, readerA, add(w.url), 403, "You are not authorized to complete set_image_location action."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := w.patch(tc.who, tc.id, tc.ops)
			if r.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", r.Code, tc.want, r.Body)
			}
			if got := jsonMessage(t, r); !strings.HasPrefix(got, tc.wantMsg) {
				t.Errorf("message %q, want %q", got, tc.wantMsg)
			}
		})
	}
	if m := w.show(queued); m["status"] != "queued" || len(m["locations"].([]any)) != 0 {
		t.Errorf("refused changes altered the image: %v", m)
	}

	// Validation data that matches is recorded on the queued image.
	vd := w.queued(tenantA)
	r = w.patch(tenantA, vd, `[{"op": "add", "path": "/locations/-", "value": {"url": "`+w.url+`", "metadata": {},
		"validation_data": {"os_hash_algo": "sha512", "os_hash_value": "`+hex.EncodeToString(sum[:])+`"}}}]`)
	if r.Code != http.StatusOK {
		t.Fatalf("add with validation data: %d %s", r.Code, r.Body)
	}
	if m := decode(t, r); m["os_hash_value"] != hex.EncodeToString(sum[:]) || m["os_hash_algo"] != "sha512" {
		t.Errorf("validation data not recorded: %v", m)
	}

	// An active image with data in "fast" gets a second location; removing
	// the first one deletes its file; the web location is left alone.
	r = w.patch(tenantA, withData, `[{"op": "add", "path": "/locations/1", "value": {"url": "`+w.url+`", "metadata": {}}}]`)
	if r.Code != http.StatusOK {
		t.Fatalf("second location: %d %s", r.Code, r.Body)
	}
	if m := decode(t, r); m["stores"] != "fast,web" {
		t.Errorf("stores = %v, want fast,web", m["stores"])
	}
	r = w.patch(tenantA, withData, `[{"op": "remove", "path": "/locations/0"}]`)
	if r.Code != http.StatusForbidden {
		t.Errorf("member removed a location: %d %s", r.Code, r.Body)
	}
	r = w.patch(admin, withData, `[{"op": "remove", "path": "/locations/0"}]`)
	if r.Code != http.StatusOK {
		t.Fatalf("remove: %d %s", r.Code, r.Body)
	}
	if _, err := os.Stat(filepath.Join(w.fastDir, withData)); !os.IsNotExist(err) {
		t.Errorf("the removed location's file is still there: %v", err)
	}
	if m := decode(t, r); m["stores"] != "web" || m["direct_url"] != w.url {
		t.Errorf("after remove: stores %v direct_url %v", m["stores"], m["direct_url"])
	}
	// The data still downloads, from the web store.
	if r := w.do("GET", "/v2/images/"+withData+"/file", "", tenantA...); r.Code != 200 || r.Body.String() != string(w.data) {
		t.Errorf("download after remove: %d, %d bytes", r.Code, r.Body.Len())
	}
}

func TestPatchLocationsInvisible(t *testing.T) {
	h := newGatewayHarness(t, stores.NewSet(nil), Options{})
	id := h.create(tenantA, `{"disk_format": "raw", "container_format": "bare"}`)
	for op, msg := range map[string]string{
		`[{"op": "add", "path": "/locations/-", "value": {"url": "http://x", "metadata": {}}}]`:     "It's not allowed to add locations if locations are invisible.",
		`[{"op": "replace", "path": "/locations", "value": [{"url": "http://x", "metadata": {}}]}]`: "It's not allowed to update locations if locations are invisible.",
		`[{"op": "remove", "path": "/locations/0"}]`:                                                "It's not allowed to remove locations if locations are invisible.",
	} {
		r := h.do("PATCH", "/v2/images/"+id, op, with(tenantA, "Content-Type", patchV21)...)
		if r.Code != http.StatusForbidden || !strings.HasPrefix(jsonMessage(t, r), msg) {
			t.Errorf("%s: %d %s, want 403 %q", op, r.Code, r.Body, msg)
		}
	}
}

func TestDeleteFromStore(t *testing.T) {
	w := newLocationWorld(t, Options{})
	two := w.queued(tenantA)
	w.upload(tenantA, two, "fast")
	if r := w.patch(tenantA, two, `[{"op": "add", "path": "/locations/-", "value": {"url": "`+w.url+`", "metadata": {}}}]`); r.Code != 200 {
		t.Fatalf("second location: %d %s", r.Code, r.Body)
	}
	one := w.queued(tenantA)
	w.upload(tenantA, one, "cheap")
	queued := w.queued(tenantA)

	tests := []struct {
		name    string
		who     []string
		path    string
		want    int
		wantMsg string
	}{
		{"unknown store", admin, "/v2/stores/nowhere/" + two, 409, "The selected store nowhere is not available on this node."},
		{"unknown image", admin, "/v2/stores/fast/" + domain.NewUUID(), 404, "Failed to find image "},
		{"not allowed", tenantA, "/v2/stores/fast/" + two, 403, "You are not authorized to complete delete_image_location action."},
		{"not visible", tenantB, "/v2/stores/fast/" + two, 404, ""},
		{"not active", admin, "/v2/stores/fast/" + queued, 409,
			"It's not allowed to remove image data from store if image status is not 'active'"},
		{"only store", admin, "/v2/stores/cheap/" + one, 403,
			"Cannot delete image data from the only store containing it. Consider deleting the image instead."},
		{"not in that store", admin, "/v2/stores/cheap/" + two, 404, "Image " + two + " is not stored in store cheap."},
		{"a body", admin, "/v2/stores/fast/" + two, 400, "A body is not expected with this request."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.name == "a body" {
				body = "x"
			}
			r := w.do("DELETE", tc.path, body, tc.who...)
			if r.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", r.Code, tc.want, r.Body)
			}
			if got := jsonMessage(t, r); !strings.HasPrefix(got, tc.wantMsg) {
				t.Errorf("message %q, want %q", got, tc.wantMsg)
			}
		})
	}
	r := w.do("DELETE", "/v2/stores/fast/"+two, "", admin...)
	if r.Code != http.StatusNoContent {
		t.Fatalf("delete from fast: %d %s", r.Code, r.Body)
	}
	if _, err := os.Stat(filepath.Join(w.fastDir, two)); !os.IsNotExist(err) {
		t.Errorf("the file is still in the fast store: %v", err)
	}
	if m := w.show(two); m["stores"] != "web" || m["status"] != "active" {
		t.Errorf("after delete: stores %v status %v", m["stores"], m["status"])
	}

	// Without multi-store the route is not found.
	h := newGatewayHarness(t, stores.NewSet(nil), Options{})
	if r := h.do("DELETE", "/v2/stores/fast/"+two, "", admin...); r.Code != http.StatusNotFound {
		t.Errorf("single store: %d, want 404", r.Code)
	}
}

func TestAddLocationAPI(t *testing.T) {
	w := newLocationWorld(t, Options{})
	s256 := sha256.Sum256(w.data)
	s512 := sha512.Sum512(w.data)
	body := func(url, algo, value string) string {
		if algo == "" {
			return fmt.Sprintf(`{"url": %q}`, url)
		}
		return fmt.Sprintf(`{"url": %q, "validation_data": {"os_hash_algo": %q, "os_hash_value": %q}}`, url, algo, value)
	}
	post := func(who []string, id, b string) *httptest.ResponseRecorder {
		return w.do("POST", "/v2/images/"+id+"/locations", b, with(who, "Content-Type", "application/json")...)
	}

	active := w.queued(tenantA)
	w.upload(tenantA, active, "")
	queued := w.queued(tenantA)
	tests := []struct {
		name    string
		who     []string
		id      string
		body    string
		want    int
		wantMsg string
	}{
		{"missing url", service, queued, `{}`, 400, "Provided object does not match schema 'location': 'url' is a required property"},
		{"unknown algorithm", service, queued, body(w.url, "crc32", "00"), 400, "Provided object does not match schema 'location': 'crc32' is not one of"},
		{"hash without algorithm", service, queued, `{"url": "` + w.url + `", "validation_data": {"os_hash_value": "00"}}`, 400,
			"Provided object does not match schema 'location': 'os_hash_algo' is a dependency of 'os_hash_value'"},
		{"not hex", service, queued, body(w.url, "sha256", "zz"), 400, "os_hash_value (zz) is not a valid hexadecimal value"},
		{"wrong size", service, queued, body(w.url, "sha256", "00ff"), 400,
			"os_hash_value: (00ff) is not the correct size for (sha256) (should be (32) bytes)"},
		{"active image", service, active, body(w.url, "", ""), 409, "It's not allowed to add locations if image status is active."},
		{"reader", readerA, queued, body(w.url, "", ""), 403, "You are not authorized to complete add_image_location action."},
		{"file URL by a user", tenantA, queued, body("file:///etc/passwd", "", ""), 403,
			"http store must be enabled to use location API by normal user."},
		{"file URL by a service", service, queued, body("file:///etc/passwd", "", ""), 400, "Invalid location"},
		{"not found", service, domain.NewUUID(), body(w.url, "", ""), 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := post(tc.who, tc.id, tc.body)
			if r.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", r.Code, tc.want, r.Body)
			}
			if got := jsonMessage(t, r); !strings.HasPrefix(got, tc.wantMsg) {
				t.Errorf("message %q, want %q", got, tc.wantMsg)
			}
		})
	}
	if m := w.show(queued); m["status"] != "queued" {
		t.Fatalf("refused requests changed the image: %v", m)
	}

	hashed := func(m map[string]any) bool { return m["os_hash_value"] != nil }
	t.Run("validation data that matches", func(t *testing.T) {
		id := w.queued(tenantA)
		if r := post(service, id, body(w.url, "sha256", hex.EncodeToString(s256[:]))); r.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", r.Code, r.Body)
		}
		m := w.eventually(id, func(m map[string]any) bool { return m["status"] == "active" })
		if m["os_hash_algo"] != "sha256" || m["os_hash_value"] != hex.EncodeToString(s256[:]) || m["size"] != float64(len(w.data)) {
			t.Errorf("image %v", m)
		}
	})
	t.Run("validation data that does not match", func(t *testing.T) {
		id := w.queued(tenantA)
		if r := post(service, id, body(w.url, "sha256", strings.Repeat("ab", 32))); r.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", r.Code, r.Body)
		}
		m := w.eventually(id, func(m map[string]any) bool { return m["status"] == "queued" })
		if len(m["locations"].([]any)) != 0 || m["os_hash_value"] != nil || m["size"] != nil {
			t.Errorf("image after a mismatch: %v", m)
		}
	})
	t.Run("without validation data", func(t *testing.T) {
		id := w.queued(tenantA)
		if r := post(tenantA, id, body(w.url, "", "")); r.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", r.Code, r.Body)
		}
		m := w.eventually(id, hashed)
		if m["status"] != "active" || m["os_hash_algo"] != "sha512" || m["os_hash_value"] != hex.EncodeToString(s512[:]) {
			t.Errorf("image %v", m)
		}
		// GET /locations is for services.
		if r := w.do("GET", "/v2/images/"+id+"/locations", "", tenantA...); r.Code != http.StatusForbidden {
			t.Errorf("member listed locations: %d %s", r.Code, r.Body)
		}
		r := w.do("GET", "/v2/images/"+id+"/locations", "", service...)
		want := `[{"url": "` + w.url + `", "metadata": {"store": "web"}}]`
		if r.Code != http.StatusOK || r.Body.String() != want {
			t.Errorf("GET locations: %d %s, want %s", r.Code, r.Body, want)
		}
	})
}

func TestCreateNamesTheStores(t *testing.T) {
	w := newLocationWorld(t, Options{})
	r := w.do("POST", "/v2/images", `{"name": "x"}`, with(tenantA, "Content-Type", "application/json")...)
	if r.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Code, r.Body)
	}
	if got := r.Header().Get("OpenStack-image-store-ids"); got != "fast,cheap,web" {
		t.Errorf("OpenStack-image-store-ids = %q, want the enabled backends in order, fast,cheap,web", got)
	}
	single := newHarness(t, Options{})
	r = single.do("POST", "/v2/images", `{"name": "x"}`, with(tenantA, "Content-Type", "application/json")...)
	if _, ok := r.Header()["Openstack-Image-Store-Ids"]; ok {
		t.Error("OpenStack-image-store-ids sent without multi-store")
	}
}
