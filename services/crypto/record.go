package crypto

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Conversion record. The base's last two blocks hold two copies (A at
// blocks-2, B at blocks-1); a write goes to the copy its seq picks, so a
// torn write leaves the other whole, and a load takes the valid copy with
// the higher seq. Before them lies the journal: one region's plaintext.
//
//	offset  size  field
//	0       8     magic "SLUICECV"
//	8       4     version (1)
//	12      4     state: 1 converting, 2 journaled, 3 done
//	16      8     seq
//	24      8     watermark: regions [0, watermark) are encrypted
//	32      8     region size in blocks
//	40      8     data blocks (the stage's capacity)
//	48      8     xxhash64 of the journaled region's plaintext (state 2)
//	56      16    key check: the first 16 bytes of a zero block encrypted
//	              with the key at tweak keyCheckTweak, so a restart with
//	              another key is refused, not applied
//	72      8     xxhash64 of bytes 0..72
//	80      …     zero
const (
	recOffMagic     = 0
	recOffVersion   = 8
	recOffState     = 12
	recOffSeq       = 16
	recOffWatermark = 24
	recOffRegion    = 32
	recOffData      = 40
	recOffJournal   = 48
	recOffKeyCheck  = 56
	recOffChecksum  = 72
	recordSize      = 80
	recordMagic     = 0x56434543_49554c53 // "SLUICECV" little endian
	recordVersion   = 1
	// keyCheckTweak is a tweak no data block has (LBAs stay below 2^63).
	keyCheckTweak = 1 << 63
)

// Conversion states.
const (
	convConverting = 1
	convJournaled  = 2
	convDone       = 3
)

// ErrRecord is wrapped by every error about the conversion record.
var ErrRecord = errors.New("crypto conversion record")

// record is the conversion record, decoded.
type record struct {
	state        uint32
	seq          uint64
	watermark    uint64
	regionBlocks uint64
	dataBlocks   uint64
	journalHash  uint64
	keyCheck     [16]byte
}

var le = binary.LittleEndian

func (r *record) encode(b []byte) {
	clear(b)
	le.PutUint64(b[recOffMagic:], recordMagic)
	le.PutUint32(b[recOffVersion:], recordVersion)
	le.PutUint32(b[recOffState:], r.state)
	le.PutUint64(b[recOffSeq:], r.seq)
	le.PutUint64(b[recOffWatermark:], r.watermark)
	le.PutUint64(b[recOffRegion:], r.regionBlocks)
	le.PutUint64(b[recOffData:], r.dataBlocks)
	le.PutUint64(b[recOffJournal:], r.journalHash)
	copy(b[recOffKeyCheck:], r.keyCheck[:])
	le.PutUint64(b[recOffChecksum:], xxhash.Sum64(b[:recOffChecksum]))
}

func decodeRecord(b []byte) (*record, error) {
	if len(b) < recordSize {
		return nil, fmt.Errorf("%d bytes, want %d: %w", len(b), recordSize, ErrRecord)
	}
	if v := le.Uint64(b[recOffMagic:]); v != recordMagic {
		return nil, fmt.Errorf("magic %#x at byte %d, want %#x: %w", v, recOffMagic, uint64(recordMagic), ErrRecord)
	}
	if v := le.Uint32(b[recOffVersion:]); v != recordVersion {
		return nil, fmt.Errorf("version %d at byte %d, want %d: %w", v, recOffVersion, recordVersion, ErrRecord)
	}
	if got, want := le.Uint64(b[recOffChecksum:]), xxhash.Sum64(b[:recOffChecksum]); got != want {
		return nil, fmt.Errorf("checksum %#x at byte %d, want %#x: %w", got, recOffChecksum, want, ErrRecord)
	}
	r := &record{state: le.Uint32(b[recOffState:]), seq: le.Uint64(b[recOffSeq:]),
		watermark: le.Uint64(b[recOffWatermark:]), regionBlocks: le.Uint64(b[recOffRegion:]),
		dataBlocks: le.Uint64(b[recOffData:]), journalHash: le.Uint64(b[recOffJournal:])}
	copy(r.keyCheck[:], b[recOffKeyCheck:])
	if r.state < convConverting || r.state > convDone {
		return nil, fmt.Errorf("state %d at byte %d, want %d..%d: %w", r.state, recOffState, convConverting, convDone, ErrRecord)
	}
	return r, nil
}

// newestRecord picks the valid copy with the higher seq. With both invalid
// it gives the reasons, and fresh: neither copy even starts with the magic,
// so the base was never converted (its tail is the user's old bytes); a
// copy with the magic but broken is a damaged record, never a fresh start
// (which would encrypt encrypted regions again).
func newestRecord(a, b []byte) (r *record, fresh bool, err error) {
	ra, errA := decodeRecord(a)
	rb, errB := decodeRecord(b)
	switch {
	case errA != nil && errB != nil:
		fresh = le.Uint64(a[recOffMagic:]) != recordMagic && le.Uint64(b[recOffMagic:]) != recordMagic
		return nil, fresh, fmt.Errorf("copy A: %v; copy B: %w", errA, errB)
	case errA != nil:
		return rb, false, nil
	case errB != nil || ra.seq > rb.seq:
		return ra, false, nil
	}
	return rb, false, nil
}
