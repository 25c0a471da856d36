package file_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/glance-go/glance-go/stores"
	"github.com/glance-go/glance-go/stores/file"
	"github.com/glance-go/glance-go/stores/storetest"
)

func newDriver(t *testing.T, cfg file.Config) *file.Driver {
	t.Helper()
	if cfg.DataDir == "" && len(cfg.DataDirs) == 0 {
		cfg.DataDir = filepath.Join(t.TempDir(), "images")
	}
	d, err := file.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkOnlyImages(t, d) })
	return d
}

// checkOnlyImages fails t if a data directory holds anything but image
// files: a temporary file or a directory left behind.
func checkOnlyImages(t *testing.T, d *file.Driver) {
	t.Helper()
	for _, dir := range d.Dirs() {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if strings.HasSuffix(e.Name(), file.PartialSuffix) || !e.Type().IsRegular() {
				t.Errorf("%s holds %s", dir, e.Name())
			}
		}
	}
}

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(t *testing.T) file.Config
	}{
		{"defaults", func(t *testing.T) file.Config { return file.Config{} }},
		{"small chunks", func(t *testing.T) file.Config { return file.Config{ChunkSize: 4096} }},
		{"thin provisioning", func(t *testing.T) file.Config { return file.Config{ChunkSize: 4096, ThinProvisioning: true} }},
		{"file perm", func(t *testing.T) file.Config { return file.Config{ChunkSize: 4096, FilePerm: 0o640} }},
		{"copy downloads", func(t *testing.T) file.Config { return file.Config{Download: file.DownloadCopy} }},
		{"several directories", func(t *testing.T) file.Config {
			tmp := t.TempDir()
			return file.Config{ChunkSize: 4096, DataDirs: []string{tmp + "/a:1", tmp + "/b:2", tmp + "/c:2"}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) stores.Driver { return newDriver(t, tc.cfg(t)) })
		})
	}
}

// TestConformanceInMultiStore runs the suite on the driver as a multi-store
// Set hands it out, and checks the store id it adds.
func TestConformanceInMultiStore(t *testing.T) {
	newSet := func(t *testing.T) *stores.Set {
		d := newDriver(t, file.Config{ChunkSize: 4096})
		s, err := stores.NewMultiSet("cheap", &stores.Backend{ID: "cheap", Type: "file", Driver: d})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, func(t *testing.T) stores.Driver { return newSet(t).Default() })
	obj, err := newSet(t).Default().Put(context.Background(), "x", strings.NewReader("data"), 4)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Metadata["store"] != "cheap" || len(obj.Metadata) != 1 {
		t.Errorf("metadata = %v, want the store id only", obj.Metadata)
	}
}

func TestLocationURL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "images")
	d := newDriver(t, file.Config{DataDir: dir + "/"})
	obj, err := d.Put(context.Background(), "6b4a3d3f-5f7a-4a2b-9a47-d5c0e5d0b7f1", strings.NewReader("x"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "file://" + dir + "/6b4a3d3f-5f7a-4a2b-9a47-d5c0e5d0b7f1"; obj.URL != want || d.URL("6b4a3d3f-5f7a-4a2b-9a47-d5c0e5d0b7f1") != want {
		t.Errorf("URL = %q, URL(id) = %q, want %q", obj.URL, d.URL("6b4a3d3f-5f7a-4a2b-9a47-d5c0e5d0b7f1"), want)
	}
	if len(obj.Metadata) != 0 || obj.Metadata == nil {
		t.Errorf("metadata = %#v, want an empty map", obj.Metadata)
	}
	// Both schemes, in any case, name the same file.
	for _, u := range []string{obj.URL, "filesystem://" + strings.TrimPrefix(obj.URL, "file://"), "FILE://" + strings.TrimPrefix(obj.URL, "file://")} {
		if n, err := d.Size(context.Background(), u); err != nil || n != 1 {
			t.Errorf("Size(%s) = %d, %v", u, n, err)
		}
	}
}

func TestBadIDsAndForeignPaths(t *testing.T) {
	d := newDriver(t, file.Config{})
	ctx := context.Background()
	for _, id := range []string{"", ".", "..", "a/b", "../escape", "x" + file.PartialSuffix} {
		if _, err := d.Put(ctx, id, bytes.NewReader(nil), 0); err == nil {
			t.Errorf("Put(%q) succeeded", id)
		}
	}
	outside := filepath.Join(filepath.Dir(d.Dir()), "secret")
	if err := os.WriteFile(outside, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(d.Dir(), "img.0123"+file.PartialSuffix)
	if err := os.WriteFile(partial, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(partial)
	for _, u := range []string{"file://" + outside, "file://" + d.Dir() + "/../secret", "file://relative/x", "file://" + partial} {
		if _, err := d.Get(ctx, u, 0, -1); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", u, err)
		}
		if err := d.Delete(ctx, u); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", u, err)
		}
	}
	if _, err := d.Get(ctx, "rbd://a/b", 0, -1); !errors.Is(err, stores.ErrUnknownScheme) {
		t.Errorf("Get(rbd) = %v, want ErrUnknownScheme", err)
	}
	if got, err := d.Orphans(); err != nil || !slices.Equal(got, []string{partial}) {
		t.Errorf("Orphans = %q, %v; want %q", got, err, partial)
	}
}

func TestNewRefuses(t *testing.T) {
	tmp := t.TempDir()
	tests := []struct {
		name string
		cfg  file.Config
		want string
	}{
		{"no directory", file.Config{}, "specify filesystem_store_datadir or filesystem_store_datadirs"},
		{"both", file.Config{DataDir: tmp, DataDirs: []string{tmp + "/b"}}, "either"},
		{"bad priority", file.Config{DataDirs: []string{tmp + "/a:high"}}, `invalid priority "high"`},
		{"empty path", file.Config{DataDirs: []string{":3"}}, "no directory"},
		{"one directory, two priorities", file.Config{DataDirs: []string{tmp + "/a:1", tmp + "/a/:2"}}, "priorities 1 and 2"},
		{"perm without owner read", file.Config{DataDir: tmp, FilePerm: 0o240}, "owner"},
		{"negative chunk", file.Config{DataDir: tmp, ChunkSize: -1}, "chunk size"},
		{"missing metadata file", file.Config{DataDir: tmp, MetadataFile: tmp + "/none.json"}, "cannot be read"},
		{"unknown download", file.Config{DataDir: tmp, Download: "splice"}, "filesystem_store_download"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := file.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// The same directory twice with one priority is only listed once.
	d, err := file.New(file.Config{DataDirs: []string{tmp + "/a:1", tmp + "/a:1", tmp + "/b"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{tmp + "/a", tmp + "/b"}; !slices.Equal(d.Dirs(), want) {
		t.Errorf("Dirs = %q, want %q", d.Dirs(), want)
	}
}

// TestChooseDirectory follows glance_store's choice: the highest priority
// first; within it the directory with the most free space that can take a
// known size; the next priority when none can.
func TestChooseDirectory(t *testing.T) {
	tmp := t.TempDir()
	free := map[string]uint64{"hi1": 100, "hi2": 300, "lo1": 5000, "lo2": 1000, "zero": 0}
	d := newDriver(t, file.Config{DataDirs: []string{
		tmp + "/lo1:1", tmp + "/hi1:10", tmp + "/lo2:1", tmp + "/hi2:10", tmp + "/zero:0"}})
	file.SetFreeSpace(d, func(dir string) (uint64, error) { return free[filepath.Base(dir)], nil })
	tests := []struct {
		size    int64
		want    string
		wantErr error
	}{
		{0, "hi2", nil},
		{200, "hi2", nil},
		{300, "hi2", nil},
		{301, "lo1", nil},
		{5000, "lo1", nil},
		{5001, "", stores.ErrFull},
	}
	for i, tc := range tests {
		id := fmt.Sprintf("img-%d", i)
		obj, err := d.Put(context.Background(), id, bytes.NewReader(make([]byte, tc.size)), tc.size)
		if !errors.Is(err, tc.wantErr) {
			t.Fatalf("Put(%d bytes) = %v, want %v", tc.size, err, tc.wantErr)
		}
		if err != nil {
			continue
		}
		if want := "file://" + filepath.Join(tmp, tc.want, id); obj.URL != want {
			t.Errorf("Put(%d bytes) went to %s, want %s", tc.size, obj.URL, want)
		}
	}
	// A location in any configured directory is served; the id is taken
	// whichever directory holds it.
	if err := os.WriteFile(filepath.Join(tmp, "zero", "old"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	u := "file://" + filepath.Join(tmp, "zero", "old")
	if n, err := d.Size(context.Background(), u); err != nil || n != 3 {
		t.Errorf("Size(%s) = %d, %v", u, n, err)
	}
	if _, err := d.Put(context.Background(), "old", strings.NewReader("new"), 3); !errors.Is(err, stores.ErrExists) {
		t.Errorf("Put(old) = %v, want ErrExists", err)
	}
	if err := d.Delete(context.Background(), u); err != nil {
		t.Errorf("Delete(%s) = %v", u, err)
	}
	if got := d.Properties()["data_dir"]; got != filepath.Join(tmp, "hi1") {
		t.Errorf("data_dir = %v, want the first directory of the highest priority", got)
	}
}

// allocated returns the bytes the filesystem allocated to a file.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

func TestThinProvisioning(t *testing.T) {
	const size = 1 << 20
	data := make([]byte, size)
	copy(data[300000:], "not all zeros")
	put := func(thin bool) (string, *file.Driver) {
		d := newDriver(t, file.Config{ThinProvisioning: thin})
		obj, err := d.Put(context.Background(), "img", bytes.NewReader(data), 0)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(obj.URL, "file://"), d
	}
	thick, _ := put(false)
	thin, d := put(true)
	for _, p := range []string{thick, thin} {
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes, %v; want the data back", p, len(got), err)
		}
	}
	if allocated(t, thick) < size {
		t.Skipf("this filesystem allocates %d bytes to a written file of %d: holes cannot be told apart", allocated(t, thick), size)
	}
	if a := allocated(t, thin); a >= size/2 {
		t.Errorf("the thin file takes %d bytes on disk, want holes where the zeros were", a)
	}
	if got := d.Properties()["thin_provisioning"]; got != true {
		t.Errorf("thin_provisioning = %v", got)
	}
}

func TestMetadataFile(t *testing.T) {
	tmp := t.TempDir()
	nfs1, nfs2 := filepath.Join(tmp, "nfs1"), filepath.Join(tmp, "nfs2")
	tests := []struct {
		name    string
		json    string
		dir     string
		want    map[string]any
		wantErr string
	}{
		{"one object", `{"id": "share-1", "mountpoint": "` + nfs1 + `"}`, nfs1,
			map[string]any{"id": "share-1", "mountpoint": nfs1}, ""},
		{"list, second matches, extra keys kept", `[{"id": "a", "mountpoint": "` + nfs2 + `"}, {"id": "b", "mountpoint": "` + nfs1 + `", "x": [1]}]`, nfs1,
			map[string]any{"id": "b", "mountpoint": nfs1, "x": []any{json.Number("1")}}, ""},
		{"no mountpoint matches", `[{"id": "a", "mountpoint": "/elsewhere"}]`, nfs1, map[string]any{}, ""},
		{"not JSON", `{`, nfs1, nil, "not valid"},
		{"no id", `{"mountpoint": "/x"}`, nfs1, nil, `needs a string "id"`},
		{"mountpoint not a string", `[{"id": "a", "mountpoint": 3}]`, nfs1, nil, `needs a string "mountpoint"`},
		{"a string", `"x"`, nfs1, nil, "want an object or a list"},
		{"a list of strings", `["x"]`, nfs1, nil, "item 0 is not an object"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mf := filepath.Join(tmp, fmt.Sprintf("meta-%d.json", i))
			if err := os.WriteFile(mf, []byte(tc.json), 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := file.New(file.Config{DataDir: filepath.Join(tc.dir, "images"), MetadataFile: mf})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			obj, err := d.Put(context.Background(), fmt.Sprint("img", i), strings.NewReader("x"), 1)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(obj.Metadata) != fmt.Sprint(tc.want) {
				t.Errorf("metadata = %v, want %v", obj.Metadata, tc.want)
			}
			// Each location gets its own copy.
			obj.Metadata["changed"] = true
			obj2, _ := d.Put(context.Background(), fmt.Sprint("img-b", i), strings.NewReader("x"), 1)
			if _, ok := obj2.Metadata["changed"]; ok {
				t.Error("metadata maps are shared between locations")
			}
		})
	}
}

func TestFilePerm(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, file.Config{DataDir: dir, FilePerm: 0o644})
	if _, err := d.Put(context.Background(), "p", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "p"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("file mode = %v, want 0644", st.Mode().Perm())
	}
	// Others may read the files, so they may now traverse the directory.
	if st, err = os.Stat(dir); err != nil || st.Mode().Perm() != 0o711 {
		t.Errorf("directory mode = %v, %v; want 0711", st.Mode().Perm(), err)
	}
}

func TestOptions(t *testing.T) {
	tmp := t.TempDir()
	tests := []struct {
		name    string
		values  map[string]string
		multi   map[string][]string
		defs    map[string]string
		want    map[string]any // Properties
		wantErr string
	}{
		{"datadir and the rest", map[string]string{"filesystem_store_datadir": tmp + "/a", "filesystem_store_chunk_size": "4096",
			"filesystem_thin_provisioning": "yes", "filesystem_store_file_perm": "640", "store_description": "Cheap", "weight": "5"}, nil, nil,
			map[string]any{"data_dir": tmp + "/a", "chunk_size": 4096, "thin_provisioning": true}, ""},
		{"datadirs alone", nil, map[string][]string{"filesystem_store_datadirs": {tmp + "/b:1", tmp + "/c:5"}}, nil,
			map[string]any{"data_dir": tmp + "/c", "chunk_size": 65536, "thin_provisioning": false}, ""},
		{"reserved store default", nil, nil, map[string]string{"filesystem_store_datadir": tmp + "/staging"},
			map[string]any{"data_dir": tmp + "/staging", "chunk_size": 65536, "thin_provisioning": false}, ""},
		{"datadir and datadirs", map[string]string{"filesystem_store_datadir": tmp + "/a"},
			map[string][]string{"filesystem_store_datadirs": {tmp + "/b"}}, nil, nil, "either"},
		{"bad chunk", map[string]string{"filesystem_store_datadir": tmp, "filesystem_store_chunk_size": "0"}, nil, nil, nil,
			`[cheap] filesystem_store_chunk_size = "0": must be at least 1`},
		{"bad perm", map[string]string{"filesystem_store_datadir": tmp, "filesystem_store_file_perm": "699"}, nil, nil, nil,
			"octal"},
		{"bad bool", map[string]string{"filesystem_store_datadir": tmp, "filesystem_thin_provisioning": "maybe"}, nil, nil, nil,
			"not a boolean"},
		{"bad weight", map[string]string{"filesystem_store_datadir": tmp, "weight": "heavy"}, nil, nil, nil,
			`[cheap] weight = "heavy": not an integer`},
		{"download copy", map[string]string{"filesystem_store_datadir": tmp, "filesystem_store_download": "copy"}, nil, nil,
			map[string]any{"data_dir": tmp, "chunk_size": 65536, "thin_provisioning": false}, ""},
		{"bad download", map[string]string{"filesystem_store_datadir": tmp, "filesystem_store_download": "splice"}, nil, nil, nil,
			`[cheap] filesystem_store_download = "splice": must be auto, sendfile or copy`},
		{"empty download", map[string]string{"filesystem_store_datadir": tmp, "filesystem_store_download": ""}, nil, nil, nil,
			`filesystem_store_download = "": must be auto, sendfile or copy`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &stores.Options{Values: tc.values, Multi: tc.multi, Defaults: tc.defs}
			b, err := stores.Open("cheap", "file", o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(b.Properties) != fmt.Sprint(tc.want) {
				t.Errorf("Properties = %v, want %v", b.Properties, tc.want)
			}
			if b.ID != "cheap" || b.Type != "file" || b.Description != tc.values["store_description"] {
				t.Errorf("backend = %+v", b)
			}
			if u := o.Unused(); len(u) != 0 {
				t.Errorf("Unused = %q", u)
			}
		})
	}
}

// spyWriter records what reaches its ReadFrom.
type spyWriter struct {
	bytes.Buffer
	src io.Reader
}

func (w *spyWriter) ReadFrom(r io.Reader) (int64, error) {
	w.src = r
	return w.Buffer.ReadFrom(r)
}

// TestZeroCopy checks that io.Copy from Get's reader gives the writer an
// *io.LimitedReader of the *os.File, which net/http turns into sendfile.
func TestZeroCopy(t *testing.T) {
	d := newDriver(t, file.Config{Download: file.DownloadSendfile})
	data := storetest.Pattern(100000)
	obj, err := d.Put(context.Background(), "img", bytes.NewReader(data), 0)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := d.Get(context.Background(), obj.URL, 1000, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, ok := rc.(io.WriterTo); !ok {
		t.Fatalf("Get returned a %T, which has no WriteTo", rc)
	}
	var w spyWriter
	if n, err := io.Copy(&w, rc); err != nil || n != 5000 {
		t.Fatalf("io.Copy = %d, %v", n, err)
	}
	lr, ok := w.src.(*io.LimitedReader)
	if !ok {
		t.Fatalf("ReadFrom got a %T, want *io.LimitedReader", w.src)
	}
	if _, ok := lr.R.(*os.File); !ok {
		t.Errorf("the LimitedReader reads a %T, want *os.File", lr.R)
	}
	if !bytes.Equal(w.Bytes(), data[1000:6000]) {
		t.Error("io.Copy copied the wrong bytes")
	}
}

// TestCrash kills a process in the middle of a Put and checks that no file
// under the image's name is left, only a temporary file Orphans lists.
func TestCrash(t *testing.T) {
	if os.Getenv("GLANCE_FILE_CRASH_DIR") != "" {
		crashHelper()
		return
	}
	dir := filepath.Join(t.TempDir(), "images")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
	cmd.Env = append(os.Environ(), "GLANCE_FILE_CRASH_DIR="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "writing\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	d, err := file.New(file.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "img")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the crash, img exists (%v)", err)
	}
	orphans, err := d.Orphans()
	if err != nil || len(orphans) != 1 {
		t.Fatalf("Orphans = %q, %v; want the one temporary file", orphans, err)
	}
	if st, err := os.Stat(orphans[0]); err != nil || st.Size() == 0 {
		t.Errorf("the temporary file has no data (%v): the helper did not crash mid-write", err)
	}
	if ids, err := d.IDs(context.Background()); err != nil || !slices.Equal(ids, []string{"img"}) {
		t.Errorf("IDs = %q, %v; want the image being written", ids, err)
	}
	if err := d.Discard(context.Background(), "img"); err != nil {
		t.Fatal(err)
	}
	if orphans, err := d.Orphans(); err != nil || len(orphans) != 0 {
		t.Errorf("Orphans after Discard = %q, %v", orphans, err)
	}
	if _, err := d.Put(context.Background(), "img", strings.NewReader("x"), 1); err != nil {
		t.Errorf("Put after the crash = %v", err)
	}
}

func TestDiscardAndIDs(t *testing.T) {
	tmp := t.TempDir()
	d := newDriver(t, file.Config{DataDirs: []string{tmp + "/a:1", tmp + "/b:2"}})
	files := map[string]string{
		"a/img":                             "complete",
		"b/img.00ff" + file.PartialSuffix:   "partial",
		"a/img.2.0011" + file.PartialSuffix: "another image's partial",
		"b/other":                           "another image",
		"a/x.partial":                       "a name with no random part",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(tmp, "a", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ids, err := d.IDs(ctx); err != nil || !slices.Equal(ids, []string{"img", "img.2", "other"}) {
		t.Errorf("IDs = %q, %v", ids, err)
	}
	if err := d.Discard(ctx, "img"); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		_, err := os.Stat(filepath.Join(tmp, name))
		if gone := errors.Is(err, os.ErrNotExist); gone != (name == "a/img" || name == "b/img.00ff"+file.PartialSuffix) {
			t.Errorf("after Discard(img), %s: %v", name, err)
		}
	}
	if err := d.Discard(ctx, "img"); err != nil {
		t.Errorf("Discard of nothing = %v", err)
	}
	if err := d.Discard(ctx, "../x"); err == nil {
		t.Error("Discard(../x) succeeded")
	}
	for _, name := range []string{"a/img.2.0011" + file.PartialSuffix, "a/x.partial", "b/other"} {
		os.Remove(filepath.Join(tmp, name))
	}
	os.Remove(filepath.Join(tmp, "a", "dir"))
}

// crashHelper writes some chunks of an image, says so on standard output,
// then waits on standard input for data that never comes.
func crashHelper() {
	d, err := file.New(file.Config{DataDir: os.Getenv("GLANCE_FILE_CRASH_DIR"), ChunkSize: 4096})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r := io.MultiReader(bytes.NewReader(storetest.Pattern(3*4096)), &announce{}, os.Stdin)
	_, err = d.Put(context.Background(), "img", r, 0)
	fmt.Fprintln(os.Stderr, "the Put ended:", err)
	os.Exit(3)
}

// announce prints "writing" when it is first read: every chunk before it
// has been written by then.
type announce struct{}

func (announce) Read([]byte) (int, error) {
	fmt.Println("writing")
	return 0, io.EOF
}
