package quota

import (
	"context"
	"testing"
	"time"
)

// TestReserveReadsUsageWithoutTheLock: while one upload's reservation waits
// for the database to answer the usage query, another upload of the same
// owner starts, and an upload already running grows its reservation,
// without waiting for it.
func TestReserveReadsUsageWithoutTheLock(t *testing.T) {
	r := NewReservations()
	ctx := context.Background()
	fast := func(context.Context, string) (int64, error) { return 0, nil }
	running, err := r.reserve(ctx, "o", 1000, 10, fast)
	if err != nil {
		t.Fatal(err)
	}
	asked, answer := make(chan struct{}), make(chan struct{})
	slow := func(context.Context, string) (int64, error) {
		close(asked)
		<-answer
		return 0, nil
	}
	slowDone := make(chan error, 1)
	go func() {
		res, err := r.reserve(ctx, "o", 1000, 100, slow)
		if err == nil {
			res.release(false)
		}
		slowDone <- err
	}()
	<-asked
	done := make(chan error, 1)
	go func() {
		res, err := r.reserve(ctx, "o", 1000, 20, fast)
		if err == nil {
			err = running.cover(50)
			res.release(true)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a reservation waited for another one's usage query")
	}
	close(answer)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	if got := r.Held("o"); got != 50 {
		t.Errorf("held = %d, want 50 (the running upload's)", got)
	}
	running.release(true)
	if got := r.Held("o"); got != 0 {
		t.Errorf("held after the last release = %d, want 0", got)
	}
}
