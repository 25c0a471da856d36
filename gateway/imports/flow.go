package imports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/location"
)

// Reasons a flow stops that are not errors of a step.
var (
	// errLockLost: another import broke this one's lock. The image and
	// the staged data are the other import's now: a revert leaves them.
	errLockLost = domain.Errorf(domain.ErrConflict, "Task was aborted externally")
	// errAborted: the task was ended from outside (its lock broken).
	errAborted = domain.Errorf(domain.ErrConflict, "Task was aborted externally")
	// errShutdown: the server stopped while the import ran.
	errShutdown = domain.Errorf(domain.ErrUnavailable, "The import was interrupted because the server is shutting down.")
)

// ceded reports whether err means that the image is another import's
// now: the flow must leave it, its staged data and its lock alone.
func ceded(err error) bool { return errors.Is(err, errLockLost) || errors.Is(err, errAborted) }

func errImageGone() error {
	return domain.Errorf(domain.ErrGone, "Image has been deleted, aborting import.")
}

// flow is one api_image_import task running
// (glance/async_/flows/api_image_import.get_flow and its tasks).
type flow struct {
	s       *Service
	task    domain.Task
	caller  *domain.Caller // moves the data: the importing caller (elevated for copy-image)
	origin  *domain.Caller // the importing caller as it is, for the plugins
	admin   *domain.Caller // the flow's own bookkeeping
	imageID string
	req     domain.ImportRequest
	stores  []string // target store ids; "" is the only store of a single-store site

	prepared bool     // the image was marked as being imported
	staged   bool     // the staged data is this flow's to remove
	done     []string // stores the data reached
	failed   []string // stores the data did not reach
	copied   atomic.Int64
	bookMu   sync.Mutex // serialises the flow's own image updates
}

func (f *flow) copying() bool { return f.req.Method == domain.ImportCopyImage }

func (f *flow) tasks() domain.TaskRepo { return f.s.cfg.DB.Tasks(f.admin) }

// run executes the flow on a worker; ctx ends with the service.
func (f *flow) run(ctx context.Context) {
	if f.origin == nil {
		f.origin = f.caller
	}
	bg := context.WithoutCancel(ctx)
	if err := f.task.Begin(); err != nil {
		f.s.log.Error("import task cannot start", "task_id", f.task.ID, "error", err)
		f.s.dropLock(f.imageID, f.task.ID)
		return
	}
	if err := f.tasks().Save(bg, f.task); err != nil {
		f.s.log.Error("cannot record the start of an import task", "task_id", f.task.ID, "error", err)
	}
	fctx, cancel := context.WithCancelCause(ctx)
	stop := f.heartbeat(fctx, cancel)
	err := f.execute(fctx)
	stop()
	if err != nil && fctx.Err() != nil && !ceded(err) {
		// Cut short: say why rather than how the step noticed.
		err = context.Cause(fctx)
		if !ceded(err) && ctx.Err() != nil {
			err = errShutdown
		}
	}
	cancel(nil)
	if err != nil {
		f.revert(bg, err)
		f.finish(bg, err)
		return
	}
	f.finish(bg, nil)
}

// abandon fails a task that never started: the service closed first.
func (f *flow) abandon() {
	f.s.dropLock(f.imageID, f.task.ID)
	if err := f.task.Fail(errShutdown.Error(), f.s.cfg.TaskTTL); err == nil {
		if err := f.tasks().Save(context.Background(), f.task); err != nil {
			f.s.log.Error("cannot fail an abandoned import task", "task_id", f.task.ID, "error", err)
		}
	}
}

// execute runs the steps of the flow in order.
func (f *flow) execute(ctx context.Context) error {
	if err := f.prepare(ctx); err != nil {
		return err
	}
	path := f.s.stagedPath(f.imageID)
	if err := f.stage(ctx, path); err != nil {
		return err
	}
	if !f.copying() {
		for _, p := range f.s.cfg.Plugins {
			if err := f.plugin(ctx, p, path); err != nil {
				return err
			}
		}
	}
	if err := f.importAll(ctx, path); err != nil {
		return err
	}
	f.s.removeStaged(ctx, f.imageID)
	f.staged = false
	img, err := f.load(ctx)
	if err != nil {
		return err
	}
	if img.Meta().Status != domain.StatusActive {
		return domain.Errorf(domain.ErrUnavailable, "None of the uploads finished!")
	}
	return nil
}

// load returns the image as the flow's bookkeeping sees it, checking that
// the flow still holds the import lock (ImportActionWrapper).
func (f *flow) load(ctx context.Context) (domain.Image, error) {
	repo, _ := f.s.cfg.Gateway.Images(f.admin)
	img, err := repo.Get(ctx, f.imageID)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, errImageGone()
	}
	if err != nil {
		return nil, err
	}
	if holder := img.Meta().Properties[LockProperty]; holder != f.task.ID {
		f.s.log.Error("import task lost its image's lock", "image_id", f.imageID, "task_id", f.task.ID, "holder", holder)
		return nil, errLockLost
	}
	return img, nil
}

// with applies fn to the image and saves it, as the flow's bookkeeping,
// while the flow holds the import lock.
func (f *flow) with(ctx context.Context, fn func(m *domain.Meta) error) error {
	f.bookMu.Lock()
	defer f.bookMu.Unlock()
	img, err := f.load(ctx)
	if err != nil {
		return err
	}
	from := img.Meta().Status
	if err := img.Update(fn); err != nil {
		return err
	}
	repo, _ := f.s.cfg.Gateway.Images(f.admin)
	return repo.Save(ctx, img, from)
}

// prepare marks the image as being imported to the flow's stores
// (get_flow, before the tasks run).
func (f *flow) prepare(ctx context.Context) error {
	err := f.with(ctx, func(m *domain.Meta) error {
		if !f.copying() {
			m.Status = domain.StatusImporting
		}
		mergeStores(m, ImportingProperty, f.stores, false)
		mergeStores(m, FailedProperty, f.stores, true)
		delete(m.Properties, location.StageHostProperty)
		return nil
	})
	if err == nil {
		f.prepared = true
	}
	return err
}

// stage brings the data to the staging area: web-download fetches it,
// copy-image copies it from a store; glance-direct finds it there.
func (f *flow) stage(ctx context.Context, path string) error {
	switch f.req.Method {
	case domain.ImportGlanceDirect:
		f.staged = true
		if _, err := os.Stat(path); err != nil {
			return domain.Errorf(domain.ErrNotFound, "The staged data of image %s cannot be found.", f.imageID)
		}
		return nil
	case domain.ImportWebDownload:
		f.staged = true
		return f.s.download(ctx, f.imageID, f.req.URI, &f.copied)
	case domain.ImportCopyImage:
		img, err := f.load(ctx)
		if err != nil {
			return err
		}
		f.staged = true
		return f.s.copyToStaging(ctx, img.Meta(), &f.copied)
	}
	return domain.Errorf(domain.ErrUnavailable, "The %s import method is not supported by this server.", f.req.Method)
}

// plugin runs one import plugin on the staged data and records the change
// it asks for.
func (f *flow) plugin(ctx context.Context, p Plugin, path string) error {
	img, err := f.load(ctx)
	if err != nil {
		return err
	}
	change, err := p.Run(ctx, path, img.Meta(), f.origin)
	if err != nil {
		return err
	}
	if change == nil {
		return nil
	}
	return f.with(ctx, change)
}

// importAll writes the staged data to every target store, one after the
// other, or several at a time when max_parallel_stores allows it
// (_ImportToStore, parallel_api_image_import).
func (f *flow) importAll(ctx context.Context, path string) error {
	must := f.req.AllStoresMustSucceed
	par := min(f.s.cfg.MaxParallelStores, len(f.stores))
	if par <= 1 || f.copying() || !f.s.cfg.Stores.Multi() {
		for i, st := range f.stores {
			activate := !f.copying() && (!must || i == len(f.stores)-1)
			err := f.importTo(ctx, path, st, activate)
			if err != nil && (must || ceded(err) || ctx.Err() != nil) {
				f.failed = append(f.failed, st)
				return err
			}
			if err != nil {
				f.s.log.Warn("import to a store failed; continuing as all_stores_must_succeed is false",
					"task_id", f.task.ID, "store", st, "error", err)
				f.failed = append(f.failed, st)
			} else {
				f.done = append(f.done, st)
			}
			if st != "" {
				failedNow := err != nil
				if err := f.with(ctx, func(m *domain.Meta) error {
					mergeStores(m, ImportingProperty, []string{st}, true)
					if failedNow {
						mergeStores(m, FailedProperty, []string{st}, false)
					}
					return nil
				}); err != nil {
					return err
				}
			}
		}
		return nil
	}

	// Parallel: the record is updated once every store is done, so that
	// the flow's bookkeeping never races the locations being added.
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		slots = make(chan struct{}, par)
	)
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	for _, st := range f.stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
			case <-pctx.Done():
				mu.Lock()
				f.failed = append(f.failed, st)
				mu.Unlock()
				return
			}
			defer func() { <-slots }()
			err := f.importTo(pctx, path, st, !must)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				f.failed = append(f.failed, st)
				if first == nil && (must || ceded(err)) {
					first = err
					cancel(err)
				}
				return
			}
			f.done = append(f.done, st)
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.with(ctx, func(m *domain.Meta) error {
		mergeStores(m, ImportingProperty, f.stores, true)
		mergeStores(m, FailedProperty, f.failed, false)
		if must && len(f.done) == len(f.stores) && m.Status == domain.StatusImporting {
			m.Status = domain.StatusActive
		}
		return nil
	})
}

// importTo writes the staged data to one store through the image's
// SetData, as the caller moving the data.
func (f *flow) importTo(ctx context.Context, path, store string, activate bool) error {
	if _, err := f.load(ctx); err != nil {
		return err
	}
	repo, _ := f.s.cfg.Gateway.Images(f.caller)
	img, err := repo.Get(ctx, f.imageID)
	if errors.Is(err, domain.ErrNotFound) {
		return errImageGone()
	}
	if err != nil {
		return err
	}
	if img.Meta().Status == domain.StatusDeleted {
		return errImageGone()
	}
	file, err := os.Open(path)
	if err != nil {
		return domain.Errorf(domain.ErrNotFound, "The staged data of image %s cannot be found.", f.imageID)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return domain.Errorf(domain.ErrUnavailable, "Cannot read the staged data of image %s: %v", f.imageID, err)
	}
	r := &countingReader{r: file, n: &f.copied}
	return img.SetData(ctx, r, domain.DataIn{Size: st.Size(), Store: store, Import: true, Activate: activate})
}

// revert undoes what a failed flow did to the image
// (the revert methods of the flow's tasks): the data it stored is removed
// when every store had to succeed, the stores move from the importing list
// to the failed one, and an image that is not being copied goes back to
// queued without data. The staged data is removed and the lock released,
// unless another import holds it now.
func (f *flow) revert(ctx context.Context, cause error) {
	f.s.log.Warn("import failed; reverting", "image_id", f.imageID, "task_id", f.task.ID,
		"method", f.req.Method, "error", cause)
	if ceded(cause) {
		return
	}
	if f.prepared {
		failed := f.failed
		if len(f.done) == 0 && len(failed) == 0 {
			failed = f.stores // nothing reached a store: every one failed
		}
		undo := f.done
		if !f.req.AllStoresMustSucceed {
			undo = nil
		}
		err := f.with(ctx, func(m *domain.Meta) error {
			m.Locations = slices.DeleteFunc(m.Locations, func(l domain.Location) bool {
				st := location.StoreOf(l)
				return slices.Contains(undo, st) || (st == "" && slices.Contains(undo, ""))
			})
			mergeStores(m, ImportingProperty, f.stores, true)
			mergeStores(m, FailedProperty, failed, false)
			if !f.copying() && m.Status != domain.StatusQueued {
				m.Status = domain.StatusQueued
				if len(m.Locations) == 0 {
					m.Locations = nil
					m.Size, m.Checksum, m.HashAlgo, m.HashValue, m.VirtualSize = nil, nil, nil, nil, nil
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errLockLost) {
			f.s.log.Error("cannot revert the image of a failed import", "image_id", f.imageID, "task_id", f.task.ID, "error", err)
		}
		if errors.Is(err, errLockLost) {
			return
		}
	}
	if f.staged {
		f.s.removeStaged(ctx, f.imageID)
		f.staged = false
	}
}

// finish releases the import lock, then records the task's outcome: a
// client that sees the task ended may import again at once.
func (f *flow) finish(ctx context.Context, cause error) {
	if !ceded(cause) {
		f.s.dropLock(f.imageID, f.task.ID)
	}
	tasks := f.tasks()
	if cur, err := tasks.Get(ctx, f.task.ID); err == nil {
		f.task.Message = cur.Message
		if cur.Done() {
			// Ended from outside (an expired lock broken): leave it.
			f.task = cur
		}
	}
	if !f.task.Done() {
		var err error
		if cause == nil {
			err = f.task.Succeed(map[string]any{"image_id": f.imageID}, f.s.cfg.TaskTTL)
		} else {
			err = f.task.Fail(message(cause), f.s.cfg.TaskTTL)
		}
		if err == nil {
			err = tasks.Save(ctx, f.task)
		}
		if err != nil {
			f.s.log.Error("cannot record the end of an import task", "task_id", f.task.ID, "error", err)
		}
	}
}

// message is the task message for a failure: the domain error's text.
func message(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Msg
	}
	return err.Error()
}

// heartbeat records the flow's progress on its task every Heartbeat
// (_ImportToStore._status_callback), which keeps the import lock fresh, and
// cancels the flow when the task was ended from outside. stop ends it.
func (f *flow) heartbeat(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(f.s.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if touch := f.s.cfg.Touch; touch != nil && !f.copying() {
				// Only an importing image needs it; another status is a
				// conflict, and fine.
				if err := touch(ctx, f.imageID, domain.StatusImporting); err != nil &&
					!errors.Is(err, domain.ErrConflict) && ctx.Err() == nil {
					f.s.log.Warn("cannot renew the lease of an importing image", "image_id", f.imageID, "error", err)
				}
			}
			err := f.tasks().Progress(ctx, f.task.ID, fmt.Sprintf("Copied %d MiB", f.copied.Load()>>20))
			switch {
			case errors.Is(err, domain.ErrConflict):
				f.s.log.Error("import task was ended from outside; aborting", "task_id", f.task.ID, "error", err)
				cancel(errAborted)
				return
			case err != nil && ctx.Err() == nil:
				f.s.log.Warn("cannot record import progress", "task_id", f.task.ID, "error", err)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// countingReader counts the bytes read through it into n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}
