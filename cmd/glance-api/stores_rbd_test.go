//go:build ceph

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/rbd"
)

// TestOpenMultiStoreRBD opens an rbd store next to a file store from
// glance-api.conf and copies an image from one to the other, against the
// cluster of scripts/ceph-dev.sh.
func TestOpenMultiStoreRBD(t *testing.T) {
	conf := os.Getenv("GLANCE_TEST_RBD_CONF")
	if conf == "" {
		msg := "no Ceph cluster configured: run eval \"$(scripts/ceph-dev.sh start)\""
		if os.Getenv("GLANCE_TEST_STRICT") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cfg, dir := loadConf(t, "[DEFAULT]\nenabled_backends = fast:rbd, cheap:file\n[glance_store]\ndefault_backend = fast\n"+
		"[cheap]\nfilesystem_store_datadir = $dir/cheap\n"+
		"[fast]\nrbd_store_ceph_conf = "+conf+"\nrbd_store_user = "+os.Getenv("GLANCE_TEST_RBD_USER")+
		"\nrbd_store_pool = "+os.Getenv("GLANCE_TEST_RBD_POOL")+"\nrbd_store_chunk_size = 1\nrbd_thin_provisioning = true\n")
	set, err := openStores(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fast, _ := set.Backend("fast")
	d, ok := stores.Unwrap(fast.Driver).(*rbd.Driver)
	if !ok {
		t.Fatalf("backend fast is a %T", fast.Driver)
	}
	defer d.Close()
	if p := fast.Properties; p["chunk_size"] != 1<<20 || p["thin_provisioning"] != true || p["fsid"] == nil {
		t.Errorf("properties %v", p)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	id := "glance-go-test-" + hex.EncodeToString(rnd[:])
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.6 MiB
	obj, err := set.Default().Put(ctx, id, bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Delete(ctx, obj.URL); err != nil && !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Delete: %v", err)
		}
	}()
	if !strings.HasPrefix(obj.URL, "rbd://") || !strings.HasSuffix(obj.URL, "/"+id+"/snap") || obj.Metadata["store"] != "fast" {
		t.Errorf("Put = %+v", obj)
	}
	src, err := set.ForLocation(obj.URL, "fast")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := src.Get(ctx, obj.URL, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	cheap, _ := set.Backend("cheap")
	copied, err := cheap.Driver.Put(ctx, id, rc, int64(len(data)))
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "cheap", id))
	if err != nil || !bytes.Equal(got, data) || copied.Metadata["store"] != "cheap" {
		t.Errorf("copy to the file store: %d bytes, %v, %+v", len(got), err, copied)
	}
	if err := d.Delete(ctx, obj.URL); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := src.Get(ctx, obj.URL, 0, -1); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
}

// TestOpenSingleStoreRBD opens the legacy single store with default_store
// = rbd and its options in [glance_store], and stores an image in it.
func TestOpenSingleStoreRBD(t *testing.T) {
	conf := os.Getenv("GLANCE_TEST_RBD_CONF")
	if conf == "" {
		msg := "no Ceph cluster configured: run eval \"$(scripts/ceph-dev.sh start)\""
		if os.Getenv("GLANCE_TEST_STRICT") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cfg, _ := loadConf(t, "[glance_store]\nstores = file, rbd\ndefault_store = rbd\nfilesystem_store_datadir = $dir/images\n"+
		"rbd_store_ceph_conf = "+conf+"\nrbd_store_user = "+os.Getenv("GLANCE_TEST_RBD_USER")+
		"\nrbd_store_pool = "+os.Getenv("GLANCE_TEST_RBD_POOL")+"\nrbd_store_chunk_size = 2\nrados_connect_timeout = 10\n")
	var logs bytes.Buffer
	set, err := openStores(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := set.Default().(*rbd.Driver)
	if !ok {
		t.Fatalf("default store is a %T", set.Default())
	}
	defer d.Close()
	if set.Multi() || d.ChunkSize() != 2<<20 || strings.Contains(logs.String(), "ignoring") {
		t.Errorf("multi %v, chunk size %d, logs %s", set.Multi(), d.ChunkSize(), logs.String())
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	id := "glance-go-test-" + hex.EncodeToString(rnd[:])
	ctx := context.Background()
	obj, err := set.Default().Put(ctx, id, strings.NewReader("legacy"), 6)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(obj.URL, "/"+os.Getenv("GLANCE_TEST_RBD_POOL")+"/"+id+"/snap") || len(obj.Metadata) != 0 {
		t.Errorf("Put = %+v", obj)
	}
	if _, err := set.ForURL("file:///x"); err != nil {
		t.Errorf("no file store next to rbd: %v", err)
	}
	src, err := set.ForURL(obj.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Delete(ctx, obj.URL); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}
