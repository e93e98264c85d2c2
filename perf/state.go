package perf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Verify state file (--verify-state FILE): what a verify run leaves for the
// next one to read back. It names the bdev and its geometry, and lists the
// written blocks as extents of equal generations. All integers are little
// endian:
//
//	offset  size  field
//	0       8     magic "SLUICEVS"
//	8       4     version, 1
//	12      4     flags: bit 0 clean (see below); the other bits are zero
//	16      4     block size in bytes
//	20      4     length of the bdev's name, 1..64
//	24      8     block count of the bdev
//	32      8     extent count N
//	40      64    the bdev's name, zero padded
//	104     24×N  extents, ascending by LBA, disjoint, inside the bdev:
//	              +0   8  first LBA
//	              +8   4  blocks, at least 1
//	              +12  4  generation of the blocks' last acknowledged write,
//	                      1..verifyGenMax
//	              +16  4  pending: the generation of a later write to them
//	                      that failed or was in flight at the save, above
//	                      the acknowledged one; 0 when none
//	              +20  4  reserved, zero
//	104+24N 8     xxhash64 of every byte before it
//
// A block absent from the file was never acknowledged and is not checked.
//
// The rules a read-back applies (P6). Every recorded block must carry the
// verify magic, its own LBA and a hash that matches its bytes: whatever else
// happened, a block holds some complete verify write. Its generation g is
// then judged by the save that wrote the file:
//
//   - clean (flag bit 0 set): written at a run's end, after every IO had
//     completed and a flush had made them durable. Exact: g must be the
//     recorded generation, or its pending one when there is one (a failed
//     or in-flight write may or may not have reached the device).
//   - dirty: written after the read-back, before the run's first write, and
//     left in place when the run never saved again (kill -9, a crash, a
//     flush that failed, a job that hung). A lower bound: g must be at
//     least the recorded generation. A newer g is data the lost run wrote
//     after that save (counted, not an error); an older g is a lost or
//     rolled-back write, and an error.
const (
	offStateMagic     = 0
	offStateVersion   = 8
	offStateFlags     = 12
	offStateBlockSize = 16
	offStateNameLen   = 20
	offStateBlocks    = 24
	offStateExtents   = 32
	offStateName      = 40

	offExtentLBA      = 0
	offExtentBlocks   = 8
	offExtentGen      = 12
	offExtentPending  = 16
	offExtentReserved = 20

	// StateHeaderSize bytes start a state file, StateExtentSize bytes hold
	// each extent and StateTrailerSize bytes of checksum end it.
	StateHeaderSize  = offStateName + stateNameMax
	StateExtentSize  = 24
	StateTrailerSize = 8

	// stateNameMax is conf's bound on a bdev's name: any bdev a topology
	// declares fits.
	stateNameMax   = conf.NameLenMax
	stateMagic     = "SLUICEVS"
	stateVersion   = 1
	stateFlagClean = 1 << 0
	stateFlagsAll  = stateFlagClean
)

// Fails to build unless an extent is a whole number of 8-byte words.
const _ uint = 0 - StateExtentSize%8

// ErrStateCorrupt is wrapped by every error about a state file that is not a
// well-formed one: truncated, a bad checksum, a field out of its range.
var ErrStateCorrupt = errors.New("verify state file corrupt")

// ErrStateOtherBdev is wrapped when a well-formed state file records another
// bdev, or the same name with another geometry.
var ErrStateOtherBdev = errors.New("verify state file is for another bdev")

// VerifyState is a state file's content.
type VerifyState struct {
	Bdev      string
	BlockSize uint32
	Blocks    uint64
	// Clean: saved at a run's end after a flush (exact rules); false: the
	// dirty save from a run's start (lower bounds).
	Clean   bool
	Extents []VerifyExtent
}

// VerifyExtent is Blocks blocks from LBA written at the same generations.
type VerifyExtent struct {
	LBA        uint64 `json:"lba"`
	Blocks     uint32 `json:"blocks"`
	Generation uint32 `json:"generation"`
	Pending    uint32 `json:"pending,omitempty"`
}

func (e *VerifyExtent) end() uint64 { return e.LBA + uint64(e.Blocks) }

// RecordedBlocks is the number of blocks the extents cover.
func (s *VerifyState) RecordedBlocks() uint64 {
	var n uint64
	for i := range s.Extents {
		n += uint64(s.Extents[i].Blocks)
	}
	return n
}

// Marshal encodes s; it refuses what ParseVerifyState would.
func (s *VerifyState) Marshal() ([]byte, error) {
	b := appendState(nil, s)
	if _, err := ParseVerifyState(b); err != nil { // encode checks what decode checks
		return nil, fmt.Errorf("perf: encoding the verify state of bdev %q: %w", s.Bdev, err)
	}
	return b, nil
}

// appendState encodes s without checking it.
func appendState(b []byte, s *VerifyState) []byte {
	var h [StateHeaderSize]byte
	copy(h[offStateMagic:], stateMagic)
	le.PutUint32(h[offStateVersion:], stateVersion)
	if s.Clean {
		le.PutUint32(h[offStateFlags:], stateFlagClean)
	}
	le.PutUint32(h[offStateBlockSize:], s.BlockSize)
	le.PutUint32(h[offStateNameLen:], uint32(len(s.Bdev)))
	le.PutUint64(h[offStateBlocks:], s.Blocks)
	le.PutUint64(h[offStateExtents:], uint64(len(s.Extents)))
	copy(h[offStateName:], s.Bdev)
	b = append(b, h[:]...)
	for _, e := range s.Extents {
		var x [StateExtentSize]byte
		le.PutUint64(x[offExtentLBA:], e.LBA)
		le.PutUint32(x[offExtentBlocks:], e.Blocks)
		le.PutUint32(x[offExtentGen:], e.Generation)
		le.PutUint32(x[offExtentPending:], e.Pending)
		b = append(b, x[:]...)
	}
	return le.AppendUint64(b, xxhash.Sum64(b))
}

// ParseVerifyState decodes and checks a state file's bytes. Every error
// wraps ErrStateCorrupt and names the offending field, its offset and value.
func ParseVerifyState(b []byte) (*VerifyState, error) {
	bad := func(off int, format string, args ...any) error {
		return fmt.Errorf("offset %d: %s: %w", off, fmt.Sprintf(format, args...), ErrStateCorrupt)
	}
	if len(b) < StateHeaderSize+StateTrailerSize {
		return nil, bad(len(b), "%d bytes, a state file has at least %d", len(b), StateHeaderSize+StateTrailerSize)
	}
	if m := b[offStateMagic : offStateMagic+8]; string(m) != stateMagic {
		return nil, bad(offStateMagic, "magic %q, want %q: not a verify state file", m, stateMagic)
	}
	if v := le.Uint32(b[offStateVersion:]); v != stateVersion {
		return nil, bad(offStateVersion, "version %d, want %d", v, stateVersion)
	}
	count := le.Uint64(b[offStateExtents:])
	if want := uint64(len(b)-StateHeaderSize-StateTrailerSize) / StateExtentSize; count != want ||
		(len(b)-StateHeaderSize-StateTrailerSize)%StateExtentSize != 0 {
		return nil, bad(offStateExtents, "%d extents in a file of %d bytes (room for %d): truncated or extended",
			count, len(b), want)
	}
	sumAt := len(b) - StateTrailerSize
	if want, got := xxhash.Sum64(b[:sumAt]), le.Uint64(b[sumAt:]); got != want {
		return nil, bad(sumAt, "checksum %#x, want %#x: the file was damaged after it was saved", got, want)
	}
	s := &VerifyState{BlockSize: le.Uint32(b[offStateBlockSize:]), Blocks: le.Uint64(b[offStateBlocks:])}
	flags := le.Uint32(b[offStateFlags:])
	if flags&^stateFlagsAll != 0 {
		return nil, bad(offStateFlags, "flags %#x, want only bits %#x", flags, stateFlagsAll)
	}
	s.Clean = flags&stateFlagClean != 0
	if bs := s.BlockSize; bs < bdev.BlockSizeMin || bs > bdev.BlockSizeMax || bs&(bs-1) != 0 {
		return nil, bad(offStateBlockSize, "block size %d, want a power of two in %d..%d", bs,
			bdev.BlockSizeMin, bdev.BlockSizeMax)
	}
	n := le.Uint32(b[offStateNameLen:])
	if n < 1 || n > stateNameMax {
		return nil, bad(offStateNameLen, "name length %d, want 1..%d", n, stateNameMax)
	}
	name := b[offStateName : offStateName+stateNameMax]
	if i := bytes.IndexByte(name[:n], 0); i >= 0 {
		return nil, bad(offStateName+i, "a zero byte inside the %d-byte name", n)
	}
	if i := bytes.IndexFunc(name[n:], func(r rune) bool { return r != 0 }); i >= 0 {
		return nil, bad(offStateName+int(n)+i, "padding after the name, want zeros")
	}
	s.Bdev = string(name[:n])
	if count > s.Blocks {
		return nil, bad(offStateExtents, "%d extents in a bdev of %d blocks", count, s.Blocks)
	}
	if count > 0 {
		s.Extents = make([]VerifyExtent, count)
	}
	var prevEnd uint64
	for i := range s.Extents {
		at := StateHeaderSize + i*StateExtentSize
		x := b[at : at+StateExtentSize]
		e := VerifyExtent{LBA: le.Uint64(x[offExtentLBA:]), Blocks: le.Uint32(x[offExtentBlocks:]),
			Generation: le.Uint32(x[offExtentGen:]), Pending: le.Uint32(x[offExtentPending:])}
		switch {
		case e.Blocks == 0:
			return nil, bad(at+offExtentBlocks, "extent %d: 0 blocks, want at least 1", i)
		case i > 0 && e.LBA < prevEnd:
			return nil, bad(at+offExtentLBA, "extent %d: LBA %d, want at least %d, the end of extent %d (ascending and disjoint)",
				i, e.LBA, prevEnd, i-1)
		case e.LBA > s.Blocks || uint64(e.Blocks) > s.Blocks-e.LBA:
			return nil, bad(at+offExtentLBA, "extent %d: LBA %d+%d past the bdev's %d blocks", i, e.LBA, e.Blocks, s.Blocks)
		case e.Generation < 1 || e.Generation > verifyGenMax:
			return nil, bad(at+offExtentGen, "extent %d: generation %d, want 1..%d", i, e.Generation, verifyGenMax)
		case e.Pending != 0 && (e.Pending <= e.Generation || e.Pending > verifyGenMax):
			return nil, bad(at+offExtentPending, "extent %d: pending generation %d, want 0 or %d..%d", i, e.Pending,
				e.Generation+1, verifyGenMax)
		case le.Uint32(x[offExtentReserved:]) != 0:
			return nil, bad(at+offExtentReserved, "extent %d: reserved %#x, want 0", i, le.Uint32(x[offExtentReserved:]))
		}
		s.Extents[i] = e
		prevEnd = e.end()
	}
	return s, nil
}

// LoadVerifyState reads and checks the state file at path; a missing file
// is an error that wraps os.ErrNotExist.
func LoadVerifyState(path string) (*VerifyState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("verify state: %w", err)
	}
	s, err := ParseVerifyState(b)
	if err != nil {
		return nil, fmt.Errorf("verify state %s: %w", path, err)
	}
	return s, nil
}

// CheckBdev returns nil when s is for b: the same name, block size and
// block count; otherwise an error naming both, wrapping ErrStateOtherBdev.
func (s *VerifyState) CheckBdev(b *bdev.Bdev) error {
	if s.Bdev == b.Name() && s.BlockSize == b.BlockSize() && s.Blocks == b.Blocks() {
		return nil
	}
	return fmt.Errorf("it records bdev %q of %d blocks of %d bytes, this run drives %q of %d blocks of %d bytes "+
		"(remove the file to start over): %w", s.Bdev, s.Blocks, s.BlockSize, b.Name(), b.Blocks(), b.BlockSize(),
		ErrStateOtherBdev)
}

// Save writes s to path atomically: a temporary file beside it, written and
// fsynced, renamed over path, and the directory fsynced, so a crash leaves
// the old file or the new one, whole.
func (s *VerifyState) Save(path string) (err error) {
	b, err := s.Marshal()
	if err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return fmt.Errorf("verify state %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("verify state %s: %w", path, err)
		}
	}()
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync() // the rename itself is durable
}

// checkRecorded checks block b, read back from lba, against its record
// (generation gen, pending generation pending, under a clean or a dirty
// save's rules: P6) and returns the generation found, or the first field
// that breaks a rule with what was wanted and found. It does not allocate.
func checkRecorded(b []byte, lba uint64, gen, pending uint32, clean bool) (found uint32, field string, want, got uint64) {
	if got := le.Uint64(b[offVerifyMagic:]); got != verifyMagic {
		return 0, "magic", verifyMagic, got
	}
	if got := le.Uint64(b[offVerifyLBA:]); got != lba {
		return 0, "lba", lba, got
	}
	// The hash before the generation: a generation is trusted only from a
	// whole block, and a flipped generation byte is damage, not age.
	if want, got := blockHash(b), le.Uint64(b[offVerifyHash:]); got != want {
		return 0, "hash", want, got
	}
	g := le.Uint64(b[offVerifyGen:])
	switch {
	case g > verifyGenMax,
		clean && g != uint64(gen) && (pending == 0 || g != uint64(pending)),
		!clean && g < uint64(gen):
		return 0, "generation", uint64(gen), g
	}
	return uint32(g), "", 0, 0
}

// StateMismatch is a recorded block that did not read back under P6's
// rules.
type StateMismatch struct {
	LBA uint64 `json:"lba"`
	// Field is "read" (the read failed: Status says how), "magic", "lba",
	// "hash" or "generation".
	Field string `json:"field"`
	Want  uint64 `json:"want"` // generation: the recorded one
	Got   uint64 `json:"got"`
	// Pending is a generation also accepted (a clean save's failed or
	// in-flight write); AtLeast marks a dirty save's rule, Want or newer.
	Pending uint32 `json:"pending,omitempty"`
	AtLeast bool   `json:"at_least,omitempty"`
	Status  string `json:"status,omitempty"`
}

func (m *StateMismatch) String() string {
	switch {
	case m.Field == "read":
		return fmt.Sprintf("LBA %d: read failed: %s", m.LBA, m.Status)
	case m.Field != "generation":
		return fmt.Sprintf("LBA %d: %s %#x, want %#x", m.LBA, m.Field, m.Got, m.Want)
	case m.AtLeast:
		return fmt.Sprintf("LBA %d: generation %d, older than the recorded %d (a dirty save: %d or newer)",
			m.LBA, m.Got, m.Want, m.Want)
	case m.Pending != 0:
		return fmt.Sprintf("LBA %d: generation %d, want %d or %d (a write of %d failed or was in flight at the save)",
			m.LBA, m.Got, m.Want, m.Pending, m.Pending)
	}
	return fmt.Sprintf("LBA %d: generation %d, want %d", m.LBA, m.Got, m.Want)
}

// ReadBackError is a read-back that found recorded blocks not as saved. It
// wraps ErrVerify.
type ReadBackError struct {
	Path       string
	Checked    uint64          // blocks read back
	Mismatches uint64          // of them, how many broke a rule
	First      []StateMismatch // the lowest LBAs among the first found
}

func (e *ReadBackError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "verify-state %s: %d of %d recorded blocks did not read back as saved", e.Path, e.Mismatches, e.Checked)
	for i := range e.First {
		fmt.Fprintf(&sb, "\n  %s", e.First[i].String())
	}
	if n := e.Mismatches - uint64(len(e.First)); n > 0 {
		fmt.Fprintf(&sb, "\n  … and %d more", n)
	}
	return sb.String()
}

func (e *ReadBackError) Unwrap() error { return ErrVerify }
