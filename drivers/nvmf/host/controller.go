package host

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/reactors"
)

// Controller defaults and limits, each with its reason.
const (
	// KATODefault is the keep-alive timeout asked of an NVM controller:
	// SPDK's host default (10 s); Linux asks 5 s. A Keep Alive goes out every
	// KATO/keepAliveDivisor.
	KATODefault = 10 * time.Second
	// keepAliveDivisor: Linux and SPDK send a Keep Alive every half KATO, so
	// one lost or late command does not expire the controller.
	keepAliveDivisor = 2
	// IOQueueDepthDefault commands per I/O qpair: SPDK's
	// io_queue_size default is 128 too, and nvmet grants up to 1024.
	IOQueueDepthDefault = 128
	// IOQueuesDefault I/O queues are asked in Set Features (Number of
	// Queues): one per core of any machine we run on, with room.
	IOQueuesDefault = 64
	// enableTimeoutMin is the least we wait for CSTS.RDY, whatever CAP.TO
	// says (nvmet reports TO 15 = 7.5 s; a TO of 0 is not a promise).
	enableTimeoutMin = time.Second
	// readyPollPeriod between two Property Gets of CSTS while enabling.
	readyPollPeriod = 10 * time.Millisecond
	// adminTimeoutDefault bounds one admin command of the control plane.
	adminTimeoutDefault = 30 * time.Second
)

// ControllerOptions configure Connect.
type ControllerOptions struct {
	// HostNQN identifies this host; "" means the TransportID's, else
	// nqn.2014-08.org.nvmexpress:uuid:<HostID>.
	HostNQN string
	// HostID is the 16-byte host identifier of Connect; zero means random.
	HostID [16]byte
	// KATO is the keep-alive timeout; 0 means KATODefault for an NVM
	// subsystem and none for the discovery subsystem; negative means none.
	KATO         time.Duration
	HeaderDigest bool
	DataDigest   bool
	// IOQueues is how many I/O queues Set Features asks for; 0 means
	// IOQueuesDefault.
	IOQueues int
	// DisableSQFlow asks the controller to turn SQ flow control off on I/O
	// queues, which lets it end reads with C2HData SUCCESS (no response).
	DisableSQFlow bool
	// ConnectTimeout bounds each qpair's setup; 0 means ConnectTimeoutDefault.
	ConnectTimeout time.Duration
	// OnFail runs on the owner reactor once, when the admin queue fails or
	// a keep-alive goes unanswered for KATO. It must not block.
	OnFail func(err error)
	// OnNamespaceChange runs on the owner reactor after an asynchronous
	// event says the namespace list changed. It must not block.
	OnNamespaceChange func()
}

// CommandError is an admin command that completed with an error status.
type CommandError struct {
	Op     string
	Status nvme.Status
	DNR    bool
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("nvmf host: %s: %v (sct %#x sc %#02x, dnr %t)", e.Op, e.Status, e.Status.SCT(), e.Status.SC(), e.DNR)
}

// Controller is one association with a remote controller: its admin queue
// and what the control plane learnt through it. Connect, the admin helpers
// and Close run on goroutines that are not reactors; the admin Qpair, the
// keep-alive timer and the AER belong to the owner reactor.
type Controller struct {
	owner *reactors.Reactor // set in Connect, never changed
	trid  TransportID       //
	addr  *net.TCPAddr      //
	opts  ControllerOptions //

	// Set by Connect before it returns, read-only afterwards.
	cntlid       uint16
	cap          nvme.CAPFields
	vs           nvme.Version
	ident        nvme.IdentifyController
	ioQueues     int
	inCapsuleMax uint32
	transferMax  uint32

	// Owner-only.
	admin     *Qpair
	kaTimer   *reactors.PollerHandle
	kaBusy    bool
	kaSentAt  time.Duration
	kaCmd     nvme.SQE
	aerCmd    nvme.SQE
	aerLog    [nvme.NSListSize]byte
	aerArmed  bool
	closing   bool
	readyErr  chan error // Connect waits here for the admin queue
	completer ctrlCompleter

	// lock: the I/O queue IDs in use, taken when an I/O qpair is made or
	// closed (setup and teardown), never per command.
	qidMu sync.Mutex
	qids  []bool // index: QID-1

	failed atomic.Bool
}

// ctrlCompleter routes the owner's own admin commands (keep-alive, AER, the
// AER's log page) back to the controller without a closure per command.
type ctrlCompleter struct{ c *Controller }

// Contexts of the controller's own commands.
const (
	ctxKeepAlive = iota + 1
	ctxAER
	ctxAERLog
)

// Connect associates with the controller trid names, on the owner reactor:
// admin qpair connect (TCP, ICReq, fabrics Connect), Property Get CAP and VS,
// CC.EN=1 and a wait for CSTS.RDY, Identify Controller; then for an NVM
// subsystem Set Features Number of Queues and Asynchronous Event
// Configuration, an outstanding AER, and keep-alive every KATO/2. Control
// plane: it waits.
func Connect(ctx context.Context, owner *reactors.Reactor, trid TransportID, o ControllerOptions) (*Controller, error) {
	if err := trid.Validate(); err != nil {
		return nil, err
	}
	if err := o.fill(trid); err != nil {
		return nil, err
	}
	addr, err := trid.resolve()
	if err != nil {
		return nil, err
	}
	c := &Controller{owner: owner, trid: trid, addr: addr, opts: o, readyErr: make(chan error, 1)}
	c.completer.c = c
	var setupErr error
	if err := owner.Call(func() {
		c.admin, setupErr = NewQpair(owner, QpairOptions{Addr: addr, QID: 0, QueueDepth: AdminQueueDepth,
			HeaderDigest: o.HeaderDigest, DataDigest: o.DataDigest, HostNQN: o.HostNQN, HostID: o.HostID,
			SubNQN: trid.SubNQN, CNTLID: nvme.CNTLIDDynamic, KATO: max(o.KATO, 0), InCapsuleMax: AdminInCapsuleMax,
			ConnectTimeout: o.ConnectTimeout,
			OnReady:        func(*Qpair) { c.readyErr <- nil },
			OnFail:         c.adminFailed})
	}); err != nil {
		return nil, err
	}
	if setupErr != nil {
		return nil, setupErr
	}
	if err := c.setup(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("nvmf host: connect %s: %w", trid, err)
	}
	return c, nil
}

func (o *ControllerOptions) fill(trid TransportID) error {
	if o.HostID == ([16]byte{}) {
		if _, err := rand.Read(o.HostID[:]); err != nil {
			return err
		}
		o.HostID[6] = o.HostID[6]&0x0F | 0x40 // a version 4 UUID
		o.HostID[8] = o.HostID[8]&0x3F | 0x80
	}
	if o.HostNQN == "" {
		o.HostNQN = trid.HostNQN
	}
	if o.HostNQN == "" {
		o.HostNQN = nvme.UUIDNQN(o.HostID)
	}
	if err := nvme.ValidateNQN(o.HostNQN); err != nil {
		return fmt.Errorf("nvmf host: host NQN: %w", err)
	}
	if o.KATO == 0 && !trid.Discovery() {
		o.KATO = KATODefault
	}
	if o.IOQueues == 0 {
		o.IOQueues = IOQueuesDefault
	}
	if o.IOQueues < 1 || o.IOQueues > 65535 {
		return fmt.Errorf("nvmf host: I/O queues %d, want 1..65535", o.IOQueues)
	}
	return nil
}

// setup runs the initialization sequence of NVMe Base 2.0, "Initialization"
// (fabrics: properties through Property Get/Set).
func (c *Controller) setup(ctx context.Context) error {
	select {
	case err := <-c.readyErr:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	c.owner.Call(func() { c.cntlid = c.admin.CNTLID() })
	capv, err := c.PropertyGet(ctx, nvme.PropCAP, 8)
	if err != nil {
		return err
	}
	c.cap = nvme.CAP(capv).Fields()
	vs, err := c.PropertyGet(ctx, nvme.PropVS, 4)
	if err != nil {
		return err
	}
	c.vs = nvme.Version(vs)
	if err := c.enable(ctx); err != nil {
		return err
	}
	if err := c.identifyController(ctx); err != nil {
		return err
	}
	if c.trid.Discovery() {
		if c.opts.KATO > 0 {
			c.owner.Call(c.startKeepAlive)
		}
		return nil
	}
	if err := c.setQueues(ctx); err != nil {
		return err
	}
	// Namespace Attribute Notices (bit 8) and Discovery Log Page Change
	// (bit 31) are what we act on (NVMe Base 2.0, "Asynchronous Event
	// Configuration"); a controller that refuses the feature still works.
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(nvme.AdminSetFeatures))
	sqe.SetFID(nvme.FeatureAsyncEventConfig)
	sqe.SetCDW11(1 << 8)
	c.Admin(ctx, "set features async event config", &sqe, nil, DirNone)
	var kaErr error
	c.owner.Call(func() {
		c.armAER()
		if c.opts.KATO > 0 {
			c.startKeepAlive()
		}
		kaErr = c.admin.Err()
	})
	return kaErr
}

// enable writes CC.EN and waits for CSTS.RDY within CAP.TO.
func (c *Controller) enable(ctx context.Context) error {
	cc := nvme.CCFields{EN: true, CSS: nvme.CCCSSNVM, IOSQES: 6, IOCQES: 4}.CC()
	if err := c.PropertySet(ctx, nvme.PropCC, 4, uint64(cc)); err != nil {
		return err
	}
	wait := max(time.Duration(c.cap.TO)*500*time.Millisecond, enableTimeoutMin)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(readyPollPeriod)
	defer tick.Stop()
	for {
		csts, err := c.PropertyGet(ctx, nvme.PropCSTS, 4)
		if err != nil {
			return err
		}
		f := nvme.CSTS(csts).Fields()
		if f.CFS {
			return fmt.Errorf("enable: CSTS.CFS set (controller fatal status)")
		}
		if f.RDY {
			return nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("enable: CSTS.RDY still 0 after %v (CAP.TO %d)", wait, c.cap.TO)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (c *Controller) identifyController(ctx context.Context) error {
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(nvme.AdminIdentify))
	sqe.SetCNS(nvme.CNSController)
	if _, err := c.Admin(ctx, "identify controller", &sqe, c.ident[:], DirFromCtrl); err != nil {
		return err
	}
	if n := c.ident.IOCCSZ(); n > 4 { // 16-byte units, the 64-byte SQE included
		c.inCapsuleMax = min(n*16-nvme.SQESize, TransferSizeMax)
	}
	c.transferMax = TransferSizeMax
	if m := c.ident.MaxTransferSize(c.cap.MPSMIN); m != 0 && m < uint64(c.transferMax) {
		c.transferMax = uint32(m)
	}
	return nil
}

// setQueues asks for the I/O queues (NVMe Base 2.0, "Number of Queues").
func (c *Controller) setQueues(ctx context.Context) error {
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(nvme.AdminSetFeatures))
	sqe.SetFID(nvme.FeatureNumberOfQueues)
	sqe.SetCDW11(nvme.NumberOfQueues(uint32(c.opts.IOQueues), uint32(c.opts.IOQueues)))
	cpl, err := c.Admin(ctx, "set features number of queues", &sqe, nil, DirNone)
	if err != nil {
		return err
	}
	sq, cq := nvme.QueueCounts(cpl.DW0)
	c.ioQueues = int(min(sq, cq, uint32(c.opts.IOQueues)))
	c.qids = make([]bool, c.ioQueues)
	return nil
}

// waiter is a control-plane caller waiting for one admin command.
type waiter struct{ ch chan Completion }

func (w *waiter) CommandDone(_ any, c Completion) { w.ch <- c }

// Admin runs one admin command and waits for it: sqe (CID, PSDT and SGL1 are
// filled in), buf its data in direction dir. A completion with an error
// status is a *CommandError. Control plane.
func (c *Controller) Admin(ctx context.Context, op string, sqe *nvme.SQE, buf []byte, dir Dir) (Completion, error) {
	w := &waiter{ch: make(chan Completion, 1)}
	var data [][]byte
	if len(buf) > 0 {
		data = [][]byte{buf}
	} else {
		dir = DirNone
	}
	var submitErr error
	if err := c.owner.Call(func() {
		submitErr = c.admin.Submit(sqe, data, uint32(len(buf)), dir, w, nil)
	}); err != nil {
		return Completion{}, err
	}
	if submitErr != nil {
		return Completion{}, fmt.Errorf("nvmf host: %s: %w (%v)", op, submitErr, c.Err())
	}
	timeout := time.NewTimer(adminTimeoutDefault)
	defer timeout.Stop()
	var cpl Completion
	select {
	case cpl = <-w.ch:
	case <-ctx.Done():
		return Completion{}, fmt.Errorf("nvmf host: %s: %w", op, context.Cause(ctx))
	case <-timeout.C:
		return Completion{}, fmt.Errorf("nvmf host: %s: no completion within %v", op, adminTimeoutDefault)
	}
	if cpl.Status == nvme.StatusHostPathError {
		return cpl, fmt.Errorf("nvmf host: %s: connection lost: %v", op, c.Err())
	}
	if !cpl.Status.Success() {
		return cpl, &CommandError{Op: op, Status: cpl.Status, DNR: cpl.DNR}
	}
	return cpl, nil
}

// PropertyGet reads a controller property of size 4 or 8 bytes (NVMe-oF
// 1.1, "Property Get Command"). Control plane.
func (c *Controller) PropertyGet(ctx context.Context, ofst uint32, size int) (uint64, error) {
	var sqe nvme.SQE
	sqe.SetFabrics(nvme.FabricsPropertyGet)
	p := sqe.Property()
	p.SetSize(size)
	p.SetOffset(ofst)
	cpl, err := c.Admin(ctx, fmt.Sprintf("property get %#x", ofst), &sqe, nil, DirNone)
	v := uint64(cpl.DW1)<<32 | uint64(cpl.DW0)
	if size == 4 {
		v = uint64(cpl.DW0)
	}
	return v, err
}

// PropertySet writes a controller property (NVMe-oF 1.1, "Property Set
// Command"). Control plane.
func (c *Controller) PropertySet(ctx context.Context, ofst uint32, size int, v uint64) error {
	var sqe nvme.SQE
	sqe.SetFabrics(nvme.FabricsPropertySet)
	p := sqe.Property()
	p.SetSize(size)
	p.SetOffset(ofst)
	p.SetValue(v)
	_, err := c.Admin(ctx, fmt.Sprintf("property set %#x", ofst), &sqe, nil, DirNone)
	return err
}

// GetLogPage reads size bytes (a multiple of 4) of log page lid from byte
// offset. Control plane.
func (c *Controller) GetLogPage(ctx context.Context, nsid uint32, lid nvme.LogPageID, buf []byte, offset uint64) error {
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(nvme.AdminGetLogPage))
	sqe.SetNSID(nsid)
	sqe.SetGetLogPage(lid, uint32(len(buf)), offset)
	_, err := c.Admin(ctx, fmt.Sprintf("get log page %#x", uint8(lid)), &sqe, buf, DirFromCtrl)
	return err
}

// DiscoveryLog reads the whole Discovery log page (NVMe-oF 1.1, "Discovery
// Log Page"): the header for NUMREC, then every entry, again while the
// generation counter moved in between. Control plane.
func (c *Controller) DiscoveryLog(ctx context.Context) ([]nvme.DiscoveryEntry, error) {
	const attemptsMax = 4 // a log that changes under us four times running is not settling
	hdr := make([]byte, nvme.DiscoveryLogHeaderSize)
	for range attemptsMax {
		if err := c.GetLogPage(ctx, 0, nvme.LogDiscovery, hdr, 0); err != nil {
			return nil, err
		}
		h := (*nvme.DiscoveryLogHeader)(hdr)
		n := h.NUMREC()
		if n > TransferSizeMax/nvme.DiscoveryLogEntrySize {
			return nil, fmt.Errorf("nvmf host: discovery log NUMREC %d, want at most %d", n, TransferSizeMax/nvme.DiscoveryLogEntrySize-1)
		}
		page := make([]byte, nvme.DiscoveryLogSize(int(n)))
		if err := c.GetLogPage(ctx, 0, nvme.LogDiscovery, page, 0); err != nil {
			return nil, err
		}
		gen, entries, err := nvme.ParseDiscoveryLog(page)
		if err != nil {
			return nil, err
		}
		if gen == h.GENCTR() {
			return entries, nil
		}
	}
	return nil, fmt.Errorf("nvmf host: discovery log changed %d times while being read", attemptsMax)
}

// ActiveNamespaces lists the active NSIDs (Identify CNS 02h), following the
// list past 1024 entries. Control plane.
func (c *Controller) ActiveNamespaces(ctx context.Context) ([]uint32, error) {
	var ids []uint32
	var list nvme.NSList
	after := uint32(0)
	for {
		var sqe nvme.SQE
		sqe.SetOpcode(uint8(nvme.AdminIdentify))
		sqe.SetCNS(nvme.CNSActiveNSList)
		sqe.SetNSID(after)
		if _, err := c.Admin(ctx, "identify active namespace list", &sqe, list[:], DirFromCtrl); err != nil {
			return nil, err
		}
		got := list.NSIDs(nil)
		for _, id := range got {
			if id <= after {
				return nil, fmt.Errorf("nvmf host: active namespace list: NSID %d after %d, want increasing", id, after)
			}
			after = id
		}
		ids = append(ids, got...)
		if len(got) < nvme.NSListCountMax {
			return ids, nil
		}
	}
}

// Namespace is what Identify Namespace says about one namespace.
type Namespace struct {
	NSID         uint32
	BlockSize    uint32
	Blocks       uint64
	MetadataSize uint16
	UUID         [16]byte // from the descriptor list, else the NGUID; zero when neither
	Deallocate   bool     // ONCS Dataset Management
	WriteZeroes  bool     // ONCS Write Zeroes
	VolatileWC   bool     // a volatile write cache: Flush matters
}

// IdentifyNamespace reads namespace nsid (Identify CNS 00h and 03h). A
// namespace with NSZE 0 or an unusable format is an error. Control plane.
func (c *Controller) IdentifyNamespace(ctx context.Context, nsid uint32) (Namespace, error) {
	var id nvme.IdentifyNamespace
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(nvme.AdminIdentify))
	sqe.SetCNS(nvme.CNSNamespace)
	sqe.SetNSID(nsid)
	if _, err := c.Admin(ctx, fmt.Sprintf("identify namespace %d", nsid), &sqe, id[:], DirFromCtrl); err != nil {
		return Namespace{}, err
	}
	ns := Namespace{NSID: nsid, BlockSize: id.BlockSize(), Blocks: id.NSZE(),
		MetadataSize: id.LBAF(id.FormatIndex()).MS, UUID: id.NGUID()}
	if ns.Blocks == 0 || ns.BlockSize == 0 {
		return ns, fmt.Errorf("nvmf host: namespace %d: NSZE %d, block size %d: not usable", nsid, ns.Blocks, ns.BlockSize)
	}
	oncs := c.ident.ONCS()
	ns.Deallocate = oncs&(1<<2) != 0
	ns.WriteZeroes = oncs&(1<<3) != 0
	ns.VolatileWC = c.ident.VWC()&1 != 0
	var descs nvme.NSDescList
	sqe.Reset()
	sqe.SetOpcode(uint8(nvme.AdminIdentify))
	sqe.SetCNS(nvme.CNSNSDescriptors)
	sqe.SetNSID(nsid)
	if _, err := c.Admin(ctx, fmt.Sprintf("identify namespace %d descriptors", nsid), &sqe, descs[:], DirFromCtrl); err == nil {
		if ds, err := descs.Descriptors(); err == nil {
			for _, d := range ds {
				if d.Type == nvme.NIDTUUID {
					copy(ns.UUID[:], d.ID)
				}
			}
		}
	}
	return ns, nil
}

// TransportID is where the controller is.
func (c *Controller) TransportID() TransportID { return c.trid }

// Options are the options Connect ran with, defaults filled.
func (c *Controller) Options() ControllerOptions { return c.opts }

// Owner is the reactor that holds the admin queue.
func (c *Controller) Owner() *reactors.Reactor { return c.owner }

// CNTLID is the controller ID.
func (c *Controller) CNTLID() uint16 { return c.cntlid }

// CAP is the controller's capabilities.
func (c *Controller) CAP() nvme.CAPFields { return c.cap }

// Version is the VS property.
func (c *Controller) Version() nvme.Version { return c.vs }

// Identify is the Identify Controller data.
func (c *Controller) Identify() *nvme.IdentifyController { return &c.ident }

// IOQueues is how many I/O queues the controller granted.
func (c *Controller) IOQueues() int { return c.ioQueues }

// TransferSizeMax is the most bytes one I/O command moves: MDTS, capped at
// the package's TransferSizeMax.
func (c *Controller) TransferSizeMax() uint32 { return c.transferMax }

// InCapsuleMax is the most write data an I/O capsule carries (IOCCSZ).
func (c *Controller) InCapsuleMax() uint32 { return c.inCapsuleMax }

// QueueDepthMax is the deepest I/O qpair the controller takes: CAP.MQES
// (0's based, and one entry stays empty), capped at QueueDepthMax.
func (c *Controller) QueueDepthMax() int { return min(int(c.cap.MQES), QueueDepthMax) }

// Failed reports whether the association is broken. Any goroutine.
func (c *Controller) Failed() bool { return c.failed.Load() }

// Err is why the admin queue failed, or nil. Control plane (it asks the
// owner reactor).
func (c *Controller) Err() error {
	var err error
	c.owner.Call(func() {
		if c.admin != nil {
			err = c.admin.Err()
		}
	})
	return err
}

// IOQpairOptions configure one I/O qpair.
type IOQpairOptions struct {
	QueueDepth int // 0 means IOQueueDepthDefault, capped at QueueDepthMax()
	OnReady    func(q *Qpair)
	OnFail     func(q *Qpair, err error)
}

// NewIOQpair makes an I/O qpair on the calling reactor r and starts
// connecting it; commands submitted before it is ready wait. It takes a free
// QID among those the controller granted; CloseIOQpair gives it back. Owner
// only (runs on r).
func (c *Controller) NewIOQpair(r *reactors.Reactor, o IOQpairOptions) (*Qpair, error) {
	depth := o.QueueDepth
	if depth == 0 {
		depth = IOQueueDepthDefault
	}
	if m := c.QueueDepthMax(); depth > m {
		return nil, fmt.Errorf("nvmf host: I/O queue depth %d, want at most %d (CAP.MQES %d)", depth, m, c.cap.MQES)
	}
	qid, err := c.takeQID()
	if err != nil {
		return nil, err
	}
	q, err := NewQpair(r, QpairOptions{Addr: c.addr, QID: qid, QueueDepth: depth,
		HeaderDigest: c.opts.HeaderDigest, DataDigest: c.opts.DataDigest, HostNQN: c.opts.HostNQN,
		HostID: c.opts.HostID, SubNQN: c.trid.SubNQN, CNTLID: c.cntlid, InCapsuleMax: c.inCapsuleMax,
		DisableSQFlow: c.opts.DisableSQFlow, ConnectTimeout: c.opts.ConnectTimeout,
		OnReady: o.OnReady, OnFail: o.OnFail})
	if err != nil {
		c.releaseQID(qid)
		return nil, err
	}
	return q, nil
}

// CloseIOQpair closes q and frees its QID. Owner of q only.
func (c *Controller) CloseIOQpair(q *Qpair) {
	q.Close()
	c.releaseQID(q.opts.QID)
}

func (c *Controller) takeQID() (uint16, error) {
	c.qidMu.Lock()
	defer c.qidMu.Unlock()
	for i, used := range c.qids {
		if !used {
			c.qids[i] = true
			return uint16(i + 1), nil
		}
	}
	return 0, fmt.Errorf("nvmf host: all %d I/O queues the controller granted are in use", len(c.qids))
}

func (c *Controller) releaseQID(qid uint16) {
	c.qidMu.Lock()
	defer c.qidMu.Unlock()
	if int(qid) >= 1 && int(qid) <= len(c.qids) {
		c.qids[qid-1] = false
	}
}

// adminFailed runs on the owner when the admin qpair fails.
func (c *Controller) adminFailed(_ *Qpair, err error) {
	select {
	case c.readyErr <- err: // Connect is still waiting
	default:
	}
	c.stopKeepAlive()
	if c.closing || !c.failed.CompareAndSwap(false, true) {
		return
	}
	if c.opts.OnFail != nil {
		c.opts.OnFail(err)
	}
}

// startKeepAlive sends a Keep Alive every KATO/2 (NVMe Base 2.0, "Keep Alive
// Timer"). Owner only.
func (c *Controller) startKeepAlive() {
	if c.kaTimer != nil || c.admin.Failed() {
		return
	}
	c.kaCmd.Reset()
	c.kaCmd.SetOpcode(uint8(nvme.AdminKeepAlive))
	c.kaTimer = c.owner.AddTimer("nvmf-host:keep-alive", c.opts.KATO/keepAliveDivisor, c, nil)
}

func (c *Controller) stopKeepAlive() {
	if c.kaTimer != nil {
		c.owner.RemovePoller(c.kaTimer)
		c.kaTimer = nil
	}
}

// Poll is the keep-alive timer: a Keep Alive unanswered for KATO fails the
// controller; otherwise one is sent if none is outstanding.
func (c *Controller) Poll() int {
	now := c.owner.Clock().Now()
	if c.kaBusy {
		if now-c.kaSentAt >= c.opts.KATO {
			c.admin.fail(fmt.Errorf("nvmf host: keep alive unanswered for %v (KATO)", c.opts.KATO))
		}
		return 0
	}
	sqe := c.kaCmd
	if c.admin.Submit(&sqe, nil, 0, DirNone, &c.completer, ctxKeepAlive) == nil {
		c.kaBusy = true
		c.kaSentAt = now
	}
	return 1
}

// armAER submits one Asynchronous Event Request (NVMe Base 2.0,
// "Asynchronous Event Request command"). Owner only.
func (c *Controller) armAER() {
	if c.aerArmed || c.admin.Failed() || c.closing {
		return
	}
	c.aerCmd.Reset()
	c.aerCmd.SetOpcode(uint8(nvme.AdminAsyncEventReq))
	sqe := c.aerCmd
	if c.admin.Submit(&sqe, nil, 0, DirNone, &c.completer, ctxAER) == nil {
		c.aerArmed = true
	}
}

// CommandDone handles the controller's own commands on the owner.
func (cc *ctrlCompleter) CommandDone(ctx any, cpl Completion) {
	c := cc.c
	switch ctx {
	case ctxKeepAlive:
		c.kaBusy = false
	case ctxAER:
		c.aerArmed = false
		if !cpl.Status.Success() {
			return // aborted with the connection, or refused: no more events
		}
		t, info, lid := nvme.ParseAsyncEvent(cpl.DW0)
		if t == nvme.AsyncEventNotice && info == nvme.AsyncNoticeNSAttributeChanged {
			// Reading the log with RAE 0 re-enables the event (NVMe Base
			// 2.0, "Asynchronous Events"); the AER is re-armed after it.
			var sqe nvme.SQE
			sqe.SetOpcode(uint8(nvme.AdminGetLogPage))
			sqe.SetNSID(nvme.NSIDAll)
			sqe.SetGetLogPage(lid, nvme.NSListSize, 0)
			if c.admin.Submit(&sqe, [][]byte{c.aerLog[:]}, nvme.NSListSize, DirFromCtrl, &c.completer, ctxAERLog) == nil {
				return
			}
		}
		c.armAER()
	case ctxAERLog:
		c.armAER()
		if cpl.Status.Success() && c.opts.OnNamespaceChange != nil {
			c.opts.OnNamespaceChange()
		}
	}
}

// Close ends the association: keep-alive stopped, admin qpair closed. The
// caller closes its I/O qpairs first, on their reactors. Control plane.
func (c *Controller) Close() error {
	return c.owner.Call(func() {
		c.closing = true
		c.stopKeepAlive()
		if c.admin != nil {
			c.admin.Close()
		}
	})
}

// Discover connects to the discovery controller trid names (trid.SubNQN is
// the discovery NQN or a referral's), reads its log and disconnects.
// Control plane.
func Discover(ctx context.Context, owner *reactors.Reactor, trid TransportID, o ControllerOptions) ([]nvme.DiscoveryEntry, error) {
	if trid.SubNQN == "" {
		trid.SubNQN = nvme.DiscoveryNQN
	}
	o.KATO = -1 // a one-shot discovery association needs no keep-alive (Linux sends KATO 0)
	c, err := Connect(ctx, owner, trid, o)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if c.ident.CNTRLTYPE() != 0 && c.ident.CNTRLTYPE() != 2 { // 2: discovery controller (NVMe 1.4)
		return nil, fmt.Errorf("nvmf host: %s: controller type %d is not a discovery controller", trid, c.ident.CNTRLTYPE())
	}
	return c.DiscoveryLog(ctx)
}
