package stagetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
	"github.com/sluice-storage/sluice/services/stage"
)

// RAM is the driver name NewStack registers: the driver the caller gives
// (drivers/malloc in tests, which services may not import outside tests).
const RAM = "ram"

// Stack is a bdevtest stack with a RAM driver and a stage list.
type Stack struct {
	*bdevtest.Stack
	List *stage.List
}

// NewStack starts n reactors with ram registered as RAM.
func NewStack(t testing.TB, n int, ram bdev.Driver, ro reactors.Options) *Stack {
	t.Helper()
	s := bdevtest.NewStack(t, n, ro)
	if err := s.Reg.RegisterDriver(RAM, ram); err != nil {
		t.Fatal(err)
	}
	return &Stack{Stack: s, List: &stage.List{}}
}

// Disks makes RAM bdevs of blocks blocks of bs bytes, one per name.
func (s *Stack) Disks(t testing.TB, bs uint32, blocks uint64, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := s.Reg.Create(bdev.Spec{Name: n, Driver: RAM, BlockSize: bs, Blocks: blocks}); err != nil {
			t.Fatal(err)
		}
	}
}

// Add registers a stage made by a stage package's New, failing the test on
// the constructor's or the registry's error.
func (s *Stack) Add(t testing.TB, b stage.Backend, err error) *bdev.Bdev {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	bd, err := stage.Add(s.Reg, s.List, b)
	if err != nil {
		t.Fatal(err)
	}
	return bd
}

// Metamorphic runs one seeded op stream of n ops on a RAM bdev of the
// stage's geometry and on the stage called top, over reactors reactors, and
// fails with the seed and rerun command at the first difference.
func (s *Stack) Metamorphic(t testing.TB, seed uint64, n int, top string, maxBlocks uint64, rerun string) {
	t.Helper()
	b, ok := s.Reg.Lookup(top)
	if !ok {
		t.Fatalf("no bdev %q", top)
	}
	ref := top + "-reference"
	s.Disks(t, b.BlockSize(), b.Blocks(), ref)
	ops := bdevtest.Ops(seed, n, s.Set.Len(), b.Blocks(), maxBlocks)
	got := bdevtest.Run(t, s.Open(t, top), ops)
	want := bdevtest.Run(t, s.Open(t, ref), ops)
	bdevtest.Compare(t, seed, top, got, "reference", want, rerun)
}

// Loop is a closed loop of IOs on one reactor's channel: each completion
// counts and, while the loop runs, resubmits the same IO. Owner: the
// reactor it runs on (Run is called there).
type Loop struct {
	ch     *bdev.Channel
	l      *bdev.Local
	ios    []*bdev.IO
	bufs   [][]byte
	blocks uint64
	span   uint64 // blocks of the bdev the offsets cycle over
	next   uint64
	done   int
	want   int
	failed int
	last   bdev.Status
}

// NewLoop prepares depth IOs of blocks blocks of typ on ch, sharing one
// buffer from the reactor's pool (what they carry does not matter to a
// loop). Run it on ch's reactor.
func NewLoop(ch *bdev.Channel, typ bdev.IOType, depth int, blocks uint64) *Loop {
	lp := &Loop{ch: ch, l: ch.Local(), blocks: blocks, span: ch.Bdev().Blocks() / blocks * blocks}
	buf := lp.l.AllocBuf(int(blocks) * int(ch.Bdev().BlockSize()))
	if buf == nil {
		panic("stagetest: the reactor's buffer pool is empty")
	}
	lp.bufs = append(lp.bufs, buf)
	for range depth {
		io := lp.l.AllocIO()
		if io == nil {
			panic(fmt.Sprintf("stagetest: IO pool empty for a loop of depth %d", depth))
		}
		io.Type, io.Blocks, io.Completer = typ, blocks, lp
		io.SetBuf(buf)
		lp.ios = append(lp.ios, io)
	}
	return lp
}

// Complete implements bdev.Completer.
func (lp *Loop) Complete(io *bdev.IO) {
	lp.done++
	lp.last = io.Status
	if io.Status != bdev.StatusSuccess {
		lp.failed++
	}
	if lp.done+len(lp.ios) <= lp.want {
		lp.submit(io)
	}
}

func (lp *Loop) submit(io *bdev.IO) {
	io.OffsetBlocks = lp.next
	if lp.next += lp.blocks; lp.next >= lp.span {
		lp.next = 0
	}
	lp.ch.Submit(io)
}

// Run submits n IOs in all (at most depth at once) and polls the reactor's
// bdev layer until they have completed; poll is called too, for a stage's
// own pollers when the test drives them by hand (nil: none). It returns the
// failed count and the last status. Owner only.
func (lp *Loop) Run(n int, poll func()) (failed int, last bdev.Status) {
	lp.done, lp.failed, lp.want = 0, 0, n
	start := lp.done
	for _, io := range lp.ios[:min(n, len(lp.ios))] {
		lp.submit(io)
	}
	for deadline := time.Now().Add(bdevtest.WaitTimeout); lp.done-start < n; {
		lp.l.Poll()
		if poll != nil {
			poll()
		}
		if lp.done-start < n && time.Now().After(deadline) {
			panic(fmt.Sprintf("stagetest: loop stuck at %d of %d IOs", lp.done-start, n))
		}
	}
	return lp.failed, lp.last
}

// Free gives the IOs and buffers back. Owner only.
func (lp *Loop) Free() {
	for _, io := range lp.ios {
		io.Free()
	}
	for _, b := range lp.bufs {
		lp.l.FreeBuf(b)
	}
	lp.ios, lp.bufs = nil, nil
}

// Channel opens d's channel on r and waits.
func Channel(t testing.TB, r *reactors.Reactor, d *bdev.Desc) *bdev.Channel {
	t.Helper()
	var ch *bdev.Channel
	var err error
	if cerr := r.Call(func() { ch, err = d.Channel(r) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// ManualClock is a reactors.Clock that moves only when told: timers fire by
// Advance, never by waiting.
type ManualClock struct{ now atomic.Int64 }

// Now implements reactors.Clock.
func (c *ManualClock) Now() time.Duration { return time.Duration(c.now.Load()) }

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) { c.now.Add(int64(d)) }

// Turns waits until every reactor of the stack has run a few full turns of
// its loop (messages, pollers, timers), so whatever a timer would do at the
// clock's time has been done.
func (s *Stack) Turns(t testing.TB) {
	t.Helper()
	for range 3 {
		for _, r := range s.Set.All() {
			if err := r.Call(func() {}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
