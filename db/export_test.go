package db

import "context"

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
