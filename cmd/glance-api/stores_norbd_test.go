//go:build !ceph

package main

import (
	"log/slog"
	"strings"
	"testing"
)

func TestOpenMultiStoreWithoutRBD(t *testing.T) {
	cfg, _ := loadConf(t, "[DEFAULT]\nenabled_backends = fast:rbd, cheap:file\n[glance_store]\ndefault_backend = cheap\n"+
		"[cheap]\nfilesystem_store_datadir = $dir/cheap\n[fast]\nrbd_store_pool = images\n")
	_, err := openStores(cfg, slog.New(slog.DiscardHandler))
	for _, want := range []string{`backend "fast"`, `store type "rbd" is not available in this build`, "make build-ceph", "-tags ceph,pacific"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("openStores = %v, want an error containing %q", err, want)
		}
	}
}

func TestOpenSingleStoreWithoutRBD(t *testing.T) {
	cfg, _ := loadConf(t, "[glance_store]\nstores = rbd,file\ndefault_store = rbd\nrbd_store_pool = images\n")
	_, err := openStores(cfg, slog.New(slog.DiscardHandler))
	for _, want := range []string{"rbd store", `store type "rbd" is not available in this build`, "make build-ceph"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("openStores = %v, want an error containing %q", err, want)
		}
	}
}
