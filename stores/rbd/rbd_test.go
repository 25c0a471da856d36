//go:build ceph

package rbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ceph/go-ceph/rados"
	"github.com/ceph/go-ceph/rbd"

	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/storetest"
)

// testChunk keeps the suite's images small: 128 KiB chunks and objects.
const testChunk = 128 << 10

// clusterConfig returns the cluster that scripts/ceph-dev.sh describes in
// the environment, or skips the test (fails it with GLANCE_TEST_STRICT).
func clusterConfig(t *testing.T) Config {
	t.Helper()
	conf := os.Getenv("GLANCE_TEST_RBD_CONF")
	if conf == "" {
		msg := "no Ceph cluster configured: run eval \"$(scripts/ceph-dev.sh start)\" (it sets GLANCE_TEST_RBD_CONF, _USER and _POOL)"
		if os.Getenv("GLANCE_TEST_STRICT") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return Config{
		ConfFile:  conf,
		User:      os.Getenv("GLANCE_TEST_RBD_USER"),
		Pool:      cmp(os.Getenv("GLANCE_TEST_RBD_POOL"), DefaultPool),
		ChunkSize: testChunk,
	}
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9]+`)

// newDriver returns a driver that works in an RBD namespace of its own,
// removed with everything in it when the test ends.
func newDriver(t *testing.T, change func(*Config)) *Driver {
	t.Helper()
	cfg := clusterConfig(t)
	var rnd [4]byte
	rand.Read(rnd[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "-")
	cfg.namespace = "t-" + name[max(0, len(name)-40):] + "-" + hex.EncodeToString(rnd[:])
	if change != nil {
		change(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := d.connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	root, err := conn.OpenIOContext(cfg.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := rbd.NamespaceCreate(root, cfg.namespace); err != nil {
		root.Destroy()
		t.Fatalf("creating RBD namespace %s: %v", cfg.namespace, err)
	}
	t.Cleanup(func() {
		defer root.Destroy()
		defer d.Close()
		ioctx, err := d.ioctx(context.Background(), cfg.Pool)
		if err != nil {
			t.Error(err)
			return
		}
		empty(t, ioctx)
		if err := rbd.NamespaceRemove(root, cfg.namespace); err != nil {
			t.Errorf("removing RBD namespace %s: %v", cfg.namespace, err)
		}
	})
	return d
}

// empty removes every image, clone first, and the trash of ioctx.
func empty(t *testing.T, ioctx *rados.IOContext) {
	t.Helper()
	names, err := rbd.GetImageNames(ioctx)
	if err != nil {
		t.Error(err)
		return
	}
	// clones ("*-clone" here) go before their parents
	slices.SortFunc(names, func(a, b string) int {
		return -strings.Compare(a, b)
	})
	for _, n := range names {
		if err := removeAll(ioctx, n); err != nil {
			t.Errorf("removing RBD image %s: %v", n, err)
		}
	}
	trash, err := rbd.GetTrashList(ioctx)
	if err != nil {
		t.Error(err)
		return
	}
	for _, e := range trash {
		// an image with snapshots must leave the trash to lose them
		err := rbd.TrashRestore(ioctx, e.Id, e.Name)
		if err == nil {
			err = removeAll(ioctx, e.Name)
		}
		if err != nil {
			t.Errorf("emptying the trash: %v", err)
		}
	}
}

func removeAll(ioctx *rados.IOContext, name string) error {
	img, err := rbd.OpenImage(ioctx, name, rbd.NoSnapshot)
	if err != nil {
		return err
	}
	snaps, err := img.GetSnapshotNames()
	for _, s := range snaps {
		if err == nil {
			err = removeSnap(img, s.Name)
		}
	}
	img.Close()
	if err != nil {
		return err
	}
	return rbd.RemoveImage(ioctx, name)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.Driver { return newDriver(t, nil) })
}

func TestConformanceOneWriteInFlight(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.Driver {
		return newDriver(t, func(c *Config) { c.InFlight = 1; c.ThinProvisioning = true })
	})
}

func put(t *testing.T, d *Driver, id string, data []byte) string {
	t.Helper()
	obj, err := d.Put(context.Background(), id, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Put(%s): %v", id, err)
	}
	return obj.URL
}

func read(t *testing.T, d *Driver, url string) []byte {
	t.Helper()
	rc, err := d.Get(context.Background(), url, 0, -1)
	if err != nil {
		t.Fatalf("Get(%s): %v", url, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return b
}

func TestLocation(t *testing.T) {
	d := newDriver(t, nil)
	_, fsid, err := d.connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	data := storetest.Pattern(3*testChunk + 1)
	url := put(t, d, "0b6f8c2e-img", data)
	if want := "rbd://" + fsid + "/" + d.cfg.Pool + "/0b6f8c2e-img/snap"; url != want {
		t.Errorf("location = %q, want %q", url, want)
	}
	ioctx, err := d.ioctx(context.Background(), d.cfg.Pool)
	if err != nil {
		t.Fatal(err)
	}
	img, err := rbd.OpenImageReadOnly(ioctx, "0b6f8c2e-img", rbd.NoSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	info, err := img.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != uint64(len(data)) || info.Order != 17 {
		t.Errorf("image size %d, order %d; want %d, 17", info.Size, info.Order, len(data))
	}
	protected, err := img.GetSnapshot(SnapName).IsProtected()
	if err != nil || !protected {
		t.Errorf("snapshot %q protected = %v, %v; want true", SnapName, protected, err)
	}
	// glance_store's short form names the image in the store's pool and
	// reads its head; like glance_store, the driver ignores the fsid.
	for _, u := range []string{"rbd://0b6f8c2e-img", "rbd://00000000-0000-0000-0000-000000000000/" + d.cfg.Pool + "/0b6f8c2e-img/snap"} {
		if got := read(t, d, u); !bytes.Equal(got, data) {
			t.Errorf("Get(%s) = %d bytes, want %d", u, len(got), len(data))
		}
	}
	for _, u := range []string{
		"rbd://" + fsid + "/" + d.cfg.Pool + "/nosuch/snap",
		"rbd://" + fsid + "/nosuchpool/0b6f8c2e-img/snap",
		"rbd://nosuch",
	} {
		if _, err := d.Size(context.Background(), u); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Size(%s) = %v, want ErrNotFound", u, err)
		}
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		want    location
		wantErr error
	}{
		{"rbd://f/p/i/s", location{"f", "p", "i", "s"}, nil},
		{"RBD://f/p/i/s", location{"f", "p", "i", "s"}, nil},
		{"rbd://image", location{image: "image"}, nil},
		{"rbd://f%2Fx/p%20q/i%40j/s", location{"f/x", "p q", "i@j", "s"}, nil},
		{"rbd://f/p/i", location{}, stores.ErrNotFound},
		{"rbd://f/p/i/s/x", location{}, stores.ErrNotFound},
		{"rbd://f//i/s", location{}, stores.ErrNotFound},
		{"rbd://", location{}, stores.ErrNotFound},
		{"file:///tmp/x", location{}, stores.ErrUnknownScheme},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			got, err := parseURL(tc.url)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("parseURL = %+v, %v; want %+v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	l := location{"a b", "p/q", "i:d", "snap"}
	if got, want := l.String(), "rbd://a%20b/p%2Fq/i%3Ad/snap"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if back, err := parseURL(l.String()); err != nil || back != l {
		t.Errorf("parseURL(String()) = %+v, %v; want %+v", back, err, l)
	}
}

func TestCloneKeepsImage(t *testing.T) {
	d := newDriver(t, nil)
	ctx := context.Background()
	data := storetest.Pattern(2*testChunk + 5)
	url := put(t, d, "parent", data)
	ioctx, err := d.ioctx(context.Background(), d.cfg.Pool)
	if err != nil {
		t.Fatal(err)
	}
	opts := rbd.NewRbdImageOptions()
	defer opts.Destroy()
	if err := rbd.CloneImage(ioctx, "parent", SnapName, ioctx, "parent-clone", opts); err != nil {
		t.Fatalf("clone: %v", err)
	}
	if err := d.Delete(ctx, url); !errors.Is(err, stores.ErrInUse) {
		t.Fatalf("Delete with a clone = %v, want ErrInUse", err)
	}
	if got := read(t, d, url); !bytes.Equal(got, data) {
		t.Fatalf("after the refused Delete, Get = %d bytes, want the %d stored", len(got), len(data))
	}
	img, err := rbd.OpenImageReadOnly(ioctx, "parent", rbd.NoSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	protected, err := img.GetSnapshot(SnapName).IsProtected()
	img.Close()
	if err != nil || !protected {
		t.Errorf("after the refused Delete, snap protected = %v, %v; want true", protected, err)
	}
	if err := rbd.RemoveImage(ioctx, "parent-clone"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, url); err != nil {
		t.Fatalf("Delete without the clone: %v", err)
	}
	if left, err := d.Orphans(); err != nil || len(left) > 0 {
		t.Errorf("left behind: %q, %v", left, err)
	}
}

func TestOtherSnapshotsGoToTrash(t *testing.T) {
	d := newDriver(t, nil)
	url := put(t, d, "snapped", storetest.Pattern(100))
	ioctx, err := d.ioctx(context.Background(), d.cfg.Pool)
	if err != nil {
		t.Fatal(err)
	}
	img, err := rbd.OpenImage(ioctx, "snapped", rbd.NoSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	_, err = img.CreateSnapshot("backup")
	img.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(context.Background(), url); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if names, err := rbd.GetImageNames(ioctx); err != nil || len(names) > 0 {
		t.Errorf("images after Delete = %q, %v; want none", names, err)
	}
	trash, err := rbd.GetTrashList(ioctx)
	if err != nil || len(trash) != 1 || trash[0].Name != "snapped" {
		t.Errorf("trash = %+v, %v; want the image", trash, err)
	}
	if _, err := d.Size(context.Background(), url); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("Size after Delete = %v, want ErrNotFound", err)
	}
}

// allocated returns the bytes of image name that hold data.
func allocated(t *testing.T, ioctx *rados.IOContext, name string) uint64 {
	t.Helper()
	img, err := rbd.OpenImageReadOnly(ioctx, name, rbd.NoSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	size, err := img.GetSize()
	if err != nil {
		t.Fatal(err)
	}
	var used uint64
	err = img.DiffIterate(rbd.DiffIterateConfig{
		Length: size,
		Callback: func(off, n uint64, exists int, _ any) int {
			if exists != 0 {
				used += n
			}
			return 0
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return used
}

func TestThinProvisioning(t *testing.T) {
	zeros := make([]byte, 4*testChunk)
	data := slices.Concat(storetest.Pattern(testChunk), zeros, storetest.Pattern(7))
	tests := []struct {
		name      string
		thin      bool
		size      int64
		wantBytes uint64
	}{
		{"thin", true, int64(len(data)), testChunk + 7},
		{"thin, size unknown", true, 0, testChunk + 7},
		{"thick", false, int64(len(data)), uint64(len(data))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, func(c *Config) { c.ThinProvisioning = tc.thin })
			obj, err := d.Put(context.Background(), "img", bytes.NewReader(data), tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if got := read(t, d, obj.URL); !bytes.Equal(got, data) {
				t.Fatalf("Get = %d bytes, want the %d stored", len(got), len(data))
			}
			ioctx, err := d.ioctx(context.Background(), d.cfg.Pool)
			if err != nil {
				t.Fatal(err)
			}
			if got := allocated(t, ioctx, "img"); got != tc.wantBytes {
				t.Errorf("allocated %d bytes, want %d", got, tc.wantBytes)
			}
		})
	}
}

func TestOneConnection(t *testing.T) {
	d := newDriver(t, nil)
	c1, _, err := d.connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	put(t, d, "x", storetest.Pattern(10))
	c2, _, err := d.connect(context.Background())
	if err != nil || c1 != c2 {
		t.Errorf("the driver opened a second connection (%p, then %p, %v)", c1, c2, err)
	}
}

// BenchmarkPut writes 256 MiB images in 8 MiB chunks, with one write in
// flight as glance_store does, and with several.
func BenchmarkPut(b *testing.B) {
	data := storetest.Pattern(256 << 20)
	for _, inflight := range []int{1, DefaultInFlight} {
		b.Run(strconv.Itoa(inflight)+" in flight", func(b *testing.B) {
			d := newBenchDriver(b, inflight)
			b.SetBytes(int64(len(data)))
			for i := range b.N {
				obj, err := d.Put(context.Background(), "bench-"+strconv.Itoa(i), bytes.NewReader(data), 0)
				if err != nil {
					b.Fatal(err)
				}
				if err := d.Delete(context.Background(), obj.URL); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGet reads a 256 MiB image.
func BenchmarkGet(b *testing.B) {
	data := storetest.Pattern(256 << 20)
	d := newBenchDriver(b, DefaultInFlight)
	obj, err := d.Put(context.Background(), "bench-get", bytes.NewReader(data), int64(len(data)))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Delete(context.Background(), obj.URL)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		rc, err := d.Get(context.Background(), obj.URL, 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// newBenchDriver returns a driver on the pool itself with the default
// chunk size; the benchmarks remove what they write.
func newBenchDriver(b *testing.B, inflight int) *Driver {
	conf := os.Getenv("GLANCE_TEST_RBD_CONF")
	if conf == "" {
		b.Skip("no Ceph cluster configured: run eval \"$(scripts/ceph-dev.sh start)\"")
	}
	d, err := New(Config{ConfFile: conf, User: os.Getenv("GLANCE_TEST_RBD_USER"),
		Pool: cmp(os.Getenv("GLANCE_TEST_RBD_POOL"), DefaultPool), InFlight: inflight})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// TestBufferBudget has many Puts and Gets at once on one driver whose
// budget is six chunk buffers: past the budget each transfer holds one
// buffer at most, all data reads back, and at the end every buffer is back
// and no more than the budget is kept.
func TestBufferBudget(t *testing.T) {
	const budget = 6
	d := newDriver(t, func(c *Config) { c.InFlight = 4; c.BufferBudget = budget * testChunk })
	if d.pool.max != budget {
		t.Fatalf("pool of %d buffers, want %d", d.pool.max, budget)
	}
	// alone, a Put gets InFlight buffers
	first := storetest.Pattern(10*testChunk + 3)
	firstURL := put(t, d, "first", first)
	if exist, inUse, peak := d.pool.stats(); exist != 4 || inUse != 0 || peak != 4 {
		t.Fatalf("after one Put: %d buffers, %d in use, peak %d; want 4, 0, 4", exist, inUse, peak)
	}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			data := storetest.Pattern(10*testChunk + i*977)
			data[0] = byte(i)
			id := "img-" + strconv.Itoa(i)
			obj, err := d.Put(context.Background(), id, bytes.NewReader(data), int64(len(data)*(i%2)))
			if err != nil {
				t.Errorf("Put(%s): %v", id, err)
				return
			}
			rc, err := d.Get(context.Background(), obj.URL, 0, -1)
			if err != nil {
				t.Errorf("Get(%s): %v", id, err)
				return
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s read back %d bytes, %v; want the %d stored", id, len(got), err, len(data))
			}
		})
		wg.Go(func() {
			if got := read(t, d, firstURL); !bytes.Equal(got, first) {
				t.Errorf("reading the first image: %d bytes, want %d", len(got), len(first))
			}
		})
	}
	wg.Wait()
	// 24 transfers: the budget, and one buffer for each transfer past it
	if exist, inUse, peak := d.pool.stats(); exist > budget || inUse != 0 || peak > budget+24 {
		t.Errorf("%d buffers, %d in use, peak %d; want at most %d kept, 0 in use, a peak of at most %d",
			exist, inUse, peak, budget, budget+24)
	}
}

// TestBufferPoolExhausted holds every buffer of the pool and checks that a
// Put and a Get still finish, each with a buffer made past the budget and
// freed afterwards: a transfer never waits for others, however slow their
// clients.
func TestBufferPoolExhausted(t *testing.T) {
	d := newDriver(t, func(c *Config) { c.InFlight = 1; c.BufferBudget = 1 })
	data := storetest.Pattern(3 * testChunk)
	url := put(t, d, "kept", data)
	held, err := d.pool.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	put(t, d, "another", storetest.Pattern(2*testChunk))
	if got := read(t, d, url); !bytes.Equal(got, data) {
		t.Errorf("Get with the pool held = %d bytes, want the %d put", len(got), len(data))
	}
	d.pool.put(held)
	if exist, inUse, _ := d.pool.stats(); exist > 1 || inUse != 0 {
		t.Errorf("%d buffers kept, %d in use; want at most 1, 0 in use", exist, inUse)
	}
}
