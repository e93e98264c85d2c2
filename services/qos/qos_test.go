package qos

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

// counter counts completions; it is touched on the reactor only, and read
// by the test through a reactor call.
type counter struct {
	n      [bdev.IOTypeCount]int
	failed int
}

func (c *counter) Complete(io *bdev.IO) {
	c.n[io.Type]++
	if io.Status != bdev.StatusSuccess {
		c.failed++
	}
	io.Free()
}

type rig struct {
	s     *stagetest.Stack
	st    *Stage
	clock *stagetest.ManualClock
	r     *reactors.Reactor
	ch    *bdev.Channel
	buf   []byte
	done  *counter
}

func newRig(t *testing.T, l Limits) *rig {
	t.Helper()
	clock := &stagetest.ManualClock{}
	s := stagetest.NewStack(t, 1, null.Driver{}, reactors.Options{Mode: reactors.ModePoll, Clock: clock})
	s.Disks(t, 4096, 1024, "N0")
	st, err := New(s.Reg, Config{Name: "Q0", Base: "N0", Limits: l})
	s.Add(t, st, err)
	d, err := s.Reg.Open("Q0", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	g := &rig{s: s, st: st, clock: clock, r: s.Set.Get(0), done: &counter{}}
	g.ch = stagetest.Channel(t, g.r, d)
	g.r.Call(func() { g.buf = g.ch.Local().AllocBuf(4096) })
	t.Cleanup(func() { g.r.Call(func() { g.ch.Local().FreeBuf(g.buf) }) })
	return g
}

// submit posts n IOs of typ without waiting for them.
func (g *rig) submit(t *testing.T, typ bdev.IOType, n int) {
	t.Helper()
	g.r.Call(func() {
		for i := range n {
			io := g.ch.AllocIO()
			io.Type, io.OffsetBlocks, io.Blocks, io.Completer = typ, uint64(i), 1, g.done
			io.SetBuf(g.buf)
			g.ch.Submit(io)
		}
	})
}

// completed is how many IOs of typ have completed, after the reactor ran
// its timers at the clock's time.
func (g *rig) completed(t *testing.T, typ bdev.IOType) int {
	t.Helper()
	g.s.Turns(t)
	var n int
	g.r.Call(func() { n = g.done.n[typ] })
	return n
}

// TestIOPS: at 1000 IOPS one IO passes per 1 ms slice (Q1), in order.
func TestIOPS(t *testing.T) {
	g := newRig(t, Limits{IOPS: 1000})
	g.submit(t, bdev.IOWrite, 10)
	if n := g.completed(t, bdev.IOWrite); n != 1 {
		t.Fatalf("%d writes done in the first slice, want 1", n)
	}
	for slice := 1; slice <= 9; slice++ {
		g.clock.Advance(qosTimeslice)
		if n := g.completed(t, bdev.IOWrite); n != 1+slice {
			t.Fatalf("%d writes done after %d slices, want %d", n, slice, 1+slice)
		}
	}
	if st := g.st.Status().(Status); st.IOPS != 1000 || st.Throttled != 9 || st.Waiting != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestBandwidthDebt: 1 MiB/s earns about 1 KiB a slice; a 4 KiB write takes
// its cost at once and the bucket repays the debt, so writes go one per four
// slices and the bytes never run ahead of the rate plus one IO (Q1).
func TestBandwidthDebt(t *testing.T) {
	g := newRig(t, Limits{BPS: MBytes})
	g.submit(t, bdev.IOWrite, 20)
	q := int(MBytes / 1000)
	for slice := 0; slice <= 60; slice++ {
		n := g.completed(t, bdev.IOWrite)
		if bytes := n * 4096; bytes > q*(slice+1)+4096 {
			t.Fatalf("slice %d: %d bytes written, past the rate (%d per slice) plus one IO", slice, bytes, q)
		}
		if slice == 60 && n < 14 {
			t.Fatalf("only %d writes in 60 slices at %d bytes a slice", n, q)
		}
		g.clock.Advance(qosTimeslice)
	}
	g.st.SetLimits(Limits{})
	g.clock.Advance(qosTimeslice)
	if n := g.completed(t, bdev.IOWrite); n != 20 {
		t.Fatalf("%d of 20 writes done after the limit was lifted", n)
	}
}

// TestReadsAndWritesApart: a write limit holds writes, not reads (Q2), and
// lifting it releases them.
func TestReadsAndWritesApart(t *testing.T) {
	g := newRig(t, Limits{WriteBPS: MBytes})
	g.submit(t, bdev.IOWrite, 5)
	g.submit(t, bdev.IORead, 5)
	if w, r := g.completed(t, bdev.IOWrite), g.completed(t, bdev.IORead); w != 1 || r != 5 {
		t.Fatalf("%d writes and %d reads done, want 1 and 5", w, r)
	}
	g.submit(t, bdev.IOFlush, 1)
	if n := g.completed(t, bdev.IOFlush); n != 1 {
		t.Fatal("a flush waited behind throttled writes")
	}
	g.st.SetLimits(Limits{})
	g.clock.Advance(qosTimerPeriod)
	if w := g.completed(t, bdev.IOWrite); w != 5 {
		t.Fatalf("%d writes done after the limit was lifted, want 5", w)
	}
	if g.done.failed != 0 {
		t.Fatalf("%d IOs failed", g.done.failed)
	}
}

// TestMetamorphic: qos changes when, never what.
func TestMetamorphic(t *testing.T) {
	sd := uint64(time.Now().UnixNano())
	s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 512, 400, "M0")
	st, err := New(s.Reg, Config{Name: "Q0", Base: "M0", Limits: Limits{IOPS: 20000, WriteBPS: 8 * MBytes}})
	s.Add(t, st, err)
	s.Metamorphic(t, sd, 300, "Q0", 32, fmt.Sprintf("go test ./services/qos -run TestMetamorphic # seed %d", sd))
}

// TestZeroAllocs: admitted, and throttled then released, IO allocates
// nothing (Q4).
func TestZeroAllocs(t *testing.T) {
	g := newRig(t, Limits{IOPS: 1000})
	var allocs float64
	var failed int
	err := g.r.Call(func() {
		lp := stagetest.NewLoop(g.ch, bdev.IOWrite, 4, 1)
		c := g.st.chans[0]
		poll := func() {
			g.clock.Advance(qosTimerPeriod)
			c.Poll()
		}
		lp.Run(16, poll)
		allocs = testing.AllocsPerRun(50, func() { failed, _ = lp.Run(4, poll) })
		lp.Free()
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 || failed != 0 || g.st.throttled.Load() == 0 {
		t.Fatalf("%v allocations per 4 IOs (%d failed, %d throttled), want 0 with some throttled",
			allocs, failed, g.st.throttled.Load())
	}
}
