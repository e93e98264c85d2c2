package perf

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Verify block format. Every logical block a verify write stores starts with
// a 32-byte header and continues with bytes drawn from (LBA, generation):
//
//	offset  size  field
//	0       8     magic "SLUICEVB"
//	8       8     LBA, little endian
//	16      8     generation, little endian (1 for a slot's first write)
//	24      8     xxhash64 of bytes 0..24 and 32..end: all but this field
//	32      ...   payload
//
// A read checks all four (P4).
const (
	offVerifyMagic = 0
	offVerifyLBA   = 8
	offVerifyGen   = 16
	offVerifyHash  = 24
	// VerifyHeaderSize bytes start every verify block.
	VerifyHeaderSize = 32
	verifyMagic      = 0x4256454349554c53 // "SLUICEVB" little endian
)

var le = binary.LittleEndian

// stampBlock writes block b as the verify format for lba at generation gen.
func stampBlock(b []byte, lba, gen uint64) {
	le.PutUint64(b[offVerifyMagic:], verifyMagic)
	le.PutUint64(b[offVerifyLBA:], lba)
	le.PutUint64(b[offVerifyGen:], gen)
	fillPayload(b[VerifyHeaderSize:], lba, gen)
	le.PutUint64(b[offVerifyHash:], blockHash(b))
}

// StampBlock writes b as the verify format for lba at generation gen, as a
// verify write does: for a test or tool that lays data down itself (a
// whole volume at generation 1, say) and writes a state file saying so,
// for a later --verify-state run to read back and continue from.
func StampBlock(b []byte, lba, gen uint64) { stampBlock(b, lba, gen) }

// fillPayload draws the payload from (lba, gen): xorshift64 seeded by both.
func fillPayload(p []byte, lba, gen uint64) {
	x := lba*0x9e3779b97f4a7c15 ^ gen*0xbf58476d1ce4e5b9 | 1
	i := 0
	for ; i+8 <= len(p); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		le.PutUint64(p[i:], x)
	}
	for ; i < len(p); i++ {
		p[i] = byte(x >> (8 * (i & 7)))
	}
}

func blockHash(b []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	d.Write(b[:offVerifyHash])
	d.Write(b[VerifyHeaderSize:])
	return d.Sum64()
}

// ErrVerify is wrapped by every *VerifyError.
var ErrVerify = errors.New("verify mismatch")

// VerifyError is a block that did not read back as written (P4).
type VerifyError struct {
	LBA       uint64 // the block read
	Field     string // "magic", "lba", "generation" or "hash"
	Want, Got uint64 // expected and found values of Field
	Core      int    // the core whose job read it
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("verify: core %d: LBA %d: %s %#x, want %#x", e.Core, e.LBA, e.Field, e.Got, e.Want)
}

func (e *VerifyError) Unwrap() error { return ErrVerify }

// checkBlock returns the first field of b that is not what stampBlock(lba,
// gen) wrote, or "" when all four hold. It does not allocate.
func checkBlock(b []byte, lba, gen uint64) (field string, want, got uint64) {
	if got := le.Uint64(b[offVerifyMagic:]); got != verifyMagic {
		return "magic", verifyMagic, got
	}
	if got := le.Uint64(b[offVerifyLBA:]); got != lba {
		return "lba", lba, got
	}
	if got := le.Uint64(b[offVerifyGen:]); got != gen {
		return "generation", gen, got
	}
	if want, got := blockHash(b), le.Uint64(b[offVerifyHash:]); got != want {
		return "hash", want, got
	}
	return "", 0, 0
}

// Fails to build unless the smallest block holds the verify header.
const _ uint = bdev.BlockSizeMin - VerifyHeaderSize
