package pdu

import (
	"bytes"
	"testing"
)

// targetStream is what a target receives from a host on an I/O queue after IC: commands with
// and without in-capsule data and H2CData answering R2Ts.
func targetStream(tb testing.TB, s Sender, rounds int) []byte {
	var out []byte
	b := make([]byte, 256)
	data := bytes.Repeat([]byte{0x5A}, 4096)
	for i := 0; i < rounds; i++ {
		var sqe [SQESize]byte
		sqe[0] = 0x01
		putLE16(sqe[:], 2, uint16(i))
		n := s.EncodeCapsuleCmd(b, &sqe, 512)
		out = append(out, b[:n]...)
		out = append(out, data[:512]...)
		if s.DataDigest {
			out = PutDigestAppend(out, Digest(data[:512]))
		}
		n = s.EncodeCapsuleCmd(b, &sqe, 0)
		out = append(out, b[:n]...)
		n = s.EncodeH2CData(b, DataFields{CCCID: uint16(i), TTAG: 1, DataLen: 4096, Last: true})
		out = append(out, b[:n]...)
		out = append(out, data...)
		if s.DataDigest {
			out = PutDigestAppend(out, Digest(data))
		}
	}
	return out
}

// PutDigestAppend appends a digest (a test helper).
func PutDigestAppend(b []byte, crc uint32) []byte {
	b = append(b, 0, 0, 0, 0)
	PutDigest(b[len(b)-DigestSize:], crc)
	return b
}

// F5: a valid stream goes through Feed, Next and DataInto without allocating.
func TestFramerAllocsPerRun(t *testing.T) {
	s := Sender{HeaderDigest: true, DataDigest: true}
	lim := Limits{ICDone: true, HeaderDigest: true, DataDigest: true, CapsuleDataMax: 8192, DataMax: 65536}
	stream := targetStream(t, s, 16)
	f, err := NewFramer(FramerConfig{Role: Controller, Limits: lim, Direct: Types(TypeH2CData)})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetLimits(lim); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 65536)
	pdus := 0
	allocs := testing.AllocsPerRun(50, func() {
		for p := stream; len(p) > 0; {
			n := f.Feed(p[:min(len(p), 1500)]) // an Ethernet frame at a time
			p = p[n:]
			for {
				fr, err := f.Next()
				if err != nil {
					panic(err)
				}
				if fr.Kind == KindNeedMore {
					break
				}
				pdus++
				if fr.Kind == KindDataHeader {
					f.DataInto(dst[:fr.DataLen])
				}
			}
		}
	})
	if allocs != 0 {
		t.Errorf("AllocsPerRun = %v, want 0", allocs)
	}
	if want := 51 * 16 * 4; pdus != want { // 3 PDUs and a data-done per round, 51 runs
		t.Errorf("%d frames, want %d", pdus, want)
	}
}

func BenchmarkFramer(b *testing.B) {
	s := Sender{HeaderDigest: true, DataDigest: true}
	lim := Limits{ICDone: true, HeaderDigest: true, DataDigest: true, CapsuleDataMax: 8192, DataMax: 65536}
	stream := targetStream(b, s, 64)
	f, _ := NewFramer(FramerConfig{Role: Controller, Limits: lim, Direct: Types(TypeH2CData)})
	if err := f.SetLimits(lim); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 65536)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		for p := stream; len(p) > 0; {
			data, buf := f.Space()
			n := copy(data, p)
			n += copy(buf, p[n:])
			f.Commit(n)
			p = p[n:]
			for {
				fr, err := f.Next()
				if err != nil {
					b.Fatal(err)
				}
				if fr.Kind == KindNeedMore {
					break
				}
				if fr.Kind == KindDataHeader {
					f.DataInto(dst[:fr.DataLen])
				}
			}
		}
	}
}

// Direct data: once the buffered bytes are copied, Space hands out the caller's buffer itself,
// so a read(2) lands the rest of the data there without a copy (F3).
func TestFramerSpaceLandsDataInPlace(t *testing.T) {
	s := Sender{DataDigest: true}
	lim := Limits{ICDone: true, DataDigest: true, CapsuleDataMax: 8192, DataMax: 8192}
	f, err := NewFramer(FramerConfig{Role: Controller, Limits: lim, Direct: Types(TypeH2CData)})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetLimits(lim); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 8000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	hdr := make([]byte, 64)
	n := s.EncodeH2CData(hdr, DataFields{CCCID: 1, TTAG: 2, DataLen: uint32(len(data)), Last: true})
	wire := append(append(hdr[:n:n], data...), 0, 0, 0, 0)
	PutDigest(wire[len(wire)-4:], Digest(data))
	wire = append(wire, 0x55) // the next PDU's first byte

	// The first read brings the header and 100 data bytes.
	if f.Feed(wire[:n+100]) != n+100 {
		t.Fatal("feed")
	}
	fr, err := f.Next()
	if err != nil || fr.Kind != KindDataHeader || fr.DataLen != 8000 || DataHeaderOf(fr.Header).TTAG() != 2 {
		t.Fatalf("Next = %+v, %v", fr, err)
	}
	dst := make([]byte, 8000)
	f.DataInto(dst)
	sp, buf := f.Space()
	if len(sp) != 7900 || &sp[0] != &dst[100] || len(buf) == 0 || f.Buffered() != 0 {
		t.Fatalf("Space: data %d bytes (at dst[100]: %v), buf %d, buffered %d", len(sp), len(sp) > 0 && &sp[0] == &dst[100], len(buf), f.Buffered())
	}
	// A readv fills the rest of dst, then the digest and the next byte go to the buffer.
	k := copy(sp, wire[n+100:])
	k += copy(buf, wire[n+100+k:])
	f.Commit(k)
	fr, err = f.Next()
	if err != nil || fr.Kind != KindDataDone || !bytes.Equal(dst, data) || &fr.Data[0] != &dst[0] {
		t.Fatalf("data done: %+v %v", fr.Kind, err)
	}
	if f.Buffered() != 1 {
		t.Errorf("buffered %d, want the next PDU's first byte", f.Buffered())
	}
	fr, err = f.Next()
	if err != nil || fr.Kind != KindNeedMore {
		t.Errorf("Next after data = %v %v", fr.Kind, err)
	}
}

func TestFramerConfigErrors(t *testing.T) {
	lim := Limits{ICDone: true, CapsuleDataMax: 8192, DataMax: 8192}
	for name, cfg := range map[string]FramerConfig{
		"no role":             {Limits: lim},
		"direct r2t":          {Role: Host, Limits: lim, Direct: Types(TypeR2T)},
		"direct c2h at ctrl":  {Role: Controller, Limits: lim, Direct: Types(TypeC2HData)},
		"buffer too small":    {Role: Controller, Limits: lim, BufferSize: 8192},
		"bad pda":             {Role: Host, Limits: Limits{PDA: 40}},
		"controller maxh2c 0": {Role: Controller, Limits: Limits{ICDone: true}},
	} {
		if _, err := NewFramer(cfg); err == nil {
			t.Errorf("%s: NewFramer accepted %+v", name, cfg)
		}
	}
	f, err := NewFramer(FramerConfig{Role: Controller, Limits: lim, BufferSize: 8192 + 255 + 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetLimits(Limits{ICDone: true, CapsuleDataMax: 8192, DataMax: 16384}); err == nil {
		t.Error("SetLimits beyond the buffer accepted")
	}
	if err := f.SetLimits(Limits{ICDone: true, DataMax: 100}); err == nil {
		t.Error("SetLimits with MAXH2CDATA 100 accepted")
	}
	f.Feed([]byte{0, 0, 0x80, 0, 0x80, 0, 0, 0})
	if fr, err := f.Next(); err != nil || fr.Kind != KindNeedMore {
		t.Fatalf("Next = %v %v", fr.Kind, err)
	}
	if err := f.SetLimits(lim); err == nil {
		t.Error("SetLimits in the middle of a PDU accepted")
	}
	if f.Limits() != (Limits{}) || f.FailedHeader() != nil {
		t.Error("Limits/FailedHeader before failure")
	}
	if got := BufferSizeMin(Controller, lim, Types(TypeH2CData, TypeCapsuleCmd)); got != pdoMax {
		t.Errorf("BufferSizeMin all direct = %d", got)
	}
	if got := BufferSizeMin(Host, Limits{DataMax: 100}, 0); got != 255+100+4 {
		t.Errorf("BufferSizeMin host = %d", got)
	}
}

// Programmer errors panic (STYLE: assertions), input errors never do.
func TestFramerMisusePanics(t *testing.T) {
	lim := Limits{ICDone: true, DataMax: 4096}
	newF := func() *Framer {
		f, _ := NewFramer(FramerConfig{Role: Host, Limits: lim, Direct: Types(TypeC2HData)})
		_ = f.SetLimits(lim)
		b := make([]byte, 64)
		n := Sender{}.EncodeC2HData(b, DataFields{DataLen: 16, Last: true})
		f.Feed(b[:n])
		if fr, err := f.Next(); err != nil || fr.Kind != KindDataHeader {
			t.Fatalf("setup: %v %v", fr.Kind, err)
		}
		return f
	}
	for name, fn := range map[string]func(){
		"next before DataInto":   func() { newF().Next() },
		"DataInto wrong size":    func() { newF().DataInto(make([]byte, 15)) },
		"DataInto twice":         func() { f := newF(); f.DataInto(make([]byte, 16)); f.DataInto(make([]byte, 16)) },
		"Discard without header": func() { f := newF(); f.Discard(); f.Discard() },
		"commit negative":        func() { newF().Commit(-1) },
		"commit past buffer":     func() { f := newF(); _, buf := f.Space(); f.Commit(len(buf) + 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
	// Discard skips the data (and a landing buffer is not needed).
	f := newF()
	f.Discard()
	f.Feed(make([]byte, 16))
	if fr, err := f.Next(); err != nil || fr.Kind != KindDataDone || fr.Data != nil || fr.DataLen != 16 {
		t.Errorf("discard: %+v %v", fr, err)
	}
	if KindDataDone.String() != "data-done" || KindNeedMore.String() != "need-more" || KindPDU.String() != "pdu" ||
		KindDataHeader.String() != "data-header" {
		t.Error("Kind names")
	}
}

// A failure is sticky (F5) and FailedHeader stays what was checked.
func TestFramerFailureIsSticky(t *testing.T) {
	f, _ := NewFramer(FramerConfig{Role: Controller, Limits: Limits{ICDone: true, DataMax: 4096}})
	f.Feed([]byte{0x05, 0, 0x18, 0, 0x18, 0, 0, 0, 1, 2, 3})
	_, err1 := f.Next()
	_, err2 := f.Next()
	if err1 == nil || err1 != err2 || len(f.FailedHeader()) != CommonHeaderSize {
		t.Errorf("errors %v / %v, failed header % x", err1, err2, f.FailedHeader())
	}
}
