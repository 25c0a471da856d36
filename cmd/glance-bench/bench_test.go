package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smallConfig is a run that takes well under a second against the fake.
func smallConfig(endpoint string) Config {
	return Config{
		Endpoint: endpoint, Identity: Identity{Project: "bench", User: "bench", Roles: "admin"},
		Rounds: 2, Seed: 30, SeedClients: 2, CreateClients: 3, UploadSize: 1<<20 + 3, Concurrent: 3, ConcurrentSize: 64 << 10,
		Skip: map[string]bool{}, Duration: 150 * time.Millisecond, MaxOps: 20, Timeout: time.Minute,
	}
}

func TestRunReportsEveryScenario(t *testing.T) {
	f, srv := newFakeGlance(t)
	cfg := smallConfig(srv.URL)
	cfg.Pids = []int{os.Getpid()}
	cfg.CalibrateBytes = 4 << 20
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	want := map[string]bool{}
	for _, l := range labels {
		want[l.scenario+"/"+l.metric] = true
	}
	for _, m := range rep.Metrics {
		key := m.Scenario + "/" + m.Name
		if !want[key] {
			t.Errorf("unexpected metric %s", key)
		}
		delete(want, key)
		wantRounds := cfg.Rounds
		if m.Scenario == ScSeed {
			wantRounds = 1 // the population runs once
		}
		if len(m.Rounds) != wantRounds {
			t.Errorf("%s: %d rounds, want %d", key, len(m.Rounds), wantRounds)
		}
		// The fake's CPU time during a 1 MiB transfer may round to 0 ticks.
		if math.IsNaN(m.Median) || m.Median < 0 || (m.Median == 0 && m.Name != "cpu_s_per_gb") {
			t.Errorf("%s: median %v, want a positive number", key, m.Median)
		}
		for i, n := range m.Samples {
			if n < 1 {
				t.Errorf("%s: round %d measured %d operations", key, i+1, n)
			}
		}
	}
	for k := range want {
		t.Errorf("missing metric %s", k)
	}
	if got := f.count(); got != 0 {
		t.Errorf("%d images left on the server after the run, want 0", got)
	}
	if rep.PeakRSS <= 0 || rep.Processes < 1 {
		t.Errorf("RSS of the test process not sampled: %d bytes, %d processes", rep.PeakRSS, rep.Processes)
	}
	if rep.Machine.MD5MBps <= 0 || rep.Machine.SHA512MBps <= 0 {
		t.Errorf("machine not rated: %+v", rep.Machine)
	}
	if f.patches.Load() == 0 {
		t.Error("no PATCH reached the server")
	}
}

func TestRunFindsBadData(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*fakeGlance, *Config)
		wantErr string
	}{
		{"checksum differs from the bytes sent", func(f *fakeGlance, _ *Config) { f.badSum = true }, "checksum"},
		{"download is short", func(f *fakeGlance, _ *Config) { f.short = true }, "returned"},
		{"server refuses identity headers", func(f *fakeGlance, c *Config) { f.noAuth = true; c.Identity.None = true }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeGlance(t)
			cfg := smallConfig(srv.URL)
			cfg.Rounds = 1
			cfg.Skip = map[string]bool{ScCreate: true, ScCreateLoad: true, ScShow: true, ScPatch: true, ScList25: true, ScList1000: true}
			tc.setup(f, &cfg)
			rep, err := Run(context.Background(), cfg)
			if tc.wantErr == "" {
				if err == nil || !strings.Contains(err.Error(), "401") {
					t.Fatalf("got %v, want a 401 start-up error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(rep.Errors, "\n"), tc.wantErr) {
				t.Fatalf("errors %q do not mention %q", rep.Errors, tc.wantErr)
			}
			if got := f.count(); got != 0 {
				t.Errorf("%d images left after a failed run", got)
			}
		})
	}
}

func TestRunSkipAndKeep(t *testing.T) {
	f, srv := newFakeGlance(t)
	cfg := smallConfig(srv.URL)
	cfg.Rounds = 1
	cfg.Keep = true
	cfg.Chunked = true
	cfg.Skip = map[string]bool{ScList1000: true, ScDownload: true, ScConcurrent: true, ScCreate: true, ScCreateLoad: true}
	rep, err := Run(context.Background(), cfg)
	if err != nil || len(rep.Errors) > 0 {
		t.Fatalf("run: %v %v", err, rep.Errors)
	}
	for _, m := range rep.Metrics {
		if cfg.Skip[m.Scenario] {
			t.Errorf("skipped scenario %s was measured", m.Scenario)
		}
	}
	if f.chunked.Load() == 0 {
		t.Error("-chunked upload arrived with a Content-Length")
	}
	// Kept: the seeded images stay, the uploaded one is gone.
	if got, want := f.count(), cfg.Seed; got != want {
		t.Fatalf("%d images kept, want %d", got, want)
	}
	// A second run reuses the seeded images instead of making more.
	cfg.Skip = map[string]bool{ScCreate: true, ScCreateLoad: true, ScPatch: true, ScList25: true, ScList1000: true, ScUpload: true, ScDownload: true, ScConcurrent: true}
	if rep, err := Run(context.Background(), cfg); err != nil || len(rep.Errors) > 0 {
		t.Fatalf("second run: %v %v", err, rep.Errors)
	}
	f.mu.Lock()
	made := f.nextID
	f.mu.Unlock()
	if made != cfg.Seed+1 {
		t.Errorf("server created %d images over two runs, want %d (seeds reused)", made, cfg.Seed+1)
	}
	// Everything kept carries the benchmark's tag: -cleanup finds it all.
	n, err := Cleanup(context.Background(), cfg)
	if err != nil || n != cfg.Seed || f.count() != 0 {
		t.Errorf("cleanup deleted %d (err %v), %d left; want %d deleted, 0 left", n, err, f.count(), cfg.Seed)
	}
}

func TestRunRejectsBadStarts(t *testing.T) {
	_, srv := newFakeGlance(t)
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"unreachable", func(c *Config) { c.Endpoint = "http://127.0.0.1:1" }, "cannot reach"},
		{"not loopback", func(c *Config) { c.Endpoint = "http://192.168.1.10:9292" }, "not a loopback"},
		{"not a URL", func(c *Config) { c.Endpoint = "127.0.0.1:9292" }, "invalid endpoint"},
		{"unknown scenario", func(c *Config) { c.Skip["lists"] = true }, "unknown scenario"},
		{"zero rounds", func(c *Config) { c.Rounds = 0 }, "-rounds"},
		{"no seed clients", func(c *Config) { c.SeedClients = 0 }, "-seed-clients"},
		{"too many create clients", func(c *Config) { c.CreateClients = 65 }, "-create-clients"},
		{"no such pid", func(c *Config) { c.Pids = []int{1 << 30} }, "no such process"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig(srv.URL)
			tc.mutate(&cfg)
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestRunCreatesConcurrently checks that the population and the
// create-load scenario create with as many clients at once as asked, that
// each reports its rate, and that a failed create is reported and leaves
// nothing behind.
func TestRunCreatesConcurrently(t *testing.T) {
	only := func(keep ...string) map[string]bool {
		skip := map[string]bool{}
		for _, s := range Scenarios {
			skip[s] = !slices.Contains(keep, s)
		}
		return skip
	}
	tests := []struct {
		name      string
		seed      int    // seed clients
		load      int    // create-load clients
		keep      string // the one scenario run
		failAt    int64  // the create that fails, 0 for none
		wantMax   int64  // most creates at once
		wantSc    string // the scenario whose rate is reported
		wantErrIn string
	}{
		{"population with 16 clients", 16, 1, ScShow, 0, 16, ScSeed, ""},
		{"population with 1 client", 1, 16, ScShow, 0, 1, ScSeed, ""},
		{"create-load with 5 clients", 1, 5, ScCreateLoad, 0, 5, ScCreateLoad, ""},
		{"population fails", 4, 1, ScShow, 7, 4, "", "seeding"},
		{"create-load fails", 1, 4, ScCreateLoad, 9, 4, "", ScCreateLoad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFakeGlance(t)
			f.createDelay = 20 * time.Millisecond
			f.failCreate.Store(tc.failAt)
			cfg := smallConfig(srv.URL)
			cfg.Rounds, cfg.Seed, cfg.SeedClients, cfg.CreateClients = 1, 48, tc.seed, tc.load
			cfg.Duration, cfg.MaxOps = 2*time.Second, 23
			cfg.Skip = only(tc.keep)
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.maxCreating.Load(); got != tc.wantMax {
				t.Errorf("%d creates at once, want %d", got, tc.wantMax)
			}
			if got := f.count(); got != 0 {
				t.Errorf("%d images left after the run", got)
			}
			errs := strings.Join(rep.Errors, "\n")
			if tc.wantErrIn != "" {
				if !strings.Contains(errs, tc.wantErrIn) || !strings.Contains(errs, "500") {
					t.Errorf("errors %q do not report the failed create in %s", errs, tc.wantErrIn)
				}
				return
			}
			if errs != "" {
				t.Fatalf("errors: %s", errs)
			}
			var ops *Metric
			for _, m := range rep.Metrics {
				if m.Scenario == tc.wantSc && m.Name == "ops_per_s" {
					ops = m
				}
			}
			if ops == nil || !(ops.Median > 0) {
				t.Fatalf("no rate reported for %s: %+v", tc.wantSc, ops)
			}
			// Every create holds 20 ms: k clients cannot pass k/20ms.
			if limit := float64(tc.wantMax) / 0.020; ops.Median > limit {
				t.Errorf("%s: %.0f ops/s, more than %d clients can make (%.0f)", tc.wantSc, ops.Median, tc.wantMax, limit)
			}
			wantN := cfg.Seed
			if tc.wantSc == ScCreateLoad {
				wantN = cfg.MaxOps // shared by the clients
			}
			if ops.Samples[0] != wantN {
				t.Errorf("%s measured %d creates, want %d", tc.wantSc, ops.Samples[0], wantN)
			}
		})
	}
}

func TestRunStopsAtTimeout(t *testing.T) {
	f, srv := newFakeGlance(t)
	cfg := smallConfig(srv.URL)
	cfg.Rounds = 50
	cfg.Duration = time.Second
	cfg.MaxOps = 1000000
	cfg.Timeout = 300 * time.Millisecond
	start := time.Now()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("run took %s with a 300ms timeout", took)
	}
	if len(rep.Errors) == 0 {
		t.Error("a run cut short by its timeout reported no error")
	}
	if got := f.count(); got != 0 {
		t.Errorf("%d images left after a timed-out run", got)
	}
}

func TestMainExitCodesAndJSON(t *testing.T) {
	_, srv := newFakeGlance(t)
	var out, errb bytes.Buffer
	args := []string{"-endpoint", srv.URL, "-rounds", "1", "-seed", "5", "-upload-size", "64KiB",
		"-concurrent", "2", "-concurrent-size", "16KiB", "-duration", "50ms", "-max-ops", "5", "-calibrate", "1048576",
		"-pid", strconv.Itoa(os.Getpid()), "-json", "-q"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	var doc struct {
		Metrics []struct {
			Scenario string     `json:"scenario"`
			Median   *float64   `json:"median"`
			Rounds   []*float64 `json:"rounds"`
		} `json:"metrics"`
		UploadBytes int64 `json:"upload_bytes"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("-json output is not JSON: %v\n%s", err, out.String())
	}
	if doc.UploadBytes != 64<<10 || len(doc.Metrics) != len(labels) {
		t.Errorf("JSON has upload_bytes %d and %d metrics, want %d and %d", doc.UploadBytes, len(doc.Metrics), 64<<10, len(labels))
	}
	jsonFile := filepath.Join(t.TempDir(), "r.json")
	if code := run(append(args[:len(args)-2], "-q", "-json-out", jsonFile), io.Discard, io.Discard); code != 0 {
		t.Fatalf("-json-out run: exit %d", code)
	}
	if b, err := os.ReadFile(jsonFile); err != nil || !json.Valid(b) {
		t.Errorf("-json-out file: %v, valid JSON %v", err, json.Valid(b))
	}
	if errb.Len() != 0 {
		t.Errorf("-q still printed progress: %s", errb.String())
	}

	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"-endpoint", "http://127.0.0.1:1", "-q"}, 2},
		{[]string{"-upload-size", "lots"}, 2},
		{[]string{"-pid", "abc"}, 2},
		{[]string{"extra"}, 2},
	} {
		if code := run(tc.args, io.Discard, io.Discard); code != tc.want {
			t.Errorf("run(%q) = %d, want %d", tc.args, code, tc.want)
		}
	}
}

func TestWriteTableShowsMissingValues(t *testing.T) {
	rep := &Report{Endpoint: "http://127.0.0.1:9292", Rounds: 2, UploadSize: 1 << 30, ConcurrentSize: 128 << 20, Concurrent: 8}
	rep.set(0, ScShow, "p50_ms", "ms", 4.6, 100)
	rep.set(1, ScShow, "p50_ms", "ms", 5.0, 100)
	rep.set(0, ScCreate, "ops_per_s", "ops/s", 68, 300)
	rep.Metrics[0].Median = Median(rep.Metrics[0].Rounds)
	rep.Metrics[1].Median = Median(rep.Metrics[1].Rounds)
	var b bytes.Buffer
	if err := WriteTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"upload 1GiB", "8 concurrent uploads of 128MiB", "4.80", "68.0 -"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "create image") > strings.Index(out, "show p50") {
		t.Errorf("create should come before show:\n%s", out)
	}
}

// TestLoopBounds checks that a latency scenario stops at its operation
// bound, at its time bound, and goes past the time bound for a few samples.
func TestLoopBounds(t *testing.T) {
	tests := []struct {
		name     string
		maxOps   int
		duration time.Duration
		opTime   time.Duration
		wantMin  int
		wantMax  int
	}{
		{"operation bound", 7, time.Minute, time.Millisecond, 7, 7},
		{"time bound", 1000, 50 * time.Millisecond, 2 * time.Millisecond, 25, 25},
		{"past the time bound up to minOps", 1000, 20 * time.Millisecond, 3 * time.Millisecond, minOps, minOps},
		{"but no more than three times it", 1000, 4 * time.Millisecond, 5 * time.Millisecond, 3, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A fake clock that moves by opTime with every operation.
			var clock time.Time
			b := &bench{cfg: Config{MaxOps: tc.maxOps, Duration: tc.duration}, now: func() time.Time { return clock }}
			calls := 0
			lat, _, err := b.loop(context.Background(), func(int) (time.Duration, error) {
				calls++
				clock = clock.Add(tc.opTime)
				return tc.opTime, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n := lat.Len(); n < tc.wantMin || n > tc.wantMax {
				t.Errorf("%d operations measured, want %d..%d", n, tc.wantMin, tc.wantMax)
			}
			if calls != lat.Len()+warmUp {
				t.Errorf("%d calls for %d measured operations, want %d warm-up calls more", calls, lat.Len(), warmUp)
			}
		})
	}
}

// TestDirectNamesASilentServer checks that a server which accepts a request
// and never answers is reported as such once the time limit has passed.
func TestDirectNamesASilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c) // reads the request, answers nothing
	}()
	d := newDirect(ln.Addr().String(), 1, 200*time.Millisecond)
	req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/v2/images", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, _, err = d.roundTrip(context.Background(), req, true)
	if err == nil || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Fatalf("got %v, want no answer within 200ms", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %s with a 200ms limit", took)
	}
}
