package location

import (
	"context"
	"sync"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// keepAlive touches image id, while it is in status, every
// Options.Heartbeat until the returned stop is called, so that crash
// recovery sees that the data is still on its way. It does nothing when the
// heartbeat is off or the repository cannot touch. A failed touch is
// logged; the upload goes on.
func (i *image) keepAlive(ctx context.Context, id string, status domain.Status) (stop func()) {
	t, ok := i.inner.(domain.Toucher)
	if !ok || i.opts.Heartbeat <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(i.opts.Heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := t.Touch(context.WithoutCancel(ctx), id, status); err != nil {
					i.log().Warn("cannot renew the lease of an image in transfer", "image_id", id, "error", err)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}
