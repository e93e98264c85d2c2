package host

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
	"github.com/sluice-storage/sluice/reactors"
	"golang.org/x/sys/unix"
)

// Limits of a queue pair, each with its reason.
const (
	// QueueDepthMax commands may be outstanding on one qpair: Linux's nvmet
	// grants at most 1024 entries (MQES 1023) and SPDK's target 128 by
	// default; a host that wants more per core opens more qpairs.
	QueueDepthMax = 1023
	// AdminQueueDepth commands on the admin queue: Linux's NVME_AQ_DEPTH is
	// 32 entries, so 31 outstanding (SQSIZE 31, 0's based).
	AdminQueueDepth = 31
	// AdminInCapsuleMax bytes of in-capsule data the admin queue takes: NVMe/TCP
	// controllers support 8 KiB there (NVMe/TCP 1.0, "Capsule"; Linux's
	// NVME_TCP_ADMIN_CCSZ), and the 1024-byte Connect data must fit.
	AdminInCapsuleMax = 8192
	// TransferSizeMax bytes one command moves: the bdev layer splits larger
	// IOs (drivers/nvmf sets MaxTransferBlocks from it and MDTS), and the
	// C2HData bounce buffer is this big.
	TransferSizeMax = 1 << 20
	// headerBufSize holds a capsule or data PDU header, its digest and the
	// padding to the controller's alignment: CPDA is at most 31, so PDO is at
	// most 128.
	headerBufSize = 128
	// iovecsMax iovecs go to one sendmsg: a header, 16 data iovecs and a
	// digest for a few commands; more waits for the next call.
	iovecsMax = 64
	// readsPerPollMax reads of the socket per poll, so one busy connection
	// cannot starve the reactor's other pollers.
	readsPerPollMax = 8
	// recvBufferSize is the framer's receive buffer. A read takes what the
	// socket holds up to the rest of the landing data plus this much, so a
	// bigger buffer trades system calls (about a microsecond each on a VM)
	// for copies of small C2HData payloads out of it (tens of ns per KiB).
	recvBufferSize = 128 << 10
	// flushEarly PDUs queued while handling what one read brought are sent
	// at once rather than after the whole batch, so the controller starts
	// on them while the host handles the rest instead of the two taking
	// turns. Fewer means more sendmsg calls: BenchmarkTarget randread QD128
	// (medians of 3) went 410k IOPS with none, 404k at 16, 460k at 32;
	// QD32 stayed within noise (408k, 376k, 395k).
	flushEarly = 32
	// termReqSize is the largest H2CTermReq we send (header and the 128
	// bytes of the PDU header in error).
	termReqSize = pdu.TermReqPDUSizeMax
	// ConnectTimeoutDefault bounds TCP connect, ICReq/ICResp and the fabrics
	// Connect of one qpair; Linux's nvme-tcp waits 10 s too.
	ConnectTimeoutDefault = 10 * time.Second
)

// Fails to compile unless the largest header of what we send fits a slot's
// header buffer: PDO = header + digest rounded up to (PDAMax+1)*4.
const _ uint = headerBufSize - (pdu.PDAMax+1)*4

// The admin queue's in-capsule limit carries the Connect data.
const _ uint = AdminInCapsuleMax - nvme.ConnectDataSize

// Dir is a command's data direction.
type Dir uint8

const (
	DirNone     Dir = iota
	DirToCtrl       // host to controller: write, Set Features with data
	DirFromCtrl     // controller to host: read, Identify, Get Log Page
)

// Completion is how a command ended: the CQE's status and command-specific
// dwords. A connection that failed under the command gives
// nvme.StatusHostPathError (H4).
type Completion struct {
	Status nvme.Status
	DNR    bool
	DW0    uint32
	DW1    uint32
}

// Completer is told that a command completed. CommandDone runs on the
// qpair's owner reactor, exactly once per accepted Submit (H1), and may
// submit again. Implement it on a pooled object: an interface holding a
// pointer does not allocate.
type Completer interface {
	CommandDone(ctx any, c Completion)
}

// Submit errors: sentinels, so refusing a command does not allocate.
var (
	// ErrQueueFull: every slot is in use. Backpressure: submit again when
	// one of your commands completes.
	ErrQueueFull = errors.New("nvmf host: qpair full")
	// ErrQpairFailed: the connection failed or was closed.
	ErrQpairFailed = errors.New("nvmf host: qpair failed")
	// ErrTooLarge: the command's data exceeds TransferSizeMax or the data
	// slices do not add up to its length.
	ErrTooLarge = errors.New("nvmf host: data length")
)

// QpairOptions describe one connection.
type QpairOptions struct {
	Addr          *net.TCPAddr
	QID           uint16 // 0: the admin queue
	QueueDepth    int    // commands outstanding, 1..QueueDepthMax (admin: AdminQueueDepth)
	HeaderDigest  bool
	DataDigest    bool
	HostNQN       string
	HostID        [16]byte
	SubNQN        string
	CNTLID        uint16        // admin: nvme.CNTLIDDynamic; I/O: the admin Connect's answer
	KATO          time.Duration // admin only: keep-alive timeout asked in Connect
	InCapsuleMax  uint32        // in-capsule write data: IOCCSZ*16-64 (I/O), AdminInCapsuleMax (admin)
	DisableSQFlow bool          // Connect CATTR bit 2: the controller may answer reads with C2HData SUCCESS
	// ConnectTimeout bounds the connection's setup; 0 means ConnectTimeoutDefault.
	ConnectTimeout time.Duration
	// OnReady runs on the owner when the fabrics Connect succeeded.
	OnReady func(q *Qpair)
	// OnFail runs on the owner once, when the connection fails (not on Close).
	OnFail func(q *Qpair, err error)
}

// qpairState is where a connection is in its life; each transition is
// checked.
type qpairState uint8

const (
	qsConnecting qpairState = iota // TCP connect in progress
	qsICResp                       // ICReq sent or being sent; waiting for ICResp
	qsConnect                      // fabrics Connect sent; waiting for its response
	qsReady                        // commands flow
	qsFailed                       // broken: every command completed with a host path error
	qsClosed                       // Close ran
)

var qpairStateNames = [...]string{"connecting", "icresp", "connect", "ready", "failed", "closed"}

func (s qpairState) String() string {
	if int(s) < len(qpairStateNames) {
		return qpairStateNames[s]
	}
	return fmt.Sprintf("qpairState(%d)", uint8(s))
}

// slotState is where one command slot is.
type slotState uint8

const (
	slotFree    slotState = iota
	slotWaiting           // submitted before the connection was ready
	slotActive            // capsule queued or sent; waiting for R2T, data or response
)

// slot is one command. Owner: the qpair's reactor.
type slot struct {
	state     slotState
	sqe       nvme.SQE
	data      [][]byte // the caller's buffers, dataLen bytes in all
	dataLen   uint32
	dir       Dir
	inCapsule bool // write data goes in the capsule
	done      Completer
	ctx       any

	sending  bool       // out is in the send FIFO
	out      pduOut     // the PDU being sent for this command
	next     int32      // send or wait FIFO link; -1 ends it
	h2cSent  uint32     // write data queued in H2CData (R2T windows)
	r2tEnd   uint32     // end of the current R2T window; == h2cSent when none
	ttag     uint16     // TTAG of the current R2T
	c2hGot   uint32     // read data received
	xferErr  bool       // a C2HData digest failed: the command fails when it ends
	finished bool       // response received while out was still being sent
	result   Completion // that response
	hdr      [headerBufSize]byte
	ddgst    [pdu.DigestSize]byte
}

// pduOut is one PDU being sent: header part, a range of the command's data,
// and a data digest. sent bytes of it are on the wire.
type pduOut struct {
	hdr     []byte
	dataOff uint32
	dataLen uint32
	digest  bool
	sent    uint32
	total   uint32
}

// Qpair is one NVMe/TCP queue pair. Owner: the reactor it was made on; only
// code running there calls its methods (each asserts it under -tags
// invariants), except Stats.
type Qpair struct {
	owner *reactors.Reactor // set in NewQpair, never changed
	opts  QpairOptions      //
	fd    int               //

	// Owner-only.
	state      qpairState
	err        error
	framer     *pdu.Framer
	sender     pdu.Sender
	maxH2CData uint32
	deadline   time.Duration // connect deadline on the owner's clock
	slots      []slot        // len = QueueDepth, made once (H5)
	free       []uint16      // free slot indexes, a stack
	sendHead   int32         // FIFO of slots whose out PDU is queued
	sendTail   int32
	waitHead   int32 // FIFO of slots submitted before qsReady
	waitTail   int32
	raw        [termReqSize]byte // ICReq or an H2CTermReq being written
	rawOff     int
	rawLen     int
	connect    nvme.ConnectData
	connSlot   int32
	cntlid     uint16
	bounce     []byte // C2HData that spans iovecs lands here first
	bounceSlot int32  // the slot whose data is in bounce; -1 none
	bounceOff  uint32 // its DATAO
	iov        [iovecsMax]unix.Iovec
	riov       [2]unix.Iovec
	msg        unix.Msghdr
	poller     *reactors.PollerHandle
	watched    uint32 // epoll events registered; 0 when not watching
	unflushed  int    // PDUs queued since the last flush
	adaptive   bool

	// Written by the owner, read by Stats from any goroutine.
	statState   atomic.Uint32
	completed   atomic.Uint64
	failedCmds  atomic.Uint64
	pdusIn      atomic.Uint64
	bytesIn     atomic.Uint64
	bytesOut    atomic.Uint64
	digestFails atomic.Uint64
}

// NewQpair makes a queue pair on the calling reactor r and starts connecting
// it: non-blocking TCP connect, ICReq, fabrics Connect, all driven by the
// poller it registers. Commands submitted before it is ready wait in order.
// Owner only (it runs on r).
func NewQpair(r *reactors.Reactor, o QpairOptions) (*Qpair, error) {
	r.AssertCurrent()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = ConnectTimeoutDefault
	}
	framer, err := pdu.NewFramer(pdu.FramerConfig{Role: pdu.Host,
		Limits: pdu.Limits{ICDone: true, HeaderDigest: true, DataDigest: true, DataMax: TransferSizeMax},
		Direct: pdu.Types(pdu.TypeC2HData), BufferSize: recvBufferSize})
	if err != nil {
		return nil, err
	}
	// One slot more than the depth: the fabrics Connect's own, so commands
	// that waited for the connection never starve it of a CID.
	q := &Qpair{owner: r, opts: o, fd: -1, framer: framer, slots: make([]slot, o.QueueDepth+1),
		free: make([]uint16, o.QueueDepth), sendHead: -1, sendTail: -1, waitHead: -1, waitTail: -1,
		connSlot: -1, bounceSlot: -1, bounce: make([]byte, TransferSizeMax),
		adaptive: r.Mode() == reactors.ModeAdaptive}
	for i := range q.free {
		q.free[i] = uint16(o.QueueDepth - 1 - i) // pop order 0, 1, 2…
	}
	for i := range q.slots {
		q.slots[i].next = -1
	}
	if err := q.connect.SetSubNQN(o.SubNQN); err != nil {
		return nil, err
	}
	if err := q.connect.SetHostNQN(o.HostNQN); err != nil {
		return nil, err
	}
	q.connect.SetHostID(o.HostID)
	q.connect.SetCNTLID(o.CNTLID)
	if err := q.dial(); err != nil {
		return nil, err
	}
	q.deadline = r.Clock().Now() + o.ConnectTimeout
	q.poller = r.AddPoller(fmt.Sprintf("nvmf-host:q%d", o.QID), q, func(v any) {
		q.fail(fmt.Errorf("poller panicked: %v", v))
	})
	return q, nil
}

func (o *QpairOptions) validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("nvmf host qpair %d: %s %v, want %s", o.QID, field, v, want))
	}
	if o.Addr == nil {
		bad("address", "none", "a TCP address")
	}
	if o.QueueDepth < 1 || o.QueueDepth > QueueDepthMax {
		bad("queue depth", o.QueueDepth, fmt.Sprintf("1..%d", QueueDepthMax))
	}
	if o.QID == 0 && o.InCapsuleMax < nvme.ConnectDataSize {
		bad("admin in-capsule size", o.InCapsuleMax, fmt.Sprintf("at least %d (Connect data)", nvme.ConnectDataSize))
	}
	if o.InCapsuleMax > TransferSizeMax {
		bad("in-capsule size", o.InCapsuleMax, fmt.Sprintf("at most %d", TransferSizeMax))
	}
	if o.KATO < 0 || o.KATO/time.Millisecond > 1<<32-1 {
		bad("KATO", o.KATO, "0..2^32-1 ms")
	}
	return errors.Join(errs...)
}

// dial opens a non-blocking socket and starts connecting.
func (q *Qpair) dial() error {
	a := q.opts.Addr
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip4 := a.IP.To4(); ip4 != nil {
		s := &unix.SockaddrInet4{Port: a.Port}
		copy(s.Addr[:], ip4)
		sa = s
	} else {
		family = unix.AF_INET6
		s := &unix.SockaddrInet6{Port: a.Port}
		copy(s.Addr[:], a.IP.To16())
		sa = s
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return fmt.Errorf("nvmf host: socket: %w", err)
	}
	// Small PDUs (capsules, responses) go out at once: latency is the point.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		unix.Close(fd)
		return fmt.Errorf("nvmf host: TCP_NODELAY: %w", err)
	}
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return fmt.Errorf("nvmf host: connect %v: %w", a, err)
	}
	q.fd = fd
	q.watch(unix.EPOLLOUT) // connect completion is writability
	return nil
}

// watch sets the epoll events that wake an adaptive reactor for this socket.
func (q *Qpair) watch(events uint32) {
	if !q.adaptive || q.watched == events || q.fd < 0 {
		return
	}
	if err := q.owner.WatchFD(q.fd, events); err != nil {
		q.fail(err)
		return
	}
	q.watched = events
}

// State names the connection's state, for logs and Stats.
func (q *Qpair) State() string { return qpairState(q.statState.Load()).String() }

// Ready reports whether commands flow. Owner only.
func (q *Qpair) Ready() bool { return q.state == qsReady }

// Failed reports whether the connection failed or was closed. Owner only.
func (q *Qpair) Failed() bool { return q.state >= qsFailed }

// Err is why the connection failed, or nil. Owner only.
func (q *Qpair) Err() error { return q.err }

// CNTLID is the controller ID the fabrics Connect returned. Owner only.
func (q *Qpair) CNTLID() uint16 { return q.cntlid }

// Reactor is the qpair's owner.
func (q *Qpair) Reactor() *reactors.Reactor { return q.owner }

// QueueDepth is how many commands may be outstanding.
func (q *Qpair) QueueDepth() int { return q.opts.QueueDepth }

// FreeSlots is how many more commands Submit would take now. Owner only.
func (q *Qpair) FreeSlots() int { return len(q.free) }

func (q *Qpair) setState(s qpairState) {
	q.state = s
	q.statState.Store(uint32(s))
}

// Submit sends the command sqe (its CID, PSDT and SGL1 are set here) with
// data of dataLen bytes in data's slices, direction dir; done is told when
// it completes, with ctx. It does not allocate. ErrQueueFull is backpressure;
// ErrQpairFailed means the connection is gone. The data slices are the
// caller's until the completion. Owner only.
func (q *Qpair) Submit(sqe *nvme.SQE, data [][]byte, dataLen uint32, dir Dir, done Completer, ctx any) error {
	if q.state >= qsFailed {
		return ErrQpairFailed
	}
	if len(q.free) == 0 {
		return ErrQueueFull
	}
	if dataLen > TransferSizeMax || (dir == DirNone) != (dataLen == 0) || !fits(data, dataLen) {
		return ErrTooLarge
	}
	i := q.free[len(q.free)-1]
	q.free = q.free[:len(q.free)-1]
	s := &q.slots[i]
	s.sqe = *sqe
	s.data, s.dataLen, s.dir, s.done, s.ctx = data, dataLen, dir, done, ctx
	s.h2cSent, s.r2tEnd, s.c2hGot, s.finished, s.xferErr = 0, 0, 0, false, false
	s.sqe.SetCID(i)
	s.sqe.SetPSDT(nvme.PSDTSGL)
	s.inCapsule = dir == DirToCtrl && dataLen <= q.opts.InCapsuleMax
	if s.inCapsule {
		s.sqe.SGL1().SetInCapsule(dataLen)
	} else {
		s.sqe.SGL1().SetTransport(dataLen)
	}
	if q.state != qsReady {
		s.state = slotWaiting
		q.waitPush(int32(i))
		return nil
	}
	q.startCapsule(int32(i))
	return nil
}

// fits reports whether data holds at least n bytes.
func fits(data [][]byte, n uint32) bool {
	var have uint64
	for _, d := range data {
		have += uint64(len(d))
	}
	return have >= uint64(n)
}

func (q *Qpair) waitPush(i int32) {
	q.slots[i].next = -1
	if q.waitTail < 0 {
		q.waitHead = i
	} else {
		q.slots[q.waitTail].next = i
	}
	q.waitTail = i
}

// startCapsule encodes slot i's command capsule (with its in-capsule data)
// and queues it.
func (q *Qpair) startCapsule(i int32) {
	s := &q.slots[i]
	s.state = slotActive
	var icd uint32
	if s.inCapsule {
		icd = s.dataLen
	}
	n := q.sender.EncodeCapsuleCmd(s.hdr[:], (*[pdu.SQESize]byte)(&s.sqe), icd)
	if n == 0 {
		panic(fmt.Sprintf("nvmf host: capsule header of CPDA %d does not fit %d bytes", q.sender.PDA, headerBufSize))
	}
	q.queueOut(i, s.hdr[:n], 0, icd)
}

// queueOut makes hdr plus data[off:off+n] (and its digest) slot i's out PDU
// and appends it to the send FIFO.
func (q *Qpair) queueOut(i int32, hdr []byte, off, n uint32) {
	s := &q.slots[i]
	if s.sending {
		panic(fmt.Sprintf("nvmf host: slot %d queued twice", i))
	}
	digest := n > 0 && q.sender.DataDigest
	s.out = pduOut{hdr: hdr, dataOff: off, dataLen: n, digest: digest, total: uint32(len(hdr)) + n}
	if digest {
		crc := uint32(0)
		forRange(s.data, off, n, func(b []byte) { crc = pdu.DigestUpdate(crc, b) })
		pdu.PutDigest(s.ddgst[:], crc)
		s.out.total += pdu.DigestSize
	}
	s.sending = true
	s.next = -1
	q.unflushed++
	if q.sendTail < 0 {
		q.sendHead = i
	} else {
		q.slots[q.sendTail].next = i
	}
	q.sendTail = i
}

// forRange calls fn on the pieces of data covering bytes [off, off+n).
func forRange(data [][]byte, off, n uint32, fn func([]byte)) {
	for _, d := range data {
		if n == 0 {
			return
		}
		if off >= uint32(len(d)) {
			off -= uint32(len(d))
			continue
		}
		k := min(uint32(len(d))-off, n)
		fn(d[off : off+k])
		n -= k
		off = 0
	}
}

// Poll advances the connection: connect progress, sends, receives. It is
// the qpair's reactors.Poller.
func (q *Qpair) Poll() int {
	switch q.state {
	case qsFailed, qsClosed:
		return 0
	case qsConnecting:
		if !q.connected() {
			return 0
		}
	}
	if q.state != qsReady && q.owner.Clock().Now() > q.deadline {
		q.fail(fmt.Errorf("nvmf host: qpair %d not connected within %v (state %v)", q.opts.QID, q.opts.ConnectTimeout, q.state))
		return 1
	}
	work := q.flush()
	work += q.receive()
	if q.state < qsFailed && q.sendHead >= 0 {
		work += q.flush()
	}
	return work
}

// connected checks a non-blocking connect and, once it is done, sends ICReq.
func (q *Qpair) connected() bool {
	fds := [1]unix.PollFd{{Fd: int32(q.fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(fds[:], 0)
	if err != nil && err != unix.EINTR {
		q.fail(fmt.Errorf("nvmf host: poll connect: %w", err))
		return false
	}
	if n == 0 {
		if q.owner.Clock().Now() > q.deadline {
			q.fail(fmt.Errorf("nvmf host: connect %v: timed out after %v", q.opts.Addr, q.opts.ConnectTimeout))
		}
		return false
	}
	if soErr, err := unix.GetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soErr != 0 {
		if err == nil {
			err = unix.Errno(soErr)
		}
		q.fail(fmt.Errorf("nvmf host: connect %v: %w", q.opts.Addr, err))
		return false
	}
	q.setState(qsICResp)
	q.watch(unix.EPOLLIN)
	// The framer checks the ICResp before any limits are negotiated.
	if err := q.framer.SetLimits(pdu.Limits{}); err != nil {
		q.fail(err)
		return false
	}
	q.rawLen = pdu.EncodeICReq(q.raw[:], pdu.ICReqFields{HeaderDigest: q.opts.HeaderDigest,
		DataDigest: q.opts.DataDigest})
	q.rawOff = 0
	return true
}

// flush writes the raw bytes (ICReq, termination request) and then the send
// FIFO, as much as the socket takes.
func (q *Qpair) flush() int {
	work := 0
	q.unflushed = 0
	if q.rawOff < q.rawLen {
		n, err := unix.Write(q.fd, q.raw[q.rawOff:q.rawLen])
		if n > 0 {
			q.rawOff += n
			q.bytesOut.Add(uint64(n))
			work++
		}
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			q.fail(fmt.Errorf("nvmf host: send: %w", err))
			return work
		}
		if q.rawOff < q.rawLen {
			q.watch(unix.EPOLLIN | unix.EPOLLOUT)
			return work
		}
	}
	for q.sendHead >= 0 {
		cnt := q.buildIovecs()
		q.msg.Iov = &q.iov[0]
		q.msg.SetIovlen(cnt)
		n, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(q.fd), uintptr(unsafe.Pointer(&q.msg)),
			uintptr(unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT))
		if e != 0 {
			if e == unix.EAGAIN || e == unix.EINTR {
				q.watch(unix.EPOLLIN | unix.EPOLLOUT)
				return work
			}
			q.fail(fmt.Errorf("nvmf host: send: %w", e))
			return work
		}
		work++
		q.bytesOut.Add(uint64(n))
		if !q.consumeSent(uint32(n)) {
			q.watch(unix.EPOLLIN | unix.EPOLLOUT) // a short write: the socket buffer is full
			return work
		}
	}
	q.watch(unix.EPOLLIN)
	return work
}

// buildIovecs fills q.iov from the send FIFO, skipping what was sent.
func (q *Qpair) buildIovecs() int {
	cnt := 0
	add := func(b []byte, skip *uint32) bool {
		if uint32(len(b)) <= *skip {
			*skip -= uint32(len(b))
			return true
		}
		if cnt == iovecsMax {
			return false
		}
		b = b[*skip:]
		*skip = 0
		q.iov[cnt].Base = &b[0]
		q.iov[cnt].SetLen(len(b))
		cnt++
		return true
	}
	for i := q.sendHead; i >= 0 && cnt < iovecsMax; i = q.slots[i].next {
		s := &q.slots[i]
		skip := s.out.sent
		if !add(s.out.hdr, &skip) {
			break
		}
		ok := true
		forRange(s.data, s.out.dataOff, s.out.dataLen, func(b []byte) {
			ok = ok && add(b, &skip)
		})
		if !ok {
			break
		}
		if s.out.digest && !add(s.ddgst[:], &skip) {
			break
		}
	}
	return cnt
}

// consumeSent retires n bytes from the send FIFO; false when the socket
// took less than was offered (it is full).
func (q *Qpair) consumeSent(n uint32) bool {
	for q.sendHead >= 0 {
		i := q.sendHead
		s := &q.slots[i]
		left := s.out.total - s.out.sent
		if n < left {
			s.out.sent += n
			return false
		}
		n -= left
		q.sendHead = s.next
		if q.sendHead < 0 {
			q.sendTail = -1
		}
		s.next = -1
		s.sending = false
		q.pduSent(i)
		if q.state >= qsFailed {
			return false
		}
	}
	return true
}

// pduSent continues a command whose out PDU is on the wire: the next H2CData
// of its R2T window, or the completion that arrived while it was sending.
func (q *Qpair) pduSent(i int32) {
	s := &q.slots[i]
	if s.finished {
		q.complete(i, s.result)
		return
	}
	if s.h2cSent < s.r2tEnd {
		q.queueH2C(i)
	}
}

// queueH2C queues the next H2CData PDU of slot i's R2T window (H6).
func (q *Qpair) queueH2C(i int32) {
	s := &q.slots[i]
	n := min(q.maxH2CData, s.r2tEnd-s.h2cSent)
	f := pdu.DataFields{CCCID: uint16(i), TTAG: s.ttag, DataOffset: s.h2cSent, DataLen: n,
		Last: s.h2cSent+n == s.r2tEnd}
	hn := q.sender.EncodeH2CData(s.hdr[:], f)
	off := s.h2cSent
	s.h2cSent += n
	q.queueOut(i, s.hdr[:hn], off, n)
}

// receive reads the socket and handles every complete unit.
func (q *Qpair) receive() int {
	work := 0
	for range readsPerPollMax {
		data, buf := q.framer.Space()
		var n int
		var err error
		n, err = q.readv(data, buf)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				return work
			}
			q.fail(fmt.Errorf("nvmf host: receive: %w", err))
			return work + 1
		}
		if n == 0 {
			q.fail(fmt.Errorf("nvmf host: qpair %d: connection closed by the controller", q.opts.QID))
			return work + 1
		}
		work++
		q.bytesIn.Add(uint64(n))
		q.framer.Commit(n)
		if !q.handleFrames() {
			return work
		}
		if n < len(data)+len(buf) {
			return work // drained the socket
		}
	}
	return work
}

// readv reads into data, then buf. Through RawSyscall: the socket is
// non-blocking, so the call never waits and needs none of the scheduler's
// enter/exit-syscall bookkeeping (the target's sockets do the same).
func (q *Qpair) readv(data, buf []byte) (int, error) {
	cnt := 0
	for _, b := range [2][]byte{data, buf} {
		if len(b) > 0 {
			q.riov[cnt].Base = &b[0]
			q.riov[cnt].SetLen(len(b))
			cnt++
		}
	}
	n, _, e := unix.RawSyscall(unix.SYS_READV, uintptr(q.fd), uintptr(unsafe.Pointer(&q.riov[0])), uintptr(cnt))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// handleFrames takes every complete unit the framer has; false when the
// connection failed.
func (q *Qpair) handleFrames() bool {
	for {
		fr, err := q.framer.Next()
		if err != nil && !errors.Is(err, pdu.ErrDataDigest) {
			var fe *pdu.FieldError
			if errors.As(err, &fe) {
				q.terminate(fe, q.framer.FailedHeader())
			} else {
				q.fail(err)
			}
			return false
		}
		switch fr.Kind {
		case pdu.KindNeedMore:
			return true
		case pdu.KindPDU:
			q.pdusIn.Add(1)
			q.handlePDU(&fr)
		case pdu.KindDataHeader:
			q.pdusIn.Add(1)
			q.c2hHeader(&fr)
		case pdu.KindDataDone:
			q.c2hDone(&fr, err != nil)
		}
		if q.state >= qsFailed {
			return false
		}
		if q.unflushed >= flushEarly {
			q.flush() // the controller starts on these while we handle the rest
			if q.state >= qsFailed {
				return false
			}
		}
	}
}

// handlePDU dispatches a whole PDU.
func (q *Qpair) handlePDU(fr *pdu.Frame) {
	switch fr.Type() {
	case pdu.TypeICResp:
		q.icResp(pdu.ICRespOf(fr.Header))
	case pdu.TypeCapsuleResp:
		q.capsuleResp(fr.Header)
	case pdu.TypeR2T:
		q.r2t(pdu.R2THeaderOf(fr.Header))
	case pdu.TypeC2HTermReq:
		t := pdu.TermReqOf(fr.Header)
		q.fail(fmt.Errorf("nvmf host: qpair %d: controller terminated the connection: FES %v FEI %d",
			q.opts.QID, t.FES(), t.FEI()))
	default:
		// Check admits only controller-to-host types, and C2HData is direct.
		panic(fmt.Sprintf("nvmf host: unexpected whole PDU %v", fr.Type()))
	}
}

// icResp settles the connection's parameters (NVMe/TCP 1.0, "ICResp") and
// sends the fabrics Connect.
func (q *Qpair) icResp(p *pdu.ICResp) {
	hd := p.DGST()&pdu.DGSTHeader != 0
	dd := p.DGST()&pdu.DGSTData != 0
	if (hd && !q.opts.HeaderDigest) || (dd && !q.opts.DataDigest) {
		q.terminate(pdu.NewFieldError(pdu.FESInvalidHeaderField, "dgst", 11, uint32(p.DGST()),
			"only the digests the host asked for"), p[:])
		return
	}
	q.maxH2CData = p.MAXH2CData()
	q.sender = pdu.Sender{HeaderDigest: hd, DataDigest: dd, PDA: p.CPDA()}
	lim := pdu.Limits{ICDone: true, HeaderDigest: hd, DataDigest: dd, DataMax: TransferSizeMax}
	if err := q.framer.SetLimits(lim); err != nil {
		q.fail(err)
		return
	}
	q.setState(qsConnect)
	i := uint16(q.opts.QueueDepth) // the Connect's reserved slot
	q.connSlot = int32(i)
	s := &q.slots[i]
	s.sqe.Reset()
	s.sqe.SetFabrics(nvme.FabricsConnect)
	c := s.sqe.Connect()
	c.SetRECFMT(nvme.ConnectRECFMT0)
	c.SetQID(q.opts.QID)
	c.SetSQSIZE(uint16(q.opts.QueueDepth)) // 0's based: depth+1 entries, depth outstanding
	if q.opts.DisableSQFlow {
		c.SetCATTR(nvme.ConnectAttrDisableSQFlow)
	}
	c.SetKATO(uint32(q.opts.KATO / time.Millisecond))
	s.sqe.SetCID(i)
	s.sqe.SGL1().SetInCapsule(nvme.ConnectDataSize)
	s.data = [][]byte{q.connect[:]}
	s.dataLen, s.dir, s.inCapsule, s.done, s.ctx = nvme.ConnectDataSize, DirToCtrl, true, nil, nil
	s.h2cSent, s.r2tEnd, s.c2hGot, s.finished, s.xferErr = 0, 0, 0, false, false
	q.startCapsule(int32(i))
}

// capsuleResp completes the command its CQE names.
func (q *Qpair) capsuleResp(hdr []byte) {
	cqe := (*nvme.CQE)(pdu.CapsuleRespOf(hdr).CQE())
	cid := cqe.CID()
	if int(cid) >= len(q.slots) || q.slots[cid].state != slotActive {
		q.terminate(pdu.NewFieldError(pdu.FESInvalidHeaderField, "cid", 8+12, uint32(cid),
			"the CID of an outstanding command"), hdr)
		return
	}
	s := &q.slots[cid]
	c := Completion{Status: cqe.Status(), DNR: cqe.DNR(), DW0: cqe.DW0(), DW1: cqe.DW1()}
	if c.Status.Success() && s.dir == DirFromCtrl {
		switch {
		case s.xferErr:
			c = Completion{Status: nvme.StatusTransientTransportError}
		case s.c2hGot != s.dataLen:
			c = Completion{Status: nvme.StatusDataTransferError}
		}
	}
	if int32(cid) == q.connSlot {
		q.connectDone(c)
		return
	}
	if s.sending {
		s.finished, s.result = true, c // finish the PDU on the wire first
		return
	}
	q.complete(int32(cid), c)
}

// connectDone ends the setup: the queue is ready and the commands that
// waited are sent, in order.
func (q *Qpair) connectDone(c Completion) {
	s := &q.slots[q.connSlot]
	if s.sending {
		q.fail(fmt.Errorf("nvmf host: qpair %d: Connect answered before its data was sent", q.opts.QID))
		return
	}
	s.state = slotFree
	s.data = nil
	q.connSlot = -1
	if !c.Status.Success() {
		msg := c.Status.String()
		if c.Status == nvme.StatusConnectInvalidParameters {
			msg += fmt.Sprintf(" (IPO %d IATTR %d)", uint16(c.DW0), uint8(c.DW0>>16))
		}
		q.fail(fmt.Errorf("nvmf host: qpair %d: Connect to %s refused: %s", q.opts.QID, q.opts.SubNQN, msg))
		return
	}
	q.cntlid = uint16(c.DW0)
	q.setState(qsReady)
	for i := q.waitHead; i >= 0; {
		next := q.slots[i].next
		q.startCapsule(i)
		i = next
	}
	q.waitHead, q.waitTail = -1, -1
	if q.opts.OnReady != nil {
		q.opts.OnReady(q)
	}
}

// r2t opens an R2T window on a write (H3, H6).
func (q *Qpair) r2t(p *pdu.R2THeader) {
	cid := p.CCCID()
	if int(cid) >= len(q.slots) {
		q.terminate(pdu.NewFieldError(pdu.FESInvalidHeaderField, "cccid", 8, uint32(cid), "an outstanding command"), p[:])
		return
	}
	s := &q.slots[cid]
	switch {
	case s.state != slotActive || s.dir != DirToCtrl || s.inCapsule || s.finished:
		q.terminate(pdu.NewFieldError(pdu.FESInvalidHeaderField, "cccid", 8, uint32(cid),
			"a write waiting for R2T"), p[:])
	case s.h2cSent != s.r2tEnd || s.sending:
		q.terminate(pdu.NewFieldError(pdu.FESPDUSequenceError, "cccid", 8, uint32(cid),
			"one R2T at a time (MAXR2T 0)"), p[:])
	case p.R2TOffset() != s.h2cSent:
		q.terminate(pdu.NewFieldError(pdu.FESDataOutOfRange, "r2to", 12, p.R2TOffset(),
			fmt.Sprint(s.h2cSent)), p[:])
	case uint64(p.R2TOffset())+uint64(p.R2TLen()) > uint64(s.dataLen):
		q.terminate(pdu.NewFieldError(pdu.FESDataOutOfRange, "r2tl", 16, p.R2TLen(),
			fmt.Sprintf("at most %d", s.dataLen-s.h2cSent)), p[:])
	default:
		s.ttag = p.TTAG()
		s.r2tEnd = p.R2TOffset() + p.R2TLen()
		q.queueH2C(int32(cid))
	}
}

// c2hHeader lands a C2HData PDU's data in the read command's buffer, or in
// the bounce buffer when it spans the command's slices (H3).
func (q *Qpair) c2hHeader(fr *pdu.Frame) {
	p := pdu.DataHeaderOf(fr.Header)
	cid := p.CCCID()
	if int(cid) >= len(q.slots) || q.slots[cid].state != slotActive || q.slots[cid].dir != DirFromCtrl {
		q.terminate(pdu.NewFieldError(pdu.FESInvalidHeaderField, "cccid", 8, uint32(cid),
			"an outstanding read"), fr.Header)
		return
	}
	s := &q.slots[cid]
	off, n := p.DataOffset(), p.DataLen()
	if off != s.c2hGot || uint64(off)+uint64(n) > uint64(s.dataLen) {
		q.terminate(pdu.NewFieldError(pdu.FESDataOutOfRange, "datao", 12, off,
			fmt.Sprintf("%d, with DATAL up to %d", s.c2hGot, s.dataLen-s.c2hGot)), fr.Header)
		return
	}
	if dst := contiguous(s.data, off, n); dst != nil {
		q.framer.DataInto(dst)
		return
	}
	q.bounceSlot, q.bounceOff = int32(cid), off
	q.framer.DataInto(q.bounce[:n])
}

// contiguous returns data[off:off+n] when one slice holds it all, else nil.
func contiguous(data [][]byte, off, n uint32) []byte {
	for _, d := range data {
		if off < uint32(len(d)) {
			if uint64(off)+uint64(n) <= uint64(len(d)) {
				return d[off : off+n]
			}
			return nil
		}
		off -= uint32(len(d))
	}
	return nil
}

// c2hDone accounts for landed C2HData; SUCCESS completes the read without a
// response capsule. A data digest mismatch fails the command with a transient
// transport error (as SPDK does) and keeps the connection.
func (q *Qpair) c2hDone(fr *pdu.Frame, digestBad bool) {
	p := pdu.DataHeaderOf(fr.Header)
	cid := p.CCCID()
	s := &q.slots[cid] // c2hHeader checked it and nothing ran in between
	if q.bounceSlot == int32(cid) {
		b := q.bounce[:p.DataLen()]
		forRange(s.data, q.bounceOff, p.DataLen(), func(d []byte) { b = b[copy(d, b):] })
		q.bounceSlot = -1
	}
	s.c2hGot += p.DataLen()
	if digestBad {
		q.digestFails.Add(1)
		s.xferErr = true
	}
	flags := fr.Common().Flags()
	if flags&pdu.FlagSuccess == 0 {
		return // the response capsule completes it
	}
	if s.c2hGot != s.dataLen {
		q.terminate(pdu.NewFieldError(pdu.FESInvalidHeaderField, "flags", 1, uint32(flags),
			fmt.Sprintf("SUCCESS only on the last of %d bytes, got %d", s.dataLen, s.c2hGot)), fr.Header)
		return
	}
	c := Completion{}
	if s.xferErr {
		c.Status = nvme.StatusTransientTransportError
	}
	q.complete(int32(cid), c)
}

// complete ends slot i's command (H1) and frees the slot first, so the
// completer may submit into it.
func (q *Qpair) complete(i int32, c Completion) {
	s := &q.slots[i]
	if s.state == slotFree {
		panic(fmt.Sprintf("nvmf host: qpair %d: completing free slot %d", q.opts.QID, i))
	}
	done, ctx := s.done, s.ctx
	s.state = slotFree
	s.finished = false
	s.data, s.done, s.ctx = nil, nil, nil
	q.free = append(q.free, uint16(i))
	q.completed.Add(1)
	if !c.Status.Success() {
		q.failedCmds.Add(1)
	}
	if done != nil {
		done.CommandDone(ctx, c)
	}
}

// terminate sends an H2CTermReq for fe (best effort) and fails the
// connection (H2).
func (q *Qpair) terminate(fe *pdu.FieldError, hdr []byte) {
	if n := fe.TermReq(q.raw[:], pdu.Host, hdr); n > 0 && q.fd >= 0 {
		unix.Write(q.fd, q.raw[:n]) // best effort: the connection is over either way
	}
	q.fail(fmt.Errorf("nvmf host: qpair %d: protocol error from the controller: %w", q.opts.QID, fe))
}

// fail ends the connection once: socket unwatched and closed, every live
// command completed with a host path error (H4), OnFail told.
func (q *Qpair) fail(err error) {
	if q.state >= qsFailed {
		return
	}
	q.err = err
	q.setState(qsFailed)
	q.closeSocket()
	q.abortAll()
	if q.opts.OnFail != nil {
		q.opts.OnFail(q, err)
	}
}

func (q *Qpair) closeSocket() {
	if q.fd < 0 {
		return
	}
	if q.watched != 0 {
		q.owner.UnwatchFD(q.fd)
		q.watched = 0
	}
	unix.Close(q.fd)
	q.fd = -1
}

// abortAll completes every live command with a host path error (H4).
func (q *Qpair) abortAll() {
	q.sendHead, q.sendTail, q.waitHead, q.waitTail = -1, -1, -1, -1
	q.bounceSlot = -1
	for i := range q.slots {
		s := &q.slots[i]
		s.sending = false
		if s.state == slotFree {
			continue
		}
		if int32(i) == q.connSlot {
			s.state, s.data = slotFree, nil
			q.connSlot = -1
			continue
		}
		q.complete(int32(i), Completion{Status: nvme.StatusHostPathError})
	}
}

// Close tears the qpair down: poller removed, socket closed, every live
// command completed with a host path error; OnFail is not called. Owner only.
// Closing twice is harmless.
func (q *Qpair) Close() {
	q.owner.AssertCurrent()
	if q.state == qsClosed {
		return
	}
	if q.state < qsFailed {
		q.err = ErrQpairFailed
		q.setState(qsFailed)
		q.closeSocket()
		q.abortAll()
	}
	q.setState(qsClosed)
	if q.poller != nil {
		q.owner.RemovePoller(q.poller)
		q.poller = nil
	}
}

// QpairStats is a snapshot of one qpair for the debug endpoint.
type QpairStats struct {
	QID          uint16 `json:"qid"`
	State        string `json:"state"`
	Completed    uint64 `json:"completed"`
	Failed       uint64 `json:"failed"`
	PDUsIn       uint64 `json:"pdus_in"`
	BytesIn      uint64 `json:"bytes_in"`
	BytesOut     uint64 `json:"bytes_out"`
	DigestErrors uint64 `json:"digest_errors"`
}

// Stats reads the qpair's counters. Any goroutine.
func (q *Qpair) Stats() QpairStats {
	return QpairStats{QID: q.opts.QID, State: q.State(), Completed: q.completed.Load(),
		Failed: q.failedCmds.Load(), PDUsIn: q.pdusIn.Load(), BytesIn: q.bytesIn.Load(),
		BytesOut: q.bytesOut.Load(), DigestErrors: q.digestFails.Load()}
}
