package plugins

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

// stage writes data as the staged file of an image with the given formats
// in a directory of its own.
func stage(t *testing.T, data []byte, diskFormat, containerFormat string) *Staged {
	t.Helper()
	p := filepath.Join(t.TempDir(), "0a8d3a8e-2222-4bd1-8a0b-3d4c5e6f7a8b")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m := domain.Meta{ID: filepath.Base(p), Status: domain.StatusImporting, Properties: map[string]string{}}
	if diskFormat != "" {
		m.DiskFormat = domain.Ptr(diskFormat)
	}
	if containerFormat != "" {
		m.ContainerFormat = domain.Ptr(containerFormat)
	}
	return &Staged{Path: p, Meta: m, Caller: &domain.Caller{ProjectID: "p1", Roles: []string{"member"}}}
}

// onlyStaged fails the test if the staging directory holds anything but the
// staged file.
func onlyStaged(t *testing.T, s *Staged) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(s.Path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != filepath.Base(s.Path) {
		t.Errorf("staging holds %v, want only %s", names, filepath.Base(s.Path))
	}
}

func readStaged(t *testing.T, s *Staged) []byte {
	t.Helper()
	b, err := os.ReadFile(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		names   []string
		cfg     Config
		want    []string
		wantErr bool
	}{
		{name: "none", names: nil, want: []string{}},
		{name: "in order", names: []string{"image_decompression", "image_conversion", "inject_image_metadata", "no_op"},
			want: []string{"image_decompression", "image_conversion", "inject_image_metadata", "no_op"}},
		{name: "conversion to qcow2", names: []string{"image_conversion"}, cfg: Config{OutputFormat: "qcow2"},
			want: []string{"image_conversion"}},
		{name: "unknown", names: []string{"no_op", "image_resize"}, wantErr: true},
		{name: "output format qemu-img is not asked for", names: []string{"image_conversion"}, cfg: Config{OutputFormat: "vdi"}, wantErr: true},
		{name: "bad output format unused", names: []string{"no_op"}, cfg: Config{OutputFormat: "vdi"}, want: []string{"no_op"}},
		{name: "no qemu-img", names: []string{"image_conversion"}, cfg: Config{QemuImg: "/nonexistent/qemu-img"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if slices.Contains(tc.names, NameConversion) && tc.cfg.QemuImg == "" {
				needQemuImg(t)
			}
			ps, err := Load(tc.names, tc.cfg)
			if tc.wantErr {
				if !errors.Is(err, domain.ErrInvalid) {
					t.Fatalf("Load = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, p := range ps {
				got = append(got, p.Name())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("plugins %v, want %v", got, tc.want)
			}
		})
	}
	_, err := Load([]string{"image_resize"}, Config{})
	want := "[image_import_opts] image_import_plugins: unknown plugin \"image_resize\" " +
		"(known: image_conversion, image_decompression, inject_image_metadata, no_op)"
	if err == nil || err.Error() != want {
		t.Errorf("unknown plugin: %v, want %q", err, want)
	}
}

func TestNoOp(t *testing.T) {
	ps, err := Load([]string{"no_op"}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := stage(t, []byte("data"), "raw", "bare")
	before := s.Meta.Clone()
	change, err := ps[0].Run(context.Background(), s)
	if err != nil || change != nil {
		t.Errorf("no_op = %v, %v; want nothing", change != nil, err)
	}
	if string(readStaged(t, s)) != "data" || !maps.Equal(before.Properties, s.Meta.Properties) {
		t.Error("no_op changed something")
	}
}

func TestInject(t *testing.T) {
	props := map[string]string{"hw_machine_type": "q35", "os_glance_import_task": "x", "os_distro": "debian"}
	want := map[string]string{"a": "1", "hw_machine_type": "q35", "os_distro": "debian"}
	tests := []struct {
		name   string
		cfg    Config
		roles  []string
		caller bool
		want   map[string]string // nil: no change
	}{
		{name: "member", cfg: Config{Inject: props}, roles: []string{"member", "reader"}, caller: true, want: want},
		{name: "admin ignored by default", cfg: Config{Inject: props}, roles: []string{"admin", "member"}, caller: true},
		{name: "role case", cfg: Config{Inject: props}, roles: []string{"Admin"}, caller: true},
		{name: "configured roles", cfg: Config{Inject: props, IgnoreUserRoles: []string{"service"}}, roles: []string{"service"}, caller: true},
		{name: "admin not ignored when others are", cfg: Config{Inject: props, IgnoreUserRoles: []string{"service"}},
			roles: []string{"admin"}, caller: true, want: want},
		{name: "nobody ignored", cfg: Config{Inject: props, IgnoreUserRoles: []string{}}, roles: []string{"admin"}, caller: true, want: want},
		{name: "no caller", cfg: Config{Inject: props}, want: want},
		{name: "nothing to inject", cfg: Config{}, roles: []string{"member"}, caller: true},
		{name: "only reserved keys", cfg: Config{Inject: map[string]string{"os_glance_x": "1"}}, roles: []string{"member"}, caller: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := Load([]string{"inject_image_metadata"}, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := stage(t, []byte("data"), "raw", "bare")
			s.Meta.Properties = map[string]string{"a": "1"}
			s.Caller = nil
			if tc.caller {
				s.Caller = &domain.Caller{ProjectID: "p1", Roles: tc.roles}
			}
			change, err := ps[0].Run(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if change != nil || len(s.Meta.Properties) != 1 {
					t.Errorf("properties injected: %v", s.Meta.Properties)
				}
				return
			}
			if change == nil {
				t.Fatal("no change returned")
			}
			if !maps.Equal(s.Meta.Properties, tc.want) {
				t.Errorf("Staged.Meta properties %v, want %v", s.Meta.Properties, tc.want)
			}
			m := domain.Meta{Properties: map[string]string{"a": "1"}}
			if err := change(&m); err != nil || !maps.Equal(m.Properties, tc.want) {
				t.Errorf("change gives %v, %v; want %v", m.Properties, err, tc.want)
			}
		})
	}
}
