package nvmf

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/reactors"
)

// Controller is one NVMe controller of a subsystem: made by an admin queue Connect, alive
// until that queue goes (or its keep-alive timer expires, or an RPC drops it). It is the state
// machine of NVMe Base 2.0 "Controller Initialization" and "Controller Shutdown" over the
// fabrics properties (CC, CSTS), plus its keep-alive timer, asynchronous events, features and
// error log. Owner: its admin qpair's reactor; I/O qpairs on other reactors read only enabled,
// and register and leave by message (C1..C4 in doc.go).
type Controller struct {
	owner     *reactors.Reactor // the admin qpair's; set in newController, never changed
	target    *Target           //
	subsys    *Subsystem        //
	cntlid    uint16            //
	hostNQN   string            //
	hostID    [16]byte          //
	discovery bool              //
	trtype    uint8             // the admin connection's transport, for the error log
	opts      *TransportOptions // the admin connection's transport's: MQES, IOCCSZ, MDTS, KAS
	created   time.Time         //

	// Owner-only.
	admin       *Qpair
	adminGone   bool     // the admin qpair has Closed
	ioQpairs    []*Qpair // index: QID; [0] unused
	ioCount     int
	cc          nvme.CC
	csts        nvme.CSTS
	resetting   bool // CC.EN 1 to 0: RDY clears once the I/O queues are gone
	shutdown    bool // CC.SHN set: SHST completes once the I/O queues are gone
	destructing bool
	kato        time.Duration
	lastAlive   time.Duration // last Keep Alive (or Connect), reactor clock
	katoTimer   *reactors.PollerHandle
	aecfg       uint32 // Asynchronous Event Configuration (Set Features 0Bh)
	aers        [aerOutstandingMax]*Request
	aerCount    int
	events      [aerEventsMax]uint32 // events waiting for an AER, FIFO
	eventCount  int
	masked      uint32 // event kinds reported and not yet cleared by reading their log (bit per log ID)
	changedNS   [NamespacesMax]uint32
	changedLen  int    // entries in changedNS
	changedOver bool   // more than fit: the log reports overflow
	queuesAlloc uint16 // Number of Queues granted (I/O SQs = CQs), 1's based
	vwc         bool   // Volatile Write Cache enable (Set Features 06h)
	arbitration uint32 // Arbitration (Set Features 01h): kept, not used (one queue per connection)
	// Temperature Threshold (Set Features 04h), [TMPSEL][THSEL]: kept and reported; the
	// target has no temperature (the SMART log says 0 K), so none is ever crossed.
	tempThreshold [nvme.TMPSELSensorMax + 1][2]uint16
	errLog        [errorLogEntries]nvme.ErrorInfo
	errCount      uint64 // errors recorded; entry errCount-1 is the newest
	aborts        int    // Abort commands waiting for another reactor's answer
	scratch       [nvme.IdentifySize]byte

	// Subsystem lock: counters of the controller's qpairs that have closed.
	retired IOStats

	// Read by I/O qpairs on any reactor: CC.EN, CSTS.RDY and not torn down (C2).
	enabled atomic.Bool
	// Read by RPCs.
	ioCountView atomic.Int32
	katoView    atomic.Int64 // ms
}

// CNTLID is the controller's ID in its subsystem.
func (c *Controller) CNTLID() uint16 { return c.cntlid }

// start arms the keep-alive timer once the admin Connect succeeded. Owner only.
func (c *Controller) start() {
	c.lastAlive = c.owner.Clock().Now()
	c.katoView.Store(c.kato.Milliseconds())
	if c.kato > 0 {
		// Checked at half the timeout, so a silent host is found within 1.5 KATO (the spec
		// lets the controller detect it any time after KATO).
		c.katoTimer = c.owner.AddTimer("nvmf-kato", max(c.kato/2, time.Millisecond),
			reactors.PollFunc(c.checkKeepAlive), nil)
	}
}

// keepAliveExpired is the pure rule: no Keep Alive within KATO of the last (NVMe Base 2.0,
// "Keep Alive Timer"; traffic-based keep alive is not offered, so only the command counts).
func keepAliveExpired(kato, lastAlive, now time.Duration) bool {
	return kato > 0 && now-lastAlive > kato
}

func (c *Controller) checkKeepAlive() int {
	if !keepAliveExpired(c.kato, c.lastAlive, c.owner.Clock().Now()) {
		return 0
	}
	c.target.log.Warn("keep alive timeout: tearing the controller down", "subsys", c.subsys.nqn,
		"cntlid", c.cntlid, "host", c.hostNQN, "kato", c.kato)
	c.subsys.katoExpired.add(1)
	c.destroy()
	return 1
}

// destroy tears the controller down (C3): no new command runs, held AERs complete, every
// queue is disconnected; the CNTLID is released once the last one has closed. Owner only.
func (c *Controller) destroy() {
	if c.destructing {
		return
	}
	c.destructing = true
	c.enabled.Store(false)
	if c.katoTimer != nil {
		c.owner.RemovePoller(c.katoTimer)
		c.katoTimer = nil
	}
	c.completeAERs(nvme.StatusAbortedSQDeletion)
	for _, q := range c.ioQpairs {
		if q != nil {
			q := q
			c.target.post(q.owner, q.disconnect)
		}
	}
	if !c.adminGone {
		c.admin.disconnect()
	}
	c.maybeFree()
}

// adminClosing: the admin connection is closing; held AERs complete so it can drain.
func (c *Controller) adminClosing() {
	c.completeAERs(nvme.StatusAbortedSQDeletion)
	c.destroy()
}

// adminClosed: the admin queue is gone; the controller goes with it.
func (c *Controller) adminClosed() {
	c.adminGone = true
	c.destroy()
	c.maybeFree()
}

// maybeFree releases the controller once it is torn down and every queue has closed.
func (c *Controller) maybeFree() {
	if c.destructing && c.adminGone && c.ioCount == 0 {
		c.subsys.freeController(c)
	}
}

// addIOQpair registers q (on another reactor, or this one) as I/O queue qid, in SPDK's order
// of checks (nvmf_ctrlr_add_io_qpair), and answers on q's reactor. Owner only.
func (c *Controller) addIOQpair(q *Qpair, req *Request, qid, depth uint16, sqFlowOff bool) {
	st := nvme.StatusSuccess
	cc := c.cc.Fields()
	switch {
	case c.destructing, c.discovery, !cc.EN, c.resetting, c.shutdown:
		st = nvme.StatusConnectInvalidParameters // the host connects I/O queues to an enabled controller
	case cc.IOSQES != 6 || cc.IOCQES != 4: // 64-byte SQEs and 16-byte CQEs (NVMe Base 2.0, CC)
		st = nvme.StatusConnectInvalidParameters
	case int(qid) >= len(c.ioQpairs) || qid > c.queuesAlloc:
		st = nvme.StatusInvalidQueueIdentifier
	case c.ioQpairs[qid] != nil:
		st = nvme.StatusInvalidQueueIdentifier // the QID is in use (SPDK: duplicate QID)
	default:
		c.ioQpairs[qid] = q
		c.ioCount++
		c.ioCountView.Store(int32(c.ioCount))
	}
	c.target.post(q.owner, func() { q.connectDone(req, c, st, qid, depth, sqFlowOff) })
}

// removeIOQpair: I/O qpair q has closed. Owner only.
func (c *Controller) removeIOQpair(q *Qpair) { c.unregisterIOQpair(q, q.qid) }

func (c *Controller) unregisterIOQpair(q *Qpair, qid uint16) {
	if int(qid) >= len(c.ioQpairs) || c.ioQpairs[qid] != q {
		panic(fmt.Sprintf("nvmf: controller %d: qpair %d is not I/O queue %d", c.cntlid, q.id, qid))
	}
	c.ioQpairs[qid] = nil
	c.ioCount--
	c.ioCountView.Store(int32(c.ioCount))
	if c.ioCount == 0 {
		c.queuesGone()
	}
	c.maybeFree()
}

// queuesGone finishes a reset or a shutdown that waited for the I/O queues.
func (c *Controller) queuesGone() {
	if c.resetting {
		c.resetting = false
		c.csts = nvme.CSTSFields{}.CSTS() // RDY 0: the reset is done
	}
	if c.shutdown {
		f := c.csts.Fields()
		f.SHST = nvme.ShutdownStatusComplete
		c.csts = f.CSTS()
	}
}

// disconnectIOQpairs asks every I/O queue to close (a reset or a shutdown).
func (c *Controller) disconnectIOQpairs() {
	for _, q := range c.ioQpairs {
		if q != nil {
			q := q
			c.target.post(q.owner, q.disconnect)
		}
	}
}

// execProperty runs Property Get/Set on the admin queue (NVMe-oF 1.1, "Property Get",
// "Property Set"; the properties of NVMe Base 2.0, "Controller Properties").
func (c *Controller) execProperty(req *Request) {
	p := req.Cmd.Property()
	size := nvme.PropertySize(p.Offset())
	if size == 0 || p.Size() != size {
		c.admin.complete(req, nvme.StatusInvalidField, true)
		return
	}
	if req.Cmd.FCType() == nvme.FabricsPropertyGet {
		req.Rsp.SetResult64(c.property(p.Offset()))
		c.admin.complete(req, nvme.StatusSuccess, false)
		return
	}
	if p.Offset() != nvme.PropCC { // CAP, VS and CSTS are read-only; NSSR is not offered
		c.admin.complete(req, nvme.StatusInvalidField, true)
		return
	}
	st := c.setCC(nvme.CC(p.Value()))
	c.admin.complete(req, st, !st.Success())
}

// property reads a property.
func (c *Controller) property(off uint32) uint64 {
	switch off {
	case nvme.PropCAP:
		return uint64(c.capability())
	case nvme.PropVS:
		return uint64(controllerVersion)
	case nvme.PropCC:
		return uint64(c.cc)
	case nvme.PropCSTS:
		return uint64(c.csts)
	}
	return 0
}

// controllerVersion is what VS and Identify VER report: NVMe 1.3, which is what the fabrics
// features we implement were defined by (SPDK reports the same).
const controllerVersion = nvme.Version1_3

// capability is CAP: MQES from the transport's queue depth, CQR (fabrics queues are
// contiguous), TO, the NVM command set, and 4 KiB pages only.
func (c *Controller) capability() nvme.CAP {
	depth := c.opts.MaxQueueDepth
	return nvme.CAPFields{MQES: depth - 1, CQR: true, TO: readyTimeout, CSS: nvme.CAPCSSNVM}.CAP()
}

// setCC is the CC state machine: enable, disable (a reset), shutdown. It returns the status
// of the Property Set.
func (c *Controller) setCC(v nvme.CC) nvme.Status {
	old, f := c.cc.Fields(), v.Fields()
	switch {
	case f.SHN != nvme.ShutdownNone && old.SHN == nvme.ShutdownNone:
		// NVMe Base 2.0, "Shutdown": stop I/O, report processing, then complete.
		c.cc = v
		c.shutdown = true
		c.enabled.Store(false)
		cs := c.csts.Fields()
		cs.SHST = nvme.ShutdownStatusProcessing
		c.csts = cs.CSTS()
		c.disconnectIOQpairs()
		if c.ioCount == 0 {
			c.queuesGone()
		}
		return nvme.StatusSuccess
	case f.EN && !old.EN:
		if f.CSS != nvme.CCCSSNVM || f.MPS != 0 || f.AMS != 0 {
			// Only the NVM command set, 4 KiB pages (CAP.MPSMIN = MPSMAX = 0) and round robin.
			cs := c.csts.Fields()
			cs.CFS = true // NVMe Base 2.0: an invalid CC at enable is a controller fatal status
			c.csts = cs.CSTS()
			c.cc = v
			return nvme.StatusSuccess
		}
		c.cc = v
		c.shutdown = false
		c.csts = nvme.CSTSFields{RDY: true}.CSTS()
		c.enabled.Store(!c.destructing)
		return nvme.StatusSuccess
	case !f.EN && old.EN:
		// A controller reset: I/O queues are deleted, then RDY clears.
		c.cc = v
		c.enabled.Store(false)
		c.resetting = true
		c.completeAERs(nvme.StatusAbortedSQDeletion)
		c.disconnectIOQpairs()
		if c.ioCount == 0 {
			c.queuesGone()
		}
		return nvme.StatusSuccess
	}
	// No transition: fields other than EN and SHN may only change while disabled.
	if old.EN && (f.IOSQES != old.IOSQES || f.IOCQES != old.IOCQES || f.CSS != old.CSS || f.MPS != old.MPS) {
		return nvme.StatusInvalidField
	}
	c.cc = v
	return nvme.StatusSuccess
}

// recordError adds a failed command to the Error Information log (NVMe Base 2.0, "Error
// Information"). An I/O qpair's failures arrive from its reactor by message; admin failures
// are recorded here directly.
func (c *Controller) recordError(q *Qpair, req *Request) {
	st := req.Rsp.Status()
	if st == nvme.StatusAbortedSQDeletion || st == nvme.StatusAbortRequested {
		return // aborts are not errors of the command
	}
	if q.owner != c.owner {
		q.reportError(c, req)
		return
	}
	c.logError(q.qid, req.Cmd.CID(), st, req.Cmd.NSID(), req.Cmd.SLBA(), req.op != opOther)
}

// errorReport carries one I/O queue failure to the controller's reactor for the error log.
// Each qpair has one, so reporting allocates nothing; while it is in flight further failures
// of that qpair are only counted (the log keeps the last few anyway).
type errorReport struct {
	c    *Controller
	sqid uint16
	cid  uint16
	st   nvme.Status
	nsid uint32
	lba  uint64
	io   bool
	busy atomic.Bool // set by the qpair's reactor, cleared by the controller's after Deliver
}

// Deliver runs on the controller's reactor.
func (e *errorReport) Deliver() {
	e.c.logError(e.sqid, e.cid, e.st, e.nsid, e.lba, e.io)
	e.busy.Store(false)
}

// reportError sends a failure of q's to its controller's error log.
func (q *Qpair) reportError(c *Controller, req *Request) {
	e := &q.errReport
	if !e.busy.CompareAndSwap(false, true) {
		return
	}
	e.c, e.sqid, e.cid, e.st = c, q.qid, req.Cmd.CID(), req.Rsp.Status()
	e.nsid, e.lba, e.io = req.Cmd.NSID(), req.Cmd.SLBA(), req.op != opOther
	if c.owner.Post(e) != nil {
		e.busy.Store(false) // ring full or stopping: the entry is lost, the count in stats is not
	}
}

// logError writes one entry of the error log ring. Owner only.
func (c *Controller) logError(sqid, cid uint16, st nvme.Status, nsid uint32, lba uint64, io bool) {
	c.errCount++
	e := &c.errLog[(c.errCount-1)%errorLogEntries]
	*e = nvme.ErrorInfo{}
	e.SetErrorCount(c.errCount)
	e.SetSQID(sqid)
	e.SetCID(cid)
	e.SetStatus(st)
	e.SetNSID(nsid)
	if io {
		e.SetLBA(lba)
	}
	e.SetTRTYPE(c.trtype)
}

// ControllerInfo is one controller for nvmf_subsystem_get_controllers (SPDK's shape, plus
// our counters).
type ControllerInfo struct {
	CNTLID      uint16  `json:"cntlid"`
	CntrlType   string  `json:"cntrltype"`
	HostNQN     string  `json:"hostnqn"`
	HostID      string  `json:"hostid"`
	NumIOQpairs int     `json:"num_io_qpairs"`
	Reactor     int     `json:"reactor"`
	KATOms      int64   `json:"kato_ms"`
	Stats       IOStats `json:"stats"`
}
