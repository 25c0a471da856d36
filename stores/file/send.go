package file

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// How a download leaves the file (filesystem_store_download).
const (
	// DownloadSendfile hands the open file to the connection, which sends
	// it with sendfile(2): the kernel moves page-cache pages to the socket
	// and the receiver copies from them.
	DownloadSendfile = "sendfile"
	// DownloadCopy reads the file into a buffer of CopyBufferSize bytes and
	// writes the buffer to the connection: two copies in the server, and
	// the receiver copies from data that one of them has just written.
	DownloadCopy = "copy"
	// DownloadAuto measures both on loopback once per process, in the
	// background from the first New with it, and uses the faster (sendfile
	// until the measurement has ended, and unless copying is clearly
	// faster, since it costs the server more CPU).
	DownloadAuto = "auto"
)

// CopyBufferSize is the buffer of a download that DownloadCopy serves.
const CopyBufferSize = 1 << 20

// copyBufs holds the buffers of downloads served by copying.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, CopyBufferSize); return &b }}

// Calibration is the outcome of the measurement DownloadAuto makes: the
// best of several sends of a file from the page cache to a loopback TCP
// connection, read 1 MiB at a time by another goroutine, each way.
type Calibration struct {
	SendfileMBps float64 // MB/s, MB = 10^6 bytes
	CopyMBps     float64
	Copy         bool          // copying won by more than copyMargin
	Took         time.Duration // the whole measurement, the file's write included
	Err          error         // the measurement failed; sendfile is used
}

const (
	calibrateBytes  = 32 << 20 // bytes of the file sent in each trial
	calibrateTrials = 5        // trials of each way, alternating
	// copyMargin is how much faster copying must be to be chosen: sendfile
	// costs the server less CPU, which other requests can use.
	copyMargin = 1.10
)

// calib is the process's one measurement.
var calib = struct {
	once    sync.Once
	started atomic.Bool
	done    chan struct{}
	copy    atomic.Bool
	result  Calibration // set before done is closed
}{done: make(chan struct{})}

// startCalibration measures the two ways in the background, once per
// process, and reports the outcome to log.
func startCalibration(log *slog.Logger) {
	calib.once.Do(func() {
		calib.started.Store(true)
		go func() {
			c := Calibrate(os.TempDir())
			calib.result = c
			calib.copy.Store(c.Copy)
			close(calib.done)
			if c.Err != nil {
				log.Warn("file store: downloads use sendfile; measuring the ways to send failed", "err", c.Err)
				return
			}
			way := DownloadSendfile
			if c.Copy {
				way = DownloadCopy
			}
			log.Info("file store: downloads measured on loopback", "use", way,
				"sendfile_mb_per_s", int(c.SendfileMBps), "copy_mb_per_s", int(c.CopyMBps), "took_ms", c.Took.Milliseconds())
		}()
	})
}

// Calibrated returns the measurement of DownloadAuto once it has ended; ok
// is false while it runs or when no store asked for it.
func Calibrated() (c Calibration, ok bool) {
	if !calib.started.Load() {
		return Calibration{}, false
	}
	select {
	case <-calib.done:
		return calib.result, true
	default:
		return Calibration{}, false
	}
}

// WaitCalibrated waits up to d for the measurement of DownloadAuto and
// returns it; ok is false if it has not ended by then or was never started.
func WaitCalibrated(d time.Duration) (c Calibration, ok bool) {
	if !calib.started.Load() {
		return Calibration{}, false
	}
	select {
	case <-calib.done:
		return calib.result, true
	case <-time.After(d):
		return Calibration{}, false
	}
}

// copies reports whether the driver's downloads go through a buffer.
func (d *Driver) copies() bool {
	switch d.download {
	case DownloadCopy:
		return true
	case DownloadAuto:
		return calib.copy.Load()
	}
	return false
}

// Calibrate writes a file of calibrateBytes in dir, sends it to a loopback
// connection with sendfile and by copying, calibrateTrials times each, and
// removes it. It never fails: an error is in the result, which then chooses
// sendfile.
func Calibrate(dir string) Calibration {
	start := time.Now()
	c := calibrate(dir)
	c.Took = time.Since(start)
	if c.Err == nil {
		c.Copy = c.CopyMBps > copyMargin*c.SendfileMBps
	}
	return c
}

func calibrate(dir string) Calibration {
	f, err := os.CreateTemp(dir, "glance-go-calibrate-*")
	if err != nil {
		return Calibration{Err: err}
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// Any bytes but zeros, which a filesystem might store as holes.
	block := make([]byte, CopyBufferSize)
	for i := range block {
		block[i] = byte(i*131 + i>>12)
	}
	for range calibrateBytes / CopyBufferSize {
		if _, err := f.Write(block); err != nil {
			return Calibration{Err: err}
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Calibration{Err: err}
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- conn
	}()
	out, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		return Calibration{Err: err}
	}
	defer out.Close()
	in, ok := <-accepted
	if !ok {
		return Calibration{Err: errors.New("stores/file: calibration: no connection accepted")}
	}
	defer in.Close()

	// The receiver reads each trial's bytes 1 MiB at a time, as a client
	// does, and reports when it has them all.
	got := make(chan error)
	want := make(chan int64)
	go func() {
		buf := make([]byte, 1<<20)
		for n := range want {
			var err error
			for n > 0 && err == nil {
				var k int
				k, err = in.Read(buf)
				n -= int64(k)
			}
			got <- err
		}
	}()
	defer close(want)

	var c Calibration
	buf := make([]byte, CopyBufferSize)
	for i := range 2 * calibrateTrials {
		viaCopy := i%2 == 1
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			c.Err = err
			return c
		}
		if err := out.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			c.Err = err
			return c
		}
		if err := in.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			c.Err = err
			return c
		}
		t := time.Now()
		want <- calibrateBytes
		lr := &io.LimitedReader{R: f, N: calibrateBytes}
		var err error
		if viaCopy {
			_, err = io.CopyBuffer(writerOnly{out}, readerOnly{lr}, buf)
		} else {
			_, err = io.Copy(out, lr) // *net.TCPConn's ReadFrom: sendfile
		}
		if rerr := <-got; err == nil {
			err = rerr
		}
		if err != nil {
			c.Err = fmt.Errorf("stores/file: calibration: %w", err)
			return c
		}
		v := float64(calibrateBytes) / time.Since(t).Seconds() / 1e6
		if viaCopy {
			c.CopyMBps = max(c.CopyMBps, v)
		} else {
			c.SendfileMBps = max(c.SendfileMBps, v)
		}
	}
	return c
}

// writerOnly hides a writer's ReadFrom, so that a copy into it goes
// through the copy's buffer.
type writerOnly struct{ io.Writer }

// readerOnly hides a reader's WriteTo.
type readerOnly struct{ io.Reader }

// copyTo writes the rest of r's section to w through a pooled buffer,
// hiding w's ReadFrom.
func (r *reader) copyTo(w io.Writer) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(writerOnly{w}, readerOnly{&r.lr}, *buf)
}
