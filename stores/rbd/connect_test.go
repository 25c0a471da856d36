//go:build ceph

package rbd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/glance-go/glance-go/stores"
)

// TestConnectHoldsNoLock: while a connection attempt waits for a monitor
// that does not answer, the store's properties are read at once and other
// callers give up with their own context; the attempt itself ends with
// ErrUnavailable once rados_connect_timeout has passed.
func TestConnectHoldsNoLock(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "ceph.conf")
	text := "[global]\nmon_host = 127.0.0.1:1\nauth_cluster_required = none\n" +
		"auth_service_required = none\nauth_client_required = none\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{ConfFile: conf, Pool: DefaultPool, ChunkSize: testChunk, ConnectTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	first := make(chan error, 1)
	go func() {
		_, _, err := d.connect(context.Background())
		first <- err
	}()
	time.Sleep(200 * time.Millisecond) // the attempt is under way

	start := time.Now()
	if p := d.Properties(); p["fsid"] != nil {
		t.Errorf("fsid %v before any connection", p["fsid"])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := d.ioctx(ctx, DefaultPool); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ioctx during a hung connection attempt: %v, want its own deadline", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Properties and ioctx took %v behind the connection attempt", took)
	}
	select {
	case err := <-first:
		if !errors.Is(err, stores.ErrUnavailable) {
			t.Errorf("connecting to no cluster: %v, want ErrUnavailable", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the connection attempt did not end")
	}
}
