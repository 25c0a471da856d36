// Package file is the filesystem store driver (glance_store's
// _drivers/filesystem.py): each image's data is one file, <datadir>/<image
// id>, and its location URL is file://<absolute path>, e.g.
// file:///var/lib/glance/images/<id>.
//
// # Several data directories
//
// With filesystem_store_datadirs the driver writes into one of several
// directories, as glance_store chooses: the highest priority first and,
// among the directories of one priority, the one with the most free space
// that can hold the announced size. Locations name the directory the data
// went to; Get, Size and Delete serve a location in any configured
// directory and nothing outside them.
//
// # What a crash leaves
//
// Put writes into a temporary file next to the final one, named
// <id>.<random>.partial and created with O_EXCL, then hard-links it to
// <id> (which fails, rather than replaces, if <id> appeared meanwhile) and
// removes the temporary name; on a filesystem without hard links it
// renames instead. A failed or cancelled Put removes its temporary file.
// A process killed in the middle of a Put therefore leaves at most one
// *.partial file, never a file under an image's name with part of its data:
// either <id> is complete or it does not exist. A kill between the link and
// the removal leaves both <id> (complete) and a *.partial name of the same
// file. Crash recovery finds them with IDs (which counts a temporary file
// as its image's) and removes them with Discard; Orphans lists them. Like
// glance_store, the driver does not
// fsync: after an operating-system crash or power loss a file may exist
// with less data than was acknowledged.
package file

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/glance-go/glance-go/stores"
)

// DefaultChunkSize is the copy buffer size when Config.ChunkSize is 0
// (filesystem_store_chunk_size).
const DefaultChunkSize = 64 << 10

// DefaultDataDir is filesystem_store_datadir's default.
const DefaultDataDir = "/var/lib/glance/images"

// PartialSuffix ends the names of the temporary files Put writes into.
const PartialSuffix = ".partial"

// Config is the filesystem store's options, from [glance_store] or a
// backend's section.
type Config struct {
	// DataDir is filesystem_store_datadir. Exactly one of DataDir and
	// DataDirs must be set.
	DataDir string
	// DataDirs is filesystem_store_datadirs: "path" or "path:priority",
	// priority an integer (0 when absent), higher first.
	DataDirs []string
	// FilePerm is filesystem_store_file_perm as a mode; 0 leaves the
	// default. It must let the owner read.
	FilePerm os.FileMode
	// ChunkSize is filesystem_store_chunk_size in bytes; 0 means 64 KiB.
	ChunkSize int
	// ThinProvisioning is filesystem_thin_provisioning: chunks of zeros
	// become holes instead of being written.
	ThinProvisioning bool
	// MetadataFile is filesystem_store_metadata_file: a JSON object, or a
	// list of them, each with string "id" and "mountpoint"; the one whose
	// mountpoint starts the file's path is the location metadata.
	MetadataFile string
	// Download is filesystem_store_download, glance-go's own: how Get's
	// reader writes itself to a connection, DownloadSendfile,
	// DownloadCopy or DownloadAuto. Empty means DownloadAuto.
	Download string
	// Logger receives the outcome of DownloadAuto's measurement, when this
	// driver is the one that starts it; nil means slog.Default().
	Logger *slog.Logger
}

// Driver stores image data as files in one or several directories.
type Driver struct {
	tiers [][]string      // data directories grouped by priority, highest first
	dirs  map[string]bool // every data directory
	multi bool            // filesystem_store_datadirs: choose by free space
	perm  os.FileMode
	chunk int
	thin  bool
	zeros []byte // a chunk of zeros, with thin provisioning
	meta  []map[string]any
	// download is Config.Download, never empty.
	download string

	// freeSpace reports the bytes an unprivileged user may still write
	// under dir; a variable for tests.
	freeSpace func(dir string) (uint64, error)
}

var (
	_ stores.Driver    = (*Driver)(nil)
	_ stores.Discarder = (*Driver)(nil)
	_ stores.Lister    = (*Driver)(nil)
)

func init() { stores.Register("file", open) }

// New returns a driver for cfg, creating the data directories if needed.
func New(cfg Config) (*Driver, error) {
	switch {
	case cfg.DataDir == "" && len(cfg.DataDirs) == 0:
		return nil, errors.New("stores/file: specify filesystem_store_datadir or filesystem_store_datadirs")
	case cfg.DataDir != "" && len(cfg.DataDirs) > 0:
		return nil, errors.New("stores/file: specify either filesystem_store_datadir or filesystem_store_datadirs, not both")
	case cfg.ChunkSize < 0:
		return nil, fmt.Errorf("stores/file: invalid chunk size %d", cfg.ChunkSize)
	case cfg.FilePerm != 0 && (cfg.FilePerm&^os.ModePerm != 0 || cfg.FilePerm&0o400 == 0):
		return nil, fmt.Errorf("stores/file: invalid filesystem_store_file_perm %o: the owner must be able to read image files", cfg.FilePerm)
	case !validDownload(cfg.Download):
		return nil, fmt.Errorf("stores/file: invalid filesystem_store_download %q: want auto, sendfile or copy", cfg.Download)
	}
	d := &Driver{dirs: map[string]bool{}, perm: cfg.FilePerm, chunk: cfg.ChunkSize, thin: cfg.ThinProvisioning, freeSpace: freeSpace,
		download: cfg.Download}
	if d.download == "" {
		d.download = DownloadAuto
	}
	if d.chunk == 0 {
		d.chunk = DefaultChunkSize
	}
	if d.thin {
		d.zeros = make([]byte, d.chunk)
	}
	if cfg.DataDir != "" {
		dir, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("stores/file: %w", err)
		}
		d.tiers = [][]string{{dir}}
		d.dirs[dir] = true
	} else {
		d.multi = true
		if err := d.parseDataDirs(cfg.DataDirs); err != nil {
			return nil, err
		}
	}
	for _, tier := range d.tiers {
		for _, dir := range tier {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("stores/file: cannot create data directory: %w", err)
			}
			d.openDir(dir)
		}
	}
	if cfg.MetadataFile != "" {
		m, err := readMetadata(cfg.MetadataFile)
		if err != nil {
			return nil, err
		}
		d.meta = m
	}
	if d.download == DownloadAuto {
		log := cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		startCalibration(log)
	}
	return d, nil
}

func validDownload(s string) bool {
	switch s {
	case "", DownloadAuto, DownloadSendfile, DownloadCopy:
		return true
	}
	return false
}

// parseDataDirs reads filesystem_store_datadirs into priority tiers. A
// directory listed twice with one priority counts once; with two
// priorities it is an error.
func (d *Driver) parseDataDirs(specs []string) error {
	byPrio := map[int][]string{}
	prioOf := map[string]int{}
	for _, spec := range specs {
		path, prio := strings.TrimSpace(spec), 0
		if i := strings.LastIndex(path, ":"); i >= 0 {
			ps := strings.TrimSpace(path[i+1:])
			path = strings.TrimSpace(path[:i])
			if ps != "" {
				n, err := strconv.Atoi(ps)
				if err != nil {
					return fmt.Errorf("stores/file: invalid priority %q in filesystem_store_datadirs entry %q", ps, spec)
				}
				prio = n
			}
		}
		if path == "" {
			return fmt.Errorf("stores/file: no directory in filesystem_store_datadirs entry %q", spec)
		}
		dir, err := filepath.Abs(path)
		if err != nil {
			return fmt.Errorf("stores/file: %w", err)
		}
		if p, dup := prioOf[dir]; dup {
			if p != prio {
				return fmt.Errorf("stores/file: directory %s is listed in filesystem_store_datadirs with priorities %d and %d", dir, p, prio)
			}
			continue
		}
		prioOf[dir] = prio
		byPrio[prio] = append(byPrio[prio], dir)
		d.dirs[dir] = true
	}
	prios := slices.Sorted(maps.Keys(byPrio))
	for i := len(prios) - 1; i >= 0; i-- {
		d.tiers = append(d.tiers, byPrio[prios[i]])
	}
	return nil
}

// openDir lets the group, or others, traverse dir when FilePerm lets them
// read image files, as glance_store does. Failing to is not an error: the
// operator may have arranged access otherwise.
func (d *Driver) openDir(dir string) {
	if d.perm == 0 {
		return
	}
	st, err := os.Stat(dir)
	if err != nil {
		return
	}
	mode := st.Mode().Perm()
	want := mode
	if d.perm&0o007 != 0 {
		want |= 0o001
	}
	if d.perm&0o070 != 0 {
		want |= 0o010
	}
	if want != mode {
		_ = os.Chmod(dir, want|st.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
	}
}

// readMetadata reads filesystem_store_metadata_file: one object or a list
// of objects, each with a string id and mountpoint.
func readMetadata(name string) ([]map[string]any, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("stores/file: the metadata file %s cannot be read: %w", name, err)
	}
	bad := func(why string) error {
		return fmt.Errorf("stores/file: the JSON in the metadata file %s is not valid and cannot be used: %s", name, why)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, bad(err.Error())
	}
	var items []any
	switch t := v.(type) {
	case map[string]any:
		items = []any{t}
	case []any:
		items = t
	default:
		return nil, bad("want an object or a list of objects")
	}
	out := make([]map[string]any, 0, len(items))
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, bad(fmt.Sprintf("item %d is not an object", i))
		}
		for _, k := range []string{"id", "mountpoint"} {
			if _, ok := m[k].(string); !ok {
				return nil, bad(fmt.Sprintf("item %d needs a string %q", i, k))
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// open is the "file" type of stores.Open: the options of a backend's
// section, or of a reserved store's.
func open(o *stores.Options) (*stores.Backend, error) {
	cfg := ConfigFromOptions(o)
	if err := o.Err(); err != nil {
		return nil, err
	}
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &stores.Backend{Driver: d, Properties: d.Properties()}, nil
}

// ConfigFromOptions reads a configuration section's filesystem options;
// invalid values are recorded in o. filesystem_store_datadir defaults to
// /var/lib/glance/images, unless o's Defaults say otherwise or the section
// sets filesystem_store_datadirs and not filesystem_store_datadir.
func ConfigFromOptions(o *stores.Options) Config {
	cfg := Config{
		DataDir:          o.String("filesystem_store_datadir", DefaultDataDir),
		DataDirs:         o.Strings("filesystem_store_datadirs"),
		ChunkSize:        o.Int("filesystem_store_chunk_size", DefaultChunkSize),
		ThinProvisioning: o.Bool("filesystem_thin_provisioning", false),
		MetadataFile:     o.String("filesystem_store_metadata_file", ""),
		Download:         o.String("filesystem_store_download", DownloadAuto),
	}
	if cfg.Download == "" || !validDownload(cfg.Download) {
		o.Fail("filesystem_store_download", "must be auto, sendfile or copy")
	}
	if len(cfg.DataDirs) > 0 && !o.Has("filesystem_store_datadir") {
		cfg.DataDir = ""
	}
	if cfg.ChunkSize < 1 {
		o.Fail("filesystem_store_chunk_size", "must be at least 1")
	}
	if p := o.Int("filesystem_store_file_perm", 0); p > 0 {
		m, err := ParsePerm(p)
		if err != nil {
			o.Fail("filesystem_store_file_perm", err.Error())
		}
		cfg.FilePerm = m
	}
	return cfg
}

// ParsePerm reads filesystem_store_file_perm as glance_store does: the
// decimal digits written (640) are octal permission bits. The owner must
// keep read access.
func ParsePerm(p int) (os.FileMode, error) {
	if p <= 0 {
		return 0, nil
	}
	m, err := strconv.ParseUint(strconv.Itoa(p), 8, 32)
	if err != nil || m > 0o777 {
		return 0, errors.New("must be octal permission digits such as 640")
	}
	if m&0o400 == 0 {
		return 0, errors.New("must let the owner read the image files (e.g. 600 or 640)")
	}
	return os.FileMode(m), nil
}

// Dir returns the first data directory of the highest priority: the only
// one with filesystem_store_datadir.
func (d *Driver) Dir() string { return d.tiers[0][0] }

// Dirs returns every data directory, highest priority first.
func (d *Driver) Dirs() []string { return slices.Concat(d.tiers...) }

// ChunkSize returns filesystem_store_chunk_size in bytes.
func (d *Driver) ChunkSize() int { return d.chunk }

// Properties are what /v2/info/stores/detail shows of a file store.
func (d *Driver) Properties() map[string]any {
	return map[string]any{"data_dir": d.Dir(), "chunk_size": d.chunk, "thin_provisioning": d.thin}
}

// Schemes implements stores.Driver.
func (d *Driver) Schemes() []string { return []string{"file", "filesystem"} }

// URL returns the location URL that image id's data has in Dir.
func (d *Driver) URL(id string) string { return "file://" + filepath.Join(d.Dir(), id) }

// path returns the file behind a location URL. Only image files directly
// inside a data directory are served; anything else is reported missing.
func (d *Driver) path(url string) (string, error) {
	sc, rest, ok := strings.Cut(url, "://")
	if !ok || (!strings.EqualFold(sc, "file") && !strings.EqualFold(sc, "filesystem")) {
		return "", fmt.Errorf("%w: %q", stores.ErrUnknownScheme, url)
	}
	p := filepath.Clean(rest)
	if !filepath.IsAbs(p) || !d.dirs[filepath.Dir(p)] || !validID(filepath.Base(p)) {
		return "", fmt.Errorf("%w: %s", stores.ErrNotFound, url)
	}
	return p, nil
}

// validID accepts an image id usable as a file name of its own.
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, `/\`+"\x00") &&
		!strings.HasSuffix(id, PartialSuffix)
}

// pick chooses the directory for new data of size bytes (0: unknown).
func (d *Driver) pick(size int64) (string, error) {
	if !d.multi {
		return d.Dir(), nil
	}
	need := uint64(max(size, 0))
	for _, tier := range d.tiers {
		best, most := "", uint64(0)
		for _, dir := range tier {
			free, err := d.freeSpace(dir)
			if err != nil {
				continue
			}
			if free >= need && free > most {
				best, most = dir, free
			}
		}
		if best != "" {
			return best, nil
		}
	}
	return "", fmt.Errorf("%w: no data directory has room for %d bytes", stores.ErrFull, size)
}

// exists reports whether some data directory holds image id.
func (d *Driver) exists(id string) (string, bool) {
	for dir := range d.dirs {
		p := filepath.Join(dir, id)
		if _, err := os.Lstat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// createPartial creates a new temporary file for image id in dir.
func createPartial(dir, id string) (*os.File, error) {
	for range 10 {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		f, err := os.OpenFile(filepath.Join(dir, id+"."+hex.EncodeToString(rnd[:])+PartialSuffix),
			os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, errors.New("stores/file: cannot find a free temporary file name")
}

// Put implements stores.Driver. See the package documentation for how the
// data reaches its final name. Of two Puts of one id at the same time, both
// write and the one that finishes second gets stores.ErrExists.
func (d *Driver) Put(ctx context.Context, id string, r io.Reader, size int64) (stores.Object, error) {
	if !validID(id) {
		return stores.Object{}, fmt.Errorf("stores/file: invalid image id %q", id)
	}
	if err := ctx.Err(); err != nil {
		return stores.Object{}, err
	}
	if p, ok := d.exists(id); ok {
		return stores.Object{}, fmt.Errorf("%w: %s", stores.ErrExists, p)
	}
	dir, err := d.pick(size)
	if err != nil {
		return stores.Object{}, err
	}
	f, err := createPartial(dir, id)
	if err != nil {
		return stores.Object{}, classify(err)
	}
	tmp := f.Name()
	n, err := d.write(ctx, f, r, size)
	if err == nil && d.perm != 0 {
		err = f.Chmod(d.perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	final := filepath.Join(dir, id)
	if err == nil {
		err = publish(tmp, final)
	}
	// After a link, the temporary name goes; after a rename or a failure,
	// this removes what is left, if anything.
	_ = os.Remove(tmp)
	if err != nil {
		return stores.Object{}, classify(err)
	}
	return stores.Object{URL: "file://" + final, Size: n, Metadata: d.metadata(final)}, nil
}

// publish gives the finished temporary file its final name, failing with
// stores.ErrExists rather than replacing a file already there.
func publish(tmp, final string) error {
	err := os.Link(tmp, final)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%w: %s", stores.ErrExists, final)
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EOPNOTSUPP),
		errors.Is(err, syscall.EMLINK), errors.Is(err, syscall.ENOSYS):
		// No hard links here (some FUSE and network filesystems).
		if _, serr := os.Lstat(final); serr == nil {
			return fmt.Errorf("%w: %s", stores.ErrExists, final)
		}
		return os.Rename(tmp, final)
	}
	return err
}

// write copies r into f chunk by chunk, seeking over chunks of zeros with
// thin provisioning. It fails once ctx is done, and with
// stores.ErrSizeMismatch when size > 0 and r is shorter or longer.
func (d *Driver) write(ctx context.Context, f *os.File, r io.Reader, size int64) (int64, error) {
	w := &sizedWriter{ctx: ctx, f: f, size: size}
	var err error
	if wt, ok := r.(io.WriterTo); ok && !d.thin {
		// No chunk is looked at: a reader that writes its own buffers
		// (the location layer's) hands them to the file without a copy.
		_, err = wt.WriteTo(w)
	} else {
		err = d.copyChunks(w, r)
	}
	if err == nil && size > 0 && w.n != size {
		err = fmt.Errorf("%w: expected %d bytes, got %d bytes", stores.ErrSizeMismatch, size, w.n)
	}
	return w.n, err
}

// copyChunks reads r a chunk at a time into w, seeking over chunks of
// zeros with thin provisioning.
func (d *Driver) copyChunks(w *sizedWriter, r io.Reader) error {
	buf := make([]byte, d.chunk)
	hole := false // the file ends with a hole that Truncate must cover
	for {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		k, rerr := stores.Fill(r, buf)
		if rerr != nil && rerr != io.EOF {
			// The source failed: that is the cause, whatever a write of
			// what it gave would say (a client cut off also ends ctx).
			return rerr
		}
		if k > 0 {
			var err error
			hole = d.thin && bytes.Equal(buf[:k], d.zeros[:k])
			if hole {
				err = w.skip(k)
			} else {
				_, err = w.Write(buf[:k])
			}
			if err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if hole {
		return w.f.Truncate(w.n)
	}
	return nil
}

// sizedWriter writes to f, refusing data past size (when size is set) and
// writes once ctx is done. n counts the bytes written and skipped.
type sizedWriter struct {
	ctx  context.Context
	f    *os.File
	size int64
	n    int64
}

func (w *sizedWriter) Write(p []byte) (int, error) {
	if err := w.fits(len(p)); err != nil {
		return 0, err
	}
	k, err := w.f.Write(p)
	w.n += int64(k)
	return k, err
}

// skip leaves a hole of k bytes in the file.
func (w *sizedWriter) skip(k int) error {
	if err := w.fits(k); err != nil {
		return err
	}
	if _, err := w.f.Seek(int64(k), io.SeekCurrent); err != nil {
		return err
	}
	w.n += int64(k)
	return nil
}

// fits reports why k more bytes may not be written.
func (w *sizedWriter) fits(k int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.size > 0 && w.n+int64(k) > w.size {
		return fmt.Errorf("%w: expected %d bytes, got more", stores.ErrSizeMismatch, w.size)
	}
	return nil
}

// metadata returns the location metadata of a file at path: a copy of the
// metadata file's entry whose mountpoint starts path, or an empty map.
func (d *Driver) metadata(path string) map[string]any {
	for _, m := range d.meta {
		if mp, _ := m["mountpoint"].(string); strings.HasPrefix(path, mp) {
			return maps.Clone(m)
		}
	}
	return map[string]any{}
}

// classify turns disk-space errors into stores.ErrFull and permission
// errors into stores.ErrReadOnly, and keeps every other error, so that a
// reader's own error reaches the caller unchanged.
func classify(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", stores.ErrFull, err)
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%w: %w", stores.ErrReadOnly, err)
	}
	return err
}

// Get implements stores.Driver. The reader it returns implements
// io.WriterTo: io.Copy into an http.ResponseWriter either hands the open
// file to the connection, which can send it with sendfile(2), or writes
// the file through a buffer of CopyBufferSize bytes, as the driver's
// Download option says (with DownloadAuto, as the process's measurement
// found faster).
func (d *Driver) Get(ctx context.Context, url string, off, n int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.path(url)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("stores/file: negative offset %d", off)
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", stores.ErrNotFound, url)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	size := st.Size()
	off = min(off, size)
	if n < 0 || n > size-off {
		n = size - off
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &reader{f: f, lr: io.LimitedReader{R: f, N: n}, copy: d.copies()}, nil
}

// reader reads one section of an open image file.
type reader struct {
	f    *os.File
	lr   io.LimitedReader // R is f, positioned at the section's start
	copy bool             // WriteTo copies through a buffer instead of handing over the file
}

var _ io.WriterTo = (*reader)(nil)

func (r *reader) Read(p []byte) (int, error) { return r.lr.Read(p) }

// WriteTo copies the rest of the section to w. Unless the reader copies,
// it gives w's ReadFrom, when it has one, an *io.LimitedReader of the
// *os.File: what net/http and the net package need to use sendfile(2).
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	if r.copy {
		return r.copyTo(w)
	}
	return io.Copy(w, &r.lr)
}

func (r *reader) Close() error { return r.f.Close() }

// Delete implements stores.Driver.
func (d *Driver) Delete(_ context.Context, url string) error {
	p, err := d.path(url)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s", stores.ErrNotFound, url)
		}
		return classify(err)
	}
	return nil
}

// Size implements stores.Driver.
func (d *Driver) Size(_ context.Context, url string) (int64, error) {
	p, err := d.path(url)
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("%w: %s", stores.ErrNotFound, url)
		}
		return 0, err
	}
	return st.Size(), nil
}

// Discard implements stores.Discarder: it removes image id's file and the
// temporary files of its unfinished Puts from every data directory. Call it
// only when no Put of id can be running.
func (d *Driver) Discard(_ context.Context, id string) error {
	if !validID(id) {
		return fmt.Errorf("stores/file: invalid image id %q", id)
	}
	for dir := range d.dirs {
		es, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range es {
			if owner, _ := idOf(e.Name()); owner != id || !e.Type().IsRegular() {
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return classify(err)
			}
		}
	}
	return nil
}

// idOf returns the image id a data directory's file name belongs to, and
// whether the file is a temporary one (<id>.<random>.partial).
func idOf(name string) (id string, partial bool) {
	rest, ok := strings.CutSuffix(name, PartialSuffix)
	if !ok {
		return name, false
	}
	if i := strings.LastIndexByte(rest, '.'); i > 0 {
		return rest[:i], true
	}
	return "", true
}

// IDs implements stores.Lister: the ids of the images whose data, complete
// or partial, is in a data directory, sorted.
func (d *Driver) IDs(context.Context) ([]string, error) {
	seen := map[string]bool{}
	for dir := range d.dirs {
		es, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if id, _ := idOf(e.Name()); id != "" && e.Type().IsRegular() {
				seen[id] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// Orphans lists, sorted, the temporary files of unfinished Puts in every
// data directory: those of Puts in progress, and those a crash left. Only
// files older than any Put that may still run are safe to remove.
func (d *Driver) Orphans() ([]string, error) {
	var out []string
	for dir := range d.dirs {
		es, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if _, partial := idOf(e.Name()); partial && e.Type().IsRegular() {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
