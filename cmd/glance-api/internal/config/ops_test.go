package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestOpsOptions(t *testing.T) {
	noSystemDirs(t)
	dir := t.TempDir()
	files := writeFiles(t, dir, map[string]string{"a.conf": `[DEFAULT]
graceful_shutdown_timeout = 5
client_socket_timeout = 30
[glance_go]
metrics = false
metrics_bind = 127.0.0.1:9293
[healthcheck]
disable_by_file_path = /run/glance/off
[cors]
allowed_origin = http://a.example, http://b.example
max_age = 10
[cors.dashboard]
allowed_origin = https://dash.example
allow_credentials = false
`}, "a.conf")
	c, ignored, err := Load(files, nil)
	if err != nil || len(ignored) != 0 {
		t.Fatalf("Load: %v, ignored %q", err, ignored)
	}
	if c.Ops != (OpsConfig{GracefulShutdownTimeout: 5, ClientSocketTimeout: 30, Metrics: false, MetricsBind: "127.0.0.1:9293"}) {
		t.Errorf("Ops = %+v", c.Ops)
	}
	if c.Healthcheck.Path != "/healthcheck" || c.Healthcheck.DisableByFilePath != "/run/glance/off" ||
		!reflect.DeepEqual(c.Healthcheck.Backends, []string{"disable_by_file"}) {
		t.Errorf("Healthcheck = %+v", c.Healthcheck)
	}
	want := defaultCORS()
	want.AllowedOrigin, want.MaxAge = []string{"http://a.example", "http://b.example"}, 10
	if !reflect.DeepEqual(c.CORS, want) {
		t.Errorf("CORS = %+v, want %+v", c.CORS, want)
	}
	// A [cors.*] section starts from [cors]'s values.
	sub := want
	sub.Section, sub.AllowedOrigin, sub.AllowCredentials = "cors.dashboard", []string{"https://dash.example"}, false
	if !reflect.DeepEqual(c.CORSSections, []CORSConfig{sub}) {
		t.Errorf("CORSSections = %+v, want %+v", c.CORSSections, []CORSConfig{sub})
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "[database] connection") {
		t.Errorf("Validate: %v", err)
	}

	d := glanceDefaults()
	if d.Ops.GracefulShutdownTimeout != 60 || !d.Ops.Metrics || d.Healthcheck.DisableByFilePath != "/etc/glance/healthcheck_disable" {
		t.Errorf("defaults: %+v %+v", d.Ops, d.Healthcheck)
	}
}

func TestOpsOptionErrors(t *testing.T) {
	noSystemDirs(t)
	for _, text := range []string{
		"[DEFAULT]\ngraceful_shutdown_timeout = -1\n",
		"[glance_go]\nmetrics_bind = nonsense\n",
		"[healthcheck]\nbackends = disable_by_files_ports\n",
		"[healthcheck]\npath = healthcheck\n",
		"[cors]\nmax_age = -5\n",
		"[cors.x]\nmax_age = soon\n",
	} {
		files := writeFiles(t, t.TempDir(), map[string]string{"a.conf": text}, "a.conf")
		if _, _, err := Load(files, nil); err == nil {
			t.Errorf("Load(%q) accepted it", text)
		}
	}
}
