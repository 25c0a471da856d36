package location_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/stores"
)

// multiFixture is db → location over a multi-store set of in-memory
// backends: "fast" (weight 10, the default), "cheap" (weight 1) and "web",
// a read-only http backend.
type multiFixture struct {
	db    *proxytest.DB
	fast  *proxytest.Driver
	cheap *proxytest.Driver
	web   *proxytest.Driver
	repo  domain.Repo
}

func newMultiFixture(t *testing.T, m domain.Meta) *multiFixture {
	t.Helper()
	f := &multiFixture{db: proxytest.NewDB(), fast: proxytest.NewDriver(), cheap: proxytest.NewDriver(), web: proxytest.NewDriver()}
	set, err := stores.NewMultiSet("fast",
		&stores.Backend{ID: "fast", Type: "mem", Weight: 10, Driver: f.fast},
		&stores.Backend{ID: "cheap", Type: "mem", Weight: 1, Driver: f.cheap},
		&stores.Backend{ID: "web", Type: "http", Driver: f.web},
	)
	if err != nil {
		t.Fatal(err)
	}
	f.db.Put(m)
	f.repo, _ = proxies.Stack(f.db.Repo(nil), domain.CoreFactory{}, location.Layer(set, f.db.Repo(nil), location.Options{}))
	return f
}

func (f *multiFixture) get(t *testing.T) domain.Image {
	t.Helper()
	img, err := f.repo.Get(context.Background(), imgID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return img
}

func (f *multiFixture) stored(t *testing.T) domain.Meta {
	t.Helper()
	m, ok := f.db.Image(imgID)
	if !ok {
		t.Fatal("image vanished")
	}
	return m
}

func (f *multiFixture) objects() int {
	return len(f.fast.Objects()) + len(f.cheap.Objects()) + len(f.web.Objects())
}

func TestSetDataChoosesTheStore(t *testing.T) {
	tests := []struct {
		name      string
		store     string
		wantStore string
		wantErr   error
		wantMsg   string
	}{
		{name: "default backend", store: "", wantStore: "fast"},
		{name: "named backend", store: "cheap", wantStore: "cheap"},
		{name: "unknown backend", store: "nowhere", wantErr: domain.ErrInvalid,
			wantMsg: "Store for identifier nowhere not found"},
		{name: "read-only backend", store: "web", wantErr: domain.ErrGone,
			wantMsg: "Error in store configuration. Adding images to store is disabled."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newMultiFixture(t, queued(nil))
			err := f.get(t).SetData(context.Background(), proxytest.NewReader(1000, nil), domain.DataIn{Store: tc.store})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetData error = %v, want %v", err, tc.wantErr)
			}
			m := f.stored(t)
			if tc.wantErr != nil {
				if err.Error() != tc.wantMsg {
					t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
				}
				if m.Status != domain.StatusQueued || f.db.Saves() != 0 || f.objects() != 0 {
					t.Errorf("refused upload left status %s, %d saves, %d objects", m.Status, f.db.Saves(), f.objects())
				}
				return
			}
			if len(m.Locations) != 1 || location.StoreOf(m.Locations[0]) != tc.wantStore {
				t.Fatalf("locations = %+v, want one in %s", m.Locations, tc.wantStore)
			}
			drv := map[string]*proxytest.Driver{"fast": f.fast, "cheap": f.cheap}[tc.wantStore]
			if got, ok := drv.Bytes(imgID); !ok || !bytes.Equal(got, proxytest.Bytes(1000)) {
				t.Errorf("the data is not in %s", tc.wantStore)
			}
			if f.objects() != 1 {
				t.Errorf("%d objects stored, want 1", f.objects())
			}
		})
	}
}

func TestSetDataImport(t *testing.T) {
	importing := func(m *domain.Meta) { m.Status = domain.StatusImporting }
	copyable := func(m *domain.Meta) {
		m.Status = domain.StatusActive
		m.Size = domain.Ptr(int64(1000))
		m.Locations = []domain.Location{{URL: "mem://" + imgID, Metadata: map[string]any{"store": "fast"}, Status: "active"}}
	}
	tests := []struct {
		name       string
		meta       func(*domain.Meta)
		in         domain.DataIn
		reader     io.Reader
		wantErr    error
		wantStatus domain.Status
		wantLocs   int
	}{
		{name: "last store activates", meta: importing, in: domain.DataIn{Import: true, Activate: true, Store: "cheap"},
			wantStatus: domain.StatusActive, wantLocs: 1},
		{name: "more stores to come", meta: importing, in: domain.DataIn{Import: true, Store: "cheap"},
			wantStatus: domain.StatusImporting, wantLocs: 1},
		{name: "copy-image adds a location", meta: copyable, in: domain.DataIn{Import: true, Store: "cheap"},
			wantStatus: domain.StatusActive, wantLocs: 2},
		{name: "copy-image of other data", meta: func(m *domain.Meta) { copyable(m); m.Size = domain.Ptr(int64(999)) },
			in: domain.DataIn{Import: true, Store: "cheap"}, wantErr: domain.ErrInvalid,
			wantStatus: domain.StatusActive, wantLocs: 1},
		{name: "stream fails", meta: importing, in: domain.DataIn{Import: true, Activate: true, Store: "cheap"},
			reader: proxytest.NewReader(2<<20, io.ErrUnexpectedEOF), wantErr: domain.ErrInvalid,
			wantStatus: domain.StatusImporting},
		{name: "queued image", meta: nil, in: domain.DataIn{Import: true, Activate: true},
			wantErr: domain.ErrConflict, wantStatus: domain.StatusQueued},
		{name: "unknown store", meta: importing, in: domain.DataIn{Import: true, Store: "nowhere"},
			wantErr: domain.ErrInvalid, wantStatus: domain.StatusImporting},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newMultiFixture(t, queued(tc.meta))
			if tc.meta != nil && f.stored(t).Status == domain.StatusActive {
				if _, err := f.fast.Put(context.Background(), imgID, proxytest.NewReader(1000, nil), 1000); err != nil {
					t.Fatal(err)
				}
			}
			before := f.objects()
			r := tc.reader
			if r == nil {
				r = proxytest.NewReader(1000, nil)
			}
			img := f.get(t)
			err := img.SetData(context.Background(), r, tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetData error = %v, want %v", err, tc.wantErr)
			}
			for _, m := range []domain.Meta{f.stored(t), img.Meta()} {
				if m.Status != tc.wantStatus || len(m.Locations) != tc.wantLocs {
					t.Errorf("status %s with %d locations, want %s with %d", m.Status, len(m.Locations), tc.wantStatus, tc.wantLocs)
				}
			}
			wantObjects := before
			if tc.wantErr == nil {
				wantObjects++
				m := f.stored(t)
				last := m.Locations[len(m.Locations)-1]
				if location.StoreOf(last) != tc.in.Store || m.Size == nil || *m.Size != 1000 || m.Checksum == nil {
					t.Errorf("new location %+v, size %v, checksum %v", last, m.Size, m.Checksum)
				}
			}
			if got := f.objects(); got != wantObjects {
				t.Errorf("%d objects stored, want %d", got, wantObjects)
			}
		})
	}
}

// TestLocationsByWeight checks the order of locations handed out and read:
// the heaviest backend first, the next one when it fails.
func TestLocationsByWeight(t *testing.T) {
	ctx := context.Background()
	f := newMultiFixture(t, queued(func(m *domain.Meta) {
		m.Status = domain.StatusActive
		m.Size = domain.Ptr(int64(5))
		m.Locations = []domain.Location{
			{ID: 1, URL: "mem://in-cheap", Metadata: map[string]any{"store": "cheap"}, Status: "active"},
			{ID: 2, URL: "mem://in-fast", Metadata: map[string]any{"store": "fast"}, Status: "active"},
		}
	}))
	if _, err := f.cheap.Put(ctx, "in-cheap", bytes.NewReader([]byte("cheap")), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := f.fast.Put(ctx, "in-fast", bytes.NewReader([]byte("fast!")), 5); err != nil {
		t.Fatal(err)
	}
	img := f.get(t)
	if got := img.Meta().Locations; len(got) != 2 || location.StoreOf(got[0]) != "fast" {
		t.Errorf("locations handed out as %+v, want fast first", got)
	}
	read := func() string {
		rc, err := img.Data(ctx, 0, -1)
		if err != nil {
			t.Fatalf("Data: %v", err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}
	if got := read(); got != "fast!" {
		t.Errorf("read %q, want the fast store's copy", got)
	}
	f.fast.GetErr = errors.New("fast store down")
	if got := read(); got != "cheap" {
		t.Errorf("read %q with the fast store down, want the cheap store's copy", got)
	}
}

func TestUpdateLocations(t *testing.T) {
	ctx := context.Background()
	active := func(m *domain.Meta) {
		m.Status = domain.StatusActive
		m.Size = domain.Ptr(int64(7))
		m.Locations = []domain.Location{
			{ID: 1, URL: "mem://one", Metadata: map[string]any{"store": "fast"}, Status: "active"},
			{ID: 2, URL: "mem://two", Metadata: map[string]any{"store": "cheap"}, Status: "active"},
		}
	}
	tests := []struct {
		name      string
		meta      func(*domain.Meta)
		change    func(m *domain.Meta)
		deleteErr error
		wantErr   error // from Update
		wantMsg   string
		saveErr   error // from Save
		check     func(t *testing.T, f *multiFixture, m domain.Meta)
	}{
		{
			name: "add to a queued image", meta: nil,
			change: func(m *domain.Meta) {
				m.Locations = append(m.Locations, domain.Location{URL: "mem://new", Metadata: map[string]any{}})
			},
			check: func(t *testing.T, f *multiFixture, m domain.Meta) {
				if len(m.Locations) != 1 || location.StoreOf(m.Locations[0]) != "fast" || m.Locations[0].Status != "active" {
					t.Errorf("locations = %+v, want one active in fast", m.Locations)
				}
				if m.Size == nil || *m.Size != 3 {
					t.Errorf("size = %v, want the 3 bytes the store holds", m.Size)
				}
			},
		},
		{
			name: "the named store is tried first", meta: nil,
			change: func(m *domain.Meta) {
				m.Locations = append(m.Locations, domain.Location{URL: "mem://new", Metadata: map[string]any{"store": "cheap"}})
			},
			check: func(t *testing.T, f *multiFixture, m domain.Meta) {
				if location.StoreOf(m.Locations[0]) != "cheap" {
					t.Errorf("locations = %+v, want the location in cheap", m.Locations)
				}
			},
		},
		{
			name: "restricted scheme", change: func(m *domain.Meta) {
				m.Locations = append(m.Locations, domain.Location{URL: "file:///etc/passwd"})
			}, wantErr: domain.ErrInvalid, wantMsg: "Invalid location",
		},
		{
			name: "unknown scheme", change: func(m *domain.Meta) {
				m.Locations = append(m.Locations, domain.Location{URL: "swift://x/y"})
			}, wantErr: domain.ErrInvalid, wantMsg: "Invalid location",
		},
		{
			name: "no data there", change: func(m *domain.Meta) {
				m.Locations = append(m.Locations, domain.Location{URL: "mem://missing"})
			}, wantErr: domain.ErrInvalid, wantMsg: "Invalid location",
		},
		{
			name: "duplicate", meta: active, change: func(m *domain.Meta) {
				m.Locations = append(m.Locations, domain.Location{URL: "mem://one", Metadata: map[string]any{"store": "fast"}})
			}, wantErr: domain.ErrInvalid, wantMsg: "The location mem://one already exists",
		},
		{
			name: "remove deletes the data at save", meta: active,
			change: func(m *domain.Meta) { m.Locations = m.Locations[1:] },
			check: func(t *testing.T, f *multiFixture, m domain.Meta) {
				if _, ok := f.fast.Bytes("one"); ok {
					t.Error("the removed location's data is still there")
				}
				if _, ok := f.cheap.Bytes("two"); !ok {
					t.Error("the kept location's data is gone")
				}
			},
		},
		{
			name: "remove refused by the store", meta: active, deleteErr: fmt.Errorf("%w: clones", stores.ErrInUse),
			change:  func(m *domain.Meta) { m.Locations = m.Locations[1:] },
			saveErr: domain.ErrConflict,
			check: func(t *testing.T, f *multiFixture, m domain.Meta) {
				if _, ok := f.fast.Bytes("one"); !ok {
					t.Error("the data was deleted although the store refused")
				}
			},
		},
		{
			name: "replace with the same URLs keeps the rows", meta: active,
			change: func(m *domain.Meta) {
				m.Locations = []domain.Location{
					{URL: "mem://two", Metadata: map[string]any{"store": "cheap", "k": "v"}},
					{URL: "mem://one", Metadata: map[string]any{"store": "fast"}},
				}
			},
			check: func(t *testing.T, f *multiFixture, m domain.Meta) {
				ids := map[string]int64{}
				for _, l := range m.Locations {
					ids[l.URL] = l.ID
				}
				if ids["mem://one"] != 1 || ids["mem://two"] != 2 || len(m.Locations) != 2 {
					t.Errorf("locations = %+v, want the rows 1 and 2 kept", m.Locations)
				}
				if f.fast.Deletes()+f.cheap.Deletes() != 0 {
					t.Error("data was deleted by a metadata change")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newMultiFixture(t, queued(tc.meta))
			for _, o := range []struct {
				d  *proxytest.Driver
				id string
			}{{f.fast, "one"}, {f.cheap, "two"}, {f.fast, "new"}, {f.cheap, "new"}} {
				if _, err := o.d.Put(ctx, o.id, bytes.NewReader([]byte("abc")), 0); err != nil {
					t.Fatal(err)
				}
			}
			f.fast.DeleteErr = tc.deleteErr
			img := f.get(t)
			before := img.Meta()
			err := img.Update(func(m *domain.Meta) error { tc.change(m); return nil })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Update error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if err.Error() != tc.wantMsg {
					t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
				}
				if got := img.Meta(); len(got.Locations) != len(before.Locations) {
					t.Errorf("refused change applied: %+v", got.Locations)
				}
				return
			}
			err = f.repo.Save(ctx, img, before.Status)
			if !errors.Is(err, tc.saveErr) {
				t.Fatalf("Save error = %v, want %v", err, tc.saveErr)
			}
			m := f.stored(t)
			if tc.saveErr != nil && len(m.Locations) != len(before.Locations) {
				t.Errorf("a refused save changed the record: %+v", m.Locations)
			}
			if tc.check != nil {
				tc.check(t, f, m)
			}
		})
	}
}
