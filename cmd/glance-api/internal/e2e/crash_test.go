package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCrashRecovery kills the server with SIGKILL while an upload, a stage
// and an import are in flight, starts it again on the same database and
// stores, and checks that nothing was lost or left behind: no image stays
// saving, uploading without data, or importing; no file remains in the
// store or in staging that no image points at; an image that became active
// holds its complete data. It repeats this GLANCE_CRASH_ROUNDS times (20 by
// default), each round on the state the previous rounds left.
func TestCrashRecovery(t *testing.T) {
	if suite.bin == "" {
		t.Skip("needs our own binary: GLANCE_E2E_ENDPOINT is set")
	}
	rounds := 20
	if v := os.Getenv("GLANCE_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("GLANCE_CRASH_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	if testing.Short() {
		rounds = 2
	}
	c := newCrashRig(t)
	for r := range rounds {
		c.round(t, r)
		if t.Failed() {
			t.Fatalf("round %d of %d failed; server log: %s", r+1, rounds, c.logPath)
		}
	}
	t.Logf("%d rounds; imports killed in flight ended %d times queued, %d times active with all their data",
		rounds, c.outcomes["queued"], c.outcomes["active"])
}

// crashRig is one server configuration that is killed and restarted.
type crashRig struct {
	dir, conf, logPath string
	images, staging    string
	port               int
	proc               *process
	srv                *server
	// sums holds the md5 of the data each image was given, to check any
	// image that ends up active.
	sums map[string]string
	// outcomes counts how the killed imports ended: queued or active.
	outcomes map[string]int
}

func newCrashRig(t *testing.T) *crashRig {
	dir := filepath.Join(suite.tmp, "crash")
	c := &crashRig{dir: dir, images: filepath.Join(dir, "images"), staging: filepath.Join(dir, "staging"),
		sums: map[string]string{}, outcomes: map[string]int{}}
	for _, d := range []string{c.images, c.staging} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := databaseURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.port, err = freePort(); err != nil {
		t.Fatal(err)
	}
	c.conf = filepath.Join(dir, "glance-api.conf")
	text := fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
node_staging_uri = file://%s
enabled_import_methods = glance-direct,web-download,copy-image

[database]
connection = %s

[glance_store]
filesystem_store_datadir = %s

[paste_deploy]
flavor = noauth

[glance_go]
recovery_lease = 2
recovery_interval = 1
`, c.port, c.staging, conn, c.images)
	if err := os.WriteFile(c.conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syncDB(c.conf); err != nil {
		t.Fatal(err)
	}
	c.logPath = filepath.Join(dir, "glance-api.log")
	c.start(t)
	return c
}

// start runs the server and waits until it answers.
func (c *crashRig) start(t *testing.T) {
	t.Helper()
	p, err := launch(c.conf, c.port, c.logPath)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	c.proc, c.srv = p, &server{URL: p.url}
}

// kill ends the server with SIGKILL, as a crash or the OOM killer would.
func (c *crashRig) kill(t *testing.T) {
	t.Helper()
	_ = c.proc.cmd.Process.Kill()
	<-c.proc.done
}

// held is a request body that sends head bytes, then blocks until the
// server dies, so that the server is killed mid-stream.
type held struct {
	r    io.Reader
	head int64
	sent int64
	gate chan struct{} // closed when head bytes are out
	stop <-chan struct{}
}

func (h *held) Read(p []byte) (int, error) {
	if h.sent >= h.head {
		select {
		case <-h.gate:
		default:
			close(h.gate)
		}
		<-h.stop
		return 0, io.ErrUnexpectedEOF
	}
	p = p[:min(int64(len(p)), h.head-h.sent)]
	n, err := h.r.Read(p)
	h.sent += int64(n)
	return n, err
}

// noise is size bytes of seeded pseudo-random data and its md5.
func noise(seed uint64, size int64) (io.Reader, string) {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	sum := md5.Sum(b)
	return strings.NewReader(string(b)), hex.EncodeToString(sum[:])
}

// put starts a PUT of size bytes of which only head are sent before the
// server dies; it returns when head bytes have left.
func (c *crashRig) put(t *testing.T, id, what string, size, head int64, stop <-chan struct{}) {
	t.Helper()
	data, _ := noise(uint64(len(id)), size)
	h := &held{r: data, head: head, gate: make(chan struct{}), stop: stop}
	req, err := http.NewRequest(http.MethodPut, c.srv.URL+"/v2/images/"+id+"/"+what, h)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-h.gate:
	case <-time.After(30 * time.Second):
		t.Fatalf("PUT %s of %s: the server did not take %d bytes", what, id, head)
	}
}

// status polls the image until its status is one of want.
func (c *crashRig) waitStatus(t *testing.T, id string, within time.Duration, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var got string
	for time.Now().Before(deadline) {
		r := c.srv.do(t, nil, http.MethodGet, "/v2/images/"+id, nil)
		if r.Status == http.StatusOK {
			got, _ = r.object(t)["status"].(string)
			for _, w := range want {
				if got == w {
					return got
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("image %s: status %q after %v, want one of %v", id, got, within, want)
	return got
}

func (c *crashRig) newImage(t *testing.T, name string) string {
	t.Helper()
	r := c.srv.do(t, nil, http.MethodPost, "/v2/images",
		map[string]any{"name": name, "disk_format": "raw", "container_format": "bare"}).want(t, http.StatusCreated)
	return r.object(t)["id"].(string)
}

func (c *crashRig) round(t *testing.T, r int) {
	const size = 48 << 20
	// A finished stage to import while the server dies.
	staged := c.newImage(t, fmt.Sprintf("crash-import-%d", r))
	data, sum := noise(uint64(len(staged)), size)
	req, _ := http.NewRequest(http.MethodPut, c.srv.URL+"/v2/images/"+staged+"/stage", data)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("stage: %s", resp.Status)
	}
	c.sums[staged] = sum

	stop := make(chan struct{})
	defer close(stop)
	upload := c.newImage(t, fmt.Sprintf("crash-upload-%d", r))
	c.put(t, upload, "file", size, size/3, stop)
	stage := c.newImage(t, fmt.Sprintf("crash-stage-%d", r))
	c.put(t, stage, "stage", size, size/3, stop)
	c.waitStatus(t, upload, 10*time.Second, "saving")
	c.waitStatus(t, stage, 10*time.Second, "uploading")

	c.srv.do(t, nil, http.MethodPost, "/v2/images/"+staged+"/import",
		map[string]any{"method": map[string]any{"name": "glance-direct"}}).want(t, http.StatusAccepted)
	// Kill at a different point of the import in each round.
	time.Sleep(time.Duration(r%5) * 100 * time.Millisecond)
	c.kill(t)
	c.start(t)

	c.waitStatus(t, upload, 15*time.Second, "queued")
	c.waitStatus(t, stage, 15*time.Second, "queued")
	st := c.waitStatus(t, staged, 15*time.Second, "queued", "active")
	c.outcomes[st]++
	if st == "active" {
		c.checkData(t, staged)
	}
	c.checkNoOrphans(t)
}

// checkData downloads an active image and compares it with what was sent.
func (c *crashRig) checkData(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.srv.URL+"/v2/images/"+id+"/file", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := md5.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != c.sums[id] {
		t.Errorf("active image %s holds data with md5 %s, want %s", id, got, c.sums[id])
	}
}

// checkNoOrphans checks that every file in the store belongs to an active
// image, and every file in staging to an image that waits for its import.
func (c *crashRig) checkNoOrphans(t *testing.T) {
	t.Helper()
	images := map[string]map[string]any{}
	r := c.srv.do(t, nil, http.MethodGet, "/v2/images?limit=1000", nil).want(t, http.StatusOK)
	for _, v := range r.object(t)["images"].([]any) {
		m := v.(map[string]any)
		images[m["id"].(string)] = m
	}
	for _, dir := range []string{c.images, c.staging} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			img, ok := images[e.Name()]
			status, _ := img["status"].(string)
			switch {
			case !ok:
				t.Errorf("%s: %s belongs to no image", dir, e.Name())
			case dir == c.images && status != "active":
				t.Errorf("%s: %s belongs to an image in %s", dir, e.Name(), status)
			case dir == c.staging && status != "uploading":
				t.Errorf("%s: %s belongs to an image in %s", dir, e.Name(), status)
			}
		}
	}
}
