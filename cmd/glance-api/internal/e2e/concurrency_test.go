package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/glance-go/glance-go/cmd/internal/loadmix"
)

// The concurrency test's settings: sixteen clients, every request bounded.
const (
	concClients = 16
	concBound   = 10 * time.Second
	// concStopAfter ends a phase early once this many requests failed: a
	// server that hangs fails the test in about one bound, not the
	// phase's whole length.
	concStopAfter = 32
)

// TestConcurrency runs many clients at once against a glance-api built with
// the race detector, with the database pool at its default size (5): first
// the mix of every kind of write and read (cmd/internal/loadmix) for a
// short time, then the population of 2,000 images with 10 properties and 2
// tags each. Every request must end within the bound with one of the
// statuses its operation may get, no data race may be reported, and the
// server must still answer afterwards. It runs on SQLite, and on a fresh
// MariaDB/MySQL database when GLANCE_TEST_MYSQL_DSN names a server.
func TestConcurrency(t *testing.T) {
	if testing.Short() {
		t.Skip("the concurrency test takes about a minute: not under -short")
	}
	if suite.bin == "" {
		t.Skip("needs our own binary, built with the race detector: GLANCE_E2E_ENDPOINT is set")
	}
	bin := raceBinary(t)
	t.Run("sqlite", func(t *testing.T) {
		dir := filepath.Join(suite.tmp, "concurrency-sqlite")
		concurrency(t, bin, dir, "sqlite:///"+filepath.Join(dir, "g.sqlite"), 15*time.Second, 2000)
	})
	t.Run("mysql", func(t *testing.T) {
		dir := filepath.Join(suite.tmp, "concurrency-mysql")
		concurrency(t, bin, dir, concurrencyMySQL(t), 15*time.Second, 2000)
	})
}

// raceBinary builds glance-api with the race detector into the suite's
// directory, once for the run. Without a C compiler (the race detector
// needs cgo) it skips, or fails under GLANCE_TEST_STRICT.
func raceBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(suite.tmp, "glance-api-race")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cc, _ := exec.Command("go", "env", "CC").Output()
	if _, err := exec.LookPath(strings.Fields(string(cc) + " gcc")[0]); err != nil {
		strictSkip(t, "the race detector needs cgo and a C compiler: "+err.Error())
	}
	start := time.Now()
	if _, err := buildWith(bin, []string{"CGO_ENABLED=1"}, "-race"); err != nil {
		t.Fatal(err)
	}
	t.Logf("glance-api built with -race in %v", time.Since(start).Round(time.Second))
	return bin
}

// concurrencyMySQL creates a database for the test on the server that
// GLANCE_TEST_MYSQL_DSN names, drops it when the test ends, and returns
// its [database] connection.
func concurrencyMySQL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("GLANCE_TEST_MYSQL_DSN")
	if base == "" {
		strictSkip(t, "MySQL run skipped: set GLANCE_TEST_MYSQL_DSN, e.g. 'root@tcp(127.0.0.1:3306)/test'")
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("GLANCE_TEST_MYSQL_DSN: %v", err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "glance_concurrency_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		admin.Close()
		t.Fatalf("creating the test database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("dropping the test database %s: %v", name, err)
		}
		admin.Close()
	})
	u := url.URL{Scheme: "mysql+pymysql", Host: cfg.Addr, Path: "/" + name}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	} else {
		u.User = url.User(cfg.User)
	}
	return u.String()
}

// concurrency starts the race build on conn in dir and runs the mix for
// mixFor, then the population of popN images.
func concurrency(t *testing.T, bin, dir, conn string, mixFor time.Duration, popN int) {
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	// No max_pool_size: the default pool of 5 connections.
	conf := filepath.Join(dir, "glance-api.conf")
	text := fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d
node_staging_uri = file://%s

[database]
connection = %s

[glance_store]
filesystem_store_datadir = %s

[paste_deploy]
flavor = trusted-auth
`, port, filepath.Join(dir, "staging"), conn, filepath.Join(dir, "images"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syncDB(conf); err != nil {
		t.Fatal(err)
	}
	// A data race ends the server at once, with a status of its own.
	t.Setenv("GORACE", "halt_on_error=1 exitcode=66")
	logPath := filepath.Join(dir, "glance-api.log")
	p, err := launchBin(bin, conf, port, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("end of the server's log %s:\n%s", logPath, tail(logPath))
		}
	})

	cfg := loadmix.Config{
		Endpoint:  p.url,
		Owner:     loadmix.Identity{Project: "conc-a-" + runID, User: "conc-user-a", Roles: "member,reader"},
		Member:    loadmix.Identity{Project: "conc-b-" + runID, User: "conc-user-b", Roles: "member,reader"},
		Clients:   concClients,
		Duration:  mixFor,
		Bound:     concBound,
		MaxImages: 300,
		Tag:       "conc-" + runID,
		StopAfter: concStopAfter,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	mix, err := loadmix.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := mix.Run(ctx)
	report(t, "mix", got)
	checkPhase(t, "mix", got, p, logPath)
	if all := got.Total(); all.Latency.Max() >= concBound {
		return // a server that stopped answering would not answer the population either
	}
	checkMix(t, got)

	cfg.Tag = "conc-pop-" + runID
	pop, err := loadmix.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got = pop.Populate(ctx, popN, 10, 2)
	report(t, "population", got)
	checkPhase(t, "population", got, p, logPath)
	// Every image is there, with its 10 properties and 2 tags.
	s := &server{URL: p.url, Trusted: true}
	owner := &caller{Project: cfg.Owner.Project, User: cfg.Owner.User, Roles: cfg.Owner.Roles}
	seen, next := 0, "/v2/images?limit=1000&tag="+cfg.Tag
	for i := 0; next != "" && i < popN/1000+2; i++ {
		page := s.do(t, owner, "GET", next, nil).want(t, 200).object(t)
		for _, v := range page["images"].([]any) {
			im := v.(map[string]any)
			if tags := im["tags"].([]any); len(tags) != 2 || im["p09"] == nil || im["p10"] != nil {
				t.Fatalf("a populated image is not as created: %v", im)
			}
			seen++
		}
		next, _ = page["next"].(string)
	}
	if seen != popN {
		t.Errorf("population: %d of %d images listed", seen, popN)
	}
}

// report logs a phase's table.
func report(t *testing.T, phase string, s *loadmix.Stats) {
	t.Helper()
	var b bytes.Buffer
	if err := s.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s, %d clients:\n%s", phase, concClients, b.String())
}

// checkPhase fails t when a request of the phase failed or took longer than
// the bound, when the server reported a data race or stopped, or when it
// no longer answers.
func checkPhase(t *testing.T, phase string, s *loadmix.Stats, p *process, logPath string) {
	t.Helper()
	if err := s.Err(); err != nil {
		t.Errorf("%s: %v", phase, err)
	}
	if all := s.Total(); all.Latency.Max() > concBound {
		t.Errorf("%s: a request took %v, over the bound of %v", phase, all.Latency.Max(), concBound)
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if i := bytes.Index(log, []byte(bad)); i >= 0 {
			t.Fatalf("%s: the server's log has %q:\n%s", phase, bad, log[i:min(len(log), i+6000)])
		}
	}
	select {
	case <-p.done:
		t.Fatalf("%s: the server exited (%v)", phase, p.cmd.ProcessState)
	default:
	}
	c := &http.Client{Timeout: concBound}
	for _, path := range []string{"/versions", "/v2/images?limit=1"} {
		req, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
		req.Header.Set("X-Identity-Status", "Confirmed")
		req.Header.Set("X-Project-Id", "conc-check-"+runID)
		req.Header.Set("X-Roles", "reader")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: the server no longer answers GET %s: %v", phase, path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET %s afterwards: %s", phase, path, resp.Status)
		}
	}
}

// checkMix fails t when a kind of request of the mix never succeeded: an
// operation whose every answer is tolerated tests nothing.
func checkMix(t *testing.T, s *loadmix.Stats) {
	t.Helper()
	for _, kind := range []string{"create", "show", "list", "patch", "tag-add", "tag-delete", "member-add",
		"member-update", "members", "list-member", "delete", "upload", "stage", "import", "download", "import-wait"} {
		ser := s.Requests[kind]
		if kind == "import-wait" {
			ser = s.Waits[kind]
		}
		if ser == nil {
			t.Errorf("mix: no %s was sent", kind)
		} else if ser.Count-ser.Tolerated-ser.Errors == 0 {
			t.Errorf("mix: none of the %d %s succeeded (%d tolerated answers)", ser.Count, kind, ser.Tolerated)
		}
	}
}
