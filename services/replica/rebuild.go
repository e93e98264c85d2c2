package replica

import (
	"errors"
	"fmt"
	"math/bits"
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

// What a rebuilder copies.
const (
	kindFull    = iota // a replacement or a new member: every region
	kindResync         // a member back: the regions the bitmap marks (X2)
	kindUnclean        // after an unclean shutdown: the dirty regions, first in-sync member to the others (X7)
)

var kindNames = [...]string{"full", "resync", "unclean"}

// rebuilder copies regions to one target member (X4), or, after an unclean
// shutdown, from the first in-sync member to the others (X7). Owner: the
// home reactor from begin to finish; the control plane before
// (startRebuild, startResync) and after (wait). Progress fields are atomics
// the debug endpoint reads.
type rebuilder struct {
	s      *Stage
	kind   int
	target int      // kindFull, kindResync: the member rebuilding; -1 for kindUnclean
	plan   []uint64 // the regions to copy (not kindFull): the bitmap when it started; read-only
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
	targets uint8  // kindUnclean: the members copied to, in sync when it started and since
	left    uint8  // kindUnclean: the targets this region is still to be written to
	writing int    // the member the write in flight goes to
	abort   error
	nextAt  time.Duration
	timer   *reactors.PollerHandle
	regionN uint64 // blocks in the region being copied

	regionsDone atomic.Uint64
	bytesDone   atomic.Uint64
	regionsAll  uint64 // what this rebuild will copy (full: all; otherwise the plan's bits)
	bytesAll    uint64
	copied      atomic.Uint64 // regions below this are copied (X8's reads look)
	srcName     string        // kindUnclean: the first source, for Status
	targets0    uint8         // kindUnclean: the targets at the start, for Status
	step        atomic.Uint32
}

// snapshotPlan copies the bitmap now: the regions a resync copies. Regions
// marked later were written to every member taking writes, the target
// among them, so they need no copy.
func (s *Stage) snapshotPlan() (plan []uint64, regions, bytes uint64) {
	plan = make([]uint64, len(s.dirty))
	for i := range s.dirty {
		plan[i] = s.dirty[i].Load()
		regions += uint64(bits.OnesCount64(plan[i]))
	}
	bytes = regions * s.regionBlocks * uint64(s.blockSize)
	if last := s.regions - 1; plan[last>>6]&(1<<(last&63)) != 0 { // the last region may be short
		bytes -= (s.regionBlocks - (s.blocks - last<<s.regionShift)) * uint64(s.blockSize)
	}
	return plan, regions, bytes
}

// uncopied: an unclean resync has yet to copy a region of [off, off+n) it
// plans to (X8). Any reactor.
func (rb *rebuilder) uncopied(off, n uint64) bool {
	if n == 0 {
		return false
	}
	first, last := off>>rb.s.regionShift, (off+n-1)>>rb.s.regionShift
	for r := max(first, rb.copied.Load()); r <= last; r++ {
		if rb.plan[r>>6]&(1<<(r&63)) != 0 {
			return true
		}
	}
	return false
}

// startRebuild makes target i rebuilding and starts copying to it. s.mu held.
func (s *Stage) startRebuild(i int, full bool) error {
	if s.closed {
		return fmt.Errorf("replica %q closed", s.cfg.Name)
	}
	if err := s.idle(); err != nil {
		return err
	}
	kind := kindResync
	if full {
		kind = kindFull
	}
	rb, err := s.newRebuilder(kind, i)
	if err != nil {
		return err
	}
	if full {
		rb.regionsAll, rb.bytesAll = s.regions, s.blocks*uint64(s.blockSize)
	}
	// X4: the target takes writes before its first region is locked, and
	// before the plan is taken: a write that skipped it marked its regions
	// before it read the member's state (X2), so the plan has them.
	s.members[i].state.Store(stateRebuilding)
	if !full {
		rb.plan, rb.regionsAll, rb.bytesAll = s.snapshotPlan()
	}
	if err := s.persistSync(); err != nil {
		s.members[i].state.Store(stateFaulty)
		rb.release()
		return err
	}
	if err := s.launch(rb); err != nil {
		s.members[i].state.Store(stateFaulty)
		return err
	}
	s.log.Info("replica rebuild started", "member", s.members[i].desc.Load().Bdev().Name(), "full", full,
		"regions", rb.regionsAll, "bytes", rb.bytesAll, "rate", s.cfg.RebuildRate)
	return nil
}

// startResync copies the dirty regions from the first in-sync member to
// the other in-sync members after an unclean shutdown (X7): a write in
// flight at the crash may have reached some of them and not others. With
// nothing to copy it says so and goes on to a stale member. s.mu held.
func (s *Stage) startResync() error {
	if s.closed {
		return fmt.Errorf("replica %q closed", s.cfg.Name)
	}
	if err := s.idle(); err != nil {
		return err
	}
	in := s.inSyncMask()
	src := bits.TrailingZeros8(in)
	targets := in &^ (1 << src)
	plan, regions, bytes := s.snapshotPlan()
	if in == 0 || targets == 0 || regions == 0 {
		s.log.Warn(fmt.Sprintf("replica %s: unclean shutdown, %d of %d regions dirty, %d members in sync: nothing to resync",
			s.cfg.Name, regions, s.regions, bits.OnesCount8(in)))
		s.unclean.Store(false)
		s.copying.Store(false)
		return s.resume()
	}
	rb, err := s.newRebuilder(kindUnclean, -1)
	if err != nil {
		return err
	}
	rb.plan, rb.regionsAll, rb.bytesAll, rb.targets, rb.targets0 = plan, regions, bytes, targets, targets
	rb.srcName = s.members[src].desc.Load().Bdev().Name()
	s.resync.Store(rb) // X8: reads of the planned regions go to the first in-sync member from now on
	if err := s.launch(rb); err != nil {
		s.resync.Store(nil)
		return err
	}
	s.lastResync = rb
	s.log.Warn(fmt.Sprintf("replica %s: unclean shutdown, resyncing %d of %d regions (%s)", s.cfg.Name, regions,
		s.regions, sizeString(bytes)), "regions", regions, "regions_total", s.regions, "bytes", bytes,
		"source", rb.srcName, "targets", bits.OnesCount8(targets), "rate", s.cfg.RebuildRate)
	return nil
}

// idle refuses a second copy while one runs. s.mu held.
func (s *Stage) idle() error {
	if rb := s.rebuild; rb != nil && rb.step.Load() != stepDone {
		what := "the unclean-shutdown resync"
		if rb.target >= 0 {
			what = fmt.Sprintf("a rebuild of member %q", s.members[rb.target].desc.Load().Bdev().Name())
		}
		return fmt.Errorf("replica %q: %s is running; one at a time", s.cfg.Name, what)
	}
	return nil
}

// newRebuilder opens the replica for its range locks and maps a region's
// buffer. s.mu held.
func (s *Stage) newRebuilder(kind, target int) (*rebuilder, error) {
	self, err := s.reg.Open(s.cfg.Name, false)
	if err != nil {
		return nil, fmt.Errorf("replica %q: rebuild: %w", s.cfg.Name, err)
	}
	buf, err := bdev.MapRegion(int(s.regionBlocks) * int(s.blockSize))
	if err != nil {
		self.Close()
		return nil, err
	}
	rb := &rebuilder{s: s, kind: kind, target: target, full: kind == kindFull, self: self, buf: buf,
		clock: s.home.Clock(), r: s.home, done: make(chan error, 1), ended: make(chan struct{})}
	if rate := s.cfg.RebuildRate; rate > 0 {
		rb.per = time.Duration(float64(s.regionBlocks*uint64(s.blockSize)) / float64(rate) * float64(time.Second))
	}
	return rb, nil
}

func (rb *rebuilder) release() {
	rb.self.Close()
	rb.buf.Unmap()
}

// launch starts rb on the home reactor and its waiter. s.mu held.
func (s *Stage) launch(rb *rebuilder) error {
	s.copying.Store(true)
	s.rebuild = rb
	rb.step.Store(stepIdle)
	if err := s.home.PostFunc(rb.begin); err != nil {
		rb.release()
		s.rebuild = nil
		s.copying.Store(false)
		return err
	}
	go rb.wait()
	return nil
}

// sizeString is bytes for a log line: "12 MiB", "768 KiB", "512 B".
func sizeString(b uint64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", b>>30)
	case b >= 1<<20:
		return fmt.Sprintf("%.4g MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.4g KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
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
	if rb.kind == kindUnclean {
		// A target that failed is faulty now: its regions stay marked and a
		// rebuild copies them when it comes back.
		if rb.targets &= s.inSyncMask(); rb.targets == 0 {
			rb.finish(fmt.Errorf("replica %q: resync: no member left in sync to copy to", s.cfg.Name))
			return
		}
	} else if s.members[rb.target].state.Load() != stateRebuilding {
		rb.finish(fmt.Errorf("replica %q: target member failed during the rebuild", s.cfg.Name))
		return
	}
	if !rb.full {
		for rb.cursor < s.regions && rb.plan[rb.cursor>>6]&(1<<(rb.cursor&63)) == 0 {
			rb.cursor++
		}
	}
	rb.copied.Store(rb.cursor)
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
	rb.tried = 0
	if rb.target >= 0 {
		rb.tried = 1 << rb.target
	}
	rb.read()
}

// read reads the region from the first in-sync member not tried. For an
// unclean resync that is the member X8 sends reads to; it is no target.
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
	rb.targets &^= 1 << rb.source
	rb.submit(rb.source, bdev.IORead, stepReading)
}

// writeNext writes the region to the next target of an unclean resync,
// or unlocks it when every target has it.
func (rb *rebuilder) writeNext() {
	left := rb.left & rb.s.inSyncMask()
	if left == 0 {
		rb.unlock(nil)
		return
	}
	i := bits.TrailingZeros8(left)
	rb.left = left &^ (1 << i)
	rb.submit(i, bdev.IOWrite, stepWriting)
}

func (rb *rebuilder) submit(member int, typ bdev.IOType, step uint32) {
	s := rb.s
	ch, err := s.members[member].desc.Load().Channel(rb.r)
	if err != nil {
		s.fault(member)
		switch {
		case step == stepReading:
			rb.read()
		case rb.kind == kindUnclean:
			rb.writeNext()
		default:
			rb.unlock(err)
		}
		return
	}
	rb.writing = member
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
		if rb.kind == kindUnclean {
			rb.left = rb.targets
			rb.writeNext()
			return
		}
		rb.submit(rb.target, bdev.IOWrite, stepWriting)
		return
	}
	if rb.kind == kindUnclean {
		if io.Status != bdev.StatusSuccess {
			s.fault(rb.writing) // X2: its regions stay marked; its state reaches the metadata below (wait)
		}
		rb.writeNext()
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
	rb.bytesDone.Add(rb.regionN * uint64(rb.s.blockSize))
	rb.cursor++
	rb.copied.Store(rb.cursor)
	if rb.per > 0 {
		rb.nextAt = max(rb.nextAt, rb.clock.Now()) + rb.per
	}
	rb.next()
}

// finish hands the result to the control plane (wait). Home reactor.
func (rb *rebuilder) finish(err error) {
	if err == nil {
		rb.copied.Store(rb.s.regions)
	}
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

// wait settles a finished copy on the control plane: a rebuild's target in
// sync when it succeeded (X4), faulty when not; an unclean resync that
// succeeded leaves the stage clean and goes on to a stale member (X7); the
// state persisted; the descriptor and buffer released. The bitmap is the
// sweeper's to clear (X5).
func (rb *rebuilder) wait() {
	err := <-rb.done
	s := rb.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if rb.kind == kindUnclean {
		s.resync.Store(nil)
		if err == nil {
			s.unclean.Store(false)
			s.log.Info(fmt.Sprintf("replica %s: resync after the unclean shutdown done: %d regions (%s) copied", s.cfg.Name,
				rb.regionsDone.Load(), sizeString(rb.bytesDone.Load())), "regions", rb.regionsDone.Load(),
				"bytes", rb.bytesDone.Load())
		} else {
			s.log.Warn("replica resync after the unclean shutdown ended early", "regions", rb.regionsDone.Load(),
				"of", rb.regionsAll, "err", err)
		}
	} else {
		m := &s.members[rb.target]
		name := m.desc.Load().Bdev().Name()
		if err == nil && m.state.CompareAndSwap(stateRebuilding, stateInSync) {
			m.needsFull.Store(false)
			s.log.Info("replica rebuild done", "member", name, "regions", rb.regionsDone.Load(), "bytes", rb.bytesDone.Load())
		} else {
			if err == nil {
				err = fmt.Errorf("replica %q: member %q failed during the rebuild", s.cfg.Name, name)
			}
			m.state.CompareAndSwap(stateRebuilding, stateFaulty)
			s.log.Warn("replica rebuild ended early", "member", name, "regions", rb.regionsDone.Load(), "err", err)
		}
	}
	s.copying.Store(false)
	if perr := s.persistSync(); perr != nil && err == nil {
		err = perr
	}
	rb.release()
	rb.err = err
	close(rb.ended)
	if rb.kind == kindUnclean && err == nil && !s.closed {
		if rerr := s.resume(); rerr != nil {
			s.log.Warn("replica rebuild of a stale member after the resync did not start", "err", rerr)
		}
	}
}

func (rb *rebuilder) status() *RebuildStatus {
	s := rb.s
	st := &RebuildStatus{Kind: kindNames[rb.kind], Full: rb.full, RegionsDone: rb.regionsDone.Load(),
		Regions: rb.regionsAll, BytesDone: rb.bytesDone.Load(), Bytes: rb.bytesAll, RateLimit: s.cfg.RebuildRate,
		State: stepNames[rb.step.Load()], Source: rb.srcName}
	if rb.target >= 0 {
		st.Target = s.members[rb.target].desc.Load().Bdev().Name()
	}
	for i := range s.membersN() {
		if rb.targets0&(1<<i) != 0 {
			st.Targets = append(st.Targets, s.members[i].desc.Load().Bdev().Name())
		}
	}
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
