package plugins

import (
	"os"
	"os/exec"
	"testing"
)

// needQemuImg skips a test on a machine without qemu-img (Debian package
// qemu-utils).
func needQemuImg(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("qemu-img")
	if err != nil {
		if os.Getenv("GLANCE_TEST_STRICT") != "" {
			t.Fatal("qemu-img is not installed (apt-get install qemu-utils) and GLANCE_TEST_STRICT is set")
		}
		t.Skip("qemu-img is not installed (apt-get install qemu-utils)")
	}
	return p
}
