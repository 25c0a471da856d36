package imports_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/gateway"
	"github.com/glance-go/glance-go/gateway/imports"
	"github.com/glance-go/glance-go/gateway/imports/webdl"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/policy"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/proxies/quota"
	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
)

var (
	owner = &domain.Caller{ProjectID: "p1", UserID: "u1", Roles: []string{"member", "reader"}, RequestID: "req-owner"}
	other = &domain.Caller{ProjectID: "p2", UserID: "u2", Roles: []string{"member", "reader"}}
	admin = &domain.Caller{ProjectID: "adm", UserID: "ua", Roles: []string{"admin", "member", "reader"}, IsAdmin: true}
)

// env is a real stack: SQLite, the gateway's onion, file stores (a and b
// in multi-store, one otherwise) and a file staging area.
type env struct {
	db    *db.DB
	gw    *gateway.Gateway
	set   *stores.Set
	dirs  map[string]string
	svc   *imports.Service
	multi bool
}

func newEnv(t *testing.T, multi bool, mod func(c *imports.Config)) *env {
	t.Helper()
	e := &env{db: dbtest.OpenSQLite(t), dirs: map[string]string{}, multi: multi}
	driver := func(name string) *file.Driver {
		dir := filepath.Join(t.TempDir(), name)
		d, err := file.New(file.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		e.dirs[name] = d.Dir()
		return d
	}
	if multi {
		set, err := stores.NewMultiSet("a",
			&stores.Backend{ID: "a", Type: "file", Driver: driver("a")},
			&stores.Backend{ID: "b", Type: "file", Driver: driver("b")})
		if err != nil {
			t.Fatal(err)
		}
		e.set = set
	} else {
		e.set = stores.NewSet(driver("a"))
	}
	e.set.SetStaging(driver("staging"))
	enf, err := policy.NewDefault()
	if err != nil {
		t.Fatal(err)
	}
	e.gw = gateway.New(gateway.Config{
		DB:       e.db,
		Stores:   e.set,
		Location: location.Options{HashAlgo: "sha512"},
		Limits:   quota.Limits{Properties: 128, Tags: 128, Members: 128, Locations: 10, SizeCap: 1 << 30},
		Enforcer: enf,
		Sink:     &proxytest.Sink{},
	})
	cfg := imports.Config{
		Gateway:    e.gw,
		DB:         e.db,
		Stores:     e.set,
		StagingDir: e.dirs["staging"],
		Authorize: func(c *domain.Caller, rule string, m domain.Meta) bool {
			return enf.Allowed(c, rule, policy.ImageTarget(m))
		},
		Methods:     []string{domain.ImportGlanceDirect, domain.ImportWebDownload, domain.ImportCopyImage},
		WebDownload: webdl.DefaultOptions(),
		Logger:      slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	e.svc = imports.New(cfg)
	t.Cleanup(func() {
		if err := e.svc.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// create makes a queued image of caller c with both formats set.
func (e *env) create(t *testing.T, c *domain.Caller, mod func(m *domain.Meta)) string {
	t.Helper()
	repo, factory := e.gw.Images(c)
	m := domain.Meta{Name: domain.Ptr("img"), DiskFormat: domain.Ptr("raw"), ContainerFormat: domain.Ptr("bare"),
		Visibility: domain.VisibilityPrivate, Properties: map[string]string{}}
	if mod != nil {
		mod(&m)
	}
	img, err := factory.NewImage(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Add(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	return img.Meta().ID
}

func (e *env) get(t *testing.T, c *domain.Caller, id string) domain.Image {
	t.Helper()
	repo, _ := e.gw.Images(c)
	img, err := repo.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return img
}

func (e *env) stage(t *testing.T, id string, data []byte) {
	t.Helper()
	if err := e.get(t, owner, id).Stage(context.Background(), bytes.NewReader(data), domain.DataIn{Size: int64(len(data))}); err != nil {
		t.Fatalf("stage: %v", err)
	}
}

func (e *env) upload(t *testing.T, id string, data []byte, store string) {
	t.Helper()
	err := e.get(t, owner, id).SetData(context.Background(), bytes.NewReader(data), domain.DataIn{Size: int64(len(data)), Store: store})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
}

// meta returns the stored record as an admin sees it.
func (e *env) meta(t *testing.T, id string) domain.Meta {
	t.Helper()
	img, err := e.db.Images(admin).Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return img.Meta()
}

// task returns the newest task of image id.
func (e *env) task(t *testing.T, id string) domain.Task {
	t.Helper()
	ts, err := e.db.Tasks(admin).ListByImage(context.Background(), id)
	if err != nil || len(ts) == 0 {
		t.Fatalf("tasks of %s: %v %v", id, ts, err)
	}
	return ts[len(ts)-1]
}

// wait polls the newest task of image id until it ends.
func (e *env) wait(t *testing.T, id string) domain.Task {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		tk := e.task(t, id)
		if tk.Done() {
			return tk
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the import of %s did not end", id)
	return domain.Task{}
}

func (e *env) stagedFile(id string) bool {
	_, err := os.Stat(filepath.Join(e.dirs["staging"], id))
	return err == nil
}

func (e *env) storeFile(store, id string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(e.dirs[store], id))
	return b, err == nil
}

func request(method string, mod func(r *domain.ImportRequest)) domain.ImportRequest {
	r := domain.ImportRequest{Method: method, AllStoresMustSucceed: true,
		Body: map[string]any{"method": map[string]any{"name": method}}}
	if mod != nil {
		mod(&r)
	}
	return r
}

func wantErr(t *testing.T, err, kind error, msg string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
	if msg != "" && err.Error() != msg {
		t.Fatalf("message %q, want %q", err.Error(), msg)
	}
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// checkActive asserts a successful import of data into stores.
func (e *env) checkActive(t *testing.T, id string, data []byte, stores ...string) {
	t.Helper()
	tk := e.wait(t, id)
	if tk.Status != domain.TaskSuccess || tk.Result["image_id"] != id || tk.ExpiresAt == nil {
		t.Fatalf("task = %+v", tk)
	}
	m := e.meta(t, id)
	if m.Status != domain.StatusActive || m.Size == nil || *m.Size != int64(len(data)) || m.Checksum == nil ||
		*m.Checksum != md5hex(data) {
		t.Fatalf("image = status %s size %v checksum %v", m.Status, m.Size, m.Checksum)
	}
	if _, ok := m.Properties[imports.LockProperty]; ok {
		t.Error("the import lock was not released")
	}
	if _, ok := m.Properties[location.StageHostProperty]; ok {
		t.Error("os_glance_stage_host was not removed")
	}
	if m.Properties[imports.ImportingProperty] != "" || m.Properties[imports.FailedProperty] != "" {
		t.Errorf("importing %q failed %q, want both empty", m.Properties[imports.ImportingProperty], m.Properties[imports.FailedProperty])
	}
	if e.stagedFile(id) {
		t.Error("staged data left behind")
	}
	for _, st := range stores {
		if got, ok := e.storeFile(st, id); !ok || !bytes.Equal(got, data) {
			t.Errorf("store %s holds %d bytes (present %v), want the image", st, len(got), ok)
		}
	}
	if len(m.Locations) != len(stores) {
		t.Errorf("locations %v, want one per store %v", m.Locations, stores)
	}
}

func TestGlanceDirect(t *testing.T) {
	for _, multi := range []bool{false, true} {
		t.Run("multi="+strconv.FormatBool(multi), func(t *testing.T) {
			e := newEnv(t, multi, nil)
			id := e.create(t, owner, nil)
			data := proxytest.Bytes(3<<20 + 11)
			e.stage(t, id, data)
			if err := e.svc.Import(context.Background(), owner, id, request(domain.ImportGlanceDirect, nil)); err != nil {
				t.Fatal(err)
			}
			e.checkActive(t, id, data, "a")
			tk := e.task(t, id)
			if tk.Type != domain.TaskTypeImageImport || tk.Owner != "p1" || tk.UserID != "u1" || tk.RequestID != "req-owner" {
				t.Errorf("task = %+v", tk)
			}
			backend, _ := tk.Input["backend"].([]any)
			want := []any{nil}
			if multi {
				want = []any{"a"}
			}
			if !slices.Equal(backend, want) || tk.Input["image_id"] != id {
				t.Errorf("task input = %v", tk.Input)
			}
		})
	}
}

func TestGlanceDirectToEveryStore(t *testing.T) {
	for _, par := range []int{1, 2} {
		t.Run("max_parallel_stores="+strconv.Itoa(par), func(t *testing.T) {
			e := newEnv(t, true, func(c *imports.Config) { c.MaxParallelStores = par })
			id := e.create(t, owner, nil)
			data := proxytest.Bytes(1<<20 + 3)
			e.stage(t, id, data)
			err := e.svc.Import(context.Background(), owner, id, request(domain.ImportGlanceDirect,
				func(r *domain.ImportRequest) { r.AllStores = true }))
			if err != nil {
				t.Fatal(err)
			}
			e.checkActive(t, id, data, "a", "b")
		})
	}
}

func TestCopyImage(t *testing.T) {
	e := newEnv(t, true, nil)
	id := e.create(t, owner, nil)
	data := proxytest.Bytes(2 << 20)
	e.upload(t, id, data, "a")
	// copy_image is admin-only by default.
	req := request(domain.ImportCopyImage, func(r *domain.ImportRequest) { r.Stores, r.HasStores = []string{"b"}, true })
	wantErr(t, e.svc.Import(context.Background(), owner, id, req), domain.ErrForbidden,
		"You are not authorized to complete copy_image action.")
	if err := e.svc.Import(context.Background(), admin, id, req); err != nil {
		t.Fatal(err)
	}
	e.checkActive(t, id, data, "a", "b")
	// Everything is everywhere now: all_stores has nothing to do.
	all := request(domain.ImportCopyImage, func(r *domain.ImportRequest) { r.AllStores = true })
	if err := e.svc.Import(context.Background(), admin, id, all); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.svc.Import(context.Background(), admin, id, req), domain.ErrInvalid, "Image is already present at store 'b'")
}

// webServer serves data on 127.0.0.1 and the options that allow its port.
func webServer(t *testing.T, h http.Handler) (string, webdl.Options) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	o := webdl.DefaultOptions()
	o.AllowedPorts = []int{p}
	return srv.URL, o
}

func TestWebDownload(t *testing.T) {
	data := proxytest.Bytes(1<<20 + 99)
	url, opts := webServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(data)
	}))
	e := newEnv(t, false, func(c *imports.Config) { c.WebDownload = opts })
	id := e.create(t, owner, nil)
	req := request(domain.ImportWebDownload, func(r *domain.ImportRequest) { r.URI = url + "/image.raw" })
	if err := e.svc.Import(context.Background(), owner, id, req); err != nil {
		t.Fatal(err)
	}
	e.checkActive(t, id, data, "a")

	// A URI the filters refuse is a 400 before anything happens.
	id2 := e.create(t, owner, nil)
	bad := request(domain.ImportWebDownload, func(r *domain.ImportRequest) { r.URI = "ftp://127.0.0.1/x" })
	wantErr(t, e.svc.Import(context.Background(), owner, id2, bad), domain.ErrInvalid,
		"URI for web-download does not pass filtering: ftp://127.0.0.1/x")
	if m := e.meta(t, id2); m.Status != domain.StatusQueued || len(m.Properties) != 0 {
		t.Errorf("refused import changed the image: %+v", m)
	}
}

func TestWebDownloadFailureReverts(t *testing.T) {
	url, opts := webServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("only a part"))
	}))
	e := newEnv(t, false, func(c *imports.Config) { c.WebDownload = opts })
	id := e.create(t, owner, nil)
	req := request(domain.ImportWebDownload, func(r *domain.ImportRequest) { r.URI = url })
	if err := e.svc.Import(context.Background(), owner, id, req); err != nil {
		t.Fatal(err)
	}
	tk := e.wait(t, id)
	if tk.Status != domain.TaskFailure || tk.Message == "" {
		t.Fatalf("task = %+v, want a failure with a message", tk)
	}
	e.checkReverted(t, id)
}

// checkReverted asserts what every failed import leaves: a queued image
// without data, no lock, no staged data.
func (e *env) checkReverted(t *testing.T, id string) {
	t.Helper()
	m := e.meta(t, id)
	if m.Status != domain.StatusQueued || m.Size != nil || len(m.Locations) != 0 {
		t.Errorf("image = status %s size %v locations %v, want queued without data", m.Status, m.Size, m.Locations)
	}
	if _, ok := m.Properties[imports.LockProperty]; ok {
		t.Error("the import lock was not released")
	}
	if e.stagedFile(id) {
		t.Error("staged data left behind")
	}
	for _, st := range []string{"a", "b"} {
		if _, ok := e.storeFile(st, id); ok {
			t.Errorf("data left in store %s", st)
		}
	}
}

func TestStoreFailure(t *testing.T) {
	cases := []struct {
		name       string
		must       bool
		wantStatus domain.TaskStatus
		wantFailed string
	}{
		{"all stores must succeed", true, domain.TaskFailure, "b"},
		{"partial success allowed", false, domain.TaskSuccess, "b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, true, nil)
			id := e.create(t, owner, nil)
			data := proxytest.Bytes(4096)
			e.stage(t, id, data)
			// Store b already holds an object of that id: its import fails.
			if err := os.WriteFile(filepath.Join(e.dirs["b"], id), []byte("squatter"), 0o644); err != nil {
				t.Fatal(err)
			}
			req := request(domain.ImportGlanceDirect, func(r *domain.ImportRequest) {
				r.Stores, r.HasStores, r.AllStoresMustSucceed = []string{"a", "b"}, true, tc.must
			})
			if err := e.svc.Import(context.Background(), owner, id, req); err != nil {
				t.Fatal(err)
			}
			tk := e.wait(t, id)
			if tk.Status != tc.wantStatus {
				t.Fatalf("task = %+v, want %s", tk, tc.wantStatus)
			}
			m := e.meta(t, id)
			if got := m.Properties[imports.FailedProperty]; got != tc.wantFailed {
				t.Errorf("os_glance_failed_import = %q, want %q", got, tc.wantFailed)
			}
			if got := m.Properties[imports.ImportingProperty]; got != "" {
				t.Errorf("os_glance_importing_to_stores = %q, want empty", got)
			}
			if got, _ := e.storeFile("b", id); string(got) != "squatter" {
				t.Errorf("the object already in store b was touched: %q", got)
			}
			if tc.must {
				if tk.Message == "" {
					t.Error("failed task without a message")
				}
				if m.Status != domain.StatusQueued || len(m.Locations) != 0 || m.Size != nil {
					t.Errorf("image = %s %v %v, want queued without data", m.Status, m.Locations, m.Size)
				}
				if _, ok := e.storeFile("a", id); ok {
					t.Error("the data stored in a was not removed")
				}
				if e.stagedFile(id) {
					t.Error("staged data left behind")
				}
			} else {
				if m.Status != domain.StatusActive || len(m.Locations) != 1 || location.StoreOf(m.Locations[0]) != "a" {
					t.Errorf("image = %s %v, want active in a", m.Status, m.Locations)
				}
			}
			if _, ok := m.Properties[imports.LockProperty]; ok {
				t.Error("the import lock was not released")
			}
		})
	}
}

func TestImportRefusals(t *testing.T) {
	e := newEnv(t, true, nil)
	ctx := context.Background()
	queued := e.create(t, owner, nil)
	noFormats := e.create(t, owner, func(m *domain.Meta) { m.DiskFormat = nil })
	noContainer := e.create(t, owner, func(m *domain.Meta) { m.ContainerFormat = nil })
	staged := e.create(t, owner, nil)
	e.stage(t, staged, []byte("data"))
	active := e.create(t, owner, nil)
	e.upload(t, active, []byte("data"), "a")
	public := e.create(t, owner, func(m *domain.Meta) { m.Visibility = domain.VisibilityCommunity })
	e.stage(t, public, []byte("data"))
	locked := e.create(t, owner, nil)
	e.stage(t, locked, []byte("data"))
	live, _ := domain.NewTask(domain.TaskTypeImageImport, owner, locked, nil)
	if err := e.db.Tasks(owner).Add(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetPropertyAtomic(ctx, locked, imports.LockProperty, live.ID); err != nil {
		t.Fatal(err)
	}
	gd := func(mod func(r *domain.ImportRequest)) domain.ImportRequest {
		return request(domain.ImportGlanceDirect, mod)
	}
	cases := []struct {
		name   string
		caller *domain.Caller
		id     string
		req    domain.ImportRequest
		kind   error
		msg    string
	}{
		{"unknown method", owner, staged, request("glance-download", nil), domain.ErrInvalid, "Unknown import method name 'glance-download'."},
		{"missing image", owner, "00000000-0000-4000-8000-000000000000", gd(nil), domain.ErrNotFound, ""},
		{"invisible image", other, staged, gd(nil), domain.ErrNotFound, ""},
		{"active image", owner, active, gd(nil), domain.ErrConflict, "Image with status active cannot be target for import"},
		{"copy of a queued image", admin, queued, request(domain.ImportCopyImage, nil), domain.ErrConflict,
			"Only images with status active can be targeted for copying"},
		{"web-download of a staged image", owner, staged, request(domain.ImportWebDownload, nil), domain.ErrConflict,
			"Image needs to be in 'queued' state to use 'web-download' method"},
		{"glance-direct without staging", owner, queued, gd(nil), domain.ErrConflict,
			"Image needs to be staged before 'glance-direct' method can be used"},
		{"no container format", owner, noContainer, request(domain.ImportWebDownload, nil), domain.ErrConflict,
			"'container_format' needs to be set before import"},
		{"no disk format", owner, noFormats, request(domain.ImportWebDownload, nil), domain.ErrConflict,
			"'disk_format' needs to be set before import"},
		{"not the owner", other, public, gd(nil), domain.ErrForbidden, "You are not authorized to complete modify_image action."},
		{"live lock", owner, locked, gd(nil), domain.ErrConflict, "Image has active task"},
		{"unknown store", owner, staged, gd(func(r *domain.ImportRequest) { r.Stores, r.HasStores = []string{"zz"}, true }),
			domain.ErrConflict, "Store for identifier zz not found"},
		{"unknown store header", owner, staged, gd(func(r *domain.ImportRequest) { r.StoreHeader, r.HasStoreHeader = "zz", true }),
			domain.ErrConflict, "Store for identifier zz not found"},
		{"all_stores with stores", owner, staged, gd(func(r *domain.ImportRequest) {
			r.AllStores, r.Stores, r.HasStores = true, []string{"a"}, true
		}), domain.ErrInvalid, "All_stores parameter can't be used with x-image-meta-store header or stores parameter"},
		{"stores with header", owner, staged, gd(func(r *domain.ImportRequest) {
			r.Stores, r.HasStores, r.StoreHeader, r.HasStoreHeader = []string{"a"}, true, "a", true
		}), domain.ErrInvalid, "Stores parameter and x-image-meta-store header can't be both specified"},
		{"copy to a store holding it", admin, active, request(domain.ImportCopyImage, func(r *domain.ImportRequest) {
			r.Stores, r.HasStores = []string{"a", "b"}, true
		}), domain.ErrInvalid, "Image is already present at store 'a'"},
		{"staged elsewhere", owner, staged, gd(nil), nil, ""}, // filled below
	}
	for _, tc := range cases[:len(cases)-1] {
		t.Run(tc.name, func(t *testing.T) {
			missing := tc.id == "00000000-0000-4000-8000-000000000000"
			var before domain.Meta
			if !missing {
				before = e.meta(t, tc.id)
			}
			err := e.svc.Import(ctx, tc.caller, tc.id, tc.req)
			wantErr(t, err, tc.kind, tc.msg)
			if !missing {
				after := e.meta(t, tc.id)
				if after.Status != before.Status || after.Properties[imports.LockProperty] != before.Properties[imports.LockProperty] {
					t.Errorf("a refused import changed the image: %s → %s", before.Status, after.Status)
				}
			}
		})
	}

	t.Run("all_stores_must_succeed without multi-store", func(t *testing.T) {
		single := newEnv(t, false, nil)
		id := single.create(t, owner, nil)
		single.stage(t, id, []byte("x"))
		err := single.svc.Import(ctx, owner, id, gd(func(r *domain.ImportRequest) { r.AllStoresMustSucceed = false }))
		wantErr(t, err, domain.ErrInvalid, "All_stores_must_succeed can only be set with enabled_backends None")
	})
	t.Run("staged by another worker", func(t *testing.T) {
		worker := newEnv(t, false, func(c *imports.Config) { c.SelfURL = "http://me:9292" })
		id := worker.create(t, owner, nil)
		worker.stage(t, id, []byte("x"))
		img := worker.get(t, admin, id)
		from := img.Meta().Status
		if err := img.Update(func(m *domain.Meta) error {
			m.Properties[location.StageHostProperty] = "http://other:9292"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		repo, _ := worker.gw.Images(admin)
		if err := repo.Save(ctx, img, from); err != nil {
			t.Fatal(err)
		}
		var pe *imports.ProxyError
		if err := worker.svc.Import(ctx, owner, id, gd(nil)); !errors.As(err, &pe) || pe.Host != "http://other:9292" {
			t.Fatalf("err = %v, want a hand-over to the other worker", err)
		}
	})
}

func TestStaleLockIsBroken(t *testing.T) {
	now := time.Now()
	e := newEnv(t, true, func(c *imports.Config) { c.Now = func() time.Time { return now } })
	ctx := context.Background()
	id := e.create(t, owner, nil)
	data := []byte("some data")
	e.stage(t, id, data)
	old, _ := domain.NewTask(domain.TaskTypeImageImport, owner, id, map[string]any{"backend": []any{"b"}})
	if err := old.Begin(); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Tasks(owner).Add(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetPropertyAtomic(ctx, id, imports.LockProperty, old.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.svc.Import(ctx, owner, id, request(domain.ImportGlanceDirect, nil)), domain.ErrConflict, "Image has active task")

	now = now.Add(61 * time.Minute) // a processing task's lock expires after an hour
	if err := e.svc.Import(ctx, owner, id, request(domain.ImportGlanceDirect, nil)); err != nil {
		t.Fatal(err)
	}
	e.checkActive(t, id, data, "a")
	gone, err := e.db.Tasks(admin).Get(ctx, old.ID)
	if err != nil || gone.Status != domain.TaskFailure || gone.Message != "Expired lock preempted" {
		t.Errorf("broken task = %+v, %v", gone, err)
	}
}

func TestConcurrentImportsConflict(t *testing.T) {
	// The first import holds its lock until every request has been
	// answered.
	release := make(chan struct{})
	hold := imports.Plugin{Name: "hold", Run: func(context.Context, string, domain.Meta, *domain.Caller) (func(*domain.Meta) error, error) {
		<-release
		return nil, nil
	}}
	e := newEnv(t, false, func(c *imports.Config) { c.Plugins = []imports.Plugin{hold} })
	id := e.create(t, owner, nil)
	e.stage(t, id, []byte("data"))
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.svc.Import(context.Background(), owner, id, request(domain.ImportGlanceDirect, nil))
		}()
	}
	wg.Wait()
	close(release)
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, domain.ErrConflict):
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		ts, _ := e.db.Tasks(admin).ListByImage(context.Background(), id)
		for _, tk := range ts {
			t.Logf("task %s %s %q", tk.ID, tk.Status, tk.Message)
		}
		t.Fatalf("%d imports started, want exactly one (errors %v)", ok, errs)
	}
	e.checkActive(t, id, []byte("data"), "a")
}

func TestPlugins(t *testing.T) {
	var seen []string
	plug := imports.Plugin{Name: "tag", Run: func(ctx context.Context, path string, m domain.Meta, c *domain.Caller) (func(*domain.Meta) error, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		seen = append(seen, string(b), string(m.Status), c.UserID)
		return func(m *domain.Meta) error { m.Properties["plugged"] = "yes"; return nil }, nil
	}}
	broken := imports.Plugin{Name: "broken", Run: func(context.Context, string, domain.Meta, *domain.Caller) (func(*domain.Meta) error, error) {
		return nil, domain.Errorf(domain.ErrInvalid, "Image conversion failed")
	}}
	e := newEnv(t, false, func(c *imports.Config) { c.Plugins = []imports.Plugin{plug} })
	id := e.create(t, owner, nil)
	e.stage(t, id, []byte("data"))
	if err := e.svc.Import(context.Background(), owner, id, request(domain.ImportGlanceDirect, nil)); err != nil {
		t.Fatal(err)
	}
	e.checkActive(t, id, []byte("data"), "a")
	if !slices.Equal(seen, []string{"data", "importing", "u1"}) || e.meta(t, id).Properties["plugged"] != "yes" {
		t.Errorf("plugin saw %v; properties %v", seen, e.meta(t, id).Properties)
	}

	e = newEnv(t, false, func(c *imports.Config) { c.Plugins = []imports.Plugin{broken} })
	id = e.create(t, owner, nil)
	e.stage(t, id, []byte("data"))
	if err := e.svc.Import(context.Background(), owner, id, request(domain.ImportGlanceDirect, nil)); err != nil {
		t.Fatal(err)
	}
	if tk := e.wait(t, id); tk.Status != domain.TaskFailure || tk.Message != "Image conversion failed" {
		t.Fatalf("task = %+v", tk)
	}
	e.checkReverted(t, id)
}

func TestShutdownRevertsRunningImports(t *testing.T) {
	started := make(chan struct{})
	var once sync.Once
	url, opts := webServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		once.Do(func() { close(started) })
		<-r.Context().Done()
	}))
	e := newEnv(t, false, func(c *imports.Config) { c.WebDownload = opts; c.MaxWorkers = 1 })
	running := e.create(t, owner, nil)
	waiting := e.create(t, owner, nil)
	req := request(domain.ImportWebDownload, func(r *domain.ImportRequest) { r.URI = url })
	if err := e.svc.Import(context.Background(), owner, running, req); err != nil {
		t.Fatal(err)
	}
	<-started
	// With one worker busy, this one waits for a worker.
	if err := e.svc.Import(context.Background(), owner, waiting, req); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{running, waiting} {
		tk := e.task(t, id)
		if tk.Status != domain.TaskFailure || !strings.Contains(tk.Message, "shutting down") {
			t.Errorf("task of %s = %s %q, want failed by the shutdown", id, tk.Status, tk.Message)
		}
		e.checkReverted(t, id)
	}
	wantErr(t, e.svc.Import(context.Background(), owner, e.create(t, owner, nil), req), domain.ErrUnavailable, "")
}

func TestImageTasks(t *testing.T) {
	e := newEnv(t, false, nil)
	id := e.create(t, owner, nil)
	e.stage(t, id, []byte("d"))
	if err := e.svc.Import(context.Background(), owner, id, request(domain.ImportGlanceDirect, nil)); err != nil {
		t.Fatal(err)
	}
	e.wait(t, id)
	ts, err := e.svc.ImageTasks(context.Background(), owner, id)
	if err != nil || len(ts) != 1 || ts[0].Input == nil {
		t.Fatalf("tasks = %+v, %v", ts, err)
	}
	if _, err := e.svc.ImageTasks(context.Background(), other, id); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("another project: %v, want not found", err)
	}
}

func TestLegacyTask(t *testing.T) {
	data := []byte("legacy image data")
	url, opts := webServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	e := newEnv(t, false, func(c *imports.Config) { c.WebDownload = opts })
	ctx := context.Background()
	cases := []struct {
		name  string
		input map[string]any
		msg   string
	}{
		{"no import_from", map[string]any{}, "Invalid location: None"},
		{"file", map[string]any{"import_from": "file:///etc/passwd"},
			"File based imports are not allowed. Please use a non-local source of image data."},
		{"ftp", map[string]any{"import_from": "ftp://x/y"},
			"The given uri is not valid. Please specify a valid uri from the following list of supported uri ['http']"},
		{"filtered", map[string]any{"import_from": "http://127.0.0.1:1/x"},
			"URI for legacy import task does not pass filtering: http://127.0.0.1:1/x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateTask(ctx, admin, domain.TaskTypeImport, tc.input)
			wantErr(t, err, domain.ErrInvalid, tc.msg)
		})
	}
	tk, err := e.svc.CreateTask(ctx, admin, domain.TaskTypeImport, map[string]any{
		"import_from": url + "/x.img", "import_from_format": "raw",
		"image_properties": map[string]any{"name": "legacy", "disk_format": "raw", "container_format": "bare", "k": "v"},
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !tk.Done() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		if tk, err = e.db.Tasks(admin).Get(ctx, tk.ID); err != nil {
			t.Fatal(err)
		}
	}
	if tk.Status != domain.TaskSuccess {
		t.Fatalf("task = %+v", tk)
	}
	id, _ := tk.Result["image_id"].(string)
	m := e.meta(t, id)
	if m.Status != domain.StatusActive || *m.Name != "legacy" || m.Properties["k"] != "v" || *m.Checksum != md5hex(data) {
		t.Errorf("image = %+v", m)
	}
}

func TestHeartbeatAndExternalAbort(t *testing.T) {
	entered := make(chan struct{})
	left := make(chan struct{})
	hold := imports.Plugin{Name: "hold", Run: func(ctx context.Context, _ string, _ domain.Meta, _ *domain.Caller) (func(*domain.Meta) error, error) {
		close(entered)
		defer close(left)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	e := newEnv(t, false, func(c *imports.Config) {
		c.Plugins = []imports.Plugin{hold}
		c.Heartbeat = 10 * time.Millisecond
	})
	ctx := context.Background()
	id := e.create(t, owner, nil)
	e.stage(t, id, []byte("data"))
	if err := e.svc.Import(ctx, owner, id, request(domain.ImportGlanceDirect, nil)); err != nil {
		t.Fatal(err)
	}
	<-entered
	// The running flow records its progress on its task.
	deadline := time.Now().Add(30 * time.Second)
	for e.task(t, id).Message != "Copied 0 MiB" {
		if time.Now().After(deadline) {
			t.Fatalf("no progress recorded: %+v", e.task(t, id))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Another import breaks the lock: the task is failed and the lock
	// handed over. The flow notices and stops without touching the image.
	tk := e.task(t, id)
	if err := tk.Fail("Expired lock preempted", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Tasks(admin).Save(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if err := e.db.DeletePropertyAtomic(ctx, id, imports.LockProperty, tk.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetPropertyAtomic(ctx, id, imports.LockProperty, "successor"); err != nil {
		t.Fatal(err)
	}
	<-left
	if err := e.svc.Close(ctx); err != nil { // waits for the flow to finish
		t.Fatal(err)
	}
	m := e.meta(t, id)
	if m.Properties[imports.LockProperty] != "successor" || m.Status != domain.StatusImporting || !e.stagedFile(id) {
		t.Errorf("the aborted flow touched what is its successor's: lock %q status %s staged %v",
			m.Properties[imports.LockProperty], m.Status, e.stagedFile(id))
	}
	if got := e.task(t, id); got.Status != domain.TaskFailure || got.Message != "Expired lock preempted" {
		t.Errorf("task = %s %q", got.Status, got.Message)
	}
}

func TestRevertDeadImport(t *testing.T) {
	e := newEnv(t, true, nil)
	ctx := context.Background()
	id := e.create(t, owner, nil)
	e.stage(t, id, []byte("staged data"))
	// A server died in the middle of importing to a and b: a got all its
	// data, b only part of it.
	tk, _ := domain.NewTask(domain.TaskTypeImageImport, owner, id, map[string]any{
		"image_id": id, "backend": []any{"a", "b"},
		"import_req": map[string]any{"method": map[string]any{"name": "glance-direct"}, "all_stores_must_succeed": true},
	})
	_ = tk.Begin()
	if err := e.db.Tasks(admin).Add(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetPropertyAtomic(ctx, id, imports.LockProperty, tk.ID); err != nil {
		t.Fatal(err)
	}
	img := e.get(t, admin, id)
	from := img.Meta().Status
	if err := img.Update(func(m *domain.Meta) error {
		m.Status = domain.StatusImporting
		m.Properties[imports.ImportingProperty] = "b"
		m.Properties[imports.FailedProperty] = ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	repo, _ := e.gw.Images(admin)
	if err := repo.Save(ctx, img, from); err != nil {
		t.Fatal(err)
	}
	e.upload2(t, id, []byte("staged data"), "a")
	if err := os.WriteFile(filepath.Join(e.dirs["b"], id), []byte("part"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := e.svc.RevertDeadImport(ctx, e.get(t, admin, id)); err != nil {
		t.Fatal(err)
	}
	e.checkReverted(t, id)
	m := e.meta(t, id)
	if m.Properties[imports.FailedProperty] != "b" || m.Properties[imports.ImportingProperty] != "" {
		t.Errorf("failed %q importing %q, want b and nothing", m.Properties[imports.FailedProperty], m.Properties[imports.ImportingProperty])
	}
	got, err := e.db.Tasks(admin).Get(ctx, tk.ID)
	if err != nil || got.Status != domain.TaskFailure || !strings.Contains(got.Message, "interrupted") {
		t.Errorf("task = %+v, %v", got, err)
	}
}

// upload2 imports data to one store of an importing image, as a flow
// would, without activating it.
func (e *env) upload2(t *testing.T, id string, data []byte, store string) {
	t.Helper()
	err := e.get(t, admin, id).SetData(context.Background(), bytes.NewReader(data),
		domain.DataIn{Size: int64(len(data)), Store: store, Import: true})
	if err != nil {
		t.Fatalf("import to %s: %v", store, err)
	}
}

func TestRecoverOrphans(t *testing.T) {
	e := newEnv(t, false, nil)
	ctx := context.Background()
	// A server died with an import queued but not begun: the image still
	// waits, staged, with the lock held by the pending task.
	id := e.create(t, owner, nil)
	e.stage(t, id, []byte("staged"))
	tk, _ := domain.NewTask(domain.TaskTypeImageImport, owner, id, map[string]any{
		"image_id": id, "backend": []any{nil},
		"import_req": map[string]any{"method": map[string]any{"name": "glance-direct"}},
	})
	if err := e.db.Tasks(admin).Add(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetPropertyAtomic(ctx, id, imports.LockProperty, tk.ID); err != nil {
		t.Fatal(err)
	}
	// A task whose image went away meanwhile.
	lost, _ := domain.NewTask(domain.TaskTypeImageImport, owner, "00000000-0000-4000-8000-000000000000", nil)
	_ = lost.Begin()
	if err := e.db.Tasks(admin).Add(ctx, lost); err != nil {
		t.Fatal(err)
	}
	// Tasks updated since the cut-off are alive: left alone.
	if n, err := e.svc.RecoverOrphans(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("RecoverOrphans with a lease = %d, %v; want nothing ended", n, err)
	}
	n, err := e.svc.RecoverOrphans(ctx, time.Time{})
	if err != nil || n != 2 {
		t.Fatalf("RecoverOrphans = %d, %v; want 2 tasks ended", n, err)
	}
	e.checkReverted(t, id)
	for _, tid := range []string{tk.ID, lost.ID} {
		got, err := e.db.Tasks(admin).Get(ctx, tid)
		if err != nil || got.Status != domain.TaskFailure || !strings.Contains(got.Message, "interrupted") {
			t.Errorf("task %s = %+v, %v", tid, got, err)
		}
	}
	// The image can be staged and imported again.
	e.stage(t, id, []byte("again"))
	if err := e.svc.Import(ctx, owner, id, request(domain.ImportGlanceDirect, nil)); err != nil {
		t.Fatal(err)
	}
	e.checkActive(t, id, []byte("again"), "a")
}
