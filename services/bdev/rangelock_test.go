package bdev

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/reactors"
)

// lockEvents is a LockCompleter that reports "locked NAME", "failed NAME"
// and "unlocked NAME" (NAME is the request's Ctx) to the test goroutine.
type lockEvents struct {
	ch    chan string
	locks map[string]*RangeLock // written on the requester's reactor, read after an event
	errs  map[string]error
}

func newLockEvents() *lockEvents {
	return &lockEvents{ch: make(chan string, 64), locks: map[string]*RangeLock{}, errs: map[string]error{}}
}

func (e *lockEvents) RangeLocked(l *RangeLock, err error) {
	name := l.Ctx().(string)
	if err != nil {
		e.errs[name] = err
		e.ch <- "failed " + name
		return
	}
	e.locks[name] = l
	e.ch <- "locked " + name
}

func (e *lockEvents) RangeUnlocked(l *RangeLock) { e.ch <- "unlocked " + l.Ctx().(string) }

func (e *lockEvents) want(t testing.TB, events ...string) {
	t.Helper()
	got := map[string]bool{}
	for range events {
		select {
		case ev := <-e.ch:
			got[ev] = true
		case <-time.After(waitTimeout):
			t.Fatalf("timed out waiting for %v (got %v)", events, got)
		}
	}
	for _, ev := range events {
		if !got[ev] {
			t.Fatalf("lock events %v, want %v", got, events)
		}
	}
}

func (e *lockEvents) none(t testing.TB, s *stack) {
	t.Helper()
	for range 3 {
		for i := range s.set.Len() {
			s.call(t, i, func() {})
		}
	}
	select {
	case ev := <-e.ch:
		t.Fatalf("unexpected lock event %q", ev)
	default:
	}
}

func (s *stack) lock(t testing.TB, ch *Channel, ev *lockEvents, name string, off, n uint64, mode LockMode) {
	t.Helper()
	s.call(t, ch.owner.Index(), func() {
		if _, err := ch.LockRange(LockRequest{OffsetBlocks: off, Blocks: n, Mode: mode, Ctx: name}, ev); err != nil {
			t.Error(err)
		}
	})
}

func (s *stack) unlock(t testing.TB, ch *Channel, ev *lockEvents, name string) {
	t.Helper()
	s.call(t, ch.owner.Index(), func() { ev.locks[name].Unlock() })
}

// atBackend lists what reactor i's fake back end has been given.
func (s *stack) atBackend(t testing.TB, f *fakeBackend, i int) string {
	t.Helper()
	var log string
	s.call(t, i, func() { log = strings.Join(f.chans[i].log, "; ") })
	return log
}

// TestLockWhileInFlight: a lock waits for the admitted IO it overlaps on
// every reactor, holds new overlapping writes from the moment it arrives,
// lets reads and other ranges pass, and admits the held writes on release.
func TestLockWhileInFlight(t *testing.T) {
	s := newStack(t, 2, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{})
	f.hold = true
	s.fakeBdev(t, "f0", f, 64)
	d := s.open(t, "f0", true)
	ch0, ch1 := s.channel(t, d, 0), s.channel(t, d, 1)
	buf0, buf1 := s.buf(t, 0, 512), s.buf(t, 1, 512)
	rec := newRecorder()
	s.submit(t, ch1, rec, IOWrite, 3, 1, buf1, 1)  // in flight, overlaps
	s.submit(t, ch0, rec, IORead, 7, 1, buf0, 2)   // in flight, overlaps: reads drain too
	s.submit(t, ch0, rec, IOWrite, 40, 1, buf0, 3) // in flight elsewhere
	ev := newLockEvents()
	s.lock(t, ch0, ev, "A", 0, 8, LockWrites)
	ev.none(t, s)

	s.submit(t, ch0, rec, IOWrite, 5, 1, buf0, 4) // held
	s.submit(t, ch1, rec, IOUnmap, 0, 2, nil, 5)  // held: unmap writes
	s.submit(t, ch1, rec, IORead, 6, 1, buf1, 6)  // passes: a read
	s.submit(t, ch0, rec, IOWrite, 8, 1, buf0, 7) // passes: outside
	if log := s.atBackend(t, f, 0); strings.Contains(log, "write 5+1") {
		t.Fatalf("write into the locked range reached the back end: %s", log)
	}
	if log := s.atBackend(t, f, 1); strings.Contains(log, "unmap") || !strings.Contains(log, "read 6+1") {
		t.Fatalf("reactor 1's back end saw %q: want the read, not the unmap", log)
	}
	s.call(t, 0, func() { f.chans[0].release(len(f.chans[0].queue)) }) // 7, 40, 8
	ev.none(t, s)                                                      // the write at 3 on reactor 1 is still in flight
	s.call(t, 1, func() { f.chans[1].release(len(f.chans[1].queue)) }) // 3 and 6
	ev.want(t, "locked A")
	for range 5 {
		rec.wait(t)
	}
	rec.none(t, s, "held writes while locked")
	s.call(t, 0, func() {
		if _, held, _ := ch0.InFlight(); held != 1 {
			t.Errorf("reactor 0 holds %d IOs, want the write at 5", held)
		}
	})
	s.unlock(t, ch0, ev, "A")
	ev.want(t, "unlocked A")
	if log := s.atBackend(t, f, 0); !strings.Contains(log, "write 5+1") {
		t.Fatalf("held write not admitted after unlock: %s", log)
	}
	s.call(t, 0, func() { f.chans[0].release(len(f.chans[0].queue)) })
	s.call(t, 1, func() { f.chans[1].release(len(f.chans[1].queue)) })
	for range 2 {
		if res := rec.wait(t); res.tag != 4 && res.tag != 5 {
			t.Fatalf("completion of IO %d, want the held 4 and 5", res.tag)
		}
	}
}

// TestLockOverlapOrder: overlapping locks are granted one at a time in
// request order; others at once (B7).
func TestLockOverlapOrder(t *testing.T) {
	s := newStack(t, 2, reactors.Options{}, testOptions)
	s.fakeBdev(t, "f0", newFake(512, 64, Info{}), 64)
	d := s.open(t, "f0", true)
	ch0, ch1 := s.channel(t, d, 0), s.channel(t, d, 1)
	ev0, ev1 := newLockEvents(), newLockEvents()
	s.lock(t, ch0, ev0, "A", 0, 10, LockWrites)
	ev0.want(t, "locked A")
	s.lock(t, ch1, ev1, "B", 5, 10, LockWrites) // waits for A
	s.lock(t, ch0, ev0, "C", 20, 10, LockAll)   // free range: granted
	ev0.want(t, "locked C")
	s.lock(t, ch0, ev0, "D", 8, 1, LockWrites)  // overlaps A and B: after both
	s.lock(t, ch1, ev1, "E", 12, 2, LockWrites) // overlaps B only
	s.lock(t, ch1, ev1, "F", 30, 4, LockWrites) // free: granted
	ev1.want(t, "locked F")
	ev0.none(t, s)
	ev1.none(t, s)
	s.unlock(t, ch0, ev0, "A")
	ev0.want(t, "unlocked A")
	ev1.want(t, "locked B") // not D, though D asked from A's own reactor
	ev0.none(t, s)
	s.unlock(t, ch1, ev1, "B")
	ev1.want(t, "unlocked B", "locked E")
	ev0.want(t, "locked D")
	for _, x := range []struct {
		ch   *Channel
		ev   *lockEvents
		name string
	}{{ch0, ev0, "C"}, {ch0, ev0, "D"}, {ch1, ev1, "E"}, {ch1, ev1, "F"}} {
		s.unlock(t, x.ch, x.ev, x.name)
		x.ev.want(t, "unlocked "+x.name)
	}
}

// TestLockSeveralReactors: IO in flight on three reactors; the lock is
// granted only when the last drains; writes held on every reactor go down
// on release; the lock holder's own writes pass.
func TestLockSeveralReactors(t *testing.T) {
	const n = 4
	s := newStack(t, n, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{})
	f.hold = true
	s.fakeBdev(t, "f0", f, 64)
	d := s.open(t, "f0", true)
	chans := make([]*Channel, n)
	bufs := make([][]byte, n)
	for i := range n {
		chans[i], bufs[i] = s.channel(t, d, i), s.buf(t, i, 512)
	}
	rec := newRecorder()
	for i := 1; i < n; i++ {
		s.submit(t, chans[i], rec, IOWrite, uint64(10+i), 1, bufs[i], uint64(i))
	}
	ev := newLockEvents()
	s.lock(t, chans[0], ev, "L", 0, 32, LockWrites)
	for i := 1; i < n; i++ {
		ev.none(t, s)
		s.call(t, i, func() { f.chans[i].release(1) })
		rec.wait(t)
	}
	ev.want(t, "locked L")
	for i := range n {
		s.submit(t, chans[i], rec, IOWrite, uint64(20+i), 1, bufs[i], uint64(100+i))
	}
	// The holder's own write passes.
	s.call(t, 0, func() {
		io := chans[0].AllocIO()
		io.Type, io.OffsetBlocks, io.Blocks, io.Completer, io.Lock = IOWrite, 21, 1, rec, ev.locks["L"]
		io.Ctx[0] = 200
		io.SetBuf(bufs[0])
		chans[0].Submit(io)
		f.chans[0].release(1)
	})
	if res := rec.wait(t); res.tag != 200 || res.status != StatusSuccess {
		t.Fatalf("lock holder's write: IO %d %v, want 200 success", res.tag, res.status)
	}
	rec.none(t, s, "writes held on every reactor")
	s.unlock(t, chans[0], ev, "L")
	ev.want(t, "unlocked L")
	for i := range n {
		s.call(t, i, func() { f.chans[i].release(len(f.chans[i].queue)) })
	}
	for range n {
		if res := rec.wait(t); res.tag < 100 || res.tag >= 100+n {
			t.Fatalf("IO %d completed, want the held 100..%d", res.tag, 100+n-1)
		}
	}
}

// TestLockRangeErrors: bad requests are refused at once, naming the range.
func TestLockRangeErrors(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	s.fakeBdev(t, "f0", newFake(512, 64, Info{}), 64)
	ch := s.channel(t, s.open(t, "f0", true), 0)
	for _, req := range []LockRequest{{Blocks: 0}, {OffsetBlocks: 60, Blocks: 5}, {Blocks: 1, Mode: 7}} {
		s.call(t, 0, func() {
			if _, err := ch.LockRange(req, newLockEvents()); !errors.Is(err, ErrLockRange) {
				t.Errorf("LockRange(%+v): %v, want ErrLockRange", req, err)
			}
		})
	}
}

// TestQuiesce: the change runs with nothing admitted on any reactor and new
// IO held; afterwards the held IO runs.
func TestQuiesce(t *testing.T) {
	s := newStack(t, 2, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{})
	f.hold = true
	s.fakeBdev(t, "f0", f, 64)
	d := s.open(t, "f0", true)
	ch0, ch1 := s.channel(t, d, 0), s.channel(t, d, 1)
	buf := s.buf(t, 1, 512)
	rec := newRecorder()
	s.submit(t, ch1, rec, IORead, 3, 1, buf, 1)
	var changed atomic.Bool
	errc := make(chan error, 1)
	go func() {
		errc <- d.Quiesce(waitTimeout, func() error {
			for i, ch := range []*Channel{ch0, ch1} {
				s.call(t, i, func() {
					if admitted, held, _ := ch.InFlight(); admitted != 0 || (i == 0 && held != 1) {
						t.Errorf("reactor %d during the change: %d admitted %d held, want 0 and the new read held on 0", i, admitted, held)
					}
				})
			}
			changed.Store(true)
			return nil
		})
	}()
	// Wait until the quiesce reached both reactors, then submit: it is held.
	for i := 0; ; i++ {
		var seen int
		for j := range 2 {
			s.call(t, j, func() { seen += len(d.bdev.chans[j].locks) })
		}
		if seen == 2 {
			break
		}
		if i > 1e6 {
			t.Fatal("quiesce never reached the reactors")
		}
	}
	s.submit(t, ch0, rec, IORead, 60, 1, s.buf(t, 0, 512), 2)
	if changed.Load() {
		t.Fatal("change ran with a read in flight")
	}
	s.call(t, 1, func() { f.chans[1].release(1) })
	rec.wait(t)
	if err := <-errc; err != nil || !changed.Load() {
		t.Fatalf("Quiesce: %v, changed %t", err, changed.Load())
	}
	s.call(t, 0, func() { f.chans[0].release(len(f.chans[0].queue)) })
	if res := rec.wait(t); res.tag != 2 {
		t.Fatalf("IO %d completed, want the held read 2", res.tag)
	}
}

type manualClock struct{ now atomic.Int64 }

func (c *manualClock) Now() time.Duration      { return time.Duration(c.now.Load()) }
func (c *manualClock) Advance(d time.Duration) { c.now.Add(int64(d)) }

// TestQuiesceTimeout: a drain that does not finish is withdrawn with an
// error naming what was left; the change never runs; held IO resumes.
func TestQuiesceTimeout(t *testing.T) {
	clock := &manualClock{}
	s := newStack(t, 2, reactors.Options{Clock: clock}, testOptions)
	f := newFake(512, 64, Info{})
	f.hold = true
	s.fakeBdev(t, "f0", f, 64)
	d := s.open(t, "f0", true)
	ch0, ch1 := s.channel(t, d, 0), s.channel(t, d, 1)
	rec := newRecorder()
	s.submit(t, ch1, rec, IOWrite, 9, 1, s.buf(t, 1, 512), 1) // stuck
	errc := make(chan error, 1)
	go func() {
		errc <- d.Quiesce(5*time.Millisecond, func() error { t.Error("change ran without a drain"); return nil })
	}()
	for i := 0; ; i++ {
		var seen int
		s.call(t, 0, func() { seen = len(d.bdev.chans[0].locks) })
		if seen == 1 {
			break
		}
		if i > 1e6 {
			t.Fatal("quiesce never reached reactor 0")
		}
	}
	s.submit(t, ch0, rec, IOFlush, 0, 0, nil, 2) // held by the quiesce
	clock.Advance(10 * time.Millisecond)
	var err error
	for err == nil {
		s.call(t, d.bdev.owner.Index(), func() {}) // a turn: the timer runs
		select {
		case err = <-errc:
		default:
		}
	}
	if !errors.Is(err, ErrDrainTimeout) || !strings.Contains(err.Error(), "1 IOs still in flight after 5ms (reactor 1: 1)") {
		t.Fatalf("Quiesce: %v, want ErrDrainTimeout naming 1 IO on reactor 1", err)
	}
	s.call(t, 0, func() {
		if n := len(f.chans[0].queue); n != 1 {
			t.Errorf("reactor 0's back end has %d IOs, want the flush the quiesce held", n)
		}
		f.chans[0].release(len(f.chans[0].queue))
	})
	if res := rec.wait(t); res.tag != 2 || res.status != StatusSuccess {
		t.Fatalf("IO %d %v, want the held flush to complete after the withdrawal", res.tag, res.status)
	}
	s.call(t, 1, func() { f.chans[1].release(1) })
	rec.wait(t)
}

// TestReset: a reset completes only after IO in flight on other reactors.
func TestReset(t *testing.T) {
	s := newStack(t, 2, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{})
	f.hold = true
	s.fakeBdev(t, "f0", f, 64)
	d := s.open(t, "f0", true)
	ch0, ch1 := s.channel(t, d, 0), s.channel(t, d, 1)
	rec := newRecorder()
	s.submit(t, ch1, rec, IOWrite, 1, 1, s.buf(t, 1, 512), 1)
	s.submit(t, ch0, rec, IOReset, 0, 0, nil, 2)
	rec.none(t, s, "reset with a write in flight")
	s.call(t, 1, func() { f.chans[1].release(1) })
	for _, want := range []uint64{1, 2} {
		if res := rec.wait(t); res.tag != want || res.status != StatusSuccess {
			t.Fatalf("IO %d %v, want %d success", res.tag, res.status, want)
		}
	}
	if log := s.atBackend(t, f, 0); log != "" {
		t.Fatalf("reset reached a back end that does not list resets: %s", fmt.Sprint(log))
	}
}
