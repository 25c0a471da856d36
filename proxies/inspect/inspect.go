package inspect

import (
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
)

// Format names a disk image format the way Glance's disk_format and
// qemu-img do (qemu-img calls vhd "vpc").
type Format string

// The formats an Inspector recognises. Raw is what a stream is when no other
// format matches.
const (
	Raw   Format = "raw"
	QCOW2 Format = "qcow2"
	QED   Format = "qed"
	VHD   Format = "vhd"
	VHDX  Format = "vhdx"
	VMDK  Format = "vmdk"
	VDI   Format = "vdi"
	ISO   Format = "iso"
	GPT   Format = "gpt"
	LUKS  Format = "luks"
)

// formats lists the non-raw formats in the order their parsers run and in
// which several matches are reported.
var formats = []Format{QCOW2, QED, VHD, VHDX, VMDK, VDI, ISO, GPT, LUKS}

// Known reports whether format is one the inspector recognises (raw
// included); Glance lets raw data through unchecked only for disk formats
// it cannot inspect, such as ami, aki, ari and ploop.
func Known(format string) bool {
	return Format(format) == Raw || slices.Contains(formats, Format(format))
}

// Result is what the stream turned out to be, valid once all data is
// written.
type Result struct {
	Format      Format // the detected format; Raw when nothing else matched
	VirtualSize int64  // the disk's virtual size; for raw (and gpt) the stream length
	ActualSize  int64  // bytes seen
	// Unsafe is non-nil when a safety check of the detected format failed
	// (*SafetyError naming the failed checks), or when several non-raw
	// formats matched (iso+gpt is tolerated and reported as iso).
	// It is a *FormatError when several formats matched (VirtualSize is
	// then 0), or when the stream ended before the detected format's checks
	// had the data they need.
	Unsafe error
}

// SafetyError reports the safety checks of the detected format that failed.
type SafetyError struct {
	Format   Format
	Failures map[string]string // check name → reason
}

// Error lists the failed checks with their reasons, in name order.
func (e *SafetyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s safety checks failed:", e.Format)
	for i, name := range slices.Sorted(maps.Keys(e.Failures)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s (%s)", name, e.Failures[name])
	}
	return b.String()
}

// FormatError reports a stream whose format cannot be settled: several
// formats matched, or the stream ended inside the detected format's headers.
// Its message is the one Glance shows for the same case.
type FormatError struct {
	Formats []Format // the formats that matched
	Msg     string
}

// Error returns the message.
func (e *FormatError) Error() string { return e.Msg }

// multiple reports whether the error is about several matching formats.
func (e *FormatError) multiple() bool { return len(e.Formats) > 1 }

// Messages of oslo.utils' ImageFormatError that Glance passes to the client.
const (
	msgMultiple   = "Multiple formats detected: %s"
	msgIncomplete = "Incomplete file cannot be safety checked"
)

// maxOffset bounds every offset read from image data, so that offset
// arithmetic cannot overflow; no real image is near 2^56 bytes.
const maxOffset = 1 << 56

// parser recognises one format. It sees the stream through feed and keeps
// what it needs of it.
type parser interface {
	// feed presents p, the stream's bytes from offset pos. The parser copies
	// what it keeps; p is not retained.
	feed(pos int64, p []byte)
	// want returns the offset of the next byte the parser needs (-1 when it
	// needs none), and how many bytes of the end of the stream it needs.
	want() (off int64, tail int)
	// verdict judges the stream, total bytes long, as seen so far.
	verdict(total int64) verdict
	// retained returns the bytes of stream data the parser holds.
	retained() int
}

// verdict is one parser's judgement of a stream.
type verdict struct {
	match    bool              // the stream carries the format's signature
	complete bool              // the checks had every byte they need
	size     int64             // virtual size, 0 when unknown
	failures map[string]string // failed safety checks: name → reason
}

// fail records a failed safety check.
func (v *verdict) fail(check, reason string) {
	if v.failures == nil {
		v.failures = map[string]string{}
	}
	v.failures[check] = reason
}

// Inspector watches a stream as it flows by (it is an io.Writer that never
// fails and never blocks for long); it keeps only the bounded regions each
// format needs (headers, tables, a VMDK descriptor, the last bytes for a
// streamOptimized footer), so memory stays small (a few MiB at most)
// whatever the image size, and a Write past those regions costs O(1).
//
// An Inspector is not safe for concurrent use.
type Inspector struct {
	n       int64
	parsers []parser // one per entry of formats, same order
}

// New returns an Inspector that has seen no data.
func New() *Inspector { return newInspector(true) }

// newInspector returns an Inspector; nest tells whether its LUKS parser may
// look into an unencrypted payload with an Inspector of its own (one level
// only).
func newInspector(nest bool) *Inspector {
	return &Inspector{parsers: []parser{
		newQCOW2(), newQED(), newVHD(), newVHDX(), newVMDK(), newVDI(), newISO(), newGPT(), newLUKS(nest),
	}}
}

// Write presents the next bytes of the stream. It never fails.
func (i *Inspector) Write(p []byte) (int, error) {
	i.feed(i.n, p)
	return len(p), nil
}

// feed presents p, the stream's bytes from offset pos (pos ≥ the bytes
// already seen; those in between are skipped).
func (i *Inspector) feed(pos int64, p []byte) {
	for _, ps := range i.parsers {
		offer(ps, pos, p)
	}
	i.n = pos + int64(len(p))
}

// offer feeds ps the stream's bytes p from offset pos if it wants any of
// them: past the regions a parser needs, a Write costs it one comparison.
func offer(ps parser, pos int64, p []byte) {
	if off, tail := ps.want(); tail > 0 || (off >= 0 && off < pos+int64(len(p))) {
		ps.feed(pos, p)
	}
}

// skip moves the stream position n bytes on without data: the bytes are
// counted but no parser sees them. Callers skip only bytes no parser wants.
func (i *Inspector) skip(n int64) { i.n += n }

// want returns the offset of the first byte any parser still needs (-1 when
// none does) and the most bytes of the stream's end any parser needs.
func (i *Inspector) want() (next int64, tail int) {
	next = -1
	for _, ps := range i.parsers {
		off, t := ps.want()
		if off >= 0 && (next < 0 || off < next) {
			next = off
		}
		tail = max(tail, t)
	}
	return next, tail
}

// next returns the offset of the first byte any parser still needs in a
// stream of size bytes, from the current position on; size when none is.
func (i *Inspector) next(size int64) int64 {
	next := size
	off, tail := i.want()
	if off >= 0 {
		next = min(next, off)
	}
	if tail > 0 {
		next = min(next, size-int64(tail))
	}
	return max(next, i.n)
}

// retained returns the bytes of stream data the Inspector holds.
func (i *Inspector) retained() int {
	n := 0
	for _, ps := range i.parsers {
		n += ps.retained()
	}
	return n
}

// Result is what the stream turned out to be, valid once all data is
// written. It may be called more than once.
func (i *Inspector) Result() Result { return i.result(i.n) }

// result judges a stream of total bytes.
func (i *Inspector) result(total int64) Result {
	r := Result{Format: Raw, VirtualSize: total, ActualSize: total}
	var matched []Format
	var verdicts []verdict
	for k, ps := range i.parsers {
		if v := ps.verdict(total); v.match {
			matched = append(matched, formats[k])
			verdicts = append(verdicts, v)
		}
	}
	switch {
	case len(matched) == 0:
		return r
	case len(matched) == 2 && matched[0] == ISO && matched[1] == GPT:
		// A bootable ISO may carry an MBR or a GPT in its system area.
		matched, verdicts = matched[:1], verdicts[:1]
	case len(matched) > 1:
		names := make([]string, len(matched))
		for k, f := range matched {
			names[k] = string(f)
		}
		r.Format, r.VirtualSize = matched[0], 0
		r.Unsafe = &FormatError{Formats: matched, Msg: fmt.Sprintf(msgMultiple, strings.Join(names, ","))}
		return r
	}
	v := verdicts[0]
	r.Format, r.VirtualSize = matched[0], v.size
	switch {
	case !v.complete:
		r.Unsafe = &FormatError{Formats: matched, Msg: msgIncomplete}
	case len(v.failures) > 0:
		r.Unsafe = &SafetyError{Format: r.Format, Failures: v.failures}
	}
	return r
}

// DetectFile inspects a file on disk (used by the image_conversion plugin
// before/after qemu-img). It reads only the parts of the file the parsers
// need; the Result's ActualSize is the file's size.
func DetectFile(path string) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Result{}, err
	}
	if !st.Mode().IsRegular() {
		i := New()
		if _, err := io.Copy(i, f); err != nil {
			return Result{}, err
		}
		return i.Result(), nil
	}
	return detect(f, st.Size())
}

// detect inspects size bytes of r, reading only what the parsers want.
func detect(r io.ReaderAt, size int64) (Result, error) {
	i := New()
	buf := make([]byte, 64<<10)
	for i.n < size {
		if next := i.next(size); next > i.n {
			i.skip(next - i.n)
			continue
		}
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-i.n)], i.n)
		i.Write(buf[:n])
		if err == io.EOF {
			break // the file shrank while we read it
		}
		if err != nil {
			return Result{}, err
		}
	}
	return i.Result(), nil
}

// region is a run of n stream bytes from offset off that a parser copies as
// they flow by.
type region struct {
	off int64
	n   int
	buf []byte
}

// at returns a region of n bytes at off.
func at(off int64, n int) region { return region{off: off, n: n} }

// fillState is how far a region got.
type fillState int

const (
	needMore fillState = iota // still waiting for bytes
	full                      // every byte captured
	missed                    // the bytes went by before the region was set
)

// fill copies into r the bytes of p (the stream's bytes from offset pos)
// that r still lacks.
func (r *region) fill(pos int64, p []byte) fillState {
	have := len(r.buf)
	if have >= r.n {
		return full
	}
	next := r.off + int64(have)
	end := pos + int64(len(p))
	switch {
	case next < pos:
		return missed
	case next >= end:
		return needMore
	}
	if r.buf == nil {
		r.buf = make([]byte, 0, r.n)
	}
	from := next - pos
	k := min(int64(r.n-have), end-next)
	r.buf = append(r.buf, p[from:from+k]...)
	if len(r.buf) == r.n {
		return full
	}
	return needMore
}

// next returns the offset of the next byte r needs, or -1 when it is full.
func (r *region) next() int64 {
	if len(r.buf) >= r.n {
		return -1
	}
	return r.off + int64(len(r.buf))
}

// ring keeps the last len(buf) bytes written to it.
type ring struct {
	buf []byte
	w   int   // where the next byte goes
	n   int   // bytes held, up to len(buf)
	end int64 // stream offset just after the last byte held
}

func newRing(n int) *ring { return &ring{buf: make([]byte, n)} }

// add records p, the stream's bytes from offset pos. Bytes that do not
// follow the ones held replace them.
func (r *ring) add(pos int64, p []byte) {
	if pos != r.end {
		r.w, r.n = 0, 0
	}
	r.end = pos + int64(len(p))
	if len(p) >= len(r.buf) {
		copy(r.buf, p[len(p)-len(r.buf):])
		r.w, r.n = 0, len(r.buf)
		return
	}
	r.n = min(r.n+len(p), len(r.buf))
	for len(p) > 0 {
		c := copy(r.buf[r.w:], p)
		r.w = (r.w + c) % len(r.buf)
		p = p[c:]
	}
}

// bytes returns the bytes held, oldest first.
func (r *ring) bytes() []byte {
	if r.n < len(r.buf) {
		return r.buf[:r.n]
	}
	return append(slices.Clone(r.buf[r.w:]), r.buf[:r.w]...)
}

// size64 converts an unsigned size read from a header, 0 when it does not
// fit an int64.
func size64(u uint64) int64 {
	if u > math.MaxInt64 {
		return 0
	}
	return int64(u)
}
