package gateway_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/gateway"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/policy"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/proxies/quota"
	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
)

// heldReader yields n bytes, but first reports on started and waits for
// release: its upload has passed the quota check and holds its reservation.
type heldReader struct {
	r       io.Reader
	started chan<- struct{}
	release <-chan struct{}
	waited  bool
}

func (h *heldReader) Read(p []byte) (int, error) {
	if !h.waited {
		h.waited = true
		h.started <- struct{}{}
		<-h.release
	}
	return h.r.Read(p)
}

// TestStorageQuotaAcrossRequests checks that the storage-quota reservation
// ledger is one per gateway: an upload in one request holds back another
// owner's upload in another request until it ends.
func TestStorageQuotaAcrossRequests(t *testing.T) {
	enf, err := policy.NewDefault()
	if err != nil {
		t.Fatal(err)
	}
	fs, err := file.New(file.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	g := gateway.New(gateway.Config{
		DB:       dbtest.OpenSQLite(t),
		Stores:   stores.NewSet(fs),
		Location: location.Options{HashAlgo: "sha512"},
		Limits:   quota.Limits{Properties: 128, Tags: 128, Members: 128, Locations: 10, SizeCap: 1 << 40, StorageBytes: 100},
		Enforcer: enf,
		Sink:     &proxytest.Sink{},
	})
	c := &domain.Caller{ProjectID: "p1", UserID: "u1", Roles: []string{"member", "reader"}}
	ctx := context.Background()

	// Two images, each created in a request of its own.
	var ids []string
	for range 2 {
		repo, factory := g.Images(c)
		img, err := factory.NewImage(ctx, domain.Meta{DiskFormat: domain.Ptr("raw"), ContainerFormat: domain.Ptr("bare")})
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Add(ctx, img); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, img.Meta().ID)
	}
	load := func(id string) domain.Image {
		repo, _ := g.Images(c)
		img, err := repo.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}

	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	img0 := load(ids[0])
	go func() {
		first <- img0.SetData(ctx, &heldReader{r: proxytest.NewReader(60, nil), started: started, release: release},
			domain.DataIn{Size: 60})
	}()
	<-started
	err = load(ids[1]).SetData(ctx, proxytest.NewReader(60, nil), domain.DataIn{Size: 60})
	close(release)
	if !errors.Is(err, domain.ErrOverLimit) {
		t.Errorf("second upload while the first holds 60 of 100 bytes: %v, want ErrOverLimit", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first upload: %v", err)
	}
	// Once the first is stored, 40 bytes are left for the second image.
	if err := load(ids[1]).SetData(ctx, proxytest.NewReader(40, nil), domain.DataIn{Size: 40}); err != nil {
		t.Errorf("upload of the 40 bytes left: %v", err)
	}
}
