package pdu

import (
	"errors"
	"testing"
)

var checkLimits = Limits{MaxRecvDataSegmentLength: 8192, ImmediateData: true, FirstBurstLength: 4096}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		role   Role
		hdr    string // 48 bytes as 12 words
		field  string // "" means valid
		offset int
		reason RejectReason
	}{
		{"nop-out ping", RoleTarget,
			"40800000 00000000 00000000 00000000 ffffffff ffffffff 00000001 00000001 00000000 00000000 00000000 00000000", "", 0, 0},
		{"nop-out reserved ITT without I bit", RoleTarget,
			"00800000 00000000 00000000 00000000 ffffffff ffffffff 00000001 00000001 00000000 00000000 00000000 00000000", "I bit", 0, ReasonProtocolError},
		{"nop-out byte 1 bit 7 clear", RoleTarget,
			"40000000 00000000 00000000 00000000 00000001 ffffffff 00000001 00000001 00000000 00000000 00000000 00000000", "byte 1 bit 7", 1, ReasonInvalidPDUField},
		{"target opcode sent to target", RoleTarget,
			"21800000 00000000 00000000 00000000 00000001 00000000 00000001 00000001 00000000 00000000 00000000 00000000", "opcode", 0, ReasonProtocolError},
		{"undefined initiator opcode", RoleTarget,
			"07800000 00000000 00000000 00000000 00000001 00000000 00000001 00000001 00000000 00000000 00000000 00000000", "opcode", 0, ReasonCommandNotSupported},
		{"vendor-specific opcode", RoleTarget,
			"1c800000 00000000 00000000 00000000 00000001 00000000 00000001 00000001 00000000 00000000 00000000 00000000", "opcode", 0, ReasonCommandNotSupported},
		{"read(10)", RoleTarget,
			"01c10000 00000000 00010000 00000000 00000010 00001000 00000020 00000030 28000000 00100000 08000000 00000000", "", 0, 0},
		{"command with AHS", RoleTarget,
			"01c10000 02000000 00010000 00000000 00000010 00001000 00000020 00000030 28000000 00100000 08000000 00000000", "", 0, 0},
		{"AHS on a data-out", RoleTarget,
			"05800000 01000200 00010000 00000000 00000010 00000077 00000000 00000031 00000000 00000001 00002000 00000000", "TotalAHSLength", 4, ReasonInvalidPDUField},
		{"data segment over MaxRecvDataSegmentLength", RoleTarget,
			"05800000 00002001 00010000 00000000 00000010 00000077 00000000 00000031 00000000 00000001 00002000 00000000", "DataSegmentLength", 5, ReasonProtocolError},
		{"EDTL without R or W", RoleTarget,
			"01810000 00000000 00010000 00000000 00000010 00001000 00000020 00000030 00000000 00000000 00000000 00000000", "R/W bits", 1, ReasonInvalidPDUField},
		{"F clear on a read", RoleTarget,
			"01410000 00000000 00010000 00000000 00000010 00001000 00000020 00000030 28000000 00100000 08000000 00000000", "F bit", 1, ReasonInvalidPDUField},
		{"immediate data on a read", RoleTarget,
			"01c10000 00000200 00010000 00000000 00000010 00001000 00000020 00000030 28000000 00100000 08000000 00000000", "DataSegmentLength", 5, ReasonProtocolError},
		{"immediate data within FirstBurstLength", RoleTarget,
			"01a10000 00001000 00010000 00000000 00000010 00002000 00000020 00000030 2a000000 00100000 10000000 00000000", "", 0, 0},
		{"immediate data over FirstBurstLength", RoleTarget,
			"01a10000 00001004 00010000 00000000 00000010 00002000 00000020 00000030 2a000000 00100000 10000000 00000000", "DataSegmentLength", 5, ReasonProtocolError},
		{"immediate data over EDTL", RoleTarget,
			"01a10000 00000400 00010000 00000000 00000010 00000200 00000020 00000030 2a000000 00100000 01000000 00000000", "DataSegmentLength", 5, ReasonProtocolError},
		{"unsolicited data follows a write", RoleTarget,
			"01210000 00000200 00010000 00000000 00000010 00002000 00000020 00000030 2a000000 00100000 10000000 00000000", "", 0, 0},
		{"task management with data", RoleTarget,
			"42810000 00000004 00010000 00000000 00000099 00000010 00000021 00000031 00000020 00000000 00000000 00000000", "DataSegmentLength", 5, ReasonInvalidPDUField},
		{"task management bit 7 clear", RoleTarget,
			"42010000 00000000 00010000 00000000 00000099 00000010 00000021 00000031 00000020 00000000 00000000 00000000", "byte 1 bit 7", 1, ReasonInvalidPDUField},
		{"login request", RoleTarget,
			"43810000 00000100 80123456 789a0000 00000000 00010000 00000001 00000000 00000000 00000000 00000000 00000000", "", 0, 0},
		{"login request without I bit", RoleTarget,
			"03810000 00000100 80123456 789a0000 00000000 00010000 00000001 00000000 00000000 00000000 00000000 00000000", "I bit", 0, ReasonInvalidPDUField},
		{"text request F and C", RoleTarget,
			"04c00000 00000010 00000000 00000000 00000002 ffffffff 00000003 00000004 00000000 00000000 00000000 00000000", "F/C bits", 1, ReasonProtocolError},
		{"logout reason 3", RoleTarget,
			"46830000 00000000 00000000 00000000 00000005 00000000 00000009 0000000a 00000000 00000000 00000000 00000000", "reason code", 1, ReasonInvalidPDUField},
		{"snack is framed", RoleTarget,
			"10810000 00000000 00000000 00000000 00000010 ffffffff 00000000 00000031 00000000 00000000 00000000 00000000", "", 0, 0},
		{"data-in", RoleInitiator,
			"25830000 00001000 00010000 00000000 00000010 ffffffff 00000100 00000021 00000040 00000000 00000000 00000200", "", 0, 0},
		{"initiator opcode sent to initiator", RoleInitiator,
			"01c10000 00000000 00010000 00000000 00000010 00001000 00000020 00000030 28000000 00100000 08000000 00000000", "opcode", 0, ReasonProtocolError},
		{"data-in S without F", RoleInitiator,
			"25010000 00001000 00010000 00000000 00000010 ffffffff 00000100 00000021 00000040 00000000 00000000 00000000", "S bit", 1, ReasonInvalidPDUField},
		{"data-in U without S", RoleInitiator,
			"25020000 00001000 00010000 00000000 00000010 ffffffff 00000100 00000021 00000040 00000000 00000000 00000200", "O/U bits", 1, ReasonInvalidPDUField},
		{"scsi response O and U", RoleInitiator,
			"21860002 00000000 00000000 00000000 00000010 00000000 00000100 00000021 00000040 00000001 00000000 00000200", "O/U bits", 1, ReasonInvalidPDUField},
		{"r2t with data", RoleInitiator,
			"31800000 00000004 00010000 00000000 00000010 00000077 00000100 00000021 00000040 00000001 00002000 00010000", "DataSegmentLength", 5, ReasonInvalidPDUField},
		{"login response T and C", RoleInitiator,
			"23c70000 00000040 80123456 789a0001 00000000 00000000 00000001 00000001 00000040 00000000 00000000 00000000", "byte 1 bits 7/6", 1, ReasonProtocolError},
	}
	for _, tc := range tests {
		h := BHSOf(unhex(t, tc.hdr))
		err := h.Check(tc.role, checkLimits)
		var fe *FieldError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: Check = %v, want nil", tc.name, err)
		case tc.field == "":
		case !errors.As(err, &fe):
			t.Errorf("%s: Check = %v, want a FieldError on %s", tc.name, err, tc.field)
		case fe.Field != tc.field || fe.Offset != tc.offset || fe.Reason != tc.reason:
			t.Errorf("%s: Check = %q at %d (%s), want %q at %d (%s)",
				tc.name, fe.Field, fe.Offset, fe.Reason, tc.field, tc.offset, tc.reason)
		}
	}
}

func TestCheckNoAllocs(t *testing.T) {
	h := BHSOf(unhex(t, "01c10000 00000000 00010000 00000000 00000010 00001000 00000020 00000030 28000000 00100000 08000000 00000000"))
	if n := testing.AllocsPerRun(100, func() { _ = h.Check(RoleTarget, checkLimits) }); n != 0 {
		t.Fatalf("Check allocates %v times on success", n)
	}
}

func TestFieldErrorFatal(t *testing.T) {
	if !(&FieldError{Reason: ReasonNone}).Fatal() || (&FieldError{Reason: ReasonDataDigest}).Fatal() {
		t.Fatal("Fatal must be true exactly for ReasonNone")
	}
	msg := (&FieldError{"DataSegmentLength", 5, 9000, "<= 8192", ReasonProtocolError}).Error()
	want := "pdu: DataSegmentLength (offset 5) = 0x2328, want <= 8192: protocol-error"
	if msg != want {
		t.Fatalf("Error() = %q, want %q", msg, want)
	}
}

func TestCheckAHS(t *testing.T) {
	tests := []struct {
		name, ahs string
		field     string
		offset    int
	}{
		// Extended CDB for a 32-byte CDB: AHSLength 17 (reserved byte + 16 CDB bytes),
		// 3+17 = 20 bytes, already 4-aligned (RFC 7143 §11.2.2).
		{"extended cdb", "0011 01 00 " + "00112233 44556677 8899aabb ccddeeff", "", 0},
		// Bidirectional read length: AHSLength 5, 8 bytes (RFC 7143 §11.2.2).
		{"bidi read length", "0005 02 00 00001000", "", 0},
		{"both", "0005 02 00 00001000 0011 01 00 00112233 44556677 8899aabb ccddeeff", "", 0},
		{"zero length", "0000 01 00", "AHSLength", 48},
		{"overruns region", "0009 01 00 00000000", "AHSLength", 48},
		{"bad bidi length", "0009 02 00 00000000 00000000 00000000", "AHSLength", 48},
		{"unknown type", "0001 07 00", "AHSType", 50},
		{"twice", "0005 02 00 00001000 0005 02 00 00002000", "AHSType", 58},
		{"trailing bytes", "0005 02 00 00001000 0001", "AHSLength", 56},
	}
	for _, tc := range tests {
		err := CheckAHS(unhex(t, tc.ahs))
		var fe *FieldError
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.As(err, &fe) || fe.Field != tc.field || fe.Offset != tc.offset {
			t.Errorf("%s: CheckAHS = %v, want %s at %d", tc.name, err, tc.field, tc.offset)
		}
	}
	ahs := unhex(t, "0005 02 00 00001000 0011 01 00 00112233 44556677 8899aabb ccddeeff")
	if n, ok := BidiReadDataLength(ahs); !ok || n != 0x1000 {
		t.Errorf("BidiReadDataLength = %d, %v", n, ok)
	}
	if ext, ok := ExtendedCDB(ahs); !ok || len(ext) != 16 || ext[0] != 0x00 || ext[15] != 0xff {
		t.Errorf("ExtendedCDB = % x, %v", ext, ok)
	}
}

func TestAppendAHS(t *testing.T) {
	cdb := make([]byte, 32)
	for i := range cdb {
		cdb[i] = byte(i)
	}
	ahs := AppendExtendedCDBAHS(nil, cdb)
	ahs = AppendBidiReadDataLengthAHS(ahs, 0x1234)
	if len(ahs)%4 != 0 {
		t.Fatalf("AHS of %d bytes is not 4-aligned", len(ahs))
	}
	if err := CheckAHS(ahs); err != nil {
		t.Fatal(err)
	}
	ext, _ := ExtendedCDB(ahs)
	if string(ext) != string(cdb[16:]) {
		t.Fatalf("extended CDB round trip: % x", ext)
	}
	if n, _ := BidiReadDataLength(ahs); n != 0x1234 {
		t.Fatalf("bidi length %#x", n)
	}
	// A 17-byte CDB leaves 1 spill byte: AHSLength 2, 5 bytes, padded to 8.
	if got := AppendExtendedCDBAHS(nil, make([]byte, 17)); len(got) != 8 || got[1] != 2 {
		t.Fatalf("17-byte CDB AHS % x", got)
	}
}
