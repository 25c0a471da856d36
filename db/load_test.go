package db_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

// TestGetMatchesList reads images with every field set, empty or at the
// edge of its range, with Get and with List, which read the row in
// different ways on SQLite, and wants the record that was stored from both.
func TestGetMatchesList(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		at := time.Date(2024, 2, 29, 23, 59, 58, 0, time.UTC)
		full := func(m *domain.Meta) {
			m.Name = domain.Ptr("a \"quoted\"\n\tname \\ with é, ü and \x01 and </script>")
			m.Size = domain.Ptr(int64(1<<62 + 1))
			m.VirtualSize = domain.Ptr(int64(-1))
			m.DiskFormat, m.ContainerFormat = domain.Ptr("qcow2"), domain.Ptr("bare")
			m.Checksum = domain.Ptr("0123456789abcdef0123456789abcdef")
			m.HashAlgo, m.HashValue = domain.Ptr("sha512"), domain.Ptr("ff00")
			m.MinDisk, m.MinRAM = 2147483647, 1
			m.Protected, m.Hidden = true, true
			m.Status = domain.StatusActive
			m.Properties = map[string]string{"k": "v \"x\" \\ ü", "empty": "", "null": "null", "1": "2"}
			m.Tags = []string{"b", "a \"t\""}
			m.Locations = []domain.Location{{URL: "file:///x \"y\"", Metadata: map[string]any{"store": "a", "n": 1.0}, Status: "active"}}
		}
		bare := func(m *domain.Meta) {
			m.Name = nil
			m.Owner = nil
			m.Visibility = domain.VisibilityPublic
		}
		empty := func(m *domain.Meta) {
			m.Name = domain.Ptr("")
			m.Size, m.VirtualSize = domain.Ptr(int64(0)), domain.Ptr(int64(0))
			m.Checksum = domain.Ptr("")
		}
		for name, edit := range map[string]func(*domain.Meta){"full": full, "bare": bare, "empty": empty} {
			t.Run(name, func(t *testing.T) {
				id := addAt(t, d, "p1", domain.VisibilityShared, at, edit)
				share(t, d, id, "p2", domain.MemberAccepted)
				for _, c := range []*domain.Caller{admin, p1, p2} {
					got := get(t, d, c, id)
					page, err := d.Images(c).List(ctx, domain.ListQuery{Limit: -1, Hidden: got.Hidden,
						Filters: []domain.Filter{{Field: "id", Op: domain.OpEq, Values: []string{id}}}})
					wantKind(t, err, nil)
					if len(page.Images) != 1 {
						t.Fatalf("%s lists %d images", c.ProjectID, len(page.Images))
					}
					if listed := page.Images[0].Meta(); !reflect.DeepEqual(got, listed) {
						t.Fatalf("%s: Get\n%+v\nList\n%+v", c.ProjectID, got, listed)
					}
					want := mk(t, "p1", domain.VisibilityShared, edit).Meta()
					if (got.Name == nil) != (want.Name == nil) || got.Name != nil && *got.Name != *want.Name {
						t.Errorf("name %v, want %v", got.Name, want.Name)
					}
					if !got.CreatedAt.Equal(at) || !got.UpdatedAt.Equal(at) || got.DeletedAt != nil {
						t.Errorf("times %v %v %v", got.CreatedAt, got.UpdatedAt, got.DeletedAt)
					}
					if !reflect.DeepEqual(got.Size, want.Size) || !reflect.DeepEqual(got.VirtualSize, want.VirtualSize) ||
						got.MinDisk != want.MinDisk || got.MinRAM != want.MinRAM || got.Protected != want.Protected ||
						got.Hidden != want.Hidden || !reflect.DeepEqual(got.Checksum, want.Checksum) ||
						!reflect.DeepEqual(got.Properties, want.Properties) || len(got.Tags) != len(want.Tags) {
						t.Errorf("got %+v\nwant %+v", got, want)
					}
					wantMember := map[*domain.Caller]string{admin: admin.ProjectID, p2: "p2"}[c]
					if got.Visibility != domain.VisibilityShared {
						wantMember = ""
					}
					if got.Member != wantMember {
						t.Errorf("%s: member %q", c.ProjectID, got.Member)
					}
				}
			})
		}
	})
}

// TestGetCanceled refuses a read whose context has ended, on every dialect.
func TestGetCanceled(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		id := add(t, d, "p1", domain.VisibilityPublic, nil)
		c, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := d.Images(p1).Get(c, id); !errors.Is(err, context.Canceled) {
			t.Fatalf("Get with an ended context: %v", err)
		}
		c, cancel = context.WithCancel(ctx)
		defer cancel()
		if _, err := d.Images(p1).Get(c, id); err != nil {
			t.Fatalf("Get with a live context: %v", err)
		}
	})
}

// TestGetBlobColumn reads, on SQLite, an image whose name another program
// stored as a BLOB, which SQLite's JSON functions refuse.
func TestGetBlobColumn(t *testing.T) {
	d := dbtest.OpenSQLite(t)
	id := add(t, d, "p1", domain.VisibilityPublic, func(m *domain.Meta) { m.Properties["k"] = "v" })
	if err := d.Gorm().Exec("UPDATE images SET name = X'626c6f62' WHERE id = ?", id).Error; err != nil {
		t.Fatal(err)
	}
	m := get(t, d, p1, id)
	if m.Name == nil || *m.Name != "blob" || m.Properties["k"] != "v" || m.ID != id {
		t.Fatalf("read %+v", m)
	}
	_, err := d.Images(p1).Get(ctx, "00000000-0000-0000-0000-000000000000")
	wantKind(t, err, domain.ErrNotFound)
}
