package cdb

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// pad16 extends a CDB to the 16 bytes iSCSI carries, with garbage after the CDB proper:
// Parse must not read past the opcode's CDB length (C1).
func pad16(b []byte) []byte {
	out := make([]byte, 16)
	for i := range out {
		out[i] = 0xee
	}
	copy(out, b)
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		cdb  string
		want Command
	}{
		// SPC-4 TEST UNIT READY: opcode and control only.
		{"test unit ready", "00 00 00 00 00 00", Command{Opcode: OpTestUnitReady, Size: 6}},
		// SPC-4 REQUEST SENSE: 1 DESC; 4 ALLOCATION LENGTH.
		{"request sense desc", "03 01 00 00 fc 00",
			Command{Opcode: OpRequestSense, Size: 6, Flags: FlagDesc, AllocationLength: 252}},
		// SPC-4 INQUIRY: 1 EVPD; 2 PAGE CODE; 3-4 ALLOCATION LENGTH.
		{"inquiry standard", "12 00 00 00 60 00",
			Command{Opcode: OpInquiry, Size: 6, AllocationLength: 96}},
		{"inquiry device identification page", "12 01 83 01 00 00",
			Command{Opcode: OpInquiry, Size: 6, Flags: FlagEVPD, PageCode: 0x83, AllocationLength: 256}},
		// SBC-3 READ(6): 1-3 LBA (21 bits), 4 TRANSFER LENGTH where 0 means 256.
		{"read(6) length 0 is 256", "08 1f ff ff 00 00",
			Command{Opcode: OpRead6, Size: 6, LBA: 0x1fffff, Blocks: 256}},
		{"write(6)", "0a 00 01 00 08 00",
			Command{Opcode: OpWrite6, Size: 6, LBA: 0x100, Blocks: 8}},
		// SBC-3 READ(10): 1 RDPROTECT DPO FUA; 2-5 LBA; 6 GROUP; 7-8 LENGTH.
		{"read(10) dpo fua group", "28 18 00 00 10 00 05 00 08 00",
			Command{Opcode: OpRead10, Size: 10, LBA: 0x1000, Blocks: 8, Group: 5, Flags: FlagDPO | FlagFUA}},
		{"read(10) rdprotect decoded", "28 60 00 00 00 01 00 00 01 00",
			Command{Opcode: OpRead10, Size: 10, LBA: 1, Blocks: 1, Protect: 3}},
		{"read(10) length 0 moves nothing", "28 00 00 00 00 01 00 00 00 00",
			Command{Opcode: OpRead10, Size: 10, LBA: 1}},
		// SBC-3 WRITE(10).
		{"write(10) fua", "2a 08 ff ff ff ff 00 ff ff 00",
			Command{Opcode: OpWrite10, Size: 10, LBA: 0xffffffff, Blocks: 0xffff, Flags: FlagFUA}},
		// SBC-3 READ(12): 2-5 LBA; 6-9 LENGTH; 10 GROUP.
		{"read(12)", "a8 00 00 00 00 01 00 00 01 00 03 00",
			Command{Opcode: OpRead12, Size: 12, LBA: 1, Blocks: 256, Group: 3}},
		{"write(12)", "aa 10 00 00 00 02 00 00 00 04 00 00",
			Command{Opcode: OpWrite12, Size: 12, LBA: 2, Blocks: 4, Flags: FlagDPO}},
		// SBC-3 READ(16)/WRITE(16): 2-9 LBA; 10-13 LENGTH; 14 GROUP.
		{"read(16) 64-bit lba", "88 00 ff ff ff ff ff ff ff fe 00 00 00 01 00 00",
			Command{Opcode: OpRead16, Size: 16, LBA: 0xfffffffffffffffe, Blocks: 1}},
		{"write(16) fua", "8a 08 00 00 00 01 00 00 00 00 00 00 00 10 07 00",
			Command{Opcode: OpWrite16, Size: 16, LBA: 1 << 32, Blocks: 16, Group: 7, Flags: FlagFUA}},
		// SBC-3 ORWRITE(16): 1 ORPROTECT DPO FUA.
		{"orwrite(16)", "8b 08 00 00 00 00 00 00 00 10 00 00 00 02 00 00",
			Command{Opcode: OpORWrite16, Size: 16, LBA: 16, Blocks: 2, Flags: FlagFUA}},
		// SBC-3 VERIFY(10): 1 VRPROTECT DPO BYTCHK(2-1).
		{"verify(10) bytchk 01", "2f 02 00 00 00 10 00 00 08 00",
			Command{Opcode: OpVerify10, Size: 10, LBA: 16, Blocks: 8, ByteCheck: 1}},
		{"verify(16) bytchk 11", "8f 16 00 00 00 00 00 00 00 20 00 00 00 40 00 00",
			Command{Opcode: OpVerify16, Size: 16, LBA: 32, Blocks: 64, ByteCheck: 3, Flags: FlagDPO}},
		// SBC-3 WRITE AND VERIFY(10).
		{"write and verify(10)", "2e 12 00 00 00 10 00 00 08 00",
			Command{Opcode: OpWriteAndVerify10, Size: 10, LBA: 16, Blocks: 8, ByteCheck: 1, Flags: FlagDPO}},
		{"write and verify(16)", "8e 00 00 00 00 00 00 00 00 10 00 00 00 08 00 00",
			Command{Opcode: OpWriteAndVerify16, Size: 16, LBA: 16, Blocks: 8}},
		// SBC-3 VERIFY(12) and WRITE AND VERIFY(12): 2-5 LBA; 6-9 LENGTH; 10 GROUP.
		{"verify(12) bytchk 01", "af 02 00 00 00 10 00 00 00 08 05 00",
			Command{Opcode: OpVerify12, Size: 12, LBA: 16, Blocks: 8, ByteCheck: 1, Group: 5}},
		{"write and verify(12)", "ae 00 00 00 00 10 00 00 01 00 00 00",
			Command{Opcode: OpWriteAndVerify12, Size: 12, LBA: 16, Blocks: 256}},
		// SBC-4 WRITE ATOMIC(16): the READ(16) layout.
		{"write atomic(16)", "9c 08 00 00 00 00 00 00 00 10 00 00 00 02 00 00",
			Command{Opcode: OpWriteAtomic16, Size: 16, LBA: 16, Blocks: 2, Flags: FlagFUA}},
		// SPC-4 PREVENT ALLOW MEDIUM REMOVAL: 4 PREVENT(1-0).
		{"prevent allow medium removal", "1e 00 00 00 01 00",
			Command{Opcode: OpPreventAllowMediumRemoval, Size: 6, Prevent: 1}},
		// SBC-3 READ DEFECT DATA(10)/(12): REQ_PLIST REQ_GLIST FORMAT; ALLOCATION LENGTH.
		{"read defect data(10)", "37 00 18 00 00 00 00 00 04 00",
			Command{Opcode: OpReadDefectData10, Size: 10, DefectRequest: 0x18, AllocationLength: 4}},
		{"read defect data(12)", "b7 0d 00 00 00 00 00 00 00 08 00 00",
			Command{Opcode: OpReadDefectData12, Size: 12, DefectRequest: 0x08, DefectListFormat: 5, AllocationLength: 8}},
		// SBC-3 PRE-FETCH: 1 IMMED(1).
		{"pre-fetch(10)", "34 02 00 00 00 10 00 00 08 00",
			Command{Opcode: OpPreFetch10, Size: 10, LBA: 16, Blocks: 8, Flags: FlagImmed}},
		{"pre-fetch(16)", "90 00 00 00 00 00 00 00 00 10 00 00 00 08 00 00",
			Command{Opcode: OpPreFetch16, Size: 16, LBA: 16, Blocks: 8}},
		// SBC-3 SYNCHRONIZE CACHE: length 0 means to the end of the medium.
		{"synchronize cache(10)", "35 02 00 00 00 00 00 00 00 00",
			Command{Opcode: OpSynchronizeCache10, Size: 10, Flags: FlagImmed}},
		{"synchronize cache(16)", "91 00 00 00 00 00 00 00 10 00 00 00 01 00 00 00",
			Command{Opcode: OpSynchronizeCache16, Size: 16, LBA: 0x1000, Blocks: 0x100}},
		// SBC-3 UNMAP: 1 ANCHOR(0); 6 GROUP; 7-8 PARAMETER LIST LENGTH.
		{"unmap", "42 00 00 00 00 00 00 00 18 00",
			Command{Opcode: OpUnmap, Size: 10, ParameterListLength: 24}},
		{"unmap anchor", "42 01 00 00 00 00 02 00 18 00",
			Command{Opcode: OpUnmap, Size: 10, ParameterListLength: 24, Group: 2, Flags: FlagAnchor}},
		// SBC-3 WRITE SAME: 1 WRPROTECT ANCHOR(4) UNMAP(3) … NDOB(0, 16 only).
		{"write same(10) unmap", "41 08 00 00 00 10 00 00 80 00",
			Command{Opcode: OpWriteSame10, Size: 10, LBA: 16, Blocks: 128, Flags: FlagUnmap}},
		{"write same(16) unmap anchor ndob", "93 19 00 00 00 00 00 00 00 10 00 00 00 80 00 00",
			Command{Opcode: OpWriteSame16, Size: 16, LBA: 16, Blocks: 128, Flags: FlagUnmap | FlagAnchor | FlagNDOB}},
		{"write same(16) zero blocks", "93 00 00 00 00 00 00 00 00 10 00 00 00 00 00 00",
			Command{Opcode: OpWriteSame16, Size: 16, LBA: 16}},
		// SBC-3 COMPARE AND WRITE: 2-9 LBA; 13 NUMBER OF LOGICAL BLOCKS; 14 GROUP.
		{"compare and write", "89 18 00 00 00 00 00 00 00 20 00 00 00 01 00 00",
			Command{Opcode: OpCompareAndWrite, Size: 16, LBA: 32, Blocks: 1, Flags: FlagDPO | FlagFUA}},
		// SBC-3 GET LBA STATUS (SERVICE ACTION IN(16) 12h).
		{"get lba status", "9e 12 00 00 00 00 00 00 10 00 00 00 10 00 00 00",
			Command{Opcode: OpServiceActionIn16, ServiceAction: SAGetLBAStatus, Size: 16, LBA: 0x1000, AllocationLength: 0x1000}},
		// SBC-3 READ CAPACITY(10): fixed 8 bytes of data.
		{"read capacity(10)", "25 00 00 00 00 00 00 00 00 00",
			Command{Opcode: OpReadCapacity10, Size: 10, AllocationLength: 8}},
		{"read capacity(10) pmi", "25 00 00 00 10 00 00 00 01 00",
			Command{Opcode: OpReadCapacity10, Size: 10, LBA: 0x1000, AllocationLength: 8, Flags: FlagPMI}},
		// SBC-3 READ CAPACITY(16) (SERVICE ACTION IN(16) 10h): 10-13 ALLOCATION LENGTH.
		{"read capacity(16)", "9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00",
			Command{Opcode: OpServiceActionIn16, ServiceAction: SAReadCapacity16, Size: 16, AllocationLength: 32}},
		// SPC-4 MODE SENSE(6): 1 DBD; 2 PC PAGE; 3 SUBPAGE; 4 ALLOCATION LENGTH.
		{"mode sense(6) all pages", "1a 08 3f 00 ff 00",
			Command{Opcode: OpModeSense6, Size: 6, Flags: FlagDBD, PageCode: 0x3f, AllocationLength: 255}},
		// SPC-4 MODE SENSE(10): 1 LLBAA DBD; 7-8 ALLOCATION LENGTH.
		{"mode sense(10) saved caching page", "5a 18 c8 01 00 00 00 10 00 00",
			Command{Opcode: OpModeSense10, Size: 10, Flags: FlagLLBAA | FlagDBD, PageControl: 3, PageCode: 8, SubpageCode: 1, AllocationLength: 4096}},
		// SPC-4 MODE SELECT: 1 PF(4) SP(0).
		{"mode select(6)", "15 11 00 00 18 00",
			Command{Opcode: OpModeSelect6, Size: 6, Flags: FlagPF | FlagSP, ParameterListLength: 24}},
		{"mode select(10)", "55 10 00 00 00 00 00 00 1c 00",
			Command{Opcode: OpModeSelect10, Size: 10, Flags: FlagPF, ParameterListLength: 28}},
		// SPC-4 PERSISTENT RESERVE IN: 1 SERVICE ACTION; 7-8 ALLOCATION LENGTH.
		{"persistent reserve in read keys", "5e 00 00 00 00 00 00 10 00 00",
			Command{Opcode: OpPersistentReserveIn, Size: 10, ServiceAction: PRInReadKeys, AllocationLength: 4096}},
		{"persistent reserve in full status", "5e 03 00 00 00 00 00 00 ff 00",
			Command{Opcode: OpPersistentReserveIn, Size: 10, ServiceAction: PRInReadFullStatus, AllocationLength: 255}},
		// SPC-4 PERSISTENT RESERVE OUT: 1 SA; 2 SCOPE TYPE; 5-8 PARAMETER LIST LENGTH.
		{"persistent reserve out register", "5f 00 00 00 00 00 00 00 18 00",
			Command{Opcode: OpPersistentReserveOut, Size: 10, ServiceAction: PROutRegister, ParameterListLength: 24}},
		{"persistent reserve out reserve write exclusive", "5f 01 01 00 00 00 00 00 18 00",
			Command{Opcode: OpPersistentReserveOut, Size: 10, ServiceAction: PROutReserve, PRType: PRWriteExclusive, ParameterListLength: 24}},
		{"persistent reserve out register ignores type", "5f 06 ff 00 00 00 00 00 18 00",
			Command{Opcode: OpPersistentReserveOut, Size: 10, ServiceAction: PROutRegisterAndIgnore, PRScope: 0xf, PRType: 0xf, ParameterListLength: 24}},
		// SPC-2 RESERVE(6), RELEASE(10).
		{"reserve(6)", "16 00 00 00 00 00", Command{Opcode: OpReserve6, Size: 6}},
		{"release(10)", "57 00 00 00 00 00 00 00 00 00", Command{Opcode: OpRelease10, Size: 10}},
		// SPC-4 REPORT LUNS: 2 SELECT REPORT; 6-9 ALLOCATION LENGTH.
		{"report luns", "a0 00 02 00 00 00 00 00 10 00 00 00",
			Command{Opcode: OpReportLUNs, Size: 12, SelectReport: 2, AllocationLength: 4096}},
		// SPC-4 REPORT SUPPORTED OPERATION CODES (MAINTENANCE IN 0Ch).
		{"report supported operation codes", "a3 0c 82 28 00 00 00 00 02 00 00 00",
			Command{Opcode: OpMaintenanceIn, Size: 12, ServiceAction: SAReportSupportedOperationCodes, Flags: FlagRCTD, ReportingOptions: 2, RequestedOpcode: OpRead10, AllocationLength: 512}},
		{"report supported operation codes with sa", "a3 0c 02 9e 00 10 00 00 00 20 00 00",
			Command{Opcode: OpMaintenanceIn, Size: 12, ServiceAction: SAReportSupportedOperationCodes, ReportingOptions: 2, RequestedOpcode: OpServiceActionIn16, RequestedServiceAction: SAReadCapacity16, AllocationLength: 32}},
		// SPC-4 REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (MAINTENANCE IN 0Dh).
		{"report supported tmfs", "a3 0d 80 00 00 00 00 00 00 10 00 00",
			Command{Opcode: OpMaintenanceIn, Size: 12, ServiceAction: SAReportSupportedTaskManagementFunc, Flags: FlagREPD, AllocationLength: 16}},
		// SBC-3 START STOP UNIT: 1 IMMED; 3 MODIFIER; 4 CONDITION NO_FLUSH LOEJ START.
		{"start stop unit eject", "1b 01 00 00 02 00",
			Command{Opcode: OpStartStopUnit, Size: 6, Flags: FlagImmed | FlagLoEj}},
		{"start stop unit power condition", "1b 00 00 01 25 00",
			Command{Opcode: OpStartStopUnit, Size: 6, PowerConditionModifier: 1, PowerCondition: 2, Flags: FlagNoFlush | FlagStart}},
	}
	for _, tc := range tests {
		raw := unhex(t, tc.cdb)
		got, err := Parse(pad16(raw))
		if err != nil {
			t.Errorf("%s: Parse(%s) = %v", tc.name, tc.cdb, err)
			continue
		}
		tc.want.Control = raw[len(raw)-1]
		if got != tc.want {
			t.Errorf("%s: Parse(%s)\n got %+v\nwant %+v", tc.name, tc.cdb, got, tc.want)
		}
		if got.Size != len(raw) {
			t.Errorf("%s: Size %d for a %d-byte CDB", tc.name, got.Size, len(raw))
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		cdb  string
		asc  ASC
		// field pointer: byte and bit (-1: whole byte); pointer false: no SKSV.
		pointer   bool
		byteIndex int
		bit       int
	}{
		{"unknown opcode (FORMAT UNIT)", "04 00 00 00 00 00", ASCInvalidCommandOperationCode, true, 0, -1},
		{"variable-length CDB", "7f 00 00 00 00 00 00 18", ASCInvalidCommandOperationCode, true, 0, -1},
		{"vendor-specific group", "c0 00 00 00 00 00", ASCInvalidCommandOperationCode, true, 0, -1},
		{"NACA set", "00 00 00 00 00 04", ASCInvalidFieldInCDB, true, 5, 2},
		{"LINK set", "28 00 00 00 00 00 00 00 01 01", ASCInvalidFieldInCDB, true, 9, 0},
		{"inquiry page without evpd", "12 00 83 00 ff 00", ASCInvalidFieldInCDB, true, 2, -1},
		{"inquiry cmddt", "12 02 00 00 ff 00", ASCInvalidFieldInCDB, true, 1, 1},
		{"verify bytchk 10", "8f 04 00 00 00 00 00 00 00 20 00 00 00 40 00 00", ASCInvalidFieldInCDB, true, 1, 2},
		{"write and verify bytchk 11", "8e 06 00 00 00 00 00 00 00 10 00 00 00 08 00 00", ASCInvalidFieldInCDB, true, 1, 2},
		{"write and verify(12) bytchk 11", "ae 06 00 00 00 00 00 00 00 08 00 00", ASCInvalidFieldInCDB, true, 1, 2},
		{"write same anchor without unmap", "93 10 00 00 00 00 00 00 00 10 00 00 00 80 00 00", ASCInvalidFieldInCDB, true, 1, 4},
		{"write same pbdata", "41 04 00 00 00 10 00 00 80 00", ASCInvalidFieldInCDB, true, 1, 2},
		{"write same lbdata", "41 02 00 00 00 10 00 00 80 00", ASCInvalidFieldInCDB, true, 1, 1},
		{"read capacity(10) lba without pmi", "25 00 00 00 10 00 00 00 00 00", ASCInvalidFieldInCDB, true, 2, -1},
		{"read capacity(16) lba without pmi", "9e 10 00 00 00 00 00 00 00 01 00 00 00 20 00 00", ASCInvalidFieldInCDB, true, 2, -1},
		{"service action in unknown sa", "9e 11 00 00 00 00 00 00 00 00 00 00 00 20 00 00", ASCInvalidFieldInCDB, true, 1, 4},
		{"maintenance in report target port groups", "a3 0a 00 00 00 00 00 00 10 00 00 00", ASCInvalidFieldInCDB, true, 1, 4},
		{"rsoc reporting options 5", "a3 0c 05 00 00 00 00 00 10 00 00 00", ASCInvalidFieldInCDB, true, 2, 2},
		{"pr in unknown sa", "5e 04 00 00 00 00 00 10 00 00", ASCInvalidFieldInCDB, true, 1, 4},
		{"pr out unknown sa", "5f 09 00 00 00 00 00 00 18 00", ASCInvalidFieldInCDB, true, 1, 4},
		{"pr out reserve bad type", "5f 01 02 00 00 00 00 00 18 00", ASCInvalidFieldInCDB, true, 2, 3},
		{"pr out reserve element scope", "5f 01 21 00 00 00 00 00 18 00", ASCInvalidFieldInCDB, true, 2, 7},
		{"reserve(6) third party", "16 10 00 00 00 00", ASCInvalidFieldInCDB, true, 1, 4},
		{"release(6) extent", "17 01 00 00 00 00", ASCInvalidFieldInCDB, true, 1, 0},
		{"release(10) longid", "57 02 00 00 00 00 00 00 00 00", ASCInvalidFieldInCDB, true, 1, 1},
		{"report luns select report 5", "a0 00 05 00 00 00 00 00 10 00 00 00", ASCInvalidFieldInCDB, true, 2, -1},
		{"truncated read(10)", "28 00 00", ASCInvalidFieldInCDB, false, 0, 0},
		{"empty", "", ASCInvalidFieldInCDB, false, 0, 0},
	}
	for _, tc := range tests {
		raw := unhex(t, tc.cdb)
		if len(raw) >= 6 {
			raw = pad16(raw)
		}
		_, err := Parse(raw)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: Parse = %v, want an *Error", tc.name, err)
			continue
		}
		if e.SenseKey() != KeyIllegalRequest || e.ASC() != tc.asc {
			t.Errorf("%s: sense %#x %s, want ILLEGAL REQUEST %s", tc.name, e.SenseKey(), e.ASC(), tc.asc)
		}
		b, bit, inCDB, ok := e.FieldPointer()
		if ok != tc.pointer || ok && (!inCDB || b != tc.byteIndex || bit != tc.bit) {
			t.Errorf("%s: field pointer byte %d bit %d cdb %v ok %v, want byte %d bit %d ok %v",
				tc.name, b, bit, inCDB, ok, tc.byteIndex, tc.bit, tc.pointer)
		}
	}
}

func TestParseNoAllocs(t *testing.T) {
	good := pad16(unhex(t, "28 00 00 00 10 00 00 00 08 00"))
	bad := pad16(unhex(t, "93 10 00 00 00 00 00 00 00 10 00 00 00 80 00 00"))
	unknown := pad16(unhex(t, "04 00 00 00 00 00"))
	for _, b := range [][]byte{good, bad, unknown} {
		if n := testing.AllocsPerRun(100, func() { _, _ = Parse(b) }); n != 0 {
			t.Errorf("Parse(% x) allocates %v times", b[:2], n)
		}
	}
}

func TestDirectionAndDataSize(t *testing.T) {
	tests := []struct {
		cdb  string
		dir  Direction
		size uint64 // with 512-byte blocks
	}{
		{"28 00 00 00 00 00 00 00 08 00", DirIn, 4096},
		{"0a 00 00 00 00 00", DirOut, 256 * 512},
		{"89 00 00 00 00 00 00 00 00 00 00 00 00 02 00 00", DirOut, 2 * 2 * 512},
		{"2f 00 00 00 00 00 00 00 08 00", DirNone, 0},
		{"2f 02 00 00 00 00 00 00 08 00", DirOut, 4096},
		{"8f 06 00 00 00 00 00 00 00 00 00 00 00 08 00 00", DirOut, 512},
		{"93 08 00 00 00 00 00 00 00 00 00 00 00 08 00 00", DirOut, 512},
		{"93 09 00 00 00 00 00 00 00 00 00 00 00 08 00 00", DirNone, 0},
		{"42 00 00 00 00 00 00 00 18 00", DirOut, 24},
		{"12 00 00 00 60 00", DirIn, 96},
		{"25 00 00 00 00 00 00 00 00 00", DirIn, 8},
		{"35 00 00 00 00 00 00 00 00 00", DirNone, 0},
		{"00 00 00 00 00 00", DirNone, 0},
		{"5f 00 00 00 00 00 00 00 18 00", DirOut, 24},
	}
	for _, tc := range tests {
		c, err := Parse(pad16(unhex(t, tc.cdb)))
		if err != nil {
			t.Fatalf("%s: %v", tc.cdb, err)
		}
		if c.Direction() != tc.dir || c.DataSize(512) != tc.size {
			t.Errorf("%s: direction %d size %d, want %d %d", tc.cdb, c.Direction(), c.DataSize(512), tc.dir, tc.size)
		}
	}
}

func TestCheckRange(t *testing.T) {
	tests := []struct {
		lba    uint64
		blocks uint32
		cap    uint64
		ok     bool
	}{
		{0, 8, 8, true},
		{0, 9, 8, false},
		{8, 0, 8, true}, // zero-length at the end: nothing to transfer
		{9, 0, 8, false},
		{1<<64 - 1, 2, 1<<64 - 1, false}, // LBA+blocks overflows
		{1<<64 - 2, 1, 1<<64 - 1, true},
	}
	for _, tc := range tests {
		c := Command{LBA: tc.lba, Blocks: tc.blocks}
		err := c.CheckRange(tc.cap)
		if (err == nil) != tc.ok || err != nil && err != ErrLBAOutOfRange {
			t.Errorf("CheckRange(%d+%d in %d) = %v", tc.lba, tc.blocks, tc.cap, err)
		}
	}
	var c Command
	var e *Error
	if !errors.As(c.ProtectError(), &e) {
		t.Fatal("ProtectError is not an *Error")
	}
	if b, bit, _, _ := e.FieldPointer(); b != 1 || bit != 7 {
		t.Fatalf("ProtectError points at byte %d bit %d", b, bit)
	}
}

func TestSize(t *testing.T) {
	for op, want := range map[Opcode]int{0x00: 6, 0x1f: 6, 0x20: 10, 0x5f: 10, 0x60: 0, 0x7f: 0, 0x80: 16, 0x9f: 16, 0xa0: 12, 0xbf: 12, 0xc0: 0, 0xff: 0} {
		if got := Size(op); got != want {
			t.Errorf("Size(%#02x) = %d, want %d", uint8(op), got, want)
		}
	}
}
