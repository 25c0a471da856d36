package file_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/glance-go/glance-go/stores/file"
	"github.com/glance-go/glance-go/stores/storetest"
)

// writeRecorder records the sizes of its writes and whether its ReadFrom
// was called.
type writeRecorder struct {
	bytes.Buffer
	writes   []int
	readFrom bool
}

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

func (w *writeRecorder) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom = true
	return w.Buffer.ReadFrom(r)
}

// TestDownloadCopy checks that a copying driver writes a section through
// its buffer, in writes of at most CopyBufferSize, without the writer's
// ReadFrom, that the sendfile driver hands the section to ReadFrom, and
// that the Config's zero value does what the process's measurement chose.
func TestDownloadCopy(t *testing.T) {
	data := storetest.Pattern(3*file.CopyBufferSize + 12345)
	off, n := int64(777), int64(2*file.CopyBufferSize+5)
	tests := []struct {
		name, download string
		copies         bool
	}{{"copy", file.DownloadCopy, true}, {"sendfile", file.DownloadSendfile, false}}
	if !testing.Short() {
		newDriver(t, file.Config{}) // starts the measurement
		c, ok := file.WaitCalibrated(time.Minute)
		if !ok {
			t.Fatal("no calibration within a minute")
		}
		tests = append(tests, struct {
			name, download string
			copies         bool
		}{"zero value", "", c.Copy})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, file.Config{Download: tc.download})
			obj, err := d.Put(context.Background(), "img", bytes.NewReader(data), 0)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := d.Get(context.Background(), obj.URL, off, n)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			var w writeRecorder
			if got, err := io.Copy(&w, rc); err != nil || got != n {
				t.Fatalf("io.Copy = %d, %v; want %d bytes", got, err, n)
			}
			if !bytes.Equal(w.Bytes(), data[off:off+n]) {
				t.Fatal("io.Copy copied the wrong bytes")
			}
			if w.readFrom == tc.copies {
				t.Errorf("ReadFrom called: %v, want %v", w.readFrom, !tc.copies)
			}
			if tc.copies {
				if len(w.writes) != 3 {
					t.Errorf("writes %v, want 3", w.writes)
				}
				for _, k := range w.writes {
					if k > file.CopyBufferSize {
						t.Errorf("a write of %d bytes, more than the buffer", k)
					}
				}
			}
		})
	}
}

// TestCalibrate measures both ways on loopback and checks the choice
// follows the figures.
func TestCalibrate(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 320 MiB over loopback")
	}
	c := file.Calibrate(t.TempDir())
	if c.Err != nil {
		t.Fatal(c.Err)
	}
	t.Logf("sendfile %.0f MB/s, copy %.0f MB/s, copy chosen: %v, in %s", c.SendfileMBps, c.CopyMBps, c.Copy, c.Took)
	if c.SendfileMBps <= 0 || c.CopyMBps <= 0 {
		t.Fatalf("calibration = %+v, want both rates", c)
	}
	if want := c.CopyMBps > 1.1*c.SendfileMBps; c.Copy != want {
		t.Errorf("Copy = %v with sendfile %.0f and copy %.0f MB/s", c.Copy, c.SendfileMBps, c.CopyMBps)
	}
	if c := file.Calibrate(t.TempDir() + "/missing"); c.Err == nil || c.Copy {
		t.Errorf("calibration in a missing directory = %+v, want an error and sendfile", c)
	}
}

// TestAutoCalibrates checks that an auto driver starts the process's
// measurement, which ends within a bound.
func TestAutoCalibrates(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 320 MiB over loopback")
	}
	newDriver(t, file.Config{Download: file.DownloadAuto})
	c, ok := file.WaitCalibrated(time.Minute)
	if !ok {
		t.Fatal("no calibration within a minute")
	}
	if c.Err != nil || c.SendfileMBps <= 0 || c.CopyMBps <= 0 {
		t.Fatalf("calibration = %+v", c)
	}
	if c2, ok := file.Calibrated(); !ok || c2 != c {
		t.Errorf("Calibrated = %+v, %v; want %+v", c2, ok, c)
	}
}
