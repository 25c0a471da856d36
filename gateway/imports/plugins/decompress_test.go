package plugins

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

// payload is image data that compresses well and is easy to check.
var payload = bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16+3)

func gzipped(t *testing.T, parts ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, p := range parts { // one gzip member per part
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

type zipEntry struct {
	name string
	data []byte
}

func zipped(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// storedZip is a zip of one entry stored without compression.
func storedZip(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "disk.raw", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecompression(t *testing.T) {
	gz := gzipped(t, payload)
	zp := zipped(t, zipEntry{"disk.raw", payload})
	// A bad CRC: one byte of a stored (uncompressed) entry is changed.
	badZip := storedZip(t, payload)
	badZip[bytes.Index(badZip, payload)+100] ^= 0xff
	tests := []struct {
		name      string
		data      []byte
		container string
		want      []byte // the staged data afterwards
		changed   bool   // a size change is returned
		wantErr   string
	}{
		{name: "gzip", data: gz, container: "bare", want: payload, changed: true},
		{name: "gzip with several members", data: gzipped(t, payload[:1000], payload[1000:]), container: "bare", want: payload, changed: true},
		{name: "gzip of an empty file", data: gzipped(t, nil), container: "bare", want: []byte{}, changed: true},
		{name: "gzip in an ovf container keeps it", data: gz, container: "ovf", want: payload, changed: true},
		{name: "zip", data: zp, container: "bare", want: payload, changed: true},
		{name: "zip entry named outside staging", data: zipped(t, zipEntry{"../../../../tmp/evil", payload}), container: "bare",
			want: payload, changed: true},
		{name: "compressed container is left alone", data: gz, container: "compressed", want: gz},
		{name: "not an archive", data: payload, container: "bare", want: payload},
		{name: "short file", data: []byte{0x1f}, container: "bare", want: []byte{0x1f}},
		{name: "empty file", data: []byte{}, container: "bare", want: []byte{}},
		{name: "zip with two files", data: zipped(t, zipEntry{"a", payload}, zipEntry{"b", payload}), container: "bare",
			wantErr: "Archive contains more than one file."},
		{name: "empty zip has no local header", data: zipped(t), container: "bare", want: zipped(t)},
		{name: "zip of a directory", data: zipped(t, zipEntry{"dir/", nil}), container: "bare",
			wantErr: "Archive contains a directory, not a file."},
		{name: "zip with a bad checksum", data: badZip, container: "bare", wantErr: "Bad ZIP file: zip: checksum error"},
		{name: "truncated gzip", data: gz[:len(gz)/2], container: "bare", wantErr: "Bad GZip file: unexpected EOF"},
		{name: "lha", data: append([]byte{0x20, 0x00}, []byte("-lh5-rest of header")...), container: "bare",
			wantErr: "LHA archives are not supported by the image_decompression plugin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := Load([]string{"image_decompression"}, Config{})
			if err != nil {
				t.Fatal(err)
			}
			s := stage(t, tc.data, "raw", tc.container)
			change, err := ps[0].Run(context.Background(), s)
			defer onlyStaged(t, s)
			if tc.wantErr != "" {
				if !errors.Is(err, domain.ErrUnsupported) || err.Error() != tc.wantErr {
					t.Fatalf("Run = %v, want ErrUnsupported %q", err, tc.wantErr)
				}
				if !bytes.Equal(readStaged(t, s), tc.data) {
					t.Error("the staged file changed although the plugin failed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readStaged(t, s); !bytes.Equal(got, tc.want) {
				t.Errorf("staged data is %d bytes, want %d", len(got), len(tc.want))
			}
			if (change != nil) != tc.changed {
				t.Fatalf("change returned: %v, want %v", change != nil, tc.changed)
			}
			if !tc.changed {
				return
			}
			m := domain.Meta{ContainerFormat: domain.Ptr(tc.container)}
			if err := change(&m); err != nil || m.Size == nil || *m.Size != int64(len(tc.want)) {
				t.Errorf("change sets size %v (%v), want %d", m.Size, err, len(tc.want))
			}
			if *m.ContainerFormat != tc.container || *s.Meta.ContainerFormat != tc.container {
				t.Errorf("container format changed to %s", *m.ContainerFormat)
			}
			if s.Meta.Size == nil || *s.Meta.Size != int64(len(tc.want)) {
				t.Errorf("Staged.Meta size %v, want %d", s.Meta.Size, len(tc.want))
			}
		})
	}
	if _, err := os.Stat(filepath.Join(os.TempDir(), "evil")); err == nil {
		t.Error("a zip entry's name was used as a path")
	}
}

func TestDecompressionCanceled(t *testing.T) {
	ps, err := Load([]string{"image_decompression"}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	gz := gzipped(t, payload)
	s := stage(t, gz, "raw", "bare")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ps[0].Run(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if !bytes.Equal(readStaged(t, s), gz) {
		t.Error("the staged file changed")
	}
	onlyStaged(t, s)
}

// TestLeftoversReplaced checks that a file left beside the staged data by a
// run that died does not block the next one.
func TestLeftoversReplaced(t *testing.T) {
	ps, err := Load([]string{"image_decompression"}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := stage(t, gzipped(t, payload), "raw", "bare")
	if err := os.WriteFile(s.Path+".uc", []byte("half a run"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[0].Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readStaged(t, s), payload) {
		t.Error("wrong data")
	}
	onlyStaged(t, s)
}
