package location

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestKeyedMutexWaitsWithinContext: a second taker of a held key gives up
// with its context; other keys are free; the key is dropped once unused.
func TestKeyedMutexWaitsWithinContext(t *testing.T) {
	var k keyedMutex
	unlock, err := k.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock of a held key: %v, want its deadline", err)
	}
	unlockB, err := k.lock(ctx, "b")
	if err != nil {
		t.Fatalf("another key: %v", err)
	}
	unlockB()
	got := make(chan func(), 1)
	go func() {
		u, err := k.lock(context.Background(), "a")
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not get the lock once it was free")
	}
	if n := len(k.keys); n != 0 {
		t.Errorf("%d keys kept after every lock was released, want 0", n)
	}
}
