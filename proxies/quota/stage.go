package quota

import (
	"context"
	"io"

	"github.com/glance-go/glance-go/domain"
)

// Stage implements domain.Image. Staged data is held to image_size_cap, as
// Glance's stage holds it; the storage quota is counted when an import
// stores the data (SetData).
func (i *image) Stage(ctx context.Context, r io.Reader, in domain.DataIn) error {
	if i.lim.SizeCap <= 0 {
		return i.Next.Stage(ctx, r, in)
	}
	if in.Size > i.lim.SizeCap {
		return errTooLarge()
	}
	return i.Next.Stage(ctx, &capReader{r: r, left: i.lim.SizeCap}, in)
}

// capReader fails with the image_size_cap error once more than left bytes
// have been read.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, errTooLarge()
	}
	return n, err
}
