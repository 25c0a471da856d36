package imports

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/stores"
)

// errDead is the failure of an import whose server stopped while it ran.
var errDead = domain.Errorf(domain.ErrUnavailable, "The import was interrupted: the server running it stopped.")

// RevertDeadImport ends the import of img, an image that a server which
// has since died left importing (crash recovery calls it once the image's
// lease has run out). It reverts the image as a failed flow would: the
// partial data in the stores still being imported to is discarded, the
// data already stored is removed when every store had to succeed, those
// stores are marked failed, the image goes back to queued, the staged data
// is removed, the lock released and the task failed.
func (s *Service) RevertDeadImport(ctx context.Context, img domain.Image) error {
	m := img.Meta()
	var task domain.Task
	if id := m.Properties[LockProperty]; id != "" {
		t, err := s.cfg.DB.Tasks(recoverer).Get(ctx, id)
		switch {
		case err == nil:
			task = t
		case errors.Is(err, domain.ErrNotFound):
			task = domain.Task{ID: id, Status: domain.TaskProcessing}
		default:
			return err
		}
	}
	return s.revertDead(ctx, m, task)
}

// recoverer is who reverts the imports of dead servers.
var recoverer = &domain.Caller{IsAdmin: true, Roles: []string{"admin"}}

// RecoverOrphans fails the import tasks that a dead server left pending or
// processing, and reverts their images as RevertDeadImport does, whether
// the import had begun or not (a glance-direct import whose image is still
// uploading goes back to queued without its staged data). A task counts as
// dead when it was last updated before stale: a live one, waiting or
// running, refreshes itself every Heartbeat. The zero stale takes every
// such task: use it only when no other server can be running imports on
// the database (at start-up, on a database the server owns alone). It
// returns how many tasks it ended.
func (s *Service) RecoverOrphans(ctx context.Context, stale time.Time) (int, error) {
	tasks := s.cfg.DB.Tasks(recoverer)
	n := 0
	for _, st := range []domain.TaskStatus{domain.TaskPending, domain.TaskProcessing} {
		marker := ""
		for {
			page, err := tasks.List(ctx, domain.TaskQuery{Limit: 100, Status: st, Type: domain.TaskTypeImageImport,
				SortKey: "created_at", SortDir: "asc", Marker: marker})
			if err != nil {
				return n, err
			}
			for _, stub := range page {
				if !stale.IsZero() && !stub.UpdatedAt.Before(stale) {
					continue
				}
				t, err := tasks.Get(ctx, stub.ID)
				if err != nil {
					return n, err
				}
				if err := s.recoverTask(ctx, t); err != nil {
					return n, err
				}
				n++
			}
			if len(page) < 100 {
				break
			}
			marker = page[len(page)-1].ID
		}
	}
	return n, nil
}

// recoverTask ends one orphaned import task.
func (s *Service) recoverTask(ctx context.Context, t domain.Task) error {
	repo, _ := s.cfg.Gateway.Images(recoverer)
	img, err := repo.Get(ctx, t.ImageID)
	if err == nil && img.Meta().Properties[LockProperty] == t.ID {
		return s.revertDead(ctx, img.Meta(), t)
	}
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	// The image is gone, or no longer this task's: only the task is left.
	if err := t.Fail(errDead.Error(), s.cfg.TaskTTL); err != nil {
		return nil
	}
	return s.cfg.DB.Tasks(recoverer).Save(ctx, t)
}

// revertDead reverts the import of task on image m, a task no server runs.
func (s *Service) revertDead(ctx context.Context, m domain.Meta, task domain.Task) error {
	admin := recoverer
	f := &flow{s: s, caller: admin, origin: admin, admin: admin, imageID: m.ID, prepared: true, staged: true,
		req: domain.ImportRequest{AllStoresMustSucceed: true}, task: task}
	f.recall()
	pending := splitStores(m.Properties[ImportingProperty])
	failed := splitStores(m.Properties[FailedProperty])
	for _, st := range f.stores {
		switch {
		case slices.Contains(pending, st) || (st == "" && !hasData(m)):
			f.failed = append(f.failed, st)
		case !slices.Contains(failed, st):
			f.done = append(f.done, st)
		}
	}
	// A store still being written to holds, at most, a partial object
	// that no location records.
	for _, st := range f.failed {
		if b, ok := s.cfg.Stores.Backend(st); ok && !b.ReadOnly() {
			if err := discard(ctx, b.Driver, m.ID); err != nil {
				return err
			}
		}
	}
	f.revert(ctx, errDead)
	if f.task.ID != "" {
		f.finish(ctx, errDead)
	}
	return nil
}

// recall reads the flow's method and stores back from its task's input.
func (f *flow) recall() {
	req, _ := f.task.Input["import_req"].(map[string]any)
	if method, ok := req["method"].(map[string]any); ok {
		f.req.Method, _ = method["name"].(string)
	}
	if must, ok := req["all_stores_must_succeed"].(bool); ok {
		f.req.AllStoresMustSucceed = must
	}
	if list, ok := f.task.Input["backend"].([]any); ok {
		for _, v := range list {
			st, _ := v.(string)
			f.stores = append(f.stores, st)
		}
	}
	if len(f.stores) == 0 {
		f.stores = []string{""}
	}
}

func splitStores(v string) []string {
	var out []string
	for _, st := range strings.Split(v, ",") {
		if st != "" {
			out = append(out, st)
		}
	}
	return out
}

func hasData(m domain.Meta) bool {
	for _, l := range m.Locations {
		if l.Status == "" || l.Status == "active" {
			return true
		}
	}
	return false
}

// discard removes what an interrupted Put of image id left in driver d, or
// in the driver it wraps, when it can tell.
func discard(ctx context.Context, d stores.Driver, id string) error {
	for d != nil {
		if dd, ok := d.(stores.Discarder); ok {
			return dd.Discard(ctx, id)
		}
		u, ok := d.(interface{ Unwrap() stores.Driver })
		if !ok {
			return nil
		}
		d = u.Unwrap()
	}
	return nil
}
