package stores_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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

// putStub is a driver whose Put returns fixed metadata.
type putStub struct {
	stub
	md map[string]any
}

func (p *putStub) Put(context.Context, string, io.Reader, int64) (stores.Object, error) {
	return stores.Object{URL: "file:///x", Metadata: p.md}, nil
}

func TestMultiSet(t *testing.T) {
	fast := &putStub{stub: stub{schemes: []string{"file"}}, md: map[string]any{"id": "nfs", "mountpoint": "/mnt"}}
	web := &stub{schemes: []string{"http", "https"}}
	fastB := &stores.Backend{ID: "fast", Type: "file", Driver: fast, Weight: 10}
	s, err := stores.NewMultiSet("fast", fastB, &stores.Backend{ID: "web", Type: "http", Driver: web})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Multi() || s.DefaultID() != "fast" {
		t.Errorf("Multi %v, DefaultID %q", s.Multi(), s.DefaultID())
	}
	obj, err := s.Default().Put(context.Background(), "id", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"id": "nfs", "mountpoint": "/mnt", "store": "fast"}; fmt.Sprint(obj.Metadata) != fmt.Sprint(want) {
		t.Errorf("metadata = %v, want %v", obj.Metadata, want)
	}
	if _, ok := fast.md["store"]; ok {
		t.Error("the driver's own metadata map was changed")
	}
	if fastB.Driver != fast {
		t.Error("NewMultiSet changed the backend it was given")
	}
	if stores.Unwrap(s.Default()) != fast {
		t.Error("Unwrap does not reach the configured driver")
	}
	if b, ok := s.Backend("web"); !ok || !b.ReadOnly() || stores.Unwrap(b.Driver) != web {
		t.Errorf("Backend(web) = %+v, %v", b, ok)
	}
	if b, ok := s.Backend(""); !ok || b.ID != "fast" || b.Weight != 10 {
		t.Errorf("Backend(\"\") = %+v, %v", b, ok)
	}
	if _, ok := s.Backend("nope"); ok {
		t.Error("Backend(nope) found")
	}
	if ids := fmt.Sprint(backendIDs(s.Backends())); ids != "[fast web]" {
		t.Errorf("Backends = %s", ids)
	}
	if d, err := s.ForLocation("https://example.com/x", ""); err != nil || stores.Unwrap(d) != web {
		t.Errorf("ForLocation(https) = %v, %v", d, err)
	}
	if d, err := s.ForLocation("http://example.com/x", "fast"); err != nil || stores.Unwrap(d) != fast {
		t.Errorf("ForLocation(store fast) = %v, %v", d, err)
	}
	if s.Staging() != nil || s.Tasks() != nil {
		t.Error("reserved stores set without SetStaging/SetTasks")
	}
	s.SetTasks(web)
	if s.Tasks() != web {
		t.Error("Tasks is not what SetTasks set")
	}
}

func backendIDs(bs []*stores.Backend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

func TestNewMultiSetRefuses(t *testing.T) {
	d := &stub{schemes: []string{"file"}}
	tests := []struct {
		name     string
		def      string
		backends []*stores.Backend
		want     string
	}{
		{"no driver", "a", []*stores.Backend{{ID: "a"}}, `backend "a" has no driver`},
		{"no id", "a", []*stores.Backend{{Driver: d}}, "no id"},
		{"reserved id", "os_glance_staging_store", []*stores.Backend{{ID: "os_glance_staging_store", Driver: d}}, "reserved prefix"},
		{"twice", "a", []*stores.Backend{{ID: "a", Driver: d}, {ID: "a", Driver: d}}, "configured twice"},
		{"unknown default", "b", []*stores.Backend{{ID: "a", Driver: d}}, `default backend "b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := stores.NewMultiSet(tc.def, tc.backends...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewMultiSet = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
