package authz

import (
	"context"
	"io"

	"github.com/glance-go/glance-go/domain"
)

// Stage implements domain.Image: only the owner, or an admin, stages data.
func (i *image) Stage(ctx context.Context, r io.Reader, in domain.DataIn) error {
	if err := i.refuse(); err != nil {
		return err
	}
	return i.Next.Stage(ctx, r, in)
}
