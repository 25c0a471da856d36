package db_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

func TestAddGetRoundTrip(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		img := mk(t, "p1", domain.VisibilityPrivate, func(m *domain.Meta) {
			m.Name = domain.Ptr("cirros ünïcode")
			m.DiskFormat = domain.Ptr("qcow2")
			m.ContainerFormat = domain.Ptr("bare")
			m.MinRAM, m.MinDisk = 512, 1
			m.Protected = true
			m.Hidden = true
			m.Tags = []string{"b", "a", "b"}
			m.Properties = map[string]string{"os_distro": "cirros", "empty": ""}
		})
		want := img.Meta()
		wantKind(t, d.Images(p1).Add(ctx, img), nil)

		got := get(t, d, p1, want.ID)
		if got.ID != want.ID || *got.Name != *want.Name || got.Status != domain.StatusQueued ||
			got.Visibility != domain.VisibilityPrivate || !got.Protected || !got.Hidden ||
			got.MinRAM != 512 || got.MinDisk != 1 || *got.DiskFormat != "qcow2" || *got.ContainerFormat != "bare" ||
			*got.Owner != "p1" || got.Size != nil || got.Checksum != nil || got.DeletedAt != nil {
			t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", got, want)
		}
		// SQLite keeps microseconds; MySQL's DATETIME holds whole seconds.
		wantAt := want.CreatedAt
		if strings.HasSuffix(t.Name(), "/mysql") {
			wantAt = wantAt.Truncate(time.Second)
		}
		if !got.CreatedAt.Equal(wantAt) || got.CreatedAt.Location() != time.UTC {
			t.Fatalf("created_at %v, want %v UTC", got.CreatedAt, wantAt)
		}
		if !slices.Equal(got.Tags, []string{"a", "b"}) {
			t.Fatalf("tags %v", got.Tags)
		}
		if !maps.Equal(got.Properties, want.Properties) {
			t.Fatalf("properties %v, want %v", got.Properties, want.Properties)
		}
		if got.Member != "" {
			t.Fatalf("owner's view has member %q", got.Member)
		}
	})
}

func TestGetVisibilityMatrix(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		ids := map[string]string{
			"public":          add(t, d, "p1", domain.VisibilityPublic, nil),
			"community":       add(t, d, "p1", domain.VisibilityCommunity, nil),
			"private":         add(t, d, "p1", domain.VisibilityPrivate, nil),
			"shared-none":     add(t, d, "p1", domain.VisibilityShared, nil),
			"shared-pending":  add(t, d, "p1", domain.VisibilityShared, nil),
			"shared-rejected": add(t, d, "p1", domain.VisibilityShared, nil),
			"shared-accepted": add(t, d, "p1", domain.VisibilityShared, nil),
			"shared-removed":  add(t, d, "p1", domain.VisibilityShared, nil),
			"private-member":  add(t, d, "p1", domain.VisibilityPrivate, nil),
			"no-owner":        add(t, d, "", domain.VisibilityPrivate, nil),
			"deleted":         add(t, d, "p1", domain.VisibilityPublic, nil),
		}
		share(t, d, ids["shared-pending"], "p2", domain.MemberPending)
		share(t, d, ids["shared-rejected"], "p2", domain.MemberRejected)
		share(t, d, ids["shared-accepted"], "p2", domain.MemberAccepted)
		share(t, d, ids["shared-removed"], "p2", domain.MemberAccepted)
		share(t, d, ids["private-member"], "p2", domain.MemberAccepted)
		wantKind(t, d.Members(admin, ids["shared-removed"]).Remove(ctx, domain.Member{MemberID: "p2"}), nil)
		wantKind(t, d.Images(admin).Remove(ctx, domain.NewImage(domain.Meta{ID: ids["deleted"]})), nil)

		cases := []struct {
			caller *domain.Caller
			name   string
			see    []string
		}{
			{admin, "admin", []string{"public", "community", "private", "shared-none", "shared-pending", "shared-rejected",
				"shared-accepted", "shared-removed", "private-member", "no-owner"}},
			{p1, "owner", []string{"public", "community", "private", "shared-none", "shared-pending", "shared-rejected",
				"shared-accepted", "shared-removed", "private-member", "no-owner"}},
			{p2, "member", []string{"public", "community", "shared-pending", "shared-rejected", "shared-accepted", "no-owner"}},
			{p3, "stranger", []string{"public", "community", "no-owner"}},
			{anon, "anonymous", []string{"public", "community", "no-owner"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				for key, id := range ids {
					img, err := d.Images(tc.caller).Get(ctx, id)
					if slices.Contains(tc.see, key) {
						wantKind(t, err, nil)
						m := img.Meta()
						wantMember := ""
						if m.Visibility == domain.VisibilityShared && !tc.caller.Owns(m.Owner) {
							wantMember = tc.caller.ProjectID
						}
						if m.Member != wantMember {
							t.Errorf("%s: member %q, want %q", key, m.Member, wantMember)
						}
						continue
					}
					wantMsg(t, err, domain.ErrNotFound, "No image found with ID "+id)
				}
			})
		}
	})
}

func TestGetLongIDAndMissing(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		long := strings.Repeat("x", 37)
		_, err := d.Images(admin).Get(ctx, long)
		wantMsg(t, err, domain.ErrNotFound, "No image found with ID "+long)
		_, err = d.Images(admin).Get(ctx, "00000000-0000-4000-8000-000000000000")
		wantMsg(t, err, domain.ErrNotFound, "No image found with ID 00000000-0000-4000-8000-000000000000")
	})
}

func TestAddDuplicateIDEvenDeleted(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		id := add(t, d, "p1", domain.VisibilityPrivate, nil)
		err := d.Images(p1).Add(ctx, mk(t, "p1", domain.VisibilityPrivate, func(m *domain.Meta) { m.ID = id }))
		wantMsg(t, err, domain.ErrConflict, "Image ID "+id+" already exists!")

		wantKind(t, d.Images(p1).Remove(ctx, domain.NewImage(get(t, d, p1, id))), nil)
		err = d.Images(p1).Add(ctx, mk(t, "p1", domain.VisibilityPrivate, func(m *domain.Meta) { m.ID = id }))
		wantMsg(t, err, domain.ErrConflict, "Image ID "+id+" already exists!")
	})
}

func TestSaveUpdatesEverything(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		id := add(t, d, "p1", domain.VisibilityPrivate, func(m *domain.Meta) {
			m.Tags = []string{"keep", "drop"}
			m.Properties = map[string]string{"keep": "1", "change": "old", "drop": "x"}
		})
		repo := d.Images(p1)
		img, err := repo.Get(ctx, id)
		wantKind(t, err, nil)
		before := img.Meta()
		time.Sleep(1100 * time.Millisecond) // updated_at has second precision
		err = img.Update(func(m *domain.Meta) error {
			m.Name = domain.Ptr("renamed")
			m.DiskFormat, m.ContainerFormat = domain.Ptr("raw"), domain.Ptr("bare")
			m.Status = domain.StatusActive
			m.Size, m.VirtualSize = domain.Ptr(int64(1<<40)), domain.Ptr(int64(5))
			m.Checksum, m.HashAlgo, m.HashValue = domain.Ptr("c"), domain.Ptr("sha512"), domain.Ptr("h")
			m.Tags = []string{"keep", "new"}
			m.Properties = map[string]string{"keep": "1", "change": "new", "added": "y"}
			m.Locations = []domain.Location{{URL: "file:///a", Metadata: map[string]any{"store": "fast", "n": 1.5}, Status: "active"}}
			return nil
		})
		wantKind(t, err, nil)
		wantKind(t, repo.Save(ctx, img, domain.StatusQueued), nil)

		got := get(t, d, p1, id)
		if *got.Name != "renamed" || got.Status != domain.StatusActive || *got.Size != 1<<40 || *got.VirtualSize != 5 ||
			*got.Checksum != "c" || *got.HashAlgo != "sha512" || *got.HashValue != "h" {
			t.Fatalf("columns not saved: %+v", got)
		}
		if !got.UpdatedAt.After(before.UpdatedAt) {
			t.Fatalf("updated_at %v not after %v", got.UpdatedAt, before.UpdatedAt)
		}
		if !got.CreatedAt.Equal(before.CreatedAt) {
			t.Fatalf("created_at changed: %v -> %v", before.CreatedAt, got.CreatedAt)
		}
		if !slices.Equal(got.Tags, []string{"keep", "new"}) {
			t.Fatalf("tags %v", got.Tags)
		}
		if want := map[string]string{"keep": "1", "change": "new", "added": "y"}; !maps.Equal(got.Properties, want) {
			t.Fatalf("properties %v, want %v", got.Properties, want)
		}
		if len(got.Locations) != 1 || got.Locations[0].URL != "file:///a" || got.Locations[0].ID == 0 ||
			got.Locations[0].Metadata["store"] != "fast" || got.Locations[0].Metadata["n"] != 1.5 ||
			got.Locations[0].Status != "active" {
			t.Fatalf("locations %+v", got.Locations)
		}

		// Replace the location: the old row is marked deleted, the new one added.
		img = domain.NewImage(got)
		wantKind(t, img.Update(func(m *domain.Meta) error {
			m.Locations = []domain.Location{{URL: "file:///b", Status: "active"}}
			return nil
		}), nil)
		wantKind(t, repo.Save(ctx, img, domain.StatusActive), nil)
		got = get(t, d, p1, id)
		if len(got.Locations) != 1 || got.Locations[0].URL != "file:///b" || len(got.Locations[0].Metadata) != 0 {
			t.Fatalf("locations after replace %+v", got.Locations)
		}
		var n int64
		d.Gorm().Raw("SELECT COUNT(*) FROM image_locations WHERE image_id = ? AND deleted = 1 AND status = 'deleted'", id).Scan(&n)
		if n != 1 {
			t.Fatalf("%d deleted location rows, want 1", n)
		}
	})
}

func TestSavePropertyRevive(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		id := add(t, d, "p1", domain.VisibilityPrivate, func(m *domain.Meta) {
			m.Properties = map[string]string{"foo": "1"}
		})
		repo := d.Images(p1)
		set := func(props map[string]string) {
			t.Helper()
			img, err := repo.Get(ctx, id)
			wantKind(t, err, nil)
			wantKind(t, img.Update(func(m *domain.Meta) error { m.Properties = props; return nil }), nil)
			wantKind(t, repo.Save(ctx, img, domain.StatusQueued), nil)
			if got := get(t, d, p1, id).Properties; !maps.Equal(got, props) {
				t.Fatalf("properties %v, want %v", got, props)
			}
		}
		set(map[string]string{})
		set(map[string]string{"foo": "2"}) // revives the soft-deleted row
		set(map[string]string{"foo": "2", "bar": "3"})
		set(map[string]string{"bar": "3"})
		set(map[string]string{"bar": "3", "foo": "4"})
		var rows []struct {
			Name    string
			Deleted bool
		}
		d.Gorm().Raw("SELECT name, deleted FROM image_properties WHERE image_id = ? ORDER BY name", id).Scan(&rows)
		if len(rows) != 2 || rows[0].Name != "bar" || rows[0].Deleted || rows[1].Name != "foo" || rows[1].Deleted {
			t.Fatalf("property rows %+v, want one live row each for bar and foo", rows)
		}
	})
}

func TestSaveCompareAndSwap(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		id := add(t, d, "p1", domain.VisibilityPrivate, func(m *domain.Meta) {
			m.DiskFormat, m.ContainerFormat = domain.Ptr("raw"), domain.Ptr("bare")
		})
		repo := d.Images(p1)

		stale, err := repo.Get(ctx, id)
		wantKind(t, err, nil)
		img, _ := repo.Get(ctx, id)
		wantKind(t, img.Update(func(m *domain.Meta) error { m.Status = domain.StatusSaving; return nil }), nil)
		wantKind(t, repo.Save(ctx, img, domain.StatusQueued), nil)

		wantKind(t, stale.Update(func(m *domain.Meta) error { m.Status = domain.StatusUploading; return nil }), nil)
		wantMsg(t, repo.Save(ctx, stale, domain.StatusQueued), domain.ErrConflict,
			"cannot transition from saving to uploading in update (wanted from_state=queued)")

		// Same-status save succeeds even when nothing changed.
		wantKind(t, repo.Save(ctx, img, domain.StatusSaving), nil)
		wantKind(t, repo.Save(ctx, img, domain.StatusSaving), nil)

		wantKind(t, repo.Remove(ctx, img), nil)
		wantMsg(t, repo.Save(ctx, img, domain.StatusSaving), domain.ErrNotFound, "No image found with ID "+id)
	})
}

func TestSaveRace(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		for round := 0; round < 5; round++ {
			id := add(t, d, "p1", domain.VisibilityPrivate, func(m *domain.Meta) {
				m.DiskFormat, m.ContainerFormat = domain.Ptr("raw"), domain.Ptr("bare")
			})
			const racers = 8
			var wg sync.WaitGroup
			errs := make([]error, racers)
			start := make(chan struct{})
			for i := 0; i < racers; i++ {
				img, err := d.Images(p1).Get(ctx, id)
				wantKind(t, err, nil)
				wantKind(t, img.Update(func(m *domain.Meta) error {
					m.Status = domain.StatusSaving
					m.Properties["winner"] = fmt.Sprint(i)
					return nil
				}), nil)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = d.Images(p1).Save(ctx, img, domain.StatusQueued)
				}()
			}
			close(start)
			wg.Wait()
			wins, winner := 0, -1
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
					winner = i
				case !strings.Contains(err.Error(), "cannot transition from saving"):
					t.Fatalf("racer %d: %v", i, err)
				}
				if err != nil {
					wantKind(t, err, domain.ErrConflict)
				}
			}
			if wins != 1 {
				t.Fatalf("round %d: %d winners, want exactly 1 (%v)", round, wins, errs)
			}
			if got := get(t, d, p1, id).Properties["winner"]; got != fmt.Sprint(winner) {
				t.Fatalf("stored winner %s, want %d", got, winner)
			}
		}
	})
}

func TestMutationAuthorization(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		pub := add(t, d, "p1", domain.VisibilityPublic, nil)
		shared := add(t, d, "p1", domain.VisibilityShared, nil)
		private := add(t, d, "p1", domain.VisibilityPrivate, nil)
		noOwner := add(t, d, "", domain.VisibilityPublic, nil)
		share(t, d, shared, "p2", domain.MemberAccepted)

		cases := []struct {
			name   string
			caller *domain.Caller
			id     string
			want   error
		}{
			{"public, not owner", p2, pub, domain.ErrForbidden},
			{"shared, member", p2, shared, domain.ErrForbidden},
			{"private, stranger", p2, private, domain.ErrNotFound},
			{"no owner, project", p2, noOwner, domain.ErrForbidden},
			{"no owner, anonymous", anon, noOwner, domain.ErrForbidden},
			{"owner", p1, private, nil},
			{"admin", admin, pub, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				m := get(t, d, admin, tc.id)
				err := d.Images(tc.caller).Save(ctx, domain.NewImage(m), m.Status)
				if tc.want == domain.ErrForbidden {
					wantMsg(t, err, domain.ErrForbidden, "You do not own this image")
				} else {
					wantKind(t, err, tc.want)
				}
				err = d.Images(tc.caller).Remove(ctx, domain.NewImage(m))
				wantKind(t, err, tc.want)
			})
		}
	})
}

func TestRemoveSoftDeletesChildren(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		id := add(t, d, "p1", domain.VisibilityShared, func(m *domain.Meta) {
			m.Tags = []string{"t1", "t2"}
			m.Properties = map[string]string{"a": "1", "b": "2"}
			m.Locations = []domain.Location{{URL: "file:///x", Status: "active"}}
		})
		share(t, d, id, "p2", domain.MemberAccepted)
		img, err := d.Images(p1).Get(ctx, id)
		wantKind(t, err, nil)
		wantKind(t, img.Delete(ctx), nil)
		wantKind(t, d.Images(p1).Remove(ctx, img), nil)

		_, err = d.Images(admin).Get(ctx, id)
		wantKind(t, err, domain.ErrNotFound)
		wantKind(t, d.Images(p1).Remove(ctx, img), domain.ErrNotFound)

		var st struct {
			Status  string
			Deleted bool
		}
		d.Gorm().Raw("SELECT status, deleted FROM images WHERE id = ?", id).Scan(&st)
		if st.Status != "deleted" || !st.Deleted {
			t.Fatalf("image row %+v", st)
		}
		for _, table := range []string{"image_properties", "image_tags", "image_members", "image_locations"} {
			var live, dead int64
			d.Gorm().Raw("SELECT COUNT(*) FROM "+table+" WHERE image_id = ? AND deleted = 0", id).Scan(&live)
			d.Gorm().Raw("SELECT COUNT(*) FROM "+table+" WHERE image_id = ? AND deleted = 1 AND deleted_at IS NOT NULL", id).Scan(&dead)
			if live != 0 || dead == 0 {
				t.Errorf("%s: %d live and %d deleted rows", table, live, dead)
			}
		}
	})
}

func TestUsage(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		withData := func(size int64, locs ...string) func(m *domain.Meta) {
			return func(m *domain.Meta) {
				m.Size = &size
				for _, u := range locs {
					m.Locations = append(m.Locations, domain.Location{URL: u, Status: "active"})
				}
			}
		}
		setStatus := func(id string, st domain.Status) {
			t.Helper()
			if err := d.Gorm().Exec("UPDATE images SET status = ? WHERE id = ?", string(st), id).Error; err != nil {
				t.Fatal(err)
			}
		}
		add(t, d, "p1", domain.VisibilityPrivate, withData(100, "file:///1"))
		add(t, d, "p1", domain.VisibilityPrivate, withData(10, "file:///2", "rbd://2"))
		add(t, d, "p1", domain.VisibilityPrivate, withData(7)) // no location
		killed := add(t, d, "p1", domain.VisibilityPrivate, withData(1000, "file:///3"))
		setStatus(killed, domain.StatusKilled)
		pending := add(t, d, "p1", domain.VisibilityPrivate, withData(1000, "file:///4"))
		setStatus(pending, domain.StatusPendingDelete)
		gone := add(t, d, "p1", domain.VisibilityPrivate, withData(1000, "file:///5"))
		wantKind(t, d.Images(p1).Remove(ctx, domain.NewImage(get(t, d, p1, gone))), nil)
		add(t, d, "p2", domain.VisibilityPrivate, withData(5000, "file:///6"))
		// A location deleted on its own does not count.
		half := add(t, d, "p1", domain.VisibilityPrivate, withData(3, "file:///7", "file:///8"))
		d.Gorm().Exec("UPDATE image_locations SET deleted = 1, status = 'deleted' WHERE image_id = ? AND value = ?", half, "file:///8")

		for _, tc := range []struct {
			owner string
			want  int64
		}{{"p1", 100 + 20 + 3}, {"p2", 5000}, {"p3", 0}} {
			got, err := d.Usage(ctx, tc.owner)
			wantKind(t, err, nil)
			if got != tc.want {
				t.Errorf("usage of %s = %d, want %d", tc.owner, got, tc.want)
			}
		}
	})
}

func TestReject4ByteUnicode(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		cases := []struct {
			name string
			edit func(m *domain.Meta)
			msg  string
		}{
			{"name", func(m *domain.Meta) { m.Name = domain.Ptr("a\U0001F600") }, "Name can't contain 4 byte unicode characters."},
			{"property key", func(m *domain.Meta) { m.Properties = map[string]string{"k\U0001F600": "v"} }, "Property names can't contain 4 byte unicode."},
			{"property value", func(m *domain.Meta) { m.Properties = map[string]string{"os_distro": "\U0001F600"} }, "Os_Distro can't contain 4 byte unicode characters."},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				wantMsg(t, d.Images(p1).Add(ctx, mk(t, "p1", domain.VisibilityPrivate, tc.edit)), domain.ErrInvalid, tc.msg)
			})
		}
	})
}
