// Command glance-api serves the OpenStack Image API v2.
//
// Usage:
//
//	glance-api [serve] [--config-file FILE]... [--config-dir DIR]...
//	glance-api db sync|version [--config-file FILE]...
//	glance-api policy check [--config-file FILE]... --roles ROLES [--project P] [--owner O] [--member M] [--visibility V] ACTION
//	glance-api version
//
// With no configuration file at all it runs the embedded default: SQLite and
// image files under ./data, bound to 127.0.0.1:9292, no authentication.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/glance-go/glance-go/cmd/glance-api/internal/api"
	"github.com/glance-go/glance-go/cmd/glance-api/internal/config"
	"github.com/glance-go/glance-go/cmd/glance-api/internal/keystone"
	"github.com/glance-go/glance-go/cmd/glance-api/internal/metrics"
	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/gateway"
	"github.com/glance-go/glance-go/proxies/inspect"
	"github.com/glance-go/glance-go/proxies/location"
	"github.com/glance-go/glance-go/proxies/notifier"
	"github.com/glance-go/glance-go/proxies/notifier/rabbit"
	"github.com/glance-go/glance-go/proxies/policy"
	"github.com/glance-go/glance-go/proxies/propprotect"
	"github.com/glance-go/glance-go/proxies/quota"
	"github.com/glance-go/glance-go/stores"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], log); err != nil {
		fmt.Fprintln(os.Stderr, "glance-api:", err)
		os.Exit(1)
	}
}

func run(args []string, log *slog.Logger) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, log)
	case "db":
		return dbCommand(args, log)
	case "policy":
		return policyCommand(args, os.Stdout)
	case "version":
		fmt.Println(version)
		return nil
	}
	return fmt.Errorf("unknown command %q (want serve, db, policy or version)", cmd)
}

// configFlags registers oslo.config's --config-file and --config-dir, which may
// be repeated, on fs.
type configFlags struct {
	args *config.Args
}

func (cf *configFlags) register(fs *flag.FlagSet) { cf.args = config.RegisterFlags(fs) }

func (cf *configFlags) embedded() bool { return len(cf.args.Files) == 0 && len(cf.args.Dirs) == 0 }

// load reads the configuration and logs, once, the options it does not use.
func (cf *configFlags) load(log *slog.Logger) (*config.Config, error) {
	cfg, ignored, err := config.Load(cf.args.Files, cf.args.Dirs)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if len(ignored) > 0 {
		log.Warn(config.FormatIgnored(ignored))
	}
	return cfg, cfg.Validate()
}

func serve(args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("glance-api", flag.ContinueOnError)
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	embedded := cf.embedded()
	cfg, err := cf.load(log)
	if err != nil {
		return err
	}
	setMemoryLimit(cfg, log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if embedded {
		// The embedded default keeps everything under ./data.
		if err := os.MkdirAll(filepath.Dir(config.Default().Store.FilesystemStoreDatadir), 0o750); err != nil {
			return err
		}
	}
	d, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.CheckSchema(ctx); err != nil {
		if !embedded {
			return err
		}
		// The embedded default owns its database: create it on first start.
		log.Info("creating the embedded database", "connection", cfg.Database.Connection)
		if err := d.Sync(ctx); err != nil {
			return err
		}
	}

	svc, err := newServer(ctx, cfg, d, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.BindHost, fmt.Sprint(cfg.BindPort)))
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	if svc.metrics != nil {
		mln, err := net.Listen("tcp", cfg.Ops.MetricsBind)
		if err != nil {
			ln.Close()
			return fmt.Errorf("[glance_go] metrics_bind: %w", err)
		}
		log.Info("metrics listening", "addr", mln.Addr().String())
		go func() { errc <- svc.metrics.Serve(mln) }()
	}
	log.Info("glance-api listening", "addr", ln.Addr().String(), "version", version)
	go func() { errc <- svc.srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// A second SIGTERM or interrupt ends the process at once.
	stop()
	return svc.shutdown(time.Duration(cfg.Ops.GracefulShutdownTimeout)*time.Second, log)
}

func openDB(ctx context.Context, cfg *config.Config) (*db.DB, error) {
	records := cfg.Runtime.RecordCache
	if records == 0 {
		records = -1 // off
	}
	call := time.Duration(cfg.Runtime.DatabaseCallTimeout) * time.Second
	if call == 0 {
		call = -1 // no bound
	}
	return db.Open(ctx, db.Config{
		Connection:      cfg.Database.Connection,
		RecordCache:     records,
		MaxPoolSize:     cfg.Database.MaxPoolSize,
		MaxOverflow:     cfg.Database.MaxOverflow,
		PoolTimeout:     time.Duration(cfg.Database.PoolTimeout) * time.Second,
		ConnMaxLifetime: time.Duration(cfg.Database.ConnectionRecycleTime) * time.Second,
		CallTimeout:     call,
	})
}

// newServer wires the configured parts into the HTTP service; its shutdown
// ends the import service, then sends the notifications still queued,
// once the server no longer takes requests.
func newServer(ctx context.Context, cfg *config.Config, d *db.DB, log *slog.Logger) (*service, error) {
	set, err := openStores(cfg, log)
	if err != nil {
		return nil, err
	}
	var m *metrics.Metrics
	var gwStores location.Stores = set
	if cfg.Ops.Metrics {
		m = metrics.New(version)
		gwStores = stores.Observe(set, m.StoreError)
	}
	for _, w := range cfg.NotificationWarnings() {
		log.Warn(w)
	}
	notes, err := newNotifications(cfg, log)
	if err != nil {
		return nil, err
	}
	if m != nil && notes.bus != nil {
		m.Notifications(func() metrics.NotificationStats {
			st := notes.bus.Stats()
			return metrics.NotificationStats{Published: st.Published, Retried: st.Retried, Dropped: st.Dropped,
				Undelivered: st.Undelivered, Queued: st.Queued, Connected: st.Connected}
		})
	}
	if m != nil {
		m.Pool(func() metrics.PoolStats {
			st := d.Pool()
			return metrics.PoolStats{Open: st.OpenConnections, InUse: st.InUse, Idle: st.Idle,
				Waits: st.WaitCount, WaitSeconds: st.WaitDuration.Seconds(),
				PoolTimeouts: st.PoolTimeouts, DeadlockRetries: st.DeadlockRetries}
		})
	}
	if _, ok := d.RecordCache(); ok && m != nil {
		m.RecordCache(func() metrics.RecordCacheStats {
			st, _ := d.RecordCache()
			return metrics.RecordCacheStats{Hits: st.Hits, Misses: st.Misses, Entries: st.Entries}
		})
	}
	enf, err := loadPolicy(cfg, log)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := enf.Watch(ctx); err != nil && ctx.Err() == nil {
			log.Error("policy file watch stopped", "err", err)
		}
	}()
	var rules *propprotect.Rules
	if cfg.PropertyProtectionFile != "" {
		rules, err = propprotect.Load(cfg.PropertyProtectionFile, cfg.PropertyProtectionRuleFormat,
			func(c *domain.Caller, rule string) bool { return enf.Allowed(c, rule, policy.Target{}) })
		if err != nil {
			return nil, fmt.Errorf("property protections: %w", err)
		}
	}
	gw := gateway.New(gateway.Config{
		DB:     d,
		Stores: gwStores,
		Location: location.Options{
			HashAlgo:  cfg.HashingAlgorithm,
			StageHost: cfg.SelfURL(),
			Heartbeat: heartbeat(cfg),
			Formats: inspect.Policy{
				RequireFormatMatch: cfg.ImageFormat.RequireImageFormatMatch,
				GPTNonFatal:        cfg.ImageFormat.GPTSafetyChecksNonfatal,
				VMDKAllowedTypes:   cfg.ImageFormat.VMDKAllowedTypes,
			},
			Logger: log,
		},
		Limits: quota.Limits{
			Properties:   cfg.ImagePropertyQuota,
			Tags:         cfg.ImageTagQuota,
			Members:      cfg.ImageMemberQuota,
			Locations:    cfg.ImageLocationQuota,
			SizeCap:      cfg.ImageSizeCap,
			StorageBytes: cfg.UserStorageQuotaBytes(),
		},
		Enforcer: enf,
		Sink:     notes.sink,
		Notifier: notifier.Options{
			PublisherID: cfg.DefaultPublisherID,
			Disabled:    cfg.DisabledNotifications,
			Logger:      log,
		},
		Rules: rules,
	})
	imp, err := newImports(cfg, d, gw, set, enf, log)
	if err != nil {
		notes.close(log)
		return nil, err
	}
	recoverImports(ctx, cfg, d, imp, log)
	startRecovery(ctx, cfg, d, set, imp, log)
	var auth api.Authenticator
	switch cfg.PasteDeploy.Auth() {
	case "noauth":
		auth = api.NoAuth()
	case "trusted-auth":
		auth = api.TrustedHeaders(enf.IsAdmin)
	case "keystone":
		if auth, err = keystoneAuth(cfg, enf, log); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("[paste_deploy] flavor %q is not supported (use noauth, trusted-auth or keystone)", cfg.PasteDeploy.Flavor)
	}
	var schema []byte
	if cfg.SchemaImageFile != "" {
		if schema, err = os.ReadFile(cfg.SchemaImageFile); err != nil {
			return nil, err
		}
	}
	opts := api.Options{
		LimitDefault:          cfg.LimitParamDefault,
		LimitMax:              cfg.APILimitMax,
		ImportMethods:         cfg.EnabledImportMethods,
		ShowDirectURL:         cfg.ShowImageDirectURL,
		ShowMultipleLocations: cfg.ShowMultipleLocations,
		HashAlgo:              cfg.HashingAlgorithm,
		DiskFormats:           cfg.ImageFormat.DiskFormats,
		ContainerFormats:      cfg.ImageFormat.ContainerFormats,
		CustomSchema:          schema,
		PublicEndpoint:        cfg.PublicEndpoint,
		MaxRequestIDLength:    cfg.MaxRequestIDLength,
		Auth:                  auth,
		Stores:                set,
		Imports:               imp,
		Authorize:             func(c *domain.Caller, rule string) bool { return enf.Allowed(c, rule, policy.Target{}) },
		Logger:                log,
		CORS:                  corsRules(cfg),
		Healthcheck:           healthcheck(cfg),
	}
	svc := &service{stopImports: func(ctx context.Context) error {
		err := imp.Close(ctx)
		notes.close(log)
		return err
	}}
	if m != nil {
		opts.Observer = m
		if cfg.Ops.MetricsBind == "" {
			opts.Metrics, opts.MetricsPath = m.Handler(), "/metrics"
		} else {
			mux := http.NewServeMux()
			mux.Handle("/metrics", m.Handler())
			svc.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second,
				ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		}
	}
	svc.handle(api.New(gw, opts), time.Duration(cfg.Ops.ClientSocketTimeout)*time.Second, log)
	return svc, nil
}

// keystoneAuth is the keystone flavor: tokens validated against Keystone
// with the [keystone_authtoken] options.
func keystoneAuth(cfg *config.Config, enf *policy.Enforcer, log *slog.Logger) (api.Authenticator, error) {
	k := cfg.Keystone
	kc, err := keystone.New(keystone.Config{
		AuthURL:               k.AuthURL,
		AuthType:              k.AuthType,
		Username:              k.Username,
		Password:              k.Password,
		UserDomainName:        k.UserDomainName,
		UserDomainID:          k.UserDomainID,
		ProjectName:           k.ProjectName,
		ProjectID:             k.ProjectID,
		ProjectDomainName:     k.ProjectDomainName,
		ProjectDomainID:       k.ProjectDomainID,
		RegionName:            k.RegionName,
		Interface:             k.Interface,
		TokenCacheTime:        k.TokenCacheTime,
		HTTPConnectTimeout:    k.HTTPConnectTimeout,
		HTTPRequestMaxRetries: k.HTTPRequestMaxRetries,
		Insecure:              k.Insecure,
		CAFile:                k.CAFile,
	}, log)
	if err != nil {
		return nil, err
	}
	uri := k.WWWAuthenticateURI
	if uri == "" {
		log.Warn("[keystone_authtoken] www_authenticate_uri is not set: 401 answers name auth_url instead; " +
			"point it at the public identity endpoint")
		uri = k.AuthURL
	}
	if !k.ServiceTokenRolesRequired {
		log.Warn("[keystone_authtoken] service_token_roles_required is false: any valid token is accepted as " +
			"a service token (backwards compatible but deprecated); set it to true")
	}
	return api.Keystone(kc, api.KeystoneOptions{
		WWWAuthenticateURI:        uri,
		ServiceTokenRoles:         k.ServiceTokenRoles,
		ServiceTokenRolesRequired: k.ServiceTokenRolesRequired,
		DelayAuthDecision:         k.DelayAuthDecision,
		IsAdmin:                   enf.IsAdmin,
		Logger:                    log,
	}), nil
}

func loadPolicy(cfg *config.Config, log *slog.Logger) (*policy.Enforcer, error) {
	if cfg.Policy.PolicyFile == "" && cfg.Policy.ModelFile == "" {
		return policy.NewDefault()
	}
	return policy.New(cfg.Policy.ModelFile, cfg.Policy.PolicyFile, log)
}

// notifications is where notifications go ([oslo_messaging_notifications]
// driver): nowhere (noop, the default), JSON lines on standard error (log)
// and RabbitMQ (messaging, messagingv2), each driver in turn.
type notifications struct {
	sink notifier.Sink
	// bus is the RabbitMQ sink, nil without a messaging driver; its Stats
	// count what was published, retried and dropped.
	bus *rabbit.Sink
}

func newNotifications(cfg *config.Config, log *slog.Logger) (*notifications, error) {
	n := &notifications{}
	var sinks []notifier.Sink
	var formats []rabbit.Format
	logged := false
	for _, d := range cfg.Notifications.Driver {
		switch d {
		case "log":
			if !logged {
				sinks = append(sinks, notifier.NewLogSink(os.Stderr))
				logged = true
			}
		case "messaging":
			formats = append(formats, rabbit.FormatV1)
		case "messagingv2":
			formats = append(formats, rabbit.FormatV2)
		}
	}
	if len(formats) > 0 {
		nc := cfg.Notifications
		r := nc.Rabbit
		bus, err := rabbit.New(rabbit.Config{
			URL:                 nc.URL(),
			Formats:             formats,
			Topics:              nc.Topics,
			Exchange:            nc.ControlExchange,
			Retry:               nc.Retry,
			Durable:             r.AMQPDurableQueues || r.QuorumQueue,
			AutoDelete:          r.AMQPAutoDelete,
			HAQueues:            r.HAQueues,
			QuorumQueues:        r.QuorumQueue,
			QuorumDeliveryLimit: r.QuorumDeliveryLimit,
			QuorumMaxMemLength:  r.QuorumMaxMemoryLength,
			QuorumMaxMemBytes:   r.QuorumMaxMemoryBytes,
			RetryInterval:       time.Duration(r.RetryInterval) * time.Second,
			RetryBackoff:        time.Duration(r.RetryBackoff) * time.Second,
			IntervalMax:         time.Duration(r.IntervalMax) * time.Second,
			Heartbeat:           time.Duration(r.HeartbeatTimeoutThreshold) * time.Second,
			LoginMethod:         r.LoginMethod,
			QueueSize:           nc.QueueSize,
			Logger:              log,
		})
		if err != nil {
			return nil, fmt.Errorf("notifications: %w", err)
		}
		log.Info("notifications go to RabbitMQ", "transport_url", rabbit.Redact(nc.URL()),
			"exchange", nc.ControlExchange, "topics", strings.Join(nc.Topics, ","))
		n.bus = bus
		sinks = append(sinks, bus)
	}
	switch len(sinks) {
	case 0:
		n.sink = notifier.NewLogSink(io.Discard)
	default:
		n.sink = notifier.Fanout(sinks...)
	}
	return n, nil
}

// flushTimeout bounds how long a stopping server keeps sending the
// notifications still queued.
const flushTimeout = 5 * time.Second

// close sends what is queued for the message bus, for flushTimeout at
// most, and reports what had to be left.
func (n *notifications) close(log *slog.Logger) {
	if n.bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	err := n.bus.Close(ctx)
	st := n.bus.Stats()
	if err != nil || st.Dropped+st.Undelivered > 0 {
		log.Warn("notifications not delivered", "published", st.Published, "dropped", st.Dropped, "undelivered", st.Undelivered)
	}
}

func dbCommand(args []string, log *slog.Logger) error {
	if len(args) == 0 {
		return errors.New("usage: glance-api db sync|version [--config-file FILE]")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("glance-api db", flag.ContinueOnError)
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.load(log)
	if err != nil {
		return err
	}
	ctx := context.Background()
	d, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	switch sub {
	case "sync":
		if err := d.Sync(ctx); err != nil {
			return err
		}
		fallthrough
	case "version":
		v, err := d.Version(ctx)
		if err != nil {
			return err
		}
		fmt.Println(v)
		return nil
	}
	return fmt.Errorf("unknown db command %q (want sync or version)", sub)
}
