package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glance-go/glance-go/cmd/glance-api/internal/api"
)

func TestMetrics(t *testing.T) {
	m := New("test")
	m.Request(api.RequestStats{Method: "PUT", Route: "/v2/images/:id/file", Status: 204, BytesIn: 10, Duration: time.Millisecond})
	m.Request(api.RequestStats{Method: "FROB", Route: "unmatched", Status: 501})
	done := m.UploadStarted()
	done()
	done() // once only
	m.StoreError("fast", "put", nil)

	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(w.Body)
	text := string(b)
	for _, want := range []string{
		`glance_http_requests_total{code="204",method="PUT",route="/v2/images/:id/file"} 1`,
		`glance_http_requests_total{code="501",method="other",route="unmatched"} 1`,
		`glance_http_request_body_bytes_total{method="PUT",route="/v2/images/:id/file"} 10`,
		`glance_http_request_duration_seconds_count{method="PUT",route="/v2/images/:id/file"} 1`,
		"glance_uploads_in_flight 0",
		`glance_store_errors_total{operation="put",store="fast"} 1`,
		`glance_build_info{version="test"} 1`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the metrics", want)
		}
	}
}

func TestNotifications(t *testing.T) {
	m := New("test")
	scrape := func() string {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		return w.Body.String()
	}
	if text := scrape(); strings.Contains(text, "glance_notifications_") {
		t.Errorf("notification metrics without a notification sink:\n%s", text)
	}
	st := NotificationStats{Published: 7, Retried: 3, Dropped: 2, Undelivered: 1, Queued: 4}
	m.Notifications(func() NotificationStats { return st })
	for _, tc := range []struct {
		connected bool
		want      []string
	}{
		{false, []string{"glance_notifications_published_total 7", "glance_notifications_retried_total 3",
			"glance_notifications_dropped_total 2", "glance_notifications_undelivered_total 1",
			"glance_notifications_queued 4", "glance_notifications_connected 0",
			"# TYPE glance_notifications_published_total counter", "# TYPE glance_notifications_queued gauge"}},
		{true, []string{"glance_notifications_connected 1"}},
	} {
		st.Connected = tc.connected
		text := scrape()
		for _, want := range tc.want {
			if !strings.Contains(text, want+"\n") {
				t.Errorf("connected %v: no %q in the metrics", tc.connected, want)
			}
		}
	}
}
