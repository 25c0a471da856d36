package db

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/glance-go/glance-go/domain"
)

// maxCachedStmts bounds the prepared statements kept per database. The
// image repository's statements are a few dozen shapes; listings with
// unusual filter combinations beyond the bound run unprepared.
const maxCachedStmts = 256

// stmtCache keeps one prepared statement per SQL text, so that a hot query
// is parsed and planned once per connection instead of once per request.
// database/sql prepares a cached statement again on each connection that
// runs it, and a transaction borrows the statement of its own connection.
type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
	// statements counts every statement run through the cache, for tests
	// that bound the round trips of an operation.
	statements atomic.Int64
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// get returns the prepared statement for q, preparing it on first use. It
// returns nil, nil when the cache is full: the caller runs q unprepared.
func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.RLock()
	st := c.m[q]
	c.mu.RUnlock()
	if st != nil {
		return st, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[q]; st != nil {
		return st, nil
	}
	if len(c.m) >= maxCachedStmts {
		return nil, nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.m[q] = st
	return st, nil
}

// close closes every cached statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

// runner runs statements on the database, or inside tx when it is set,
// through the statement cache.
type runner struct {
	c  *stmtCache
	tx *sql.Tx
}

// stmt returns q's prepared statement bound to the runner's transaction,
// or nil when q is to run unprepared.
func (r runner) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	r.c.statements.Add(1)
	st, err := r.c.get(ctx, q)
	if err != nil || st == nil {
		return nil, err
	}
	if r.tx != nil {
		st = r.tx.StmtContext(ctx, st)
	}
	return st, nil
}

func (r runner) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := r.stmt(ctx, q)
	switch {
	case err != nil:
		return nil, err
	case st != nil:
		return st.QueryContext(ctx, args...)
	case r.tx != nil:
		return r.tx.QueryContext(ctx, q, args...)
	}
	return r.c.db.QueryContext(ctx, q, args...)
}

func (r runner) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := r.stmt(ctx, q)
	switch {
	case err != nil:
		return nil, err
	case st != nil:
		return st.ExecContext(ctx, args...)
	case r.tx != nil:
		return r.tx.ExecContext(ctx, q, args...)
	}
	return r.c.db.ExecContext(ctx, q, args...)
}

// queryRow runs q and scans its first row into dest; found is false when
// there is none.
func (r runner) queryRow(ctx context.Context, q string, args []any, dest ...any) (found bool, err error) {
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return false, rows.Err()
	}
	if err := rows.Scan(dest...); err != nil {
		return false, err
	}
	return true, rows.Close()
}

// inBatches are the lengths an IN list is padded to, so that lists of any
// length share a handful of prepared statements.
var inBatches = []int{1, 4, 16, 64, 256, childBatch}

// inList returns "(?, ?, ...)" for len(vals) values padded to the next
// batch length by repeating the last value (which does not change what IN
// matches), and the padded arguments. vals must not be empty nor longer
// than childBatch.
func inList[T any](vals []T) (string, []any) {
	n := len(vals)
	for _, b := range inBatches {
		if b >= n {
			n = b
			break
		}
	}
	args := make([]any, n)
	for i := range args {
		args[i] = vals[min(i, len(vals)-1)]
	}
	return "(" + strings.Repeat("?, ", n-1) + "?)", args
}

// placeholders returns "(?, ?, ...)" for n values.
func placeholders(n int) string {
	return "(" + strings.Repeat("?, ", n-1) + "?)"
}

// write runs fn in a write transaction. On SQLite, writers of this process
// queue on a mutex rather than in SQLite's busy handler, which polls. The
// record cache forgets the images of ids when the transaction has ended,
// whether or not it committed.
func (d *DB) write(ctx context.Context, fn func(r runner) error, ids ...string) error {
	return d.writeKeeping(ctx, fn, nil, ids...)
}

// writeKeeping is write, and then, when the transaction committed, keeps
// *keep in the record cache if fn filled it in. fn reads it in its
// transaction, after its changes: it is what was committed, and no other
// write of this process comes between the commit and the keeping.
func (d *DB) writeKeeping(ctx context.Context, fn func(r runner) error, keep *domain.Meta, ids ...string) error {
	if d.dialect == dialectSQLite {
		d.wmu.Lock()
		defer d.wmu.Unlock()
	}
	if d.cache == nil {
		tx, err := d.sql.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		return d.finish(tx, fn)
	}
	// The commit hook tells this transaction's commit from others by its
	// driver connection.
	conn, err := d.sql.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ref := &connRef{}
	if err := conn.Raw(func(dc any) error { ref.c = dc; return nil }); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	// The transaction holds SQLite's write lock from here on (it began
	// IMMEDIATE): every commit the cache has distrusted so far is visible.
	seen := d.cache.distrusted()
	d.writer.Store(ref)
	err = d.finish(tx, fn)
	d.writer.Store((*connRef)(nil))
	d.cache.settle(seen)
	d.cache.forget(ids...)
	if err == nil && keep != nil && keep.ID != "" {
		// A commit of another process since settle leaves the cache
		// suspect, and store refuses.
		d.cache.store(d.cache.begin(), keep)
	}
	return err
}

// finish runs fn in tx and commits it, or rolls it back when fn fails.
func (d *DB) finish(tx *sql.Tx, fn func(r runner) error) error {
	if err := fn(runner{c: d.stmts, tx: tx}); err != nil {
		tx.Rollback()
		return err
	}
	d.commits.Add(1)
	return tx.Commit()
}

// writeOne runs one statement in a write transaction and returns the rows
// it matched.
func (d *DB) writeOne(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := d.write(ctx, func(run runner) error {
		res, err := run.exec(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// connRef holds the driver connection of the transaction DB.write is
// committing.
type connRef struct{ c any }

// read returns the runner for statements outside a transaction.
func (d *DB) read() runner { return runner{c: d.stmts} }
