package reactors

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitTimeout bounds every wait in these tests; hitting it is a failure,
// never a measurement.
const waitTimeout = 10 * time.Second

func startOne(t testing.TB, opts Options) *Reactor {
	t.Helper()
	opts.NoPin = true
	s, err := Start([]int{0}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(waitTimeout); err != nil {
			t.Error(err)
		}
	})
	return s.Get(0)
}

func wait(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

type manualClock struct{ now atomic.Int64 }

func (c *manualClock) Now() time.Duration      { return time.Duration(c.now.Load()) }
func (c *manualClock) Advance(d time.Duration) { c.now.Add(int64(d)) }

type countMsg struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (m *countMsg) Deliver() {
	if m.n.Add(1) == m.want {
		close(m.done)
	}
}

func TestPostDelivers(t *testing.T) {
	for _, mode := range []Mode{ModeAdaptive, ModePoll} {
		t.Run(mode.String(), func(t *testing.T) {
			r := startOne(t, Options{Mode: mode})
			m := &countMsg{want: 1000, done: make(chan struct{})}
			for i := 0; i < 1000; i++ {
				for {
					err := r.Post(m)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrRingFull) {
						t.Fatal(err)
					}
				}
			}
			wait(t, m.done, "1000 messages")
		})
	}
}

func TestPostRingFullIsReported(t *testing.T) {
	r := startOne(t, Options{RingSize: 8})
	block := make(chan struct{})
	entered := make(chan struct{})
	if err := r.PostFunc(func() { close(entered); <-block }); err != nil {
		t.Fatal(err)
	}
	wait(t, entered, "the blocking message")
	m := &countMsg{want: 8, done: make(chan struct{})}
	for i := 0; i < 8; i++ {
		if err := r.Post(m); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	if err := r.Post(m); !errors.Is(err, ErrRingFull) {
		t.Fatalf("post onto a full ring: %v, want ErrRingFull", err)
	}
	close(block)
	wait(t, m.done, "the queued messages")
	if st := r.Stats(); st.RingFull != 1 {
		t.Fatalf("RingFull = %d, want 1", st.RingFull)
	}
}

func TestScheduleOverflowsNeverDrops(t *testing.T) {
	r := startOne(t, Options{RingSize: 8})
	block := make(chan struct{})
	entered := make(chan struct{})
	r.PostFunc(func() { close(entered); <-block })
	wait(t, entered, "the blocking message")
	const n = 100
	m := &countMsg{want: n, done: make(chan struct{})}
	for i := 0; i < n; i++ {
		if err := r.Schedule(m); err != nil {
			t.Fatal(err)
		}
	}
	close(block)
	wait(t, m.done, "every scheduled message")
	if st := r.Stats(); st.Overflowed != n-8 {
		t.Fatalf("Overflowed = %d, want %d", st.Overflowed, n-8)
	}
}

func TestPollersRunAndRemove(t *testing.T) {
	r := startOne(t, Options{Mode: ModePoll})
	var runs atomic.Int64
	done := make(chan struct{})
	var h *PollerHandle
	r.Call(func() {
		h = r.AddPoller("count", PollFunc(func() int {
			if runs.Add(1) == 100 {
				close(done)
			}
			return 0
		}), nil)
	})
	wait(t, done, "100 poller runs")
	r.Call(func() { r.RemovePoller(h) })
	before := runs.Load()
	r.Call(func() {}) // a full turn has passed since removal
	r.Call(func() {})
	if after := runs.Load(); after != before {
		t.Fatalf("removed poller ran %d more times (R3)", after-before)
	}
	if st := r.Stats(); len(st.Pollers) != 0 {
		t.Fatalf("stats list %d pollers after removal", len(st.Pollers))
	}
}

func TestTimersFollowTheClock(t *testing.T) {
	clock := &manualClock{}
	r := startOne(t, Options{Mode: ModePoll, Clock: clock})
	fired := make(chan struct{}, 10)
	r.Call(func() {
		r.AddTimer("tick", 10*time.Millisecond, PollFunc(func() int { fired <- struct{}{}; return 1 }), nil)
	})
	r.Call(func() {})
	select {
	case <-fired:
		t.Fatal("timer fired before its period passed on the clock")
	default:
	}
	clock.Advance(10 * time.Millisecond)
	select {
	case <-fired:
	case <-time.After(waitTimeout):
		t.Fatal("timer did not fire after the clock passed its period")
	}
}

func TestPollerPanicIsContained(t *testing.T) {
	r := startOne(t, Options{Mode: ModePoll})
	told := make(chan any, 1)
	var healthy atomic.Int64
	r.Call(func() {
		r.AddPoller("bad", PollFunc(func() int { panic("boom") }), func(v any) { told <- v })
		r.AddPoller("good", PollFunc(func() int { healthy.Add(1); return 0 }), nil)
	})
	select {
	case v := <-told:
		if v != "boom" {
			t.Fatalf("PanicFunc got %v, want boom", v)
		}
	case <-time.After(waitTimeout):
		t.Fatal("PanicFunc not called")
	}
	before := healthy.Load()
	r.Call(func() {})
	r.Call(func() {})
	if healthy.Load() == before {
		t.Fatal("the healthy poller stopped running after its neighbour panicked")
	}
	st := r.Stats()
	if st.Panics != 1 || len(st.Pollers) != 1 || st.Pollers[0].Name != "good" {
		t.Fatalf("stats after panic: panics %d, pollers %+v", st.Panics, st.Pollers)
	}
}

type panicMsg struct{ told chan any }

func (m *panicMsg) Deliver()              { panic("bad message") }
func (m *panicMsg) DeliverPanicked(v any) { m.told <- v }

func TestMessagePanicIsContained(t *testing.T) {
	r := startOne(t, Options{})
	m := &panicMsg{told: make(chan any, 1)}
	if err := r.Post(m); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.told:
	case <-time.After(waitTimeout):
		t.Fatal("DeliverPanicked not called")
	}
	ok := &countMsg{want: 1, done: make(chan struct{})}
	r.Post(ok)
	wait(t, ok.done, "a message after the panic")
	if err := r.Call(func() { panic("in call") }); err == nil {
		t.Fatal("Call of a panicking func returned nil")
	}
}

func TestAdaptiveSleepsAndWakes(t *testing.T) {
	r := startOne(t, Options{Mode: ModeAdaptive, IdleAfter: 50 * time.Microsecond})
	waitSleeping(t, r)
	// A post wakes it.
	m := &countMsg{want: 1, done: make(chan struct{})}
	r.Post(m)
	wait(t, m.done, "a post to a sleeping reactor")
	waitSleeping(t, r)

	// Readiness of a watched fd wakes it, and its poller then runs.
	p := make([]int, 2)
	if err := unix.Pipe2(p, unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	got := make(chan struct{})
	r.Call(func() {
		if err := r.WatchFD(p[0], unix.EPOLLIN); err != nil {
			t.Error(err)
		}
		r.AddPoller("pipe", PollFunc(func() int {
			var b [1]byte
			if n, _ := unix.Read(p[0], b[:]); n == 1 {
				close(got)
				return 1
			}
			return 0
		}), nil)
	})
	waitSleeping(t, r)
	wakeups := r.Stats().Wakeups
	unix.Write(p[1], []byte{1})
	wait(t, got, "the poller after fd readiness")
	if r.Stats().Wakeups == wakeups {
		t.Fatal("fd readiness did not count a wake-up")
	}
	r.Call(func() { r.UnwatchFD(p[0]) })
}

// waitSleeping waits, by polling the stats, until r has gone to sleep.
func waitSleeping(t *testing.T, r *Reactor) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for r.Stats().State != "sleeping" {
		if time.Now().After(deadline) {
			t.Fatalf("adaptive reactor never slept: %+v", r.Stats())
		}
		runtime.Gosched()
	}
}

func TestPollModeNeverSleeps(t *testing.T) {
	r := startOne(t, Options{Mode: ModePoll, IdleAfter: time.Microsecond})
	for i := 0; i < 1000; i++ {
		r.Call(func() {})
	}
	if st := r.Stats(); st.Sleeps != 0 {
		t.Fatalf("poll-mode reactor slept %d times", st.Sleeps)
	}
}

func TestStopDeliversQueuedAndClosesFDs(t *testing.T) {
	s, err := Start([]int{0}, Options{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Get(0)
	m := &countMsg{want: 100, done: make(chan struct{})}
	for i := 0; i < 100; i++ {
		r.Post(m)
	}
	if err := s.Stop(waitTimeout); err != nil {
		t.Fatal(err)
	}
	wait(t, m.done, "queued messages delivered before stop")
	if err := r.Post(m); !errors.Is(err, ErrStopped) {
		t.Fatalf("post after stop: %v, want ErrStopped", err)
	}
}

func TestPinsToCore(t *testing.T) {
	cores, err := AllowedCores()
	if err != nil {
		t.Fatal(err)
	}
	last := cores[len(cores)-1]
	s, err := Start([]int{last}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(waitTimeout)
	var got unix.CPUSet
	s.Get(0).Call(func() { unix.SchedGetaffinity(0, &got) })
	if got.Count() != 1 || !got.IsSet(last) {
		t.Fatalf("reactor affinity %v, want only core %d", got, last)
	}
	if _, err := Start([]int{4095}, Options{}); err == nil {
		t.Fatal("starting a reactor on core 4095 succeeded")
	}
}

func TestPostAllocatesNothing(t *testing.T) {
	r := startOne(t, Options{Mode: ModePoll})
	m := &countMsg{want: -1}
	allocs := testing.AllocsPerRun(1000, func() {
		for r.Post(m) != nil {
		}
	})
	if allocs != 0 {
		t.Fatalf("Post allocates %.1f times per message, want 0", allocs)
	}
}
