package pdu

import (
	"errors"
	"math/rand"
	"testing"
)

var fuzzLimits = []Limits{
	{},
	{ICDone: true, CapsuleDataMax: 8192, DataMax: 65536},
	{ICDone: true, HeaderDigest: true, DataDigest: true, CapsuleDataMax: 8192, DataMax: 65536},
	{ICDone: true, HeaderDigest: true, PDA: 3, CapsuleDataMax: 512, DataMax: 4096},
	{ICDone: true, DataDigest: true, PDA: 31, CapsuleDataMax: 0, DataMax: 4096},
}

// FuzzCheck: any 8 bytes, any role and limits: Check never panics, a rejection names a field of
// the common header, and an accepted header obeys P1..P6, re-derived here independently.
func FuzzCheck(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < CommonHeaderSize {
			return
		}
		h := HeaderOf(b) // must not panic, whatever the bytes
		for _, role := range []Role{Controller, Host} {
			for _, lim := range fuzzLimits {
				err := h.Check(role, lim)
				if err != nil {
					var fe *FieldError
					if !errors.As(err, &fe) || fe.Offset >= CommonHeaderSize || fe.FES() > FESUnsupportedParameter {
						t.Fatalf("%v %+v: bad rejection %v", role, lim, err)
					}
					continue
				}
				assertAccepted(t, h, role, lim)
			}
		}
	})
}

// assertAccepted checks P1..P6 for a header Check accepted.
func assertAccepted(t *testing.T, h *CommonHeader, role Role, lim Limits) {
	t.Helper()
	typ, flags, hlen, pdo, plen := h.Type(), h.Flags(), uint32(h.HeaderLen()), uint32(h.PDUDataOffset()), h.PDULen()
	fail := func(rule string) { t.Fatalf("%v %+v accepted % x: breaks %s", role, lim, h[:], rule) }
	ic := typ == TypeICReq || typ == TypeICResp
	term := typ == TypeH2CTermReq || typ == TypeC2HTermReq
	wantHLEN := map[Type]uint32{TypeICReq: 128, TypeICResp: 128, TypeH2CTermReq: 24, TypeC2HTermReq: 24,
		TypeCapsuleCmd: 72, TypeCapsuleResp: 24, TypeH2CData: 24, TypeC2HData: 24, TypeR2T: 24}
	// P1
	if _, ok := wantHLEN[typ]; !ok || (role == Controller) != (typ%2 == 0) || !term && ic == lim.ICDone {
		fail("P1 type, direction, sequence")
	}
	// P2
	if hlen != wantHLEN[typ] {
		fail("P2 HLEN")
	}
	// P3
	hd := lim.ICDone && lim.HeaderDigest && !ic && !term
	l := h.Layout(lim)
	if flags&FlagHDGSTF != 0 != hd || l.HeaderDigest != hd ||
		flags&FlagDDGSTF != 0 != (l.DataDigest && l.DataLen > 0) ||
		flags&FlagSuccess != 0 && (typ != TypeC2HData || flags&FlagLastPDU == 0) ||
		flags&FlagLastPDU != 0 && typ != TypeH2CData && typ != TypeC2HData || flags&0xF0 != 0 {
		fail("P3 flags")
	}
	// P4
	full := hlen + digestLen(hd)
	switch {
	case term:
		if plen < hlen || l.DataLen != plen-hlen || l.DataOffset != hlen && l.DataLen > 0 {
			fail("P4 term req layout")
		}
	case l.DataLen == 0:
		if plen != full || pdo != 0 && pdo != full || typ != TypeCapsuleCmd && pdo != 0 {
			fail("P4 layout without data")
		}
	default:
		if pdo < full || pdo%((uint32(lim.PDA)+1)*4) != 0 || pdo != l.DataOffset ||
			plen != pdo+l.DataLen+digestLen(l.DataDigest) || l.DataLen < 1 {
			fail("P4 layout with data")
		}
	}
	if l.HeaderEnd() > pdoMax || l.PDULen != plen {
		fail("P4 header end")
	}
	// P5
	switch {
	case typ == TypeCapsuleCmd && l.DataLen > lim.CapsuleDataMax,
		(typ == TypeH2CData || typ == TypeC2HData) && l.DataLen > lim.DataMax,
		term && plen > TermReqPDUSizeMax,
		ic && plen != 128:
		fail("P5 limits")
	}
	// P6
	if (typ == TypeH2CData || typ == TypeC2HData) && l.DataLen == 0 ||
		(ic || typ == TypeCapsuleResp || typ == TypeR2T) && l.DataLen != 0 {
		fail("P6 data presence")
	}
}

// FuzzFramer: any bytes, any chunking, small buffers: the Framer never panics, never loses or
// repeats a byte, and everything it returns passed Check and CheckPSH (F1) with a layout that
// matches the frame.
func FuzzFramer(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		cfgByte, seed, stream := b[0], b[1], b[2:]
		role := Controller
		if cfgByte&1 != 0 {
			role = Host
		}
		neg := Limits{ICDone: true, HeaderDigest: cfgByte&2 != 0, DataDigest: cfgByte&4 != 0,
			PDA: [4]uint8{0, 1, 3, 31}[cfgByte>>3&3], CapsuleDataMax: 512, DataMax: 4096}
		var direct TypeSet
		if cfgByte&0x20 != 0 {
			direct = Types(TypeCapsuleCmd, TypeH2CData)
			if role == Host {
				direct = Types(TypeC2HData)
			}
		}
		cfg := FramerConfig{Role: role, Limits: neg, Direct: direct, BufferSize: BufferSizeMin(role, neg, direct)}
		fr, err := NewFramer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if cfgByte&0x40 != 0 {
			if err := fr.SetLimits(neg); err != nil {
				t.Fatal(err)
			}
		}
		rng := rand.New(rand.NewSource(int64(seed)))
		fed, accounted := 0, 0
		for {
			for {
				lim := fr.Limits()
				x, err := fr.Next()
				var fe *FieldError
				if errors.As(err, &fe) {
					hdr := fr.FailedHeader()
					if n := len(hdr); n != CommonHeaderSize && n != min(int(hdr[offHeaderLen]), TermReqDataMax) {
						t.Fatalf("failed header of %d bytes", n)
					}
					if _, again := fr.Next(); again != err {
						t.Fatal("failure not sticky")
					}
					if fe.FES() != FESNone {
						tb := make([]byte, TermReqPDUSizeMax)
						n := fe.TermReq(tb, role, hdr)
						peer := Host
						if role == Host {
							peer = Controller
						}
						if n == 0 || HeaderOf(tb).Check(peer, Limits{ICDone: true}) != nil {
							t.Fatalf("term req for %v does not pass the peer's check", fe)
						}
					}
					return
				}
				if err != nil && err != ErrDataDigest {
					t.Fatalf("Next: %v", err)
				}
				if x.Kind == KindNeedMore {
					break
				}
				accounted += assertFrame(t, fr, &x, role, lim, direct)
				switch {
				case x.Kind == KindDataHeader && rng.Intn(4) == 0:
					fr.Discard()
				case x.Kind == KindDataHeader:
					fr.DataInto(make([]byte, x.DataLen))
				case x.Kind == KindPDU && (x.Type() == TypeICReq || x.Type() == TypeICResp):
					if err := fr.SetLimits(neg); err != nil {
						t.Fatal(err)
					}
				}
			}
			if fr.st == stCommon && accounted != fed-fr.Buffered() {
				t.Fatalf("fed %d, frames account for %d, %d buffered", fed, accounted, fr.Buffered())
			}
			if len(stream) == 0 {
				return
			}
			n := fr.Feed(stream[:min(len(stream), 1+rng.Intn(64))])
			if n == 0 {
				t.Fatalf("stuck with %d buffered in state %v (F2)", fr.Buffered(), fr.st)
			}
			fed += n
			stream = stream[n:]
		}
	})
}

// assertFrame checks one frame (F1) and returns the stream bytes it accounts for.
func assertFrame(t *testing.T, fr *Framer, x *Frame, role Role, lim Limits, direct TypeSet) int {
	t.Helper()
	h := x.Common()
	if err := h.Check(role, lim); err != nil {
		t.Fatalf("returned a %v frame whose header fails Check: %v", x.Kind, err)
	}
	assertAccepted(t, h, role, lim)
	if err := CheckPSH(x.Header, lim); err != nil {
		t.Fatalf("returned a header failing CheckPSH: %v", err)
	}
	l := h.Layout(lim)
	if len(x.Header) != int(l.HeaderLen) {
		t.Fatalf("header of %d bytes, HLEN %d", len(x.Header), l.HeaderLen)
	}
	switch x.Kind {
	case KindPDU:
		if direct.Has(x.Type()) && l.DataLen > 0 || uint32(len(x.Data)) != l.DataLen {
			t.Fatalf("whole %v with %d data bytes, layout %+v", x.Type(), len(x.Data), l)
		}
		return int(l.PDULen)
	case KindDataHeader:
		if !direct.Has(x.Type()) || x.DataLen != l.DataLen || x.DataLen == 0 {
			t.Fatalf("data header for %v, %d bytes, layout %+v", x.Type(), x.DataLen, l)
		}
		return int(l.HeaderEnd())
	case KindDataDone:
		if x.Data != nil && uint32(len(x.Data)) != l.DataLen || x.DataLen != l.DataLen {
			t.Fatalf("data done with %d bytes, layout %+v", len(x.Data), l)
		}
		return int(l.DataLen + digestLen(l.DataDigest))
	}
	t.Fatalf("kind %v", x.Kind)
	return 0
}
