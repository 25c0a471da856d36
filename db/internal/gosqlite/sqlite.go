// Package sqlite stands in for github.com/glebarez/go-sqlite, the driver
// that the gorm dialector github.com/glebarez/sqlite is built on, and hands
// that dialector the upstream driver modernc.org/sqlite instead. The
// upstream driver registers itself as "sqlite", the name the dialector
// opens, and keeps one prepared SQLite statement per database/sql
// statement, where the fork parses the SQL again on every execution.
//
// go.mod replaces github.com/glebarez/go-sqlite with this directory.
package sqlite

import msqlite "modernc.org/sqlite"

// Error is the driver's error type: the dialector translates constraint
// violations by its Code.
type Error = msqlite.Error
