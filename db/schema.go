package db

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/glance-go/glance-go/domain"
)

// Head is the alembic revision this package's schema corresponds to: the
// revision Glance 25.1 (Zed) leaves after `glance-manage db_sync`.
const Head = "wallaby_contract01"

// revisions are Glance's alembic revisions this package knows, oldest first,
// contract and expand branches interleaved. Those up to Head can be upgraded
// to Head; those after it changed no table, so a database stamped with one
// is served as it is.
var revisions = []string{
	"liberty", "mitaka01", "mitaka02",
	"ocata_expand01", "ocata_contract01",
	"pike_expand01", "pike_contract01",
	"queens_expand01", "queens_contract01",
	"rocky_expand01", "rocky_contract01", "rocky_expand02", "rocky_contract02",
	"train_expand01", "train_contract01",
	"ussuri_expand01", "ussuri_contract01",
	"wallaby_expand01", "wallaby_contract01",
	"xena_expand01", "xena_contract01",
	"yoga_expand01", "yoga_contract01",
	"zed_expand01", "zed_contract01",
}

// oldestUpgradable is the first revision Sync upgrades from. Older
// databases still carry the v1 is_public column and need Glance's own
// data migrations.
const oldestUpgradable = "ocata_expand01"

func revisionIndex(rev string) int { return slices.Index(revisions, rev) }

// column is one column of a table, rendered per dialect.
type column struct {
	name    string
	typ     string // serial, int, bigint, bool, datetime, text, varchar(N), visibility
	notNull bool
	def     string // server default, as SQL
}

// table is one of Glance's tables with its keys and indexes.
type table struct {
	name    string
	cols    []column
	pk      []string
	uniques [][]string // the first element is the constraint name
	fks     [][3]string
	indexes [][]string // the first element is the index name
	checks  []string   // boolean columns, checked to be 0 or 1
}

// softDelete are the timestamp and soft-delete columns of GlanceBase.
var softDelete = []column{
	{name: "created_at", typ: "datetime", notNull: true},
	{name: "updated_at", typ: "datetime"},
	{name: "deleted_at", typ: "datetime"},
	{name: "deleted", typ: "bool", notNull: true},
}

var timestamps = []column{
	{name: "created_at", typ: "datetime", notNull: true},
	{name: "updated_at", typ: "datetime"},
}

func cols(lists ...[]column) []column {
	var out []column
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// glanceTables is Glance's schema at Head, in creation order (parents first).
var glanceTables = []table{
	{
		name: "images",
		cols: cols([]column{
			{name: "id", typ: "varchar(36)", notNull: true},
			{name: "name", typ: "varchar(255)"},
			{name: "size", typ: "bigint"},
			{name: "status", typ: "varchar(30)", notNull: true},
		}, softDelete, []column{
			{name: "disk_format", typ: "varchar(20)"},
			{name: "container_format", typ: "varchar(20)"},
			{name: "checksum", typ: "varchar(32)"},
			{name: "owner", typ: "varchar(255)"},
			{name: "min_disk", typ: "int", notNull: true},
			{name: "min_ram", typ: "int", notNull: true},
			{name: "protected", typ: "bool", notNull: true, def: "0"},
			{name: "virtual_size", typ: "bigint"},
			{name: "visibility", typ: "visibility", notNull: true, def: "'shared'"},
			{name: "os_hidden", typ: "bool", notNull: true, def: "0"},
			{name: "os_hash_algo", typ: "varchar(64)"},
			{name: "os_hash_value", typ: "varchar(128)"},
		}),
		pk: []string{"id"},
		indexes: [][]string{
			{"checksum_image_idx", "checksum"},
			{"ix_images_deleted", "deleted"},
			{"owner_image_idx", "owner"},
			{"created_at_image_idx", "created_at"},
			{"updated_at_image_idx", "updated_at"},
			{"visibility_image_idx", "visibility"},
			{"os_hidden_image_idx", "os_hidden"},
			{"os_hash_value_image_idx", "os_hash_value"},
		},
		checks: []string{"deleted", "protected"},
	},
	{
		name: "image_properties",
		cols: cols([]column{
			{name: "id", typ: "serial", notNull: true},
			{name: "image_id", typ: "varchar(36)", notNull: true},
			{name: "name", typ: "varchar(255)", notNull: true},
			{name: "value", typ: "text"},
		}, softDelete),
		pk:      []string{"id"},
		uniques: [][]string{{"ix_image_properties_image_id_name", "image_id", "name"}},
		fks:     [][3]string{{"image_id", "images", "id"}},
		indexes: [][]string{
			{"ix_image_properties_deleted", "deleted"},
			{"ix_image_properties_image_id", "image_id"},
		},
		checks: []string{"deleted"},
	},
	{
		name: "image_locations",
		cols: cols([]column{
			{name: "id", typ: "serial", notNull: true},
			{name: "image_id", typ: "varchar(36)", notNull: true},
			{name: "value", typ: "text", notNull: true},
		}, softDelete, []column{
			{name: "meta_data", typ: "text"},
			{name: "status", typ: "varchar(30)", notNull: true, def: "'active'"},
		}),
		pk:  []string{"id"},
		fks: [][3]string{{"image_id", "images", "id"}},
		indexes: [][]string{
			{"ix_image_locations_deleted", "deleted"},
			{"ix_image_locations_image_id", "image_id"},
		},
		checks: []string{"deleted"},
	},
	{
		name: "image_members",
		cols: cols([]column{
			{name: "id", typ: "serial", notNull: true},
			{name: "image_id", typ: "varchar(36)", notNull: true},
			{name: "member", typ: "varchar(255)", notNull: true},
			{name: "can_share", typ: "bool", notNull: true},
		}, softDelete, []column{
			{name: "status", typ: "varchar(20)", notNull: true, def: "'pending'"},
		}),
		pk:      []string{"id"},
		uniques: [][]string{{"image_members_image_id_member_deleted_at_key", "image_id", "member", "deleted_at"}},
		fks:     [][3]string{{"image_id", "images", "id"}},
		indexes: [][]string{
			{"ix_image_members_deleted", "deleted"},
			{"ix_image_members_image_id", "image_id"},
			{"ix_image_members_image_id_member", "image_id", "member"},
		},
		checks: []string{"can_share", "deleted"},
	},
	{
		name: "image_tags",
		cols: cols([]column{
			{name: "id", typ: "serial", notNull: true},
			{name: "image_id", typ: "varchar(36)", notNull: true},
			{name: "value", typ: "varchar(255)", notNull: true},
		}, softDelete),
		pk:  []string{"id"},
		fks: [][3]string{{"image_id", "images", "id"}},
		indexes: [][]string{
			{"ix_image_tags_image_id", "image_id"},
			{"ix_image_tags_image_id_tag_value", "image_id", "value"},
		},
		checks: []string{"deleted"},
	},
	{
		name: "tasks",
		cols: cols([]column{
			{name: "id", typ: "varchar(36)", notNull: true},
			{name: "type", typ: "varchar(30)", notNull: true},
			{name: "status", typ: "varchar(30)", notNull: true},
			{name: "owner", typ: "varchar(255)", notNull: true},
			{name: "expires_at", typ: "datetime"},
		}, softDelete, []column{
			{name: "image_id", typ: "varchar(36)"},
			{name: "request_id", typ: "varchar(64)"},
			{name: "user_id", typ: "varchar(64)"},
		}),
		pk: []string{"id"},
		indexes: [][]string{
			{"ix_tasks_type", "type"},
			{"ix_tasks_status", "status"},
			{"ix_tasks_owner", "owner"},
			{"ix_tasks_deleted", "deleted"},
			{"ix_tasks_updated_at", "updated_at"},
			{"ix_tasks_image_id", "image_id"},
		},
		checks: []string{"deleted"},
	},
	{
		name: "task_info",
		cols: []column{
			{name: "task_id", typ: "varchar(36)", notNull: true},
			{name: "input", typ: "text"},
			{name: "result", typ: "text"},
			{name: "message", typ: "text"},
		},
		pk:  []string{"task_id"},
		fks: [][3]string{{"task_id", "tasks", "id"}},
	},
	{
		name: "metadef_namespaces",
		cols: cols([]column{
			{name: "id", typ: "serial", notNull: true},
			{name: "namespace", typ: "varchar(80)", notNull: true},
			{name: "display_name", typ: "varchar(80)"},
			{name: "description", typ: "text"},
			{name: "visibility", typ: "varchar(32)"},
			{name: "protected", typ: "bool"},
			{name: "owner", typ: "varchar(255)", notNull: true},
		}, timestamps),
		pk:      []string{"id"},
		uniques: [][]string{{"uq_metadef_namespaces_namespace", "namespace"}},
		indexes: [][]string{{"ix_metadef_namespaces_owner", "owner"}},
		checks:  []string{"protected"},
	},
	{
		name: "metadef_resource_types",
		cols: cols([]column{
			{name: "id", typ: "serial", notNull: true},
			{name: "name", typ: "varchar(80)", notNull: true},
			{name: "protected", typ: "bool", notNull: true},
		}, timestamps),
		pk:      []string{"id"},
		uniques: [][]string{{"uq_metadef_resource_types_name", "name"}},
		checks:  []string{"protected"},
	},
	{
		name: "metadef_namespace_resource_types",
		cols: cols([]column{
			{name: "resource_type_id", typ: "int", notNull: true},
			{name: "namespace_id", typ: "int", notNull: true},
			{name: "properties_target", typ: "varchar(80)"},
			{name: "prefix", typ: "varchar(80)"},
		}, timestamps),
		pk: []string{"resource_type_id", "namespace_id"},
		fks: [][3]string{
			{"namespace_id", "metadef_namespaces", "id"},
			{"resource_type_id", "metadef_resource_types", "id"},
		},
		indexes: [][]string{{"ix_metadef_ns_res_types_namespace_id", "namespace_id"}},
	},
	{
		name: "metadef_objects",
		cols: cols([]column{
			{name: "id", typ: "serial", notNull: true},
			{name: "namespace_id", typ: "int", notNull: true},
			{name: "name", typ: "varchar(80)", notNull: true},
			{name: "description", typ: "text"},
			{name: "required", typ: "text"},
			{name: "json_schema", typ: "text", notNull: true},
		}, timestamps),
		pk:      []string{"id"},
		uniques: [][]string{{"uq_metadef_objects_namespace_id_name", "namespace_id", "name"}},
		fks:     [][3]string{{"namespace_id", "metadef_namespaces", "id"}},
		indexes: [][]string{{"ix_metadef_objects_name", "name"}},
	},
	{
		name: "metadef_properties",
		cols: cols([]column{
			{name: "id", typ: "serial", notNull: true},
			{name: "namespace_id", typ: "int", notNull: true},
			{name: "name", typ: "varchar(80)", notNull: true},
			{name: "json_schema", typ: "text", notNull: true},
		}, timestamps),
		pk:      []string{"id"},
		uniques: [][]string{{"uq_metadef_properties_namespace_id_name", "namespace_id", "name"}},
		fks:     [][3]string{{"namespace_id", "metadef_namespaces", "id"}},
		indexes: [][]string{{"ix_metadef_properties_name", "name"}},
	},
	{
		name: "metadef_tags",
		cols: cols([]column{
			{name: "id", typ: "serial", notNull: true},
			{name: "namespace_id", typ: "int", notNull: true},
			{name: "name", typ: "varchar(80)", notNull: true},
		}, timestamps),
		pk:      []string{"id"},
		uniques: [][]string{{"uq_metadef_tags_namespace_id_name", "namespace_id", "name"}},
		fks:     [][3]string{{"namespace_id", "metadef_namespaces", "id"}},
		indexes: [][]string{{"ix_metadef_tags_name", "name"}},
	},
	{
		name: "alembic_version",
		cols: []column{{name: "version_num", typ: "varchar(32)", notNull: true}},
		pk:   []string{"version_num"},
	},
}

// colType renders a column type for the dialect.
func (d dialect) colType(typ string) string {
	if d == dialectSQLite {
		switch typ {
		case "serial", "int":
			return "INTEGER"
		case "bigint":
			return "BIGINT"
		case "bool":
			return "BOOLEAN"
		case "datetime":
			return "DATETIME"
		case "text":
			return "TEXT"
		case "visibility":
			return "VARCHAR(9)"
		}
		return strings.ToUpper(typ)
	}
	switch typ {
	case "serial":
		return "INT(11) NOT NULL AUTO_INCREMENT"
	case "int":
		return "INT(11)"
	case "bigint":
		return "BIGINT(20)"
	case "bool":
		return "TINYINT(1)"
	case "datetime":
		return "DATETIME"
	case "text":
		return "TEXT"
	case "visibility":
		return "ENUM('private','public','shared','community')"
	}
	return strings.ToUpper(typ)
}

// createStatements renders t as CREATE TABLE and CREATE INDEX statements.
func (d dialect) createStatements(t table) []string {
	var lines []string
	for _, c := range t.cols {
		typ := d.colType(c.typ)
		line := c.name + " " + typ
		if c.def != "" {
			line += " DEFAULT " + c.def
		}
		if c.notNull && !strings.Contains(typ, "NOT NULL") {
			line += " NOT NULL"
		}
		lines = append(lines, line)
	}
	lines = append(lines, "PRIMARY KEY ("+strings.Join(t.pk, ", ")+")")
	for _, u := range t.uniques {
		lines = append(lines, "CONSTRAINT "+u[0]+" UNIQUE ("+strings.Join(u[1:], ", ")+")")
	}
	for _, fk := range t.fks {
		lines = append(lines, "FOREIGN KEY("+fk[0]+") REFERENCES "+fk[1]+" ("+fk[2]+")")
	}
	for _, c := range t.checks {
		lines = append(lines, "CHECK ("+c+" IN (0, 1))")
	}
	stmt := "CREATE TABLE " + t.name + " (\n\t" + strings.Join(lines, ",\n\t") + "\n)"
	if d == dialectMySQL {
		stmt += " ENGINE=InnoDB DEFAULT CHARSET=utf8"
	}
	out := []string{stmt}
	for _, ix := range t.indexes {
		out = append(out, "CREATE INDEX "+ix[0]+" ON "+t.name+" ("+strings.Join(ix[1:], ", ")+")")
	}
	return out
}

// Version returns the revision stamped in alembic_version, "" for a
// database without one. A database in the middle of a rolling upgrade has
// two rows; Version returns the newest.
func (d *DB) Version(ctx context.Context) (string, error) {
	revs, err := d.stamped(d.g.WithContext(ctx))
	if err != nil {
		return "", err
	}
	best := ""
	for _, r := range revs {
		if best == "" || revisionIndex(r) > revisionIndex(best) {
			best = r
		}
	}
	return best, nil
}

// stamped returns the rows of alembic_version, none if the table is missing.
func (d *DB) stamped(g *gorm.DB) ([]string, error) {
	if !g.Migrator().HasTable("alembic_version") {
		return nil, nil
	}
	var revs []string
	if err := g.Raw("SELECT version_num FROM alembic_version").Scan(&revs).Error; err != nil {
		return nil, opErr("version", err)
	}
	return revs, nil
}

// Sync brings the schema to Head. On an empty database it creates Glance's
// tables and stamps Head; on one at or after Head it does nothing; on an
// older one (Ocata or later) it adds the columns and indexes Glance added
// since, then stamps Head. It is idempotent.
func (d *DB) Sync(ctx context.Context) error {
	if err := d.sync(ctx); err != nil {
		return err
	}
	// The schema's statements bypass DB.write, so the record cache
	// distrusts them; an empty write transaction after them settles it.
	return opErr("sync", d.write(ctx, func(runner) error { return nil }))
}

func (d *DB) sync(ctx context.Context) error {
	g := d.g.WithContext(ctx)
	revs, err := d.stamped(g)
	if err != nil {
		return err
	}
	if len(revs) == 0 {
		if g.Migrator().HasTable("images") {
			return domain.Errorf(domain.ErrInvalid,
				"The database has Glance tables but no alembic_version revision; stamp it with `glance-manage db stamp` first.")
		}
		return d.create(g)
	}
	oldest := len(revisions)
	for _, r := range revs {
		i := revisionIndex(r)
		if i < 0 {
			return domain.Errorf(domain.ErrInvalid, "The database is at revision %s, which this release does not know.", r)
		}
		oldest = min(oldest, i)
	}
	if oldest >= revisionIndex(Head) {
		return nil
	}
	if oldest < revisionIndex(oldestUpgradable) {
		return domain.Errorf(domain.ErrInvalid,
			"The database is at revision %s, older than Ocata: upgrade it with Glance's `glance-manage db sync` first.", revs[0])
	}
	return d.upgrade(g)
}

// create makes every table on an empty database and stamps Head.
func (d *DB) create(g *gorm.DB) error {
	// MySQL commits DDL implicitly, so a transaction would not help there;
	// on SQLite it makes the creation all or nothing.
	run := func(tx *gorm.DB) error {
		for _, t := range glanceTables {
			if tx.Migrator().HasTable(t.name) {
				continue
			}
			for _, s := range d.dialect.createStatements(t) {
				if err := tx.Exec(s).Error; err != nil {
					return opErr("sync", fmt.Errorf("%s: %w", t.name, err))
				}
			}
		}
		if err := tx.Exec("DELETE FROM alembic_version").Error; err != nil {
			return opErr("sync", err)
		}
		return opErr("sync", tx.Exec("INSERT INTO alembic_version (version_num) VALUES (?)", Head).Error)
	}
	if d.dialect == dialectSQLite {
		return g.Transaction(run)
	}
	return run(g)
}

// upgrade adds what Glance's Rocky and Wallaby migrations added, skipping
// what is already there, and stamps Head.
func (d *DB) upgrade(g *gorm.DB) error {
	type addCol struct {
		table, col, def string
	}
	b := d.dialect.colType("bool")
	adds := []addCol{
		{"images", "os_hidden", "os_hidden " + b + " DEFAULT 0 NOT NULL"},
		{"images", "os_hash_algo", "os_hash_algo VARCHAR(64)"},
		{"images", "os_hash_value", "os_hash_value VARCHAR(128)"},
		{"tasks", "image_id", "image_id VARCHAR(36)"},
		{"tasks", "request_id", "request_id VARCHAR(64)"},
		{"tasks", "user_id", "user_id VARCHAR(64)"},
	}
	m := g.Migrator()
	for _, a := range adds {
		if m.HasColumn(a.table, a.col) {
			continue
		}
		if err := g.Exec("ALTER TABLE " + a.table + " ADD COLUMN " + a.def).Error; err != nil {
			return opErr("sync", err)
		}
	}
	indexes := [][3]string{
		{"images", "os_hidden_image_idx", "os_hidden"},
		{"images", "os_hash_value_image_idx", "os_hash_value"},
		{"tasks", "ix_tasks_image_id", "image_id"},
	}
	for _, ix := range indexes {
		if m.HasIndex(ix[0], ix[1]) {
			continue
		}
		if err := g.Exec("CREATE INDEX " + ix[1] + " ON " + ix[0] + " (" + ix[2] + ")").Error; err != nil {
			return opErr("sync", err)
		}
	}
	return g.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("DELETE FROM alembic_version").Error; err != nil {
			return opErr("sync", err)
		}
		return opErr("sync", tx.Exec("INSERT INTO alembic_version (version_num) VALUES (?)", Head).Error)
	})
}

// CheckSchema reports whether the database is ready to serve: every table
// present and the revision at or after Head. Its error tells the operator
// to run `glance-api db sync`.
func (d *DB) CheckSchema(ctx context.Context) error {
	g := d.g.WithContext(ctx)
	var missing []string
	for _, t := range glanceTables {
		if !g.Migrator().HasTable(t.name) {
			missing = append(missing, t.name)
		}
	}
	if len(missing) > 0 {
		return domain.Errorf(domain.ErrUnavailable,
			"The database schema is missing (no table %s); run `glance-api db sync` to create it.", strings.Join(missing, ", "))
	}
	rev, err := d.Version(ctx)
	if err != nil {
		return err
	}
	switch i := revisionIndex(rev); {
	case rev == "":
		return domain.Errorf(domain.ErrUnavailable,
			"The database has no schema revision; run `glance-api db sync`.")
	case i < 0:
		return domain.Errorf(domain.ErrUnavailable,
			"The database is at revision %s, which this release does not know.", rev)
	case i < revisionIndex(Head):
		return domain.Errorf(domain.ErrUnavailable,
			"The database is at revision %s, older than %s; run `glance-api db sync` to upgrade it.", rev, Head)
	}
	return nil
}
