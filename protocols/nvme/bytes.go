package nvme

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Little-endian field access over a structure's bytes. NVMe fields are little endian unless the
// spec says otherwise (EUI-64, NGUID and UUID are byte strings and are copied, not converted).
func get16(b []byte, off int) uint16    { return binary.LittleEndian.Uint16(b[off:]) }
func get32(b []byte, off int) uint32    { return binary.LittleEndian.Uint32(b[off:]) }
func get64(b []byte, off int) uint64    { return binary.LittleEndian.Uint64(b[off:]) }
func put16(b []byte, off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }
func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func put64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
func get24(b []byte, off int) uint32 {
	return uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16
}
func put24(b []byte, off int, v uint32) {
	b[off], b[off+1], b[off+2] = byte(v), byte(v>>8), byte(v>>16)
}
func bits32(v uint32, lo, n uint) uint32 { return v >> lo & (1<<n - 1) }

// setBits32 returns v with its n bits at lo replaced by x (x's higher bits are dropped).
func setBits32(v uint32, lo, n uint, x uint32) uint32 {
	mask := uint32(1<<n-1) << lo
	return v&^mask | x<<lo&mask
}

// Uint128 is one of the 16-byte counters of the SMART / Health log.
type Uint128 struct{ Lo, Hi uint64 }

func get128(b []byte, off int) Uint128 { return Uint128{get64(b, off), get64(b, off+8)} }
func put128(b []byte, off int, v Uint128) {
	put64(b, off, v.Lo)
	put64(b, off+8, v.Hi)
}

// putASCII writes s into field, padded with spaces (N4). It rejects bytes outside printable
// ASCII (0x20..0x7E) and strings longer than the field.
func putASCII(field []byte, name, s string) error {
	if len(s) > len(field) {
		return fmt.Errorf("nvme: %s %q: %d bytes, want at most %d", name, s, len(s), len(field))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7E {
			return fmt.Errorf("nvme: %s %q: byte %d is %#02x, want printable ASCII", name, s, i, c)
		}
	}
	n := copy(field, s)
	for i := n; i < len(field); i++ {
		field[i] = ' '
	}
	return nil
}

// getASCII returns an ASCII field without its padding. Senders pad with spaces; some pad with
// NULs, so both are trimmed from the end.
func getASCII(field []byte) string {
	n := len(field)
	for n > 0 && (field[n-1] == ' ' || field[n-1] == 0) {
		n--
	}
	return string(field[:n])
}

// putNQNField writes s into a NUL-terminated, NUL-padded UTF-8 field (N4): s must leave room for
// the terminator, be valid UTF-8 and hold no NUL.
func putNQNField(field []byte, name, s string) error {
	if len(s) >= len(field) {
		return fmt.Errorf("nvme: %s: %d bytes, want at most %d (with its NUL, the field is %d)",
			name, len(s), len(field)-1, len(field))
	}
	if err := checkNQNBytes(name, s); err != nil {
		return err
	}
	n := copy(field, s)
	clear(field[n:])
	return nil
}

// checkNQNBytes rejects the bytes no NUL-terminated UTF-8 field can carry.
func checkNQNBytes(name, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("nvme: %s %q: not valid UTF-8", name, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return fmt.Errorf("nvme: %s %q: NUL at byte %d", name, s, i)
		}
	}
	return nil
}

// getCString returns the bytes of a NUL-terminated field before its first NUL, and false when
// the field holds no NUL at all (an unterminated field: the caller decides what that means).
func getCString(field []byte) (string, bool) {
	for i, c := range field {
		if c == 0 {
			return string(field[:i]), true
		}
	}
	return "", false
}
