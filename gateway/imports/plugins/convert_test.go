package plugins

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/inspect"
)

const mib = 1 << 20

// images makes the source images of the conversion tests with qemu-img, in
// a directory of their own: name → file.
type images struct {
	t    *testing.T
	qemu string
	dir  string
	raw  []byte // the disk every image holds
}

func newImages(t *testing.T) *images {
	im := &images{t: t, qemu: needQemuImg(t), dir: t.TempDir(), raw: make([]byte, mib)}
	copy(im.raw[4096:], "glance-go conversion test")
	copy(im.raw[mib-512:], bytes.Repeat([]byte{0xa5}, 512))
	im.write("disk.raw", im.raw)
	return im
}

func (im *images) path(name string) string { return filepath.Join(im.dir, name) }

func (im *images) write(name string, b []byte) string {
	if err := os.WriteFile(im.path(name), b, 0o600); err != nil {
		im.t.Fatal(err)
	}
	return im.path(name)
}

func (im *images) qemuImg(args ...string) {
	im.t.Helper()
	cmd := exec.Command(im.qemu, args...)
	cmd.Dir = im.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		im.t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

// convertTo makes name, the raw disk in format fmt (qemu-img's name) with
// extra options.
func (im *images) convertTo(name, format string, opts ...string) string {
	im.qemuImg(append(append([]string{"convert", "-f", "raw", "-O", format}, opts...), "disk.raw", name)...)
	return im.path(name)
}

func (im *images) read(name string) []byte {
	b, err := os.ReadFile(im.path(name))
	if err != nil {
		im.t.Fatal(err)
	}
	return b
}

// isoImage is the smallest data the inspector takes for an ISO 9660 volume:
// the system area, then a primary volume descriptor of 16 blocks of 2 KiB.
func isoImage() []byte {
	b := make([]byte, 32<<10+2048)
	d := b[32<<10:]
	d[0] = 1
	copy(d[1:], "CD001")
	d[6] = 1
	binary.LittleEndian.PutUint32(d[80:], 16)
	binary.LittleEndian.PutUint16(d[128:], 2048)
	return b
}

func TestConversion(t *testing.T) {
	im := newImages(t)
	im.convertTo("disk.qcow2", "qcow2")
	im.convertTo("sparse.vmdk", "vmdk", "-o", "subformat=monolithicSparse")
	im.convertTo("disk.vhd", "vpc")
	im.convertTo("disk.qed", "qed")
	im.qemuImg("create", "-f", "qcow2", "-b", im.path("disk.raw"), "-F", "raw", "backing.qcow2")
	im.qemuImg("create", "-f", "qcow2", "-o", "data_file="+im.path("external.raw"), "datafile.qcow2", "1M")
	im.write("image.iso", isoImage())

	tests := []struct {
		name       string
		file       string
		diskFormat string
		cfg        Config
		// wantFormat is the disk_format afterwards; "" means no change
		// at all, "=" only a virtual size.
		wantFormat string
		wantData   []byte // the staged data afterwards (nil: check the format only)
		wantVSize  int64
		wantErr    string
	}{
		{name: "qcow2 to raw", file: "disk.qcow2", diskFormat: "qcow2", wantFormat: "raw", wantData: im.raw, wantVSize: mib},
		{name: "monolithicSparse vmdk to raw", file: "sparse.vmdk", diskFormat: "vmdk", wantFormat: "raw", wantData: im.raw, wantVSize: mib},
		{name: "vhd to raw (qemu-img's vpc)", file: "disk.vhd", diskFormat: "vhd", wantFormat: "raw", wantVSize: -1},
		{name: "raw to qcow2", file: "disk.raw", diskFormat: "raw", cfg: Config{OutputFormat: "qcow2"}, wantFormat: "qcow2", wantVSize: mib},
		{name: "raw to vmdk", file: "disk.raw", diskFormat: "raw", cfg: Config{OutputFormat: "vmdk"}, wantFormat: "vmdk", wantVSize: mib},
		{name: "raw stays raw", file: "disk.raw", diskFormat: "raw", wantFormat: "=", wantData: im.raw, wantVSize: mib},
		{name: "qcow2 stays qcow2", file: "disk.qcow2", diskFormat: "qcow2", cfg: Config{OutputFormat: "qcow2"}, wantFormat: "=",
			wantData: im.read("disk.qcow2"), wantVSize: mib},
		{name: "iso is never converted", file: "image.iso", diskFormat: "iso", wantData: isoImage()},

		{name: "qcow2 labelled raw", file: "disk.qcow2", diskFormat: "raw", wantErr: "Image format mismatch"},
		{name: "raw labelled qcow2", file: "disk.raw", diskFormat: "qcow2", wantErr: "Image format mismatch"},
		{name: "iso labelled raw", file: "image.iso", diskFormat: "raw", wantErr: "Image has disallowed configuration"},
		{name: "backing file", file: "backing.qcow2", diskFormat: "qcow2", wantErr: "Image has disallowed configuration"},
		{name: "data file", file: "datafile.qcow2", diskFormat: "qcow2", wantErr: "Image has disallowed configuration"},
		{name: "qed", file: "disk.qed", diskFormat: "qed", wantErr: "Image has disallowed configuration"},
		{name: "vmdk create-type not allowed", file: "sparse.vmdk", diskFormat: "vmdk",
			cfg: Config{Formats: inspect.Policy{VMDKAllowedTypes: []string{"streamOptimized"}}}, wantErr: "Invalid VMDK create-type specified"},
		{name: "no vmdk create-type allowed", file: "sparse.vmdk", diskFormat: "vmdk",
			cfg: Config{Formats: inspect.Policy{VMDKAllowedTypes: []string{}}}, wantErr: "Image is a VMDK, but no VMDK createType is specified"},
		{name: "no disk format", file: "disk.raw", diskFormat: "", wantErr: "Image has no disk_format to convert from"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.Formats.VMDKAllowedTypes == nil {
				cfg.Formats = inspect.DefaultPolicy()
			}
			ps, err := Load([]string{"image_conversion"}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			src := im.read(tc.file)
			s := stage(t, src, tc.diskFormat, "bare")
			before := s.Meta.Clone()
			change, err := ps[0].Run(context.Background(), s)
			defer onlyStaged(t, s)
			if tc.wantErr != "" {
				if !errors.Is(err, domain.ErrUnsupported) || err.Error() != tc.wantErr {
					t.Fatalf("Run = %v, want ErrUnsupported %q", err, tc.wantErr)
				}
				if !bytes.Equal(readStaged(t, s), src) {
					t.Error("the staged file changed although the conversion failed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := readStaged(t, s)
			if tc.wantData != nil && !bytes.Equal(got, tc.wantData) {
				t.Errorf("staged data: %d bytes, not the expected %d", len(got), len(tc.wantData))
			}
			if tc.wantFormat == "" {
				if change != nil {
					t.Error("a change was returned")
				}
				return
			}
			m := before.Clone()
			if err := change(&m); err != nil {
				t.Fatal(err)
			}
			if m.VirtualSize == nil || (tc.wantVSize >= 0 && *m.VirtualSize != tc.wantVSize) || *m.VirtualSize < mib {
				t.Errorf("virtual_size %v, want %d", m.VirtualSize, tc.wantVSize)
			}
			if tc.wantFormat == "=" {
				if *m.DiskFormat != tc.diskFormat || m.Size != nil || *m.ContainerFormat != "bare" {
					t.Errorf("meta changed beyond virtual_size: %s %v", *m.DiskFormat, m.Size)
				}
				return
			}
			if *m.DiskFormat != tc.wantFormat || *m.ContainerFormat != "bare" || m.Size == nil || *m.Size != int64(len(got)) {
				t.Errorf("meta: disk %s container %s size %v, want %s bare %d", *m.DiskFormat, *m.ContainerFormat, m.Size, tc.wantFormat, len(got))
			}
			if *s.Meta.DiskFormat != tc.wantFormat {
				t.Errorf("Staged.Meta disk_format %s, want %s", *s.Meta.DiskFormat, tc.wantFormat)
			}
			r, err := inspect.DetectFile(s.Path)
			if err != nil || r.Unsafe != nil {
				t.Fatalf("converted data: %v %v", err, r.Unsafe)
			}
			if string(r.Format) != tc.wantFormat {
				t.Errorf("converted data is %s, want %s", r.Format, tc.wantFormat)
			}
			if tc.wantFormat == "raw" && !bytes.Equal(got[:mib], im.raw) {
				t.Error("the converted disk differs from the original")
			}
		})
	}
}

// TestConversionChecksOutput runs a qemu-img that writes qcow2 whatever it
// is asked for: the re-inspection must refuse the result.
func TestConversionChecksOutput(t *testing.T) {
	im := newImages(t)
	im.convertTo("disk.qcow2", "qcow2")
	liar := im.write("qemu-img", []byte(fmt.Sprintf(`#!/bin/sh
if [ "$1" = convert ]; then
	exec %s convert -f "$3" -O qcow2 "$6" "$7"
fi
exec %s "$@"
`, im.qemu, im.qemu)))
	if err := os.Chmod(liar, 0o700); err != nil {
		t.Fatal(err)
	}
	ps, err := Load([]string{"image_conversion"}, Config{QemuImg: liar, Formats: inspect.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	src := im.read("disk.qcow2")
	s := stage(t, src, "qcow2", "bare")
	_, err = ps[0].Run(context.Background(), s)
	if !errors.Is(err, domain.ErrUnsupported) || err.Error() != "Converted image in unexpected format" {
		t.Errorf("Run = %v", err)
	}
	if !bytes.Equal(readStaged(t, s), src) {
		t.Error("the staged file changed")
	}
	onlyStaged(t, s)
}

// TestConversionQemuFails covers qemu-img failing: its message fails the
// import and nothing is left behind.
func TestConversionQemuFails(t *testing.T) {
	im := newImages(t)
	im.convertTo("disk.qcow2", "qcow2")
	broken := im.write("qemu-img", []byte(fmt.Sprintf(`#!/bin/sh
if [ "$1" = convert ]; then
	echo "qemu-img: out of cheese" >&2
	: > "$7"
	exit 1
fi
exec %s "$@"
`, im.qemu)))
	if err := os.Chmod(broken, 0o700); err != nil {
		t.Fatal(err)
	}
	ps, err := Load([]string{"image_conversion"}, Config{QemuImg: broken, Formats: inspect.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	s := stage(t, im.read("disk.qcow2"), "qcow2", "bare")
	_, err = ps[0].Run(context.Background(), s)
	if !errors.Is(err, domain.ErrUnsupported) || err.Error() != "qemu-img: out of cheese" {
		t.Errorf("Run = %v", err)
	}
	onlyStaged(t, s)
}

func TestConversionCanceled(t *testing.T) {
	im := newImages(t)
	im.convertTo("disk.qcow2", "qcow2")
	ps, err := Load([]string{"image_conversion"}, Config{Formats: inspect.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	s := stage(t, im.read("disk.qcow2"), "qcow2", "bare")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ps[0].Run(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	onlyStaged(t, s)
}

func TestCheckInfo(t *testing.T) {
	allowed := inspect.DefaultPolicy()
	tests := []struct {
		name    string
		json    string
		source  string
		policy  inspect.Policy
		wantErr string
	}{
		{"qcow2", `{"format": "qcow2", "virtual-size": 1048576, "format-specific": {"type": "qcow2", "data": {"compat": "1.1"}}}`, "qcow2", allowed, ""},
		{"vhd is vpc", `{"format": "vpc", "virtual-size": 1}`, "vhd", allowed, ""},
		{"format disagrees", `{"format": "raw", "virtual-size": 1}`, "qcow2", allowed, "Image metadata disagrees about format"},
		{"no format", `{"virtual-size": 1}`, "qcow2", allowed, "Image metadata disagrees about format"},
		{"backing file", `{"format": "qcow2", "backing-filename": "/etc/passwd"}`, "qcow2", allowed,
			"QCOW images with backing files are not allowed"},
		{"data file", `{"format": "qcow2", "format-specific": {"type": "qcow2", "data": {"data-file": "/dev/sda"}}}`, "qcow2", allowed,
			"QCOW images with data-file set are not allowed"},
		{"vmdk stream", `{"format": "vmdk", "format-specific": {"type": "vmdk", "data": {"create-type": "streamOptimized"}}}`, "vmdk", allowed, ""},
		{"vmdk flat", `{"format": "vmdk", "format-specific": {"type": "vmdk", "data": {"create-type": "monolithicFlat"}}}`, "vmdk", allowed,
			"Invalid VMDK create-type specified"},
		{"vmdk without create-type", `{"format": "vmdk", "format-specific": {"type": "vmdk", "data": {}}}`, "vmdk", allowed,
			"Unable to determine VMDK create-type"},
		{"vmdk, none allowed", `{"format": "vmdk", "format-specific": {"type": "vmdk", "data": {"create-type": "streamOptimized"}}}`, "vmdk",
			inspect.Policy{}, "Image is a VMDK, but no VMDK createType is specified"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkInfo([]byte(tc.json), tc.source, tc.policy)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("checkInfo = %v", err)
				}
				return
			}
			if !errors.Is(err, domain.ErrUnsupported) || err.Error() != tc.wantErr {
				t.Errorf("checkInfo = %v, want %q", err, tc.wantErr)
			}
		})
	}
	if _, err := checkInfo([]byte("qemu-img: not json"), "raw", allowed); err == nil || strings.Contains(err.Error(), "disagrees") {
		t.Errorf("checkInfo of garbage = %v", err)
	}
}

func TestConversionLeftoversReplaced(t *testing.T) {
	im := newImages(t)
	im.convertTo("disk.qcow2", "qcow2")
	ps, err := Load([]string{"image_conversion"}, Config{Formats: inspect.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	s := stage(t, im.read("disk.qcow2"), "qcow2", "bare")
	if err := os.WriteFile(s.Path+".raw", []byte("half a run"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[0].Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readStaged(t, s), im.raw) {
		t.Error("wrong data")
	}
	onlyStaged(t, s)
}
