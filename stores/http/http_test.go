package http_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/stores"
	httpstore "github.com/glance-go/glance-go/stores/http"
	"github.com/glance-go/glance-go/stores/storetest"
)

// origin is a web server holding objects by name under /o/.
type origin struct {
	mu       sync.Mutex
	objects  map[string][]byte
	noRanges bool // answer 200 with everything, whatever the Range header
	ranges   []string
}

func newOrigin(t *testing.T, noRanges bool) (*origin, *httptest.Server) {
	o := &origin{objects: map[string][]byte{}, noRanges: noRanges}
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/o/{name}", o.serve)
	// /r/{n}/{name} redirects n times, alternating status codes, then
	// serves /o/{name}.
	mux.HandleFunc("/r/{n}/{name}", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		codes := []int{nethttp.StatusFound, nethttp.StatusMovedPermanently, nethttp.StatusTemporaryRedirect}
		next := "/o/" + r.PathValue("name")
		if n > 1 {
			next = fmt.Sprintf("/r/%d/%s", n-1, r.PathValue("name"))
		}
		nethttp.Redirect(w, r, next, codes[n%len(codes)])
	})
	mux.HandleFunc("/gone", func(w nethttp.ResponseWriter, r *nethttp.Request) { w.WriteHeader(nethttp.StatusGone) })
	mux.HandleFunc("/broken", func(w nethttp.ResponseWriter, r *nethttp.Request) { w.WriteHeader(nethttp.StatusBadGateway) })
	mux.HandleFunc("/forbidden", func(w nethttp.ResponseWriter, r *nethttp.Request) { w.WriteHeader(nethttp.StatusForbidden) })
	mux.HandleFunc("/wrong-range", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("Content-Range", "bytes 0-9/100")
		w.WriteHeader(nethttp.StatusPartialContent)
		w.Write(make([]byte, 10))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return o, srv
}

func (o *origin) serve(w nethttp.ResponseWriter, r *nethttp.Request) {
	o.mu.Lock()
	data, ok := o.objects[r.PathValue("name")]
	if rg := r.Header.Get("Range"); rg != "" {
		o.ranges = append(o.ranges, rg)
	}
	o.mu.Unlock()
	if !ok {
		nethttp.NotFound(w, r)
		return
	}
	if o.noRanges {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		if r.Method != nethttp.MethodHead {
			w.Write(data)
		}
		return
	}
	nethttp.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

func (o *origin) add(name string, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.objects[name] = data
}

func newDriver(t *testing.T, cfg httpstore.Config) *httpstore.Driver {
	t.Helper()
	d, err := httpstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	tests := []struct {
		name     string
		noRanges bool
		path     string // how URLs reach /o/{name}
	}{
		{"ranges", false, "/o/"},
		{"server ignores ranges", true, "/o/"},
		{"through redirects", false, "/r/4/"},
		{"through redirects, server ignores ranges", true, "/r/2/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.RunReadOnly(t, func(t *testing.T) storetest.Fixture {
				o, srv := newOrigin(t, tc.noRanges)
				return storetest.Fixture{
					Driver: newDriver(t, httpstore.Config{Timeout: 10 * time.Second}),
					Add: func(t *testing.T, id string, data []byte) string {
						o.add(id, data)
						return srv.URL + tc.path + id
					},
					Missing: srv.URL + tc.path + "nothing",
				}
			})
		})
	}
}

func TestRangeHeaders(t *testing.T) {
	o, srv := newOrigin(t, false)
	o.add("img", storetest.Pattern(1000))
	d := newDriver(t, httpstore.Config{})
	for _, tc := range []struct{ off, n int64 }{{0, -1}, {10, -1}, {10, 5}, {0, 1}, {5, 0}} {
		rc, err := d.Get(context.Background(), srv.URL+"/o/img", tc.off, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	want := []string{"bytes=10-", "bytes=10-14", "bytes=0-0"}
	o.mu.Lock()
	defer o.mu.Unlock()
	if fmt.Sprint(o.ranges) != fmt.Sprint(want) {
		t.Errorf("Range headers = %q, want %q", o.ranges, want)
	}
}

func TestErrors(t *testing.T) {
	_, srv := newOrigin(t, false)
	closed := httptest.NewServer(nethttp.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name    string
		url     string
		wantErr error
		want    string
	}{
		{"404", srv.URL + "/o/none", stores.ErrNotFound, ""},
		{"410", srv.URL + "/gone", stores.ErrNotFound, ""},
		{"5xx", srv.URL + "/broken", stores.ErrUnavailable, "502"},
		{"403", srv.URL + "/forbidden", nil, "403 Forbidden"},
		{"connection refused", closed.URL + "/o/x", stores.ErrUnavailable, "unavailable"},
		{"too many redirects", srv.URL + "/r/5/x", nil, "exceeded 5 maximum redirects"},
		{"not http", "ftp://example.com/x", stores.ErrUnknownScheme, ""},
		{"no host", "http:///x", nil, "no address"},
	}
	d := newDriver(t, httpstore.Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, gerr := d.Get(context.Background(), tc.url, 0, -1)
			_, serr := d.Size(context.Background(), tc.url)
			for op, err := range map[string]error{"Get": gerr, "Size": serr} {
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s = %v, want %v containing %q", op, err, tc.wantErr, tc.want)
				}
			}
		})
	}
	if _, err := d.Get(context.Background(), srv.URL+"/wrong-range", 50, 10); err == nil || !strings.Contains(err.Error(), "asked from 50") {
		t.Errorf("Get with a wrong Content-Range = %v", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	d := newDriver(t, httpstore.Config{Timeout: 50 * time.Millisecond})
	if _, err := d.Get(context.Background(), srv.URL+"/x", 0, -1); !errors.Is(err, stores.ErrUnavailable) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("Get = %v, want a timeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newDriver(t, httpstore.Config{}).Size(ctx, srv.URL+"/x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Size with a cancelled context = %v", err)
	}
}

func TestProxy(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	proxy := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.String())
		mu.Unlock()
		w.Header().Set("Content-Length", "5")
		if r.Method == nethttp.MethodGet {
			io.WriteString(w, "proxy")
		}
	}))
	defer proxy.Close()
	d := newDriver(t, httpstore.Config{Proxies: map[string]string{"http": strings.TrimPrefix(proxy.URL, "http://")}})
	rc, err := d.Get(context.Background(), "http://images.invalid/cirros.img", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	n, err := d.Size(context.Background(), "http://images.invalid/cirros.img")
	if string(got) != "proxy" || err != nil || n != 5 {
		t.Errorf("through the proxy: %q, size %d, %v", got, n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "[GET http://images.invalid/cirros.img HEAD http://images.invalid/cirros.img]"; fmt.Sprint(seen) != want {
		t.Errorf("the proxy saw %q, want %s", seen, want)
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "secure")
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  httpstore.Config
		ok   bool
	}{
		{"insecure, Glance's default", httpstore.Config{Insecure: true}, true},
		{"verified, unknown authority", httpstore.Config{}, false},
		{"verified with the CA file", httpstore.Config{CAFile: ca}, true},
		{"the CA file wins over insecure", httpstore.Config{CAFile: ca, Insecure: true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newDriver(t, tc.cfg).Size(context.Background(), srv.URL+"/x")
			if (err == nil) != tc.ok {
				t.Errorf("Size = %v, want success %v", err, tc.ok)
			}
		})
	}
	if _, err := httpstore.New(httpstore.Config{CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("New with a missing CA file succeeded")
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		values  map[string]string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"all", map[string]string{"https_insecure": "false", "http_proxy_information": "http:10.0.0.1:3128, https:10.0.0.1:1080",
			"http_store_timeout": "5", "weight": "-3"}, ""},
		{"bad proxies", map[string]string{"http_proxy_information": "nocolon"}, `"nocolon" is not a name:value pair`},
		{"bad timeout", map[string]string{"http_store_timeout": "-1"}, "must be at least 0"},
		{"bad bool", map[string]string{"https_insecure": "perhaps"}, "not a boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &stores.Options{Values: tc.values}
			b, err := stores.Open("web", "http", o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !b.ReadOnly() || len(b.Properties) != 0 || b.Properties == nil {
				t.Errorf("backend = %+v", b)
			}
			if u := o.Unused(); len(u) != 0 {
				t.Errorf("Unused = %q", u)
			}
		})
	}
}
