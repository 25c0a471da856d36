package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/domain"
)

// importServer is one of our servers configured for imports: a staging
// area of its own, web-download allowed from a loopback web server, and
// optionally two file stores.
type importServer struct {
	*server
	dir  string // images/ (or a/ and b/), staging/ are under it
	conn string // its [database] connection
	conf string // its glance-api.conf
	port int    // its port on 127.0.0.1
	web  *webServer
	proc *process
}

// webServer serves image data on 127.0.0.1 for web-download.
type webServer struct {
	*httptest.Server
	port     int
	mu       sync.Mutex
	handlers map[string]http.Handler
}

// put serves data at path.
func (w *webServer) put(path string, data []byte) {
	w.handle(path, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/octet-stream")
		rw.Write(data)
	}))
}

// handle serves path with h.
func (w *webServer) handle(path string, h http.Handler) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handlers[path] = h
}

func newWebServer(t *testing.T) *webServer {
	t.Helper()
	w := &webServer{handlers: map[string]http.Handler{}}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		h, ok := w.handlers[r.URL.Path]
		w.mu.Unlock()
		if !ok {
			http.NotFound(rw, r)
			return
		}
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.Close)
	w.port = w.Listener.Addr().(*net.TCPAddr).Port
	return w
}

// startImportServer starts a server of the given flavor in its own
// directory; multi gives it the file stores a (default) and b.
func startImportServer(t *testing.T, name, flavor string, multi bool) *importServer {
	t.Helper()
	return startImportServerWith(t, name, flavor, multi, "")
}

// startImportServerWith is startImportServer with extra sections appended
// to the configuration.
func startImportServerWith(t *testing.T, name, flavor string, multi bool, extra string) *importServer {
	t.Helper()
	if suite.bin == "" {
		t.Skip("needs our own binary to configure imports: GLANCE_E2E_ENDPOINT is set")
	}
	dir := filepath.Join(suite.tmp, name)
	conn, port := serverEnv(t, dir)
	web := newWebServer(t)
	stores := "[glance_store]\nfilesystem_store_datadir = $dir/images\n"
	defaults := "node_staging_uri = file://$dir/staging\n"
	if multi {
		defaults = "enabled_backends = a:file, b:file\n"
		stores = "[glance_store]\ndefault_backend = a\n\n[a]\nfilesystem_store_datadir = $dir/a\n\n" +
			"[b]\nfilesystem_store_datadir = $dir/b\n\n[os_glance_staging_store]\nfilesystem_store_datadir = $dir/staging\n"
	}
	text := fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
%s
[database]
connection = %s

%s
[paste_deploy]
flavor = %s

[import_filtering_opts]
allowed_ports = 80,443,%d

[taskflow_executor]
max_workers = 2
%s`, port, defaults, conn, stores, flavor, web.port, extra)
	text = strings.ReplaceAll(text, "$dir", dir)
	conf := filepath.Join(dir, "glance-api.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syncDB(conf); err != nil {
		t.Fatal(err)
	}
	s := &importServer{server: &server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Trusted: flavor == "trusted-auth"},
		dir: dir, conn: conn, conf: conf, port: port, web: web}
	s.start(t)
	return s
}

// start runs the server and waits until it answers.
func (s *importServer) start(t *testing.T) {
	t.Helper()
	p, err := launch(s.conf, s.port, filepath.Join(s.dir, "glance-api.log"))
	if err != nil {
		t.Fatalf("import server: %v", err)
	}
	if s.proc == nil {
		// Once: the images a test made are deleted through the server
		// before it stops, whichever process serves then.
		t.Cleanup(func() { s.proc.stop() })
	}
	s.proc = p
}

// waitImage polls the image until its status is one of want, and returns
// it.
func (s *importServer) waitImage(t *testing.T, as *caller, id string, want ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		img := s.show(t, as, id)
		for _, w := range want {
			if img["status"] == w {
				return img
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s stayed %v, want %v", id, img["status"], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitTask polls the image's newest task until it ends, and returns it.
func (s *importServer) waitTask(t *testing.T, as *caller, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tasks, _ := s.do(t, as, "GET", "/v2/images/"+id+"/tasks", nil).want(t, 200).object(t)["tasks"].([]any)
		if len(tasks) > 0 {
			tk := tasks[len(tasks)-1].(map[string]any)
			if tk["status"] == "success" || tk["status"] == "failure" {
				return tk
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the import of %s did not end: %v", id, tasks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// staged lists the staging area.
func (s *importServer) staged(t *testing.T) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(s.dir, "staging"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func (s *importServer) stage(t *testing.T, as *caller, id string, data []byte) *reply {
	t.Helper()
	return s.do(t, as, "PUT", "/v2/images/"+id+"/stage", data, hdr("Content-Type", "application/octet-stream"),
		hdr("Accept", "application/json"))
}

func (s *importServer) importImage(t *testing.T, as *caller, id string, body any, opts ...opt) *reply {
	t.Helper()
	return s.do(t, as, "POST", "/v2/images/"+id+"/import", body, append(opts, hdr("Accept", "application/json"))...)
}

// errorMessage returns the explanation of a JSON error body.
func errorMessage(t *testing.T, r *reply) string {
	t.Helper()
	msg, _ := r.object(t)["message"].(string)
	return strings.TrimSuffix(msg, "<br /><br />\n\n\n")
}

func TestImportGlanceDirect(t *testing.T) {
	s := startImportServer(t, "import-direct", "trusted-auth", false)
	info := s.do(t, tenantA, "GET", "/v2/info/import", nil).want(t, 200).object(t)
	methods := info["import-methods"].(map[string]any)["value"].([]any)
	if fmt.Sprint(methods) != "[glance-direct web-download copy-image]" {
		t.Errorf("import methods %v", methods)
	}
	create := s.do(t, tenantA, "POST", "/v2/images", map[string]any{"name": uniq("direct"), "disk_format": "raw",
		"container_format": "bare"}).want(t, 201)
	if got := create.Header.Get("OpenStack-image-import-methods"); got != "glance-direct,web-download,copy-image" {
		t.Errorf("OpenStack-image-import-methods = %q", got)
	}
	id := create.object(t)["id"].(string)
	data := randomBytes(3<<20 + 17)

	s.stage(t, tenantB, id, data).want(t, 404) // not B's to see
	s.stage(t, tenantA, id, data).want(t, 204)
	img := s.show(t, tenantA, id)
	if img["status"] != "uploading" || img["size"] != float64(len(data)) {
		t.Fatalf("staged image: status %v size %v", img["status"], img["size"])
	}
	r := s.stage(t, tenantA, id, data).want(t, 409)
	if msg := errorMessage(t, r); msg != "Image status transition from uploading to uploading is not allowed" {
		t.Errorf("second stage: %q", msg)
	}
	if got := s.staged(t); len(got) != 1 || got[0] != id {
		t.Errorf("staging holds %v", got)
	}

	r = s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "glance-direct"}}).want(t, 202)
	if len(r.Body) != 0 {
		t.Errorf("202 with a body: %q", r.Body)
	}
	s.waitImage(t, tenantA, id, "active")
	// The image becomes active before the flow releases its lock, as in
	// Glance; the task ends after that.
	s.waitTask(t, tenantA, id)
	img = s.show(t, tenantA, id)
	if img["checksum"] != md5hex(data) || img["size"] != float64(len(data)) {
		t.Errorf("imported image: %v", img)
	}
	for _, k := range []string{"os_glance_import_task", "os_glance_stage_host"} {
		if _, ok := img[k]; ok {
			t.Errorf("%s still shown: %v", k, img[k])
		}
	}
	if img["os_glance_importing_to_stores"] != "" || img["os_glance_failed_import"] != "" {
		t.Errorf("import progress: importing %v failed %v", img["os_glance_importing_to_stores"], img["os_glance_failed_import"])
	}
	got := s.do(t, tenantA, "GET", "/v2/images/"+id+"/file", nil).want(t, 200)
	if !bytes.Equal(got.Body, data) {
		t.Error("downloaded data differs from the staged data")
	}
	if left := s.staged(t); len(left) != 0 {
		t.Errorf("staging still holds %v", left)
	}
	tk := s.waitTask(t, tenantA, id)
	result, _ := tk["result"].(map[string]any)
	if tk["status"] != "success" || tk["type"] != "api_image_import" || tk["image_id"] != id || result["image_id"] != id {
		t.Errorf("task %v", tk)
	}
	s.do(t, tenantB, "GET", "/v2/images/"+id+"/tasks", nil).want(t, 404)
	// Importing an active image is a conflict.
	r = s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "glance-direct"}}).want(t, 409)
	if msg := errorMessage(t, r); msg != "Image with status active cannot be target for import" {
		t.Errorf("import of an active image: %q", msg)
	}
}

func TestImportWebDownload(t *testing.T) {
	s := startImportServer(t, "import-web", "trusted-auth", false)
	data := randomBytes(1<<20 + 5)
	s.web.put("/disk.raw", data)
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "web-download",
		"uri": s.web.URL + "/disk.raw"}}).want(t, 202)
	img := s.waitImage(t, tenantA, id, "active")
	if img["checksum"] != md5hex(data) {
		t.Errorf("web-downloaded image: %v", img)
	}
	if got := s.do(t, tenantA, "GET", "/v2/images/"+id+"/file", nil).want(t, 200); !bytes.Equal(got.Body, data) {
		t.Error("downloaded data differs from the web server's")
	}

	// A URI the filters refuse (the default ports) is refused at once.
	id = s.rawImage(t, tenantA, nil)["id"].(string)
	uri := "http://127.0.0.1:1/disk.raw"
	r := s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "web-download", "uri": uri}}).want(t, 400)
	if msg := errorMessage(t, r); msg != "URI for web-download does not pass filtering: "+uri {
		t.Errorf("filtered URI: %q", msg)
	}

	// A download that fails leaves the image queued and nothing staged.
	id = s.rawImage(t, tenantA, nil)["id"].(string)
	s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "web-download",
		"uri": s.web.URL + "/missing.raw"}}).want(t, 202)
	tk := s.waitTask(t, tenantA, id)
	if tk["status"] != "failure" || tk["message"] == "" {
		t.Errorf("task of a failed download: %v", tk)
	}
	img = s.show(t, tenantA, id)
	if img["status"] != "queued" || img["size"] != nil {
		t.Errorf("after a failed download: status %v size %v", img["status"], img["size"])
	}
	if _, ok := img["os_glance_import_task"]; ok {
		t.Error("the import lock was not released")
	}
	if left := s.staged(t); len(left) != 0 {
		t.Errorf("staging still holds %v", left)
	}
	// The image may be imported again.
	s.web.put("/later.raw", data)
	s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "web-download",
		"uri": s.web.URL + "/later.raw"}}).want(t, 202)
	s.waitImage(t, tenantA, id, "active")
}

func TestImportCopyImage(t *testing.T) {
	s := startImportServer(t, "import-copy", "trusted-auth", true)
	data := randomBytes(2<<20 + 1)
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	s.do(t, tenantA, "PUT", "/v2/images/"+id+"/file", data, hdr("Content-Type", "application/octet-stream"),
		hdr("X-Image-Meta-Store", "a")).want(t, 204)
	copyTo := map[string]any{"method": map[string]any{"name": "copy-image"}, "stores": []string{"b"}}
	r := s.importImage(t, tenantA, id, copyTo).want(t, 403)
	if msg := errorMessage(t, r); msg != "You are not authorized to complete copy_image action." {
		t.Errorf("copy by the owner: %q", msg)
	}
	r = s.importImage(t, admin, id, map[string]any{"method": map[string]any{"name": "copy-image"}, "stores": []string{"zz"}}).want(t, 409)
	if msg := errorMessage(t, r); msg != "Store for identifier zz not found" {
		t.Errorf("unknown store: %q", msg)
	}
	s.importImage(t, admin, id, copyTo).want(t, 202)
	tk := s.waitTask(t, admin, id)
	if tk["status"] != "success" {
		t.Fatalf("copy task: %v", tk)
	}
	img := s.show(t, tenantA, id)
	if img["status"] != "active" || img["stores"] != "a,b" {
		t.Errorf("copied image: status %v stores %v", img["status"], img["stores"])
	}
	for _, st := range []string{"a", "b"} {
		if b, err := os.ReadFile(filepath.Join(s.dir, st, id)); err != nil || !bytes.Equal(b, data) {
			t.Errorf("store %s does not hold the image: %v", st, err)
		}
	}
	r = s.importImage(t, admin, id, copyTo).want(t, 400)
	if msg := errorMessage(t, r); msg != "Image is already present at store 'b'" {
		t.Errorf("copy to a store holding it: %q", msg)
	}
	// all_stores with every store holding the image does nothing.
	s.importImage(t, admin, id, map[string]any{"method": map[string]any{"name": "copy-image"}, "all_stores": true}).want(t, 202)

	// glance-direct to both stores.
	id = s.rawImage(t, tenantA, nil)["id"].(string)
	s.stage(t, tenantA, id, data).want(t, 204)
	s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "glance-direct"}, "all_stores": true}).want(t, 202)
	img = s.waitImage(t, tenantA, id, "active")
	if img["stores"] != "a,b" {
		t.Errorf("imported to all stores: %v", img["stores"])
	}
}

func TestImportRefusals(t *testing.T) {
	// The lock subtest writes the server's database from outside it, as
	// nothing may while a server runs on an SQLite file: that server keeps
	// no records in memory.
	s := startImportServerWith(t, "import-refusals", "trusted-auth", false, "\n[glance_go]\nrecord_cache = 0\n")
	queued := s.rawImage(t, tenantA, nil)["id"].(string)
	bare := s.createImage(t, tenantA, map[string]any{"name": uniq("noformat")})["id"].(string)
	cases := []struct {
		name   string
		as     *caller
		id     string
		body   any
		status int
		msg    string
	}{
		{"no method", tenantA, queued, map[string]any{"stores": []string{}}, 400, "Import request requires a 'method' field."},
		{"unknown method", tenantA, queued, map[string]any{"method": map[string]any{"name": "glance-download"}}, 400,
			"Unknown import method name 'glance-download'."},
		{"not staged", tenantA, queued, map[string]any{"method": map[string]any{"name": "glance-direct"}}, 409,
			"Image needs to be staged before 'glance-direct' method can be used"},
		{"copy of a queued image", admin, queued, map[string]any{"method": map[string]any{"name": "copy-image"}}, 409,
			"Only images with status active can be targeted for copying"},
		{"no formats", tenantA, bare, map[string]any{"method": map[string]any{"name": "web-download", "uri": "http://example.com/x"}},
			409, "'container_format' needs to be set before import"},
		{"all_stores_must_succeed without stores", tenantA, queued, map[string]any{"method": map[string]any{"name": "web-download",
			"uri": "http://example.com/x"}, "all_stores_must_succeed": false}, 400,
			"All_stores_must_succeed can only be set with enabled_backends http://example.com/x"},
		{"another project", tenantB, queued, map[string]any{"method": map[string]any{"name": "web-download", "uri": "http://example.com/x"}},
			404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.importImage(t, tc.as, tc.id, tc.body).want(t, tc.status)
			if tc.msg != "" {
				if msg := errorMessage(t, r); msg != tc.msg {
					t.Errorf("message %q, want %q", msg, tc.msg)
				}
			}
		})
	}
	active := s.rawImage(t, tenantA, nil)["id"].(string)
	s.upload(t, tenantA, active, []byte("data"))
	r := s.stage(t, tenantA, active, []byte("more")).want(t, 409)
	if msg := errorMessage(t, r); msg != "Image status transition from active to uploading is not allowed" {
		t.Errorf("stage of an active image: %q", msg)
	}
	s.do(t, tenantA, "PUT", "/v2/images/"+queued+"/stage", []byte("x"), hdr("Content-Type", "text/plain")).want(t, 415)

	// An import holds the image's lock until its task ends: another one is
	// refused. The lock is set in the database as a running import sets it.
	t.Run("lock", func(t *testing.T) {
		id := s.rawImage(t, tenantA, nil)["id"].(string)
		s.stage(t, tenantA, id, []byte("data")).want(t, 204)
		ctx := context.Background()
		d, err := db.Open(ctx, db.Config{Connection: s.conn})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		c := &domain.Caller{ProjectID: tenantA.Project, UserID: tenantA.User}
		tk, _ := domain.NewTask(domain.TaskTypeImageImport, c, id, map[string]any{"image_id": id})
		if err := d.Tasks(c).Add(ctx, tk); err != nil {
			t.Fatal(err)
		}
		if err := d.SetPropertyAtomic(ctx, id, db.ImportLockProperty, tk.ID); err != nil {
			t.Fatal(err)
		}
		img := s.show(t, tenantA, id)
		if img["os_glance_import_task"] != tk.ID {
			t.Errorf("os_glance_import_task = %v, want the holder %s", img["os_glance_import_task"], tk.ID)
		}
		r := s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "glance-direct"}}).want(t, 409)
		if msg := errorMessage(t, r); msg != "Image has active task" {
			t.Errorf("locked image: %q", msg)
		}
		// A user cannot take or forge the lock either.
		s.patch(t, tenantA, id, op{Op: "add", Path: "/os_glance_import_task", Value: "mine"}).want(t, 403)
		if err := d.DeletePropertyAtomic(ctx, id, db.ImportLockProperty, tk.ID); err != nil {
			t.Fatal(err)
		}
		s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "glance-direct"}}).want(t, 202)
		s.waitImage(t, tenantA, id, "active")
	})
}

// md5hex is the checksum Glance shows for data.
func md5hex(b []byte) string { return fmt.Sprintf("%x", md5.Sum(b)) }

// TestImportCLI drives Debian's glance client through the interoperable
// import: glance-direct with --file, web-download with --uri.
func TestImportCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: drives the real glance client")
	}
	s := startImportServer(t, "import-cli", "noauth", false)
	clients(t)
	home := t.TempDir()
	data := randomBytes(512<<10 + 3)
	src := filepath.Join(home, "disk.raw")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("glance-direct", func(t *testing.T) {
		glance := cli{t: t, env: cliEnv(home), base: glanceBase(s.server)}
		img := table(glance.runClosed("image-create-via-import", "--name", uniq("cli-direct"), "--disk-format", "raw",
			"--container-format", "bare", "--import-method", "glance-direct", "--file", src))
		id := img["id"]
		if id == "" {
			t.Fatalf("no image id in %v", img)
		}
		s.cleanup(t, id)
		got := s.waitImage(t, nil, id, "active")
		if got["checksum"] != md5hex(data) {
			t.Errorf("image imported by the client: %v", got)
		}
		out := filepath.Join(home, "direct.out")
		glance.run("image-download", "--file", out, id)
		if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, data) {
			t.Errorf("downloaded data differs (%v)", err)
		}
	})
	t.Run("web-download", func(t *testing.T) {
		glance := cli{t: t, env: cliEnv(home), base: glanceBase(s.server)}
		s.web.put("/cli.raw", data)
		img := table(glance.runClosed("image-create-via-import", "--name", uniq("cli-web"), "--disk-format", "raw",
			"--container-format", "bare", "--import-method", "web-download", "--uri", s.web.URL+"/cli.raw"))
		id := img["id"]
		if id == "" {
			t.Fatalf("no image id in %v", img)
		}
		s.cleanup(t, id)
		if got := s.waitImage(t, nil, id, "active"); got["checksum"] != md5hex(data) {
			t.Errorf("image imported by the client: %v", got)
		}
	})
}

// TestImportShutdown stops a server while an import runs: the import is
// cut short, its task failed and its image back in queued with nothing
// staged, before the process exits.
func TestImportShutdown(t *testing.T) {
	s := startImportServer(t, "import-shutdown", "trusted-auth", false)
	started := make(chan struct{})
	var once sync.Once
	// Part of the data, then nothing until the download is abandoned.
	s.web.handle("/slow.raw", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10000000")
		w.Write(make([]byte, 64<<10))
		w.(http.Flusher).Flush()
		once.Do(func() { close(started) })
		<-r.Context().Done()
	}))
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "web-download",
		"uri": s.web.URL + "/slow.raw"}}).want(t, 202)
	<-started
	s.proc.stop()
	if !s.proc.cmd.ProcessState.Exited() {
		t.Fatalf("the server did not exit by itself: %v", s.proc.cmd.ProcessState)
	}
	s.start(t)
	img := s.show(t, tenantA, id)
	if img["status"] != "queued" || img["size"] != nil {
		t.Errorf("after shutdown: status %v size %v", img["status"], img["size"])
	}
	if _, ok := img["os_glance_import_task"]; ok {
		t.Error("the import lock outlived the server")
	}
	tk := s.waitTask(t, tenantA, id)
	if tk["status"] != "failure" || !strings.Contains(tk["message"].(string), "shutting down") {
		t.Errorf("task after shutdown: %v", tk)
	}
	if left := s.staged(t); len(left) != 0 {
		t.Errorf("staging still holds %v", left)
	}
}

// TestImportPlugins runs an import with inject_image_metadata configured.
func TestImportPlugins(t *testing.T) {
	s := startImportServerWith(t, "import-plugins", "trusted-auth", false,
		"\n[image_import_opts]\nimage_import_plugins = [inject_image_metadata]\n\n"+
			"[inject_metadata_properties]\ninject = injected_by:e2e\n")
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	s.stage(t, tenantA, id, []byte("plugged data")).want(t, 204)
	s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "glance-direct"}}).want(t, 202)
	if img := s.waitImage(t, tenantA, id, "active"); img["injected_by"] != "e2e" {
		t.Errorf("the plugin's property is missing: %v", img)
	}
}
