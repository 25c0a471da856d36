package stores_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/glance-go/glance-go/stores"
)

// failing fails every call with err.
type failing struct {
	stub
	err error
}

func (f *failing) Put(context.Context, string, io.Reader, int64) (stores.Object, error) {
	return stores.Object{}, f.err
}
func (f *failing) Get(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, f.err
}
func (f *failing) Delete(context.Context, string) error { return f.err }

func TestObserve(t *testing.T) {
	broken := &failing{stub: stub{schemes: []string{"file"}}, err: errors.New("disk on fire")}
	gone := &failing{stub: stub{schemes: []string{"rbd"}}, err: stores.ErrNotFound}
	set, err := stores.NewMultiSet("fast", &stores.Backend{ID: "fast", Type: "file", Driver: broken},
		&stores.Backend{ID: "ceph", Type: "rbd", Driver: gone})
	if err != nil {
		t.Fatal(err)
	}
	set.SetStaging(&failing{stub: stub{schemes: []string{"file"}}, err: stores.ErrFull})
	got := map[string]int{}
	o := stores.Observe(set, func(store, op string, _ error) { got[store+" "+op]++ })
	ctx := context.Background()

	fast, _ := o.Backend("fast")
	if fast.Driver != o.Default() || fast != o.Backends()[0] {
		t.Error("the same backend gives different drivers")
	}
	fast.Driver.Put(ctx, "id", nil, 0)
	fast.Driver.Get(ctx, "file:///x", 0, -1)
	fast.Driver.Delete(ctx, "file:///x")
	o.Backends()[1].Driver.Delete(ctx, "rbd://x") // not found: nothing to count
	o.Backends()[1].Driver.Get(ctx, "rbd://x", 0, -1)
	o.Staging().Put(ctx, "id", nil, 0)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	fast.Driver.Put(cancelled, "id", nil, 0) // the caller went away
	mismatch := &failing{stub: stub{schemes: []string{"http"}}, err: stores.ErrSizeMismatch}
	stores.Observe(stores.NewSet(mismatch), func(string, string, error) { t.Error("a size mismatch was counted") }).
		Default().Put(ctx, "id", nil, 3)

	want := map[string]int{"fast put": 1, "fast get": 1, "fast delete": 1, "ceph get": 1, "os_glance_staging_store put": 1}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if stores.Unwrap(fast.Driver) != stores.Unwrap(broken) {
		t.Error("Unwrap does not reach the configured driver")
	}
}
