package pdu

import (
	"encoding/binary"
	"hash/crc32"
)

// Digests are CRC32C (Castagnoli), as in iSCSI: the header digest covers the HLEN header bytes
// (not padding), the data digest covers the data bytes (not padding), and each is stored little
// endian in the 4 bytes after what it covers (NVMe/TCP 1.0, "Header and Data Digests"). Linux
// computes them with the crypto API's "crc32c", whose output is the standard CRC32C stored
// little endian; SPDK stores the same value. Values here are the standard CRC32C (check value
// of "123456789" is E3069283h).
//
// A digest is a running value: DigestUpdate(DigestUpdate(0, a), b) == Digest(a ++ b), so a
// header built in one buffer and data split over many (a socket read, an I/O buffer, a second
// I/O buffer) combine without a copy. hash/crc32 uses the SSE4.2 CRC32 instruction for this
// table where the CPU has it.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Digest returns the CRC32C of p.
func Digest(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

// DigestUpdate returns the CRC32C of the bytes that gave crc followed by p; start from 0.
func DigestUpdate(crc uint32, p []byte) uint32 { return crc32.Update(crc, castagnoli, p) }

// PutDigest stores a digest at b[0:4], little endian.
func PutDigest(b []byte, crc uint32) { binary.LittleEndian.PutUint32(b, crc) }

// DigestAt reads the digest stored at b[0:4].
func DigestAt(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// SetHeaderDigest computes the header digest of the PDU starting at pdu (HLEN from its common
// header) and stores it right after the header; pdu must hold HLEN+4 bytes.
func SetHeaderDigest(pdu []byte) {
	n := int(HeaderOf(pdu).HeaderLen())
	PutDigest(pdu[n:n+DigestSize], Digest(pdu[:n]))
}

// HeaderDigestOK reports whether the header digest after the header of pdu matches.
func HeaderDigestOK(pdu []byte) bool {
	n := int(HeaderOf(pdu).HeaderLen())
	return DigestAt(pdu[n:n+DigestSize]) == Digest(pdu[:n])
}
