package db

import (
	"context"
	"sync"
)

// Statements returns how many statements the image repository has run on d
// through its prepared statement cache.
func Statements(d *DB) int64 { return d.stmts.statements.Load() }

// CacheStats returns the record cache's hits, misses and entries (all 0
// when d has no cache).
func CacheStats(d *DB) (hits, misses int64, entries int) {
	if d.cache == nil {
		return 0, 0, 0
	}
	return d.cache.hits.Load(), d.cache.misses.Load(), d.cache.len()
}

// Settle runs an empty write transaction, which ends the record cache's
// distrust of the writes made around the image repository before it.
func Settle(d *DB) error { return d.write(context.Background(), func(runner) error { return nil }) }

// HoldAndRun opens n write transactions at once, each holding a connection
// of the pool; once all n are open, each runs q(i), a statement text d has
// not run before, and commits. It returns the first failure.
func HoldAndRun(ctx context.Context, d *DB, n int, q func(i int) string) error {
	var open sync.WaitGroup
	open.Add(n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- d.write(ctx, func(r runner) error {
				open.Done()
				open.Wait()
				var x int64
				_, err := r.queryRow(ctx, q(i), nil, &x)
				return err
			})
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// HoldWrite starts a write transaction that locks the row of image id (on
// SQLite the transaction holds the database's write lock) and keeps it,
// and its connection, until release is called. It returns once the lock
// is held.
func HoldWrite(ctx context.Context, d *DB, id string) (release func() error, err error) {
	held, done := make(chan error, 1), make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- d.write(ctx, func(r runner) error {
			q := "SELECT id FROM images WHERE id = ?"
			if d.dialect == dialectMySQL {
				q += " FOR UPDATE"
			}
			var got string
			_, err := r.queryRow(ctx, q, []any{id}, &got)
			held <- err
			if err != nil {
				return err
			}
			<-done
			return nil
		})
	}()
	select {
	case err := <-held:
		if err != nil {
			return nil, err
		}
	case err := <-result:
		return nil, err
	}
	return func() error { close(done); return <-result }, nil
}

// SettleStatements waits for the statement cache's background
// preparations under way.
func SettleStatements(d *DB) { d.stmts.settled() }

// WriteStatements runs stmts, one after the other, in one write
// transaction of d.
func WriteStatements(ctx context.Context, d *DB, stmts ...string) error {
	return d.write(ctx, func(r runner) error {
		for _, q := range stmts {
			if _, err := r.exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

// WithoutJSONAggregates makes d list as on a MySQL server without JSON
// aggregates.
func WithoutJSONAggregates(d *DB) { d.jsonAgg = false }
