package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
)

// spyDriver records the writer each of its readers is asked to write to.
type spyDriver struct {
	stores.Driver
	mu      sync.Mutex
	writers []string
}

func (d *spyDriver) Get(ctx context.Context, url string, off, n int64) (io.ReadCloser, error) {
	rc, err := d.Driver.Get(ctx, url, off, n)
	if err != nil {
		return nil, err
	}
	return &spyReader{ReadCloser: rc, d: d}, nil
}

func (d *spyDriver) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.writers...)
}

type spyReader struct {
	io.ReadCloser
	d *spyDriver
}

func (r *spyReader) WriteTo(w io.Writer) (int64, error) {
	r.d.mu.Lock()
	r.d.writers = append(r.d.writers, fmt.Sprintf("%T", w))
	r.d.mu.Unlock()
	wt, ok := r.ReadCloser.(io.WriterTo)
	if !ok {
		return 0, fmt.Errorf("the store's reader %T has no WriteTo", r.ReadCloser)
	}
	return wt.WriteTo(w)
}

// newDownloadServer serves the API over the real onion and a file store on
// a loopback listener; download is the store's filesystem_store_download.
func newDownloadServer(t testing.TB, download string) (*httptest.Server, *spyDriver) {
	t.Helper()
	fs, err := file.New(file.Config{DataDir: t.TempDir(), Download: download})
	if err != nil {
		t.Fatal(err)
	}
	spy := &spyDriver{Driver: fs}
	srv := httptest.NewServer(newGatewayHandler(t, stores.NewSet(spy), Options{}))
	t.Cleanup(srv.Close)
	return srv, spy
}

func call(t testing.TB, method, url string, body io.Reader, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// uploadOver creates an image and uploads size bytes of data over srv.
func uploadOver(t testing.TB, srv *httptest.Server, data io.Reader, size int64) string {
	t.Helper()
	resp := call(t, "POST", srv.URL+"/v2/images", strings.NewReader(`{"disk_format": "raw", "container_format": "bare"}`),
		append(with(tenantA), "Content-Type", "application/json")...)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	id := string(b[strings.Index(string(b), `"id": "`)+7:])
	id = id[:36]
	req, err := http.NewRequest("PUT", srv.URL+"/v2/images/"+id+"/file", data)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	for i := 0; i+1 < len(tenantA); i += 2 {
		req.Header.Set(tenantA[i], tenantA[i+1])
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	return id
}

// TestDownloadWritesFromTheStore checks that a download hands net/http's
// own ResponseWriter to the store's reader, through every layer of the
// onion, so that the file store's WriteTo reaches sendfile, or writes its
// buffers without a copy more, and that whole and ranged downloads return
// the right bytes both ways.
func TestDownloadWritesFromTheStore(t *testing.T) {
	for _, download := range []string{file.DownloadSendfile, file.DownloadCopy} {
		t.Run(download, func(t *testing.T) { testDownloadWritesFromTheStore(t, download) })
	}
}

func testDownloadWritesFromTheStore(t *testing.T, download string) {
	srv, spy := newDownloadServer(t, download)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16+1) // 1 MiB + 16 B
	id := uploadOver(t, srv, bytes.NewReader(data), int64(len(data)))
	tests := []struct {
		name       string
		rng        string
		wantStatus int
		want       []byte
	}{
		{"whole", "", http.StatusOK, data},
		{"range", "bytes=100-199", http.StatusPartialContent, data[100:200]},
		{"suffix", "bytes=-10", http.StatusPartialContent, data[len(data)-10:]},
		{"across the copy buffer", "bytes=1048570-1048589", http.StatusPartialContent, data[1048570:1048590]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(spy.seen())
			var hdr []string
			if tc.rng != "" {
				hdr = []string{"Range", tc.rng}
			}
			resp := call(t, "GET", srv.URL+"/v2/images/"+id+"/file", nil, append(with(tenantA), hdr...)...)
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tc.wantStatus || !bytes.Equal(got, tc.want) {
				t.Fatalf("status %d (%v), %d bytes; want %d, %d bytes", resp.StatusCode, err, len(got), tc.wantStatus, len(tc.want))
			}
			seen := spy.seen()[before:]
			if len(seen) != 1 || seen[0] != "*http.response" {
				t.Errorf("the store's reader wrote to %v, want net/http's *http.response", seen)
			}
		})
	}
}

// zeros yields n zero bytes cheaply.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// BenchmarkDownload256MiB downloads a 256 MiB file-backed image through the
// API handler and the whole onion over a loopback connection, with
// sendfile and by copying.
func BenchmarkDownload256MiB(b *testing.B) {
	for _, download := range []string{file.DownloadSendfile, file.DownloadCopy} {
		b.Run(download, func(b *testing.B) { benchmarkDownload(b, download) })
	}
}

func benchmarkDownload(b *testing.B, download string) {
	const size = 256 << 20
	srv, _ := newDownloadServer(b, download)
	id := uploadOver(b, srv, &zeros{n: size}, size)
	url := srv.URL + "/v2/images/" + id + "/file"
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		resp := call(b, "GET", url, nil, tenantA...)
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, %d bytes, %v", resp.StatusCode, n, err)
		}
	}
}
