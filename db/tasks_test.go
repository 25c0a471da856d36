package db_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

// newTask builds a pending task of caller c for image imageID.
func newTask(t *testing.T, c *domain.Caller, imageID string) domain.Task {
	t.Helper()
	tk, err := domain.NewTask(domain.TaskTypeImageImport, c, imageID, map[string]any{
		"image_id":   imageID,
		"import_req": map[string]any{"method": map[string]any{"name": "glance-direct"}},
		"backend":    []any{nil},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTaskRoundTrip(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		owner := &domain.Caller{ProjectID: "p1", UserID: "u1", RequestID: "req-1"}
		repo := d.Tasks(owner)
		tk := newTask(t, owner, "img-1")
		if err := repo.Add(ctx, tk); err != nil {
			t.Fatal(err)
		}
		got, err := repo.Get(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != domain.TaskPending || got.Owner != "p1" || got.UserID != "u1" || got.RequestID != "req-1" ||
			got.ImageID != "img-1" || got.Type != domain.TaskTypeImageImport || got.ExpiresAt != nil || got.Result != nil {
			t.Fatalf("stored task = %+v", got)
		}
		in, _ := json.Marshal(got.Input)
		if string(in) != `{"backend":[null],"image_id":"img-1","import_req":{"method":{"name":"glance-direct"}}}` {
			t.Errorf("input = %s", in)
		}
		if err := got.Begin(); err != nil {
			t.Fatal(err)
		}
		if err := repo.Save(ctx, got); err != nil {
			t.Fatal(err)
		}
		if err := got.Succeed(map[string]any{"image_id": "img-1", "n": json.Number("3")}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := repo.Save(ctx, got); err != nil {
			t.Fatal(err)
		}
		done, err := repo.Get(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.Status != domain.TaskSuccess || done.ExpiresAt == nil || done.Result["image_id"] != "img-1" ||
			done.Result["n"] != json.Number("3") {
			t.Fatalf("finished task = %+v", done)
		}
		if d := time.Until(*done.ExpiresAt); d < 58*time.Minute || d > time.Hour+time.Second {
			t.Errorf("expires in %v, want an hour", d)
		}
		if done.UpdatedAt.Before(done.CreatedAt) {
			t.Errorf("updated_at %v before created_at %v", done.UpdatedAt, done.CreatedAt)
		}
	})
}

func TestTaskVisibility(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		tk := newTask(t, p1, "img")
		if err := d.Tasks(p1).Add(ctx, tk); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name   string
			caller *domain.Caller
			id     string
			want   error
			msg    string
		}{
			{"owner", p1, tk.ID, nil, ""},
			{"admin", admin, tk.ID, nil, ""},
			{"other project", p2, tk.ID, domain.ErrForbidden, "Forbidding request, task " + tk.ID + " is not visible"},
			{"missing", p1, "00000000-0000-4000-8000-000000000000", domain.ErrNotFound,
				"Task with the given id 00000000-0000-4000-8000-000000000000 was not found"},
			{"too long", p1, string(make([]byte, 64)), domain.ErrNotFound, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := d.Tasks(tc.caller).Get(ctx, tc.id)
				if tc.msg != "" {
					wantMsg(t, err, tc.want, tc.msg)
				} else {
					wantKind(t, err, tc.want)
				}
			})
		}
		// Saving someone else's task is refused like reading it.
		wantKind(t, d.Tasks(p2).Save(ctx, tk), domain.ErrForbidden)
		list, err := d.Tasks(p2).List(ctx, domain.TaskQuery{Limit: 10})
		if err != nil || len(list) != 0 {
			t.Errorf("p2 lists %v, %v; want nothing", list, err)
		}
		list, err = d.Tasks(admin).List(ctx, domain.TaskQuery{Limit: 10})
		if err != nil || len(list) != 1 {
			t.Errorf("admin lists %v, %v; want the task", list, err)
		}
		// Removing is refused like reading; once removed, it is gone.
		wantKind(t, d.Tasks(p2).Remove(ctx, tk.ID), domain.ErrForbidden)
		wantKind(t, d.Tasks(p1).Remove(ctx, tk.ID), nil)
		_, err = d.Tasks(admin).Get(ctx, tk.ID)
		wantKind(t, err, domain.ErrNotFound)
		wantKind(t, d.Tasks(p1).Remove(ctx, tk.ID), domain.ErrNotFound)
		if list, _ := d.Tasks(admin).ListByImage(ctx, "img"); len(list) != 0 {
			t.Errorf("a removed task is still listed: %v", list)
		}
	})
}

func TestTaskList(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		repo := d.Tasks(p1)
		base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		var ids []string
		for i := range 5 {
			tk := newTask(t, p1, "img")
			tk.CreatedAt = base.Add(time.Duration(i) * time.Minute)
			tk.UpdatedAt = tk.CreatedAt
			if i == 4 {
				tk.Status = domain.TaskFailure
				tk.Type = domain.TaskTypeImport
			}
			if err := repo.Add(ctx, tk); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, tk.ID)
		}
		idsOf := func(ts []domain.Task) []string {
			var out []string
			for _, tk := range ts {
				out = append(out, tk.ID)
				if tk.Input != nil || tk.Message != "" {
					t.Errorf("a listed task carries its info: %+v", tk)
				}
			}
			return out
		}
		tests := []struct {
			name string
			q    domain.TaskQuery
			want []string
			err  error
		}{
			{"newest first", domain.TaskQuery{Limit: 3}, []string{ids[4], ids[3], ids[2]}, nil},
			{"after marker", domain.TaskQuery{Limit: 3, Marker: ids[2]}, []string{ids[1], ids[0]}, nil},
			{"ascending", domain.TaskQuery{Limit: 2, SortDir: "asc"}, []string{ids[0], ids[1]}, nil},
			{"ascending after marker", domain.TaskQuery{Limit: 2, SortDir: "asc", Marker: ids[1]}, []string{ids[2], ids[3]}, nil},
			{"status", domain.TaskQuery{Limit: 9, Status: domain.TaskFailure}, []string{ids[4]}, nil},
			{"type", domain.TaskQuery{Limit: 9, Type: domain.TaskTypeImport}, []string{ids[4]}, nil},
			{"sort by status", domain.TaskQuery{Limit: 1, SortKey: "status", SortDir: "asc"}, []string{ids[4]}, nil},
			{"bad sort key", domain.TaskQuery{Limit: 1, SortKey: "input"}, nil, domain.ErrInvalid},
			{"bad sort dir", domain.TaskQuery{Limit: 1, SortDir: "up"}, nil, domain.ErrInvalid},
			{"unknown marker", domain.TaskQuery{Limit: 1, Marker: "00000000-0000-4000-8000-000000000000"}, nil, domain.ErrNotFound},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := repo.List(ctx, tc.q)
				wantKind(t, err, tc.err)
				if tc.err != nil {
					return
				}
				if g := idsOf(got); len(g) != len(tc.want) || (len(g) > 0 && !equalStrings(g, tc.want)) {
					t.Errorf("ids = %v, want %v", g, tc.want)
				}
			})
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTasksByImageAndExpiry(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		repo := d.Tasks(p1)
		live := newTask(t, p1, "img-a")
		expired := newTask(t, p1, "img-a")
		past := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
		expired.Status, expired.ExpiresAt = domain.TaskSuccess, &past
		other := newTask(t, p1, "img-b")
		foreign := newTask(t, p2, "img-a")
		for _, tk := range []domain.Task{live, expired, other} {
			if err := repo.Add(ctx, tk); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Tasks(p2).Add(ctx, foreign); err != nil {
			t.Fatal(err)
		}
		got, err := repo.ListByImage(ctx, "img-a")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != live.ID || got[0].Input == nil {
			t.Fatalf("tasks of img-a = %+v, want only the live one with its input", got)
		}
		// Listing purged the expired task (soft-delete).
		_, err = repo.Get(ctx, expired.ID)
		wantKind(t, err, domain.ErrNotFound)
		all, err := d.Tasks(admin).ListByImage(ctx, "img-a")
		if err != nil || len(all) != 2 {
			t.Errorf("admin sees %d tasks of img-a (%v), want 2", len(all), err)
		}
	})
}

func TestSetPropertyAtomic(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		id := add(t, d, "p1", domain.VisibilityPrivate, nil)
		const lock = db.ImportLockProperty
		// Of many concurrent takers, exactly one wins.
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = d.SetPropertyAtomic(ctx, id, lock, "task-"+string(rune('a'+i)))
			}()
		}
		wg.Wait()
		won := ""
		for i, err := range errs {
			switch {
			case err == nil:
				if won != "" {
					t.Fatalf("two winners: %s and task-%c", won, 'a'+i)
				}
				won = "task-" + string(rune('a'+i))
			case !errors.Is(err, domain.ErrConflict):
				t.Fatalf("loser %d: %v, want a conflict", i, err)
			}
		}
		if won == "" {
			t.Fatal("nobody took the lock")
		}
		if got := get(t, d, admin, id).Properties[lock]; got != won {
			t.Fatalf("lock = %q, want %q", got, won)
		}

		// An image save neither removes nor overwrites the lock.
		img, err := d.Images(admin).Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := img.Update(func(m *domain.Meta) error {
			delete(m.Properties, lock)
			m.Properties["k"] = "v"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := d.Images(admin).Save(ctx, img, domain.StatusQueued); err != nil {
			t.Fatal(err)
		}
		m := get(t, d, admin, id)
		if m.Properties[lock] != won || m.Properties["k"] != "v" {
			t.Fatalf("after a save without the lock: %v", m.Properties)
		}
		img, _ = d.Images(admin).Get(ctx, id)
		_ = img.Update(func(m *domain.Meta) error { m.Properties[lock] = "forged"; return nil })
		if err := d.Images(admin).Save(ctx, img, ""); err != nil {
			t.Fatal(err)
		}
		if got := get(t, d, admin, id).Properties[lock]; got != won {
			t.Fatalf("a save changed the lock to %q", got)
		}

		// Only the holder's value removes it; then it can be taken again.
		wantKind(t, d.DeletePropertyAtomic(ctx, id, lock, "someone-else"), domain.ErrNotFound)
		wantKind(t, d.DeletePropertyAtomic(ctx, id, lock, won), nil)
		wantKind(t, d.DeletePropertyAtomic(ctx, id, lock, won), domain.ErrNotFound)
		if _, ok := get(t, d, admin, id).Properties[lock]; ok {
			t.Fatal("the lock survived its removal")
		}
		wantKind(t, d.SetPropertyAtomic(ctx, id, lock, "next"), nil)
		wantKind(t, d.SetPropertyAtomic(ctx, id, lock, "again"), domain.ErrConflict)

		// A soft-deleted property of the same name is revived.
		img, _ = d.Images(admin).Get(ctx, id)
		_ = img.Update(func(m *domain.Meta) error { delete(m.Properties, "k"); return nil })
		if err := d.Images(admin).Save(ctx, img, ""); err != nil {
			t.Fatal(err)
		}
		wantKind(t, d.SetPropertyAtomic(ctx, id, "k", "w"), nil)
		if got := get(t, d, admin, id).Properties["k"]; got != "w" {
			t.Fatalf("revived property = %q", got)
		}

		wantKind(t, d.SetPropertyAtomic(ctx, "00000000-0000-4000-8000-000000000000", lock, "x"), domain.ErrNotFound)
	})
}

func TestTaskProgress(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		repo := d.Tasks(p1)
		tk := newTask(t, p1, "img")
		if err := repo.Add(ctx, tk); err != nil {
			t.Fatal(err)
		}
		// A pending or processing task records progress; an ended one
		// does not.
		wantKind(t, repo.Progress(ctx, tk.ID, ""), nil)
		if err := tk.Begin(); err != nil {
			t.Fatal(err)
		}
		if err := repo.Save(ctx, tk); err != nil {
			t.Fatal(err)
		}
		wantKind(t, repo.Progress(ctx, tk.ID, "Copied 2 MiB"), nil)
		got, err := repo.Get(ctx, tk.ID)
		if err != nil || got.Message != "Copied 2 MiB" || got.Status != domain.TaskProcessing {
			t.Fatalf("after progress: %+v, %v", got, err)
		}
		wantKind(t, d.Tasks(p2).Progress(ctx, tk.ID, "x"), domain.ErrForbidden)
		if err := got.Fail("ended", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := repo.Save(ctx, got); err != nil {
			t.Fatal(err)
		}
		wantKind(t, repo.Progress(ctx, tk.ID, "Copied 3 MiB"), domain.ErrConflict)
		if got, _ := repo.Get(ctx, tk.ID); got.Status != domain.TaskFailure || got.Message != "ended" {
			t.Errorf("progress undid the end: %+v", got)
		}
		wantKind(t, repo.Progress(ctx, "00000000-0000-4000-8000-000000000000", "x"), domain.ErrNotFound)
	})
}
