package policy

import (
	"context"
	"io"

	"github.com/glance-go/glance-go/domain"
)

// Stage checks modify_image: staging has no policy of its own
// (ImageDataController.stage).
func (i *image) Stage(ctx context.Context, r io.Reader, in domain.DataIn) error {
	if err := i.g.enforce("modify_image", i.Next.Meta()); err != nil {
		return err
	}
	return i.Image.Stage(ctx, r, in)
}
