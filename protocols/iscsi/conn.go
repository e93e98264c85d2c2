package iscsi

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/internal/invariants"
	"github.com/sluice-storage/sluice/protocols/iscsi/login"
	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
	"github.com/sluice-storage/sluice/reactors"
	"golang.org/x/sys/unix"
)

const (
	// loginDataSize is MaxRecvDataSegmentLength until Full Feature Phase
	// (RFC 7143 §13.12: the default holds during login).
	loginDataSize = 8192
	// framerBufferSize lets one read bring in a full 64 KiB Data-Out and
	// the commands behind it.
	framerBufferSize = 2 * (pdu.BHSSize + pdu.AHSSizeMax + 2*pdu.DigestSize + recvDataSegmentMax + 3)
	// pollBudgetBytes are read per poll before the other connections get
	// their turn.
	pollBudgetBytes = 256 << 10
	// timerPeriod is how often a connection checks its NOP-In and login
	// timers.
	timerPeriod = time.Second
)

// connState is where a connection is in its life.
type connState uint8

const (
	connLogin   connState = iota // login PDUs only, on the portal's reactor
	connMoving                   // on its way to the node's reactor
	connFull                     // Full Feature Phase
	connLogout                   // a Logout Response or final login failure is queued: close once written
	connClosing                  // socket shut; waiting for tasks at the bdev (I6)
	connClosed
	connStateCount
)

var connStateNames = [connStateCount]string{"login", "moving", "full-feature", "logout", "closing", "closed"}

func (s connState) String() string {
	if s < connStateCount {
		return connStateNames[s]
	}
	return fmt.Sprintf("connState(%d)", uint8(s))
}

// Conn is one iSCSI connection. Owner: one reactor at a time (the package
// comment says which); every method runs there unless it says otherwise.
type Conn struct {
	srv     *Server
	id      uint64
	fd      int
	pgTag   uint16
	peer    netip.AddrPort
	local   netip.AddrPort
	created time.Duration
	closed  chan struct{} // closed when torn down, for the control plane

	// Owner-only.
	owner     *reactors.Reactor
	poller    *reactors.PollerHandle
	timer     *reactors.PollerHandle
	state     connState
	framer    *pdu.Framer
	limits    pdu.Limits
	machine   *login.Machine
	dir       connDirectory
	loginSeen bool
	params    login.Params
	sess      *Session
	node      *Node
	statSN    uint32
	sq        sendQueue
	watchOut  bool
	why       string

	cmds     []cmd
	freeCmds *cmd
	cmdCount [cmdStateCount]int // per-state counts, asserted at teardown
	window   int                // windowed commands outstanding (I2)
	imm      int                // immediate commands outstanding
	running  int                // tasks at the bdev (I6)
	waitHead *cmd               // commands waiting for send queue room
	waitTail *cmd
	cur      current // the PDU being received
	stalled  *cmd    // a command whose Start was busy: retried before reading on

	text     login.Reassembler
	textRest []byte // a Text Response still to send in pieces
	textTTT  uint32

	lastRecv time.Duration
	pingAt   time.Duration
	pinging  bool
	pingTTT  uint32
	drops    uint64 // commands dropped outside the window

	// Written by the owner, read by Connections from any goroutine.
	stateView atomic.Uint32
	pdusIn    atomic.Uint64
	pdusOut   atomic.Uint64
	cid       atomic.Uint32
	tsihView  atomic.Uint32
	initiator atomic.Pointer[string]
	target    atomic.Pointer[string]
	reactorID atomic.Int32
}

// current is what the connection does with the PDU the framer is on.
type current struct {
	kind   curKind
	c      *cmd
	offset uint32 // buffer offset of the data segment
	size   uint32 // its length
	landed bool   // LandData put it straight into the task buffer
	final  bool   // the F bit of a Data-Out
}

type curKind uint8

const (
	curControl   curKind = iota // handled whole at EventPDU
	curImmediate                // a SCSI Command's immediate data
	curDataOut                  // a Data-Out's data
	curCommand                  // a SCSI Command without data for its task
)

// serve starts a connection accepted by a portal on r. It runs on r.
func (s *Server) serve(r *reactors.Reactor, fd int, pg uint16, peer, local netip.AddrPort) {
	c := &Conn{srv: s, id: s.connID.Add(1), fd: fd, pgTag: pg, peer: peer, local: local,
		owner: r, created: r.Clock().Now(), closed: make(chan struct{}),
		framer: pdu.NewFramer(pdu.FramerConfig{DataSegmentSizeMax: recvDataSegmentMax, BufferSize: framerBufferSize}),
		limits: pdu.Limits{MaxRecvDataSegmentLength: loginDataSize},
		sq:     newSendQueue()}
	c.lastRecv = c.created
	c.initCmds(QueueDepthMax)
	snap := s.snap.Load()
	cfg, ok := snap.configs[pg]
	if !ok || !s.register(c) {
		unix.Close(fd)
		return
	}
	c.dir = connDirectory{srv: s, snap: snap, pg: pg, addr: peer.Addr()}
	c.machine = login.New(cfg, &c.dir)
	c.reactorID.Store(int32(r.Index()))
	c.setState(connLogin)
	c.attach()
	s.log.Debug("iscsi connection", "conn", c.id, "peer", peer.String(), "portal_group", pg)
}

// attach registers the connection's poller, timer and socket on c.owner.
func (c *Conn) attach() {
	r := c.owner
	c.poller = r.AddPoller("iscsi-conn", c, c.pollerPanicked)
	c.timer = r.AddTimer("iscsi-conn-timer", timerPeriod, reactors.PollFunc(c.tick), c.timerPanicked)
	c.watchOut = false
	if err := r.WatchFD(c.fd, unix.EPOLLIN); err != nil {
		c.close(err.Error())
	}
}

// detachFromReactor undoes attach.
func (c *Conn) detachFromReactor() {
	r := c.owner
	r.RemovePoller(c.poller)
	r.RemovePoller(c.timer)
	r.UnwatchFD(c.fd)
}

// pollerPanicked and timerPanicked supervise the connection's pollers: a
// panic ends the connection, never the reactor. The reactor has removed
// the poller that panicked.
func (c *Conn) pollerPanicked(v any) {
	c.srv.panics.Add(1)
	c.srv.log.Error("iscsi connection panicked", "conn", c.id, "panic", v)
	c.close(fmt.Sprint("panic: ", v))
	if c.state != connClosed {
		// Tasks are still at the bdev: a fresh poller finishes the teardown.
		c.poller = c.owner.AddPoller("iscsi-conn-closing", c, func(any) {})
	}
}

func (c *Conn) timerPanicked(v any) {
	c.srv.panics.Add(1)
	c.srv.log.Error("iscsi connection timer panicked", "conn", c.id, "panic", v)
	c.close(fmt.Sprint("panic: ", v))
}

// closeAfterSend closes the connection once what is queued is written (a
// Logout Response, a failed login's answer).
func (c *Conn) closeAfterSend(why string) {
	if c.state >= connClosing {
		return
	}
	c.why = why
	c.setState(connLogout)
}

func (c *Conn) setState(s connState) {
	c.state = s
	c.stateView.Store(uint32(s))
}

// Poll is the connection's turn: finish a stalled command, read and handle
// PDUs, write what is queued.
func (c *Conn) Poll() int {
	if invariants.Enabled {
		c.owner.AssertCurrent()
	}
	switch c.state {
	case connClosing:
		c.finishClose()
		return 0
	case connClosed, connMoving:
		return 0
	}
	work := c.receive()
	if c.state == connMoving {
		c.move()
		return work + 1
	}
	work += c.send()
	if c.state == connLogout && c.sq.empty() && c.waitHead == nil {
		c.close(c.why)
	}
	return work
}

// receive reads and handles PDUs within the poll budget.
func (c *Conn) receive() int {
	work := 0
	read := 0
	for c.state == connLogin || c.state == connFull {
		if c.stalled != nil && !c.retryStalled() {
			return work // backpressure: the task pool is empty
		}
		if c.sq.free() < sendReserve-QueueDepthMax {
			return work // backpressure: the peer is not reading our responses
		}
		ev, err := c.framer.Next()
		if err != nil && ev != pdu.EventPDU {
			c.close("framing: " + err.Error())
			return work
		}
		switch ev {
		case pdu.EventNeedMore:
			if read >= pollBudgetBytes {
				return work
			}
			space := c.framer.Space()
			if invariants.Sometimes(20) && len(space) > 1 {
				space = space[:1+len(space)/7] // short reads take the framer's other paths
			}
			n, rerr := unix.Read(c.fd, space)
			if rerr == unix.EAGAIN || rerr == unix.EINTR {
				c.framer.Commit(0)
				return work
			}
			if rerr != nil || n == 0 {
				c.framer.Commit(0)
				if rerr == nil {
					c.close("connection closed by the initiator")
				} else {
					c.close("read: " + rerr.Error())
				}
				return work
			}
			c.framer.Commit(n)
			read += n
			c.lastRecv = c.owner.Clock().Now()
		case pdu.EventHeader:
			work++
			c.pdusIn.Add(1)
			c.header()
		case pdu.EventPDU:
			c.pdu(err)
		}
	}
	return work
}

// send writes the queue and refills it from commands waiting for room.
func (c *Conn) send() int {
	if c.state == connClosing || c.state == connClosed {
		return 0
	}
	total := 0
	for {
		wrote, blocked, err := c.sq.writeTo(c.fd, c.written)
		total += wrote
		if err != nil {
			c.close("write: " + err.Error())
			return total
		}
		if blocked != c.watchOut {
			ev := uint32(unix.EPOLLIN)
			if blocked {
				ev |= unix.EPOLLOUT
			}
			c.owner.WatchFD(c.fd, ev)
			c.watchOut = blocked
		}
		if blocked || c.waitHead == nil || !c.drainWaiting() {
			return total
		}
	}
}

// written runs when the last PDU of a command has gone out (I3).
func (c *Conn) written(cm *cmd) {
	c.pdusOut.Add(1)
	c.freeCmd(cm)
}

// tick runs every timerPeriod: login timeout, NOP-In pings (RFC 7143 §11.19:
// a NOP-In with a TTT asks for a NOP-Out back) and the dead-peer drop.
func (c *Conn) tick() int {
	now := c.owner.Clock().Now()
	switch c.state {
	case connLogin:
		if now-c.created > loginTimeout {
			c.close("login timed out")
		}
		return 0
	case connFull:
	default:
		return 0
	}
	opts := &c.srv.opts
	switch {
	case c.pinging && now-c.pingAt > opts.NopTimeout:
		c.close(fmt.Sprintf("no NOP-Out answer in %v", opts.NopTimeout))
	case !c.pinging && now-c.lastRecv > opts.NopInInterval && c.sq.free() > 0:
		c.pinging = true
		c.pingAt = now
		c.pingTTT++
		if c.pingTTT == pdu.ReservedTag {
			c.pingTTT = 1
		}
		o := c.sq.push()
		h := pdu.BHSOf(o.hdr[:])
		nop := h.InitNOPIn()
		h.SetITT(pdu.ReservedTag)
		nop.SetTTT(c.pingTTT)
		// A ping does not consume a StatSN (RFC 7143 §11.19: StatSN not advanced).
		nop.SetSNs(c.statSN, c.sess.expCmdSN, c.sess.maxCmdSN)
		c.sq.seal(o, nil)
		c.send()
		return 1
	}
	return 0
}

// close starts tearing the connection down: the socket is shut, commands
// that wait for data are freed, those at the bdev are awaited (I6).
func (c *Conn) close(why string) {
	if c.state >= connClosing {
		return
	}
	c.why = why
	level := slog.LevelInfo
	if strings.HasPrefix(why, "connection closed by") || why == "logout" {
		level = slog.LevelDebug
	}
	c.srv.log.Log(nil, level, "iscsi connection closing", "conn", c.id, "peer", c.peer.String(),
		"target", c.targetName(), "reason", why)
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	c.setState(connClosing)
	c.sq.drop(c.written)
	c.waitHead, c.waitTail = nil, nil
	c.stalled = nil
	for i := range c.cmds {
		cm := &c.cmds[i]
		switch cm.state {
		case cmdFree:
		case cmdRunning:
			cm.aborted = true // freed by TaskDone
		default:
			c.freeCmd(cm)
		}
	}
	c.finishClose()
}

// finishClose frees the connection once nothing is at the bdev (I6).
func (c *Conn) finishClose() {
	if c.running > 0 || c.state == connClosed {
		return
	}
	for s := cmdState(1); s < cmdStateCount; s++ {
		if c.cmdCount[s] != 0 {
			panic(fmt.Sprintf("iscsi: conn %d freed with %d commands %s", c.id, c.cmdCount[s], s))
		}
	}
	c.detachFromReactor()
	unix.Close(c.fd)
	if c.sess != nil && c.node != nil {
		c.node.detach(c.sess)
	}
	c.setState(connClosed)
	c.srv.forget(c)
	close(c.closed)
}

// closeFromOutside closes c from the control plane, on its owner.
func (c *Conn) closeFromOutside(why string) {
	for {
		r := c.currentOwner()
		if err := r.Call(func() {
			if c.owner == r && c.state != connMoving {
				c.close(why)
				r = nil
			}
		}); err != nil || r == nil {
			return
		}
		// The connection was moving between reactors: try its new owner.
	}
}

// currentOwner is c.owner read through the atomic the mover updates.
func (c *Conn) currentOwner() *reactors.Reactor {
	return c.srv.set.Get(int(c.reactorID.Load()))
}

func (c *Conn) targetName() string {
	if p := c.target.Load(); p != nil {
		return *p
	}
	return ""
}

// info is the connection for Connections; any goroutine.
func (c *Conn) info() ConnInfo {
	i := ConnInfo{ID: c.id, CID: uint16(c.cid.Load()), TSIH: uint16(c.tsihView.Load()),
		Reactor: int(c.reactorID.Load()), InitiatorAddr: c.peer.Addr().Unmap().String(),
		TargetAddr: c.local.Addr().Unmap().String(), Target: c.targetName(),
		State: connState(c.stateView.Load()).String(), PDUsIn: c.pdusIn.Load(), PDUsOut: c.pdusOut.Load()}
	if p := c.initiator.Load(); p != nil {
		i.Initiator = *p
	}
	return i
}

// connDirectory answers the login machine's questions for one connection.
type connDirectory struct {
	srv  *Server
	snap *snapshot
	pg   uint16
	addr netip.Addr
}

func (d *connDirectory) Target(name string) (*login.Target, bool) {
	t, ok := d.snap.targets[strings.ToLower(name)]
	return t, ok
}

func (d *connDirectory) Permit(initiator, target string) bool {
	if target == "" {
		return true // discovery: SendTargets filters what it shows
	}
	n, ok := d.snap.nodes[strings.ToLower(target)]
	return ok && d.snap.permits(n, d.pg, initiator, d.addr)
}

// SessionExists: a connection may not join a session (MaxConnections 1).
func (d *connDirectory) SessionExists(string, login.ISID, uint16) bool { return false }

func (d *connDirectory) NewTSIH() (uint16, bool) { return d.srv.newTSIH(), true }
