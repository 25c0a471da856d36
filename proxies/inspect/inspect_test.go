package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

// patch returns a copy of b with p written at off, grown if need be.
func patch(b []byte, off int, p []byte) []byte {
	c := bytes.Clone(b)
	if need := off + len(p); need > len(c) {
		c = append(c, make([]byte, need-len(c))...)
	}
	copy(c[off:], p)
	return c
}

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// mbr returns a 1 KiB disk whose first sector is an MBR with the partition
// entries given (16 bytes each).
func mbr(entries ...[]byte) []byte {
	b := make([]byte, 1024)
	for i, e := range entries {
		copy(b[mbrTable+16*i:], e)
	}
	b[510], b[511] = 0x55, 0xaa
	return b
}

// pte returns an MBR partition entry.
func pte(boot, typ byte, chs [3]byte, lba, sectors uint32) []byte {
	e := []byte{boot, chs[0], chs[1], chs[2], typ, 0xff, 0xff, 0xff}
	return append(append(e, le32(lba)...), le32(sectors)...)
}

var protective = pte(0, mbrProtective, [3]byte{0, 2, 0}, 1, 2047)

// compactVHDX returns a small VHDX: identifier, region table at 192 KiB
// pointing to a metadata region at metaOff whose Virtual Disk Size item
// holds size.
func compactVHDX(metaOff uint64, size uint64) []byte {
	b := make([]byte, 256<<10)
	copy(b, "vhdxfile")
	rt := b[vhdxRegionTable:]
	copy(rt, "regi")
	copy(rt[8:], le32(2))
	copy(rt[16:], guid("2DC27766-F623-4200-9D64-115E9BFD4A08")) // BAT
	copy(rt[32:], le64(1<<20))
	copy(rt[48:], vhdxMetadataRegion)
	copy(rt[64:], le64(metaOff))
	copy(rt[72:], le32(64<<10))
	meta := make([]byte, 64<<10)
	copy(meta, "metadata")
	binary.LittleEndian.PutUint16(meta[10:], 2)
	copy(meta[32:], guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")) // file parameters
	copy(meta[48:], le32(1024))
	copy(meta[64:], vhdxVirtualDisk)
	copy(meta[80:], le32(2048))
	copy(meta[84:], le32(8))
	copy(meta[2048:], le64(size))
	if metaOff > 1<<30 {
		return b // nothing is written that far
	}
	if int(metaOff) >= len(b) {
		b = append(b, make([]byte, int(metaOff)-len(b))...)
		return append(b, meta...)
	}
	return patch(b, int(metaOff), meta)
}

// nullLUKS returns a LUKS1 volume under the null cipher whose payload, at
// sector off, is payload.
func nullLUKS(off uint32, payload []byte) []byte {
	h := make([]byte, int(off)*512)
	copy(h, luksMagic)
	copy(h[6:], be16(1))
	copy(h[8:], "cipher_null")
	copy(h[40:], "ecb")
	copy(h[72:], "sha256")
	copy(h[104:], be32(off))
	copy(h[108:], be32(32))
	return append(h, payload...)
}

// TestHostile runs the inspector on crafted streams.
func TestHostile(t *testing.T) {
	qcow2v3 := readCorpus(t, "qcow2-v3.qcow2")[:4096]
	qcow2v2 := readCorpus(t, "qcow2-v2.qcow2")[:4096]
	isoImg := readCorpus(t, "iso.iso")
	sparse := readCorpus(t, "vmdk-sparse.vmdk")
	footer := readCorpus(t, "vmdk-stream-footer.vmdk")
	luksImg := readCorpus(t, "luks.luks")[:8192]
	vhdImg := readCorpus(t, "vhd.vhd")
	gptImg := readCorpus(t, "gpt.img")[:4096]
	fl := len(footer)
	fat := mbr()
	fat[0x10], fat[0x15] = 2, 0xf8
	descriptor := "# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"disk-flat.vmdk\" 0\n"

	tests := []struct {
		name   string
		data   []byte
		format Format
		vsize  int64 // -1: do not check
		unsafe string
	}{
		{"empty stream", nil, Raw, 0, ""},
		{"qcow2 v3 unknown incompatible feature", patch(qcow2v3, 72, be64(1<<4)), QCOW2, 4194304, "qcow2 safety checks failed: unknown_features (Unknown QCOW2 features found)"},
		{"qcow2 v3 high feature bit", patch(qcow2v3, 72, be64(1<<63)), QCOW2, 4194304, "qcow2 safety checks failed: unknown_features (Unknown QCOW2 features found)"},
		{"qcow2 v3 dirty and compression type", patch(qcow2v3, 72, be64(1|1<<3)), QCOW2, 4194304, ""},
		{"qcow2 v3 external data file and unknown", patch(qcow2v3, 72, be64(1<<2|1<<5)), QCOW2, 4194304,
			"qcow2 safety checks failed: data_file (Image has data_file set), unknown_features (Unknown QCOW2 features found)"},
		{"qcow2 version 4", patch(qcow2v3, 4, be32(4)), QCOW2, 4194304, "qcow2 safety checks failed: unknown_features (Unsupported qcow2 version)"},
		{"qcow2 version 1", patch(qcow2v3, 4, be32(1)), QCOW2, 4194304, "qcow2 safety checks failed: unknown_features (Unsupported qcow2 version)"},
		{"qcow2 v2 has no feature bits", patch(qcow2v2, 72, be64(0xff)), QCOW2, 4194304, ""},
		{"qcow2 size beyond int64", patch(qcow2v3, 24, be64(1<<63)), QCOW2, 0, ""},
		{"qcow2 shorter than its header", qcow2v3[:511], Raw, 511, ""},
		{"qcow2 header in an ISO's system area", patch(isoImg, 0, qcow2v3), QCOW2, 0, "Multiple formats detected: qcow2,iso"},
		{"MBR in an ISO's system area", patch(isoImg, 0, mbr(protective)[:512]), ISO, 376832, ""},
		{"VMDK header in an ISO's system area", patch(isoImg, 0, sparse[:32<<10]), VMDK, 0, "Multiple formats detected: vmdk,iso"},
		{"ISO too short for its volume descriptor", isoImg[:33<<10], Raw, 33 << 10, ""},
		{"ISO supplementary descriptor first", patch(isoImg, 32<<10, []byte{2}), ISO, 0, ""},
		{"UDF NSR03", patch(make([]byte, 40<<10), 32<<10, []byte("\x00NSR03\x01")), ISO, 0, ""},
		{"GPT disk", gptImg, GPT, 4096, ""},
		{"GPT with empty partition table", mbr(), GPT, 1024, "gpt safety checks failed: mbr (GPT MBR has no partitions defined)"},
		{"GPT with bad boot flag", mbr(pte(0x7f, 0x83, [3]byte{}, 2048, 10)), GPT, 1024, "gpt safety checks failed: mbr (MBR PTE 0 has invalid boot flag)"},
		{"GPT with extra partition", mbr(protective, pte(0, 0x83, [3]byte{}, 2048, 10)), GPT, 1024, "gpt safety checks failed: mbr (GPT MBR defines invalid extra partitions)"},
		{"GPT protective partition second", mbr(make([]byte, 16), protective), GPT, 1024, "gpt safety checks failed: mbr (GPT MBR defines invalid extra partitions)"},
		{"GPT with bad start LBA", mbr(pte(0, mbrProtective, [3]byte{0, 2, 0}, 2, 10)), GPT, 1024, "gpt safety checks failed: mbr (GPT MBR has invalid start LBA)"},
		{"GPT with bad start CHS", mbr(pte(0, mbrProtective, [3]byte{0, 1, 0}, 1, 10)), GPT, 1024, "gpt safety checks failed: mbr (GPT MBR has invalid start CHS)"},
		{"legacy MBR", mbr(pte(0x80, 0x83, [3]byte{0, 33, 0}, 2048, 10)), GPT, 1024, ""},
		{"FAT boot sector", fat, Raw, 1024, ""},
		{"LUKS2", patch(luksImg, 6, be16(2)), LUKS, 8192 - 4040*512, "luks safety checks failed: version (LUKS version 2 is not supported)"},
		{"LUKS header cut short", luksImg[:100], LUKS, 0, msgIncomplete},
		{"LUKS payload beyond the stream", patch(luksImg, 104, be32(1<<31)), LUKS, 0, ""},
		{"LUKS null cipher around qcow2 with backing file", nullLUKS(8, readCorpus(t, "qcow2-backing.qcow2")[:4096]), LUKS, 4096,
			"luks safety checks failed: inner_backing_file (Image has a backing file)"},
		{"LUKS null cipher around raw", nullLUKS(8, make([]byte, 4096)), LUKS, 4096, ""},
		{"LUKS null cipher around cut VMDK", nullLUKS(8, readCorpus(t, "vmdk-sparse.vmdk")[:1000]), LUKS, 1000,
			"luks safety checks failed: inner_format (Incomplete file cannot be safety checked)"},
		{"LUKS null cipher payload inside the header", patch(nullLUKS(8, readCorpus(t, "qcow2-backing.qcow2")[:4096]), 104, be32(1)), LUKS, 8192 - 512, ""},
		{"LUKS null cipher around null LUKS", nullLUKS(8, nullLUKS(8, readCorpus(t, "qcow2-backing.qcow2")[:4096])), LUKS, 8192, ""},
		{"LUKS encrypted qcow2", patch(nullLUKS(8, readCorpus(t, "qcow2-backing.qcow2")[:4096]), 8, []byte("aes\x00")), LUKS, 4096, ""},
		{"VMDK cut inside its descriptor", sparse[:1000], VMDK, 0, msgIncomplete},
		{"VMDK magic only", sparse[:10], VMDK, 0, msgIncomplete},
		{"VMDK version 4", patch(sparse, 4, le32(4)), VMDK, 0, "vmdk safety checks failed: descriptor (Unsupported sparse header version 4)"},
		{"VMDK descriptor elsewhere", patch(sparse, 28, le64(2)), VMDK, 0, "vmdk safety checks failed: descriptor (Wrong descriptor location)"},
		{"VMDK empty descriptor", patch(sparse, 36, le64(0)), VMDK, 0, "vmdk safety checks failed: descriptor (Unsupported subformat)"},
		{"VMDK huge descriptor size", patch(sparse, 36, le64(1<<62)), VMDK, 0, msgIncomplete},
		{"VMDK capacity beyond int64", patch(sparse, 12, le64(1<<60)), VMDK, 0, ""},
		{"VMDK bad end-of-stream marker", patch(footer, fl-100, []byte{1}), VMDK, 4194304, "vmdk safety checks failed: footer (End-of-stream marker is invalid)"},
		{"VMDK bad footer marker type", patch(footer, fl-1536+12, le32(2)), VMDK, 4194304, "vmdk safety checks failed: footer (Footer marker is invalid)"},
		{"VMDK footer marker with data", patch(footer, fl-1536+8, le32(512)), VMDK, 4194304, "vmdk safety checks failed: footer (Footer marker is invalid)"},
		{"VMDK footer announces a footer", patch(footer, fl-1024+56, le64(vmdkGDAtEnd)), VMDK, 4194304, "vmdk safety checks failed: footer (Footer indicates another footer)"},
		{"VMDK footer of another version", patch(footer, fl-1024+4, le32(1)), VMDK, 4194304, "vmdk safety checks failed: footer (Header and footer versions do not match)"},
		{"VMDK footer with another descriptor", patch(footer, fl-1024+36, le64(1)), VMDK, 4194304, "vmdk safety checks failed: footer (Footer specifies a different descriptor than header)"},
		{"VMDK footer signature", patch(footer, fl-1024, []byte("XXXX")), VMDK, 4194304, "vmdk safety checks failed: footer (Header and footer signature do not match)"},
		{"VMDK footer missing", footer[:fl-1536], VMDK, 4194304, "vmdk safety checks failed: footer (Header and footer signature do not match)"},
		{"VMDK footer expected in a short stream", patch(sparse[:1024], 56, le64(vmdkGDAtEnd))[:1024], VMDK, 0, msgIncomplete},
		{"VMDK descriptor file", []byte(descriptor), VMDK, 0, "vmdk safety checks failed: descriptor (Descriptor file without a sparse header)"},
		{"VMDK descriptor file claiming a sparse type", []byte(strings.Replace(descriptor, "monolithicFlat", "monolithicSparse", 1)), VMDK, 0,
			"vmdk safety checks failed: descriptor (Descriptor file without a sparse header)"},
		{"VMDK descriptor file then binary", append([]byte(descriptor+strings.Repeat("#\n", 40)), 0, 1, 2), VMDK, 0,
			"vmdk safety checks failed: descriptor (Descriptor file without a sparse header)"},
		{"text that names no createType", []byte(strings.Repeat("just some text\n", 100)), Raw, 1500, ""},
		{"createType beyond the descriptor bound", []byte(strings.Repeat("x", vmdkDescMax) + descriptor), Raw, int64(vmdkDescMax + len(descriptor)), ""},
		{"short descriptor file", []byte("version=1\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"/a\" 0\n"), VMDK, 0,
			"vmdk safety checks failed: descriptor (Descriptor file without a sparse header)"},
		{"short text", []byte("version=1\n"), Raw, 10, ""},
		{"VHD cut short", vhdImg[:100], VHD, 0, msgIncomplete},
		{"VHDX compact", compactVHDX(256<<10, 1<<30), VHDX, 1 << 30, ""},
		{"VHDX metadata before the region table", compactVHDX(64<<10, 1<<30), VHDX, 0, ""},
		{"VHDX metadata far away", compactVHDX(1<<56+1, 1<<30), VHDX, 0, ""},
		{"VHDX without region table", patch(compactVHDX(256<<10, 1<<30), vhdxRegionTable, []byte("xxxx")), VHDX, 0, ""},
		{"VHDX with too many regions", patch(compactVHDX(256<<10, 1<<30), vhdxRegionTable+8, le32(2048)), VHDX, 0, ""},
		{"VHDX with too many metadata items", patch(compactVHDX(256<<10, 1<<30), 256<<10+10, []byte{0xff, 0xff}), VHDX, 0, ""},
		{"VHDX cut short", compactVHDX(256<<10, 1<<30)[:100<<10], VHDX, 0, msgIncomplete},
		{"QED cut short", readCorpus(t, "qed.qed")[:100], Raw, 100, ""},
		{"VDI cut short", readCorpus(t, "vdi.vdi")[:500], Raw, 500, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := inspect(tc.data, 0)
			if got.Format != tc.format {
				t.Errorf("format = %s, want %s", got.Format, tc.format)
			}
			if tc.vsize >= 0 && got.VirtualSize != tc.vsize {
				t.Errorf("virtual size = %d, want %d", got.VirtualSize, tc.vsize)
			}
			if got.ActualSize != int64(len(tc.data)) {
				t.Errorf("actual size = %d, want %d", got.ActualSize, len(tc.data))
			}
			unsafe := ""
			if got.Unsafe != nil {
				unsafe = got.Unsafe.Error()
			}
			if unsafe != tc.unsafe {
				t.Errorf("Unsafe = %q, want %q", unsafe, tc.unsafe)
			}
			for _, n := range []int{1, 7, 4096} {
				if c := inspect(tc.data, n); !sameResult(c, got) {
					t.Errorf("in %d-byte chunks: %+v, whole: %+v", n, c, got)
				}
			}
			if d, err := detect(bytes.NewReader(tc.data), int64(len(tc.data))); err != nil || !sameResult(d, got) {
				t.Errorf("detect = %+v, %v; stream: %+v", d, err, got)
			}
		})
	}
}

// TestCheckHostile runs Policy.Check on crafted streams.
func TestCheckHostile(t *testing.T) {
	isoImg := readCorpus(t, "iso.iso")
	qcow2v3 := readCorpus(t, "qcow2-v3.qcow2")[:4096]
	lax := DefaultPolicy()
	lax.RequireFormatMatch = false
	strictGPT := DefaultPolicy()
	strictGPT.GPTNonFatal = nil
	tests := []struct {
		name       string
		result     Result
		disk       string
		policy     Policy
		wantSize   int64
		wantErr    string
		wantChecks []string
	}{
		{"GPT with bad MBR, mbr non-fatal", inspect(mbr(), 0), "gpt", DefaultPolicy(), 1024, "", nil},
		{"GPT with bad MBR labelled raw, mbr non-fatal", inspect(mbr(), 0), "raw", DefaultPolicy(), 1024, "", nil},
		{"GPT with bad MBR, all fatal", inspect(mbr(), 0), "gpt", strictGPT, 0, "Image failed safety checks", []string{"mbr"}},
		{"GPT with bad MBR labelled raw, all fatal", inspect(mbr(), 0), "raw", strictGPT, 0, "Image failed safety checks", []string{"mbr"}},
		{"qcow2 in an ISO", inspect(patch(isoImg, 0, qcow2v3), 0), "iso", DefaultPolicy(), 0, "Multiple formats detected: qcow2,iso", nil},
		{"qcow2 in an ISO labelled raw", inspect(patch(isoImg, 0, qcow2v3), 0), "raw", DefaultPolicy(), 0, "Multiple formats detected: qcow2,iso", nil},
		{"qcow2 in an ISO, lax", inspect(patch(isoImg, 0, qcow2v3), 0), "iso", lax, 0, "", nil},
		{"ISO with an MBR", inspect(patch(isoImg, 0, mbr(protective)[:512]), 0), "iso", DefaultPolicy(), 376832, "", nil},
		{"VMDK cut short", inspect(readCorpus(t, "vmdk-sparse.vmdk")[:1000], 0), "vmdk", DefaultPolicy(), 0, msgIncomplete, nil},
		{"VMDK cut short, lax", inspect(readCorpus(t, "vmdk-sparse.vmdk")[:1000], 0), "vmdk", lax, 0, "", nil},
		{"VHD cut short labelled raw", inspect(readCorpus(t, "vhd.vhd")[:100], 0), "raw", DefaultPolicy(), 0, msgIncomplete, nil},
		{"VHD cut short labelled raw, lax", inspect(readCorpus(t, "vhd.vhd")[:100], 0), "raw", lax, 100, "", nil},
		{"unexpected error", Result{Format: QCOW2, VirtualSize: 5, Unsafe: errors.New("boom")}, "qcow2", DefaultPolicy(), 0, "Image format inspection failed", nil},
		{"unexpected error, lax", Result{Format: QCOW2, VirtualSize: 5, Unsafe: errors.New("boom")}, "qcow2", lax, 5, "", nil},
		{"zero-length raw", inspect(nil, 0), "raw", DefaultPolicy(), 0, "", nil},
		{"zero-length labelled qcow2", inspect(nil, 0), "qcow2", DefaultPolicy(), 0, "Image disk_format qcow2 does not match stream data raw", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size, err := tc.policy.Check(tc.result, tc.disk, "bare")
			checkVerdict(t, size, err, tc.wantSize, tc.wantErr, tc.wantChecks)
		})
	}
}

func TestPolicyHelpers(t *testing.T) {
	p := DefaultPolicy()
	if !p.RequireFormatMatch || !slices.Equal(p.GPTNonFatal, []string{"mbr"}) {
		t.Errorf("DefaultPolicy = %+v", p)
	}
	for _, tc := range []struct {
		typ  string
		want bool
	}{{"streamOptimized", true}, {"monolithicSparse", true}, {"monolithicFlat", false}, {"streamoptimized", false}, {"", false}} {
		if got := p.VMDKTypeAllowed(tc.typ); got != tc.want {
			t.Errorf("VMDKTypeAllowed(%q) = %v", tc.typ, got)
		}
	}
	if (Policy{}).VMDKTypeAllowed("streamOptimized") {
		t.Error("an empty vmdk_allowed_types allows a type")
	}
	for _, f := range []string{"raw", "qcow2", "qed", "vhd", "vhdx", "vmdk", "vdi", "iso", "gpt", "luks"} {
		if !Known(f) {
			t.Errorf("Known(%q) = false", f)
		}
	}
	for _, f := range []string{"ami", "aki", "ari", "ploop", "", "QCOW2"} {
		if Known(f) {
			t.Errorf("Known(%q) = true", f)
		}
	}
}

func TestCheckDescriptor(t *testing.T) {
	const head = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\ncreateType=\"streamOptimized\"\n"
	tests := []struct {
		name, text, want string
	}{
		{"good", head + "RW 8192 SPARSE \"disk.vmdk\"\nddb.adapterType = \"ide\"\n", ""},
		{"windows line ends", strings.ReplaceAll(head+"RW 8192 SPARSE \"disk.vmdk\"\n", "\n", "\r\n"), ""},
		{"read-only and no-access extents", head + "RDONLY 8192 SPARSE \"a.vmdk\"\nNOACCESS 10 ZERO\n", ""},
		{"upper case", strings.ToUpper(head) + "RW 8192 SPARSE \"DISK.VMDK\"\n", ""},
		{"path extent", head + "RW 8192 SPARSE \"/etc/passwd\"\n", "Invalid extent filenames found"},
		{"relative path extent", head + "RW 8192 FLAT \"../x\" 0\n", "Invalid extent filenames found"},
		{"no extent", head, "No extents found"},
		{"unknown line", head + "RW 8192 SPARSE \"d.vmdk\"\nsomething else\n", "Invalid VMDK descriptor data"},
		{"tab-separated extent", head + "RW\t8192 SPARSE \"d.vmdk\"\n", "Invalid VMDK descriptor data"},
		{"spaced header key", head + "a b = c\nRW 1 SPARSE \"d\"\n", "Invalid VMDK descriptor data"},
		{"flat", strings.Replace(head, "streamOptimized", "monolithicFlat", 1) + "RW 1 FLAT \"d\" 0\n", "Unsupported subformat"},
		{"no createType", "version=1\nRW 1 SPARSE \"d\"\n", "Unsupported subformat"},
		{"createType in a comment disagrees", "# createType=\"monolithicFlat\"\n" + head + "RW 1 SPARSE \"d\"\n", "Conflicting createType values"},
		{"createType repeated", head + head + "RW 1 SPARSE \"d\"\n", ""},
		{"unterminated createType", "createType=\"streamOptimized\nRW 1 SPARSE \"d\"\n", "Unsupported subformat"},
		{"createType without quote end", "createType=\"streamOptimized", "Invalid createType"},
		{"long createType", "createType=\"" + strings.Repeat("a", 64) + "\"\n", "Invalid createType"},
		{"not ASCII", head + "RW 1 SPARSE \"d\xe9\"\n", "Descriptor is not ASCII text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := checkDescriptor([]byte(tc.text)); got != tc.want {
				t.Errorf("checkDescriptor = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestMemoryBounded feeds 256 MiB after an image header and watches what
// the Inspector keeps.
func TestMemoryBounded(t *testing.T) {
	const limit = 2 << 20
	zeros := make([]byte, 64<<10)
	text := bytes.Repeat([]byte("abcdefgh\n"), 64<<10/9)
	tests := []struct {
		name   string
		head   []byte
		fill   []byte
		format Format
	}{
		{"qcow2", readCorpus(t, "qcow2-v3.qcow2")[:64<<10], zeros, QCOW2},
		{"streamOptimized vmdk", patch(readCorpus(t, "vmdk-sparse.vmdk")[:64<<10], 56, le64(vmdkGDAtEnd)), zeros, VMDK},
		{"vhdx", compactVHDX(256<<10, 1<<30), zeros, VHDX},
		{"text", nil, text, Raw},
		{"luks", readCorpus(t, "luks.luks")[:4096], zeros, LUKS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i := New()
			i.Write(tc.head)
			peak := i.retained()
			var n int64
			for n < 256<<20 {
				i.Write(tc.fill)
				n += int64(len(tc.fill))
				peak = max(peak, i.retained())
			}
			if peak > limit {
				t.Errorf("retained up to %d bytes", peak)
			}
			if r := i.Result(); r.Format != tc.format || r.ActualSize != int64(len(tc.head))+n {
				t.Errorf("Result = %+v", r)
			}
			if got := i.retained(); got > 4096 {
				t.Errorf("still retains %d bytes past the headers", got)
			}
		})
	}
}

// TestRing checks the tail buffer's order across writes of all sizes.
func TestRing(t *testing.T) {
	var stream []byte
	for k := range 5000 {
		stream = append(stream, byte(k*7+k/256))
	}
	for _, n := range []int{1, 3, 100, 1535, 1536, 1537, 4000} {
		r := newRing(1536)
		for pos := 0; pos < len(stream); pos += n {
			end := min(pos+n, len(stream))
			r.add(int64(pos), stream[pos:end])
			want := stream[max(0, end-1536):end]
			if got := r.bytes(); !bytes.Equal(got, want) {
				t.Fatalf("chunks of %d, at %d: ring holds the wrong bytes", n, end)
			}
		}
	}
	r := newRing(4)
	r.add(0, []byte("abc"))
	r.add(10, []byte("de")) // a gap: what was held is dropped
	if got := string(r.bytes()); got != "de" {
		t.Errorf("after a gap: %q", got)
	}
}
