package inspect

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/glance-go/glance-go/domain"
)

// seed returns a corpus file cut to at most n bytes, small enough for the
// fuzzer to mutate quickly.
func seed(f *testing.F, name string, n int) []byte {
	b := readCorpus(f, name)
	return b[:min(n, len(b))]
}

// fuzzParser fuzzes one parser: no input may make it panic, the verdict
// must not depend on how the stream is cut, and what it keeps stays
// bounded.
func fuzzParser(f *testing.F, newParser func() parser, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s, uint16(7))
		f.Add(s, uint16(4096))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		whole := feedParser(newParser(), data, len(data))
		cut := feedParser(newParser(), data, int(chunk)%8192+1)
		total := int64(len(data))
		if w, c := whole.verdict(total), cut.verdict(total); !reflect.DeepEqual(w, c) {
			t.Fatalf("whole: %+v, in %d-byte chunks: %+v", w, int(chunk)%8192+1, c)
		}
		if v := whole.verdict(total); v.size < 0 || (!v.match && (v.complete || v.failures != nil)) {
			t.Fatalf("inconsistent verdict %+v", v)
		}
	})
}

// feedParser feeds data to p in chunks of n bytes, as an Inspector would,
// and checks that p keeps little.
func feedParser(p parser, data []byte, n int) parser {
	pos := int64(0)
	for len(data) > 0 {
		k := min(max(n, 1), len(data))
		offer(p, pos, data[:k])
		pos += int64(k)
		data = data[k:]
		if p.retained() > 3<<20 {
			panic("parser keeps too much")
		}
	}
	return p
}

func FuzzQCOW2(f *testing.F) {
	fuzzParser(f, func() parser { return newQCOW2() },
		seed(f, "qcow2-v2.qcow2", 1024), seed(f, "qcow2-v3.qcow2", 1024), seed(f, "qcow2-backing.qcow2", 1024),
		seed(f, "qcow2-datafile.qcow2", 1024))
}

func FuzzQED(f *testing.F) {
	fuzzParser(f, func() parser { return newQED() }, seed(f, "qed.qed", 1024))
}

func FuzzVHD(f *testing.F) {
	fuzzParser(f, func() parser { return newVHD() }, seed(f, "vhd.vhd", 2560))
}

func FuzzVHDX(f *testing.F) {
	fuzzParser(f, func() parser { return newVHDX() }, compactVHDX(256<<10, 4<<20))
}

func FuzzVMDK(f *testing.F) {
	fuzzParser(f, func() parser { return newVMDK() },
		seed(f, "vmdk-sparse.vmdk", 2048), seed(f, "vmdk-stream-footer.vmdk", 1<<20),
		seed(f, "vmdk-path-extent.vmdk", 2048), seed(f, "vmdk-flat.vmdk", 2048))
}

func FuzzVDI(f *testing.F) {
	fuzzParser(f, func() parser { return newVDI() }, seed(f, "vdi.vdi", 1024))
}

func FuzzISO(f *testing.F) {
	fuzzParser(f, func() parser { return newISO() }, seed(f, "iso.iso", 36<<10))
}

func FuzzGPT(f *testing.F) {
	fuzzParser(f, func() parser { return newGPT() }, seed(f, "gpt.img", 1024), mbr(protective), mbr())
}

func FuzzLUKS(f *testing.F) {
	fuzzParser(f, func() parser { return newLUKS(true) }, seed(f, "luks.luks", 1024),
		nullLUKS(2, seed(f, "vmdk-stream-footer.vmdk", 1<<20)), nullLUKS(8, seed(f, "qcow2-v3.qcow2", 512)))
}

// FuzzInspector runs every parser together: the Result must be the same
// whole, in chunks and read from a file, it must be coherent, and
// Policy.Check must answer it with a 415 or nothing.
func FuzzInspector(f *testing.F) {
	// Small seeds keep the fuzzer quick; FuzzVHDX and FuzzISO cover the
	// formats whose structures lie further in.
	for _, tc := range corpus {
		f.Add(seed(f, tc.file, 4096), uint16(1000))
	}
	f.Add(patch(seed(f, "vmdk-stream-footer.vmdk", 4096), 56, le64(vmdkGDAtEnd)), uint16(100))
	f.Add(nullLUKS(2, seed(f, "qcow2-backing.qcow2", 512)), uint16(7))
	f.Add(patch(seed(f, "iso.iso", 34<<10), 0, seed(f, "qcow2-v3.qcow2", 512)), uint16(4096))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		whole := inspect(data, 0)
		if cut := inspect(data, int(chunk)%8192+1); !sameResult(whole, cut) {
			t.Fatalf("whole: %+v, in %d-byte chunks: %+v", whole, int(chunk)%8192+1, cut)
		}
		if d, err := detect(bytes.NewReader(data), int64(len(data))); err != nil || !sameResult(whole, d) {
			t.Fatalf("whole: %+v, detect: %+v %v", whole, d, err)
		}
		if whole.ActualSize != int64(len(data)) || whole.VirtualSize < 0 {
			t.Fatalf("sizes of %+v for %d bytes", whole, len(data))
		}
		if whole.Format == Raw && (whole.Unsafe != nil || whole.VirtualSize != whole.ActualSize) {
			t.Fatalf("raw result %+v", whole)
		}
		for _, disk := range []string{"raw", string(whole.Format), "qcow2", "ami"} {
			for _, p := range []Policy{DefaultPolicy(), {}} {
				size, err := p.Check(whole, disk, "bare")
				if err != nil && !errors.Is(err, domain.ErrUnsupported) {
					t.Fatalf("Check(%s) = %v, not a 415", disk, err)
				}
				if size < 0 || (err != nil && size != 0) {
					t.Fatalf("Check(%s) = %d, %v", disk, size, err)
				}
			}
		}
	})
}
