package main

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/glance-go/glance-go/cmd/glance-api/internal/config"
)

// setMemoryLimit applies [glance_go] memory_limit as the Go runtime's soft
// memory limit, unless GOMEMLIMIT is set in the environment, which the
// runtime has already applied.
func setMemoryLimit(cfg *config.Config, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" || cfg.Runtime.MemoryLimit <= 0 {
		return
	}
	debug.SetMemoryLimit(int64(cfg.Runtime.MemoryLimit) << 20)
	log.Debug("soft memory limit set", "mib", cfg.Runtime.MemoryLimit)
}
