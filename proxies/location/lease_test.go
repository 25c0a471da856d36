package location_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/proxytest"
)

// touchingRepo is a repository that records the leases renewed through it.
type touchingRepo struct {
	domain.Repo
	mu      sync.Mutex
	touched map[domain.Status]int
	twice   chan struct{} // closed at the second touch
}

func (r *touchingRepo) Touch(_ context.Context, id string, st domain.Status) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.touched[st]++
	if r.touched[st] == 2 {
		close(r.twice)
	}
	return nil
}

// waitingReader sends a few bytes, then ends only once the lease has been
// renewed twice, or fails after a minute.
type waitingReader struct {
	sent  bool
	twice <-chan struct{}
}

func (w *waitingReader) Read(p []byte) (int, error) {
	if !w.sent {
		w.sent = true
		return copy(p, "data"), nil
	}
	select {
	case <-w.twice:
		return 0, io.EOF
	case <-time.After(time.Minute):
		return 0, io.ErrUnexpectedEOF
	}
}

func TestLongTransfersRenewTheirLease(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status domain.Status
		run    func(img domain.Image, r io.Reader) error
	}{
		{"upload", domain.StatusSaving, func(img domain.Image, r io.Reader) error {
			return img.SetData(context.Background(), r, domain.DataIn{})
		}},
		{"stage", domain.StatusUploading, func(img domain.Image, r io.Reader) error {
			return img.Stage(context.Background(), r, domain.DataIn{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := proxytest.NewDB()
			db.Put(queued(nil))
			tr := &touchingRepo{Repo: db.Repo(nil), touched: map[domain.Status]int{}, twice: make(chan struct{})}
			st := proxytest.Stores{D: proxytest.NewDriver(), Stage: proxytest.NewDriver()}
			repo, _ := proxies.Stack(db.Repo(nil), domain.CoreFactory{},
				location.Layer(st, tr, location.Options{Heartbeat: time.Millisecond}))
			img, err := repo.Get(context.Background(), imgID)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.run(img, &waitingReader{twice: tr.twice}); err != nil {
				t.Fatalf("transfer: %v", err)
			}
			tr.mu.Lock()
			defer tr.mu.Unlock()
			if tr.touched[tc.status] < 2 {
				t.Errorf("lease renewed in %v, want at least twice in %s", tr.touched, tc.status)
			}
			for st := range tr.touched {
				if st != tc.status {
					t.Errorf("lease renewed in status %s, want only %s", st, tc.status)
				}
			}
		})
	}
}
