package iscsi

import (
	"errors"

	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
	"github.com/sluice-storage/sluice/protocols/scsi"
)

// header handles a PDU whose header (and AHS) is in: the checks, and for
// SCSI Command and Data-Out the choice of where the data segment lands.
func (c *Conn) header() {
	f := c.framer
	h := f.Header()
	c.cur = current{}
	if err := h.Check(pdu.RoleTarget, c.limits); err != nil {
		c.headerRejected(h, err)
		return
	}
	op := h.Opcode()
	if c.state == connLogin {
		if op != pdu.OpLoginRequest {
			// RFC 7143 §6.3: only Login Requests until Full Feature Phase.
			f.Discard()
			c.close("non-login PDU " + op.String() + " during login")
		}
		return // handled at EventPDU
	}
	if c.sess.discovery && (op == pdu.OpSCSICommand || op == pdu.OpDataOut || op == pdu.OpTaskMgmtRequest) {
		// RFC 7143 §4.3: a discovery session carries Text, NOP and Logout only.
		c.reject(h, pdu.ReasonProtocolError)
		f.Discard()
		return
	}
	switch op {
	case pdu.OpSCSICommand:
		c.commandHeader(h)
	case pdu.OpDataOut:
		c.dataOutHeader(h)
	case pdu.OpLoginRequest:
		// RFC 7143 §6.3: a login in Full Feature Phase is a protocol error.
		c.reject(h, pdu.ReasonProtocolError)
		f.Discard()
	case pdu.OpSNACKRequest:
		// ErrorRecoveryLevel 0: no SNACK support (RFC 7143 §11.16).
		c.reject(h, pdu.ReasonSNACKReject)
		f.Discard()
	}
}

// headerRejected answers a header that failed Check (P5): a Reject, or the
// end of the connection when the stream is lost or a login is bad.
func (c *Conn) headerRejected(h *pdu.BHS, err error) {
	var fe *pdu.FieldError
	if !errors.As(err, &fe) || fe.Fatal() {
		c.close("bad PDU header: " + err.Error())
		return
	}
	if h.Opcode() == pdu.OpLoginRequest || c.state == connLogin {
		c.loginFailed(h, pdu.LoginInitiatorError)
		c.framer.Discard()
		return
	}
	c.reject(h, fe.Reason)
	c.framer.Discard()
}

// pdu handles a whole PDU (data segment in): control PDUs, and the data
// of commands and Data-Out.
func (c *Conn) pdu(digestErr error) {
	f := c.framer
	h := f.Header()
	if digestErr != nil {
		// A data digest error (RFC 7143 §7.8.1): reject, and end the command.
		c.reject(h, pdu.ReasonDataDigest)
		if c.cur.c != nil {
			c.dropCmd(c.cur.c)
		}
		c.cur = current{}
		return
	}
	switch c.cur.kind {
	case curImmediate, curDataOut:
		c.dataIn(f.Data())
		return
	case curCommand:
		cm := c.cur.c
		c.cur = current{}
		c.afterData(cm)
		return
	}
	if c.state == connLogin {
		c.loginRequest(h, f.Data())
		return
	}
	switch h.Opcode() {
	case pdu.OpNOPOut:
		c.nopOut(h, f.Data())
	case pdu.OpTextRequest:
		c.textRequest(h, f.Data())
	case pdu.OpLogoutRequest:
		c.logoutRequest(h)
	case pdu.OpTaskMgmtRequest:
		c.taskMgmt(h)
	}
}

// commandSN applies the command window to a non-immediate CmdSN (I2):
// false when the PDU is to be dropped silently.
func (c *Conn) commandSN(h *pdu.BHS, cmdSN uint32) bool {
	if h.Immediate() {
		return true
	}
	s := c.sess
	s.updateMaxCmdSN(c.window)
	if cmdSN != s.expCmdSN || pdu.SN(cmdSN).Greater(pdu.SN(s.maxCmdSN)) {
		// Outside [ExpCmdSN, MaxCmdSN], or ahead of a gap that cannot fill
		// on a single connection: RFC 7143 §4.2.2.1 drops it.
		c.drops++
		return false
	}
	s.expCmdSN++
	return true
}

// commandHeader starts a SCSI Command (RFC 7143 §11.3).
func (c *Conn) commandHeader(h *pdu.BHS) {
	f := c.framer
	sc := h.SCSICommand()
	if h.AHSSize() > 0 {
		if err := pdu.CheckAHS(f.AHS()); err != nil {
			c.reject(h, pdu.ReasonInvalidPDUField)
			f.Discard()
			return
		}
	}
	if !c.commandSN(h, sc.CmdSN()) {
		f.Discard()
		return
	}
	cm := c.allocCmd(h.Immediate())
	if cm == nil {
		// More immediate commands than we take at once (RFC 7143 §11.17.1).
		c.reject(h, pdu.ReasonImmediateCommand)
		f.Discard()
		return
	}
	cm.itt, cm.cmdSN, cm.lun = h.ITT(), sc.CmdSN(), h.LUN()
	cm.edtl, cm.finalCmd = sc.ExpectedDataTransferLength(), h.Final()
	copy(cm.cdb[:], sc.CDB())
	t := &cm.task
	t.Nexus, t.LUN, t.CDB, t.TransferLength = c.sess.nexus, cm.lun, cm.cdb[:], cm.edtl
	c.startCmd(cm)
}

// startCmd calls Start and picks where the immediate data goes.
func (c *Conn) startCmd(cm *cmd) {
	f := c.framer
	h := f.Header()
	dsl := h.DataSegmentLength()
	switch c.node.dev.Start(&cm.task) {
	case scsi.ProgressBusy:
		c.stalled = cm // I/O resources are short: stop reading until Start works
		return
	case scsi.ProgressDone:
		c.discardData(dsl)
		c.respond(cm)
		return
	case scsi.ProgressRunning:
		c.discardData(dsl)
		c.setCmdState(cm, cmdRunning)
		c.running++
		return
	}
	// ProgressDataOut.
	c.setCmdState(cm, cmdDataOut)
	t := &cm.task
	cm.unsolOpen = !cm.finalCmd && !c.params.InitialR2T
	cm.unsolEnd = min(c.params.FirstBurstLength, cm.edtl)
	c.cur = current{kind: curCommand, c: cm}
	if dsl == 0 {
		return // EventPDU follows at once: afterData
	}
	c.cur = current{kind: curImmediate, c: cm, offset: 0, size: dsl, final: cm.finalCmd}
	if span := t.DataSpan(0, dsl); span != nil {
		f.LandData(span) // I3: straight into the task's buffer
		c.cur.landed = true
	}
}

// retryStalled retries a Start that was busy; true when reading may go on.
func (c *Conn) retryStalled() bool {
	cm := c.stalled
	c.stalled = nil
	c.startCmd(cm)
	return c.stalled == nil
}

// discardData skips a data segment the command does not want.
func (c *Conn) discardData(dsl uint32) {
	if dsl > 0 {
		c.framer.Discard()
	}
}

// dataOutHeader checks a Data-Out (RFC 7143 §11.7) against its command (I4)
// and lands its data.
func (c *Conn) dataOutHeader(h *pdu.BHS) {
	f := c.framer
	do := h.DataOut()
	dsl := h.DataSegmentLength()
	var cm *cmd
	if ttt := do.TTT(); ttt != pdu.ReservedTag {
		cm = c.byTTT(ttt)
		if cm != nil && (cm.itt != h.ITT() || !cm.r2tOpen) {
			cm = nil
		}
	} else if cm = c.byITT(h.ITT()); cm != nil && !cm.unsolOpen {
		cm = nil
	}
	if cm == nil || cm.state != cmdDataOut {
		// Data for a command that ended (a rejected sequence, an error
		// status sent early): nothing waits for it.
		c.discardData(dsl)
		return
	}
	end := cm.unsolEnd
	if cm.r2tOpen {
		end = cm.r2tEnd
	}
	off := do.BufferOffset()
	switch {
	case do.DataSN() != cm.dataSN, off != cm.nextOffset, uint64(off)+uint64(dsl) > uint64(end):
		// I4: out of order or beyond the burst.
		c.reject(h, pdu.ReasonProtocolError)
		f.Discard()
		c.dropCmd(cm)
		return
	}
	cm.dataSN++
	t := &cm.task
	c.cur = current{kind: curDataOut, c: cm, offset: off, size: dsl, final: h.Final()}
	switch {
	case dsl == 0:
	case off >= t.DataOut:
		// Beyond what the command needs (EDTL larger than the CDB asks).
		f.Discard()
		c.dataIn(nil)
	default:
		if span := t.DataSpan(off, dsl); span != nil {
			f.LandData(span) // I3
			c.cur.landed = true
		}
	}
}

// dataIn accounts a data segment that arrived for the current command
// (data is the segment when it was buffered in place).
func (c *Conn) dataIn(data []byte) {
	cur := c.cur
	c.cur = current{}
	cm := cur.c
	t := &cm.task
	if !cur.landed && data != nil {
		t.CopyDataOut(cur.offset, data) // buffered in place: it straddles segments or overflows
	}
	end := cur.offset + cur.size
	cm.nextOffset = end
	cm.got = max(cm.got, min(end, t.DataOut))
	if cur.final {
		if cm.r2tOpen && cur.kind == curDataOut {
			cm.r2tOpen = false
		} else {
			cm.unsolOpen = false
		}
		cm.dataSN = 0 // each sequence counts its own DataSN (RFC 7143 §11.7.4)
	}
	c.afterData(cm)
}

// afterData goes on once a piece of data-out is in: wait for more, ask for
// the next burst, or run the command.
func (c *Conn) afterData(cm *cmd) {
	if cm.unsolOpen || cm.r2tOpen {
		return
	}
	t := &cm.task
	if cm.got < t.DataOut {
		cm.phase = outR2T
		c.queue(cm)
		return
	}
	switch t.Resume() {
	case scsi.ProgressDone:
		c.respond(cm)
	case scsi.ProgressRunning:
		c.setCmdState(cm, cmdRunning)
		c.running++
	}
}

// dropCmd ends a command that broke the data-out rules: no response (the
// initiator was sent a Reject), its slot freed.
func (c *Conn) dropCmd(cm *cmd) {
	if cm.state == cmdRunning || cm.state == cmdFree {
		return
	}
	c.removeWaiting(cm)
	c.setCmdState(cm, cmdSending)
	c.freeCmd(cm)
}

// removeWaiting takes cm off the send-wait list.
func (c *Conn) removeWaiting(cm *cmd) {
	var prev *cmd
	for x := c.waitHead; x != nil; prev, x = x, x.next {
		if x != cm {
			continue
		}
		if prev == nil {
			c.waitHead = x.next
		} else {
			prev.next = x.next
		}
		if c.waitTail == x {
			c.waitTail = prev
		}
		x.next = nil
		return
	}
}
