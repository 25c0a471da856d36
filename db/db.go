// Package db stores images, their properties, tags, locations and members in
// the tables of Glance's own database (glance/db/sqlalchemy), so that
// glance-go and Glance can serve the same database.
//
// The embedded default is pure-Go SQLite; MySQL and MariaDB are reached with
// the same connection strings Glance's [database] connection option takes.
// Open connects, Sync creates or upgrades the schema, and Images and Members
// hand out per-request repositories that apply the caller's visibility
// (glance/db/sqlalchemy/api.py and glance/db/utils.py are the counterpart).
package db

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	msqlite "modernc.org/sqlite"

	"github.com/glance-go/glance-go/domain"
)

// Config is the [database] section of glance-api.conf.
type Config struct {
	// Connection is an oslo.db URL ("sqlite:////var/lib/glance/glance.sqlite",
	// "mysql+pymysql://glance:pw@db/glance?charset=utf8"), ":memory:", or a
	// go-sql-driver DSN ("glance:pw@tcp(db:3306)/glance").
	Connection string
	// MaxPoolSize is max_pool_size: on MySQL the connections kept open
	// between calls (0: DefaultMaxPoolSize); on an SQLite file every
	// connection (0: 16). An in-memory SQLite has one.
	MaxPoolSize int
	// MaxOverflow is max_overflow: the MySQL connections opened past
	// MaxPoolSize while every one is in use, and closed again when idle.
	// Negative: no bound.
	MaxOverflow int
	// PoolTimeout is pool_timeout: how long a call waits for a connection
	// when MaxPoolSize+MaxOverflow are in use, before it fails with a
	// PoolTimeoutError (0: DefaultPoolTimeout).
	PoolTimeout time.Duration
	// ConnMaxLifetime is connection_recycle_time (0: connections are reused
	// forever).
	ConnMaxLifetime time.Duration
	// CallTimeout bounds every call of the package, waits included
	// (0: DefaultCallTimeout; negative: no bound).
	CallTimeout time.Duration
	// RecordCache bounds the image records an SQLite database keeps
	// decoded in memory (see recordCache): 0 means DefaultRecordCache, a
	// negative number none. MySQL keeps none.
	RecordCache int
}

// DefaultRecordCache is the number of image records an SQLite database
// keeps decoded by default, a few KiB each.
const DefaultRecordCache = 10000

// dialect names the SQL flavour a DB speaks.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectMySQL
)

// DB is an open database. It is safe for concurrent use.
type DB struct {
	g       *gorm.DB
	sql     *sql.DB
	stmts   *stmtCache
	dialect dialect
	// wslot queues this process's SQLite write transactions (see
	// takeWriteSlot).
	wslot chan struct{}
	// poolTimeout and callTimeout are Config's, defaults applied.
	poolTimeout, callTimeout time.Duration
	poolTimeouts             atomic.Int64
	// deadlocks counts the MySQL transactions run again after a deadlock.
	deadlocks atomic.Int64
	// jsonAgg tells that the MySQL server has JSON_ARRAYAGG and
	// JSON_OBJECTAGG (MariaDB 10.5, MySQL 5.7.22 and later): a listing
	// page aggregates its images' children in its own statement.
	jsonAgg bool
	// commits counts write transactions, for the checkpointer.
	commits        atomic.Int64
	stopCheckpoint func()
	// cache keeps decoded image records of an SQLite database (nil for
	// MySQL, or when RecordCache is negative).
	cache *recordCache
	// writer is the driver connection of the transaction DB.write is
	// committing, which SQLite's commit hook compares its own with.
	writer atomic.Pointer[connRef]
}

// sqliteMaxConns is the default pool size for an SQLite file: readers run
// side by side in WAL mode, writers queue on DB.wmu. Idle connections are
// kept, with their page caches and prepared statements.
const sqliteMaxConns = 16

// OpError is a failure of the database itself (not of the request): the
// connection dropped, the disk is full, the schema is broken. It unwraps to
// domain.ErrUnavailable and to the driver's error.
type OpError struct {
	Op  string
	Err error
}

// Error describes the failed operation and its cause.
func (e *OpError) Error() string { return "db: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns domain.ErrUnavailable and the underlying error.
func (e *OpError) Unwrap() []error { return []error{domain.ErrUnavailable, e.Err} }

// opErr wraps a driver error in an OpError, passing domain errors and
// context cancellations through unchanged.
func opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) || errors.Is(err, domain.ErrUnavailable) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{Op: op, Err: err}
}

// Open connects to the database named by cfg.Connection and checks that it
// answers. It does not create or check the schema: call Sync or CheckSchema.
// SQLite runs in WAL mode with a busy timeout and foreign keys on; MySQL
// connections use utf8mb4, UTC and parsed times.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	dial, dsn, memory, err := parseConnection(cfg.Connection)
	if err != nil {
		return nil, err
	}
	var dl gorm.Dialector
	d := &DB{dialect: dial, wslot: make(chan struct{}, 1),
		poolTimeout: cmp.Or(cfg.PoolTimeout, DefaultPoolTimeout), callTimeout: cmp.Or(cfg.CallTimeout, DefaultCallTimeout)}
	if dial == dialectSQLite {
		if cfg.RecordCache >= 0 {
			n := cfg.RecordCache
			if n == 0 {
				n = DefaultRecordCache
			}
			d.cache = newRecordCache(n)
		}
		base, err := msqlite.NewConnector(dsn)
		if err != nil {
			return nil, opErr("open", err)
		}
		dl = sqlite.Dialector{Conn: sql.OpenDB(&hookedConnector{Connector: base, d: d})}
	} else {
		dl = gormmysql.New(gormmysql.Config{DSN: dsn, DefaultStringSize: 255})
	}
	g, err := gorm.Open(dl, &gorm.Config{
		SkipDefaultTransaction: true,
		Logger:                 logger.Default.LogMode(logger.Silent),
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, opErr("open", err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, opErr("open", err)
	}
	switch {
	case memory:
		// Every connection to ":memory:" is a database of its own: keep one.
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
	case dial == dialectSQLite:
		n := cmp.Or(cfg.MaxPoolSize, sqliteMaxConns)
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
	default:
		idle := cmp.Or(cfg.MaxPoolSize, DefaultMaxPoolSize)
		sqlDB.SetMaxIdleConns(idle)
		if cfg.MaxOverflow >= 0 {
			sqlDB.SetMaxOpenConns(idle + cfg.MaxOverflow)
		}
	}
	if !memory && cfg.ConnMaxLifetime > 0 {
		sqlDB.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, opErr("open", err)
	}
	d.g, d.sql, d.stmts = g, sqlDB, newStmtCache(sqlDB, dial == dialectSQLite, d.poolTimeout)
	if dial == dialectMySQL {
		var probe sql.NullString
		d.jsonAgg = sqlDB.QueryRowContext(ctx, "SELECT JSON_ARRAYAGG(1)").Scan(&probe) == nil
	}
	if dial == dialectSQLite && !memory {
		d.startCheckpointer()
	}
	return d, nil
}

// Close closes every connection.
func (d *DB) Close() error {
	if d.stopCheckpoint != nil {
		d.stopCheckpoint()
	}
	d.stmts.close()
	return opErr("close", d.sql.Close())
}

// checkpointEvery is how often the write-ahead log of an SQLite file is
// copied back into the database, when something was written.
const checkpointEvery = 250 * time.Millisecond

// startCheckpointer copies the SQLite write-ahead log into the database in
// the background. Connections of this process do not checkpoint when they
// commit (wal_autocheckpoint is 0), so a request never pays for it. A
// PASSIVE checkpoint waits for neither readers nor writers; the log is
// reused from its start once a checkpoint has caught up with it. Other
// processes on the same file keep SQLite's default.
func (d *DB) startCheckpointer() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.stopCheckpoint = func() {
		cancel()
		<-done
	}
	go func() {
		defer close(done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		var seen int64
		for tick := 1; ; tick++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// Writes outside the image repository (members, schema) are
			// not counted: they are caught by a checkpoint every 40 ticks.
			if n := d.commits.Load(); n != seen || tick%40 == 0 {
				seen = n
				// A failed checkpoint is retried at the next tick.
				_, _ = d.sql.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
}

// Exclusive reports whether the database belongs to this process alone: an
// SQLite file, which several servers cannot share.
func (d *DB) Exclusive() bool { return d.dialect == dialectSQLite }

// Gorm returns the underlying gorm handle, for tests and tools.
func (d *DB) Gorm() *gorm.DB { return d.g }

// sqlitePragmas are applied to every SQLite connection. Write transactions
// take the write lock when they begin, so that a read-then-write transaction
// waits for the lock instead of failing with SQLITE_BUSY. Each connection
// caches up to 16 MiB of pages and keeps temporary tables and sort data in
// memory.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate" +
	"&_pragma=cache_size(-16384)&_pragma=temp_store(MEMORY)"

// sqliteFilePragmas are added for a database file. In WAL mode,
// synchronous=NORMAL syncs the log at checkpoints rather than at every
// commit: the database stays consistent through any crash, and a process
// crash loses nothing, but an operating-system crash or a power loss may
// undo the last commits before it. Reads go through a memory map of up to 256 MiB instead of a system
// call per page. Checkpoints run in the background (see startCheckpointer).
const sqliteFilePragmas = "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=mmap_size(268435456)" +
	"&_pragma=wal_autocheckpoint(0)"

// parseConnection turns a connection string into a dialect and a driver DSN.
func parseConnection(conn string) (d dialect, dsn string, memory bool, err error) {
	conn = strings.TrimSpace(conn)
	bad := func(why string) (dialect, string, bool, error) {
		return 0, "", false, domain.Errorf(domain.ErrInvalid, "Invalid [database] connection %q: %s", redact(conn), why)
	}
	switch {
	case conn == "":
		return bad("it is empty")
	case conn == ":memory:" || conn == "sqlite://" || conn == "sqlite:///:memory:" || conn == "sqlite:///":
		return dialectSQLite, ":memory:?" + sqlitePragmas, true, nil
	case strings.HasPrefix(conn, "sqlite:///"):
		path := strings.TrimPrefix(conn, "sqlite:///") // "/abs" for sqlite:////abs, "rel" otherwise
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path == "" || path == ":memory:" {
			return dialectSQLite, ":memory:?" + sqlitePragmas, true, nil
		}
		return dialectSQLite, path + "?" + sqlitePragmas + sqliteFilePragmas, false, nil
	case strings.HasPrefix(conn, "sqlite:"):
		return bad("use sqlite:////absolute/path or sqlite:///relative/path")
	case strings.HasPrefix(conn, "mysql:") || strings.HasPrefix(conn, "mysql+"):
		cfg, err := mysqlURL(conn)
		if err != nil {
			return bad(err.Error())
		}
		return dialectMySQL, finishMySQL(cfg).FormatDSN(), false, nil
	case strings.Contains(conn, "://"):
		return bad("only sqlite and mysql are supported")
	}
	cfg, perr := mysql.ParseDSN(conn)
	if perr != nil {
		return bad(perr.Error())
	}
	return dialectMySQL, finishMySQL(cfg).FormatDSN(), false, nil
}

// mysqlURL parses the SQLAlchemy form mysql[+driver]://user:pw@host[:port]/db?opts.
func mysqlURL(conn string) (*mysql.Config, error) {
	u, err := url.Parse(conn)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" {
		return nil, errors.New("no database name")
	}
	q := u.Query()
	if sock := q.Get("unix_socket"); sock != "" {
		cfg.Net, cfg.Addr = "unix", sock
	} else {
		host := u.Hostname()
		if host == "" {
			host = "127.0.0.1"
		}
		port := u.Port()
		if port == "" {
			port = "3306"
		}
		cfg.Net = "tcp"
		cfg.Addr = joinHostPort(host, port)
	}
	return cfg, nil
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// finishMySQL forces the connection settings the package relies on.
func finishMySQL(cfg *mysql.Config) *mysql.Config {
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	// UPDATE reports matched rows, so that a compare-and-swap that rewrites
	// identical values still counts as a win.
	cfg.ClientFoundRows = true
	cfg.Collation = "utf8mb4_general_ci"
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	delete(cfg.Params, "charset")
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.Params["sql_mode"] = "'TRADITIONAL'"
	// Arguments are interpolated into the statement's text by the driver:
	// one round trip a statement, and no prepared statement left on the
	// server (see stmtCache).
	cfg.InterpolateParams = true
	// MariaDB's JSON aggregates stop at group_concat_max_len (1 MiB by
	// default): an image's properties may take more.
	cfg.Params["group_concat_max_len"] = "4294967295"
	// An index merge intersection of Glance's one-column indexes (on
	// image_id and on deleted) makes InnoDB lock every live row of a
	// child table when one image's rows are updated, and deadlock under
	// concurrent writers; a listing's page is also found faster along
	// created_at than through it.
	cfg.Params["optimizer_switch"] = "'index_merge_intersection=off'"
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	return cfg
}

// redact hides the password of a connection URL or DSN.
func redact(conn string) string {
	if u, err := url.Parse(conn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "***")
			return u.String()
		}
	}
	if at := strings.LastIndex(conn, "@"); at >= 0 {
		if colon := strings.Index(conn[:at], ":"); colon >= 0 && !strings.Contains(conn[:at], "/") {
			return conn[:colon+1] + "***" + conn[at:]
		}
	}
	return conn
}

// String describes the database, without credentials.
func (d *DB) String() string {
	if d.dialect == dialectSQLite {
		return "sqlite"
	}
	return "mysql"
}
