package config

import (
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/glance-go/glance-go/domain"
)

// The legacy single store's driver options in [glance_store] beyond the
// first few of the options table. filesystem_store_datadirs, which may be
// written many times, is read by storeOptions.
func init() {
	options = append(options,
		option{"glance_store", "filesystem_store_metadata_file", nil, func(c *Config) any { return &c.Store.FilesystemStoreMetadataFile }},
		option{"glance_store", "filesystem_thin_provisioning", nil, func(c *Config) any { return &c.Store.FilesystemThinProvisioning }},
		option{"glance_store", "filesystem_store_download", nil, func(c *Config) any { return &c.Store.FilesystemStoreDownload }},
		option{"glance_store", "https_ca_certificates_file", nil, func(c *Config) any { return &c.Store.HTTPSCACertificatesFile }},
		option{"glance_store", "https_insecure", nil, func(c *Config) any { return &c.Store.HTTPSInsecure }},
		option{"glance_store", "http_proxy_information", nil, func(c *Config) any { return &c.Store.HTTPProxyInformation }},
		option{"glance_store", "http_store_timeout", nil, func(c *Config) any { return &c.Store.HTTPStoreTimeout }},
	)
}

// multiValued are the store options oslo.config reads as MultiStrOpt: each
// assignment, in every file, adds a value.
var multiValued = []string{"filesystem_store_datadirs"}

// storeOptions reads what the options table cannot hold: the multi-valued
// store options, and the order of enabled_backends.
func (l *loader) storeOptions(c *Config) error {
	dirs, err := l.multi("glance_store", "filesystem_store_datadirs")
	if err != nil {
		return err
	}
	if len(dirs) > 0 {
		if e, set := l.find("glance_store", "filesystem_store_datadir"); set {
			return domain.Errorf(domain.ErrInvalid, "%s: [glance_store] filesystem_store_datadir and filesystem_store_datadirs "+
				"are both set: specify either", e.where())
		}
		c.Store.FilesystemStoreDatadir = ""
		c.Store.FilesystemStoreDatadirs = dirs
	}
	for id := range c.BackendOptions {
		for _, name := range multiValued {
			vs, err := l.multi(normSection(id), name)
			if err != nil {
				return err
			}
			if len(vs) == 0 {
				continue
			}
			if c.BackendMultiOptions[id] == nil {
				c.BackendMultiOptions[id] = map[string][]string{}
			}
			c.BackendMultiOptions[id][name] = vs
		}
	}
	if e, ok := c.origin["DEFAULT enabled_backends"]; ok {
		v, err := interpolate(e.value, func(name string) (string, error) { return l.ref(defaultSection, name) })
		if err != nil {
			return valueError(e, err)
		}
		for _, pair := range strings.Split(v, ",") {
			if id, _, ok := strings.Cut(pair, ":"); ok && strings.TrimSpace(id) != "" {
				c.EnabledBackendOrder = append(c.EnabledBackendOrder, strings.TrimSpace(id))
			}
		}
	}
	return nil
}

// multi returns every value of a multi-valued option, file after file in
// the order written, with $references resolved.
func (l *loader) multi(section, key string) ([]string, error) {
	var out []string
	for _, f := range l.files {
		for _, e := range f.order {
			if e.section != section || e.key != key {
				continue
			}
			v, err := interpolate(e.value, func(name string) (string, error) { return l.ref(section, name) })
			if err != nil {
				return nil, valueError(e, err)
			}
			l.referenced[section+" "+key] = true
			out = append(out, v)
		}
	}
	return out, nil
}

// BackendIDs returns the ids of EnabledBackends in the order
// enabled_backends lists them, or sorted when that order is unknown (a
// Config built in code).
func (c *Config) BackendIDs() []string {
	seen := map[string]bool{}
	var ids []string
	for _, id := range c.EnabledBackendOrder {
		if _, ok := c.EnabledBackends[id]; ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == len(c.EnabledBackends) {
		return ids
	}
	ids = ids[:0]
	for id := range c.EnabledBackends {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// StagingDir returns the directory of node_staging_uri, the single-store
// staging area.
func (c *Config) StagingDir() string {
	u, err := url.Parse(c.NodeStagingURI)
	if err != nil || u.Scheme != "file" {
		return ""
	}
	return u.Path
}

// embeddedStagingURI is the embedded configuration's node_staging_uri:
// ./data/staging, made absolute as node_staging_uri must be.
func embeddedStagingURI() string {
	dir, err := filepath.Abs(filepath.Join("data", "staging"))
	if err != nil {
		return "file:///tmp/staging/"
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir) + "/"}).String()
}
