package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// fakeImporter records import requests and serves tasks from memory.
type fakeImporter struct {
	mu    sync.Mutex
	reqs  []domain.ImportRequest
	err   error
	tasks []domain.Task
}

func (f *fakeImporter) Import(_ context.Context, _ *domain.Caller, id string, req domain.ImportRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return f.err
}

func (f *fakeImporter) ImageTasks(_ context.Context, _ *domain.Caller, id string) ([]domain.Task, error) {
	if id != "known" {
		return nil, domain.Errorf(domain.ErrNotFound, "No image found with ID %s", id)
	}
	return f.tasks, nil
}

func (f *fakeImporter) Tasks(*domain.Caller) domain.TaskRepo { return fakeTasks{f} }

func (f *fakeImporter) CreateTask(_ context.Context, c *domain.Caller, typ string, input map[string]any) (domain.Task, error) {
	t, err := domain.NewTask(typ, c, "", input)
	if err != nil {
		return t, err
	}
	f.tasks = append(f.tasks, t)
	return t, nil
}

type fakeTasks struct{ f *fakeImporter }

func (r fakeTasks) Get(_ context.Context, id string) (domain.Task, error) {
	for _, t := range r.f.tasks {
		if t.ID == id {
			return t, nil
		}
	}
	return domain.Task{}, domain.Errorf(domain.ErrNotFound, "Task with the given id %s was not found", id)
}

func (r fakeTasks) List(_ context.Context, q domain.TaskQuery) ([]domain.Task, error) {
	if q.Marker != "" {
		if _, err := r.Get(context.Background(), q.Marker); err != nil {
			return nil, err
		}
	}
	return r.f.tasks[:min(q.Limit, len(r.f.tasks))], nil
}

func (r fakeTasks) ListByImage(context.Context, string) ([]domain.Task, error) { return r.f.tasks, nil }
func (r fakeTasks) Add(context.Context, domain.Task) error                     { return nil }
func (r fakeTasks) Save(context.Context, domain.Task) error                    { return nil }
func (r fakeTasks) Remove(context.Context, string) error                       { return nil }
func (r fakeTasks) Progress(context.Context, string, string) error             { return nil }

// explanation returns the explanation of a JSON error body: its message
// without webob's trailing separator.
func explanation(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	msg := jsonMessage(t, w)
	if !strings.HasSuffix(msg, "<br /><br />\n\n\n") {
		t.Errorf("message %q lacks webob's separator", msg)
	}
	return strings.TrimSuffix(msg, "<br /><br />\n\n\n")
}

// handOverErr asks for the import to go to another worker.
type handOverErr string

func (e handOverErr) Error() string     { return "staged elsewhere" }
func (e handOverErr) StageHost() string { return string(e) }

func importHarness(t *testing.T, methods ...string) (*harness, *fakeImporter) {
	t.Helper()
	imp := &fakeImporter{}
	if methods == nil {
		methods = []string{"glance-direct", "web-download", "copy-image"}
	}
	h := newHarness(t, Options{ImportMethods: methods, Imports: imp,
		Authorize: func(c *domain.Caller, rule string) bool { return rule != "tasks_api_access" || c.HasRole("admin") }})
	return h, imp
}

func TestInfoImport(t *testing.T) {
	h, _ := importHarness(t, "glance-direct", "copy-image")
	w := h.do("GET", "/v2/info/import", "", tenantA...)
	want := `{"import-methods": {"description": "Import methods available.", "type": "array", "value": ["glance-direct", "copy-image"]}}`
	if w.Code != http.StatusOK || w.Body.String() != want {
		t.Errorf("GET /v2/info/import: %d %s", w.Code, w.Body)
	}
}

func TestInfoUsage(t *testing.T) {
	h, _ := importHarness(t)
	w := h.do("GET", "/v2/info/usage", "", tenantA...)
	if w.Code != http.StatusOK || w.Body.String() != `{"usage": {}}` || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("GET /v2/info/usage: %d %s %q", w.Code, w.Body, w.Header().Get("Content-Type"))
	}
}

func TestImportBody(t *testing.T) {
	h, imp := importHarness(t)
	id := h.create(tenantA, `{"name": "x"}`)
	cases := []struct {
		name    string
		body    string
		headers []string
		code    int
		msg     string
		check   func(t *testing.T, r domain.ImportRequest)
	}{
		{name: "no method", body: `{"stores": ["a"]}`, code: 400, msg: "Import request requires a 'method' field."},
		{name: "no name", body: `{"method": {"uri": "x"}}`, code: 400, msg: "Import request requires a 'name' field."},
		{name: "unknown method", body: `{"method": {"name": "glance-download"}}`, code: 400,
			msg: "Unknown import method name 'glance-download'."},
		{name: "number as method", body: `{"method": {"name": 7}}`, code: 400, msg: "Unknown import method name '7'."},
		{name: "all_stores not boolean", body: `{"method": {"name": "copy-image"}, "all_stores": "yes"}`, code: 400,
			msg: "'all_stores' must be boolean value only"},
		{name: "must_succeed not boolean", body: `{"method": {"name": "copy-image"}, "all_stores_must_succeed": 1}`, code: 400,
			msg: "'all_stores_must_succeed' must be boolean value only"},
		{name: "stores not a list", body: `{"method": {"name": "copy-image"}, "stores": "a"}`, code: 400},
		{name: "no body", body: "", code: 400, msg: "Body expected in request."},
		{name: "list body", body: `[]`, code: 400},
		{name: "web-download", body: `{"method": {"name": "web-download", "uri": "http://example.com/i"}, "stores": ["a", "b"], "all_stores_must_succeed": false}`,
			headers: []string{"X-Image-Meta-Store", "c"}, code: 202, check: func(t *testing.T, r domain.ImportRequest) {
				want := domain.ImportRequest{Method: "web-download", URI: "http://example.com/i", Stores: []string{"a", "b"},
					HasStores: true, StoreHeader: "c", HasStoreHeader: true, AllStoresMustSucceed: false,
					Body: map[string]any{"method": map[string]any{"name": "web-download", "uri": "http://example.com/i"},
						"stores": []any{"a", "b"}, "all_stores_must_succeed": false}}
				if !reflect.DeepEqual(r, want) {
					t.Errorf("request = %+v\nwant      %+v", r, want)
				}
			}},
		{name: "defaults", body: `{"method": {"name": "glance-direct"}}`, code: 202, check: func(t *testing.T, r domain.ImportRequest) {
			if !r.AllStoresMustSucceed || r.AllStores || r.HasStores || r.HasStoreHeader {
				t.Errorf("request = %+v", r)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(imp.reqs)
			w := h.do("POST", "/v2/images/"+id+"/import", tc.body, with(with(tenantA, "Accept", "application/json"), tc.headers...)...)
			if w.Code != tc.code {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.code)
			}
			if tc.msg != "" && explanation(t, w) != tc.msg {
				t.Errorf("message %q, want %q", explanation(t, w), tc.msg)
			}
			if tc.code != 202 {
				if len(imp.reqs) != before {
					t.Error("a refused body reached the importer")
				}
				return
			}
			if w.Body.Len() != 0 || w.Header().Get("Content-Length") != "0" {
				t.Errorf("202 with a body: %q", w.Body)
			}
			tc.check(t, imp.reqs[len(imp.reqs)-1])
		})
	}
	imp.err = domain.Errorf(domain.ErrConflict, "Image has active task")
	w := h.do("POST", "/v2/images/"+id+"/import", `{"method": {"name": "glance-direct"}}`, with(tenantA, "Accept", "application/json")...)
	if w.Code != http.StatusConflict || explanation(t, w) != "Image has active task" {
		t.Errorf("importer conflict: %d %s", w.Code, w.Body)
	}
}

func TestImportHandOver(t *testing.T) {
	// The worker holding the staged data, reached over loopback.
	var got struct {
		path, body, project string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 1024)
		n, _ := r.Body.Read(b)
		got.path, got.body, got.project = r.URL.Path, string(b[:n]), r.Header.Get("X-Project-Id")
		w.Header().Set("X-Openstack-Request-Id", "req-remote")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	remote := srv.URL
	h, imp := importHarness(t)
	id := h.create(tenantA, `{"name": "x"}`)
	imp.err = handOverErr(remote)
	w := h.do("POST", "/v2/images/"+id+"/import", `{"method": {"name": "glance-direct"}}`, tenantA...)
	if w.Code != http.StatusAccepted || w.Header().Get("X-Openstack-Request-Id") != "req-remote" {
		t.Fatalf("handed-over import: %d %v", w.Code, w.Header())
	}
	if got.path != "/v2/images/"+id+"/import" || got.body != `{"method": {"name": "glance-direct"}}` || got.project != "tenant-a" {
		t.Errorf("the other worker got %+v", got)
	}
	imp.err = handOverErr("http://127.0.0.1:1")
	w = h.do("POST", "/v2/images/"+id+"/import", `{"method": {"name": "glance-direct"}}`, with(tenantA, "Accept", "application/json")...)
	if w.Code != http.StatusGatewayTimeout || explanation(t, w) != "Stage host is unavailable" {
		t.Errorf("unreachable worker: %d %s", w.Code, w.Body)
	}
}

func TestStageRequest(t *testing.T) {
	h, _ := importHarness(t)
	id := h.create(tenantA, `{"name": "x"}`)
	w := h.do("PUT", "/v2/images/"+id+"/stage", "data", with(tenantA, "Content-Type", "text/plain")...)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("wrong media type: %d", w.Code)
	}
	w = h.do("PUT", "/v2/images/"+id+"/stage", "data", with(tenantA, "Content-Type", "application/octet-stream",
		"X-Openstack-Image-Size", "many")...)
	if w.Code != http.StatusBadRequest {
		t.Errorf("bad size header: %d", w.Code)
	}
	// The fake images below have no staging area.
	w = h.do("PUT", "/v2/images/"+id+"/stage", "data", with(tenantA, "Content-Type", "application/octet-stream")...)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("stage without a staging area: %d %s", w.Code, w.Body)
	}

	h, _ = importHarness(t, "web-download")
	id = h.create(tenantA, `{"name": "x"}`)
	w = h.do("PUT", "/v2/images/"+id+"/stage", "data", with(tenantA, "Content-Type", "application/octet-stream", "Accept", "application/json")...)
	if w.Code != http.StatusNotFound || explanation(t, w) != "'glance-direct' method is not available at this site." {
		t.Errorf("glance-direct disabled: %d %s", w.Code, w.Body)
	}
}

func TestTaskSchemas(t *testing.T) {
	h, _ := importHarness(t)
	for _, tc := range []struct{ path, golden string }{
		{"/v2/schemas/task", "schema-task-zed.json"},
		{"/v2/schemas/tasks", "schema-tasks-zed.json"},
	} {
		w := h.do("GET", tc.path, "", tenantA...)
		golden, err := readTestdata(tc.golden)
		if err != nil {
			t.Fatal(err)
		}
		// The newest Glance knows one more task type than Zed.
		golden = []byte(strings.ReplaceAll(string(golden), `["import", "api_image_import"]`,
			`["import", "api_image_import", "location_import"]`))
		var got, want any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(golden, &want); err != nil {
			t.Fatal(err)
		}
		if w.Code != 200 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s differs from %s:\n%s", tc.path, tc.golden, w.Body)
		}
	}
}

func TestTasksAPI(t *testing.T) {
	h, imp := importHarness(t)
	json := with(admin, "Accept", "application/json")
	// Only admins reach the tasks API.
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v2/tasks", ""}, {"GET", "/v2/tasks/x", ""}, {"DELETE", "/v2/tasks/x", ""},
		{"POST", "/v2/tasks", `{"type": "import", "input": {}}`},
	} {
		w := h.do(r.method, r.path, r.body, with(tenantA, "Accept", "application/json")...)
		if w.Code != 403 || explanation(t, w) != "You are not authorized to complete tasks_api_access action." {
			t.Errorf("%s %s as a member: %d %s", r.method, r.path, w.Code, w.Body)
		}
	}
	cases := []struct {
		name string
		body string
		code int
		msg  string
	}{
		{"no type", `{"input": {}}`, 400, "Task 'type' is required"},
		{"no input", `{"type": "import"}`, 400, "Task 'input' is required"},
		{"no body", ``, 400, "Body expected in request."},
		{"bad type", `{"type": "clone", "input": {}}`, 400, ""},
		{"extra key", `{"type": "import", "input": {}, "foo": 1}`, 400, ""},
		{"created", `{"type": "api_image_import", "input": {"image_id": "i"}}`, 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do("POST", "/v2/tasks", tc.body, json...)
			if w.Code != tc.code {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.code)
			}
			if tc.msg != "" && explanation(t, w) != tc.msg {
				t.Errorf("message %q", explanation(t, w))
			}
			if tc.name == "extra key" && !strings.HasPrefix(explanation(t, w),
				"Provided object does not match schema 'task': Additional properties are not allowed ('foo' was unexpected)") {
				t.Errorf("message %q", explanation(t, w))
			}
			if tc.code == 201 {
				out := decode(t, w)
				if !strings.HasSuffix(w.Header().Get("Location"), "/v2/tasks/"+out["id"].(string)) || out["status"] != "pending" ||
					out["schema"] != "/v2/schemas/task" || out["result"] != nil || out["message"] != "" {
					t.Errorf("created task %v, Location %q", out, w.Header().Get("Location"))
				}
			}
		})
	}
	tk := imp.tasks[0]
	w := h.do("GET", "/v2/tasks/"+tk.ID, "", admin...)
	body := w.Body.String()
	wantPrefix := `{"id": "` + tk.ID + `", "input": {"image_id": "i"}, "type": "api_image_import", "status": "pending", "owner": "admin-p", "message": "", "result": null, "created_at": "`
	if w.Code != 200 || !strings.HasPrefix(body, wantPrefix) || !strings.Contains(body, `"self": "/v2/tasks/`+tk.ID+`", "schema": "/v2/schemas/task"`) {
		t.Errorf("GET task: %d %s", w.Code, body)
	}
	w = h.do("GET", "/v2/tasks/nope", "", json...)
	if w.Code != 404 || explanation(t, w) != "Task with the given id nope was not found" {
		t.Errorf("missing task: %d %s", w.Code, w.Body)
	}
	w = h.do("DELETE", "/v2/tasks/"+tk.ID, "", admin...)
	if w.Code != 405 || w.Header().Get("Allow") != "GET" || w.Body.String() != "405 Method Not Allowed\n\nThis operation is "+
		"currently not permitted on Glance Tasks. They are auto deleted after reaching the time based on their expires_at property." {
		t.Errorf("DELETE task: %d %v %q", w.Code, w.Header(), w.Body)
	}

	// Listing.
	for _, bad := range []struct{ query, msg string }{
		{"sort_dir=up", "Invalid sort direction: up"},
		{"status=done", "Invalid status value: done"},
		{"type=api_image_import", "Invalid type value: api_image_import"},
		{"marker=abc", "Invalid marker format"},
		{"limit=x", "limit param must be an integer"},
		{"limit=-1", "limit param must be positive"},
		{"marker=00000000-0000-4000-8000-000000000000", "Task with the given id 00000000-0000-4000-8000-000000000000 was not found"},
	} {
		w := h.do("GET", "/v2/tasks?"+bad.query, "", json...)
		if w.Code != 400 || explanation(t, w) != bad.msg {
			t.Errorf("GET /v2/tasks?%s: %d %s", bad.query, w.Code, w.Body)
		}
	}
	w = h.do("GET", "/v2/tasks?limit=1&status=pending", "", admin...)
	out := decode(t, w)
	tasks, _ := out["tasks"].([]any)
	if w.Code != 200 || len(tasks) != 1 || out["first"] != "/v2/tasks?limit=1&status=pending" ||
		out["next"] != "/v2/tasks?limit=1&status=pending&marker="+tk.ID || out["schema"] != "/v2/schemas/tasks" {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	stub := tasks[0].(map[string]any)
	if _, ok := stub["input"]; ok {
		t.Errorf("a listed task carries its input: %v", stub)
	}
}

func TestImageTasksAPI(t *testing.T) {
	h, imp := importHarness(t)
	exp := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
	imp.tasks = []domain.Task{{ID: "t1", Type: "api_image_import", Status: domain.TaskSuccess, Owner: "p",
		CreatedAt: exp, UpdatedAt: exp, ExpiresAt: &exp, ImageID: "known", Input: map[string]any{"backend": []any{nil}},
		Result: map[string]any{"image_id": "known"}}}
	w := h.do("GET", "/v2/images/known/tasks", "", tenantA...)
	want := `{"tasks": [{"id": "t1", "type": "api_image_import", "status": "success", "owner": "p", ` +
		`"expires_at": "2026-01-02T03:04:05.600000", "created_at": "2026-01-02T03:04:05.600000", ` +
		`"updated_at": "2026-01-02T03:04:05.600000", "deleted_at": null, "deleted": false, "image_id": "known", ` +
		`"request_id": null, "user_id": null, "input": {"backend": [null]}, "result": {"image_id": "known"}, "message": ""}]}`
	if w.Code != 200 || w.Body.String() != want {
		t.Errorf("GET /v2/images/known/tasks: %d\n%s\nwant\n%s", w.Code, w.Body, want)
	}
	w = h.do("GET", "/v2/images/other/tasks", "", with(tenantA, "Accept", "application/json")...)
	if w.Code != 404 || explanation(t, w) != "The resource could not be found." {
		t.Errorf("unknown image: %d %s", w.Code, w.Body)
	}
}
