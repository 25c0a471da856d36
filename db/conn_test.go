package db

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

func TestParseConnection(t *testing.T) {
	cases := []struct {
		conn    string
		dialect dialect
		memory  bool
		dsn     []string // substrings the DSN must hold
		bad     bool
	}{
		{conn: "sqlite:////var/lib/glance/glance.sqlite", dsn: []string{"/var/lib/glance/glance.sqlite?", "journal_mode(WAL)", "busy_timeout", "foreign_keys(1)", "_txlock=immediate"}},
		{conn: "sqlite:///glance.sqlite", dsn: []string{"glance.sqlite?"}},
		{conn: "sqlite:///glance.sqlite?timeout=5", dsn: []string{"glance.sqlite?_pragma"}},
		{conn: "sqlite://", memory: true, dsn: []string{":memory:"}},
		{conn: ":memory:", memory: true, dsn: []string{":memory:"}},
		{conn: "mysql+pymysql://glance:s3cr%40t@db.example:3307/glance?charset=utf8", dialect: dialectMySQL,
			dsn: []string{"glance:s3cr@t@tcp(db.example:3307)/glance", "parseTime=true", "utf8mb4", "clientFoundRows=true"}},
		{conn: "mysql://root@localhost/glance", dialect: dialectMySQL, dsn: []string{"root@tcp(localhost:3306)/glance"}},
		{conn: "mysql+pymysql://root@/glance?unix_socket=/run/mysqld/mysqld.sock", dialect: dialectMySQL, dsn: []string{"unix(/run/mysqld/mysqld.sock)/glance"}},
		{conn: "root:pw@tcp(127.0.0.1:3306)/glance", dialect: dialectMySQL, dsn: []string{"root:pw@tcp(127.0.0.1:3306)/glance", "parseTime=true"}},
		{conn: "", bad: true},
		{conn: "postgresql://u@h/db", bad: true},
		{conn: "mysql+pymysql://root@host/", bad: true},
		{conn: "sqlite:/x", bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.conn, func(t *testing.T) {
			d, dsn, memory, err := parseConnection(tc.conn)
			if tc.bad {
				if !errors.Is(err, domain.ErrInvalid) {
					t.Fatalf("got %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d != tc.dialect || memory != tc.memory {
				t.Fatalf("dialect %v memory %v", d, memory)
			}
			for _, s := range tc.dsn {
				if !strings.Contains(dsn, s) {
					t.Errorf("DSN %q lacks %q", dsn, s)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"mysql+pymysql://glance:secret@db/glance": "mysql+pymysql://glance:%2A%2A%2A@db/glance",
		"glance:secret@tcp(db:3306)/glance":       "glance:***@tcp(db:3306)/glance",
		"sqlite:////var/lib/glance.sqlite":        "sqlite:////var/lib/glance.sqlite",
	} {
		if got := redact(in); got != want || strings.Contains(got, "secret") {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenMemoryAndFile(t *testing.T) {
	ctx := context.Background()
	for _, conn := range []string{":memory:", "sqlite:///" + filepath.Join(t.TempDir(), "g.db")} {
		d, err := Open(ctx, Config{Connection: conn, MaxPoolSize: 4})
		if err != nil {
			t.Fatalf("%s: %v", conn, err)
		}
		if err := d.Sync(ctx); err != nil {
			t.Fatalf("%s: sync: %v", conn, err)
		}
		// The schema must be seen by every connection of the pool.
		for i := 0; i < 3; i++ {
			if err := d.CheckSchema(ctx); err != nil {
				t.Fatalf("%s: %v", conn, err)
			}
		}
		var fk int
		d.g.Raw("PRAGMA foreign_keys").Scan(&fk)
		if fk != 1 {
			t.Errorf("%s: foreign_keys = %d", conn, fk)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(ctx, Config{Connection: "root@tcp(127.0.0.1:1)/nothing"}); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("unreachable server: %v", err)
	}
}
