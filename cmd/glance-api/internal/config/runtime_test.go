package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestGlanceGoSection(t *testing.T) {
	if d := glanceDefaults(); d.Runtime.MemoryLimit != 128 || d.Recovery != (RecoveryConfig{}) {
		t.Errorf("defaults: memory_limit %d, recovery %+v", d.Runtime.MemoryLimit, d.Recovery)
	}
	path := filepath.Join(t.TempDir(), "glance-api.conf")
	text := "[glance_go]\nmemory_limit = 0\nrecovery_lease = 30\nrecovery_interval = -1\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, ignored, err := Load([]string{path}, nil)
	if err != nil || len(ignored) != 0 {
		t.Fatalf("Load = %v, ignored %v", err, ignored)
	}
	if c.Runtime.MemoryLimit != 0 || c.Recovery.Lease != 30 || c.Recovery.Interval != -1 {
		t.Errorf("read memory_limit %d, recovery %+v", c.Runtime.MemoryLimit, c.Recovery)
	}
}
