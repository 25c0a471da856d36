package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/cmd/glance-api/internal/config"
	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
	httpstore "github.com/glance-go/glance-go/stores/http"
)

// loadConf writes a glance-api.conf with text into a temporary directory
// ($dir in text stands for it) and loads it.
func loadConf(t testing.TB, text string) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "glance-api.conf")
	text = "[database]\nconnection = sqlite:///" + filepath.Join(dir, "g.sqlite") + "\n" + strings.ReplaceAll(text, "$dir", dir)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load([]string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

func TestOpenSingleStore(t *testing.T) {
	cfg, dir := loadConf(t, "[DEFAULT]\nnode_staging_uri = file://$dir/staging\n"+
		"[glance_store]\nstores = file, http, rbd\nfilesystem_store_datadirs = $dir/a:1\nfilesystem_store_datadirs = $dir/b:2\n"+
		"filesystem_thin_provisioning = true\nfilesystem_store_chunk_size = 4096\n")
	var logs bytes.Buffer
	set, err := openStores(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if set.Multi() {
		t.Error("a single store Set is multi-store")
	}
	fd, ok := set.Default().(*file.Driver)
	if !ok {
		t.Fatalf("default store is a %T", set.Default())
	}
	if got := fd.Properties(); got["data_dir"] != filepath.Join(dir, "b") || got["chunk_size"] != 4096 || got["thin_provisioning"] != true {
		t.Errorf("file store %v", got)
	}
	if d, err := set.ForURL("https://example.com/x.img"); err != nil {
		t.Errorf("ForURL(https) = %v", err)
	} else if _, ok := d.(*httpstore.Driver); !ok {
		t.Errorf("https locations go to a %T", d)
	}
	if !strings.Contains(logs.String(), "store=rbd") {
		t.Errorf("no warning about the rbd store: %s", logs.String())
	}
	obj, err := set.Staging().Put(context.Background(), "img", strings.NewReader("x"), 1)
	if err != nil || obj.URL != "file://"+filepath.Join(dir, "staging", "img") {
		t.Errorf("staging Put = %+v, %v", obj, err)
	}
	if len(obj.Metadata) != 0 {
		t.Errorf("single-store metadata %v", obj.Metadata)
	}
}

func TestOpenSingleStoreRefuses(t *testing.T) {
	cfg, _ := loadConf(t, "[glance_store]\nstores = swift,file\ndefault_store = swift\n")
	if _, err := openStores(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "default_store = swift") {
		t.Errorf("openStores = %v", err)
	}
	// filesystem_store_download reaches the legacy file store.
	cfg, _ = loadConf(t, "[glance_store]\nfilesystem_store_datadir = $dir/images\nfilesystem_store_download = bogus\n")
	if _, err := openStores(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "filesystem_store_download") {
		t.Errorf("openStores with filesystem_store_download = bogus: %v", err)
	}
	cfg, _ = loadConf(t, "[glance_store]\nfilesystem_store_datadir = $dir/images\nfilesystem_store_download = copy\n")
	if _, err := openStores(cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("openStores with filesystem_store_download = copy: %v", err)
	}
}

func TestOpenMultiStore(t *testing.T) {
	cfg, dir := loadConf(t, `[DEFAULT]
enabled_backends = zeta:file, web:http, alpha:file
[glance_store]
default_backend = alpha
[zeta]
store_description = Zeta
weight = 7
filesystem_store_datadir = $dir/zeta
rbd_store_pool = images
[web]
https_insecure = false
[alpha]
filesystem_store_datadirs = $dir/alpha1:1
filesystem_store_datadirs = $dir/alpha2:5
[os_glance_staging_store]
filesystem_store_datadir = $dir/staging
[os_glance_tasks_store]
filesystem_store_datadir = $dir/tasks
`)
	var logs bytes.Buffer
	set, err := openStores(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range set.Backends() {
		ids = append(ids, b.ID+":"+b.Type)
	}
	if got := strings.Join(ids, " "); got != "zeta:file web:http alpha:file" || set.DefaultID() != "alpha" {
		t.Errorf("backends %s, default %s", got, set.DefaultID())
	}
	if b, _ := set.Backend("zeta"); b.Description != "Zeta" || b.Weight != 7 || b.Properties["data_dir"] != filepath.Join(dir, "zeta") {
		t.Errorf("zeta = %+v", b)
	}
	if !strings.Contains(logs.String(), "[zeta]") || !strings.Contains(logs.String(), "rbd_store_pool") {
		t.Errorf("no warning about rbd_store_pool in [zeta]: %s", logs.String())
	}
	ctx := context.Background()
	obj, err := set.Default().Put(ctx, "img", strings.NewReader("x"), 1)
	if err != nil || obj.URL != "file://"+filepath.Join(dir, "alpha2", "img") || obj.Metadata["store"] != "alpha" {
		t.Errorf("default Put = %+v, %v", obj, err)
	}
	if _, ok := set.Staging().(stores.Lister); !ok {
		t.Error("the staging store cannot list what it holds")
	}
	for _, tc := range []struct {
		d    stores.Driver
		id   string
		want string
	}{{set.Staging(), stores.StagingID, "staging"}, {set.Tasks(), stores.TasksID, "tasks"}} {
		if tc.d == nil {
			t.Errorf("%s is not configured", tc.id)
			continue
		}
		obj, err := tc.d.Put(ctx, "img", strings.NewReader("x"), 1)
		if err != nil || obj.URL != "file://"+filepath.Join(dir, tc.want, "img") || len(obj.Metadata) != 0 {
			t.Errorf("%s Put = %+v, %v", tc.id, obj, err)
		}
	}
}

func TestOpenMultiStoreRefuses(t *testing.T) {
	tests := []struct {
		name, conf, want string
	}{
		{"type not built in", "[DEFAULT]\nenabled_backends = fast:rbd\n[glance_store]\ndefault_backend = fast\n",
			`store type "rbd" is not available in this build`},
		{"bad option", "[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = a\n[a]\nfilesystem_store_datadir = $dir/a\nweight = x\n",
			`[a] weight = "x": not an integer`},
		{"bad driver configuration", "[DEFAULT]\nenabled_backends = a:file\n[glance_store]\ndefault_backend = a\n[a]\nfilesystem_store_datadir = $dir/a\nfilesystem_store_datadirs = $dir/b\n",
			"either"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := loadConf(t, tc.conf)
			if _, err := openStores(cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("openStores = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
