package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStreamIsIndependentOfReadSizes(t *testing.T) {
	const size = 100003
	want, err := io.ReadAll(NewStream(7, size))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != size {
		t.Fatalf("stream gave %d bytes, want %d", len(want), size)
	}
	for _, chunk := range []int{1, 3, 7, 8, 9, 4096, 65537} {
		s := NewStream(7, size)
		var got bytes.Buffer
		buf := make([]byte, chunk)
		for {
			n, err := s.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("reads of %d bytes give a different stream", chunk)
		}
	}
	other, _ := io.ReadAll(NewStream(8, size))
	if bytes.Equal(other, want) {
		t.Error("seeds 7 and 8 give the same bytes")
	}
	if bytes.Count(want, want[:16]) > 1 {
		t.Error("the stream repeats its first 16 bytes")
	}
}

func TestStreamPagesDiffer(t *testing.T) {
	data, _ := io.ReadAll(NewStream(1, 4<<20))
	seen := map[string]int{}
	for i := 0; i+streamPage <= len(data); i += streamPage {
		page := string(data[i : i+streamPage])
		if j, ok := seen[page]; ok {
			t.Fatalf("page %d repeats page %d", i/streamPage, j)
		}
		seen[page] = i / streamPage
	}
	if len(seen) != 1024 {
		t.Fatalf("%d pages, want 1024", len(seen))
	}
}

func TestStreamMD5(t *testing.T) {
	for _, size := range []int64{0, 1, 8, 1<<20 + 5} {
		data, _ := io.ReadAll(NewStream(3, size))
		sum := md5.Sum(data)
		if got, want := StreamMD5(3, size), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("StreamMD5(3, %d) = %s, want %s", size, got, want)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		bad  bool
	}{
		{in: "1GiB", want: 1 << 30},
		{in: "128MiB", want: 128 << 20},
		{in: "64KiB", want: 64 << 10},
		{in: "1GB", want: 1e9},
		{in: "1.5MiB", want: 3 << 19},
		{in: "1g", want: 1 << 30},
		{in: "4096", want: 4096},
		{in: "0", want: 0},
		{in: "", bad: true},
		{in: "GiB", bad: true},
		{in: "-1MiB", bad: true},
		{in: "lots", bad: true},
		{in: "9999TiB", bad: true},
	}
	for _, tc := range tests {
		got, err := ParseByteSize(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseByteSize(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for in, want := range map[ByteSize]string{1 << 30: "1GiB", 128 << 20: "128MiB", 1000: "1000B", 3 << 19: "1536KiB"} {
		if got := in.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(in), got, want)
		}
	}
}

func TestPercentileAndMedian(t *testing.T) {
	var l Latencies
	if !math.IsNaN(l.Percentile(50)) {
		t.Error("percentile of nothing should be NaN")
	}
	for i := 100; i >= 1; i-- { // unsorted on purpose
		l.Add(time.Duration(i) * time.Millisecond)
	}
	for p, want := range map[float64]float64{50: 50, 99: 99, 100: 100, 1: 1, 0.1: 1} {
		if got := l.Percentile(p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5, math.NaN(), 1}, 3},
		{[]float64{7}, 7},
	}
	for _, tc := range tests {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(Median([]float64{math.NaN()})) {
		t.Error("median of only NaN should be NaN")
	}
	if got := MBps(345e6, time.Second); got != 345 {
		t.Errorf("MBps = %v, want 345", got)
	}
}

// TestRSSSamplerSumsTheTree builds a fake /proc with a parent, its worker
// and an unrelated process, and checks that only the first two are summed,
// for memory and for CPU time.
func TestRSSSamplerSumsTheTree(t *testing.T) {
	proc := t.TempDir()
	write := func(pid, ppid string, rssKB, hwmKB string) {
		d := filepath.Join(proc, pid)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		// utime 150 and stime 50 ticks (of 1/100 s) for each process.
		stat := pid + " (glance api) S " + ppid + " 1 1 0 -1 4194560 10 0 0 0 150 50 0 0\n"
		status := "Name:\tx\nVmHWM:\t" + hwmKB + " kB\nVmRSS:\t" + rssKB + " kB\n"
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "status"), []byte(status), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("100", "1", "1000", "1500")
	write("101", "100", "2000", "2500")
	write("200", "1", "9999", "9999")
	s, err := newRSSSampler(proc, []int{100})
	if err != nil {
		t.Fatal(err)
	}
	s.Sample()
	write("101", "100", "500", "2500") // the worker shrinks: the peak stays
	s.Sample()
	rss, hwm, n := s.Peak()
	if rss != 3000<<10 || hwm != 4000<<10 || n != 2 {
		t.Errorf("peak rss %d, hwm %d, %d processes; want %d, %d, 2", rss, hwm, n, 3000<<10, 4000<<10)
	}
	if got, want := s.CPUTime(), 4*time.Second; got != want {
		t.Errorf("CPUTime = %s, want %s", got, want)
	}
	if _, err := newRSSSampler(proc, []int{300}); err == nil {
		t.Error("a missing pid was accepted")
	}
}

func BenchmarkStream(b *testing.B) {
	buf := make([]byte, 1<<20)
	s := NewStream(1, math.MaxInt64)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := s.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
