package db_test

import (
	"strconv"
	"testing"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

// addDeleted adds n images newer than the seeds and deletes them, as the
// create scenario of glance-bench leaves them: rows with deleted = 1.
func addDeleted(b *testing.B, d *db.DB, n int) {
	b.Helper()
	repo := d.Images(p1)
	for i := 0; i < n; i++ {
		img := benchImage(b, 100000+i)
		if err := repo.Add(ctx, img); err != nil {
			b.Fatal(err)
		}
		if err := repo.Remove(ctx, img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeletedRows measures list 25 and get among the 2,000 seeds,
// without and with 900 newer deleted images, the state the later rounds
// of make bench run in.
func BenchmarkDeletedRows(b *testing.B) {
	for _, n := range []int{0, 900} {
		d := dbtest.OpenSQLite(b)
		ids := seedMany(b, d, benchSeed)
		addDeleted(b, d, n)
		b.Run("list25/deleted="+strconv.Itoa(n), func(b *testing.B) {
			repo := d.Images(p2)
			for b.Loop() {
				if _, err := repo.List(ctx, domain.ListQuery{Limit: 25}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("get/deleted="+strconv.Itoa(n), func(b *testing.B) {
			repo := d.Images(p1)
			i := 0
			for b.Loop() {
				if _, err := repo.Get(ctx, ids[i%len(ids)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
