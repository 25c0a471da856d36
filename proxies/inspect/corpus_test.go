package inspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

// corpus is every file of testdata with what it must be found to be. vsize
// is the virtual-size qemu-img info reports (see testdata/README.md).
var corpus = []struct {
	file   string
	format Format
	vsize  int64
	qemu   string   // qemu-img's name for the format
	failed []string // failed safety checks
}{
	{"raw.img", Raw, 1048576, "raw", nil},
	{"qcow2-v2.qcow2", QCOW2, 4194304, "qcow2", nil},
	{"qcow2-v3.qcow2", QCOW2, 4194304, "qcow2", nil},
	{"qcow2-backing.qcow2", QCOW2, 1048576, "qcow2", []string{"backing_file"}},
	{"qcow2-datafile.qcow2", QCOW2, 4194304, "qcow2", []string{"data_file"}},
	{"qcow2-datafile.data", Raw, 4194304, "raw", nil},
	{"qed.qed", QED, 4194304, "qed", []string{"banned"}},
	{"vhd.vhd", VHD, 4212736, "vpc", nil},
	{"vhdx.vhdx", VHDX, 4194304, "vhdx", nil},
	{"vdi.vdi", VDI, 4194304, "vdi", nil},
	{"vmdk-sparse.vmdk", VMDK, 4194304, "vmdk", nil},
	{"vmdk-stream.vmdk", VMDK, 4194304, "vmdk", nil},
	{"vmdk-stream-footer.vmdk", VMDK, 4194304, "vmdk", nil},
	{"vmdk-path-extent.vmdk", VMDK, 4194304, "vmdk", []string{"descriptor"}},
	// qemu follows the descriptor to its flat extent; the inspector refuses
	// descriptor files and leaves the size unknown.
	{"vmdk-flat.vmdk", VMDK, 0, "vmdk", []string{"descriptor"}},
	{"vmdk-flat-flat.vmdk", Raw, 1048576, "raw", nil},
	{"iso.iso", ISO, 376832, "raw", nil},
	{"gpt.img", GPT, 1048576, "raw", nil},
	{"luks.luks", LUKS, 1048576, "luks", nil},
}

func readCorpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inspect feeds b to a new Inspector in chunks of n bytes (all at once when
// n is 0).
func inspect(b []byte, n int) Result {
	i := New()
	if n <= 0 {
		n = max(len(b), 1)
	}
	for len(b) > 0 {
		k := min(n, len(b))
		i.Write(b[:k])
		b = b[k:]
	}
	return i.Result()
}

// failedChecks returns the names of the failed checks in r.Unsafe.
func failedChecks(r Result) []string {
	var se *SafetyError
	if !errors.As(r.Unsafe, &se) {
		return nil
	}
	return slices.Sorted(func(yield func(string) bool) {
		for k := range se.Failures {
			if !yield(k) {
				return
			}
		}
	})
}

func TestCorpus(t *testing.T) {
	for _, tc := range corpus {
		t.Run(tc.file, func(t *testing.T) {
			b := readCorpus(t, tc.file)
			got := inspect(b, 0)
			if got.Format != tc.format {
				t.Errorf("format = %s, want %s", got.Format, tc.format)
			}
			if got.VirtualSize != tc.vsize {
				t.Errorf("virtual size = %d, want %d", got.VirtualSize, tc.vsize)
			}
			if got.ActualSize != int64(len(b)) {
				t.Errorf("actual size = %d, want %d", got.ActualSize, len(b))
			}
			if f := failedChecks(got); !slices.Equal(f, tc.failed) {
				t.Errorf("failed checks = %v, want %v (Unsafe: %v)", f, tc.failed, got.Unsafe)
			}
			if tc.failed == nil && got.Unsafe != nil {
				t.Errorf("Unsafe = %v, want nil", got.Unsafe)
			}
			file, err := DetectFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !sameResult(file, got) {
				t.Errorf("DetectFile = %+v, stream gave %+v", file, got)
			}
		})
	}
}

// TestCorpusQemuImg checks the table against qemu-img info itself.
func TestCorpusQemuImg(t *testing.T) {
	if testing.Short() {
		t.Skip("runs qemu-img")
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("GLANCE_TEST_STRICT") != "" {
			t.Fatal("qemu-img is not installed (apt-get install qemu-utils) and GLANCE_TEST_STRICT is set")
		}
		t.Skip("qemu-img is not installed (apt-get install qemu-utils)")
	}
	for _, tc := range corpus {
		t.Run(tc.file, func(t *testing.T) {
			out, err := exec.Command("qemu-img", "info", "--output=json", filepath.Join("testdata", tc.file)).Output()
			if err != nil {
				t.Fatalf("qemu-img info: %v", err)
			}
			var info struct {
				VirtualSize int64  `json:"virtual-size"`
				Format      string `json:"format"`
			}
			if err := json.Unmarshal(out, &info); err != nil {
				t.Fatal(err)
			}
			if info.Format != tc.qemu {
				t.Errorf("qemu-img format = %s, table says %s", info.Format, tc.qemu)
			}
			want := tc.vsize
			if tc.file == "vmdk-flat.vmdk" {
				want = 1048576 // the table records the inspector's 0
			}
			if info.VirtualSize != want {
				t.Errorf("qemu-img virtual size = %d, table says %d", info.VirtualSize, want)
			}
		})
	}
}

func sameResult(a, b Result) bool {
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	return a.Format == b.Format && a.VirtualSize == b.VirtualSize && a.ActualSize == b.ActualSize &&
		errText(a.Unsafe) == errText(b.Unsafe)
}

// TestChunking feeds every corpus file in odd chunk sizes: the Result must
// not depend on how the stream is cut.
func TestChunking(t *testing.T) {
	for _, tc := range corpus {
		b := readCorpus(t, tc.file)
		want := inspect(b, 0)
		for _, n := range []int{1, 7, 512, 4093, 64 << 10} {
			if n == 1 && testing.Short() && len(b) > 1<<20 {
				continue
			}
			if got := inspect(b, n); !sameResult(got, want) {
				t.Errorf("%s in %d-byte chunks: %+v, whole: %+v", tc.file, n, got, want)
			}
		}
	}
}

// TestCheckCorpus runs Policy.Check on corpus files for relevant labels.
func TestCheckCorpus(t *testing.T) {
	lax := DefaultPolicy()
	lax.RequireFormatMatch = false
	tests := []struct {
		name       string
		file       string
		disk       string
		container  string
		policy     *Policy // nil: DefaultPolicy
		wantSize   int64
		wantErr    string // "" for none
		wantChecks []string
	}{
		{"qcow2 as qcow2", "qcow2-v3.qcow2", "qcow2", "bare", nil, 4194304, "", nil},
		{"qcow2 v2 as qcow2", "qcow2-v2.qcow2", "qcow2", "bare", nil, 4194304, "", nil},
		{"qcow2 as raw takes the data's length", "qcow2-v3.qcow2", "raw", "bare", nil, 196616, "", nil},
		{"qcow2 with backing file", "qcow2-backing.qcow2", "qcow2", "bare", nil, 0, "Image failed safety checks", []string{"backing_file"}},
		{"qcow2 with backing file labelled raw", "qcow2-backing.qcow2", "raw", "bare", nil, 0, "Image failed safety checks", []string{"backing_file"}},
		{"qcow2 with backing file, lax policy", "qcow2-backing.qcow2", "qcow2", "bare", &lax, 0, "Image failed safety checks", []string{"backing_file"}},
		{"qcow2 with data file", "qcow2-datafile.qcow2", "qcow2", "bare", nil, 0, "Image failed safety checks", []string{"data_file"}},
		{"qcow2 with backing file in ovf", "qcow2-backing.qcow2", "qcow2", "ovf", nil, 0, "", nil},
		{"qcow2 labelled vmdk", "qcow2-v3.qcow2", "vmdk", "bare", nil, 0, "Image disk_format vmdk does not match stream data qcow2", nil},
		{"qcow2 labelled ami", "qcow2-v3.qcow2", "ami", "bare", nil, 0, "Image disk_format ami does not match stream data qcow2", nil},
		{"raw labelled qcow2", "raw.img", "qcow2", "bare", nil, 0, "Image disk_format qcow2 does not match stream data raw", nil},
		{"raw labelled qcow2, lax policy", "raw.img", "qcow2", "bare", &lax, 0, "", nil},
		{"raw labelled qcow2 in ova", "raw.img", "qcow2", "ova", nil, 0, "", nil},
		{"raw labelled iso", "raw.img", "iso", "bare", nil, 0, "Image disk_format iso does not match stream data raw", nil},
		{"raw labelled ami", "raw.img", "ami", "bare", nil, 0, "", nil},
		{"raw labelled ploop", "raw.img", "ploop", "bare", nil, 0, "", nil},
		{"raw as raw", "raw.img", "raw", "bare", nil, 1048576, "", nil},
		{"qed", "qed.qed", "qed", "bare", nil, 0, "Image failed safety checks", []string{"banned"}},
		{"qed labelled raw", "qed.qed", "raw", "bare", nil, 0, "Image failed safety checks", []string{"banned"}},
		{"vhd", "vhd.vhd", "vhd", "bare", nil, 4212736, "", nil},
		{"vhdx", "vhdx.vhdx", "vhdx", "bare", nil, 4194304, "", nil},
		{"vdi", "vdi.vdi", "vdi", "bare", nil, 4194304, "", nil},
		{"vmdk monolithicSparse", "vmdk-sparse.vmdk", "vmdk", "bare", nil, 4194304, "", nil},
		{"vmdk streamOptimized", "vmdk-stream.vmdk", "vmdk", "bare", nil, 4194304, "", nil},
		{"vmdk streamOptimized with footer", "vmdk-stream-footer.vmdk", "vmdk", "bare", nil, 4194304, "", nil},
		{"vmdk extent with a path", "vmdk-path-extent.vmdk", "vmdk", "bare", nil, 0, "Image failed safety checks", []string{"descriptor"}},
		{"vmdk extent with a path labelled raw", "vmdk-path-extent.vmdk", "raw", "bare", nil, 0, "Image failed safety checks", []string{"descriptor"}},
		{"vmdk monolithicFlat", "vmdk-flat.vmdk", "vmdk", "bare", nil, 0, "Image failed safety checks", []string{"descriptor"}},
		{"iso", "iso.iso", "iso", "bare", nil, 376832, "", nil},
		{"iso labelled raw", "iso.iso", "raw", "bare", nil, 376832, "", nil},
		{"gpt labelled raw", "gpt.img", "raw", "bare", nil, 1048576, "", nil},
		{"gpt as gpt", "gpt.img", "gpt", "bare", nil, 1048576, "", nil},
		{"gpt labelled ami", "gpt.img", "ami", "bare", nil, 0, "Image disk_format ami does not match stream data gpt", nil},
		{"luks", "luks.luks", "luks", "bare", nil, 1048576, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultPolicy()
			if tc.policy != nil {
				p = *tc.policy
			}
			r := inspect(readCorpus(t, tc.file), 0)
			size, err := p.Check(r, tc.disk, tc.container)
			checkVerdict(t, size, err, tc.wantSize, tc.wantErr, tc.wantChecks)
		})
	}
}

// checkVerdict compares what Policy.Check returned with what is wanted.
func checkVerdict(t *testing.T, size int64, err error, wantSize int64, wantErr string, wantChecks []string) {
	t.Helper()
	if size != wantSize {
		t.Errorf("virtual size = %d, want %d", size, wantSize)
	}
	if wantErr == "" {
		if err != nil {
			t.Fatalf("err = %v, want none", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("err = nil, want %q", wantErr)
	}
	if err.Error() != wantErr {
		t.Errorf("err = %q, want %q", err, wantErr)
	}
	if !errors.Is(err, domain.ErrUnsupported) {
		t.Errorf("err %v is not ErrUnsupported (415)", err)
	}
	var de *domain.Error
	if !errors.As(err, &de) || de.Msg != wantErr {
		t.Errorf("err %v carries no domain.Error with the message", err)
	}
	var se *SafetyError
	if wantChecks != nil {
		if !errors.As(err, &se) {
			t.Fatalf("err %v does not wrap the SafetyError", err)
		}
		if got := failedChecks(Result{Unsafe: se}); !slices.Equal(got, wantChecks) {
			t.Errorf("failed checks = %v, want %v", got, wantChecks)
		}
	}
}

// TestDetectFileMissing: a missing file is an error, not a raw result.
func TestDetectFileMissing(t *testing.T) {
	if _, err := DetectFile(filepath.Join(t.TempDir(), "nothing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
}

// TestDetectFileReadsLittle: DetectFile skips what no parser needs, yet
// finds the footer at the end of a streamOptimized VMDK.
func TestDetectFileReadsLittle(t *testing.T) {
	b := readCorpus(t, "vmdk-stream-footer.vmdk")
	big := append(bytes.Clone(b[:len(b)-1536]), make([]byte, 64<<20)...)
	big = append(big, b[len(b)-1536:]...)
	r := &countingReader{r: bytes.NewReader(big)}
	got, err := detect(r, int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Format != VMDK || got.Unsafe != nil || got.ActualSize != int64(len(big)) {
		t.Errorf("detect = %+v", got)
	}
	if r.n > 4<<20 {
		t.Errorf("read %d bytes of %d", r.n, len(big))
	}
	if want := inspect(big, 0); !sameResult(got, want) {
		t.Errorf("detect = %+v, stream = %+v", got, want)
	}
}

type countingReader struct {
	r *bytes.Reader
	n int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}
