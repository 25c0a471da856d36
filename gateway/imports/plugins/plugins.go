// Package plugins holds the import plugins of Glance's interoperable image
// import (glance/async_/flows/plugins): image_conversion, image_decompression,
// inject_image_metadata and no_op, configured by [image_import_opts]
// image_import_plugins, [image_conversion] output_format and
// [inject_metadata_properties].
//
// The import flow runs the configured plugins in order on the image's data
// in staging, after the data is there and before it goes to the stores. Each
// plugin may replace the staged file and returns the change it makes to the
// image record; the flow applies it. A plugin that fails fails the import.
//
// Unlike Glance, which skips a plugin name it cannot load, an unknown name
// is an error at start.
package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/inspect"
)

// Staged is an image's data in staging, handed to each plugin in turn.
type Staged struct {
	// Path is the staged file. A plugin may replace it (writing a new file
	// beside it and renaming it over Path) but leaves nothing else behind.
	Path string
	// Meta is the image record as the plugin sees it. The plugins of this
	// package apply their change to it as well as returning it, so that
	// the next plugin sees the formats and size a previous one set.
	Meta domain.Meta
	// Caller is who asked for the import.
	Caller *domain.Caller
}

// Plugin transforms staged data; it returns the change to apply to the image
// record (nil: none). A plugin may replace the file at Path (write a new file
// beside it and rename over it).
type Plugin interface {
	// Name is the plugin's name in image_import_plugins.
	Name() string
	// Run processes s. On error the staged file is as it was, or gone
	// only if it was replaced whole, and no other file is left behind.
	Run(ctx context.Context, s *Staged) (func(*domain.Meta) error, error)
}

// Config is the configuration the plugins read.
type Config struct {
	// OutputFormat is [image_conversion] output_format: qcow2, raw (the
	// default, when empty) or vmdk.
	OutputFormat string
	// Inject is [inject_metadata_properties] inject.
	Inject map[string]string
	// IgnoreUserRoles is [inject_metadata_properties] ignore_user_roles:
	// callers with one of these roles get no injected properties. nil
	// means Glance's default, admin; an empty list ignores nobody.
	IgnoreUserRoles []string
	// Formats is the [image_format] policy: the non-fatal GPT checks and
	// the VMDK create-types image_conversion accepts.
	Formats inspect.Policy
	// QemuImg is the qemu-img program: a path, or a name looked up in
	// PATH; "" means "qemu-img".
	QemuImg string
}

// Plugin names, as image_import_plugins lists them.
const (
	NameNoOp          = "no_op"
	NameConversion    = "image_conversion"
	NameDecompression = "image_decompression"
	NameInject        = "inject_image_metadata"
)

// Names returns the names Load knows, sorted.
func Names() []string {
	return []string{NameConversion, NameDecompression, NameInject, NameNoOp}
}

// outputFormats are the choices of [image_conversion] output_format.
var outputFormats = []string{"qcow2", "raw", "vmdk"}

// Load builds the configured plugins in order; an unknown name is an error at start.
// So are an output_format qemu-img is not asked to write, and, when
// image_conversion is configured, a qemu-img that cannot be found.
func Load(names []string, cfg Config) ([]Plugin, error) {
	if cfg.OutputFormat == "" {
		cfg.OutputFormat = "raw"
	}
	if cfg.IgnoreUserRoles == nil {
		cfg.IgnoreUserRoles = []string{"admin"}
	}
	if cfg.QemuImg == "" {
		cfg.QemuImg = "qemu-img"
	}
	out := make([]Plugin, 0, len(names))
	for _, name := range names {
		switch name {
		case NameNoOp:
			out = append(out, noOp{})
		case NameConversion:
			if !slices.Contains(outputFormats, cfg.OutputFormat) {
				return nil, domain.Errorf(domain.ErrInvalid, "[image_conversion] output_format %q is not one of %s",
					cfg.OutputFormat, strings.Join(outputFormats, ", "))
			}
			qemu, err := exec.LookPath(cfg.QemuImg)
			if err != nil {
				return nil, domain.Errorf(domain.ErrInvalid, "the %s import plugin needs qemu-img: %v", name, err)
			}
			out = append(out, &conversion{target: cfg.OutputFormat, policy: cfg.Formats, qemuImg: qemu, prlimit: lookPrlimit()})
		case NameDecompression:
			out = append(out, decompression{})
		case NameInject:
			out = append(out, &inject{props: cfg.Inject, ignore: cfg.IgnoreUserRoles})
		default:
			return nil, domain.Errorf(domain.ErrInvalid, "[image_import_opts] image_import_plugins: unknown plugin %q (known: %s)",
				name, strings.Join(Names(), ", "))
		}
	}
	return out, nil
}

// noOp is Glance's no_op plugin: it does nothing.
type noOp struct{}

func (noOp) Name() string { return NameNoOp }

func (noOp) Run(context.Context, *Staged) (func(*domain.Meta) error, error) { return nil, nil }

// failf is a plugin's refusal of the data: the import fails with msg.
func failf(format string, args ...any) error {
	return domain.Errorf(domain.ErrUnsupported, format, args...)
}

// apply applies change to s.Meta and returns it.
func apply(s *Staged, change func(*domain.Meta) error) (func(*domain.Meta) error, error) {
	if err := change(&s.Meta); err != nil {
		return nil, err
	}
	return change, nil
}

// replace writes the output of fill to a new file beside path and renames
// it over path. On any error the new file is removed and path is untouched.
// It returns the new file's size.
func replace(path, suffix string, fill func(w io.Writer) error) (int64, error) {
	// A file left there by a run that died is of no use to anyone.
	if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	f, err := os.OpenFile(path+suffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("staging: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	ok = true
	syncDir(filepath.Dir(path))
	return st.Size(), nil
}

// syncDir makes a rename in dir durable; errors only cost durability.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// internal turns an error that is not a domain error into one: the staging
// area or a helper program failed, not the data.
func internal(err error) error {
	var de *domain.Error
	if err == nil || errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return domain.Errorf(domain.ErrUnavailable, "%v", err)
}
