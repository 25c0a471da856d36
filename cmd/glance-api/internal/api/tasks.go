package api

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/glance-go/glance-go/domain"
)

// taskProperties are the properties of Glance's task schema
// (glance/api/v2/tasks.py), in its order.
func taskProperties(partial bool) object {
	desc := func(typ any, d string) object { return object{{"description", d}, {"type", typ}} }
	enum := func(d string, values ...string) object {
		vs := make([]any, len(values))
		for i, v := range values {
			vs[i] = v
		}
		return object{{"description", d}, {"enum", vs}, {"type", "string"}}
	}
	nullable := func(t string) []any { return []any{"null", t} }
	p := object{
		{"id", object{{"description", "An identifier for the task"}, {"pattern", uuidPattern}, {"type", "string"}}},
		{"type", enum("The type of task represented by this content", domain.TaskTypes...)},
		{"status", enum("The current status of this task", "pending", "processing", "success", "failure")},
		{"input", desc(nullable("object"), "The parameters required by task, JSON blob")},
		{"result", desc(nullable("object"), "The result of current task, JSON blob")},
		{"owner", desc("string", "An identifier for the owner of this task")},
		{"message", desc("string", "Human-readable informative message only included when appropriate (usually on failure)")},
		{"image_id", desc("string", "Image associated with the task")},
		{"request_id", desc("string", "Human-readable informative request-id")},
		{"user_id", desc("string", "User associated with the task")},
		{"expires_at", desc(nullable("string"), "Datetime when this resource would be subject to removal")},
		{"created_at", desc("string", "Datetime when this resource was created")},
		{"updated_at", desc("string", "Datetime when this resource was updated")},
		{"self", object{{"readOnly", true}, {"type", "string"}}},
		{"schema", object{{"readOnly", true}, {"type", "string"}}},
	}
	if partial {
		p = slices.DeleteFunc(p, func(m member) bool { return m.key == "input" || m.key == "result" || m.key == "message" })
	}
	return p
}

var taskSchemas = sync.OnceValues(func() (task, tasks []byte) {
	task = appendValue(nil, object{{"name", "task"}, {"properties", taskProperties(false)}})
	tasks = appendValue(nil, collection("tasks", object{{"name", "task"}, {"properties", taskProperties(true)}}, false))
	return task, tasks
})

func (s *server) schemaTask(c echo.Context) error {
	task, _ := taskSchemas()
	return writeJSON(c, http.StatusOK, task)
}

func (s *server) schemaTasks(c echo.Context) error {
	_, tasks := taskSchemas()
	return writeJSON(c, http.StatusOK, tasks)
}

// tasksAllowed checks tasks_api_access, which every /v2/tasks call needs.
func (s *server) tasksAllowed(c echo.Context) error {
	if s.opts.Authorize != nil && !s.opts.Authorize(callerOf(c), "tasks_api_access") {
		return explain(http.StatusForbidden, "You are not authorized to complete tasks_api_access action.")
	}
	return nil
}

// appendTask writes a task as TasksController shows it: the full view, or
// the stub of a listing.
func appendTask(b []byte, t *domain.Task, stub bool) []byte {
	b = append(b, `{"id": `...)
	b = appendString(b, t.ID)
	if !stub {
		b = append(b, `, "input": `...)
		b = appendJSONObject(b, t.Input)
	}
	b = append(b, `, "type": `...)
	b = appendString(b, t.Type)
	b = append(b, `, "status": `...)
	b = appendString(b, string(t.Status))
	b = append(b, `, "owner": `...)
	b = appendString(b, t.Owner)
	if !stub {
		b = append(b, `, "message": `...)
		b = appendString(b, t.Message)
		b = append(b, `, "result": `...)
		b = appendJSONObject(b, t.Result)
	}
	b = append(b, `, "created_at": `...)
	b = appendTime(b, t.CreatedAt)
	b = append(b, `, "updated_at": `...)
	b = appendTime(b, t.UpdatedAt)
	b = append(b, `, "self": "/v2/tasks/`...)
	b = appendEscapedTail(b, t.ID)
	b = append(b, `", "schema": "/v2/schemas/task"`...)
	if !stub {
		for _, f := range []struct{ key, val string }{{"image_id", t.ImageID}, {"request_id", t.RequestID}, {"user_id", t.UserID}} {
			if f.val != "" {
				b = append(b, `, "`+f.key+`": `...)
				b = appendString(b, f.val)
			}
		}
	}
	if t.ExpiresAt != nil {
		b = append(b, `, "expires_at": `...)
		b = appendTime(b, *t.ExpiresAt)
	}
	return append(b, '}')
}

// appendJSONObject writes a task's input or result: null when nil.
func appendJSONObject(b []byte, m map[string]any) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	return appendValue(b, ordered(m))
}

// appendTaskRecord writes a task as GET /v2/images/{id}/tasks shows it: the
// database row's fields, timestamps with microseconds and no zone.
func appendTaskRecord(b []byte, t *domain.Task) []byte {
	tm := func(b []byte, p *time.Time) []byte {
		if p == nil {
			return append(b, "null"...)
		}
		b = append(b, '"')
		b = p.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000")
		return append(b, '"')
	}
	str := func(b []byte, s string) []byte {
		if s == "" {
			return append(b, "null"...)
		}
		return appendString(b, s)
	}
	b = append(b, `{"id": `...)
	b = appendString(b, t.ID)
	b = append(b, `, "type": `...)
	b = appendString(b, t.Type)
	b = append(b, `, "status": `...)
	b = appendString(b, string(t.Status))
	b = append(b, `, "owner": `...)
	b = appendString(b, t.Owner)
	b = append(b, `, "expires_at": `...)
	b = tm(b, t.ExpiresAt)
	b = append(b, `, "created_at": `...)
	b = tm(b, &t.CreatedAt)
	b = append(b, `, "updated_at": `...)
	b = tm(b, &t.UpdatedAt)
	b = append(b, `, "deleted_at": null, "deleted": false, "image_id": `...)
	b = str(b, t.ImageID)
	b = append(b, `, "request_id": `...)
	b = str(b, t.RequestID)
	b = append(b, `, "user_id": `...)
	b = str(b, t.UserID)
	b = append(b, `, "input": `...)
	b = appendJSONObject(b, t.Input)
	b = append(b, `, "result": `...)
	b = appendJSONObject(b, t.Result)
	b = append(b, `, "message": `...)
	b = appendString(b, t.Message)
	return append(b, '}')
}

// imageTasks is GET /v2/images/{id}/tasks (ImagesController.get_task_info).
func (s *server) imageTasks(c echo.Context) error {
	ts, err := s.opts.Imports.ImageTasks(c.Request().Context(), callerOf(c), c.Param("id"))
	if errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrForbidden) {
		return &httpError{status: http.StatusNotFound, err: err}
	}
	if err != nil {
		return err
	}
	b := []byte(`{"tasks": [`)
	for i := range ts {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendTaskRecord(b, &ts[i])
	}
	return writeJSON(c, http.StatusOK, append(b, "]}"...))
}

var uuidLike = regexp.MustCompile(`^(?i:urn:uuid:)?\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$`)

// listTasks is GET /v2/tasks.
func (s *server) listTasks(c echo.Context) error {
	if err := s.tasksAllowed(c); err != nil {
		return err
	}
	raw := c.Request().URL.RawQuery
	if err := checkQueryCount(raw); err != nil {
		return err
	}
	p := parseParams(raw)
	q := domain.TaskQuery{Limit: s.opts.LimitDefault}
	limit, hasLimit := p.pop("limit")
	marker, hasMarker := p.pop("marker")
	if dir, ok := p.pop("sort_dir"); ok {
		q.SortDir = dir
	} else {
		q.SortDir = "desc"
	}
	if key, ok := p.pop("sort_key"); ok {
		q.SortKey = key
	}
	if q.SortDir != "asc" && q.SortDir != "desc" {
		return badRequest("Invalid sort direction: %s", q.SortDir)
	}
	for _, x := range p {
		switch x.key {
		case "status":
			if x.val != "" && !domain.TaskStatus(x.val).Valid() {
				return badRequest("Invalid status value: %s", x.val)
			}
			q.Status = domain.TaskStatus(x.val)
		case "type":
			if x.val != "" && x.val != domain.TaskTypeImport {
				return badRequest("Invalid type value: %s", x.val)
			}
			q.Type = x.val
		}
	}
	if hasMarker {
		if marker != "" && !uuidLike.MatchString(marker) {
			return badRequest("Invalid marker format")
		}
		q.Marker = marker
	}
	if hasLimit {
		n, err := strconv.Atoi(strings.TrimSpace(limit))
		if err != nil {
			return badRequest("limit param must be an integer")
		}
		if n < 0 {
			return badRequest("limit param must be positive")
		}
		q.Limit = n
	}
	q.Limit = min(q.Limit, s.opts.LimitMax)
	var ts []domain.Task
	if q.Limit > 0 {
		var err error
		ts, err = s.opts.Imports.Tasks(callerOf(c)).List(c.Request().Context(), q)
		if errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrInvalid) {
			return withStatus(http.StatusBadRequest, err)
		}
		if err != nil {
			return err
		}
	}
	links := parseParams(raw).collapse()
	links.pop("marker")
	b := []byte(`{"tasks": [`)
	for i := range ts {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendTask(b, &ts[i], true)
	}
	b = append(b, `], "first": `...)
	first := "/v2/tasks"
	if len(links) > 0 {
		first += "?" + links.encode()
	}
	b = appendString(b, first)
	b = append(b, `, "schema": "/v2/schemas/tasks"`...)
	if len(ts) > 0 && len(ts) == q.Limit {
		links = append(links, param{"marker", ts[len(ts)-1].ID})
		b = append(b, `, "next": `...)
		b = appendString(b, "/v2/tasks?"+links.encode())
	}
	return writeJSON(c, http.StatusOK, append(b, '}'))
}

// showTask is GET /v2/tasks/{id}.
func (s *server) showTask(c echo.Context) error {
	if err := s.tasksAllowed(c); err != nil {
		return err
	}
	if hasBody(c.Request()) {
		return explain(http.StatusBadRequest, "A body is not expected with this request.")
	}
	t, err := s.opts.Imports.Tasks(callerOf(c)).Get(c.Request().Context(), c.Param("task"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, appendTask(nil, &t, false))
}

// deleteTask is DELETE /v2/tasks/{id}: tasks are never deleted by hand.
func (s *server) deleteTask(c echo.Context) error {
	if err := s.tasksAllowed(c); err != nil {
		return err
	}
	return writePlainError(c, &plainError{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {"GET"}},
		text: "This operation is currently not permitted on Glance Tasks. They are auto deleted after reaching " +
			"the time based on their expires_at property."})
}

// createTask is POST /v2/tasks.
func (s *server) createTask(c echo.Context) error {
	if err := s.tasksAllowed(c); err != nil {
		return err
	}
	r := c.Request()
	body, err := requireJSON(r)
	if err != nil {
		return err
	}
	obj, ok := body.(object)
	if !ok {
		return badRequest("Unexpected body type. Expected list/dict.")
	}
	for _, k := range []string{"type", "input"} {
		if _, ok := obj.get(k); !ok {
			return badRequest("Task '%s' is required", k)
		}
	}
	if err := validateTask(obj); err != nil {
		return err
	}
	tv, _ := obj.get("type")
	iv, _ := obj.get("input")
	input, _ := plain(iv).(map[string]any)
	if input == nil {
		input = map[string]any{}
	}
	t, err := s.opts.Imports.CreateTask(r.Context(), callerOf(c), tv.(string), input)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, s.baseURL(r)+"/v2/tasks/"+t.ID)
	return writeJSON(c, http.StatusCreated, appendTask(nil, &t, false))
}

// validateTask checks a task body against the task schema, whose
// additionalProperties is false, as jsonschema reports it.
func validateTask(obj object) error {
	props := taskProperties(false)
	fix := func(err error) error {
		var he *httpError
		if errors.As(err, &he) {
			c := *he
			c.explanation = strings.Replace(c.explanation, "schema 'image'", "schema 'task'", 1)
			return &c
		}
		return err
	}
	for _, p := range props {
		v, ok := obj.get(p.key)
		if !ok {
			continue
		}
		if err := check(p.val.(object), v, "['properties']["+pyRepr(p.key)+"]", "["+pyRepr(p.key)+"]"); err != nil {
			return fix(err)
		}
	}
	var extra []string
	for _, m := range obj {
		if _, ok := props.get(m.key); !ok {
			extra = append(extra, pyRepr(m.key))
		}
	}
	if len(extra) > 0 {
		verb := "was"
		if len(extra) > 1 {
			verb = "were"
		}
		schema := object{{"additionalProperties", false}, {"name", "task"}, {"properties", props}}
		return fix(schemaError("Additional properties are not allowed ("+strings.Join(extra, ", ")+" "+verb+" unexpected)",
			"additionalProperties", "", pformat(schema, 0), "", obj))
	}
	return nil
}

// plainError is an error answer whose body is its text alone, in every
// format (webob's body_template of "${explanation}").
type plainError struct {
	status int
	header http.Header
	text   string
}

// writePlainError writes e as webob would, negotiating on Accept.
func writePlainError(c echo.Context, e *plainError) error {
	w, r := c.Response(), c.Request()
	for k, vs := range e.header {
		w.Header()[k] = vs
	}
	line, title := statusLine(e.status)
	var ctype, body string
	switch negotiate(r.Header.Values(echo.HeaderAccept)) {
	case "text/html":
		ctype, body = "text/html; charset=UTF-8", htmlPage(line, htmlEscape(e.text))
	case "application/json":
		var b strings.Builder
		b.WriteString(`{"message": `)
		writePyString(&b, e.text)
		b.WriteString(`, "code": `)
		writePyString(&b, line)
		b.WriteString(`, "title": `)
		writePyString(&b, title)
		b.WriteString("}")
		ctype, body = "application/json", b.String()
	default:
		ctype, body = "text/plain; charset=UTF-8", line+"\n\n"+stripTags(e.text)
	}
	w.Header().Set(echo.HeaderContentType, ctype)
	w.Header().Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, err := w.Write([]byte(body))
	return err
}
