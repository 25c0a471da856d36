package db_test

import (
	"slices"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

func memberIDs(ms []domain.Member) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.MemberID)
	}
	slices.Sort(out)
	return out
}

func TestMembersVisibility(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		id := add(t, d, "p1", domain.VisibilityShared, nil)
		share(t, d, id, "p2", domain.MemberPending)
		share(t, d, id, "p3", domain.MemberAccepted)
		cases := []struct {
			name   string
			caller *domain.Caller
			list   []string
			get    map[string]bool
		}{
			{"admin", admin, []string{"p2", "p3"}, map[string]bool{"p2": true, "p3": true}},
			{"owner", p1, []string{"p2", "p3"}, map[string]bool{"p2": true, "p3": true}},
			{"member", p2, []string{"p2"}, map[string]bool{"p2": true, "p3": false}},
			{"stranger", &domain.Caller{ProjectID: "p9"}, []string{}, map[string]bool{"p2": false}},
			{"anonymous", anon, []string{}, map[string]bool{"p2": false}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				repo := d.Members(tc.caller, id)
				ms, err := repo.List(ctx)
				wantKind(t, err, nil)
				if got := memberIDs(ms); !slices.Equal(got, tc.list) {
					t.Fatalf("list %v, want %v", got, tc.list)
				}
				for member, ok := range tc.get {
					m, err := repo.Get(ctx, member)
					if !ok {
						wantMsg(t, err, domain.ErrNotFound, member+" not found in the member list of the image "+id+".")
						continue
					}
					wantKind(t, err, nil)
					if m.ImageID != id || m.MemberID != member || m.CreatedAt.IsZero() || m.CreatedAt.Location() != time.UTC {
						t.Fatalf("member %+v", m)
					}
				}
			})
		}
	})
}

func TestMembersLifecycle(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		id := add(t, d, "p1", domain.VisibilityShared, nil)
		owner := d.Members(p1, id)
		mb := domain.NewMember(id, "p2")
		wantKind(t, owner.Add(ctx, mb), nil)
		wantMsg(t, owner.Add(ctx, mb), domain.ErrConflict, "Member p2 is duplicated for image "+id)

		got, err := owner.Get(ctx, "p2")
		wantKind(t, err, nil)
		if got.Status != domain.MemberPending || !got.CreatedAt.Equal(mb.CreatedAt) || got.CanShare {
			t.Fatalf("added member %+v", got)
		}

		time.Sleep(1100 * time.Millisecond)
		got.Status = domain.MemberAccepted
		wantKind(t, d.Members(p2, id).Save(ctx, got), nil)
		saved, err := owner.Get(ctx, "p2")
		wantKind(t, err, nil)
		if saved.Status != domain.MemberAccepted || !saved.UpdatedAt.After(mb.UpdatedAt) {
			t.Fatalf("saved member %+v", saved)
		}
		wantKind(t, owner.Save(ctx, domain.Member{MemberID: "p2", Status: "maybe"}), domain.ErrInvalid)
		wantKind(t, owner.Save(ctx, domain.Member{MemberID: "nobody", Status: domain.MemberAccepted}), domain.ErrNotFound)

		wantKind(t, owner.Remove(ctx, saved), nil)
		_, err = owner.Get(ctx, "p2")
		wantKind(t, err, domain.ErrNotFound)
		wantMsg(t, owner.Remove(ctx, saved), domain.ErrNotFound, "The specified member p2 could not be found")
		wantKind(t, owner.Save(ctx, saved), domain.ErrNotFound)

		// Adding again reuses the soft-deleted row, pending again.
		again := domain.NewMember(id, "p2")
		wantKind(t, owner.Add(ctx, again), nil)
		got, err = owner.Get(ctx, "p2")
		wantKind(t, err, nil)
		if got.Status != domain.MemberPending {
			t.Fatalf("re-added member %+v", got)
		}
		var rows int64
		d.Gorm().Raw("SELECT COUNT(*) FROM image_members WHERE image_id = ? AND member = 'p2'", id).Scan(&rows)
		if rows != 1 {
			t.Fatalf("%d member rows, want the one reused", rows)
		}

		// Members of missing or deleted images cannot be added.
		wantKind(t, d.Members(admin, "00000000-0000-4000-8000-000000000000").Add(ctx, domain.NewMember("x", "p2")), domain.ErrNotFound)
		wantKind(t, d.Images(p1).Remove(ctx, domain.NewImage(get(t, d, p1, id))), nil)
		wantKind(t, owner.Add(ctx, domain.NewMember(id, "p3")), domain.ErrNotFound)
		ms, err := d.Members(admin, id).List(ctx)
		wantKind(t, err, nil)
		if len(ms) != 0 {
			t.Fatalf("members of a deleted image: %v", memberIDs(ms))
		}
	})
}
