package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoresSingle checks discovery on a server without enabled_backends.
func TestStoresSingle(t *testing.T) {
	for _, path := range []string{"/v2/info/stores", "/v2/info/stores/detail"} {
		r := suite.srv.do(t, admin, http.MethodGet, path, nil, hdr("Accept", "application/json")).want(t, http.StatusNotFound)
		if msg, _ := r.object(t)["message"].(string); !strings.HasPrefix(msg, "Multi backend is not supported at this site.") {
			t.Errorf("GET %s: message %q", path, msg)
		}
	}
}

// TestInfoUsage checks GET /v2/info/usage on a server without Keystone's
// unified limits (use_keystone_limits unset, Glance's default): no usage
// is reported, for any caller.
func TestInfoUsage(t *testing.T) {
	for _, c := range []*caller{tenantA, admin} {
		r := suite.srv.do(t, c, http.MethodGet, "/v2/info/usage", nil).want(t, http.StatusOK)
		if got := fmt.Sprint(r.object(t)); got != "map[usage:map[]]" {
			t.Errorf("GET /v2/info/usage as %s: %s", c.Project, r.Body)
		}
	}
	if suite.srv.Trusted {
		suite.srv.do(t, nobody, http.MethodGet, "/v2/info/usage", nil).want(t, http.StatusUnauthorized)
	}
}

// multiStoreServer is one of our servers with two file backends (fast and
// cheap, the default) and an http one.
type multiStoreServer struct {
	*server
	dir string // fast/, cheap/, staging/, tasks/ are under it
}

// startMultiStore starts a trusted-auth server whose glance-api.conf
// enables several stores.
func startMultiStore(t *testing.T) *multiStoreServer {
	t.Helper()
	if suite.bin == "" {
		t.Skip("needs our own binary to configure stores: GLANCE_E2E_ENDPOINT is set")
	}
	dir := filepath.Join(suite.tmp, "multistore")
	conn, port := serverEnv(t, dir)
	text := fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
enabled_backends = fast:file, cheap:file, web:http

[database]
connection = %s

[glance_store]
default_backend = cheap

[fast]
store_description = Fast disks – “SSD”
weight = 100
filesystem_store_datadir = $state/fast
filesystem_store_chunk_size = 4096
filesystem_thin_provisioning = true

[cheap]
filesystem_store_datadir = $state/cheap

[web]
store_description = Images on the web

[os_glance_staging_store]
filesystem_store_datadir = $state/staging

[os_glance_tasks_store]
filesystem_store_datadir = $state/tasks

[paste_deploy]
flavor = trusted-auth
`, port, conn)
	text = strings.ReplaceAll(text, "$state", dir)
	p := startConf(t, dir, text, port)
	return &multiStoreServer{server: &server{URL: p.url, Trusted: true}, dir: dir}
}

func TestStoresMulti(t *testing.T) {
	s := startMultiStore(t)
	acceptJSON := hdr("Accept", "application/json")

	t.Run("list", func(t *testing.T) {
		r := s.do(t, tenantA, http.MethodGet, "/v2/info/stores", nil).want(t, http.StatusOK)
		want := `{"stores": [{"id": "fast", "description": "Fast disks \u2013 \u201cSSD\u201d"}, {"id": "cheap", "default": "true"}, ` +
			`{"id": "web", "description": "Images on the web", "read-only": "true"}]}`
		if string(r.Body) != want || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("got %s (%s)\nwant %s", r.Body, r.Header.Get("Content-Type"), want)
		}
	})
	t.Run("detail", func(t *testing.T) {
		r := s.do(t, admin, http.MethodGet, "/v2/info/stores/detail", nil).want(t, http.StatusOK)
		want := `{"stores": [{"id": "fast", "description": "Fast disks \u2013 \u201cSSD\u201d", "type": "file", ` +
			`"properties": {"data_dir": "` + s.dir + `/fast", "chunk_size": 4096, "thin_provisioning": true}, "weight": 100}, ` +
			`{"id": "cheap", "default": "true", "type": "file", ` +
			`"properties": {"data_dir": "` + s.dir + `/cheap", "chunk_size": 65536, "thin_provisioning": false}, "weight": 0}, ` +
			`{"id": "web", "description": "Images on the web", "read-only": "true", "type": "http", "properties": {}, "weight": 0}]}`
		if string(r.Body) != want {
			t.Errorf("got  %s\nwant %s", r.Body, want)
		}
	})
	t.Run("detail is for admins", func(t *testing.T) {
		r := s.do(t, tenantA, http.MethodGet, "/v2/info/stores/detail", nil, acceptJSON).want(t, http.StatusForbidden)
		if msg, _ := r.object(t)["message"].(string); !strings.HasPrefix(msg, "You are not authorized to complete stores_info_detail action.") {
			t.Errorf("message %q", msg)
		}
	})
	t.Run("methods", func(t *testing.T) {
		r := s.do(t, admin, http.MethodPut, "/v2/info/stores", nil).want(t, http.StatusMethodNotAllowed)
		if r.Header.Get("Allow") != "GET" {
			t.Errorf("Allow %q", r.Header.Get("Allow"))
		}
	})
	t.Run("uploads land in the store named", func(t *testing.T) {
		for _, tc := range []struct{ header, dir string }{{"fast", "fast"}, {"", "cheap"}} {
			img := s.rawImage(t, tenantA, nil)
			id := img["id"].(string)
			data := randomBytes(10000)
			s.do(t, tenantA, http.MethodPut, "/v2/images/"+id+"/file", data,
				hdr("Content-Type", "application/octet-stream"), hdr("X-Image-Meta-Store", tc.header)).want(t, http.StatusNoContent)
			got, err := os.ReadFile(filepath.Join(s.dir, tc.dir, id))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("X-Image-Meta-Store %q: %s/%s holds %d bytes, %v", tc.header, tc.dir, id, len(got), err)
			}
			if stores := s.show(t, tenantA, id)["stores"]; stores != tc.dir {
				t.Errorf("X-Image-Meta-Store %q: stores = %v, want %s", tc.header, stores, tc.dir)
			}
			down := s.do(t, tenantA, http.MethodGet, "/v2/images/"+id+"/file", nil).want(t, http.StatusOK)
			if !bytes.Equal(down.Body, data) {
				t.Errorf("download of %s: %d bytes, want the %d uploaded", id, len(down.Body), len(data))
			}
		}
	})
}
