package delay

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/drivers/null"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage/stagetest"
)

// completions hands IOs to the test goroutine.
type completions chan *bdev.IO

func (c completions) Complete(io *bdev.IO) { c <- io }

// TestLatencyFollowsTheClock: a read waits its latency on the injected
// clock, not a moment less (D1), and every 100th read waits the p99.
func TestLatencyFollowsTheClock(t *testing.T) {
	clock := &stagetest.ManualClock{}
	s := stagetest.NewStack(t, 1, malloc.Driver{}, reactors.Options{Mode: reactors.ModePoll, Clock: clock})
	s.Disks(t, 512, 128, "M0")
	cfg := Config{Name: "D0", Base: "M0"}
	cfg.Latencies[bdev.IORead] = Latency{Avg: 100 * time.Microsecond, P99: time.Millisecond}
	st, err := New(s.Reg, cfg)
	s.Add(t, st, err)
	d, err := s.Reg.Open("D0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := s.Set.Get(0)
	ch := stagetest.Channel(t, r, d)
	done := make(completions, 1)
	var buf []byte
	r.Call(func() { buf = ch.Local().AllocBuf(512) })
	defer r.Call(func() { ch.Local().FreeBuf(buf) })
	read := func(i int) (waited time.Duration) {
		t.Helper()
		start := clock.Now()
		r.Call(func() {
			io := ch.AllocIO()
			io.Type, io.OffsetBlocks, io.Blocks, io.Completer = bdev.IORead, uint64(i%128), 1, done
			io.SetBuf(buf)
			ch.Submit(io)
		})
		for {
			s.Turns(t)
			select {
			case io := <-done:
				if io.Status != bdev.StatusSuccess {
					t.Fatalf("read %d: %v", i, io.Status)
				}
				r.Call(io.Free)
				return clock.Now() - start
			default:
			}
			clock.Advance(10 * time.Microsecond)
		}
	}
	for i := 1; i <= 100; i++ {
		w := read(i)
		want := 100 * time.Microsecond
		if i == p99Every {
			want = time.Millisecond
		}
		if w < want || w > want+30*time.Microsecond {
			t.Fatalf("read %d waited %v on the clock, want %v (+ the timer's resolution)", i, w, want)
		}
	}
	if got := st.Status().(Status); got.ReadAvgUS != 100 || got.ReadP99US != 1000 || got.HeldTotal != 100 || got.Held != 0 {
		t.Fatalf("status %+v", got)
	}
}

// TestMetamorphic: delay changes when, never what (D1).
func TestMetamorphic(t *testing.T) {
	sd := uint64(time.Now().UnixNano())
	s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 4096, 300, "M0")
	cfg := Config{Name: "D0", Base: "M0"}
	for ty := range cfg.Latencies {
		cfg.Latencies[ty] = Latency{Avg: 20 * time.Microsecond, P99: 200 * time.Microsecond}
	}
	st, err := New(s.Reg, cfg)
	s.Add(t, st, err)
	s.Metamorphic(t, sd, 250, "D0", 16, fmt.Sprintf("go test ./services/delay -run TestMetamorphic # seed %d", sd))
}

// TestZeroDelayAllocs: at latency 0 and at a latency (held on the list and
// released by the timer) an IO allocates nothing (D4).
func TestZeroDelayAllocs(t *testing.T) {
	clock := &stagetest.ManualClock{}
	s := stagetest.NewStack(t, 1, null.Driver{}, reactors.Options{Mode: reactors.ModePoll, Clock: clock})
	s.Disks(t, 512, 1<<12, "N0")
	cfg := Config{Name: "D0", Base: "N0"}
	cfg.Latencies[bdev.IOWrite] = Latency{Avg: time.Microsecond}
	st, err := New(s.Reg, cfg)
	s.Add(t, st, err)
	h := s.Open(t, "D0")
	r := s.Set.Get(0)
	var ch *bdev.Channel
	r.Call(func() { ch, _ = h.Desc.Channel(r) })
	for _, typ := range []bdev.IOType{bdev.IORead, bdev.IOWrite} {
		var allocs float64
		var failed int
		err := r.Call(func() {
			lp := stagetest.NewLoop(ch, typ, 4, 1)
			dc := st.chans[0]
			poll := func() {
				clock.Advance(time.Microsecond)
				dc.Poll()
			}
			lp.Run(16, poll)
			allocs = testing.AllocsPerRun(100, func() { failed, _ = lp.Run(4, poll) })
			lp.Free()
		})
		if err != nil {
			t.Fatal(err)
		}
		if allocs != 0 || failed != 0 {
			t.Errorf("%v: %v allocations per 4 IOs (%d failed), want 0", typ, allocs, failed)
		}
		if held := st.Status().(Status).HeldTotal; (typ == bdev.IOWrite) != (held > 0) {
			t.Errorf("after %v: %d completions held in all, want some exactly for writes", typ, held)
		}
	}
}
