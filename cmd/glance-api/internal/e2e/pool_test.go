package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
)

// TestPoolExhausted503 runs a server with a pool of one connection and
// pool_timeout = 1. A write held up by a lock taken outside the server
// keeps that connection; a second request then waits pool_timeout for one
// and gets 503 with a message, and the first one finishes once the lock is
// gone. On SQLite, and on MySQL when GLANCE_TEST_MYSQL_DSN names a server.
func TestPoolExhausted503(t *testing.T) {
	if suite.bin == "" {
		t.Skip("needs our own binary: GLANCE_E2E_ENDPOINT is set")
	}
	for _, dialect := range []string{"sqlite", "mysql"} {
		t.Run(dialect, func(t *testing.T) {
			dir := filepath.Join(suite.tmp, "pool-"+dialect)
			if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
				t.Fatal(err)
			}
			conn := "sqlite:///" + filepath.Join(dir, "g.sqlite")
			if dialect == "mysql" {
				conn = mysqlURL(t, dbtest.MySQLDSN(t))
			}
			port, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Replace(baseConf(port, conn, dir, "trusted-auth"), "[database]\n",
				"[database]\nmax_pool_size = 1\nmax_overflow = 0\npool_timeout = 1\n", 1)
			p := startConf(t, dir, text, port)
			srv := &server{URL: p.url, Trusted: true}
			img := srv.rawImage(t, tenantA, nil)
			id := img["id"].(string)

			// Hold the image's row (SQLite: the database's write lock)
			// from outside the server.
			ctx := context.Background()
			other, err := db.Open(ctx, db.Config{Connection: conn, RecordCache: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			sqlDB, err := other.Gorm().DB()
			if err != nil {
				t.Fatal(err)
			}
			tx, err := sqlDB.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if dialect == "mysql" {
				var got string
				if err := tx.QueryRowContext(ctx, "SELECT id FROM images WHERE id = ? FOR UPDATE", id).Scan(&got); err != nil {
					t.Fatal(err)
				}
			}

			held := make(chan *reply, 1)
			go func() {
				held <- srv.patch(t, tenantA, id, op{Op: "replace", Path: "/name", Value: "renamed"})
			}()
			// Let the PATCH take the connection and wait on the lock.
			time.Sleep(500 * time.Millisecond)
			start := time.Now()
			r := srv.do(t, tenantA, http.MethodPost, "/v2/images",
				map[string]any{"name": uniq("img"), "disk_format": "raw", "container_format": "bare"})
			took := time.Since(start)
			if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "pool_timeout") {
				t.Fatalf("create with the pool held: %d %s, want 503 naming pool_timeout", r.Status, clip(r.Body))
			}
			if took < 900*time.Millisecond || took > 10*time.Second {
				t.Errorf("the 503 came after %v, want about pool_timeout (1s)", took)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-held:
				r.want(t, http.StatusOK)
			case <-time.After(30 * time.Second):
				t.Fatal("the held PATCH did not finish once the lock was released")
			}
			if got := srv.show(t, tenantA, id)["name"]; got != "renamed" {
				t.Errorf("name = %v, want renamed", got)
			}
			srv.do(t, tenantA, http.MethodPost, "/v2/images",
				map[string]any{"name": uniq("img"), "disk_format": "raw", "container_format": "bare"}).want(t, http.StatusCreated)
			m := scrape(t, p.url)
			if got := m["glance_go_db_pool_timeouts_total"]; got != 1 {
				t.Errorf("glance_go_db_pool_timeouts_total = %v, want 1", got)
			}
			if _, ok := m[`glance_go_db_connections{state="in_use"}`]; !ok {
				t.Error("no glance_go_db_connections{state=\"in_use\"} sample")
			}
		})
	}
}

// mysqlURL turns a go-sql-driver DSN into the SQLAlchemy-style URL of
// glance-api.conf.
func mysqlURL(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	user := cfg.User
	if cfg.Passwd != "" {
		user += ":" + cfg.Passwd
	}
	return fmt.Sprintf("mysql+pymysql://%s@%s/%s", user, cfg.Addr, cfg.DBName)
}
