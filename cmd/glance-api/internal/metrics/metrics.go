// Package metrics keeps glance-go's Prometheus metrics and serves them in
// the Prometheus text format. It is the only package that imports the
// Prometheus client; the API reports to it through api.Observer and the
// stores through stores.ErrorFunc.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/glance-go/glance-go/cmd/glance-api/internal/api"
)

// Metrics is one registry of glance-go's metrics.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	bytesIn     *prometheus.CounterVec
	bytesOut    *prometheus.CounterVec
	uploads     prometheus.Gauge
	storeErrors *prometheus.CounterVec
}

var _ api.Observer = (*Metrics)(nil)

// New returns the metrics, with the Go runtime's and the process's
// collectors registered beside glance-go's own.
func New(version string) *Metrics {
	route := []string{"method", "route"}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glance_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "glance_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by method and route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, route),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glance_http_request_body_bytes_total",
			Help: "Bytes of request bodies read, by method and route pattern.",
		}, route),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glance_http_response_body_bytes_total",
			Help: "Bytes of response bodies sent, by method and route pattern.",
		}, route),
		uploads: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "glance_uploads_in_flight",
			Help: "Image data uploads and stages being received.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glance_store_errors_total",
			Help: "Failures of the image stores, by store id and operation (put, get, read, delete, size).",
		}, []string{"store", "operation"}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "glance_build_info",
		Help:        "Always 1; the version label is glance-go's build.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	m.reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.uploads, m.storeErrors, info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text (or negotiated) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// methods are the method labels; any other method counts as "other", so
// that clients cannot grow the number of series at will.
var methods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true}

// Request implements api.Observer.
func (m *Metrics) Request(s api.RequestStats) {
	method := s.Method
	if !methods[method] {
		method = "other"
	}
	m.requests.WithLabelValues(method, s.Route, strconv.Itoa(s.Status)).Inc()
	m.duration.WithLabelValues(method, s.Route).Observe(s.Duration.Seconds())
	m.bytesIn.WithLabelValues(method, s.Route).Add(float64(s.BytesIn))
	m.bytesOut.WithLabelValues(method, s.Route).Add(float64(s.BytesOut))
}

// UploadStarted implements api.Observer.
func (m *Metrics) UploadStarted() func() {
	m.uploads.Inc()
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			m.uploads.Dec()
		}
	}
}

// StoreError counts a store's failure; it is a stores.ErrorFunc.
func (m *Metrics) StoreError(store, op string, _ error) {
	m.storeErrors.WithLabelValues(store, op).Inc()
}
