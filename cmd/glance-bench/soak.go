package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/glance-go/glance-go/cmd/internal/loadmix"
)

// soakCmd is the subcommand that runs the soak: glance-bench soak [flags].
const soakCmd = "soak"

// soakSample is one interval of a soak run: the requests that ended in it
// and the server's state at its end, read from /metrics.
type soakSample struct {
	At         time.Duration // since the start of the mix
	Stats      *loadmix.Stats
	Goroutines float64 // go_goroutines; -1 when /metrics did not answer
	RSS        float64 // process_resident_memory_bytes
	FDs        float64 // process_open_fds
	Load       float64 // this machine's load average over one minute
	Images     int     // images in the mix's pool
}

// soakMinute is one minute of a soak run.
type soakMinute struct {
	Minute        int     `json:"minute"`
	Requests      int64   `json:"requests"`
	PerSecond     float64 `json:"requests_per_second"`
	P50           float64 `json:"p50_ms"`
	P95           float64 `json:"p95_ms"`
	P99           float64 `json:"p99_ms"`
	Max           float64 `json:"max_ms"`
	Errors        int64   `json:"errors"`
	Tolerated     int64   `json:"tolerated"`
	GoroutinesMax float64 `json:"goroutines_max"`
	RSSMax        float64 `json:"rss_max_bytes"`
	FDsMax        float64 `json:"open_fds_max"`
	LoadMax       float64 `json:"loadavg_max"`
	Images        int     `json:"images_at_end"`
	// P50ByKind is the median latency of the main kinds of request, in ms.
	P50ByKind map[string]float64 `json:"p50_ms_by_kind"`
}

// soakKinds are the kinds of request whose medians the second table shows.
var soakKinds = []string{"create", "show", "list", "patch", "delete", "upload", "download"}

// soakConfig is what a soak run needs besides the mix's own settings.
type soakConfig struct {
	mix      loadmix.Config
	metrics  string        // the server's /metrics URL
	interval time.Duration // between samples
	populate int           // images made before the mix, with 10 properties and 2 tags each
	jsonOut  string
	log      io.Writer
}

// soak parses the soak subcommand's args, runs it and returns the exit
// status: 0 when the run had no error and the verdict is met, 1 when not,
// 2 when it could not start.
func soak(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("glance-bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		sc    soakConfig
		quiet bool
	)
	fs.StringVar(&sc.mix.Endpoint, "endpoint", "http://127.0.0.1:9292", "Glance v2 endpoint (loopback only, trusted-auth flavor)")
	fs.DurationVar(&sc.mix.Duration, "duration", 10*time.Minute, "how long the mix runs")
	fs.IntVar(&sc.mix.Clients, "clients", 16, "clients running the mix at once")
	fs.DurationVar(&sc.mix.Bound, "bound", 10*time.Second, "time every request must end within")
	fs.DurationVar(&sc.mix.ImportBound, "import-bound", time.Minute, "time an import may take to make its image active")
	fs.IntVar(&sc.mix.MaxImages, "max-images", 500, "images the mix keeps at most (creates turn into deletes past it)")
	fs.StringVar(&sc.mix.Tag, "tag", "glance-soak", "tag put on every image the run makes")
	fs.StringVar(&sc.mix.Owner.Project, "project", "soak-owner", "X-Project-Id of the images' owner")
	fs.StringVar(&sc.mix.Member.Project, "member-project", "soak-member", "X-Project-Id of the project images are shared with")
	fs.StringVar(&sc.metrics, "metrics", "", "the server's Prometheus endpoint (default: ENDPOINT/metrics)")
	fs.DurationVar(&sc.interval, "interval", 10*time.Second, "time between samples")
	fs.IntVar(&sc.populate, "populate", 0, "images (10 properties, 2 tags) all the clients create before the mix")
	fs.StringVar(&sc.jsonOut, "json-out", "", "also write the per-minute figures as JSON to this file")
	fs.BoolVar(&quiet, "q", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "glance-bench soak: unexpected arguments %q\n", fs.Args())
		return 2
	}
	sc.mix.Owner.User, sc.mix.Owner.Roles = "soak-owner", "member,reader"
	sc.mix.Member.User, sc.mix.Member.Roles = "soak-member", "member,reader"
	if sc.metrics == "" {
		sc.metrics = strings.TrimRight(sc.mix.Endpoint, "/") + "/metrics"
	}
	if sc.interval < time.Second || sc.mix.Duration < sc.interval {
		fmt.Fprintln(stderr, "glance-bench soak: -interval must be at least 1s and no longer than -duration")
		return 2
	}
	if !quiet {
		sc.log = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := runSoak(ctx, sc, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "glance-bench soak: %v\n", err)
		return 2
	}
	if !ok {
		return 1
	}
	return 0
}

func (sc *soakConfig) logf(format string, args ...any) {
	if sc.log != nil {
		fmt.Fprintf(sc.log, format+"\n", args...)
	}
}

// runSoak runs the population (if any) and the mix, samples every
// interval, writes the per-minute table and the verdict to w, and says
// whether the run passed.
func runSoak(ctx context.Context, sc soakConfig, w io.Writer) (bool, error) {
	r, err := loadmix.NewRunner(sc.mix) // checks the settings, the endpoint among them
	if err != nil {
		return false, err
	}
	if u, err := url.Parse(sc.metrics); err != nil || !isLoopback(u.Hostname()) {
		return false, fmt.Errorf("-metrics %q: want an http URL on a loopback address", sc.metrics)
	}
	mc := &http.Client{Timeout: 5 * time.Second}
	if _, err := scrape(ctx, mc, sc.metrics); err != nil {
		return false, fmt.Errorf("the server's metrics: %w", err)
	}
	pass := true
	if sc.populate > 0 {
		pr, err := loadmix.NewRunner(sc.mix)
		if err != nil {
			return false, err
		}
		sc.logf("populating: %d images with 10 properties and 2 tags, %d clients", sc.populate, sc.mix.Clients)
		ps := pr.Populate(ctx, sc.populate, 10, 2)
		fmt.Fprintf(w, "Population: %d images by %d clients\n", sc.populate, sc.mix.Clients)
		if err := ps.WriteTable(w); err != nil {
			return false, err
		}
		if ps.Errors() > 0 {
			fmt.Fprintf(w, "population errors:\n  %s\n", strings.Join(ps.Samples, "\n  "))
			pass = false
		}
		fmt.Fprintln(w)
	}
	start := time.Now()
	done := make(chan *loadmix.Stats, 1)
	go func() { done <- r.Run(ctx) }()
	var samples []soakSample
	sample := func() soakSample {
		s := soakSample{At: time.Since(start), Stats: r.Interval(), Images: r.Images(), Goroutines: -1, RSS: -1, FDs: -1,
			Load: loadAverage()}
		if m, err := scrape(ctx, mc, sc.metrics); err == nil {
			s.Goroutines, s.RSS, s.FDs = m["go_goroutines"], m["process_resident_memory_bytes"], m["process_open_fds"]
		} else {
			sc.logf("metrics: %v", err)
		}
		t := s.Stats.Total()
		sc.logf("%7.0fs %6.0f req/s  p99 %7.2f ms  errors %d  goroutines %.0f  rss %.1f MB  images %d",
			s.At.Seconds(), float64(t.Count)/s.Stats.Elapsed.Seconds(), loadmix.Millis(t.Latency.Percentile(99)),
			t.Errors, s.Goroutines, s.RSS/1e6, s.Images)
		return s
	}
	tick := time.NewTicker(sc.interval)
	defer tick.Stop()
	var total *loadmix.Stats
	for total == nil {
		select {
		case <-tick.C:
			samples = append(samples, sample())
		case total = <-done:
		}
	}
	// The requests in flight when the time was up end within their bound:
	// they belong to the last minute.
	if last := sample(); last.Stats.Total().Count > 0 {
		last.At = min(last.At, sc.mix.Duration)
		samples = append(samples, last)
	}

	fmt.Fprintf(w, "Mix: %d clients for %v against %s (every request bounded by %v)\n",
		sc.mix.Clients, sc.mix.Duration, sc.mix.Endpoint, sc.mix.Bound)
	if err := total.WriteTable(w); err != nil {
		return false, err
	}
	minutes := byMinute(samples)
	fmt.Fprintln(w)
	writeMinutes(w, minutes)
	v := verdict(minutes, total)
	fmt.Fprintln(w)
	for _, line := range v.lines {
		fmt.Fprintln(w, line)
	}
	if total.Errors() > 0 {
		fmt.Fprintf(w, "errors:\n  %s\n", strings.Join(total.Samples, "\n  "))
	}
	if sc.jsonOut != "" {
		b, err := json.MarshalIndent(map[string]any{"clients": sc.mix.Clients, "duration_s": sc.mix.Duration.Seconds(),
			"minutes": minutes, "pass": v.pass && pass}, "", "  ")
		if err == nil {
			err = os.WriteFile(sc.jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			return false, err
		}
	}
	return v.pass && pass, nil
}

// byMinute folds the samples into minutes of the run: a sample belongs to
// the minute its interval's middle falls in.
func byMinute(samples []soakSample) []soakMinute {
	var (
		out   []soakMinute
		stats []*loadmix.Stats
	)
	for _, s := range samples {
		m := max(int((s.At-s.Stats.Elapsed/2)/time.Minute), 0)
		for len(out) <= m {
			out = append(out, soakMinute{Minute: len(out) + 1, GoroutinesMax: -1, RSSMax: -1, FDsMax: -1})
			stats = append(stats, loadmix.NewStats())
		}
		out[m].LoadMax = max(out[m].LoadMax, s.Load)
		stats[m].Merge(s.Stats)
		out[m].GoroutinesMax = max(out[m].GoroutinesMax, s.Goroutines)
		out[m].RSSMax = max(out[m].RSSMax, s.RSS)
		out[m].FDsMax = max(out[m].FDsMax, s.FDs)
		out[m].Images = s.Images
	}
	for i := range out {
		t := stats[i].Total()
		m := &out[i]
		m.Requests, m.Errors, m.Tolerated = t.Count, t.Errors, t.Tolerated
		if e := stats[i].Elapsed.Seconds(); e > 0 {
			m.PerSecond = float64(t.Count) / e
		}
		m.P50, m.P95 = loadmix.Millis(t.Latency.Percentile(50)), loadmix.Millis(t.Latency.Percentile(95))
		m.P99, m.Max = loadmix.Millis(t.Latency.Percentile(99)), loadmix.Millis(t.Latency.Max())
		m.P50ByKind = map[string]float64{}
		for _, k := range soakKinds {
			if ser := stats[i].Requests[k]; ser != nil {
				m.P50ByKind[k] = loadmix.Millis(ser.Latency.Percentile(50))
			}
		}
	}
	return out
}

func writeMinutes(w io.Writer, ms []soakMinute) {
	fmt.Fprintf(w, "| minute | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | goroutines (max) | RSS MB (max) | open fds (max) | images | load avg (max) |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range ms {
		fmt.Fprintf(w, "| %d | %d | %.0f | %.2f | %.2f | %.2f | %.0f | %d | %.0f | %.1f | %.0f | %d | %.1f |\n",
			m.Minute, m.Requests, m.PerSecond, m.P50, m.P95, m.P99, m.Max, m.Errors, m.GoroutinesMax, m.RSSMax/1e6, m.FDsMax, m.Images, m.LoadMax)
	}
	fmt.Fprintf(w, "\n| minute | p50 ms: %s |\n|---|%s\n", strings.Join(soakKinds, " | "), strings.Repeat("---|", len(soakKinds)))
	for _, m := range ms {
		fmt.Fprintf(w, "| %d |", m.Minute)
		for _, k := range soakKinds {
			fmt.Fprintf(w, " %.2f |", m.P50ByKind[k])
		}
		fmt.Fprintln(w)
	}
}

// loadAverage is this machine's load average over the last minute, 0 when
// /proc/loadavg cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}

// soakVerdict is whether a run passed, with one line per check.
type soakVerdict struct {
	pass  bool
	lines []string
}

// Slack allowed on top of 1.5 times the reference minute's figure.
const (
	goroutineSlack = 20
	rssSlack       = 32 << 20
	fdSlack        = 16
)

// verdict compares the last minute with the second (the first warms up;
// with fewer than three minutes, the first), and checks the errors.
func verdict(ms []soakMinute, total *loadmix.Stats) soakVerdict {
	v := soakVerdict{pass: true}
	check := func(ok bool, format string, args ...any) {
		word := "ok  "
		if !ok {
			word, v.pass = "FAIL", false
		}
		v.lines = append(v.lines, word+" "+fmt.Sprintf(format, args...))
	}
	n := total.Errors()
	check(n == 0, "errors: %d of %d requests", n, total.Total().Count)
	if len(ms) < 2 {
		check(false, "too short to judge growth: %d minute(s)", len(ms))
		return v
	}
	ref := ms[0]
	if len(ms) >= 3 {
		ref = ms[1]
	}
	last := ms[len(ms)-1]
	check(last.PerSecond >= 0.8*ref.PerSecond, "throughput: minute %d %.0f req/s, minute %d %.0f req/s (at least 80%% wanted)",
		last.Minute, last.PerSecond, ref.Minute, ref.PerSecond)
	bounded := func(name string, got, base, slack float64, unit float64, u string) {
		if got < 0 || base < 0 {
			check(false, "%s: not read from /metrics", name)
			return
		}
		limit := 1.5*base + slack
		check(got <= limit, "%s: minute %d max %.1f%s, minute %d max %.1f%s (at most %.1f%s)",
			name, last.Minute, got/unit, u, ref.Minute, base/unit, u, limit/unit, u)
	}
	bounded("goroutines", last.GoroutinesMax, ref.GoroutinesMax, goroutineSlack, 1, "")
	bounded("RSS", last.RSSMax, ref.RSSMax, rssSlack, 1e6, " MB")
	bounded("open fds", last.FDsMax, ref.FDsMax, fdSlack, 1, "")
	if v.pass {
		v.lines = append(v.lines, "verdict: PASS")
	} else {
		v.lines = append(v.lines, "verdict: FAIL")
	}
	return v
}

// scrape reads the unlabelled samples of a Prometheus text exposition.
func scrape(ctx context.Context, c *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.Fields(val)[0], 64); err == nil {
			out[name] = f
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if _, ok := out["go_goroutines"]; !ok {
		return nil, fmt.Errorf("GET %s: no go_goroutines: not the server's Prometheus metrics", url)
	}
	return out, nil
}
