// Package dbtest runs database tests against every dialect glance-go
// supports: SQLite always, MySQL or MariaDB when GLANCE_TEST_MYSQL_DSN names
// a server (a go-sql-driver DSN such as "root@tcp(127.0.0.1:3306)/test";
// without it the MySQL runs skip, or fail under GLANCE_TEST_STRICT).
// Each run gets a fresh, synced database that is removed afterwards.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/glance-go/glance-go/db"
)

// EnvMySQL is the environment variable that enables the MySQL runs.
const EnvMySQL = "GLANCE_TEST_MYSQL_DSN"

// ForEachDialect runs fn as a subtest once per available dialect, each time
// on a new database created with db.Sync.
func ForEachDialect(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	ForEachDialectWith(t, db.Config{}, fn)
}

// ForEachDialectWith is ForEachDialect with the settings of cfg; its
// Connection is set for each dialect.
func ForEachDialectWith(t *testing.T, cfg db.Config, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, OpenSQLiteWith(t, cfg))
	})
	t.Run("mysql", func(t *testing.T) {
		fn(t, OpenMySQLWith(t, cfg))
	})
}

// ForEachDialectTwice runs fn as a subtest once per available dialect,
// each time with two handles on one new database: a with the settings of
// cfgA, b with those of cfgB (their Connection is set here). The
// database is synced through a.
func ForEachDialectTwice(t *testing.T, cfgA, cfgB db.Config, fn func(t *testing.T, a, b *db.DB)) {
	t.Helper()
	for _, dialect := range []string{"sqlite", "mysql"} {
		t.Run(dialect, func(t *testing.T) {
			a, b := OpenTwice(t, dialect, cfgA, cfgB)
			fn(t, a, b)
		})
	}
}

// OpenTwice returns two handles on one new database of dialect ("sqlite"
// or "mysql"): a with the settings of cfgA, b with those of cfgB (their
// Connection is set here). The database is synced through a.
func OpenTwice(t testing.TB, dialect string, cfgA, cfgB db.Config) (a, b *db.DB) {
	t.Helper()
	conn := "sqlite:///" + filepath.Join(t.TempDir(), "glance.sqlite")
	if dialect == "mysql" {
		conn = MySQLDSN(t)
	}
	cfgA.Connection, cfgB.Connection = conn, conn
	a = openSynced(t, cfgA)
	b, err := db.Open(context.Background(), cfgB)
	if err != nil {
		t.Fatalf("open %s: %v", conn, err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// OpenSQLite returns a synced SQLite database in a file under t.TempDir.
func OpenSQLite(t testing.TB) *db.DB {
	t.Helper()
	return OpenSQLiteWith(t, db.Config{})
}

// OpenSQLiteWith is OpenSQLite with the settings of cfg.
func OpenSQLiteWith(t testing.TB, cfg db.Config) *db.DB {
	t.Helper()
	cfg.Connection = "sqlite:///" + filepath.Join(t.TempDir(), "glance.sqlite")
	return openSynced(t, cfg)
}

// OpenMySQL returns a synced database on the server named by
// GLANCE_TEST_MYSQL_DSN, created for this test and dropped after it. It
// skips the test when the variable is unset.
func OpenMySQL(t testing.TB) *db.DB {
	t.Helper()
	return OpenMySQLWith(t, db.Config{})
}

// OpenMySQLWith is OpenMySQL with the settings of cfg.
func OpenMySQLWith(t testing.TB, cfg db.Config) *db.DB {
	t.Helper()
	cfg.Connection = MySQLDSN(t)
	return openSynced(t, cfg)
}

// MySQLDSN creates an empty database on the server named by
// GLANCE_TEST_MYSQL_DSN, arranges for it to be dropped after the test, and
// returns a DSN for it. It skips the test when the variable is unset.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvMySQL)
	if base == "" {
		SkipOrFail(t, fmt.Sprintf("MySQL tests skipped: set %s, e.g. %s='root@tcp(127.0.0.1:3306)/test'", EnvMySQL, EnvMySQL))
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvMySQL, err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "glance_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8"); err != nil {
		admin.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
		admin.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// SkipOrFail skips the test for a missing prerequisite, or fails it when
// GLANCE_TEST_STRICT is set, as CI does once everything is installed.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("GLANCE_TEST_STRICT") != "" {
		t.Fatal(why + " (GLANCE_TEST_STRICT is set)")
	}
	t.Skip(why)
}

func openSynced(t testing.TB, cfg db.Config) *db.DB {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Connection, err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Sync(ctx); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return d
}
