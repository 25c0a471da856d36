//go:build ceph

package rbd

/*
#cgo LDFLAGS: -lrbd -lrados
#include <stdlib.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"unsafe"

	"github.com/ceph/go-ceph/rados"
)

// writer writes one RBD image with librbd's asynchronous API: up to max
// chunk writes are in flight at once, and a new one waits only for the
// oldest. go-ceph has no binding for rbd_aio_write, hence this small one.
//
// The chunk buffers are C memory, so that librbd may keep reading them
// after rbd_aio_write returns (Go memory must not be held by C that long).
// They come from the driver's pool, and go back to it on close.
// A writer is used by one goroutine.
type writer struct {
	img     C.rbd_image_t
	pool    *bufPool
	max     int // buffers, and so writes in flight, at most
	held    int // buffers taken from the pool
	free    [][]byte
	pending []aioWrite // in submission order
	err     error      // the first write that failed
}

type aioWrite struct {
	c   C.rbd_completion_t
	buf []byte
}

// errnoErr turns a negative librbd return code into an error that
// errors.Is matches against syscall.Errno values.
func errnoErr(ret C.int) error {
	if ret >= 0 {
		return nil
	}
	return syscall.Errno(-ret)
}

// cBuffers returns the functions that make and free the pool's C buffers
// of size bytes.
func cBuffers(size int) (alloc func() []byte, release func([]byte)) {
	alloc = func() []byte {
		p := C.malloc(C.size_t(size))
		if p == nil {
			return nil
		}
		return unsafe.Slice((*byte)(p), size)
	}
	release = func(b []byte) { C.free(unsafe.Pointer(unsafe.SliceData(b))) }
	return alloc, release
}

// openWriter opens image name in ioctx for writing, with buffers from pool
// and at most max writes in flight.
func openWriter(ioctx *rados.IOContext, name string, pool *bufPool, max int) (*writer, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	w := &writer{pool: pool, max: max}
	if ret := C.rbd_open(C.rados_ioctx_t(ioctx.Pointer()), cname, &w.img, nil); ret < 0 {
		return nil, errnoErr(ret)
	}
	return w, nil
}

// buffer returns a chunk buffer to fill: a free one of the writer's, one
// from the pool's budget while the writer holds fewer than max, the first
// one from the pool in any case (get never waits), or else the buffer of
// its oldest write once it is done.
func (w *writer) buffer(ctx context.Context) ([]byte, error) {
	for {
		if w.err != nil {
			return nil, w.err
		}
		if n := len(w.free); n > 0 {
			b := w.free[n-1]
			w.free = w.free[:n-1]
			return b, nil
		}
		if w.held < w.max {
			b, ok, err := w.pool.tryGet()
			if err != nil {
				return nil, err
			}
			if ok {
				w.held++
				return b, nil
			}
		}
		if len(w.pending) == 0 {
			b, err := w.pool.get(ctx)
			if err != nil {
				return nil, err
			}
			w.held++
			return b, nil
		}
		w.waitOldest()
	}
}

// release gives back a buffer that was not written.
func (w *writer) release(b []byte) { w.free = append(w.free, b[:cap(b)]) }

// write starts writing b, a buffer from buffer, at off. b belongs to the
// writer from then on.
func (w *writer) write(b []byte, off int64) error {
	if w.err != nil {
		w.release(b)
		return w.err
	}
	var c C.rbd_completion_t
	if ret := C.rbd_aio_create_completion(nil, nil, &c); ret < 0 {
		w.release(b)
		return errnoErr(ret)
	}
	ret := C.rbd_aio_write(w.img, C.uint64_t(off), C.size_t(len(b)), (*C.char)(unsafe.Pointer(unsafe.SliceData(b))), c)
	if ret < 0 {
		C.rbd_aio_release(c)
		w.release(b)
		w.err = errnoErr(ret)
		return w.err
	}
	w.pending = append(w.pending, aioWrite{c: c, buf: b})
	return nil
}

// waitOldest waits for the oldest write in flight and records its failure.
func (w *writer) waitOldest() {
	p := w.pending[0]
	w.pending = w.pending[1:]
	C.rbd_aio_wait_for_complete(p.c)
	ret := C.rbd_aio_get_return_value(p.c)
	C.rbd_aio_release(p.c)
	if ret < 0 && w.err == nil {
		w.err = syscall.Errno(-ret)
	}
	w.release(p.buf)
}

// wait waits for every write in flight and returns the first failure.
func (w *writer) wait() error {
	for len(w.pending) > 0 {
		w.waitOldest()
	}
	return w.err
}

// resize sets the image's size; writes in flight stay below both sizes.
func (w *writer) resize(size int64) error {
	return errnoErr(C.rbd_resize(w.img, C.uint64_t(size)))
}

// flush makes librbd send everything it may still cache.
func (w *writer) flush() error { return errnoErr(C.rbd_flush(w.img)) }

// snapshot creates snapshot name of the image and protects it, so that it
// can be cloned.
func (w *writer) snapshot(name string) error {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if err := errnoErr(C.rbd_snap_create(w.img, cname)); err != nil {
		return err
	}
	return errnoErr(C.rbd_snap_protect(w.img, cname))
}

// give hands a free buffer of the writer's back to the pool.
func (w *writer) give() {
	n := len(w.free)
	w.pool.put(w.free[n-1])
	w.free = w.free[:n-1]
	w.held--
}

// close waits for the writes in flight, closes the image and gives the
// buffers back to the pool. It returns the first failure of a write or of
// the close.
func (w *writer) close() error {
	err := w.wait()
	if cerr := errnoErr(C.rbd_close(w.img)); err == nil {
		err = cerr
	}
	for len(w.free) > 0 {
		w.give()
	}
	return err
}

// aioReader reads a range of an image, opened read-only at a snapshot,
// with up to max chunk reads in flight ahead of what the caller consumed.
// Like writer, it uses C buffers from the driver's pool, and belongs to one
// goroutine at a time.
type aioReader struct {
	img       C.rbd_image_t
	pool      *bufPool
	chunk     int
	max       int
	held      int   // buffers taken from the pool
	next, end int64 // the next byte to ask for, and the end of the range
	free      [][]byte
	pending   []aioRead
	cur       []byte // data read, not yet consumed
	curBuf    []byte // the buffer cur lies in
	err       error
	closed    bool
}

type aioRead struct {
	c   C.rbd_completion_t
	buf []byte // the whole chunk buffer
	n   int    // bytes asked for
}

// openReader opens image name at snapshot snap ("" for the image itself)
// read-only and returns its size.
func openReader(ioctx *rados.IOContext, name, snap string, pool *bufPool, chunk, max int) (*aioReader, int64, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var csnap *C.char
	if snap != "" {
		csnap = C.CString(snap)
		defer C.free(unsafe.Pointer(csnap))
	}
	r := &aioReader{pool: pool, chunk: chunk, max: max}
	if ret := C.rbd_open_read_only(C.rados_ioctx_t(ioctx.Pointer()), cname, &r.img, csnap); ret < 0 {
		return nil, 0, errnoErr(ret)
	}
	var size C.uint64_t
	if ret := C.rbd_get_size(r.img, &size); ret < 0 {
		C.rbd_close(r.img)
		return nil, 0, errnoErr(ret)
	}
	return r, int64(size), nil
}

// start limits the reads to [off, end) and sends the first ones. A
// non-empty range needs a buffer: start takes one from the pool, which
// never waits.
func (r *aioReader) start(ctx context.Context, off, end int64) error {
	r.next, r.end = off, end
	if off < end {
		b, err := r.pool.get(ctx)
		if err != nil {
			return err
		}
		r.held++
		r.free = append(r.free, b)
	}
	r.submit()
	return nil
}

// submit sends reads until max are in flight, the range is covered, or no
// buffer is free and the pool gives none.
func (r *aioReader) submit() {
	for r.err == nil && r.next < r.end && len(r.pending) < r.max {
		var buf []byte
		if n := len(r.free); n > 0 {
			buf, r.free = r.free[n-1], r.free[:n-1]
		} else {
			if r.held >= r.max {
				return
			}
			b, ok, err := r.pool.tryGet()
			if err != nil {
				r.err = err
				return
			}
			if !ok {
				return
			}
			r.held++
			buf = b
		}
		n := int(min(int64(r.chunk), r.end-r.next))
		var c C.rbd_completion_t
		if ret := C.rbd_aio_create_completion(nil, nil, &c); ret < 0 {
			r.free = append(r.free, buf)
			r.err = errnoErr(ret)
			return
		}
		if ret := C.rbd_aio_read(r.img, C.uint64_t(r.next), C.size_t(n), (*C.char)(unsafe.Pointer(unsafe.SliceData(buf))), c); ret < 0 {
			C.rbd_aio_release(c)
			r.free = append(r.free, buf)
			r.err = errnoErr(ret)
			return
		}
		r.pending = append(r.pending, aioRead{c: c, buf: buf, n: n})
		r.next += int64(n)
	}
}

// give hands a free buffer of the reader's back to the pool.
func (r *aioReader) give() {
	n := len(r.free)
	r.pool.put(r.free[n-1])
	r.free = r.free[:n-1]
	r.held--
}

// fill makes cur the next chunk, waiting for its read.
func (r *aioReader) fill() error {
	if r.curBuf != nil {
		r.free = append(r.free, r.curBuf)
		r.curBuf = nil
	}
	if r.err != nil {
		return r.err
	}
	if len(r.pending) == 0 {
		r.submit()
		if r.err != nil {
			return r.err
		}
	}
	if len(r.pending) == 0 {
		return io.EOF
	}
	p := r.pending[0]
	r.pending = r.pending[1:]
	C.rbd_aio_wait_for_complete(p.c)
	ret := C.rbd_aio_get_return_value(p.c)
	C.rbd_aio_release(p.c)
	switch {
	case ret < 0:
		r.free = append(r.free, p.buf)
		r.err = mapErr(syscall.Errno(-ret), "reading RBD image")
		return r.err
	case int(ret) != p.n:
		r.free = append(r.free, p.buf)
		r.err = fmt.Errorf("stores/rbd: short read: %d of %d bytes", ret, p.n)
		return r.err
	}
	r.cur, r.curBuf = p.buf[:p.n], p.buf
	r.submit()
	return nil
}

// Read implements io.Reader.
func (r *aioReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("stores/rbd: read after close")
	}
	for len(r.cur) == 0 {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// WriteTo writes the rest of the range to w, a chunk at a time, straight
// from the read buffers.
func (r *aioReader) WriteTo(w io.Writer) (int64, error) {
	if r.closed {
		return 0, errors.New("stores/rbd: read after close")
	}
	var total int64
	for {
		for len(r.cur) == 0 {
			if err := r.fill(); err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, err
			}
		}
		n, err := w.Write(r.cur)
		total += int64(n)
		r.cur = r.cur[n:]
		if err != nil {
			return total, err
		}
	}
}

// Close waits for the reads in flight, closes the image and gives the
// buffers back to the pool.
func (r *aioReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	for _, p := range r.pending {
		C.rbd_aio_wait_for_complete(p.c)
		C.rbd_aio_release(p.c)
		r.free = append(r.free, p.buf)
	}
	r.pending = nil
	err := errnoErr(C.rbd_close(r.img))
	if r.curBuf != nil {
		r.free = append(r.free, r.curBuf)
	}
	for len(r.free) > 0 {
		r.give()
	}
	r.cur, r.curBuf = nil, nil
	return err
}
