package rbd

import (
	"context"
	"errors"
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

// TestPoolOverBudget checks that get never waits: past the budget it makes
// a buffer that is freed when given back, while tryGet gives none.
func TestPoolOverBudget(t *testing.T) {
	p, made, freed := countingPool(1)
	ctx := context.Background()
	a, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := p.tryGet(); ok || err != nil {
		t.Fatalf("tryGet past the budget = %v, %v; want none", ok, err)
	}
	b, err := p.get(ctx)
	if err != nil || len(b) != 16 {
		t.Fatalf("get past the budget = %d bytes, %v; want a buffer", len(b), err)
	}
	if exist, inUse, peak := p.stats(); exist != 2 || inUse != 2 || peak != 2 {
		t.Errorf("exist %d, in use %d, peak %d; want 2, 2, 2", exist, inUse, peak)
	}
	p.put(b)
	if exist, _, _ := p.stats(); exist != 1 || *freed != 1 {
		t.Errorf("after giving back the extra buffer: exist %d, freed %d; want 1, 1", exist, *freed)
	}
	p.put(a)
	if c, err := p.get(ctx); err != nil || *made != 2 {
		t.Errorf("get with a free buffer = %v, made %d; want the kept buffer, 2 made", err, *made)
	} else {
		p.put(c)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.get(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("get with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestPoolConcurrent has transfers that follow the drivers' rule (get when
// holding nothing, else try and fall back to what they hold) and checks
// that no more than max buffers, and one for each transfer past them, are
// ever out, and that no more than max are kept.
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
			}
			for _, b := range held {
				p.put(b)
			}
		})
	}
	wg.Wait()
	if exist, inUse, peak := p.stats(); exist > max || peak > max+transfers || inUse != 0 {
		t.Errorf("exist %d, peak %d, in use %d; want at most %d kept, a peak of at most %d, 0 in use",
			exist, peak, inUse, max, max+transfers)
	}
	_ = made
}
