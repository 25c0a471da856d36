package db

// Statements returns how many statements the image repository has run on d
// through its prepared statement cache.
func Statements(d *DB) int64 { return d.stmts.statements.Load() }
