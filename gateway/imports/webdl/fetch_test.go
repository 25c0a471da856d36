package webdl

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

// source is a web server on 127.0.0.1 that counts the requests it serves.
type source struct {
	*httptest.Server
	hits atomic.Int64
	port int
}

func newSource(t *testing.T, h http.HandlerFunc) *source {
	t.Helper()
	s := &source{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL)
	s.port, _ = strconv.Atoi(u.Port())
	return s
}

// url returns the server's URL for path under host.
func (s *source) url(host, path string) string {
	return fmt.Sprintf("http://%s:%d%s", host, s.port, path)
}

// testOptions allows the ports of the given servers and resolves the test
// names.
func testOptions(t *testing.T, srvs ...*source) Options {
	o := DefaultOptions()
	o.resolver = dnsServer(t, testNames)
	o.AllowedPorts = nil
	for _, s := range srvs {
		o.AllowedPorts = append(o.AllowedPorts, s.port)
	}
	return o
}

func readAll(t *testing.T, rc io.ReadCloser) string {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOpen(t *testing.T) {
	payload := strings.Repeat("image data ", 1000)
	src := newSource(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/image":
			w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
			io.WriteString(w, payload)
		case "/chunked":
			io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "/gzip":
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			io.WriteString(zw, payload)
			zw.Close()
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
			w.Write(b.Bytes())
		case "/redirect":
			http.Redirect(w, r, "/image", http.StatusFound)
		case "/missing":
			http.NotFound(w, r)
		case "/broken":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/nolocation":
			w.WriteHeader(http.StatusFound)
		}
	})
	o := testOptions(t, src)
	ctx := context.Background()

	tests := []struct {
		name     string
		uri      string
		want     string
		wantSize int64
	}{
		{"known size", src.url("127.0.0.1", "/image"), payload, int64(len(payload))},
		{"by name", src.url("good.test", "/image"), payload, int64(len(payload))},
		{"unknown size", src.url("127.0.0.1", "/chunked"), "part one, part two", -1},
		{"followed redirect", src.url("127.0.0.1", "/redirect"), payload, int64(len(payload))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, size, err := o.Open(ctx, tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, rc); got != tc.want || size != tc.wantSize {
				t.Errorf("got %d bytes, size %d; want %d bytes, size %d", len(got), size, len(tc.want), tc.wantSize)
			}
		})
	}

	t.Run("encoded body is not decoded", func(t *testing.T) {
		rc, size, err := o.Open(ctx, src.url("127.0.0.1", "/gzip"))
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, rc)
		if int64(len(got)) != size || !strings.HasPrefix(got, "\x1f\x8b") {
			t.Errorf("got %d bytes (size %d) starting %q, want the gzip stream as served", len(got), size, got[:2])
		}
	})

	errs := []struct {
		name    string
		uri     string
		kind    error
		message string
	}{
		{"port not allowed", "http://127.0.0.1:80/image", domain.ErrInvalid,
			"URI for web-download does not pass filtering: http://127.0.0.1:80/image"},
		{"404", src.url("127.0.0.1", "/missing"), domain.ErrInvalid,
			"Cannot fetch " + src.url("127.0.0.1", "/missing") + ": HTTP Error 404: Not Found"},
		{"500", src.url("127.0.0.1", "/broken"), domain.ErrUnavailable,
			"Cannot fetch " + src.url("127.0.0.1", "/broken") + ": HTTP Error 500: Internal Server Error"},
		{"redirect without location", src.url("127.0.0.1", "/nolocation"), domain.ErrInvalid,
			"Cannot fetch " + src.url("127.0.0.1", "/nolocation") + ": HTTP Error 302: Found"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			rc, _, err := o.Open(ctx, tc.uri)
			if err == nil {
				rc.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.kind) || err.Error() != tc.message {
				t.Errorf("err = %v, want %v %q", err, tc.kind, tc.message)
			}
		})
	}
}

func TestOpenUnsupportedScheme(t *testing.T) {
	o := testOptions(t)
	o.AllowedSchemes = []string{"ftp"}
	_, _, err := o.Open(context.Background(), "ftp://good.test/image")
	if !errors.Is(err, domain.ErrInvalid) || err.Error() != "Scheme ftp is not supported by web-download" {
		t.Errorf("err = %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there any more
	o := testOptions(t)
	o.AllowedPorts = []int{port}
	_, _, err = o.Open(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/", port))
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
}

func TestOpenRedirectFilter(t *testing.T) {
	// target is another server: a redirect to it must never reach it.
	target := newSource(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secret") })
	var to string
	src := newSource(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, to, http.StatusMovedPermanently)
	})
	tests := []struct {
		name string
		opt  func(o *Options)
		uri  string
		to   string
	}{
		{"to a port not allowed", nil, src.url("127.0.0.1", "/"), target.url("127.0.0.1", "/")},
		{"to a host not allowed", func(o *Options) {
			o.AllowedPorts = append(o.AllowedPorts, target.port)
			o.AllowedHosts = []string{"good.test"}
		},
			src.url("good.test", "/"), target.url("127.0.0.1", "/")},
		{"to a denied host", func(o *Options) {
			o.AllowedPorts = append(o.AllowedPorts, target.port)
			o.DisallowedHosts = []string{"other.test"}
		},
			src.url("good.test", "/"), target.url("other.test", "/")},
		{"to an encoded address", func(o *Options) { o.AllowedPorts = append(o.AllowedPorts, target.port) },
			src.url("127.0.0.1", "/"), fmt.Sprintf("http://2130706433:%d/", target.port)},
		{"to a scheme not allowed", func(o *Options) { o.AllowedPorts = append(o.AllowedPorts, target.port) },
			src.url("127.0.0.1", "/"), fmt.Sprintf("ftp://127.0.0.1:%d/", target.port)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			to = tc.to
			o := testOptions(t, src)
			if tc.opt != nil {
				tc.opt(&o)
			}
			before := src.hits.Load()
			rc, _, err := o.Open(context.Background(), tc.uri)
			if err == nil {
				rc.Close()
				t.Fatal("Open followed a disallowed redirect")
			}
			if !errors.Is(err, domain.ErrInvalid) || err.Error() != "Redirect to disallowed URL: "+tc.to {
				t.Errorf("err = %v", err)
			}
			if src.hits.Load() != before+1 || target.hits.Load() != 0 {
				t.Errorf("source served %d, target %d requests; want 1 and 0", src.hits.Load()-before, target.hits.Load())
			}
		})
	}
}

func TestOpenRedirectLimit(t *testing.T) {
	// /hop/N redirects to /hop/N-1; /hop/0 serves the data.
	src := newSource(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
		if n == 0 {
			io.WriteString(w, "data")
			return
		}
		http.Redirect(w, r, "/hop/"+strconv.Itoa(n-1), http.StatusFound)
	})
	tests := []struct {
		max, hops int
		ok        bool
	}{
		{3, 3, true},
		{3, 4, false},
		{0, 0, true},
		{0, 1, false},
		{10, 10, true},
		{10, 50, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("max %d hops %d", tc.max, tc.hops), func(t *testing.T) {
			o := testOptions(t, src)
			o.MaxRedirects = tc.max
			before := src.hits.Load()
			rc, _, err := o.Open(context.Background(), src.url("127.0.0.1", fmt.Sprintf("/hop/%d", tc.hops)))
			served := src.hits.Load() - before
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, rc); got != "data" {
					t.Errorf("got %q", got)
				}
				return
			}
			if err == nil {
				rc.Close()
				t.Fatal("Open went past the redirect limit")
			}
			if !errors.Is(err, domain.ErrInvalid) || !strings.HasPrefix(err.Error(), "Too many redirects") {
				t.Errorf("err = %v", err)
			}
			if served != int64(tc.max+1) {
				t.Errorf("served %d requests, want %d", served, tc.max+1)
			}
		})
	}
}

// TestOpenDialCheck covers a name that passes the URI filter but resolves
// to a denied address, the way a DNS rebinding attack works.
func TestOpenDialCheck(t *testing.T) {
	src := newSource(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "internal") })
	tests := []struct {
		name string
		opt  func(o *Options)
		uri  string
		ok   bool
	}{
		{"name of a denied address", func(o *Options) { o.DisallowedHosts = []string{"127.0.0.1"} },
			src.url("rebind.test", "/"), false},
		{"name of a denied address, IPv6 entry", func(o *Options) { o.DisallowedHosts = []string{"::ffff:127.0.0.1"} },
			src.url("rebind.test", "/"), false},
		{"allowed name", func(o *Options) { o.AllowedHosts = []string{"rebind.test"} }, src.url("rebind.test", "/"), true},
		{"allowed address of the name", func(o *Options) { o.AllowedHosts = []string{"rebind.test", "127.0.0.1"} },
			src.url("rebind.test", "/"), true},
		{"no host filter", nil, src.url("rebind.test", "/"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t, src)
			if tc.opt != nil {
				tc.opt(&o)
			}
			if err := o.Validate(tc.uri); err != nil {
				t.Fatalf("the URI must pass the string filter for this test: %v", err)
			}
			before := src.hits.Load()
			rc, _, err := o.Open(context.Background(), tc.uri)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, rc); got != "internal" {
					t.Errorf("got %q", got)
				}
				return
			}
			if err == nil {
				rc.Close()
				t.Fatal("Open connected to a denied address")
			}
			if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "resolves to 127.0.0.1") {
				t.Errorf("err = %v", err)
			}
			if src.hits.Load() != before {
				t.Error("the denied address was reached")
			}
		})
	}
}

func TestCheckDialled(t *testing.T) {
	tests := []struct {
		name    string
		opt     func(o *Options)
		host    string
		address string
		ok      bool
	}{
		{"no filter", nil, "a.test", "10.0.0.1:80", true},
		{"denied address", func(o *Options) { o.DisallowedHosts = []string{"10.0.0.1"} }, "a.test", "10.0.0.1:80", false},
		{"other address", func(o *Options) { o.DisallowedHosts = []string{"10.0.0.1"} }, "a.test", "10.0.0.2:80", true},
		{"denied IPv6", func(o *Options) { o.DisallowedHosts = []string{"fd00::1"} }, "a.test", "[fd00:0::1]:443", false},
		{"mapped IPv4", func(o *Options) { o.DisallowedHosts = []string{"10.0.0.1"} }, "a.test", "[::ffff:10.0.0.1]:80", false},
		{"zone dropped", func(o *Options) { o.DisallowedHosts = []string{"fe80::1"} }, "a.test", "[fe80::1%lo]:80", false},
		{"allowed by name", func(o *Options) { o.AllowedHosts = []string{"a.test"} }, "a.test", "10.0.0.1:80", true},
		{"allowed by address", func(o *Options) { o.AllowedHosts = []string{"10.0.0.1"} }, "10.0.0.1", "10.0.0.1:80", true},
		{"not allowed", func(o *Options) { o.AllowedHosts = []string{"10.0.0.1"} }, "b.test", "10.0.0.2:80", false},
		{"not an address", nil, "a.test", "a.test:80", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			if tc.opt != nil {
				tc.opt(&o)
			}
			err := o.checkDialled(tc.host, tc.address)
			if (err == nil) != tc.ok {
				t.Errorf("checkDialled(%q, %q) = %v, want ok %v", tc.host, tc.address, err, tc.ok)
			}
			if err != nil && !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestOpenDialCheckRedirect follows a redirect, from a server on 127.0.0.2,
// to a name that resolves to a denied address.
func TestOpenDialCheckRedirect(t *testing.T) {
	internal := newSource(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "internal") })
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("this machine has no 127.0.0.2: %v", err)
	}
	front := &source{port: ln.Addr().(*net.TCPAddr).Port}
	front.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		front.hits.Add(1)
		http.Redirect(w, r, internal.url("rebind.test", "/"), http.StatusFound)
	})}}
	front.Start()
	t.Cleanup(front.Close)

	o := testOptions(t, internal, front)
	o.DisallowedHosts = []string{"127.0.0.1"}
	rc, _, err := o.Open(context.Background(), front.url("127.0.0.2", "/"))
	if err == nil {
		rc.Close()
		t.Fatal("Open connected to a denied address")
	}
	if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "resolves to 127.0.0.1") {
		t.Errorf("err = %v", err)
	}
	if front.hits.Load() != 1 || internal.hits.Load() != 0 {
		t.Errorf("front served %d, internal %d requests; want 1 and 0", front.hits.Load(), internal.hits.Load())
	}
}
