package tcp

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluice-storage/sluice/internal/invariants"
	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
	"github.com/sluice-storage/sluice/services/bdev"
	"golang.org/x/sys/unix"
)

// connState is where a connection is in its life (NVMe/TCP 1.0, "Connection Establishment"
// and "Connection Termination").
type connState uint8

const (
	connAwaitICReq connState = iota // accepted; the ICReq is the only PDU in sequence
	connRunning                     // IC done: capsules, data, responses
	connClosing                     // no more receiving; draining commands and (maybe) sends
	connClosed                      // fd closed, resources released
)

var connStateNames = [...]string{"await-icreq", "running", "closing", "closed"}

func (s connState) String() string {
	if int(s) < len(connStateNames) {
		return connStateNames[s]
	}
	return fmt.Sprintf("connState(%d)", uint8(s))
}

// closeMode is how a closing connection treats its send queue.
type closeMode uint8

const (
	closeAbort    closeMode = iota // the peer is gone or broke the protocol: send nothing more
	closeTerm                      // send what is being sent and the C2HTermReq, nothing else
	closeGraceful                  // send every response (Disconnect, controller teardown)
)

// Byte offsets in an H2CData header the connection blames (NVMe/TCP 1.0, "H2CData PDU").
const (
	offFlags = 1
	offCCCID = 8
	offTTAG  = 10
	offDATAO = 12
	offDATAL = 16
)

const (
	// recvCallsPerPollMax reads are made per connection per turn, so one busy host cannot
	// starve the others on the reactor; each reads up to the framer's buffer.
	recvCallsPerPollMax = 4
	// closeLingerMax bounds how long a graceful close waits for a host that does not read its
	// last responses.
	closeLingerMax = time.Second
	// ctlBufferSize holds the connection's own PDUs: ICResp (128) or a C2HTermReq (152).
	ctlBufferSize = pdu.TermReqPDUSizeMax
	// recvBufferSize is a connection's receive buffer: one read takes the rest of the data
	// landing in place plus this much, so in-capsule writes arrive many to a system call.
	// spdk_nvme_perf 4 KiB randwrite QD32 against this target went 316k-354k IOPS with the
	// framer's 16 KiB default, 349k-450k with 64 or 128 KiB (no difference between those two).
	recvBufferSize = 64 << 10
	// inCapsuleSlotAlign: in-capsule buffers start on pages, so a back end that needs aligned
	// buffers (O_DIRECT) can use them in place.
	inCapsuleSlotAlign = bdev.PageSize
)

// Conn is one NVMe/TCP connection: an admin or I/O queue pair. Owner: the reactor of its poll
// group, for life; only code running there calls its methods (K1 in doc.go).
type Conn struct {
	g      *pollGroup // set in newConn, never changed
	fd     int        //
	slot   int        // index in g.conns, the epoll data
	q      *nvmf.Qpair
	local  *bdev.Local
	peer   string
	listen string

	// Owner-only.
	state    connState
	mode     closeMode
	closedAt time.Duration // reactor clock when closing began
	framer   *pdu.Framer
	sender   pdu.Sender // negotiated: digests and the host's data alignment
	maxR2T   uint32
	reqs     []request
	free     []uint16 // stack of free request tags
	counts   [reqStateCount]int
	region   *bdev.Region // in-capsule buffers, one slot per request
	slotSize int
	landing  int // tag whose data the framer is landing (capsule or H2C), -1 none
	landH2C  bool
	needBuf  []uint16 // FIFO of tags waiting for a pool buffer
	sq       sendQueue
	ctl      [ctlBufferSize]byte
	recvIov  [2]unix.Iovec
	// Poll group bookkeeping.
	readable    bool // epoll said readable and recv has not returned EAGAIN yet
	hup         bool // epoll said the peer shut down or the socket failed (EPOLLRDHUP, HUP, ERR)
	sendBlocked bool // sendmsg returned EAGAIN; waiting for EPOLLOUT
	inReady     bool
	inSend      bool

	termReason string // why it closed, for the log
}

// requestCount is how many request slots a connection has: enough for an I/O queue of the
// largest depth and for an admin queue (either may arrive: the Connect says which).
func requestCount(o *Options) int {
	return int(max(o.MaxQueueDepth, o.MaxAdminQueueDepth))
}

// newConn sets up an accepted connection: framer, requests, in-capsule buffers, send queue.
// It runs on the group's reactor; memory is taken here, never per command.
func newConn(g *pollGroup, fd int, listen nvmf.ListenAddress, peer string) (*Conn, error) {
	o := &g.t.opts
	n := requestCount(o)
	icd := int(max(o.InCapsuleDataSize, nvmf.AdminInCapsuleDataSize))
	slot := (icd + inCapsuleSlotAlign - 1) / inCapsuleSlotAlign * inCapsuleSlotAlign
	region, err := bdev.MapRegion(n * slot)
	if err != nil {
		return nil, fmt.Errorf("in-capsule buffers: %w", err)
	}
	framer, err := pdu.NewFramer(pdu.FramerConfig{
		Role:       pdu.Controller,
		Limits:     g.t.limits(true, true),
		Direct:     pdu.Types(pdu.TypeCapsuleCmd, pdu.TypeH2CData),
		BufferSize: recvBufferSize,
	})
	if err != nil {
		region.Unmap()
		return nil, err
	}
	c := &Conn{g: g, fd: fd, local: g.local, peer: peer, listen: listen.String(), framer: framer,
		reqs: make([]request, n), free: make([]uint16, n), region: region, slotSize: slot,
		landing: -1, needBuf: make([]uint16, 0, n), sq: newSendQueue(n)}
	for i := range c.reqs {
		c.reqs[i].Tag = uint16(i)
		c.free[i] = uint16(n - 1 - i)
	}
	c.counts[reqFree] = n
	c.q = g.core.NewQpair(c, nvme.TransportTCP, &g.t.opts.TransportOptions, listen, peer)
	return c, nil
}

// setState moves r to s, keeping the per-state counts (K2).
func (c *Conn) setState(r *request, s reqState) {
	c.counts[r.state]--
	c.counts[s]++
	r.state = s
}

// allocRequest takes a free slot, or -1 when every one is in use.
func (c *Conn) allocRequest() int {
	if len(c.free) == 0 {
		return -1
	}
	tag := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	r := &c.reqs[tag]
	if r.state != reqFree {
		panic(fmt.Sprintf("tcp: free stack gave request %d in state %v", tag, r.state))
	}
	c.setState(r, reqNew)
	return int(tag)
}

// freeRequest returns r's buffer and slot.
func (c *Conn) freeRequest(r *request) {
	if r.state == reqFree {
		panic(fmt.Sprintf("tcp: request %d freed twice", r.Tag))
	}
	if r.buf != nil {
		c.local.FreeBuf(r.buf)
		r.buf = nil
	}
	r.Data, r.Length, r.ddgstBad = nil, 0, false
	c.setState(r, reqFree)
	c.free = append(c.free, r.Tag)
}

// inCapsule is request tag's in-capsule buffer.
func (c *Conn) inCapsule(tag int) []byte {
	b := c.region.Bytes()
	return b[tag*c.slotSize : (tag+1)*c.slotSize]
}

// receive reads what the socket has (at most recvCallsPerPollMax reads) and handles every
// complete unit. It returns the work done; c.readable is cleared on EAGAIN.
func (c *Conn) receive() int {
	work := 0
	for i := 0; i < recvCallsPerPollMax && c.state < connClosing && c.readable; i++ {
		data, buf := c.framer.Space()
		niov := 0
		if len(data) > 0 {
			setIovec(&c.recvIov[niov], data)
			niov++
		}
		if invariants.Enabled && invariants.Sometimes(20) && len(buf) > 1 {
			buf = buf[:1+len(buf)/7] // short reads: every partial-PDU path gets exercised
		}
		setIovec(&c.recvIov[niov], buf)
		niov++
		asked := len(data) + len(buf)
		n, errno := readv(c.fd, c.recvIov[:niov])
		switch {
		case errno == unix.EAGAIN:
			c.readable = false
			return work
		case errno == unix.EINTR:
			continue
		case errno != 0:
			c.close(closeAbort, "recv: "+errno.Error())
			return work + 1
		case n == 0:
			c.close(closeAbort, "peer closed")
			return work + 1
		}
		c.framer.Commit(n)
		work++
		if n < asked && !c.hup {
			// A short read emptied the socket: bytes that arrive later raise a new
			// edge, so the read that would only say EAGAIN is skipped (a system call
			// per turn saved on a busy connection). Not once the peer hung up: its FIN
			// may already be queued behind the data, with no edge left to announce
			// it, so reads go on until they see it.
			c.readable = false
		}
		c.process()
	}
	return work
}

// process handles every complete unit the framer has.
func (c *Conn) process() {
	for c.state < connClosing {
		fr, err := c.framer.Next()
		digestBad := false
		if err != nil { // errors.As only here: its target escapes, which would allocate per PDU
			var fe *pdu.FieldError
			if errors.As(err, &fe) {
				c.terminate(fe, c.framer.FailedHeader())
				return
			}
			digestBad = errors.Is(err, pdu.ErrDataDigest)
		}
		switch fr.Kind {
		case pdu.KindNeedMore:
			return
		case pdu.KindPDU:
			c.g.pdusIn.add(1)
			c.handlePDU(&fr, digestBad)
		case pdu.KindDataHeader:
			c.g.pdusIn.add(1)
			c.handleDataHeader(&fr)
		case pdu.KindDataDone:
			c.handleDataDone(&fr, digestBad)
		}
	}
}

// handlePDU handles a whole PDU: ICReq, a capsule without data, a termination request.
func (c *Conn) handlePDU(fr *pdu.Frame, digestBad bool) {
	switch fr.Type() {
	case pdu.TypeICReq:
		c.handleICReq(pdu.ICReqOf(fr.Header))
	case pdu.TypeH2CTermReq:
		// The host is closing on an error of ours; it reads nothing more (NVMe/TCP 1.0,
		// "H2CTermReq"). Nothing is sent back.
		t := pdu.TermReqOf(fr.Header)
		c.close(closeAbort, fmt.Sprintf("host sent H2CTermReq fes=%v fei=%d", t.FES(), t.FEI()))
	case pdu.TypeCapsuleCmd:
		tag := c.allocRequest()
		if tag < 0 {
			c.close(closeAbort, "host exceeded the queue depth")
			return
		}
		c.handleCapsule(tag, pdu.CapsuleCmdOf(fr.Header), nil)
	}
}

// handleICReq negotiates the connection (NVMe/TCP 1.0, "ICReq", "ICResp"): digests the host
// asked for and the transport allows, our CPDA 0 (Linux refuses any other), MAXH2CDATA, and
// the host's HPDA for the C2HData we send. Linux fails a connection whose digests differ from
// what it asked, which is how a refused digest shows.
func (c *Conn) handleICReq(p *pdu.ICReq) {
	o := &c.g.t.opts
	hd := p.DGST()&pdu.DGSTHeader != 0 && !o.NoHeaderDigest
	dd := p.DGST()&pdu.DGSTData != 0 && !o.NoDataDigest
	c.maxR2T = p.MAXR2T() + 1
	if err := c.framer.SetLimits(c.g.t.limits(hd, dd)); err != nil {
		panic(fmt.Sprintf("tcp: framer limits: %v", err)) // sized for the most we negotiate
	}
	c.sender = pdu.Sender{HeaderDigest: hd, DataDigest: dd, PDA: p.HPDA()}
	n := pdu.EncodeICResp(c.ctl[:], pdu.ICRespFields{CPDA: 0, HeaderDigest: hd, DataDigest: dd, MAXH2CData: o.MaxH2CData})
	c.state = connRunning
	c.sq.push(sendEntry{kind: sendICResp, header: c.ctl[:n]})
	c.g.wantSend(c)
}

// handleDataHeader lands a capsule's in-capsule data in its request's slot, or an H2CData
// PDU's data at its offset in its request's buffer, after the checks the codec leaves to the
// connection (its package comment): TTAG names a request waiting for data, CCCID matches it,
// DATAO continues the transfer and DATAO+DATAL stays inside the R2T.
func (c *Conn) handleDataHeader(fr *pdu.Frame) {
	if fr.Type() == pdu.TypeCapsuleCmd {
		tag := c.allocRequest()
		if tag < 0 {
			c.close(closeAbort, "host exceeded the queue depth")
			return
		}
		c.landing, c.landH2C = tag, false
		c.framer.DataInto(c.inCapsule(tag)[:fr.DataLen])
		return
	}
	h := pdu.DataHeaderOf(fr.Header)
	ttag := int(h.TTAG())
	if ttag >= len(c.reqs) || c.reqs[ttag].state != reqTransferH2C {
		c.terminate(pdu.NewFieldError(pdu.FESInvalidHeaderField, "ttag", offTTAG, uint32(ttag),
			"the TTAG of an R2T outstanding"), fr.Header)
		return
	}
	r := &c.reqs[ttag]
	switch {
	case h.CCCID() != r.Cmd.CID():
		c.terminate(pdu.NewFieldError(pdu.FESInvalidHeaderField, "cccid", offCCCID, uint32(h.CCCID()),
			fmt.Sprintf("%d, the CID of the R2T's command", r.Cmd.CID())), fr.Header)
	case h.DataOffset() != r.h2cGot:
		c.terminate(pdu.NewFieldError(pdu.FESDataOutOfRange, "datao", offDATAO, h.DataOffset(),
			fmt.Sprintf("%d, the next byte of the transfer", r.h2cGot)), fr.Header)
	case uint64(h.DataOffset())+uint64(h.DataLen()) > uint64(r.h2cLen):
		c.terminate(pdu.NewFieldError(pdu.FESDataOutOfRange, "datal", offDATAL, h.DataLen(),
			fmt.Sprintf("at most %d, the rest of the R2T", r.h2cLen-r.h2cGot)), fr.Header)
	default:
		c.landing, c.landH2C = ttag, true
		c.framer.DataInto(r.buf[h.DataOffset() : h.DataOffset()+h.DataLen()])
	}
}

// handleDataDone: the data announced by the last data header has landed.
func (c *Conn) handleDataDone(fr *pdu.Frame, digestBad bool) {
	tag := c.landing
	c.landing = -1
	if !c.landH2C {
		data := c.inCapsule(tag)[:fr.DataLen]
		if digestBad {
			c.reqs[tag].ddgstBad = true
		}
		c.handleCapsule(tag, pdu.CapsuleCmdOf(fr.Header), data)
		return
	}
	r := &c.reqs[tag]
	h := pdu.DataHeaderOf(fr.Header)
	r.h2cGot += h.DataLen()
	r.ddgstBad = r.ddgstBad || digestBad
	last := h.Common().Flags()&pdu.FlagLastPDU != 0
	switch {
	case r.h2cGot == r.h2cLen:
		if r.ddgstBad {
			// NVMe/TCP 1.0, "Data Digest": the command fails, the connection goes on.
			c.reject(r, nvme.StatusTransientTransportError)
			return
		}
		c.exec(r)
	case last:
		c.terminate(pdu.NewFieldError(pdu.FESInvalidHeaderField, "flags", offFlags, uint32(h.Common().Flags()),
			fmt.Sprintf("no LAST_PDU before all %d bytes of the R2T", r.h2cLen)), fr.Header)
	}
}

// handleCapsule parses a command capsule's data pointer (NVMe/TCP 1.0, "Command Capsule";
// one SGL descriptor, in capsule or transport) and starts the command: run now, fetch a
// buffer first, or ask for the data with an R2T.
func (c *Conn) handleCapsule(tag int, p *pdu.CapsuleCmd, data []byte) {
	r := &c.reqs[tag]
	r.Cmd = nvme.SQE(*p.SQE())
	r.Data, r.Length, r.Xfer = nil, 0, nvme.DataNone
	dir := nvme.DirectionOf(r.Cmd.Opcode())
	if r.Cmd.Opcode() == nvme.OpcodeFabrics {
		dir = nvme.DirectionOf(uint8(r.Cmd.FCType()))
	}
	icdMax := c.g.t.opts.InCapsuleDataSize
	if c.q.Admin() {
		icdMax = max(icdMax, nvmf.AdminInCapsuleDataSize) // the admin queue, or a Connect
	}
	if r.Cmd.PSDT() != nvme.PSDTSGL && r.Cmd.Opcode() != nvme.OpcodeFabrics {
		// NVMe-oF 1.1, "Command Capsule": fabrics data pointers are SGLs.
		c.reject(r, nvme.StatusInvalidField)
		return
	}
	use, st := r.Cmd.SGL1().CheckTCP(icdMax)
	length := r.Cmd.SGL1().Length()
	switch {
	case r.ddgstBad:
		c.reject(r, nvme.StatusTransientTransportError)
		return
	case !st.Success():
		c.reject(r, st)
		return
	case data != nil && (use != nvme.SGLInCapsule || uint32(len(data)) != length):
		// The capsule carries data its SGL does not describe.
		c.reject(r, nvme.StatusDataSGLLengthInvalid)
		return
	case use == nvme.SGLNoData:
		c.exec(r)
		return
	case dir != nvme.DataToCtrl && dir != nvme.DataFromCtrl:
		c.reject(r, nvme.StatusInvalidField) // data with a command that moves none
		return
	case use == nvme.SGLInCapsule && data == nil:
		c.reject(r, nvme.StatusDataSGLLengthInvalid) // an in-capsule SGL without the data
		return
	case use == nvme.SGLInCapsule && dir != nvme.DataToCtrl:
		c.reject(r, nvme.StatusInvalidField) // in-capsule data for a command that reads
		return
	case length > c.g.t.opts.MaxIOSize:
		c.reject(r, nvme.StatusDataSGLLengthInvalid) // beyond MDTS
		return
	}
	r.Xfer, r.Length = dir, length
	if use == nvme.SGLInCapsule {
		r.Data = data
		c.exec(r)
		return
	}
	c.getBuffer(r)
}

// getBuffer takes a pool buffer for r's data, or queues r until one is free (backpressure,
// K3); then asks for the data (a write) or runs it (a read).
func (c *Conn) getBuffer(r *request) {
	buf := c.local.AllocBuf(int(r.Length))
	if buf == nil {
		c.g.bufferWaits.add(1)
		c.setState(r, reqNeedBuffer)
		c.needBuf = append(c.needBuf, r.Tag)
		c.g.wantBuffers(c)
		return
	}
	c.startData(r, buf)
}

// startData runs a read with its buffer, or asks for a write's data.
func (c *Conn) startData(r *request, buf []byte) {
	r.buf, r.Data = buf, buf
	if r.Xfer == nvme.DataFromCtrl {
		c.exec(r)
		return
	}
	// NVMe/TCP 1.0, "R2T PDU": one R2T for the whole transfer; the host may split it into
	// H2CData PDUs of at most MAXH2CDATA. TTAG is the request's tag.
	r.h2cGot, r.h2cLen = 0, r.Length
	c.setState(r, reqTransferH2C)
	n := c.sender.EncodeR2T(r.hdr[:], pdu.R2TFields{CCCID: r.Cmd.CID(), TTAG: r.Tag, R2TOffset: 0, R2TLen: r.Length})
	c.sq.push(sendEntry{kind: sendR2T, tag: r.Tag, header: r.hdr[:n]})
	c.g.wantSend(c)
}

// retryBuffers gives waiting requests buffers, in order, until the pool runs dry again.
func (c *Conn) retryBuffers() int {
	done := 0
	for done < len(c.needBuf) && c.state < connClosing {
		r := &c.reqs[c.needBuf[done]]
		buf := c.local.AllocBuf(int(r.Length))
		if buf == nil {
			break
		}
		c.setState(r, reqNew)
		done++
		c.startData(r, buf)
	}
	c.needBuf = c.needBuf[:copy(c.needBuf, c.needBuf[done:])]
	return done
}

// exec hands r to the core.
func (c *Conn) exec(r *request) {
	c.setState(r, reqExecuting)
	c.q.Exec(&r.Request)
}

// reject answers r with st without running it.
func (c *Conn) reject(r *request, st nvme.Status) {
	c.setState(r, reqExecuting)
	c.q.Fail(&r.Request, st)
}

// Complete implements nvmf.QpairOps: send r's data and response (NVMe/TCP 1.0, "C2HData PDU",
// "CapsuleResp PDU").
func (c *Conn) Complete(req *nvmf.Request) {
	r := &c.reqs[req.Tag]
	if r.state != reqExecuting {
		panic(fmt.Sprintf("tcp: Complete of request %d in state %v", r.Tag, r.state))
	}
	if c.state == connClosing && c.mode != closeGraceful {
		c.freeRequest(r)
		c.maybeFinish()
		return
	}
	c.setState(r, reqResponding)
	rsp := &r.Rsp
	if r.Xfer == nvme.DataFromCtrl && rsp.Status().Success() && r.Length > 0 {
		// SUCCESS only when the host turned SQ flow control off (the CQE would carry SQHD)
		// and the response has nothing else to say (SPDK's rule).
		success := !c.g.t.opts.NoC2HSuccess && c.q.SQFlowControlDisabled() && rsp.DW0() == 0 && rsp.DW1() == 0
		n := c.sender.EncodeC2HData(r.hdr[:], pdu.DataFields{CCCID: r.Cmd.CID(), DataLen: r.Length,
			Last: true, Success: success})
		e := sendEntry{kind: sendC2H, tag: r.Tag, header: r.hdr[:n], data: r.Data}
		if c.sender.DataDigest {
			pdu.PutDigest(r.ddgst[:], pdu.Digest(r.Data))
			e.digest = r.ddgst[:]
		}
		if success {
			e.kind = sendC2HLast
			c.sq.push(e)
			c.g.wantSend(c)
			return
		}
		c.sq.push(e)
	}
	n := c.sender.EncodeCapsuleResp(r.rsp[:], (*[pdu.CQESize]byte)(rsp))
	c.sq.push(sendEntry{kind: sendResp, tag: r.Tag, header: r.rsp[:n]})
	c.g.wantSend(c)
}

// flush writes queued PDUs until the queue is empty or the socket is full.
func (c *Conn) flush() int {
	work := 0
	for !c.sq.empty() && !c.sendBlocked {
		niov, total := c.sq.gather()
		n, errno := sendmsg(c.fd, &c.sq.msg, c.sq.iov[:niov])
		switch {
		case errno == unix.EAGAIN:
			c.sendBlocked = true
			c.g.sendBlocked.add(1)
			return work
		case errno == unix.EINTR:
			continue
		case errno != 0:
			c.sendFailed("send: " + errno.Error())
			return work + 1
		}
		work++
		for rest := n; rest > 0 && !c.sq.empty(); {
			var done bool
			var kind sendKind
			var tag uint16
			rest, done, kind, tag = c.sq.advance(rest)
			if done {
				c.sent(kind, tag)
			}
		}
		if n < total {
			c.sendBlocked = true // a short write: the socket buffer is full until EPOLLOUT
			c.g.sendBlocked.add(1)
		}
	}
	return work
}

// sent is called for each PDU fully written.
func (c *Conn) sent(kind sendKind, tag uint16) {
	c.g.pdusOut.add(1)
	switch kind {
	case sendC2HLast, sendResp:
		c.freeRequest(&c.reqs[tag])
		c.maybeFinish()
	case sendTermReq:
		c.maybeFinish() // it is the last entry
	}
}

// sendFailed: the socket cannot take more; nothing queued will be sent.
func (c *Conn) sendFailed(why string) {
	c.dropSends()
	if c.state < connClosing {
		c.close(closeAbort, why)
		return
	}
	c.mode = closeAbort
	c.maybeFinish()
}

// dropSends empties the send queue, finishing what each entry would have finished.
func (c *Conn) dropSends() {
	for !c.sq.empty() {
		e := *c.sq.front()
		c.sq.pop()
		if e.kind == sendC2HLast || e.kind == sendResp {
			c.freeRequest(&c.reqs[e.tag])
		}
	}
}

// terminate answers a protocol violation with a C2HTermReq carrying the offending header
// (NVMe/TCP 1.0, "Connection Termination"), then closes: only what is already going out and
// the termination request are sent.
func (c *Conn) terminate(fe *pdu.FieldError, hdr []byte) {
	c.termReason = fe.Error()
	n := fe.TermReq(c.ctl[:], pdu.Controller, hdr)
	if n == 0 {
		c.close(closeAbort, fe.Error()) // a host's TermReq was malformed: just close
		return
	}
	c.g.t.terminations.add(1)
	// Keep a partly written PDU (the stream must stay framed), drop the rest. The request of
	// a kept C2HData is freed when it is sent, not with its dropped response: its buffer is
	// still being written from.
	var partial sendEntry
	off := c.sq.off
	keep := off > 0
	if keep {
		partial = *c.sq.front()
		c.sq.pop()
	}
	for !c.sq.empty() {
		e := *c.sq.front()
		c.sq.pop()
		held := keep && partial.kind == sendC2H && partial.tag == e.tag
		if (e.kind == sendC2HLast || e.kind == sendResp) && !held {
			c.freeRequest(&c.reqs[e.tag])
		}
	}
	if keep {
		if partial.kind == sendC2H {
			partial.kind = sendC2HLast
		}
		c.sq.push(partial)
		c.sq.off = off
	}
	c.sq.push(sendEntry{kind: sendTermReq, header: c.ctl[:n]})
	c.close(closeTerm, fe.Error())
	c.g.wantSend(c)
}

// Disconnect implements nvmf.QpairOps: a graceful close (Disconnect command, controller
// teardown, reset): queued and later responses are still sent.
func (c *Conn) Disconnect() {
	if c.state < connClosing {
		c.close(closeGraceful, "disconnected by the controller")
		c.g.wantSend(c)
	}
}

// AbortQueued implements nvmf.QpairOps: a command still waiting for a buffer or for its data
// completes with Abort Requested.
func (c *Conn) AbortQueued(cid uint16) bool {
	for i, tag := range c.needBuf {
		r := &c.reqs[tag]
		if r.Cmd.CID() == cid {
			c.needBuf = append(c.needBuf[:i], c.needBuf[i+1:]...)
			c.setState(r, reqNew)
			c.reject(r, nvme.StatusAbortRequested)
			return true
		}
	}
	return false
}

// close starts closing: the receive side stops, the core is told, requests that never reached
// it are freed. maybeFinish releases the rest once commands and sends are done.
func (c *Conn) close(mode closeMode, why string) {
	if c.state >= connClosing {
		if mode < c.mode {
			c.mode = mode
		}
		return
	}
	c.state = connClosing
	c.g.closing++
	c.mode = mode
	c.g.t.log.Debug("nvmf/tcp connection closing", "conn", c.peer, "qid", c.q.QID(), "why", why)
	c.closedAt = c.g.owner.Clock().Now()
	if c.termReason == "" {
		c.termReason = why
	}
	_ = unix.Shutdown(c.fd, unix.SHUT_RD)
	if mode == closeAbort {
		c.dropSends()
	}
	c.freeUnstarted()
	c.q.Closing()
	c.maybeFinish()
}

// freeUnstarted frees the requests the core never saw: arriving, waiting for a buffer, or
// receiving their data.
func (c *Conn) freeUnstarted() {
	for i := range c.reqs {
		if r := &c.reqs[i]; r.state == reqNew || r.state == reqNeedBuffer || r.state == reqTransferH2C {
			if r.state == reqTransferH2C && c.sqHolds(r.Tag, sendR2T) {
				continue // its R2T is partly written: freed when the queue drops it
			}
			c.freeRequest(r)
		}
	}
	c.needBuf = c.needBuf[:0]
	c.landing = -1
}

// sqHolds reports whether the send queue still holds an entry of kind for tag.
func (c *Conn) sqHolds(tag uint16, kind sendKind) bool {
	for i := 0; i < c.sq.n; i++ {
		e := &c.sq.entries[(c.sq.head+i)%len(c.sq.entries)]
		if e.tag == tag && e.kind == kind {
			return true
		}
	}
	return false
}

// maybeFinish closes the socket and releases everything once a closing connection has no
// command with the core and nothing left to send (or gave up sending).
func (c *Conn) maybeFinish() {
	if c.state != connClosing || c.counts[reqExecuting] > 0 {
		return
	}
	if !c.sq.empty() {
		lingered := c.g.owner.Clock().Now()-c.closedAt > closeLingerMax
		if c.mode != closeAbort && !lingered {
			return
		}
		c.dropSends()
	}
	for i := range c.reqs {
		if r := &c.reqs[i]; r.state != reqFree {
			c.freeRequest(r) // a partly sent R2T's request
		}
	}
	if c.counts[reqFree] != len(c.reqs) {
		panic(fmt.Sprintf("tcp: connection %s closes with requests not free: %v", c.peer, c.counts))
	}
	c.state = connClosed
	c.g.remove(c)
	unix.Close(c.fd)
	c.q.Closed()
	if err := c.region.Unmap(); err != nil {
		c.g.t.log.Error("nvmf/tcp: unmap in-capsule buffers", "conn", c.peer, "err", err)
	}
}
