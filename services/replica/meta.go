package replica

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Metadata format. The metadata bdev holds two copies, A at block 0 and B
// right after it; each write goes to the copy its sequence number picks
// (seq mod 2), so a torn write leaves the other copy whole, and a load takes
// the valid copy with the higher seq (M1).
//
//	offset  size  field
//	0       8     magic "SLUICERM"
//	8       4     version (1)
//	12      4     members
//	16      8     seq: one more than the copy it replaces
//	24      8     region size in blocks of the replica
//	32      8     replica capacity in blocks
//	40      8     bitmap bytes
//	48      8     xxhash64 of the copy with this field zero
//	56      8     flags: bit 0 active (the stage was running when the copy
//	              was written: a load that finds it set follows an unclean
//	              shutdown, X7); the other bits zero (a version 1 copy from
//	              before the flag holds zero here: clean)
//	64      72×8  member records: state (1 byte), 7 reserved, name (64 bytes, NUL padded)
//	640     …     dirty-region bitmap, bit r of byte r/8 for region r, to the end of the copy
const (
	offMagic       = 0
	offVersion     = 8
	offMembers     = 12
	offSeq         = 16
	offRegion      = 24
	offCapacity    = 32
	offBitmapBytes = 40
	offChecksum    = 48
	offFlags       = 56
	offRecords     = 64
	recordSize     = 72
	recordName     = 8
	metaHeaderSize = offRecords + recordSize*MembersMax
	metaMagic      = 0x4d52454349554c53 // "SLUICERM" little endian
	metaVersion    = 1

	// metaFlagActive: written when the stage starts, cleared by a clean
	// stop (Close) after the last write completed (X7).
	metaFlagActive = 1 << 0
	metaFlagsAll   = metaFlagActive
)

// Fails to compile if a member's name no longer fits its record.
const _ uint = recordSize - recordName - NameLenMax

// NameLenMax is the longest member name a record holds: the bdev layer's.
const NameLenMax = 64

// persisted member states.
const (
	persistInSync = 1 // holds every completed write
	persistStale  = 2 // missed writes to the regions the bitmap marks
	persistEmpty  = 3 // holds nothing of the replica: rebuild it whole
)

// ErrMeta is wrapped by every error about the metadata bdev's content.
var ErrMeta = errors.New("replica metadata")

// meta is one copy, decoded.
type meta struct {
	seq          uint64
	flags        uint64
	regionBlocks uint64
	capacity     uint64
	names        []string
	states       []uint8
	bitmap       []byte
}

// metaCopySize is the bytes of one copy for a bitmap of n bytes, in whole
// blocks of bs.
func metaCopySize(bitmapBytes, bs uint64) uint64 {
	n := uint64(metaHeaderSize) + bitmapBytes
	return (n + bs - 1) / bs * bs
}

var le = binary.LittleEndian

// encodeMeta writes m into buf (one copy, zeroed first: nothing stale leaks).
func encodeMeta(buf []byte, m *meta) {
	clear(buf)
	le.PutUint64(buf[offMagic:], metaMagic)
	le.PutUint32(buf[offVersion:], metaVersion)
	le.PutUint32(buf[offMembers:], uint32(len(m.names)))
	le.PutUint64(buf[offSeq:], m.seq)
	le.PutUint64(buf[offRegion:], m.regionBlocks)
	le.PutUint64(buf[offCapacity:], m.capacity)
	le.PutUint64(buf[offBitmapBytes:], uint64(len(m.bitmap)))
	le.PutUint64(buf[offFlags:], m.flags)
	for i, name := range m.names {
		rec := buf[offRecords+i*recordSize:]
		rec[0] = m.states[i]
		copy(rec[recordName:recordName+NameLenMax], name)
	}
	copy(buf[metaHeaderSize:], m.bitmap)
	le.PutUint64(buf[offChecksum:], metaChecksum(buf))
}

// metaChecksum is xxhash64 of the copy with its checksum field taken as zero.
func metaChecksum(buf []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	d.Write(buf[:offChecksum])
	var zero [8]byte
	d.Write(zero[:])
	d.Write(buf[offChecksum+8:])
	return d.Sum64()
}

// decodeMeta reads one copy; the error names the field that is wrong.
func decodeMeta(buf []byte) (*meta, error) {
	if len(buf) < metaHeaderSize {
		return nil, fmt.Errorf("copy of %d bytes, want at least %d: %w", len(buf), metaHeaderSize, ErrMeta)
	}
	if v := le.Uint64(buf[offMagic:]); v != metaMagic {
		return nil, fmt.Errorf("magic %#x at byte %d, want %#x: %w", v, offMagic, uint64(metaMagic), ErrMeta)
	}
	if v := le.Uint32(buf[offVersion:]); v != metaVersion {
		return nil, fmt.Errorf("version %d at byte %d, want %d: %w", v, offVersion, metaVersion, ErrMeta)
	}
	if got, want := le.Uint64(buf[offChecksum:]), metaChecksum(buf); got != want {
		return nil, fmt.Errorf("checksum %#x at byte %d, want %#x: %w", got, offChecksum, want, ErrMeta)
	}
	if f := le.Uint64(buf[offFlags:]); f&^metaFlagsAll != 0 {
		return nil, fmt.Errorf("flags %#x at byte %d, want only bits of %#x: %w", f, offFlags, uint64(metaFlagsAll), ErrMeta)
	}
	n := le.Uint32(buf[offMembers:])
	bitmapBytes := le.Uint64(buf[offBitmapBytes:])
	if n == 0 || n > MembersMax {
		return nil, fmt.Errorf("members %d at byte %d, want 1..%d: %w", n, offMembers, MembersMax, ErrMeta)
	}
	if bitmapBytes > uint64(len(buf)-metaHeaderSize) {
		return nil, fmt.Errorf("bitmap of %d bytes at byte %d, the copy holds %d: %w",
			bitmapBytes, offBitmapBytes, len(buf)-metaHeaderSize, ErrMeta)
	}
	m := &meta{seq: le.Uint64(buf[offSeq:]), flags: le.Uint64(buf[offFlags:]), regionBlocks: le.Uint64(buf[offRegion:]),
		capacity: le.Uint64(buf[offCapacity:]),
		bitmap:   append([]byte(nil), buf[metaHeaderSize:metaHeaderSize+int(bitmapBytes)]...)}
	for i := range int(n) {
		rec := buf[offRecords+i*recordSize:]
		st := rec[0]
		if st < persistInSync || st > persistEmpty {
			return nil, fmt.Errorf("member %d state %d at byte %d, want %d..%d: %w",
				i, st, offRecords+i*recordSize, persistInSync, persistEmpty, ErrMeta)
		}
		name := rec[recordName : recordName+NameLenMax]
		end := 0
		for end < len(name) && name[end] != 0 {
			end++
		}
		m.names = append(m.names, string(name[:end]))
		m.states = append(m.states, st)
	}
	return m, nil
}

// newestMeta picks the valid copy with the higher seq (M1); nil when
// neither is valid (a metadata bdev never written), with both reasons.
func newestMeta(a, b []byte) (*meta, error) {
	ma, errA := decodeMeta(a)
	mb, errB := decodeMeta(b)
	switch {
	case errA != nil && errB != nil:
		return nil, fmt.Errorf("copy A: %v; copy B: %w", errA, errB)
	case errA != nil:
		return mb, nil
	case errB != nil || ma.seq > mb.seq:
		return ma, nil
	}
	return mb, nil
}
