package rabbit_test

import (
	"regexp"
	"testing"
	"time"

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
