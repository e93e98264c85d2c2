package actors

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/sluice-storage/sluice/reactors"
)

const waitTimeout = 10 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestSystem(t testing.TB, n int, mode reactors.Mode, budget int) *System {
	t.Helper()
	cores := make([]int, n)
	set, err := reactors.Start(cores, reactors.Options{Mode: mode, NoPin: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	sys := NewSystem(set, Options{Logger: quietLogger(), Budget: budget})
	t.Cleanup(func() {
		if err := sys.Shutdown(waitTimeout); err != nil {
			t.Error(err)
		}
		if err := set.Stop(waitTimeout); err != nil {
			t.Error(err)
		}
	})
	return sys
}

func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

type seqMsg struct{ n int }

func TestHandlerRunsOnItsReactorInOrder(t *testing.T) {
	sys := newTestSystem(t, 2, reactors.ModeAdaptive, 0)
	r := sys.Reactors().Get(1)
	const n = 5000 // well past mailboxRingSize, so the overflow list is used
	gate := make(chan struct{})
	done := make(chan error, 1)
	next := 0
	pid, err := sys.SpawnOn(1, "ordered", func() actor.Actor {
		return actor.ReceiveFunc(func(c actor.Context) {
			switch m := c.Message().(type) {
			case string:
				<-gate // hold the actor so the mailbox fills up
			case *seqMsg:
				if !r.IsCurrent() {
					done <- errorf("message %d handled off reactor 1", m.n)
					return
				}
				if m.n != next {
					done <- errorf("got message %d, want %d (A2)", m.n, next)
					return
				}
				next++
				if next == n {
					done <- nil
				}
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	sys.Root().Send(pid, "hold")
	for i := 0; i < n; i++ {
		sys.Root().Send(pid, &seqMsg{n: i})
	}
	close(gate)
	if err := recv(t, done, "all messages"); err != nil {
		t.Fatal(err)
	}
	// The mailbox adds a turn's count once the turn ends, after the handler that sent done:
	// wait for the last turn's.
	deadline := time.Now().Add(10 * time.Second)
	st := findActor(t, sys, "ordered")
	for st.Processed < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		st = findActor(t, sys, "ordered")
	}
	if st.Overflowed == 0 || st.HighWater < n {
		t.Fatalf("stats %+v: want overflow used and high water ≥ %d", st, n)
	}
	if st.Processed < n {
		t.Fatalf("processed %d, want ≥ %d", st.Processed, n)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func errorf(format string, args ...any) error {
	return errorString(strings.TrimSpace(sprintf(format, args...)))
}

func findActor(t *testing.T, sys *System, name string) ActorStats {
	t.Helper()
	for _, a := range sys.Stats() {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("actor %q not in stats %+v", name, sys.Stats())
	return ActorStats{}
}

func TestTurnBudgetYieldsToPollers(t *testing.T) {
	const budget, n = 4, 200
	sys := newTestSystem(t, 1, reactors.ModePoll, budget)
	r := sys.Reactors().Get(0)
	var polls atomic.Int64
	r.Call(func() {
		r.AddPoller("count", reactors.PollFunc(func() int { polls.Add(1); return 0 }), nil)
	})
	seen := make([]int64, 0, n)
	gate := make(chan struct{})
	done := make(chan struct{})
	pid, _ := sys.SpawnOn(0, "budgeted", func() actor.Actor {
		return actor.ReceiveFunc(func(c actor.Context) {
			switch c.Message().(type) {
			case string:
				<-gate
			case *seqMsg:
				seen = append(seen, polls.Load())
				if len(seen) == n {
					close(done)
				}
			}
		})
	})
	sys.Root().Send(pid, "hold")
	for i := 0; i < n; i++ {
		sys.Root().Send(pid, &seqMsg{n: i})
	}
	close(gate)
	recv(t, done, "all messages")
	// Within one turn the poller cannot run, so at most budget messages see
	// the same poll count (A3).
	run := 1
	for i := 1; i < len(seen); i++ {
		if seen[i] == seen[i-1] {
			run++
			if run > budget {
				t.Fatalf("%d messages in a row without a poller run; budget is %d", run, budget)
			}
		} else {
			run = 1
		}
	}
}

func TestPanicIsEscalatedAndActorRestarts(t *testing.T) {
	sys := newTestSystem(t, 1, reactors.ModeAdaptive, 0)
	var starts atomic.Int64
	got := make(chan string, 4)
	pid, err := sys.SpawnOn(0, "fragile", func() actor.Actor {
		return actor.ReceiveFunc(func(c actor.Context) {
			switch m := c.Message().(type) {
			case *actor.Started:
				starts.Add(1)
			case string:
				if m == "boom" {
					panic("boom")
				}
				got <- m
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	sys.Root().Send(pid, "boom")
	sys.Root().Send(pid, "after")
	if m := recv(t, got, "a message after the panic"); m != "after" {
		t.Fatalf("got %q, want after", m)
	}
	if starts.Load() != 2 {
		t.Fatalf("actor started %d times, want 2 (one restart)", starts.Load())
	}
	st := findActor(t, sys, "fragile")
	if st.Restarts != 1 || st.Panics != 1 || st.Suspended {
		t.Fatalf("stats %+v: want 1 restart, 1 panic, not suspended", st)
	}
}

func TestStoppedActorLeavesRegistry(t *testing.T) {
	sys := newTestSystem(t, 1, reactors.ModeAdaptive, 0)
	started := make(chan struct{})
	pid, _ := sys.SpawnOn(0, "brief", func() actor.Actor {
		return actor.ReceiveFunc(func(c actor.Context) {
			if _, ok := c.Message().(*actor.Started); ok {
				close(started)
			}
		})
	})
	recv(t, started, "Started")
	waitListed(t, sys, "brief", true)
	if err := sys.Root().StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	waitListed(t, sys, "brief", false)
}

// waitListed polls the registry until name is (or is not) listed: the
// registry follows system messages handled on the reactor.
func waitListed(t *testing.T, sys *System, name string, listed bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		found := false
		for _, a := range sys.Stats() {
			found = found || a.Name == name
		}
		if found == listed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("actor %q listed = %v, want %v: %+v", name, found, listed, sys.Stats())
		}
		time.Sleep(time.Millisecond) // test goroutine, not a reactor
	}
}

func TestSpawnOnBadReactor(t *testing.T) {
	sys := newTestSystem(t, 1, reactors.ModeAdaptive, 0)
	if _, err := sys.SpawnOn(3, "x", func() actor.Actor { return actor.ReceiveFunc(func(actor.Context) {}) }); err == nil {
		t.Fatal("spawn on reactor 3 of 1 succeeded")
	}
}

type fakeSource struct{}

func (fakeSource) Name() string  { return "things" }
func (fakeSource) Snapshot() any { return []struct{ A int }{{A: 7}} }
func (fakeSource) WriteMetrics(w *MetricsWriter) {
	w.Family("sluice_things_total", "Things.", false)
	w.Sample(7, "thing", `a"b`)
}

func TestDebugEndpoint(t *testing.T) {
	sys := newTestSystem(t, 2, reactors.ModeAdaptive, 0)
	sys.SpawnOn(1, "visible", func() actor.Actor { return actor.ReceiveFunc(func(actor.Context) {}) })
	waitListed(t, sys, "visible", true)
	d := NewDebug(sys)
	if err := d.Register(fakeSource{}); err != nil {
		t.Fatal(err)
	}
	if err := d.Register(fakeSource{}); err == nil {
		t.Fatal("duplicate source accepted")
	}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	get := func(path, accept string) string {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	var actors []ActorStats
	if err := json.Unmarshal([]byte(get("/debug/actors", "")), &actors); err != nil {
		t.Fatal(err)
	}
	if len(actors) != 1 || actors[0].Name != "visible" || actors[0].Reactor != 1 {
		t.Fatalf("/debug/actors = %+v", actors)
	}
	if h := get("/debug/actors", "text/html"); !strings.Contains(h, "<td>visible</td>") {
		t.Fatalf("HTML view lacks the actor row: %s", h)
	}
	var rs []reactors.Stats
	if err := json.Unmarshal([]byte(get("/debug/reactors", "")), &rs); err != nil || len(rs) != 2 {
		t.Fatalf("/debug/reactors: %v %+v", err, rs)
	}
	if s := get("/debug/things", ""); !strings.Contains(s, `"A": 7`) {
		t.Fatalf("/debug/things = %s", s)
	}
	m := get("/metrics", "")
	for _, want := range []string{
		"# TYPE sluice_reactor_loops_total counter",
		`sluice_reactor_loops_total{reactor="1",core="0"}`,
		`sluice_actor_processed_total{actor="visible",core="0"}`,
		`sluice_things_total{thing="a\"b"} 7`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if p := get("/debug/pprof/", ""); !strings.Contains(p, "goroutine") {
		t.Fatal("/debug/pprof/ does not list profiles")
	}
}

// pinger bounces a message with a partner actor on the same reactor.
type bounce struct {
	left int
	done chan struct{}
}

func BenchmarkActorMessageSameReactor(b *testing.B) {
	sys := newTestSystem(b, 1, reactors.ModePoll, 0)
	var a, c *actor.PID
	handler := func(other **actor.PID) actor.Producer {
		return func() actor.Actor {
			return actor.ReceiveFunc(func(ctx actor.Context) {
				if m, ok := ctx.Message().(*bounce); ok {
					m.left--
					if m.left <= 0 {
						close(m.done)
						return
					}
					ctx.Send(*other, m)
				}
			})
		}
	}
	a, _ = sys.SpawnOn(0, "a", handler(&c))
	c, _ = sys.SpawnOn(0, "c", handler(&a))
	m := &bounce{left: b.N, done: make(chan struct{})}
	b.ReportAllocs()
	b.ResetTimer()
	sys.Root().Send(a, m)
	<-m.done
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
