package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glance-go/glance-go/cmd/internal/loadmix"
)

// minutes returns n quiet minutes at rate requests/s, with goroutines g and
// RSS rss MB, then lets edit change them.
func minutes(n int, rate, g, rss float64, edit func(ms []soakMinute)) []soakMinute {
	ms := make([]soakMinute, n)
	for i := range ms {
		ms[i] = soakMinute{Minute: i + 1, PerSecond: rate, GoroutinesMax: g, RSSMax: rss * 1e6, FDsMax: 40}
	}
	if edit != nil {
		edit(ms)
	}
	return ms
}

func TestSoakVerdict(t *testing.T) {
	clean := loadmix.NewStats()
	failed := loadmix.NewStats()
	failed.Requests["delete"] = &loadmix.Series{Count: 10, Errors: 1}
	for _, tc := range []struct {
		name  string
		ms    []soakMinute
		stats *loadmix.Stats
		pass  bool
		line  string // a line the verdict must have
	}{
		{"steady", minutes(10, 300, 80, 40, nil), clean, true, "verdict: PASS"},
		{"first minute slower and smaller is fine", minutes(10, 300, 80, 40, func(ms []soakMinute) {
			ms[0].PerSecond, ms[0].RSSMax = 100, 10e6
		}), clean, true, "verdict: PASS"},
		{"an error", minutes(10, 300, 80, 40, nil), failed, false, "FAIL errors: 1 of 10"},
		{"throughput decays", minutes(10, 300, 80, 40, func(ms []soakMinute) {
			ms[9].PerSecond = 200
		}), clean, false, "FAIL throughput"},
		{"goroutines grow", minutes(10, 300, 80, 40, func(ms []soakMinute) {
			ms[9].GoroutinesMax = 200
		}), clean, false, "FAIL goroutines"},
		{"RSS grows", minutes(10, 300, 80, 40, func(ms []soakMinute) {
			ms[9].RSSMax = 120e6
		}), clean, false, "FAIL RSS"},
		{"open files grow", minutes(10, 300, 80, 40, func(ms []soakMinute) {
			ms[9].FDsMax = 400
		}), clean, false, "FAIL open fds"},
		{"metrics missing", minutes(10, 300, -1, 40, nil), clean, false, "FAIL goroutines: not read"},
		{"one minute is too short", minutes(1, 300, 80, 40, nil), clean, false, "FAIL too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verdict(tc.ms, tc.stats)
			text := strings.Join(v.lines, "\n")
			if v.pass != tc.pass || !strings.Contains(text, tc.line) {
				t.Errorf("pass %v, want %v; lines:\n%s", v.pass, tc.pass, text)
			}
		})
	}
}

func TestByMinute(t *testing.T) {
	var samples []soakSample
	for i := 1; i <= 13; i++ { // 10 s samples: minutes 1 and 2 whole, minute 3 a tenth
		s := loadmix.NewStats()
		s.Elapsed = 10 * time.Second
		s.Requests["show"] = &loadmix.Series{Count: int64(100 * i)}
		samples = append(samples, soakSample{At: time.Duration(i) * 10 * time.Second, Stats: s,
			Goroutines: float64(i), RSS: 1e6, FDs: 9, Images: i})
	}
	ms := byMinute(samples)
	if len(ms) != 3 {
		t.Fatalf("%d minutes, want 3", len(ms))
	}
	// Minute 2 holds samples 7..12: 100*(7+...+12) = 5700 requests in 60 s.
	if m := ms[1]; m.Requests != 5700 || m.PerSecond != 95 || m.GoroutinesMax != 12 || m.Images != 12 {
		t.Errorf("minute 2: %+v", m)
	}
	if m := ms[2]; m.Requests != 1300 || m.PerSecond != 130 {
		t.Errorf("minute 3: %+v", m)
	}
}

func TestScrape(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			fmt.Fprintln(w, "# HELP nothing here")
			return
		}
		fmt.Fprint(w, `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
glance_requests_total{route="/v2/images",status="200"} 17
process_resident_memory_bytes 3.1457280e+07
process_open_fds 23
`)
	}))
	defer s.Close()
	c := s.Client()
	m, err := scrape(context.Background(), c, s.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 42 || m["process_resident_memory_bytes"] != 31457280 || m["process_open_fds"] != 23 {
		t.Errorf("scraped %v", m)
	}
	if _, err := scrape(context.Background(), c, s.URL+"/other"); err == nil {
		t.Error("a page without go_goroutines was taken for metrics")
	}
}

func TestSoakFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-interval", "100ms"},
		{"-duration", "5s", "-interval", "10s"},
		{"-endpoint", "http://192.0.2.1:9292", "-duration", "1m"},
		{"extra"},
	} {
		var out, errOut strings.Builder
		if code := soak(args, &out, &errOut); code != 2 {
			t.Errorf("soak %q: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}
