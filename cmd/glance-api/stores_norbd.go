//go:build !ceph

package main

import (
	"errors"

	"github.com/glance-go/glance-go/stores"
)

// errNoRBD answers a configuration that asks for an rbd store in a binary
// built without it.
var errNoRBD = errors.New(`store type "rbd" is not available in this build: ` +
	"build glance-api with `make build-ceph` (go build -tags ceph,pacific: it needs cgo, gcc, librados-dev and librbd-dev)")

func init() {
	stores.Register("rbd", func(*stores.Options) (*stores.Backend, error) { return nil, errNoRBD })
}
