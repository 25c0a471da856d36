package db_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

// openCached opens a synced SQLite file with a record cache of max
// entries (0: the default, negative: none).
func openCached(t testing.TB, path string, max int) *db.DB {
	t.Helper()
	d, err := db.Open(ctx, db.Config{Connection: "sqlite:///" + path, RecordCache: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

func rename(t *testing.T, d *db.DB, id, name string) {
	t.Helper()
	repo := d.Images(admin)
	img, err := repo.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	m := img.Meta()
	m.Name = domain.Ptr(name)
	if err := repo.Save(ctx, domain.NewImage(m), ""); err != nil {
		t.Fatal(err)
	}
}

func TestRecordCacheHitsAndForgets(t *testing.T) {
	d := dbtest.OpenSQLite(t)
	id := add(t, d, "p1", domain.VisibilityPrivate, func(m *domain.Meta) { m.Properties["k"] = "v" })
	get(t, d, p1, id)
	hits0, _, _ := db.CacheStats(d)
	if m := get(t, d, p1, id); m.Properties["k"] != "v" {
		t.Fatalf("properties %v", m.Properties)
	}
	if hits, _, n := db.CacheStats(d); hits != hits0+1 || n == 0 {
		t.Fatalf("a second show of an unchanged image: %d hits (had %d), %d entries; want one more hit", hits, hits0, n)
	}

	rename(t, d, id, "renamed")
	if m := get(t, d, p1, id); *m.Name != "renamed" {
		t.Fatalf("name after save %q", *m.Name)
	}
	// A hit must hand out a copy: changing it changes nothing kept.
	m := get(t, d, p1, id)
	m.Properties["k"] = "changed"
	if m := get(t, d, p1, id); m.Properties["k"] != "v" {
		t.Fatalf("a caller's change of its copy reached the cache: %v", m.Properties)
	}

	// Others' private images stay hidden when the record is kept.
	_, err := d.Images(p2).Get(ctx, id)
	wantKind(t, err, domain.ErrNotFound)

	if err := db.Settle(d); err != nil {
		t.Fatal(err)
	}
	img, err := d.Images(admin).Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Images(admin).Remove(ctx, img); err != nil {
		t.Fatal(err)
	}
	_, err = d.Images(p1).Get(ctx, id)
	wantKind(t, err, domain.ErrNotFound)
}

// TestRecordCacheKeepsWhatWasWritten checks that a create and a save keep
// the image's record, and that the kept record is the one a database
// without a cache reads from the same file.
func TestRecordCacheKeepsWhatWasWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.sqlite")
	d := openCached(t, path, 0)
	fresh := openCached(t, path, -1)
	same := func(step, id string) {
		t.Helper()
		hits0, _, _ := db.CacheStats(d)
		kept := get(t, d, admin, id)
		if hits, _, _ := db.CacheStats(d); hits != hits0+1 {
			t.Fatalf("%s: the first show was not a hit (%d hits, had %d)", step, hits, hits0)
		}
		if read := get(t, fresh, admin, id); !reflect.DeepEqual(kept, read) {
			t.Fatalf("%s: kept %+v\nread %+v", step, kept, read)
		}
	}
	id := add(t, d, "p1", domain.VisibilityShared, func(m *domain.Meta) {
		m.Properties["k"] = "v"
		m.Tags = []string{"b", "a", "b"}
		m.Locations = []domain.Location{{URL: "file:///x", Metadata: map[string]any{"store": "fs"}, Status: "active"}}
	})
	same("create", id)
	rename(t, d, id, "renamed")
	same("save", id)
}

// TestRecordCacheSharedImages checks that membership, which the cached
// record does not hold, is still asked of the database.
func TestRecordCacheSharedImages(t *testing.T) {
	d := dbtest.OpenSQLite(t)
	id := add(t, d, "p1", domain.VisibilityShared, nil)
	get(t, d, p1, id)
	get(t, d, p1, id)
	_, err := d.Images(p2).Get(ctx, id)
	wantKind(t, err, domain.ErrNotFound)
	share(t, d, id, "p2", domain.MemberPending)
	if m := get(t, d, p2, id); m.Member != "p2" {
		t.Fatalf("a member's show is not marked as the member's: %q", m.Member)
	}
	if m := get(t, d, p1, id); m.Member != "" {
		t.Fatalf("the owner's show is marked as a member's: %q", m.Member)
	}
	if err := d.Members(admin, id).Remove(ctx, domain.NewMember(id, "p2")); err != nil {
		t.Fatal(err)
	}
	_, err = d.Images(p2).Get(ctx, id)
	wantKind(t, err, domain.ErrNotFound)
}

// TestRecordCacheUnknownWrites changes rows around the image repository,
// as a migration or a stray statement would: the cache must not answer
// with what it kept before.
func TestRecordCacheUnknownWrites(t *testing.T) {
	d := dbtest.OpenSQLite(t)
	id := add(t, d, "p1", domain.VisibilityPublic, func(m *domain.Meta) { m.Properties["k"] = "v" })
	get(t, d, p1, id)
	get(t, d, p1, id)
	for i, q := range []string{
		"UPDATE images SET name = 'from outside' WHERE id = ?",
		"UPDATE image_properties SET value = 'outside' WHERE image_id = ?",
		"INSERT INTO image_tags (image_id, value, created_at, deleted) VALUES (?, 'outside', '2024-01-01 00:00:00', 0)",
	} {
		if err := d.Gorm().Exec(q, id).Error; err != nil {
			t.Fatal(err)
		}
		m := get(t, d, p1, id)
		switch i {
		case 0:
			if *m.Name != "from outside" {
				t.Fatalf("name %q after an outside update", *m.Name)
			}
		case 1:
			if m.Properties["k"] != "outside" {
				t.Fatalf("properties %v after an outside update", m.Properties)
			}
		case 2:
			if len(m.Tags) != 1 || m.Tags[0] != "outside" {
				t.Fatalf("tags %v after an outside insert", m.Tags)
			}
		}
		// Until a write of the repository settles it, nothing is kept.
		if _, _, n := db.CacheStats(d); n != 0 {
			t.Fatalf("%d records kept after an outside write", n)
		}
	}
	rename(t, d, id, "inside")
	get(t, d, p1, id)
	hits0, _, _ := db.CacheStats(d)
	if m := get(t, d, p1, id); *m.Name != "inside" || m.Properties["k"] != "outside" {
		t.Fatalf("after settling: name %q, properties %v", *m.Name, m.Properties)
	}
	if hits, _, _ := db.CacheStats(d); hits != hits0+1 {
		t.Fatal("the cache stayed off after a write of the repository")
	}
}

// TestRecordCacheConcurrentSaves races saves of one image with shows and
// listings: once the saves have ended, every reader sees the last one.
func TestRecordCacheConcurrentSaves(t *testing.T) {
	d := dbtest.OpenSQLite(t)
	id := add(t, d, "p1", domain.VisibilityPublic, nil)
	for i := 0; i < 5; i++ {
		add(t, d, "p1", domain.VisibilityPublic, nil)
	}
	const saves = 200
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 4; r++ {
		readers.Add(1)
		go func(r int) {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if r%2 == 0 {
					_, err = d.Images(p2).Get(ctx, id)
				} else {
					_, err = d.Images(p2).List(ctx, domain.ListQuery{Limit: 25})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(r)
	}
	for i := 0; i < saves; i++ {
		rename(t, d, id, fmt.Sprintf("save-%d", i))
	}
	close(stop)
	readers.Wait()
	want := fmt.Sprintf("save-%d", saves-1)
	if m := get(t, d, p2, id); *m.Name != want {
		t.Fatalf("show after the saves: %q, want %q", *m.Name, want)
	}
	page, err := d.Images(p2).List(ctx, domain.ListQuery{Limit: 25})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range page.Images {
		if m := img.Meta(); m.ID == id && *m.Name != want {
			t.Fatalf("listing after the saves: %q, want %q", *m.Name, want)
		}
	}
}

// TestRecordCacheListings compares listings answered from the cache with
// the same listings of a database without one, over the same file.
func TestRecordCacheListings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.sqlite")
	d := openCached(t, path, 0)
	for i := 0; i < 30; i++ {
		vis := []domain.Visibility{domain.VisibilityPublic, domain.VisibilityPrivate, domain.VisibilityShared, domain.VisibilityCommunity}[i%4]
		owner := []string{"p1", "p2"}[i%2]
		id := add(t, d, owner, vis, func(m *domain.Meta) {
			m.Properties["n"] = fmt.Sprint(i)
			m.Tags = []string{fmt.Sprintf("t%d", i%3)}
		})
		if i%5 == 0 && vis == domain.VisibilityShared {
			share(t, d, id, "p3", domain.MemberAccepted)
		}
	}
	plain := openCached(t, path, -1)
	queries := []domain.ListQuery{
		{Limit: 25},
		{Limit: 7, Sort: []domain.SortKey{{Key: "name", Dir: "desc"}}},
		{Limit: 1000, Tags: []string{"t1"}},
		{Limit: 1000, Visibility: "shared"},
	}
	for _, c := range []*domain.Caller{admin, p1, p2, p3, anon} {
		for _, q := range queries {
			for round := 0; round < 2; round++ { // the second from the cache
				got, err := d.Images(c).List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				want, err := plain.Images(c).List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(got.Images) != len(want.Images) {
					t.Fatalf("%s %+v: %d images, want %d", c.ProjectID, q, len(got.Images), len(want.Images))
				}
				for i := range got.Images {
					g, w := jsonOf(t, got.Images[i].Meta()), jsonOf(t, want.Images[i].Meta())
					if g != w {
						t.Fatalf("%s %+v, image %d:\n got %s\nwant %s", c.ProjectID, q, i, g, w)
					}
				}
			}
		}
	}
	if hits, _, _ := db.CacheStats(d); hits == 0 {
		t.Fatal("no listing was answered from the cache")
	}
}

func TestRecordCacheBound(t *testing.T) {
	d := openCached(t, filepath.Join(t.TempDir(), "g.sqlite"), 3)
	for i := 0; i < 10; i++ {
		get(t, d, admin, add(t, d, "p1", domain.VisibilityPublic, nil))
	}
	if _, _, n := db.CacheStats(d); n > 3 {
		t.Fatalf("%d records kept, bound 3", n)
	}
}

func jsonOf(t *testing.T, m domain.Meta) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
