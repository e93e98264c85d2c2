package iscsi

import (
	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
)

// tmfWait is a task management request waiting for the tasks it aborted
// to leave the bdev before it is answered (I5). Control path: one per TMF.
type tmfWait struct {
	conn     *Conn
	itt      uint32
	response pdu.TaskResponse
	pending  int
	cold     bool // TARGET COLD RESET: drop the node's sessions once answered
}

// done counts one aborted task gone; the last sends the response.
func (w *tmfWait) done(*Conn) {
	w.pending--
	if w.pending == 0 {
		w.conn.tmfRespond(w)
	}
}

// taskMgmt runs a Task Management Function Request (RFC 7143 §11.5, SAM-5
// 7). The Control mode page's TST is 000b (one task set per I_T nexus), so
// CLEAR TASK SET touches only the requester's tasks, like ABORT TASK SET.
func (c *Conn) taskMgmt(h *pdu.BHS) {
	tm := h.TaskMgmtRequest()
	if !c.commandSN(h, tm.CmdSN()) {
		return
	}
	w := &tmfWait{conn: c, itt: h.ITT(), response: pdu.TaskComplete, pending: 1}
	lun := h.LUN()
	dev := c.node.dev
	switch tm.Function() {
	case pdu.TaskAbortTask:
		cm := c.byITT(tm.RTT())
		switch {
		case cm != nil:
			c.abortCmd(cm, w)
		case pdu.SN(tm.RefCmdSN()).InWindow(pdu.SN(c.sess.expCmdSN), pdu.SN(c.sess.maxCmdSN)):
			// RFC 7143 §11.5.1 b): not received yet; taken as received and aborted.
		default:
			w.response = pdu.TaskNotExist
		}
	case pdu.TaskAbortTaskSet, pdu.TaskClearTaskSet:
		if !dev.HasLUN(lun) {
			w.response = pdu.TaskLUNNotExist
			break
		}
		c.abortWhere(w, func(cm *cmd) bool { return cm.lun == lun })
	case pdu.TaskLogicalUnitReset:
		if !dev.HasLUN(lun) {
			w.response = pdu.TaskLUNNotExist
			break
		}
		for _, s := range c.node.sessions {
			if s.conn != nil {
				s.conn.abortWhere(w, func(cm *cmd) bool { return cm.lun == lun })
			}
		}
		dev.ResetLUN(lun)
	case pdu.TaskTargetWarmReset, pdu.TaskTargetColdReset:
		for _, s := range c.node.sessions {
			if s.conn != nil {
				s.conn.abortWhere(w, func(*cmd) bool { return true })
			}
		}
		dev.ResetTarget()
		w.cold = tm.Function() == pdu.TaskTargetColdReset
	case pdu.TaskReassign:
		w.response = pdu.TaskReassignNotSupported // ErrorRecoveryLevel 0
	default:
		w.response = pdu.TaskFunctionNotSupported
	}
	w.done(c)
}

// abortWhere aborts the connection's commands that match.
func (c *Conn) abortWhere(w *tmfWait, match func(*cmd) bool) {
	for i := range c.cmds {
		if cm := &c.cmds[i]; cm.state != cmdFree && match(cm) {
			c.abortCmd(cm, w)
		}
	}
}

// abortCmd ends cm without a response: now when it is not at the bdev,
// when it leaves it otherwise (I5). A command whose status is being sent
// is past aborting.
func (c *Conn) abortCmd(cm *cmd, w *tmfWait) {
	switch cm.state {
	case cmdRunning:
		cm.aborted = true
		if cm.tmf == nil {
			cm.tmf = w
			w.pending++
		}
	case cmdStarting, cmdDataOut:
		c.removeWaiting(cm)
		if c.cur.c == cm {
			c.cur.c = nil
			c.cur.kind = curControl
		}
		c.setCmdState(cm, cmdSending)
		c.freeCmd(cm)
	}
}

// tmfRespond queues the Task Management Function Response (RFC 7143 §11.6).
func (c *Conn) tmfRespond(w *tmfWait) {
	if c.state != connFull {
		return
	}
	exp, max := c.sns()
	c.queueControl(func(b *pdu.BHS) {
		r := b.InitTaskMgmtResponse()
		b.SetITT(w.itt)
		r.SetResponse(w.response)
		r.SetSNs(c.nextStatSN(), exp, max)
	}, nil)
	c.send()
	if w.cold {
		// SAM-5 5.8.3: a cold reset ends every nexus; the answer went first.
		for _, s := range append([]*Session(nil), c.node.sessions...) {
			if s.conn != nil && s.conn != c {
				s.conn.close("target cold reset")
			}
		}
		c.closeAfterSend("target cold reset")
	}
}
