package e2e

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestGlanceManageDatabase starts our server on a database that Debian's
// glance-manage made, without our own "db sync": operators swap binaries
// on an existing Glance database.
func TestGlanceManageDatabase(t *testing.T) {
	if suite.bin == "" {
		t.Skip("runs only against our own binary (GLANCE_E2E_ENDPOINT is set)")
	}
	manage, err := exec.LookPath("/usr/bin/glance-manage")
	if err != nil {
		strictSkip(t, "glance-manage is not installed (Debian's glance-common provides it)")
	}
	dir := filepath.Join(suite.tmp, "glance-manage")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conn := "sqlite:///" + filepath.Join(dir, "glance.sqlite")
	conf := filepath.Join(dir, "glance-manage.conf")
	if err := os.WriteFile(conf, []byte("[database]\nconnection = "+conn+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(manage, "--config-file", conf, "db_sync")
	cmd.Env = append(os.Environ(), "PATH=/usr/bin:"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("glance-manage db_sync: %v\n%s", err, out)
	}

	p, err := startOurs(dir, "trusted-auth", conn, false)
	if err != nil {
		t.Fatalf("our glance-api on a glance-manage database: %v", err)
	}
	t.Cleanup(p.stop)
	s := &server{URL: p.url, Trusted: true}

	tag := uniq("manage")
	img := s.createImage(t, tenantA, map[string]any{"name": tag, "disk_format": "raw", "container_format": "bare",
		"tags": []string{tag}, "e2e_prop": "x"})
	id := img["id"].(string)
	data := randomBytes(4096)
	s.upload(t, tenantA, id, data)
	checkFields(t, s.show(t, tenantA, id), map[string]any{"status": "active", "size": 4096.0, "e2e_prop": "x"})
	list := s.do(t, tenantA, http.MethodGet, "/v2/images?tag="+url.QueryEscape(tag), nil).want(t, http.StatusOK).object(t)
	if got := ids(t, list); !slices.Equal(got, []string{id}) {
		t.Errorf("list by tag: %v, want [%s]", got, id)
	}
	r := s.do(t, tenantA, http.MethodGet, "/v2/images/"+id+"/file", nil).want(t, http.StatusOK)
	if !bytes.Equal(r.Body, data) {
		t.Errorf("downloaded %d bytes differ from the %d uploaded", len(r.Body), len(data))
	}
	s.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
	s.do(t, tenantA, http.MethodGet, "/v2/images/"+id, nil).want(t, http.StatusNotFound)
}
