package plugins

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"

	"github.com/glance-go/glance-go/domain"
)

// decompression is Glance's image_decompression plugin
// (glance/async_/flows/plugins/image_decompression.py). It recognises an
// archive by its magic number, replaces the staged file by the one file the
// archive holds, and records the new size:
//
//   - zip (PK\x03\x04 at 0): the archive must hold exactly one entry, a
//     file; the entry's name is never used as a path, so no name can write
//     outside staging;
//   - gzip (\x1f\x8b\x08 at 0): every member, concatenated, as gzip does;
//   - lha (-lh at 2): refused, glance-go has no LHA decoder (Glance needs
//     the optional lhafile module for it too).
//
// As in Glance, an image whose container_format is "compressed" is left
// alone, since its owner said the data is meant to stay compressed, and the
// container format of a decompressed image is not changed.
type decompression struct{}

func (decompression) Name() string { return NameDecompression }

var (
	magicZip  = []byte{0x50, 0x4b, 0x03, 0x04}
	magicGzip = []byte{0x1f, 0x8b, 0x08}
	magicLha  = []byte("-lh") // at offset 2
)

func (decompression) Run(ctx context.Context, s *Staged) (func(*domain.Meta) error, error) {
	if s.Meta.ContainerFormat != nil && *s.Meta.ContainerFormat == "compressed" {
		return nil, nil
	}
	head, err := readHead(s.Path, 5)
	if err != nil {
		return nil, internal(err)
	}
	var size int64
	switch {
	case bytes.HasPrefix(head, magicZip):
		size, err = unzip(ctx, s.Path)
	case len(head) >= 5 && bytes.Equal(head[2:5], magicLha):
		return nil, failf("LHA archives are not supported by the image_decompression plugin")
	case bytes.HasPrefix(head, magicGzip):
		size, err = gunzip(ctx, s.Path)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, internal(err)
	}
	return apply(s, func(m *domain.Meta) error {
		m.Size = domain.Ptr(size)
		return nil
	})
}

// readHead returns up to n bytes from the start of the file.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:k], nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func gunzip(ctx context.Context, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return 0, failf("Bad GZip file: %v", err)
	}
	return replace(path, ".uc", func(w io.Writer) error {
		if _, err := io.Copy(w, ctxReader{ctx, zr}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return failf("Bad GZip file: %v", err)
		}
		return nil
	})
}

func unzip(ctx context.Context, path string) (int64, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return 0, failf("Bad ZIP file: %v", err)
	}
	defer zr.Close()
	if len(zr.File) != 1 {
		return 0, failf("Archive contains more than one file.")
	}
	entry := zr.File[0]
	if entry.FileInfo().IsDir() {
		return 0, failf("Archive contains a directory, not a file.")
	}
	rc, err := entry.Open()
	if err != nil {
		return 0, failf("Bad ZIP file: %v", err)
	}
	defer rc.Close()
	return replace(path, ".uc", func(w io.Writer) error {
		if _, err := io.Copy(w, ctxReader{ctx, rc}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return failf("Bad ZIP file: %v", err)
		}
		return nil
	})
}
