package db

import (
	"context"
	"database/sql"
	"time"

	"github.com/glance-go/glance-go/domain"
)

// The pool's defaults are oslo.db's, as Glance reads them.
const (
	// DefaultMaxPoolSize is max_pool_size: the MySQL connections kept open.
	// (max_overflow, 50 in oslo.db, is the configuration's to default: 0
	// here means none.)
	DefaultMaxPoolSize = 5
	// DefaultPoolTimeout is pool_timeout: how long a call waits for a
	// connection when all of them are in use (SQLAlchemy's 30 seconds
	// when oslo.db leaves it unset).
	DefaultPoolTimeout = 30 * time.Second
	// DefaultCallTimeout bounds every call of the database package: the
	// wait for the pool, for the SQLite write slot and for the answers.
	DefaultCallTimeout = 60 * time.Second
)

// PoolTimeoutError is the error of a call that found no connection of the
// pool free within pool_timeout. It is a domain.ErrUnavailable (503).
type PoolTimeoutError struct{ After time.Duration }

func (e *PoolTimeoutError) Error() string {
	return "The database is busy: no connection was free within " + e.After.String() +
		" ([database] pool_timeout). Try again later."
}

// Unwrap returns domain.ErrUnavailable.
func (e *PoolTimeoutError) Unwrap() error { return domain.ErrUnavailable }

// CallTimeoutError is the error of a call the database did not finish
// within the call deadline (see DB.bound). It is a domain.ErrUnavailable
// (503).
type CallTimeoutError struct{ After time.Duration }

func (e *CallTimeoutError) Error() string {
	return "The database did not answer within " + e.After.String() + ". Try again later."
}

// Unwrap returns domain.ErrUnavailable.
func (e *CallTimeoutError) Unwrap() error { return domain.ErrUnavailable }

// boundKey marks a context whose deadline DB.bound set.
type boundKey struct{}

// bound returns ctx with the database's call deadline, unless ctx already
// ends sooner.
func (d *DB) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.callTimeout <= 0 {
		return ctx, func() {}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d.callTimeout {
		return ctx, func() {}
	}
	ctx, cancel := context.WithTimeout(ctx, d.callTimeout)
	return context.WithValue(ctx, boundKey{}, true), cancel
}

// timedOut turns err into a CallTimeoutError when ctx, a context of bound,
// ended by the deadline bound set rather than by the caller's own.
func (d *DB) timedOut(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != context.DeadlineExceeded {
		return err
	}
	if own, _ := ctx.Value(boundKey{}).(bool); !own {
		return err
	}
	return &CallTimeoutError{After: d.callTimeout}
}

// conn takes a connection from the pool, waiting at most pool_timeout for
// one when every connection is in use. The caller closes it, which hands
// it back.
func (d *DB) conn(ctx context.Context) (*sql.Conn, error) {
	wait, cancel := ctx, context.CancelFunc(func() {})
	if d.poolTimeout > 0 {
		wait, cancel = context.WithTimeout(ctx, d.poolTimeout)
	}
	defer cancel()
	c, err := d.sql.Conn(wait)
	switch {
	case err == nil:
		return c, nil
	case ctx.Err() != nil:
		return nil, d.timedOut(ctx, ctx.Err())
	case wait.Err() != nil:
		d.poolTimeouts.Add(1)
		return nil, &PoolTimeoutError{After: d.poolTimeout}
	}
	return nil, opErr("connect", err)
}

// takeWriteSlot waits, within ctx, for the SQLite write slot: SQLite's
// write lock taken inside the process, so that this process's writers
// queue here instead of polling in SQLite's busy handler. Its holder
// already has its connection and waits for nothing but SQLite.
func (d *DB) takeWriteSlot(ctx context.Context) error {
	select {
	case d.wslot <- struct{}{}:
		return nil
	default:
	}
	select {
	case d.wslot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return d.timedOut(ctx, ctx.Err())
	}
}

func (d *DB) releaseWriteSlot() { <-d.wslot }

// PoolStats are the connection pool's figures.
type PoolStats struct {
	sql.DBStats
	// PoolTimeouts counts the calls that found no free connection within
	// pool_timeout.
	PoolTimeouts int64
	// DeadlockRetries counts the MySQL write transactions run again after
	// InnoDB chose them as a deadlock's victim.
	DeadlockRetries int64
}

// Pool returns the connection pool's figures.
func (d *DB) Pool() PoolStats {
	return PoolStats{DBStats: d.sql.Stats(), PoolTimeouts: d.poolTimeouts.Load(), DeadlockRetries: d.deadlocks.Load()}
}
