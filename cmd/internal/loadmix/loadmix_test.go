package loadmix

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a small in-memory Glance: enough of the images API for the mix.
// fault, when set, may answer a request in its place.
type fake struct {
	mu     sync.Mutex
	n      int
	images map[string]*fakeImage
	fault  func(w http.ResponseWriter, r *http.Request) bool
}

type fakeImage struct {
	status string
	data   []byte
}

func newFake(t *testing.T, fault func(w http.ResponseWriter, r *http.Request) bool) *httptest.Server {
	f := &fake{images: map[string]*fakeImage{}, fault: fault}
	s := httptest.NewServer(f)
	t.Cleanup(s.Close)
	return s
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Identity-Status") != "Confirmed" || r.Header.Get("X-Project-Id") == "" {
		http.Error(w, "no identity", http.StatusUnauthorized)
		return
	}
	if f.fault != nil && f.fault(w, r) {
		return
	}
	body, _ := io.ReadAll(r.Body)
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/images"), "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(parts) == 1 { // /v2/images
		switch r.Method {
		case http.MethodPost:
			f.n++
			id := fmt.Sprintf("00000000-0000-0000-0000-%012d", f.n)
			f.images[id] = &fakeImage{status: "queued"}
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id": %q, "status": "queued"}`, id)
		case http.MethodGet:
			fmt.Fprint(w, `{"images": [], "first": "/v2/images"}`)
		}
		return
	}
	im := f.images[parts[1]]
	if im == nil {
		http.NotFound(w, r)
		return
	}
	sub := strings.Join(parts[2:], "/")
	switch {
	case sub == "" && r.Method == http.MethodGet:
		fmt.Fprintf(w, `{"id": %q, "status": %q, "size": %d}`, parts[1], im.status, len(im.data))
	case sub == "" && r.Method == http.MethodPatch:
		var ops []map[string]any
		if json.Unmarshal(body, &ops) != nil || len(ops) == 0 {
			http.Error(w, "bad patch", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"id": %q}`, parts[1])
	case sub == "" && r.Method == http.MethodDelete:
		delete(f.images, parts[1])
		w.WriteHeader(http.StatusNoContent)
	case sub == "file" && r.Method == http.MethodPut, sub == "stage":
		im.data = body
		im.status = "active"
		if sub == "stage" {
			im.status = "uploading"
		}
		w.WriteHeader(http.StatusNoContent)
	case sub == "file":
		w.Write(im.data)
	case sub == "import":
		im.status = "active"
		w.WriteHeader(http.StatusAccepted)
	case strings.HasPrefix(sub, "tags/"):
		w.WriteHeader(http.StatusNoContent)
	case sub == "members" && r.Method == http.MethodGet:
		fmt.Fprint(w, `{"members": []}`)
	case strings.HasPrefix(sub, "members") && r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(sub, "members"):
		fmt.Fprint(w, `{"status": "pending"}`)
	default:
		http.Error(w, "not in the fake", http.StatusMethodNotAllowed)
	}
}

func testConfig(url string) Config {
	return Config{
		Endpoint: url,
		Owner:    Identity{Project: "a", User: "ua", Roles: "member"},
		Member:   Identity{Project: "b", User: "ub", Roles: "member"},
		Clients:  4,
		MaxOps:   400,
		Bound:    2 * time.Second,
		MaxData:  8 << 10,
		Seed:     7,
	}
}

func run(t *testing.T, cfg Config) *Stats {
	t.Helper()
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.Run(ctx)
}

func TestMixAgainstAFaithfulServer(t *testing.T) {
	s := newFake(t, nil)
	got := run(t, testConfig(s.URL))
	if err := got.Err(); err != nil {
		t.Fatal(err)
	}
	var ops int64
	for op := range DefaultWeights {
		if got.Ops[op] == 0 {
			t.Errorf("operation %s never ran", op)
		}
		ops += got.Ops[op]
	}
	if ops != 400 {
		t.Errorf("%d operations, want the 400 asked for", ops)
	}
	for _, kind := range []string{"create", "show", "list", "patch", "tag-add", "tag-delete", "member-add",
		"member-update", "members", "list-member", "delete", "upload", "stage", "import", "import-poll", "download"} {
		if got.Requests[kind] == nil || got.Requests[kind].Count == 0 {
			t.Errorf("no %s request", kind)
		}
	}
	if w := got.Waits["import-wait"]; w == nil || w.Count != got.Ops[OpImport] {
		t.Errorf("import waits %+v for %d imports", w, got.Ops[OpImport])
	}
}

func TestMixCatchesFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(w http.ResponseWriter, r *http.Request) bool
		want  string
	}{
		{"server error on patch", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPatch {
				http.Error(w, "boom", http.StatusInternalServerError)
				return true
			}
			return false
		}, "unexpected HTTP 500"},
		{"hang on delete", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodDelete && !strings.Contains(r.URL.Path, "/tags/") && !strings.Contains(r.URL.Path, "/members/") {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
				return true
			}
			return false
		}, "no answer within the bound"},
		{"404 on a delete, which only one client makes", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodDelete && !strings.Contains(r.URL.Path, "/tags/") && !strings.Contains(r.URL.Path, "/members/") {
				http.NotFound(w, r)
				return true
			}
			return false
		}, "unexpected HTTP 404"},
		{"short download", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/file") {
				w.Write([]byte("short"))
				return true
			}
			return false
		}, "5 bytes, want"},
		{"import that never ends", func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/import") {
				w.WriteHeader(http.StatusAccepted) // and the image stays uploading
				return true
			}
			return false
		}, "after its import was accepted"},
		{"download 204 of an image that exists", func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/file") {
				w.WriteHeader(http.StatusNoContent)
				return true
			}
			return false
		}, "answered a download with 204 and is still there"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(newFake(t, tc.fault).URL)
			cfg.Bound = 300 * time.Millisecond
			cfg.ImportBound = 500 * time.Millisecond
			cfg.StopAfter = 3
			start := time.Now()
			got := run(t, cfg)
			err := got.Err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the run took %v after its errors", took)
			}
		})
	}
}

func TestPopulate(t *testing.T) {
	s := newFake(t, nil)
	r, err := NewRunner(testConfig(s.URL))
	if err != nil {
		t.Fatal(err)
	}
	got := r.Populate(context.Background(), 150, 10, 2)
	if err := got.Err(); err != nil {
		t.Fatal(err)
	}
	if n := got.Requests["populate"].Count; n != 150 {
		t.Errorf("%d creates, want 150", n)
	}
	if r.Images() != 0 {
		t.Errorf("the population joined the mix's pool: %d images", r.Images())
	}
}

func TestConfigIsChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
	}{
		{"not loopback", func(c *Config) { c.Endpoint = "http://192.0.2.1:9292" }},
		{"https", func(c *Config) { c.Endpoint = "https://127.0.0.1:9292" }},
		{"unbounded", func(c *Config) { c.MaxOps, c.Duration = 0, 0 }},
		{"one project", func(c *Config) { c.Member.Project = c.Owner.Project }},
		{"unknown operation", func(c *Config) { c.Weights = map[string]int{"reboot": 1} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:9292")
			tc.edit(&cfg)
			if _, err := NewRunner(cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestHistogramPercentiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 500 * time.Millisecond}, {99, 990 * time.Millisecond}, {100, time.Second}} {
		got := h.Percentile(tc.p)
		if got < tc.want || float64(got) > 1.1*float64(tc.want) {
			t.Errorf("p%v = %v, want %v to 9%% above", tc.p, got, tc.want)
		}
	}
	if h.Max() != time.Second || h.Count() != 1000 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
}
