package db_test

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

func TestSyncIdempotentAndVersion(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		v, err := d.Version(ctx)
		wantKind(t, err, nil)
		if v != db.Head {
			t.Fatalf("version %q, want %q", v, db.Head)
		}
		id := add(t, d, "p1", domain.VisibilityPrivate, nil)
		for i := 0; i < 2; i++ {
			wantKind(t, d.Sync(ctx), nil)
		}
		wantKind(t, d.CheckSchema(ctx), nil)
		get(t, d, p1, id) // data survives
		var rows int64
		d.Gorm().Raw("SELECT COUNT(*) FROM alembic_version").Scan(&rows)
		if rows != 1 {
			t.Fatalf("%d alembic_version rows", rows)
		}
	})
}

func TestEmptyDatabase(t *testing.T) {
	d, err := db.Open(ctx, db.Config{Connection: "sqlite:///" + filepath.Join(t.TempDir(), "empty.db")})
	wantKind(t, err, nil)
	defer d.Close()
	v, err := d.Version(ctx)
	wantKind(t, err, nil)
	if v != "" {
		t.Fatalf("version of an empty database %q", v)
	}
	err = d.CheckSchema(ctx)
	wantKind(t, err, domain.ErrUnavailable)
	if !strings.Contains(err.Error(), "glance-api db sync") {
		t.Fatalf("CheckSchema error does not tell what to run: %v", err)
	}
	wantKind(t, d.Sync(ctx), nil)
	wantKind(t, d.CheckSchema(ctx), nil)
}

func TestSyncUpgradesOldSchema(t *testing.T) {
	dbtest.ForEachDialect(t, func(t *testing.T, d *db.DB) {
		g := d.Gorm()
		// Roll the schema back to what Queens had.
		for _, s := range []string{
			"DROP INDEX os_hidden_image_idx ON images", "DROP INDEX os_hash_value_image_idx ON images",
			"DROP INDEX ix_tasks_image_id ON tasks",
		} {
			if strings.HasSuffix(t.Name(), "sqlite") {
				s = s[:strings.Index(s, " ON ")]
			}
			wantKind(t, g.Exec(s).Error, nil)
		}
		for _, c := range [][2]string{{"images", "os_hidden"}, {"images", "os_hash_algo"}, {"images", "os_hash_value"},
			{"tasks", "image_id"}, {"tasks", "request_id"}, {"tasks", "user_id"}} {
			wantKind(t, g.Exec("ALTER TABLE "+c[0]+" DROP COLUMN "+c[1]).Error, nil)
		}
		wantKind(t, g.Exec("UPDATE alembic_version SET version_num = 'queens_contract01'").Error, nil)
		err := d.CheckSchema(ctx)
		wantKind(t, err, domain.ErrUnavailable)

		wantKind(t, d.Sync(ctx), nil)
		wantKind(t, d.CheckSchema(ctx), nil)
		for _, c := range [][2]string{{"images", "os_hidden"}, {"images", "os_hash_value"}, {"tasks", "user_id"}} {
			if !g.Migrator().HasColumn(c[0], c[1]) {
				t.Errorf("column %s.%s not restored", c[0], c[1])
			}
		}
		if !g.Migrator().HasIndex("images", "os_hidden_image_idx") {
			t.Errorf("index os_hidden_image_idx not restored")
		}
		add(t, d, "p1", domain.VisibilityPrivate, func(m *domain.Meta) { m.Hidden = true })

		wantKind(t, g.Exec("UPDATE alembic_version SET version_num = 'mitaka02'").Error, nil)
		wantKind(t, d.Sync(ctx), domain.ErrInvalid)
		wantKind(t, g.Exec("UPDATE alembic_version SET version_num = 'zed_contract01'").Error, nil)
		wantKind(t, d.Sync(ctx), nil)
		wantKind(t, d.CheckSchema(ctx), nil)
		v, _ := d.Version(ctx)
		if v != "zed_contract01" {
			t.Fatalf("a newer revision was overwritten: %q", v)
		}
	})
}

// glanceManage runs Debian's glance-manage on a config naming conn.
func glanceManage(t *testing.T, conn string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "glance.conf")
	body := fmt.Sprintf("[DEFAULT]\nlog_dir =\nuse_stderr = true\n[database]\nconnection = %s\n", conn)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/glance-manage", append([]string{"--config-file", conf}, args...)...)
	cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin:"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("glance-manage %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// columns describes every table's columns and index names as the database
// reports them, for comparing two schemas.
func columns(t *testing.T, d *db.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	// The SQLite migrator logs its index queries in debug mode: silence it.
	g := d.Gorm().Session(&gorm.Session{Logger: logger.Discard})
	tables, err := g.Migrator().GetTables()
	wantKind(t, err, nil)
	for _, tbl := range tables {
		if strings.HasPrefix(tbl, "sqlite_") {
			continue
		}
		var cols []string
		if d.String() == "sqlite" {
			// The SQLite driver reports neither nullability nor defaults.
			var info []struct {
				Name      string
				Type      string
				Notnull   bool
				DfltValue *string
			}
			wantKind(t, g.Raw("SELECT name, type, \"notnull\", dflt_value FROM pragma_table_info(?)", tbl).Scan(&info).Error, nil)
			for _, c := range info {
				def := ""
				if c.DfltValue != nil {
					def = strings.Trim(*c.DfltValue, "'")
				}
				cols = append(cols, fmt.Sprintf("%s %s notnull=%v default=%q", c.Name, strings.ToLower(c.Type), c.Notnull, def))
			}
		} else {
			types, err := g.Migrator().ColumnTypes(tbl)
			wantKind(t, err, nil)
			for _, c := range types {
				null, _ := c.Nullable()
				def, _ := c.DefaultValue()
				typ, _ := c.ColumnType()
				cols = append(cols, fmt.Sprintf("%s %s null=%v default=%q", c.Name(), strings.ToLower(typ), null, strings.Trim(def, "'")))
			}
		}
		slices.Sort(cols)
		idx, err := g.Migrator().GetIndexes(tbl)
		wantKind(t, err, nil)
		var names []string
		for _, ix := range idx {
			if ix.Name() != "PRIMARY" && !strings.HasPrefix(ix.Name(), "sqlite_autoindex") {
				names = append(names, ix.Name()+fmt.Sprint(ix.Columns()))
			}
		}
		slices.Sort(names)
		out[tbl] = strings.Join(cols, "\n") + "\nindexes " + strings.Join(names, " ")
	}
	return out
}

func compareSchemas(t *testing.T, ours, theirs map[string]string) {
	t.Helper()
	if !slices.Equal(slices.Sorted(maps.Keys(ours)), slices.Sorted(maps.Keys(theirs))) {
		t.Fatalf("tables differ:\n ours   %v\n glance %v", slices.Sorted(maps.Keys(ours)), slices.Sorted(maps.Keys(theirs)))
	}
	for tbl, want := range theirs {
		if ours[tbl] != want {
			t.Errorf("table %s differs:\n--- ours\n%s\n--- glance\n%s", tbl, ours[tbl], want)
		}
	}
}

// exerciseRepos runs image and member calls on a database made elsewhere.
func exerciseRepos(t *testing.T, d *db.DB) {
	t.Helper()
	id := add(t, d, "p1", domain.VisibilityShared, func(m *domain.Meta) {
		m.Tags = []string{"t"}
		m.Properties = map[string]string{"k": "v"}
		m.Locations = []domain.Location{{URL: "file:///x", Status: "active", Metadata: map[string]any{}}}
	})
	share(t, d, id, "p2", domain.MemberPending)
	img, err := d.Images(p1).Get(ctx, id)
	wantKind(t, err, nil)
	wantKind(t, img.Update(func(m *domain.Meta) error {
		m.Name = domain.Ptr("renamed")
		m.Properties = map[string]string{"k2": "v2"}
		return nil
	}), nil)
	wantKind(t, d.Images(p1).Save(ctx, img, domain.StatusQueued), nil)
	p, err := d.Images(p2).List(ctx, domain.ListQuery{Limit: 10, MemberStatus: "pending"})
	wantKind(t, err, nil)
	if len(p.Images) != 1 || *p.Images[0].Meta().Name != "renamed" || p.Images[0].Meta().Properties["k2"] != "v2" {
		t.Fatalf("list on the database: %v", ids(p))
	}
	mb, err := d.Members(p2, id).Get(ctx, "p2")
	wantKind(t, err, nil)
	mb.Status = domain.MemberAccepted
	wantKind(t, d.Members(p2, id).Save(ctx, mb), nil)
	wantKind(t, d.Members(p1, id).Remove(ctx, mb), nil)
	wantKind(t, d.Images(p1).Remove(ctx, img), nil)
	_, err = d.Images(p1).Get(ctx, id)
	wantKind(t, err, domain.ErrNotFound)
}

// TestGlanceManageSchema checks both directions against Glance 25.1: a
// database made by `glance-manage db_sync` is served unchanged, and one made
// by Sync is one glance-manage finds at its head.
func TestGlanceManageSchema(t *testing.T) {
	if _, err := os.Stat("/usr/bin/glance-manage"); err != nil {
		dbtest.SkipOrFail(t, "glance-manage (Debian's glance-common, Glance 25.1) is not installed; CI installs it")
	}
	type target struct {
		conn   string // for glance-manage
		ours   db.Config
		theirs db.Config
	}
	targets := map[string]func(t *testing.T) target{
		"sqlite": func(t *testing.T) target {
			dir := t.TempDir()
			theirs, ours := filepath.Join(dir, "glance.sqlite"), filepath.Join(dir, "ours.sqlite")
			return target{"sqlite:///" + theirs, db.Config{Connection: "sqlite:///" + ours}, db.Config{Connection: "sqlite:///" + theirs}}
		},
		"mysql": func(t *testing.T) target {
			theirs, ours := dbtest.MySQLDSN(t), dbtest.MySQLDSN(t)
			cfg, err := mysql.ParseDSN(theirs)
			wantKind(t, err, nil)
			conn := fmt.Sprintf("mysql+pymysql://%s:%s@%s/%s?charset=utf8", cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName)
			return target{conn, db.Config{Connection: ours}, db.Config{Connection: theirs}}
		},
	}
	for _, name := range []string{"sqlite", "mysql"} {
		t.Run(name, func(t *testing.T) {
			tg := targets[name](t)
			out := glanceManage(t, tg.conn, "db_sync")
			if !strings.Contains(out, "synced successfully") {
				t.Fatalf("db_sync output:\n%s", out)
			}

			theirs, err := db.Open(ctx, tg.theirs)
			wantKind(t, err, nil)
			defer theirs.Close()
			wantKind(t, theirs.CheckSchema(ctx), nil)
			v, err := theirs.Version(ctx)
			wantKind(t, err, nil)
			if v != db.Head {
				t.Fatalf("glance-manage left revision %q, Head is %q", v, db.Head)
			}
			before := columns(t, theirs)
			wantKind(t, theirs.Sync(ctx), nil)
			if after := columns(t, theirs); !maps.Equal(before, after) {
				t.Fatalf("Sync changed a glance-manage schema")
			}
			exerciseRepos(t, theirs)

			ours, err := db.Open(ctx, tg.ours)
			wantKind(t, err, nil)
			defer ours.Close()
			wantKind(t, ours.Sync(ctx), nil)
			compareSchemas(t, columns(t, ours), before)
			exerciseRepos(t, ours)

			var oursConn string
			if name == "sqlite" {
				oursConn = tg.ours.Connection
			} else {
				cfg, _ := mysql.ParseDSN(tg.ours.Connection)
				oursConn = fmt.Sprintf("mysql+pymysql://%s:%s@%s/%s?charset=utf8", cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName)
			}
			if out := glanceManage(t, oursConn, "db", "version"); !strings.Contains(out, db.Head) {
				t.Fatalf("glance-manage db version on our database:\n%s", out)
			}
			out = glanceManage(t, oursConn, "db_sync")
			if !strings.Contains(out, "up to date") || strings.Contains(out, "Running upgrade") {
				t.Fatalf("glance-manage db_sync on our database migrated something:\n%s", out)
			}
		})
	}
}
