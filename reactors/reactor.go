package reactors

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/internal/invariants"
	"github.com/sluice-storage/sluice/internal/mpsc"
	"golang.org/x/sys/unix"
)

// Mode is a reactor's idle policy.
type Mode uint8

const (
	// ModeAdaptive polls while there is work and sleeps in epoll_wait after
	// Options.IdleAfter without any, waking on a post or fd readiness.
	ModeAdaptive Mode = iota
	// ModePoll never sleeps: one core per reactor, always. For benchmarks.
	ModePoll
)

func (m Mode) String() string {
	switch m {
	case ModeAdaptive:
		return "adaptive"
	case ModePoll:
		return "poll"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

const (
	// ringSizeDefault messages fit in a reactor's inbound ring: enough for a
	// queue depth of 128 on 16 connections crossing cores at once, small
	// enough (64 KiB of slots) to stay in L2.
	ringSizeDefault = 4096
	// ringBatchMax messages are delivered per turn before the pollers run
	// again, so a flood of posts cannot starve sockets and completions.
	ringBatchMax = 256
	// idleAfterDefault of quiet before an adaptive reactor sleeps: long
	// enough that a loaded reactor between two I/Os keeps polling, short
	// enough that an idle daemon costs ~nothing.
	idleAfterDefault = time.Millisecond
	// epollEventsMax readiness events are taken per epoll_wait; the reactor
	// polls everything after waking, so the events are only a wake-up.
	epollEventsMax = 64
	// clockTurnsMax busy turns run between two clock reads: timers and
	// busy-time accounting are that coarse while busy (a turn takes well
	// under a microsecond, so well under 100 µs), idle turns read it always.
	clockTurnsMax = 64
	// sleepTimerSlack: a timer due sooner than this keeps the reactor
	// polling, since epoll_wait's timeout has millisecond granularity.
	sleepTimerSlack = time.Millisecond
)

// ErrRingFull is returned by Post when the reactor's ring has no free cell:
// backpressure, which the poster handles by retrying when it next has work
// completed (never by waiting).
var ErrRingFull = errors.New("reactors: ring full")

// ErrStopped is returned when posting to a reactor that is stopping.
var ErrStopped = errors.New("reactors: reactor stopped")

// Options configure a reactor.
type Options struct {
	Mode      Mode
	IdleAfter time.Duration // ModeAdaptive: quiet period before sleeping; 0 means the default
	RingSize  int           // power of two; 0 means the default
	Clock     Clock         // nil means the monotonic clock
	Logger    *slog.Logger  // nil means slog.Default()
	NoPin     bool          // do not set CPU affinity (tests on machines with fewer cores)
}

func (o *Options) fill() {
	if o.IdleAfter == 0 {
		o.IdleAfter = idleAfterDefault
	}
	if o.RingSize == 0 {
		o.RingSize = ringSizeDefault
	}
	if o.Clock == nil {
		o.Clock = NewMonotonicClock()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Reactor is one pinned OS thread and its poll loop. Owner: itself; methods
// marked "owner only" run on its thread (inside a message, poller or timer),
// everything else is safe from any goroutine.
type Reactor struct {
	index int // position in its Set
	core  int // CPU it is pinned to
	opts  Options
	log   *slog.Logger
	ring  *mpsc.Ring[Message]

	// lock: Schedule's spill when the ring is full, the only lock a
	// reactor has; taken by posters only when the ring is full and by the
	// loop only when hasOverflow says there is something to take, so never
	// on the steady path.
	overflowMu  sync.Mutex
	overflow    []Message
	hasOverflow atomic.Bool

	epollFD int
	eventFD int
	tid     atomic.Int32

	// Owner-only.
	pollers  []*PollerHandle
	timers   []*PollerHandle
	watched  map[int]bool
	lastWork time.Duration
	events   [epollEventsMax]unix.EpollEvent
	spill    []Message // overflow taken from the list, being delivered

	done    chan struct{}
	started chan error

	// Read by every post, written by the loop only around a sleep: on a
	// cache line of their own, so the loop's counters below do not bounce
	// it between cores on every turn (R2).
	_           [64]byte
	sleeping    atomic.Bool
	wakePending atomic.Bool
	stopping    atomic.Bool
	_           [61]byte

	// Copy-on-write list of pollers and timers for the debug endpoint.
	pollerView atomic.Pointer[[]*PollerHandle]

	// Written by the owner or posters, read by Stats from any goroutine.
	busy       atomic.Int64 // ns spent in turns that did work
	idle       atomic.Int64 // ns spent in turns that did none, polling or asleep
	loops      atomic.Uint64
	sleeps     atomic.Uint64
	wakeups    atomic.Uint64
	ringFull   atomic.Uint64
	overflowed atomic.Uint64
	delivered  atomic.Uint64
	panics     atomic.Uint64
}

// newReactor makes a reactor with its ring, epoll and eventfd; start runs it.
func newReactor(index, core int, opts Options) (*Reactor, error) {
	opts.fill()
	epollFD, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("reactor %d: epoll_create1: %w", index, err)
	}
	eventFD, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epollFD)
		return nil, fmt.Errorf("reactor %d: eventfd: %w", index, err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(eventFD)}
	if err := unix.EpollCtl(epollFD, unix.EPOLL_CTL_ADD, eventFD, &ev); err != nil {
		unix.Close(epollFD)
		unix.Close(eventFD)
		return nil, fmt.Errorf("reactor %d: epoll_ctl eventfd: %w", index, err)
	}
	r := &Reactor{
		index:   index,
		core:    core,
		opts:    opts,
		log:     opts.Logger.With("reactor", index, "core", core),
		ring:    mpsc.New[Message](opts.RingSize),
		epollFD: epollFD,
		eventFD: eventFD,
		watched: map[int]bool{},
		done:    make(chan struct{}),
		started: make(chan error, 1),
	}
	r.pollerView.Store(&[]*PollerHandle{})
	return r, nil
}

// Index is the reactor's position in its Set, 0-based.
func (r *Reactor) Index() int { return r.index }

// Core is the CPU the reactor is pinned to.
func (r *Reactor) Core() int { return r.core }

// Mode is the configured idle policy.
func (r *Reactor) Mode() Mode { return r.opts.Mode }

// Clock is the reactor's clock.
func (r *Reactor) Clock() Clock { return r.opts.Clock }

// Logger is the reactor's logger, with reactor and core attributes.
func (r *Reactor) Logger() *slog.Logger { return r.log }

// IsCurrent reports whether the caller runs on r's thread. It costs a
// gettid system call: for assertions and control-plane branching, not for
// the I/O path.
func (r *Reactor) IsCurrent() bool { return int32(unix.Gettid()) == r.tid.Load() }

// AssertCurrent panics unless the caller runs on r's thread. A no-op unless
// invariants.Enabled.
func (r *Reactor) AssertCurrent() {
	if invariants.Enabled && !r.IsCurrent() {
		panic(fmt.Sprintf("reactors: owner-only call off reactor %d (tid %d, reactor tid %d)",
			r.index, unix.Gettid(), r.tid.Load()))
	}
}

// Post enqueues m for delivery on r. It never blocks and does not allocate;
// ErrRingFull is backpressure, ErrStopped means r is shutting down.
func (r *Reactor) Post(m Message) error {
	if r.stopping.Load() {
		return ErrStopped
	}
	if !r.ring.Push(m) {
		r.ringFull.Add(1)
		return ErrRingFull
	}
	r.wake()
	return nil
}

// Schedule enqueues m and never fails while r runs: a full ring spills m to
// a counted overflow list (the only allocation a post can make). It is for
// actor mailboxes, which must never drop and never block. After Stop it
// returns ErrStopped.
func (r *Reactor) Schedule(m Message) error {
	if r.stopping.Load() {
		return ErrStopped
	}
	if r.ring.Push(m) {
		r.wake()
		return nil
	}
	r.overflowMu.Lock()
	r.overflow = append(r.overflow, m)
	r.hasOverflow.Store(true)
	r.overflowMu.Unlock()
	r.overflowed.Add(1)
	r.wake()
	return nil
}

// wake writes the eventfd when r sleeps and nobody else has (R2).
func (r *Reactor) wake() {
	if r.sleeping.Load() && r.wakePending.CompareAndSwap(false, true) {
		var one = [8]byte{1}
		if _, err := unix.Write(r.eventFD, one[:]); err != nil && err != unix.EAGAIN {
			// EAGAIN: the counter is saturated, so r is awake anyway.
			panic(fmt.Sprintf("reactors: reactor %d: eventfd write: %v", r.index, err))
		}
	}
}

// funcMessage runs a closure; PostFunc's allocation is fine on the control
// plane, never on the I/O path.
type funcMessage func()

func (f funcMessage) Deliver() { f() }

// PostFunc posts fn to run on r. It allocates: control plane only.
func (r *Reactor) PostFunc(fn func()) error { return r.Schedule(funcMessage(fn)) }

// Call runs fn on r and waits for it to return. For the control plane from
// goroutines that are not reactors; called on r itself, fn runs in place.
// Calling it from another reactor would block that reactor: a bug.
func (r *Reactor) Call(fn func()) error {
	if r.IsCurrent() {
		fn()
		return nil
	}
	done := make(chan any, 1)
	err := r.PostFunc(func() {
		defer func() { done <- recover() }()
		fn()
	})
	if err != nil {
		return err
	}
	select {
	case v := <-done:
		if v != nil {
			return fmt.Errorf("reactor %d: call panicked: %v", r.index, v)
		}
		return nil
	case <-r.done:
		return ErrStopped
	}
}

// AddPoller registers p to run on every turn. Owner only.
func (r *Reactor) AddPoller(name string, p Poller, onPanic PanicFunc) *PollerHandle {
	r.AssertCurrent()
	h := &PollerHandle{name: name, poller: p, onPanic: onPanic}
	r.pollers = append(r.pollers, h)
	r.publishPollers()
	return h
}

// AddTimer registers p to run every period (first run one period from now).
// Owner only.
func (r *Reactor) AddTimer(name string, period time.Duration, p Poller, onPanic PanicFunc) *PollerHandle {
	r.AssertCurrent()
	if period <= 0 {
		panic(fmt.Sprintf("reactors: timer %q period %v, want > 0", name, period))
	}
	h := &PollerHandle{name: name, poller: p, onPanic: onPanic, period: period}
	h.next = r.opts.Clock.Now() + period
	r.timers = append(r.timers, h)
	r.publishPollers()
	return h
}

// RemovePoller unregisters a poller or timer; it never runs again (R3).
// Owner only. Removing twice is harmless.
func (r *Reactor) RemovePoller(h *PollerHandle) {
	r.AssertCurrent()
	if h.removed {
		return
	}
	h.removed = true
	r.pollers = without(r.pollers, h)
	r.timers = without(r.timers, h)
	r.publishPollers()
}

func without(list []*PollerHandle, h *PollerHandle) []*PollerHandle {
	for i, x := range list {
		if x == h {
			// A fresh slice: runPollers may be iterating the old one.
			out := make([]*PollerHandle, 0, len(list)-1)
			out = append(out, list[:i]...)
			return append(out, list[i+1:]...)
		}
	}
	return list
}

func (r *Reactor) publishPollers() {
	view := make([]*PollerHandle, 0, len(r.pollers)+len(r.timers))
	view = append(view, r.pollers...)
	view = append(view, r.timers...)
	r.pollerView.Store(&view)
}

// WatchFD makes readiness of fd (events: unix.EPOLLIN, EPOLLOUT…) wake r
// from sleep. The reactor does not read fd: its poller does, on the next
// turn. Level-triggered, so readiness that arrives while r is deciding to
// sleep is not lost. Owner only.
func (r *Reactor) WatchFD(fd int, events uint32) error {
	r.AssertCurrent()
	op := unix.EPOLL_CTL_ADD
	if r.watched[fd] {
		op = unix.EPOLL_CTL_MOD
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(r.epollFD, op, fd, &ev); err != nil {
		return fmt.Errorf("reactor %d: watch fd %d: %w", r.index, fd, err)
	}
	r.watched[fd] = true
	return nil
}

// UnwatchFD stops fd from waking r. Call it before closing fd. Owner only.
func (r *Reactor) UnwatchFD(fd int) error {
	r.AssertCurrent()
	if !r.watched[fd] {
		return nil
	}
	delete(r.watched, fd)
	if err := unix.EpollCtl(r.epollFD, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return fmt.Errorf("reactor %d: unwatch fd %d: %w", r.index, fd, err)
	}
	return nil
}

// start launches the loop's goroutine and waits until it is pinned.
func (r *Reactor) start() error {
	go r.run()
	return <-r.started
}

func (r *Reactor) run() {
	runtime.LockOSThread() // never unlocked: the thread dies with the loop
	defer close(r.done)
	defer r.closeFDs()
	r.tid.Store(int32(unix.Gettid()))
	if !r.opts.NoPin {
		var set unix.CPUSet
		set.Set(r.core)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			r.started <- fmt.Errorf("reactor %d: pin to core %d: %w", r.index, r.core, err)
			return
		}
	}
	r.started <- nil
	r.loop()
}

func (r *Reactor) closeFDs() {
	unix.Close(r.epollFD)
	unix.Close(r.eventFD)
}

// loop is the reactor: messages, pollers, timers, and the idle policy.
func (r *Reactor) loop() {
	clock := r.opts.Clock
	now := clock.Now()
	r.lastWork = now
	busyTurns := 0 // busy turns since the clock was last read
	for {
		work := r.drainRing()
		work += r.runPollers()
		if len(r.timers) > 0 {
			work += r.runTimers(now)
		}
		r.loops.Add(1)
		if work > 0 {
			// Reading the clock costs more than a short turn on some VMs
			// (clock_gettime without a usable TSC), so a busy reactor
			// without timers reads it once per clockTurnsMax turns and
			// counts the whole stretch as busy; an idle turn always reads
			// it, to decide on sleep, and so does every turn while timers
			// are registered, so a timer never fires late by turns.
			busyTurns++
			if busyTurns < clockTurnsMax && len(r.timers) == 0 {
				continue
			}
		}
		after := clock.Now()
		if busyTurns > 0 {
			busyTurns = 0
			r.busy.Add(int64(after - now))
			r.lastWork = after
		} else {
			r.idle.Add(int64(after - now))
			if r.stopping.Load() && r.ring.Empty() && !r.hasOverflow.Load() {
				return
			}
			if r.opts.Mode == ModeAdaptive && after-r.lastWork >= r.opts.IdleAfter {
				r.sleep(after)
				slept := clock.Now()
				r.idle.Add(int64(slept - after))
				after = slept
			}
		}
		now = after
	}
}

// drainRing delivers what was queued when it started, at most ringBatchMax
// messages, then what spilled to the overflow list. A message posted during
// the drain (a mailbox rescheduling itself after its budget) waits for the
// next turn, so the pollers run in between.
func (r *Reactor) drainRing() int {
	limit := min(r.ring.Len(), ringBatchMax)
	n := 0
	for n < limit {
		m, ok := r.ring.Pop()
		if !ok {
			break
		}
		r.deliver(m)
		n++
	}
	if r.hasOverflow.Load() {
		n += r.drainOverflow()
	}
	if n > 0 {
		r.delivered.Add(uint64(n))
	}
	return n
}

func (r *Reactor) drainOverflow() int {
	r.overflowMu.Lock()
	r.spill, r.overflow = r.overflow, r.spill[:0]
	r.hasOverflow.Store(false)
	r.overflowMu.Unlock()
	for i, m := range r.spill {
		r.spill[i] = nil
		r.deliver(m)
	}
	return len(r.spill)
}

// deliver runs one message under recover: a panicking message is counted,
// logged and told through PanicDeliverer if it implements it.
func (r *Reactor) deliver(m Message) {
	defer func() {
		if v := recover(); v != nil {
			r.panics.Add(1)
			r.log.Error("message panicked", "type", fmt.Sprintf("%T", m), "panic", v)
			if pd, ok := m.(PanicDeliverer); ok {
				r.safely(func() { pd.DeliverPanicked(v) })
			}
		}
	}()
	m.Deliver()
}

// PanicDeliverer is implemented by messages whose sender wants to know that
// Deliver panicked (to fail the I/O it carried, say).
type PanicDeliverer interface {
	DeliverPanicked(v any)
}

// safely runs a panic handler; a handler that panics too is only logged.
func (r *Reactor) safely(fn func()) {
	defer func() {
		if v := recover(); v != nil {
			r.panics.Add(1)
			r.log.Error("panic handler panicked", "panic", v)
		}
	}()
	fn()
}

func (r *Reactor) runPollers() int {
	work := 0
	for _, h := range r.pollers {
		if !h.removed {
			work += r.runPoller(h)
		}
	}
	return work
}

func (r *Reactor) runTimers(now time.Duration) int {
	work := 0
	for _, h := range r.timers {
		if h.removed || now < h.next {
			continue
		}
		h.next = now + h.period
		work += r.runPoller(h)
	}
	return work
}

// runPoller runs one poller under recover; a panicking poller is removed
// and its PanicFunc told.
func (r *Reactor) runPoller(h *PollerHandle) (n int) {
	defer func() {
		if v := recover(); v != nil {
			r.panics.Add(1)
			r.log.Error("poller panicked; removed", "poller", h.name, "panic", v)
			r.RemovePoller(h)
			if h.onPanic != nil {
				r.safely(func() { h.onPanic(v) })
			}
			n = 1
		}
	}()
	n = h.poller.Poll()
	h.runs.Add(1)
	if n > 0 {
		h.work.Add(uint64(n))
	}
	return n
}

// sleep waits in epoll_wait until a post, fd readiness, or the next timer.
func (r *Reactor) sleep(now time.Duration) {
	timeout := -1
	for _, h := range r.timers {
		due := h.next - now
		if due < sleepTimerSlack {
			return // a timer is due too soon to sleep for
		}
		if ms := int(due / time.Millisecond); timeout < 0 || ms < timeout {
			timeout = ms
		}
	}
	r.sleeping.Store(true)
	// R2: "sleeping" is published before this last check.
	if !r.ring.Empty() || r.hasOverflow.Load() || r.stopping.Load() {
		r.sleeping.Store(false)
		return
	}
	r.sleeps.Add(1)
	n, err := unix.EpollWait(r.epollFD, r.events[:], timeout)
	r.sleeping.Store(false)
	if err != nil && err != unix.EINTR {
		panic(fmt.Sprintf("reactors: reactor %d: epoll_wait: %v", r.index, err))
	}
	for i := 0; i < n; i++ {
		if int(r.events[i].Fd) == r.eventFD {
			var buf [8]byte
			unix.Read(r.eventFD, buf[:])
			// After the read, not before: a post between read and reset has
			// its write still pending in the eventfd (R2).
			r.wakePending.Store(false)
		}
	}
	r.wakeups.Add(1)
	r.lastWork = r.opts.Clock.Now() // a wake-up is activity: poll a while before sleeping again
}

// stop asks the loop to finish what is queued and exit.
func (r *Reactor) stop() {
	r.stopping.Store(true)
	if r.wakePending.CompareAndSwap(false, true) {
		var one = [8]byte{1}
		unix.Write(r.eventFD, one[:])
	}
}

// Done is closed when the loop has exited and its fds are closed (R4).
func (r *Reactor) Done() <-chan struct{} { return r.done }

// Stats is a snapshot of a reactor for the debug endpoint.
type Stats struct {
	Index      int           `json:"index"`
	Core       int           `json:"core"`
	Mode       string        `json:"mode"`
	State      string        `json:"state"` // "polling" or "sleeping"
	Busy       time.Duration `json:"busy_ns"`
	Idle       time.Duration `json:"idle_ns"`
	Loops      uint64        `json:"loops"`
	Sleeps     uint64        `json:"sleeps"`
	Wakeups    uint64        `json:"wakeups"`
	RingDepth  int           `json:"ring_depth"`
	RingSize   int           `json:"ring_size"`
	Posted     uint64        `json:"posted"` // through the ring or the overflow list
	RingFull   uint64        `json:"ring_full"`
	Overflowed uint64        `json:"overflowed"`
	Delivered  uint64        `json:"delivered"`
	Panics     uint64        `json:"panics"`
	Pollers    []PollerStats `json:"pollers"`
}

// Stats reads r's counters. Any goroutine.
func (r *Reactor) Stats() Stats {
	state := "polling"
	if r.sleeping.Load() {
		state = "sleeping"
	}
	view := *r.pollerView.Load()
	pollers := make([]PollerStats, len(view))
	for i, h := range view {
		pollers[i] = h.stats()
	}
	return Stats{
		Index: r.index, Core: r.core, Mode: r.opts.Mode.String(), State: state,
		Busy: time.Duration(r.busy.Load()), Idle: time.Duration(r.idle.Load()),
		Loops: r.loops.Load(), Sleeps: r.sleeps.Load(), Wakeups: r.wakeups.Load(),
		RingDepth: r.ring.Len(), RingSize: r.ring.Cap(),
		Posted: r.ring.Pushed() + r.overflowed.Load(), RingFull: r.ringFull.Load(), Overflowed: r.overflowed.Load(),
		Delivered: r.delivered.Load(), Panics: r.panics.Load(), Pollers: pollers,
	}
}
