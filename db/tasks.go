package db

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// TaskRepo is the innermost domain.TaskRepo: the tasks one caller may see
// (glance/db TaskRepo over the task_* functions of glance/db/sqlalchemy/api.py).
// An admin sees every task; anyone else the tasks of its own project.
type TaskRepo struct {
	d *DB
	c domain.Caller
}

var _ domain.TaskRepo = (*TaskRepo)(nil)

// Tasks returns the task repository for caller c. A nil c is an anonymous
// caller with no project.
func (d *DB) Tasks(c *domain.Caller) domain.TaskRepo {
	r := &TaskRepo{d: d}
	if c != nil {
		r.c = *c
	}
	return r
}

// taskColumns are the tasks columns in the order scanTask reads them.
const taskColumns = "tasks.id, tasks.type, tasks.status, tasks.owner, tasks.expires_at, tasks.created_at," +
	" tasks.updated_at, tasks.image_id, tasks.request_id, tasks.user_id"

// taskInfoColumns are read after taskColumns when a query joins task_info.
const taskInfoColumns = ", task_info.input, task_info.result, task_info.message"

// taskSortColumns are the sort keys a task listing accepts, with the
// expression pagination compares: nullable columns compare as their
// type's empty value, as oslo.db's paginate_query does.
var taskSortColumns = map[string]string{
	"id":         "tasks.id",
	"type":       "tasks.type",
	"status":     "tasks.status",
	"owner":      "tasks.owner",
	"created_at": "tasks.created_at",
	"updated_at": "COALESCE(tasks.updated_at, tasks.created_at)",
	"expires_at": "COALESCE(tasks.expires_at, '0001-01-01 00:00:00')",
	"image_id":   "COALESCE(tasks.image_id, '')",
	"request_id": "COALESCE(tasks.request_id, '')",
	"user_id":    "COALESCE(tasks.user_id, '')",
}

func taskNotFound(id string) error {
	return domain.Errorf(domain.ErrNotFound, "Task with the given id %s was not found", id)
}

// visible adds the caller's visibility to w (glance/db/sqlalchemy/api._is_task_visible).
func (r *TaskRepo) visible(w *where) {
	if !r.c.IsAdmin {
		w.add("tasks.owner = ?", r.c.ProjectID)
	}
}

// mayView reports whether the caller may see a task of this owner.
func (r *TaskRepo) mayView(owner string) bool {
	return r.c.IsAdmin || owner == r.c.ProjectID
}

// scanTask reads one row of taskColumns, plus taskInfoColumns when info
// is set.
func scanTask(rows *sql.Rows, info bool) (domain.Task, error) {
	var (
		t                          domain.Task
		status                     string
		expires, created, updated  dbTime
		imageID, requestID, userID sql.NullString
		input, result, message     sql.NullString
	)
	dest := []any{&t.ID, &t.Type, &status, &t.Owner, &expires, &created, &updated, &imageID, &requestID, &userID}
	if info {
		dest = append(dest, &input, &result, &message)
	}
	if err := rows.Scan(dest...); err != nil {
		return t, err
	}
	t.Status = domain.TaskStatus(status)
	t.ExpiresAt = expires.outPtr()
	t.CreatedAt = created.out()
	t.UpdatedAt = updated.out()
	if !updated.Valid {
		t.UpdatedAt = t.CreatedAt
	}
	t.ImageID, t.RequestID, t.UserID = imageID.String, requestID.String, userID.String
	if info {
		var err error
		if t.Input, err = decodeJSONObject(input); err != nil {
			return t, err
		}
		if t.Result, err = decodeJSONObject(result); err != nil {
			return t, err
		}
		t.Message = message.String
	}
	return t, nil
}

// decodeJSONObject reads a JSONEncodedDict column: NULL and "null" are nil.
// Numbers stay json.Number, so that they come back out as they went in.
func decodeJSONObject(s sql.NullString) (map[string]any, error) {
	if !s.Valid || s.String == "" || s.String == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s.String))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// encodeJSONObject writes a JSONEncodedDict column: nil is NULL.
func encodeJSONObject(m map[string]any) (any, error) {
	if m == nil {
		return nil, nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, domain.Errorf(domain.ErrInvalid, "Invalid task data: %v", err)
	}
	return strings.TrimRight(b.String(), "\n"), nil
}

// nullable is the column value of a string that is NULL when empty.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Get implements domain.TaskRepo.
func (r *TaskRepo) Get(ctx context.Context, id string) (domain.Task, error) {
	if id == "" || len(id) > idMaxLen {
		return domain.Task{}, taskNotFound(id)
	}
	var t domain.Task
	found := false
	err := r.d.readRows(ctx, "SELECT "+taskColumns+taskInfoColumns+" FROM tasks"+
		" LEFT JOIN task_info ON task_info.task_id = tasks.id WHERE tasks.id = ? AND +tasks.deleted = 0", []any{id},
		func(rows *sql.Rows) (err error) {
			t, err = scanTask(rows, true)
			found = true
			return err
		})
	if err != nil {
		return domain.Task{}, opErr("get task", err)
	}
	if !found {
		return domain.Task{}, taskNotFound(id)
	}
	if !r.mayView(t.Owner) {
		return domain.Task{}, domain.Errorf(domain.ErrForbidden, "Forbidding request, task %s is not visible", id)
	}
	return t, nil
}

// expire soft-deletes the caller's project's expired tasks, as Glance does
// before it lists (glance/db/sqlalchemy/api._task_soft_delete).
func (r *TaskRepo) expire(ctx context.Context) error {
	t := now()
	return opErr("expire tasks", r.d.write(ctx, func(run runner) error {
		_, err := run.exec(ctx, "UPDATE tasks SET deleted = 1, deleted_at = ? WHERE owner = ? AND +deleted = 0"+
			" AND expires_at <= ?", ts(t), r.c.ProjectID, ts(t))
		return err
	}))
}

// List implements domain.TaskRepo.
func (r *TaskRepo) List(ctx context.Context, q domain.TaskQuery) ([]domain.Task, error) {
	key, dir := q.SortKey, q.SortDir
	if key == "" {
		key = "created_at"
	}
	if dir == "" {
		dir = "desc"
	}
	if _, ok := taskSortColumns[key]; !ok {
		return nil, domain.Errorf(domain.ErrInvalid, "Sort key supplied was not valid.")
	}
	if dir != "asc" && dir != "desc" {
		return nil, domain.Errorf(domain.ErrInvalid, "Sort direction supplied was not valid.")
	}
	if err := r.expire(ctx); err != nil {
		return nil, err
	}
	keys := []string{key}
	for _, k := range []string{"created_at", "id"} {
		if k != key {
			keys = append(keys, k)
		}
	}
	var w where
	w.add("+tasks.deleted = 0")
	r.visible(&w)
	if q.Status != "" {
		w.add("tasks.status = ?", string(q.Status))
	}
	if q.Type != "" {
		w.add("tasks.type = ?", q.Type)
	}
	if q.Marker != "" {
		if err := r.addMarker(ctx, &w, q.Marker, keys, dir); err != nil {
			return nil, err
		}
	}
	order := make([]string, len(keys))
	for i, k := range keys {
		order[i] = taskSortColumns[k] + " " + dir
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 25
	}
	out := []domain.Task{}
	err := r.d.readRows(ctx, "SELECT "+taskColumns+" FROM tasks WHERE "+w.sql()+
		" ORDER BY "+strings.Join(order, ", ")+" LIMIT ?", append(w.args, limit), func(rows *sql.Rows) error {
		t, err := scanTask(rows, false)
		out = append(out, t)
		return err
	})
	if err != nil {
		return nil, opErr("list tasks", err)
	}
	return out, nil
}

// addMarker adds the keyset condition that starts the page after the
// marker task, which must be visible to the caller.
func (r *TaskRepo) addMarker(ctx context.Context, w *where, marker string, keys []string, dir string) error {
	exprs := make([]string, len(keys))
	for i, k := range keys {
		exprs[i] = taskSortColumns[k]
	}
	var mw where
	mw.add("tasks.id = ?", marker)
	mw.add("+tasks.deleted = 0")
	r.visible(&mw)
	vals := make([]any, len(keys))
	ptrs := make([]any, len(keys))
	for i, k := range keys {
		if k == "created_at" || k == "updated_at" {
			var t dbTime
			ptrs[i] = &t
		} else {
			ptrs[i] = &vals[i]
		}
	}
	found := false
	err := r.d.readRows(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM tasks WHERE "+mw.sql(), mw.args,
		func(rows *sql.Rows) error {
			if found {
				return nil
			}
			found = true
			return rows.Scan(ptrs...)
		})
	if err != nil {
		return opErr("list tasks", err)
	}
	if !found {
		return taskNotFound(marker)
	}
	for i, p := range ptrs {
		if t, ok := p.(*dbTime); ok {
			vals[i] = *t
		} else if b, ok := vals[i].([]byte); ok {
			vals[i] = string(b)
		}
	}
	op := ">"
	if dir == "desc" {
		op = "<"
	}
	var ors []string
	var args []any
	for i := range keys {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, exprs[j]+" = ?")
			args = append(args, vals[j])
		}
		ands = append(ands, exprs[i]+" "+op+" ?")
		args = append(args, vals[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	w.add("("+strings.Join(ors, " OR ")+")", args...)
	return nil
}

// ListByImage implements domain.TaskRepo (glance/db/sqlalchemy/api.tasks_get_by_image).
func (r *TaskRepo) ListByImage(ctx context.Context, imageID string) ([]domain.Task, error) {
	if len(imageID) > idMaxLen {
		return []domain.Task{}, nil
	}
	if err := r.expire(ctx); err != nil {
		return nil, err
	}
	var w where
	w.add("tasks.image_id = ?", imageID)
	w.add("+tasks.deleted = 0")
	w.add("(tasks.expires_at IS NULL OR tasks.expires_at >= ?)", ts(now()))
	r.visible(&w)
	out := []domain.Task{}
	err := r.d.readRows(ctx, "SELECT "+taskColumns+taskInfoColumns+" FROM tasks"+
		" LEFT JOIN task_info ON task_info.task_id = tasks.id WHERE "+w.sql()+
		" ORDER BY tasks.created_at, tasks.id", w.args, func(rows *sql.Rows) error {
		t, err := scanTask(rows, true)
		out = append(out, t)
		return err
	})
	if err != nil {
		return nil, opErr("list image tasks", err)
	}
	return out, nil
}

// checkTask refuses what the tasks table cannot hold.
func checkTask(t *domain.Task) error {
	switch {
	case t.ID == "" || len(t.ID) > idMaxLen:
		return domain.Errorf(domain.ErrInvalid, "Invalid task id %q", t.ID)
	case !t.Status.Valid():
		return domain.Errorf(domain.ErrInvalid, "Provided status of task is unsupported: %s", t.Status)
	case len(t.RequestID) > 64 || len(t.UserID) > 64:
		return domain.Errorf(domain.ErrInvalid, "Task request or user id is too long")
	}
	return nil
}

// Add implements domain.TaskRepo: the task and its info row are written in
// one transaction.
func (r *TaskRepo) Add(ctx context.Context, t domain.Task) error {
	if err := checkTask(&t); err != nil {
		return err
	}
	input, err := encodeJSONObject(t.Input)
	if err != nil {
		return err
	}
	result, err := encodeJSONObject(t.Result)
	if err != nil {
		return err
	}
	created := t.CreatedAt
	if created.IsZero() {
		created = now()
	}
	updated := t.UpdatedAt
	if updated.IsZero() {
		updated = created
	}
	created, updated = r.d.taskTime(created), r.d.taskTime(updated)
	err = r.d.write(ctx, func(run runner) error {
		_, err := run.exec(ctx, "INSERT INTO tasks (id, type, status, owner, expires_at, created_at, updated_at,"+
			" deleted_at, deleted, image_id, request_id, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0, ?, ?, ?)",
			t.ID, t.Type, string(t.Status), t.Owner, tsPtr(t.ExpiresAt), ts(created), ts(updated),
			nullable(t.ImageID), nullable(t.RequestID), nullable(t.UserID))
		if isDuplicate(err) {
			return domain.Errorf(domain.ErrConflict, "Task with the given id %s already exists", t.ID)
		}
		if err != nil {
			return err
		}
		_, err = run.exec(ctx, "INSERT INTO task_info (task_id, input, result, message) VALUES (?, ?, ?, ?)",
			t.ID, input, result, t.Message)
		return err
	})
	return opErr("add task", err)
}

// taskTime is t as a task's timestamp column keeps it: microseconds on
// SQLite, as Glance there, whole seconds in MySQL's DATETIME.
func (d *DB) taskTime(t time.Time) time.Time {
	if d.dialect == dialectMySQL {
		return t.UTC().Truncate(time.Second)
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Save implements domain.TaskRepo.
func (r *TaskRepo) Save(ctx context.Context, t domain.Task) error {
	if err := checkTask(&t); err != nil {
		return err
	}
	input, err := encodeJSONObject(t.Input)
	if err != nil {
		return err
	}
	result, err := encodeJSONObject(t.Result)
	if err != nil {
		return err
	}
	err = r.d.write(ctx, func(run runner) error {
		var owner string
		found, err := run.queryRow(ctx, "SELECT owner FROM tasks WHERE id = ? AND +deleted = 0", []any{t.ID}, &owner)
		if err != nil {
			return err
		}
		if !found {
			return taskNotFound(t.ID)
		}
		if !r.mayView(owner) {
			return domain.Errorf(domain.ErrForbidden, "Forbidding request, task %s is not visible", t.ID)
		}
		if _, err := run.exec(ctx, "UPDATE tasks SET status = ?, expires_at = ?, updated_at = ? WHERE id = ?",
			string(t.Status), tsPtr(t.ExpiresAt), ts(r.d.taskTime(time.Now())), t.ID); err != nil {
			return err
		}
		_, err = run.exec(ctx, "UPDATE task_info SET input = ?, result = ?, message = ? WHERE task_id = ?",
			input, result, t.Message, t.ID)
		return err
	})
	return opErr("save task", err)
}

// Remove implements domain.TaskRepo.
func (r *TaskRepo) Remove(ctx context.Context, id string) error {
	err := r.d.write(ctx, func(run runner) error {
		var owner string
		found, err := run.queryRow(ctx, "SELECT owner FROM tasks WHERE id = ? AND +deleted = 0", []any{id}, &owner)
		if err != nil {
			return err
		}
		if !found {
			return taskNotFound(id)
		}
		if !r.mayView(owner) {
			return domain.Errorf(domain.ErrForbidden, "Forbidding request, task %s is not visible", id)
		}
		t := ts(r.d.taskTime(time.Now()))
		_, err = run.exec(ctx, "UPDATE tasks SET deleted = 1, deleted_at = ?, updated_at = ? WHERE id = ?", t, t, id)
		return err
	})
	return opErr("remove task", err)
}

// Progress implements domain.TaskRepo: one compare-and-swap on the status,
// so that it never undoes a task ended meanwhile.
func (r *TaskRepo) Progress(ctx context.Context, id, message string) error {
	err := r.d.write(ctx, func(run runner) error {
		var owner, status string
		found, err := run.queryRow(ctx, "SELECT owner, status FROM tasks WHERE id = ? AND +deleted = 0", []any{id}, &owner, &status)
		if err != nil {
			return err
		}
		if !found {
			return taskNotFound(id)
		}
		if !r.mayView(owner) {
			return domain.Errorf(domain.ErrForbidden, "Forbidding request, task %s is not visible", id)
		}
		res, err := run.exec(ctx, "UPDATE tasks SET updated_at = ? WHERE id = ? AND status IN (?, ?)",
			ts(r.d.taskTime(time.Now())), id, string(domain.TaskPending), string(domain.TaskProcessing))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return domain.Errorf(domain.ErrConflict, "Task %s has ended (%s)", id, status)
		}
		_, err = run.exec(ctx, "UPDATE task_info SET message = ? WHERE task_id = ?", message, id)
		return err
	})
	return opErr("record task progress", err)
}

// ImportLockProperty is the image property that holds the id of the task
// importing the image's data: the import lock.
const ImportLockProperty = "os_glance_import_task"

// atomicProperties are the image properties only SetPropertyAtomic and
// DeletePropertyAtomic write: an image Save neither creates, changes nor
// removes them (glance/db IMAGE_ATOMIC_PROPS).
var atomicProperties = map[string]bool{ImportLockProperty: true}

// SetPropertyAtomic gives image imageID the property name=value, unless it
// already has a live property of that name: of several callers racing,
// exactly one succeeds (glance/db/sqlalchemy/api.image_set_property_atomic).
// The others get ErrConflict; a missing or deleted image gives ErrNotFound.
func (d *DB) SetPropertyAtomic(ctx context.Context, imageID, name, value string) error {
	if len(imageID) > idMaxLen {
		return notFound(imageID)
	}
	taken := domain.Errorf(domain.ErrConflict, "Image %s already has property %s", imageID, name)
	err := d.write(ctx, func(run runner) error {
		if err := d.lockImageRow(ctx, run, imageID); err != nil {
			return err
		}
		t := now()
		res, err := run.exec(ctx, "UPDATE image_properties SET value = ?, deleted = 0, deleted_at = NULL, updated_at = ?"+
			" WHERE image_id = ? AND name = ? AND deleted <> 0", value, ts(t), imageID, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			return nil
		}
		_, err = run.exec(ctx, "INSERT INTO image_properties (image_id, name, value, created_at, updated_at, deleted)"+
			" VALUES (?, ?, ?, ?, ?, 0)", imageID, name, value, ts(t), ts(t))
		if isDuplicate(err) {
			return taken
		}
		return err
	}, imageID)
	if isDuplicate(err) {
		return taken
	}
	return opErr("set property", err)
}

// DeletePropertyAtomic removes the property name of image imageID if its
// value is exactly value; otherwise it returns ErrNotFound
// (glance/db/sqlalchemy/api.image_delete_property_atomic).
func (d *DB) DeletePropertyAtomic(ctx context.Context, imageID, name, value string) error {
	err := d.write(ctx, func(run runner) error {
		res, err := run.exec(ctx, "DELETE FROM image_properties WHERE image_id = ? AND name = ? AND value = ?"+
			" AND deleted = 0", imageID, name, value)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return domain.Errorf(domain.ErrNotFound, "Image %s has no property %s=%s", imageID, name, value)
		}
		return nil
	}, imageID)
	return opErr("delete property", err)
}

// lockImageRow checks that a live image exists, locking its row on MySQL so
// that property changes and saves of one image are serialised.
func (d *DB) lockImageRow(ctx context.Context, run runner, id string) error {
	q := "SELECT id FROM images WHERE id = ? AND +deleted = 0"
	if d.dialect == dialectMySQL {
		q += " FOR UPDATE"
	}
	var got string
	found, err := run.queryRow(ctx, q, []any{id}, &got)
	if err != nil {
		return err
	}
	if !found {
		return notFound(id)
	}
	return nil
}
