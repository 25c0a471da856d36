package db

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/glance-go/glance-go/domain"
)

// maxCachedStmts bounds the prepared statements kept per database. The
// image repository's statements are a few dozen shapes; listings with
// unusual filter combinations beyond the bound run unprepared.
const maxCachedStmts = 256

// stmtCache keeps one prepared statement per SQL text on an SQLite
// database, so that a hot query is parsed and planned once per connection
// instead of once per request. database/sql prepares a cached statement
// again on each connection that runs it, and a transaction borrows the
// statement of its own connection.
//
// The cache never makes a statement wait: a text seen for the first time
// runs unprepared, and the cache prepares it in the background, on a
// connection of its own, for the next callers. Preparing it in the caller
// would wait for a free connection of the pool while the caller may hold
// one itself, in a transaction: with every connection held that way, no
// caller could go on.
//
// MySQL statements are never prepared: the driver interpolates the
// arguments into the text (interpolateParams), so that every statement is
// one round trip and the server keeps no statement per connection
// (max_prepared_stmt_count is shared by every node of a cloud).
type stmtCache struct {
	db      *sql.DB
	prepare bool          // false: every statement runs unprepared
	timeout time.Duration // bound of a background preparation's wait for a connection

	mu      sync.RWMutex
	m       map[string]*sql.Stmt
	pending map[string]bool // texts being prepared in the background
	closed  bool
	stop    context.CancelFunc // cancels the preparations still waiting
	ctx     context.Context
	wg      sync.WaitGroup

	// statements counts every statement run through the cache, for tests
	// that bound the round trips of an operation.
	statements atomic.Int64
}

func newStmtCache(db *sql.DB, prepare bool, timeout time.Duration) *stmtCache {
	ctx, stop := context.WithCancel(context.Background())
	return &stmtCache{db: db, prepare: prepare, timeout: timeout, ctx: ctx, stop: stop,
		m: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

// get returns the prepared statement for q, or nil when q is to run
// unprepared this time: on its first use, when the cache is full, and
// always on MySQL. It holds the cache's lock only to read and write its
// maps.
func (c *stmtCache) get(q string) *sql.Stmt {
	if !c.prepare {
		return nil
	}
	c.mu.RLock()
	st := c.m[q]
	c.mu.RUnlock()
	if st != nil {
		return st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[q]; st != nil {
		return st
	}
	if !c.closed && !c.pending[q] && len(c.m)+len(c.pending) < maxCachedStmts {
		c.pending[q] = true
		c.wg.Add(1)
		go c.prepareLater(q)
	}
	return nil
}

// prepareLater prepares q on a connection of the pool, waiting for one at
// most c.timeout, and keeps it unless the cache has been closed meanwhile.
// A text that fails to prepare is tried again at its next use.
func (c *stmtCache) prepareLater(q string) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	st, err := c.db.PrepareContext(ctx, q)
	cancel()
	c.mu.Lock()
	delete(c.pending, q)
	if err == nil && !c.closed {
		c.m[q], st = st, nil
	}
	c.mu.Unlock()
	if st != nil {
		st.Close()
	}
}

// settled waits for the background preparations under way, for tests.
func (c *stmtCache) settled() { c.wg.Wait() }

// close stops the preparations under way and closes every cached
// statement, outside the cache's lock.
func (c *stmtCache) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
	c.mu.Lock()
	m := c.m
	c.m = map[string]*sql.Stmt{}
	c.mu.Unlock()
	for _, st := range m {
		st.Close()
	}
}

// runner runs statements on the database, on a connection of its own
// (conn) or inside a transaction (tx), through the statement cache.
type runner struct {
	c    *stmtCache
	tx   *sql.Tx
	conn *sql.Conn
	// ctx, when set, is the call's context with the database's deadline
	// (see DB.bound): the statements run within it, whatever context the
	// caller hands them.
	ctx context.Context
}

// within returns the context a statement runs in.
func (r runner) within(ctx context.Context) context.Context {
	if r.ctx != nil {
		return r.ctx
	}
	return ctx
}

// stmt returns q's prepared statement bound to the runner's transaction,
// or nil when q is to run unprepared.
func (r runner) stmt(ctx context.Context, q string) *sql.Stmt {
	r.c.statements.Add(1)
	st := r.c.get(q)
	switch {
	case st == nil:
		return nil
	case r.tx != nil:
		return r.tx.StmtContext(ctx, st)
	case r.conn != nil:
		// A cached statement belongs to the pool, not to one connection.
		return nil
	}
	return st
}

func (r runner) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = r.within(ctx)
	switch st := r.stmt(ctx, q); {
	case st != nil:
		return st.QueryContext(ctx, args...)
	case r.tx != nil:
		return r.tx.QueryContext(ctx, q, args...)
	case r.conn != nil:
		return r.conn.QueryContext(ctx, q, args...)
	}
	return r.c.db.QueryContext(ctx, q, args...)
}

func (r runner) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	ctx = r.within(ctx)
	switch st := r.stmt(ctx, q); {
	case st != nil:
		return st.ExecContext(ctx, args...)
	case r.tx != nil:
		return r.tx.ExecContext(ctx, q, args...)
	case r.conn != nil:
		return r.conn.ExecContext(ctx, q, args...)
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

// read runs fn outside a transaction, within the database's call
// deadline (see bound). On MySQL fn's statements share one connection,
// taken from the pool within pool_timeout; on SQLite each takes one
// from the pool, waiting within the deadline. fn must be done with every
// row set it opened when it returns.
func (d *DB) read(ctx context.Context, fn func(ctx context.Context, r runner) error) error {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	if d.dialect == dialectSQLite {
		return d.timedOut(ctx, fn(ctx, runner{c: d.stmts, ctx: ctx}))
	}
	conn, err := d.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return d.timedOut(ctx, fn(ctx, runner{c: d.stmts, conn: conn, ctx: ctx}))
}

// readRows runs q outside a transaction (see read) and calls each for
// every row it returns, until each fails.
func (d *DB) readRows(ctx context.Context, q string, args []any, each func(rows *sql.Rows) error) error {
	return d.read(ctx, func(ctx context.Context, run runner) error {
		rows, err := run.query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// write runs fn in a write transaction. On SQLite, writers of this process
// queue for the write slot rather than in SQLite's busy handler, which
// polls. The record cache forgets the images of ids when the transaction
// has ended, whether or not it committed.
func (d *DB) write(ctx context.Context, fn func(r runner) error, ids ...string) error {
	return d.writeKeeping(ctx, fn, nil, ids...)
}

// writeKeeping is write, and then, when the transaction committed, keeps
// *keep in the record cache if fn filled it in. fn reads it in its
// transaction, after its changes: it is what was committed, and no other
// write of this process comes between the commit and the keeping.
//
// The transaction's connection is taken from the pool first, within
// pool_timeout, and the SQLite write slot after it: whoever holds the slot
// already has its connection and waits for nothing but SQLite's answers.
// fn runs within the database's call deadline, and so does the wait for
// the slot.
func (d *DB) writeKeeping(ctx context.Context, fn func(r runner) error, keep *domain.Meta, ids ...string) error {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	conn, err := d.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if d.dialect == dialectSQLite {
		if err := d.takeWriteSlot(ctx); err != nil {
			return err
		}
		defer d.releaseWriteSlot()
	}
	if d.cache == nil {
		for attempt := 1; ; attempt++ {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return d.timedOut(ctx, err)
			}
			err = d.finish(ctx, tx, fn)
			if attempt < deadlockRetries && isDeadlock(err) && d.pauseAfterDeadlock(ctx, attempt) {
				continue
			}
			return d.timedOut(ctx, err)
		}
	}
	// The commit hook tells this transaction's commit from others by its
	// driver connection.
	ref := &connRef{}
	if err := conn.Raw(func(dc any) error { ref.c = dc; return nil }); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return d.timedOut(ctx, err)
	}
	// The transaction holds SQLite's write lock from here on (it began
	// IMMEDIATE): every commit the cache has distrusted so far is visible.
	seen := d.cache.distrusted()
	d.writer.Store(ref)
	err = d.finish(ctx, tx, fn)
	d.writer.Store((*connRef)(nil))
	d.cache.settle(seen)
	d.cache.forget(ids...)
	if err == nil && keep != nil && keep.ID != "" {
		// A commit of another process since settle leaves the cache
		// suspect, and store refuses.
		d.cache.store(d.cache.begin(), keep)
	}
	return d.timedOut(ctx, err)
}

// deadlockRetries is how many times a MySQL write transaction is run when
// InnoDB chose it as the victim of a deadlock, as oslo.db retries Glance's.
const deadlockRetries = 4

// isDeadlock reports whether err is InnoDB's deadlock error (1213), after
// which the transaction has been rolled back and may simply run again.
func isDeadlock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1213
}

// pauseAfterDeadlock waits a little, longer after each attempt and at
// random, before a deadlocked transaction runs again; false when ctx ends
// first.
func (d *DB) pauseAfterDeadlock(ctx context.Context, attempt int) bool {
	d.deadlocks.Add(1)
	t := time.NewTimer(time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// finish runs fn in tx, its statements within ctx, and commits it, or
// rolls it back when fn fails.
func (d *DB) finish(ctx context.Context, tx *sql.Tx, fn func(r runner) error) error {
	if err := fn(runner{c: d.stmts, tx: tx, ctx: ctx}); err != nil {
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
