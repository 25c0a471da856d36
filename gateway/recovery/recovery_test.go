package recovery_test

import (
	"context"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/gateway/recovery"
	"github.com/glance-go/glance-go/stores"
)

// recorder is a driver that records the ids it is asked to discard and
// lists the ids it is told it holds.
type recorder struct {
	mu        sync.Mutex
	discarded []string
	held      []string
}

func (r *recorder) Put(context.Context, string, io.Reader, int64) (stores.Object, error) {
	return stores.Object{}, stores.ErrReadOnly
}
func (r *recorder) Get(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, stores.ErrNotFound
}
func (r *recorder) Delete(context.Context, string) error        { return stores.ErrNotFound }
func (r *recorder) Size(context.Context, string) (int64, error) { return 0, stores.ErrNotFound }
func (r *recorder) Schemes() []string                           { return []string{"test"} }
func (r *recorder) Discard(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.discarded = append(r.discarded, id)
	return nil
}
func (r *recorder) IDs(context.Context) ([]string, error) { return slices.Clone(r.held), nil }

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.discarded)
	slices.Sort(out)
	return out
}

type world struct {
	d                *db.DB
	repo             domain.Repo
	fast, slow, http *recorder
	staging          *recorder
	set              *stores.Set
}

func newWorld(t *testing.T, d *db.DB) *world {
	w := &world{d: d, repo: d.Images(&domain.Caller{IsAdmin: true}),
		fast: &recorder{}, slow: &recorder{}, http: &recorder{}, staging: &recorder{}}
	set, err := stores.NewMultiSet("fast",
		&stores.Backend{ID: "fast", Type: "file", Driver: w.fast},
		&stores.Backend{ID: "slow", Type: "file", Driver: w.slow},
		&stores.Backend{ID: "web", Type: "http", Driver: w.http},
	)
	if err != nil {
		t.Fatal(err)
	}
	set.SetStaging(w.staging)
	w.set = set
	return w
}

// add stores an image in status st with the given changes.
func (w *world) add(t *testing.T, st domain.Status, change func(m *domain.Meta)) string {
	t.Helper()
	m := domain.Meta{
		ID: domain.NewUUID(), Status: st, Visibility: domain.VisibilityShared,
		Owner: domain.Ptr("p1"), DiskFormat: domain.Ptr("raw"), ContainerFormat: domain.Ptr("bare"),
		Properties: map[string]string{},
	}
	if change != nil {
		change(&m)
	}
	if err := w.repo.Add(context.Background(), domain.NewImage(m)); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func (w *world) get(t *testing.T, id string) domain.Meta {
	t.Helper()
	img, err := w.repo.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return img.Meta()
}

// later is a clock past every lease.
func later() time.Time { return time.Now().Add(recovery.DefaultLease + time.Hour) }

func TestSweepRevertsDeadWork(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		ctx := context.Background()
		saving := w.add(t, domain.StatusSaving, func(m *domain.Meta) { m.Hidden = true })
		staged := w.add(t, domain.StatusUploading, func(m *domain.Meta) { m.Size = domain.Ptr(int64(5)) })
		halfStaged := w.add(t, domain.StatusUploading, func(m *domain.Meta) {
			m.Properties["os_glance_stage_host"] = "http://node1:9292"
		})
		importing := w.add(t, domain.StatusImporting, func(m *domain.Meta) {
			m.Size = domain.Ptr(int64(5))
			m.Properties["os_glance_import_task"] = domain.NewUUID()
			m.Properties["os_glance_importing_to_stores"] = "slow"
			m.Properties["os_glance_failed_import"] = ""
			m.Locations = []domain.Location{{URL: "test://fast/x", Metadata: map[string]any{"store": "fast"}, Status: "active"}}
		})
		importingNone := w.add(t, domain.StatusImporting, func(m *domain.Meta) {
			m.Properties["os_glance_import_task"] = domain.NewUUID()
			m.Properties["os_glance_importing_to_stores"] = "fast,slow"
		})
		active := w.add(t, domain.StatusActive, nil)
		gone := domain.NewUUID()
		w.staging.held = []string{staged, active, gone}

		s := recovery.New(recovery.Config{Repo: w.repo, Stores: w.set, Now: later, ReleaseLock: d.DeletePropertyAtomic})
		rep, err := s.Sweep(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		want := recovery.Report{Uploads: 1, Stages: 1, Imports: 2, Residues: 2}
		if rep != want {
			t.Errorf("report = %+v, want %+v", rep, want)
		}

		if m := w.get(t, saving); m.Status != domain.StatusQueued || m.Size != nil {
			t.Errorf("saving image: status %s size %v, want queued without size", m.Status, m.Size)
		}
		if m := w.get(t, staged); m.Status != domain.StatusUploading {
			t.Errorf("finished stage: status %s, want uploading kept", m.Status)
		}
		m := w.get(t, halfStaged)
		if m.Status != domain.StatusQueued {
			t.Errorf("half stage: status %s, want queued", m.Status)
		}
		if _, ok := m.Properties["os_glance_stage_host"]; ok {
			t.Error("half stage: os_glance_stage_host kept")
		}
		m = w.get(t, importing)
		if m.Status != domain.StatusActive || m.Properties["os_glance_failed_import"] != "slow" {
			t.Errorf("import with one store done: status %s, failed %q; want active, failed slow",
				m.Status, m.Properties["os_glance_failed_import"])
		}
		for _, p := range []string{"os_glance_import_task", "os_glance_importing_to_stores"} {
			if _, ok := m.Properties[p]; ok {
				t.Errorf("import with one store done: %s kept", p)
			}
		}
		m = w.get(t, importingNone)
		if m.Status != domain.StatusQueued || m.Properties["os_glance_failed_import"] != "fast,slow" {
			t.Errorf("import with no store done: status %s, failed %q; want queued, failed fast,slow",
				m.Status, m.Properties["os_glance_failed_import"])
		}

		// fast: the dead upload and the import that had not reached fast;
		// slow: the dead upload and both imports; never the read-only store.
		wantFast := sorted(saving, importingNone)
		wantSlow := sorted(saving, importing, importingNone)
		if got := w.fast.got(); !slices.Equal(got, wantFast) {
			t.Errorf("fast discarded %v, want %v", got, wantFast)
		}
		if got := w.slow.got(); !slices.Equal(got, wantSlow) {
			t.Errorf("slow discarded %v, want %v", got, wantSlow)
		}
		if got := w.http.got(); len(got) != 0 {
			t.Errorf("read-only store asked to discard %v", got)
		}
		wantStaging := sorted(halfStaged, importing, importingNone, active, gone)
		if got := w.staging.got(); !slices.Equal(got, wantStaging) {
			t.Errorf("staging discarded %v, want %v", got, wantStaging)
		}
	})
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

func TestSweepHonoursLeases(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		for _, tc := range []struct {
			name      string
			exclusive bool
			startup   bool
			wantTaken bool
		}{
			{"shared database at start-up", false, true, false},
			{"shared database later", false, false, false},
			{"exclusive database later", true, false, false},
			{"exclusive database at start-up", true, true, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := newWorld(t, d)
				id := w.add(t, domain.StatusSaving, nil)
				w.staging.held = []string{w.add(t, domain.StatusActive, nil)}
				s := recovery.New(recovery.Config{Repo: w.repo, Stores: w.set, Exclusive: tc.exclusive})
				if _, err := s.Sweep(ctx, tc.startup); err != nil {
					t.Fatal(err)
				}
				taken := w.get(t, id).Status == domain.StatusQueued
				if taken != tc.wantTaken {
					t.Errorf("fresh saving image taken = %v, want %v", taken, tc.wantTaken)
				}
				if got := w.staging.got(); (len(got) > 0) != tc.wantTaken {
					t.Errorf("fresh staging object of an active image discarded: %v, want %v", got, tc.wantTaken)
				}
			})
		}
	})
}
