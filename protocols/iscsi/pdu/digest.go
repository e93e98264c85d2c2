package pdu

import (
	"encoding/binary"
	"hash/crc32"
)

// castagnoli is the CRC32C table; hash/crc32 uses the SSE4.2/ARMv8 instruction for it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroPad is the padding we send after a data segment or AHS (RFC 7143 §11.2: pad
// bytes SHOULD be 0, and are covered by the data digest).
var zeroPad [3]byte

// CRC32C extends the running digest crc with p. Start from 0: CRC32C(CRC32C(0, a), b)
// equals CRC32C(0, a‖b), so header, data and padding combine without a copy
// (RFC 7143 §13.1, generator 0x11EDC6F41).
func CRC32C(crc uint32, p []byte) uint32 { return crc32.Update(crc, castagnoli, p) }

// PadSize is the number of pad bytes after a segment of n bytes: 0..3.
func PadSize(n uint32) uint32 { return -n & 3 }

// Pad returns the zero bytes that pad a segment of n bytes, for writing or digesting.
func Pad(n uint32) []byte { return zeroPad[:PadSize(n)] }

// PutDigest stores a digest in its wire order. RFC 7143 Appendix B.4 gives the bytes
// aa 36 91 8a for 32 zero bytes, whose CRC32C is 0x8a9136aa: little endian.
func PutDigest(b []byte, crc uint32) { binary.LittleEndian.PutUint32(b, crc) }

// Digest reads a digest from its wire order.
func Digest(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
