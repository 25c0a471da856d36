package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

func TestTouch(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		repo := d.Images(&domain.Caller{IsAdmin: true})
		id := domain.NewUUID()
		m := domain.Meta{ID: id, Status: domain.StatusSaving, Visibility: domain.VisibilityShared, Properties: map[string]string{}}
		if err := repo.Add(ctx, domain.NewImage(m)); err != nil {
			t.Fatal(err)
		}
		if err := d.Gorm().Exec("UPDATE images SET updated_at = ? WHERE id = ?", "2001-01-01 00:00:00", id).Error; err != nil {
			t.Fatal(err)
		}
		toucher, ok := repo.(domain.Toucher)
		if !ok {
			t.Fatal("the image repository is not a domain.Toucher")
		}
		if err := toucher.Touch(ctx, id, domain.StatusSaving); err != nil {
			t.Fatalf("Touch in the right status: %v", err)
		}
		img, err := repo.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := img.Meta().UpdatedAt; time.Since(got) > time.Hour {
			t.Errorf("updated_at = %v after Touch, want now", got)
		}
		for _, tc := range []struct {
			name   string
			id     string
			status domain.Status
		}{
			{"other status", id, domain.StatusQueued},
			{"missing image", domain.NewUUID(), domain.StatusSaving},
		} {
			if err := toucher.Touch(ctx, tc.id, tc.status); !errors.Is(err, domain.ErrConflict) {
				t.Errorf("%s: Touch = %v, want ErrConflict", tc.name, err)
			}
		}
	})
}
