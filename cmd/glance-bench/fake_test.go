package main

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeGlance is a small in-memory server speaking the part of the Images v2
// API the benchmark uses. Data is hashed as it arrives and only its md5 and
// size are kept.
type fakeGlance struct {
	mu      sync.Mutex
	images  map[string]*fakeImage
	order   []string // creation order
	nextID  int
	badSum  bool // report a wrong checksum after uploads
	short   bool // send one byte less than the image's size on download
	noAuth  bool // answer 401 to requests without X-Identity-Status
	patches atomic.Int64
	chunked atomic.Int64 // uploads that arrived without a Content-Length
	// createDelay holds every create this long before it is stored, so
	// that creates from several clients overlap.
	createDelay time.Duration
	creating    atomic.Int64 // creates in progress
	maxCreating atomic.Int64 // most creates in progress at once
	failCreate  atomic.Int64 // when > 0, the create with this number (nextID) answers 500
}

type fakeImage struct {
	ID     string
	Status string
	Tags   []string
	Props  map[string]any
	Size   *int64
	Sum    *string
	data   []byte
}

func newFakeGlance(t *testing.T) (*fakeGlance, *httptest.Server) {
	t.Helper()
	f := &fakeGlance{images: map[string]*fakeImage{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeGlance) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.images)
}

func (f *fakeGlance) doc(img *fakeImage) map[string]any {
	d := map[string]any{"id": img.ID, "status": img.Status, "tags": img.Tags, "size": img.Size, "checksum": img.Sum}
	for k, v := range img.Props {
		d[k] = v
	}
	return d
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeGlance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/versions" {
		writeJSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]string{"id": "v2.16"}}})
		return
	}
	if f.noAuth && r.Header.Get("X-Identity-Status") != "Confirmed" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[1] == "images" && r.Method == http.MethodPost:
		f.create(w, r)
	case len(parts) == 2 && parts[1] == "images" && r.Method == http.MethodGet:
		f.list(w, r)
	case len(parts) == 3 && parts[1] == "images":
		f.image(w, r, parts[2])
	case len(parts) == 4 && parts[1] == "images" && parts[3] == "file":
		f.file(w, r, parts[2])
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeGlance) create(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := f.creating.Add(1)
	defer f.creating.Add(-1)
	for m := f.maxCreating.Load(); n > m && !f.maxCreating.CompareAndSwap(m, n); m = f.maxCreating.Load() {
	}
	time.Sleep(f.createDelay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	if int64(f.nextID) == f.failCreate.Load() {
		http.Error(w, "database is gone", http.StatusInternalServerError)
		return
	}
	img := &fakeImage{ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", f.nextID), Status: "queued", Props: map[string]any{}}
	for k, v := range body {
		if k == "tags" {
			for _, t := range v.([]any) {
				img.Tags = append(img.Tags, t.(string))
			}
			continue
		}
		img.Props[k] = v
	}
	f.images[img.ID] = img
	f.order = append(f.order, img.ID)
	writeJSON(w, http.StatusCreated, f.doc(img))
}

func (f *fakeGlance) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 25
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			http.Error(w, "bad limit", http.StatusBadRequest)
			return
		}
		limit = min(n, 1000)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var page []any
	started := q.Get("marker") == ""
	last := ""
	for i := len(f.order) - 1; i >= 0; i-- { // newest first
		id := f.order[i]
		img, ok := f.images[id]
		if !ok {
			continue
		}
		if !started {
			started = id == q.Get("marker")
			continue
		}
		if !hasAll(img.Tags, q["tag"]) {
			continue
		}
		if len(page) == limit {
			break
		}
		page = append(page, f.doc(img))
		last = id
	}
	out := map[string]any{"images": page, "schema": "/v2/schemas/images"}
	if len(page) == limit && limit > 0 {
		q.Set("marker", last)
		out["next"] = "/v2/images?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, out)
}

func hasAll(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

func (f *fakeGlance) image(w http.ResponseWriter, r *http.Request, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[id]
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, f.doc(img))
	case http.MethodDelete:
		delete(f.images, id)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPatch:
		if r.Header.Get("Content-Type") != "application/openstack-images-v2.1-json-patch" {
			http.Error(w, "unsupported media type", http.StatusUnsupportedMediaType)
			return
		}
		var ops []map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ops); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, op := range ops {
			key := strings.TrimPrefix(op["path"].(string), "/")
			if _, ok := img.Props[key]; !ok && op["op"] == "replace" {
				http.Error(w, "no such property", http.StatusConflict)
				return
			}
			img.Props[key] = op["value"]
		}
		f.patches.Add(1)
		writeJSON(w, http.StatusOK, f.doc(img))
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

func (f *fakeGlance) file(w http.ResponseWriter, r *http.Request, id string) {
	f.mu.Lock()
	img, ok := f.images[id]
	f.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodPut:
		if r.Header.Get("Content-Type") != "application/octet-stream" {
			http.Error(w, "unsupported media type", http.StatusUnsupportedMediaType)
			return
		}
		if r.ContentLength < 0 {
			f.chunked.Add(1)
		}
		data, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s := md5.Sum(data)
		sum := hex.EncodeToString(s[:])
		if f.badSum {
			sum = strings.Repeat("0", 32)
		}
		n := int64(len(data))
		f.mu.Lock()
		img.data, img.Size, img.Sum, img.Status = data, &n, &sum, "active"
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		f.mu.Lock()
		data, sum := img.data, img.Sum
		f.mu.Unlock()
		if sum == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if f.short && len(data) > 0 {
			data = data[:len(data)-1]
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Md5", *sum)
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data)
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}
