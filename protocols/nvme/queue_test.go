package nvme

import (
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes hex with optional spaces, for golden bytes in tables.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// wantBytes fails unless b[off:off+len(want)] is want.
func wantBytes(t *testing.T, what string, b []byte, off int, want string) {
	t.Helper()
	w := unhex(t, want)
	if got := b[off : off+len(w)]; string(got) != string(w) {
		t.Errorf("%s: bytes %d..%d = % x, want % x", what, off, off+len(w)-1, got, w)
	}
}

func TestStatusNamesWalkEveryValue(t *testing.T) {
	seen := map[string]Status{}
	for s, name := range statusNames {
		if name == "" || strings.HasPrefix(s.String(), "status sct") {
			t.Errorf("status %#x has no name", uint16(s))
		}
		if other, dup := seen[name]; dup {
			t.Errorf("statuses %#x and %#x share the name %q", uint16(s), uint16(other), name)
		}
		seen[name] = s
		if MakeStatus(s.SCT(), s.SC()) != s {
			t.Errorf("%v: MakeStatus(SCT %d, SC %#x) = %#x", s, s.SCT(), s.SC(), uint16(MakeStatus(s.SCT(), s.SC())))
		}
	}
	if got := Status(0x2FF).String(); got != "status sct=0x2 sc=0xff" {
		t.Errorf("unknown status String = %q", got)
	}
	if !StatusSuccess.Success() || StatusInvalidField.Success() {
		t.Error("Success() wrong")
	}
}

// The CQE status field: P in bit 0, SC in 8:1, SCT in 11:9, CRD 13:12, M 14, DNR 15 (NVMe
// Base 2.0, "Completion Queue Entry: Status Field").
func TestCQEStatusBits(t *testing.T) {
	tests := []struct {
		status           Status
		phase, more, dnr bool
		crd              uint8
		word             string // bytes 15:14 as stored (little endian)
	}{
		{StatusSuccess, false, false, false, 0, "0000"},
		{StatusSuccess, true, false, false, 0, "0100"},
		{StatusInvalidField, false, false, true, 0, "0480"},             // SC 2<<1, DNR
		{StatusLBAOutOfRange, true, false, true, 0, "0181"},             // SC 0x80<<1 = 0x100
		{StatusConnectInvalidParameters, false, false, true, 0, "0483"}, // SCT 1<<9 | 0x82<<1
		{StatusUnrecoveredReadError, false, true, false, 2, "0265"},     // SCT 2, M, CRD 2
		{StatusTransientTransportError, false, false, false, 3, "4430"}, // SC 0x22<<1, CRD 3
	}
	for _, tc := range tests {
		var c CQE
		c.SetStatus(tc.status)
		c.SetPhase(tc.phase)
		c.SetMore(tc.more)
		c.SetDNR(tc.dnr)
		c.SetCRD(tc.crd)
		wantBytes(t, tc.status.String(), c[:], 14, tc.word)
		if c.Status() != tc.status || c.Phase() != tc.phase || c.More() != tc.more ||
			c.DNR() != tc.dnr || c.CRD() != tc.crd {
			t.Errorf("%v: read back status %v phase %v more %v dnr %v crd %d", tc.status,
				c.Status(), c.Phase(), c.More(), c.DNR(), c.CRD())
		}
		// N5: rewriting the status leaves the other bits.
		c.SetStatus(StatusSuccess)
		if c.Phase() != tc.phase || c.More() != tc.more || c.DNR() != tc.dnr || c.CRD() != tc.crd {
			t.Errorf("%v: SetStatus disturbed P/M/DNR/CRD", tc.status)
		}
	}
}

// CQE layout (NVMe Base 2.0, "Common Completion Queue Entry Layout"): DW0 0, DW1 4, SQHD 8,
// SQID 10, CID 12, status 14.
func TestCQEFields(t *testing.T) {
	var c CQE
	c.SetDW0(0x11223344)
	c.SetDW1(0x55667788)
	c.SetSQHD(0x0102)
	c.SetSQID(0x0304)
	c.SetCID(0xBEEF)
	wantBytes(t, "cqe", c[:], 0, "44332211 88776655 0201 0403 efbe 0000")
	if c.DW0() != 0x11223344 || c.DW1() != 0x55667788 || c.SQHD() != 0x0102 || c.SQID() != 0x0304 || c.CID() != 0xBEEF {
		t.Errorf("cqe read back wrong: % x", c[:])
	}
	if c.Result64() != 0x5566778811223344 {
		t.Errorf("Result64 = %#x", c.Result64())
	}
	c.SetResult64(0x0102030405060708)
	if c.DW0() != 0x05060708 || c.DW1() != 0x01020304 {
		t.Errorf("SetResult64: DW0 %#x DW1 %#x", c.DW0(), c.DW1())
	}
	c.Reset()
	if c != (CQE{}) {
		t.Error("Reset left bytes")
	}
	if CQEOf(make([]byte, 20)) == nil {
		t.Error("CQEOf nil")
	}
}

// SQE layout (NVMe Base 2.0, "Common Command Format"): opcode 0, FUSE bits 9:8 and PSDT 15:14 of
// CDW0 in byte 1, CID 3:2, NSID 7:4, MPTR 23:16, DPTR 39:24, CDW10 at 40 ... CDW15 at 60.
func TestSQEFields(t *testing.T) {
	var s SQE
	s.SetOpcode(uint8(IORead))
	s.SetFUSE(FuseFirst)
	s.SetPSDT(PSDTSGL)
	s.SetCID(0x1234)
	s.SetNSID(7)
	s.SetMPTR(0xAABBCCDD)
	s.SetPRP1(0x1000)
	s.SetPRP2(0x2000)
	s.SetCDW2(0x22)
	s.SetCDW3(0x33)
	for i := 10; i <= 15; i++ {
		s.SetCDW(i, uint32(0xA0+i))
	}
	wantBytes(t, "cdw0", s[:], 0, "02 41 3412")
	wantBytes(t, "nsid", s[:], 4, "07000000")
	wantBytes(t, "cdw2..3", s[:], 8, "22000000 33000000")
	wantBytes(t, "mptr", s[:], 16, "ddccbbaa00000000")
	wantBytes(t, "prp1/prp2", s[:], 24, "0010000000000000 0020000000000000")
	wantBytes(t, "cdw10", s[:], 40, "aa000000")
	wantBytes(t, "cdw15", s[:], 60, "af000000")
	if s.FUSE() != FuseFirst || s.PSDT() != PSDTSGL || s.Flags() != 0x41 {
		t.Errorf("flags: fuse %d psdt %d flags %#x", s.FUSE(), s.PSDT(), s.Flags())
	}
	if s.CID() != 0x1234 || s.NSID() != 7 || s.MPTR() != 0xAABBCCDD || s.PRP1() != 0x1000 || s.PRP2() != 0x2000 {
		t.Error("read back wrong")
	}
	got := []uint32{s.CDW2(), s.CDW3(), s.CDW10(), s.CDW11(), s.CDW12(), s.CDW13(), s.CDW14(), s.CDW15()}
	want := []uint32{0x22, 0x33, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("cdw read back %d: %#x want %#x", i, got[i], want[i])
		}
	}
	s.SetCDW10(1)
	s.SetCDW11(2)
	s.SetCDW12(3)
	s.SetCDW13(4)
	s.SetCDW14(5)
	s.SetCDW15(6)
	if s.CDW(10) != 1 || s.CDW(15) != 6 {
		t.Error("named CDW setters wrong")
	}
	s.SetFUSE(FuseNone)
	if s.PSDT() != PSDTSGL {
		t.Error("SetFUSE disturbed PSDT")
	}
	s.Reset()
	if s != (SQE{}) {
		t.Error("Reset left bytes")
	}
}

// Read/Write fields (NVM Command Set 1.0, "Read command"): SLBA in CDW11:10 at byte 40, NLB in
// CDW12 15:0 at byte 48, FUA bit 30, LR bit 31; DSM NR in CDW10 7:0, AD in CDW11 bit 2.
func TestSQECommandFields(t *testing.T) {
	var s SQE
	s.SetSLBA(0x0102030405060708)
	s.SetBlockCount(8)
	s.SetFUA(true)
	wantBytes(t, "slba", s[:], 40, "0807060504030201")
	wantBytes(t, "cdw12", s[:], 48, "07000040")
	if s.SLBA() != 0x0102030405060708 || s.NLB() != 7 || s.BlockCount() != 8 || !s.FUA() || s.LimitedRetry() {
		t.Errorf("rw read back: slba %#x nlb %d fua %v", s.SLBA(), s.NLB(), s.FUA())
	}
	s.SetBlockCount(1 << 16)
	if s.NLB() != 0xFFFF || !s.FUA() {
		t.Error("SetBlockCount(65536) wrong or disturbed FUA")
	}
	s.SetDeallocate(true)
	if !s.Deallocate() || s.CDW12()&(1<<25) == 0 {
		t.Error("DEAC")
	}

	var d SQE
	d.SetDSMRangeCount(3)
	d.SetDSMDeallocate(true)
	if d.CDW10() != 2 || d.CDW11() != 4 || d.DSMRangeCount() != 3 || !d.DSMDeallocate() {
		t.Errorf("dsm: cdw10 %#x cdw11 %#x", d.CDW10(), d.CDW11())
	}
	var r DSMRange
	r.SetAttributes(1)
	r.SetBlocks(16)
	r.SetSLBA(100)
	wantBytes(t, "dsm range", r[:], 0, "01000000 10000000 6400000000000000")
	if r.Attributes() != 1 || r.Blocks() != 16 || r.SLBA() != 100 {
		t.Error("dsm range read back")
	}

	var id SQE
	id.SetCNS(CNSActiveNSList)
	id.SetCNTID(0x0102)
	id.SetCSI(2)
	if id.CDW10() != 0x01020002 || id.CDW11() != 0x02000000 || id.CNS() != CNSActiveNSList || id.CNTID() != 0x0102 || id.CSI() != 2 {
		t.Errorf("identify: cdw10 %#x cdw11 %#x", id.CDW10(), id.CDW11())
	}

	var lp SQE
	lp.SetGetLogPage(LogDiscovery, 0x40000+8, 4096)
	// NUMD = 65537 dwords - 1 = 0x10001: NUMDL 0x0001 in CDW10 31:16, NUMDU 0x0001 in CDW11.
	if lp.CDW10() != 0x00010070 || lp.CDW11() != 1 || lp.LogOffset() != 4096 {
		t.Errorf("get log page: cdw10 %#x cdw11 %#x lpo %d", lp.CDW10(), lp.CDW11(), lp.LogOffset())
	}
	if lp.LID() != LogDiscovery || lp.LogDwords() != 0x10002 || lp.LSP() != 0 || lp.RAE() {
		t.Errorf("get log page read back: lid %#x dwords %#x", lp.LID(), lp.LogDwords())
	}

	var f SQE
	f.SetFID(FeatureKeepAliveTimer)
	f.SetCDW10(f.CDW10() | 2<<8 | 1<<31)
	if f.FID() != FeatureKeepAliveTimer || f.SEL() != FeatureSelectSaved || !f.SV() {
		t.Error("features")
	}
	if v := NumberOfQueues(4, 8); v != 0x00070003 {
		t.Errorf("NumberOfQueues = %#x", v)
	}
	if sq, cq := QueueCounts(0x00070003); sq != 4 || cq != 8 {
		t.Errorf("QueueCounts = %d %d", sq, cq)
	}
	var ab SQE
	ab.SetAbort(1, 0x55)
	if ab.CDW10() != 0x00550001 || ab.AbortSQID() != 1 || ab.AbortCID() != 0x55 {
		t.Error("abort")
	}
	ev := AsyncEvent(AsyncEventNotice, AsyncNoticeNSAttributeChanged, LogChangedNSList)
	if ev != 0x00040002 {
		t.Errorf("AsyncEvent = %#x", ev)
	}
	if typ, info, lid := ParseAsyncEvent(ev); typ != AsyncEventNotice || info != 0 || lid != LogChangedNSList {
		t.Error("ParseAsyncEvent")
	}
}

func TestSQEPanicsOnProgrammerError(t *testing.T) {
	for name, f := range map[string]func(){
		"block count 0":     func() { new(SQE).SetBlockCount(0) },
		"block count 65537": func() { new(SQE).SetBlockCount(1<<16 + 1) },
		"dsm ranges 0":      func() { new(SQE).SetDSMRangeCount(0) },
		"dsm ranges 257":    func() { new(SQE).SetDSMRangeCount(257) },
		"log page size 6":   func() { new(SQE).SetGetLogPage(LogErrorInfo, 6, 0) },
		"property size 2":   func() { new(SQE).Property().SetSize(2) },
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

func TestOpcodeNames(t *testing.T) {
	for op, name := range adminOpcodeNames {
		if op.String() != name {
			t.Errorf("%#x", uint8(op))
		}
	}
	for op, name := range ioOpcodeNames {
		if op.String() != name {
			t.Errorf("%#x", uint8(op))
		}
	}
	for ft, name := range fabricsTypeNames {
		if ft.String() != name {
			t.Errorf("%#x", uint8(ft))
		}
	}
	if AdminOpcode(0xEE).String() != "admin-opcode-0xee" || IOOpcode(0xEE).String() != "io-opcode-0xee" ||
		FabricsType(0xEE).String() != "fctype-0xee" {
		t.Error("unknown opcode names")
	}
	// The direction bits the spec encodes in every opcode and FCTYPE.
	for _, tc := range []struct {
		op   uint8
		want DataDirection
	}{
		{uint8(IOWrite), DataToCtrl}, {uint8(IORead), DataFromCtrl}, {uint8(IOFlush), DataNone},
		{uint8(AdminIdentify), DataFromCtrl}, {uint8(AdminGetLogPage), DataFromCtrl},
		{uint8(AdminSetFeatures), DataToCtrl}, {uint8(FabricsConnect), DataToCtrl},
		{uint8(FabricsAuthRecv), DataFromCtrl}, {uint8(FabricsPropertyGet), DataNone},
	} {
		if got := DirectionOf(tc.op); got != tc.want {
			t.Errorf("DirectionOf(%#x) = %d, want %d", tc.op, got, tc.want)
		}
	}
}

// SGL descriptor (NVMe Base 2.0, "SGL Descriptor Format"): address 7:0, length 11:8, identifier
// byte 15 with type in 7:4 and subtype in 3:0.
func TestSGLDescriptor(t *testing.T) {
	var d SGLDescriptor
	d.SetInCapsule(4096)
	wantBytes(t, "in-capsule", d[:], 0, "0000000000000000 00100000 000000 01")
	d.SetTransport(8192)
	wantBytes(t, "transport", d[:], 0, "0000000000000000 00200000 000000 5a")
	if d.Type() != SGLTransportDataBlock || d.Subtype() != SGLSubtypeTransport || d.Length() != 8192 {
		t.Error("transport read back")
	}
	var k SGLDescriptor
	copy(k[:], unhex(t, "0010000000000000 001000 44332211 40"))
	if k.Type() != SGLKeyedDataBlock || k.KeyedLength() != 0x1000 || k.Key() != 0x11223344 || k.Address() != 0x1000 {
		t.Errorf("keyed: type %d len %#x key %#x", k.Type(), k.KeyedLength(), k.Key())
	}

	const icd = 8192
	tests := []struct {
		name   string
		t      SGLType
		st     SGLSubtype
		addr   uint64
		length uint32
		use    SGLUse
		status Status
	}{
		{"in-capsule", SGLDataBlock, SGLSubtypeOffset, 0, 512, SGLInCapsule, StatusSuccess},
		{"in-capsule at limit", SGLDataBlock, SGLSubtypeOffset, 0, icd, SGLInCapsule, StatusSuccess},
		{"in-capsule empty", SGLDataBlock, SGLSubtypeOffset, 0, 0, SGLNoData, StatusSuccess},
		{"in-capsule too long", SGLDataBlock, SGLSubtypeOffset, 0, icd + 1, SGLInCapsule, StatusDataSGLLengthInvalid},
		{"in-capsule offset", SGLDataBlock, SGLSubtypeOffset, 16, 512, SGLInCapsule, StatusSGLOffsetInvalid},
		{"transport", SGLTransportDataBlock, SGLSubtypeTransport, 0, 1 << 20, SGLTransport, StatusSuccess},
		{"transport no data", SGLTransportDataBlock, SGLSubtypeTransport, 0, 0, SGLNoData, StatusSuccess},
		{"address subtype (PCIe/RDMA)", SGLDataBlock, SGLSubtypeAddress, 0x1000, 512, SGLNoData, StatusSGLDescriptorTypeInvalid},
		{"keyed (RDMA)", SGLKeyedDataBlock, SGLSubtypeAddress, 0, 512, SGLNoData, StatusSGLDescriptorTypeInvalid},
		{"segment", SGLLastSegment, SGLSubtypeAddress, 0, 32, SGLNoData, StatusSGLDescriptorTypeInvalid},
		{"transport, offset subtype", SGLTransportDataBlock, SGLSubtypeOffset, 0, 512, SGLNoData, StatusSGLDescriptorTypeInvalid},
	}
	for _, tc := range tests {
		var d SGLDescriptor
		d.SetAddress(tc.addr)
		d.SetLength(tc.length)
		d.SetIdentifier(tc.t, tc.st)
		use, st := d.CheckTCP(icd)
		if use != tc.use || st != tc.status {
			t.Errorf("%s: CheckTCP = %v, %v; want %v, %v", tc.name, use, st, tc.use, tc.status)
		}
	}
	if SGLUse(9).String() != "sgl-use-9" || SGLInCapsule.String() != "in-capsule" {
		t.Error("SGLUse names")
	}
	var s SQE
	s.SGL1().SetTransport(4096)
	wantBytes(t, "sgl1 in sqe", s[:], 24, "0000000000000000 00100000 000000 5a")
}
