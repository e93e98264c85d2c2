package reactors

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// startPair starts two pinned polling reactors on the first two allowed
// cores (or both on one core if there is only one).
func startPair(b *testing.B, mode Mode) *Set {
	b.Helper()
	cores, err := AllowedCores()
	if err != nil {
		b.Fatal(err)
	}
	pair := []int{cores[0], cores[0]}
	if len(cores) > 1 {
		pair[1] = cores[1]
	}
	s, err := Start(pair, Options{Mode: mode, IdleAfter: 200 * time.Microsecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Stop(waitTimeout) })
	return s
}

// BenchmarkPostBatched: one goroutine posts to a polling reactor on another
// core as fast as the ring takes it; ns per message delivered.
func BenchmarkPostBatched(b *testing.B) {
	s := startPair(b, ModePoll)
	r := s.Get(1)
	m := &countMsg{want: int64(b.N), done: make(chan struct{})}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r.Post(m) != nil {
		}
	}
	<-m.done
}

// pingPong bounces between two reactors: each delivery posts it to the other.
type pingPong struct {
	a, b *Reactor
	left atomic.Int64
	at   *Reactor
	done chan struct{}
}

func (p *pingPong) Deliver() {
	if p.left.Add(-1) <= 0 {
		close(p.done)
		return
	}
	next := p.a
	if p.at == p.a {
		next = p.b
	}
	p.at = next
	if next.Post(p) != nil {
		panic("ping-pong ring full")
	}
}

// BenchmarkPingPongCrossReactor: ns per hop between two polling reactors.
func BenchmarkPingPongCrossReactor(b *testing.B) {
	s := startPair(b, ModePoll)
	p := &pingPong{a: s.Get(0), b: s.Get(1), done: make(chan struct{})}
	p.left.Store(int64(b.N) + 1)
	p.at = p.a
	b.ReportAllocs()
	b.ResetTimer()
	p.a.Post(p)
	<-p.done
}

// BenchmarkPingPongSameReactor: ns per hop when a reactor posts to itself.
func BenchmarkPingPongSameReactor(b *testing.B) {
	s := startPair(b, ModePoll)
	p := &pingPong{a: s.Get(0), b: s.Get(0), done: make(chan struct{})}
	p.left.Store(int64(b.N) + 1)
	p.at = p.a
	b.ReportAllocs()
	b.ResetTimer()
	p.a.Post(p)
	<-p.done
}

type stampMsg struct {
	clock Clock
	sent  time.Duration
	lat   time.Duration
	done  chan struct{}
}

func (m *stampMsg) Deliver() {
	m.lat = m.clock.Now() - m.sent
	m.done <- struct{}{}
}

// BenchmarkWakeUp: latency from posting to a sleeping adaptive reactor to
// the message running on it (reported as wake-ns; ns/op includes waiting
// for the reactor to fall asleep again).
func BenchmarkWakeUp(b *testing.B) {
	s := startPair(b, ModeAdaptive)
	r := s.Get(1)
	m := &stampMsg{clock: r.Clock(), done: make(chan struct{}, 1)}
	var total time.Duration
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for r.Stats().State != "sleeping" {
			runtime.Gosched()
		}
		m.sent = r.Clock().Now()
		r.Post(m)
		<-m.done
		total += m.lat
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "wake-ns")
}
