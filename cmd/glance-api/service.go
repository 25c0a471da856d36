package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/glance-go/glance-go/cmd/glance-api/internal/api"
	"github.com/glance-go/glance-go/cmd/glance-api/internal/config"
)

// service is the API's HTTP server, the optional metrics server, and what
// must stop after them.
type service struct {
	srv     *http.Server
	metrics *http.Server // nil unless [glance_go] metrics_bind is set
	// stopImports ends the import service once no request runs.
	stopImports func(context.Context) error

	// running counts the handlers in progress, which a cut shutdown waits
	// for so that cut uploads are reverted before the database closes.
	running sync.WaitGroup
	// cut cancels the context of every request.
	cut context.CancelFunc
}

// cutWait bounds how long cut requests may take to revert what they did.
const cutWait = 30 * time.Second

// handle makes h the API server's handler. idle is client_socket_timeout:
// how long a connection may wait between requests, and a request body
// between two reads that bring data (0: for ever).
func (s *service) handle(h http.Handler, idle time.Duration, log *slog.Logger) {
	base, cancel := context.WithCancel(context.Background())
	s.cut = cancel
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.running.Add(1)
			defer s.running.Done()
			if idle > 0 && r.Body != nil && r.Body != http.NoBody {
				r.Body = &stallBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: idle}
			}
			h.ServeHTTP(w, r)
		}),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       idle,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// stallBody is a request body whose every read must bring data within
// idle: a client that stops sending in the middle of its body does not
// hold the request, its image and its connection for ever.
type stallBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *stallBody) Read(p []byte) (int, error) {
	// An error here means the connection takes no deadline; the read then
	// goes on without one, as before.
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	return b.ReadCloser.Read(p)
}

// shutdown stops accepting connections and lets the requests in flight
// finish for up to grace (0: for as long as they take), as oslo.service
// does with graceful_shutdown_timeout. Past it the requests still running
// are cut: their connections are closed and their contexts cancelled, and
// a cut upload leaves its image queued. Imports still running are then
// cut short and reverted.
func (s *service) shutdown(grace time.Duration, log *slog.Logger) error {
	log.Info("shutting down: no new connections; waiting for the requests in flight", "graceful_shutdown_timeout", grace.String())
	ctx := context.Background()
	if grace > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, grace)
		defer cancel()
	}
	var result error
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn("graceful_shutdown_timeout reached: cutting the requests still running")
		s.cut()
		_ = s.srv.Close()
		done := make(chan struct{})
		go func() { s.running.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(cutWait):
			log.Error("requests still running after being cut", "waited", cutWait.String())
		}
	} else if err != nil && !errors.Is(err, http.ErrServerClosed) {
		result = err
	}
	if s.metrics != nil {
		_ = s.metrics.Close()
	}
	ictx, cancel := context.WithTimeout(context.Background(), cutWait)
	defer cancel()
	// Imports still running are cut short and reverted.
	if err := s.stopImports(ictx); err != nil && result == nil {
		result = err
	}
	log.Info("stopped")
	return result
}

// corsRules turns [cors] and the [cors.*] sections into the API's rules.
func corsRules(cfg *config.Config) []api.CORSRule {
	var out []api.CORSRule
	for _, c := range append([]config.CORSConfig{cfg.CORS}, cfg.CORSSections...) {
		out = append(out, api.CORSRule{
			AllowedOrigin:    c.AllowedOrigin,
			AllowCredentials: c.AllowCredentials,
			ExposeHeaders:    c.ExposeHeaders,
			MaxAge:           c.MaxAge,
			AllowMethods:     c.AllowMethods,
			AllowHeaders:     c.AllowHeaders,
		})
	}
	return out
}

// healthcheck turns [healthcheck] into the API's healthcheck.
func healthcheck(cfg *config.Config) api.Healthcheck {
	hc := api.Healthcheck{Path: cfg.Healthcheck.Path, Detailed: cfg.Healthcheck.Detailed}
	for _, b := range cfg.Healthcheck.Backends {
		if b == "disable_by_file" {
			p := cfg.Healthcheck.DisableByFilePath
			hc.DisableByFile = &p
		}
	}
	return hc
}
