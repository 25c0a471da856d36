package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

// writeFiles writes name → content under dir and returns the paths in the
// order given by names.
func writeFiles(t *testing.T, dir string, files map[string]string, names ...string) []string {
	t.Helper()
	for n, body := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}

// noSystemDirs keeps the machine's /etc/glance out of a test.
func noSystemDirs(t *testing.T) {
	t.Helper()
	old := systemDirs
	systemDirs = nil
	t.Cleanup(func() { systemDirs = old })
}

func TestLoadNoFilesIsEmbeddedDefault(t *testing.T) {
	c, ignored, err := Load(nil, nil)
	if err != nil || ignored != nil {
		t.Fatalf("Load(nil, nil) = _, %v, %v", ignored, err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(nil, nil) differs from Default()")
	}
	if c.BindHost != "127.0.0.1" || c.BindPort != 9292 || c.Database.Connection != "sqlite:///data/glance.sqlite" ||
		c.Store.FilesystemStoreDatadir != "./data/images" || c.PasteDeploy.Auth() != "noauth" || c.Policy.PolicyFile != "" {
		t.Errorf("unexpected embedded default: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		load  []string // files passed as --config-file
		dirs  []string // passed as --config-dir
		check func(t *testing.T, c *Config, ignored []string)
	}{
		{
			name:  "a file switches to Glance's defaults",
			files: map[string]string{"a.conf": "[DEFAULT]\n"},
			load:  []string{"a.conf"},
			check: func(t *testing.T, c *Config, _ []string) {
				if c.BindHost != "0.0.0.0" || c.Database.Connection != "" || c.Store.FilesystemStoreDatadir != "/var/lib/glance/images" {
					t.Errorf("got bind_host %q, connection %q, datadir %q", c.BindHost, c.Database.Connection, c.Store.FilesystemStoreDatadir)
				}
				if !c.ImageFormat.RequireImageFormatMatch || c.HashingAlgorithm != "sha512" || c.ImageSizeCap != 1099511627776 {
					t.Errorf("defaults changed: %+v", c)
				}
			},
		},
		{
			name: "every implemented option is read",
			files: map[string]string{"a.conf": `[DEFAULT]
bind_host = 127.0.0.2
bind_port = 19292
image_size_cap = 1000
image_property_quota = 1
image_tag_quota = 2
image_member_quota = -1
image_location_quota = 3
user_storage_quota = 10GB
show_image_direct_url = yes
show_multiple_locations = On
hashing_algorithm = sha256
enabled_import_methods = [glance-direct, copy-image]
limit_param_default = 10
api_limit_max = 20
property_protection_rule_format = policies
disabled_notifications = image.create,image.prepare
default_publisher_id = image.node1
public_endpoint = https://images.example.com:9292
max_request_id_length = 32
node_staging_uri = file:///srv/staging
[database]
connection = mysql+pymysql://glance:secret@127.0.0.1/glance
max_pool_size = 7
connection_recycle_time = 600
[glance_store]
stores = file
default_store = filesystem
filesystem_store_datadir = /srv/images
filesystem_store_file_perm = 640
filesystem_store_chunk_size = 4096
[paste_deploy]
flavor = keystone+cachemanagement
[keystone_authtoken]
www_authenticate_uri = https://keystone.example.com/identity
auth_url = http://keystone.internal:5000/v3
auth_type = password
username = glance
password = s3cret
project_name = service
user_domain_id = default
project_domain_name = Default
region_name = RegionTwo
interface = public
token_cache_time = -1
service_token_roles = service,nova
service_token_roles_required = true
http_connect_timeout = 5
http_request_max_retries = 1
insecure = true
delay_auth_decision = true
[image_format]
disk_formats = raw,qcow2
container_formats = bare
require_image_format_match = false
gpt_safety_checks_nonfatal = mbr,gptmbr
vmdk_allowed_types = streamOptimized
`},
			load: []string{"a.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				want := glanceDefaults()
				want.BindHost, want.BindPort = "127.0.0.2", 19292
				want.ImageSizeCap, want.ImagePropertyQuota, want.ImageTagQuota, want.ImageMemberQuota, want.ImageLocationQuota = 1000, 1, 2, -1, 3
				want.UserStorageQuota, want.ShowImageDirectURL, want.ShowMultipleLocations = "10GB", true, true
				want.HashingAlgorithm, want.EnabledImportMethods = "sha256", []string{"glance-direct", "copy-image"}
				want.LimitParamDefault, want.APILimitMax, want.PropertyProtectionRuleFormat = 10, 20, "policies"
				want.DisabledNotifications, want.DefaultPublisherID = []string{"image.create", "image.prepare"}, "image.node1"
				want.PublicEndpoint, want.MaxRequestIDLength, want.NodeStagingURI = "https://images.example.com:9292", 32, "file:///srv/staging"
				want.Database = DatabaseConfig{Connection: "mysql+pymysql://glance:secret@127.0.0.1/glance", MaxPoolSize: 7, MaxOverflow: 50, PoolTimeout: 30, ConnectionRecycleTime: 600}
				want.Store.Stores, want.Store.DefaultStore, want.Store.FilesystemStoreDatadir = []string{"file"}, "filesystem", "/srv/images"
				want.Store.FilesystemStoreFilePerm, want.Store.FilesystemStoreChunkSize = 640, 4096
				want.PasteDeploy.Flavor = "keystone+cachemanagement"
				want.Keystone = KeystoneAuthtokenConfig{WWWAuthenticateURI: "https://keystone.example.com/identity",
					AuthURL: "http://keystone.internal:5000/v3", AuthType: "password", Username: "glance", Password: "s3cret",
					ProjectName: "service", UserDomainID: "default", ProjectDomainName: "Default", RegionName: "RegionTwo",
					Interface: "public", TokenCacheTime: -1, ServiceTokenRoles: []string{"service", "nova"},
					ServiceTokenRolesRequired: true, HTTPConnectTimeout: 5, HTTPRequestMaxRetries: 1, Insecure: true,
					DelayAuthDecision: true}
				want.ImageFormat = ImageFormatConfig{DiskFormats: []string{"raw", "qcow2"}, ContainerFormats: []string{"bare"},
					GPTSafetyChecksNonfatal: []string{"mbr", "gptmbr"}, VMDKAllowedTypes: []string{"streamOptimized"}}
				got := *c
				got.origin, got.Sources, want.Sources = nil, nil, nil
				if !reflect.DeepEqual(&got, want) {
					t.Errorf("got  %+v\nwant %+v", &got, want)
				}
				if len(ignored) != 0 {
					t.Errorf("ignored = %q, want none", ignored)
				}
				if err := c.Validate(); err != nil {
					t.Errorf("Validate() = %v", err)
				}
				if c.UserStorageQuotaBytes() != 10<<30 || c.PasteDeploy.Auth() != "keystone" {
					t.Errorf("UserStorageQuotaBytes %d, Auth %q", c.UserStorageQuotaBytes(), c.PasteDeploy.Auth())
				}
			},
		},
		{
			name: "later files override earlier ones option by option",
			files: map[string]string{
				"a.conf": "[DEFAULT]\nbind_port = 1111\nimage_tag_quota = 5\n[database]\nconnection = sqlite:///a.db\n",
				"b.conf": "[DEFAULT]\nbind_port = 2222\n",
			},
			load: []string{"a.conf", "b.conf"},
			check: func(t *testing.T, c *Config, _ []string) {
				if c.BindPort != 2222 || c.ImageTagQuota != 5 || c.Database.Connection != "sqlite:///a.db" {
					t.Errorf("bind_port %d, image_tag_quota %d, connection %q", c.BindPort, c.ImageTagQuota, c.Database.Connection)
				}
				if len(c.Sources) != 2 || !strings.HasSuffix(c.Sources[1], "b.conf") {
					t.Errorf("Sources = %q", c.Sources)
				}
			},
		},
		{
			name: "config-dir files come after the files, in name order",
			files: map[string]string{
				"a.conf":           "[DEFAULT]\nbind_port = 1\nimage_tag_quota = 1\nimage_member_quota = 1\n",
				"d/20-last.conf":   "[DEFAULT]\nbind_port = 3\n",
				"d/10-first.conf":  "[DEFAULT]\nbind_port = 2\nimage_tag_quota = 2\n",
				"d/.hidden.conf":   "[DEFAULT]\nbind_port = 99\n",
				"d/notes.txt":      "[DEFAULT]\nbind_port = 98\n",
				"d/sub.conf/x.txt": "",
			},
			load: []string{"a.conf"},
			dirs: []string{"d"},
			check: func(t *testing.T, c *Config, _ []string) {
				if c.BindPort != 3 || c.ImageTagQuota != 2 || c.ImageMemberQuota != 1 {
					t.Errorf("bind_port %d, image_tag_quota %d, image_member_quota %d", c.BindPort, c.ImageTagQuota, c.ImageMemberQuota)
				}
				var base []string
				for _, s := range c.Sources {
					base = append(base, filepath.Base(s))
				}
				if want := []string{"a.conf", "10-first.conf", "20-last.conf"}; !reflect.DeepEqual(base, want) {
					t.Errorf("Sources = %q, want %q", base, want)
				}
			},
		},
		{
			name: "interpolation resolves against the merged files",
			files: map[string]string{
				"a.conf": "[DEFAULT]\nstate_path = /old\nnode_staging_uri = file://$state_path/staging\n" +
					"[database]\nconnection = sqlite:///${state_path}/glance.sqlite\n" +
					"[glance_store]\nfilesystem_store_datadir = $state_path/images\n",
				"b.conf": "[DEFAULT]\nstate_path = /srv/glance\n" +
					"default_publisher_id = image.${bind_port}.$$x\n" +
					"public_endpoint = http://$bind_host:${bind_port}/\n" +
					"[paste_deploy]\nflavor = $database.flavor_choice\n" +
					"[database]\nflavor_choice = trusted-auth\n",
			},
			load: []string{"a.conf", "b.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				if c.NodeStagingURI != "file:///srv/glance/staging" || c.Database.Connection != "sqlite:////srv/glance/glance.sqlite" ||
					c.Store.FilesystemStoreDatadir != "/srv/glance/images" {
					t.Errorf("staging %q, connection %q, datadir %q", c.NodeStagingURI, c.Database.Connection, c.Store.FilesystemStoreDatadir)
				}
				if c.DefaultPublisherID != "image.9292.$x" || c.PublicEndpoint != "http://0.0.0.0:9292/" || c.PasteDeploy.Flavor != "trusted-auth" {
					t.Errorf("publisher %q, endpoint %q, flavor %q", c.DefaultPublisherID, c.PublicEndpoint, c.PasteDeploy.Flavor)
				}
				if len(ignored) != 0 {
					t.Errorf("options used only by reference are reported: %q", ignored)
				}
			},
		},
		{
			name: "same section before DEFAULT in references",
			files: map[string]string{"a.conf": "[DEFAULT]\nhost = default-host\n" +
				"[glance_store]\nhost = store-host\nfilesystem_store_datadir = /x/$host\n" +
				"[database]\nconnection = mysql://u@$host/glance\n"},
			load: []string{"a.conf"},
			check: func(t *testing.T, c *Config, _ []string) {
				if c.Store.FilesystemStoreDatadir != "/x/store-host" || c.Database.Connection != "mysql://u@default-host/glance" {
					t.Errorf("datadir %q, connection %q", c.Store.FilesystemStoreDatadir, c.Database.Connection)
				}
			},
		},
		{
			name: "section names: [Database] is [database], [default] is not [DEFAULT]; dashes",
			files: map[string]string{"a.conf": "[Database]\nconnection = sqlite:///x.db\n[default]\nbind_port = 1\n" +
				"[DEFAULT]\nimage-tag-quota = 7\n[Paste_Deploy]\nflavor = noauth\n"},
			load: []string{"a.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				if c.Database.Connection != "sqlite:///x.db" || c.BindPort != 9292 || c.ImageTagQuota != 7 || c.PasteDeploy.Flavor != "noauth" {
					t.Errorf("connection %q, bind_port %d, image_tag_quota %d, flavor %q", c.Database.Connection, c.BindPort, c.ImageTagQuota, c.PasteDeploy.Flavor)
				}
				if want := []string{"[default] bind_port"}; !reflect.DeepEqual(ignored, want) {
					t.Errorf("ignored = %q, want %q", ignored, want)
				}
			},
		},
		{
			name: "deprecated names are read with a warning, current name wins in the same file",
			files: map[string]string{
				"a.conf": "[DEFAULT]\nsql_connection = sqlite:///old.db\ndisk_formats = raw\n",
				"b.conf": "[sql]\nconnection = sqlite:///older.db\n[database]\nconnection = sqlite:///new.db\n",
			},
			load: []string{"a.conf", "b.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				if c.Database.Connection != "sqlite:///new.db" || !reflect.DeepEqual(c.ImageFormat.DiskFormats, []string{"raw"}) {
					t.Errorf("connection %q, disk_formats %q", c.Database.Connection, c.ImageFormat.DiskFormats)
				}
				if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "[DEFAULT] disk_formats is deprecated, use [image_format] disk_formats") {
					t.Errorf("Warnings = %q", c.Warnings)
				}
				if len(ignored) != 0 {
					t.Errorf("ignored = %q", ignored)
				}
			},
		},
		{
			name: "multi-store backends",
			files: map[string]string{"a.conf": "[DEFAULT]\nenabled_backends = fast:rbd, cheap:file\nstate_path = /srv\n" +
				"[glance_store]\ndefault_backend = fast\n" +
				"[fast]\nrbd_store_pool = images\nweight = 10\n" +
				"[Cheap]\nfilesystem_store_datadir = $state_path/cheap\n" +
				"[os_glance_staging_store]\nfilesystem_store_datadir = /srv/staging\n" +
				"[unused]\nx = 1\n"},
			load: []string{"a.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				if !reflect.DeepEqual(c.EnabledBackends, map[string]string{"fast": "rbd", "cheap": "file"}) || c.DefaultBackend != "fast" {
					t.Errorf("enabled_backends %q, default_backend %q", c.EnabledBackends, c.DefaultBackend)
				}
				want := map[string]map[string]string{
					"fast":                    {"rbd_store_pool": "images", "weight": "10"},
					"cheap":                   {"filesystem_store_datadir": "/srv/cheap"},
					"os_glance_staging_store": {"filesystem_store_datadir": "/srv/staging"},
				}
				if !reflect.DeepEqual(c.BackendOptions, want) {
					t.Errorf("BackendOptions = %q, want %q", c.BackendOptions, want)
				}
				if want := []string{"[unused] x"}; !reflect.DeepEqual(ignored, want) {
					t.Errorf("ignored = %q, want %q", ignored, want)
				}
			},
		},
		{
			name:  "single store: reserved store sections are ignored",
			files: map[string]string{"a.conf": "[os_glance_staging_store]\nfilesystem_store_datadir = /srv/staging\n"},
			load:  []string{"a.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				if len(c.BackendOptions) != 0 || !reflect.DeepEqual(ignored, []string{"[os_glance_staging_store] filesystem_store_datadir"}) {
					t.Errorf("BackendOptions %q, ignored %q", c.BackendOptions, ignored)
				}
			},
		},
		{
			name:  "Glance YAML policy falls back to the built-in policy with a warning",
			files: map[string]string{"a.conf": "[oslo_policy]\npolicy_file = policy.yaml\n", "policy.yaml": "{}\n"},
			load:  []string{"a.conf"},
			check: func(t *testing.T, c *Config, _ []string) {
				if c.Policy.PolicyFile != "" {
					t.Errorf("PolicyFile = %q, want the built-in policy", c.Policy.PolicyFile)
				}
				if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "casbin CSV") || !strings.Contains(c.Warnings[0], "a.conf:2") {
					t.Errorf("Warnings = %q", c.Warnings)
				}
			},
		},
		{
			name: "relative files are found next to the configuration",
			files: map[string]string{
				"etc/a.conf": "[DEFAULT]\nproperty_protection_file = pp.conf\n" +
					"[oslo_policy]\npolicy_file = policy.csv\ncasbin_model_file = /abs/model.conf\n",
				"etc/pp.conf":             "[.*]\ncreate = admin\nread = admin\nupdate = admin\ndelete = admin\n",
				"etc/policy.csv":          "p, admin, *\n",
				"etc/schema-image.json":   "{}",
				"d/10.conf":               "[DEFAULT]\n",
				"d/schema-image.json":     "{}",
				"other/schema-image.json": "{}",
			},
			load: []string{"etc/a.conf"},
			dirs: []string{"d"},
			check: func(t *testing.T, c *Config, _ []string) {
				if !strings.HasSuffix(c.PropertyProtectionFile, "/etc/pp.conf") || !filepath.IsAbs(c.PropertyProtectionFile) {
					t.Errorf("PropertyProtectionFile = %q", c.PropertyProtectionFile)
				}
				if !strings.HasSuffix(c.Policy.PolicyFile, "/etc/policy.csv") || c.Policy.ModelFile != "/abs/model.conf" {
					t.Errorf("PolicyFile %q, ModelFile %q", c.Policy.PolicyFile, c.Policy.ModelFile)
				}
				if !strings.HasSuffix(c.SchemaImageFile, "/d/schema-image.json") {
					t.Errorf("SchemaImageFile = %q, want the one in the config dir", c.SchemaImageFile)
				}
			},
		},
		{
			name: "ignored options are listed once, in order of appearance",
			files: map[string]string{
				"a.conf": "[DEFAULT]\nworkers = 4\ndebug = true\nbind_port = 9293\n[keystone_authtoken]\nmemcached_servers = ks:11211\n" +
					"[oslo_concurrency]\nlock_path = /var/lock/glance\n",
				"b.conf": "[DEFAULT]\nworkers = 8\nlog-file = /var/log/glance/api.log\n[keystone_authtoken]\nmemcached_servers = ks2:11211\n",
			},
			load: []string{"a.conf", "b.conf"},
			check: func(t *testing.T, c *Config, ignored []string) {
				want := []string{"[DEFAULT] workers", "[DEFAULT] debug", "[keystone_authtoken] memcached_servers",
					"[oslo_concurrency] lock_path", "[DEFAULT] log_file"}
				if !reflect.DeepEqual(ignored, want) {
					t.Errorf("ignored = %q\nwant      %q", ignored, want)
				}
				msg := FormatIgnored(ignored)
				if !strings.HasPrefix(msg, "ignoring options glance-go does not implement: [DEFAULT] workers, [DEFAULT] debug, ") {
					t.Errorf("FormatIgnored = %q", msg)
				}
			},
		},
		{
			name:  "empty integer and boolean keep their defaults; empty list is empty",
			files: map[string]string{"a.conf": "[DEFAULT]\nbind_port =\nshow_image_direct_url =\nenabled_import_methods = []\n"},
			load:  []string{"a.conf"},
			check: func(t *testing.T, c *Config, _ []string) {
				if c.BindPort != 9292 || c.ShowImageDirectURL || len(c.EnabledImportMethods) != 0 {
					t.Errorf("bind_port %d, show_image_direct_url %v, enabled_import_methods %q", c.BindPort, c.ShowImageDirectURL, c.EnabledImportMethods)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			noSystemDirs(t)
			dir := t.TempDir()
			files := writeFiles(t, dir, tc.files, tc.load...)
			var dirs []string
			for _, d := range tc.dirs {
				dirs = append(dirs, filepath.Join(dir, d))
			}
			c, ignored, err := Load(files, dirs)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tc.check(t, c, ignored)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr []string // all must appear in the message
	}{
		{"bad integer", "[DEFAULT]\nbind_port = ninety\n", []string{"a.conf:2", "[DEFAULT] bind_port", `"ninety"`, "not an integer"}},
		{"port out of range", "[DEFAULT]\n\nbind_port = 70000\n", []string{"a.conf:3", "[DEFAULT] bind_port", `"70000"`, "between 0 and 65535"}},
		{"bad boolean", "[DEFAULT]\nshow_image_direct_url = maybe\n", []string{"a.conf:2", "show_image_direct_url", `"maybe"`, "not a boolean"}},
		{"integer overflow", "[DEFAULT]\nimage_size_cap = 99999999999999999999\n", []string{"image_size_cap", "out of range"}},
		{"size cap below 1", "[DEFAULT]\nimage_size_cap = 0\n", []string{"image_size_cap", "at least 1"}},
		{"storage quota format", "[DEFAULT]\nuser_storage_quota = 10 GB\n", []string{"[DEFAULT] user_storage_quota", `"10 GB"`, `^\d+((K|M|G|T)?B)?$`}},
		{"storage quota lower case", "[DEFAULT]\nuser_storage_quota = 10gb\n", []string{"user_storage_quota"}},
		{"storage quota overflow", "[DEFAULT]\nuser_storage_quota = 9999999999TB\n", []string{"user_storage_quota", "too large"}},
		{"hashing algorithm", "[DEFAULT]\nhashing_algorithm = whirlpool\n", []string{"hashing_algorithm", `"whirlpool"`, "unsupported hashing algorithm"}},
		{"import method", "[DEFAULT]\nenabled_import_methods = [glance-direct,ftp]\n", []string{"enabled_import_methods", `unknown value "ftp"`}},
		{"list brackets", "[DEFAULT]\nenabled_import_methods = [glance-direct\n", []string{"enabled_import_methods", "unbalanced"}},
		{"rule format", "[DEFAULT]\nproperty_protection_rule_format = acl\n", []string{"property_protection_rule_format", "roles, policies"}},
		{"limit", "[DEFAULT]\nlimit_param_default = 0\n", []string{"limit_param_default", "at least 1"}},
		{"public endpoint", "[DEFAULT]\npublic_endpoint = images.example.com\n", []string{"public_endpoint", "absolute http"}},
		{"staging uri", "[DEFAULT]\nnode_staging_uri = /tmp/staging\n", []string{"node_staging_uri", "file://"}},
		{"bind host", "[DEFAULT]\nbind_host = not a host\n", []string{"bind_host", "not an IP address"}},
		{"backend dict", "[DEFAULT]\nenabled_backends = fast\n", []string{"enabled_backends", "name:value"}},
		{"backend type", "[DEFAULT]\nenabled_backends = fast:tape\n", []string{"enabled_backends", `unknown store type "tape"`}},
		{"reserved backend id", "[DEFAULT]\nenabled_backends = os_glance_x:file\n", []string{"enabled_backends", "reserved prefix"}},
		{"default store", "[glance_store]\ndefault_store = tape\n", []string{"[glance_store] default_store", `"tape"`}},
		{"file perm digits", "[glance_store]\nfilesystem_store_file_perm = 648\n", []string{"filesystem_store_file_perm", "octal"}},
		{"file perm owner read", "[glance_store]\nfilesystem_store_file_perm = 200\n", []string{"filesystem_store_file_perm", "owner read"}},
		{"chunk size", "[glance_store]\nfilesystem_store_chunk_size = 0\n", []string{"filesystem_store_chunk_size"}},
		{"flavor", "[paste_deploy]\nflavor = ldap\n", []string{"[paste_deploy] flavor", `"ldap"`}},
		{"undefined reference", "[DEFAULT]\nnode_staging_uri = file://$nowhere/x\n", []string{"a.conf:2", "node_staging_uri", "$nowhere refers to no option"}},
		{"dots belong to the name, as in oslo.config", "[DEFAULT]\ndefault_publisher_id = image.$bind_port.x\n", []string{"$bind_port.x refers to no option"}},
		{"reference loop", "[DEFAULT]\na = $b\nb = $a\nnode_staging_uri = file:///$a\n", []string{"node_staging_uri", "refers back to itself"}},
		{"self reference", "[DEFAULT]\nbind_host = $bind_host\n", []string{"bind_host", "refers back to itself"}},
		{"syntax error", "[DEFAULT]\nthis line has no separator\n", []string{"a.conf:2", "no ':' or '='"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			noSystemDirs(t)
			files := writeFiles(t, t.TempDir(), map[string]string{"a.conf": tc.body}, "a.conf")
			_, _, err := Load(files, nil)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("err = %v, want a domain.ErrInvalid", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingFiles(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := Load([]string{filepath.Join(dir, "nope.conf")}, nil); err == nil || !strings.Contains(err.Error(), "nope.conf not found") {
		t.Errorf("missing file: err = %v", err)
	}
	if _, _, err := Load(nil, []string{filepath.Join(dir, "nodir")}); err == nil || !strings.Contains(err.Error(), "nodir not found") {
		t.Errorf("missing dir: err = %v", err)
	}
	// An existing but empty --config-dir still means "configured": Glance's
	// defaults apply and Validate wants a database.
	c, _, err := Load(nil, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Database.Connection != "" || c.Validate() == nil {
		t.Errorf("empty config dir: connection %q, Validate() = %v", c.Database.Connection, c.Validate())
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	existing := writeFiles(t, dir, map[string]string{"pp.conf": "[.*]\n"}, "pp.conf")[0]
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantErr string
	}{
		{"embedded default", func(c *Config) {}, ""},
		{"mysql", func(c *Config) { c.Database.Connection = "mysql+pymysql://glance:pw@127.0.0.1:3306/glance" }, ""},
		{"mariadb", func(c *Config) { c.Database.Connection = "mariadb://glance@db/glance" }, ""},
		{"no connection", func(c *Config) { c.Database.Connection = "" }, "[database] connection is not set"},
		{"postgres", func(c *Config) { c.Database.Connection = "postgresql://glance:pw@db/glance" }, `database "postgresql" is not supported`},
		{"password redacted", func(c *Config) { c.Database.Connection = "postgresql://glance:pw@db/glance" }, "glance:%2A%2A%2A@db"},
		{"not a URL", func(c *Config) { c.Database.Connection = "glance.sqlite" }, "not a database URL"},
		{"sqlite memory", func(c *Config) { c.Database.Connection = "sqlite://" }, "needs a file path"},
		{"default store not in stores", func(c *Config) { c.Store.Stores = []string{"http"} }, "not among [glance_store] stores"},
		{"filesystem alias of file", func(c *Config) { c.Store.Stores = []string{"filesystem"}; c.Store.DefaultStore = "file" }, ""},
		{"backends without default", func(c *Config) { c.EnabledBackends = map[string]string{"a": "file"} }, "default_backend is not set"},
		{"default backend unknown", func(c *Config) {
			c.EnabledBackends = map[string]string{"a": "file"}
			c.DefaultBackend = "b"
		}, "not one of [DEFAULT] enabled_backends"},
		{"backends ok", func(c *Config) {
			c.EnabledBackends = map[string]string{"a": "file"}
			c.DefaultBackend = "a"
			c.Store.Stores = nil // legacy options do not matter in multi-store
		}, ""},
		{"property protection file missing", func(c *Config) { c.PropertyProtectionFile = filepath.Join(dir, "missing.conf") }, "property_protection_file"},
		{"property protection file present", func(c *Config) { c.PropertyProtectionFile = existing }, ""},
		{"policy file missing", func(c *Config) { c.Policy.PolicyFile = filepath.Join(dir, "policy.csv") }, "[oslo_policy] policy_file"},
		{"model file missing", func(c *Config) { c.Policy.ModelFile = filepath.Join(dir, "model.conf") }, "casbin_model_file"},
		{"bad value set in code", func(c *Config) { c.HashingAlgorithm = "crc32" }, `[DEFAULT] hashing_algorithm = crc32: unsupported`},
		{"negative quota is unlimited", func(c *Config) { c.ImageTagQuota = -1 }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("Validate() = %v, want an ErrInvalid containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), ":pw@") {
				t.Errorf("password leaked: %v", err)
			}
		})
	}
}

func TestValidateNamesTheFile(t *testing.T) {
	noSystemDirs(t)
	files := writeFiles(t, t.TempDir(), map[string]string{"a.conf": "[database]\nconnection = sqlite:///x.db\n[glance_store]\nstores = http\n"}, "a.conf")
	c, _, err := Load(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Store.DefaultStore = "rbd"
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "[glance_store] default_store = rbd") {
		t.Errorf("Validate() = %v", err)
	}
	c.Store.DefaultStore = "http"
	c.Database.Connection = "postgresql://g:pw@db/g"
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "a.conf:2: [database] connection") || strings.Contains(err.Error(), "pw") {
		t.Errorf("Validate() = %v, want file and line, no password", err)
	}
}

// TestDebianGlanceAPIConf loads the glance-api.conf that Debian's
// glance-common package ships (and glance-api installs in /etc/glance).
func TestDebianGlanceAPIConf(t *testing.T) {
	path := ""
	for _, p := range []string{"/etc/glance/glance-api.conf", "/usr/share/glance-common/glance-api.conf"} {
		if _, err := os.Stat(p); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		strictSkip(t, "Debian's glance-api.conf is not installed (package glance-common)")
	}
	c, ignored, err := Load([]string{path}, nil)
	if err != nil {
		t.Fatalf("Load(%s) = %v", path, err)
	}
	if c.Store.FilesystemStoreDatadir != "/var/lib/glance/images" || c.BindPort != 9292 || c.BindHost != "0.0.0.0" {
		t.Errorf("datadir %q, bind %s:%d", c.Store.FilesystemStoreDatadir, c.BindHost, c.BindPort)
	}
	has := map[string]bool{}
	for _, o := range ignored {
		has[o] = true
		if strings.HasPrefix(o, "[glance_store] ") || strings.HasPrefix(o, "[database] ") {
			t.Errorf("implemented option reported as ignored: %s", o)
		}
	}
	if !has["[oslo_concurrency] lock_path"] {
		t.Errorf("ignored = %q, want it to list [oslo_concurrency] lock_path", ignored)
	}
	// Its [keystone_authtoken] is read for the keystone flavor.
	if k := c.Keystone; k.AuthURL != "http://localhost:5000" || k.AuthType != "password" || k.Username != "glance" ||
		k.ProjectName != "service" || k.UserDomainName != "Default" || k.WWWAuthenticateURI != "http://localhost:5000" ||
		k.TokenCacheTime != 300 || k.Interface != "internal" {
		t.Errorf("[keystone_authtoken] read as %+v", k)
	}
	// Debian's file sets no database: the server must refuse to start.
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "[database] connection is not set") {
		t.Errorf("Validate() = %v, want the missing connection", err)
	}
}

func TestRegisterFlags(t *testing.T) {
	fs := flag.NewFlagSet("glance-api", flag.ContinueOnError)
	a := RegisterFlags(fs)
	err := fs.Parse([]string{"--config-file", "/etc/glance/glance-api.conf", "--config-dir=/etc/glance/glance-api.conf.d",
		"-config-file=/etc/glance/override.conf"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc/glance/glance-api.conf", "/etc/glance/override.conf"}; !reflect.DeepEqual(a.Files, want) {
		t.Errorf("Files = %q, want %q", a.Files, want)
	}
	if want := []string{"/etc/glance/glance-api.conf.d"}; !reflect.DeepEqual(a.Dirs, want) {
		t.Errorf("Dirs = %q, want %q", a.Dirs, want)
	}
}

func TestHelpers(t *testing.T) {
	quotas := []struct {
		in   string
		want int64
	}{{"0", 0}, {"1024", 1024}, {"1B", 1}, {"2KB", 2048}, {"3MB", 3 << 20}, {"4GB", 4 << 30}, {"5TB", 5 << 40}, {"bad", 0}}
	for _, q := range quotas {
		c := &Config{UserStorageQuota: q.in}
		if got := c.UserStorageQuotaBytes(); got != q.want {
			t.Errorf("UserStorageQuotaBytes(%q) = %d, want %d", q.in, got, q.want)
		}
	}

	hashes := []struct {
		name string
		ok   bool
	}{{"md5", true}, {"sha1", true}, {"sha256", true}, {"SHA512", true}, {"sha3_256", true}, {"blake3", false}}
	for _, h := range hashes {
		if err := checkHashAlgo(h.name); (err == nil) != h.ok {
			t.Errorf("checkHashAlgo(%q) = %v", h.name, err)
		}
	}

	perms := []struct {
		perm int
		want os.FileMode
		ok   bool
	}{{0, 0, false}, {-1, 0, false}, {640, 0o640, true}, {600, 0o600, true}}
	for _, p := range perms {
		got, ok := StoreConfig{FilesystemStoreFilePerm: p.perm}.FileMode()
		if got != p.want || ok != p.ok {
			t.Errorf("FileMode(%d) = %v, %v; want %v, %v", p.perm, got, ok, p.want, p.ok)
		}
	}

	flavors := map[string]string{"": "noauth", "noauth": "noauth", "trusted-auth": "trusted-auth", "keystone+caching": "keystone"}
	for f, want := range flavors {
		if got := (PasteDeployConfig{Flavor: f}).Auth(); got != want {
			t.Errorf("Auth(%q) = %q, want %q", f, got, want)
		}
	}

	if got := FormatIgnored(nil); got != "" {
		t.Errorf("FormatIgnored(nil) = %q", got)
	}
}

// TestSampleConf checks that etc/glance-api.conf.sample loads as shipped and
// that, with every option uncommented, it names only options Load honours.
func TestSampleConf(t *testing.T) {
	noSystemDirs(t)
	const sample = "../../../../etc/glance-api.conf.sample"
	b, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	if _, ignored, err := Load([]string{sample}, nil); err != nil || len(ignored) != 0 {
		t.Fatalf("Load(sample) = %q, %v", ignored, err)
	}
	var out []string
	seen := map[string]bool{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "[") {
			section = line
		}
		k, rest, ok := strings.Cut(strings.TrimPrefix(line, "#"), " =")
		if ok && strings.HasPrefix(line, "#") && !strings.Contains(k, " ") && (rest == "" || rest[0] == ' ') {
			if seen[section+k] {
				continue
			}
			seen[section+k] = true
			line = strings.TrimPrefix(line, "#")
		}
		out = append(out, line)
	}
	p := filepath.Join(t.TempDir(), "all.conf")
	if err := os.WriteFile(p, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	c, ignored, err := Load([]string{p}, nil)
	if err != nil || len(ignored) != 0 {
		t.Fatalf("Load(uncommented sample) = %q, %v", ignored, err)
	}
	for _, o := range options {
		if _, ok := c.origin[o.section+" "+o.name]; !ok {
			t.Errorf("the sample does not show [%s] %s", o.section, o.name)
		}
	}
}

// strictSkip skips a test whose outside prerequisite is missing, or fails it
// when GLANCE_TEST_STRICT is set, as CI does after installing everything.
func strictSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("GLANCE_TEST_STRICT") != "" {
		t.Fatal(why + " (GLANCE_TEST_STRICT is set)")
	}
	t.Skip(why)
}

// TestKeystoneAuthtoken checks what the keystone flavor needs of
// [keystone_authtoken]: auth_uri still works, with a warning, and a
// section that cannot log in stops the server with a clear message.
func TestKeystoneAuthtoken(t *testing.T) {
	noSystemDirs(t)
	const base = "[database]\nconnection = sqlite:///g.sqlite\n[paste_deploy]\nflavor = keystone+caching\n" +
		"[keystone_authtoken]\nauth_uri = http://ks:5000\nauth_url = http://ks:5000\nusername = glance\n" +
		"password = x\nproject_name = service\n"
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"password", "auth_type = password\n", ""},
		{"token plugin", "auth_type = v3token\n", "auth_type = \"v3token\": not supported: glance-go logs its service user in with auth_type = password only"},
		{"no auth_type", "", "[keystone_authtoken] auth_type = : is not set"},
		{"bad interface", "auth_type = password\ninterface = private\n", "[keystone_authtoken] interface = \"private\": must be one of public, internal, admin"},
		{"bad auth_url", "auth_type = password\nauth_url = ks:5000\n", "[keystone_authtoken] auth_url = \"ks:5000\": must be an absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "glance-api.conf")
			if err := os.WriteFile(p, []byte(base+tc.extra), 0o644); err != nil {
				t.Fatal(err)
			}
			c, ignored, err := Load([]string{p}, nil)
			if err != nil || len(ignored) != 0 {
				t.Fatalf("Load = %q, %v", ignored, err)
			}
			if c.Keystone.WWWAuthenticateURI != "http://ks:5000" || len(c.Warnings) != 1 ||
				!strings.Contains(c.Warnings[0], "[keystone_authtoken] auth_uri is deprecated, use [keystone_authtoken] www_authenticate_uri") {
				t.Errorf("auth_uri: www_authenticate_uri %q, warnings %q", c.Keystone.WWWAuthenticateURI, c.Warnings)
			}
			err = c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
