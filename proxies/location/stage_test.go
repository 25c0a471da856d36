package location_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/stores/file"
)

const stageID = "5a1c0d2e-8f3b-4c6d-9e7f-0a1b2c3d4e5f"

// stageFixture is db → location with a real file staging area.
type stageFixture struct {
	db    *proxytest.DB
	dir   string
	repo  domain.Repo
	fault *proxytest.FaultRepo
}

func newStageFixture(t *testing.T, status domain.Status, opts location.Options, staging bool) *stageFixture {
	t.Helper()
	f := &stageFixture{db: proxytest.NewDB(), dir: t.TempDir()}
	now := time.Now().UTC().Truncate(time.Second)
	f.db.Put(domain.Meta{ID: stageID, Status: status, Visibility: domain.VisibilityShared, Owner: domain.Ptr("p1"),
		CreatedAt: now, UpdatedAt: now, Properties: map[string]string{}})
	st := proxytest.Stores{D: proxytest.NewDriver()}
	if staging {
		drv, err := file.New(file.Config{DataDir: f.dir})
		if err != nil {
			t.Fatal(err)
		}
		st.Stage = drv
	}
	f.fault = &proxytest.FaultRepo{Repo: f.db.Repo(nil)}
	f.repo, _ = proxies.Stack(f.db.Repo(nil), domain.CoreFactory{}, location.Layer(st, f.fault, opts))
	return f
}

func (f *stageFixture) stage(t *testing.T, data []byte, in domain.DataIn) (domain.Image, error) {
	t.Helper()
	img, err := f.repo.Get(context.Background(), stageID)
	if err != nil {
		t.Fatal(err)
	}
	return img, img.Stage(context.Background(), bytes.NewReader(data), in)
}

func (f *stageFixture) stored(t *testing.T) domain.Meta {
	t.Helper()
	m, ok := f.db.Image(stageID)
	if !ok {
		t.Fatal("image vanished")
	}
	return m
}

func (f *stageFixture) staged() ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(f.dir, stageID))
	return b, err == nil
}

func TestStage(t *testing.T) {
	data := proxytest.Bytes(3<<20 + 7)
	tests := []struct {
		name      string
		status    domain.Status
		host      string
		staging   bool
		size      int64
		data      []byte
		preStaged bool
		saveFails int
		wantKind  error
		wantMsg   string
		// wantStatus is the stored status afterwards.
		wantStatus domain.Status
	}{
		{name: "unknown size", status: domain.StatusQueued, staging: true, data: data, wantStatus: domain.StatusUploading},
		{name: "announced size and stage host", status: domain.StatusQueued, staging: true, size: int64(len(data)),
			data: data, host: "http://worker-1:9292", wantStatus: domain.StatusUploading},
		{name: "empty", status: domain.StatusQueued, staging: true, data: nil, wantStatus: domain.StatusUploading},
		{name: "not queued", status: domain.StatusActive, staging: true, data: data, wantKind: domain.ErrConflict,
			wantMsg: "Image status transition from active to uploading is not allowed", wantStatus: domain.StatusActive},
		{name: "already uploading", status: domain.StatusUploading, staging: true, data: data, wantKind: domain.ErrConflict,
			wantStatus: domain.StatusUploading},
		{name: "no staging area", status: domain.StatusQueued, data: data, wantKind: domain.ErrUnavailable,
			wantStatus: domain.StatusQueued},
		{name: "data already staged", status: domain.StatusQueued, staging: true, data: data, preStaged: true,
			wantKind: domain.ErrConflict, wantMsg: "The image " + stageID + " has data on staging", wantStatus: domain.StatusQueued},
		{name: "short stream", status: domain.StatusQueued, staging: true, size: 10, data: []byte("12345"),
			wantKind: domain.ErrInvalid, wantStatus: domain.StatusQueued},
		{name: "status swap lost", status: domain.StatusQueued, staging: true, data: data, saveFails: 1,
			wantKind: domain.ErrUnavailable, wantStatus: domain.StatusQueued},
		{name: "final save fails", status: domain.StatusQueued, staging: true, data: data, saveFails: 2,
			wantKind: domain.ErrUnavailable, wantStatus: domain.StatusQueued},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newStageFixture(t, tc.status, location.Options{StageHost: tc.host}, tc.staging)
			f.fault.SaveFailsAt = tc.saveFails
			if tc.preStaged {
				if err := os.WriteFile(filepath.Join(f.dir, stageID), []byte("earlier"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			img, err := f.stage(t, tc.data, domain.DataIn{Size: tc.size})
			m := f.stored(t)
			if m.Status != tc.wantStatus {
				t.Errorf("stored status %s, want %s", m.Status, tc.wantStatus)
			}
			if img.Meta().Status != tc.wantStatus {
				t.Errorf("image status %s, want %s", img.Meta().Status, tc.wantStatus)
			}
			if tc.wantKind != nil {
				if !errors.Is(err, tc.wantKind) {
					t.Fatalf("err = %v, want %v", err, tc.wantKind)
				}
				if tc.wantMsg != "" && err.Error() != tc.wantMsg {
					t.Errorf("message %q, want %q", err, tc.wantMsg)
				}
				if m.Size != nil {
					t.Errorf("a failed stage left size %d", *m.Size)
				}
				got, ok := f.staged()
				switch {
				case tc.preStaged && string(got) != "earlier":
					t.Errorf("someone else's staged data was touched: %q, %v", got, ok)
				case !tc.preStaged && ok:
					t.Errorf("a failed stage left %d bytes in staging", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("Stage: %v", err)
			}
			if m.Size == nil || *m.Size != int64(len(tc.data)) {
				t.Errorf("stored size %v, want %d", m.Size, len(tc.data))
			}
			if got := m.Properties[location.StageHostProperty]; got != tc.host {
				t.Errorf("os_glance_stage_host = %q, want %q", got, tc.host)
			}
			if got, ok := f.staged(); !ok || !bytes.Equal(got, tc.data) {
				t.Errorf("staged %d bytes (present %v), want the %d sent", len(got), ok, len(tc.data))
			}
			if len(m.Locations) != 0 || m.Checksum != nil {
				t.Errorf("staging recorded data: %+v", m)
			}
		})
	}
}
