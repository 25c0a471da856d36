// Package inspect recognises disk image formats in a stream of image data
// and runs the safety checks Glance applies before it accepts an upload.
//
// It mirrors oslo_utils/imageutils/format_inspector.py (the inspector Glance
// uses from 2025.1 on) for what is detected and checked, and the format
// checks of glance/location.py ImageProxy.set_data for what is refused
// (Policy.Check). The parsers are written from the formats' own
// specifications: QCOW2 (qemu docs/interop/qcow2.txt), QED, VHD (Virtual Hard
// Disk Image Format Specification), VHDX (MS-VHDX), VMDK (Virtual Disk Format
// 5.0), VDI, ISO 9660 / UDF (ECMA-119, ECMA-167), the UEFI GPT protective MBR
// and LUKS1.
//
// An Inspector is an io.Writer: the upload path tees the image data into it
// and asks for the Result once the data is stored. Each format keeps only the
// few regions it needs (a header, a table, a VMDK descriptor, the last bytes
// of a streamOptimized VMDK), copied as they flow by, so an Inspector holds a
// few KiB in the common case and a little over 1 MiB at worst, whatever the
// size of the image. Every size and offset read from the data is bounded
// before it is used, and no input makes a parser panic (the Fuzz targets
// exercise that).
package inspect
