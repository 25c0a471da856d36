package inspect

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// vmdk recognises VMware disks. Two shapes reach it:
//
//   - a hosted sparse extent: a 512-byte little-endian header with the
//     magic "KDMV", the version (u32 at 4, 1 to 3), the capacity in sectors
//     (u64 at 12), the embedded descriptor's offset and length in sectors
//     (u64 at 28 and 36; qemu requires the offset to be 1) and the grain
//     directory's offset (u64 at 56). A directory offset of all ones means
//     the header is repeated in a footer at the end of the stream
//     (streamOptimized), which must then be valid;
//   - a descriptor file: text naming other files as extents. It is
//     detected (so that it is never taken for raw) but always refused, as
//     are descriptors of any createType other than monolithicSparse and
//     streamOptimized, which both live in a single sparse file.
//
// The descriptor is kept only until it is checked; it is at most 1 MiB.
type vmdk struct {
	step   int
	cur    region
	sparse bool   // the stream starts with a sparse header
	text   []byte // a descriptor file, as far as it is text
	hdr    vmdkHeader
	desc   vmdkDescriptor
	reason string // why the descriptor check fails, when it does
	tail   *ring  // the end of the stream, for the footer
}

const (
	vmdkStepHeader = iota
	vmdkStepText
	vmdkStepDesc
	vmdkStepTail // the descriptor is checked; only the end of the stream is wanted
	vmdkStepDone
)

const (
	vmdkMinHeader  = 64
	vmdkDescMax    = 1<<20 - 1 // qemu's bound on a descriptor
	vmdkGDAtEnd    = math.MaxUint64
	vmdkFooterLen  = 3 * 512 // footer marker, footer, end-of-stream marker
	vmdkMarkerFoot = 3
)

var vmdkMagic = []byte("KDMV")

// vmdkHeader holds the fields of a hosted sparse extent header.
type vmdkHeader struct {
	version  uint32
	capacity uint64 // sectors
	descSec  uint64
	descNum  uint64
	gdOffset uint64
}

func parseVMDKHeader(b []byte) vmdkHeader {
	return vmdkHeader{
		version:  binary.LittleEndian.Uint32(b[4:]),
		capacity: binary.LittleEndian.Uint64(b[12:]),
		descSec:  binary.LittleEndian.Uint64(b[28:]),
		descNum:  binary.LittleEndian.Uint64(b[36:]),
		gdOffset: binary.LittleEndian.Uint64(b[56:]),
	}
}

func newVMDK() *vmdk { return &vmdk{cur: at(0, vmdkMinHeader)} }

func (m *vmdk) feed(pos int64, p []byte) {
	for {
		switch m.step {
		case vmdkStepHeader, vmdkStepDesc:
			switch m.cur.fill(pos, p) {
			case needMore:
				return
			case missed:
				m.done("Descriptor not found")
				return
			}
			if m.step == vmdkStepHeader {
				m.header(m.cur.buf)
			} else {
				m.descriptor(m.cur.buf)
			}
		case vmdkStepText:
			m.addText(pos, p)
			return
		case vmdkStepTail:
			m.tail.add(pos, p)
			return
		default:
			return
		}
	}
}

// done stops the parser, failing the descriptor check with reason if it is
// not empty.
func (m *vmdk) done(reason string) {
	if reason != "" && m.reason == "" {
		m.reason = reason
	}
	m.step, m.cur = vmdkStepDone, region{}
}

// header reads the first 64 bytes.
func (m *vmdk) header(b []byte) {
	if !bytes.Equal(b[:4], vmdkMagic) {
		if isText(b) {
			m.step, m.text, m.cur = vmdkStepText, bytes.Clone(b), region{}
			return
		}
		m.step, m.cur = vmdkStepDone, region{}
		return
	}
	m.sparse = true
	m.hdr = parseVMDKHeader(b)
	if m.hdr.version < 1 || m.hdr.version > 3 {
		m.done(fmt.Sprintf("Unsupported sparse header version %d", m.hdr.version))
		return
	}
	if m.hdr.descSec != 1 {
		m.done("Wrong descriptor location")
		return
	}
	n := vmdkDescMax
	if m.hdr.descNum < vmdkDescMax/512 {
		n = int(m.hdr.descNum) * 512
	}
	m.step, m.cur = vmdkStepDesc, at(512, n)
	if n == 0 {
		m.descriptor(nil)
	}
}

// descriptor checks the embedded descriptor.
func (m *vmdk) descriptor(b []byte) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i] // the descriptor is padded with NULs
	}
	m.desc, m.reason = checkDescriptor(b)
	if m.reason != "" || m.hdr.gdOffset != vmdkGDAtEnd {
		m.done("")
		return
	}
	m.step, m.cur, m.tail = vmdkStepTail, region{}, newRing(vmdkFooterLen)
}

// addText extends a descriptor file with the text bytes of p; the first
// other byte, or the size bound, ends it.
func (m *vmdk) addText(pos int64, p []byte) {
	next := int64(len(m.text))
	if next < pos || next >= pos+int64(len(p)) {
		return
	}
	p = p[next-pos:]
	room := vmdkDescMax - len(m.text)
	end := min(len(p), room)
	stop := end == room
	for k, c := range p[:end] {
		if !textByte(c) {
			end, stop = k, true
			break
		}
	}
	if len(m.text)+end > cap(m.text) {
		grown := make([]byte, len(m.text), min(vmdkDescMax, max(2*cap(m.text), len(m.text)+end)))
		copy(grown, m.text)
		m.text = grown
	}
	m.text = append(m.text, p[:end]...)
	if stop {
		m.endText()
	}
}

// endText checks a descriptor file once it is whole.
func (m *vmdk) endText() {
	if m.step != vmdkStepText {
		return
	}
	m.desc, _ = checkDescriptor(m.text)
	m.text = nil
	m.done("Descriptor file without a sparse header")
}

func (m *vmdk) want() (int64, int) {
	switch m.step {
	case vmdkStepHeader, vmdkStepDesc:
		return m.cur.next(), 0
	case vmdkStepText:
		return int64(len(m.text)), 0
	case vmdkStepTail:
		return -1, vmdkFooterLen
	}
	return -1, 0
}

func (m *vmdk) retained() int {
	n := cap(m.cur.buf) + cap(m.text)
	if m.tail != nil {
		n += len(m.tail.buf)
	}
	return n
}

func (m *vmdk) verdict(total int64) verdict {
	switch {
	case m.step == vmdkStepText:
		// The stream ended inside the text: judge what there is, on a copy.
		c := *m
		c.text = bytes.Clone(m.text)
		c.endText()
		return c.verdict(total)
	case m.step == vmdkStepHeader && bytes.HasPrefix(m.cur.buf, vmdkMagic):
		// Shorter than a sparse header.
		return verdict{match: true}
	case m.step == vmdkStepHeader && len(m.cur.buf) > 0 && isText(m.cur.buf):
		// A stream of text shorter than a sparse header may still be a
		// descriptor file.
		c := vmdk{step: vmdkStepText, text: bytes.Clone(m.cur.buf)}
		c.endText()
		return c.verdict(total)
	}
	if !m.sparse {
		if m.step == vmdkStepHeader || !m.desc.found {
			return verdict{}
		}
	}
	v := verdict{match: true, complete: m.step == vmdkStepDone || m.step == vmdkStepTail}
	if !v.complete {
		return v
	}
	if m.reason != "" {
		v.fail("descriptor", m.reason)
	}
	if m.sparse && sparseType(m.desc.createType) && m.hdr.capacity <= math.MaxInt64/512 {
		v.size = int64(m.hdr.capacity) * 512
	}
	if m.step == vmdkStepTail {
		if reason := m.checkFooter(); reason != "" {
			v.fail("footer", reason)
		}
	}
	return v
}

// checkFooter checks the end of a streamOptimized stream: a footer marker,
// a footer that repeats the header (with the real grain directory offset),
// and an end-of-stream marker.
func (m *vmdk) checkFooter() string {
	t := m.tail.bytes()
	if len(t) < vmdkFooterLen {
		return "Footer not found"
	}
	marker, footer, eos := t[:512], t[512:1024], t[1024:]
	if !bytes.Equal(footer[:4], vmdkMagic) {
		return "Header and footer signature do not match"
	}
	f := parseVMDKHeader(footer)
	switch {
	case f.version != m.hdr.version:
		return "Header and footer versions do not match"
	case f.descSec != m.hdr.descSec || f.descNum != m.hdr.descNum:
		return "Footer specifies a different descriptor than header"
	case f.gdOffset == vmdkGDAtEnd:
		return "Footer indicates another footer"
	case binary.LittleEndian.Uint32(marker[8:]) != 0 ||
		binary.LittleEndian.Uint32(marker[12:]) != vmdkMarkerFoot || !allZero(marker[16:]):
		return "Footer marker is invalid"
	case !allZero(eos):
		return "End-of-stream marker is invalid"
	}
	return ""
}

// vmdkDescriptor is what a descriptor says.
type vmdkDescriptor struct {
	found      bool   // it names a createType
	createType string // lower case
}

// checkDescriptor reads a descriptor and returns why it is refused, or "".
// Every line must be blank, a comment, a ddb entry, a key=value header or
// an extent (RW, RDONLY or NOACCESS); extents may not name a path; there
// must be one; and createType must be a single-file sparse type.
func checkDescriptor(b []byte) (vmdkDescriptor, string) {
	for _, c := range b {
		if c >= 0x80 {
			return vmdkDescriptor{}, "Descriptor is not ASCII text"
		}
	}
	text := strings.ToLower(string(b))
	var d vmdkDescriptor
	// qemu finds createType by a plain search of the whole text, comments
	// included: every mention must agree.
	const key = `createtype="`
	for rest := text; ; {
		i := strings.Index(rest, key)
		if i < 0 {
			break
		}
		rest = rest[i+len(key):]
		value, _, ok := strings.Cut(rest, `"`)
		if !ok || len(value) >= 64 {
			return d, "Invalid createType"
		}
		if d.found && value != d.createType {
			return d, "Conflicting createType values"
		}
		d.found, d.createType = true, value
	}
	if !sparseType(d.createType) {
		return d, "Unsupported subformat"
	}
	extents := 0
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		first, _, _ := strings.Cut(line, " ")
		key, _, isHeader := strings.Cut(line, "=")
		switch {
		case line == "" || strings.HasPrefix(line, "#"), strings.HasPrefix(line, "ddb"):
		case isHeader && !strings.Contains(key, " "):
		case first == "rw" || first == "rdonly" || first == "noaccess":
			if strings.Contains(line, "/") {
				return d, "Invalid extent filenames found"
			}
			extents++
		default:
			return d, "Invalid VMDK descriptor data"
		}
	}
	if extents == 0 {
		return d, "No extents found"
	}
	return d, ""
}

// sparseType reports whether a (lower-case) createType keeps the whole
// disk in the one sparse file that holds the descriptor.
func sparseType(t string) bool { return t == "monolithicsparse" || t == "streamoptimized" }

// textByte reports whether c may appear in a descriptor file: printable
// ASCII or white space.
func textByte(c byte) bool {
	return c >= 0x20 && c < 0x7f || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isText(b []byte) bool {
	for _, c := range b {
		if !textByte(c) {
			return false
		}
	}
	return true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
