package nvmf

import (
	"errors"
	"fmt"

	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/services/bdev"
)

// ioMode is what a channel does with IO, set by the supervisor's messages.
type ioMode uint8

const (
	modeNormal   ioMode = iota // send, or queue while reconnecting
	modeFastFail               // fail with StatusRetry until resumed
	modeFailed                 // fail with StatusFailed: the controller was given up
)

// request is one IO at the controller. Owner: its channel's reactor.
type request struct {
	ch    *ctrlrChannel
	io    *bdev.IO
	nsid  uint32
	shift uint8
	dsm   nvme.DSMRange
	dsmIO [1][]byte
	index int32
}

// ctrlrChannel is a controller's state on one reactor. Owner: that reactor.
type ctrlrChannel struct {
	c     *Ctrlr // set at creation, never changed
	index int    // reactor index

	// Owner-only.
	refs      int
	q         *host.Qpair
	qhc       *host.Controller // the association q belongs to
	qgen      uint64
	mode      ioMode
	reqs      []request // len = depth, made once (D4)
	free      []int32
	retry     []int32 // ring of request indexes waiting for a reconnect (D2)
	retryHead int
	retryLen  int
}

func newCtrlrChannel(c *Ctrlr, index, depth int) *ctrlrChannel {
	ch := &ctrlrChannel{c: c, index: index, reqs: make([]request, depth), free: make([]int32, depth),
		retry: make([]int32, depth)}
	for i := range ch.reqs {
		r := &ch.reqs[i]
		r.ch, r.index = ch, int32(i)
		r.dsmIO[0] = r.dsm[:]
		ch.free[i] = int32(depth - 1 - i)
	}
	return ch
}

// connect makes the I/O qpair of association a on this reactor.
func (ch *ctrlrChannel) connect(a *assoc) {
	if ch.q != nil && ch.qgen == a.gen {
		return
	}
	ch.drop()
	r := ch.c.m.reg.Set().Get(ch.index)
	q, err := a.hc.NewIOQpair(r, host.IOQpairOptions{QueueDepth: min(len(ch.reqs), a.hc.QueueDepthMax()),
		OnFail: func(q *host.Qpair, err error) { ch.qpairFailed(q, err) }})
	if err != nil {
		ch.c.reportLost(a.gen, fmt.Errorf("reactor %d: I/O qpair: %w", ch.index, err))
		return
	}
	ch.q, ch.qhc, ch.qgen = q, a.hc, a.gen
	ch.c.qpairs[ch.index].Store(q)
}

// drop closes the qpair; its commands come back with a host path error and
// wait in the retry FIFO.
func (ch *ctrlrChannel) drop() {
	if ch.q == nil {
		return
	}
	q, hc := ch.q, ch.qhc
	ch.q, ch.qhc = nil, nil
	hc.CloseIOQpair(q)
}

// qpairFailed runs on the owner when the qpair's connection fails.
func (ch *ctrlrChannel) qpairFailed(q *host.Qpair, err error) {
	if q != ch.q {
		return
	}
	gen := ch.qgen
	ch.drop()
	ch.c.reportLost(gen, err)
}

// setMode applies the supervisor's decision: fail what waits, or send it.
func (ch *ctrlrChannel) setMode(m ioMode, a *assoc) {
	ch.mode = m
	switch m {
	case modeNormal:
		if a != nil {
			ch.connect(a)
		}
		for n := ch.retryLen; n > 0 && ch.q != nil; n-- {
			ch.issue(&ch.reqs[ch.retryPop()])
		}
	default:
		for ch.retryLen > 0 {
			ch.finishMode(&ch.reqs[ch.retryPop()])
		}
	}
}

func (ch *ctrlrChannel) retryPush(r *request) {
	if ch.retryLen == len(ch.retry) {
		panic(fmt.Sprintf("nvmf: retry FIFO of %d full: a request queued twice (D2)", len(ch.retry)))
	}
	ch.retry[(ch.retryHead+ch.retryLen)%len(ch.retry)] = r.index
	ch.retryLen++
}

func (ch *ctrlrChannel) retryPop() int32 {
	i := ch.retry[ch.retryHead]
	ch.retryHead = (ch.retryHead + 1) % len(ch.retry)
	ch.retryLen--
	return i
}

// submit takes io for namespace nsid (D1).
func (ch *ctrlrChannel) submit(io *bdev.IO, nsid uint32, shift uint8) {
	switch {
	case ch.mode != modeNormal:
		io.Complete(ch.modeStatus())
		return
	case len(ch.free) == 0:
		io.Complete(bdev.StatusNoResources) // bdev B5: parked, resubmitted later
		return
	}
	r := &ch.reqs[ch.free[len(ch.free)-1]]
	ch.free = ch.free[:len(ch.free)-1]
	r.io, r.nsid, r.shift = io, nsid, shift
	ch.issue(r)
}

func (ch *ctrlrChannel) modeStatus() bdev.Status {
	if ch.mode == modeFailed {
		return bdev.StatusFailed
	}
	return bdev.StatusRetry
}

// issue sends r's command, or queues it while there is no connection.
func (ch *ctrlrChannel) issue(r *request) {
	if ch.q == nil {
		ch.retryPush(r)
		return
	}
	io := r.io
	var sqe nvme.SQE
	sqe.SetNSID(r.nsid)
	var data [][]byte
	var n uint32
	dir := host.DirNone
	switch io.Type {
	case bdev.IORead, bdev.IOWrite:
		op, d := nvme.IORead, host.DirFromCtrl
		if io.Type == bdev.IOWrite {
			op, d = nvme.IOWrite, host.DirToCtrl
		}
		sqe.SetOpcode(uint8(op))
		sqe.SetSLBA(io.OffsetBlocks)
		sqe.SetBlockCount(uint32(io.Blocks)) // Info.MaxTransferBlocks keeps it ≤ 65536
		data, n, dir = io.Iovecs, uint32(io.Blocks<<r.shift), d
	case bdev.IOFlush:
		sqe.SetOpcode(uint8(nvme.IOFlush))
	case bdev.IOWriteZeroes:
		sqe.SetOpcode(uint8(nvme.IOWriteZeroes))
		sqe.SetSLBA(io.OffsetBlocks)
		sqe.SetBlockCount(uint32(io.Blocks)) // Info.MaxUnmapBlocks keeps it ≤ 65536
	case bdev.IOUnmap:
		sqe.SetOpcode(uint8(nvme.IODatasetManagement))
		sqe.SetDSMRangeCount(1)
		sqe.SetDSMDeallocate(true)
		r.dsm = nvme.DSMRange{}
		r.dsm.SetSLBA(io.OffsetBlocks)
		r.dsm.SetBlocks(uint32(io.Blocks))
		data, n, dir = r.dsmIO[:], nvme.DSMRangeSize, host.DirToCtrl
	default:
		// Info lists only the types above: reaching here is a bug.
		panic(fmt.Sprintf("nvmf: IO type %v not listed in Info", io.Type))
	}
	switch err := ch.q.Submit(&sqe, data, n, dir, ch, r); {
	case err == nil:
	case errors.Is(err, host.ErrQpairFailed):
		ch.retryPush(r) // the qpair failed under us; its OnFail starts the recovery
	case errors.Is(err, host.ErrQueueFull):
		// A reconnected controller granted a shallower queue than the pool:
		// backpressure, the bdev layer resubmits (bdev B5).
		ch.finish(r, bdev.StatusNoResources, bdev.NVMeStatus{})
	default:
		ch.finish(r, bdev.StatusInvalid, bdev.NVMeStatus{})
	}
}

// CommandDone implements host.Completer: the command's end, or a host path
// error that sends the IO to wait for the next association.
func (ch *ctrlrChannel) CommandDone(ctx any, c host.Completion) {
	r := ctx.(*request)
	switch {
	case c.Status == nvme.StatusHostPathError && ch.mode == modeNormal:
		ch.retryPush(r)
	case c.Status == nvme.StatusHostPathError:
		ch.finishMode(r)
	case c.Status.Success():
		ch.finish(r, bdev.StatusSuccess, bdev.NVMeStatus{})
	default:
		ch.finish(r, bdev.StatusNVMe, bdev.NVMeStatus{SCT: c.Status.SCT(), SC: c.Status.SC(), DNR: c.DNR})
	}
}

func (ch *ctrlrChannel) finishMode(r *request) {
	ch.finish(r, ch.modeStatus(), bdev.NVMeStatus{})
}

// finish frees r and completes its IO (D1).
func (ch *ctrlrChannel) finish(r *request, st bdev.Status, detail bdev.NVMeStatus) {
	io := r.io
	r.io = nil
	ch.free = append(ch.free, r.index)
	if st == bdev.StatusNVMe {
		io.CompleteNVMe(detail)
		return
	}
	io.Complete(st)
}

// nsChannel is one namespace's bdev channel on a reactor. Owner: that reactor.
type nsChannel struct {
	ch    *ctrlrChannel
	nsid  uint32
	shift uint8
}

func (n *nsChannel) Submit(io *bdev.IO) { n.ch.submit(io, n.nsid, n.shift) }

// Close drops the namespace's reference; the last one closes the qpair.
func (n *nsChannel) Close() error {
	ch := n.ch
	if ch.refs--; ch.refs > 0 {
		return nil
	}
	if ch.retryLen > 0 || len(ch.free) != len(ch.reqs) {
		return fmt.Errorf("nvmf: controller %q reactor %d: closing with %d IO in flight",
			ch.c.name, ch.index, len(ch.reqs)-len(ch.free))
	}
	ch.drop()
	ch.c.chans[ch.index] = nil
	ch.c.qpairs[ch.index].Store(nil)
	return nil
}
