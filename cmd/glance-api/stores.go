package main

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/glance-go/glance-go/cmd/glance-api/internal/config"
	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
	httpstore "github.com/glance-go/glance-go/stores/http"
)

// openStores builds the stores glance-api.conf describes: the backends of
// [DEFAULT] enabled_backends with their reserved staging and tasks stores,
// or else the legacy single store of [glance_store] with node_staging_uri.
func openStores(cfg *config.Config, log *slog.Logger) (*stores.Set, error) {
	if len(cfg.EnabledBackends) > 0 {
		return openMultiStore(cfg, log)
	}
	return openSingleStore(cfg, log)
}

// openMultiStore opens every enabled backend from its section; any error
// stops the server. The reserved stores are file stores under
// /var/lib/glance/<id> unless their sections say otherwise; one that
// cannot be opened is left out with a warning, as glance_store does, and
// what needs it fails later.
func openMultiStore(cfg *config.Config, log *slog.Logger) (*stores.Set, error) {
	var backends []*stores.Backend
	for _, id := range cfg.BackendIDs() {
		typ := cfg.EnabledBackends[id]
		o := &stores.Options{Section: id, Values: cfg.BackendOptions[id], Multi: cfg.BackendMultiOptions[id]}
		b, err := stores.Open(id, typ, o)
		if err != nil {
			return nil, err
		}
		warnUnused(log, o)
		log.Info("store enabled", "id", id, "type", typ, "default", id == cfg.DefaultBackend)
		backends = append(backends, b)
	}
	set, err := stores.NewMultiSet(cfg.DefaultBackend, backends...)
	if err != nil {
		return nil, err
	}
	for _, id := range []string{stores.StagingID, stores.TasksID} {
		o := &stores.Options{Section: id, Values: cfg.BackendOptions[id], Multi: cfg.BackendMultiOptions[id],
			Defaults: map[string]string{"filesystem_store_datadir": "/var/lib/glance/" + id}}
		b, err := stores.Open(id, "file", o)
		if err != nil {
			log.Warn("reserved store disabled", "id", id, "err", err)
			continue
		}
		warnUnused(log, o)
		// Unwrapped: no location records staging data, and crash recovery
		// lists the staging area through the driver's own IDs method.
		if id == stores.StagingID {
			set.SetStaging(b.Driver)
		} else {
			set.SetTasks(b.Driver)
		}
	}
	return set, nil
}

// warnUnused names the options of a store's section that its driver does
// not read.
func warnUnused(log *slog.Logger, o *stores.Options) {
	if u := o.Unused(); len(u) > 0 {
		log.Warn(fmt.Sprintf("ignoring options of [%s] that glance-go does not implement for this store: %s",
			o.Section, strings.Join(u, ", ")))
	}
}

// storeType maps the names [glance_store] stores and default_store accept
// to the drivers glance-go has.
var storeType = map[string]string{"file": "file", "filesystem": "file", "http": "http", "https": "http", "rbd": "rbd"}

// openSingleStore opens the legacy single store: default_store receives new
// data; the other stores listed serve their locations. The rbd store reads
// its options from [glance_store]; when it is not the default and cannot be
// opened (a build without it), its locations are not served.
func openSingleStore(cfg *config.Config, log *slog.Logger) (*stores.Set, error) {
	sc := cfg.Store
	def, ok := storeType[sc.DefaultStore]
	if !ok {
		return nil, fmt.Errorf("[glance_store] default_store = %s: glance-go has no such store (it has file, http and rbd)", sc.DefaultStore)
	}
	types := []string{def}
	for _, name := range sc.Stores {
		t, ok := storeType[name]
		switch {
		case !ok:
			log.Warn("glance-go has no such store; its locations cannot be served", "store", name)
		case !slices.Contains(types, t):
			types = append(types, t)
		}
	}
	var drivers []stores.Driver
	for _, t := range types {
		var (
			d   stores.Driver
			err error
		)
		switch t {
		case "file":
			perm, _ := sc.FileMode()
			d, err = file.New(file.Config{
				DataDir:          sc.FilesystemStoreDatadir,
				DataDirs:         sc.FilesystemStoreDatadirs,
				FilePerm:         perm,
				ChunkSize:        sc.FilesystemStoreChunkSize,
				ThinProvisioning: sc.FilesystemThinProvisioning,
				MetadataFile:     sc.FilesystemStoreMetadataFile,
				Download:         sc.FilesystemStoreDownload,
			})
		case "http":
			d, err = httpstore.New(httpstore.Config{
				Timeout:  time.Duration(sc.HTTPStoreTimeout) * time.Second,
				Insecure: sc.HTTPSInsecure,
				CAFile:   sc.HTTPSCACertificatesFile,
				Proxies:  sc.HTTPProxyInformation,
			})
		case "rbd":
			o := &stores.Options{Section: "glance_store", Values: sc.RBDOptions}
			var b *stores.Backend
			if b, err = stores.Open("rbd", "rbd", o); err == nil {
				d = b.Driver
				warnUnused(log, o)
			} else if t != def {
				log.Warn("the rbd store cannot be opened; its locations cannot be served", "store", "rbd", "err", err)
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s store: %w", t, err)
		}
		drivers = append(drivers, d)
	}
	set := stores.NewSet(drivers[0], drivers[1:]...)
	if dir := cfg.StagingDir(); dir != "" {
		staging, err := file.New(file.Config{DataDir: dir})
		if err != nil {
			log.Warn("staging area disabled", "node_staging_uri", cfg.NodeStagingURI, "err", err)
		} else {
			set.SetStaging(staging)
		}
	}
	return set, nil
}
