package inspect

import (
	"encoding/binary"
	"fmt"
)

// iso recognises ISO 9660 and UDF volumes: after the 32 KiB system area, the
// first 2 KiB volume descriptor carries the standard identifier "CD001"
// (ISO 9660, and the bridge of most UDF media) or "NSR02"/"NSR03" (UDF) at
// offset 1. When it is the primary volume descriptor (type 1), the virtual
// size is the volume space size (both-endian u32 at 80) times the logical
// block size (both-endian u16 at 128); the little-endian halves are read.
type iso struct {
	b     block
	magic bool
	size  int64
}

const isoSystemArea = 32 << 10

func newISO() *iso { return &iso{b: block{r: at(isoSystemArea, 2048)}} }

func (s *iso) feed(pos int64, p []byte) {
	s.b.take(pos, p, func(d []byte) {
		switch string(d[1:6]) {
		case "CD001", "NSR02", "NSR03":
			s.magic = true
		}
		if s.magic && d[0] == 1 {
			s.size = int64(binary.LittleEndian.Uint32(d[80:])) * int64(binary.LittleEndian.Uint16(d[128:]))
		}
	})
}

func (s *iso) want() (int64, int) { return s.b.want(), 0 }
func (s *iso) retained() int      { return s.b.retained() }

func (s *iso) verdict(int64) verdict {
	if !s.magic {
		return verdict{}
	}
	return verdict{match: true, complete: true, size: s.size}
}

// gpt recognises partitioned disks by their first sector: an MBR (the
// signature 0x55 0xAA at 510) that is not the boot sector of a FAT file
// system (two FATs and the fixed-disk media byte). A GPT disk carries a
// protective MBR; a legacy MBR matches too, as in oslo.utils, so that a
// partitioned raw disk is told apart from bare data. The virtual size is
// the stream's length.
//
// Its check, "mbr", requires a sane partition table: boot flags 0x00 or
// 0x80, at least one partition, and when a GPT protective partition (type
// 0xEE) is present, that it is the only one, starts at LBA 1 and has the
// start CHS 0/0/2.
type gpt struct {
	b      block
	magic  bool
	reason string
}

const (
	mbrSignature  = 510
	mbrTable      = 446
	mbrProtective = 0xee
	fatMediaFixed = 0xf8
)

func newGPT() *gpt { return &gpt{b: block{r: at(0, 512)}} }

func (g *gpt) feed(pos int64, p []byte) {
	g.b.take(pos, p, func(s []byte) {
		fat := s[0x10] == 2 && s[0x15] == fatMediaFixed
		g.magic = s[mbrSignature] == 0x55 && s[mbrSignature+1] == 0xaa && !fat
		if g.magic {
			g.reason = checkMBR(s)
		}
	})
}

// checkMBR returns why the partition table of the MBR s is refused, or "".
func checkMBR(s []byte) string {
	var used []int
	protective := false
	for i := range 4 {
		e := s[mbrTable+16*i : mbrTable+16*(i+1)]
		if e[0] != 0x00 && e[0] != 0x80 {
			return fmt.Sprintf("MBR PTE %d has invalid boot flag", i)
		}
		if e[4] == 0 {
			continue
		}
		used = append(used, i)
		if e[4] != mbrProtective {
			continue
		}
		protective = true
		if e[1] != 0x00 || e[2] != 0x02 || e[3] != 0x00 {
			return "GPT MBR has invalid start CHS"
		}
		if binary.LittleEndian.Uint32(e[8:]) != 1 {
			return "GPT MBR has invalid start LBA"
		}
	}
	switch {
	case protective && (len(used) != 1 || used[0] != 0):
		return "GPT MBR defines invalid extra partitions"
	case len(used) == 0:
		return "GPT MBR has no partitions defined"
	}
	return ""
}

func (g *gpt) want() (int64, int) { return g.b.want(), 0 }
func (g *gpt) retained() int      { return g.b.retained() }

func (g *gpt) verdict(total int64) verdict {
	if !g.magic {
		return verdict{}
	}
	v := verdict{match: true, complete: true, size: total}
	if g.reason != "" {
		v.fail("mbr", g.reason)
	}
	return v
}
