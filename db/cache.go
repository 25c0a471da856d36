package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
	"sync/atomic"

	msqlite "modernc.org/sqlite"

	"github.com/glance-go/glance-go/domain"
)

// recordCache keeps decoded image records of an SQLite database, so that a
// show or a page of a listing whose images have not changed skips
// SQLite's evaluation of the row and its three child aggregates, and the
// decoding of the JSON they return.
//
// Only an SQLite database has one: its file belongs to one glance-api
// process (see DB.Exclusive), so every write to it passes through this
// process. A MySQL database is shared by the nodes of a cloud and is
// always read afresh.
//
// An entry is the image as an admin sees it, without the caller-specific
// Member mark. Entries are invalidated, never updated in place:
//
//   - Every write of an image record (ImageRepo.Add, Save, Remove, Touch,
//     the atomic property updates) forgets the image's entry after its
//     transaction has ended, committed or not. A reader that began before
//     the commit may have read the old record: each forget advances epoch,
//     and store refuses a record read from before the latest forget.
//   - A write the image repository does not know of (another statement of
//     this process, a migration) is caught by SQLite's commit hook on
//     every connection: a commit outside DB.write empties the cache and
//     keeps it off until the next write through DB.write has ended, which
//     SQLite orders after that commit.
//
// A reader finds an entry only while no such unknown write is pending; a
// record read while one might be is returned but not kept.
type recordCache struct {
	max int // entries kept at most

	mu        sync.Mutex
	epoch     uint64 // advanced by every forget
	suspect   bool   // a commit outside DB.write was seen since the last settle
	distrusts uint64 // commits outside DB.write seen
	entries   map[string]domain.Meta

	hits, misses atomic.Int64
}

func newRecordCache(max int) *recordCache {
	return &recordCache{max: max, entries: make(map[string]domain.Meta)}
}

// lookup returns a copy of the record of id, if one is kept.
func (c *recordCache) lookup(id string) (domain.Meta, bool) {
	c.mu.Lock()
	m, ok := c.entries[id]
	c.mu.Unlock()
	if !ok {
		c.misses.Add(1)
		return domain.Meta{}, false
	}
	c.hits.Add(1)
	return m.Clone(), true
}

// begin returns the epoch to pass to store for a record read from now on.
func (c *recordCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// store keeps a copy of m, read after begin returned epoch, unless a
// forget came in between or an unknown write is pending. When the cache is
// full an arbitrary entry makes room.
func (c *recordCache) store(epoch uint64, m *domain.Meta) {
	cp := m.Clone()
	cp.Member = ""
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.suspect || epoch != c.epoch {
		return
	}
	if _, ok := c.entries[cp.ID]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[cp.ID] = cp
}

// forget drops the entries of ids and refuses records read before.
func (c *recordCache) forget(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, id := range ids {
		delete(c.entries, id)
	}
}

// distrust empties the cache and keeps it off until settle: a commit was
// made that the image repository does not know of.
func (c *recordCache) distrust() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.suspect = true
	c.distrusts++
	clear(c.entries)
}

// distrusted returns the number of distrusts so far, for settle.
func (c *recordCache) distrusted() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.distrusts
}

// settle ends the distrust of the commits counted by seen, which a write
// through DB.write took when it held SQLite's write lock: those commits
// had ended by then, so the records read from now on include them. A
// commit distrusted since keeps the cache off.
func (c *recordCache) settle(seen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.suspect && c.distrusts == seen {
		c.epoch++
		c.suspect = false
		clear(c.entries)
	}
}

// len returns the number of entries kept.
func (c *recordCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// hookedConnector opens SQLite connections that report their commits to
// d's record cache.
type hookedConnector struct {
	driver.Connector
	d *DB
}

// Connect opens a connection and registers the commit hook on it. A
// commit on a connection other than the one DB.write is committing on is
// a write the record cache does not know of.
func (h *hookedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := h.Connector.Connect(ctx)
	if err != nil || h.d.cache == nil {
		return conn, err
	}
	hr, ok := conn.(msqlite.HookRegisterer)
	if !ok {
		conn.Close()
		return nil, errors.New("the SQLite driver's connections take no commit hook")
	}
	d := h.d
	hr.RegisterCommitHook(func() int32 {
		if ref := d.writer.Load(); ref == nil || ref.c != any(conn) {
			d.cache.distrust()
		}
		return 0
	})
	return conn, nil
}

// Driver returns the connector's driver.
func (h *hookedConnector) Driver() driver.Driver { return h.Connector.Driver() }

// RecordCacheStats are the record cache's counters.
type RecordCacheStats struct {
	Hits, Misses int64 // lookups that found a record, and that did not
	Entries      int   // records kept now
}

// RecordCache returns the record cache's counters, and false when the
// database keeps no records (MySQL, or record_cache = 0).
func (d *DB) RecordCache() (RecordCacheStats, bool) {
	c := d.cache
	if c == nil {
		return RecordCacheStats{}, false
	}
	return RecordCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: c.len()}, true
}
