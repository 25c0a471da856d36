package config

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// CORSConfig is the [cors] section (oslo.middleware's cors filter), or one
// of the deprecated [cors.*] sections, whose unset options take [cors]'s
// values.
type CORSConfig struct {
	Section          string   // "cors" or "cors.<name>"
	AllowedOrigin    []string // allowed_origin; empty allows no origin
	AllowCredentials bool     // allow_credentials
	ExposeHeaders    []string // expose_headers
	MaxAge           int      // max_age, seconds; 0 sends no Access-Control-Max-Age
	AllowMethods     []string // allow_methods
	AllowHeaders     []string // allow_headers
}

// defaultCORS returns oslo.middleware's options with the defaults Glance
// sets for them (glance/common/config.py set_cors_middleware_defaults).
func defaultCORS() CORSConfig {
	return CORSConfig{
		Section:          "cors",
		AllowCredentials: true,
		ExposeHeaders:    []string{"X-Image-Meta-Checksum", "X-Auth-Token", "X-Subject-Token", "X-Service-Token", "X-OpenStack-Request-ID"},
		MaxAge:           3600,
		AllowMethods:     []string{"GET", "PUT", "POST", "DELETE", "PATCH"},
		AllowHeaders: []string{"Content-MD5", "X-Image-Meta-Checksum", "X-Storage-Token", "Accept-Encoding", "X-Auth-Token",
			"X-Identity-Status", "X-Roles", "X-Service-Catalog", "X-User-Id", "X-Tenant-Id", "X-OpenStack-Request-ID"},
	}
}

// corsFields maps the options of a cors section to their fields.
func corsFields(cc *CORSConfig) map[string]any {
	return map[string]any{
		"allowed_origin":    &cc.AllowedOrigin,
		"allow_credentials": &cc.AllowCredentials,
		"expose_headers":    &cc.ExposeHeaders,
		"max_age":           &cc.MaxAge,
		"allow_methods":     &cc.AllowMethods,
		"allow_headers":     &cc.AllowHeaders,
	}
}

// HealthcheckConfig is the [healthcheck] section of oslo.middleware's
// healthcheck. Glance sets backends and disable_by_file_path in its paste
// file; glance-go, which has none, reads them here with those values as
// defaults.
type HealthcheckConfig struct {
	Path              string   // path, "/healthcheck"
	Detailed          bool     // detailed
	Backends          []string // backends: disable_by_file or nothing
	DisableByFilePath string   // disable_by_file_path
}

// OpsConfig is what operators' load balancers and monitoring use:
// [DEFAULT] graceful_shutdown_timeout (oslo.service's option) and the
// [glance_go] metrics options, glance-go's own.
type OpsConfig struct {
	// GracefulShutdownTimeout is graceful_shutdown_timeout, seconds: on
	// SIGTERM the server stops accepting connections and lets the requests
	// it is serving (uploads included) finish for this long, then cuts
	// them. 0 waits for as long as they take.
	GracefulShutdownTimeout int
	// ClientSocketTimeout is client_socket_timeout, seconds (Glance's
	// option): a connection idle between requests for this long is
	// closed, and so is one whose request body sends nothing for this
	// long. 0 waits for ever.
	ClientSocketTimeout int
	// Metrics is metrics: serve Prometheus metrics (default true).
	Metrics bool
	// MetricsBind is metrics_bind, "host:port": serve the metrics there
	// instead of at /metrics on the API's own port. "" keeps them on the
	// API port.
	MetricsBind string
}

func init() {
	options = append(options,
		option{"DEFAULT", "graceful_shutdown_timeout", nil, func(c *Config) any { return &c.Ops.GracefulShutdownTimeout }},
		option{"DEFAULT", "client_socket_timeout", nil, func(c *Config) any { return &c.Ops.ClientSocketTimeout }},
		option{"glance_go", "metrics", nil, func(c *Config) any { return &c.Ops.Metrics }},
		option{"glance_go", "metrics_bind", nil, func(c *Config) any { return &c.Ops.MetricsBind }},
		option{"healthcheck", "path", nil, func(c *Config) any { return &c.Healthcheck.Path }},
		option{"healthcheck", "detailed", nil, func(c *Config) any { return &c.Healthcheck.Detailed }},
		option{"healthcheck", "backends", nil, func(c *Config) any { return &c.Healthcheck.Backends }},
		option{"healthcheck", "disable_by_file_path", nil, func(c *Config) any { return &c.Healthcheck.DisableByFilePath }},
	)
	for _, name := range []string{"allowed_origin", "allow_credentials", "expose_headers", "max_age", "allow_methods", "allow_headers"} {
		options = append(options, option{"cors", name, nil, func(c *Config) any { return corsFields(&c.CORS)[name] }})
	}
}

// corsSections reads the deprecated [cors.<name>] sections, in name order,
// each starting from [cors]'s values with no origin of its own.
func (l *loader) corsSections(c *Config) error {
	names := map[string]bool{}
	for _, f := range l.files {
		for sec := range f.sections {
			if strings.HasPrefix(sec, "cors.") {
				names[sec] = true
			}
		}
	}
	secs := make([]string, 0, len(names))
	for s := range names {
		secs = append(secs, s)
	}
	sort.Strings(secs)
	for _, sec := range secs {
		cc := c.CORS
		cc.Section, cc.AllowedOrigin = sec, nil
		fields := corsFields(&cc)
		for key, field := range fields {
			e, ok := l.find(sec, key)
			if !ok {
				continue
			}
			v, err := interpolate(e.value, func(name string) (string, error) { return l.ref(sec, name) })
			if err == nil {
				err = setField(field, v)
			}
			if err != nil {
				return valueError(e, err)
			}
			l.referenced[sec+" "+key] = true
		}
		c.CORSSections = append(c.CORSSections, cc)
		c.Warnings = append(c.Warnings, fmt.Sprintf("[%s]: multiple cors sections are deprecated, as in oslo.middleware; "+
			"consolidate them in [cors]", sec))
	}
	return nil
}

// checkOps checks the options of ops.go on their own.
func (c *Config) checkOps() error {
	if c.Ops.GracefulShutdownTimeout < 0 {
		return c.fieldError("DEFAULT", "graceful_shutdown_timeout", c.Ops.GracefulShutdownTimeout, "must be at least 0")
	}
	if c.Ops.ClientSocketTimeout < 0 {
		return c.fieldError("DEFAULT", "client_socket_timeout", c.Ops.ClientSocketTimeout, "must be at least 0")
	}
	if b := c.Ops.MetricsBind; b != "" {
		host, port, err := net.SplitHostPort(b)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 || checkHost(host) != "" {
			return c.fieldError("glance_go", "metrics_bind", b, "must be host:port, e.g. 127.0.0.1:9293")
		}
	}
	if p := c.Healthcheck.Path; p != "" && !strings.HasPrefix(p, "/") {
		return c.fieldError("healthcheck", "path", p, "must start with /")
	}
	for _, b := range c.Healthcheck.Backends {
		if b != "disable_by_file" {
			return c.fieldError("healthcheck", "backends", c.Healthcheck.Backends,
				"unknown backend %q: glance-go has disable_by_file", b)
		}
	}
	for _, cc := range append([]CORSConfig{c.CORS}, c.CORSSections...) {
		if cc.MaxAge < 0 {
			return c.fieldError(cc.Section, "max_age", cc.MaxAge, "must be at least 0")
		}
		for _, o := range cc.AllowedOrigin {
			if o == "" {
				return c.fieldError(cc.Section, "allowed_origin", cc.AllowedOrigin, "empty item in list")
			}
		}
	}
	return nil
}
