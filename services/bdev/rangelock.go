package bdev

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/reactors"
)

// Range locks, as SPDK's bdev_lock_lba_range. A lock is requested on a
// channel (the requester's reactor R), granted by the bdev's owner reactor O,
// and enforced on every reactor of the set:
//
//	R ──request──► O ──acquire visit──► each reactor i: hold new overlapping
//	                                    writes; wait for admitted overlapping IO
//	R ◄──granted── O ◄──ack (all i)───  (drained)
//	R ──unlock───► O ──release visit──► each reactor i: drop the lock, admit
//	R ◄─unlocked── O ◄──ack (all i)───  what it held
//
// Every reactor of the set is visited, not only those with an open channel
// on the bdev, so a channel opened while the lock is held honours it. Visits
// and acks ride each reactor's Local post FIFO (B8): a release never overtakes
// its acquire, and all acks of a lock reach O before the lock is reused.

// LockMode says which IO a lock holds.
type LockMode uint8

const (
	// LockWrites holds new overlapping writes (IOType.Writes); reads pass.
	// What COMPARE AND WRITE and a rebuild take.
	LockWrites LockMode = iota
	// LockAll holds all new overlapping IO: a quiesce.
	LockAll
)

func (m LockMode) String() string {
	switch m {
	case LockWrites:
		return "writes"
	case LockAll:
		return "all"
	}
	return fmt.Sprintf("LockMode(%d)", uint8(m))
}

// LockRequest is one range to lock.
type LockRequest struct {
	OffsetBlocks uint64
	Blocks       uint64 // > 0
	Mode         LockMode
	// Timeout bounds the drain: if admitted IO has not finished by then the
	// lock is withdrawn everywhere and RangeLocked gets ErrDrainTimeout. 0
	// waits as long as it takes.
	Timeout time.Duration
	// Ctx is the requester's, returned by RangeLock.Ctx.
	Ctx any
}

// LockCompleter hears about a lock on the reactor that requested it.
type LockCompleter interface {
	// RangeLocked: the range is drained and held (err nil), or could not be
	// (err wraps ErrDrainTimeout; the lock is gone, do not Unlock it).
	RangeLocked(l *RangeLock, err error)
	// RangeUnlocked: the lock is released everywhere; l is reused after
	// this returns.
	RangeUnlocked(l *RangeLock)
}

// Errors of LockRange; returned errors wrap them.
var (
	ErrDrainTimeout = errors.New("drain timed out")
	ErrLockRange    = errors.New("bad lock range")
)

type lockStep uint8

const (
	stepRequest  lockStep = iota // requester to owner
	stepGranted                  // owner to requester, err may be set
	stepUnlock                   // requester to owner
	stepUnlocked                 // owner to requester
)

type lockPhase uint8

const (
	phaseIdle lockPhase = iota
	phaseAcquiring
	phaseHeld
	phaseReleasing
)

// RangeLock is one lock on a bdev range. Owners: the requester's reactor
// between LockRange and the request's delivery and from granted to unlock;
// the bdev's owner reactor in between; each reactor its own visit.
type RangeLock struct {
	// Set by the requester before each request; read-only until it is back.
	req  LockRequest
	bdev *Bdev
	ch   *Channel
	done LockCompleter

	// Written by the sender of the lock as a message, read by its receiver.
	step lockStep
	err  error

	// Owner-reactor only.
	phase    lockPhase
	acks     int
	timer    *reactors.PollerHandle
	nextWait *RangeLock

	// Requester only.
	held     bool
	nextFree *RangeLock

	acquire []lockVisit // index: reactor index
	release []lockVisit
}

// lockVisit is a lock's message to one reactor and that reactor's ack.
type lockVisit struct {
	lock    *RangeLock
	index   int  // the visited reactor's index
	release bool // a release visit, else an acquire visit
	acked   bool // on its way back to the owner

	// The visited reactor only.
	seq      uint64     // admissions before the visit arrived have seq < this
	draining bool       // on the channel's draining list
	next     *lockVisit // draining list
	// Written by the visited reactor, read by the owner for a timeout error.
	waiting atomic.Int64
}

// OffsetBlocks is the first locked block.
func (l *RangeLock) OffsetBlocks() uint64 { return l.req.OffsetBlocks }

// Blocks is the number of locked blocks.
func (l *RangeLock) Blocks() uint64 { return l.req.Blocks }

// Mode is what the lock holds.
func (l *RangeLock) Mode() LockMode { return l.req.Mode }

// Ctx is the requester's LockRequest.Ctx.
func (l *RangeLock) Ctx() any { return l.req.Ctx }

// Channel is the channel that requested the lock.
func (l *RangeLock) Channel() *Channel { return l.ch }

// overlaps reports whether io's range meets the lock's; a flush of 0
// blocks covers the whole bdev.
func (l *RangeLock) overlaps(io *IO) bool {
	if io.Blocks == 0 {
		return true
	}
	return io.OffsetBlocks < l.req.OffsetBlocks+l.req.Blocks && l.req.OffsetBlocks < io.OffsetBlocks+io.Blocks
}

func (l *RangeLock) overlapsLock(o *RangeLock) bool {
	return l.req.OffsetBlocks < o.req.OffsetBlocks+o.req.Blocks && o.req.OffsetBlocks < l.req.OffsetBlocks+l.req.Blocks
}

// LockRange asks for a lock on the channel's bdev; done hears on this
// reactor when it is held. IO that carries the lock (IO.Lock) passes it.
// No allocation once the channel has had as many locks out at once before.
// Owner only.
func (ch *Channel) LockRange(req LockRequest, done LockCompleter) (*RangeLock, error) {
	b := ch.bc.bdev
	if req.Blocks == 0 || req.OffsetBlocks+req.Blocks < req.OffsetBlocks || req.OffsetBlocks+req.Blocks > b.blocks {
		return nil, fmt.Errorf("bdev %q: lock blocks %d+%d, want 1 or more within %d: %w",
			b.name, req.OffsetBlocks, req.Blocks, b.blocks, ErrLockRange)
	}
	if req.Mode > LockAll || req.Timeout < 0 || done == nil {
		return nil, fmt.Errorf("bdev %q: lock mode %v timeout %v completer %T: %w", b.name, req.Mode, req.Timeout, done, ErrLockRange)
	}
	l := ch.lockFree
	if l != nil {
		ch.lockFree = l.nextFree
		l.nextFree = nil
	} else {
		l = newRangeLock(b, len(b.chans))
	}
	l.req, l.ch, l.done = req, ch, done
	l.step, l.err = stepRequest, nil
	ch.bc.local.post(b.owner, l)
	return l, nil
}

func newRangeLock(b *Bdev, n int) *RangeLock {
	l := &RangeLock{bdev: b, acquire: make([]lockVisit, n), release: make([]lockVisit, n)}
	for i := range n {
		l.acquire[i] = lockVisit{lock: l, index: i}
		l.release[i] = lockVisit{lock: l, index: i, release: true}
	}
	return l
}

// Unlock releases a held lock; RangeUnlocked follows on this reactor.
// Requester only.
func (l *RangeLock) Unlock() {
	if !l.held {
		panic(fmt.Sprintf("bdev %q: Unlock of lock %d+%d that is not held", l.bdev.name, l.req.OffsetBlocks, l.req.Blocks))
	}
	l.held = false
	l.step = stepUnlock
	l.ch.bc.local.post(l.bdev.owner, l)
}

// Deliver routes the lock as a message: requests to the owner, answers to
// the requester.
func (l *RangeLock) Deliver() {
	switch l.step {
	case stepRequest:
		l.bdev.lockRequested(l)
	case stepUnlock:
		l.bdev.lockUnlocking(l)
	case stepGranted:
		if l.err == nil {
			l.held = true
			l.done.RangeLocked(l, nil)
			return
		}
		l.done.RangeLocked(l, l.err)
		l.recycle()
	case stepUnlocked:
		l.done.RangeUnlocked(l)
		l.recycle()
	}
}

func (l *RangeLock) recycle() {
	l.done = nil
	l.req.Ctx = nil
	l.err = nil
	l.nextFree = l.ch.lockFree
	l.ch.lockFree = l
}

// ownerLocal is the owner reactor's Local, which posts the owner's messages.
func (b *Bdev) ownerLocal() *Local { return b.chans[b.owner.Index()].local }

// lockRequested starts l, or queues it behind an overlapping lock (B7).
// Owner reactor.
func (b *Bdev) lockRequested(l *RangeLock) {
	if b.lockConflicts(l, nil) {
		b.locksWaiting = append(b.locksWaiting, l)
		return
	}
	b.lockStart(l)
}

// lockConflicts reports whether l overlaps a lock granted or being acquired,
// or one waiting before it (stop, when not nil, is where l waits).
func (b *Bdev) lockConflicts(l, stop *RangeLock) bool {
	for _, o := range b.locks {
		if l.overlapsLock(o) {
			return true
		}
	}
	for _, o := range b.locksWaiting {
		if o == stop {
			break
		}
		if l.overlapsLock(o) {
			return true
		}
	}
	return false
}

func (b *Bdev) lockStart(l *RangeLock) {
	l.phase = phaseAcquiring
	b.locks = append(b.locks, l)
	l.acks = len(l.acquire)
	if l.req.Timeout > 0 {
		l.timer = b.owner.AddTimer("bdev-lock-drain-timeout", l.req.Timeout, reactors.PollFunc(l.drainTimedOut), nil)
	}
	post := b.ownerLocal()
	for i := range l.acquire {
		v := &l.acquire[i]
		v.acked = false
		post.post(b.chans[i].local.reactor, v)
	}
}

// drainTimedOut withdraws a lock whose drain did not finish in time. Owner
// reactor, from the lock's timer.
func (l *RangeLock) drainTimedOut() int {
	b := l.bdev
	b.owner.RemovePoller(l.timer)
	l.timer = nil
	if l.phase != phaseAcquiring {
		return 0
	}
	var where []string
	total := int64(0)
	for i := range l.acquire {
		if n := l.acquire[i].waiting.Load(); n > 0 {
			where = append(where, fmt.Sprintf("reactor %d: %d", i, n))
			total += n
		}
	}
	l.err = fmt.Errorf("bdev %q: %s lock of blocks %d+%d: %d IOs still in flight after %v (%s): %w",
		b.name, l.req.Mode, l.req.OffsetBlocks, l.req.Blocks, total, l.req.Timeout, strings.Join(where, ", "), ErrDrainTimeout)
	b.lockReleaseStart(l)
	return 1
}

func (b *Bdev) lockUnlocking(l *RangeLock) {
	if l.phase != phaseHeld {
		panic(fmt.Sprintf("bdev %q: unlock of lock %d+%d in phase %d", b.name, l.req.OffsetBlocks, l.req.Blocks, l.phase))
	}
	b.lockReleaseStart(l)
}

func (b *Bdev) lockReleaseStart(l *RangeLock) {
	l.phase = phaseReleasing
	l.acks = len(l.release)
	post := b.ownerLocal()
	for i := range l.release {
		v := &l.release[i]
		v.acked = false
		post.post(b.chans[i].local.reactor, v)
	}
}

// lockAcked counts one reactor's answer. Owner reactor.
func (b *Bdev) lockAcked(v *lockVisit) {
	l := v.lock
	if !v.release && l.phase != phaseAcquiring {
		return // an acquire that finished after the drain timed out
	}
	l.acks--
	if l.acks > 0 {
		return
	}
	if !v.release {
		l.phase = phaseHeld
		if l.timer != nil {
			b.owner.RemovePoller(l.timer)
			l.timer = nil
		}
		l.step = stepGranted
		b.ownerLocal().post(l.ch.owner, l)
		return
	}
	l.phase = phaseIdle
	for i, o := range b.locks {
		if o == l {
			b.locks = append(b.locks[:i], b.locks[i+1:]...)
			break
		}
	}
	l.step = stepUnlocked
	if l.err != nil {
		l.step = stepGranted // a withdrawn lock: the requester hears why
	}
	b.ownerLocal().post(l.ch.owner, l)
	b.lockGrantWaiting()
}

// lockGrantWaiting starts waiting locks that no longer overlap anything
// before them (B7).
func (b *Bdev) lockGrantWaiting() {
	for i := 0; i < len(b.locksWaiting); {
		w := b.locksWaiting[i]
		if b.lockConflicts(w, w) {
			i++
			continue
		}
		b.locksWaiting = append(b.locksWaiting[:i], b.locksWaiting[i+1:]...)
		b.lockStart(w)
	}
}

// Deliver routes a visit: to its reactor, or back to the owner as an ack.
func (v *lockVisit) Deliver() {
	b := v.lock.bdev
	if v.acked {
		b.lockAcked(v)
		return
	}
	bc := b.chans[v.index]
	if v.release {
		bc.lockReleased(v)
	} else {
		bc.lockArrived(v)
	}
}

// lockArrived starts holding overlapping IO here and counts the admitted IO
// the lock waits for (B6).
func (bc *bdevChannel) lockArrived(v *lockVisit) {
	l := v.lock
	bc.locks = append(bc.locks, l)
	n := int64(0)
	for io := bc.ilHead; io != nil; io = io.ilNext {
		if !io.carries(l) && l.overlaps(io) {
			n++
		}
	}
	if n == 0 {
		bc.lockAck(v)
		return
	}
	v.seq = bc.seq
	v.waiting.Store(n)
	v.draining = true
	v.next = bc.draining
	bc.draining = v
}

// drainCheck counts a retired IO against each lock draining here.
func (bc *bdevChannel) drainCheck(io *IO) {
	var prev *lockVisit
	for v := bc.draining; v != nil; {
		next := v.next
		if io.seq < v.seq && !io.carries(v.lock) && v.lock.overlaps(io) && v.waiting.Add(-1) == 0 {
			bc.unlinkDraining(v, prev)
			bc.lockAck(v)
		} else {
			prev = v
		}
		v = next
	}
}

func (bc *bdevChannel) unlinkDraining(v, prev *lockVisit) {
	if prev == nil {
		bc.draining = v.next
	} else {
		prev.next = v.next
	}
	v.next = nil
	v.draining = false
}

func (bc *bdevChannel) lockAck(v *lockVisit) {
	v.acked = true
	bc.local.post(v.lock.bdev.owner, v)
}

// lockReleased drops the lock here (and its drain, if it timed out) and
// admits what it held.
func (bc *bdevChannel) lockReleased(v *lockVisit) {
	l := v.lock
	for i, o := range bc.locks {
		if o == l {
			bc.locks = append(bc.locks[:i], bc.locks[i+1:]...)
			break
		}
	}
	clear(bc.locks[len(bc.locks):cap(bc.locks)])
	if a := &l.acquire[v.index]; a.draining {
		var prev *lockVisit
		for x := bc.draining; x != nil && x != a; x = x.next {
			prev = x
		}
		bc.unlinkDraining(a, prev)
		a.waiting.Store(0)
	}
	if bc.held != 0 {
		bc.releaseHeld()
	}
	bc.lockAck(v)
}
