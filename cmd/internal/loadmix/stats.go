package loadmix

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Histogram counts latencies in buckets whose bounds grow by a factor of
// 2^(1/8) (about 9%) from one microsecond, so a percentile read from it is
// within 9% of the true value. The largest latency is also kept exactly.
type Histogram struct {
	counts [histBuckets]int64
	n      int64
	sum    time.Duration
	max    time.Duration
}

// histBuckets covers one microsecond to 2^32 µs (more than an hour).
const histBuckets = 8*32 + 1

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	return min(int(math.Ceil(8*math.Log2(us))), histBuckets-1)
}

// upper is the upper bound of bucket i.
func upper(i int) time.Duration {
	return time.Duration(math.Exp2(float64(i)/8) * float64(time.Microsecond))
}

// Add records one latency.
func (h *Histogram) Add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of latencies recorded.
func (h *Histogram) Count() int64 { return h.n }

// Max is the largest latency recorded.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average latency, 0 when none was recorded.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Percentile returns the upper bound of the bucket holding the p-th
// percentile (0 < p <= 100) by the nearest-rank method, never above Max;
// 0 when nothing was recorded.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := min(max(int64(math.Ceil(p/100*float64(h.n))), 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(upper(i), h.max)
		}
	}
	return h.max
}

// Series is what happened to one kind of request.
type Series struct {
	// Count is every request sent, whatever its outcome.
	Count int64
	// Tolerated counts the answers that are not the request's success
	// but that the mix may legitimately get, such as a 404 for an image
	// another client deleted a moment before.
	Tolerated int64
	// Errors counts unexpected statuses, transport errors and requests
	// that did not end within the bound.
	Errors int64
	// Latency holds every request's time, from sending it to the last
	// byte of the answer (or to the error).
	Latency Histogram
}

func (s *Series) merge(o *Series) {
	s.Count += o.Count
	s.Tolerated += o.Tolerated
	s.Errors += o.Errors
	s.Latency.Merge(&o.Latency)
}

// maxSamples bounds the error messages a Stats keeps.
const maxSamples = 20

// Stats is what a run (or a stretch of it) did, by kind of request.
type Stats struct {
	Requests map[string]*Series
	// Waits are what is waited for across requests, such as an import
	// between its acceptance and its image becoming active; they are not
	// requests and stay out of Total.
	Waits map[string]*Series
	// Ops counts the operations of the mix that were started, by name.
	Ops map[string]int64
	// Samples holds the first error messages (at most 20).
	Samples []string
	// Elapsed is the wall time the stats cover.
	Elapsed time.Duration
}

// NewStats returns empty stats.
func NewStats() *Stats {
	return &Stats{Requests: map[string]*Series{}, Waits: map[string]*Series{}, Ops: map[string]int64{}}
}

func (s *Stats) series(kind string) *Series { return seriesIn(s.Requests, kind) }

func seriesIn(m map[string]*Series, kind string) *Series {
	ser := m[kind]
	if ser == nil {
		ser = &Series{}
		m[kind] = ser
	}
	return ser
}

func (s *Stats) record(kind string, d time.Duration, tolerated bool, err error) {
	s.recordIn(s.series(kind), d, tolerated, err)
}

func (s *Stats) recordWait(kind string, d time.Duration, err error) {
	s.recordIn(seriesIn(s.Waits, kind), d, false, err)
}

func (s *Stats) recordIn(ser *Series, d time.Duration, tolerated bool, err error) {
	ser.Count++
	ser.Latency.Add(d)
	switch {
	case err != nil:
		ser.Errors++
		if len(s.Samples) < maxSamples {
			s.Samples = append(s.Samples, err.Error())
		}
	case tolerated:
		ser.Tolerated++
	}
}

// Merge adds o to s.
func (s *Stats) Merge(o *Stats) {
	for k, ser := range o.Requests {
		s.series(k).merge(ser)
	}
	for k, ser := range o.Waits {
		seriesIn(s.Waits, k).merge(ser)
	}
	for k, n := range o.Ops {
		s.Ops[k] += n
	}
	for _, m := range o.Samples {
		if len(s.Samples) >= maxSamples {
			break
		}
		s.Samples = append(s.Samples, m)
	}
	s.Elapsed += o.Elapsed
}

// Total is every kind of request in one series.
func (s *Stats) Total() Series {
	var t Series
	for _, ser := range s.Requests {
		t.merge(ser)
	}
	return t
}

// Errors is the number of requests (and waits) that failed.
func (s *Stats) Errors() int64 {
	var n int64
	for _, m := range []map[string]*Series{s.Requests, s.Waits} {
		for _, ser := range m {
			n += ser.Errors
		}
	}
	return n
}

// Err summarises the failures, nil when there were none.
func (s *Stats) Err() error {
	n := s.Errors()
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d failures; the first:\n  %s", n, strings.Join(s.Samples, "\n  "))
}

// Kinds returns the kinds of request recorded, sorted.
func (s *Stats) Kinds() []string {
	ks := make([]string, 0, len(s.Requests))
	for k := range s.Requests {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// WriteTable writes one line per kind of request (count, tolerated,
// errors, p50, p95, p99 and max in milliseconds), a total line, and one
// line per kind of wait.
func (s *Stats) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-14s %8s %9s %7s %9s %9s %9s %9s\n", "request", "count", "tolerated", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms")
	line := func(name string, ser *Series) {
		h := &ser.Latency
		fmt.Fprintf(&b, "%-14s %8d %9d %7d %9.2f %9.2f %9.2f %9.2f\n", name, ser.Count, ser.Tolerated, ser.Errors,
			Millis(h.Percentile(50)), Millis(h.Percentile(95)), Millis(h.Percentile(99)), Millis(h.Max()))
	}
	for _, k := range s.Kinds() {
		line(k, s.Requests[k])
	}
	t := s.Total()
	line("all", &t)
	waits := make([]string, 0, len(s.Waits))
	for k := range s.Waits {
		waits = append(waits, k)
	}
	slices.Sort(waits)
	for _, k := range waits {
		line(k, s.Waits[k])
	}
	if s.Elapsed > 0 {
		fmt.Fprintf(&b, "%d requests in %.1f s: %.1f requests/s\n", t.Count, s.Elapsed.Seconds(), float64(t.Count)/s.Elapsed.Seconds())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Millis is d in milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
