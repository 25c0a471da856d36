package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glance-go/glance-go/db"
	"github.com/glance-go/glance-go/db/dbtest"
	"github.com/glance-go/glance-go/domain"
)

// TestTransactionsHoldingThePoolRunNewStatements is the shape of a deadlock
// seen on MariaDB: every connection of the pool is held by a write
// transaction, and each of them then runs a statement text never seen
// before. Preparing it must not wait for a connection of the pool.
func TestTransactionsHoldingThePoolRunNewStatements(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t testing.TB, cfg db.Config) *db.DB
		// n transactions at once: SQLite runs one writer at a time, so
		// its pool is that one connection.
		n int
	}{
		{"sqlite", dbtest.OpenSQLiteWith, 1},
		{"mysql", dbtest.OpenMySQLWith, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.open(t, db.Config{MaxPoolSize: tc.n, MaxOverflow: 0, PoolTimeout: 20 * time.Second})
			for round := range 3 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := db.HoldAndRun(ctx, d, tc.n, func(i int) string {
					return fmt.Sprintf("SELECT COUNT(*) + %d FROM images WHERE size > %d", i, round)
				})
				cancel()
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			db.SettleStatements(d)
		})
	}
}

// TestConcurrentWritesOnASmallPool creates, changes and reads images from
// many goroutines at once on a pool smaller than their number, with
// property counts that make new statement texts all along. Every call ends
// in time and none fails.
func TestConcurrentWritesOnASmallPool(t *testing.T) {
	dbtest.ForEachDialectWith(t, db.Config{MaxPoolSize: 2, MaxOverflow: 1, PoolTimeout: 30 * time.Second}, func(t *testing.T, d *db.DB) {
		const workers, each = 8, 12
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, workers*each*4)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("p%d", w%3)
				caller := &domain.Caller{ProjectID: owner, Roles: []string{"member"}}
				repo := d.Images(caller)
				for i := range each {
					img, err := domain.CoreFactory{}.NewImage(ctx, domain.Meta{
						Visibility: domain.VisibilityShared, Name: domain.Ptr("c"), Owner: domain.Ptr(owner),
						Properties: props((w*each + i) % 19), Tags: tags(i % 4),
					})
					if err != nil {
						errs <- err
						return
					}
					if err := repo.Add(ctx, img); err != nil {
						errs <- fmt.Errorf("add: %w", err)
						continue
					}
					id := img.Meta().ID
					got, err := repo.Get(ctx, id)
					if err != nil {
						errs <- fmt.Errorf("get: %w", err)
						continue
					}
					m := got.Meta()
					m.Properties = props((w + i) % 23)
					if err := repo.Save(ctx, domain.NewImage(m), ""); err != nil {
						errs <- fmt.Errorf("save: %w", err)
					}
					if err := d.Members(caller, id).Add(ctx, domain.Member{MemberID: "other"}); err != nil {
						errs <- fmt.Errorf("add member: %w", err)
					}
					if _, err := repo.List(ctx, domain.ListQuery{Limit: 5 + i}); err != nil {
						errs <- fmt.Errorf("list: %w", err)
					}
					if i%3 == 0 {
						if err := repo.Remove(ctx, got); err != nil {
							errs <- fmt.Errorf("remove: %w", err)
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if ctx.Err() != nil {
			t.Fatal("the writers did not finish in time")
		}
	})
}

func props(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%02d", i)] = fmt.Sprintf("v%d", i)
	}
	return m
}

func tags(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%d", i)
	}
	return out
}

// TestPoolTimeout: a call that finds every connection in use waits
// pool_timeout, then fails with a PoolTimeoutError, an ErrUnavailable
// (503). It succeeds again once a connection is free.
func TestPoolTimeout(t *testing.T) {
	const wait = 300 * time.Millisecond
	dbtest.ForEachDialectWith(t, db.Config{MaxPoolSize: 1, MaxOverflow: 0, PoolTimeout: wait}, func(t *testing.T, d *db.DB) {
		id := add(t, d, "p1", domain.VisibilityPrivate, nil)
		release, err := db.HoldWrite(ctx, d, id)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = d.Images(admin).Add(ctx, mk(t, "p1", domain.VisibilityPrivate, nil))
		took := time.Since(start)
		var pe *db.PoolTimeoutError
		if !errors.As(err, &pe) || !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("add with the pool exhausted: %v (%T), want a PoolTimeoutError", err, err)
		}
		if took < wait || took > wait+5*time.Second {
			t.Errorf("add failed after %v, want about %v", took, wait)
		}
		if d.String() == "mysql" {
			// Reads take a connection of their own on MySQL.
			if _, err := d.Images(admin).Get(ctx, id); !errors.As(err, &pe) {
				t.Errorf("get with the pool exhausted: %v, want a PoolTimeoutError", err)
			}
		}
		if got := d.Pool().PoolTimeouts; got < 1 {
			t.Errorf("PoolTimeouts = %d, want at least 1", got)
		}
		if err := release(); err != nil {
			t.Fatal(err)
		}
		if err := d.Images(admin).Add(ctx, mk(t, "p1", domain.VisibilityPrivate, nil)); err != nil {
			t.Fatalf("add once the pool is free: %v", err)
		}
	})
}

// TestCallTimeout: a call that waits on a lock past the call deadline
// fails with a CallTimeoutError (503) and leaves nothing half done; a
// deadline of the caller's own stays its own.
func TestCallTimeout(t *testing.T) {
	const bound = 400 * time.Millisecond
	// other holds the lock: its calls have no deadline.
	dbtest.ForEachDialectTwice(t, db.Config{MaxPoolSize: 4, CallTimeout: bound}, db.Config{CallTimeout: -1}, func(t *testing.T, d, other *db.DB) {
		id := add(t, d, "p1", domain.VisibilityPrivate, nil)
		img, err := d.Images(admin).Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		release, err := db.HoldWrite(ctx, other, id)
		if err != nil {
			t.Fatal(err)
		}
		m := img.Meta()
		m.Name = domain.Ptr("renamed")
		start := time.Now()
		err = d.Images(admin).Save(ctx, domain.NewImage(m), "")
		took := time.Since(start)
		var ce *db.CallTimeoutError
		if !errors.As(err, &ce) || !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("save behind a held lock: %v (%T), want a CallTimeoutError", err, err)
		}
		if took < bound || took > bound+5*time.Second {
			t.Errorf("save failed after %v, want about %v", took, bound)
		}
		own, cancel := context.WithTimeout(ctx, bound/4)
		err = d.Images(admin).Save(own, domain.NewImage(m), "")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ce) {
			t.Errorf("save with the caller's own deadline: %v, want context.DeadlineExceeded", err)
		}
		if err := release(); err != nil {
			t.Fatal(err)
		}
		got, err := d.Images(admin).Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if n := got.Meta().Name; n == nil || *n != "img" {
			t.Errorf("name after the failed saves = %v, want img", n)
		}
	})
}

// TestMySQLStatementsPerOperation bounds the statements a show, a listing
// and a change of one property run on MySQL: an image's children come in
// one statement, whatever the number of child tables.
func TestMySQLStatementsPerOperation(t *testing.T) {
	// A show: the image and its children in one statement. A listing
	// page: one statement with JSON aggregates, else two like a show. A
	// save: the locked image row, its children, the update and the
	// property.
	for _, agg := range []bool{true, false} {
		t.Run(fmt.Sprintf("json-aggregates=%v", agg), func(t *testing.T) {
			d := dbtest.OpenMySQL(t)
			list := int64(1)
			if !agg {
				db.WithoutJSONAggregates(d)
				list = 2
			}
			mysqlStatements(t, d, 1, list, 4)
		})
	}
}

func mysqlStatements(t *testing.T, d *db.DB, show, list, save int64) {
	id := add(t, d, "p1", domain.VisibilityPublic, func(m *domain.Meta) {
		m.Properties = props(10)
		m.Tags = tags(2)
		m.Locations = []domain.Location{{URL: "file:///x", Metadata: map[string]any{"a": "b\"\\ é"}, Status: "active"}}
	})
	repo := d.Images(p1)
	count := func(name string, max int64, fn func() error) {
		t.Helper()
		before := db.Statements(d)
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := db.Statements(d) - before; n > max {
			t.Errorf("%s ran %d statements, want at most %d", name, n, max)
		}
	}
	var img domain.Image
	count("show", show, func() (err error) { img, err = repo.Get(ctx, id); return err })
	if m := img.Meta(); len(m.Properties) != 10 || len(m.Tags) != 2 || len(m.Locations) != 1 ||
		m.Locations[0].Metadata["a"] != "b\"\\ é" {
		t.Errorf("show: %d properties, %d tags, locations %+v", len(m.Properties), len(m.Tags), m.Locations)
	}
	var page domain.Page
	count("list", list, func() (err error) { page, err = repo.List(ctx, domain.ListQuery{Limit: 25}); return err })
	if len(page.Images) != 1 || len(page.Images[0].Meta().Properties) != 10 || len(page.Images[0].Meta().Locations) != 1 {
		t.Errorf("listed %d images, the first with %d properties", len(page.Images), len(page.Images[0].Meta().Properties))
	}
	if err := img.Update(func(m *domain.Meta) error { m.Properties["k03"] = "changed"; return nil }); err != nil {
		t.Fatal(err)
	}
	count("save of one property", save, func() error { return repo.Save(ctx, img, domain.StatusQueued) })
	got, err := repo.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Meta().Properties["k03"]; v != "changed" {
		t.Errorf("k03 = %q after the save, want changed", v)
	}
}

// TestMySQLDeadlockRetried: a write transaction that InnoDB picks as the
// victim of a deadlock runs again, and succeeds, instead of failing the
// request.
func TestMySQLDeadlockRetried(t *testing.T) {
	// SQLite runs one writer at a time: it has no deadlocks.
	d, other := dbtest.OpenTwice(t, "mysql", db.Config{}, db.Config{CallTimeout: -1})
	x := add(t, d, "p1", domain.VisibilityPrivate, nil)
	y := add(t, d, "p1", domain.VisibilityPrivate, nil)
	sqlDB, err := other.Gorm().DB()
	if err != nil {
		t.Fatal(err)
	}
	tx, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE images SET name = 'held' WHERE id = ?", x); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- db.WriteStatements(ctx, d,
			"SELECT id FROM images WHERE id = '"+y+"' FOR UPDATE",
			"SELECT id FROM images WHERE id = '"+x+"' FOR UPDATE")
	}()
	time.Sleep(500 * time.Millisecond) // the write holds y and waits for x
	// Closing the cycle makes InnoDB roll back the lighter transaction:
	// the write, which has changed nothing.
	if _, err := tx.ExecContext(ctx, "UPDATE images SET name = 'held' WHERE id = ?", y); err != nil {
		t.Fatalf("the outside transaction was the victim: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the deadlocked write: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the deadlocked write did not finish")
	}
	if n := d.Pool().DeadlockRetries; n < 1 {
		t.Errorf("DeadlockRetries = %d, want at least 1", n)
	}
}

// TestMySQLChildUpdatesLockOneImage: the statements that change one
// image's child rows find them through the image_id index, not through an
// index merge with the deleted index that would lock every live row: the
// sessions run with index_merge_intersection off, which the optimizer
// would otherwise choose once many rows are deleted.
func TestMySQLChildUpdatesLockOneImage(t *testing.T) {
	d := dbtest.OpenMySQL(t)
	for range 3 {
		add(t, d, "p1", domain.VisibilityPrivate, func(m *domain.Meta) { m.Properties = props(10) })
	}
	sqlDB, err := d.Gorm().DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var sw string
	if err := conn.QueryRowContext(ctx, "SELECT @@optimizer_switch").Scan(&sw); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sw, "index_merge_intersection=off") {
		t.Errorf("optimizer_switch = %s, want index_merge_intersection=off", sw)
	}
	// id, select_type, table, type, possible_keys, key, key_len, ref, rows, Extra
	var col [10]sql.NullString
	dest := make([]any, len(col))
	for i := range col {
		dest[i] = &col[i]
	}
	row := conn.QueryRowContext(ctx, "EXPLAIN UPDATE image_properties SET deleted = 1 WHERE image_id = 'x' AND +deleted = 0")
	if err := row.Scan(dest...); err != nil {
		t.Fatal(err)
	}
	if typ, key := col[3].String, col[5].String; typ == "index_merge" || !strings.Contains(key, "image_id") {
		t.Errorf("the update of one image's properties uses %s on %q, want the image_id index", typ, key)
	}
}

// TestMySQLShowIsOneSnapshot: a show racing a delete of the same image
// finds either the whole image or none, never the image without its
// properties.
func TestMySQLShowIsOneSnapshot(t *testing.T) {
	d := dbtest.OpenMySQL(t)
	repo := d.Images(admin)
	torn := 0
	for range 100 {
		id := add(t, d, "p1", domain.VisibilityPrivate, func(m *domain.Meta) { m.Properties = props(10) })
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := repo.Remove(ctx, domain.NewImage(domain.Meta{ID: id})); err != nil {
				t.Error(err)
			}
		}()
		for {
			img, err := repo.Get(ctx, id)
			if errors.Is(err, domain.ErrNotFound) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := len(img.Meta().Properties); n != 10 {
				torn++
			}
		}
		<-done
	}
	if torn > 0 {
		t.Errorf("%d shows found the image without all its properties", torn)
	}
}
