// Package imports runs interoperable image imports (glance/api/v2/images.py
// import_image, glance/async_/flows/api_image_import.py) and serves their
// tasks (glance/api/v2/tasks.py).
//
// A POST /v2/images/{id}/import is checked in the request, as Glance checks
// it, then recorded as a pending api_image_import task that holds the
// image's import lock (the image property os_glance_import_task, taken
// atomically in the database). A bounded pool of workers, living as long as
// the server, runs each task's flow: stage the data when the method fetches
// it (web-download, copy-image), run the import plugins on the staged file,
// write it to each target store through the image's SetData, remove it from
// staging, and mark the task done. A flow that fails, or is cut short by
// shutdown, reverts: the image goes back to queued (copy-image leaves it
// active), the stores it was being imported to are recorded in
// os_glance_failed_import, the staged data is removed, the lock released
// and the task failed with the reason.
//
// The flow works through the gateway's repositories, so the layers of the
// onion apply: data is read and written as the importing caller (with the
// caller's policy, quota and notifications), while the flow's own
// bookkeeping on the image (status, os_glance_* properties, undoing what a
// failed import stored) is done as that caller elevated to admin, the way
// Glance's flow acts without its API's policy checks.
package imports

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/stores"
)

// Gateway hands out the per-caller image repositories (package gateway).
type Gateway interface {
	Images(c *domain.Caller) (domain.Repo, domain.Factory)
}

// Store is what the service needs of the database (package db): the task
// repository and the atomic image properties of the import lock.
type Store interface {
	Tasks(c *domain.Caller) domain.TaskRepo
	// SetPropertyAtomic creates an image property unless it exists
	// (ErrConflict).
	SetPropertyAtomic(ctx context.Context, imageID, name, value string) error
	// DeletePropertyAtomic removes an image property holding exactly
	// value (ErrNotFound otherwise).
	DeletePropertyAtomic(ctx context.Context, imageID, name, value string) error
}

// Fetcher fetches the data of a web-download (package webdl).
type Fetcher interface {
	// Validate refuses a URI the import filters do not allow (ErrInvalid
	// "URI for web-download does not pass filtering: <uri>").
	Validate(uri string) error
	// Open fetches uri; size is -1 when unknown.
	Open(ctx context.Context, uri string) (io.ReadCloser, int64, error)
}

// Plugin transforms the staged data of an import before it is stored
// ([image_import_opts] image_import_plugins).
type Plugin struct {
	Name string
	// Run works on the staged file at path, for image m imported by
	// caller c. It may replace the file; it returns the change to make to
	// the image record, or nil.
	Run func(ctx context.Context, path string, m domain.Meta, c *domain.Caller) (func(*domain.Meta) error, error)
}

// Config is what the service needs. Gateway, DB, Stores and Authorize are
// required.
type Config struct {
	Gateway Gateway
	DB      Store
	// Stores is the set of configured stores; its staging driver holds
	// the staged data.
	Stores *stores.Set
	// StagingDir is the staging driver's directory: the staged data of
	// image id is the file StagingDir/id.
	StagingDir string
	// Authorize checks a policy rule with the image as its target
	// (copy_image, modify_image, get_image).
	Authorize func(c *domain.Caller, rule string, m domain.Meta) bool
	// Methods is enabled_import_methods.
	Methods []string
	// WebDownload fetches web-download URIs; nil refuses every URI.
	WebDownload Fetcher
	// Plugins run, in order, on the staged data of every import but
	// copy-image.
	Plugins []Plugin
	// MaxWorkers is [taskflow_executor] max_workers: how many flows run at
	// once (10 when 0).
	MaxWorkers int
	// MaxParallelStores is [image_import_opts] max_parallel_stores: how
	// many stores one import writes at once (1 when 0).
	MaxParallelStores int
	// TaskTTL is [task] task_time_to_live: how long a finished task is
	// kept (48 hours when 0).
	TaskTTL time.Duration
	// SelfURL is this worker's worker_self_reference_url (or
	// public_endpoint): a glance-direct import of data staged by another
	// worker is handed to that worker.
	SelfURL string
	// SizeCap is image_size_cap: fetched data larger than this fails the
	// import (no cap when 0).
	SizeCap int64
	// Heartbeat is how often a running flow records its progress on its
	// task, which keeps its import lock fresh, and touches its importing
	// image, which keeps crash recovery away from it (a minute when 0).
	Heartbeat time.Duration
	// Touch renews the lease of an image in a status (domain.Toucher);
	// nil touches nothing.
	Touch func(ctx context.Context, id string, status domain.Status) error
	// Logger receives what cannot be returned; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now (tests set it to
	// age import locks).
	Now func() time.Time
}

// Service runs imports and serves tasks. It is safe for concurrent use.
type Service struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // lives as long as the service
	cancel context.CancelFunc
	slots  chan struct{} // one per worker
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

// New returns a Service whose workers run until Close.
func New(cfg Config) *Service {
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = 10
	}
	if cfg.MaxParallelStores <= 0 {
		cfg.MaxParallelStores = 1
	}
	if cfg.TaskTTL <= 0 {
		cfg.TaskTTL = domain.DefaultTaskTTL
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StagingDir != "" {
		if abs, err := filepath.Abs(cfg.StagingDir); err == nil {
			cfg.StagingDir = abs
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{cfg: cfg, log: log, ctx: ctx, cancel: cancel, slots: make(chan struct{}, cfg.MaxWorkers)}
}

// Close stops the service: flows that run are cut short and revert, tasks
// still waiting for a worker fail, and Close returns once every flow has
// finished reverting or ctx is done.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Methods returns enabled_import_methods.
func (s *Service) Methods() []string { return slices.Clone(s.cfg.Methods) }

// Tasks returns the task repository as caller c sees it.
func (s *Service) Tasks(c *domain.Caller) domain.TaskRepo { return s.cfg.DB.Tasks(c) }

// ImageTasks returns the unexpired tasks of image id that caller c may
// see (GET /v2/images/{id}/tasks). The image must be one the caller may
// get; otherwise it is not found.
func (s *Service) ImageTasks(ctx context.Context, c *domain.Caller, id string) ([]domain.Task, error) {
	repo, _ := s.cfg.Gateway.Images(c)
	img, err := repo.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.cfg.Authorize(c, "get_image", img.Meta()) {
		return nil, domain.Errorf(domain.ErrNotFound, "No image found with ID %s", id)
	}
	return s.cfg.DB.Tasks(c).ListByImage(ctx, id)
}

// elevated returns c with admin rights, the way Glance's
// RequestContext.elevated does: for the flow's own bookkeeping.
func elevated(c *domain.Caller) *domain.Caller {
	e := *c
	e.IsAdmin = true
	e.ReadOnly = false
	e.Roles = slices.Clone(c.Roles)
	if !e.HasRole("admin") {
		e.Roles = append(e.Roles, "admin")
	}
	return &e
}

// spawn runs fn on a worker once one is free. fn's context is the
// service's, cancelled by Close; when the service closes before a worker
// is free, abandoned runs instead. While it waits, the pending task taskID
// is kept alive every Heartbeat.
func (s *Service) spawn(taskID string, fn func(ctx context.Context), abandoned func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return domain.Errorf(domain.ErrUnavailable, "The server is shutting down.")
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(s.cfg.Heartbeat)
		defer tick.Stop()
	wait:
		for {
			select {
			case s.slots <- struct{}{}:
				break wait
			case <-s.ctx.Done():
				abandoned()
				return
			case <-tick.C:
				if err := s.cfg.DB.Tasks(recoverer).Progress(s.ctx, taskID, ""); err != nil && s.ctx.Err() == nil {
					s.log.Warn("cannot keep a waiting task alive", "task_id", taskID, "error", err)
				}
			}
		}
		defer func() { <-s.slots }()
		if s.ctx.Err() != nil {
			abandoned()
			return
		}
		fn(s.ctx)
	}()
	return nil
}
