package api

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
	httpstore "github.com/glance-go/glance-go/stores/http"
)

// multiStores returns a multi-store Set: two file stores, cheap by default,
// and a read-only http store.
func multiStores(t *testing.T) (*stores.Set, string) {
	t.Helper()
	dir := t.TempDir()
	fast, err := stores.Open("fast", "file", &stores.Options{Values: map[string]string{
		"filesystem_store_datadir": filepath.Join(dir, "fast"), "filesystem_store_chunk_size": "4096",
		"filesystem_thin_provisioning": "true", "store_description": "Fast – SSD \"tier\"", "weight": "100"}})
	if err != nil {
		t.Fatal(err)
	}
	cheap, err := file.New(file.Config{DataDir: filepath.Join(dir, "cheap")})
	if err != nil {
		t.Fatal(err)
	}
	web, err := httpstore.New(httpstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := stores.NewMultiSet("cheap", fast,
		&stores.Backend{ID: "cheap", Type: "file", Driver: cheap, Properties: cheap.Properties()},
		&stores.Backend{ID: "web", Type: "http", Description: "Remote", Driver: web, Weight: -5, Properties: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestStoresInfo(t *testing.T) {
	set, dir := multiStores(t)
	single := stores.NewSet(set.Default())
	onlyAdmin := func(c *domain.Caller, rule string) bool { return rule == "stores_info_detail" && c.IsAdmin }
	list := `{"stores": [{"id": "fast", "description": "Fast \u2013 SSD \"tier\""}, {"id": "cheap", "default": "true"}, ` +
		`{"id": "web", "description": "Remote", "read-only": "true"}]}`
	detail := `{"stores": [{"id": "fast", "description": "Fast \u2013 SSD \"tier\"", "type": "file", ` +
		`"properties": {"data_dir": "` + dir + `/fast", "chunk_size": 4096, "thin_provisioning": true}, "weight": 100}, ` +
		`{"id": "cheap", "default": "true", "type": "file", ` +
		`"properties": {"data_dir": "` + dir + `/cheap", "chunk_size": 65536, "thin_provisioning": false}, "weight": 0}, ` +
		`{"id": "web", "description": "Remote", "read-only": "true", "type": "http", "properties": {}, "weight": -5}]}`
	tests := []struct {
		name       string
		set        *stores.Set
		path       string
		who        []string
		body       string
		wantStatus int
		want       string // the body, or the JSON error message
	}{
		{"list", set, "/v2/info/stores", tenantA, "", http.StatusOK, list},
		{"list with a path version", set, "/v2.7/info/stores", tenantA, "", http.StatusOK, list},
		{"detail as admin", set, "/v2/info/stores/detail", admin, "", http.StatusOK, detail},
		{"detail as a member", set, "/v2/info/stores/detail", tenantA, "", http.StatusForbidden,
			"You are not authorized to complete stores_info_detail action.<br /><br />\n\n\n"},
		{"single store", single, "/v2/info/stores", tenantA, "", http.StatusNotFound,
			"Multi backend is not supported at this site.<br /><br />\n\n\n"},
		{"single store detail, before the policy", single, "/v2/info/stores/detail", tenantA, "", http.StatusNotFound,
			"Multi backend is not supported at this site.<br /><br />\n\n\n"},
		{"no stores at all", nil, "/v2/info/stores", admin, "", http.StatusNotFound,
			"Multi backend is not supported at this site.<br /><br />\n\n\n"},
		{"a body", set, "/v2/info/stores", admin, "{}", http.StatusBadRequest,
			"A body is not expected with this request.<br /><br />\n\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{Stores: tc.set, Authorize: onlyAdmin, Auth: TrustedHeaders(func(c *domain.Caller) bool {
				return c.ProjectID == "admin-p"
			})})
			w := h.do(http.MethodGet, tc.path, tc.body, with(tc.who, "Accept", "application/json")...)
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
			got := w.Body.String()
			if w.Code != http.StatusOK {
				got = jsonMessage(t, w)
			} else if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if got != tc.want {
				t.Errorf("body\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestStoresInfoMethods(t *testing.T) {
	set, _ := multiStores(t)
	h := newHarness(t, Options{Stores: set})
	for _, path := range []string{"/v2/info/stores", "/v2/info/stores/detail"} {
		w := h.do(http.MethodPost, path, "", admin...)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET" {
			t.Errorf("POST %s = %d, Allow %q", path, w.Code, w.Header().Get("Allow"))
		}
	}
}
