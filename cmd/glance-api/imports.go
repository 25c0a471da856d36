package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/glance-go/glance-go/cmd/glance-api/internal/config"
	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/gateway"
	"github.com/glance-go/glance-go/gateway/imports"
	"github.com/glance-go/glance-go/gateway/imports/plugins"
	"github.com/glance-go/glance-go/proxies/policy"
	"github.com/glance-go/glance-go/stores"
)

// newImports builds the import service: its workers run until Close.
func newImports(cfg *config.Config, d *db.DB, gw *gateway.Gateway, set *stores.Set, enf *policy.Enforcer,
	log *slog.Logger) (*imports.Service, error) {
	loaded, err := plugins.Load(cfg.Imports.Plugins, cfg.ImportPlugins())
	if err != nil {
		return nil, err
	}
	ps := make([]imports.Plugin, len(loaded))
	for i, p := range loaded {
		ps[i] = imports.Plugin{Name: p.Name(), Run: func(ctx context.Context, path string, m domain.Meta,
			c *domain.Caller) (func(*domain.Meta) error, error) {
			return p.Run(ctx, &plugins.Staged{Path: path, Meta: m, Caller: c})
		}}
	}
	var stagingDir string
	if dd, ok := set.Staging().(interface{ Dir() string }); ok {
		stagingDir = dd.Dir()
	}
	var touch func(ctx context.Context, id string, status domain.Status) error
	if t, ok := d.Images(&domain.Caller{IsAdmin: true}).(domain.Toucher); ok {
		touch = t.Touch
	}
	return imports.New(imports.Config{
		Gateway:    gw,
		DB:         d,
		Stores:     set,
		StagingDir: stagingDir,
		Authorize: func(c *domain.Caller, rule string, m domain.Meta) bool {
			return enf.Allowed(c, rule, policy.ImageTarget(m))
		},
		Methods:           cfg.EnabledImportMethods,
		WebDownload:       cfg.WebDownload(),
		Plugins:           ps,
		MaxWorkers:        cfg.Tasks.MaxWorkers,
		MaxParallelStores: cfg.Tasks.MaxParallelStores,
		TaskTTL:           cfg.TaskTTL(),
		SelfURL:           cfg.SelfURL(),
		SizeCap:           cfg.ImageSizeCap,
		Heartbeat:         heartbeat(cfg),
		Touch:             touch,
		Logger:            log,
	}), nil
}

// recoverImports ends the imports a dead server left pending or running:
// at start-up every one when the database is this server's alone, else
// those whose task nobody has refreshed for [glance_go] recovery_lease;
// then every recovery_interval, the latter.
func recoverImports(ctx context.Context, cfg *config.Config, d *db.DB, imp *imports.Service, log *slog.Logger) {
	lease := recoveryLease(cfg)
	sweep := func(stale time.Time) {
		n, err := imp.RecoverOrphans(ctx, stale)
		if n > 0 {
			log.Warn("ended the imports a dead server left", "tasks", n)
		}
		if err != nil && ctx.Err() == nil {
			log.Error("cannot end the imports a dead server left", "error", err)
		}
	}
	if d.Exclusive() {
		sweep(time.Time{})
	} else {
		sweep(time.Now().Add(-lease))
	}
	interval := time.Duration(cfg.Recovery.Interval) * time.Second
	if cfg.Recovery.Interval == 0 {
		interval = time.Minute
	}
	if interval <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sweep(time.Now().Add(-lease))
			}
		}
	}()
}
