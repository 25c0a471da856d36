package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestStoreOptions(t *testing.T) {
	noSystemDirs(t)
	tests := []struct {
		name    string
		files   map[string]string
		load    []string
		check   func(t *testing.T, c *Config, ignored []string)
		wantErr string
	}{
		{
			name: "legacy driver options",
			files: map[string]string{"a.conf": "[glance_store]\nfilesystem_thin_provisioning = true\n" +
				"filesystem_store_metadata_file = /etc/glance/meta.json\nhttps_insecure = false\n" +
				"https_ca_certificates_file = /etc/ssl/ca.pem\nhttp_proxy_information = http:10.0.0.1:3128\nhttp_store_timeout = 5\n"},
			load: []string{"a.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				s := c.Store
				if !s.FilesystemThinProvisioning || s.FilesystemStoreMetadataFile != "/etc/glance/meta.json" || s.HTTPSInsecure ||
					s.HTTPSCACertificatesFile != "/etc/ssl/ca.pem" || s.HTTPStoreTimeout != 5 ||
					!reflect.DeepEqual(s.HTTPProxyInformation, map[string]string{"http": "10.0.0.1:3128"}) {
					t.Errorf("Store = %+v", s)
				}
				if len(ignored) != 0 {
					t.Errorf("ignored = %q", ignored)
				}
			},
		},
		{
			name: "legacy rbd options",
			files: map[string]string{"a.conf": "[DEFAULT]\npool = vms\n[glance_store]\nstores = rbd, http\ndefault_store = rbd\n" +
				"rbd_store_pool = images\nrbd-store-user = glance\nrbd_store_ceph_conf = /etc/ceph/c.conf\nrbd_store_pool = $pool\n" +
				"rados_connect_timeout = 3\nfilesystem_store_datadir = /srv/x\nswift_store_user = u\n"},
			load: []string{"a.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				want := map[string]string{"rbd_store_pool": "vms", "rbd_store_user": "glance", "rbd_store_ceph_conf": "/etc/ceph/c.conf",
					"rados_connect_timeout": "3"}
				if !reflect.DeepEqual(c.Store.RBDOptions, want) {
					t.Errorf("RBDOptions = %q, want %q", c.Store.RBDOptions, want)
				}
				if !reflect.DeepEqual(ignored, []string{"[glance_store] swift_store_user"}) {
					t.Errorf("ignored = %q", ignored)
				}
			},
		},
		{
			name:  "rbd options without the rbd store",
			files: map[string]string{"a.conf": "[glance_store]\nstores = file\nrbd_store_pool = images\n"},
			load:  []string{"a.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				if c.Store.RBDOptions != nil || !reflect.DeepEqual(ignored, []string{"[glance_store] rbd_store_pool"}) {
					t.Errorf("RBDOptions = %q, ignored = %q", c.Store.RBDOptions, ignored)
				}
			},
		},
		{
			name:  "legacy defaults",
			files: map[string]string{"a.conf": "[DEFAULT]\n"},
			load:  []string{"a.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				s := c.Store
				if !s.HTTPSInsecure || s.HTTPStoreTimeout != 60 || s.FilesystemThinProvisioning || s.FilesystemStoreDatadir != "/var/lib/glance/images" ||
					len(s.FilesystemStoreDatadirs) != 0 || c.StagingDir() != "/tmp/staging/" {
					t.Errorf("Store = %+v, staging %q", s, c.StagingDir())
				}
			},
		},
		{
			name: "datadirs: every line of every file",
			files: map[string]string{
				"a.conf": "[DEFAULT]\nroot = /srv\n[glance_store]\nfilesystem_store_datadirs = $root/a:1\nfilesystem_store_datadirs = /b:2\n",
				"b.conf": "[glance_store]\nfilesystem_store_datadirs = /c\n",
			},
			load: []string{"a.conf", "b.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				if want := []string{"/srv/a:1", "/b:2", "/c"}; !reflect.DeepEqual(c.Store.FilesystemStoreDatadirs, want) || c.Store.FilesystemStoreDatadir != "" {
					t.Errorf("datadirs %q, datadir %q", c.Store.FilesystemStoreDatadirs, c.Store.FilesystemStoreDatadir)
				}
				if len(ignored) != 0 {
					t.Errorf("ignored = %q", ignored)
				}
			},
		},
		{
			name:    "datadir and datadirs",
			files:   map[string]string{"a.conf": "[glance_store]\nfilesystem_store_datadir = /a\nfilesystem_store_datadirs = /b:2\n"},
			load:    []string{"a.conf"},
			wantErr: "a.conf:2: [glance_store] filesystem_store_datadir and filesystem_store_datadirs are both set",
		},
		{
			name:    "negative timeout",
			files:   map[string]string{"a.conf": "[glance_store]\nhttp_store_timeout = -1\n"},
			load:    []string{"a.conf"},
			wantErr: "http_store_timeout",
		},
		{
			name: "backends in the order written, multi-valued options",
			files: map[string]string{"a.conf": "[DEFAULT]\nenabled_backends = zeta:file, alpha:http, mid:file\n" +
				"[glance_store]\ndefault_backend = mid\n" +
				"[zeta]\nfilesystem_store_datadirs = /z1:1\nfilesystem_store_datadirs = /z2:2\nweight = 3\n" +
				"[mid]\nfilesystem_store_datadir = /m\n"},
			load: []string{"a.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				if want := []string{"zeta", "alpha", "mid"}; !reflect.DeepEqual(c.BackendIDs(), want) {
					t.Errorf("BackendIDs = %q, want %q", c.BackendIDs(), want)
				}
				want := map[string]map[string][]string{"zeta": {"filesystem_store_datadirs": {"/z1:1", "/z2:2"}}}
				if !reflect.DeepEqual(c.BackendMultiOptions, want) {
					t.Errorf("BackendMultiOptions = %q, want %q", c.BackendMultiOptions, want)
				}
				if c.BackendOptions["zeta"]["weight"] != "3" || c.BackendOptions["mid"]["filesystem_store_datadir"] != "/m" {
					t.Errorf("BackendOptions = %q", c.BackendOptions)
				}
				if len(ignored) != 0 {
					t.Errorf("ignored = %q", ignored)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c, ignored, err := Load(writeFiles(t, dir, tc.files, tc.load...), nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c, ignored)
		})
	}
}

func TestBackendIDsWithoutOrder(t *testing.T) {
	c := &Config{EnabledBackends: map[string]string{"b": "file", "a": "http"}, EnabledBackendOrder: []string{"b"}}
	if got := c.BackendIDs(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("BackendIDs = %q, want them sorted", got)
	}
}

func TestEmbeddedStaging(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	c := Default()
	if want := "file://" + dir + "/data/staging/"; c.NodeStagingURI != want {
		t.Errorf("NodeStagingURI = %q, want %q", c.NodeStagingURI, want)
	}
	if want := dir + "/data/staging/"; c.StagingDir() != want {
		t.Errorf("StagingDir = %q, want %q", c.StagingDir(), want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}
