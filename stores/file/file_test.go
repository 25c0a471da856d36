package file_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>9)
	}
	return b
}

func newDriver(t *testing.T) *file.Driver {
	t.Helper()
	d, err := file.New(file.Config{DataDir: filepath.Join(t.TempDir(), "images")})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// entries lists what the data directory holds.
func entries(t *testing.T, d *file.Driver) []string {
	t.Helper()
	es, err := os.ReadDir(d.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		announce bool
	}{
		{"zero bytes", 0, false},
		{"one byte", 1, true},
		{"one chunk", file.DefaultChunkSize, true},
		{"one chunk and a byte", file.DefaultChunkSize + 1, true},
		{"unknown size", 3*file.DefaultChunkSize + 7, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t)
			ctx := context.Background()
			data := pattern(tc.n)
			size := int64(0)
			if tc.announce {
				size = int64(tc.n)
			}
			obj, err := d.Put(ctx, "img-1", bytes.NewReader(data), size)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			wantURL := "file://" + filepath.Join(d.Dir(), "img-1")
			if obj.URL != wantURL || obj.Size != int64(tc.n) {
				t.Errorf("Put = %q, %d; want %q, %d", obj.URL, obj.Size, wantURL, tc.n)
			}
			if got, err := d.Size(ctx, obj.URL); err != nil || got != int64(tc.n) {
				t.Errorf("Size = %d, %v; want %d", got, err, tc.n)
			}
			rc, err := d.Get(ctx, obj.URL, 0, -1)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, data) {
				t.Errorf("Get returned %d bytes, want the %d written", len(got), tc.n)
			}
			if err := d.Delete(ctx, obj.URL); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := d.Get(ctx, obj.URL, 0, -1); !errors.Is(err, stores.ErrNotFound) {
				t.Errorf("Get after Delete = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestRanges(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	data := pattern(1000)
	obj, err := d.Put(ctx, "r", bytes.NewReader(data), 1000)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		off, n int64
		want   []byte
	}{
		{0, 10, data[:10]},
		{990, -1, data[990:]},
		{995, 100, data[995:]},
		{500, 0, []byte{}},
		{1000, -1, []byte{}},
		{2000, 5, []byte{}},
	}
	for _, tc := range tests {
		rc, err := d.Get(ctx, obj.URL, tc.off, tc.n)
		if err != nil {
			t.Fatalf("Get(%d, %d): %v", tc.off, tc.n, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, tc.want) {
			t.Errorf("Get(%d, %d) = %d bytes, want %d", tc.off, tc.n, len(got), len(tc.want))
		}
	}
}

type failingReader struct{ n int }

var errBroken = errors.New("client went away")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errBroken
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

type cancellingReader struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	k := min(len(p), 4096)
	c.n -= k
	return k, nil
}

func TestPutFailures(t *testing.T) {
	tests := []struct {
		name    string
		reader  func(cancel context.CancelFunc) io.Reader
		size    int64
		wantErr error
	}{
		{"short for announced size", func(context.CancelFunc) io.Reader { return bytes.NewReader(pattern(10)) }, 11, stores.ErrSizeMismatch},
		{"long for announced size", func(context.CancelFunc) io.Reader { return bytes.NewReader(pattern(200000)) }, 100000, stores.ErrSizeMismatch},
		{"reader error kept", func(context.CancelFunc) io.Reader { return &failingReader{n: 100000} }, 0, errBroken},
		{"cancelled", func(c context.CancelFunc) io.Reader { return &cancellingReader{n: 300000, cancel: c} }, 0, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := d.Put(ctx, "x", tc.reader(cancel), tc.size)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Put error = %v, want %v", err, tc.wantErr)
			}
			if es := entries(t, d); len(es) != 0 {
				t.Errorf("failed Put left %v behind", es)
			}
		})
	}
}

func TestExistsAndBadIDs(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	if _, err := d.Put(ctx, "dup", bytes.NewReader([]byte("a")), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, "dup", bytes.NewReader([]byte("b")), 0); !errors.Is(err, stores.ErrExists) {
		t.Errorf("second Put = %v, want ErrExists", err)
	}
	for _, id := range []string{"", ".", "..", "a/b", "../escape"} {
		if _, err := d.Put(ctx, id, bytes.NewReader(nil), 0); err == nil {
			t.Errorf("Put(%q) succeeded", id)
		}
	}
	outside := filepath.Join(filepath.Dir(d.Dir()), "secret")
	if err := os.WriteFile(outside, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"file://" + outside, "file://" + d.Dir() + "/../secret"} {
		if _, err := d.Get(ctx, u, 0, -1); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", u, err)
		}
		if err := d.Delete(ctx, u); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", u, err)
		}
	}
	if _, err := d.Get(ctx, "rbd://a/b", 0, -1); !errors.Is(err, stores.ErrUnknownScheme) {
		t.Errorf("Get(rbd) = %v, want ErrUnknownScheme", err)
	}
	if err := d.Delete(ctx, "file://"+filepath.Join(d.Dir(), "nothing")); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("Delete(missing) = %v, want ErrNotFound", err)
	}
}

func TestFilePerm(t *testing.T) {
	d, err := file.New(file.Config{DataDir: t.TempDir(), FilePerm: 0o640})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := d.Put(context.Background(), "p", bytes.NewReader([]byte("x")), 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(d.Dir(), "p"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640 (%s)", st.Mode().Perm(), obj.URL)
	}
}
