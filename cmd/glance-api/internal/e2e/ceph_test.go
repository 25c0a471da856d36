//go:build ceph

package e2e

// The rbd store over HTTP, against a Ceph cluster of scripts/ceph-dev.sh
// (eval "$(scripts/ceph-dev.sh start)" sets GLANCE_TEST_RBD_CONF, _USER and
// _POOL) and a glance-api built with -tags ceph,pacific, as make test-ceph
// runs them. Without the tag this file is not compiled and the suite stays
// pure Go.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cephBuild is glance-api built with the rbd store, once per run.
var cephBuild struct {
	once sync.Once
	bin  string
	err  error
}

// cephBinary returns our glance-api built with -tags ceph,pacific.
func cephBinary(t *testing.T) string {
	t.Helper()
	if suite.bin == "" {
		t.Skip("needs our own binary to configure an rbd store: GLANCE_E2E_ENDPOINT is set")
	}
	cephBuild.once.Do(func() {
		cephBuild.bin, cephBuild.err = buildWith(filepath.Join(suite.tmp, "glance-api-ceph"), []string{"CGO_ENABLED=1"}, "-tags", "ceph,pacific")
	})
	if cephBuild.err != nil {
		t.Fatal(cephBuild.err)
	}
	return cephBuild.bin
}

// cluster is a Ceph cluster made by scripts/ceph-dev.sh.
type cluster struct {
	conf, user, pool, fsid string
	dir                    string // CEPH_DEV_DIR
}

// devCluster returns the shared cluster the environment names.
func devCluster(t *testing.T) *cluster {
	t.Helper()
	conf := os.Getenv("GLANCE_TEST_RBD_CONF")
	if conf == "" {
		strictSkip(t, `needs a Ceph cluster: run eval "$(scripts/ceph-dev.sh start)" (GLANCE_TEST_RBD_CONF is not set)`)
	}
	c := &cluster{conf: conf, user: os.Getenv("GLANCE_TEST_RBD_USER"), pool: os.Getenv("GLANCE_TEST_RBD_POOL"), dir: filepath.Dir(conf)}
	if c.user == "" {
		c.user = "glance"
	}
	if c.pool == "" {
		c.pool = "images"
	}
	c.readFSID(t)
	return c
}

// readFSID takes the cluster's fsid from its ceph.conf.
func (c *cluster) readFSID(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(c.conf)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.TrimSpace(k) == "fsid" {
			c.fsid = strings.TrimSpace(v)
		}
	}
	if c.fsid == "" {
		t.Fatalf("%s names no fsid", c.conf)
	}
}

// rbd runs the rbd CLI as the cluster's client user and returns its
// standard output.
func (c *cluster) rbd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.rbdErr(args...)
	if err != nil {
		t.Fatalf("rbd %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (c *cluster) rbdErr(args ...string) (string, error) {
	cmd := exec.Command("timeout", append([]string{"60", "rbd", "-c", c.conf, "--id", c.user}, args...)...)
	cmd.Env = cephEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(out), nil
}

// cephEnv is the environment for Ceph's tools: no CEPH_* variable of the
// shared cluster may reach a command meant for another one.
func cephEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "CEPH_CONF=") || strings.HasPrefix(kv, "CEPH_ARGS=") || strings.HasPrefix(kv, "CEPH_KEYRING=")
	})
}

// images lists the RBD images of the pool, and those in its trash.
func (c *cluster) images(t *testing.T) (live, trash []string) {
	t.Helper()
	if err := json.Unmarshal([]byte(c.rbd(t, "ls", "--format", "json", c.pool)), &live); err != nil {
		t.Fatal(err)
	}
	var tr []struct{ Name string }
	if err := json.Unmarshal([]byte(c.rbd(t, "trash", "ls", "--format", "json", c.pool)), &tr); err != nil {
		t.Fatal(err)
	}
	for _, e := range tr {
		trash = append(trash, e.Name)
	}
	return live, trash
}

// wantGone fails t if the pool, or its trash, holds an image named id.
func (c *cluster) wantGone(t *testing.T, id string) {
	t.Helper()
	live, trash := c.images(t)
	if slices.Contains(live, id) || slices.Contains(trash, id) {
		t.Errorf("pool %s still holds %s: images %q, trash %q", c.pool, id, live, trash)
	}
}

// wantSnap checks with rbd info that the image has the protected snapshot
// snap, and returns the snapshot's size.
func (c *cluster) wantSnap(t *testing.T, id string) int64 {
	t.Helper()
	var info struct {
		Name      string `json:"name"`
		Size      int64  `json:"size"`
		Protected string `json:"protected"`
	}
	if err := json.Unmarshal([]byte(c.rbd(t, "info", "--format", "json", c.pool+"/"+id+"@snap")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != id || info.Protected != "true" {
		t.Errorf("rbd info %s/%s@snap: %+v, want a protected snapshot", c.pool, id, info)
	}
	return info.Size
}

// export reads the image's snapshot with rbd export.
func (c *cluster) export(t *testing.T, id string) []byte {
	t.Helper()
	f := filepath.Join(t.TempDir(), "export")
	c.rbd(t, "export", "--no-progress", c.pool+"/"+id+"@snap", f)
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// location is the rbd:// URL glance_store gives an image of the pool.
func (c *cluster) location(id string) string {
	return "rbd://" + c.fsid + "/" + c.pool + "/" + id + "/snap"
}

// rbdSection is a store section's (or [glance_store]'s) rbd options.
func (c *cluster) rbdSection() string {
	return fmt.Sprintf("rbd_store_ceph_conf = %s\nrbd_store_user = %s\nrbd_store_pool = %s\nrbd_store_chunk_size = 1\n",
		c.conf, c.user, c.pool)
}

// startCeph writes text as dir/glance-api.conf for a server on port, runs
// "db sync" and starts the ceph build of glance-api, which stops when t
// ends.
func startCeph(t *testing.T, dir, text string, port int) *process {
	t.Helper()
	bin := cephBinary(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "glance-api.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syncDB(conf); err != nil {
		t.Fatal(err)
	}
	p, err := launchBin(bin, conf, port, filepath.Join(dir, "glance-api.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p
}

// download gets the image's data, checking the 200.
func (s *server) download(t *testing.T, as *caller, id string) []byte {
	t.Helper()
	return s.do(t, as, http.MethodGet, "/v2/images/"+id+"/file", nil).want(t, http.StatusOK).Body
}

// TestRBDMultiStore runs an rbd store next to a file store: upload, whole
// and ranged download, the snapshot clones come from, a delete refused
// while a clone exists, and copy-image both ways.
func TestRBDMultiStore(t *testing.T) {
	c := devCluster(t)
	dir := filepath.Join(suite.tmp, "rbd-multi")
	conn, port := serverEnv(t, dir)
	text := fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
enabled_backends = ceph:rbd, local:file
show_image_direct_url = true

[database]
connection = %s

[glance_store]
default_backend = ceph

[ceph]
%s
[local]
filesystem_store_datadir = $dir/local

[os_glance_staging_store]
filesystem_store_datadir = $dir/staging

[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks

[paste_deploy]
flavor = trusted-auth
`, port, conn, c.rbdSection())
	p := startCeph(t, dir, strings.ReplaceAll(text, "$dir", dir), port)
	s := &importServer{server: &server{URL: p.url, Trusted: true}, dir: dir}

	data := randomBytes(3<<20 + 4321) // four objects of 1 MiB
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	s.upload(t, tenantA, id, data)
	img := s.show(t, tenantA, id)
	if img["status"] != "active" || img["stores"] != "ceph" || img["size"] != float64(len(data)) {
		t.Errorf("uploaded image: status %v stores %v size %v", img["status"], img["stores"], img["size"])
	}
	if got := img["direct_url"]; got != c.location(id) {
		t.Errorf("direct_url %v, want %s", got, c.location(id))
	}

	t.Run("download", func(t *testing.T) {
		if got := s.download(t, tenantA, id); !bytes.Equal(got, data) {
			t.Errorf("download: %d bytes, want the %d uploaded", len(got), len(data))
		}
		r := s.do(t, tenantA, http.MethodGet, "/v2/images/"+id+"/file", nil, hdr("Range", "bytes=1048570-2097160")).
			want(t, http.StatusPartialContent)
		if !bytes.Equal(r.Body, data[1048570:2097161]) {
			t.Errorf("ranged download: %d bytes, want %d of the data", len(r.Body), 2097161-1048570)
		}
		if cr := r.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes 1048570-2097160/%d", len(data)) {
			t.Errorf("Content-Range %q", cr)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		if size := c.wantSnap(t, id); size != int64(len(data)) {
			t.Errorf("snapshot size %d, want %d", size, len(data))
		}
	})
	t.Run("clone keeps the image", func(t *testing.T) {
		clone := "e2e-clone-" + randHex(6)
		c.rbd(t, "clone", c.pool+"/"+id+"@snap", c.pool+"/"+clone)
		removed := false
		t.Cleanup(func() {
			if !removed {
				c.rbdErr("rm", "--no-progress", c.pool+"/"+clone)
			}
		})
		r := s.do(t, admin, http.MethodDelete, "/v2/images/"+id, nil, hdr("Accept", "application/json")).want(t, http.StatusConflict)
		if msg := errorMessage(t, r); !strings.Contains(msg, "in use") {
			t.Errorf("DELETE with a clone: message %q", msg)
		}
		if img := s.show(t, tenantA, id); img["status"] != "active" || img["direct_url"] != c.location(id) {
			t.Errorf("after the refused DELETE: status %v direct_url %v", img["status"], img["direct_url"])
		}
		if got := s.download(t, tenantA, id); !bytes.Equal(got, data) {
			t.Errorf("download after the refused DELETE: %d bytes, want %d", len(got), len(data))
		}
		c.wantSnap(t, id)
		c.rbd(t, "rm", "--no-progress", c.pool+"/"+clone)
		removed = true
	})
	t.Run("copy to file", func(t *testing.T) {
		s.importImage(t, admin, id, map[string]any{"method": map[string]any{"name": "copy-image"}, "stores": []string{"local"}}).
			want(t, http.StatusAccepted)
		if tk := s.waitTask(t, admin, id); tk["status"] != "success" {
			t.Fatalf("copy task: %v", tk)
		}
		if img := s.show(t, tenantA, id); img["stores"] != "ceph,local" {
			t.Errorf("stores %v, want ceph,local", img["stores"])
		}
		if b, err := os.ReadFile(filepath.Join(dir, "local", id)); err != nil || !bytes.Equal(b, data) {
			t.Errorf("the file store holds %d bytes (%v), want the %d uploaded", len(b), err, len(data))
		}
	})
	t.Run("delete", func(t *testing.T) {
		s.do(t, admin, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
		s.do(t, admin, http.MethodGet, "/v2/images/"+id, nil).want(t, http.StatusNotFound)
		c.wantGone(t, id)
		if _, err := os.Stat(filepath.Join(dir, "local", id)); !os.IsNotExist(err) {
			t.Errorf("the file store still holds %s: %v", id, err)
		}
	})
	t.Run("copy to rbd", func(t *testing.T) {
		id := s.rawImage(t, tenantA, nil)["id"].(string)
		small := randomBytes(1<<20 + 1)
		s.do(t, tenantA, http.MethodPut, "/v2/images/"+id+"/file", small, hdr("Content-Type", "application/octet-stream"),
			hdr("X-Image-Meta-Store", "local")).want(t, http.StatusNoContent)
		s.importImage(t, admin, id, map[string]any{"method": map[string]any{"name": "copy-image"}, "stores": []string{"ceph"}}).
			want(t, http.StatusAccepted)
		if tk := s.waitTask(t, admin, id); tk["status"] != "success" {
			t.Fatalf("copy task: %v", tk)
		}
		if img := s.show(t, tenantA, id); img["stores"] != "local,ceph" {
			t.Errorf("stores %v, want local,ceph", img["stores"])
		}
		c.wantSnap(t, id)
		if got := c.export(t, id); !bytes.Equal(got, small) {
			t.Errorf("rbd export: %d bytes, want the %d uploaded", len(got), len(small))
		}
		s.do(t, admin, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
		c.wantGone(t, id)
	})
}

// TestRBDSingleStore runs the legacy single store: [glance_store] stores
// = rbd, default_store = rbd, with the rbd options in [glance_store].
func TestRBDSingleStore(t *testing.T) {
	c := devCluster(t)
	dir := filepath.Join(suite.tmp, "rbd-single")
	conn, port := serverEnv(t, dir)
	p := startCeph(t, dir, singleRBDConf(c, port, conn, dir), port)
	s := &server{URL: p.url, Trusted: true}

	data := randomBytes(2<<20 + 5)
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	s.do(t, tenantA, http.MethodPut, "/v2/images/"+id+"/file", chunked{bytes.NewReader(data)},
		hdr("Content-Type", "application/octet-stream")).want(t, http.StatusNoContent)
	img := s.show(t, tenantA, id)
	if img["status"] != "active" || img["size"] != float64(len(data)) || img["direct_url"] != c.location(id) {
		t.Errorf("uploaded image: status %v size %v direct_url %v", img["status"], img["size"], img["direct_url"])
	}
	if _, ok := img["stores"]; ok {
		t.Errorf("a single-store image shows stores: %v", img["stores"])
	}
	if got := s.download(t, tenantA, id); !bytes.Equal(got, data) {
		t.Errorf("download: %d bytes, want the %d uploaded", len(got), len(data))
	}
	r := s.do(t, tenantA, http.MethodGet, "/v2/images/"+id+"/file", nil, hdr("Range", "bytes=-10")).want(t, http.StatusPartialContent)
	if !bytes.Equal(r.Body, data[len(data)-10:]) {
		t.Errorf("last 10 bytes: %x", r.Body)
	}
	if size := c.wantSnap(t, id); size != int64(len(data)) {
		t.Errorf("snapshot size %d, want %d", size, len(data))
	}
	s.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
	c.wantGone(t, id)
}

// TestRBDBufferBudget uploads and downloads eight images at once through
// a single rbd store whose rbd_store_buffer_budget allows four 1 MiB chunk
// buffers in all: every transfer finishes and every image reads back.
func TestRBDBufferBudget(t *testing.T) {
	c := devCluster(t)
	dir := filepath.Join(suite.tmp, "rbd-budget")
	conn, port := serverEnv(t, dir)
	conf := strings.Replace(singleRBDConf(c, port, conn, dir), "rados_connect_timeout = 5\n",
		"rados_connect_timeout = 5\nrbd_store_buffer_budget = 1\n", 1)
	p := startCeph(t, dir, conf, port)
	s := &server{URL: p.url, Trusted: true}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			data := randomBytes(3<<20 + i*1001)
			id := s.rawImage(t, tenantA, nil)["id"].(string)
			var body any = data
			if i%2 == 0 {
				body = chunked{bytes.NewReader(data)} // size unknown: the image grows
			}
			s.do(t, tenantA, http.MethodPut, "/v2/images/"+id+"/file", body,
				hdr("Content-Type", "application/octet-stream")).want(t, http.StatusNoContent)
			if got := s.download(t, tenantA, id); !bytes.Equal(got, data) {
				t.Errorf("image %d: downloaded %d bytes, want the %d uploaded", i, len(got), len(data))
			}
			if got := c.export(t, id); !bytes.Equal(got, data) {
				t.Errorf("image %d: the snapshot holds %d bytes, want the %d uploaded", i, len(got), len(data))
			}
			s.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
			c.wantGone(t, id)
		})
	}
	wg.Wait()
	log, err := os.ReadFile(filepath.Join(dir, "glance-api.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), "rbd_store_buffer_budget") {
		t.Errorf("the server did not read rbd_store_buffer_budget:\n%s", log)
	}
}

// singleRBDConf is a glance-api.conf with the legacy single rbd store.
func singleRBDConf(c *cluster, port int, conn, dir string) string {
	return fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
show_image_direct_url = true
node_staging_uri = file://%s/staging

[database]
connection = %s

[glance_store]
stores = rbd, http
default_store = rbd
%srados_connect_timeout = 5

[paste_deploy]
flavor = trusted-auth
`, port, dir, conn, c.rbdSection())
}

// privateCluster starts a cluster of the test's own with ceph-dev.sh,
// stopped and removed when the test ends, whose OSD the test may stop.
func privateCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Getenv("GLANCE_TEST_RBD_FAULTS") == "" {
		t.Skip("set GLANCE_TEST_RBD_FAULTS=1 to run it: it starts and stops a second Ceph cluster (scripts/ceph-dev.sh)")
	}
	script, err := filepath.Abs("../../../../scripts/ceph-dev.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "glance-ceph-e2e-fault")
	env := append(cephEnv(), "CEPH_DEV_DIR="+dir, "CEPH_DEV_MON_PORT=3394", "CEPH_DEV_OSD_PORTS=7000-7099",
		"CEPH_DEV_STORE_MB=512", "CEPH_DEV_OP_TIMEOUT=5")
	run := func(arg string) (string, error) {
		cmd := exec.Command(script, arg)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("ceph-dev.sh %s: %v\n%s", arg, err, stderr.String())
		}
		return string(out), nil
	}
	out, err := run("start")
	t.Cleanup(func() {
		if _, err := run("stop"); err != nil {
			t.Error(err)
		}
		os.RemoveAll(dir)
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{user: "glance", pool: "images", dir: dir}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export GLANCE_TEST_RBD_CONF="); ok {
			c.conf = v
		}
	}
	if c.conf == "" {
		t.Fatalf("ceph-dev.sh start printed no GLANCE_TEST_RBD_CONF:\n%s", out)
	}
	c.readFSID(t)
	return c
}

// stopOSD stops the cluster's OSD and waits until it is gone.
func (c *cluster) stopOSD(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(c.dir, "run", "osd.0.pid"))
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

// startOSD starts the cluster's OSD again.
func (c *cluster) startOSD(t *testing.T) {
	t.Helper()
	osd := exec.Command("ceph-osd", "-c", c.conf, "-i", "0")
	osd.Env = cephEnv()
	if out, err := osd.CombinedOutput(); err != nil {
		t.Fatalf("restarting the osd: %v\n%s", err, out)
	}
}

// TestRBDOSDDownDuringUpload stops the OSD of a cluster of its own while
// an upload streams to glance-api: the client gets a 503 with a message
// within a bound, the image is queued again, and once the OSD is back the
// partial RBD image goes away. It runs with GLANCE_TEST_RBD_FAULTS=1.
func TestRBDOSDDownDuringUpload(t *testing.T) {
	c := privateCluster(t)
	dir := filepath.Join(suite.tmp, "rbd-fault")
	conn, port := serverEnv(t, dir)
	p := startCeph(t, dir, singleRBDConf(c, port, conn, dir), port)
	s := &server{URL: p.url, Trusted: true}
	id := s.rawImage(t, tenantA, nil)["id"].(string)

	// A raw connection: the client keeps sending while the server has
	// already answered, and must still read that answer.
	nc, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const bound = 3 * time.Minute // far beyond the 5 s operation timeout
	nc.SetDeadline(time.Now().Add(bound))
	fmt.Fprintf(nc, "PUT /v2/images/%s/file HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"+
		"Transfer-Encoding: chunked\r\nX-Identity-Status: Confirmed\r\nX-Project-Id: %s\r\nX-User-Id: %s\r\nX-Roles: %s\r\n"+
		"Accept: application/json\r\n\r\n", id, strings.TrimPrefix(p.url, "http://"), tenantA.Project, tenantA.User, tenantA.Roles)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		chunk := randomBytes(256 << 10)
		for i := 0; i < 256; i++ { // up to 64 MiB
			if i == 16 { // 4 MiB in
				c.stopOSD(t)
			}
			if _, err := fmt.Fprintf(nc, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				return
			}
		}
		io.WriteString(nc, "0\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("no answer to the upload within %v: %v", bound, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	nc.Close()
	<-sent
	r := &reply{Method: "PUT", Path: "/v2/images/" + id + "/file", Status: resp.StatusCode, Header: resp.Header, Body: body}
	r.want(t, http.StatusServiceUnavailable)
	msg := errorMessage(t, r)
	t.Logf("the upload was answered %d: %s", r.Status, msg)
	if !strings.Contains(msg, "Failed to upload image data for image "+id) || strings.Contains(msg, "Traceback") {
		t.Errorf("message %q", msg)
	}
	if img := s.show(t, tenantA, id); img["status"] != "queued" || img["size"] != nil {
		t.Errorf("after the failed upload: status %v size %v, want queued with no size", img["status"], img["size"])
	}

	c.startOSD(t)
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		live, trash := c.images(t)
		if len(live) == 0 && len(trash) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a partial image is still there once the osd is back: images %q, trash %q", live, trash)
		}
	}
	data := randomBytes(100_000)
	s.upload(t, tenantA, id, data)
	if got := s.download(t, tenantA, id); !bytes.Equal(got, data) {
		t.Errorf("download after the osd came back: %d bytes, want %d", len(got), len(data))
	}
	s.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
	c.wantGone(t, id)
}

// glancePort is the port of the reference Glance the interop test starts.
const glancePort = 19494

// TestRBDGlanceInterop runs Debian's Glance 25.1 (scripts/reference-glance.sh
// with REF_STORE=rbd) on the same pool and the same SQLite database as one
// of our servers: what one uploads, the other downloads intact and deletes.
func TestRBDGlanceInterop(t *testing.T) {
	c := devCluster(t)
	if _, err := os.Stat("/usr/bin/glance-api"); err != nil {
		strictSkip(t, "needs Debian's glance-api: REF_STORE=rbd scripts/reference-glance.sh install")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import rados, rbd").Run(); err != nil {
		strictSkip(t, "Glance's rbd driver needs python3-rbd and python3-rados: REF_STORE=rbd scripts/reference-glance.sh install")
	}
	script, err := filepath.Abs("../../../../scripts/reference-glance.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(suite.tmp, "rbd-glance")
	dbFile := filepath.Join(dir, "g.sqlite")
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	// Our db sync makes the schema Glance then uses. Glance writes the
	// SQLite file while our server runs, which a server on SQLite does not
	// expect: ours keeps no records in memory.
	conf := singleRBDConf(c, port, "sqlite:///"+dbFile, dir) + "\n[glance_go]\nrecord_cache = 0\n"
	p := startCeph(t, dir, conf, port)
	ours := &server{URL: p.url, Trusted: true}

	ref := func(args ...string) error {
		cmd := exec.Command(script, args...)
		cmd.Env = append(os.Environ(), "REF_STORE=rbd", "REF_DB="+dbFile)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("reference-glance.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	gp := strconv.Itoa(glancePort)
	if err := ref("start", gp, "trusted"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ref("stop", gp); err != nil {
			t.Error(err)
		}
	})
	glance := &server{URL: "http://127.0.0.1:" + gp, Trusted: true}

	// The servers share one SQLite file: every step waits for the one
	// before it, so that they never write at the same moment.
	t.Run("Glance uploads, glance-go serves and deletes", func(t *testing.T) {
		data := randomBytes(3<<20 + 17)
		id := glance.rawImage(t, tenantA, nil)["id"].(string)
		glance.upload(t, tenantA, id, data)
		gimg := glance.show(t, tenantA, id)
		img := ours.show(t, tenantA, id)
		if img["status"] != "active" || img["checksum"] != md5hex(data) || img["os_hash_value"] != gimg["os_hash_value"] ||
			img["size"] != float64(len(data)) {
			t.Errorf("glance-go shows status %v checksum %v size %v", img["status"], img["checksum"], img["size"])
		}
		if img["direct_url"] != c.location(id) || gimg["direct_url"] != c.location(id) {
			t.Errorf("locations: glance-go %v, Glance %v, want %s", img["direct_url"], gimg["direct_url"], c.location(id))
		}
		if got := ours.download(t, tenantA, id); !bytes.Equal(got, data) {
			t.Errorf("glance-go downloads %d bytes, want the %d Glance stored", len(got), len(data))
		}
		r := ours.do(t, tenantA, http.MethodGet, "/v2/images/"+id+"/file", nil, hdr("Range", "bytes=3145720-")).want(t, http.StatusPartialContent)
		if !bytes.Equal(r.Body, data[3145720:]) {
			t.Errorf("ranged download: %d bytes", len(r.Body))
		}
		ours.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
		c.wantGone(t, id)
		glance.do(t, tenantA, http.MethodGet, "/v2/images/"+id, nil).want(t, http.StatusNotFound)
	})
	t.Run("glance-go uploads, Glance serves and deletes", func(t *testing.T) {
		data := randomBytes(2<<20 + 99)
		id := ours.rawImage(t, tenantA, nil)["id"].(string)
		ours.upload(t, tenantA, id, data)
		gimg := glance.show(t, tenantA, id)
		if gimg["status"] != "active" || gimg["checksum"] != md5hex(data) || gimg["size"] != float64(len(data)) ||
			gimg["direct_url"] != c.location(id) {
			t.Errorf("Glance shows status %v checksum %v size %v direct_url %v", gimg["status"], gimg["checksum"], gimg["size"], gimg["direct_url"])
		}
		if got := glance.download(t, tenantA, id); !bytes.Equal(got, data) {
			t.Errorf("Glance downloads %d bytes, want the %d glance-go stored", len(got), len(data))
		}
		glance.do(t, tenantA, http.MethodDelete, "/v2/images/"+id, nil).want(t, http.StatusNoContent)
		c.wantGone(t, id)
		ours.do(t, tenantA, http.MethodGet, "/v2/images/"+id, nil).want(t, http.StatusNotFound)
	})
}
