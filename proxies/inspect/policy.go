package inspect

import (
	"errors"
	"slices"

	"github.com/glance-go/glance-go/domain"
)

// Policy is the [image_format] part of glance-api.conf that decides what is
// refused.
type Policy struct {
	RequireFormatMatch bool     // require_image_format_match (Glance default true)
	GPTNonFatal        []string // gpt_safety_checks_nonfatal (default ["mbr"])
	VMDKAllowedTypes   []string // vmdk_allowed_types (default streamOptimized, monolithicSparse)
}

// DefaultPolicy returns Glance's defaults: format match required, a failed
// MBR check of a GPT disk only logged, and the two single-file VMDK types.
func DefaultPolicy() Policy {
	return Policy{
		RequireFormatMatch: true,
		GPTNonFatal:        []string{"mbr"},
		VMDKAllowedTypes:   []string{"streamOptimized", "monolithicSparse"},
	}
}

// VMDKTypeAllowed reports whether a VMDK of the given create-type (as
// qemu-img info reports it) may be converted; Glance checks
// vmdk_allowed_types in its image_conversion plugin only. An empty list
// allows none.
func (p Policy) VMDKTypeAllowed(createType string) bool {
	return slices.Contains(p.VMDKAllowedTypes, createType)
}

// Glance's messages for refused data (glance/location.py).
const (
	msgMismatch     = "Image disk_format %s does not match stream data %s"
	msgSafety       = "Image failed safety checks"
	msgInspectError = "Image format inspection failed"
)

// Check applies Glance's rules (reference §10.4, glance/location.py set_data
// in HEAD) to a Result for an image's disk_format and container_format: only
// container "bare" is checked; a detected raw is accepted for formats the
// inspector does not know (ami, aki, ari, ploop); disk_format raw accepts
// anything; gpt counts as raw; a mismatch with RequireFormatMatch gives
// domain.Errorf(domain.ErrUnsupported, "Image disk_format %s does not match
// stream data %s"...), a safety failure gives ErrUnsupported "Image failed
// safety checks" (+ detail). It returns the virtual size to record (0 =
// leave unset).
//
// As in Glance, the format is settled first and its safety checks run next,
// whatever the disk_format: a qcow2 with a backing file is refused even when
// it is labelled raw. Several matching formats, or a stream that ends inside
// the detected format's headers, are refused with oslo.utils' message when
// RequireFormatMatch is set and let through with no virtual size otherwise;
// so is a mismatch. A safety failure is always refused, except failures of
// a GPT disk's checks that are all listed in GPTNonFatal. The error of a
// safety failure wraps the *SafetyError too, for the log.
func (p Policy) Check(r Result, diskFormat, containerFormat string) (virtualSize int64, err error) {
	if containerFormat != "bare" {
		return 0, nil
	}
	var fe *FormatError
	if errors.As(r.Unsafe, &fe) && fe.multiple() {
		return 0, p.formatError("%s", fe.Msg)
	}
	switch {
	case string(r.Format) == diskFormat:
		virtualSize = r.VirtualSize
	case r.Format == Raw && !Known(diskFormat):
		// Not a format we can inspect, and nothing we recognise either.
	case diskFormat == string(Raw):
		// Anything may be labelled raw; its size is then the data's length.
		virtualSize = r.ActualSize
	default:
		return 0, p.formatError(msgMismatch, diskFormat, r.Format)
	}
	var se *SafetyError
	switch {
	case r.Unsafe == nil:
	case errors.As(r.Unsafe, &fe):
		if err := p.formatError("%s", fe.Msg); err != nil {
			return 0, err
		}
	case errors.As(r.Unsafe, &se):
		if se.Format == GPT && p.nonFatal(se) {
			break
		}
		return 0, &refusal{err: domain.Errorf(domain.ErrUnsupported, msgSafety), cause: se}
	default:
		if err := p.formatError(msgInspectError); err != nil {
			return 0, err
		}
	}
	return virtualSize, nil
}

// formatError refuses the data with msg when the policy requires the format
// to match; otherwise the data goes through and the error is nil.
func (p Policy) formatError(format string, args ...any) error {
	if !p.RequireFormatMatch {
		return nil
	}
	return domain.Errorf(domain.ErrUnsupported, format, args...)
}

// nonFatal reports whether every failed check of se is one the policy lets
// through.
func (p Policy) nonFatal(se *SafetyError) bool {
	for name := range se.Failures {
		if !slices.Contains(p.GPTNonFatal, name) {
			return false
		}
	}
	return true
}

// refusal is the 415 of a failed safety check: its message is Glance's, and
// it also wraps the failed checks.
type refusal struct {
	err   error // *domain.Error
	cause error // *SafetyError
}

func (e *refusal) Error() string   { return e.err.Error() }
func (e *refusal) Unwrap() []error { return []error{e.err, e.cause} }
