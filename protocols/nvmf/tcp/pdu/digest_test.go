package pdu

import (
	"math/rand"
	"testing"
)

// crc32cRef is CRC32C one bit at a time (reflected polynomial 82F63B78h, initial and final
// XOR FFFFFFFFh): the plain reference the table-driven and SSE4.2 paths are tested against.
func crc32cRef(p []byte) uint32 {
	crc := ^uint32(0)
	for _, b := range p {
		crc ^= uint32(b)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func TestDigestCheckValue(t *testing.T) {
	if got := crc32cRef([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("reference CRC32C(123456789) = %#08x, want e3069283", got)
	}
	if got := Digest([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("Digest(123456789) = %#08x, want e3069283", got)
	}
	b := make([]byte, 8)
	PutDigest(b[2:], 0xE3069283)
	if b[2] != 0x83 || b[5] != 0xE3 || DigestAt(b[2:]) != 0xE3069283 {
		t.Errorf("digest not stored little endian: % x", b)
	}
}

// Seeded random buffers at every start offset 0..7 (alignment) and split at every offset 0..7
// from either end and at a random point: the running value combines to the reference.
func TestDigestRunningMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, 9000+8)
	for iter := 0; iter < 600; iter++ {
		// Short buffers hit the byte-wise tails, long ones (> 3*1344) hash/crc32's
		// three-way SSE4.2 path.
		n := [3]int{rng.Intn(64), rng.Intn(1500), rng.Intn(len(buf) - 8)}[iter%3]
		rng.Read(buf)
		for start := 0; start < 8; start++ {
			p := buf[start : start+n]
			want := crc32cRef(p)
			if got := Digest(p); got != want {
				t.Fatalf("iter %d start %d len %d: Digest %#08x, reference %#08x", iter, start, n, got, want)
			}
			splits := []int{rng.Intn(n + 1)}
			for k := 0; k < 8; k++ {
				splits = append(splits, min(k, n), max(n-k, 0))
			}
			for _, s := range splits {
				if got := DigestUpdate(DigestUpdate(0, p[:s]), p[s:]); got != want {
					t.Fatalf("iter %d start %d len %d split %d: %#08x, reference %#08x", iter, start, n, s, got, want)
				}
			}
		}
	}
}

func TestHeaderDigest(t *testing.T) {
	b := make([]byte, 64)
	n := Sender{HeaderDigest: true}.EncodeCapsuleResp(b, &[CQESize]byte{1, 2, 3})
	if n != CapsuleRespSize+DigestSize || !HeaderDigestOK(b) {
		t.Fatalf("encoded resp: n %d ok %v", n, HeaderDigestOK(b))
	}
	if DigestAt(b[CapsuleRespSize:]) != crc32cRef(b[:CapsuleRespSize]) {
		t.Error("header digest is not CRC32C of the HLEN header bytes")
	}
	b[10] ^= 1
	if HeaderDigestOK(b) {
		t.Error("corrupt header passed")
	}
	SetHeaderDigest(b)
	if !HeaderDigestOK(b) {
		t.Error("SetHeaderDigest")
	}
}
