package location

import (
	"io"

	"github.com/glance-go/glance-go/domain"
)

// formatWatch inspects the data of an upload as it flows.
type formatWatch struct{}

// newInspector returns the watch for an upload of m's data.
func newInspector(m *domain.Meta) *formatWatch { return &formatWatch{} }

// writers are the consumers the upload feeds.
func (f *formatWatch) writers() []io.Writer { return nil }

// checkFormat decides, once all n bytes went by, whether the data may
// become m's, and returns the virtual size to record (0: leave it).
func (i *image) checkFormat(f *formatWatch, m *domain.Meta, n int64) (int64, error) {
	if isRaw(m) {
		return n, nil
	}
	return 0, nil
}

// isRaw reports whether the data is its own virtual disk: a raw disk in a
// bare container.
func isRaw(m *domain.Meta) bool {
	return m.DiskFormat != nil && *m.DiskFormat == "raw" &&
		(m.ContainerFormat == nil || *m.ContainerFormat == "bare")
}
