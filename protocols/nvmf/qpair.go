package nvmf

import (
	"fmt"
	"sync/atomic"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/reactors"
)

// qpairState is where a queue pair is in its life (SPDK's spdk_nvmf_qpair_state).
type qpairState uint8

const (
	qpairAwaitConnect qpairState = iota // accepted; only a Connect is in sequence
	qpairConnecting                     // an I/O Connect is at the controller's reactor
	qpairActive                         // connected to a controller
	qpairClosing                        // the transport is closing it; commands drain
	qpairClosed                         // every command completed; resources released
)

var qpairStateNames = [...]string{"connecting", "connecting", "active", "deactivating", "closed"}

func (s qpairState) String() string {
	if int(s) < len(qpairStateNames) {
		return qpairStateNames[s]
	}
	return fmt.Sprintf("qpairState(%d)", uint8(s))
}

// Qpair is the core's half of one connection: an admin or I/O queue of one controller. The
// transport makes it with PollGroup.NewQpair, hands it each command (Exec), and tells it when
// the connection is closing and closed. Owner: the reactor of its PollGroup; every method but
// the statistics is owner only.
type Qpair struct {
	group  *PollGroup        // set in NewQpair, never changed
	owner  *reactors.Reactor //
	target *Target           //
	ops    QpairOps          //
	listen ListenAddress     //
	peer   string            //
	id     uint64            // unique in the target, for the debug endpoint

	// Owner-only.
	state       qpairState
	qid         uint16
	depth       uint16 // SQSIZE+1, from Connect
	sqhd        uint16 // SQ head pointer: commands fetched, mod depth
	sqFlowOff   bool   // the host disabled SQ flow control (Connect CATTR bit 2)
	ctrlr       *Controller
	outstanding int // Exec'd and not yet Completed (T3)
	// ioQueuedAbort: requests on this qpair parked for a bdev.IO, counted so Closing can
	// complete them and an Abort can find them.
	parked int

	// Set on the owner before the qpair is registered with its subsystem (under its lock),
	// then read under that lock by RPCs; state is read anywhere.
	cntlid    uint16
	stateView atomic.Uint32
	stats     ioStats
	errReport errorReport       // owner fills it; the controller's reactor delivers it
	trtype    uint8             // set in NewQpair, never changed
	topts     *TransportOptions //
}

// QID is the queue ID from Connect (0: admin, or not connected yet).
func (q *Qpair) QID() uint16 { return q.qid }

// Reactor is the qpair's owner.
func (q *Qpair) Reactor() *reactors.Reactor { return q.owner }

// Depth is the queue depth the host connected with (SQSIZE+1); 0 before Connect.
func (q *Qpair) Depth() uint16 { return q.depth }

// SQFlowControlDisabled reports whether the host turned SQ flow control off at Connect: the
// transport may then complete a read by its last C2HData PDU alone (NVMe/TCP 1.0, "C2HData
// PDU", SUCCESS flag).
func (q *Qpair) SQFlowControlDisabled() bool { return q.sqFlowOff }

// Admin reports whether this is an admin queue (or not yet connected, which only takes a
// Connect). Transports size in-capsule data by it.
func (q *Qpair) Admin() bool { return q.qid == 0 }

func (q *Qpair) setState(s qpairState) {
	q.state = s
	q.stateView.Store(uint32(s))
}

// Exec runs one command. The transport fills req's command part (Cmd, Xfer, Length, Data,
// Tag) and gets req back through QpairOps.Complete exactly once, now or later, on this
// reactor (T3). Owner only.
func (q *Qpair) Exec(req *Request) {
	q.owner.AssertCurrent()
	if q.state == qpairClosed {
		panic(fmt.Sprintf("nvmf: Exec on closed qpair %d (cid %d)", q.id, req.Cmd.CID()))
	}
	req.qpair = q
	req.ns = nil
	req.next = nil
	req.op = opOther
	req.dsm = 0
	req.Rsp.Reset()
	req.Rsp.SetCID(req.Cmd.CID())
	req.start = q.owner.Clock().Now()
	q.outstanding++
	q.fetched()
	switch {
	case q.state == qpairClosing:
		// The connection is going away: answer without running it; the transport drops
		// the answer (NVMe Base 2.0, "Command Aborted due to SQ Deletion").
		q.complete(req, nvme.StatusAbortedSQDeletion, false)
	case req.Cmd.Opcode() == nvme.OpcodeFabrics:
		q.execFabrics(req)
	case q.state != qpairActive:
		// Only Connect is in sequence before Connect (NVMe-oF 1.1, "Connect Command").
		q.complete(req, nvme.StatusCommandSequenceError, true)
	case q.qid == 0:
		q.ctrlr.execAdmin(req)
	default:
		q.execIO(req)
	}
}

// Fail answers a command the transport could not run (a malformed data pointer, a data digest
// error, an abort before it started) with st, counted like any command: Complete follows, now,
// exactly as after Exec (T3). Owner only.
func (q *Qpair) Fail(req *Request, st nvme.Status) {
	q.owner.AssertCurrent()
	req.qpair = q
	req.ns = nil
	req.op = opOther
	req.Rsp.Reset()
	req.Rsp.SetCID(req.Cmd.CID())
	req.start = q.owner.Clock().Now()
	q.outstanding++
	q.fetched()
	q.complete(req, st, st != nvme.StatusTransientTransportError && st != nvme.StatusAbortRequested)
}

// fetched advances the SQ head pointer for one command taken from the queue (NVMe-oF 1.1,
// "SQ flow control": SQHD in each response tells the host what it may reuse).
func (q *Qpair) fetched() {
	if q.depth > 0 {
		q.sqhd = (q.sqhd + 1) % q.depth
	} else {
		q.sqhd++
	}
}

// complete sets req's status and finishes it.
func (q *Qpair) complete(req *Request, st nvme.Status, dnr bool) {
	req.status(st, dnr)
	q.finish(req)
}

// finish fills the response fields every completion carries and hands req back (T3).
func (q *Qpair) finish(req *Request) {
	if q.outstanding <= 0 {
		panic(fmt.Sprintf("nvmf: qpair %d completes cid %d with none outstanding", q.id, req.Cmd.CID()))
	}
	q.outstanding--
	req.Rsp.SetSQID(q.qid)
	if q.sqFlowOff {
		req.Rsp.SetSQHD(0xFFFF) // reserved when SQ flow control is off; Linux's nvmet and SPDK send FFFFh
	} else {
		req.Rsp.SetSQHD(q.sqhd)
	}
	failed := !req.Rsp.Status().Success()
	if failed && q.ctrlr != nil {
		q.ctrlr.recordError(q, req)
	}
	q.stats.record(req.op, req.Length, failed, q.owner.Clock().Now()-req.start)
	q.ops.Complete(req)
}

// activate makes a connected qpair of ctrlr.
func (q *Qpair) activate(c *Controller, qid, depth uint16, sqFlowOff bool) {
	q.ctrlr, q.qid, q.depth, q.sqFlowOff = c, qid, depth, sqFlowOff
	q.cntlid = c.cntlid
	q.sqhd %= depth
	q.setState(qpairActive)
	if qid == 0 {
		q.group.adminQpairs.add(1)
		q.group.currentAdminQpairs.add(1)
	} else {
		q.group.ioQpairs.add(1)
		q.group.currentIOQpairs.add(1)
	}
	c.subsys.addQpair(q)
}

// Closing is the transport's notice that the connection is closing: no command is Exec'd
// with effect from now on, and those in flight should end soon. Parked commands complete
// now; an admin queue's held AERs complete and its controller is torn down. Owner only.
func (q *Qpair) Closing() {
	q.owner.AssertCurrent()
	if q.state == qpairClosing || q.state == qpairClosed {
		return
	}
	wasActive := q.state == qpairActive
	q.setState(qpairClosing)
	q.group.abortParked(q)
	if wasActive && q.qid == 0 {
		q.ctrlr.adminClosing()
	}
}

// Closed is the transport's notice that every command it Exec'd has completed and the
// connection is gone: the qpair leaves its controller. Owner only.
func (q *Qpair) Closed() {
	q.owner.AssertCurrent()
	if q.state != qpairClosing {
		q.Closing()
	}
	if q.outstanding != 0 {
		panic(fmt.Sprintf("nvmf: qpair %d closed with %d commands outstanding", q.id, q.outstanding))
	}
	q.setState(qpairClosed)
	c := q.ctrlr
	if c == nil {
		return
	}
	if q.qid == 0 {
		q.group.currentAdminQpairs.sub(1)
	} else {
		q.group.currentIOQpairs.sub(1)
	}
	c.subsys.removeQpair(q)
	if q.qid == 0 {
		c.adminClosed()
		return
	}
	q.target.post(c.owner, func() { c.removeIOQpair(q) })
}

// disconnect asks the transport to close the connection (controller teardown, reset, RPC).
func (q *Qpair) disconnect() {
	if q.state == qpairClosing || q.state == qpairClosed {
		return
	}
	q.ops.Disconnect()
}

// abortQueued aborts command cid if it has not started: parked for a bdev.IO here, or held by
// the transport. It reports whether it did.
func (q *Qpair) abortQueued(cid uint16) bool {
	if q.group.abortParkedCID(q, cid) {
		return true
	}
	if q.state == qpairClosed {
		return false
	}
	return q.ops.AbortQueued(cid)
}

// abortParked completes every command of q parked for a bdev.IO (q is closing).
func (g *PollGroup) abortParked(q *Qpair) {
	if q.parked == 0 {
		return
	}
	g.removeParked(func(r *Request) bool { return r.qpair == q }, nvme.StatusAbortedSQDeletion)
}

// abortParkedCID completes q's parked command cid with Abort Requested, if there is one.
func (g *PollGroup) abortParkedCID(q *Qpair, cid uint16) bool {
	if q.parked == 0 {
		return false
	}
	return g.removeParked(func(r *Request) bool { return r.qpair == q && r.Cmd.CID() == cid },
		nvme.StatusAbortRequested) > 0
}

// removeParked takes the parked commands match selects off the queue and completes them.
func (g *PollGroup) removeParked(match func(*Request) bool, st nvme.Status) int {
	var keepHead, keepTail, doneHead *Request
	n := 0
	for r := g.retryHead; r != nil; {
		next := r.next
		r.next = nil
		if match(r) {
			r.next = doneHead
			doneHead = r
			n++
		} else if keepTail == nil {
			keepHead, keepTail = r, r
		} else {
			keepTail.next = r
			keepTail = r
		}
		r = next
	}
	g.retryHead, g.retryTail = keepHead, keepTail
	g.retries -= n
	for r := doneHead; r != nil; {
		next := r.next
		r.next = nil
		r.qpair.parked--
		r.qpair.endIO(r)
		r.qpair.complete(r, st, false)
		r = next
	}
	return n
}

// QpairInfo is one qpair for nvmf_subsystem_get_qpairs (SPDK's shape, plus our counters).
type QpairInfo struct {
	CNTLID        uint16        `json:"cntlid"`
	QID           uint16        `json:"qid"`
	State         string        `json:"state"`
	ListenAddress ListenAddress `json:"listen_address"`
	PeerAddress   string        `json:"peer_address"`
	HostNQN       string        `json:"hostnqn"`
	Reactor       int           `json:"reactor"`
	Depth         uint16        `json:"queue_depth"`
	Stats         IOStats       `json:"stats"`
}
