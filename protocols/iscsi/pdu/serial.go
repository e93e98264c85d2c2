package pdu

// SN is a 32-bit sequence number (CmdSN, StatSN, DataSN, R2TSN) compared with serial
// number arithmetic (RFC 1982, SERIAL_BITS = 32; RFC 7143 §4.2.2.1). Two numbers exactly
// 2^31 apart are neither less nor greater than each other.
type SN uint32

const snHalf = 1 << 31

// Less reports s < t in serial arithmetic.
func (s SN) Less(t SN) bool { return s != t && uint32(t-s) < snHalf }

// Greater reports s > t in serial arithmetic.
func (s SN) Greater(t SN) bool { return t.Less(s) }

// LessEq reports s <= t in serial arithmetic.
func (s SN) LessEq(t SN) bool { return s == t || s.Less(t) }

// GreaterEq reports s >= t in serial arithmetic.
func (s SN) GreaterEq(t SN) bool { return s == t || t.Less(s) }

// Add returns s + n (mod 2^32); n must be below 2^31 to stay comparable.
func (s SN) Add(n uint32) SN { return s + SN(n) }

// InWindow reports lo <= s <= hi: whether a CmdSN s lies in the command window
// [ExpCmdSN, MaxCmdSN]. A closed window (hi == lo-1) holds nothing (RFC 7143 §4.2.2.1).
func (s SN) InWindow(lo, hi SN) bool { return lo.LessEq(s) && s.LessEq(hi) }

// WindowSize is the number of CmdSNs in [exp, max], 0 when the window is closed or
// the pair is not comparable.
func WindowSize(exp, max SN) uint32 {
	if exp.Greater(max) || (exp != max && !exp.Less(max)) {
		return 0
	}
	return uint32(max-exp) + 1
}
