package iscsi

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/iscsi/login"
	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
)

// clearUA takes the power-on unit attention off a fresh session.
func (i *ini) clearUA() {
	i.t.Helper()
	for range 4 {
		if st, _, _ := i.response(i.command([]byte{0, 0, 0, 0, 0, 0}, 0, false, false, nil, true)); st == 0 {
			return
		}
	}
	i.t.Fatal("TEST UNIT READY never GOOD")
}

func write10(lba uint32, blocks uint16) []byte {
	return []byte{0x2a, 0, byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba), 0, byte(blocks >> 8), byte(blocks), 0}
}

func read10(lba uint32, blocks uint16) []byte {
	c := write10(lba, blocks)
	c[0] = 0x28
	return c
}

// TestSolicitedWrite: a 256 KiB write with 64 KiB of immediate data gets
// one R2T for the rest (MaxBurstLength), takes it in DataSN-ordered
// Data-Out PDUs, and reads back through Data-In with the status collapsed
// into the last one (RFC 7143 §11.7.5).
func TestSolicitedWrite(t *testing.T) {
	tt := newTarget(t, targetOptions{})
	i := dial(t, tt, iniOptions{isid: 1})
	i.clearUA()
	data := make([]byte, 256<<10)
	for n := range data {
		data[n] = byte(n*31) ^ byte(n>>11)
	}
	itt := i.command(write10(64, 512), uint32(len(data)), false, true, data[:64<<10], true)
	h, _ := i.recvOp(pdu.OpR2T)
	r2t := h.R2T()
	if h.ITT() != itt || r2t.BufferOffset() != 64<<10 || r2t.DesiredDataTransferLength() != 192<<10 || r2t.R2TSN() != 0 {
		t.Fatalf("R2T offset %d length %d R2TSN %d", r2t.BufferOffset(), r2t.DesiredDataTransferLength(), r2t.R2TSN())
	}
	for sn, off := uint32(0), uint32(64<<10); off < 256<<10; sn, off = sn+1, off+64<<10 {
		i.dataOut(itt, r2t.TTT(), sn, off, off+64<<10 == 256<<10, data[off:off+64<<10])
	}
	if st, _, _ := i.response(itt); st != 0 {
		t.Fatalf("write status %#x", st)
	}
	itt = i.command(read10(64, 512), uint32(len(data)), true, false, nil, true)
	st, got, last := i.response(itt)
	if st != 0 || !bytes.Equal(got, data) || last.Opcode() != pdu.OpDataIn {
		t.Fatalf("read back: status %#x, %d bytes, equal %v, last %v", st, len(got), bytes.Equal(got, data), last.Opcode())
	}
}

// TestUnsolicitedWrite: with InitialR2T=No, immediate data and an
// unsolicited Data-Out fill the first burst without any R2T.
func TestUnsolicitedWrite(t *testing.T) {
	tt := newTarget(t, targetOptions{})
	i := dial(t, tt, iniOptions{isid: 1})
	i.clearUA()
	data := bytes.Repeat([]byte("sluice!!"), 8<<10) // 64 KiB
	itt := i.command(write10(0, 128), 64<<10, false, true, data[:16<<10], false)
	i.dataOut(itt, pdu.ReservedTag, 0, 16<<10, true, data[16<<10:])
	if st, _, h := i.response(itt); st != 0 || h.Opcode() != pdu.OpSCSIResponse {
		t.Fatalf("write: status %#x", st)
	}
	if _, got, _ := i.response(i.command(read10(0, 128), 64<<10, true, false, nil, true)); !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
}

// TestDataSNRejected: a Data-Out out of DataSN order is rejected (I4)
// and ends its command; the session goes on.
func TestDataSNRejected(t *testing.T) {
	tt := newTarget(t, targetOptions{})
	i := dial(t, tt, iniOptions{isid: 1})
	i.clearUA()
	itt := i.command(write10(0, 2), 1024, false, true, nil, true)
	h, _ := i.recvOp(pdu.OpR2T)
	i.dataOut(itt, h.R2T().TTT(), 27, 0, true, make([]byte, 1024))
	h, data := i.recvOp(pdu.OpReject)
	if h.Reject().Reason() != pdu.ReasonProtocolError || pdu.BHSOf(data).ITT() != itt {
		t.Fatalf("reject reason %v for ITT %#x", h.Reject().Reason(), pdu.BHSOf(data).ITT())
	}
	if st, _, _ := i.response(i.command([]byte{0, 0, 0, 0, 0, 0}, 0, false, false, nil, true)); st != 0 {
		t.Fatalf("TUR after the reject: %#x", st)
	}
}

// TestCmdSNWindow: a command beyond MaxCmdSN is dropped without an answer
// (RFC 7143 §4.2.2.1); the next one in the window is served.
func TestCmdSNWindow(t *testing.T) {
	tt := newTarget(t, targetOptions{})
	i := dial(t, tt, iniOptions{isid: 1})
	i.clearUA()
	good := i.cmdSN
	i.cmdSN = i.maxCmdSN + 1
	i.command([]byte{0, 0, 0, 0, 0, 0}, 0, false, false, nil, true)
	i.expectNothing(300 * time.Millisecond)
	i.cmdSN = good
	if st, _, _ := i.response(i.command([]byte{0, 0, 0, 0, 0, 0}, 0, false, false, nil, true)); st != 0 {
		t.Fatalf("TUR in the window: %#x", st)
	}
}

// TestNOPBothWays: an initiator's ping is echoed; the target pings an idle
// initiator and drops it when the answer does not come.
func TestNOPBothWays(t *testing.T) {
	tt := newTarget(t, targetOptions{nop: time.Second, nopTimeout: 2 * time.Second})
	i := dial(t, tt, iniOptions{isid: 1})
	itt := i.nop(pdu.ReservedTag, true)
	h, data := i.recvOp(pdu.OpNOPIn)
	if h.ITT() != itt || string(data) != "ping" {
		t.Fatalf("NOP-In ITT %#x data %q", h.ITT(), data)
	}
	// Idle: the target's ping comes within a few seconds; answer it.
	h, _ = i.recvOp(pdu.OpNOPIn)
	if h.ITT() != pdu.ReservedTag || h.NOPIn().TTT() == pdu.ReservedTag {
		t.Fatalf("target ping ITT %#x TTT %#x", h.ITT(), h.NOPIn().TTT())
	}
	i.nop(h.NOPIn().TTT(), true)
	// The next ping goes unanswered: the connection ends.
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		if _, _, err := i.recv(waitTimeout); err == io.EOF || err != nil && strings.Contains(err.Error(), "reset") {
			return
		}
	}
	t.Fatal("the target kept a connection that did not answer its ping")
}

// TestSessionReinstatement: a second login with the same initiator name
// and ISID ends the first session (RFC 7143 §6.3.5).
func TestSessionReinstatement(t *testing.T) {
	tt := newTarget(t, targetOptions{})
	a := dial(t, tt, iniOptions{isid: 7})
	b := dial(t, tt, iniOptions{isid: 7})
	if _, _, err := a.recv(waitTimeout); err == nil {
		t.Fatal("the reinstated session's connection still answers")
	}
	b.clearUA()
	other := dial(t, tt, iniOptions{isid: 8})
	other.clearUA() // a different ISID is a second session beside it
	if n := len(tt.srv.Connections()); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// tmf sends a task management request and returns its response code.
func (i *ini) tmf(fn pdu.TaskFunction, lun uint64, rtt, refCmdSN uint32) pdu.TaskResponse {
	var h pdu.BHS
	tm := h.InitTaskMgmtRequest()
	h.SetImmediate(true)
	tm.SetFunction(fn)
	h.SetLUN(lun)
	tm.SetRTT(rtt)
	tm.SetRefCmdSN(refCmdSN)
	tm.SetCmdSN(i.cmdSN)
	tm.SetExpStatSN(i.expStatSN)
	i.itt++
	h.SetITT(i.itt)
	i.send(&h, nil)
	r, _ := i.recvOp(pdu.OpTaskMgmtResponse)
	if r.ITT() != i.itt {
		i.t.Fatalf("TMF response ITT %#x, want %#x", r.ITT(), i.itt)
	}
	return r.TaskMgmtResponse().Response()
}

// TestTaskManagement: ABORT TASK of a command waiting for data ends it
// without a response; of a finished one says it does not exist; LUN
// RESET answers and raises the unit attention; unsupported functions and
// missing LUNs get their codes.
func TestTaskManagement(t *testing.T) {
	tt := newTarget(t, targetOptions{})
	i := dial(t, tt, iniOptions{isid: 1})
	i.clearUA()
	itt := i.command(write10(0, 8), 4096, false, true, nil, true)
	h, _ := i.recvOp(pdu.OpR2T)
	if r := i.tmf(pdu.TaskAbortTask, 0, itt, i.cmdSN-1); r != pdu.TaskComplete {
		t.Fatalf("abort of a waiting write: %v", r)
	}
	i.dataOut(itt, h.R2T().TTT(), 0, 0, true, make([]byte, 4096)) // for a command that is gone: ignored
	i.expectNothing(200 * time.Millisecond)
	done := i.command([]byte{0, 0, 0, 0, 0, 0}, 0, false, false, nil, true)
	i.response(done)
	if r := i.tmf(pdu.TaskAbortTask, 0, done, i.cmdSN-1); r != pdu.TaskNotExist {
		t.Fatalf("abort of a finished TUR: %v", r)
	}
	if r := i.tmf(pdu.TaskLogicalUnitReset, 0, pdu.ReservedTag, 0); r != pdu.TaskComplete {
		t.Fatalf("LUN reset: %v", r)
	}
	st, _, rh := i.response(i.command([]byte{0, 0, 0, 0, 0, 0}, 0, false, false, nil, true))
	if st != uint8(cdb.StatusCheckCondition) || rh.DataSegmentLength() < 16 {
		t.Fatalf("TUR after reset: status %#x", st)
	}
	if r := i.tmf(pdu.TaskLogicalUnitReset, 5<<48, pdu.ReservedTag, 0); r != pdu.TaskLUNNotExist {
		t.Fatalf("reset of LUN 5: %v", r)
	}
	if r := i.tmf(pdu.TaskClearACA, 0, pdu.ReservedTag, 0); r != pdu.TaskFunctionNotSupported {
		t.Fatalf("CLEAR ACA: %v", r)
	}
	if r := i.tmf(pdu.TaskTargetWarmReset, 0, pdu.ReservedTag, 0); r != pdu.TaskComplete {
		t.Fatalf("target warm reset: %v", r)
	}
}

// TestRejectMalformed: a PDU with an opcode RFC 7143 does not define gets
// a Reject naming it; the session goes on.
func TestRejectMalformed(t *testing.T) {
	tt := newTarget(t, targetOptions{})
	i := dial(t, tt, iniOptions{isid: 1})
	var h pdu.BHS
	h[0] = 0x1c // an initiator opcode nobody defined
	h.SetFinal(true)
	h.SetITT(0x77)
	i.send(&h, nil)
	r, data := i.recvOp(pdu.OpReject)
	if r.Reject().Reason() != pdu.ReasonCommandNotSupported || len(data) != pdu.BHSSize || data[0] != 0x1c {
		t.Fatalf("reject %v with %d bytes", r.Reject().Reason(), len(data))
	}
	i.clearUA()
}

// TestDiscoverySession: SendTargets=All lists the node with its portal; a
// SCSI command in a discovery session is rejected; Logout closes.
func TestDiscoverySession(t *testing.T) {
	tt := newTarget(t, targetOptions{})
	i := dial(t, tt, iniOptions{isid: 1, discovery: true})
	var h pdu.BHS
	tr := h.InitTextRequest()
	h.SetFinal(true)
	tr.SetTTT(pdu.ReservedTag)
	tr.SetCmdSN(i.cmdSN)
	i.itt++
	h.SetITT(i.itt)
	i.send(&h, login.AppendPair(nil, "SendTargets", "All"))
	_, data := i.recvOp(pdu.OpTextResponse)
	keys, err := login.ParseKeys(data)
	want := []login.Pair{{Key: "TargetName", Value: tt.iqn}, {Key: "TargetAddress", Value: "127.0.0.1:" + itoa(tt.port) + ",1"}}
	if err != nil || len(keys) != 2 || keys[0] != want[0] || keys[1] != want[1] {
		t.Fatalf("SendTargets: %v %v", keys, err)
	}
	i.command([]byte{0, 0, 0, 0, 0, 0}, 0, false, false, nil, true)
	if r, _ := i.recvOp(pdu.OpReject); r.Reject().Reason() != pdu.ReasonProtocolError {
		t.Fatalf("SCSI command in discovery: reject %v", r.Reject().Reason())
	}
	var lo pdu.BHS
	lr := lo.InitLogoutRequest()
	lo.SetImmediate(true)
	lr.SetReason(pdu.LogoutCloseSession)
	lr.SetCmdSN(i.cmdSN)
	i.itt++
	lo.SetITT(i.itt)
	i.send(&lo, nil)
	if r, _ := i.recvOp(pdu.OpLogoutResponse); r.LogoutResponse().Response() != pdu.LogoutClosed {
		t.Fatalf("logout response %v", r.LogoutResponse().Response())
	}
	if _, _, err := i.recv(waitTimeout); err != io.EOF {
		t.Fatalf("after logout: %v, want EOF", err)
	}
}

// TestCHAPRequired: a node requiring CHAP refuses a login without it and
// with a wrong secret, and takes libiscsi's CHAP with the right one (the
// mutual exchange is Linux's, in TestGuestOpenISCSI).
func TestCHAPRequired(t *testing.T) {
	tt := newTarget(t, targetOptions{chap: CHAP{Require: true, Group: 1},
		secrets: []CHAPSecret{{User: "u", Secret: "user-secret-123"}}})
	out, err := runTool(t, waitTimeout, "iscsi-inq", tt.url(0, "", ""))
	if err == nil {
		t.Fatalf("iscsi-inq without CHAP logged in:\n%s", out)
	}
	out, err = runTool(t, waitTimeout, "iscsi-inq", tt.url(0, "u", "user-secret-123"))
	if err != nil || !strings.Contains(out, "Vendor:SLUICE") {
		t.Fatalf("iscsi-inq with CHAP: %v\n%s", err, out)
	}
	out, err = runTool(t, waitTimeout, "iscsi-inq", tt.url(0, "u", "wrong-secret-999"))
	if err == nil {
		t.Fatalf("iscsi-inq with a wrong secret logged in:\n%s", out)
	}
}
