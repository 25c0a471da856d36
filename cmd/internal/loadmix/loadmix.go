// Package loadmix drives a Glance v2 server on loopback with many clients
// at once, each running a weighted mix of every kind of write and read:
// creates with varying numbers of properties and tags, shows, filtered
// lists, JSON patches, tag changes, member changes (with a second project
// accepting the share), deletes, uploads, stage and glance-direct imports,
// and downloads. The clients share one pool of images, so a patch may meet
// an image another client has just deleted; every answer is checked
// against the statuses its request may legitimately get, and every request
// has a time bound. A run reports, by kind of request, the counts, the
// tolerated answers, the errors (with samples) and a latency histogram.
//
// The end-to-end concurrency test of glance-api and the soak mode of
// glance-bench both drive the server through this package.
package loadmix

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Identity is a caller, sent in the headers an authenticating proxy (or
// Keystone's middleware) sets for the trusted-auth flavor.
type Identity struct {
	Project, User, Roles string
}

// The operations of the mix.
const (
	OpCreate   = "create"   // POST /v2/images with 0-16 properties and 0-4 tags
	OpShow     = "show"     // GET /v2/images/{id}
	OpList     = "list"     // GET /v2/images with filters, sometimes a second page
	OpPatch    = "patch"    // PATCH: add, replace and remove properties, replace tags
	OpTag      = "tag"      // PUT then DELETE /v2/images/{id}/tags/{tag}
	OpMember   = "member"   // add the second project, it accepts and lists, the owner removes it
	OpDelete   = "delete"   // DELETE /v2/images/{id}
	OpUpload   = "upload"   // create, then PUT /file of 4-256 KiB
	OpImport   = "import"   // create, PUT /stage, POST /import (glance-direct), wait for active
	OpDownload = "download" // GET /file of an image with data
)

// DefaultWeights is the mix of the soak run and the concurrency test:
// about half reads, half writes.
var DefaultWeights = map[string]int{
	OpCreate: 12, OpShow: 22, OpList: 10, OpPatch: 14, OpTag: 5, OpMember: 7,
	OpDelete: 12, OpUpload: 6, OpImport: 3, OpDownload: 9,
}

// Config is what a run needs.
type Config struct {
	// Endpoint is the server's URL, on a loopback address.
	Endpoint string
	// Owner makes and changes the images; Member is the project they are
	// shared with. Both need the member role.
	Owner, Member Identity
	// Clients is the number of clients running at once, each on its own
	// goroutine and kept-alive connections.
	Clients int
	// Duration bounds the run in time; MaxOps bounds it in operations
	// (over all clients). At least one of them must be set.
	Duration time.Duration
	MaxOps   int64
	// Bound is the time every single request must end within.
	Bound time.Duration
	// ImportBound is the time an import may take to make its image active.
	ImportBound time.Duration
	// MaxImages bounds the images of the shared pool: past it, creates
	// turn into deletes, so the image count stays bounded.
	MaxImages int
	// MinData and MaxData bound the bytes of each upload and stage.
	MinData, MaxData int
	// Weights gives each operation's share of the mix; nil is
	// DefaultWeights. Operations left out are not run.
	Weights map[string]int
	// Tag is put on every image the run makes, so that they can be found.
	Tag string
	// Seed makes the mix repeatable (per client); 0 picks one at random.
	Seed uint64
	// StopAfter ends the run early once this many requests have failed
	// (0: never).
	StopAfter int64
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Clients <= 0 {
		cfg.Clients = 16
	}
	if cfg.Bound <= 0 {
		cfg.Bound = 10 * time.Second
	}
	if cfg.ImportBound <= 0 {
		cfg.ImportBound = 60 * time.Second
	}
	if cfg.MaxImages <= 0 {
		cfg.MaxImages = 500
	}
	if cfg.MinData <= 0 {
		cfg.MinData = 4 << 10
	}
	if cfg.MaxData < cfg.MinData {
		cfg.MaxData = max(cfg.MinData, 256<<10)
	}
	if cfg.Weights == nil {
		cfg.Weights = DefaultWeights
	}
	if cfg.Tag == "" {
		cfg.Tag = "loadmix"
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if cfg.Duration <= 0 && cfg.MaxOps <= 0 {
		return cfg, errors.New("loadmix: a run needs a duration or an operation count")
	}
	if cfg.Owner.Project == "" || cfg.Member.Project == "" || cfg.Owner.Project == cfg.Member.Project {
		return cfg, errors.New("loadmix: the owner and the member need two different projects")
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || u.Scheme != "http" {
		return cfg, fmt.Errorf("loadmix: endpoint %q: want http://127.0.0.1:PORT", cfg.Endpoint)
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return cfg, fmt.Errorf("loadmix: endpoint %q is not on a loopback address", cfg.Endpoint)
	}
	cfg.Endpoint = strings.TrimRight(cfg.Endpoint, "/")
	for op, w := range cfg.Weights {
		if w < 0 || DefaultWeights[op] == 0 {
			return cfg, fmt.Errorf("loadmix: weight %d for operation %q", w, op)
		}
	}
	return cfg, nil
}

// image is an image of the shared pool.
type image struct {
	id    string
	props int   // properties p00.. set at creation, never removed
	size  int64 // bytes of data; 0 without
}

// Runner runs the mix. Its statistics can be read while it runs.
type Runner struct {
	cfg  Config
	hc   *http.Client
	data []byte // upload and stage bytes: slices of it

	mu    sync.Mutex
	total *Stats
	cur   *Stats // since the last Interval
	curAt time.Time
	pool  []image
	where map[string]int // index in pool by id
	ops   int64
}

// NewRunner checks cfg and returns a Runner for it.
func NewRunner(cfg Config) (*Runner, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        4 * c.Clients,
		MaxIdleConnsPerHost: 4 * c.Clients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	r := &Runner{
		cfg: c,
		hc: &http.Client{Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		data:  make([]byte, c.MaxData),
		total: NewStats(),
		cur:   NewStats(),
		where: map[string]int{},
	}
	rng := rand.New(rand.NewPCG(c.Seed, 1))
	for i := range r.data {
		r.data[i] = byte(rng.Uint32())
	}
	return r, nil
}

// Run runs the mix until the duration or the operation count is reached,
// ctx ends, or StopAfter requests have failed, and returns the statistics
// of the whole run. Images stay behind (Cleanup deletes them).
func (r *Runner) Run(ctx context.Context) *Stats {
	start := time.Now()
	r.mu.Lock()
	r.curAt = start
	r.mu.Unlock()
	// The duration ends the loop, not the requests in flight: each of
	// those still ends within its bound, and is checked.
	soft := ctx
	if r.cfg.Duration > 0 {
		var cancel context.CancelFunc
		soft, cancel = context.WithTimeout(ctx, r.cfg.Duration)
		defer cancel()
	}
	r.each(func(cl *client) {
		for soft.Err() == nil && r.next() {
			cl.step(ctx)
		}
	})
	r.hc.CloseIdleConnections()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.Elapsed += time.Since(start)
	out := NewStats()
	out.Merge(r.total)
	return out
}

// each runs fn on every client at once and waits for them all.
func (r *Runner) each(fn func(cl *client)) {
	var wg sync.WaitGroup
	for i := range r.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(r.client(i))
		}()
	}
	wg.Wait()
}

// Populate makes n images with props properties and tags tags each (the
// run's tag among them), spread over all the clients, and returns the
// statistics of the runner so far, in which the creates are "populate".
// The images do not join the pool of the mix. It stops early when ctx
// ends or StopAfter requests have failed.
func (r *Runner) Populate(ctx context.Context, n, props, tags int) *Stats {
	start := time.Now()
	var (
		mu   sync.Mutex
		left = n
	)
	claim := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if left == 0 || ctx.Err() != nil {
			return false
		}
		if r.cfg.StopAfter > 0 && r.totalErrors() >= r.cfg.StopAfter {
			return false
		}
		left--
		return true
	}
	r.each(func(cl *client) {
		for claim() {
			cl.call(ctx, "populate", r.cfg.Owner, http.MethodPost, "/v2/images", "application/json",
				jsonBody(cl.imageBody(props, max(tags-1, 0), false)), []int{http.StatusCreated}, nil, nil)
		}
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.Elapsed += time.Since(start)
	out := NewStats()
	out.Merge(r.total)
	return out
}

func (r *Runner) totalErrors() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total.Errors()
}

// next reserves one more operation; false when the run is over.
func (r *Runner) next() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg.MaxOps > 0 && r.ops >= r.cfg.MaxOps {
		return false
	}
	if r.cfg.StopAfter > 0 && r.total.Errors() >= r.cfg.StopAfter {
		return false
	}
	r.ops++
	return true
}

// Interval returns the statistics of the requests that ended since the
// previous call (or since the run started), and starts a new interval.
func (r *Runner) Interval() *Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.cur
	now := time.Now()
	s.Elapsed = now.Sub(r.curAt)
	r.cur, r.curAt = NewStats(), now
	return s
}

// Images is the number of images in the shared pool.
func (r *Runner) Images() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pool)
}

// PoolIDs returns the ids of the images in the shared pool.
func (r *Runner) PoolIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, len(r.pool))
	for i, im := range r.pool {
		ids[i] = im.id
	}
	return ids
}

func (r *Runner) record(kind string, d time.Duration, tolerated bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.record(kind, d, tolerated, err)
	r.cur.record(kind, d, tolerated, err)
}

func (r *Runner) recordWait(kind string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.recordWait(kind, d, err)
	r.cur.recordWait(kind, d, err)
}

func (r *Runner) started(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.Ops[op]++
	r.cur.Ops[op]++
}

func (r *Runner) add(im image) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.where[im.id] = len(r.pool)
	r.pool = append(r.pool, im)
}

// pick returns a random image of the pool; ok is false when it is empty.
func (r *Runner) pick(rng *rand.Rand, withData bool) (image, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pool) == 0 {
		return image{}, false
	}
	for range 8 {
		im := r.pool[rng.IntN(len(r.pool))]
		if !withData || im.size > 0 {
			return im, true
		}
	}
	return image{}, false
}

// take removes a random image from the pool and returns it, for a delete.
func (r *Runner) take(rng *rand.Rand) (image, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pool) == 0 {
		return image{}, false
	}
	i := rng.IntN(len(r.pool))
	im := r.pool[i]
	last := len(r.pool) - 1
	r.pool[i] = r.pool[last]
	r.where[r.pool[i].id] = i
	r.pool = r.pool[:last]
	delete(r.where, im.id)
	return im, true
}

func (r *Runner) poolSize() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pool)
}
