// Package file is the filesystem store driver (glance_store's filesystem
// driver): each image's data is one file, <datadir>/<image id>, and its
// location URL is file://<absolute path>.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/glance-go/glance-go/stores"
)

// DefaultChunkSize is the copy buffer size when Config.ChunkSize is 0
// (filesystem_store_chunk_size).
const DefaultChunkSize = 64 << 10

// Config is the [glance_store] filesystem options.
type Config struct {
	DataDir   string      // filesystem_store_datadir
	FilePerm  os.FileMode // filesystem_store_file_perm; 0 leaves the default
	ChunkSize int         // filesystem_store_chunk_size in bytes; 0 means 64 KiB
}

// Driver stores image data as files in one directory.
type Driver struct {
	dir   string
	perm  os.FileMode
	chunk int
}

var _ stores.Driver = (*Driver)(nil)

// New returns a driver for cfg, creating the data directory if needed.
func New(cfg Config) (*Driver, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("stores/file: filesystem_store_datadir is not set")
	}
	if cfg.ChunkSize < 0 {
		return nil, fmt.Errorf("stores/file: invalid chunk size %d", cfg.ChunkSize)
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("stores/file: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("stores/file: cannot create data directory: %w", err)
	}
	d := &Driver{dir: dir, perm: cfg.FilePerm, chunk: cfg.ChunkSize}
	if d.chunk == 0 {
		d.chunk = DefaultChunkSize
	}
	return d, nil
}

// Dir returns the absolute data directory.
func (d *Driver) Dir() string { return d.dir }

// Schemes implements stores.Driver.
func (d *Driver) Schemes() []string { return []string{"file", "filesystem"} }

// URL returns the location URL of image id's data.
func (d *Driver) URL(id string) string { return "file://" + filepath.Join(d.dir, id) }

// path returns the file behind a location URL. Only files directly inside
// the data directory are served; anything else is reported as missing.
func (d *Driver) path(url string) (string, error) {
	var p string
	switch {
	case strings.HasPrefix(url, "file://"):
		p = strings.TrimPrefix(url, "file://")
	case strings.HasPrefix(url, "filesystem://"):
		p = strings.TrimPrefix(url, "filesystem://")
	default:
		return "", fmt.Errorf("%w: %q", stores.ErrUnknownScheme, url)
	}
	p = filepath.Clean(p)
	if filepath.Dir(p) != d.dir || !validID(filepath.Base(p)) {
		return "", fmt.Errorf("%w: %s", stores.ErrNotFound, url)
	}
	return p, nil
}

func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, `/\`+"\x00")
}

// Put implements stores.Driver. The data is written straight to its final
// name; on any failure, including a cancelled ctx, the file is removed.
func (d *Driver) Put(ctx context.Context, id string, r io.Reader, size int64) (stores.Object, error) {
	if !validID(id) {
		return stores.Object{}, fmt.Errorf("stores/file: invalid image id %q", id)
	}
	if err := ctx.Err(); err != nil {
		return stores.Object{}, err
	}
	p := filepath.Join(d.dir, id)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return stores.Object{}, fmt.Errorf("%w: %s", stores.ErrExists, p)
		}
		return stores.Object{}, classify(err)
	}
	w := &guardedWriter{ctx: ctx, f: f, limit: size}
	n, err := io.CopyBuffer(w, r, make([]byte, d.chunk))
	if err == nil && size > 0 && n != size {
		err = fmt.Errorf("%w: expected %d bytes, got %d bytes", stores.ErrSizeMismatch, size, n)
	}
	if err == nil && d.perm != 0 {
		err = f.Chmod(d.perm)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = os.Remove(p)
		return stores.Object{}, classify(err)
	}
	return stores.Object{URL: "file://" + p, Size: n, Metadata: map[string]any{}}, nil
}

// classify turns disk-space errors into stores.ErrFull and keeps every other
// error, so that a reader's own error reaches the caller unchanged.
func classify(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", stores.ErrFull, err)
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%w: %v", stores.ErrReadOnly, err)
	}
	return err
}

// guardedWriter writes to f, failing once ctx is done or once more than
// limit bytes (when limit > 0) have arrived.
type guardedWriter struct {
	ctx   context.Context
	f     *os.File
	limit int64
	n     int64
}

func (w *guardedWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if w.limit > 0 && w.n+int64(len(p)) > w.limit {
		return 0, fmt.Errorf("%w: expected %d bytes, got more", stores.ErrSizeMismatch, w.limit)
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	return n, err
}

// Get implements stores.Driver. The returned reader is backed by the open
// file and reads only the requested section.
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
	if off > size {
		off = size
	}
	if n < 0 || off+n > size {
		n = size - off
	}
	return &section{SectionReader: io.NewSectionReader(f, off, n), f: f}, nil
}

type section struct {
	*io.SectionReader
	f *os.File
}

func (s *section) Close() error { return s.f.Close() }

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
