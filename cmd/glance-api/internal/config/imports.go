package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/glance-go/glance-go/gateway/imports/plugins"
	"github.com/glance-go/glance-go/gateway/imports/webdl"
	"github.com/glance-go/glance-go/proxies/inspect"
)

// ImportsConfig holds the options of web-download filtering and of the
// import plugins. Glance reads them from glance-image-import.conf as well as
// glance-api.conf (see withImportConf).
type ImportsConfig struct {
	// [import_filtering_opts]: for each pair a non-empty allowed list
	// wins over the disallowed one.
	AllowedSchemes    []string // allowed_schemes
	DisallowedSchemes []string // disallowed_schemes
	AllowedHosts      []string // allowed_hosts
	DisallowedHosts   []string // disallowed_hosts
	// AllowedPorts and DisallowedPorts are allowed_ports and
	// disallowed_ports as written; checkImports makes sure each is a port
	// number, and WebDownload returns them as numbers.
	AllowedPorts    []string
	DisallowedPorts []string

	Plugins         []string          // [image_import_opts] image_import_plugins
	OutputFormat    string            // [image_conversion] output_format
	Inject          map[string]string // [inject_metadata_properties] inject
	IgnoreUserRoles []string          // [inject_metadata_properties] ignore_user_roles
}

// importConfName is the file Glance reads beside glance-api.conf for the
// import options.
const importConfName = "glance-image-import.conf"

// defaultImports returns Glance's defaults for ImportsConfig.
func defaultImports() ImportsConfig {
	return ImportsConfig{
		AllowedSchemes:    []string{"http", "https"},
		DisallowedSchemes: []string{},
		AllowedHosts:      []string{},
		DisallowedHosts:   []string{},
		AllowedPorts:      []string{"80", "443"},
		DisallowedPorts:   []string{},
		Plugins:           []string{},
		OutputFormat:      "raw",
		Inject:            map[string]string{},
		IgnoreUserRoles:   []string{"admin"},
	}
}

// withImportConf returns files with, before each glance-api.conf among
// them, the glance-image-import.conf of the same directory when there is
// one and it is not named already. Glance's WSGI application reads the two
// from its configuration directory in that order, so glance-api.conf wins
// where both set an option.
func withImportConf(files []string) []string {
	var out []string
	for _, f := range files {
		if filepath.Base(f) == "glance-api.conf" {
			imp := filepath.Join(filepath.Dir(f), importConfName)
			named := slices.ContainsFunc(slices.Concat(out, files), func(g string) bool { return filepath.Clean(g) == imp })
			if st, err := os.Stat(imp); err == nil && st.Mode().IsRegular() && !named {
				out = append(out, imp)
			}
		}
		out = append(out, f)
	}
	return out
}

// checkImports checks the import options one by one.
func (c *Config) checkImports() error {
	im := c.Imports
	checks := []struct {
		option string
		value  any
		bad    string
	}{
		{"allowed_schemes", im.AllowedSchemes, checkChoices(im.AllowedSchemes, nil)},
		{"disallowed_schemes", im.DisallowedSchemes, checkChoices(im.DisallowedSchemes, nil)},
		{"allowed_hosts", im.AllowedHosts, checkHosts(im.AllowedHosts)},
		{"disallowed_hosts", im.DisallowedHosts, checkHosts(im.DisallowedHosts)},
		{"allowed_ports", im.AllowedPorts, errText(parsePorts(im.AllowedPorts))},
		{"disallowed_ports", im.DisallowedPorts, errText(parsePorts(im.DisallowedPorts))},
	}
	for _, ck := range checks {
		if ck.bad != "" {
			return c.fieldError("import_filtering_opts", ck.option, ck.value, "%s", ck.bad)
		}
	}
	known := map[string]bool{}
	for _, n := range plugins.Names() {
		known[n] = true
	}
	if bad := checkChoices(im.Plugins, known); bad != "" {
		return c.fieldError("image_import_opts", "image_import_plugins", im.Plugins, "%s", bad)
	}
	if bad := oneOf(im.OutputFormat, "qcow2", "raw", "vmdk"); bad != "" {
		return c.fieldError("image_conversion", "output_format", im.OutputFormat, "%s", bad)
	}
	return nil
}

func checkHosts(hosts []string) string {
	for _, h := range hosts {
		if bad := checkHost(h); bad != "" {
			return fmt.Sprintf("%q: %s", h, bad)
		}
	}
	return ""
}

// parsePorts reads a list of port numbers, 1 to 65535.
func parsePorts(items []string) ([]int, error) {
	out := make([]int, 0, len(items))
	for _, it := range items {
		n, err := strconv.Atoi(it)
		if err != nil || n < 1 || n > 65535 {
			return nil, errors.New(strconv.Quote(it) + " is not a port number (1 to 65535)")
		}
		out = append(out, n)
	}
	return out, nil
}

// WebDownload returns the [import_filtering_opts] as webdl.Options, with
// webdl's defaults for what Glance has no option for (timeout, redirects).
// The ports were checked by Load.
func (c *Config) WebDownload() webdl.Options {
	o := webdl.DefaultOptions()
	o.AllowedSchemes = c.Imports.AllowedSchemes
	o.DisallowedSchemes = c.Imports.DisallowedSchemes
	o.AllowedHosts = c.Imports.AllowedHosts
	o.DisallowedHosts = c.Imports.DisallowedHosts
	o.AllowedPorts, _ = parsePorts(c.Imports.AllowedPorts)
	o.DisallowedPorts, _ = parsePorts(c.Imports.DisallowedPorts)
	return o
}

// ImportPlugins returns the configuration of the import plugins; the
// plugins to run are c.Imports.Plugins, for plugins.Load.
func (c *Config) ImportPlugins() plugins.Config {
	return plugins.Config{
		OutputFormat:    c.Imports.OutputFormat,
		Inject:          c.Imports.Inject,
		IgnoreUserRoles: c.Imports.IgnoreUserRoles,
		Formats: inspect.Policy{
			RequireFormatMatch: c.ImageFormat.RequireImageFormatMatch,
			GPTNonFatal:        c.ImageFormat.GPTSafetyChecksNonfatal,
			VMDKAllowedTypes:   c.ImageFormat.VMDKAllowedTypes,
		},
	}
}
