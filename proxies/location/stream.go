package location

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"

	"github.com/glance-go/glance-go/stores"
)

// chunkSize is the unit in which upload data is read, hashed and handed to
// the driver.
const chunkSize = 1 << 20

// inFlight bounds the chunks one upload holds at a time: the memory an
// upload uses is at most inFlight × chunkSize, whatever the image size.
const inFlight = 4

var bufPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// errRead marks a failure of the client's data stream that is not already a
// domain error.
var errRead = errors.New("error reading image data")

// sums is what an upload measured.
type sums struct {
	n     int64
	md5   string
	multi string
}

// upload streams r into drv as image id. The md5 checksum and the multihash
// are computed each in its own goroutine, fed the same chunks the driver
// writes, so the upload runs at the pace of the slowest of them rather than
// their sum. Each of watchers (the format inspector) is fed the same chunks
// in a goroutine of its own; a watcher must not fail.
func upload(ctx context.Context, drv stores.Driver, id string, r io.Reader, size int64,
	newHash func() hash.Hash, watchers ...io.Writer) (stores.Object, sums, error) {
	t := newTee(r, append([]io.Writer{md5.New(), newHash()}, watchers...)...)
	obj, err := drv.Put(ctx, id, t, size)
	if err == nil && !t.eof && t.srcErr == nil {
		// The driver stopped before the end: more data than announced?
		var one [1]byte
		if n, rerr := t.Read(one[:]); n > 0 {
			err = fmt.Errorf("%w: expected %d bytes, got more", stores.ErrSizeMismatch, size)
		} else if rerr != io.EOF {
			err = rerr
		}
	}
	if err == nil && t.srcErr != nil {
		err = t.srcErr
	}
	if err == nil && obj.Size != t.n {
		err = fmt.Errorf("%w: the store wrote %d bytes of %d", stores.ErrSizeMismatch, obj.Size, t.n)
	}
	res := t.finish()
	if err != nil {
		if t.srcErr != nil {
			err = t.srcErr
		}
		return obj, sums{}, err
	}
	return obj, sums{n: t.n, md5: hex.EncodeToString(res[0]), multi: hex.EncodeToString(res[1])}, nil
}

// chunk is one buffer of data shared by the driver and the consumers; the
// last one to release it returns it to the pool.
type chunk struct {
	buf  *[]byte
	n    int
	refs atomic.Int32
	t    *tee
}

func (c *chunk) data() []byte { return (*c.buf)[:c.n] }

func (c *chunk) release() {
	if c.refs.Add(-1) == 0 {
		bufPool.Put(c.buf)
		<-c.t.slots
	}
}

// tee is the reader handed to the driver. It reads the client's stream in
// chunks and hands each chunk to every consumer (the hashers, the
// inspector) before the driver sees it.
type tee struct {
	src    io.Reader
	feeds  []chan *chunk
	wg     sync.WaitGroup
	sums   [][]byte
	slots  chan struct{}
	cur    *chunk
	pos    int
	n      int64 // bytes read from src
	eof    bool
	srcErr error
	done   bool
}

// newTee starts one goroutine per consumer. A consumer that is a hash.Hash
// has its sum recorded, at its index, when the stream ends.
func newTee(src io.Reader, ws ...io.Writer) *tee {
	t := &tee{src: src, slots: make(chan struct{}, inFlight), sums: make([][]byte, len(ws))}
	for k, w := range ws {
		ch := make(chan *chunk, inFlight)
		t.feeds = append(t.feeds, ch)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for c := range ch {
				_, _ = w.Write(c.data())
				c.release()
			}
			if h, ok := w.(hash.Hash); ok {
				t.sums[k] = h.Sum(nil)
			}
		}()
	}
	return t
}

// next reads the following chunk into t.cur. It sets t.eof at the end of
// the stream and t.srcErr when the stream fails.
func (t *tee) next() {
	t.slots <- struct{}{}
	buf := bufPool.Get().(*[]byte)
	n, err := fill(t.src, *buf)
	switch {
	case err == io.EOF:
		t.eof = true
	case err != nil:
		var werr error = err
		if !isDomain(err) {
			werr = &readError{err}
		}
		t.srcErr = werr
	}
	if n == 0 {
		bufPool.Put(buf)
		<-t.slots
		return
	}
	c := &chunk{buf: buf, n: n, t: t}
	c.refs.Store(int32(len(t.feeds) + 1))
	t.n += int64(n)
	for _, ch := range t.feeds {
		ch <- c
	}
	t.cur, t.pos = c, 0
}

func (t *tee) drop() {
	if t.cur != nil {
		t.cur.release()
		t.cur = nil
	}
}

// Read implements io.Reader.
func (t *tee) Read(p []byte) (int, error) {
	for t.cur == nil {
		if t.srcErr != nil {
			return 0, t.srcErr
		}
		if t.eof || t.done {
			return 0, io.EOF
		}
		t.next()
	}
	n := copy(p, t.cur.data()[t.pos:])
	t.pos += n
	if t.pos == t.cur.n {
		t.drop()
	}
	return n, nil
}

// WriteTo implements io.WriterTo, so that io.Copy in a driver writes the
// chunks as they are, without copying them again.
func (t *tee) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if t.cur == nil {
			if t.srcErr != nil {
				return total, t.srcErr
			}
			if t.eof || t.done {
				return total, nil
			}
			t.next()
			continue
		}
		n, err := w.Write(t.cur.data()[t.pos:])
		total += int64(n)
		t.pos += n
		if t.pos == t.cur.n {
			t.drop()
		}
		if err != nil {
			return total, err
		}
	}
}

// finish stops the consumers and returns the sums of the hashers.
func (t *tee) finish() [][]byte {
	if !t.done {
		t.done = true
		t.drop()
		for _, ch := range t.feeds {
			close(ch)
		}
		t.wg.Wait()
	}
	return t.sums
}

// fill reads into buf until it is full or src fails. Unlike io.ReadFull it
// reports only a clean end of stream as io.EOF, so a stream that itself
// fails with io.ErrUnexpectedEOF is not mistaken for a complete one.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := src.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
