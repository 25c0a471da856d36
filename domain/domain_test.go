package domain_test

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
)

func TestCanTransition(t *testing.T) {
	tests := []struct {
		from, to domain.Status
		want     bool
	}{
		{domain.StatusQueued, domain.StatusSaving, true},
		{domain.StatusQueued, domain.StatusUploading, true},
		{domain.StatusSaving, domain.StatusQueued, true},
		{domain.StatusSaving, domain.StatusActive, true},
		{domain.StatusUploading, domain.StatusImporting, true},
		{domain.StatusImporting, domain.StatusQueued, true},
		{domain.StatusActive, domain.StatusDeactivated, true},
		{domain.StatusDeactivated, domain.StatusActive, true},
		{domain.StatusPendingDelete, domain.StatusActive, true},
		{domain.StatusActive, domain.StatusActive, true},
		{domain.StatusActive, domain.StatusSaving, false},
		{domain.StatusActive, domain.StatusQueued, false},
		{domain.StatusKilled, domain.StatusActive, false},
		{domain.StatusDeleted, domain.StatusQueued, false},
		{domain.StatusUploading, domain.StatusActive, false},
		{domain.StatusDeactivated, domain.StatusSaving, false},
	}
	for _, tc := range tests {
		if got := domain.CanTransition(tc.from, tc.to); got != tc.want {
			t.Errorf("CanTransition(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

func newQueued(t *testing.T) domain.Image {
	t.Helper()
	img, err := domain.CoreFactory{}.NewImage(context.Background(), domain.Meta{Name: domain.Ptr("x"), Tags: []string{"b", "a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestCoreFactory(t *testing.T) {
	m := newQueued(t).Meta()
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(m.ID) {
		t.Errorf("id %q is not a version 4 UUID", m.ID)
	}
	if m.Status != domain.StatusQueued || m.Visibility != domain.VisibilityShared {
		t.Errorf("status %s visibility %s, want queued shared", m.Status, m.Visibility)
	}
	if len(m.Tags) != 2 || m.Tags[0] != "a" || m.Tags[1] != "b" {
		t.Errorf("tags = %v, want the set [a b]", m.Tags)
	}
	if m.CreatedAt.IsZero() || !m.CreatedAt.Equal(m.UpdatedAt) {
		t.Errorf("timestamps %v %v", m.CreatedAt, m.UpdatedAt)
	}
	if _, err := (domain.CoreFactory{}).NewImage(context.Background(), domain.Meta{Visibility: "everyone"}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("bad visibility: err = %v, want ErrInvalid", err)
	}
	if _, err := (domain.CoreFactory{}).NewImage(context.Background(), domain.Meta{MinRAM: -1}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("negative min_ram: err = %v, want ErrInvalid", err)
	}
}

func TestUpdateIsAllOrNothing(t *testing.T) {
	img := newQueued(t)
	before := img.Meta()
	boom := errors.New("boom")
	err := img.Update(func(m *domain.Meta) error {
		m.Name = domain.Ptr("changed")
		m.Properties["k"] = "v"
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	after := img.Meta()
	if *after.Name != *before.Name || len(after.Properties) != 0 {
		t.Errorf("a failed update leaked: name %q properties %v", *after.Name, after.Properties)
	}
	// Meta hands out copies: changing one changes nothing inside.
	after.Properties["k"] = "v"
	after.Tags[0] = "zzz"
	if m := img.Meta(); len(m.Properties) != 0 || m.Tags[0] != "a" {
		t.Errorf("Meta is not a copy: %v %v", m.Properties, m.Tags)
	}
}

func TestUpdateInvariants(t *testing.T) {
	tests := []struct {
		name   string
		status domain.Status
		fn     func(m *domain.Meta)
		want   error
	}{
		{"formats while queued", domain.StatusQueued, func(m *domain.Meta) { m.DiskFormat = domain.Ptr("raw") }, nil},
		{"disk format once active", domain.StatusActive, func(m *domain.Meta) { m.DiskFormat = domain.Ptr("qcow2") }, domain.ErrForbidden},
		{"container format once active", domain.StatusActive, func(m *domain.Meta) { m.ContainerFormat = domain.Ptr("ovf") }, domain.ErrForbidden},
		{"id", domain.StatusQueued, func(m *domain.Meta) { m.ID = "other" }, domain.ErrForbidden},
		{"bad transition", domain.StatusActive, func(m *domain.Meta) { m.Status = domain.StatusQueued }, domain.ErrConflict},
		{"saving without formats", domain.StatusQueued, func(m *domain.Meta) { m.Status = domain.StatusSaving }, domain.ErrInvalid},
		{"negative min_disk", domain.StatusQueued, func(m *domain.Meta) { m.MinDisk = -1 }, domain.ErrInvalid},
		{"name once active", domain.StatusActive, func(m *domain.Meta) { m.Name = domain.Ptr("y") }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newQueued(t).Meta()
			m.Status = tc.status
			m.DiskFormat, m.ContainerFormat = domain.Ptr("raw"), domain.Ptr("bare")
			if tc.name == "saving without formats" {
				m.DiskFormat = nil
			}
			img := domain.NewImage(m)
			err := img.Update(func(m *domain.Meta) error { tc.fn(m); return nil })
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	var te *domain.TransitionError
	img := domain.NewImage(domain.Meta{ID: "i", Status: domain.StatusActive})
	err := img.Update(func(m *domain.Meta) error { m.Status = domain.StatusSaving; return nil })
	if !errors.As(err, &te) || err.Error() != "Image status transition from active to saving is not allowed" {
		t.Errorf("err = %v", err)
	}
}

func TestActionsAndDelete(t *testing.T) {
	ctx := context.Background()
	img := domain.NewImage(domain.Meta{ID: "i", Status: domain.StatusQueued})
	if err := img.Deactivate(ctx); !errors.Is(err, domain.ErrForbidden) ||
		err.Error() != "Not allowed to deactivate image in status 'queued'" {
		t.Errorf("deactivate queued: %v", err)
	}
	img = domain.NewImage(domain.Meta{ID: "i", Status: domain.StatusActive})
	for range 2 { // repeating is a no-op
		if err := img.Deactivate(ctx); err != nil || img.Meta().Status != domain.StatusDeactivated {
			t.Fatalf("deactivate: %v, status %s", err, img.Meta().Status)
		}
	}
	if err := img.Reactivate(ctx); err != nil || img.Meta().Status != domain.StatusActive {
		t.Fatalf("reactivate: %v", err)
	}
	prot := domain.NewImage(domain.Meta{ID: "p", Status: domain.StatusActive, Protected: true})
	if err := prot.Delete(ctx); !errors.Is(err, domain.ErrForbidden) || err.Error() != "Image p is protected and cannot be deleted." {
		t.Errorf("protected delete: %v", err)
	}
	if err := img.Delete(ctx); err != nil || img.Meta().Status != domain.StatusDeleted || img.Meta().DeletedAt == nil {
		t.Errorf("delete: %v %+v", err, img.Meta())
	}
	if err := img.Delete(ctx); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("second delete: %v, want a transition conflict", err)
	}
	if _, err := img.Data(ctx, 0, -1); !errors.Is(err, domain.ErrNoData) {
		t.Errorf("core Data: %v, want ErrNoData", err)
	}
}

func TestMetaCloneIsDeep(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	m := domain.Meta{ID: "i", Name: domain.Ptr("n"), Checksum: domain.Ptr("c"), HashAlgo: domain.Ptr("a"), HashValue: domain.Ptr("v"), Owner: domain.Ptr("o"),
		ContainerFormat: domain.Ptr("bare"), DiskFormat: domain.Ptr("raw"), Size: domain.Ptr(int64(1)), VirtualSize: domain.Ptr(int64(2)),
		DeletedAt: &at, Tags: []string{"t"}, Properties: map[string]string{"k": "v"},
		Locations: []domain.Location{{URL: "u", Metadata: map[string]any{"store": "s"}}}}
	c := m.Clone()
	if !reflect.DeepEqual(c, m) {
		t.Fatalf("clone %+v differs from %+v", c, m)
	}
	for _, s := range []*string{c.Name, c.Checksum, c.HashAlgo, c.HashValue, c.Owner, c.ContainerFormat, c.DiskFormat} {
		*s += "!"
	}
	*c.Size, *c.VirtualSize = 10, 20
	*c.DeletedAt = at.Add(time.Hour)
	c.Tags[0], c.Properties["k"], c.Locations[0].Metadata["store"] = "x", "x", "x"
	if *m.Name != "n" || *m.Checksum != "c" || *m.HashAlgo != "a" || *m.HashValue != "v" || *m.Owner != "o" ||
		*m.ContainerFormat != "bare" || *m.DiskFormat != "raw" || *m.Size != 1 || *m.VirtualSize != 2 ||
		!m.DeletedAt.Equal(at) || m.Tags[0] != "t" || m.Properties["k"] != "v" || m.Locations[0].Metadata["store"] != "s" {
		t.Fatalf("changing the clone changed the original: %+v", m)
	}
	if *c.Name != "n!" || *c.DiskFormat != "raw!" || *c.VirtualSize != 20 {
		t.Fatalf("clone fields share storage: %+v", c)
	}
	if e := (domain.Meta{}).Clone(); e.Name != nil || e.Size != nil || e.DeletedAt != nil || e.Properties == nil {
		t.Fatalf("clone of an empty record %+v", e)
	}
}

func TestNewUUID(t *testing.T) {
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := domain.NewUUID()
		if !v4.MatchString(id) {
			t.Fatalf("%q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("%q twice", id)
		}
		seen[id] = true
	}
}
