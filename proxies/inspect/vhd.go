package inspect

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// vhd recognises dynamic and differencing Virtual Hard Disks (qemu's "vpc"),
// whose 512-byte big-endian footer is copied at offset 0: the cookie
// "conectix" and the current size in bytes (u64 at 48). A fixed VHD has its
// footer at the end only, and is raw to qemu as it is here.
type vhd struct {
	b      block
	prefix []byte
	parsed bool
	size   uint64
}

var vhdMagic = []byte("conectix")

func newVHD() *vhd { return &vhd{b: block{r: at(0, 512)}} }

func (d *vhd) feed(pos int64, p []byte) {
	d.b.take(pos, p, func(h []byte) {
		d.prefix = bytes.Clone(h[:len(vhdMagic)])
		d.parsed = true
		d.size = binary.BigEndian.Uint64(h[48:])
	})
	if d.prefix == nil && len(d.b.r.buf) >= len(vhdMagic) {
		d.prefix = bytes.Clone(d.b.r.buf[:len(vhdMagic)])
	}
}

func (d *vhd) want() (int64, int) { return d.b.want(), 0 }
func (d *vhd) retained() int      { return d.b.retained() + len(d.prefix) }

func (d *vhd) verdict(int64) verdict {
	if !bytes.Equal(d.prefix, vhdMagic) {
		return verdict{}
	}
	if !d.parsed {
		return verdict{match: true}
	}
	return verdict{match: true, complete: true, size: size64(d.size)}
}

// vhdx recognises Hyper-V VHDX images. The virtual size sits at the end of a
// chain of little-endian structures, each found through the one before:
//
//   - the file type identifier at 0, "vhdxfile";
//   - the region table at 192 KiB: signature "regi", entry count (u32 at 8,
//     under 2048), then 32-byte entries from 16 (GUID, file offset u64);
//   - the metadata region, found by its GUID: signature "metadata", entry
//     count (u16 at 10, under 2048), then 32-byte entries from 32 (GUID,
//     offset u32 from the region's start);
//   - the Virtual Disk Size item, found by its GUID: a u64.
//
// Each step captures only the bytes it reads (at most 64 KiB). A chain that
// breaks leaves the size unknown; VHDX has no safety check.
type vhdx struct {
	step    int
	cur     region
	magic   bool
	metaOff int64
	size    uint64
}

const (
	vhdxIdent = iota
	vhdxRegionHeader
	vhdxRegionEntries
	vhdxMetaHeader
	vhdxMetaEntries
	vhdxDiskSize
	vhdxDone
)

const (
	vhdxRegionTable = 192 << 10
	vhdxMaxEntries  = 2048
)

var (
	vhdxMetadataRegion = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	vhdxVirtualDisk    = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
)

// guid returns the on-disk form of a GUID written in its text form: the
// first three groups little-endian, the last two as written.
func guid(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("inspect: bad GUID " + s)
	}
	b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
	b[4], b[5] = b[5], b[4]
	b[6], b[7] = b[7], b[6]
	return b
}

func newVHDX() *vhdx { return &vhdx{cur: at(0, 8)} }

func (x *vhdx) feed(pos int64, p []byte) {
	for x.step != vhdxDone {
		switch x.cur.fill(pos, p) {
		case needMore:
			return
		case missed:
			x.stop()
			return
		}
		x.advance(x.cur.buf)
	}
}

// stop ends the chain.
func (x *vhdx) stop() { x.step, x.cur = vhdxDone, region{} }

// then sets the next region to capture. It must lie after the region just
// read: a chain that points back is broken, whatever is still at hand.
func (x *vhdx) then(step int, off int64, n int) {
	if off < x.cur.off+int64(x.cur.n) || off > maxOffset {
		x.stop()
		return
	}
	x.step, x.cur = step, at(off, n)
}

// advance reads the full region b and sets the next one.
func (x *vhdx) advance(b []byte) {
	switch x.step {
	case vhdxIdent:
		x.magic = string(b) == "vhdxfile"
		if !x.magic {
			x.stop()
			return
		}
		x.then(vhdxRegionHeader, vhdxRegionTable, 16)
	case vhdxRegionHeader:
		count := binary.LittleEndian.Uint32(b[8:])
		if string(b[:4]) != "regi" || count == 0 || count >= vhdxMaxEntries {
			x.stop()
			return
		}
		x.then(vhdxRegionEntries, vhdxRegionTable+16, int(count)*32)
	case vhdxRegionEntries:
		for e := b; len(e) >= 32; e = e[32:] {
			if bytes.Equal(e[:16], vhdxMetadataRegion) {
				x.metaOff = size64(binary.LittleEndian.Uint64(e[16:]))
				x.then(vhdxMetaHeader, x.metaOff, 32)
				return
			}
		}
		x.stop()
	case vhdxMetaHeader:
		count := binary.LittleEndian.Uint16(b[10:])
		if string(b[:8]) != "metadata" || count == 0 || count >= vhdxMaxEntries {
			x.stop()
			return
		}
		x.then(vhdxMetaEntries, x.metaOff+32, int(count)*32)
	case vhdxMetaEntries:
		for e := b; len(e) >= 32; e = e[32:] {
			if bytes.Equal(e[:16], vhdxVirtualDisk) {
				x.then(vhdxDiskSize, x.metaOff+int64(binary.LittleEndian.Uint32(e[16:])), 8)
				return
			}
		}
		x.stop()
	case vhdxDiskSize:
		x.size = binary.LittleEndian.Uint64(b)
		x.stop()
	}
}

func (x *vhdx) want() (int64, int) {
	if x.step == vhdxDone {
		return -1, 0
	}
	return x.cur.next(), 0
}

func (x *vhdx) retained() int { return cap(x.cur.buf) }

func (x *vhdx) verdict(int64) verdict {
	if !x.magic {
		return verdict{}
	}
	return verdict{match: true, complete: x.step == vhdxDone, size: size64(x.size)}
}
