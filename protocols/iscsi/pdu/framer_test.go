package pdu

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// testPDU is one PDU of a generated stream and its encoding.
type testPDU struct {
	hdr  BHS
	ahs  []byte
	data []byte
	wire []byte
}

// encodePDU lays out BHS, AHS, header digest, data, zero padding and data digest.
func encodePDU(h BHS, ahs, data []byte, hd, dd bool) []byte {
	h.SetTotalAHSLength(uint8(len(ahs) / 4))
	h.SetDataSegmentLength(uint32(len(data)))
	w := append([]byte(nil), h[:]...)
	w = append(w, ahs...)
	if hd {
		w = PutDigestAppend(w, CRC32C(0, w))
	}
	w = append(w, data...)
	w = append(w, Pad(uint32(len(data)))...)
	if dd {
		w = PutDigestAppend(w, CRC32C(CRC32C(0, data), Pad(uint32(len(data)))))
	}
	return w
}

func PutDigestAppend(b []byte, crc uint32) []byte {
	var d [4]byte
	PutDigest(d[:], crc)
	return append(b, d[:]...)
}

func randomStream(r *rand.Rand, n int, dataMax int, hd, dd bool) []testPDU {
	pdus := make([]testPDU, n)
	for i := range pdus {
		p := &pdus[i]
		switch r.IntN(3) {
		case 0:
			c := p.hdr.InitSCSICommand()
			c.SetWrite(true)
			if r.IntN(2) == 0 {
				p.ahs = AppendBidiReadDataLengthAHS(nil, r.Uint32())
			}
		case 1:
			p.hdr.InitDataOut().SetDataSN(uint32(i))
		default:
			p.hdr.InitNOPOut()
		}
		p.hdr.SetITT(uint32(i))
		size := r.IntN(dataMax + 1)
		if r.IntN(4) == 0 {
			size = 0
		}
		p.data = make([]byte, size)
		for j := range p.data {
			p.data[j] = byte(r.Uint32())
		}
		p.wire = encodePDU(p.hdr, p.ahs, p.data, hd, dd)
	}
	return pdus
}

// feed drives f over wire in random read sizes, landing or discarding some data
// segments, and checks every PDU comes out whole and in order.
func feed(t *testing.T, r *rand.Rand, f *Framer, pdus []testPDU, wire []byte) {
	t.Helper()
	next, pos := 0, 0
	for next < len(pdus) {
		ev, err := f.Next()
		switch {
		case err != nil:
			t.Fatalf("pdu %d: %v", next, err)
		case ev == EventNeedMore:
			if pos == len(wire) {
				t.Fatalf("stream ended before pdu %d", next)
			}
			space := f.Space()
			n := min(len(space), len(wire)-pos, 1+r.IntN(3000))
			copy(space, wire[pos:pos+n])
			f.Commit(n)
			pos += n
		case ev == EventHeader:
			want := &pdus[next]
			if h := f.Header(); h.ITT() != want.hdr.ITT() || h.Opcode() != want.hdr.Opcode() {
				t.Fatalf("pdu %d: header ITT %d opcode %s", next, h.ITT(), h.Opcode())
			}
			if !bytes.Equal(f.AHS(), want.ahs) {
				t.Fatalf("pdu %d: AHS % x, want % x", next, f.AHS(), want.ahs)
			}
			switch r.IntN(4) {
			case 0:
				f.LandData(make([]byte, len(want.data)))
			case 1:
				f.Discard()
				next++ // a discarded PDU produces no EventPDU
			}
		case ev == EventPDU:
			want := &pdus[next]
			if !bytes.Equal(f.Data(), want.data) {
				t.Fatalf("pdu %d: data differs (%d bytes, want %d)", next, len(f.Data()), len(want.data))
			}
			if f.Header().ITT() != want.hdr.ITT() {
				t.Fatalf("pdu %d: header overwritten", next)
			}
			next++
		}
	}
	// A discarded last PDU may still have bytes to skip.
	for pos < len(wire) {
		space := f.Space()
		n := min(len(space), len(wire)-pos)
		copy(space, wire[pos:pos+n])
		f.Commit(n)
		pos += n
		if ev, err := f.Next(); ev != EventNeedMore || err != nil {
			t.Fatalf("skipping the tail: %v %v", ev, err)
		}
	}
	if ev, err := f.Next(); ev != EventNeedMore || err != nil || pos != len(wire) || f.Buffered() != 0 {
		t.Fatalf("after stream: %v %v, pos %d/%d, buffered %d", ev, err, pos, len(wire), f.Buffered())
	}
}

func TestFramerStream(t *testing.T) {
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 7))
		hd, dd := seed%2 == 1, seed%4 >= 2
		pdus := randomStream(r, 60, 9000, hd, dd)
		var wire []byte
		for _, p := range pdus {
			wire = append(wire, p.wire...)
		}
		bufSize := 0
		if seed%3 == 0 {
			bufSize = 64 << 10
		}
		f := NewFramer(FramerConfig{DataSegmentSizeMax: 9000, BufferSize: bufSize})
		f.SetDigests(hd, dd)
		feed(t, r, f, pdus, wire)
	}
}

func TestFramerHeaderDigestFatal(t *testing.T) {
	var h BHS
	h.InitNOPOut().BHS().SetITT(1)
	wire := encodePDU(h, nil, []byte("ping"), true, false)
	wire[3] ^= 1 // corrupt a reserved byte covered by the header digest
	f := NewFramer(FramerConfig{DataSegmentSizeMax: 8192})
	f.SetDigests(true, false)
	copy(f.Space(), wire)
	f.Commit(len(wire))
	_, err := f.Next()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "HeaderDigest" || fe.Offset != BHSSize || !fe.Fatal() {
		t.Fatalf("Next = %v, want a fatal HeaderDigest error at 48", err)
	}
	if _, err2 := f.Next(); err2 != err {
		t.Fatalf("fatal error not sticky: %v", err2)
	}
}

func TestFramerDataDigestRejects(t *testing.T) {
	var h1, h2 BHS
	h1.InitDataOut().BHS().SetITT(1)
	h2.InitNOPOut().BHS().SetITT(2)
	bad := encodePDU(h1, nil, []byte("hello"), false, true)
	bad[BHSSize] ^= 0x20 // flip a data bit
	good := encodePDU(h2, nil, []byte("ok"), false, true)
	f := NewFramer(FramerConfig{DataSegmentSizeMax: 8192})
	f.SetDigests(false, true)
	wire := append(bad, good...)
	copy(f.Space(), wire)
	f.Commit(len(wire))
	if ev, err := f.Next(); ev != EventHeader || err != nil {
		t.Fatalf("first Next = %v %v", ev, err)
	}
	ev, err := f.Next()
	var fe *FieldError
	if ev != EventPDU || !errors.As(err, &fe) || fe.Reason != ReasonDataDigest || fe.Offset != BHSSize+8 {
		t.Fatalf("Next = %v %v, want EventPDU with a data digest error at 56", ev, err)
	}
	if f.Header().ITT() != 1 {
		t.Fatal("rejected header not available for the Reject")
	}
	// The stream is intact: the next PDU follows.
	if ev, err := f.Next(); ev != EventHeader || err != nil || f.Header().ITT() != 2 {
		t.Fatalf("after data digest error: %v %v", ev, err)
	}
	if ev, err := f.Next(); ev != EventPDU || err != nil || string(f.Data()) != "ok" {
		t.Fatalf("second PDU: %v %v %q", ev, err, f.Data())
	}
}

func TestFramerOversizeNeedsLandOrDiscard(t *testing.T) {
	var h BHS
	h.InitDataOut()
	big := bytes.Repeat([]byte{7}, 20000)
	wire := encodePDU(h, nil, big, false, false)

	// Buffered in place it cannot fit: a fatal error naming DataSegmentLength.
	f := NewFramer(FramerConfig{DataSegmentSizeMax: 8192})
	n := copy(f.Space(), wire)
	f.Commit(n)
	if ev, _ := f.Next(); ev != EventHeader {
		t.Fatal("no header")
	}
	if _, err := f.Next(); err == nil || !err.(*FieldError).Fatal() {
		t.Fatalf("oversize in place: %v", err)
	}

	// Landed into the caller's buffer it arrives whole, read straight into dst.
	f = NewFramer(FramerConfig{DataSegmentSizeMax: 8192})
	dst := make([]byte, len(big))
	pos := 0
	for {
		ev, err := f.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev == EventHeader {
			f.LandData(dst)
			continue
		}
		if ev == EventPDU {
			break
		}
		space := f.Space()
		m := copy(space, wire[pos:])
		f.Commit(m)
		pos += m
	}
	if !bytes.Equal(dst, big) || &f.Data()[0] != &dst[0] {
		t.Fatal("landed data differs or was copied")
	}
}

func TestFramerNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	pdus := randomStream(r, 16, 4096, true, true)
	var wire []byte
	for _, p := range pdus {
		wire = append(wire, p.wire...)
	}
	f := NewFramer(FramerConfig{DataSegmentSizeMax: 8192})
	f.SetDigests(true, true)
	land := make([]byte, 8192)
	allocs := testing.AllocsPerRun(20, func() {
		pos := 0
		for count := 0; count < len(pdus); {
			ev, err := f.Next()
			if err != nil {
				panic(err)
			}
			switch ev {
			case EventNeedMore:
				space := f.Space()
				n := min(len(space), len(wire)-pos, 1500)
				copy(space, wire[pos:pos+n])
				f.Commit(n)
				pos += n
			case EventHeader:
				if f.Header().Opcode() == OpDataOut {
					f.LandData(land[:f.Header().DataSegmentLength()])
				}
			case EventPDU:
				count++
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("framer allocates %v times per stream", allocs)
	}
}
