package cdb

import (
	"bytes"
	"errors"
	"testing"
)

func TestSenseGolden(t *testing.T) {
	invalidCDB := Sense{Key: KeyIllegalRequest, ASC: ASCInvalidFieldInCDB, SenseKeySpecific: FieldPointer(1, 4, true)}
	tests := []struct {
		name       string
		s          Sense
		descriptor bool
		want       string
	}{
		// SPC-4 fixed format: 0 VALID|70h; 2 sense key; 3-6 INFORMATION;
		// 7 ADDITIONAL SENSE LENGTH 0Ah; 12 ASC; 13 ASCQ; 15-17 sense-key specific
		// (field pointer: SKSV|C/D|BPV|bit 4 = CCh, field pointer 0001h).
		{"fixed invalid field in cdb", invalidCDB, false,
			"70 00 05 00000000 0a 00000000 24 00 00 cc 0001"},
		{"fixed unrecovered read error at lba", Sense{Key: KeyMediumError, ASC: ASCUnrecoveredReadError, Information: 0x1234, InformationValid: true}, false,
			"f0 00 03 00001234 0a 00000000 11 00 00 000000"},
		{"fixed deferred, information beyond 32 bits", Sense{Key: KeyMediumError, ASC: ASCWriteError, Deferred: true, Information: 1 << 32, InformationValid: true}, false,
			"71 00 03 00000000 0a 00000000 0c 00 00 000000"},
		{"fixed unit attention capacity changed", Sense{Key: KeyUnitAttention, ASC: ASCCapacityDataChanged}, false,
			"70 00 06 00000000 0a 00000000 2a 09 00 000000"},
		// SPC-4 descriptor format: 0 72h; 1 sense key; 2 ASC; 3 ASCQ;
		// 7 ADDITIONAL SENSE LENGTH; descriptors. sense-key specific descriptor:
		// 02h, 06h, reserved(2), SKS(3), reserved(1).
		{"descriptor invalid field in cdb", invalidCDB, true,
			"72 05 24 00 000000 08 02 06 0000 cc 0001 00"},
		// information descriptor: 00h, 0Ah, VALID(80h), reserved, 8-byte INFORMATION.
		{"descriptor miscompare with 64-bit information", Sense{Key: KeyMiscompare, ASC: ASCMiscompareDuringVerify, Information: 0x1_0000_0200, InformationValid: true}, true,
			"72 0e 1d 00 000000 0c 00 0a 80 00 0000000100000200"},
		{"descriptor deferred, both descriptors", Sense{Key: KeyIllegalRequest, ASC: ASCInvalidFieldInParameterList, Deferred: true, Information: 7, InformationValid: true, SenseKeySpecific: FieldPointer(20, 3, false)}, true,
			"73 05 26 00 000000 14 00 0a 80 00 0000000000000007 02 06 0000 8b 0014 00"},
		{"descriptor power on", Sense{Key: KeyUnitAttention, ASC: ASCPowerOnOrReset}, true,
			"72 06 29 00 000000 00"},
	}
	for _, tc := range tests {
		want := unhex(t, tc.want)
		buf := bytes.Repeat([]byte{0xa5}, 64) // dirty: builders must zero what they write (C4)
		n := tc.s.Put(buf, tc.descriptor)
		if n != len(want) || !bytes.Equal(buf[:n], want) {
			t.Errorf("%s:\n got % x\nwant % x", tc.name, buf[:n], want)
		}
		if n > 0 && int(buf[7])+8 != n {
			t.Errorf("%s: ADDITIONAL SENSE LENGTH %d for %d bytes", tc.name, buf[7], n)
		}
		if short := tc.s.Put(buf[:n-1], tc.descriptor); short != 0 {
			t.Errorf("%s: Put into %d bytes = %d, want 0", tc.name, n-1, short)
		}
	}
}

func TestErrorSense(t *testing.T) {
	_, err := Parse(pad16(unhex(t, "9e 11 00 00 00 00 00 00 00 00 00 00 00 20 00 00")))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	s := e.Sense()
	var buf [FixedSenseSize]byte
	s.PutFixed(buf[:])
	// Unsupported service action: INVALID FIELD IN CDB pointing at byte 1, bit 4 (the
	// most significant bit of the 5-bit SERVICE ACTION field).
	if want := unhex(t, "70 00 05 00000000 0a 00000000 24 00 00 cc 0001"); !bytes.Equal(buf[:], want) {
		t.Fatalf("sense % x, want % x", buf, want)
	}
	if got := e.Error(); got != "cdb: sense key 0x5, ASC 24/00, CDB byte 1 bit 4" {
		t.Fatalf("Error() = %q", got)
	}
	_, err = Parse(pad16(unhex(t, "04 00 00 00 00 00")))
	if got := err.Error(); got != "cdb: sense key 0x5, ASC 20/00, CDB byte 0" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestASC(t *testing.T) {
	if ASCCapacityDataChanged.Code() != 0x2a || ASCCapacityDataChanged.Qualifier() != 0x09 {
		t.Fatal("ASC bytes")
	}
	if ASCLBAOutOfRange.String() != "21/00" {
		t.Fatal(ASCLBAOutOfRange.String())
	}
}
