package inspect

import (
	"crypto/sha512"
	"io"
	"testing"
)

// benchSize is the stream each benchmark iteration inspects.
const benchSize = 256 << 20

// BenchmarkInspector measures the Inspector's throughput over 256 MiB
// written in 1 MiB chunks, after the header of each kind of image; the
// sha512 case, which Glance's upload computes anyway, is the yardstick.
func BenchmarkInspector(b *testing.B) {
	chunk := make([]byte, 1<<20)
	for k := range chunk {
		chunk[k] = byte(k * 31)
	}
	footer := patch(readCorpus(b, "vmdk-sparse.vmdk")[:64<<10], 56, le64(vmdkGDAtEnd))
	for _, bc := range []struct {
		name string
		head []byte
		w    func() io.Writer
	}{
		{"raw", nil, func() io.Writer { return New() }},
		{"qcow2", readCorpus(b, "qcow2-v3.qcow2")[:64<<10], func() io.Writer { return New() }},
		{"vmdk-footer", footer, func() io.Writer { return New() }},
		{"sha512", nil, func() io.Writer { return sha512.New() }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				w := bc.w()
				w.Write(bc.head)
				for n := len(bc.head); n < benchSize; n += len(chunk) {
					w.Write(chunk[:min(len(chunk), benchSize-n)])
				}
				if i, ok := w.(*Inspector); ok {
					i.Result()
				}
			}
		})
	}
}
