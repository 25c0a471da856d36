package stores_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/glance-go/glance-go/stores"
)

// stub is a driver that only names its schemes.
type stub struct{ schemes []string }

func (s *stub) Put(context.Context, string, io.Reader, int64) (stores.Object, error) {
	return stores.Object{}, stores.ErrReadOnly
}
func (s *stub) Get(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, stores.ErrNotFound
}
func (s *stub) Delete(context.Context, string) error        { return stores.ErrNotFound }
func (s *stub) Size(context.Context, string) (int64, error) { return 0, stores.ErrNotFound }
func (s *stub) Schemes() []string                           { return s.schemes }

func TestSet(t *testing.T) {
	file := &stub{schemes: []string{"file", "filesystem"}}
	rbd := &stub{schemes: []string{"rbd"}}
	other := &stub{schemes: []string{"file", "http"}}
	s := stores.NewSet(file, rbd, other)
	if s.Default() != file {
		t.Fatal("Default is not the first driver")
	}
	tests := []struct {
		url     string
		want    stores.Driver
		wantErr error
	}{
		{"file:///var/lib/glance/images/x", file, nil},
		{"FILE:///x", file, nil},
		{"filesystem:///x", file, nil},
		{"rbd://fsid/pool/x/snap", rbd, nil},
		{"http://example.com/img", other, nil},
		{"swift+https://a/b", nil, stores.ErrUnknownScheme},
		{"no-scheme", nil, stores.ErrUnknownScheme},
		{"://x", nil, stores.ErrUnknownScheme},
	}
	for _, tc := range tests {
		got, err := s.ForURL(tc.url)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("ForURL(%q) error = %v, want %v", tc.url, err, tc.wantErr)
		}
		if got != tc.want {
			t.Errorf("ForURL(%q) = %v, want %v", tc.url, got, tc.want)
		}
	}
}
