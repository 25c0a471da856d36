package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTasks checks the tasks API: admin-only access, the task of an
// import, listing and paging, DELETE refused, and a legacy import task.
func TestTasks(t *testing.T) {
	s := startImportServer(t, "tasks", "trusted-auth", false)
	for _, path := range []string{"/v2/schemas/task", "/v2/schemas/tasks"} {
		sch := s.do(t, tenantA, "GET", path, nil).want(t, 200).object(t)
		if sch["name"] != strings.TrimPrefix(path, "/v2/schemas/") {
			t.Errorf("%s: %v", path, sch)
		}
	}
	r := s.do(t, tenantA, "GET", "/v2/tasks", nil, hdr("Accept", "application/json")).want(t, 403)
	if msg := errorMessage(t, r); msg != "You are not authorized to complete tasks_api_access action." {
		t.Errorf("tasks as a member: %q", msg)
	}

	// The task of an import.
	data := randomBytes(4096)
	id := s.rawImage(t, tenantA, nil)["id"].(string)
	s.stage(t, tenantA, id, data).want(t, 204)
	s.importImage(t, tenantA, id, map[string]any{"method": map[string]any{"name": "glance-direct"}}).want(t, 202)
	s.waitImage(t, tenantA, id, "active")
	tk := s.waitTask(t, tenantA, id)
	taskID := tk["id"].(string)
	got := s.do(t, admin, "GET", "/v2/tasks/"+taskID, nil).want(t, 200).object(t)
	input, _ := got["input"].(map[string]any)
	if got["status"] != "success" || got["owner"] != tenantA.Project || got["image_id"] != id ||
		got["user_id"] != tenantA.User || got["self"] != "/v2/tasks/"+taskID || got["schema"] != "/v2/schemas/task" ||
		input["image_id"] != id || got["message"] != "" {
		t.Errorf("GET /v2/tasks/%s: %v", taskID, got)
	}
	exp, err := time.Parse("2006-01-02T15:04:05Z", got["expires_at"].(string))
	if err != nil || time.Until(exp) < 47*time.Hour {
		t.Errorf("expires_at %v (%v), want about 48 hours ahead", got["expires_at"], err)
	}
	r = s.do(t, admin, "DELETE", "/v2/tasks/"+taskID, nil).want(t, http.StatusMethodNotAllowed)
	if r.Header.Get("Allow") != "GET" || !strings.HasSuffix(string(r.Body), "They are auto deleted after reaching the time "+
		"based on their expires_at property.") {
		t.Errorf("DELETE: %v %q", r.Header, r.Body)
	}
	list := s.do(t, admin, "GET", "/v2/tasks?limit=1", nil).want(t, 200).object(t)
	tasks, _ := list["tasks"].([]any)
	if len(tasks) != 1 || list["first"] != "/v2/tasks?limit=1" || list["schema"] != "/v2/schemas/tasks" {
		t.Errorf("GET /v2/tasks?limit=1: %v", list)
	}
	if _, ok := tasks[0].(map[string]any)["input"]; ok {
		t.Errorf("a listed task carries its input: %v", tasks[0])
	}
	r = s.do(t, admin, "GET", "/v2/tasks?marker=nope", nil, hdr("Accept", "application/json")).want(t, 400)
	if msg := errorMessage(t, r); msg != "Invalid marker format" {
		t.Errorf("bad marker: %q", msg)
	}

	// A legacy import task creates an image and fills it from a URL.
	s.web.put("/legacy.raw", data)
	// A request id of max_request_id_length (64) is the task's as sent;
	// only the response header gets the "req-" prefix.
	reqID := strings.Repeat("x", 64)
	r = s.do(t, admin, "POST", "/v2/tasks", map[string]any{"type": "import", "input": map[string]any{
		"import_from": s.web.URL + "/legacy.raw", "import_from_format": "raw",
		"image_properties": map[string]any{"name": uniq("legacy"), "disk_format": "raw", "container_format": "bare"}}},
		hdr("X-Openstack-Request-Id", reqID)).want(t, 201)
	created := r.object(t)
	if created["request_id"] != reqID || r.Header.Get("X-Openstack-Request-Id") != "req-"+reqID {
		t.Errorf("task request_id %v, header %q; want %s as sent, and with req- in the header",
			created["request_id"], r.Header.Get("X-Openstack-Request-Id"), reqID)
	}
	if loc := r.Header.Get("Location"); !strings.HasSuffix(loc, "/v2/tasks/"+created["id"].(string)) {
		t.Errorf("Location %q", loc)
	}
	deadline := time.Now().Add(60 * time.Second)
	for created["status"] != "success" && created["status"] != "failure" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		created = s.do(t, admin, "GET", "/v2/tasks/"+created["id"].(string), nil).want(t, 200).object(t)
	}
	result, _ := created["result"].(map[string]any)
	imageID, _ := result["image_id"].(string)
	if created["status"] != "success" || imageID == "" {
		t.Fatalf("legacy import task: %v", created)
	}
	s.cleanup(t, imageID)
	if img := s.show(t, admin, imageID); img["status"] != "active" || img["checksum"] != md5hex(data) {
		t.Errorf("image of the legacy import: %v", img)
	}
	r = s.do(t, admin, "POST", "/v2/tasks", map[string]any{"type": "import", "input": map[string]any{}},
		hdr("Accept", "application/json")).want(t, 400)
	if msg := errorMessage(t, r); msg != "Invalid location: None" {
		t.Errorf("legacy import without import_from: %q", msg)
	}
}
