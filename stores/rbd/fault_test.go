//go:build ceph

package rbd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glance-go/glance-go/stores"
)

// osdStopper gives data and stops the cluster's OSD once after bytes have
// been read; it then gives data until total.
type osdStopper struct {
	t           *testing.T
	pidFile     string
	read, after int
	total       int
	stopped     bool
}

func (s *osdStopper) Read(p []byte) (int, error) {
	if s.read >= s.total {
		return 0, io.EOF
	}
	if s.read >= s.after && !s.stopped {
		s.stopped = true
		stopDaemon(s.t, s.pidFile)
	}
	k := min(len(p), s.total-s.read)
	for i := range p[:k] {
		p[i] = byte(s.read+i) | 1
	}
	s.read += k
	return k, nil
}

// stopDaemon sends SIGTERM to the daemon of a pid file and waits until it
// is gone.
func stopDaemon(t *testing.T, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Error(err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Error(err)
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Error(err)
		return
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	t.Errorf("the osd (pid %d) did not stop", pid)
}

// TestOSDDownDuringPut stops the OSD of a cluster of its own in the middle
// of a Put: the Put fails with ErrUnavailable, and once the OSD is back the
// partial image goes away by itself. It runs with GLANCE_TEST_RBD_FAULTS=1.
func TestOSDDownDuringPut(t *testing.T) {
	if os.Getenv("GLANCE_TEST_RBD_FAULTS") == "" {
		t.Skip("set GLANCE_TEST_RBD_FAULTS=1 to run it: it starts and stops a second Ceph cluster (scripts/ceph-dev.sh)")
	}
	script, err := filepath.Abs("../../scripts/ceph-dev.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "glance-ceph-fault")
	env := append(os.Environ(), "CEPH_DEV_DIR="+dir, "CEPH_DEV_MON_PORT=3390", "CEPH_DEV_OSD_PORTS=6900-6999",
		"CEPH_DEV_STORE_MB=512")
	run := func(arg string) string {
		cmd := exec.Command(script, arg)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ceph-dev.sh %s: %v\n%s", arg, err, stderr.String())
		}
		return string(out)
	}
	out := run("start")
	t.Cleanup(func() {
		run("stop")
		os.RemoveAll(dir)
	})
	var conf string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export GLANCE_TEST_RBD_CONF="); ok {
			conf = v
		}
	}
	d, err := New(Config{ConfFile: conf, User: "glance", ChunkSize: 1 << 20, ConnectTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d.retryDelay = 200 * time.Millisecond
	defer d.Close()

	r := &osdStopper{t: t, pidFile: filepath.Join(dir, "run", "osd.0.pid"), after: 4 << 20, total: 64 << 20}
	_, err = d.Put(context.Background(), "fault", r, 0)
	if !errors.Is(err, stores.ErrUnavailable) {
		t.Fatalf("Put with the osd down = %v, want ErrUnavailable", err)
	}
	osd := exec.Command("ceph-osd", "-c", conf, "-i", "0")
	osd.Env = env
	if out, err := osd.CombinedOutput(); err != nil {
		t.Fatalf("restarting the osd: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		ids, err := d.IDs(context.Background())
		if err == nil && len(ids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the partial image is still there once the osd is back: %q, %v", ids, err)
		}
	}
	obj, err := d.Put(context.Background(), "fault", bytes.NewReader([]byte("after")), 5)
	if err != nil {
		t.Fatalf("Put after the osd came back: %v", err)
	}
	if err := d.Delete(context.Background(), obj.URL); err != nil {
		t.Fatal(err)
	}
}
