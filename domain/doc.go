// Package domain holds the core of glance-go: the image record, its status
// machine, the member record, and the contracts (Repo, Factory, MemberRepo)
// that the database and every proxy layer implement.
//
// It mirrors glance/domain/__init__.py and depends on the standard library
// only: no JSON, ORM or HTTP types appear here. The wire view lives in the API
// package, the rows in package db.
package domain
