package main

import (
	"context"
	"fmt"
	"time"
)

// downloadTrials is how many times, in each round, the image and each
// plain server are read in turn; the medians are recorded.
const downloadTrials = 3

// downloads measures the download of image id (size bytes, md5 sum)
// against the loopback yardstick. Each of the image, the plain sendfile
// server and the plain copying server is read once untimed, then the three
// are read in turn downloadTrials times, timed, each trial starting with
// another of them, so that a slow stretch of a shared machine weighs on
// all three alike. The client is the one every
// download uses: net/http's Transport with a 256 KiB read buffer, the body
// read 1 MiB at a time into one buffer and discarded.
func (b *bench) downloads(ctx context.Context, r int, id string, size int64, sum string) error {
	lb, err := newLoopback(size, b.cfg.Yardstick)
	if err != nil {
		return fmt.Errorf("loopback yardstick: %w", err)
	}
	defer lb.close()
	image := func() (time.Duration, error) {
		n, _, hdr, took, err := b.c.Download(ctx, id, false)
		switch {
		case err != nil:
			return 0, err
		case n != size:
			return 0, fmt.Errorf("download of %s returned %d bytes, want %d", id, n, size)
		case hdr != "" && hdr != sum:
			return 0, fmt.Errorf("download of %s: Content-MD5 %s, want %s", id, hdr, sum)
		}
		return took, nil
	}
	plain := func(url string) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			n, took, err := b.c.fetch(ctx, url)
			if err == nil && n != size {
				err = fmt.Errorf("loopback download from %s returned %d bytes, want %d", url, n, size)
			}
			if err != nil {
				return 0, fmt.Errorf("loopback yardstick: %w", err)
			}
			return took, nil
		}
	}
	reads := []func() (time.Duration, error){image, plain(lb.url), plain(lb.url + copySuffix)}
	for _, read := range reads {
		if _, err := read(); err != nil {
			return err
		}
	}
	var rates [3][]float64
	var cpu time.Duration
	for t := range downloadTrials {
		// Each trial starts with another of the three, so that none is
		// always read right after the same other one.
		for j := range reads {
			k := (t + j) % len(reads)
			read := reads[k]
			c0 := b.cpuTime()
			took, err := read()
			if err != nil {
				return err
			}
			if k == 0 {
				cpu += b.cpuTime() - c0
			}
			rates[k] = append(rates[k], MBps(size, took))
		}
	}
	v, sv, cv := Median(rates[0]), Median(rates[1]), Median(rates[2])
	b.cpuPerGB(r, ScDownload, cpu, downloadTrials*size, downloadTrials)
	b.rep.set(r, ScDownload, "mb_per_s", "MB/s", v, downloadTrials)
	b.rep.set(r, ScDownload, "loopback_mb_per_s", "MB/s", sv, downloadTrials)
	b.rep.set(r, ScDownload, "loopback_copy_mb_per_s", "MB/s", cv, downloadTrials)
	b.rep.set(r, ScDownload, "share_of_loopback", "%", 100*v/max(sv, cv), downloadTrials)
	b.logf("%-10s %s, median of %d: %.0f MB/s (%s); plain servers: sendfile %.0f (%s), copy %.0f (%s); %.0f%% of the faster",
		ScDownload, ByteSize(size), downloadTrials, v, rateList(rates[0]), sv, rateList(rates[1]), cv, rateList(rates[2]), 100*v/max(sv, cv))
	return nil
}

// rateList prints rates in MB/s, separated by spaces.
func rateList(vs []float64) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.0f", v)
	}
	return s
}
