package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// benchSeed and benchProps are the shape of docs/benchmarks.md's seeded
// images: 2,000 of them, 10 extra properties and 2 tags each.
const (
	benchSeed  = 2000
	benchProps = 10
)

// benchWriter is a reusable http.ResponseWriter that keeps the status and
// the body of the last answer.
type benchWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *benchWriter) Header() http.Header { return w.h }

func (w *benchWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *benchWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

func (w *benchWriter) reset() {
	clear(w.h)
	w.status = 0
	w.body.Reset()
}

// serve resets w and has h answer r into it. net/http gives every request
// a context that ends with its connection, and drivers watch such
// contexts: r gets one too.
func (w *benchWriter) serve(h http.Handler, r *http.Request) {
	w.reset()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.ServeHTTP(w, r.WithContext(ctx))
}

// benchServer starts the real server of glance-api.conf text over a fresh
// SQLite file, the way serve does, and seeds n images through its API as
// caller project "bench" with role admin, as glance-bench does. It returns
// the handler and the ids.
func benchServer(b *testing.B, text string, n int) (http.Handler, []string) {
	b.Helper()
	cfg, _ := loadConf(b, text)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	d, err := openDB(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	if err := d.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	svc, err := newServer(ctx, cfg, d, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.stopImports(context.Background()) })
	h := svc.srv.Handler
	w := &benchWriter{h: http.Header{}}
	ids := make([]string, 0, n)
	for i := range n {
		r := benchRequest(http.MethodPost, "/v2/images", benchImage("seed", i))
		r.Header.Set("Content-Type", "application/json")
		w.reset()
		h.ServeHTTP(w, r)
		var img struct{ ID string }
		if w.status != http.StatusCreated || json.Unmarshal(w.body.Bytes(), &img) != nil {
			b.Fatalf("create: %d %s", w.status, w.body.String())
		}
		ids = append(ids, img.ID)
	}
	return h, ids
}

// benchImage is the create body of image i as glance-bench sends it: a
// name, raw/bare, two tags and benchProps extra properties.
func benchImage(prefix string, i int) []byte {
	body := map[string]any{"name": fmt.Sprintf("%s-%d", prefix, i), "disk_format": "raw", "container_format": "bare",
		"tags": []string{"glance-bench", fmt.Sprintf("tag-%d", i%7)}}
	for k := range benchProps {
		body[fmt.Sprintf("bench_p%02d", k)] = fmt.Sprintf("value-%d-%d", i, k)
	}
	js, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return js
}

// benchRequest is a request as glance-bench sends it, with role admin.
func benchRequest(method, path string, body []byte) *http.Request {
	return benchRequestAs("admin", method, path, body)
}

// benchRequestAs is a request of project "bench" with the given roles.
func benchRequestAs(roles, method, path string, body []byte) *http.Request {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, "http://127.0.0.1:9292"+path, rd)
	if err != nil {
		panic(err)
	}
	r.ContentLength = int64(len(body))
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("X-Identity-Status", "Confirmed")
	r.Header.Set("X-Project-Id", "bench")
	r.Header.Set("X-User-Id", "bench")
	r.Header.Set("X-Roles", roles)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "glance-bench")
	return r
}

// BenchmarkShow is GET /v2/images/{id} through the whole server in
// process: echo and its middleware, trusted-header authentication, the
// gateway's onion with the casbin policy, SQLite, the view. Only the
// network is left out; make bench measures it with that.
func BenchmarkShow(b *testing.B) {
	h, ids := benchServer(b, "[paste_deploy]\nflavor = trusted-auth\n[glance_store]\nfilesystem_store_datadir = $dir/images\n", benchSeed)
	for _, bc := range []struct{ name, roles string }{
		// glance-bench's caller: an admin, who sees every image.
		{"admin", "admin"},
		// The images' owner without the admin role: the visibility
		// clause and the policy's owner rules apply.
		{"owner", "member,reader"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reqs := make([]*http.Request, len(ids))
			for i, id := range ids {
				reqs[i] = benchRequestAs(bc.roles, http.MethodGet, "/v2/images/"+id, nil)
			}
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				w.serve(h, reqs[i%len(reqs)])
				if w.status != http.StatusOK || !strings.Contains(w.body.String(), `"bench_p09": "value-`) {
					b.Fatalf("show: %d %s", w.status, w.body.String())
				}
			}
		})
	}
}

// BenchmarkCreate is POST /v2/images through the whole server in process,
// with the body glance-bench sends: 10 extra properties and 2 tags, over
// benchSeed images already there; with the record cache and without it.
func BenchmarkCreate(b *testing.B) {
	const conf = "[paste_deploy]\nflavor = trusted-auth\n[glance_store]\nfilesystem_store_datadir = $dir/images\n"
	for _, bc := range []struct{ name, extra string }{
		{"cached", ""},
		{"uncached", "[glance_go]\nrecord_cache = 0\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h, _ := benchServer(b, conf+bc.extra, benchSeed)
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = benchImage("create", i)
			}
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r := benchRequest(http.MethodPost, "/v2/images", bodies[i])
				r.Header.Set("Content-Type", "application/json")
				w.serve(h, r)
				if w.status != http.StatusCreated {
					b.Fatalf("create: %d %s", w.status, w.body.String())
				}
			}
		})
	}
}
