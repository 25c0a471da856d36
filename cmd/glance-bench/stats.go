package main

import (
	"math"
	"slices"
	"time"
)

// Latencies collects the durations of one scenario's operations.
type Latencies struct {
	d []time.Duration
}

// Add records one operation.
func (l *Latencies) Add(d time.Duration) { l.d = append(l.d, d) }

// Len is the number of operations recorded.
func (l *Latencies) Len() int { return len(l.d) }

// Percentile returns the p-th percentile (0 < p <= 100) in milliseconds by
// the nearest-rank method, or NaN when nothing was recorded.
func (l *Latencies) Percentile(p float64) float64 {
	if len(l.d) == 0 {
		return math.NaN()
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return ms(s[rank-1])
}

// Total is the sum of the recorded durations.
func (l *Latencies) Total() time.Duration {
	var t time.Duration
	for _, d := range l.d {
		t += d
	}
	return t
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Median returns the median of the values that are not NaN (the mean of the
// two middle ones for an even count), or NaN when there are none.
func Median(vs []float64) float64 {
	s := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// MBps converts bytes moved in d into decimal megabytes per second.
func MBps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return math.NaN()
	}
	return float64(bytes) / 1e6 / d.Seconds()
}
