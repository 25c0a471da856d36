package e2e

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowUpload is an upload whose body the test writes piece by piece.
type slowUpload struct {
	w    *io.PipeWriter
	done chan error // the response's outcome: nil for a 204
}

// startSlowUpload begins PUT /v2/images/{id}/file with a body of size
// bytes, of which it sends first, and returns while the request is open.
func startSlowUpload(t *testing.T, srv *server, as *caller, id string, size int, first []byte) *slowUpload {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/v2/images/"+id+"/file", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(size)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Identity-Status", "Confirmed")
	req.Header.Set("X-Project-Id", as.Project)
	req.Header.Set("X-User-Id", as.User)
	req.Header.Set("X-Roles", as.Roles)
	u := &slowUpload{w: pw, done: make(chan error, 1)}
	// A client of its own: the shared one's kept-alive connections must
	// not be the ones cut.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				err = fmt.Errorf("upload: %d %s", resp.StatusCode, clip(b))
			}
		}
		pr.CloseWithError(io.ErrClosedPipe)
		u.done <- err
	}()
	if _, err := pw.Write(first); err != nil {
		t.Fatalf("writing the first part of the upload: %v", err)
	}
	return u
}

// waitUploadsInFlight polls the metrics until n uploads are in flight.
func waitUploadsInFlight(t *testing.T, url string, n float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if scrape(t, url)["glance_uploads_in_flight"] == n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("glance_uploads_in_flight never reached %v", n)
}

// waitRefused polls until the server's port refuses new connections.
func waitRefused(t *testing.T, url string) {
	t.Helper()
	addr := strings.TrimPrefix(url, "http://")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s still accepts connections after SIGTERM", addr)
}

// waitExit waits for the process to end by itself.
func waitExit(t *testing.T, p *process, within time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("the server did not exit within %v of SIGTERM; log:\n%s", within, tail(p.log))
	}
}

// TestGracefulShutdownFinishesUploads sends SIGTERM while an upload is half
// sent: the server stops taking connections at once, the upload still
// completes (its image active, with the right checksum), and the process
// then exits by itself.
func TestGracefulShutdownFinishesUploads(t *testing.T) {
	p, dir := opsServer(t, "shutdown-graceful", "")
	srv := &server{URL: p.url, Trusted: true}
	id := newImageNoCleanup(t, srv)
	data := randomBytes(3 << 20)
	u := startSlowUpload(t, srv, tenantA, id, len(data), data[:1<<20])
	waitUploadsInFlight(t, p.url, 1)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitRefused(t, p.url)
	if _, err := u.w.Write(data[1<<20:]); err != nil {
		t.Fatalf("the rest of the upload after SIGTERM: %v", err)
	}
	u.w.Close()
	if err := <-u.done; err != nil {
		t.Fatalf("the upload in flight at SIGTERM: %v", err)
	}
	waitExit(t, p, 60*time.Second)

	p2, err := launch(filepath.Join(dir, "glance-api.conf"), portOf(t, p.url), p.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p2.stop)
	srv.URL = p2.url
	srv.cleanup(t, id) // before p2 stops
	img := srv.show(t, tenantA, id)
	sum := md5.Sum(data)
	if img["status"] != "active" || img["checksum"] != hex.EncodeToString(sum[:]) || img["size"] != float64(len(data)) {
		t.Errorf("after the restart: status %v, checksum %v, size %v; want active, %x, %d",
			img["status"], img["checksum"], img["size"], sum, len(data))
	}
}

// TestGracefulShutdownCutsAtTheBound gives graceful_shutdown_timeout one
// second and an upload that never finishes: the server cuts it and exits,
// and after a restart the image is queued again with no data file left.
func TestGracefulShutdownCutsAtTheBound(t *testing.T) {
	p, dir := opsServer(t, "shutdown-cut", "\n[DEFAULT]\ngraceful_shutdown_timeout = 1\n")
	srv := &server{URL: p.url, Trusted: true}
	id := newImageNoCleanup(t, srv)
	u := startSlowUpload(t, srv, tenantA, id, 4<<20, randomBytes(1<<20))
	waitUploadsInFlight(t, p.url, 1)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, p, 60*time.Second)
	// The client may still be waiting to send the rest of its body.
	u.w.CloseWithError(errors.New("the test gives up the upload"))
	select {
	case err := <-u.done:
		if err == nil {
			t.Error("the upload cut at the bound succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the cut upload's client never returned")
	}
	if !strings.Contains(tail(p.log), "cutting the requests still running") {
		t.Errorf("the log does not say the requests were cut:\n%s", tail(p.log))
	}

	p2, err := launch(filepath.Join(dir, "glance-api.conf"), portOf(t, p.url), p.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p2.stop)
	srv.URL = p2.url
	srv.cleanup(t, id) // before p2 stops
	img := srv.show(t, tenantA, id)
	if img["status"] != "queued" || img["size"] != nil || img["checksum"] != nil {
		t.Errorf("after the restart: status %v, size %v, checksum %v; want queued without data", img["status"], img["size"], img["checksum"])
	}
	ents, err := os.ReadDir(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("data left in the store after the cut upload: %s", e.Name())
	}
}

// newImageNoCleanup creates a raw image whose deletion the test arranges
// itself, once it knows which server will still run at its end.
func newImageNoCleanup(t *testing.T, srv *server) string {
	t.Helper()
	body := map[string]any{"name": uniq("shutdown"), "disk_format": "raw", "container_format": "bare"}
	return srv.do(t, tenantA, http.MethodPost, "/v2/images", body).want(t, http.StatusCreated).object(t)["id"].(string)
}

// portOf returns the port of a http://127.0.0.1:port URL.
func portOf(t *testing.T, url string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(port, &n)
	return n
}
