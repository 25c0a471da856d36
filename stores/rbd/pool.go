package rbd

import (
	"context"
	"errors"
	"math"
	"sync"
)

// bufPool is the budget of chunk buffers that one driver's uploads and
// downloads share: up to max buffers are made by alloc when first needed
// and then kept and reused, so that the memory they take stays flat however
// many transfers come and go. It has no build tag, so that its accounting
// is tested without librbd.
//
// A transfer takes its first buffer with get, which never waits: when the
// budget is spent it makes one more, freed when it is given back, so that
// every transfer always makes progress with one chunk at a time, as
// glance_store's does, and a slow client cannot hold others up. Further
// buffers, for the writes or reads a transfer keeps in flight, come from
// tryGet only while the budget lasts; without one the transfer reuses the
// buffer of its own oldest operation once it is done.
type bufPool struct {
	max     int
	alloc   func() []byte // nil when out of memory
	release func([]byte)

	mu     sync.Mutex
	n      int      // buffers that exist
	free   [][]byte // buffers that exist and are not handed out
	closed bool
	peak   int // the most buffers handed out at once
}

var errPoolClosed = errors.New("stores/rbd: driver closed")

func newBufPool(max int, alloc func() []byte, release func([]byte)) *bufPool {
	return &bufPool{max: max, alloc: alloc, release: release}
}

// take hands out a free buffer, or makes one while fewer than limit exist;
// p.mu is held.
func (p *bufPool) take(limit int) ([]byte, bool, error) {
	if p.closed {
		return nil, false, errPoolClosed
	}
	var b []byte
	if n := len(p.free); n > 0 {
		b, p.free = p.free[n-1], p.free[:n-1]
	} else if p.n < limit {
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

// tryGet returns a buffer if one is free or may be made within the budget.
func (p *bufPool) tryGet() ([]byte, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.take(p.max)
}

// get returns a buffer for a transfer that holds none: a free one, or a new
// one, past the budget if need be. It fails only when ctx is done, the pool
// is closed or no memory is left.
func (p *bufPool) get(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b, _, err := p.take(math.MaxInt)
	return b, err
}

// put gives back a buffer from get or tryGet. One made past the budget, or
// given back after close, is freed.
func (p *bufPool) put(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.n > p.max {
		p.n--
		p.release(b[:cap(b)])
		return
	}
	p.free = append(p.free, b[:cap(b)])
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
}

// stats returns the buffers that exist, those handed out, and the most
// handed out at once.
func (p *bufPool) stats() (exist, inUse, peak int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.n - len(p.free), p.peak
}
