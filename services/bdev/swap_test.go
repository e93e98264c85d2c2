package bdev_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
	"github.com/sluice-storage/sluice/services/crypto"
	"github.com/sluice-storage/sluice/services/errinject"
	"github.com/sluice-storage/sluice/services/replica"
)

// pump keeps depth writes of one pattern in flight on a channel from the
// reactor's own loop (each completion resubmits), so IO is live while the
// test swaps back ends. Owner: the channel's reactor; counters are atomics.
type pump struct {
	ch        *bdev.Channel
	blocks    uint64
	stop      atomic.Bool
	out       int
	done      chan struct{}
	n, failed atomic.Uint64
	at        uint64
	marks     []pumpMark
}

type pumpMark struct {
	n  uint64
	ch chan struct{}
}

// mark returns a channel closed once the pump has done n more IOs. Owner.
func (p *pump) mark(n uint64) chan struct{} {
	c := make(chan struct{})
	p.marks = append(p.marks, pumpMark{p.n.Load() + n, c})
	return c
}

func (p *pump) Complete(io *bdev.IO) {
	n := p.n.Add(1)
	if io.Status != bdev.StatusSuccess {
		p.failed.Add(1)
	}
	kept := p.marks[:0]
	for _, m := range p.marks {
		if n >= m.n {
			close(m.ch)
		} else {
			kept = append(kept, m)
		}
	}
	p.marks = kept
	if p.stop.Load() {
		io.Free()
		if p.out--; p.out == 0 {
			close(p.done)
		}
		return
	}
	p.submit(io)
}

func (p *pump) submit(io *bdev.IO) {
	io.OffsetBlocks = p.at
	p.at = (p.at + 8) % p.blocks
	p.ch.Submit(io)
}

func waitFor(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(bdevtest.WaitTimeout):
		t.Fatalf("no %s in %v", what, bdevtest.WaitTimeout)
	}
}

// TestInsertUnderLiveIO: an error stage goes under a bdev while a reactor
// keeps writes in flight on a descriptor opened before; IO goes on through
// the stage (its injected failures show up on that descriptor), the data
// is intact, the base cannot be deleted under the stage, and Remove puts
// the bdev back on its old back end.
func TestInsertUnderLiveIO(t *testing.T) {
	s := bdevtest.NewStack(t, 2, reactors.Options{})
	s.Reg.RegisterDriver(malloc.Name, malloc.Driver{})
	const blocks = 2048
	if _, err := s.Reg.Create(bdev.Spec{Name: "M0", Driver: malloc.Name, BlockSize: 512, Blocks: blocks}); err != nil {
		t.Fatal(err)
	}
	h := s.Open(t, "M0")
	r := s.Set.Get(1)
	p := &pump{blocks: blocks, done: make(chan struct{})}
	var first chan struct{}
	r.Call(func() {
		p.ch, _ = h.Desc.Channel(r)
		buf := p.ch.Local().AllocBuf(4096)
		bdevtest.Fill(buf, 77)
		first = p.mark(500)
		for range 16 {
			io := p.ch.AllocIO()
			io.Type, io.Blocks, io.Completer = bdev.IOWrite, 8, p
			io.SetBuf(buf)
			p.out++
			p.submit(io)
		}
	})
	waitFor(t, first, "IO before the insertion")

	var es *errinject.Stage
	in, err := s.Reg.InsertUnder("M0", "M0.base", 5*time.Second, func(base string) (bdev.Backend, error) {
		st, err := errinject.New(s.Reg, errinject.Config{Name: "M0", Base: base})
		es = st
		return st, err
	})
	if err != nil {
		t.Fatal(err)
	}
	var more chan struct{}
	r.Call(func() { more = p.mark(500) })
	waitFor(t, more, "IO after the insertion")

	es.Inject(errinject.Rule{Types: bdev.IOTypesOf(bdev.IOWrite), Count: 10})
	r.Call(func() { more = p.mark(100) })
	waitFor(t, more, "IO after the injection")
	if f := p.failed.Load(); f != 10 {
		t.Fatalf("%d writes failed on the old descriptor, want the 10 injected: IO does not go through the stage", f)
	}
	if err := s.Reg.Delete("M0.base"); !errors.Is(err, bdev.ErrInUse) {
		t.Fatalf("delete the base under a stage: %v, want ErrInUse", err)
	}
	if b, _ := s.Reg.Lookup("M0"); b.Backend() != bdev.Backend(es) {
		t.Fatal("M0's back end is not the stage")
	}

	if err := in.Remove(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	r.Call(func() { more = p.mark(500) })
	waitFor(t, more, "IO after the removal")
	if _, ok := s.Reg.Lookup("M0.base"); ok {
		t.Fatal("M0.base still registered after Remove")
	}
	es.Inject(errinject.Rule{Types: bdev.IOTypesOf(bdev.IOWrite), Count: errinject.CountUnlimited})
	r.Call(func() { more = p.mark(200) })
	waitFor(t, more, "IO after the stage left")
	if f := p.failed.Load(); f != 10 {
		t.Fatalf("%d writes failed: the removed stage still sees IO", f)
	}
	p.stop.Store(true)
	waitFor(t, p.done, "the pump's end")

	want := make([]byte, 4096)
	bdevtest.Fill(want, 77)
	for off := uint64(0); off < blocks; off += 8 {
		if st, _ := h.Do(t, 0, bdev.IORead, off, 8); st != bdev.StatusSuccess || string(h.Buf(0)[:4096]) != string(want) {
			t.Fatalf("blocks %d+8 after the swaps: %v, or not the data written", off, st)
		}
	}
}

// TestInsertRefused: a stage that does not describe itself as the bdev's
// back end (B10) is refused and nothing changes; a replica with the bdev
// as its one member goes in.
func TestInsertRefused(t *testing.T) {
	s := bdevtest.NewStack(t, 2, reactors.Options{})
	s.Reg.RegisterDriver(malloc.Name, malloc.Driver{})
	if _, err := s.Reg.Create(bdev.Spec{Name: "M0", Driver: malloc.Name, BlockSize: 512, Blocks: 256}); err != nil {
		t.Fatal(err)
	}
	h := s.Open(t, "M0")
	bdevtest.Fill(h.Buf(0)[:512], 5)
	if st, _ := h.Do(t, 0, bdev.IOWrite, 3, 1); st != bdev.StatusSuccess {
		t.Fatal(st)
	}
	raw := make([]byte, 64)
	for i := range raw {
		raw[i] = byte(i)
	}
	key, _ := crypto.NewKey("k", raw[:32], raw[32:])
	_, err := s.Reg.InsertUnder("M0", "M0.plain", 5*time.Second, func(base string) (bdev.Backend, error) {
		return crypto.New(s.Reg, crypto.Config{Name: "M0", Base: base, Key: key})
	})
	if !errors.Is(err, bdev.ErrSwap) {
		t.Fatalf("crypto under a live bdev: %v, want ErrSwap (it changes what reads return)", err)
	}
	if _, ok := s.Reg.Lookup("M0.plain"); ok {
		t.Fatal("a refused insertion left its base registered")
	}
	in, err := s.Reg.InsertUnder("M0", "M0.m0", 5*time.Second, func(base string) (bdev.Backend, error) {
		return replica.New(s.Reg, replica.Config{Name: "M0", Members: []string{base}})
	})
	if err != nil {
		t.Fatal(err)
	}
	clear(h.Buf(1)[:512])
	want := make([]byte, 512)
	bdevtest.Fill(want, 5)
	if st, _ := h.Do(t, 1, bdev.IORead, 3, 1); st != bdev.StatusSuccess || string(h.Buf(1)[:512]) != string(want) {
		t.Fatalf("read through the inserted replica: %v, or not the data written before", st)
	}
	if st := in.Stage().(*replica.Stage).Status().(replica.Status); st.InSync != 1 || st.Members[0].Name != "M0.m0" {
		t.Fatalf("replica %+v", st)
	}
}
