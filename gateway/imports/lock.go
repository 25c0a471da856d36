package imports

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// lockExpiry is how long an import lock holds without its task moving:
// after that another import may break it (twice as long for a task still
// pending).
const lockExpiry = 60 * time.Minute

func errActiveTask() error { return domain.Errorf(domain.ErrConflict, "Image has active task") }

// enforceLock decides on the import lock that task holder holds on image
// id (ImagesController._enforce_import_lock). A live lock is a conflict; an
// expired one, or one whose task is gone, is broken: its task is failed
// and the lock removed. It returns the task whose lock was broken, nil
// when the task was gone.
func (s *Service) enforceLock(ctx context.Context, c *domain.Caller, id, holder string) (*domain.Task, error) {
	tasks := s.cfg.DB.Tasks(elevated(c))
	t, err := tasks.Get(ctx, holder)
	var task *domain.Task
	switch {
	case errors.Is(err, domain.ErrNotFound):
		s.log.Warn("image has a non-existent import task; considering it stale", "image_id", id, "task_id", holder)
	case err != nil:
		return nil, err
	default:
		task = &t
	}
	if task != nil {
		expiry := lockExpiry
		if task.Status == domain.TaskPending {
			expiry *= 2
		}
		age := s.cfg.Now().Sub(task.UpdatedAt)
		if age < expiry {
			s.log.Warn("image has an active import task; its lock remains valid", "image_id", id,
				"task_id", holder, "status", task.Status, "remaining", expiry-age)
			return nil, errActiveTask()
		}
		if err := task.Fail("Expired lock preempted", s.cfg.TaskTTL); err == nil {
			if err := tasks.Save(ctx, *task); err != nil {
				s.log.Warn("cannot fail the task of an expired import lock", "task_id", holder, "error", err)
			}
		}
	}
	if err := s.cfg.DB.DeletePropertyAtomic(ctx, id, LockProperty, holder); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			s.log.Warn("image has a stale import task but another request removed it first", "image_id", id, "task_id", holder)
			return nil, errActiveTask()
		}
		return nil, err
	}
	status, owner := "missing", "unknown owner"
	if task != nil {
		status, owner = string(task.Status), task.Owner
	}
	s.log.Warn("removed an expired import lock", "image_id", id, "task_id", holder, "status", status, "owner", owner)
	return task, nil
}

// dropLock removes the import lock of task taskID from image id, if it
// still holds it.
func (s *Service) dropLock(id, taskID string) {
	err := s.cfg.DB.DeletePropertyAtomic(context.Background(), id, LockProperty, taskID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		s.log.Warn("import task did not hold its image's lock any more", "image_id", id, "task_id", taskID)
	case err != nil:
		s.log.Error("cannot release an import lock", "image_id", id, "task_id", taskID, "error", err)
	}
}

// cleanStaleProgress removes the stores of a task whose lock was broken
// from the image's importing and failed lists
// (ImagesController._cleanup_stale_task_progress).
func (s *Service) cleanStaleProgress(ctx context.Context, admin *domain.Caller, id string, old *domain.Task) {
	var stale []string
	if list, ok := old.Input["backend"].([]any); ok {
		for _, v := range list {
			if st, ok := v.(string); ok && st != "" {
				stale = append(stale, st)
			}
		}
	}
	if len(stale) == 0 {
		return
	}
	repo, _ := s.cfg.Gateway.Images(admin)
	img, err := repo.Get(ctx, id)
	if err != nil {
		s.log.Warn("cannot clean the progress of a stale import", "image_id", id, "error", err)
		return
	}
	from := img.Meta().Status
	changed := false
	err = img.Update(func(m *domain.Meta) error {
		for _, key := range []string{ImportingProperty, FailedProperty} {
			before := m.Properties[key]
			mergeStores(m, key, stale, true)
			changed = changed || m.Properties[key] != before
		}
		return nil
	})
	if err == nil && changed {
		err = repo.Save(ctx, img, from)
	}
	if err != nil {
		s.log.Warn("cannot clean the progress of a stale import", "image_id", id, "error", err)
	}
}

// mergeStores adds stores to (or, with subtract, removes them from) the
// comma-separated store list in property key, kept sorted. The property
// is always set, empty when the list is (_ImportActions.merge_store_list).
func mergeStores(m *domain.Meta, key string, stores []string, subtract bool) {
	set := map[string]bool{}
	for _, st := range strings.Split(m.Properties[key], ",") {
		if st != "" {
			set[st] = true
		}
	}
	for _, st := range stores {
		if st == "" {
			continue
		}
		if subtract {
			delete(set, st)
		} else {
			set[st] = true
		}
	}
	list := make([]string, 0, len(set))
	for st := range set {
		list = append(list, st)
	}
	slices.Sort(list)
	m.Properties[key] = strings.Join(list, ",")
}
