package iscsi

import (
	"fmt"

	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
	"github.com/sluice-storage/sluice/protocols/scsi"
	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
)

// cmdState is where a SCSI command is on its connection.
type cmdState uint8

const (
	cmdFree     cmdState = iota
	cmdStarting          // Start answered busy: retried before reading on
	cmdDataOut           // receiving immediate, unsolicited or solicited data
	cmdRunning           // the task is at the bdev (I6)
	cmdSending           // its Data-In, R2T or status is being queued and written
	cmdStateCount
)

var cmdStateNames = [cmdStateCount]string{"free", "starting", "data-out", "running", "sending"}

func (s cmdState) String() string {
	if s < cmdStateCount {
		return cmdStateNames[s]
	}
	return fmt.Sprintf("cmdState(%d)", uint8(s))
}

// outPhase is what a command still has to queue.
type outPhase uint8

const (
	outNone     outPhase = iota
	outR2T               // an R2T for the next burst
	outDataIn            // Data-In PDUs, then maybe the status
	outResponse          // the SCSI Response
)

// cmd is one SCSI command of a connection: its task and its iSCSI state.
// Owner: the connection's reactor. Made once per connection (I7).
type cmd struct {
	task  scsi.Task
	conn  *Conn
	slot  uint16
	gen   uint16
	state cmdState
	next  *cmd // free list, or the send-wait list

	// From the SCSI Command PDU.
	itt       uint32
	cmdSN     uint32
	lun       uint64
	edtl      uint32
	immediate bool
	finalCmd  bool // the command's F bit: no unsolicited Data-Out follows
	cdb       [pdu.CDBSize]byte

	// Data-out (I4).
	got        uint32 // bytes of task.DataOut received
	nextOffset uint32 // the next buffer offset expected
	unsolEnd   uint32 // where the unsolicited burst ends
	unsolOpen  bool   // an unsolicited sequence is in progress
	r2tOpen    bool   // a solicited burst is in progress
	r2tEnd     uint32 // where it ends
	r2tSN      uint32 // R2Ts sent
	dataSN     uint32 // the DataSN expected next (Data-Out) or sent next (Data-In)

	// Data-in and status.
	phase   outPhase
	inSent  uint32 // Data-In bytes queued
	inTotal uint32 // Data-In bytes to send: min(task.DataIn, EDTL)
	aborted bool
	tmf     *tmfWait // the task management request waiting for this one (I5)
}

// ttt is the Target Transfer Tag naming this command's current R2T: slot
// and generation, never 0xffffffff (slots stay below 0xffff).
func (cm *cmd) ttt() uint32 { return uint32(cm.gen)<<16 | uint32(cm.slot) }

// initCmds makes the command pool.
func (c *Conn) initCmds(depth int) {
	c.cmds = make([]cmd, depth+immediateSlots)
	for i := len(c.cmds) - 1; i >= 0; i-- {
		cm := &c.cmds[i]
		cm.conn, cm.slot = c, uint16(i)
		cm.task.Tag = uint64(i)
		cm.task.Completer = c
		cm.next = c.freeCmds
		c.freeCmds = cm
	}
	c.cmdCount[cmdFree] = len(c.cmds)
}

func (c *Conn) setCmdState(cm *cmd, s cmdState) {
	c.cmdCount[cm.state]--
	c.cmdCount[s]++
	cm.state = s
}

// allocCmd takes a command slot: a windowed one (I2) or one of the
// immediate slots.
func (c *Conn) allocCmd(immediate bool) *cmd {
	if immediate && c.imm >= immediateSlots || !immediate && c.window >= c.sess.depth {
		return nil
	}
	cm := c.freeCmds
	if cm == nil {
		return nil
	}
	c.freeCmds = cm.next
	cm.next = nil
	if immediate {
		c.imm++
	} else {
		c.window++
	}
	cm.gen++
	if cm.gen == 0xffff {
		cm.gen = 0
	}
	cm.immediate = immediate
	cm.got, cm.nextOffset, cm.unsolEnd, cm.unsolOpen, cm.r2tOpen, cm.r2tEnd = 0, 0, 0, false, false, 0
	cm.r2tSN, cm.dataSN, cm.phase, cm.inSent, cm.inTotal, cm.aborted, cm.tmf = 0, 0, outNone, 0, 0, false, nil
	c.setCmdState(cm, cmdStarting)
	return cm
}

// freeCmd releases the task's buffers (I3) and returns the slot, which
// may widen the window.
func (c *Conn) freeCmd(cm *cmd) {
	if cm.state == cmdFree {
		panic(fmt.Sprintf("iscsi: conn %d: command slot %d freed twice", c.id, cm.slot))
	}
	if cm.state == cmdRunning {
		panic(fmt.Sprintf("iscsi: conn %d: command ITT %#x freed while at the bdev", c.id, cm.itt))
	}
	if c.stalled == cm {
		c.stalled = nil
	}
	cm.task.Release()
	if cm.tmf != nil {
		cm.tmf.done(c)
		cm.tmf = nil
	}
	if cm.immediate {
		c.imm--
	} else {
		c.window--
	}
	c.setCmdState(cm, cmdFree)
	cm.next = c.freeCmds
	c.freeCmds = cm
}

// byTTT finds the command an R2T's TTT names.
func (c *Conn) byTTT(ttt uint32) *cmd {
	slot := int(ttt & 0xffff)
	if slot >= len(c.cmds) {
		return nil
	}
	cm := &c.cmds[slot]
	if cm.state == cmdFree || cm.ttt() != ttt {
		return nil
	}
	return cm
}

// byITT finds a live command by its Initiator Task Tag.
func (c *Conn) byITT(itt uint32) *cmd {
	for i := range c.cmds {
		if cm := &c.cmds[i]; cm.state != cmdFree && cm.itt == itt {
			return cm
		}
	}
	return nil
}

// window advances: MaxCmdSN = ExpCmdSN + free windowed slots - 1, never
// decreasing (I2).
func (s *Session) updateMaxCmdSN(outstanding int) {
	m := s.expCmdSN + uint32(s.depth-outstanding) - 1
	if pdu.SN(m).Greater(pdu.SN(s.maxCmdSN)) {
		s.maxCmdSN = m
	}
}

// sns fills the sequence numbers of a response PDU.
func (c *Conn) sns() (exp, max uint32) {
	s := c.sess
	s.updateMaxCmdSN(c.window)
	return s.expCmdSN, s.maxCmdSN
}

// nextStatSN takes a StatSN for a status-bearing PDU (I1).
func (c *Conn) nextStatSN() uint32 {
	v := c.statSN
	c.statSN++
	return v
}

// TaskDone implements scsi.Completer: the task left the bdev.
func (c *Conn) TaskDone(t *scsi.Task) {
	cm := &c.cmds[t.Tag]
	if cm.state != cmdRunning {
		panic(fmt.Sprintf("iscsi: conn %d: TaskDone for %s command ITT %#x", c.id, cm.state, cm.itt))
	}
	c.running--
	if cm.aborted || c.state >= connClosing {
		c.setCmdState(cm, cmdSending)
		c.freeCmd(cm) // I5: no response for an aborted task
		if c.state == connClosing {
			c.finishClose()
		}
		return
	}
	c.respond(cm) // written by this turn's Poll, with the other completions (batched writev)
}

// residual computes the iSCSI residual of a finished command (RFC 7143
// §11.4.5): data-in against what was produced, data-out against what the
// CDB asked for.
func (cm *cmd) residual() (expected, actual uint32) {
	t := &cm.task
	switch t.Cmd.Direction() {
	case cdb.DirIn:
		return cm.edtl, t.DataIn
	case cdb.DirOut:
		return cm.edtl, t.DataSize
	}
	return cm.edtl, 0
}

// respond queues the command's Data-In and status.
func (c *Conn) respond(cm *cmd) {
	t := &cm.task
	c.setCmdState(cm, cmdSending)
	cm.inTotal = min(t.DataIn, cm.edtl)
	cm.phase = outResponse
	if cm.inTotal > 0 {
		cm.phase = outDataIn
	}
	c.queue(cm)
}

// queue puts the command's next PDUs in the send queue, or on the wait
// list when there is no room.
func (c *Conn) queue(cm *cmd) {
	if c.waitHead != nil || !c.generate(cm) {
		cm.next = nil
		if c.waitTail == nil {
			c.waitHead = cm
		} else {
			c.waitTail.next = cm
		}
		c.waitTail = cm
	}
}

// drainWaiting generates for waiting commands while there is room; false
// when nothing moved.
func (c *Conn) drainWaiting() bool {
	moved := false
	for c.waitHead != nil {
		cm := c.waitHead
		if !c.generate(cm) {
			return moved
		}
		moved = true
		c.waitHead = cm.next
		if c.waitHead == nil {
			c.waitTail = nil
		}
		cm.next = nil
	}
	return moved
}

// generate queues as much of the command's output as fits; true when all
// of it is queued.
func (c *Conn) generate(cm *cmd) bool {
	switch cm.phase {
	case outR2T:
		if c.sq.free() == 0 {
			return false
		}
		c.queueR2T(cm)
		return true
	case outDataIn:
		for cm.inSent < cm.inTotal {
			if c.sq.free() <= sendReserve {
				return false
			}
			c.queueDataIn(cm)
		}
		if cm.phase == outNone {
			return true // the status went with the last Data-In
		}
		cm.phase = outResponse
		fallthrough
	case outResponse:
		if c.sq.free() == 0 {
			return false
		}
		c.queueResponse(cm)
		return true
	}
	return true
}

// queueDataIn queues one Data-In PDU (RFC 7143 §11.7): at most the
// initiator's MaxRecvDataSegmentLength, F at the end of each MaxBurstLength
// sequence, and the status on the last when it is GOOD (phase collapse).
func (c *Conn) queueDataIn(cm *cmd) {
	t := &cm.task
	p := &c.params
	off := cm.inSent
	burstEnd := (off/p.MaxBurstLength + 1) * p.MaxBurstLength
	// One PDU from one segment of the task's buffer, within the burst.
	data := t.DataChunk(off, min(cm.inTotal, burstEnd)-off)
	data = data[:min(uint32(len(data)), p.MaxSendDataSegmentLength)]
	n := uint32(len(data))
	last := off+n == cm.inTotal
	o := c.sq.push()
	h := pdu.BHSOf(o.hdr[:])
	di := h.InitDataIn()
	h.SetITT(cm.itt)
	di.SetTTT(pdu.ReservedTag)
	di.SetDataSN(cm.dataSN)
	di.SetBufferOffset(off)
	cm.dataSN++
	cm.inSent += n
	exp, max := c.sns()
	switch {
	case last && t.Status == cdb.StatusGood:
		di.SetStatus(uint8(t.Status))
		di.SetResidual(cm.residual())
		di.SetSNs(c.nextStatSN(), exp, max)
		cm.phase = outNone
		o.done = cm
	case last || off+n == burstEnd:
		h.SetFinal(true)
		di.SetSNs(0, exp, max)
	default:
		di.SetSNs(0, exp, max)
	}
	c.sq.seal(o, data)
}

// queueResponse queues the SCSI Response (RFC 7143 §11.4) with sense data.
func (c *Conn) queueResponse(cm *cmd) {
	t := &cm.task
	o := c.sq.push()
	h := pdu.BHSOf(o.hdr[:])
	r := h.InitSCSIResponse()
	h.SetITT(cm.itt)
	r.SetResponse(pdu.ResponseCompleted)
	r.SetStatus(uint8(t.Status))
	r.SetResidual(cm.residual())
	exp, max := c.sns()
	r.SetSNs(c.nextStatSN(), exp, max)
	if cm.task.Cmd.Direction() == cdb.DirIn {
		r.SetExpDataSN(cm.dataSN)
	} else {
		r.SetExpDataSN(cm.r2tSN)
	}
	cm.phase = outNone
	o.done = cm
	var data []byte
	if t.SenseLen > 0 {
		// RFC 7143 §11.4.7: SenseLength, then the sense data.
		o.inline[0], o.inline[1] = byte(t.SenseLen>>8), byte(t.SenseLen)
		copy(o.inline[2:], t.Sense[:t.SenseLen])
		data = o.inline[:2+t.SenseLen]
	}
	c.sq.seal(o, data)
}

// queueR2T asks for the next burst of data-out (RFC 7143 §11.8).
func (c *Conn) queueR2T(cm *cmd) {
	want := cm.task.DataOut
	off := cm.got
	n := min(want-off, c.params.MaxBurstLength)
	cm.r2tOpen = true
	cm.r2tEnd = off + n
	cm.nextOffset = off
	cm.dataSN = 0
	cm.phase = outNone
	o := c.sq.push()
	h := pdu.BHSOf(o.hdr[:])
	r := h.InitR2T()
	h.SetITT(cm.itt)
	h.SetLUN(cm.lun)
	r.SetTTT(cm.ttt())
	exp, max := c.sns()
	r.SetSNs(c.statSN, exp, max) // an R2T does not advance StatSN
	r.SetR2TSN(cm.r2tSN)
	r.SetBufferOffset(off)
	r.SetDesiredDataTransferLength(n)
	cm.r2tSN++
	c.sq.seal(o, nil)
}
