package replica

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// ErrStopped is what a rebuild stopped by StopRebuild (or Close) ends with.
var ErrStopped = errors.New("rebuild stopped")

// rebuildTimerPeriod is how often a throttled rebuild looks at the clock:
// fine enough for any rate worth setting (a 1 MiB region at 1 GiB/s takes
// 1 ms).
const rebuildTimerPeriod = 100 * time.Microsecond

// rebuild steps.
const (
	stepIdle uint32 = iota
	stepLocking
	stepReading
	stepWriting
	stepUnlocking
	stepWaiting
	stepDone
)

var stepNames = [...]string{"idle", "locking", "reading", "writing", "unlocking", "throttled", "done"}

// rebuilder copies regions to one target member (X4). Owner: the home
// reactor from begin to finish; the control plane before (startRebuild) and
// after (wait). Progress fields are atomics the debug endpoint reads.
type rebuilder struct {
	s      *Stage
	target int
	full   bool
	self   *bdev.Desc   // a read descriptor on the replica, for its range locks
	buf    *bdev.Region // one region
	clock  reactors.Clock
	per    time.Duration // one region at the rate; 0: unthrottled
	stop   atomic.Bool
	done   chan error    // finish to wait, buffered
	ended  chan struct{} // closed by wait when everything is settled
	err    error         // set by wait before ended is closed

	// Home reactor only.
	r       *reactors.Reactor
	lockCh  *bdev.Channel
	lock    *bdev.RangeLock // held from RangeLocked to unlock
	io      *bdev.IO
	cursor  uint64 // the region being copied, or the next to look at
	source  int
	tried   uint64 // sources tried for this region
	abort   error
	nextAt  time.Duration
	timer   *reactors.PollerHandle
	regionN uint64 // blocks in the region being copied

	regionsDone atomic.Uint64
	regionsAll  uint64 // what this rebuild will copy (full: all; resync: the bits set at start)
	step        atomic.Uint32
}

// startRebuild makes target i rebuilding and starts copying to it. s.mu held.
func (s *Stage) startRebuild(i int, full bool) error {
	if s.closed {
		return fmt.Errorf("replica %q closed", s.cfg.Name)
	}
	if rb := s.rebuild; rb != nil && rb.step.Load() != stepDone {
		return fmt.Errorf("replica %q: a rebuild of member %q is running; one at a time",
			s.cfg.Name, s.members[rb.target].desc.Load().Bdev().Name())
	}
	self, err := s.reg.Open(s.cfg.Name, false)
	if err != nil {
		return fmt.Errorf("replica %q: rebuild: %w", s.cfg.Name, err)
	}
	buf, err := bdev.MapRegion(int(s.regionBlocks) * int(s.blockSize))
	if err != nil {
		self.Close()
		return err
	}
	rb := &rebuilder{s: s, target: i, full: full, self: self, buf: buf, clock: s.home.Clock(), r: s.home,
		done: make(chan error, 1), ended: make(chan struct{})}
	if rate := s.cfg.RebuildRate; rate > 0 {
		rb.per = time.Duration(float64(s.regionBlocks*uint64(s.blockSize)) / float64(rate) * float64(time.Second))
	}
	rb.regionsAll = s.regions
	if !full {
		rb.regionsAll = s.dirtyCount()
	}
	// X4: the target takes writes before its first region is locked.
	s.members[i].state.Store(stateRebuilding)
	if err := s.persistSync(); err != nil {
		s.members[i].state.Store(stateFaulty)
		self.Close()
		buf.Unmap()
		return err
	}
	s.rebuild = rb
	rb.step.Store(stepIdle)
	if err := s.home.PostFunc(rb.begin); err != nil {
		s.members[i].state.Store(stateFaulty)
		self.Close()
		buf.Unmap()
		s.rebuild = nil
		return err
	}
	s.log.Info("replica rebuild started", "member", s.members[i].desc.Load().Bdev().Name(), "full", full,
		"regions", rb.regionsAll, "rate", s.cfg.RebuildRate)
	go rb.wait()
	return nil
}

// begin takes the rebuild's channel and IO on the home reactor.
func (rb *rebuilder) begin() {
	ch, err := rb.self.Channel(rb.r)
	if err != nil {
		rb.finish(err)
		return
	}
	rb.lockCh = ch
	if rb.io = ch.AllocIO(); rb.io == nil {
		rb.finish(fmt.Errorf("replica %q: rebuild: IO pool empty", rb.s.cfg.Name))
		return
	}
	rb.nextAt = rb.clock.Now()
	rb.next()
}

// next finds the next region to copy and locks it, or finishes.
func (rb *rebuilder) next() {
	s := rb.s
	if rb.stop.Load() {
		rb.finish(ErrStopped)
		return
	}
	if s.members[rb.target].state.Load() != stateRebuilding {
		rb.finish(fmt.Errorf("replica %q: target member failed during the rebuild", s.cfg.Name))
		return
	}
	if !rb.full {
		for rb.cursor < s.regions && s.dirty[rb.cursor>>6].Load()&(1<<(rb.cursor&63)) == 0 {
			rb.cursor++
		}
	}
	if rb.cursor >= s.regions {
		rb.finish(nil)
		return
	}
	if now := rb.clock.Now(); now < rb.nextAt {
		rb.step.Store(stepWaiting)
		if rb.timer == nil {
			rb.timer = rb.r.AddTimer("replica-rebuild-"+s.cfg.Name, rebuildTimerPeriod, rb, nil)
		}
		return
	}
	off := rb.cursor << s.regionShift
	rb.regionN = min(s.regionBlocks, s.blocks-off)
	rb.step.Store(stepLocking)
	if _, err := rb.lockCh.LockRange(bdev.LockRequest{OffsetBlocks: off, Blocks: rb.regionN, Mode: bdev.LockWrites}, rb); err != nil {
		rb.finish(err)
	}
}

// Poll is the throttle's timer.
func (rb *rebuilder) Poll() int {
	if rb.clock.Now() < rb.nextAt && !rb.stop.Load() {
		return 0
	}
	rb.r.RemovePoller(rb.timer)
	rb.timer = nil
	rb.next()
	return 1
}

// poke wakes a throttled rebuild to see its stop flag. Home reactor.
func (rb *rebuilder) poke() {
	if rb.step.Load() != stepWaiting {
		return // busy with a region: it looks at the flag when the region is done
	}
	rb.r.RemovePoller(rb.timer)
	rb.timer = nil
	rb.next()
}

// RangeLocked: no write to the region runs now; read it from a member in
// sync.
func (rb *rebuilder) RangeLocked(l *bdev.RangeLock, err error) {
	if err != nil {
		rb.finish(err)
		return
	}
	rb.lock = l
	rb.tried = 1 << rb.target
	rb.read()
}

func (rb *rebuilder) read() {
	s := rb.s
	rb.source = -1
	for i := range s.membersN() {
		if rb.tried&(1<<i) == 0 && s.members[i].state.Load() == stateInSync {
			rb.source = i
			break
		}
	}
	if rb.source < 0 {
		rb.unlock(fmt.Errorf("replica %q: rebuild of region %d: %w", s.cfg.Name, rb.cursor, ErrNoSync))
		return
	}
	rb.tried |= 1 << rb.source
	rb.submit(rb.source, bdev.IORead, stepReading)
}

func (rb *rebuilder) submit(member int, typ bdev.IOType, step uint32) {
	s := rb.s
	ch, err := s.members[member].desc.Load().Channel(rb.r)
	if err != nil {
		s.fault(member)
		if step == stepReading {
			rb.read()
		} else {
			rb.unlock(err)
		}
		return
	}
	io := rb.io
	io.Type, io.OffsetBlocks, io.Blocks, io.Completer = typ, rb.cursor<<s.regionShift, rb.regionN, rb
	io.SetBuf(rb.buf.Bytes()[:rb.regionN*uint64(s.blockSize)])
	rb.step.Store(step)
	ch.Submit(io)
}

// Complete moves a region from read to write to unlock.
func (rb *rebuilder) Complete(io *bdev.IO) {
	s := rb.s
	if rb.step.Load() == stepReading {
		if io.Status != bdev.StatusSuccess {
			s.fault(rb.source)
			rb.read()
			return
		}
		rb.submit(rb.target, bdev.IOWrite, stepWriting)
		return
	}
	if io.Status != bdev.StatusSuccess {
		s.fault(rb.target)
		rb.unlock(fmt.Errorf("replica %q: rebuild write of region %d: %s", s.cfg.Name, rb.cursor, io.StatusString()))
		return
	}
	rb.unlock(nil)
}

func (rb *rebuilder) unlock(abort error) {
	rb.abort = abort
	rb.step.Store(stepUnlocking)
	rb.lock.Unlock()
}

// RangeUnlocked: the region is done (or the rebuild ends).
func (rb *rebuilder) RangeUnlocked(*bdev.RangeLock) {
	if rb.abort != nil {
		rb.finish(rb.abort)
		return
	}
	rb.regionsDone.Add(1)
	rb.cursor++
	if rb.per > 0 {
		rb.nextAt = max(rb.nextAt, rb.clock.Now()) + rb.per
	}
	rb.next()
}

// finish hands the result to the control plane (wait). Home reactor.
func (rb *rebuilder) finish(err error) {
	if rb.timer != nil {
		rb.r.RemovePoller(rb.timer)
		rb.timer = nil
	}
	if rb.io != nil {
		rb.io.Free()
		rb.io = nil
	}
	rb.step.Store(stepDone)
	rb.done <- err
}

// wait settles a finished rebuild on the control plane: the target in sync
// and the bitmap cleared when it succeeded (X4, X5), faulty when not; the
// state persisted; the descriptor and buffer released.
func (rb *rebuilder) wait() {
	err := <-rb.done
	s := rb.s
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &s.members[rb.target]
	name := m.desc.Load().Bdev().Name()
	if err == nil && m.state.CompareAndSwap(stateRebuilding, stateInSync) {
		m.needsFull.Store(false)
		s.clearIfInSync()
		s.log.Info("replica rebuild done", "member", name, "regions", rb.regionsDone.Load())
	} else {
		if err == nil {
			err = fmt.Errorf("replica %q: member %q failed during the rebuild", s.cfg.Name, name)
		}
		m.state.CompareAndSwap(stateRebuilding, stateFaulty)
		s.log.Warn("replica rebuild ended early", "member", name, "regions", rb.regionsDone.Load(), "err", err)
	}
	if perr := s.persistSync(); perr != nil && err == nil {
		err = perr
	}
	rb.self.Close()
	rb.buf.Unmap()
	rb.err = err
	close(rb.ended)
}

// clearIfInSync clears the bitmap when every member is in sync (X5), and
// marks for a full rebuild any member that failed while it was cleared.
func (s *Stage) clearIfInSync() {
	for i := range s.membersN() {
		if s.members[i].state.Load() != stateInSync {
			return
		}
	}
	for i := range s.dirty {
		s.dirty[i].Store(0)
	}
	for i := range s.membersN() {
		if s.members[i].state.Load() != stateInSync {
			s.members[i].needsFull.Store(true)
		}
	}
	s.dirtyGen.Add(1)
}

func (rb *rebuilder) status() *RebuildStatus {
	st := &RebuildStatus{Target: rb.s.members[rb.target].desc.Load().Bdev().Name(), Full: rb.full,
		RegionsDone: rb.regionsDone.Load(), Regions: rb.regionsAll, RateLimit: rb.s.cfg.RebuildRate,
		State: stepNames[rb.step.Load()]}
	if st.Regions > 0 {
		st.Percent = 100 * float64(st.RegionsDone) / float64(st.Regions)
	}
	select {
	case <-rb.ended:
		if rb.err != nil {
			st.Error = rb.err.Error()
		}
	default:
	}
	return st
}
