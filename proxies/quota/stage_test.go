package quota_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/proxies/quota"
)

func TestStageSizeCap(t *testing.T) {
	const id = "bbbbbbbb-0000-4000-8000-000000000001"
	cases := []struct {
		name string
		n    int64
		size int64 // announced
		cap  int64
		want error
	}{
		{"under the cap", 10, 10, 10, nil},
		{"no cap", 1 << 20, 0, 0, nil},
		{"announced over the cap", 11, 11, 10, domain.ErrOverLimit},
		{"unknown size streams past the cap", 11, 0, 10, domain.ErrOverLimit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := proxytest.NewDB()
			now := time.Now().UTC()
			db.Put(domain.Meta{ID: id, Status: domain.StatusQueued, Visibility: domain.VisibilityPrivate,
				Owner: domain.Ptr("p1"), CreatedAt: now, UpdatedAt: now, Properties: map[string]string{}})
			staging := proxytest.NewDriver()
			inner := db.Repo(owner)
			lim := unlimited()
			lim.SizeCap = tc.cap
			repo, _ := proxies.Stack(inner, domain.CoreFactory{},
				location.Layer(proxytest.Stores{D: proxytest.NewDriver(), Stage: staging}, inner, location.Options{}),
				quota.Layer(lim, db.Usage, owner))
			img, err := repo.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			err = img.Stage(context.Background(), proxytest.NewReader(tc.n, nil), domain.DataIn{Size: tc.size})
			m, _ := db.Image(id)
			if tc.want == nil {
				if err != nil || m.Status != domain.StatusUploading {
					t.Fatalf("Stage: %v, status %s", err, m.Status)
				}
				return
			}
			if !errors.Is(err, tc.want) || err.Error() != "The incoming image is too large: The provided image is too large." {
				t.Fatalf("Stage: %v, want the size cap's 413", err)
			}
			if m.Status != domain.StatusQueued || len(staging.Objects()) != 0 {
				t.Errorf("after refusal: status %s, staged %v", m.Status, staging.Objects())
			}
		})
	}
}
