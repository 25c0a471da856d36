package rbd

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
)

// countingPool returns a pool of max buffers of 16 bytes that counts what
// it makes and frees.
func countingPool(max int) (*bufPool, *int, *int) {
	var made, freed int
	var mu sync.Mutex
	p := newBufPool(max, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		made++
		return make([]byte, 16)
	}, func([]byte) {
		mu.Lock()
		defer mu.Unlock()
		freed++
	})
	return p, &made, &freed
}

func TestPoolReuses(t *testing.T) {
	p, made, freed := countingPool(3)
	ctx := context.Background()
	for range 5 {
		var bufs [][]byte
		for range 3 {
			b, err := p.get(ctx)
			if err != nil || len(b) != 16 {
				t.Fatalf("get = %d bytes, %v", len(b), err)
			}
			bufs = append(bufs, b)
		}
		if _, ok, err := p.tryGet(); ok || err != nil {
			t.Fatalf("tryGet with every buffer out = %v, %v; want none", ok, err)
		}
		for _, b := range bufs {
			p.put(b[:3]) // a short slice gives back the whole buffer
		}
	}
	if exist, inUse, peak := p.stats(); *made != 3 || exist != 3 || inUse != 0 || peak != 3 {
		t.Errorf("made %d, exist %d, in use %d, peak %d; want 3, 3, 0, 3", *made, exist, inUse, peak)
	}
	b, err := p.get(ctx)
	if err != nil || len(b) != 16 {
		t.Fatalf("get = %d bytes, %v; want the whole buffer", len(b), err)
	}
	p.close()
	if *freed != 2 {
		t.Errorf("close freed %d buffers, want the 2 free ones", *freed)
	}
	p.put(b)
	if exist, _, _ := p.stats(); *freed != 3 || exist != 0 {
		t.Errorf("after the last put: freed %d, exist %d; want 3, 0", *freed, exist)
	}
	if _, err := p.get(ctx); !errors.Is(err, errPoolClosed) {
		t.Errorf("get after close = %v, want errPoolClosed", err)
	}
	if _, _, err := p.tryGet(); !errors.Is(err, errPoolClosed) {
		t.Errorf("tryGet after close = %v, want errPoolClosed", err)
	}
}

func TestPoolOutOfMemory(t *testing.T) {
	p := newBufPool(2, func() []byte { return nil }, func([]byte) {})
	if _, err := p.get(context.Background()); err == nil {
		t.Fatal("get succeeded without memory")
	}
	if exist, _, _ := p.stats(); exist != 0 {
		t.Errorf("%d buffers exist, want 0", exist)
	}
}

// waitFor returns once n callers of get wait.
func waitFor(p *bufPool, n int) {
	for !func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.waiting >= n
	}() {
		runtime.Gosched()
	}
}

func TestPoolWaiters(t *testing.T) {
	p, _, _ := countingPool(1)
	held, err := p.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// a cancelled wait returns the context's error
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := p.get(ctx)
		done <- err
	}()
	waitFor(p, 1)
	if !p.contended() {
		t.Error("contended() = false while a get waits")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled get = %v, want context.Canceled", err)
	}
	if p.contended() {
		t.Error("contended() = true after the waiter left")
	}

	// a waiter gets the buffer given back, and tryGet does not take it
	// before the waiter
	got := make(chan []byte)
	go func() {
		b, err := p.get(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	waitFor(p, 1)
	p.put(held)
	b := <-got
	if _, ok, _ := p.tryGet(); ok {
		t.Error("tryGet got a second buffer of a pool of one")
	}
	p.put(b)

	// close wakes the waiters with an error
	held, _ = p.get(context.Background())
	go func() {
		_, err := p.get(context.Background())
		done <- err
	}()
	waitFor(p, 1)
	p.close()
	if err := <-done; !errors.Is(err, errPoolClosed) {
		t.Errorf("get during close = %v, want errPoolClosed", err)
	}
	p.put(held)
}

func TestPoolTryGetYieldsToWaiters(t *testing.T) {
	p, _, _ := countingPool(2)
	a, _ := p.get(context.Background())
	b, _ := p.get(context.Background())
	got := make(chan []byte)
	go func() {
		c, _ := p.get(context.Background())
		got <- c
	}()
	waitFor(p, 1)
	p.mu.Lock()
	p.free = append(p.free, a) // as put, without waking the waiter
	p.mu.Unlock()
	if _, ok, _ := p.tryGet(); ok {
		t.Error("tryGet took a free buffer while a get waits")
	}
	p.mu.Lock()
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
	<-got
	p.put(b)
	if _, ok, _ := p.tryGet(); !ok {
		t.Error("tryGet got nothing from a free buffer with nobody waiting")
	}
}

// TestPoolConcurrent has transfers that follow the drivers' rule (wait for
// the pool only when holding nothing, else try and fall back to what they
// hold) and checks that no more than max buffers are ever out.
func TestPoolConcurrent(t *testing.T) {
	const max, transfers, chunks, inFlight = 5, 16, 40, 4
	p, made, _ := countingPool(max)
	var wg sync.WaitGroup
	for range transfers {
		wg.Go(func() {
			var held [][]byte
			for range chunks {
				if len(held) < inFlight {
					if b, ok, _ := p.tryGet(); ok {
						held = append(held, b)
						continue
					}
				}
				if len(held) == 0 {
					b, err := p.get(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					held = append(held, b)
					continue
				}
				if len(held) > 1 && p.contended() {
					p.put(held[0])
					held = held[1:]
				}
			}
			for _, b := range held {
				p.put(b)
			}
		})
	}
	wg.Wait()
	if exist, inUse, peak := p.stats(); *made > max || exist > max || peak > max || inUse != 0 {
		t.Errorf("made %d, exist %d, peak %d, in use %d; want at most %d, 0 in use", *made, exist, peak, inUse, max)
	}
}
