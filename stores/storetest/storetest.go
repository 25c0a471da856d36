// Package storetest is the conformance suite every store driver passes:
// Run for drivers that store data, RunReadOnly for drivers that only serve
// what is already there (http). A driver's own test calls one of them with
// a constructor and adds only what is peculiar to it.
//
// Optional methods let the suite look further:
//
//	ChunkSize() int               // sizes the "one chunk" cases (64 KiB otherwise)
//	Orphans() ([]string, error)   // partial data a failed Put might leave; must be empty
//	stores.Discarder, stores.Lister // checked on what Put stored
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/glance-go/glance-go/stores"
)

// DefaultChunkSize sizes the chunk cases of a driver without a ChunkSize
// method.
const DefaultChunkSize = 64 << 10

// chunkSizer and orphaner are the optional methods the suite uses.
type chunkSizer interface{ ChunkSize() int }

type orphaner interface{ Orphans() ([]string, error) }

// Pattern returns n bytes of data that repeat only after 251 bytes and hold
// no long run of zeros.
func Pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251 + 1)
	}
	return b
}

func chunkOf(d stores.Driver) int {
	if c, ok := stores.Unwrap(d).(chunkSizer); ok && c.ChunkSize() > 0 {
		return c.ChunkSize()
	}
	return DefaultChunkSize
}

// readAll reads the object at url from off for n bytes.
func readAll(t *testing.T, d stores.Driver, url string, off, n int64) ([]byte, error) {
	t.Helper()
	rc, err := d.Get(context.Background(), url, off, n)
	if err != nil {
		return nil, err
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return got, err
}

func checkContent(t *testing.T, d stores.Driver, url string, want []byte) {
	t.Helper()
	got, err := readAll(t, d, url, 0, -1)
	if err != nil {
		t.Fatalf("Get(%s): %v", url, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%s) = %d bytes (%s), want %d bytes", url, len(got), diff(got, want), len(want))
	}
	size, err := d.Size(context.Background(), url)
	if err != nil || size != int64(len(want)) {
		t.Fatalf("Size(%s) = %d, %v; want %d", url, size, err, len(want))
	}
}

// diff describes where got first differs from want.
func diff(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d", i)
		}
	}
	return "one is a prefix of the other"
}

// checkURL checks that a location URL uses one of the driver's schemes.
func checkURL(t *testing.T, d stores.Driver, url string) {
	t.Helper()
	sc, _, ok := strings.Cut(url, "://")
	if !ok || !slices.Contains(d.Schemes(), strings.ToLower(sc)) {
		t.Errorf("location %q does not use one of the driver's schemes %q", url, d.Schemes())
	}
}

// checkNothingLeft checks that a failed Put of id left nothing: no partial
// data the driver reports, and the id is free for a new Put.
func checkNothingLeft(t *testing.T, d stores.Driver, id string) {
	t.Helper()
	if o, ok := stores.Unwrap(d).(orphaner); ok {
		left, err := o.Orphans()
		if err != nil {
			t.Fatalf("Orphans: %v", err)
		}
		if len(left) > 0 {
			t.Errorf("the failed Put left partial data: %q", left)
		}
	}
	data := Pattern(10)
	obj, err := d.Put(context.Background(), id, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Put(%s) after a failed Put = %v, want success", id, err)
	}
	checkContent(t, d, obj.URL, data)
}

// rangeCases are ranged reads of an object of size bytes.
func rangeCases(size int64) []struct {
	name   string
	off, n int64
	from   int64
	to     int64 // exclusive
} {
	return []struct {
		name   string
		off, n int64
		from   int64
		to     int64
	}{
		{"whole", 0, -1, 0, size},
		{"head", 0, 10, 0, 10},
		{"middle", 7, 100, 7, 107},
		{"to the end", 10, -1, 10, size},
		{"last byte", size - 1, -1, size - 1, size},
		{"last bytes exactly", size - 5, 5, size - 5, size},
		{"length past the end is clamped", size - 5, 100, size - 5, size},
		{"zero length", 3, 0, 3, 3},
		{"offset at the end", size, -1, size, size},
		{"offset at the end with a length", size, 10, size, size},
		{"offset past the end", size + 1000, 5, size, size},
	}
}

func checkRanges(t *testing.T, d stores.Driver, url string, data []byte) {
	for _, tc := range rangeCases(int64(len(data))) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, d, url, tc.off, tc.n)
			if err != nil {
				t.Fatalf("Get(off %d, n %d): %v", tc.off, tc.n, err)
			}
			if want := data[tc.from:tc.to]; !bytes.Equal(got, want) {
				t.Errorf("Get(off %d, n %d) = %d bytes, want bytes %d to %d (%d)", tc.off, tc.n, len(got), tc.from, tc.to, len(want))
			}
		})
	}
}

// Run runs the conformance suite against a driver that stores data.
// newDriver returns an empty driver; it is called once per subtest.
func Run(t *testing.T, newDriver func(t *testing.T) stores.Driver) {
	t.Run("round trips", func(t *testing.T) { roundTrips(t, newDriver) })
	t.Run("ranges", func(t *testing.T) {
		d := newDriver(t)
		data := Pattern(2*chunkOf(d) + 3)
		obj, err := d.Put(context.Background(), "ranged", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		checkRanges(t, d, obj.URL, data)
	})
	t.Run("missing object", func(t *testing.T) {
		d := newDriver(t)
		ctx := context.Background()
		obj, err := d.Put(ctx, "gone", bytes.NewReader([]byte("x")), 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Delete(ctx, obj.URL); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		checkMissing(t, d, obj.URL)
		if err := d.Delete(ctx, obj.URL); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("second Delete = %v, want ErrNotFound", err)
		}
	})
	t.Run("duplicate id", func(t *testing.T) {
		d := newDriver(t)
		ctx := context.Background()
		orig := Pattern(1000)
		obj, err := d.Put(ctx, "dup", bytes.NewReader(orig), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Put(ctx, "dup", bytes.NewReader([]byte("other data")), 10); !errors.Is(err, stores.ErrExists) {
			t.Errorf("second Put = %v, want ErrExists", err)
		}
		checkContent(t, d, obj.URL, orig)
	})
	t.Run("failed puts", func(t *testing.T) { failedPuts(t, newDriver) })
	t.Run("discard and list", func(t *testing.T) {
		d := newDriver(t)
		ctx := context.Background()
		dis, canDiscard := stores.Unwrap(d).(stores.Discarder)
		lis, canList := stores.Unwrap(d).(stores.Lister)
		if !canDiscard && !canList {
			t.Skip("the driver implements neither stores.Discarder nor stores.Lister")
		}
		var urls []string
		for _, id := range []string{"b", "a"} {
			obj, err := d.Put(ctx, id, bytes.NewReader(Pattern(10)), 10)
			if err != nil {
				t.Fatal(err)
			}
			urls = append(urls, obj.URL)
		}
		if canList {
			if ids, err := lis.IDs(ctx); err != nil || !slices.Equal(ids, []string{"a", "b"}) {
				t.Errorf("IDs = %q, %v; want [a b]", ids, err)
			}
		}
		if canDiscard {
			if err := dis.Discard(ctx, "b"); err != nil {
				t.Fatalf("Discard: %v", err)
			}
			checkMissing(t, d, urls[0])
			checkContent(t, d, urls[1], Pattern(10))
			if err := dis.Discard(ctx, "b"); err != nil {
				t.Errorf("Discard of nothing = %v, want nil", err)
			}
		}
	})
	t.Run("concurrent puts", func(t *testing.T) {
		d := newDriver(t)
		const n = 8
		chunk := chunkOf(d)
		var wg sync.WaitGroup
		urls := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				data := Pattern(chunk + i*1001)
				obj, err := d.Put(context.Background(), fmt.Sprintf("img-%d", i), bytes.NewReader(data), 0)
				urls[i], errs[i] = obj.URL, err
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Put img-%d: %v", i, errs[i])
			}
			checkContent(t, d, urls[i], Pattern(chunk+i*1001))
		}
	})
}

func checkMissing(t *testing.T, d stores.Driver, url string) {
	t.Helper()
	ctx := context.Background()
	if rc, err := d.Get(ctx, url, 0, -1); !errors.Is(err, stores.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
	if rc, err := d.Get(ctx, url, 5, 10); !errors.Is(err, stores.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("ranged Get(missing) = %v, want ErrNotFound", err)
	}
	if _, err := d.Size(ctx, url); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("Size(missing) = %v, want ErrNotFound", err)
	}
}

func roundTrips(t *testing.T, newDriver func(t *testing.T) stores.Driver) {
	chunk := chunkOf(newDriver(t))
	zeros := func(n int) []byte { return make([]byte, n) }
	holes := slices.Concat(zeros(chunk), Pattern(chunk+5), zeros(2*chunk), Pattern(3), zeros(chunk))
	tests := []struct {
		name     string
		data     []byte
		announce bool
	}{
		{"zero bytes, size unknown", nil, false},
		{"one byte", Pattern(1), true},
		{"one byte, size unknown", Pattern(1), false},
		{"exactly one chunk", Pattern(chunk), true},
		{"one chunk and a byte", Pattern(chunk + 1), true},
		{"one byte short of a chunk", Pattern(chunk - 1), true},
		{"several chunks, size unknown", Pattern(3*chunk + 7), false},
		{"runs of zeros", holes, true},
		{"runs of zeros, size unknown", holes, false},
		{"all zeros", zeros(3 * chunk), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t)
			ctx := context.Background()
			size := int64(0)
			if tc.announce {
				size = int64(len(tc.data))
			}
			obj, err := d.Put(ctx, "img", bytes.NewReader(tc.data), size)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if obj.Size != int64(len(tc.data)) {
				t.Errorf("Put wrote %d bytes, want %d", obj.Size, len(tc.data))
			}
			checkURL(t, d, obj.URL)
			checkContent(t, d, obj.URL, tc.data)
			if err := d.Delete(ctx, obj.URL); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			checkMissing(t, d, obj.URL)
		})
	}
}

var errBroken = errors.New("storetest: the client went away")

// brokenReader gives n bytes, then errBroken.
// cutReader yields n bytes, then fails with io.ErrUnexpectedEOF, as the
// body of an HTTP request cut off does.
func cutReader(n int) io.Reader {
	return io.MultiReader(bytes.NewReader(Pattern(n)), iotest.ErrReader(io.ErrUnexpectedEOF))
}

type brokenReader struct{ n int }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errBroken
	}
	k := min(len(p), b.n)
	clear(p[:k])
	p[0] = 1
	b.n -= k
	return k, nil
}

// cancellingReader cancels its context after after bytes and keeps giving
// data until total bytes have been read.
type cancellingReader struct {
	read, after, total int
	cancel             context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.read >= c.total {
		return 0, io.EOF
	}
	if c.read >= c.after {
		c.cancel()
	}
	k := min(len(p), c.total-c.read, 4096)
	for i := range p[:k] {
		p[i] = byte(c.read + i + 1)
	}
	c.read += k
	return k, nil
}

// chunkWriter hands its reader's data to the writer in chunks of its own
// buffer, as the location layer's reader does, through io.WriterTo.
type chunkWriter struct {
	r     io.Reader
	chunk int
}

func (c *chunkWriter) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *chunkWriter) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, c.chunk)
	var total int64
	for {
		n, err := stores.Fill(c.r, buf)
		if n > 0 {
			k, werr := w.Write(buf[:n])
			total += int64(k)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func failedPuts(t *testing.T, newDriver func(t *testing.T) stores.Driver) {
	chunk := chunkOf(newDriver(t))
	tests := []struct {
		name    string
		reader  func(cancel context.CancelFunc) io.Reader
		size    int64
		cancel  bool // cancel the context before Put
		wantErr error
	}{
		{"short stream for the size", func(context.CancelFunc) io.Reader { return bytes.NewReader(Pattern(10)) }, 11, false, stores.ErrSizeMismatch},
		{"short stream by a chunk", func(context.CancelFunc) io.Reader { return bytes.NewReader(Pattern(chunk)) }, int64(2 * chunk), false, stores.ErrSizeMismatch},
		{"long stream for the size", func(context.CancelFunc) io.Reader { return bytes.NewReader(Pattern(3 * chunk)) }, int64(chunk), false, stores.ErrSizeMismatch},
		{"one byte too many", func(context.CancelFunc) io.Reader { return bytes.NewReader(Pattern(chunk + 1)) }, int64(chunk), false, stores.ErrSizeMismatch},
		{"reader error", func(context.CancelFunc) io.Reader { return &brokenReader{n: 2*chunk + 10} }, 0, false, errBroken},
		{"reader error, size known", func(context.CancelFunc) io.Reader { return &brokenReader{n: 10} }, int64(4 * chunk), false, errBroken},
		// An HTTP body cut off before its end: its reader fails with
		// io.ErrUnexpectedEOF, which is no end of data.
		{"stream cut off", func(context.CancelFunc) io.Reader { return cutReader(2*chunk + 10) }, 0, false, io.ErrUnexpectedEOF},
		{"stream cut off within the first chunk", func(context.CancelFunc) io.Reader { return cutReader(10) }, 0, false, io.ErrUnexpectedEOF},
		{"stream cut off, chunks written by the reader", func(context.CancelFunc) io.Reader {
			return &chunkWriter{r: cutReader(2*chunk + 10), chunk: chunk}
		}, 0, false, io.ErrUnexpectedEOF},
		{"cancelled during the put", func(c context.CancelFunc) io.Reader {
			return &cancellingReader{after: chunk + 100, total: 20 * chunk, cancel: c}
		}, 0, false, context.Canceled},
		{"cancelled during the put, chunks written by the reader", func(c context.CancelFunc) io.Reader {
			return &chunkWriter{r: &cancellingReader{after: chunk + 100, total: 20 * chunk, cancel: c}, chunk: chunk}
		}, 0, false, context.Canceled},
		{"long stream for the size, chunks written by the reader", func(context.CancelFunc) io.Reader {
			return &chunkWriter{r: bytes.NewReader(Pattern(3 * chunk)), chunk: chunk}
		}, int64(2*chunk + 1), false, stores.ErrSizeMismatch},
		{"short stream for the size, chunks written by the reader", func(context.CancelFunc) io.Reader {
			return &chunkWriter{r: bytes.NewReader(Pattern(chunk)), chunk: chunk}
		}, int64(chunk + 1), false, stores.ErrSizeMismatch},
		{"reader error, chunks written by the reader", func(context.CancelFunc) io.Reader {
			return &chunkWriter{r: &brokenReader{n: 2*chunk + 10}, chunk: chunk}
		}, 0, false, errBroken},
		{"cancelled before the put", func(context.CancelFunc) io.Reader { return bytes.NewReader(Pattern(100)) }, 100, true, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			obj, err := d.Put(ctx, "img", tc.reader(cancel), tc.size)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Put = %+v, %v; want %v", obj, err, tc.wantErr)
			}
			checkNothingLeft(t, d, "img")
		})
	}
}

// Fixture is a read-only driver and the means to place objects behind it.
type Fixture struct {
	// Driver is the driver under test.
	Driver stores.Driver
	// Add stores data under id where Driver can read it, and returns its
	// location URL.
	Add func(t *testing.T, id string, data []byte) string
	// Missing is a location URL Driver serves with no object behind it.
	Missing string
}

// RunReadOnly runs the conformance suite against a driver that cannot
// store data: Put and Delete give ErrReadOnly, and every read works as in
// Run. newFixture is called once per subtest.
func RunReadOnly(t *testing.T, newFixture func(t *testing.T) Fixture) {
	chunk := DefaultChunkSize
	t.Run("reads", func(t *testing.T) {
		tests := []struct {
			name string
			data []byte
		}{
			{"zero bytes", nil},
			{"one byte", Pattern(1)},
			{"exactly one chunk", Pattern(chunk)},
			{"one chunk and a byte", Pattern(chunk + 1)},
			{"several chunks", Pattern(3*chunk + 7)},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t)
				url := f.Add(t, "img", tc.data)
				checkURL(t, f.Driver, url)
				checkContent(t, f.Driver, url, tc.data)
			})
		}
	})
	t.Run("ranges", func(t *testing.T) {
		f := newFixture(t)
		data := Pattern(2*chunk + 3)
		checkRanges(t, f.Driver, f.Add(t, "ranged", data), data)
	})
	t.Run("missing object", func(t *testing.T) {
		f := newFixture(t)
		checkMissing(t, f.Driver, f.Missing)
	})
	t.Run("read-only", func(t *testing.T) {
		f := newFixture(t)
		ctx := context.Background()
		data := Pattern(100)
		url := f.Add(t, "kept", data)
		if _, err := f.Driver.Put(ctx, "new", bytes.NewReader(data), 100); !errors.Is(err, stores.ErrReadOnly) {
			t.Errorf("Put = %v, want ErrReadOnly", err)
		}
		if err := f.Driver.Delete(ctx, url); !errors.Is(err, stores.ErrReadOnly) {
			t.Errorf("Delete = %v, want ErrReadOnly", err)
		}
		checkContent(t, f.Driver, url, data)
	})
	t.Run("concurrent reads", func(t *testing.T) {
		f := newFixture(t)
		const n = 8
		urls := make([]string, n)
		for i := range n {
			urls[i] = f.Add(t, fmt.Sprintf("img-%d", i), Pattern(chunk+i*1001))
		}
		var wg sync.WaitGroup
		got := make([][]byte, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				rc, err := f.Driver.Get(context.Background(), urls[i], 0, -1)
				if err != nil {
					errs[i] = err
					return
				}
				defer rc.Close()
				got[i], errs[i] = io.ReadAll(rc)
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || !bytes.Equal(got[i], Pattern(chunk+i*1001)) {
				t.Errorf("Get img-%d = %d bytes, %v", i, len(got[i]), errs[i])
			}
		}
	})
}
