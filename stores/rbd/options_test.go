//go:build ceph

package rbd

import (
	"strings"
	"testing"
	"time"

	"github.com/glance-go/glance-go/stores"
)

func TestConfigFromOptions(t *testing.T) {
	tests := []struct {
		name    string
		values  map[string]string
		want    Config
		wantErr string
	}{
		{"defaults", nil, Config{Pool: "images", ChunkSize: 8 << 20, BufferBudget: 64 << 20}, ""},
		{"everything", map[string]string{
			"rbd_store_pool": "glance", "rbd_store_user": "glance", "rbd_store_ceph_conf": "/etc/ceph/x.conf",
			"rbd_store_chunk_size": "32", "rados_connect_timeout": "7", "rbd_thin_provisioning": "yes",
			"rbd_store_buffer_budget": "512",
		}, Config{Pool: "glance", User: "glance", ConfFile: "/etc/ceph/x.conf", ChunkSize: 32 << 20,
			ConnectTimeout: 7 * time.Second, ThinProvisioning: true, BufferBudget: 512 << 20}, ""},
		{"no connect timeout", map[string]string{"rados_connect_timeout": "-1"}, Config{Pool: "images", ChunkSize: 8 << 20, BufferBudget: 64 << 20}, ""},
		{"buffer budget zero", map[string]string{"rbd_store_buffer_budget": "0"}, Config{}, "rbd_store_buffer_budget"},
		{"chunk size zero", map[string]string{"rbd_store_chunk_size": "0"}, Config{}, "rbd_store_chunk_size"},
		{"chunk size too big", map[string]string{"rbd_store_chunk_size": "64"}, Config{}, "rbd_store_chunk_size"},
		{"chunk size not a number", map[string]string{"rbd_store_chunk_size": "8M"}, Config{}, "not an integer"},
		{"empty pool", map[string]string{"rbd_store_pool": ""}, Config{}, "rbd_store_pool"},
		{"bad boolean", map[string]string{"rbd_thin_provisioning": "maybe"}, Config{}, "not a boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &stores.Options{Section: "fast", Values: tc.values}
			got := ConfigFromOptions(o)
			err := o.Err()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "[fast]") {
					t.Fatalf("error %v, want one about %q in [fast]", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ConfigFromOptions = %+v, %v; want %+v", got, err, tc.want)
			}
			if u := o.Unused(); len(u) > 0 {
				t.Errorf("options not read: %q", u)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	for _, cfg := range []Config{{ChunkSize: 1 << 11}, {ChunkSize: 64 << 20}, {ChunkSize: -1}, {InFlight: -1}, {BufferBudget: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	d, err := New(Config{ChunkSize: 3 << 20})
	if err != nil || d.order != 21 || d.ChunkSize() != 3<<20 {
		t.Errorf("3 MiB chunks: order %d, chunk %d, %v; want 21 (objects of 2 MiB), 3 MiB", d.order, d.ChunkSize(), err)
	}
	// the budget is in whole buffers, and never fewer than InFlight
	for _, tc := range []struct {
		cfg  Config
		want int
	}{
		{Config{}, 8},
		{Config{ChunkSize: 4 << 20, BufferBudget: 30 << 20}, 7},
		{Config{BufferBudget: 1 << 20}, DefaultInFlight},
		{Config{InFlight: 6, BufferBudget: 16 << 20}, 6},
	} {
		d, err := New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if d.pool.max != tc.want {
			t.Errorf("New(%+v): a pool of %d buffers, want %d", tc.cfg, d.pool.max, tc.want)
		}
		d.Close()
	}
}

func TestRegistered(t *testing.T) {
	cfg := clusterConfig(t)
	b, err := stores.Open("fast", "rbd", &stores.Options{Values: map[string]string{
		"rbd_store_ceph_conf": cfg.ConfFile, "rbd_store_user": cfg.User, "rbd_store_pool": cfg.Pool, "rbd_store_chunk_size": "4",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Driver.(*Driver).Close()
	if b.Type != "rbd" || b.Properties["chunk_size"] != 4<<20 || b.Properties["pool"] != cfg.Pool || b.Properties["fsid"] == nil {
		t.Errorf("backend %+v", b)
	}
}

func TestOpenRefusesMissingCephConf(t *testing.T) {
	_, err := stores.Open("fast", "rbd", &stores.Options{Values: map[string]string{"rbd_store_ceph_conf": "/nonexistent/ceph.conf"}})
	if err == nil || !strings.Contains(err.Error(), "[fast] rbd_store_ceph_conf") || !strings.Contains(err.Error(), "/nonexistent/ceph.conf") {
		t.Errorf("Open = %v, want an error about rbd_store_ceph_conf", err)
	}
}
