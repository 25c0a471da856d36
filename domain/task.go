package domain

import (
	"context"
	"maps"
	"time"
)

// TaskStatus is a task's place in its life cycle.
type TaskStatus string

// The task statuses of glance/domain/__init__.py Task.
const (
	TaskPending    TaskStatus = "pending"
	TaskProcessing TaskStatus = "processing"
	TaskSuccess    TaskStatus = "success"
	TaskFailure    TaskStatus = "failure"
)

// Valid reports whether s is one of the four task statuses.
func (s TaskStatus) Valid() bool {
	switch s {
	case TaskPending, TaskProcessing, TaskSuccess, TaskFailure:
		return true
	}
	return false
}

// The task types Glance knows.
const (
	// TaskTypeImport is the legacy task import (POST /v2/tasks).
	TaskTypeImport = "import"
	// TaskTypeImageImport is an interoperable image import
	// (POST /v2/images/{id}/import).
	TaskTypeImageImport = "api_image_import"
	// TaskTypeLocationImport is the hashing of a location added through
	// the 2.17 locations API.
	TaskTypeLocationImport = "location_import"
)

// TaskTypes lists the task types, in the order the task schema gives them.
var TaskTypes = []string{TaskTypeImport, TaskTypeImageImport, TaskTypeLocationImport}

// DefaultTaskTTL is the default of [task] task_time_to_live: how long a
// finished task is kept.
const DefaultTaskTTL = 48 * time.Hour

// Task is an asynchronous operation and its outcome (the tasks and
// task_info tables).
type Task struct {
	ID     string
	Type   string
	Status TaskStatus
	// Owner is the project of the caller who created the task; "" when
	// the caller had none.
	Owner string
	// ExpiresAt is set when the task ends: the time after which it may be
	// purged.
	ExpiresAt *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
	// ImageID, RequestID and UserID are "" when unknown.
	ImageID   string
	RequestID string
	UserID    string
	// Input and Result are JSON objects: maps of strings to strings,
	// numbers (float64 or json.Number), booleans, nil, []any and
	// map[string]any. A nil map is JSON null.
	Input  map[string]any
	Result map[string]any
	// Message explains a failure, or tells how far a task got.
	Message string
}

// NewTask returns a new pending task of type typ created by caller c. It
// returns ErrInvalid for an unknown type.
func NewTask(typ string, c *Caller, imageID string, input map[string]any) (Task, error) {
	known := false
	for _, t := range TaskTypes {
		known = known || t == typ
	}
	if !known {
		return Task{}, Errorf(ErrInvalid, "Provided type of task is unsupported: %s", typ)
	}
	if c == nil {
		c = &Caller{}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	return Task{
		ID:        NewUUID(),
		Type:      typ,
		Status:    TaskPending,
		Owner:     c.ProjectID,
		CreatedAt: now,
		UpdatedAt: now,
		ImageID:   imageID,
		RequestID: c.RequestID,
		UserID:    c.UserID,
		Input:     input,
	}, nil
}

// Clone returns a copy of t whose maps may be changed without touching t's.
func (t Task) Clone() Task {
	t.Input = cloneJSON(t.Input)
	t.Result = cloneJSON(t.Result)
	if t.ExpiresAt != nil {
		e := *t.ExpiresAt
		t.ExpiresAt = &e
	}
	return t
}

func cloneJSON(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := maps.Clone(m)
	for k, v := range out {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneJSON(x)
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = cloneValue(e)
		}
		return c
	}
	return v
}

// taskTransitions is Task._validate_task_status_transition.
var taskTransitions = map[TaskStatus][]TaskStatus{
	TaskPending:    {TaskProcessing, TaskFailure},
	TaskProcessing: {TaskSuccess, TaskFailure},
}

func (t *Task) setStatus(s TaskStatus) error {
	for _, ok := range taskTransitions[t.Status] {
		if ok == s {
			t.Status = s
			return nil
		}
	}
	return Errorf(ErrConflict, "Status transition from %s to %s is not allowed", t.Status, s)
}

// Begin moves a pending task to processing. Any other status gives
// ErrConflict.
func (t *Task) Begin() error { return t.setStatus(TaskProcessing) }

// Succeed ends a processing task with result; it expires ttl from now.
func (t *Task) Succeed(result map[string]any, ttl time.Duration) error {
	if err := t.setStatus(TaskSuccess); err != nil {
		return err
	}
	t.Result = result
	t.expire(ttl)
	return nil
}

// Fail ends a pending or processing task with message msg; it expires ttl
// from now.
func (t *Task) Fail(msg string, ttl time.Duration) error {
	if err := t.setStatus(TaskFailure); err != nil {
		return err
	}
	t.Message = msg
	t.expire(ttl)
	return nil
}

func (t *Task) expire(ttl time.Duration) {
	e := time.Now().UTC().Truncate(time.Second).Add(ttl)
	t.ExpiresAt = &e
}

// Done reports whether the task has ended.
func (t *Task) Done() bool { return t.Status == TaskSuccess || t.Status == TaskFailure }

// TaskQuery is a validated GET /v2/tasks query.
type TaskQuery struct {
	Limit   int    // > 0
	Marker  string // id of the task before the page, "" for the first
	SortKey string // a column of the tasks table; "" means created_at
	SortDir string // asc or desc; "" means desc
	Status  TaskStatus
	Type    string
}

// TaskRepo stores and finds tasks as one caller sees them: an admin sees
// every task, anyone else the tasks of its own project.
type TaskRepo interface {
	// Get returns the task with this id, with its input, result and
	// message. It returns ErrNotFound if there is no such live task and
	// ErrForbidden if the caller may not see it.
	Get(ctx context.Context, id string) (Task, error)
	// List returns one page of the caller's tasks, without input, result
	// or message. An unknown marker gives ErrNotFound, an unknown sort key
	// ErrInvalid.
	List(ctx context.Context, q TaskQuery) ([]Task, error)
	// ListByImage returns the caller's unexpired tasks of one image, with
	// their input, result and message.
	ListByImage(ctx context.Context, imageID string) ([]Task, error)
	// Add stores a new task.
	Add(ctx context.Context, t Task) error
	// Save stores a task's status, expiry, result and message, and sets
	// its updated_at.
	Save(ctx context.Context, t Task) error
	// Remove soft-deletes a task: it is no longer found nor listed.
	Remove(ctx context.Context, id string) error
	// Progress sets the message of a pending or processing task and
	// refreshes its updated_at, leaving everything else as stored: a live
	// task shows it is alive. It returns ErrConflict when the task has
	// ended.
	Progress(ctx context.Context, id, message string) error
}

// The import methods of enabled_import_methods.
const (
	ImportGlanceDirect   = "glance-direct"
	ImportWebDownload    = "web-download"
	ImportCopyImage      = "copy-image"
	ImportGlanceDownload = "glance-download"
)

// ImportRequest is a POST /v2/images/{id}/import whose body has been read
// and checked as Glance's request deserializer checks it: the method is
// named and enabled, the flags are booleans.
type ImportRequest struct {
	// Method is the import method's name.
	Method string
	// URI is the method's uri (web-download); "" when absent.
	URI string
	// Remote holds the glance-download fields present in the method:
	// glance_region, glance_image_id, glance_service_interface.
	Remote map[string]string
	// Stores is the body's stores list, when HasStores.
	Stores    []string
	HasStores bool
	// StoreHeader is X-Image-Meta-Store, when HasStoreHeader.
	StoreHeader    string
	HasStoreHeader bool
	// AllStores and AllStoresMustSucceed are the body's flags, with their
	// defaults false and true.
	AllStores            bool
	AllStoresMustSucceed bool
	// Body is the request body as sent: the task records it as its
	// import_req.
	Body map[string]any
}
