//go:build ceph

package rbd

import (
	"context"
	"slices"

	"github.com/ceph/go-ceph/rbd"
)

// Orphans lists what a failed Put could leave in the driver's namespace:
// any image, and any image in the trash.
func (d *Driver) Orphans() ([]string, error) {
	ioctx, err := d.ioctx(context.Background(), d.cfg.Pool)
	if err != nil {
		return nil, err
	}
	names, err := rbd.GetImageNames(ioctx)
	if err != nil {
		return nil, err
	}
	trash, err := rbd.GetTrashList(ioctx)
	if err != nil {
		return nil, err
	}
	for _, e := range trash {
		names = append(names, "trash:"+e.Name)
	}
	slices.Sort(names)
	return names, nil
}
