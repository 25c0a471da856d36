package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// suite is the state TestMain sets up for every test.
var suite struct {
	srv *server // the server under test
	// legacyGlance is set when srv is the real Glance 25.1 (Zed), whose
	// legacy policy defaults differ from the newest Glance's in a few
	// status codes. Tests that depend on it say so.
	legacyGlance bool
	// bin is our built binary, "" when the server is external.
	bin string
	// tmp holds the binary, configs, databases and image data.
	tmp string

	noauthOnce sync.Once
	noauth     *server
	noauthErr  error

	mu    sync.Mutex
	procs []*process // every server process started, stopped at the end
}

// server is one Glance endpoint and how it identifies callers.
type server struct {
	URL     string // base URL, no trailing slash
	Trusted bool   // identity comes from X-* headers; false: noauth, everybody is admin
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	defer stopAll()
	if err := setUp(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: e2e suite cannot start: %v\n", err)
		return 1
	}
	return m.Run()
}

func setUp() error {
	suite.legacyGlance = truthy(os.Getenv("GLANCE_E2E_LEGACY"))
	if ep := os.Getenv("GLANCE_E2E_ENDPOINT"); ep != "" {
		flavor := os.Getenv("GLANCE_E2E_FLAVOR")
		switch flavor {
		case "", "trusted", "trusted-auth":
		case "noauth":
		default:
			return fmt.Errorf("GLANCE_E2E_FLAVOR=%q: want trusted or noauth", flavor)
		}
		suite.srv = &server{URL: strings.TrimRight(ep, "/"), Trusted: flavor != "noauth"}
		if !suite.srv.Trusted {
			suite.noauth = suite.srv
		} else if na := os.Getenv("GLANCE_E2E_NOAUTH_ENDPOINT"); na != "" {
			suite.noauth = &server{URL: strings.TrimRight(na, "/")}
		}
		suite.noauthOnce.Do(func() {}) // never start one of our own
		return waitReady(suite.srv.URL, 10*time.Second, nil)
	}
	tmp, err := os.MkdirTemp("", "glance-e2e-")
	if err != nil {
		return err
	}
	suite.tmp = tmp
	if suite.bin, err = buildBinary(tmp); err != nil {
		return err
	}
	conn, err := databaseURL(filepath.Join(tmp, "main"))
	if err != nil {
		return err
	}
	p, err := startOurs(filepath.Join(tmp, "main"), "trusted-auth", conn, true)
	if err != nil {
		return err
	}
	suite.srv = &server{URL: p.url, Trusted: true}
	return nil
}

// noauthServer returns a server in the noauth flavor, starting one of ours
// the first time it is needed. It skips t when there is none to be had.
func noauthServer(t *testing.T) *server {
	t.Helper()
	suite.noauthOnce.Do(func() {
		dir := filepath.Join(suite.tmp, "noauth")
		conn, err := databaseURL(dir)
		if err != nil {
			suite.noauthErr = err
			return
		}
		p, err := startOurs(dir, "noauth", conn, true)
		if err != nil {
			suite.noauthErr = err
			return
		}
		suite.noauth = &server{URL: p.url}
	})
	if suite.noauthErr != nil {
		t.Fatalf("starting a noauth server: %v", suite.noauthErr)
	}
	if suite.noauth == nil {
		t.Skip("needs a noauth server: set GLANCE_E2E_NOAUTH_ENDPOINT when GLANCE_E2E_ENDPOINT is a trusted one")
	}
	return suite.noauth
}

// needTrusted skips t unless the server under test takes identity from
// X-* headers.
func needTrusted(t *testing.T) {
	t.Helper()
	if !suite.srv.Trusted {
		t.Skip("needs project-scoped callers: run against the trusted flavor")
	}
}

// buildBinary builds ./cmd/glance-api from the module root into dir.
func buildBinary(dir string) (string, error) {
	return buildWith(filepath.Join(dir, "glance-api"), nil)
}

// buildWith builds ./cmd/glance-api from the module root as bin, with the
// environment variables env added and the go build flags given.
func buildWith(bin string, env []string, flags ...string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the glance-go module (go env GOMOD is empty)")
	}
	args := append(append([]string{"build"}, flags...), "-o", bin, "./cmd/glance-api")
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cannot build our glance-api (go %s): %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// databaseURL returns the [database] connection for a server whose files
// live in dir: GLANCE_E2E_MYSQL_DSN when set (creating the database when it
// is missing), otherwise a SQLite file in dir.
func databaseURL(dir string) (string, error) {
	dsn := os.Getenv("GLANCE_E2E_MYSQL_DSN")
	if dsn == "" {
		return "sqlite:///" + filepath.Join(dir, "g.sqlite"), nil
	}
	return dsn, createMySQLDatabase(dsn)
}

// createMySQLDatabase creates the database an SQLAlchemy-style MySQL URL
// names, when it does not exist yet.
func createMySQLDatabase(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(u.Scheme, "mysql") {
		return fmt.Errorf("GLANCE_E2E_MYSQL_DSN=%q: want mysql+pymysql://user[:password]@host[:port]/database", dsn)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || strings.ContainsAny(name, "`/") {
		return fmt.Errorf("GLANCE_E2E_MYSQL_DSN=%q names no usable database", dsn)
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		return fmt.Errorf("creating MySQL database %s: %w", name, err)
	}
	return nil
}

// process is one of our glance-api servers.
type process struct {
	cmd  *exec.Cmd
	url  string
	log  string // path of its combined output
	done chan struct{}
}

// startOurs writes a glance-api.conf in dir for the given flavor and
// database, runs "db sync" when asked, starts the server and waits until
// it answers GET /versions.
func startOurs(dir, flavor, connection string, dbSync bool) (*process, error) {
	if suite.bin == "" {
		return nil, errors.New("our glance-api was not built")
	}
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "glance-api.conf")
	text := baseConf(port, connection, dir, flavor)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	if dbSync {
		if err := syncDB(conf); err != nil {
			return nil, err
		}
	}
	p, err := launch(conf, port, filepath.Join(dir, "glance-api.log"))
	if err != nil {
		return nil, fmt.Errorf("flavor %s: %w", flavor, err)
	}
	return p, nil
}

// serverEnv makes dir for one of our servers and returns the [database]
// connection and a free port on 127.0.0.1 for it.
func serverEnv(t *testing.T, dir string) (conn string, port int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conn, err := databaseURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	if port, err = freePort(); err != nil {
		t.Fatal(err)
	}
	return conn, port
}

// baseConf is the glance-api.conf of a server on 127.0.0.1:port with the
// given database and flavor and its images in dir/images.
func baseConf(port int, connection, dir, flavor string) string {
	return fmt.Sprintf(`[DEFAULT]
bind_host = 127.0.0.1
bind_port = %d

[database]
connection = %s

[glance_store]
filesystem_store_datadir = %s

[paste_deploy]
flavor = %s
`, port, connection, filepath.Join(dir, "images"), flavor)
}

// syncDB runs "glance-api db sync" on the configuration file conf.
func syncDB(conf string) error {
	out, err := exec.Command(suite.bin, "db", "sync", "--config-file", conf).CombinedOutput()
	if err != nil {
		return fmt.Errorf("glance-api db sync --config-file %s: %v\n%s", conf, err, out)
	}
	return nil
}

// launch starts our binary on the configuration file conf, which binds
// 127.0.0.1:port, appends its output to logPath, and waits until it
// answers GET /versions. stopAll ends it at the latest.
func launch(conf string, port int, logPath string) (*process, error) {
	return launchBin(suite.bin, conf, port, logPath)
}

// launchBin is launch with another build of glance-api.
func launchBin(bin, conf string, port int, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config-file", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &process{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	suite.mu.Lock()
	suite.procs = append(suite.procs, p)
	suite.mu.Unlock()
	if err := waitReady(p.url, 30*time.Second, p.done); err != nil {
		return nil, fmt.Errorf("%s --config-file %s: %w\n--- log %s ---\n%s", bin, conf, err, logPath, tail(logPath))
	}
	return p, nil
}

// startConf writes text as dir/glance-api.conf for a server on port, runs
// "db sync" and starts the server, which stops when t ends.
func startConf(t *testing.T, dir, text string, port int) *process {
	t.Helper()
	conf := filepath.Join(dir, "glance-api.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syncDB(conf); err != nil {
		t.Fatal(err)
	}
	p, err := launch(conf, port, filepath.Join(dir, "glance-api.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p
}

// stop ends the process: SIGTERM, then SIGKILL after five seconds.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func stopAll() {
	suite.mu.Lock()
	procs := suite.procs
	suite.procs = nil
	suite.mu.Unlock()
	for _, p := range procs {
		p.stop()
	}
	if suite.tmp != "" && os.Getenv("GLANCE_E2E_KEEP") == "" {
		os.RemoveAll(suite.tmp)
	}
}

// waitReady polls GET <base>/versions until it answers 200. exited, when
// not nil, is closed if the server process dies first.
func waitReady(base string, within time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(within)
	c := &http.Client{Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("the server exited before answering GET /versions")
		default:
		}
		resp, err := c.Get(base + "/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /versions: %s", resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer from %s/versions within %v: %v", base, within, last)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// strictSkip skips a test whose outside prerequisite is missing, or fails it
// when GLANCE_TEST_STRICT is set, as CI does after installing everything.
func strictSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("GLANCE_TEST_STRICT") != "" {
		t.Fatal(why + " (GLANCE_TEST_STRICT is set)")
	}
	t.Skip(why)
}
