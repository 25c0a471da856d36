package location_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/inspect"
	"github.com/glance-go/glance-go/proxies/location"
)

func corpus(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "inspect", "testdata", name))
	if err != nil {
		t.Fatalf("corpus file: %v", err)
	}
	return b
}

// TestSetDataFormatChecks runs corpus images through uploads and imports:
// refused data leaves no object, no location and the status as it was.
func TestSetDataFormatChecks(t *testing.T) {
	strict := inspect.DefaultPolicy()
	lax := inspect.DefaultPolicy()
	lax.RequireFormatMatch = false
	tests := []struct {
		name      string
		file      string
		disk      string
		container string
		policy    inspect.Policy
		importing bool
		wantErr   error
		wantMsg   string
		wantVS    int64 // 0: virtual_size stays unset
	}{
		{name: "qcow2", file: "qcow2-v3.qcow2", disk: "qcow2", container: "bare", policy: strict, wantVS: 4194304},
		{name: "qcow2 with a backing file", file: "qcow2-backing.qcow2", disk: "qcow2", container: "bare", policy: strict,
			wantErr: domain.ErrUnsupported, wantMsg: "Image failed safety checks"},
		{name: "qcow2 with a backing file, lax policy", file: "qcow2-backing.qcow2", disk: "qcow2", container: "bare",
			policy: lax, wantErr: domain.ErrUnsupported, wantMsg: "Image failed safety checks"},
		{name: "qcow2 with a backing file labelled raw", file: "qcow2-backing.qcow2", disk: "raw", container: "bare",
			policy: strict, wantErr: domain.ErrUnsupported},
		{name: "raw labelled qcow2", file: "raw.img", disk: "qcow2", container: "bare", policy: strict,
			wantErr: domain.ErrUnsupported, wantMsg: "Image disk_format qcow2 does not match stream data raw"},
		{name: "raw labelled qcow2, format match not required", file: "raw.img", disk: "qcow2", container: "bare", policy: lax},
		{name: "vmdk extent with a path", file: "vmdk-path-extent.vmdk", disk: "vmdk", container: "bare", policy: strict,
			wantErr: domain.ErrUnsupported, wantMsg: "Image failed safety checks"},
		{name: "not inspected in an ovf container", file: "qcow2-backing.qcow2", disk: "qcow2", container: "ovf", policy: strict},
		{name: "raw is its own virtual size", file: "raw.img", disk: "raw", container: "bare", policy: strict, wantVS: 1 << 20},
		{name: "import refused", file: "qcow2-backing.qcow2", disk: "qcow2", container: "bare", policy: strict,
			importing: true, wantErr: domain.ErrUnsupported},
		{name: "import accepted", file: "qcow2-v3.qcow2", disk: "qcow2", container: "bare", policy: strict,
			importing: true, wantVS: 4194304},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := corpus(t, tc.file)
			seed := queued(func(m *domain.Meta) {
				m.DiskFormat, m.ContainerFormat = domain.Ptr(tc.disk), domain.Ptr(tc.container)
				if tc.importing {
					m.Status = domain.StatusImporting
				}
			})
			f := newFixture(t, seed, location.Options{Formats: tc.policy}, nil)
			img := f.get(t)
			in := domain.DataIn{Size: int64(len(data)), Import: tc.importing, Activate: true}
			err := img.SetData(context.Background(), bytes.NewReader(data), in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetData error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Errorf("message = %q, want %q", err.Error(), tc.wantMsg)
			}
			m := f.stored(t)
			if err != nil {
				if m.Status != seed.Status || len(m.Locations) != 0 || m.VirtualSize != nil {
					t.Errorf("refused data left status %s, locations %v, virtual_size %v", m.Status, m.Locations, m.VirtualSize)
				}
				if objs := f.drv.Objects(); len(objs) != 0 {
					t.Errorf("refused data left objects %v", objs)
				}
				return
			}
			if m.Status != domain.StatusActive || len(m.Locations) != 1 {
				t.Errorf("status %s with %d locations, want active with one", m.Status, len(m.Locations))
			}
			switch {
			case tc.wantVS == 0 && m.VirtualSize != nil:
				t.Errorf("virtual_size = %d, want unset", *m.VirtualSize)
			case tc.wantVS != 0 && (m.VirtualSize == nil || *m.VirtualSize != tc.wantVS):
				t.Errorf("virtual_size = %v, want %d", m.VirtualSize, tc.wantVS)
			}
		})
	}
}
