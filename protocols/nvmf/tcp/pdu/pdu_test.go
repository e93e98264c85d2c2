package pdu

import (
	"bytes"
	"fmt"
	"testing"
)

// The sender configurations every round trip runs under, and the receive limits that match.
var senders = []Sender{
	{},
	{HeaderDigest: true},
	{DataDigest: true},
	{HeaderDigest: true, DataDigest: true},
	{HeaderDigest: true, PDA: 3},
	{HeaderDigest: true, DataDigest: true, PDA: 31},
}

func limitsFor(s Sender) Limits {
	return Limits{ICDone: true, HeaderDigest: s.HeaderDigest, DataDigest: s.DataDigest, PDA: s.PDA,
		CapsuleDataMax: 8192, DataMax: 1 << 20}
}

// checkEncoded runs what a receiver runs on an encoded header part plus dataLen data bytes
// (and the data digest): Check, header digest, CheckPSH, Layout; it returns the layout.
func checkEncoded(t *testing.T, role Role, lim Limits, b []byte, n int, dataLen uint32) Layout {
	t.Helper()
	h := HeaderOf(b)
	if err := h.Check(role, lim); err != nil {
		t.Fatalf("Check: %v (header % x)", err, b[:n])
	}
	l := h.Layout(lim)
	if l.HeaderDigest && !HeaderDigestOK(b) {
		t.Fatal("header digest mismatch")
	}
	if err := CheckPSH(b[:l.HeaderLen], lim); err != nil {
		t.Fatalf("CheckPSH: %v", err)
	}
	if int(l.HeaderEnd()) != n || l.DataLen != dataLen {
		t.Fatalf("layout %+v, encoder wrote %d header bytes for %d data", l, n, dataLen)
	}
	if want := l.HeaderEnd() + l.DataLen + digestLen(l.DataDigest && l.DataLen > 0); dataLen > 0 && want != l.PDULen {
		t.Fatalf("PLEN %d, parts add to %d", l.PDULen, want)
	}
	for i := int(l.HeaderLen) + int(digestLen(l.HeaderDigest)); i < n; i++ {
		if b[i] != 0 {
			t.Fatalf("padding byte %d is %#x", i, b[i])
		}
	}
	return l
}

// dirty returns a buffer full of stale bytes: encoders must zero what they do not set (N3).
func dirty(n int) []byte { return bytes.Repeat([]byte{0xA5}, n) }

func TestRoundTripCapsules(t *testing.T) {
	for _, s := range senders {
		t.Run(fmt.Sprintf("%+v", s), func(t *testing.T) {
			lim := limitsFor(s)
			var sqe [SQESize]byte
			for i := range sqe {
				sqe[i] = byte(i + 1)
			}
			for _, dataLen := range []uint32{0, 1, 4096} {
				b := dirty(256)
				n := s.EncodeCapsuleCmd(b, &sqe, dataLen)
				l := checkEncoded(t, Controller, lim, b, n, dataLen)
				if *CapsuleCmdOf(b).SQE() != sqe || CapsuleCmdOf(b).Common().Type() != TypeCapsuleCmd {
					t.Error("SQE not carried")
				}
				if dataLen > 0 && int(l.DataOffset) != s.DataOffset(CapsuleCmdSize) {
					t.Errorf("PDO %d", l.DataOffset)
				}
			}
			// The SQE may already sit in the buffer.
			b := dirty(256)
			copy(b[8:], sqe[:])
			n := s.EncodeCapsuleCmd(b, CapsuleCmdOf(b).SQE(), 0)
			checkEncoded(t, Controller, lim, b, n, 0)
			if *CapsuleCmdOf(b).SQE() != sqe {
				t.Error("in-place SQE lost")
			}

			cqe := [CQESize]byte{0xAA, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x34, 0x12, 0, 0}
			b = dirty(64)
			n = s.EncodeCapsuleResp(b, &cqe)
			checkEncoded(t, Host, lim, b, n, 0)
			if *CapsuleRespOf(b).CQE() != cqe || CapsuleRespOf(b).Common().PDULen() != uint32(n) {
				t.Error("CQE not carried")
			}
			if s.EncodeCapsuleResp(make([]byte, n-1), &cqe) != 0 || s.EncodeCapsuleCmd(make([]byte, 10), &sqe, 0) != 0 {
				t.Error("short buffer not refused")
			}
		})
	}
}

func TestRoundTripData(t *testing.T) {
	for _, s := range senders {
		t.Run(fmt.Sprintf("%+v", s), func(t *testing.T) {
			lim := limitsFor(s)
			f := DataFields{CCCID: 0x1234, TTAG: 0x77, DataOffset: 8192, DataLen: 4096, Last: true}
			b := dirty(256)
			n := s.EncodeH2CData(b, f)
			checkEncoded(t, Controller, lim, b, n, f.DataLen)
			p := DataHeaderOf(b)
			if p.Common().Type() != TypeH2CData || p.CCCID() != 0x1234 || p.TTAG() != 0x77 || p.DataOffset() != 8192 ||
				p.DataLen() != 4096 || p.Common().Flags()&FlagLastPDU == 0 {
				t.Errorf("h2c read back: % x", b[:24])
			}

			f.Success = true
			b = dirty(256)
			n = s.EncodeC2HData(b, f)
			checkEncoded(t, Host, lim, b, n, f.DataLen)
			p = DataHeaderOf(b)
			if p.Common().Type() != TypeC2HData || p.TTAG() != 0 || p.Common().Flags()&(FlagLastPDU|FlagSuccess) != FlagLastPDU|FlagSuccess {
				t.Errorf("c2h read back: % x", b[:24])
			}

			b = dirty(64)
			n = s.EncodeR2T(b, R2TFields{CCCID: 3, TTAG: 4, R2TOffset: 512, R2TLen: 1 << 20})
			checkEncoded(t, Host, lim, b, n, 0)
			r := R2THeaderOf(b)
			if r.Common().Type() != TypeR2T || r.CCCID() != 3 || r.TTAG() != 4 || r.R2TOffset() != 512 || r.R2TLen() != 1<<20 {
				t.Errorf("r2t read back: % x", b[:24])
			}
		})
	}
}

// IC PDUs and their golden bytes (NVMe/TCP 1.0 "ICReq"/"ICResp": PFV 9:8, HPDA/CPDA 10, DGST
// 11, MAXR2T/MAXH2CDATA 15:12, reserved to 127).
func TestRoundTripIC(t *testing.T) {
	b := dirty(ICReqSize)
	if n := EncodeICReq(b, ICReqFields{HPDA: 0, HeaderDigest: true, DataDigest: true, MAXR2T: 0}); n != ICReqSize {
		t.Fatalf("EncodeICReq = %d", n)
	}
	if got, want := b[:16], unhex(t, "00 00 80 00 80000000 0000 00 03 00000000"); !bytes.Equal(got, want) {
		t.Errorf("icreq = % x, want % x", got, want)
	}
	checkEncoded(t, Controller, Limits{}, b, ICReqSize, 0)
	q := ICReqOf(b)
	if q.Common().Type() != TypeICReq || q.PFV() != 0 || q.HPDA() != 0 || q.DGST() != DGSTHeader|DGSTData || q.MAXR2T() != 0 {
		t.Error("icreq read back")
	}

	b = dirty(ICRespSize)
	if n := EncodeICResp(b, ICRespFields{CPDA: 2, DataDigest: true, MAXH2CData: 0x400000}); n != ICRespSize {
		t.Fatalf("EncodeICResp = %d", n)
	}
	if got, want := b[:16], unhex(t, "01 00 80 00 80000000 0000 02 02 00004000"); !bytes.Equal(got, want) {
		t.Errorf("icresp = % x, want % x", got, want)
	}
	checkEncoded(t, Host, Limits{}, b, ICRespSize, 0)
	p := ICRespOf(b)
	if p.Common().Type() != TypeICResp || p.PFV() != 0 || p.CPDA() != 2 || p.DGST() != DGSTData || p.MAXH2CData() != 0x400000 {
		t.Error("icresp read back")
	}
	if EncodeICReq(make([]byte, 127), ICReqFields{}) != 0 || EncodeICResp(make([]byte, 127), ICRespFields{MAXH2CData: 4096}) != 0 {
		t.Error("short buffer not refused")
	}
}

// A termination request carries FES at 9:8, FEI at 13:10 and the header in error as data.
func TestTermReqFromFieldError(t *testing.T) {
	bad := unhex(t, "04 00 40 00 48000000")
	bad = append(bad, make([]byte, 64)...)
	err := HeaderOf(bad).Check(Controller, limitPresets["plain"])
	fe, ok := err.(*FieldError)
	if !ok {
		t.Fatalf("Check = %v", err)
	}
	b := dirty(TermReqPDUSizeMax)
	n := fe.TermReq(b, Controller, bad)
	if n != TermReqHeaderSize+len(bad) {
		t.Fatalf("TermReq length %d", n)
	}
	if got, want := b[:TermReqHeaderSize], unhex(t, "03 00 18 00 60000000 0100 02000000 00000000000000000000"); !bytes.Equal(got, want) {
		t.Errorf("term req header = % x\nwant % x", got, want)
	}
	if !bytes.Equal(b[TermReqHeaderSize:n], bad) {
		t.Error("term req data is not the bad header")
	}
	if err := HeaderOf(b).Check(Host, Limits{ICDone: true}); err != nil {
		t.Errorf("our term req fails the host's check: %v", err)
	}
	tr := TermReqOf(b)
	if tr.Common().Type() != TypeC2HTermReq || tr.FES() != FESInvalidHeaderField || tr.FEI() != 2 {
		t.Error("term req read back")
	}

	// The data is cut at 128 bytes; hdr may alias b.
	long := dirty(300)
	copy(long, bad)
	n = EncodeTermReq(long, TypeH2CTermReq, FESHeaderDigestError, 0, long[:200])
	if n != TermReqPDUSizeMax || !bytes.Equal(long[TermReqHeaderSize:n], append(bad[:72:72], bytes.Repeat([]byte{0xA5}, 56)...)) {
		t.Errorf("long term req: %d bytes, data % x", n, long[24:40])
	}
	if EncodeTermReq(make([]byte, 30), TypeH2CTermReq, FESPDUSequenceError, 0, bad) != 0 {
		t.Error("short buffer not refused")
	}
	if (&FieldError{fes: FESNone}).TermReq(b, Host, bad) != 0 {
		t.Error("FESNone produced a term req")
	}
}

// Encoders assert what receivers check (STYLE: one condition on both sides of a boundary).
func TestEncodePanicsOnWhatCheckRejects(t *testing.T) {
	b := make([]byte, 256)
	for name, f := range map[string]func(){
		"h2c no data":          func() { Sender{}.EncodeH2CData(b, DataFields{}) },
		"h2c success":          func() { Sender{}.EncodeH2CData(b, DataFields{DataLen: 1, Success: true, Last: true}) },
		"c2h success not last": func() { Sender{}.EncodeC2HData(b, DataFields{DataLen: 1, Success: true}) },
		"r2t no data":          func() { Sender{}.EncodeR2T(b, R2TFields{}) },
		"sender pda 32":        func() { Sender{PDA: 32}.EncodeCapsuleResp(b, &[CQESize]byte{}) },
		"icreq hpda 32":        func() { EncodeICReq(b, ICReqFields{HPDA: 32}) },
		"icresp maxh2cdata":    func() { EncodeICResp(b, ICRespFields{MAXH2CData: 4095}) },
		"term req type":        func() { EncodeTermReq(b, TypeCapsuleCmd, FESInvalidHeaderField, 0, nil) },
		"term req fes none":    func() { EncodeTermReq(b, TypeC2HTermReq, FESNone, 0, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
