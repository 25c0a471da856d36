package rbd

import (
	"context"
	"errors"
	"sync"
)

// bufPool is the budget of chunk buffers that one driver's uploads and
// downloads share: at most max buffers exist at once, made by alloc when
// first needed and then kept and reused, so that the memory they take stays
// flat however many transfers come and go. It has no build tag, so that its
// accounting is tested without librbd.
//
// A transfer that holds no buffer waits for one with get; one that already
// holds some asks with tryGet and, when that fails, reuses the buffer of
// its own oldest operation once it is done, so it never waits for the pool
// and transfers cannot deadlock on each other.
type bufPool struct {
	max     int
	alloc   func() []byte // nil when out of memory
	release func([]byte)

	mu      sync.Mutex
	n       int      // buffers that exist
	free    [][]byte // buffers that exist and are not handed out
	waiting int      // callers of get waiting for a buffer
	wake    chan struct{}
	closed  bool
	peak    int // the most buffers handed out at once
}

var errPoolClosed = errors.New("stores/rbd: driver closed")

func newBufPool(max int, alloc func() []byte, release func([]byte)) *bufPool {
	return &bufPool{max: max, alloc: alloc, release: release, wake: make(chan struct{})}
}

// take hands out a free buffer or makes one; p.mu is held.
func (p *bufPool) take() ([]byte, bool, error) {
	if p.closed {
		return nil, false, errPoolClosed
	}
	var b []byte
	if n := len(p.free); n > 0 {
		b, p.free = p.free[n-1], p.free[:n-1]
	} else if p.n < p.max {
		if b = p.alloc(); b == nil {
			return nil, false, errors.New("stores/rbd: out of memory for a chunk buffer")
		}
		p.n++
	} else {
		return nil, false, nil
	}
	p.peak = max(p.peak, p.n-len(p.free))
	return b, true, nil
}

// tryGet returns a buffer if one is free or may be made and nobody waits
// for one in get: a transfer that holds buffers already does not take one
// before those that hold none.
func (p *bufPool) tryGet() ([]byte, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waiting > 0 && !p.closed {
		return nil, false, nil
	}
	return p.take()
}

// get returns a buffer, waiting until one is given back if max are handed
// out, or until ctx is done.
func (p *bufPool) get(ctx context.Context) ([]byte, error) {
	p.mu.Lock()
	for {
		b, ok, err := p.take()
		if ok || err != nil {
			p.mu.Unlock()
			return b, err
		}
		p.waiting++
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
		}
		p.mu.Lock()
		p.waiting--
		if err := ctx.Err(); err != nil {
			p.mu.Unlock()
			return nil, err
		}
	}
}

// contended reports whether a caller of get waits for a buffer.
func (p *bufPool) contended() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting > 0
}

// put gives back a buffer from get or tryGet. After close it is freed.
func (p *bufPool) put(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.n--
		p.release(b[:cap(b)])
		return
	}
	p.free = append(p.free, b[:cap(b)])
	close(p.wake)
	p.wake = make(chan struct{})
}

// close frees the free buffers, and the others as they are given back;
// get and tryGet fail from then on.
func (p *bufPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, b := range p.free {
		p.release(b)
	}
	p.n -= len(p.free)
	p.free = nil
	close(p.wake)
}

// stats returns the buffers that exist, those handed out, and the most
// handed out at once.
func (p *bufPool) stats() (exist, inUse, peak int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.n - len(p.free), p.peak
}
