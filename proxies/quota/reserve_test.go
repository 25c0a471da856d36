package quota_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/proxies/quota"
)

// server is the state requests share: a database, a store and the limits
// with their one reservation ledger.
type server struct {
	db  *proxytest.DB
	drv *proxytest.Driver
	lim quota.Limits
}

func newServer(storage int64, ids ...string) *server {
	lim := unlimited()
	lim.StorageBytes = storage
	lim.Reservations = quota.NewReservations()
	s := &server{db: proxytest.NewDB(), drv: proxytest.NewDriver(), lim: lim}
	for _, id := range ids {
		s.db.Put(seed(func(m *domain.Meta) { m.ID = id }))
	}
	return s
}

// request builds a fresh chain for one request, as the gateway does, and
// loads image id through it.
func (s *server) request(t *testing.T, id string) domain.Image {
	t.Helper()
	inner := s.db.Repo(owner)
	repo, _ := proxies.Stack(inner, domain.CoreFactory{}, location.Layer(proxytest.Stores{D: s.drv}, inner, location.Options{}),
		quota.Layer(s.lim, s.db.Usage, owner))
	img, err := repo.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pausingReader yields total bytes; after the first `first` bytes it sends
// its name on paused and waits until gate is closed.
type pausingReader struct {
	name   string
	first  int64
	total  int64
	paused chan<- string
	gate   <-chan struct{}
	off    int64
	waited bool
}

func (r *pausingReader) Read(p []byte) (int, error) {
	if r.off == r.first && !r.waited {
		r.waited = true
		r.paused <- r.name
		<-r.gate
	}
	if r.off >= r.total {
		return 0, io.EOF
	}
	end := r.total
	if r.off < r.first {
		end = r.first
	}
	n := copy(p, proxytest.Bytes(end)[r.off:end])
	r.off += int64(n)
	return n, nil
}

type result struct {
	name string
	err  error
}

// TestConcurrentUploads runs two uploads of one owner that fit the quota
// one at a time but not together, in two requests at once: exactly one must
// fail, whichever it is, and the owner's stored usage must stay within the
// quota.
func TestConcurrentUploads(t *testing.T) {
	const (
		idA   = "aaaaaaaa-0000-4000-8000-000000000001"
		idB   = "bbbbbbbb-0000-4000-8000-000000000002"
		quota = 100
		each  = 60
	)
	tests := []struct {
		name string
		// first is how much each upload streams before it pauses.
		first int64
		size  int64 // announced size; 0 is unknown
		// pausing is how many uploads reach their pause: with an announced
		// size the second is refused before it reads anything.
		pausing int
	}{
		{name: "known size", first: 0, size: each, pausing: 1},
		{name: "unknown size", first: each / 2, size: 0, pausing: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(quota, idA, idB)
			paused := make(chan string, 2)
			gate := make(chan struct{})
			results := make(chan result, 2)
			for _, id := range []string{idA, idB} {
				img := s.request(t, id)
				rd := &pausingReader{name: id, first: tc.first, total: each, paused: paused, gate: gate}
				go func() {
					results <- result{id, img.SetData(context.Background(), rd, domain.DataIn{Size: tc.size})}
				}()
			}
			// Wait until each upload is either paused half way or refused,
			// so that neither has finished when the other is checked.
			var got []result
			pauses := 0
			for pauses+len(got) < 2 {
				select {
				case <-paused:
					pauses++
				case r := <-results:
					got = append(got, r)
				}
			}
			if pauses != tc.pausing {
				close(gate)
				t.Fatalf("%d uploads got past the quota check at once, want %d (early results: %+v)", pauses, tc.pausing, got)
			}
			for _, r := range got {
				if r.err == nil || tc.pausing == 2 {
					close(gate)
					t.Fatalf("%s ended before the gate opened: %v", r.name, r.err)
				}
			}
			if h := s.lim.Reservations.Held("p1"); tc.size > 0 && h != each {
				t.Errorf("held while one upload streams = %d, want %d", h, each)
			}
			close(gate)
			for len(got) < 2 {
				got = append(got, <-results)
			}
			var ok, over int
			for _, r := range got {
				switch {
				case r.err == nil:
					ok++
				case errors.Is(r.err, domain.ErrOverLimit):
					over++
				default:
					t.Errorf("%s: unexpected error %v", r.name, r.err)
				}
			}
			if ok != 1 || over != 1 {
				t.Fatalf("%d uploads succeeded and %d hit the quota, want 1 and 1: %+v", ok, over, got)
			}
			if used, _ := s.db.Usage(context.Background(), "p1"); used != each {
				t.Errorf("stored usage = %d, want %d", used, each)
			}
			if objs := s.drv.Objects(); len(objs) != 1 {
				t.Errorf("stored objects = %v, want one", objs)
			}
			if h := s.lim.Reservations.Held("p1"); h != 0 {
				t.Errorf("held after both uploads = %d, want 0", h)
			}
		})
	}
}

// TestReservationOrder drives two uploads of unknown size step by step:
// an upload that finishes while another streams still counts against it,
// although its reservation is gone and the other read the stored usage
// before it was stored.
func TestReservationOrder(t *testing.T) {
	const (
		idA = "aaaaaaaa-0000-4000-8000-000000000001"
		idB = "bbbbbbbb-0000-4000-8000-000000000002"
	)
	s := newServer(100, idA, idB)
	paused := make(chan string, 2)
	gateA, gateB := make(chan struct{}), make(chan struct{})
	resA, resB := make(chan error, 1), make(chan error, 1)
	imgA, imgB := s.request(t, idA), s.request(t, idB)
	go func() {
		resA <- imgA.SetData(context.Background(), &pausingReader{name: "A", first: 30, total: 60, paused: paused, gate: gateA}, domain.DataIn{})
	}()
	<-paused
	go func() {
		resB <- imgB.SetData(context.Background(), &pausingReader{name: "B", first: 30, total: 60, paused: paused, gate: gateB}, domain.DataIn{})
	}()
	<-paused
	if h := s.lim.Reservations.Held("p1"); h != 60 {
		t.Errorf("held with both uploads half way = %d, want 60", h)
	}
	close(gateA)
	if err := <-resA; err != nil {
		t.Fatalf("upload A: %v", err)
	}
	if h := s.lim.Reservations.Held("p1"); h != 30 {
		t.Errorf("held after A = %d, want B's 30", h)
	}
	close(gateB)
	err := <-resB
	want := "Image exceeds the storage quota: The size of the data 60 will exceed the limit. 40 bytes remaining."
	if !errors.Is(err, domain.ErrOverLimit) || err.Error() != want {
		t.Fatalf("upload B: %v, want %q", err, want)
	}
	if m, _ := s.db.Image(idB); m.Status != domain.StatusQueued {
		t.Errorf("B is %s after the refusal, want queued", m.Status)
	}
	if h := s.lim.Reservations.Held("p1"); h != 0 {
		t.Errorf("held at the end = %d, want 0", h)
	}
	// With A stored, 40 bytes remain: an upload of 40 fits, in a new request.
	if err := s.request(t, idB).SetData(context.Background(), proxytest.NewReader(40, nil), domain.DataIn{Size: 40}); err != nil {
		t.Errorf("upload of the 40 bytes left: %v", err)
	}
}

// TestReservationReleased checks that every way out of SetData gives the
// reservation back.
func TestReservationReleased(t *testing.T) {
	const id = "aaaaaaaa-0000-4000-8000-000000000001"
	tests := []struct {
		name string
		r    io.Reader
		size int64
		fail bool
	}{
		{"success", proxytest.NewReader(10, nil), 10, false},
		{"announced size over quota", proxytest.NewReader(200, nil), 200, true},
		{"stream over quota", proxytest.NewReader(200, nil), 0, true},
		{"reader fails", proxytest.NewReader(10, errors.New("client went away")), 0, true},
		{"stream shorter than announced", proxytest.NewReader(5, nil), 10, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(100, id)
			err := s.request(t, id).SetData(context.Background(), tc.r, domain.DataIn{Size: tc.size})
			if (err != nil) != tc.fail {
				t.Fatalf("SetData = %v, want failure %v", err, tc.fail)
			}
			if h := s.lim.Reservations.Held("p1"); h != 0 {
				t.Errorf("held after the upload = %d, want 0", h)
			}
		})
	}
}
