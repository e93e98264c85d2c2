package cdb

import (
	"errors"
	"testing"
)

func paramPointer(t *testing.T, err error) (int, int, bool) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not an *Error", err)
	}
	b, bit, inCDB, ok := e.FieldPointer()
	if ok && inCDB {
		t.Fatalf("parameter error points into the CDB")
	}
	return b, bit, ok
}

func TestUnmapParameters(t *testing.T) {
	// SBC-3: UNMAP DATA LENGTH 26h (n-1 = 40-2), BLOCK DESCRIPTOR DATA LENGTH
	// 20h, then descriptors (LBA 10h, 8 blocks) and (LBA 100h, 20h blocks).
	p := unhex(t, `0026 0020 00000000
		0000000000000010 00000008 00000000
		0000000000000100 00000020 00000000`)
	l, err := ParseUnmapParameters(p)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 {
		t.Fatalf("%d descriptors", l.Len())
	}
	if lba, n := l.At(1); lba != 0x100 || n != 0x20 {
		t.Fatalf("descriptor 1: %#x+%#x", lba, n)
	}
	if err := l.Check(0x120, 2, 0x20); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := l.Check(0x11f, 2, 0x20); err != ErrLBAOutOfRange {
		t.Fatalf("range past capacity: %v", err)
	}
	if b, _, _ := paramPointer(t, l.Check(0x1000, 1, 0x20)); b != 2 {
		t.Fatalf("too many descriptors points at %d", b)
	}
	if b, _, _ := paramPointer(t, l.Check(0x1000, 2, 0x10)); b != 8+16+8 {
		t.Fatalf("too many blocks points at %d", b)
	}

	if l, err := ParseUnmapParameters(nil); err != nil || l.Len() != 0 {
		t.Fatalf("empty list: %v %d", err, l.Len())
	}
	if _, err := ParseUnmapParameters(unhex(t, "0006 0000")); err != ErrParameterListLength {
		t.Fatalf("short header: %v", err)
	}
	if b, _, _ := paramPointer(t, second(ParseUnmapParameters(unhex(t, "0016 0020 00000000 0000000000000010 00000008 00000000")))); b != 2 {
		t.Fatalf("descriptor length overrun points at %d", b)
	}
	if b, _, _ := paramPointer(t, second(ParseUnmapParameters(unhex(t, "0040 0010 00000000 0000000000000010 00000008 00000000")))); b != 0 {
		t.Fatalf("data length overrun points at %d", b)
	}
	// A truncated last descriptor is ignored.
	l, err = ParseUnmapParameters(unhex(t, "001e 0018 00000000 0000000000000010 00000008 00000000 0000000000000020"))
	if err != nil || l.Len() != 1 {
		t.Fatalf("partial descriptor: %v, %d descriptors", err, l.Len())
	}
}

func second[T any](_ T, err error) error { return err }

// iscsiTID is an iSCSI TransportID (SPC-4 iSCSI TransportID, FORMAT CODE 00b): 05h, reserved,
// ADDITIONAL LENGTH 001Ch, then "iqn.1994-05.com.redhat:init" NUL-terminated (28).
const iscsiTID = "05 00 001c 69716e2e313939342d30352e636f6d2e7265646861743a696e697400"

func TestPROutParameters(t *testing.T) {
	// REGISTER: RK 0, SARK 1122334455667788, APTPL (SPC-4, byte 20 bit 0).
	basic := unhex(t, "0000000000000000 1122334455667788 00000000 01 00 0000")
	r, err := ParsePROutParameters(PROutRegister, basic)
	if err != nil {
		t.Fatal(err)
	}
	if r.ServiceActionKey != 0x1122334455667788 || !r.APTPL || r.SpecIPT || r.AllTgPt || r.TransportIDs != nil {
		t.Fatalf("%+v", r)
	}
	if _, err := ParsePROutParameters(PROutRegister, basic[:23]); err != ErrParameterListLength {
		t.Fatalf("23 bytes: %v", err)
	}
	if _, err := ParsePROutParameters(PROutReserve, append(basic, 0, 0, 0, 0)); err != ErrParameterListLength {
		t.Fatalf("28 bytes without SPEC_I_PT: %v", err)
	}

	// SPEC_I_PT with one iSCSI TransportID: 24 + 4 + 32 bytes.
	spec := unhex(t, "0000000000000000 00000000000000aa 00000000 0c 00 0000 00000020"+iscsiTID)
	r, err = ParsePROutParameters(PROutRegister, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !r.SpecIPT || !r.AllTgPt || len(r.TransportIDs) != 32 {
		t.Fatalf("%+v", r)
	}
	tid, rest, err := NextTransportID(r.TransportIDs, 28)
	if err != nil || len(rest) != 0 {
		t.Fatalf("NextTransportID: %v, %d left", err, len(rest))
	}
	if name, isid, ok := tid.ISCSIName(); !ok || name != "iqn.1994-05.com.redhat:init" || isid != "" {
		t.Fatalf("ISCSIName = %q %q %v", name, isid, ok)
	}
	if b, bit, _ := paramPointer(t, second(ParsePROutParameters(PROutReserve, spec))); b != 20 || bit != 3 {
		t.Fatalf("SPEC_I_PT on RESERVE points at byte %d bit %d", b, bit)
	}
	if _, err := ParsePROutParameters(PROutRegister, spec[:len(spec)-4]); err != ErrParameterListLength {
		t.Fatalf("TransportID length mismatch: %v", err)
	}

	// REGISTER AND MOVE (SPC-4): 17 UNREG|APTPL; 18-19 relative port 2;
	// 20-23 TransportID length 32.
	move := unhex(t, "0000000000000001 0000000000000002 00 03 0002 00000020"+iscsiTID)
	r, err = ParsePROutParameters(PROutRegisterAndMove, move)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Unreg || !r.APTPL || r.RelativeTargetPort != 2 || len(r.TransportIDs) != 32 {
		t.Fatalf("%+v", r)
	}
}

func TestTransportIDs(t *testing.T) {
	// FORMAT CODE 01b: "iqn.x,i,0x23d000000001" NUL-padded to a multiple of 4 (24).
	port := unhex(t, "45 00 0018 69716e2e782c692c3078323364303030303030303031 00 00")
	tid, _, err := NextTransportID(port, 0)
	if err != nil {
		t.Fatal(err)
	}
	if name, isid, ok := tid.ISCSIName(); !ok || name != "iqn.x" || isid != "23d000000001" {
		t.Fatalf("ISCSIName = %q %q %v", name, isid, ok)
	}
	// A Fibre Channel TransportID is 24 bytes.
	fc := make([]byte, 24)
	if tid, rest, err := NextTransportID(fc, 0); err != nil || len(tid) != 24 || len(rest) != 0 || tid.ProtocolID() != 0 {
		t.Fatalf("fc TransportID: %v", err)
	}
	if _, _, ok := TransportID(fc).ISCSIName(); ok {
		t.Fatal("FC TransportID has an iSCSI name")
	}
	bad := unhex(t, "05 00 0013 00000000")
	if b, _, _ := paramPointer(t, third(NextTransportID(bad, 40))); b != 42 {
		t.Fatalf("bad ADDITIONAL LENGTH points at %d", b)
	}
	if b, _, _ := paramPointer(t, third(NextTransportID(unhex(t, "05 00 0020 0000"), 40))); b != 40 {
		t.Fatalf("overrun points at %d", b)
	}
}

func third[A, B any](_ A, _ B, err error) error { return err }
