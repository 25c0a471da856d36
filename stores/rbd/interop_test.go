//go:build ceph

package rbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/storetest"
)

// glanceStoreScript drives glance_store's own RBD driver (Debian's
// python3-glance-store): add ID FILE prints the location; get URL FILE
// and delete URL act on one.
const glanceStoreScript = `import io, sys
from oslo_config import cfg
from glance_store import backend, location

conf = cfg.ConfigOpts()
backend.register_opts(conf)
conf([], project="glance")
for k, v in (("stores", ["rbd"]), ("default_store", "rbd"), ("rbd_store_ceph_conf", sys.argv[2]),
             ("rbd_store_user", sys.argv[3]), ("rbd_store_pool", sys.argv[4]), ("rbd_store_chunk_size", 1)):
    conf.set_override(k, v, group="glance_store")
backend.create_stores(conf)
store = backend.get_store_from_scheme("rbd")
mode, arg = sys.argv[1], sys.argv[5]
if mode == "add":
    data = open(sys.argv[6], "rb").read()
    print(store.add(arg, io.BytesIO(data), len(data), "sha256")[0])
elif mode == "get":
    it, _ = store.get(location.get_location_from_uri(arg, conf=conf))
    with open(sys.argv[6], "wb") as f:
        for chunk in it:
            f.write(chunk)
elif mode == "delete":
    store.delete(location.get_location_from_uri(arg, conf=conf))
`

// TestGlanceStoreInterop checks, in the pool itself, that glance_store
// reads and deletes what the driver writes, and the reverse.
func TestGlanceStoreInterop(t *testing.T) {
	cfg := clusterConfig(t)
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import glance_store._drivers.rbd").Run(); err != nil {
		t.Skipf("glance_store's rbd driver is not installed (apt-get install python3-glance-store python3-rbd): %v", err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "gs.py")
	if err := os.WriteFile(script, []byte(glanceStoreScript), 0o644); err != nil {
		t.Fatal(err)
	}
	gs := func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := exec.Command(python, append([]string{script, args[0], cfg.ConfFile, cfg.User, cfg.Pool}, args[1:]...)...)
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("glance_store %s: %v\n%s", args[0], err, ee.Stderr)
			}
			t.Fatalf("glance_store %s: %v", args[0], err)
		}
		return strings.TrimSpace(string(out))
	}
	cfg.ChunkSize = 1 << 20
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var rnd [6]byte
	rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	ioctx, err := d.ioctx(context.Background(), cfg.Pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("glance_store writes", func(t *testing.T) {
		id := "glance-go-interop-gs-" + suffix
		t.Cleanup(func() { removeAll(ioctx, id) })
		data := storetest.Pattern(2<<20 + 12345)
		file := filepath.Join(dir, "in")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		u := gs(t, "add", id, file)
		want, err := d.URL(id)
		if err != nil || u != want {
			t.Errorf("glance_store's location %q, ours %q (%v)", u, want, err)
		}
		if got := read(t, d, u); !bytes.Equal(got, data) {
			t.Fatalf("Get = %d bytes, want the %d glance_store wrote", len(got), len(data))
		}
		if err := d.Delete(ctx, u); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := d.Size(ctx, u); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Size after Delete = %v, want ErrNotFound", err)
		}
	})
	t.Run("glance-go writes", func(t *testing.T) {
		id := "glance-go-interop-go-" + suffix
		t.Cleanup(func() { removeAll(ioctx, id) })
		data := storetest.Pattern(5<<20 + 3)
		obj, err := d.Put(ctx, id, bytes.NewReader(data), 0)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out")
		gs(t, "get", obj.URL, out)
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("glance_store read %d bytes (%v), want the %d written", len(got), err, len(data))
		}
		gs(t, "delete", obj.URL)
		if _, err := d.Size(ctx, obj.URL); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Size after glance_store's delete = %v, want ErrNotFound", err)
		}
	})
}
