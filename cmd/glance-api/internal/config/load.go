package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/glance-go/glance-go/domain"
)

// option is one option glance-go implements: where it lives, the deprecated
// names Glance still reads it under, and the Config field it fills.
type option struct {
	section, name string
	aliases       [][2]string // deprecated [section, name] pairs
	field         func(c *Config) any
}

// options lists every option Load reads. A field is *string, *int,
// *int64, *bool, *[]string or *map[string]string.
var options = append(mainOptions, keystoneOptions...)

var mainOptions = []option{
	{"DEFAULT", "bind_host", nil, func(c *Config) any { return &c.BindHost }},
	{"DEFAULT", "bind_port", nil, func(c *Config) any { return &c.BindPort }},
	{"DEFAULT", "image_size_cap", nil, func(c *Config) any { return &c.ImageSizeCap }},
	{"DEFAULT", "image_property_quota", nil, func(c *Config) any { return &c.ImagePropertyQuota }},
	{"DEFAULT", "image_tag_quota", nil, func(c *Config) any { return &c.ImageTagQuota }},
	{"DEFAULT", "image_member_quota", nil, func(c *Config) any { return &c.ImageMemberQuota }},
	{"DEFAULT", "image_location_quota", nil, func(c *Config) any { return &c.ImageLocationQuota }},
	{"DEFAULT", "user_storage_quota", nil, func(c *Config) any { return &c.UserStorageQuota }},
	{"DEFAULT", "show_image_direct_url", nil, func(c *Config) any { return &c.ShowImageDirectURL }},
	{"DEFAULT", "show_multiple_locations", nil, func(c *Config) any { return &c.ShowMultipleLocations }},
	{"DEFAULT", "hashing_algorithm", nil, func(c *Config) any { return &c.HashingAlgorithm }},
	{"DEFAULT", "enabled_import_methods", nil, func(c *Config) any { return &c.EnabledImportMethods }},
	{"DEFAULT", "limit_param_default", nil, func(c *Config) any { return &c.LimitParamDefault }},
	{"DEFAULT", "api_limit_max", nil, func(c *Config) any { return &c.APILimitMax }},
	{"DEFAULT", "property_protection_file", nil, func(c *Config) any { return &c.PropertyProtectionFile }},
	{"DEFAULT", "property_protection_rule_format", nil, func(c *Config) any { return &c.PropertyProtectionRuleFormat }},
	{"DEFAULT", "disabled_notifications", nil, func(c *Config) any { return &c.DisabledNotifications }},
	{"DEFAULT", "default_publisher_id", nil, func(c *Config) any { return &c.DefaultPublisherID }},
	{"DEFAULT", "public_endpoint", nil, func(c *Config) any { return &c.PublicEndpoint }},
	{"DEFAULT", "max_request_id_length", nil, func(c *Config) any { return &c.MaxRequestIDLength }},
	{"DEFAULT", "node_staging_uri", nil, func(c *Config) any { return &c.NodeStagingURI }},
	{"DEFAULT", "enabled_backends", nil, func(c *Config) any { return &c.EnabledBackends }},
	{"database", "connection", [][2]string{{"DEFAULT", "sql_connection"}, {"database", "sql_connection"}, {"sql", "connection"}},
		func(c *Config) any { return &c.Database.Connection }},
	{"database", "max_pool_size", nil, func(c *Config) any { return &c.Database.MaxPoolSize }},
	{"database", "max_overflow", nil, func(c *Config) any { return &c.Database.MaxOverflow }},
	{"database", "pool_timeout", nil, func(c *Config) any { return &c.Database.PoolTimeout }},
	{"database", "connection_recycle_time", nil, func(c *Config) any { return &c.Database.ConnectionRecycleTime }},
	{"glance_store", "stores", nil, func(c *Config) any { return &c.Store.Stores }},
	{"glance_store", "default_store", nil, func(c *Config) any { return &c.Store.DefaultStore }},
	{"glance_store", "filesystem_store_datadir", nil, func(c *Config) any { return &c.Store.FilesystemStoreDatadir }},
	{"glance_store", "filesystem_store_file_perm", nil, func(c *Config) any { return &c.Store.FilesystemStoreFilePerm }},
	{"glance_store", "filesystem_store_chunk_size", nil, func(c *Config) any { return &c.Store.FilesystemStoreChunkSize }},
	{"glance_store", "default_backend", nil, func(c *Config) any { return &c.DefaultBackend }},
	{"oslo_policy", "policy_file", nil, func(c *Config) any { return &c.Policy.PolicyFile }},
	{"oslo_policy", "casbin_model_file", nil, func(c *Config) any { return &c.Policy.ModelFile }},
	{"paste_deploy", "flavor", nil, func(c *Config) any { return &c.PasteDeploy.Flavor }},
	{"image_format", "disk_formats", [][2]string{{"DEFAULT", "disk_formats"}}, func(c *Config) any { return &c.ImageFormat.DiskFormats }},
	{"image_format", "container_formats", [][2]string{{"DEFAULT", "container_formats"}}, func(c *Config) any { return &c.ImageFormat.ContainerFormats }},
	{"image_format", "require_image_format_match", nil, func(c *Config) any { return &c.ImageFormat.RequireImageFormatMatch }},
	{"image_format", "gpt_safety_checks_nonfatal", nil, func(c *Config) any { return &c.ImageFormat.GPTSafetyChecksNonfatal }},
	{"image_format", "vmdk_allowed_types", nil, func(c *Config) any { return &c.ImageFormat.VMDKAllowedTypes }},
	{"import_filtering_opts", "allowed_schemes", nil, func(c *Config) any { return &c.Imports.AllowedSchemes }},
	{"import_filtering_opts", "disallowed_schemes", nil, func(c *Config) any { return &c.Imports.DisallowedSchemes }},
	{"import_filtering_opts", "allowed_hosts", nil, func(c *Config) any { return &c.Imports.AllowedHosts }},
	{"import_filtering_opts", "disallowed_hosts", nil, func(c *Config) any { return &c.Imports.DisallowedHosts }},
	{"import_filtering_opts", "allowed_ports", nil, func(c *Config) any { return &c.Imports.AllowedPorts }},
	{"import_filtering_opts", "disallowed_ports", nil, func(c *Config) any { return &c.Imports.DisallowedPorts }},
	{"image_import_opts", "image_import_plugins", nil, func(c *Config) any { return &c.Imports.Plugins }},
	{"image_conversion", "output_format", nil, func(c *Config) any { return &c.Imports.OutputFormat }},
	{"inject_metadata_properties", "inject", nil, func(c *Config) any { return &c.Imports.Inject }},
	{"inject_metadata_properties", "ignore_user_roles", nil, func(c *Config) any { return &c.Imports.IgnoreUserRoles }},
}

// reservedStores are the internal stores Glance configures through sections
// of their own in a multi-store deployment.
var reservedStores = []string{"os_glance_staging_store", "os_glance_tasks_store"}

// systemDirs are searched last for files named by the configuration, after
// the directories the configuration was read from.
var systemDirs = []string{"/etc/glance"}

// Load reads glance-api.conf files into a Config. See the package
// documentation for the rules. It returns the options present in the files
// that glance-go does not implement, as "[section] option" in the order they
// first appear, and an ErrInvalid error for a file that cannot be read or
// parsed or for an implemented option whose value is invalid. Load checks
// each value on its own; Validate checks what the server needs as a whole.
// A glance-image-import.conf beside a glance-api.conf is read before it, as
// Glance does.
func Load(files []string, dirs []string) (*Config, []string, error) {
	if len(files) == 0 && len(dirs) == 0 {
		return Default(), nil, nil
	}
	files = withImportConf(files)
	l := &loader{defaults: glanceDefaults(), resolving: map[string]bool{}, referenced: map[string]bool{}}
	c := glanceDefaults()
	c.origin = map[string]entry{}
	for _, f := range files {
		if err := l.read(f); err != nil {
			return nil, nil, err
		}
		c.Sources = append(c.Sources, f)
	}
	for _, d := range dirs {
		names, err := confFiles(d)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range names {
			if err := l.read(f); err != nil {
				return nil, nil, err
			}
			c.Sources = append(c.Sources, f)
		}
	}

	for _, o := range options {
		e, alias, ok := l.findOption(o)
		if !ok {
			continue
		}
		v, err := interpolate(e.value, func(name string) (string, error) { return l.ref(o.section, name) })
		if err != nil {
			return nil, nil, valueError(e, err)
		}
		if err := setField(o.field(c), v); err != nil {
			return nil, nil, valueError(e, err)
		}
		c.origin[o.section+" "+o.name] = e
		if alias {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: [%s] %s is deprecated, use [%s] %s",
				e.where(), e.section, e.key, o.section, o.name))
		}
	}

	if err := l.backendOptions(c); err != nil {
		return nil, nil, err
	}
	if err := l.corsSections(c); err != nil {
		return nil, nil, err
	}
	if err := l.storeOptions(c); err != nil {
		return nil, nil, err
	}
	if err := l.notificationOptions(c); err != nil {
		return nil, nil, err
	}
	l.resolveFiles(c, dirs, files)
	if err := c.checkValues(); err != nil {
		return nil, nil, err
	}
	c.HashingAlgorithm = strings.ToLower(c.HashingAlgorithm) // hashlib.new takes any case
	return c, l.ignored(c), nil
}

// loader holds the parsed files while Load runs.
type loader struct {
	files      []*iniFile
	defaults   *Config
	resolving  map[string]bool // "section key" being interpolated, to stop loops
	referenced map[string]bool // "section key" used through $references or backend sections
}

func (l *loader) read(name string) error {
	b, err := os.ReadFile(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return domain.Errorf(domain.ErrInvalid, "config file %s not found", name)
		}
		return domain.Errorf(domain.ErrInvalid, "config file %s: %v", name, err)
	}
	f, err := parseINIBytes(name, b)
	if err != nil {
		return err
	}
	l.files = append(l.files, f)
	return nil
}

// confFiles lists the *.conf files of dir, sorted by name, skipping hidden
// files and anything that is not a regular file.
func confFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, domain.Errorf(domain.ErrInvalid, "config dir %s not found", dir)
		}
		return nil, domain.Errorf(domain.ErrInvalid, "config dir %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".conf") {
			continue
		}
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// find returns the value a section's option has in the last file that sets
// it.
func (l *loader) find(section, key string) (entry, bool) {
	for i := len(l.files) - 1; i >= 0; i-- {
		if e, ok := l.files[i].get(section, key); ok {
			return e, true
		}
	}
	return entry{}, false
}

// findOption returns an option's value from the last file that sets it
// under its name or one of its deprecated names; within one file the
// current name wins.
func (l *loader) findOption(o option) (e entry, alias, ok bool) {
	for i := len(l.files) - 1; i >= 0; i-- {
		if e, ok := l.files[i].get(o.section, o.name); ok {
			return e, false, true
		}
		for _, a := range o.aliases {
			if e, ok := l.files[i].get(a[0], a[1]); ok {
				return e, true, true
			}
		}
	}
	return entry{}, false, false
}

// ref resolves a $reference made from an option of section: "group.name"
// names another section's option; a plain name is looked up in section,
// then in DEFAULT. An option unset in every file has its default value.
func (l *loader) ref(section, name string) (string, error) {
	if group, opt, dotted := strings.Cut(name, "."); dotted {
		if v, ok, err := l.value(normSection(group), opt); ok || err != nil {
			return v, err
		}
	} else if v, ok, err := l.value(section, name); ok || err != nil {
		return v, err
	}
	if v, ok, err := l.value(defaultSection, name); ok || err != nil {
		return v, err
	}
	return "", fmt.Errorf("$%s refers to no option", name)
}

// value returns an option's interpolated value from the files, or the
// default of an implemented option.
func (l *loader) value(section, key string) (string, bool, error) {
	k := section + " " + key
	if e, ok := l.find(section, key); ok {
		if l.resolving[k] {
			return "", false, fmt.Errorf("$%s refers back to itself", key)
		}
		l.resolving[k] = true
		defer delete(l.resolving, k)
		l.referenced[k] = true
		v, err := interpolate(e.value, func(name string) (string, error) { return l.ref(section, name) })
		return v, true, err
	}
	for _, o := range options {
		if o.section == section && o.name == key {
			return formatField(o.field(l.defaults)), true, nil
		}
	}
	return "", false, nil
}

// backendOptions gathers the sections of the enabled backends (and of the
// reserved stores, in a multi-store deployment) for the store package.
func (l *loader) backendOptions(c *Config) error {
	if len(c.EnabledBackends) == 0 {
		return l.singleRBDOptions(c)
	}
	ids := make([]string, 0, len(c.EnabledBackends)+len(reservedStores))
	for id := range c.EnabledBackends {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ids = append(ids, reservedStores...)
	for _, id := range ids {
		sec := normSection(id)
		keys := map[string]bool{}
		for _, f := range l.files {
			for k := range f.sections[sec] {
				keys[k] = true
			}
		}
		if len(keys) == 0 {
			continue
		}
		opts := map[string]string{}
		for k := range keys {
			e, _ := l.find(sec, k)
			v, err := interpolate(e.value, func(name string) (string, error) { return l.ref(sec, name) })
			if err != nil {
				return valueError(e, err)
			}
			opts[k] = v
			l.referenced[sec+" "+k] = true
		}
		c.BackendOptions[id] = opts
	}
	return nil
}

// singleRBDOptions gathers the rbd driver's options from [glance_store]
// when the legacy single store lists rbd.
func (l *loader) singleRBDOptions(c *Config) error {
	if storeNames[c.Store.DefaultStore] != "rbd" && !slices.ContainsFunc(c.Store.Stores, func(s string) bool { return storeNames[s] == "rbd" }) {
		return nil
	}
	const sec = "glance_store"
	for _, f := range l.files {
		for _, e := range f.order {
			if e.section != sec || !isRBDOption(e.key) {
				continue
			}
			if _, done := c.Store.RBDOptions[e.key]; done {
				continue
			}
			last, _ := l.find(sec, e.key)
			v, err := interpolate(last.value, func(name string) (string, error) { return l.ref(sec, name) })
			if err != nil {
				return valueError(last, err)
			}
			if c.Store.RBDOptions == nil {
				c.Store.RBDOptions = map[string]string{}
			}
			c.Store.RBDOptions[e.key] = v
			l.referenced[sec+" "+e.key] = true
		}
	}
	return nil
}

// isRBDOption reports whether a [glance_store] option belongs to the rbd
// driver.
func isRBDOption(key string) bool {
	return strings.HasPrefix(key, "rbd_") || key == "rados_connect_timeout"
}

// resolveFiles finds the files the configuration names by a relative path
// the way oslo.config's find_file does, turns a Glance YAML/JSON policy into
// a warning, and looks for schema-image.json.
func (l *loader) resolveFiles(c *Config, dirs, files []string) {
	search := make([]string, 0, len(dirs)+len(files)+len(systemDirs))
	search = append(search, dirs...)
	for i := len(files) - 1; i >= 0; i-- {
		search = append(search, filepath.Dir(files[i]))
	}
	search = append(search, systemDirs...)
	find := func(name string) string {
		if name == "" || filepath.IsAbs(name) {
			return name
		}
		for _, d := range search {
			p := filepath.Join(d, name)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				if abs, err := filepath.Abs(p); err == nil {
					return abs
				}
				return p
			}
		}
		return name
	}
	if p := c.Policy.PolicyFile; p != "" {
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			e := c.origin["oslo_policy policy_file"]
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: [oslo_policy] policy_file = %s is a Glance (oslo.policy) file; "+
				"glance-go policies are casbin CSV, so the built-in default policy applies", e.where(), p))
			c.Policy.PolicyFile = ""
		}
	}
	c.Policy.PolicyFile = find(c.Policy.PolicyFile)
	c.Policy.ModelFile = find(c.Policy.ModelFile)
	c.PropertyProtectionFile = find(c.PropertyProtectionFile)
	if p := find("schema-image.json"); filepath.IsAbs(p) {
		c.SchemaImageFile = p
	}
}

// ignored lists the options present in the files that nothing read.
func (l *loader) ignored(c *Config) []string {
	known := map[string]bool{}
	for _, o := range options {
		known[o.section+" "+o.name] = true
		for _, a := range o.aliases {
			known[a[0]+" "+a[1]] = true
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range l.files {
		for _, e := range f.order {
			k := e.section + " " + e.key
			if known[k] || l.referenced[k] || seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, "["+e.section+"] "+e.key)
		}
	}
	return out
}

func valueError(e entry, err error) error {
	return domain.Errorf(domain.ErrInvalid, "%s: [%s] %s = %q: %v", e.where(), e.section, e.key, e.value, err)
}

// setField parses v into the field p points to. An empty value leaves an
// integer or boolean at its default.
func setField(p any, v string) error {
	switch f := p.(type) {
	case *string:
		*f = v
	case *int:
		if strings.TrimSpace(v) == "" {
			return nil
		}
		n, err := parseInt(v, strconv.IntSize)
		if err != nil {
			return err
		}
		*f = int(n)
	case *int64:
		if strings.TrimSpace(v) == "" {
			return nil
		}
		n, err := parseInt(v, 64)
		if err != nil {
			return err
		}
		*f = n
	case *bool:
		if strings.TrimSpace(v) == "" {
			return nil
		}
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		*f = b
	case *[]string:
		l, err := parseList(v)
		if err != nil {
			return err
		}
		*f = l
	case *map[string]string:
		m, err := parseDict(v)
		if err != nil {
			return err
		}
		*f = m
	default:
		return fmt.Errorf("option field of unexpected type %T", p)
	}
	return nil
}

// formatField renders a field's value for a $reference.
func formatField(p any) string {
	switch f := p.(type) {
	case *string:
		return *f
	case *int:
		return strconv.Itoa(*f)
	case *int64:
		return strconv.FormatInt(*f, 10)
	case *bool:
		if *f {
			return "True"
		}
		return "False"
	case *[]string:
		return strings.Join(*f, ",")
	case *map[string]string:
		return formatDict(*f)
	}
	return ""
}

// FormatIgnored returns the one startup warning that names the ignored
// options Load returned, or "" when there are none.
func FormatIgnored(ignored []string) string {
	if len(ignored) == 0 {
		return ""
	}
	return "ignoring options glance-go does not implement: " + strings.Join(ignored, ", ")
}

// Args holds the configuration flags given on the command line.
type Args struct {
	Files []string // --config-file, in order
	Dirs  []string // --config-dir, in order
}

// RegisterFlags defines the repeatable --config-file and --config-dir flags
// on fs and returns where their values are collected.
func RegisterFlags(fs *flag.FlagSet) *Args {
	a := &Args{}
	fs.Var((*listFlag)(&a.Files), "config-file", "path to a glance-api.conf; may be repeated, later files override earlier ones")
	fs.Var((*listFlag)(&a.Dirs), "config-dir", "directory whose *.conf files are read, in name order, after the --config-file files; may be repeated")
	return a
}

// listFlag is a flag.Value that appends every occurrence.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
