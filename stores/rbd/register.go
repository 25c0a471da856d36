//go:build ceph

package rbd

import "github.com/glance-go/glance-go/stores"

func init() { stores.Register("rbd", open) }
