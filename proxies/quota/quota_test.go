package quota_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/proxies/quota"
)

const imgID = "0a8d3a8e-2222-4bd1-8a0b-3d4c5e6f7a8b"

var owner = &domain.Caller{ProjectID: "p1", UserID: "u1", Roles: []string{"member"}}

func seed(mod func(*domain.Meta)) domain.Meta {
	now := time.Now().UTC().Truncate(time.Second)
	m := domain.Meta{
		ID: imgID, Status: domain.StatusQueued, Visibility: domain.VisibilityShared, Owner: domain.Ptr("p1"),
		DiskFormat: domain.Ptr("raw"), ContainerFormat: domain.Ptr("bare"), CreatedAt: now, UpdatedAt: now,
		Properties: map[string]string{"a": "1"}, Tags: []string{"t1"},
	}
	if mod != nil {
		mod(&m)
	}
	return m
}

type fixture struct {
	db      *proxytest.DB
	drv     *proxytest.Driver
	repo    domain.Repo
	factory domain.Factory
	layers  []proxies.Layer
}

// newFixture stacks db → location → quota, as the gateway does.
func newFixture(lim quota.Limits, usage quota.UsageFunc, seeds ...domain.Meta) *fixture {
	f := &fixture{db: proxytest.NewDB(), drv: proxytest.NewDriver()}
	for _, m := range seeds {
		f.db.Put(m)
	}
	if usage == nil {
		usage = f.db.Usage
	}
	inner := f.db.Repo(owner)
	f.layers = []proxies.Layer{
		location.Layer(proxytest.Stores{D: f.drv}, inner, location.Options{}),
		quota.Layer(lim, usage, owner),
	}
	f.repo, f.factory = proxies.Stack(inner, domain.CoreFactory{}, f.layers...)
	return f
}

func unlimited() quota.Limits {
	return quota.Limits{Properties: -1, Tags: -1, Members: -1, Locations: -1}
}

func props(n int, prefix string) map[string]string {
	p := map[string]string{}
	for i := range n {
		p[fmt.Sprintf("%s%d", prefix, i)] = "v"
	}
	return p
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name    string
		lim     func(*quota.Limits)
		meta    domain.Meta
		wantErr error
		wantMsg string
	}{
		{name: "within limits", lim: func(l *quota.Limits) { l.Properties, l.Tags = 2, 2 },
			meta: domain.Meta{Properties: props(2, "k"), Tags: []string{"a", "b"}}},
		{name: "too many properties", lim: func(l *quota.Limits) { l.Properties = 2 },
			meta: domain.Meta{Properties: props(3, "k")}, wantErr: domain.ErrOverLimit,
			wantMsg: "The limit has been exceeded on the number of allowed image properties. Attempted: 3, Maximum: 2"},
		{name: "os_glance properties not counted", lim: func(l *quota.Limits) { l.Properties = 2 },
			meta: domain.Meta{Properties: func() map[string]string {
				p := props(2, "k")
				p["os_glance_importing_to_stores"] = ""
				return p
			}()}},
		{name: "too many tags", lim: func(l *quota.Limits) { l.Tags = 2 },
			meta: domain.Meta{Tags: []string{"a", "b", "c"}}, wantErr: domain.ErrOverLimit,
			wantMsg: "The limit has been exceeded on the number of allowed image tags. Attempted: 3, Maximum: 2"},
		{name: "duplicate tags count once", lim: func(l *quota.Limits) { l.Tags = 2 },
			meta: domain.Meta{Tags: []string{"a", "b", "a"}}},
		{name: "zero allows none", lim: func(l *quota.Limits) { l.Properties = 0 },
			meta: domain.Meta{Properties: props(1, "k")}, wantErr: domain.ErrOverLimit},
		{name: "negative is unlimited", meta: domain.Meta{Properties: props(300, "k"), Tags: make([]string, 0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lim := unlimited()
			if tc.lim != nil {
				tc.lim(&lim)
			}
			f := newFixture(lim, nil)
			ctx := context.Background()
			img, err := f.factory.NewImage(ctx, tc.meta)
			if err == nil {
				err = f.repo.Add(ctx, img)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("create error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
			}
		})
	}
}

func TestUpdateAndSave(t *testing.T) {
	tests := []struct {
		name    string
		lim     func(*quota.Limits)
		seed    func(*domain.Meta)
		change  func(*domain.Meta)
		wantErr error
		wantMsg string
	}{
		{name: "add a property within limit", lim: func(l *quota.Limits) { l.Properties = 2 },
			change: func(m *domain.Meta) { m.Properties["b"] = "2" }},
		{name: "add a property over limit", lim: func(l *quota.Limits) { l.Properties = 1 },
			change: func(m *domain.Meta) { m.Properties["b"] = "2" }, wantErr: domain.ErrOverLimit,
			wantMsg: "The limit has been exceeded on the number of allowed image properties. Attempted: 2, Maximum: 1"},
		{name: "over limit already, change a value", lim: func(l *quota.Limits) { l.Properties = 1 },
			seed:   func(m *domain.Meta) { m.Properties = props(3, "k") },
			change: func(m *domain.Meta) { m.Properties["k0"] = "new" }},
		{name: "over limit already, remove one", lim: func(l *quota.Limits) { l.Properties = 1 },
			seed:   func(m *domain.Meta) { m.Properties = props(3, "k") },
			change: func(m *domain.Meta) { delete(m.Properties, "k0") }},
		{name: "add a tag over limit", lim: func(l *quota.Limits) { l.Tags = 1 },
			change: func(m *domain.Meta) { m.Tags = append(m.Tags, "t2") }, wantErr: domain.ErrOverLimit,
			wantMsg: "Image tag limit exceeded for image " + imgID + ": The limit has been exceeded on the " +
				"number of allowed image tags. Attempted: 2, Maximum: 1:"},
		{name: "add a location over limit", lim: func(l *quota.Limits) { l.Locations = 1 },
			seed: func(m *domain.Meta) {
				m.Status = domain.StatusActive
				m.Locations = []domain.Location{{URL: "mem://a", Status: "active"}}
			},
			change: func(m *domain.Meta) {
				m.Locations = append(m.Locations, domain.Location{URL: "mem://b", Status: "active"})
			},
			wantErr: domain.ErrOverLimit,
			wantMsg: "The limit has been exceeded on the number of allowed image locations. Attempted: 2, Maximum: 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lim := unlimited()
			if tc.lim != nil {
				tc.lim(&lim)
			}
			s := seed(tc.seed)
			f := newFixture(lim, nil, s)
			ctx := context.Background()
			img, err := f.repo.Get(ctx, imgID)
			if err != nil {
				t.Fatal(err)
			}
			err = img.Update(func(m *domain.Meta) error { tc.change(m); return nil })
			if err == nil {
				err = f.repo.Save(ctx, img, "")
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
			}
			if err != nil {
				got := img.Meta()
				if len(got.Properties) != len(s.Properties) || len(got.Tags) != len(s.Tags) || len(got.Locations) != len(s.Locations) {
					t.Errorf("refused change was applied: %+v", got)
				}
			}
		})
	}
}

// TestSaveChecksWhatTheImageAdds covers a save of an image changed below
// the quota layer's Update check, as the repo check is the second line.
func TestSaveChecksWhatTheImageAdds(t *testing.T) {
	lim := unlimited()
	lim.Properties = 1
	f := newFixture(lim, nil, seed(nil))
	ctx := context.Background()
	img, err := f.repo.Get(ctx, imgID)
	if err != nil {
		t.Fatal(err)
	}
	// Change the core image directly, bypassing the layer's Update.
	core := img
	for core.Unwrap() != nil {
		core = core.Unwrap()
	}
	if err := core.Update(func(m *domain.Meta) error { m.Properties["b"] = "2"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.repo.Save(ctx, img, ""); !errors.Is(err, domain.ErrOverLimit) {
		t.Fatalf("Save = %v, want ErrOverLimit", err)
	}
}

func TestSetData(t *testing.T) {
	tests := []struct {
		name    string
		lim     func(*quota.Limits)
		used    int64
		usedErr error
		n       int64
		size    int64
		wantErr error
		wantMsg string
	}{
		{name: "no limits", n: 3 << 20, size: 3 << 20},
		{name: "announced size over cap", lim: func(l *quota.Limits) { l.SizeCap = 100 }, n: 101, size: 101,
			wantErr: domain.ErrOverLimit, wantMsg: "The incoming image is too large: The provided image is too large."},
		{name: "exactly the cap", lim: func(l *quota.Limits) { l.SizeCap = 100 }, n: 100, size: 100},
		{name: "unknown size over cap", lim: func(l *quota.Limits) { l.SizeCap = 1 << 20 }, n: 2<<20 + 1,
			wantErr: domain.ErrOverLimit, wantMsg: "The incoming image is too large: The provided image is too large."},
		{name: "announced size over quota", lim: func(l *quota.Limits) { l.StorageBytes = 150 }, used: 50, n: 101, size: 101,
			wantErr: domain.ErrOverLimit,
			wantMsg: "Image exceeds the storage quota: The size of the data 101 will exceed the limit. 100 bytes remaining."},
		{name: "fits the quota", lim: func(l *quota.Limits) { l.StorageBytes = 150 }, used: 50, n: 100, size: 100},
		{name: "unknown size over quota", lim: func(l *quota.Limits) { l.StorageBytes = 1 << 20 }, used: 1000, n: 1 << 20,
			wantErr: domain.ErrOverLimit},
		{name: "quota already used up", lim: func(l *quota.Limits) { l.StorageBytes = 100 }, used: 100, n: 1,
			wantErr: domain.ErrOverLimit},
		{name: "usage unavailable", lim: func(l *quota.Limits) { l.StorageBytes = 100 }, usedErr: errors.New("db down"), n: 1,
			wantErr: domain.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lim := unlimited()
			if tc.lim != nil {
				tc.lim(&lim)
			}
			var asked string
			usage := func(_ context.Context, o string) (int64, error) { asked = o; return tc.used, tc.usedErr }
			f := newFixture(lim, usage, seed(nil))
			ctx := context.Background()
			img, err := f.repo.Get(ctx, imgID)
			if err != nil {
				t.Fatal(err)
			}
			err = img.SetData(ctx, proxytest.NewReader(tc.n, nil), domain.DataIn{Size: tc.size})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetData error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
			}
			if lim.StorageBytes > 0 && asked != "p1" {
				t.Errorf("usage asked for %q, want the caller's project p1", asked)
			}
			stored, _ := f.db.Image(imgID)
			if err != nil {
				if stored.Status != domain.StatusQueued || len(f.drv.Objects()) != 0 {
					t.Errorf("after refusal: status %s, objects %v; want queued and none", stored.Status, f.drv.Objects())
				}
				return
			}
			if stored.Status != domain.StatusActive || stored.Size == nil || *stored.Size != tc.n {
				t.Errorf("after upload: status %s size %v; want active %d", stored.Status, stored.Size, tc.n)
			}
		})
	}
}

func TestMembers(t *testing.T) {
	tests := []struct {
		name     string
		limit    int
		existing int
		wantErr  error
		wantMsg  string
	}{
		{name: "room left", limit: 2, existing: 1},
		{name: "full", limit: 1, existing: 1, wantErr: domain.ErrOverLimit,
			wantMsg: "Image member limit exceeded for image " + imgID + ": The limit has been exceeded on the number " +
				"of allowed image members for this image. Attempted: 2, Maximum: 1:"},
		{name: "zero", limit: 0, existing: 0, wantErr: domain.ErrOverLimit},
		{name: "unlimited", limit: -1, existing: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lim := unlimited()
			lim.Members = tc.limit
			f := newFixture(lim, nil, seed(nil))
			for i := range tc.existing {
				f.db.PutMember(domain.NewMember(imgID, fmt.Sprintf("m%d", i)))
			}
			ctx := context.Background()
			img, err := f.repo.Get(ctx, imgID)
			if err != nil {
				t.Fatal(err)
			}
			mr := proxies.StackMembers(img, f.db.Members(owner, imgID), f.layers...)
			err = mr.Add(ctx, domain.NewMember(imgID, "new"))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Add error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
			}
			want := tc.existing
			if err == nil {
				want++
			}
			if got := f.db.Members(nil, imgID).Count(); got != want {
				t.Errorf("members = %d, want %d", got, want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"100", 100, false},
		{"100B", 100, false},
		{"1KB", 1 << 10, false},
		{"5MB", 5 << 20, false},
		{"10GB", 10 << 30, false},
		{"2TB", 2 << 40, false},
		{"1 GB", 0, true},
		{"1gb", 0, true},
		{"1G", 0, true},
		{"-1", 0, true},
		{"", 0, true},
		{"99999999999999999999", 0, true},
		{"9999999999TB", 0, true},
	}
	for _, tc := range tests {
		got, err := quota.ParseSize(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, err=%v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("ParseSize(%q) error kind = %v, want ErrInvalid", tc.in, err)
		}
	}
}
