package pdu

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// unhex decodes hex with spaces and newlines ignored; a malformed literal is a test bug.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// viewCase pins one view to golden bytes. Each golden header is 12 big-endian words,
// one per 4-byte row of the RFC figure cited in name (byte offsets 0, 4, … 44). build
// encodes it from zero; fields reads it back.
type viewCase struct {
	name   string
	golden string
	build  func(h *BHS)
	fields func(h *BHS) []any
	want   []any
}

var lun1 = uint64(0x0001_0000_0000_0000) // SAM peripheral addressing, LUN 1

var viewCases = []viewCase{
	{
		name: "NOP-Out (RFC 7143 §11.18)",
		// 0: I|0x00, byte 1 bit 7 fixed to 1; 4: DSL 4; 16 ITT; 20 TTT; 24 CmdSN; 28 ExpStatSN.
		golden: "40800000 00000004 00000000 00000000 00000011 ffffffff 00000005 00000007 00000000 00000000 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitNOPOut()
			p.BHS().SetImmediate(true)
			p.BHS().SetDataSegmentLength(4)
			p.BHS().SetITT(0x11)
			p.SetTTT(ReservedTag)
			p.SetCmdSN(5)
			p.SetExpStatSN(7)
		},
		fields: func(h *BHS) []any {
			p := h.NOPOut()
			return []any{h.Opcode(), h.Immediate(), h.Final(), h.DataSegmentLength(), h.ITT(), p.TTT(), p.CmdSN(), p.ExpStatSN()}
		},
		want: []any{OpNOPOut, true, true, uint32(4), uint32(0x11), uint32(ReservedTag), uint32(5), uint32(7)},
	},
	{
		name: "SCSI Command READ(10) (RFC 7143 §11.3)",
		// 1: F|R|ATTR=simple; 8 LUN 1; 16 ITT; 20 EDTL 4096; 24 CmdSN; 28 ExpStatSN;
		// 32: CDB 28 00 00000010 00 0008 00 (LBA 16, 8 blocks).
		golden: "01c10000 00000000 00010000 00000000 00000010 00001000 00000020 00000030 28000000 00100000 08000000 00000000",
		build: func(h *BHS) {
			p := h.InitSCSICommand()
			p.BHS().SetFinal(true)
			p.SetRead(true)
			p.SetAttr(AttrSimple)
			p.BHS().SetLUN(lun1)
			p.BHS().SetITT(0x10)
			p.SetExpectedDataTransferLength(4096)
			p.SetCmdSN(0x20)
			p.SetExpStatSN(0x30)
			p.SetCDB([]byte{0x28, 0, 0, 0, 0, 0x10, 0, 0, 8, 0})
		},
		fields: func(h *BHS) []any {
			p := h.SCSICommand()
			return []any{h.Opcode(), h.Final(), p.Read(), p.Write(), p.Attr(), h.LUN(), p.ExpectedDataTransferLength(), p.CmdSN(), p.ExpStatSN(), p.CDB()[0], p.CDB()[8]}
		},
		want: []any{OpSCSICommand, true, true, false, AttrSimple, lun1, uint32(4096), uint32(0x20), uint32(0x30), byte(0x28), byte(8)},
	},
	{
		name: "SCSI Command WRITE(10) with immediate data (RFC 7143 §11.3)",
		// 1: F|W|ATTR=ordered; 4: AHS 0, DSL 512; 20 EDTL 8192.
		golden: "01a20000 00000200 00010000 00000000 00000011 00002000 00000021 00000030 2a080000 00200000 10000000 00000000",
		build: func(h *BHS) {
			p := h.InitSCSICommand()
			p.BHS().SetFinal(true)
			p.SetWrite(true)
			p.SetAttr(AttrOrdered)
			p.BHS().SetDataSegmentLength(512)
			p.BHS().SetLUN(lun1)
			p.BHS().SetITT(0x11)
			p.SetExpectedDataTransferLength(8192)
			p.SetCmdSN(0x21)
			p.SetExpStatSN(0x30)
			p.SetCDB([]byte{0x2a, 0x08, 0, 0, 0, 0x20, 0, 0, 0x10, 0})
		},
		fields: func(h *BHS) []any {
			p := h.SCSICommand()
			return []any{p.Read(), p.Write(), p.Attr(), h.DataSegmentLength(), p.ExpectedDataTransferLength()}
		},
		want: []any{false, true, AttrOrdered, uint32(512), uint32(8192)},
	},
	{
		name: "Task Management Request ABORT TASK (RFC 7143 §11.5)",
		// 0: I|0x02; 1: 1|function 1; 20 RTT; 24 CmdSN; 28 ExpStatSN; 32 RefCmdSN; 36 ExpDataSN.
		golden: "42810000 00000000 00010000 00000000 00000099 00000010 00000021 00000031 00000020 00000003 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitTaskMgmtRequest()
			p.BHS().SetImmediate(true)
			p.SetFunction(TaskAbortTask)
			p.BHS().SetLUN(lun1)
			p.BHS().SetITT(0x99)
			p.SetRTT(0x10)
			p.SetCmdSN(0x21)
			p.SetExpStatSN(0x31)
			p.SetRefCmdSN(0x20)
			p.SetExpDataSN(3)
		},
		fields: func(h *BHS) []any {
			p := h.TaskMgmtRequest()
			return []any{h.Opcode(), h.Final(), p.Function(), p.RTT(), p.CmdSN(), p.ExpStatSN(), p.RefCmdSN(), p.ExpDataSN()}
		},
		want: []any{OpTaskMgmtRequest, true, TaskAbortTask, uint32(0x10), uint32(0x21), uint32(0x31), uint32(0x20), uint32(3)},
	},
	{
		name: "Login Request (RFC 7143 §11.12)",
		// 0: 1|0x03 (I always 1); 1: T|CSG 0|NSG 1; 2 Version-max 0; 3 Version-min 0;
		// 4: DSL 256; 8: ISID 80 12 34 56 78 9a; 14 TSIH 0; 16 ITT; 20 CID 1; 24 CmdSN.
		golden: "43810000 00000100 80123456 789a0000 00000000 00010000 00000001 00000000 00000000 00000000 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitLoginRequest()
			p.SetTransit(true)
			p.SetStages(StageSecurityNegotiation, StageOperationalNegotiation)
			p.SetVersions(0, 0)
			p.BHS().SetDataSegmentLength(256)
			p.SetISID([6]byte{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a})
			p.SetCID(1)
			p.SetCmdSN(1)
		},
		fields: func(h *BHS) []any {
			p := h.LoginRequest()
			return []any{h.Opcode(), h.Immediate(), p.Transit(), p.Continue(), p.CSG(), p.NSG(), p.VersionMax(), p.VersionMin(), p.ISID(), p.TSIH(), p.CID(), p.CmdSN()}
		},
		want: []any{OpLoginRequest, true, true, false, StageSecurityNegotiation, StageOperationalNegotiation, uint8(0), uint8(0), [6]byte{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a}, uint16(0), uint16(1), uint32(1)},
	},
	{
		name: "Text Request (RFC 7143 §11.10)",
		// 1: F; 16 ITT; 20 TTT 0xffffffff (new request); 24 CmdSN; 28 ExpStatSN.
		golden: "04800000 00000010 00000000 00000000 00000002 ffffffff 00000003 00000004 00000000 00000000 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitTextRequest()
			p.BHS().SetFinal(true)
			p.BHS().SetDataSegmentLength(16)
			p.BHS().SetITT(2)
			p.SetTTT(ReservedTag)
			p.SetCmdSN(3)
			p.SetExpStatSN(4)
		},
		fields: func(h *BHS) []any {
			p := h.TextRequest()
			return []any{h.Final(), p.Continue(), p.TTT(), p.CmdSN(), p.ExpStatSN()}
		},
		want: []any{true, false, uint32(ReservedTag), uint32(3), uint32(4)},
	},
	{
		name: "SCSI Data-Out (RFC 7143 §11.7)",
		// 1: F; 4: DSL 8192; 20 TTT; 28 ExpStatSN; 36 DataSN; 40 Buffer Offset.
		golden: "05800000 00002000 00010000 00000000 00000010 00000077 00000000 00000031 00000000 00000001 00002000 00000000",
		build: func(h *BHS) {
			p := h.InitDataOut()
			p.BHS().SetFinal(true)
			p.BHS().SetDataSegmentLength(8192)
			p.BHS().SetLUN(lun1)
			p.BHS().SetITT(0x10)
			p.SetTTT(0x77)
			p.SetExpStatSN(0x31)
			p.SetDataSN(1)
			p.SetBufferOffset(0x2000)
		},
		fields: func(h *BHS) []any {
			p := h.DataOut()
			return []any{h.Final(), h.DataSegmentLength(), p.TTT(), p.ExpStatSN(), p.DataSN(), p.BufferOffset()}
		},
		want: []any{true, uint32(8192), uint32(0x77), uint32(0x31), uint32(1), uint32(0x2000)},
	},
	{
		name: "Logout Request close connection (RFC 7143 §11.14)",
		// 0: I|0x06; 1: 1|reason 1; 20 CID 2; 24 CmdSN; 28 ExpStatSN.
		golden: "46810000 00000000 00000000 00000000 00000005 00020000 00000009 0000000a 00000000 00000000 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitLogoutRequest()
			p.BHS().SetImmediate(true)
			p.SetReason(LogoutCloseConnection)
			p.BHS().SetITT(5)
			p.SetCID(2)
			p.SetCmdSN(9)
			p.SetExpStatSN(10)
		},
		fields: func(h *BHS) []any {
			p := h.LogoutRequest()
			return []any{h.Final(), p.Reason(), p.CID(), p.CmdSN(), p.ExpStatSN()}
		},
		want: []any{true, LogoutCloseConnection, uint16(2), uint32(9), uint32(10)},
	},
	{
		name: "NOP-In (RFC 7143 §11.19)",
		// 1: 1; 16 ITT 0xffffffff (target ping); 20 TTT; 24 StatSN; 28 ExpCmdSN; 32 MaxCmdSN.
		golden: "20800000 00000000 00000000 00000000 ffffffff 00000005 00000100 00000021 00000040 00000000 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitNOPIn()
			p.BHS().SetITT(ReservedTag)
			p.SetTTT(5)
			p.SetSNs(0x100, 0x21, 0x40)
		},
		fields: func(h *BHS) []any {
			p := h.NOPIn()
			return []any{h.Opcode(), h.ITT(), p.TTT(), p.StatSN(), p.ExpCmdSN(), p.MaxCmdSN()}
		},
		want: []any{OpNOPIn, uint32(ReservedTag), uint32(5), uint32(0x100), uint32(0x21), uint32(0x40)},
	},
	{
		name: "SCSI Response CHECK CONDITION with underflow (RFC 7143 §11.4)",
		// 1: 1|U; 2 Response 0; 3 Status 02; 4: DSL 20 (sense); 24 StatSN; 28 ExpCmdSN;
		// 32 MaxCmdSN; 36 ExpDataSN; 40 bidi residual; 44 Residual Count 512.
		golden: "21820002 00000014 00000000 00000000 00000010 00000000 00000100 00000021 00000040 00000001 00000000 00000200",
		build: func(h *BHS) {
			p := h.InitSCSIResponse()
			p.SetResponse(ResponseCompleted)
			p.SetStatus(0x02)
			p.BHS().SetDataSegmentLength(20)
			p.BHS().SetITT(0x10)
			p.SetSNs(0x100, 0x21, 0x40)
			p.SetExpDataSN(1)
			p.SetResidual(4096, 3584)
		},
		fields: func(h *BHS) []any {
			p := h.SCSIResponse()
			return []any{p.Response(), p.Status(), p.Underflow(), p.Overflow(), p.BidiUnderflow(), p.BidiOverflow(), p.ResidualCount(), p.StatSN(), p.ExpCmdSN(), p.MaxCmdSN(), p.ExpDataSN()}
		},
		want: []any{ResponseCompleted, uint8(2), true, false, false, false, uint32(512), uint32(0x100), uint32(0x21), uint32(0x40), uint32(1)},
	},
	{
		name: "SCSI Response bidirectional overflow (RFC 7143 §11.4)",
		// 1: 1|o; 40 Bidirectional Read Residual Count 0x100.
		golden: "21900000 00000000 00000000 00000000 00000012 00000000 00000101 00000022 00000041 00000000 00000100 00000000",
		build: func(h *BHS) {
			p := h.InitSCSIResponse()
			p.BHS().SetITT(0x12)
			p.SetSNs(0x101, 0x22, 0x41)
			p.SetBidiResidual(0x200, 0x300)
			p.SetResidual(10, 10)
		},
		fields: func(h *BHS) []any {
			p := h.SCSIResponse()
			return []any{p.BidiOverflow(), p.BidiUnderflow(), p.BidiResidualCount(), p.Overflow(), p.Underflow()}
		},
		want: []any{true, false, uint32(0x100), false, false},
	},
	{
		name: "Task Management Response (RFC 7143 §11.6)",
		// 1: 1; 2 Response 5 (not supported); 24 StatSN; 28 ExpCmdSN; 32 MaxCmdSN.
		golden: "22800500 00000000 00000000 00000000 00000099 00000000 00000101 00000022 00000041 00000000 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitTaskMgmtResponse()
			p.SetResponse(TaskFunctionNotSupported)
			p.BHS().SetITT(0x99)
			p.SetSNs(0x101, 0x22, 0x41)
		},
		fields: func(h *BHS) []any {
			p := h.TaskMgmtResponse()
			return []any{p.Response(), p.StatSN(), p.ExpCmdSN(), p.MaxCmdSN()}
		},
		want: []any{TaskFunctionNotSupported, uint32(0x101), uint32(0x22), uint32(0x41)},
	},
	{
		name: "Login Response success into Full Feature Phase (RFC 7143 §11.13)",
		// 1: T|CSG 1|NSG 3; 2 Version-max 0; 3 Version-active 0; 8 ISID; 14 TSIH 1;
		// 24 StatSN; 28 ExpCmdSN; 32 MaxCmdSN; 36 Status-Class 0, 37 Status-Detail 0.
		golden: "23870000 00000040 80123456 789a0001 00000000 00000000 00000001 00000001 00000040 00000000 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitLoginResponse()
			p.SetTransit(true)
			p.SetStages(StageOperationalNegotiation, StageFullFeature)
			p.BHS().SetDataSegmentLength(0x40)
			p.SetISID([6]byte{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a})
			p.SetTSIH(1)
			p.SetSNs(1, 1, 0x40)
			p.SetStatus(LoginSuccess)
		},
		fields: func(h *BHS) []any {
			p := h.LoginResponse()
			return []any{p.Transit(), p.Continue(), p.CSG(), p.NSG(), p.VersionMax(), p.VersionActive(), p.TSIH(), p.Status(), p.StatSN()}
		},
		want: []any{true, false, StageOperationalNegotiation, StageFullFeature, uint8(0), uint8(0), uint16(1), LoginSuccess, uint32(1)},
	},
	{
		name: "Login Response authentication failure (RFC 7143 §11.13)",
		// 36: Status-Class 02, Status-Detail 01.
		golden: "23000000 00000000 80123456 789a0000 00000000 00000000 00000001 00000001 00000001 02010000 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitLoginResponse()
			p.SetISID([6]byte{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a})
			p.SetSNs(1, 1, 1)
			p.SetStatus(LoginAuthenticationFailure)
		},
		fields: func(h *BHS) []any {
			p := h.LoginResponse()
			return []any{p.Status().Class(), p.Status().Detail(), p.Transit()}
		},
		want: []any{uint8(2), uint8(1), false},
	},
	{
		name: "Text Response (RFC 7143 §11.11)",
		// 1: F; 4: DSL 0x64; 20 TTT 0xffffffff (final); 24 StatSN; 28 ExpCmdSN; 32 MaxCmdSN.
		golden: "24800000 00000064 00000000 00000000 00000002 ffffffff 00000003 00000004 00000010 00000000 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitTextResponse()
			p.BHS().SetFinal(true)
			p.BHS().SetDataSegmentLength(0x64)
			p.BHS().SetITT(2)
			p.SetTTT(ReservedTag)
			p.SetSNs(3, 4, 0x10)
		},
		fields: func(h *BHS) []any {
			p := h.TextResponse()
			return []any{h.Final(), p.Continue(), p.TTT(), p.StatSN()}
		},
		want: []any{true, false, uint32(ReservedTag), uint32(3)},
	},
	{
		name: "SCSI Data-In with status and underflow (RFC 7143 §11.7)",
		// 1: F|U|S; 3 Status 0; 4 DSL 4096; 20 TTT 0xffffffff; 24 StatSN; 36 DataSN 0;
		// 40 Buffer Offset 0; 44 Residual Count 512.
		golden: "25830000 00001000 00010000 00000000 00000010 ffffffff 00000100 00000021 00000040 00000000 00000000 00000200",
		build: func(h *BHS) {
			p := h.InitDataIn()
			p.SetStatus(0)
			p.BHS().SetDataSegmentLength(4096)
			p.BHS().SetLUN(lun1)
			p.BHS().SetITT(0x10)
			p.SetTTT(ReservedTag)
			p.SetSNs(0x100, 0x21, 0x40)
			p.SetResidual(4608, 4096)
		},
		fields: func(h *BHS) []any {
			p := h.DataIn()
			return []any{h.Final(), p.Ack(), p.HasStatus(), p.Status(), p.Underflow(), p.Overflow(), p.ResidualCount(), p.DataSN(), p.BufferOffset(), p.StatSN()}
		},
		want: []any{true, false, true, uint8(0), true, false, uint32(512), uint32(0), uint32(0), uint32(0x100)},
	},
	{
		name: "SCSI Data-In middle PDU (RFC 7143 §11.7)",
		// 1: no flags; 36 DataSN 2; 40 Buffer Offset 0x4000.
		golden: "25000000 00002000 00010000 00000000 00000010 ffffffff 00000000 00000021 00000040 00000002 00004000 00000000",
		build: func(h *BHS) {
			p := h.InitDataIn()
			p.BHS().SetDataSegmentLength(0x2000)
			p.BHS().SetLUN(lun1)
			p.BHS().SetITT(0x10)
			p.SetTTT(ReservedTag)
			p.SetSNs(0, 0x21, 0x40)
			p.SetDataSN(2)
			p.SetBufferOffset(0x4000)
		},
		fields: func(h *BHS) []any {
			p := h.DataIn()
			return []any{h.Final(), p.HasStatus(), p.DataSN(), p.BufferOffset()}
		},
		want: []any{false, false, uint32(2), uint32(0x4000)},
	},
	{
		name: "Logout Response (RFC 7143 §11.15)",
		// 2 Response 0; 40 Time2Wait 2; 42 Time2Retain 20.
		golden: "26800000 00000000 00000000 00000000 00000005 00000000 00000010 0000000a 00000020 00000000 00020014 00000000",
		build: func(h *BHS) {
			p := h.InitLogoutResponse()
			p.SetResponse(LogoutClosed)
			p.BHS().SetITT(5)
			p.SetSNs(0x10, 0xa, 0x20)
			p.SetTimes(2, 20)
		},
		fields: func(h *BHS) []any {
			p := h.LogoutResponse()
			return []any{p.Response(), p.Time2Wait(), p.Time2Retain(), p.StatSN()}
		},
		want: []any{LogoutClosed, uint16(2), uint16(20), uint32(0x10)},
	},
	{
		name: "R2T (RFC 7143 §11.8)",
		// 20 TTT; 24 StatSN; 36 R2TSN 1; 40 Buffer Offset 0x2000; 44 Desired length 0x10000.
		golden: "31800000 00000000 00010000 00000000 00000010 00000077 00000100 00000021 00000040 00000001 00002000 00010000",
		build: func(h *BHS) {
			p := h.InitR2T()
			p.BHS().SetLUN(lun1)
			p.BHS().SetITT(0x10)
			p.SetTTT(0x77)
			p.SetSNs(0x100, 0x21, 0x40)
			p.SetR2TSN(1)
			p.SetBufferOffset(0x2000)
			p.SetDesiredDataTransferLength(0x10000)
		},
		fields: func(h *BHS) []any {
			p := h.R2T()
			return []any{p.TTT(), p.R2TSN(), p.BufferOffset(), p.DesiredDataTransferLength(), p.MaxCmdSN()}
		},
		want: []any{uint32(0x77), uint32(1), uint32(0x2000), uint32(0x10000), uint32(0x40)},
	},
	{
		name: "Asynchronous Message logout request (RFC 7143 §11.9)",
		// 16 ITT 0xffffffff; 36 AsyncEvent 1; 37 AsyncVCode 0; 38 Parameter1 0;
		// 40 Parameter2 (Time2Wait) 2; 42 Parameter3 (Time2Retain) 20.
		golden: "32800000 00000000 00000000 00000000 ffffffff 00000000 00000100 00000021 00000040 01000000 00020014 00000000",
		build: func(h *BHS) {
			p := h.InitAsyncMessage()
			p.SetSNs(0x100, 0x21, 0x40)
			p.SetEvent(AsyncLogoutRequest)
			p.SetParameters(0, 2, 20)
		},
		fields: func(h *BHS) []any {
			p := h.AsyncMessage()
			p1, p2, p3 := p.Parameters()
			return []any{h.ITT(), p.Event(), p.VCode(), p1, p2, p3}
		},
		want: []any{uint32(ReservedTag), AsyncLogoutRequest, uint8(0), uint16(0), uint16(2), uint16(20)},
	},
	{
		name: "Reject invalid PDU field (RFC 7143 §11.17)",
		// 2 Reason 0x09; 4 DSL 48 (the rejected BHS); 16 0xffffffff; 36 DataSN 0.
		golden: "3f800900 00000030 00000000 00000000 ffffffff 00000000 00000100 00000021 00000040 00000000 00000000 00000000",
		build: func(h *BHS) {
			p := h.InitReject()
			p.SetReason(ReasonInvalidPDUField)
			p.BHS().SetDataSegmentLength(BHSSize)
			p.SetSNs(0x100, 0x21, 0x40)
		},
		fields: func(h *BHS) []any {
			p := h.Reject()
			return []any{p.Reason(), h.DataSegmentLength(), h.ITT(), p.DataSN()}
		},
		want: []any{ReasonInvalidPDUField, uint32(BHSSize), uint32(ReservedTag), uint32(0)},
	},
}

func TestViews(t *testing.T) {
	for _, tc := range viewCases {
		golden := unhex(t, tc.golden)
		if len(golden) != BHSSize {
			t.Fatalf("%s: golden is %d bytes", tc.name, len(golden))
		}
		// Encode over a dirty buffer: InitX must zero every reserved byte (P2).
		var h BHS
		for i := range h {
			h[i] = 0xa5
		}
		tc.build(&h)
		if !bytes.Equal(h[:], golden) {
			t.Errorf("%s: encoded\n%x\nwant\n%x", tc.name, h[:], golden)
		}
		got := tc.fields(BHSOf(golden))
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: decoded %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestDataSegmentLength24Bits(t *testing.T) {
	var h BHS
	h.SetDataSegmentLength(DataSegmentLengthMax)
	if h[4] != 0 || h[5] != 0xff || h[6] != 0xff || h[7] != 0xff {
		t.Fatalf("DSL max encoded as % x", h[4:8])
	}
	h.SetTotalAHSLength(3)
	if h.DataSegmentLength() != DataSegmentLengthMax || h.AHSSize() != 12 {
		t.Fatalf("DSL %d, AHS %d", h.DataSegmentLength(), h.AHSSize())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("SetDataSegmentLength(1<<24) did not panic")
		}
	}()
	h.SetDataSegmentLength(1 << 24)
}

func TestPaddedDataSize(t *testing.T) {
	for _, tc := range []struct{ n, padded uint32 }{{0, 0}, {1, 4}, {3, 4}, {4, 4}, {5, 8}, {8191, 8192}} {
		var h BHS
		h.SetDataSegmentLength(tc.n)
		if got := h.PaddedDataSize(); got != tc.padded {
			t.Errorf("PaddedDataSize(%d) = %d, want %d", tc.n, got, tc.padded)
		}
	}
}

func TestStagesKeepFlags(t *testing.T) {
	var h BHS
	p := h.InitLoginRequest()
	p.SetTransit(true)
	p.SetContinue(false)
	p.SetStages(StageOperationalNegotiation, StageFullFeature)
	p.SetStages(StageSecurityNegotiation, StageOperationalNegotiation)
	if !p.Transit() || p.CSG() != StageSecurityNegotiation || p.NSG() != StageOperationalNegotiation {
		t.Fatalf("flags byte %#02x", h[1])
	}
}

func TestOpcodeNames(t *testing.T) {
	for op := Opcode(0); op < 0x40; op++ {
		name := op.String()
		if op.Defined() == strings.HasPrefix(name, "opcode-") {
			t.Errorf("opcode %#02x: Defined %v, name %q", uint8(op), op.Defined(), name)
		}
	}
}
