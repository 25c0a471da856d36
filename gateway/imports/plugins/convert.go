package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/glance-go/glance-go/domain"
	"github.com/glance-go/glance-go/proxies/inspect"
)

// Limits of the qemu-img info process, as Glance sets them
// (glance/async_/utils.py QEMU_IMG_PROC_LIMITS): 2 s of CPU and 1 GiB of
// address space, so that a hostile header cannot make it spin or balloon.
const (
	infoCPUSeconds   = 2
	infoAddressSpace = 1 << 30
)

// conversion is Glance's image_conversion plugin
// (glance/async_/flows/plugins/image_conversion.py). It checks that the
// staged data is what the image's disk_format says and passes the safety
// checks (with the inspector, then with qemu-img info), converts it with
// qemu-img to the output format, checks the result the same way, and
// records disk_format, container_format bare, size and virtual_size.
//
// An ISO image is never converted. Data already in the output format is
// left as it is, and only its virtual size is recorded. qemu-img runs
// without a shell, under the caller's context, with the source format given
// explicitly (-f) so that it never probes; qemu-img info also runs under
// prlimit, as in Glance, when prlimit is installed.
type conversion struct {
	target  string // output_format
	policy  inspect.Policy
	qemuImg string // path of qemu-img
	prlimit string // path of prlimit, "" when absent
}

func (c *conversion) Name() string { return NameConversion }

// qemuFormat is qemu-img's name for a Glance disk_format.
func qemuFormat(diskFormat string) string {
	if diskFormat == "vhd" {
		return "vpc"
	}
	return diskFormat
}

func (c *conversion) Run(ctx context.Context, s *Staged) (func(*domain.Meta) error, error) {
	if s.Meta.DiskFormat == nil {
		return nil, failf("Image has no disk_format to convert from")
	}
	source := *s.Meta.DiskFormat
	detected, err := c.inspectPath(s.Path)
	if err != nil {
		return nil, err
	}
	switch {
	case detected == inspect.ISO && source == "iso":
		return nil, nil // ISO images keep their format
	case detected == inspect.ISO:
		return nil, failf("Image has disallowed configuration")
	case string(detected) != source:
		return nil, failf("Image format mismatch")
	}

	info, err := c.info(ctx, source, s.Path)
	if err != nil {
		return nil, err
	}
	virtualSize := info.VirtualSize
	if source == c.target {
		return apply(s, func(m *domain.Meta) error {
			m.VirtualSize = domain.Ptr(virtualSize)
			return nil
		})
	}

	dest := s.Path + "." + c.target
	size, err := c.convert(ctx, source, s.Path, dest)
	if err != nil {
		return nil, err
	}
	target := c.target
	return apply(s, func(m *domain.Meta) error {
		m.DiskFormat = domain.Ptr(target)
		m.ContainerFormat = domain.Ptr("bare")
		m.Size = domain.Ptr(size)
		m.VirtualSize = domain.Ptr(virtualSize)
		return nil
	})
}

// inspectPath detects the file's format and runs its safety checks, as
// Glance's _inspect_path does; gpt counts as raw.
func (c *conversion) inspectPath(path string) (inspect.Format, error) {
	r, err := inspect.DetectFile(path)
	if err != nil {
		return "", failf("Unable to inspect image")
	}
	var se *inspect.SafetyError
	var fe *inspect.FormatError
	switch {
	case r.Unsafe == nil:
	case errors.As(r.Unsafe, &se):
		if se.Format != inspect.GPT || !c.gptNonFatal(se) {
			return "", failf("Image has disallowed configuration")
		}
	case errors.As(r.Unsafe, &fe):
		return "", failf("Image format detection failed")
	default:
		return "", failf("Unable to inspect image")
	}
	if r.Format == inspect.GPT {
		return inspect.Raw, nil
	}
	return r.Format, nil
}

// gptNonFatal reports whether every failed check is listed in
// gpt_safety_checks_nonfatal.
func (c *conversion) gptNonFatal(se *inspect.SafetyError) bool {
	for name := range se.Failures {
		if !slices.Contains(c.policy.GPTNonFatal, name) {
			return false
		}
	}
	return true
}

// qemuInfo is the part of qemu-img info --output=json the checks read.
type qemuInfo struct {
	Format          string  `json:"format"`
	VirtualSize     int64   `json:"virtual-size"`
	BackingFilename *string `json:"backing-filename"`
	FormatSpecific  struct {
		Data struct {
			DataFile   *string `json:"data-file"`
			CreateType *string `json:"create-type"`
		} `json:"data"`
	} `json:"format-specific"`
}

// info runs qemu-img info on the source and applies Glance's checks to
// what it reports.
func (c *conversion) info(ctx context.Context, source, path string) (qemuInfo, error) {
	args := []string{"info", "-f", qemuFormat(source), "--output=json", path}
	var cmd *exec.Cmd
	if c.prlimit != "" {
		cmd = exec.CommandContext(ctx, c.prlimit, append([]string{
			fmt.Sprintf("--cpu=%d", infoCPUSeconds), fmt.Sprintf("--as=%d", infoAddressSpace), "--", c.qemuImg}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, c.qemuImg, args...)
	}
	out, err := run(ctx, "qemu-img info", cmd)
	if err != nil {
		return qemuInfo{}, err
	}
	return checkInfo(out, source, c.policy)
}

// checkInfo applies Glance's checks to qemu-img info's JSON: the format
// must be the claimed one, there must be no backing file and no external
// data file, and a VMDK's create-type must be allowed.
func checkInfo(out []byte, source string, policy inspect.Policy) (qemuInfo, error) {
	var info qemuInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return info, domain.Errorf(domain.ErrUnavailable, "qemu-img info gave no JSON: %v", err)
	}
	if info.Format != qemuFormat(source) {
		return info, failf("Image metadata disagrees about format")
	}
	if info.BackingFilename != nil {
		return info, failf("QCOW images with backing files are not allowed")
	}
	if info.FormatSpecific.Data.DataFile != nil {
		return info, failf("QCOW images with data-file set are not allowed")
	}
	if info.Format == "vmdk" {
		ct := info.FormatSpecific.Data.CreateType
		switch {
		case ct == nil || *ct == "":
			return info, failf("Unable to determine VMDK create-type")
		case len(policy.VMDKAllowedTypes) == 0:
			return info, failf("Image is a VMDK, but no VMDK createType is specified")
		case !policy.VMDKTypeAllowed(*ct):
			return info, failf("Invalid VMDK create-type specified")
		}
	}
	return info, nil
}

// convert writes the source converted to the output format at dest,
// checks it, and renames it over src. It returns the new size. On failure
// dest is removed and src is untouched.
func (c *conversion) convert(ctx context.Context, source, src, dest string) (int64, error) {
	// A file left there by a run that died is of no use to anyone.
	if err := os.Remove(dest); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, internal(err)
	}
	ok := false
	defer func() {
		if !ok {
			os.Remove(dest)
		}
	}()
	cmd := exec.CommandContext(ctx, c.qemuImg, "convert", "-f", qemuFormat(source), "-O", qemuFormat(c.target), src, dest)
	if _, err := run(ctx, "qemu-img convert", cmd); err != nil {
		return 0, err
	}
	got, err := c.inspectPath(dest)
	if err != nil {
		return 0, err
	}
	if string(got) != c.target {
		return 0, failf("Converted image in unexpected format")
	}
	st, err := os.Stat(dest)
	if err != nil {
		return 0, internal(err)
	}
	if err := os.Rename(dest, src); err != nil {
		return 0, internal(err)
	}
	ok = true
	return st.Size(), nil
}

// run runs cmd, made with ctx, and returns its standard output. A failure,
// or anything on standard error, is an error carrying qemu-img's message,
// as Glance treats it.
func run(ctx context.Context, what string, cmd *exec.Cmd) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	msg := strings.TrimSpace(stderr.String())
	switch {
	case err != nil && msg != "":
		return nil, failf("%s", msg)
	case err != nil:
		return nil, domain.Errorf(domain.ErrUnavailable, "%s: %v", what, err)
	case msg != "":
		return nil, failf("%s", msg)
	}
	return stdout.Bytes(), nil
}

// lookPrlimit returns the path of prlimit, or "" when it is not installed.
func lookPrlimit() string {
	p, err := exec.LookPath("prlimit")
	if err != nil {
		return ""
	}
	return p
}
