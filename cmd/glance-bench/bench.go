package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scenario names, in the order a round runs them (also the -skip values).
const (
	ScCreate     = "create"
	ScCreateLoad = "create-load"
	ScShow       = "show"
	ScShowLoad   = "show-load"
	ScPatch      = "patch"
	ScList25     = "list25"
	ScList1000   = "list1000"
	ScUpload     = "upload"
	ScDownload   = "download"
	ScConcurrent = "concurrent"
)

// Scenarios lists every scenario in run order.
var Scenarios = []string{ScCreate, ScCreateLoad, ScShow, ScShowLoad, ScPatch, ScList25, ScList1000, ScUpload, ScDownload, ScConcurrent}

// ScSeed names the population of the seeded images in the report. It is
// not a scenario: it runs once, before the rounds, whenever the show, PATCH
// or list scenarios need images that are not there yet.
const ScSeed = "seed"

// Tags put on every image the benchmark makes, so leftovers can be found.
const (
	TagBench  = "glance-bench"
	TagSeed   = "bench-seed"
	TagCreate = "bench-create"
	TagData   = "bench-data"
)

const (
	seedProps = 10 // extra properties on each seeded (and created) image
	warmUp    = 2  // untimed operations before each latency scenario
	minOps    = 10 // operations a latency scenario tries to reach past its time bound
	// listMaxPages bounds every listing the benchmark walks.
	listMaxPages = 1000
)

// Config is everything a run needs.
type Config struct {
	Endpoint       string
	Identity       Identity
	Label          string // names the server in the report, e.g. "Glance 25.1"
	Rounds         int    // rounds of every scenario; medians are reported
	Seed           int    // images present for the show, patch and list scenarios
	SeedClients    int    // clients creating the seeded images at once
	CreateClients  int    // clients of the create-load scenario
	UploadSize     int64  // bytes of the single upload and download
	Concurrent     int    // parallel uploads
	ConcurrentSize int64  // bytes of each parallel upload
	Skip           map[string]bool
	Duration       time.Duration // time bound of each latency scenario in a round
	MaxOps         int           // operation bound of each latency scenario in a round
	Timeout        time.Duration // bound of the whole run, cleanup excluded
	ListReuse      bool          // list over kept-alive connections (default: a new one per list)
	Chunked        bool          // upload with chunked transfer encoding
	Keep           bool          // leave the seeded images in place for a later run
	Pids           []int         // server processes whose memory is sampled
	CalibrateBytes int64         // bytes hashed to rate the machine before the run; 0: none
	// Yardstick is a glance-bench binary that serves the loopback
	// yardstick file from a process of its own ("" serves it in this one).
	Yardstick string
	Log       io.Writer // progress lines; nil for none
}

// Validate checks the bounds of c.
func (c *Config) Validate() error {
	switch {
	case c.Rounds < 1 || c.Rounds > 100:
		return fmt.Errorf("-rounds must be between 1 and 100, got %d", c.Rounds)
	case c.Seed < 0 || c.Seed > 100000:
		return fmt.Errorf("-seed must be between 0 and 100000, got %d", c.Seed)
	case c.UploadSize < 0 || c.ConcurrentSize < 0:
		return errors.New("sizes must not be negative")
	case c.Concurrent < 1 || c.Concurrent > 64:
		return fmt.Errorf("-concurrent must be between 1 and 64, got %d", c.Concurrent)
	case c.SeedClients < 1 || c.SeedClients > 64:
		return fmt.Errorf("-seed-clients must be between 1 and 64, got %d", c.SeedClients)
	case c.CreateClients < 1 || c.CreateClients > 64:
		return fmt.Errorf("-create-clients must be between 1 and 64, got %d", c.CreateClients)
	case c.Duration <= 0 || c.Duration > time.Hour:
		return fmt.Errorf("-duration must be positive and at most 1h, got %s", c.Duration)
	case c.MaxOps < 1 || c.MaxOps > 1000000:
		return fmt.Errorf("-max-ops must be between 1 and 1000000, got %d", c.MaxOps)
	case c.Timeout <= 0:
		return fmt.Errorf("-timeout must be positive, got %s", c.Timeout)
	}
	for s := range c.Skip {
		if !isScenario(s) {
			return fmt.Errorf("-skip: unknown scenario %q (known: %s)", s, strings.Join(Scenarios, ","))
		}
	}
	return nil
}

func isScenario(s string) bool {
	for _, k := range Scenarios {
		if k == s {
			return true
		}
	}
	return false
}

func (c *Config) wants(s string) bool { return !c.Skip[s] }

// Metric is one figure of the report, with its value in each round.
type Metric struct {
	Scenario string    `json:"scenario"`
	Name     string    `json:"metric"` // ops_per_s, p50_ms, p99_ms, mb_per_s
	Unit     string    `json:"unit"`
	Median   float64   `json:"median"`
	Rounds   []float64 `json:"rounds"`
	Samples  []int     `json:"samples,omitempty"` // operations measured in each round
}

// Report is the outcome of a run.
type Report struct {
	Endpoint       string      `json:"endpoint"`
	Label          string      `json:"label,omitempty"`
	Started        time.Time   `json:"started"`
	Seconds        float64     `json:"seconds"`
	Rounds         int         `json:"rounds"`
	SeedImages     int         `json:"seed_images"`
	SeedClients    int         `json:"seed_clients"`
	CreateClients  int         `json:"create_clients"`
	UploadSize     int64       `json:"upload_bytes"`
	Concurrent     int         `json:"concurrent"`
	ConcurrentSize int64       `json:"concurrent_bytes"`
	ListConn       string      `json:"list_connection"`
	UploadMode     string      `json:"upload_mode"`
	Metrics        []*Metric   `json:"metrics"`
	PeakRSS        int64       `json:"server_peak_rss_bytes,omitempty"`
	PeakHWM        int64       `json:"server_sum_vmhwm_bytes,omitempty"`
	Processes      int         `json:"server_processes,omitempty"`
	Machine        Calibration `json:"client_machine"`
	Errors         []string    `json:"errors,omitempty"`
	Leftovers      []string    `json:"leftover_images,omitempty"`
}

func (r *Report) metric(scenario, name, unit string) *Metric {
	for _, m := range r.Metrics {
		if m.Scenario == scenario && m.Name == name {
			return m
		}
	}
	m := &Metric{Scenario: scenario, Name: name, Unit: unit}
	for range r.Rounds {
		m.Rounds = append(m.Rounds, math.NaN())
		m.Samples = append(m.Samples, 0)
	}
	r.Metrics = append(r.Metrics, m)
	return m
}

func (r *Report) set(round int, scenario, name, unit string, v float64, samples int) {
	m := r.metric(scenario, name, unit)
	m.Rounds[round] = v
	m.Samples[round] = samples
}

func (r *Report) fail(round int, scenario string, err error) {
	r.Errors = append(r.Errors, fmt.Sprintf("round %d, %s: %v", round+1, scenario, err))
}

// bench is one run in progress.
type bench struct {
	cfg   Config
	c     *Client
	rep   *Report
	seeds []string         // ids of the seeded images
	now   func() time.Time // the loops' clock; nil is time.Now
	procs *RSSSampler      // the server's processes, with -pid; else nil

	mu      sync.Mutex
	made    map[string]bool // images made and not yet deleted
	deleted []string        // images deleted by cleanup
}

func (b *bench) logf(format string, args ...any) {
	if b.cfg.Log != nil {
		fmt.Fprintf(b.cfg.Log, "glance-bench: "+format+"\n", args...)
	}
}

func (b *bench) track(id string) {
	b.mu.Lock()
	b.made[id] = true
	b.mu.Unlock()
}

// Run benchmarks the server at cfg.Endpoint. The returned error is set when
// the run could not start (bad configuration, unreachable server); failures
// inside scenarios are listed in Report.Errors instead.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := NewClient(cfg.Endpoint, cfg.Identity, max(cfg.Concurrent, cfg.SeedClients, cfg.CreateClients))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var sampler *RSSSampler
	if len(cfg.Pids) > 0 {
		if sampler, err = NewRSSSampler(cfg.Pids); err != nil {
			return nil, err
		}
	}
	if err := c.Ping(ctx); err != nil {
		return nil, err
	}
	rep := &Report{
		Endpoint: c.base, Label: cfg.Label, Started: time.Now().UTC(), Rounds: cfg.Rounds,
		SeedImages: cfg.Seed, SeedClients: cfg.SeedClients, CreateClients: cfg.CreateClients, UploadSize: cfg.UploadSize, Concurrent: cfg.Concurrent,
		ConcurrentSize: cfg.ConcurrentSize, ListConn: "new connection per request", UploadMode: "Content-Length",
	}
	if cfg.ListReuse {
		rep.ListConn = "kept-alive connection"
	}
	if cfg.Chunked {
		rep.UploadMode = "chunked"
	}
	if cfg.CalibrateBytes > 0 {
		rep.Machine = Calibrate(cfg.CalibrateBytes)
		b := rep.Machine
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "glance-bench: this machine hashes md5 at %.0f MB/s and sha512 at %.0f MB/s on one core\n", b.MD5MBps, b.SHA512MBps)
		}
	}
	b := &bench{cfg: cfg, c: c, rep: rep, made: map[string]bool{}, procs: sampler}
	if sampler != nil {
		sampler.Start(100 * time.Millisecond)
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	b.run(runCtx)
	cancel()

	if sampler != nil {
		sampler.Stop()
		rep.PeakRSS, rep.PeakHWM, rep.Processes = sampler.Peak()
	}
	// Cleanup runs even after a timeout or an interrupt, under its own bound.
	if !cfg.Keep {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		b.cleanup(cctx)
		ccancel()
	}
	for _, m := range rep.Metrics {
		m.Median = Median(m.Rounds)
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	return rep, nil
}

func (b *bench) run(ctx context.Context) {
	cfg := b.cfg
	needSeed := cfg.Seed > 0 && (cfg.wants(ScShow) || cfg.wants(ScPatch) || cfg.wants(ScList25) || cfg.wants(ScList1000))
	if needSeed {
		if err := b.seed(ctx); err != nil {
			b.rep.Errors = append(b.rep.Errors, "seeding: "+err.Error())
			return
		}
	}
	for r := range cfg.Rounds {
		if ctx.Err() != nil {
			b.rep.Errors = append(b.rep.Errors, fmt.Sprintf("round %d: stopped: %v", r+1, context.Cause(ctx)))
			return
		}
		b.logf("round %d of %d", r+1, cfg.Rounds)
		b.round(ctx, r)
	}
}

// imageBody is the record of a seeded or created image: ten extra
// properties and two tags.
func imageBody(name, tag string, i int) map[string]any {
	body := map[string]any{
		"name":             name,
		"disk_format":      "raw",
		"container_format": "bare",
		"tags":             []string{TagBench, tag},
	}
	for k := range seedProps {
		body[fmt.Sprintf("bench_p%02d", k)] = fmt.Sprintf("value-%d-%d", i, k)
	}
	return body
}

// seed makes sure cfg.Seed seeded images exist, reusing those a run with
// -keep left behind. The images missing are created by cfg.SeedClients
// clients at once, and their rate is reported as the population's
// (scenario ScSeed, one figure for the whole run).
func (b *bench) seed(ctx context.Context) error {
	have, err := b.c.ListAll(ctx, url.Values{"tag": {TagBench, TagSeed}, "limit": {"1000"}}.Encode(), listMaxPages)
	if err != nil {
		return fmt.Errorf("looking for seeded images: %w", err)
	}
	for _, img := range have {
		if len(b.seeds) < b.cfg.Seed {
			b.seeds = append(b.seeds, img.ID)
			b.track(img.ID)
		}
	}
	missing := b.cfg.Seed - len(b.seeds)
	if missing <= 0 {
		b.logf("reusing %d seeded images", len(b.seeds))
		return nil
	}
	b.logf("seeding %d images (%d properties, 2 tags each; %d already there) with %d clients", missing, seedProps, len(b.seeds), b.cfg.SeedClients)
	start := time.Now()
	next := make(chan int)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	var lat Latencies
	for range b.cfg.SeedClients {
		wg.Go(func() {
			for i := range next {
				id, d, err := b.c.Create(ctx, imageBody(fmt.Sprintf("bench-seed-%05d", i), TagSeed, i))
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					b.seeds = append(b.seeds, id)
					b.track(id)
					lat.Add(d)
				}
				mu.Unlock()
			}
		})
	}
	base := len(b.seeds)
	for i := range missing {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		next <- base + i
		if (i+1)%500 == 0 {
			b.logf("seeded %d of %d", i+1, missing)
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	took := time.Since(start)
	ops := float64(missing) / took.Seconds()
	b.rep.Metrics = append(b.rep.Metrics,
		&Metric{Scenario: ScSeed, Name: "ops_per_s", Unit: "ops/s", Rounds: []float64{ops}, Samples: []int{missing}},
		&Metric{Scenario: ScSeed, Name: "p50_ms", Unit: "ms", Rounds: []float64{lat.Percentile(50)}, Samples: []int{missing}})
	b.logf("seeded %d images in %.1fs with %d clients: %.0f ops/s, p50 %.2f ms", missing, took.Seconds(), b.cfg.SeedClients, ops, lat.Percentile(50))
	return nil
}

// loop runs op after warmUp untimed calls until the scenario's operation or
// time bound, and returns the durations op reported.
func (b *bench) loop(ctx context.Context, op func(i int) (time.Duration, error)) (*Latencies, time.Duration, error) {
	for i := range warmUp {
		if _, err := op(-1 - i); err != nil {
			return nil, 0, err
		}
	}
	var lat Latencies
	now := b.now
	if now == nil {
		now = time.Now
	}
	start := now()
	// Stop at MaxOps or after Duration, but not before minOps operations
	// unless three times Duration has passed: a slow list still gets a p50.
	more := func(i int) bool {
		el := now().Sub(start)
		if i >= b.cfg.MaxOps {
			return false
		}
		if i < min(minOps, b.cfg.MaxOps) {
			return el < 3*b.cfg.Duration
		}
		return el < b.cfg.Duration
	}
	for i := 0; more(i); i++ {
		if err := ctx.Err(); err != nil {
			return &lat, now().Sub(start), err
		}
		d, err := op(i)
		if err != nil {
			return &lat, now().Sub(start), err
		}
		lat.Add(d)
	}
	return &lat, now().Sub(start), nil
}

func (b *bench) round(ctx context.Context, r int) {
	cfg := b.cfg
	if cfg.wants(ScCreate) {
		if err := b.create(ctx, r); err != nil {
			b.rep.fail(r, ScCreate, err)
		}
	}
	if cfg.wants(ScCreateLoad) {
		if err := b.createLoad(ctx, r); err != nil {
			b.rep.fail(r, ScCreateLoad, err)
		}
	}
	if len(b.seeds) > 0 {
		if cfg.wants(ScShow) {
			lat, _, err := b.loop(ctx, func(i int) (time.Duration, error) {
				_, d, err := b.c.Show(ctx, b.seeds[pick(i, len(b.seeds))])
				return d, err
			})
			b.latency(r, ScShow, lat, err, true)
		}
		if cfg.wants(ScShowLoad) {
			if err := b.showLoad(ctx, r); err != nil {
				b.rep.fail(r, ScShowLoad, err)
			}
		}
		if cfg.wants(ScPatch) {
			lat, _, err := b.loop(ctx, func(i int) (time.Duration, error) {
				ops := []map[string]any{{"op": "replace", "path": "/bench_p00", "value": fmt.Sprintf("patched-%d-%d", r, i)}}
				return b.c.Patch(ctx, b.seeds[pick(i, len(b.seeds))], ops)
			})
			b.latency(r, ScPatch, lat, err, true)
		}
		for _, l := range []struct {
			name  string
			limit int
		}{{ScList25, 25}, {ScList1000, 1000}} {
			if !cfg.wants(l.name) {
				continue
			}
			want := min(l.limit, len(b.seeds))
			q := fmt.Sprintf("limit=%d", l.limit)
			lat, _, err := b.loop(ctx, func(int) (time.Duration, error) {
				p, d, err := b.c.List(ctx, q, !cfg.ListReuse)
				if err == nil && len(p.Images) < want {
					err = fmt.Errorf("GET /v2/images?%s returned %d images, want at least %d", q, len(p.Images), want)
				}
				return d, err
			})
			b.latency(r, l.name, lat, err, true)
		}
	}
	if cfg.wants(ScUpload) || cfg.wants(ScDownload) {
		if err := b.transfer(ctx, r); err != nil {
			b.rep.fail(r, "upload/download", err)
		}
	}
	if cfg.wants(ScConcurrent) {
		if err := b.concurrent(ctx, r); err != nil {
			b.rep.fail(r, ScConcurrent, err)
		}
	}
}

// pick spreads operation i over n images; warm-up calls (i < 0) too.
func pick(i, n int) int {
	if i < 0 {
		i = -i
	}
	return (i * 7919) % n
}

func (b *bench) latency(r int, sc string, lat *Latencies, err error, p99 bool) {
	if err != nil {
		b.rep.fail(r, sc, err)
		return
	}
	b.rep.set(r, sc, "p50_ms", "ms", lat.Percentile(50), lat.Len())
	if p99 {
		b.rep.set(r, sc, "p99_ms", "ms", lat.Percentile(99), lat.Len())
	}
	b.logf("%-10s n=%-4d p50 %.2f ms  p99 %.2f ms", sc, lat.Len(), lat.Percentile(50), lat.Percentile(99))
}

// create measures one client creating images like the seeded ones, then
// deletes them (untimed) so every round sees the same database.
func (b *bench) create(ctx context.Context, r int) error {
	var ids []string
	defer func() {
		for _, id := range ids {
			b.drop(ctx, id)
		}
	}()
	lat, wall, err := b.loop(ctx, func(i int) (time.Duration, error) {
		id, d, err := b.c.Create(ctx, imageBody(fmt.Sprintf("bench-create-%d-%d", r, i), TagCreate, i))
		if err == nil {
			ids = append(ids, id)
			b.track(id)
		}
		return d, err
	})
	if err != nil {
		return err
	}
	ops := float64(lat.Len()) / wall.Seconds()
	b.rep.set(r, ScCreate, "ops_per_s", "ops/s", ops, lat.Len())
	b.rep.set(r, ScCreate, "p50_ms", "ms", lat.Percentile(50), lat.Len())
	b.logf("%-10s n=%-4d %.1f ops/s  p50 %.2f ms", ScCreate, lat.Len(), ops, lat.Percentile(50))
	return nil
}

// createLoad measures how many images like the seeded ones CreateClients
// clients create per second at once, each on its own kept-alive connection,
// for Duration or until they have made MaxOps between them; then it deletes
// them, untimed, with as many clients. The bound is shared so that a round
// leaves no more deleted rows behind than the one-client create does: the
// lists of the later rounds walk past them, on a fast server as on a slow one.
func (b *bench) createLoad(ctx context.Context, r int) error {
	n := b.cfg.CreateClients
	var (
		mu    sync.Mutex
		ids   []string
		lat   Latencies
		first error
		wg    sync.WaitGroup
	)
	defer func() { b.dropAll(ctx, ids, n) }()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	create := func(k, i int) (time.Duration, error) {
		id, d, err := b.c.Create(lctx, imageBody(fmt.Sprintf("bench-create-load-%d-%d-%d", r, k, i), TagCreate, i))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if first == nil {
				first = err
				cancel()
			}
			return d, err
		}
		ids = append(ids, id)
		b.track(id)
		return d, nil
	}
	// One untimed create per client opens and warms its connection.
	for k := range n {
		wg.Go(func() { _, _ = create(k, -1) })
	}
	wg.Wait()
	if first != nil {
		return first
	}
	var total, tickets atomic.Int64
	start := time.Now()
	deadline := start.Add(b.cfg.Duration)
	for k := range n {
		wg.Go(func() {
			for i := 0; tickets.Add(1) <= int64(b.cfg.MaxOps) && time.Now().Before(deadline); i++ {
				d, err := create(k, i)
				if err != nil {
					return
				}
				total.Add(1)
				mu.Lock()
				lat.Add(d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if first != nil {
		return first
	}
	v := float64(total.Load()) / took.Seconds()
	b.rep.set(r, ScCreateLoad, "ops_per_s", "ops/s", v, int(total.Load()))
	b.rep.set(r, ScCreateLoad, "p50_ms", "ms", lat.Percentile(50), lat.Len())
	b.logf("%-10s %d clients, n=%d: %.0f ops/s  p50 %.2f ms", ScCreateLoad, n, total.Load(), v, lat.Percentile(50))
	return nil
}

// dropAll deletes images made for one scenario with n clients, as drop does.
func (b *bench) dropAll(ctx context.Context, ids []string, n int) {
	next := make(chan string)
	var wg sync.WaitGroup
	for range max(n, 1) {
		wg.Go(func() {
			for id := range next {
				b.drop(ctx, id)
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
}

func (b *bench) forget(id string) {
	b.mu.Lock()
	delete(b.made, id)
	b.deleted = append(b.deleted, id)
	b.mu.Unlock()
}

// newDataImage creates an empty image for an upload.
func (b *bench) newDataImage(ctx context.Context, name string) (string, error) {
	id, _, err := b.c.Create(ctx, map[string]any{
		"name": name, "disk_format": "raw", "container_format": "bare", "tags": []string{TagBench, TagData},
	})
	if err == nil {
		b.track(id)
	}
	return id, err
}

// checkData compares the server's record of an uploaded image with what was sent.
func (b *bench) checkData(ctx context.Context, id string, seed uint64, size int64) (string, error) {
	img, _, err := b.c.Show(ctx, id)
	if err != nil {
		return "", err
	}
	want := StreamMD5(seed, size)
	switch {
	case img.Status != "active":
		return "", fmt.Errorf("image %s is %q after its upload, want active", id, img.Status)
	case img.Size == nil || *img.Size != size:
		return "", fmt.Errorf("image %s has size %v after uploading %d bytes", id, deref(img.Size), size)
	case img.Checksum == nil || *img.Checksum != want:
		return "", fmt.Errorf("image %s has checksum %v, but the bytes sent have md5 %s", id, deref(img.Checksum), want)
	}
	return want, nil
}

func deref[T any](p *T) any {
	if p == nil {
		return "null"
	}
	return *p
}

// transfer measures one upload of cfg.UploadSize bytes and its download,
// then checks the data with a second, hashed (untimed) download.
func (b *bench) transfer(ctx context.Context, r int) error {
	size := b.cfg.UploadSize
	seed := uint64(1000 + r)
	id, err := b.newDataImage(ctx, fmt.Sprintf("bench-upload-%d", r))
	if err != nil {
		return err
	}
	defer b.drop(ctx, id)
	cpu := b.cpuTime()
	took, err := b.c.Upload(ctx, id, seed, size, b.cfg.Chunked)
	if err != nil {
		return err
	}
	upCPU := b.cpuTime() - cpu
	sum, err := b.checkData(ctx, id, seed, size)
	if err != nil {
		return err
	}
	if b.cfg.wants(ScUpload) {
		v := MBps(size, took)
		b.rep.set(r, ScUpload, "mb_per_s", "MB/s", v, 1)
		b.logf("%-10s %s in %.2fs: %.0f MB/s", ScUpload, ByteSize(size), took.Seconds(), v)
		b.cpuPerGB(r, ScUpload, upCPU, size, 1)
	}
	if !b.cfg.wants(ScDownload) {
		return nil
	}
	if err := b.downloads(ctx, r, id, size, sum); err != nil {
		return err
	}
	n, got, _, _, err := b.c.Download(ctx, id, true)
	if err != nil {
		return fmt.Errorf("verifying download: %w", err)
	}
	if n != size || got != sum {
		return fmt.Errorf("verifying download of %s: got %d bytes with md5 %s, want %d bytes with md5 %s", id, n, got, size, sum)
	}
	return nil
}

// drop deletes an image made for one scenario, right after it, so every
// round sees the same database (with -keep too, which keeps the seeds only).
func (b *bench) drop(ctx context.Context, id string) {
	if err := b.c.Delete(context.WithoutCancel(ctx), id); err == nil {
		b.forget(id)
	}
}

// concurrent measures cfg.Concurrent simultaneous uploads: aggregate bytes
// over the time from the first start to the last end.
func (b *bench) concurrent(ctx context.Context, r int) error {
	n, size := b.cfg.Concurrent, b.cfg.ConcurrentSize
	ids := make([]string, n)
	for i := range ids {
		id, err := b.newDataImage(ctx, fmt.Sprintf("bench-concurrent-%d-%d", r, i))
		if err != nil {
			return err
		}
		ids[i] = id
		defer b.drop(ctx, id)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, id := range ids {
		wg.Go(func() {
			<-gate
			_, errs[i] = b.c.Upload(ctx, id, uint64(2000+i), size, b.cfg.Chunked)
		})
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, id := range ids {
		if _, err := b.checkData(ctx, id, uint64(2000+i), size); err != nil {
			return err
		}
	}
	v := MBps(int64(n)*size, took)
	b.rep.set(r, ScConcurrent, "mb_per_s", "MB/s", v, n)
	b.logf("%-10s %d x %s in %.2fs: %.0f MB/s", ScConcurrent, n, ByteSize(size), took.Seconds(), v)
	return nil
}

// cleanup deletes every image the run made or reused, then any other image
// carrying the benchmark's tag: a create cut short by a timeout may have been
// stored without its id reaching us.
func (b *bench) cleanup(ctx context.Context) {
	b.mu.Lock()
	ids := make([]string, 0, len(b.made))
	for id := range b.made {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	if len(ids) > 0 {
		b.logf("deleting %d images", len(ids))
		b.deleteAll(ctx, ids)
	}
	left, err := b.c.ListAll(ctx, url.Values{"tag": {TagBench}, "limit": {"1000"}}.Encode(), listMaxPages)
	if err != nil {
		b.rep.Errors = append(b.rep.Errors, "cleanup: listing leftovers: "+err.Error())
	}
	ids = ids[:0]
	for _, img := range left {
		b.track(img.ID)
		ids = append(ids, img.ID)
	}
	b.deleteAll(ctx, ids)
	b.mu.Lock()
	for id := range b.made {
		b.rep.Leftovers = append(b.rep.Leftovers, id)
	}
	b.mu.Unlock()
	if len(b.rep.Leftovers) > 0 {
		b.rep.Errors = append(b.rep.Errors, fmt.Sprintf("cleanup: %d images could not be deleted", len(b.rep.Leftovers)))
	}
}

// deleteAll deletes ids with two clients, forgetting each one deleted.
func (b *bench) deleteAll(ctx context.Context, ids []string) {
	next := make(chan string)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for id := range next {
				if err := b.c.Delete(ctx, id); err == nil {
					b.forget(id)
				}
			}
		})
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		next <- id
	}
	close(next)
	wg.Wait()
}

// Cleanup deletes every image carrying the benchmark's tag, such as those a
// run with -keep or an interrupted run left behind, and returns how many.
func Cleanup(ctx context.Context, cfg Config) (int, error) {
	c, err := NewClient(cfg.Endpoint, cfg.Identity, 2)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		return 0, err
	}
	b := &bench{cfg: cfg, c: c, rep: &Report{}, made: map[string]bool{}}
	b.cleanup(ctx)
	if len(b.rep.Errors) > 0 {
		return 0, errors.New(strings.Join(b.rep.Errors, "; "))
	}
	return len(b.deleted), nil
}

// showLoad measures how many shows per second the server answers to
// Concurrent clients at once, each on its own kept-alive connection, for
// Duration or until each has made ten times MaxOps requests.
func (b *bench) showLoad(ctx context.Context, r int) error {
	n := max(b.cfg.Concurrent, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Warm every connection first, untimed.
	for k := range n {
		if _, _, err := b.c.Show(ctx, b.seeds[pick(-1-k, len(b.seeds))]); err != nil {
			return err
		}
	}
	var (
		wg    sync.WaitGroup
		total atomic.Int64
		first error
		mu    sync.Mutex
	)
	start := time.Now()
	deadline := start.Add(b.cfg.Duration)
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10*b.cfg.MaxOps && time.Now().Before(deadline); i++ {
				if _, _, err := b.c.Show(ctx, b.seeds[pick(k*10*b.cfg.MaxOps+i, len(b.seeds))]); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	took := time.Since(start)
	v := float64(total.Load()) / took.Seconds()
	b.rep.set(r, ScShowLoad, "ops_per_s", "ops/s", v, int(total.Load()))
	b.logf("%-10s %d clients, n=%d: %.0f ops/s", ScShowLoad, n, total.Load(), v)
	return nil
}

// cpuTime returns the CPU time the server's processes have used so far,
// or 0 without -pid.
func (b *bench) cpuTime() time.Duration {
	if b.procs == nil {
		return 0
	}
	return b.procs.CPUTime()
}

// cpuPerGB records the server's CPU seconds per GB (10^9 bytes) of
// transfers that moved size bytes in all and used cpu, when the server's
// processes are known.
func (b *bench) cpuPerGB(r int, sc string, cpu time.Duration, size int64, transfers int) {
	if b.procs == nil || size <= 0 {
		return
	}
	v := cpu.Seconds() / (float64(size) / 1e9)
	b.rep.set(r, sc, "cpu_s_per_gb", "CPU-s/GB", v, transfers)
	b.logf("%-10s server CPU %.2fs: %.2f CPU-s/GB", sc, cpu.Seconds(), v)
}
