package location

import (
	"io"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/inspect"
)

// formatWatch inspects the data of an upload as it flows, when the image's
// container is bare: the only case Glance inspects.
type formatWatch struct {
	insp *inspect.Inspector // nil: not inspected
}

// newInspector returns the watch for an upload of m's data.
func newInspector(m *domain.Meta) *formatWatch {
	if m.ContainerFormat == nil || *m.ContainerFormat != "bare" {
		return &formatWatch{}
	}
	return &formatWatch{insp: inspect.New()}
}

// writers are the consumers the upload feeds.
func (f *formatWatch) writers() []io.Writer {
	if f.insp == nil {
		return nil
	}
	return []io.Writer{f.insp}
}

// checkFormat decides, once all the data went by, whether it may become
// m's (Options.Formats), and returns the virtual size to record (0: leave
// it unset). A refusal is ErrUnsupported with Glance's message.
func (i *image) checkFormat(f *formatWatch, m *domain.Meta) (int64, error) {
	if f.insp == nil {
		return 0, nil
	}
	r := f.insp.Result()
	vsize, err := i.opts.Formats.Check(r, deref(m.DiskFormat), deref(m.ContainerFormat))
	if err != nil {
		i.log().Warn("image data refused by the format checks", "image_id", m.ID, "disk_format", deref(m.DiskFormat),
			"detected", r.Format, "error", err, "unsafe", r.Unsafe)
		return 0, err
	}
	return vsize, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
