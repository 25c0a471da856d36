package location_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/stores"
)

const imgID = "6f0c6a3e-1f3b-4c55-9a43-6f2d0c1b2a10"

type fixture struct {
	db   *proxytest.DB
	drv  *proxytest.Driver
	repo domain.Repo
}

func queued(mod func(*domain.Meta)) domain.Meta {
	now := time.Now().UTC().Truncate(time.Second)
	m := domain.Meta{
		ID: imgID, Status: domain.StatusQueued, Visibility: domain.VisibilityShared,
		Owner: domain.Ptr("p1"), DiskFormat: domain.Ptr("raw"), ContainerFormat: domain.Ptr("bare"),
		CreatedAt: now, UpdatedAt: now, Properties: map[string]string{},
	}
	if mod != nil {
		mod(&m)
	}
	return m
}

// newFixture builds db → location over one seeded image. inner, when set,
// wraps the db repo the layer saves status changes to.
func newFixture(t *testing.T, m domain.Meta, opts location.Options, inner func(domain.Repo) domain.Repo) *fixture {
	t.Helper()
	f := &fixture{db: proxytest.NewDB(), drv: proxytest.NewDriver()}
	f.db.Put(m)
	var in domain.Repo = f.db.Repo(nil)
	if inner != nil {
		in = inner(in)
	}
	f.repo, _ = proxies.Stack(f.db.Repo(nil), domain.CoreFactory{}, location.Layer(proxytest.Stores{D: f.drv}, in, opts))
	return f
}

func (f *fixture) get(t *testing.T) domain.Image {
	t.Helper()
	img, err := f.repo.Get(context.Background(), imgID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return img
}

func (f *fixture) stored(t *testing.T) domain.Meta {
	t.Helper()
	m, ok := f.db.Image(imgID)
	if !ok {
		t.Fatal("image vanished from the db")
	}
	return m
}

// assertQueuedClean checks the state every failed upload must leave.
func (f *fixture) assertQueuedClean(t *testing.T) {
	t.Helper()
	m := f.stored(t)
	if m.Status != domain.StatusQueued {
		t.Errorf("stored status = %s, want queued", m.Status)
	}
	if m.Size != nil || m.Checksum != nil || m.HashValue != nil || len(m.Locations) != 0 {
		t.Errorf("stored record keeps upload results: size=%v checksum=%v hash=%v locations=%v",
			m.Size, m.Checksum, m.HashValue, m.Locations)
	}
	if objs := f.drv.Objects(); len(objs) != 0 {
		t.Errorf("objects left in the store: %v", objs)
	}
}

func hexsum(h interface{ Sum([]byte) []byte }) string { return hex.EncodeToString(h.Sum(nil)) }

func TestSetDataSuccess(t *testing.T) {
	tests := []struct {
		name     string
		n        int64
		announce bool
		algo     string
		disk     string
		wantVS   bool
	}{
		{"empty: a virtual size of 0 is not recorded", 0, false, "", "raw", false},
		{"one byte", 1, true, "", "raw", true},
		{"several chunks, size announced", 3<<20 + 5, true, "", "raw", true},
		{"chunked upload", 2<<20 + 1, false, "", "qcow2", false},
		{"sha256", 1000, true, "sha256", "raw", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, queued(func(m *domain.Meta) { m.DiskFormat = domain.Ptr(tc.disk) }),
				location.Options{HashAlgo: tc.algo}, nil)
			img := f.get(t)
			size := int64(0)
			if tc.announce {
				size = tc.n
			}
			if err := img.SetData(context.Background(), proxytest.NewReader(tc.n, nil), domain.DataIn{Size: size}); err != nil {
				t.Fatalf("SetData: %v", err)
			}
			data := proxytest.Bytes(tc.n)
			md := md5.New()
			md.Write(data)
			var mh interface{ Sum([]byte) []byte }
			wantAlgo := "sha512"
			if tc.algo == "sha256" {
				h := sha256.New()
				h.Write(data)
				mh, wantAlgo = h, "sha256"
			} else {
				h := sha512.New()
				h.Write(data)
				mh = h
			}
			for _, m := range []domain.Meta{img.Meta(), f.stored(t)} {
				if m.Status != domain.StatusActive {
					t.Errorf("status = %s, want active", m.Status)
				}
				if m.Size == nil || *m.Size != tc.n {
					t.Errorf("size = %v, want %d", m.Size, tc.n)
				}
				if m.Checksum == nil || *m.Checksum != hexsum(md) {
					t.Errorf("checksum = %v, want %s", m.Checksum, hexsum(md))
				}
				if m.HashAlgo == nil || *m.HashAlgo != wantAlgo || m.HashValue == nil || *m.HashValue != hexsum(mh) {
					t.Errorf("os_hash = %v/%v, want %s/%s", m.HashAlgo, m.HashValue, wantAlgo, hexsum(mh))
				}
				if gotVS := m.VirtualSize != nil && *m.VirtualSize == tc.n; gotVS != tc.wantVS {
					t.Errorf("virtual_size = %v, want set=%v", m.VirtualSize, tc.wantVS)
				}
				if len(m.Locations) != 1 || m.Locations[0].URL != f.drv.URL(imgID) || m.Locations[0].Status != "active" {
					t.Errorf("locations = %+v", m.Locations)
				}
			}
			got, ok := f.drv.Bytes(imgID)
			if !ok || !bytes.Equal(got, data) {
				t.Errorf("stored %d bytes (ok=%v), want %d identical bytes", len(got), ok, len(data))
			}
			rc, err := img.Data(context.Background(), 0, -1)
			if err != nil {
				t.Fatalf("Data: %v", err)
			}
			back, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(back, data) {
				t.Errorf("Data returned %d bytes, want the %d uploaded", len(back), len(data))
			}
		})
	}
}

// cancelReader cancels its context after n bytes and then fails.
type cancelReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// hookReader runs fn once after n bytes.
type hookReader struct {
	r    io.Reader
	n    int64
	fn   func()
	done bool
}

func (h *hookReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n -= int64(n)
	if h.n <= 0 && !h.done {
		h.done = true
		h.fn()
	}
	return n, err
}

func TestSetDataFailures(t *testing.T) {
	overLimit := domain.Errorf(domain.ErrOverLimit, "The incoming image is too large: The provided image is too large.")
	tests := []struct {
		name    string
		meta    func(*domain.Meta)
		inner   func(domain.Repo) domain.Repo
		driver  func(*proxytest.Driver)
		reader  func(ctx context.Context, cancel context.CancelFunc, f *fixture) io.Reader
		size    int64
		wantErr error
		wantMsg string
		// untouched: the refusal happens before the upload starts, so the
		// record must be exactly as seeded.
		untouched bool
	}{
		{
			name: "active image", meta: func(m *domain.Meta) { m.Status = domain.StatusActive },
			wantErr: domain.ErrConflict, wantMsg: "Image status transition from active to saving is not allowed",
			untouched: true,
		},
		{
			name: "formats unset", meta: func(m *domain.Meta) { m.DiskFormat = nil },
			wantErr:   domain.ErrInvalid,
			wantMsg:   "Properties disk_format, container_format must be set prior to saving data.",
			untouched: true,
		},
		{
			name: "reader fails mid-stream",
			reader: func(context.Context, context.CancelFunc, *fixture) io.Reader {
				return proxytest.NewReader(2<<20+17, io.ErrUnexpectedEOF)
			},
			wantErr: domain.ErrInvalid,
		},
		{
			name: "quota error from the reader keeps its kind",
			reader: func(context.Context, context.CancelFunc, *fixture) io.Reader {
				return proxytest.NewReader(1<<20+3, overLimit)
			},
			wantErr: domain.ErrOverLimit, wantMsg: overLimit.Error(),
		},
		{
			name:   "store full after 1 MiB",
			driver: func(d *proxytest.Driver) { d.PutFailsAfter = 1 << 20 },
			reader: func(context.Context, context.CancelFunc, *fixture) io.Reader {
				return proxytest.NewReader(3<<20, nil)
			},
			wantErr: domain.ErrOverLimit,
		},
		{
			name:   "store fails with an unknown error",
			driver: func(d *proxytest.Driver) { d.PutFailsAfter, d.PutErr = 10, errors.New("disk on fire") },
			reader: func(context.Context, context.CancelFunc, *fixture) io.Reader {
				return proxytest.NewReader(100, nil)
			},
			wantErr: domain.ErrUnavailable,
		},
		{
			name: "short stream for the announced size",
			reader: func(context.Context, context.CancelFunc, *fixture) io.Reader {
				return proxytest.NewReader(50, nil)
			},
			size: 100, wantErr: domain.ErrInvalid,
		},
		{
			name: "long stream for the announced size",
			reader: func(context.Context, context.CancelFunc, *fixture) io.Reader {
				return proxytest.NewReader(2<<20, nil)
			},
			size: 1 << 20, wantErr: domain.ErrInvalid,
		},
		{
			name:  "final save fails",
			inner: func(r domain.Repo) domain.Repo { return &proxytest.FaultRepo{Repo: r, SaveFailsAt: 2} },
			reader: func(context.Context, context.CancelFunc, *fixture) io.Reader {
				return proxytest.NewReader(1<<20+1, nil)
			},
			wantErr: domain.ErrUnavailable,
		},
		{
			name: "context cancelled mid-stream",
			reader: func(_ context.Context, cancel context.CancelFunc, _ *fixture) io.Reader {
				return &cancelReader{r: proxytest.NewReader(4<<20, nil), n: 1<<20 + 9, cancel: cancel}
			},
			wantErr: domain.ErrUnavailable,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seed := queued(tc.meta)
			f := newFixture(t, seed, location.Options{}, tc.inner)
			if tc.driver != nil {
				tc.driver(f.drv)
			}
			img := f.get(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var r io.Reader = proxytest.NewReader(10, nil)
			if tc.reader != nil {
				r = tc.reader(ctx, cancel, f)
			}
			err := img.SetData(ctx, r, domain.DataIn{Size: tc.size})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetData error = %v, want kind %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
			}
			if tc.untouched {
				if got := f.stored(t); got.Status != seed.Status || f.db.Saves() != 0 {
					t.Errorf("refused upload changed the record: status %s, %d saves", got.Status, f.db.Saves())
				}
				return
			}
			f.assertQueuedClean(t)
			if m := img.Meta(); m.Status != domain.StatusQueued || m.Size != nil {
				t.Errorf("image in memory: status %s size %v, want queued without size", m.Status, m.Size)
			}
		})
	}
}

func TestSetDataExistingObjectIsKept(t *testing.T) {
	f := newFixture(t, queued(nil), location.Options{}, nil)
	if _, err := f.drv.Put(context.Background(), imgID, bytes.NewReader([]byte("other")), 0); err != nil {
		t.Fatal(err)
	}
	err := f.get(t).SetData(context.Background(), proxytest.NewReader(10, nil), domain.DataIn{Size: 0})
	if !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("error = %v, want ErrConflict", err)
	}
	if got, _ := f.drv.Bytes(imgID); string(got) != "other" {
		t.Errorf("the object that was already there was touched: %q", got)
	}
	if m := f.stored(t); m.Status != domain.StatusQueued {
		t.Errorf("status = %s, want queued", m.Status)
	}
}

func TestSetDataImageDeletedMeanwhile(t *testing.T) {
	f := newFixture(t, queued(nil), location.Options{}, nil)
	img := f.get(t)
	r := &hookReader{r: proxytest.NewReader(2<<20, nil), n: 1 << 20, fn: func() {
		m, _ := f.db.Image(imgID)
		m.Status = domain.StatusDeleted
		now := time.Now()
		m.DeletedAt = &now
		f.db.Put(m)
	}}
	err := img.SetData(context.Background(), r, domain.DataIn{Size: 0})
	if !errors.Is(err, domain.ErrGone) {
		t.Fatalf("error = %v, want ErrGone", err)
	}
	want := fmt.Sprintf("Image %s could not be found after upload. The image may have been deleted during the upload.", imgID)
	if err.Error() != want {
		t.Errorf("message = %q, want %q", err.Error(), want)
	}
	if objs := f.drv.Objects(); len(objs) != 0 {
		t.Errorf("data of the deleted image left behind: %v", objs)
	}
}

func TestSetDataConcurrent(t *testing.T) {
	f := newFixture(t, queued(nil), location.Options{}, nil)
	a, b := f.get(t), f.get(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for k, img := range []domain.Image{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = img.SetData(context.Background(), proxytest.NewReader(3<<20, nil), domain.DataIn{Size: 0})
		}()
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, domain.ErrConflict):
			conflict++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 || conflict != 1 {
		t.Fatalf("got %d successes and %d conflicts (%v), want one of each", ok, conflict, errs)
	}
	if m := f.stored(t); m.Status != domain.StatusActive || m.Size == nil || *m.Size != 3<<20 {
		t.Errorf("stored status %s size %v, want active with 3 MiB", m.Status, m.Size)
	}
	if objs := f.drv.Objects(); len(objs) != 1 {
		t.Errorf("objects = %v, want exactly one", objs)
	}
}

func withData(m *domain.Meta) {
	m.Status = domain.StatusActive
	m.Size = domain.Ptr(int64(100))
	m.Locations = []domain.Location{{URL: "mem://" + imgID, Status: "active"}}
}

func TestData(t *testing.T) {
	tests := []struct {
		name    string
		meta    func(*domain.Meta)
		object  bool
		getErr  error
		off, n  int64
		want    []byte
		wantErr error
	}{
		{name: "whole", meta: withData, object: true, off: 0, n: -1, want: proxytest.Bytes(100)},
		{name: "range", meta: withData, object: true, off: 10, n: 5, want: proxytest.Bytes(15)[10:]},
		{name: "no location", off: 0, n: -1, wantErr: domain.ErrNoData},
		{name: "object missing", meta: withData, off: 0, n: -1, wantErr: domain.ErrNoData},
		{name: "deleted location skipped", meta: func(m *domain.Meta) {
			withData(m)
			m.Locations[0].Status = "deleted"
		}, object: true, n: -1, wantErr: domain.ErrNoData},
		{name: "unknown scheme", meta: func(m *domain.Meta) {
			withData(m)
			m.Locations[0].URL = "rbd://x/y/z/snap"
		}, n: -1, wantErr: domain.ErrUnavailable},
		{name: "store down", meta: withData, object: true, getErr: errors.New("boom"), n: -1, wantErr: domain.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, queued(tc.meta), location.Options{}, nil)
			if tc.object {
				if _, err := f.drv.Put(context.Background(), imgID, proxytest.NewReader(100, nil), 100); err != nil {
					t.Fatal(err)
				}
			}
			f.drv.GetErr = tc.getErr
			rc, err := f.get(t).Data(context.Background(), tc.off, tc.n)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr != nil && rc != nil) {
				t.Fatalf("Data error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, tc.want) {
				t.Errorf("Data = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name       string
		meta       func(*domain.Meta)
		deleteErr  error
		wantErr    error
		wantMsg    string
		wantObject bool // the data must still be there afterwards
	}{
		{name: "deletes data", meta: withData},
		{name: "missing data is fine", meta: withData, deleteErr: fmt.Errorf("%w: gone", stores.ErrNotFound), wantObject: true},
		{name: "in use", meta: withData, deleteErr: fmt.Errorf("%w: has clones", stores.ErrInUse),
			wantErr: domain.ErrConflict, wantObject: true,
			wantMsg: "Image " + imgID + " could not be deleted because it is in use: In use: has clones"},
		{name: "store down", meta: withData, deleteErr: errors.New("timeout"), wantErr: domain.ErrUnavailable, wantObject: true},
		{name: "protected", meta: func(m *domain.Meta) { withData(m); m.Protected = true },
			wantErr: domain.ErrForbidden, wantObject: true,
			wantMsg: "Image " + imgID + " is protected and cannot be deleted."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, queued(tc.meta), location.Options{}, nil)
			if _, err := f.drv.Put(context.Background(), imgID, proxytest.NewReader(100, nil), 100); err != nil {
				t.Fatal(err)
			}
			f.drv.DeleteErr = tc.deleteErr
			img := f.get(t)
			before := img.Meta()
			err := img.Delete(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Delete error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
			}
			if _, ok := f.drv.Bytes(imgID); ok != tc.wantObject {
				t.Errorf("object present = %v, want %v", ok, tc.wantObject)
			}
			after := img.Meta()
			if tc.wantErr != nil {
				if after.Status != before.Status || after.DeletedAt != nil {
					t.Errorf("failed delete changed the image: status %s deleted_at %v", after.Status, after.DeletedAt)
				}
				return
			}
			if after.Status != domain.StatusDeleted {
				t.Errorf("status = %s, want deleted", after.Status)
			}
		})
	}
}

func TestHashAlgos(t *testing.T) {
	for _, name := range []string{"md5", "sha1", "sha256", "sha512", "sha3_256"} {
		if !location.ValidHashAlgo(name) {
			t.Errorf("ValidHashAlgo(%q) = false", name)
		}
	}
	if location.ValidHashAlgo("crc32") {
		t.Error("ValidHashAlgo(crc32) = true")
	}
}
