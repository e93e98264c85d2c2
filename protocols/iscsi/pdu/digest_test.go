package pdu

import (
	"math/rand/v2"
	"testing"
)

// crc32cReference is the bit-at-a-time CRC32C of RFC 7143 §13.1 (generator 0x11EDC6F41,
// reflected 0x82F63B78), with the usual initial and final inversion.
func crc32cReference(p []byte) uint32 {
	crc := ^uint32(0)
	for _, b := range p {
		crc ^= uint32(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82f63b78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func TestCRC32CVectors(t *testing.T) {
	// RFC 7143 Appendix B.4 (and RFC 3720 B.4): 32-byte patterns and the digest bytes
	// as they appear on the wire.
	inc, dec := make([]byte, 32), make([]byte, 32)
	ones := make([]byte, 32)
	for i := range 32 {
		inc[i], dec[i], ones[i] = byte(i), byte(31-i), 0xff
	}
	tests := []struct {
		name string
		data []byte
		wire string
	}{
		{"32 bytes of zeroes", make([]byte, 32), "aa36918a"},
		{"32 bytes of ones", ones, "43aba862"},
		{"32 incrementing bytes", inc, "4e79dd46"},
		{"32 decrementing bytes", dec, "5cdb3f11"},
	}
	for _, tc := range tests {
		var wire [4]byte
		PutDigest(wire[:], CRC32C(0, tc.data))
		if got := string(unhexString(wire[:])); got != tc.wire {
			t.Errorf("%s: digest bytes %s, want %s", tc.name, got, tc.wire)
		}
		if Digest(wire[:]) != crc32cReference(tc.data) {
			t.Errorf("%s: disagrees with the bitwise reference", tc.name)
		}
	}
}

func unhexString(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

// TestCRC32CRunning checks the running value against the reference over seeded buffers,
// split at every point and starting at every alignment 0-7 (invariant P3).
func TestCRC32CRunning(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	backing := make([]byte, 4096+8)
	for i := range backing {
		backing[i] = byte(r.Uint32())
	}
	for iter := range 2000 {
		align := iter % 8
		n := r.IntN(4096)
		p := backing[align : align+n]
		split := 0
		if n > 0 {
			split = r.IntN(n + 1)
		}
		got := CRC32C(CRC32C(0, p[:split]), p[split:])
		if want := crc32cReference(p); got != want {
			t.Fatalf("len %d align %d split %d: %#x, want %#x", n, align, split, got, want)
		}
	}
}

func TestPad(t *testing.T) {
	for n := uint32(0); n < 16; n++ {
		p := Pad(n)
		if (n+uint32(len(p)))%4 != 0 || len(p) > 3 {
			t.Errorf("Pad(%d) = %d bytes", n, len(p))
		}
		for _, b := range p {
			if b != 0 {
				t.Errorf("Pad(%d) not zero", n)
			}
		}
	}
}

func TestSerialNumbers(t *testing.T) {
	tests := []struct {
		a, b          SN
		less, greater bool
	}{
		{1, 2, true, false},
		{2, 1, false, true},
		{5, 5, false, false},
		{0xffffffff, 0, true, false}, // wraps: 2^32-1 < 0
		{0, 0xffffffff, false, true},
		{0, 0x7fffffff, true, false},  // 2^31-1 apart: comparable
		{0, 0x80000000, false, false}, // 2^31 apart: undefined (RFC 1982 §3.2)
		{0x80000000, 0, false, false},
		{0xfffffff0, 0x0000000f, true, false},
	}
	for _, tc := range tests {
		if tc.a.Less(tc.b) != tc.less || tc.a.Greater(tc.b) != tc.greater {
			t.Errorf("%#x vs %#x: Less %v Greater %v, want %v %v",
				uint32(tc.a), uint32(tc.b), tc.a.Less(tc.b), tc.a.Greater(tc.b), tc.less, tc.greater)
		}
		if tc.a.LessEq(tc.b) != (tc.less || tc.a == tc.b) || tc.a.GreaterEq(tc.b) != (tc.greater || tc.a == tc.b) {
			t.Errorf("%#x vs %#x: LessEq/GreaterEq disagree", uint32(tc.a), uint32(tc.b))
		}
	}
	windows := []struct {
		sn, exp, max SN
		in           bool
		size         uint32
	}{
		{10, 10, 20, true, 11},
		{20, 10, 20, true, 11},
		{21, 10, 20, false, 11},
		{9, 10, 20, false, 11},
		{10, 10, 9, false, 0}, // closed window: MaxCmdSN = ExpCmdSN - 1
		{0, 0xfffffffe, 1, true, 4},
		{0xffffffff, 0xfffffffe, 1, true, 4},
		{2, 0xfffffffe, 1, false, 4},
	}
	for _, w := range windows {
		if got := w.sn.InWindow(w.exp, w.max); got != w.in {
			t.Errorf("%#x in [%#x, %#x] = %v, want %v", uint32(w.sn), uint32(w.exp), uint32(w.max), got, w.in)
		}
		if got := WindowSize(w.exp, w.max); got != w.size {
			t.Errorf("WindowSize(%#x, %#x) = %d, want %d", uint32(w.exp), uint32(w.max), got, w.size)
		}
	}
	if SN(0xffffffff).Add(2) != 1 {
		t.Error("Add does not wrap")
	}
}
