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
