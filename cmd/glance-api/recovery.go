package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/glance-go/glance-go/cmd/glance-api/internal/config"
	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/gateway/recovery"
	"github.com/glance-go/glance-go/stores"
)

// startRecovery repairs what a dead server left behind before this one
// serves, then keeps looking every [glance_go] recovery_interval seconds.
func startRecovery(ctx context.Context, cfg *config.Config, d *db.DB, set *stores.Set, imports recovery.ImportReverter, log *slog.Logger) {
	lease := recoveryLease(cfg)
	interval := time.Duration(cfg.Recovery.Interval) * time.Second
	if cfg.Recovery.Interval == 0 {
		interval = time.Minute
	}
	recovery.New(recovery.Config{
		Repo:        d.Images(&domain.Caller{IsAdmin: true}),
		Stores:      set,
		Imports:     imports,
		ReleaseLock: d.DeletePropertyAtomic,
		Lease:       lease,
		Exclusive:   d.Exclusive(),
		Logger:      log,
	}).Start(ctx, interval)
}

// recoveryLease is [glance_go] recovery_lease as a duration.
func recoveryLease(cfg *config.Config) time.Duration {
	if cfg.Recovery.Lease <= 0 {
		return recovery.DefaultLease
	}
	return time.Duration(cfg.Recovery.Lease) * time.Second
}

// heartbeat is how often a transfer renews its lease: three times per lease.
func heartbeat(cfg *config.Config) time.Duration { return recoveryLease(cfg) / 3 }
