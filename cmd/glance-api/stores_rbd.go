//go:build ceph

package main

// The RBD store registers itself as the store type rbd.
import _ "github.com/glance-go/glance-go/stores/rbd"
