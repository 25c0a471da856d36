package config

import (
	"errors"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

func TestImportsDefaults(t *testing.T) {
	noSystemDirs(t)
	files := writeFiles(t, t.TempDir(), map[string]string{"glance-api.conf": "[DEFAULT]\n"}, "glance-api.conf")
	c, _, err := Load(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Imports, defaultImports()) || !reflect.DeepEqual(Default().Imports, defaultImports()) {
		t.Errorf("Imports = %+v, want Glance's defaults", c.Imports)
	}
	o := c.WebDownload()
	if !slices.Equal(o.AllowedSchemes, []string{"http", "https"}) || !slices.Equal(o.AllowedPorts, []int{80, 443}) ||
		len(o.AllowedHosts)+len(o.DisallowedHosts)+len(o.DisallowedSchemes)+len(o.DisallowedPorts) != 0 || o.MaxRedirects != 10 {
		t.Errorf("WebDownload() = %+v", o)
	}
	p := c.ImportPlugins()
	if p.OutputFormat != "raw" || !slices.Equal(p.IgnoreUserRoles, []string{"admin"}) || len(p.Inject) != 0 ||
		!p.Formats.RequireFormatMatch || !p.Formats.VMDKTypeAllowed("monolithicSparse") {
		t.Errorf("ImportPlugins() = %+v", p)
	}
}

func TestImportsLoad(t *testing.T) {
	noSystemDirs(t)
	conf := `[import_filtering_opts]
allowed_schemes = []
disallowed_schemes = [ftp, "file"]
allowed_hosts = images.example.com,192.0.2.10,2001:db8::1
allowed_ports = 8080
disallowed_ports = 22,25

[image_import_opts]
image_import_plugins = ['image_decompression', 'image_conversion', 'inject_image_metadata']

[image_conversion]
output_format = qcow2

[inject_metadata_properties]
inject = hw_machine_type:q35,os_distro:debian
ignore_user_roles = admin,service
`
	files := writeFiles(t, t.TempDir(), map[string]string{"glance-api.conf": conf}, "glance-api.conf")
	c, ignored, err := Load(files, nil)
	if err != nil || len(ignored) != 0 {
		t.Fatalf("Load = %v, %v", ignored, err)
	}
	o := c.WebDownload()
	if len(o.AllowedSchemes) != 0 || !slices.Equal(o.DisallowedSchemes, []string{"ftp", "file"}) ||
		!slices.Equal(o.AllowedHosts, []string{"images.example.com", "192.0.2.10", "2001:db8::1"}) ||
		!slices.Equal(o.AllowedPorts, []int{8080}) || !slices.Equal(o.DisallowedPorts, []int{22, 25}) {
		t.Errorf("WebDownload() = %+v", o)
	}
	if !slices.Equal(c.Imports.Plugins, []string{"image_decompression", "image_conversion", "inject_image_metadata"}) {
		t.Errorf("plugins = %q", c.Imports.Plugins)
	}
	p := c.ImportPlugins()
	if p.OutputFormat != "qcow2" || !slices.Equal(p.IgnoreUserRoles, []string{"admin", "service"}) ||
		!maps.Equal(p.Inject, map[string]string{"hw_machine_type": "q35", "os_distro": "debian"}) {
		t.Errorf("ImportPlugins() = %+v", p)
	}
	// An emptied list is empty, not the default.
	files = writeFiles(t, t.TempDir(), map[string]string{"glance-api.conf": "[inject_metadata_properties]\nignore_user_roles =\n"}, "glance-api.conf")
	if c, _, err = Load(files, nil); err != nil || c.ImportPlugins().IgnoreUserRoles == nil || len(c.ImportPlugins().IgnoreUserRoles) != 0 {
		t.Errorf("empty ignore_user_roles: %v, %#v", err, c.Imports.IgnoreUserRoles)
	}
}

func TestImportsInvalid(t *testing.T) {
	noSystemDirs(t)
	tests := []struct {
		name, conf, want string
	}{
		{"port not a number", "[import_filtering_opts]\nallowed_ports = 80,http\n", `[import_filtering_opts] allowed_ports = "80,http": "http" is not a port number`},
		{"port zero", "[import_filtering_opts]\ndisallowed_ports = 0\n", `"0" is not a port number`},
		{"port too large", "[import_filtering_opts]\nallowed_ports = 65536\n", `"65536" is not a port number`},
		{"bad host", "[import_filtering_opts]\ndisallowed_hosts = bad_host!\n", `"bad_host!": not an IP address or host name`},
		{"empty scheme", "[import_filtering_opts]\nallowed_schemes = http,,https\n", "empty item in list"},
		{"unknown plugin", "[image_import_opts]\nimage_import_plugins = no_op,image_resize\n", `unknown value "image_resize"`},
		{"output format", "[image_conversion]\noutput_format = vdi\n", "must be one of qcow2, raw, vmdk"},
		{"inject not a dict", "[inject_metadata_properties]\ninject = hw_machine_type\n", "is not a name:value pair"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := writeFiles(t, t.TempDir(), map[string]string{"glance-api.conf": tc.conf}, "glance-api.conf")
			_, _, err := Load(files, nil)
			if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want ErrInvalid containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "glance-api.conf:2") {
				t.Errorf("the error does not name the file and line: %v", err)
			}
		})
	}
}

func TestImportConfFile(t *testing.T) {
	noSystemDirs(t)
	importConf := "[image_import_opts]\nimage_import_plugins = image_conversion\n\n[image_conversion]\noutput_format = qcow2\n"
	apiConf := "[image_conversion]\noutput_format = vmdk\n"
	tests := []struct {
		name        string
		files       map[string]string
		names       []string
		wantSources []string
		wantFormat  string
		wantPlugins []string
	}{
		{name: "beside glance-api.conf",
			files:       map[string]string{"glance-api.conf": apiConf, "glance-image-import.conf": importConf},
			names:       []string{"glance-api.conf"},
			wantSources: []string{"glance-image-import.conf", "glance-api.conf"}, wantFormat: "vmdk", wantPlugins: []string{"image_conversion"}},
		{name: "named explicitly, last",
			files:       map[string]string{"glance-api.conf": apiConf, "glance-image-import.conf": importConf},
			names:       []string{"glance-api.conf", "glance-image-import.conf"},
			wantSources: []string{"glance-api.conf", "glance-image-import.conf"}, wantFormat: "qcow2", wantPlugins: []string{"image_conversion"}},
		{name: "absent",
			files: map[string]string{"glance-api.conf": apiConf}, names: []string{"glance-api.conf"},
			wantSources: []string{"glance-api.conf"}, wantFormat: "vmdk", wantPlugins: []string{}},
		{name: "not beside another file name",
			files: map[string]string{"api.conf": apiConf, "glance-image-import.conf": importConf}, names: []string{"api.conf"},
			wantSources: []string{"api.conf"}, wantFormat: "vmdk", wantPlugins: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := writeFiles(t, dir, tc.files, tc.names...)
			c, ignored, err := Load(files, nil)
			if err != nil || len(ignored) != 0 {
				t.Fatalf("Load = %v, %v", ignored, err)
			}
			var sources []string
			for _, s := range c.Sources {
				sources = append(sources, filepath.Base(s))
			}
			if !slices.Equal(sources, tc.wantSources) {
				t.Errorf("sources %v, want %v", sources, tc.wantSources)
			}
			if c.Imports.OutputFormat != tc.wantFormat || !slices.Equal(c.Imports.Plugins, tc.wantPlugins) {
				t.Errorf("output_format %s, plugins %v; want %s, %v", c.Imports.OutputFormat, c.Imports.Plugins, tc.wantFormat, tc.wantPlugins)
			}
		})
	}
}
