package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportRefusesUnsafeData stages images whose content is unsafe or does
// not match their disk_format and imports them with glance-direct: the
// import fails, the image is queued again, and neither the store nor
// staging keeps anything.
func TestImportRefusesUnsafeData(t *testing.T) {
	s := startImportServer(t, "import-formats", "trusted-auth", false)
	for _, tc := range []struct {
		name, file, diskFormat string
	}{
		{"qcow2 with a backing file", "qcow2-backing.qcow2", "qcow2"},
		{"raw data labelled qcow2", "raw.img", "qcow2"},
		{"vmdk with a path in its extent", "vmdk-path-extent.vmdk", "vmdk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := inspectCorpus(t, tc.file)
			id := s.do(t, tenantA, "POST", "/v2/images", map[string]any{"name": uniq("unsafe"),
				"disk_format": tc.diskFormat, "container_format": "bare"}).want(t, 201).object(t)["id"].(string)
			s.stage(t, tenantA, id, data).want(t, 204)
			s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "glance-direct"}}).want(t, 202)
			tk := s.waitTask(t, tenantA, id)
			if tk["status"] != "failure" {
				t.Fatalf("task %v, want failure", tk["status"])
			}
			msg, _ := tk["message"].(string)
			if !strings.Contains(msg, "safety checks") && !strings.Contains(msg, "does not match") {
				t.Errorf("task message %q names neither a safety check nor a format mismatch", msg)
			}
			img := s.waitImage(t, tenantA, id, "queued")
			if img["size"] != nil || img["checksum"] != nil {
				t.Errorf("refused image keeps size %v checksum %v", img["size"], img["checksum"])
			}
			if left := s.staged(t); len(left) != 0 {
				t.Errorf("staging still holds %v", left)
			}
			entries, err := os.ReadDir(filepath.Join(s.dir, "images"))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), id) {
					t.Errorf("the store keeps %s", e.Name())
				}
			}
		})
	}
}
