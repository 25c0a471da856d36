package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// block captures one region, then hands it to a parse function and lets the
// bytes go. Most formats need nothing more than their first sector.
type block struct {
	r    region
	done bool // parsed (or missed): nothing more is wanted
}

// take feeds the region and calls parse once, when it is full.
func (b *block) take(pos int64, p []byte, parse func([]byte)) {
	if b.done {
		return
	}
	switch b.r.fill(pos, p) {
	case full:
		parse(b.r.buf)
		b.r.buf, b.done = nil, true
	case missed:
		b.r.buf, b.done = nil, true
	}
}

func (b *block) want() int64 {
	if b.done {
		return -1
	}
	return b.r.next()
}

func (b *block) retained() int { return cap(b.r.buf) }

// qcow2 recognises QEMU copy-on-write images, version 2 and 3 (and the
// obsolete version 1, which fails its checks).
//
// The big-endian header starts with the magic "QFI\xfb", the version (u32 at
// 4), the backing file's name offset (u64 at 8, 0 when there is none) and
// the virtual size in bytes (u64 at 24). Version 3 adds the incompatible
// feature bits (u64 at 72): bit 0 dirty, 1 corrupt, 2 external data file,
// 3 compression type; anything higher is unknown to the checks.
type qcow2 struct {
	b        block
	magic    bool
	version  uint32
	backing  uint64
	size     uint64
	incompat uint64
}

const (
	qcow2DataFile     = 1 << 2
	qcow2KnownIncompt = 1<<4 - 1
)

func newQCOW2() *qcow2 { return &qcow2{b: block{r: at(0, 512)}} }

func (q *qcow2) feed(pos int64, p []byte) { q.b.take(pos, p, q.parse) }

func (q *qcow2) parse(h []byte) {
	q.magic = bytes.Equal(h[:4], []byte("QFI\xfb"))
	q.version = binary.BigEndian.Uint32(h[4:])
	q.backing = binary.BigEndian.Uint64(h[8:])
	q.size = binary.BigEndian.Uint64(h[24:])
	q.incompat = binary.BigEndian.Uint64(h[72:])
}

func (q *qcow2) want() (int64, int) { return q.b.want(), 0 }
func (q *qcow2) retained() int      { return q.b.retained() }

func (q *qcow2) verdict(int64) verdict {
	if !q.magic {
		return verdict{}
	}
	v := verdict{match: true, complete: true, size: size64(q.size)}
	if q.backing != 0 {
		v.fail("backing_file", "Image has a backing file")
	}
	switch {
	case q.version == 2:
		// Version 2 has no feature bits: bytes 72 on are header extensions.
	case q.version != 3:
		v.fail("unknown_features", "Unsupported qcow2 version")
	case q.incompat&^qcow2KnownIncompt != 0:
		v.fail("unknown_features", "Unknown QCOW2 features found")
	}
	if q.version >= 3 && q.incompat&qcow2DataFile != 0 {
		v.fail("data_file", "Image has data_file set")
	}
	return v
}

// qed recognises QEMU enhanced disk images, which Glance never accepts.
// The little-endian header has the magic "QED\0" and the virtual size (u64
// at 48).
type qed struct {
	b     block
	magic bool
	size  uint64
}

func newQED() *qed { return &qed{b: block{r: at(0, 512)}} }

func (q *qed) feed(pos int64, p []byte) {
	q.b.take(pos, p, func(h []byte) {
		q.magic = bytes.Equal(h[:4], []byte("QED\x00"))
		q.size = binary.LittleEndian.Uint64(h[48:])
	})
}

func (q *qed) want() (int64, int) { return q.b.want(), 0 }
func (q *qed) retained() int      { return q.b.retained() }

func (q *qed) verdict(int64) verdict {
	if !q.magic {
		return verdict{}
	}
	v := verdict{match: true, complete: true, size: size64(q.size)}
	v.fail("banned", "This file format is not allowed")
	return v
}

// vdi recognises VirtualBox disk images: the little-endian signature
// 0xbeda107f at 0x40 and the virtual size (u64 at 0x170).
type vdi struct {
	b     block
	magic bool
	size  uint64
}

func newVDI() *vdi { return &vdi{b: block{r: at(0, 512)}} }

func (d *vdi) feed(pos int64, p []byte) {
	d.b.take(pos, p, func(h []byte) {
		d.magic = binary.LittleEndian.Uint32(h[0x40:]) == 0xbeda107f
		d.size = binary.LittleEndian.Uint64(h[0x170:])
	})
}

func (d *vdi) want() (int64, int) { return d.b.want(), 0 }
func (d *vdi) retained() int      { return d.b.retained() }

func (d *vdi) verdict(int64) verdict {
	if !d.magic {
		return verdict{}
	}
	return verdict{match: true, complete: true, size: size64(d.size)}
}

// luks recognises LUKS encrypted volumes. Only version 1 is accepted, as
// qemu reads no other. The big-endian LUKS1 header is 592 bytes: magic
// "LUKS\xba\xbe", version (u16 at 6), cipher name (32 bytes at 8), cipher
// mode and hash, and the payload offset in 512-byte sectors (u32 at 104);
// the eight key slots follow. The virtual size is what follows the payload
// offset.
//
// An encrypted payload is not looked into: that would take the passphrase.
// A payload under the null cipher is plain data, so an Inspector of its own
// reads it, and the safety checks of what it finds there count as the
// volume's own ("inner_" and the check's name).
type luks struct {
	b       block
	prefix  []byte // the first 6 bytes, kept when the header is cut short
	parsed  bool
	version uint16
	payload uint32
	nest    bool       // an Inspector may read a plain payload
	inner   *Inspector // reads the plain payload
}

const luksHeaderLen = 592

var luksMagic = []byte("LUKS\xba\xbe")

func newLUKS(nest bool) *luks { return &luks{b: block{r: at(0, luksHeaderLen)}, nest: nest} }

func (l *luks) feed(pos int64, p []byte) {
	l.b.take(pos, p, func(h []byte) {
		l.prefix = bytes.Clone(h[:len(luksMagic)])
		l.parsed = true
		l.version = binary.BigEndian.Uint16(h[6:])
		l.payload = binary.BigEndian.Uint32(h[104:])
		cipher, _, _ := bytes.Cut(h[8:40], []byte{0})
		if l.nest && string(cipher) == "cipher_null" && l.payloadOff() >= luksHeaderLen {
			l.inner = newInspector(false)
		}
	})
	if l.prefix == nil && len(l.b.r.buf) >= len(luksMagic) {
		l.prefix = bytes.Clone(l.b.r.buf[:len(luksMagic)])
	}
	if l.inner != nil {
		end, off := pos+int64(len(p)), l.payloadOff()
		if start := max(pos, off); start < end {
			l.inner.feed(start-off, p[start-pos:])
		}
	}
}

func (l *luks) payloadOff() int64 { return int64(l.payload) * 512 }

func (l *luks) want() (int64, int) {
	if !l.b.done || l.inner == nil {
		return l.b.want(), 0
	}
	off, tail := l.inner.want()
	if off >= 0 {
		off += l.payloadOff()
	}
	return off, tail
}

func (l *luks) retained() int {
	n := l.b.retained() + len(l.prefix)
	if l.inner != nil {
		n += l.inner.retained()
	}
	return n
}

func (l *luks) verdict(total int64) verdict {
	if !bytes.Equal(l.prefix, luksMagic) {
		return verdict{}
	}
	if !l.parsed {
		return verdict{match: true}
	}
	v := verdict{match: true, complete: true, size: max(0, total-l.payloadOff())}
	if l.version != 1 {
		v.fail("version", fmt.Sprintf("LUKS version %d is not supported", l.version))
	}
	if l.inner != nil {
		r := l.inner.result(max(0, total-l.payloadOff()))
		var se *SafetyError
		var fe *FormatError
		switch {
		case errors.As(r.Unsafe, &se):
			for name, reason := range se.Failures {
				v.fail("inner_"+name, reason)
			}
		case errors.As(r.Unsafe, &fe):
			v.fail("inner_format", fe.Msg)
		}
	}
	return v
}
