package main

import (
	"crypto/md5"
	"crypto/sha512"
	"hash"
	"time"
)

// Calibration is how fast this machine hashes on one core when the run
// starts: Glance's upload path is md5 then sha512, so these figures say how
// a run on a busy or slower machine compares with one taken elsewhere.
type Calibration struct {
	MD5MBps    float64 `json:"md5_mb_per_s"`
	SHA512MBps float64 `json:"sha512_mb_per_s"`
}

// Calibrate hashes size bytes with md5 and with sha512 on one goroutine.
func Calibrate(size int64) Calibration {
	buf := make([]byte, 1<<20)
	_, _ = NewStream(9, int64(len(buf))).Read(buf)
	rate := func(h hash.Hash) float64 {
		start := time.Now()
		for n := int64(0); n < size; n += int64(len(buf)) {
			h.Write(buf)
		}
		return MBps(size, time.Since(start))
	}
	return Calibration{MD5MBps: rate(md5.New()), SHA512MBps: rate(sha512.New())}
}
