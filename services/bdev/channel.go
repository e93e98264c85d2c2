package bdev

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/sluice-storage/sluice/internal/invariants"
	"github.com/sluice-storage/sluice/reactors"
)

// Channel is a descriptor's way to submit IO on one reactor. Owner: that
// reactor (Desc.Channel runs there); every method is owner only. Channels of
// all descriptors of a bdev on one reactor share the back end's channel, the
// in-flight list and the queues.
type Channel struct {
	desc  *Desc             // set at Open, never changed
	bc    *bdevChannel      //
	owner *reactors.Reactor //

	// Owner-only.
	lockFree *RangeLock // lock objects this channel requested, reusable (B9)
}

// bdevChannel is one bdev's state on one reactor. Owner: that reactor.
type bdevChannel struct {
	bdev  *Bdev  // set by Registry.Add, never changed
	local *Local //

	// Owner-only.
	be         ChannelBackend // nil until the first Desc.Channel here
	closed     bool
	ilHead     *IO    // admitted IO, oldest first (B6)
	ilTail     *IO    //
	inflight   int    // length of the in-flight list
	seq        uint64 // admission counter (IO.seq)
	backendOut int    // IOs at the back end: decides who retries parked IO
	parkedHead *IO    // parked on StatusNoResources, FIFO (B5)
	parkedTail *IO    //
	parked     int    //
	stalled    bool   // a retry came back StatusNoResources: stop retrying
	starved    bool   // on the Local's starved list
	heldHead   *IO    // held by a lock, FIFO (B6)
	heldTail   *IO    //
	held       int    //
	locks      []*RangeLock
	draining   *lockVisit // acquire visits waiting for admitted IO to finish
	stat       IOStat     // completed admitted IO, read by Registry.IOStat on this reactor
}

// Desc is the descriptor the channel belongs to.
func (ch *Channel) Desc() *Desc { return ch.desc }

// Bdev is the channel's bdev.
func (ch *Channel) Bdev() *Bdev { return ch.bc.bdev }

// Reactor is the channel's owner.
func (ch *Channel) Reactor() *reactors.Reactor { return ch.owner }

// Local is the layer's state on the channel's reactor.
func (ch *Channel) Local() *Local { return ch.bc.local }

// AllocIO takes an IO from this reactor's pool, or nil (backpressure).
func (ch *Channel) AllocIO() *IO { return ch.bc.local.AllocIO() }

// InFlight is how many IOs this reactor has admitted on the bdev and not
// completed, and how many wait held by a lock or parked on no resources.
func (ch *Channel) InFlight() (admitted, held, parked int) {
	return ch.bc.inflight, ch.bc.held, ch.bc.parked
}

// Submit hands io to the bdev: checked, then held behind a lock or admitted,
// split if the back end needs it, and passed to the back end. io's
// Completer runs once when it is done (B1-B3); a refused IO completes with
// the reason (StatusInvalid, StatusOutOfRange, StatusUnsupported) on the
// next poll. Owner only.
func (ch *Channel) Submit(io *IO) {
	if io.state != ioReady {
		panic(fmt.Sprintf("bdev: Submit of %s IO (type %v, LBA %d+%d) on %q", io.state, io.Type,
			io.OffsetBlocks, io.Blocks, ch.bc.bdev.name))
	}
	if invariants.Enabled {
		ch.owner.AssertCurrent()
	}
	bc := ch.bc
	l := bc.local
	l.submitDepth++ // B2: whatever completes from here on is deferred
	io.state = ioPending
	io.Status = StatusPending
	io.flags = 0
	io.ch = ch
	if st := ch.check(io); st != StatusSuccess {
		io.state = ioCompleting
		io.Status = st
		l.deferCompletion(io)
	} else if io.Type == IOReset {
		bc.reset(io)
	} else if len(bc.locks) != 0 && bc.holds(io) {
		bc.hold(io)
	} else {
		bc.admit(io)
	}
	l.submitDepth--
}

// check validates io against the bdev: the ordered checks of a command,
// each ending in the status a front end answers with.
func (ch *Channel) check(io *IO) Status {
	b := ch.bc.bdev
	t := io.Type
	switch {
	case t == IOInvalid || t >= IOTypeCount:
		return StatusInvalid
	case t == IOReset:
		return StatusSuccess
	case !b.info.IOTypes.Has(t) && !b.info.emulates(t):
		return StatusUnsupported
	case t.Writes() && !ch.desc.write:
		return StatusInvalid
	case io.Blocks == 0 && t != IOFlush:
		return StatusInvalid
	}
	end := io.OffsetBlocks + io.Blocks
	if end < io.OffsetBlocks || end > b.blocks {
		return StatusOutOfRange
	}
	if t.HasData() {
		want := io.Blocks << b.blockShift
		if !dataFits(io.Iovecs, want, b.info.BufAlign) {
			return StatusInvalid
		}
		if t == IOCompareAndWrite {
			if !dataFits(io.CompareIovecs, want, b.info.BufAlign) {
				return StatusInvalid
			}
			if m := b.info.MaxTransferBlocks; m != 0 && io.Blocks > uint64(m) {
				return StatusInvalid // never split: it must be atomic
			}
			if b.info.emulates(t) && (len(io.Iovecs) > b.info.MaxIovecs || io.Metadata != nil) {
				return StatusInvalid // its write goes down whole, without metadata
			}
		}
		if io.Metadata != nil && uint64(len(io.Metadata)) != io.Blocks*uint64(b.metadataSize) {
			return StatusInvalid
		}
	}
	return StatusSuccess
}

// dataFits reports whether iovs add up to want bytes, each aligned to align.
func dataFits(iovs []Iovec, want uint64, align int) bool {
	var n uint64
	mask := uintptr(0)
	if align > 1 {
		mask = uintptr(align - 1)
	}
	for _, v := range iovs {
		if mask != 0 && (uintptr(unsafe.Pointer(unsafe.SliceData(v)))|uintptr(len(v)))&mask != 0 {
			return false
		}
		n += uint64(len(v))
	}
	return n == want
}

// admit puts io on the in-flight list and sends it down (B6).
func (bc *bdevChannel) admit(io *IO) {
	io.flags |= ioAdmitted
	io.seq = bc.seq
	bc.seq++
	io.ilNext = nil
	io.ilPrev = bc.ilTail
	if bc.ilTail == nil {
		bc.ilHead = io
	} else {
		bc.ilTail.ilNext = io
	}
	bc.ilTail = io
	bc.inflight++
	if bc.bdev.info.emulates(io.Type) {
		bc.emulateStart(io)
		return
	}
	if bc.needsSplit(io) {
		bc.splitStart(io)
		return
	}
	bc.toBackend(io)
}

// toBackend hands io to the back end's channel.
func (bc *bdevChannel) toBackend(io *IO) {
	io.flags |= ioAtBackend
	bc.backendOut++
	l := bc.local
	l.submitDepth++
	bc.be.Submit(io)
	l.submitDepth--
}

// retire takes a completed admitted IO off the in-flight list and counts it
// for the locks draining here (B6).
func (bc *bdevChannel) retire(io *IO) {
	if io.ilPrev == nil {
		bc.ilHead = io.ilNext
	} else {
		io.ilPrev.ilNext = io.ilNext
	}
	if io.ilNext == nil {
		bc.ilTail = io.ilPrev
	} else {
		io.ilNext.ilPrev = io.ilPrev
	}
	io.ilPrev, io.ilNext = nil, nil
	io.flags &^= ioAdmitted
	bc.inflight--
	bc.stat.count(io, bc.bdev.blockShift)
	if bc.draining != nil {
		bc.drainCheck(io)
	}
}

// park queues an IO the back end refused for lack of resources (B5). A
// retry that failed again goes back to the head and stops the retries.
func (bc *bdevChannel) park(io *IO) {
	io.Status = StatusPending
	io.next = nil
	if io.flags&ioRetrying != 0 {
		bc.stalled = true
		io.next = bc.parkedHead
		bc.parkedHead = io
		if bc.parkedTail == nil {
			bc.parkedTail = io
		}
	} else if bc.parkedTail == nil {
		bc.parkedHead, bc.parkedTail = io, io
	} else {
		bc.parkedTail.next = io
		bc.parkedTail = io
	}
	bc.parked++
	if bc.backendOut == 0 {
		bc.local.starve(bc) // nothing in flight will complete to retry it
	}
}

// kick resubmits parked IO in order until one is refused again, at most
// those parked when it started. It runs after each completion on the
// channel and from the starved-channel timer.
func (bc *bdevChannel) kick() int {
	if bc.parked == 0 {
		return 0
	}
	n := 0
	for left := bc.parked; left > 0 && bc.parkedHead != nil; left-- {
		io := bc.parkedHead
		bc.parkedHead = io.next
		if bc.parkedHead == nil {
			bc.parkedTail = nil
		}
		io.next = nil
		bc.parked--
		bc.stalled = false
		io.flags |= ioRetrying
		switch {
		case io.flags&ioResume == 0:
			bc.toBackend(io)
		case io.emu.buf != nil || bc.bdev.info.emulates(io.Type):
			io.flags &^= ioResume
			bc.emulateRun(io)
		default:
			io.flags &^= ioResume
			bc.splitContinue(io)
		}
		io.flags &^= ioRetrying
		if bc.stalled {
			break
		}
		n++
	}
	return n
}

// hold queues io behind a lock (B6).
func (bc *bdevChannel) hold(io *IO) {
	io.next = nil
	if bc.heldTail == nil {
		bc.heldHead, bc.heldTail = io, io
	} else {
		bc.heldTail.next = io
		bc.heldTail = io
	}
	bc.held++
}

// holds reports whether a lock seen on this reactor covers io.
func (bc *bdevChannel) holds(io *IO) bool {
	for _, l := range bc.locks {
		if io.carries(l) || (l.req.Mode == LockWrites && !io.Type.Writes()) {
			continue
		}
		if l.overlaps(io) {
			return true
		}
	}
	return false
}

// releaseHeld admits, in order, the held IOs no lock covers any more.
func (bc *bdevChannel) releaseHeld() {
	var keepHead, keepTail *IO
	io := bc.heldHead
	bc.heldHead, bc.heldTail = nil, nil
	for io != nil {
		next := io.next
		io.next = nil
		if bc.holds(io) {
			if keepTail == nil {
				keepHead = io
			} else {
				keepTail.next = io
			}
			keepTail = io
		} else {
			bc.held--
			bc.local.submitDepth++ // its completion must not run inside this walk (B2)
			bc.admit(io)
			bc.local.submitDepth--
		}
		io = next
	}
	// IO held while admitting (a lock that arrived meanwhile) queued on the
	// emptied list: it goes behind those kept.
	if keepTail != nil {
		keepTail.next = bc.heldHead
		if bc.heldHead == nil {
			bc.heldTail = keepTail
		}
		bc.heldHead = keepHead
	}
}

// ErrChannelBusy is returned when a channel closes with IO in it.
var ErrChannelBusy = errors.New("IO still in the channel")

// open makes the back end's channel on first use.
func (bc *bdevChannel) open() error {
	if bc.be != nil {
		return nil
	}
	if bc.closed {
		return fmt.Errorf("bdev %q channel on reactor %d: %w", bc.bdev.name, bc.local.reactor.Index(), ErrRegistryClosed)
	}
	be, err := bc.bdev.be.NewChannel(bc.local)
	if err != nil {
		return fmt.Errorf("bdev %q: channel on reactor %d: %w", bc.bdev.name, bc.local.reactor.Index(), err)
	}
	bc.be = be
	return nil
}

// close releases the back end's channel. Owner only.
func (bc *bdevChannel) close() error {
	if bc.inflight != 0 || bc.held != 0 || bc.parked != 0 {
		return fmt.Errorf("%d admitted, %d held, %d parked: %w", bc.inflight, bc.held, bc.parked, ErrChannelBusy)
	}
	bc.closed = true
	if bc.be == nil {
		return nil
	}
	be := bc.be
	bc.be = nil
	return be.Close()
}
