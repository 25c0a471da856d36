#!/usr/bin/env bash
# Regenerates the disk image corpus of proxies/inspect/testdata with qemu-img
# (Debian's qemu-utils), xorriso and sgdisk, then prints what qemu-img info
# says of each file: the virtual sizes recorded in corpus_test.go.
#
# Every image is a small virtual disk (1 or 4 MiB), so the files are tiny
# once git compresses their zeros. Run it from anywhere; it installs the
# tools with apt-get when they are missing and it runs as root.
set -euo pipefail
cd "$(dirname "$0")/../proxies/inspect/testdata"

need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null && return
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null
	else
		echo "disk-corpus: $1 is missing (install $2)" >&2
		exit 1
	fi
}
need qemu-img qemu-utils
need xorriso xorriso
need sgdisk gdisk

# put FILE OFFSET BYTES: overwrites FILE at OFFSET with BYTES (printf escapes).
put() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

rm -f ./*.img ./*.qcow2 ./*.data ./*.qed ./*.vhd ./*.vhdx ./*.vmdk ./*.vdi ./*.iso ./*.luks

# raw: 1 MiB, a line of text then zeros.
truncate -s 1M raw.img
put raw.img 0 'glance-go raw test image\n'

# qcow2: version 2 (compat=0.10) and 3 (compat=1.1), one backed by raw.img,
# one whose data lives in an external raw file.
qemu-img create -q -f qcow2 -o compat=0.10 qcow2-v2.qcow2 4M
qemu-img create -q -f qcow2 -o compat=1.1 qcow2-v3.qcow2 4M
qemu-img create -q -f qcow2 -b raw.img -F raw qcow2-backing.qcow2
qemu-img create -q -f qcow2 -o data_file=qcow2-datafile.data qcow2-datafile.qcow2 4M

qemu-img create -q -f qed qed.qed 4M
qemu-img create -q -f vpc vhd.vhd 4M
qemu-img create -q -f vhdx vhdx.vhdx 4M
qemu-img create -q -f vdi vdi.vdi 4M

# vmdk: the two single-file sparse types as qemu writes them.
qemu-img create -q -f vmdk -o subformat=monolithicSparse vmdk-sparse.vmdk 4M
qemu-img create -q -f vmdk -o subformat=streamOptimized vmdk-stream.vmdk 4M

# vmdk streamOptimized as VMware writes it: the header's grain directory
# offset is all ones (GD_AT_END) and the stream ends with a footer marker, a
# copy of the header with the real offset, and the end-of-stream marker.
size=$(stat -c %s vmdk-stream.vmdk)
head -c $((size - 512)) vmdk-stream.vmdk >vmdk-stream-footer.vmdk
{
	printf '\001\0\0\0\0\0\0\0\0\0\0\0\003\0\0\0'
	head -c 496 /dev/zero
	head -c 512 vmdk-stream.vmdk
	head -c 512 /dev/zero
} >>vmdk-stream-footer.vmdk
put vmdk-stream-footer.vmdk 56 '\377\377\377\377\377\377\377\377'

# vmdk monolithicSparse whose embedded descriptor names /etc/passwd as its
# extent (the descriptor starts at sector 1 and is 20 sectors long).
qemu-img create -q -f vmdk -o subformat=monolithicSparse vmdk-path-extent.vmdk 4M
dd if=vmdk-path-extent.vmdk bs=512 skip=1 count=20 status=none | tr -d '\000' |
	sed 's|"vmdk-path-extent.vmdk"|"/etc/passwd"|' >desc.tmp
truncate -s 10240 desc.tmp
dd if=desc.tmp of=vmdk-path-extent.vmdk bs=512 seek=1 conv=notrunc status=none
rm -f desc.tmp

# vmdk monolithicFlat: a text descriptor naming vmdk-flat-flat.vmdk.
qemu-img create -q -f vmdk -o subformat=monolithicFlat vmdk-flat.vmdk 1M

# iso: ISO 9660 with one file.
mkdir -p iso.tmp
echo 'glance-go iso test file' >iso.tmp/README
xorriso -as mkisofs -quiet -V GLANCEGO -o iso.iso iso.tmp 2>/dev/null
rm -rf iso.tmp

# gpt: 1 MiB raw disk with a GPT (protective MBR) and one partition.
truncate -s 1M gpt.img
sgdisk -o -n 1:0:0 -t 1:8300 gpt.img >/dev/null

# luks: LUKS1 with AES-128-CBC to keep the key material small.
qemu-img create -q -f luks --object secret,id=sec0,data=glance-go \
	-o key-secret=sec0,iter-time=10,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256 luks.luks 1M

for f in raw.img qcow2-v2.qcow2 qcow2-v3.qcow2 qcow2-backing.qcow2 qcow2-datafile.qcow2 qed.qed vhd.vhd \
	vhdx.vhdx vdi.vdi vmdk-sparse.vmdk vmdk-stream.vmdk vmdk-stream-footer.vmdk vmdk-path-extent.vmdk \
	vmdk-flat.vmdk iso.iso gpt.img luks.luks; do
	info=$(qemu-img info --output=json "$f" 2>&1 || true)
	vsize=$(sed -n 's/^    "virtual-size": \([0-9]*\),/\1/p' <<<"$info")
	format=$(sed -n 's/^    "format": "\(.*\)",/\1/p' <<<"$info")
	printf '%-26s %9d bytes  qemu-img: %-6s virtual-size %s\n' "$f" "$(stat -c %s "$f")" "$format" "$vsize"
done
