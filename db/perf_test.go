package db_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

// seedMany stores n public images owned by p1 with 10 properties and 2
// tags each, in one transaction, and returns their ids.
func seedMany(tb testing.TB, d *db.DB, n int) []string {
	tb.Helper()
	ids := make([]string, 0, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	err := d.Gorm().Transaction(func(tx *gorm.DB) error {
		for i := 0; i < n; i++ {
			id := domain.NewUUID()
			ids = append(ids, id)
			// About 700 images a second, as glance-bench seeds them: most
			// images tie on created_at and the id breaks the tie.
			at := base.Add(time.Duration(i/700) * time.Second).Format("2006-01-02 15:04:05.000000")
			if err := tx.Exec("INSERT INTO images (id, name, size, status, created_at, updated_at, deleted, disk_format,"+
				" container_format, owner, min_disk, min_ram, protected, visibility, os_hidden)"+
				" VALUES (?, ?, ?, 'active', ?, ?, 0, 'raw', 'bare', 'p1', 0, 0, 0, 'public', 0)",
				id, fmt.Sprintf("image-%d", i), i*1024, at, at).Error; err != nil {
				return err
			}
			for p := 0; p < 10; p++ {
				if err := tx.Exec("INSERT INTO image_properties (image_id, name, value, created_at, deleted) VALUES (?, ?, ?, ?, 0)",
					id, fmt.Sprintf("prop_%d", p), fmt.Sprintf("value %d of %d", p, i), at).Error; err != nil {
					return err
				}
			}
			for _, tag := range []string{"tag-a", fmt.Sprintf("tag-%d", i%7)} {
				if err := tx.Exec("INSERT INTO image_tags (image_id, value, created_at, deleted) VALUES (?, ?, ?, 0)",
					id, tag, at).Error; err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

// TestListQueryCount lists 1000 of 2,000 images with 10 properties and 2
// tags each and counts the SQL statements it takes: the children of a page
// are loaded in a few batched queries, never one query per image. (Speed is
// measured by BenchmarkList1000 and make bench, not asserted here.)
func TestListQueryCount(t *testing.T) {
	if testing.Short() {
		t.Skip("seeding 2,000 images is slow for -short")
	}
	d := dbtest.OpenSQLite(t)
	seedMany(t, d, 2000)
	before := db.Statements(d)
	repo := d.Images(p2)
	p, err := repo.List(ctx, domain.ListQuery{Limit: 1000})
	wantKind(t, err, nil)
	if len(p.Images) != 1000 || !p.Full {
		t.Fatalf("%d images, full=%v", len(p.Images), p.Full)
	}
	if m := p.Images[999].Meta(); len(m.Properties) != 10 || len(m.Tags) != 2 {
		t.Fatalf("children not loaded: %d properties, %d tags", len(m.Properties), len(m.Tags))
	}
	if n := db.Statements(d) - before; n == 0 || n > 20 {
		t.Fatalf("listing 1000 images took %d SQL statements, want a handful of batched ones", n)
	} else {
		t.Logf("list 1000 of 2000: %d SQL statements", n)
	}
}

// benchSeed is the acceptance load of docs/benchmarks.md: 2,000 images of
// 10 properties and 2 tags each.
const benchSeed = 2000

// benchImage is a new image shaped like the seeds.
func benchImage(tb testing.TB, i int) domain.Image {
	tb.Helper()
	m := domain.Meta{Name: domain.Ptr(fmt.Sprintf("bench-%d", i)), Owner: domain.Ptr("p1"),
		DiskFormat: domain.Ptr("raw"), ContainerFormat: domain.Ptr("bare"),
		Tags: []string{"bench", "tag-a"}, Properties: map[string]string{}}
	for p := 0; p < 10; p++ {
		m.Properties[fmt.Sprintf("prop_%d", p)] = fmt.Sprintf("value %d", p)
	}
	img, err := domain.CoreFactory{}.NewImage(ctx, m)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

// benchDBs returns, for sub-benchmarks, an SQLite file of n seeded images
// served with the record cache ("cached") and without it ("uncached"),
// and, when GLANCE_TEST_MYSQL_DSN names a server, a MySQL database of the
// same images ("mysql"), with their ids in each. names lists them in order.
func benchDBs(b *testing.B, n int) (names []string, ids map[string][]string, dbs map[string]*db.DB) {
	path := filepath.Join(b.TempDir(), "g.sqlite")
	cached := openCached(b, path, 0)
	seeded := seedMany(b, cached, n)
	// The seeds went around the image repository: settle the cache.
	if err := db.Settle(cached); err != nil {
		b.Fatal(err)
	}
	names = []string{"cached", "uncached"}
	ids = map[string][]string{"cached": seeded, "uncached": seeded}
	dbs = map[string]*db.DB{"cached": cached, "uncached": openCached(b, path, -1)}
	if d := benchMySQL(b); d != nil {
		names = append(names, "mysql")
		ids["mysql"], dbs["mysql"] = seedMany(b, d, n), d
	}
	return names, ids, dbs
}

// benchMySQL returns a new MySQL database when GLANCE_TEST_MYSQL_DSN names
// a server, nil otherwise.
func benchMySQL(b *testing.B) *db.DB {
	if os.Getenv(dbtest.EnvMySQL) == "" {
		return nil
	}
	return dbtest.OpenMySQL(b)
}

// benchDialects returns a new SQLite database and, when
// GLANCE_TEST_MYSQL_DSN names a server, a new MySQL one, by name.
func benchDialects(b *testing.B) (names []string, dbs map[string]*db.DB) {
	names, dbs = []string{"sqlite"}, map[string]*db.DB{"sqlite": dbtest.OpenSQLite(b)}
	if d := benchMySQL(b); d != nil {
		names, dbs["mysql"] = append(names, "mysql"), d
	}
	return names, dbs
}

func BenchmarkGet(b *testing.B) {
	names, seeded, dbs := benchDBs(b, benchSeed)
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			ids := seeded[name]
			repo := dbs[name].Images(p1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := repo.Get(ctx, ids[i%len(ids)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAdd(b *testing.B) {
	names, dbs := benchDialects(b)
	for _, name := range names {
		d := dbs[name]
		seedMany(b, d, benchSeed)
		b.Run(name, func(b *testing.B) {
			repo := d.Images(p1)
			imgs := make([]domain.Image, b.N)
			for i := range imgs {
				imgs[i] = benchImage(b, i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := repo.Add(ctx, imgs[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSave is a PATCH of one property: load, change, save.
func BenchmarkSave(b *testing.B) {
	names, dbs := benchDialects(b)
	for _, name := range names {
		d := dbs[name]
		ids := seedMany(b, d, benchSeed)
		b.Run(name, func(b *testing.B) {
			repo := d.Images(p1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				img, err := repo.Get(ctx, ids[i%len(ids)])
				if err != nil {
					b.Fatal(err)
				}
				from := img.Meta().Status
				if err := img.Update(func(m *domain.Meta) error {
					m.Properties["prop_3"] = fmt.Sprintf("changed %d", i)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				if err := repo.Save(ctx, img, from); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchList lists limit of 2,000 seeded images, with and without the
// record cache.
func benchList(b *testing.B, limit int) {
	names, _, dbs := benchDBs(b, benchSeed)
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			repo := dbs[name].Images(p2)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := repo.List(ctx, domain.ListQuery{Limit: limit}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkList25(b *testing.B) { benchList(b, 25) }

func BenchmarkList1000(b *testing.B) { benchList(b, 1000) }

// TestSQLiteFileSettings checks the settings every connection to an SQLite
// file gets, which the speed of the request path depends on.
func TestSQLiteFileSettings(t *testing.T) {
	d := dbtest.OpenSQLite(t)
	for _, tc := range []struct {
		pragma, want string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "1"}, // NORMAL
		{"wal_autocheckpoint", "0"},
		{"temp_store", "2"}, // MEMORY
		{"cache_size", "-16384"},
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	} {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			if err := d.Gorm().Raw("PRAGMA " + tc.pragma).Row().Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
			}
		})
	}
}
