package rabbit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/notifier"
	"github.com/glance-go/glance-go/proxies/notifier/rabbit"
)

// event has a payload whose keys are in sorted order, the order Go writes
// a map in, so that Python's json.dumps of the same dict gives the same
// text.
var event = notifier.Event{
	MessageID:   "m1",
	PublisherID: "image.localhost",
	EventType:   "image.create",
	Priority:    "INFO",
	Timestamp:   time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC),
	Payload: map[string]any{
		"name": "café <x> & \U0001F600\n\"q\"",
		"ok":   true,
		"size": 3,
		"tags": []string{},
		"x":    nil,
	},
}

var uniqueIDRE = regexp.MustCompile(`"_unique_id\\*": \\*"([0-9a-f]{32})\\*"`)

// withoutUniqueID checks the random _unique_id and replaces it by "u".
func withoutUniqueID(t *testing.T, b []byte) string {
	t.Helper()
	m := uniqueIDRE.FindSubmatchIndex(b)
	if m == nil {
		t.Fatalf("no _unique_id of 32 hex digits in %s", b)
	}
	return string(b[:m[2]]) + "u" + string(b[m[3]:])
}

// The expected bodies are what Python's json.dumps writes for the same
// message, as oslo.messaging and kombu call it.
func TestEncodeV2(t *testing.T) {
	b, err := rabbit.Encode(event, rabbit.FormatV2)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"oslo.version": "2.0", "oslo.message": "{\"message_id\": \"m1\", \"publisher_id\": \"image.localhost\", ` +
		`\"event_type\": \"image.create\", \"priority\": \"INFO\", \"payload\": {\"name\": \"caf\\u00e9 <x> & \\ud83d\\ude00\\n\\\"q\\\"\", ` +
		`\"ok\": true, \"size\": 3, \"tags\": [], \"x\": null}, \"timestamp\": \"2024-01-02 03:04:05.000006\", \"_unique_id\": \"u\"}"}`
	if got := withoutUniqueID(t, b); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestEncodeV1(t *testing.T) {
	b, err := rabbit.Encode(event, rabbit.FormatV1)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"message_id": "m1", "publisher_id": "image.localhost", "event_type": "image.create", "priority": "INFO", ` +
		`"payload": {"name": "caf\u00e9 <x> & \ud83d\ude00\n\"q\"", "ok": true, "size": 3, "tags": [], "x": null}, ` +
		`"timestamp": "2024-01-02 03:04:05.000006", "_unique_id": "u"}`
	if got := withoutUniqueID(t, b); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestEncodeStringPayloadAndWholeSecond(t *testing.T) {
	ev := event
	ev.Payload = "Failed to upload image data for image x: boom"
	ev.Priority = "ERROR"
	ev.Timestamp = time.Date(2024, 1, 2, 3, 4, 5, 999, time.UTC) // under a microsecond
	b, err := rabbit.Encode(ev, rabbit.FormatV1)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"message_id": "m1", "publisher_id": "image.localhost", "event_type": "image.create", "priority": "ERROR", ` +
		`"payload": "Failed to upload image data for image x: boom", "timestamp": "2024-01-02 03:04:05", "_unique_id": "u"}`
	if got := withoutUniqueID(t, b); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestUniqueIDDiffers(t *testing.T) {
	a, _ := rabbit.Encode(event, rabbit.FormatV1)
	b, _ := rabbit.Encode(event, rabbit.FormatV1)
	if string(uniqueIDRE.FindSubmatch(a)[1]) == string(uniqueIDRE.FindSubmatch(b)[1]) {
		t.Error("two messages share a _unique_id")
	}
}

func TestRoutingKey(t *testing.T) {
	for _, tc := range []struct{ topic, prio, want string }{
		{"notifications", "INFO", "notifications.info"},
		{"notifications", "ERROR", "notifications.error"},
		{"glance_events", "WARN", "glance_events.warn"},
	} {
		if got := rabbit.RoutingKey(tc.topic, tc.prio); got != tc.want {
			t.Errorf("RoutingKey(%q, %q) = %q, want %q", tc.topic, tc.prio, got, tc.want)
		}
	}
}

func TestPublishingProperties(t *testing.T) {
	p := rabbit.Publishing([]byte("{}"))
	if p.ContentType != "application/json" || p.ContentEncoding != "utf-8" || p.DeliveryMode != 2 || p.Priority != 0 {
		t.Errorf("properties = %+v", p)
	}
}

// payloadKeys returns the keys of the message's payload object in the
// order they are written.
func payloadKeys(t *testing.T, body []byte) []string {
	t.Helper()
	var msg struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(msg.Payload))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("payload is not an object: %s", msg.Payload)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestPayloadKeyOrder(t *testing.T) {
	name, owner := "n", "p"
	img := notifier.ImagePayload(domain.Meta{ID: "i", Name: &name, Owner: &owner, Status: domain.StatusActive,
		Properties: map[string]string{"b": "2", "a": "1"}, Tags: []string{"t"}})
	img["os_glance_importing_to_stores"] = []string{}
	img["os_glance_failed_import"] = []string{}
	img["zz_extra"] = 1
	member := notifier.MemberPayload(domain.Member{ImageID: "i", MemberID: "m", Status: "pending"})
	send := map[string]any{"receiver_user_id": "u", "receiver_tenant_id": "p", "owner_id": "p", "image_id": "i", "bytes_sent": 3}
	for _, tc := range []struct {
		payload map[string]any
		want    string
	}{
		{img, "id name status created_at updated_at min_disk min_ram protected checksum owner disk_format container_format " +
			"size virtual_size is_public visibility properties tags deleted deleted_at os_glance_importing_to_stores os_glance_failed_import zz_extra"},
		{member, "image_id member_id status created_at updated_at deleted deleted_at"},
		{send, "bytes_sent image_id owner_id receiver_tenant_id receiver_user_id"},
	} {
		e := event
		e.Payload = tc.payload
		b, err := rabbit.Encode(e, rabbit.FormatV1)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(payloadKeys(t, b), " "); got != tc.want {
			t.Errorf("payload keys\n got %s\nwant %s", got, tc.want)
		}
	}
}

// TestEncodeAsPython has Python's json module read the body and write it
// again, as oslo.messaging would have written it: the two must be the
// same bytes, envelope and message.
func TestEncodeAsPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("GLANCE_TEST_STRICT") != "" {
			t.Fatal("python3 is not installed (GLANCE_TEST_STRICT is set)")
		}
		t.Skip("python3 is not installed")
	}
	name := "Ünïcode 名前 \U0001F600 <b>&\"\\\t"
	owner := "p"
	size := int64(1 << 40)
	p := notifier.ImagePayload(domain.Meta{ID: "i", Name: &name, Owner: &owner, Status: domain.StatusActive, Size: &size,
		Properties: map[string]string{"k\u00e9y": "v\u2028", "a": "</script>"}, Tags: []string{"t1", "t2"}})
	e := event
	e.Payload = p
	for _, f := range []rabbit.Format{rabbit.FormatV1, rabbit.FormatV2} {
		body, err := rabbit.Encode(e, f)
		if err != nil {
			t.Fatal(err)
		}
		script := `import json, sys
body = sys.stdin.buffer.read().decode("utf-8")
d = json.loads(body)
if "oslo.message" in d:
    inner = d["oslo.message"]
    assert json.dumps(json.loads(inner)) == inner, "message differs: " + json.dumps(json.loads(inner))
sys.stdout.write(json.dumps(d))`
		cmd := exec.Command(py, "-c", script)
		cmd.Stdin = bytes.NewReader(body)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("format %d: python: %v\n%s", f, err, stderr.String())
		}
		if string(out) != string(body) {
			t.Errorf("format %d: Python writes\n%s\nwe wrote\n%s", f, out, body)
		}
	}
}
