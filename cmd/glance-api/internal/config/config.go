package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/location"
)

// Config is everything glance-api.conf says that glance-go honours. Field
// comments name the section and option each one is read from.
type Config struct {
	BindHost string // [DEFAULT] bind_host
	BindPort int    // [DEFAULT] bind_port

	ImageSizeCap       int64  // [DEFAULT] image_size_cap, bytes
	ImagePropertyQuota int    // [DEFAULT] image_property_quota; < 0 is unlimited
	ImageTagQuota      int    // [DEFAULT] image_tag_quota; < 0 is unlimited
	ImageMemberQuota   int    // [DEFAULT] image_member_quota; < 0 is unlimited
	ImageLocationQuota int    // [DEFAULT] image_location_quota; < 0 is unlimited
	UserStorageQuota   string // [DEFAULT] user_storage_quota, e.g. "0", "500GB"; see UserStorageQuotaBytes

	ShowImageDirectURL    bool   // [DEFAULT] show_image_direct_url
	ShowMultipleLocations bool   // [DEFAULT] show_multiple_locations
	HashingAlgorithm      string // [DEFAULT] hashing_algorithm, lower-cased

	EnabledImportMethods []string // [DEFAULT] enabled_import_methods
	LimitParamDefault    int      // [DEFAULT] limit_param_default
	APILimitMax          int      // [DEFAULT] api_limit_max

	PropertyProtectionFile       string // [DEFAULT] property_protection_file; "" disables property protection
	PropertyProtectionRuleFormat string // [DEFAULT] property_protection_rule_format: roles or policies

	DisabledNotifications []string // [DEFAULT] disabled_notifications
	DefaultPublisherID    string   // [DEFAULT] default_publisher_id
	PublicEndpoint        string   // [DEFAULT] public_endpoint; "" means the request's own URL
	MaxRequestIDLength    int      // [DEFAULT] max_request_id_length
	NodeStagingURI        string   // [DEFAULT] node_staging_uri

	Database DatabaseConfig // [database]
	Store    StoreConfig    // [glance_store], legacy single store

	// EnabledBackends maps backend id to store type ([DEFAULT]
	// enabled_backends, "fast:rbd,cheap:file"). Empty means single store.
	EnabledBackends map[string]string
	// DefaultBackend is [glance_store] default_backend, an id of
	// EnabledBackends.
	DefaultBackend string
	// BackendOptions holds, for each id of EnabledBackends and for the
	// reserved os_glance_staging_store and os_glance_tasks_store sections,
	// every option of that section, with $references resolved. The store
	// package reads them; they are not reported as ignored.
	BackendOptions map[string]map[string]string
	// EnabledBackendOrder lists the ids of enabled_backends in the order
	// written, which /v2/info/stores follows; see BackendIDs.
	EnabledBackendOrder []string
	// BackendMultiOptions holds every value of the multi-valued options
	// (filesystem_store_datadirs) of the sections in BackendOptions, in
	// the order written across all files.
	BackendMultiOptions map[string]map[string][]string

	Policy PolicyConfig // [oslo_policy]
	// Notifications is [oslo_messaging_notifications], [oslo_messaging_rabbit],
	// [DEFAULT] transport_url and control_exchange.
	Notifications NotificationsConfig
	PasteDeploy   PasteDeployConfig // [paste_deploy]
	ImageFormat   ImageFormatConfig // [image_format]
	// Keystone is [keystone_authtoken], used by the keystone flavor.
	Keystone KeystoneAuthtokenConfig
	// Imports is [import_filtering_opts], [image_import_opts] image_import_plugins,
	// [image_conversion] and [inject_metadata_properties].
	Imports  ImportsConfig
	Recovery RecoveryConfig // [glance_go] recovery_*
	Runtime  RuntimeConfig  // [glance_go] memory_limit, record_cache
	// Ops is [DEFAULT] graceful_shutdown_timeout and [glance_go] metrics,
	// metrics_bind.
	Ops         OpsConfig
	CORS        CORSConfig        // [cors]
	Healthcheck HealthcheckConfig // [healthcheck]
	// CORSSections are the deprecated [cors.*] sections, in name order.
	CORSSections []CORSConfig
	// Tasks is [taskflow_executor] max_workers, [task] task_time_to_live,
	// [image_import_opts] max_parallel_stores and worker_self_reference_url.
	Tasks TasksConfig

	// SchemaImageFile is the schema-image.json found next to the
	// configuration (the --config-dir directories, then the directories of
	// the --config-file files, last first, then /etc/glance/); "" when there
	// is none or no configuration file was given.
	SchemaImageFile string

	// Sources lists the files read, in the order they were applied.
	Sources []string
	// Warnings are notes for the operator to log at start: deprecated option
	// names that were honoured, a Glance policy file that was not used.
	Warnings []string

	origin map[string]entry // "section option" → where the value came from
}

// DatabaseConfig is the [database] section.
type DatabaseConfig struct {
	// Connection is an SQLAlchemy-style URL: sqlite:///relative/path,
	// sqlite:////absolute/path or mysql+pymysql://user:pass@host/db.
	Connection            string
	MaxPoolSize           int // max_pool_size
	MaxOverflow           int // max_overflow; negative: no bound
	PoolTimeout           int // pool_timeout, seconds
	ConnectionRecycleTime int // connection_recycle_time, seconds
}

// StoreConfig is the [glance_store] section of a single-store deployment.
type StoreConfig struct {
	Stores                 []string // stores
	DefaultStore           string   // default_store
	FilesystemStoreDatadir string   // filesystem_store_datadir
	// FilesystemStoreFilePerm is filesystem_store_file_perm as written: its
	// decimal digits are read as octal (640 means rw-r-----); 0 or less
	// leaves the mode alone. See FileMode.
	FilesystemStoreFilePerm  int
	FilesystemStoreChunkSize int // filesystem_store_chunk_size, bytes
	// FilesystemStoreDatadirs is filesystem_store_datadirs, "dir:priority"
	// entries from every assignment in every file (a multi-valued option).
	// When it is set, FilesystemStoreDatadir is empty.
	FilesystemStoreDatadirs     []string
	FilesystemStoreMetadataFile string // filesystem_store_metadata_file
	FilesystemThinProvisioning  bool   // filesystem_thin_provisioning
	// FilesystemStoreDownload is filesystem_store_download (glance-go's
	// own): auto, sendfile or copy, how downloads leave the file store.
	FilesystemStoreDownload string
	HTTPSCACertificatesFile string            // https_ca_certificates_file
	HTTPSInsecure           bool              // https_insecure
	HTTPProxyInformation    map[string]string // http_proxy_information, scheme:proxy
	// HTTPStoreTimeout is http_store_timeout (glance-go's own), seconds to
	// wait for an http location's server to connect and answer; 0 waits
	// for ever.
	HTTPStoreTimeout int
	// RBDOptions holds the rbd driver's options written in [glance_store]
	// (rbd_store_pool, rbd_store_user, rbd_store_ceph_conf,
	// rbd_store_chunk_size, rbd_thin_provisioning, rados_connect_timeout
	// and any other rbd_* name) when stores or default_store name rbd; the
	// driver reads them as it reads a backend's section.
	RBDOptions map[string]string
}

// FileMode returns the permission bits that FilesystemStoreFilePerm stands
// for, and false when files keep the default mode.
func (s StoreConfig) FileMode() (os.FileMode, bool) {
	if s.FilesystemStoreFilePerm <= 0 {
		return 0, false
	}
	m, err := strconv.ParseUint(strconv.Itoa(s.FilesystemStoreFilePerm), 8, 32)
	if err != nil {
		return 0, false
	}
	return os.FileMode(m), true
}

// PolicyConfig is the [oslo_policy] section.
type PolicyConfig struct {
	// PolicyFile is the casbin CSV policy (policy_file); "" means the
	// built-in default policy.
	PolicyFile string
	// ModelFile is the casbin model (casbin_model_file, an option of
	// glance-go's own); "" means the built-in model.
	ModelFile string
}

// PasteDeployConfig is the [paste_deploy] section.
type PasteDeployConfig struct {
	// Flavor selects authentication: "" or "noauth" (every request is an
	// admin without a project, as Glance's pipeline without a flavor),
	// "trusted-auth" (identity from X-Project-Id, X-User-Id, X-Roles
	// headers) or "keystone" (tokens validated against Keystone, see
	// KeystoneAuthtokenConfig). A "+caching" or "+cachemanagement" suffix
	// is accepted and has no effect.
	Flavor string
}

// Auth returns the authentication mode that Flavor selects: "noauth",
// "trusted-auth" or "keystone".
func (p PasteDeployConfig) Auth() string {
	base, _, _ := strings.Cut(p.Flavor, "+")
	if base == "" {
		return "noauth"
	}
	return base
}

// ImageFormatConfig is the [image_format] section.
type ImageFormatConfig struct {
	DiskFormats             []string // disk_formats
	ContainerFormats        []string // container_formats
	RequireImageFormatMatch bool     // require_image_format_match
	// GPTSafetyChecksNonfatal is gpt_safety_checks_nonfatal: the checks of a
	// GPT disk whose failure is only logged.
	GPTSafetyChecksNonfatal []string
	// VMDKAllowedTypes is vmdk_allowed_types: the VMDK create-types that
	// may be imported and converted.
	VMDKAllowedTypes []string
}

// Default returns the embedded configuration used when no file is given:
// 127.0.0.1:9292, SQLite at ./data/glance.sqlite, images in ./data/images,
// staging in ./data/staging, no authentication, the built-in policy, and
// Glance's defaults for everything else.
func Default() *Config {
	c := glanceDefaults()
	c.BindHost = "127.0.0.1"
	c.Database.Connection = "sqlite:///data/glance.sqlite"
	c.Store.FilesystemStoreDatadir = "./data/images"
	c.NodeStagingURI = embeddedStagingURI()
	return c
}

// glanceDefaults returns the values Glance itself uses for options a file
// does not set.
func glanceDefaults() *Config {
	return &Config{
		Runtime: RuntimeConfig{MemoryLimit: 128, RecordCache: 10000, DatabaseCallTimeout: 60},
		Ops:     OpsConfig{GracefulShutdownTimeout: 60, ClientSocketTimeout: 900, Metrics: true},
		CORS:    defaultCORS(),
		Healthcheck: HealthcheckConfig{Path: "/healthcheck", Backends: []string{"disable_by_file"},
			DisableByFilePath: "/etc/glance/healthcheck_disable"},
		BindHost:                     "0.0.0.0",
		BindPort:                     9292,
		ImageSizeCap:                 1099511627776,
		ImagePropertyQuota:           128,
		ImageTagQuota:                128,
		ImageMemberQuota:             128,
		ImageLocationQuota:           10,
		UserStorageQuota:             "0",
		HashingAlgorithm:             "sha512",
		EnabledImportMethods:         []string{"glance-direct", "web-download", "copy-image"},
		LimitParamDefault:            25,
		APILimitMax:                  1000,
		PropertyProtectionRuleFormat: "roles",
		DisabledNotifications:        []string{},
		DefaultPublisherID:           "image.localhost",
		MaxRequestIDLength:           64,
		NodeStagingURI:               "file:///tmp/staging/",
		Database: DatabaseConfig{
			MaxPoolSize:           5,
			MaxOverflow:           50,
			PoolTimeout:           30,
			ConnectionRecycleTime: 3600,
		},
		Store: StoreConfig{
			Stores:                   []string{"file", "http"},
			DefaultStore:             "file",
			FilesystemStoreDatadir:   "/var/lib/glance/images",
			FilesystemStoreChunkSize: 65536,
			HTTPSInsecure:            true,
			HTTPProxyInformation:     map[string]string{},
			HTTPStoreTimeout:         60,
		},
		EnabledBackends:     map[string]string{},
		BackendOptions:      map[string]map[string]string{},
		BackendMultiOptions: map[string]map[string][]string{},
		ImageFormat: ImageFormatConfig{
			DiskFormats:             []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"},
			ContainerFormats:        []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"},
			RequireImageFormatMatch: true,
			GPTSafetyChecksNonfatal: []string{"mbr"},
			VMDKAllowedTypes:        []string{"streamOptimized", "monolithicSparse"},
		},
		Imports:       defaultImports(),
		Tasks:         defaultTasks(),
		Notifications: defaultNotifications(),
		Keystone:      defaultKeystoneAuthtoken(),
	}
}

// checkHashAlgo accepts a hashing_algorithm that the location layer can
// compute (md5, sha1, the sha2 and sha3 families; any case).
func checkHashAlgo(algorithm string) error {
	if location.ValidHashAlgo(strings.ToLower(algorithm)) {
		return nil
	}
	return domain.Errorf(domain.ErrInvalid, "unsupported hashing algorithm %q (supported: %s)",
		algorithm, strings.Join(location.HashAlgos(), ", "))
}

var storageQuotaRE = regexp.MustCompile(`^(\d+)((K|M|G|T)?B)?$`)

// parseStorageQuota turns "0", "1024", "10KB", "5GB" (1024-based) into bytes.
func parseStorageQuota(s string) (int64, error) {
	m := storageQuotaRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf(`must match ^\d+((K|M|G|T)?B)?$, e.g. 0, 1048576, 500MB, 2TB`)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("number too large")
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[3]]
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("number too large")
	}
	return n << shift, nil
}

// UserStorageQuotaBytes returns user_storage_quota in bytes; 0 means no
// quota. It returns 0 for a value that Validate refuses.
func (c *Config) UserStorageQuotaBytes() int64 {
	n, err := parseStorageQuota(c.UserStorageQuota)
	if err != nil {
		return 0
	}
	return n
}

var (
	importMethods = map[string]bool{"glance-direct": true, "web-download": true, "copy-image": true, "glance-download": true}
	// storeNames maps the names glance_store accepts in stores and
	// default_store to the store they load.
	storeNames = map[string]string{
		"file": "file", "filesystem": "file", "http": "http", "https": "http",
		"swift": "swift", "swift+http": "swift", "swift+https": "swift", "swift+config": "swift",
		"rbd": "rbd", "cinder": "cinder", "vsphere": "vsphere", "s3": "s3",
	}
	backendTypes = map[string]bool{"file": true, "http": true, "swift": true, "rbd": true, "cinder": true, "vmware": true, "s3": true}
	flavors      = map[string]bool{"": true, "noauth": true, "trusted-auth": true, "keystone": true}
	hostnameRE   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)
)

// fieldError reports a bad value of one option, naming the file and line it
// came from when it came from a file.
func (c *Config) fieldError(section, option string, value any, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if e, ok := c.origin[section+" "+option]; ok {
		v := e.value
		if option == "connection" {
			v = redact(v)
		}
		return domain.Errorf(domain.ErrInvalid, "%s: [%s] %s = %q: %s", e.where(), e.section, e.key, v, msg)
	}
	return domain.Errorf(domain.ErrInvalid, "[%s] %s = %v: %s", section, option, value, msg)
}

// checkValues checks each option on its own: ranges, formats and choices.
func (c *Config) checkValues() error {
	type check struct {
		section, option string
		value           any
		bad             string // "" when the value is fine
	}
	atLeast := func(n, min int64) string {
		if n < min {
			return fmt.Sprintf("must be at least %d", min)
		}
		return ""
	}
	checks := []check{
		{"DEFAULT", "bind_host", c.BindHost, checkHost(c.BindHost)},
		{"DEFAULT", "bind_port", c.BindPort, inRange(int64(c.BindPort), 0, 65535)},
		{"DEFAULT", "image_size_cap", c.ImageSizeCap, atLeast(c.ImageSizeCap, 1)},
		{"DEFAULT", "user_storage_quota", c.UserStorageQuota, errText(parseStorageQuota(c.UserStorageQuota))},
		{"DEFAULT", "hashing_algorithm", c.HashingAlgorithm, errOnly(checkHashAlgo(c.HashingAlgorithm))},
		{"DEFAULT", "enabled_import_methods", c.EnabledImportMethods, checkChoices(c.EnabledImportMethods, importMethods)},
		{"DEFAULT", "limit_param_default", c.LimitParamDefault, atLeast(int64(c.LimitParamDefault), 1)},
		{"DEFAULT", "api_limit_max", c.APILimitMax, atLeast(int64(c.APILimitMax), 1)},
		{"DEFAULT", "property_protection_rule_format", c.PropertyProtectionRuleFormat, oneOf(c.PropertyProtectionRuleFormat, "roles", "policies")},
		{"DEFAULT", "max_request_id_length", c.MaxRequestIDLength, atLeast(int64(c.MaxRequestIDLength), 0)},
		{"DEFAULT", "public_endpoint", c.PublicEndpoint, checkEndpoint(c.PublicEndpoint)},
		{"DEFAULT", "node_staging_uri", c.NodeStagingURI, checkStagingURI(c.NodeStagingURI)},
		{"DEFAULT", "enabled_backends", formatDict(c.EnabledBackends), checkBackends(c.EnabledBackends)},
		{"database", "max_pool_size", c.Database.MaxPoolSize, atLeast(int64(c.Database.MaxPoolSize), 0)},
		{"database", "pool_timeout", c.Database.PoolTimeout, atLeast(int64(c.Database.PoolTimeout), 1)},
		{"glance_go", "database_call_timeout", c.Runtime.DatabaseCallTimeout, atLeast(int64(c.Runtime.DatabaseCallTimeout), 0)},
		{"glance_go", "record_cache", c.Runtime.RecordCache, atLeast(int64(c.Runtime.RecordCache), 0)},
		{"glance_store", "stores", c.Store.Stores, checkChoices(c.Store.Stores, nil)},
		{"glance_store", "default_store", c.Store.DefaultStore, checkStoreName(c.Store.DefaultStore)},
		{"glance_store", "filesystem_store_file_perm", c.Store.FilesystemStoreFilePerm, checkFilePerm(c.Store.FilesystemStoreFilePerm)},
		{"glance_store", "filesystem_store_chunk_size", c.Store.FilesystemStoreChunkSize, atLeast(int64(c.Store.FilesystemStoreChunkSize), 1)},
		{"glance_store", "http_store_timeout", c.Store.HTTPStoreTimeout, atLeast(int64(c.Store.HTTPStoreTimeout), 0)},
		{"paste_deploy", "flavor", c.PasteDeploy.Flavor, checkFlavor(c.PasteDeploy.Flavor)},
		{"image_format", "disk_formats", c.ImageFormat.DiskFormats, checkChoices(c.ImageFormat.DiskFormats, nil)},
		{"image_format", "container_formats", c.ImageFormat.ContainerFormats, checkChoices(c.ImageFormat.ContainerFormats, nil)},
	}
	for _, ck := range checks {
		if ck.bad != "" {
			return c.fieldError(ck.section, ck.option, ck.value, "%s", ck.bad)
		}
	}
	if err := c.checkTasks(); err != nil {
		return err
	}
	if err := c.checkNotifications(); err != nil {
		return err
	}
	if err := c.checkOps(); err != nil {
		return err
	}
	return c.checkImports()
}

// Validate checks that the configuration can run a server: every option's
// value on its own, then what the options need of each other and of the
// machine (a database connection glance-go can open, the default backend
// among the enabled ones, the default store among the stores, the policy
// and property protection files present). It returns an ErrInvalid error
// naming the option and, when it came from a file, the file and line.
func (c *Config) Validate() error {
	if err := c.checkValues(); err != nil {
		return err
	}
	if err := c.checkKeystone(); err != nil {
		return err
	}
	if strings.TrimSpace(c.Database.Connection) == "" {
		return domain.Errorf(domain.ErrInvalid, "[database] connection is not set: glance-go needs a database "+
			"(e.g. mysql+pymysql://glance:secret@127.0.0.1/glance or sqlite:////var/lib/glance/glance.sqlite)")
	}
	if bad := checkConnection(c.Database.Connection); bad != "" {
		return c.fieldError("database", "connection", redact(c.Database.Connection), "%s", bad)
	}
	if len(c.EnabledBackends) > 0 {
		if c.DefaultBackend == "" {
			return domain.Errorf(domain.ErrInvalid, "[glance_store] default_backend is not set: with [DEFAULT] enabled_backends it must name one of %s", formatDict(c.EnabledBackends))
		}
		if _, ok := c.EnabledBackends[c.DefaultBackend]; !ok {
			return c.fieldError("glance_store", "default_backend", c.DefaultBackend, "not one of [DEFAULT] enabled_backends (%s)", formatDict(c.EnabledBackends))
		}
	} else {
		found := false
		for _, s := range c.Store.Stores {
			if storeNames[s] == storeNames[c.Store.DefaultStore] {
				found = true
			}
		}
		if !found {
			return c.fieldError("glance_store", "default_store", c.Store.DefaultStore, "not among [glance_store] stores (%s)", strings.Join(c.Store.Stores, ","))
		}
	}
	files := []struct{ section, option, path string }{
		{"DEFAULT", "property_protection_file", c.PropertyProtectionFile},
		{"oslo_policy", "policy_file", c.Policy.PolicyFile},
		{"oslo_policy", "casbin_model_file", c.Policy.ModelFile},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil || !st.Mode().IsRegular() {
			return c.fieldError(f.section, f.option, f.path, "file not found")
		}
	}
	return nil
}

func errText[T any](_ T, err error) string {
	if err != nil {
		if de, ok := err.(*domain.Error); ok {
			return de.Msg
		}
		return err.Error()
	}
	return ""
}

// errOnly is errText for a check that returns only an error.
func errOnly(err error) string { return errText(struct{}{}, err) }

func inRange(n, lo, hi int64) string {
	if n < lo || n > hi {
		return fmt.Sprintf("must be between %d and %d", lo, hi)
	}
	return ""
}

func oneOf(s string, choices ...string) string {
	for _, c := range choices {
		if s == c {
			return ""
		}
	}
	return "must be one of " + strings.Join(choices, ", ")
}

// checkChoices refuses empty items and, with allowed set, unknown ones.
func checkChoices(items []string, allowed map[string]bool) string {
	for _, it := range items {
		if it == "" {
			return "empty item in list"
		}
		if allowed != nil && !allowed[it] {
			names := make([]string, 0, len(allowed))
			for n := range allowed {
				names = append(names, n)
			}
			sort.Strings(names)
			return fmt.Sprintf("unknown value %q (known: %s)", it, strings.Join(names, ", "))
		}
	}
	return ""
}

func checkHost(h string) string {
	if net.ParseIP(h) != nil || hostnameRE.MatchString(h) {
		return ""
	}
	return "not an IP address or host name"
}

func checkEndpoint(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an absolute http:// or https:// URL"
	}
	return ""
}

func checkStagingURI(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "file" || !strings.HasPrefix(u.Path, "/") {
		return "must be a file:// URI with an absolute path, e.g. file:///var/lib/glance/staging/"
	}
	return ""
}

func checkBackends(m map[string]string) string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if strings.HasPrefix(id, "os_glance_") {
			return fmt.Sprintf("backend id %q uses the reserved prefix os_glance_", id)
		}
		if !backendTypes[m[id]] {
			return fmt.Sprintf("backend %q has unknown store type %q (known: cinder, file, http, rbd, s3, swift, vmware)", id, m[id])
		}
	}
	return ""
}

func checkStoreName(s string) string {
	if _, ok := storeNames[s]; !ok {
		names := make([]string, 0, len(storeNames))
		for n := range storeNames {
			names = append(names, n)
		}
		sort.Strings(names)
		return "must be one of " + strings.Join(names, ", ")
	}
	return ""
}

func checkFilePerm(p int) string {
	if p <= 0 {
		return ""
	}
	m, err := strconv.ParseUint(strconv.Itoa(p), 8, 32)
	if err != nil || m > 0o777 {
		return "must be octal permission digits such as 640"
	}
	if m&0o400 == 0 {
		return "must let the owner read the image files (e.g. 600 or 640)"
	}
	return ""
}

func checkFlavor(f string) string {
	base, rest, _ := strings.Cut(f, "+")
	if !flavors[base] || (rest != "" && rest != "caching" && rest != "cachemanagement") {
		return "must be empty, noauth, trusted-auth or keystone (optionally with +caching or +cachemanagement)"
	}
	return ""
}

// checkConnection accepts the SQLAlchemy URLs of the databases glance-go can
// use: SQLite and MySQL/MariaDB.
func checkConnection(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "not a database URL (dialect://...)"
	}
	dialect, _, _ := strings.Cut(scheme, "+")
	switch dialect {
	case "sqlite":
		if strings.TrimPrefix(rest, "/") == "" {
			return "an SQLite URL needs a file path (sqlite:///relative or sqlite:////absolute); in-memory databases lose every image at exit"
		}
		return ""
	case "mysql", "mariadb":
		return ""
	}
	return fmt.Sprintf("database %q is not supported: glance-go runs on MySQL/MariaDB or SQLite", dialect)
}

// redact hides the password of a database URL.
func redact(conn string) string {
	u, err := url.Parse(conn)
	if err != nil || u.User == nil {
		return conn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	return u.String()
}
