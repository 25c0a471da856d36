package main

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"strings"
	"sync"
)

// Stream is a deterministic byte source of a fixed length, cheap enough that
// the client does not compete with the server for CPU on a small machine. A
// 64 KiB block drawn from a 64-bit wyrand generator is repeated, and the
// first eight bytes of every 4 KiB page are replaced by a fresh generator
// word, so no two pages of a stream are alike. It holds only that block, so
// gigabytes can be uploaded without holding them, and the same seed always
// yields the same bytes whatever the Read sizes.
type Stream struct {
	seed uint64
	base []byte
	pos  int64
	left int64
}

const (
	streamBlock = 64 << 10
	streamPage  = 4 << 10
)

// NewStream returns a Stream of size bytes derived from seed.
func NewStream(seed uint64, size int64) *Stream {
	s := &Stream{seed: seed, base: make([]byte, streamBlock), left: size}
	state := seed ^ 0x9e3779b97f4a7c15
	for i := 0; i < streamBlock; i += 8 {
		state += 0xa0761d6478bd642f
		binary.LittleEndian.PutUint64(s.base[i:], wymix(state))
	}
	return s
}

// wymix is wyrand's output function.
func wymix(x uint64) uint64 {
	hi, lo := bits.Mul64(x, x^0xe7037ed1a0b428db)
	return hi ^ lo
}

// Read fills p with the next bytes of the stream; it returns io.EOF once the
// stream's length has been handed out.
func (s *Stream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n := 0
	for n < len(p) {
		off := int(s.pos % streamPage)
		k := min(len(p)-n, streamPage-off)
		b := int(s.pos % streamBlock)
		copy(p[n:n+k], s.base[b:b+k])
		if off < 8 {
			var w [8]byte
			page := uint64(s.pos / streamPage)
			binary.LittleEndian.PutUint64(w[:], wymix(s.seed^0x2d358dccaa6c78a5+page*0xa0761d6478bd642f))
			copy(p[n:n+k], w[off:])
		}
		n += k
		s.pos += int64(k)
	}
	s.left -= int64(n)
	return n, nil
}

// md5Cache remembers the md5 of streams already hashed, so each (seed, size)
// is hashed once per run, outside any timed section.
var md5Cache sync.Map

// StreamMD5 returns the hex md5 of the Stream for seed and size.
func StreamMD5(seed uint64, size int64) string {
	key := [2]uint64{seed, uint64(size)}
	if v, ok := md5Cache.Load(key); ok {
		return v.(string)
	}
	h := md5.New()
	buf := make([]byte, 1<<20)
	// Neither a Stream nor an md5 hash can fail, so the copy has no error to check.
	_, _ = io.CopyBuffer(h, readerOnly{NewStream(seed, size)}, buf)
	sum := hex.EncodeToString(h.Sum(nil))
	md5Cache.Store(key, sum)
	return sum
}

// readerOnly hides any WriterTo/ReaderFrom so copies use the given buffer.
type readerOnly struct{ io.Reader }

// ByteSize is a byte count given on the command line as 1GiB, 128MiB, 64KiB,
// 1GB (decimal) or a plain number of bytes.
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseByteSize parses a size such as "1GiB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			mult = u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || t == "" {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1GiB, 128MiB or a byte count)", s)
	}
	v := n * float64(mult)
	if v > 1<<50 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(v), nil
}

// String formats the size with the largest binary unit that divides it.
func (b ByteSize) String() string {
	v := int64(b)
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.mult && v%u.mult == 0 {
			return strconv.FormatInt(v/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(v, 10) + "B"
}

// Set implements flag.Value.
func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}
