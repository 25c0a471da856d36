package location_test

import (
	"context"
	"io"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/proxytest"
	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
)

// blockReader yields n bytes by repeating one block, cheaply.
type blockReader struct {
	block []byte
	n     int64
}

func (r *blockReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(int64(len(p)), r.n)], r.block)
	r.n -= int64(k)
	return k, nil
}

// BenchmarkSetDataFile uploads 256 MiB images through the location layer
// into the filesystem store, with md5 and sha512 computed on the way.
func BenchmarkSetDataFile(b *testing.B) {
	const size = 256 << 20
	drv, err := file.New(file.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	set := stores.NewSet(drv)
	db := proxytest.NewDB()
	repo, _ := proxies.Stack(db.Repo(nil), domain.CoreFactory{}, location.Layer(set, db.Repo(nil), location.Options{}))
	block := proxytest.Bytes(1 << 20)
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		m := queued(nil)
		m.ID = domain.NewUUID()
		db.Put(m)
		img, err := repo.Get(ctx, m.ID)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := img.SetData(ctx, &blockReader{block: block, n: size}, domain.DataIn{Size: size}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := drv.Delete(ctx, drv.URL(m.ID)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
