package nvmf

import (
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
)

// Byte offsets Connect Invalid Parameters blames (NVMe-oF 1.1, "Connect Command", "Connect
// Response": IPO is the offset in the SQE, or in the data when IATTR says so).
const (
	offConnectSQSIZE = 44
	offConnectQID    = 42
	offConnectKATO   = 48
	offDataCNTLID    = 16
	offDataSubNQN    = 256
	offDataHostNQN   = 512
)

// execFabrics runs a fabrics command (opcode 7Fh) on any queue: Connect, Property Get/Set,
// Disconnect (NVMe-oF 1.1, "Fabrics Command Set").
func (q *Qpair) execFabrics(req *Request) {
	switch t := req.Cmd.FCType(); {
	case t == nvme.FabricsConnect:
		if q.state != qpairAwaitConnect {
			q.complete(req, nvme.StatusCommandSequenceError, true) // a second Connect
			return
		}
		q.connect(req)
	case q.state != qpairActive:
		q.complete(req, nvme.StatusCommandSequenceError, true)
	case t == nvme.FabricsPropertyGet || t == nvme.FabricsPropertySet:
		if q.qid != 0 { // properties live on the admin queue only
			q.complete(req, nvme.StatusInvalidOpcode, true)
			return
		}
		q.ctrlr.execProperty(req)
	case t == nvme.FabricsDisconnect:
		// NVMe-oF 1.1, "Disconnect Command": the queue is deleted once the response is sent;
		// the transport closes the connection after it (Complete sees the state).
		q.complete(req, nvme.StatusSuccess, false)
		q.disconnect()
	default: // authentication and anything newer: not offered
		q.complete(req, nvme.StatusInvalidOpcode, true)
	}
}

// connectParamFail completes a Connect with Connect Invalid Parameters naming the field.
// The refusal is logged: an operator whose host cannot connect wants to know which field.
func (q *Qpair) connectParamFail(req *Request, field string, off uint16, inData bool, why string) {
	req.Rsp.SetConnectInvalidParam(&nvme.ConnectParamError{Field: field, Offset: off, InData: inData, Reason: why})
	q.target.log.Warn("nvmf: connect refused: invalid parameter", "field", field, "why", why,
		"qid", req.Cmd.Connect().QID(), "sqsize", req.Cmd.Connect().SQSIZE())
	q.finish(req)
}

// connect runs the ordered checks of a Connect (NVMe-oF 1.1, "Connect Command"; SPDK's
// nvmf_ctrlr_cmd_connect), each ending in the status the host gets.
func (q *Qpair) connect(req *Request) {
	if req.Xfer != nvme.DataToCtrl || len(req.Data) < nvme.ConnectDataSize {
		q.complete(req, nvme.StatusInvalidField, true)
		return
	}
	cmd := req.Cmd.Connect()
	data := nvme.ConnectDataOf(req.Data)
	subnqn, err := data.SubNQN()
	if err != nil {
		q.connectParamFail(req, "subnqn", offDataSubNQN, true, err.Error())
		return
	}
	// The host NQN is taken as sent, empty included, as SPDK's and Linux's targets take it:
	// spdk_nvme_perf sends none unless told, and an allow list matches it exactly anyway.
	hostnqn, err := data.HostNQN()
	if err != nil {
		q.connectParamFail(req, "hostnqn", offDataHostNQN, true, err.Error())
		return
	}
	s := q.target.lookup(subnqn)
	if s == nil {
		q.connectParamFail(req, "subnqn", offDataSubNQN, true, "no such subsystem")
		return
	}
	if cmd.RECFMT() != nvme.ConnectRECFMT0 {
		q.complete(req, nvme.StatusConnectIncompatibleFormat, true)
		return
	}
	qid, sqsize := cmd.QID(), cmd.SQSIZE()
	opts := q.topts
	depthMax := opts.MaxQueueDepth
	if qid == 0 {
		depthMax = opts.MaxAdminQueueDepth
	}
	if sqsize == 0 || uint32(sqsize) >= uint32(depthMax) {
		q.connectParamFail(req, "sqsize", offConnectSQSIZE, false, "out of range")
		return
	}
	if !s.admits(q.listen, hostnqn) {
		// NVMe-oF 1.1, "Connect Response": the host is not allowed, or not at this address.
		q.complete(req, nvme.StatusConnectInvalidHost, true)
		return
	}
	sqFlowOff := cmd.CATTR()&nvme.ConnectAttrDisableSQFlow != 0
	if qid == 0 {
		q.connectAdmin(req, s, data, hostnqn, sqsize+1, sqFlowOff)
		return
	}
	c := s.controller(data.CNTLID())
	switch {
	case c == nil:
		q.connectParamFail(req, "cntlid", offDataCNTLID, true, "no such controller")
	case c.hostNQN != hostnqn:
		q.connectParamFail(req, "hostnqn", offDataHostNQN, true, "not the controller's host")
	default:
		q.setState(qpairConnecting)
		depth := sqsize + 1
		q.target.post(c.owner, func() { c.addIOQpair(q, req, qid, depth, sqFlowOff) })
	}
}

// connectAdmin makes a controller for an admin queue Connect (dynamic model only).
func (q *Qpair) connectAdmin(req *Request, s *Subsystem, data *nvme.ConnectData, hostnqn string, depth uint16, sqFlowOff bool) {
	if data.CNTLID() != nvme.CNTLIDDynamic {
		q.connectParamFail(req, "cntlid", offDataCNTLID, true, "the dynamic controller ID FFFFh")
		return
	}
	kato, ok := katoFor(q.topts, time.Duration(req.Cmd.Connect().KATO())*time.Millisecond, s.discovery)
	if !ok {
		q.connectParamFail(req, "kato", offConnectKATO, false, "above the target's maximum")
		return
	}
	c := s.newController(q, hostnqn, data.HostID(), kato)
	if c == nil {
		q.complete(req, nvme.StatusConnectControllerBusy, true) // every CNTLID of the range is in use
		return
	}
	q.activate(c, 0, depth, sqFlowOff)
	c.start()
	req.Rsp.SetConnectSuccess(c.cntlid, 0)
	q.finish(req)
}

// connectDone finishes an I/O queue Connect on its qpair's reactor with the controller's
// answer (st success: the controller registered q under qid).
func (q *Qpair) connectDone(req *Request, c *Controller, st nvme.Status, qid, depth uint16, sqFlowOff bool) {
	if q.state == qpairClosing {
		// The connection dropped while the controller was asked: undo, and answer nobody.
		if st.Success() {
			q.target.post(c.owner, func() { c.unregisterIOQpair(q, qid) })
		}
		q.complete(req, nvme.StatusAbortedSQDeletion, false)
		return
	}
	if !st.Success() {
		q.setState(qpairAwaitConnect)
		if st == nvme.StatusConnectInvalidParameters {
			q.connectParamFail(req, "qid", offConnectQID, false, "refused by the controller")
			return
		}
		q.complete(req, st, true)
		return
	}
	q.activate(c, qid, depth, sqFlowOff)
	req.Rsp.SetConnectSuccess(c.cntlid, 0)
	q.finish(req)
}
