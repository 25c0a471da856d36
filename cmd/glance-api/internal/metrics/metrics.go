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

// NotificationStats is what the message bus's notification sink counts,
// read at each scrape.
type NotificationStats struct {
	Published   uint64 // messages the broker confirmed
	Retried     uint64 // attempts to send a message again
	Dropped     uint64 // messages refused: queue full or sink closed
	Undelivered uint64 // messages given up after their retries
	Queued      int    // messages waiting now
	Connected   bool   // whether the sink holds a connection now
}

// Notifications exports the notification sink's counters, calling stats
// at each scrape: glance_notifications_published_total, _retried_total,
// _dropped_total, _undelivered_total, and the gauges
// glance_notifications_queued and glance_notifications_connected (1 or 0).
// It is called once at most.
func (m *Metrics) Notifications(stats func() NotificationStats) {
	m.reg.MustRegister(notificationCollector(stats))
}

var (
	notePublished = prometheus.NewDesc("glance_notifications_published_total",
		"Notifications the message broker confirmed.", nil, nil)
	noteRetried = prometheus.NewDesc("glance_notifications_retried_total",
		"Attempts to send a notification again after a refused or lost connection or a nack.", nil, nil)
	noteDropped = prometheus.NewDesc("glance_notifications_dropped_total",
		"Notifications refused because the queue was full or the server was stopping.", nil, nil)
	noteUndelivered = prometheus.NewDesc("glance_notifications_undelivered_total",
		"Notifications given up after their retries, or left queued at shutdown.", nil, nil)
	noteQueued = prometheus.NewDesc("glance_notifications_queued",
		"Notifications waiting to be sent, the one being sent included.", nil, nil)
	noteConnected = prometheus.NewDesc("glance_notifications_connected",
		"1 while the notifier holds a connection to the message broker, else 0.", nil, nil)
)

// notificationCollector reads NotificationStats once per scrape, so that
// the samples of one scrape agree with each other.
type notificationCollector func() NotificationStats

func (f notificationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{notePublished, noteRetried, noteDropped, noteUndelivered, noteQueued, noteConnected} {
		ch <- d
	}
}

func (f notificationCollector) Collect(ch chan<- prometheus.Metric) {
	s := f()
	connected := 0.0
	if s.Connected {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(notePublished, prometheus.CounterValue, float64(s.Published))
	ch <- prometheus.MustNewConstMetric(noteRetried, prometheus.CounterValue, float64(s.Retried))
	ch <- prometheus.MustNewConstMetric(noteDropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(noteUndelivered, prometheus.CounterValue, float64(s.Undelivered))
	ch <- prometheus.MustNewConstMetric(noteQueued, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(noteConnected, prometheus.GaugeValue, connected)
}

// RecordCacheStats is what the SQLite record cache counts, read at each
// scrape.
type RecordCacheStats struct {
	Hits, Misses int64
	Entries      int
}

// RecordCache exports the SQLite record cache's counters, calling stats at
// each scrape: glance_go_record_cache_hits_total, _misses_total and the
// gauge glance_go_record_cache_entries. It is called once at most.
func (m *Metrics) RecordCache(stats func() RecordCacheStats) {
	m.reg.MustRegister(recordCacheCollector(stats))
}

var (
	cacheHits = prometheus.NewDesc("glance_go_record_cache_hits_total",
		"Image records a show or a listing found in the SQLite record cache.", nil, nil)
	cacheMisses = prometheus.NewDesc("glance_go_record_cache_misses_total",
		"Image records a show or a listing looked for in the SQLite record cache and read from the database.", nil, nil)
	cacheEntries = prometheus.NewDesc("glance_go_record_cache_entries",
		"Image records the SQLite record cache holds.", nil, nil)
)

type recordCacheCollector func() RecordCacheStats

func (f recordCacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheHits, cacheMisses, cacheEntries} {
		ch <- d
	}
}

func (f recordCacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := f()
	ch <- prometheus.MustNewConstMetric(cacheHits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(cacheMisses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(cacheEntries, prometheus.GaugeValue, float64(s.Entries))
}

// PoolStats is what the database connection pool counts, read at each
// scrape.
type PoolStats struct {
	Open, InUse, Idle int
	Waits             int64   // calls that waited for a connection
	WaitSeconds       float64 // their total wait
	PoolTimeouts      int64   // calls that waited pool_timeout in vain
	DeadlockRetries   int64   // MySQL transactions run again after a deadlock
}

// Pool exports the database connection pool's figures, calling stats at
// each scrape: the gauges glance_go_db_connections{state="in_use"|"idle"}
// and the counters glance_go_db_waits_total, _wait_seconds_total,
// _pool_timeouts_total and _deadlock_retries_total. It is called once at
// most.
func (m *Metrics) Pool(stats func() PoolStats) {
	m.reg.MustRegister(poolCollector(stats))
}

var (
	poolConns = prometheus.NewDesc("glance_go_db_connections",
		"Database connections open, by state.", []string{"state"}, nil)
	poolWaits = prometheus.NewDesc("glance_go_db_waits_total",
		"Database calls that waited for a free connection of the pool.", nil, nil)
	poolWaitSeconds = prometheus.NewDesc("glance_go_db_wait_seconds_total",
		"Time database calls spent waiting for a free connection of the pool.", nil, nil)
	poolTimeouts = prometheus.NewDesc("glance_go_db_pool_timeouts_total",
		"Database calls that found no free connection within [database] pool_timeout (answered 503).", nil, nil)
	poolDeadlocks = prometheus.NewDesc("glance_go_db_deadlock_retries_total",
		"MySQL write transactions run again after InnoDB chose them as a deadlock's victim.", nil, nil)
)

type poolCollector func() PoolStats

func (f poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolWaits, poolWaitSeconds, poolTimeouts, poolDeadlocks} {
		ch <- d
	}
}

func (f poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := f()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.InUse), "in_use")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.Waits))
	ch <- prometheus.MustNewConstMetric(poolWaitSeconds, prometheus.CounterValue, s.WaitSeconds)
	ch <- prometheus.MustNewConstMetric(poolTimeouts, prometheus.CounterValue, float64(s.PoolTimeouts))
	ch <- prometheus.MustNewConstMetric(poolDeadlocks, prometheus.CounterValue, float64(s.DeadlockRetries))
}
