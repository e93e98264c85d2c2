package bdevtest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// WaitTimeout bounds every wait; reaching it fails the test.
const WaitTimeout = 30 * time.Second

// Stack is a reactor set and a bdev registry over it.
type Stack struct {
	Set *reactors.Set
	Reg *bdev.Registry
}

// NewStack starts n unpinned reactors and a registry with small pools; both
// stop when the test ends.
func NewStack(t testing.TB, n int, ro reactors.Options) *Stack {
	t.Helper()
	ro.NoPin = true
	set, err := reactors.Start(make([]int, n), ro)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := bdev.NewRegistry(set, bdev.Options{IOPoolSize: 256, BufSmallCount: 16, BufLargeSize: BufSize, BufLargeCount: 2})
	if err != nil {
		set.Stop(WaitTimeout)
		t.Fatal(err)
	}
	s := &Stack{Set: set, Reg: reg}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
		if err := set.Stop(WaitTimeout); err != nil {
			t.Error(err)
		}
	})
	return s
}

// Handle is a descriptor with a channel and a buffer on each reactor.
type Handle struct {
	s     *Stack
	Desc  *bdev.Desc
	chans []*bdev.Channel
	bufs  [][]byte // per reactor, BufSize bytes, off-heap
	cmps  [][]byte // per reactor: a compare-and-write's compare data
	done  chan *bdev.IO
}

// BufSize is the largest IO a Handle moves at once.
const BufSize = 256 << 10

// Open opens name for writing and its channel on every reactor; its
// buffers are regions of its own.
func (s *Stack) Open(t testing.TB, name string) *Handle { return s.open(t, name, false) }

// OpenPooled is Open with buffers from each reactor's bdev.Local pool, which
// a back end may have registered with its device (io_uring fixed buffers).
func (s *Stack) OpenPooled(t testing.TB, name string) *Handle { return s.open(t, name, true) }

func (s *Stack) open(t testing.TB, name string, pooled bool) *Handle {
	t.Helper()
	d, err := s.Reg.Open(name, true)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handle{s: s, Desc: d, done: make(chan *bdev.IO, 1)}
	for _, r := range s.Set.All() {
		var ch *bdev.Channel
		if cerr := r.Call(func() { ch, err = d.Channel(r) }); cerr != nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		var buf []byte
		if pooled {
			r.Call(func() { buf = ch.Local().AllocBuf(BufSize) })
			if buf == nil {
				t.Fatal("reactor's buffer pool is empty")
			}
			t.Cleanup(func() { r.Call(func() { ch.Local().FreeBuf(buf) }) })
		} else {
			region, err := bdev.MapRegion(BufSize)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { region.Unmap() })
			buf = region.Bytes()
		}
		cmp, err := bdev.MapRegion(BufSize)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmp.Unmap() })
		h.chans = append(h.chans, ch)
		h.bufs = append(h.bufs, buf)
		h.cmps = append(h.cmps, cmp.Bytes())
	}
	t.Cleanup(d.Close)
	return h
}

// Buf is reactor i's buffer: what Do writes from and reads into.
func (h *Handle) Buf(i int) []byte { return h.bufs[i] }

// CompareBuf is reactor i's compare buffer: a compare-and-write compares
// the range with its first bytes, then writes Buf(i).
func (h *Handle) CompareBuf(i int) []byte { return h.cmps[i] }

// Complete implements bdev.Completer: it hands the IO to the waiting test.
func (h *Handle) Complete(io *bdev.IO) { h.done <- io }

// Do runs one IO on reactor i and waits for it: data IO uses the first
// blocks*block-size bytes of Buf(i). It returns the status with its detail.
func (h *Handle) Do(t testing.TB, i int, typ bdev.IOType, off, blocks uint64) (bdev.Status, string) {
	t.Helper()
	return h.DoIovecs(t, i, typ, off, blocks, 1)
}

// IovecAlign is where DoIovecs cuts its buffer: O_DIRECT's smallest
// alignment, so every piece suits any back end here.
const IovecAlign = 512

// DoIovecs is Do with the data cut into up to n iovecs of whole
// IovecAlign units (the first ones a unit each, the last the rest).
func (h *Handle) DoIovecs(t testing.TB, i int, typ bdev.IOType, off, blocks uint64, n int) (bdev.Status, string) {
	t.Helper()
	ch := h.chans[i]
	size := blocks * uint64(h.Desc.Bdev().BlockSize())
	if typ.HasData() && size > BufSize {
		t.Fatalf("IO of %d bytes, want at most %d", size, BufSize)
	}
	r := h.s.Set.Get(i)
	if err := r.Call(func() {
		io := ch.AllocIO()
		io.Type, io.OffsetBlocks, io.Blocks, io.Completer = typ, off, blocks, h
		if typ.HasData() {
			buf := h.Buf(i)[:size]
			io.ResetIovecs()
			for k := 1; k < n && len(buf) > IovecAlign; k++ {
				io.AddIovec(buf[:IovecAlign])
				buf = buf[IovecAlign:]
			}
			io.AddIovec(buf)
			if typ == bdev.IOCompareAndWrite {
				io.CompareIovecs = [][]byte{h.CompareBuf(i)[:size]}
			}
		}
		ch.Submit(io)
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case io := <-h.done:
		st, detail := io.Status, io.StatusString()
		r.Call(io.Free)
		return st, detail
	case <-time.After(WaitTimeout):
		t.Fatalf("%v %d+%d on reactor %d: no completion in %v", typ, off, blocks, i, WaitTimeout)
	}
	return 0, ""
}

// Op is one step of a seeded stream.
type Op struct {
	Reactor int
	Type    bdev.IOType
	Offset  uint64
	Blocks  uint64
	Fill    uint64 // seed of a write's data
	Iovecs  int    // pieces the data is cut into (DoIovecs)
}

func (o Op) String() string {
	return fmt.Sprintf("r%d %v %d+%d iov=%d fill=%#x", o.Reactor, o.Type, o.Offset, o.Blocks, o.Iovecs, o.Fill)
}

// Ops makes n ops from seed over a bdev of blocks blocks: mostly writes
// and reads, some unmaps, write-zeroes, flushes and compares, sizes up to
// maxBlocks, spread over reactorsN reactors. The same arguments always give
// the same ops.
func Ops(seed uint64, n, reactorsN int, blocks, maxBlocks uint64) []Op {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	types := []bdev.IOType{bdev.IOWrite, bdev.IOWrite, bdev.IOWrite, bdev.IORead, bdev.IORead, bdev.IORead,
		bdev.IOUnmap, bdev.IOWriteZeroes, bdev.IOFlush, bdev.IOCompare, bdev.IOCompareAndWrite}
	ops := make([]Op, n)
	var writes []Op
	for i := range ops {
		nb := 1 + rnd.Uint64N(maxBlocks)
		if rnd.IntN(4) == 0 {
			nb = 1
		}
		op := Op{
			Reactor: rnd.IntN(reactorsN),
			Type:    types[rnd.IntN(len(types))],
			Offset:  rnd.Uint64N(blocks - nb + 1),
			Blocks:  nb,
			Fill:    rnd.Uint64(),
			Iovecs:  1 + rnd.IntN(4),
		}
		switch {
		case op.Type == bdev.IOWrite:
			writes = append(writes, op)
		case (op.Type == bdev.IOCompare || op.Type == bdev.IOCompareAndWrite) && len(writes) > 0 && rnd.IntN(2) == 0:
			// Compare with what an earlier write stored: equal unless
			// something wrote over it since.
			w := writes[rnd.IntN(len(writes))]
			op.Offset, op.Blocks, op.Fill = w.Offset, w.Blocks, w.Fill
		}
		if op.Type == bdev.IOCompareAndWrite {
			op.Iovecs = 1 // its write goes down whole: within any back end's iovecs
			writes = append(writes, Op{Offset: op.Offset, Blocks: op.Blocks, Fill: op.Fill + 1})
		}
		ops[i] = op
	}
	return ops
}

// Fill writes seed's deterministic bytes into b.
func Fill(b []byte, seed uint64) {
	x := seed | 1
	for i := 0; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for k := range 8 {
			b[i+k] = byte(x >> (8 * k))
		}
	}
}

// Run applies ops to h and returns one history line per op: the op, its
// status with detail, and for a read the xxhash of what it read. A compare
// compares with Fill(op.Fill), so it mostly miscompares, at a byte offset
// both stacks must agree on; a compare-and-write compares the same way and
// then writes Fill(op.Fill+1).
func Run(t testing.TB, h *Handle, ops []Op) []string {
	t.Helper()
	bs := uint64(h.Desc.Bdev().BlockSize())
	hist := make([]string, len(ops))
	for k, op := range ops {
		buf := h.Buf(op.Reactor)[:op.Blocks*bs]
		switch op.Type {
		case bdev.IOWrite, bdev.IOCompare:
			Fill(buf, op.Fill)
		case bdev.IOCompareAndWrite:
			Fill(h.CompareBuf(op.Reactor)[:len(buf)], op.Fill)
			Fill(buf, op.Fill+1)
		case bdev.IORead:
			clear(buf)
		}
		st, detail := h.DoIovecs(t, op.Reactor, op.Type, op.Offset, op.Blocks, op.Iovecs)
		line := fmt.Sprintf("%d %v: %s", k, op, detail)
		if op.Type == bdev.IORead && st == bdev.StatusSuccess {
			line += fmt.Sprintf(" data=%016x", xxhash.Sum64(buf))
		}
		hist[k] = line
	}
	return hist
}

// Compare reports the first line where two histories differ, with the
// rerun command, as t.Fatalf.
func Compare(t testing.TB, seed uint64, nameA string, a []string, nameB string, b []string, rerun string) {
	t.Helper()
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			t.Fatalf("seed %d: histories differ at op %d:\n  %s: %s\n  %s: %s\nrerun: %s",
				seed, i, nameA, a[i], nameB, b[i], rerun)
		}
	}
	if len(a) != len(b) {
		t.Fatalf("seed %d: %s has %d ops, %s %d\nrerun: %s", seed, nameA, len(a), nameB, len(b), rerun)
	}
}

// Replace returns ops with every op of type from turned into type to (same
// range and fill), for a stack that lacks from: the stream stays the same
// length and the same for both stacks.
func Replace(ops []Op, from, to bdev.IOType) []Op {
	out := make([]Op, len(ops))
	for i, op := range ops {
		if op.Type == from {
			op.Type = to
		}
		out[i] = op
	}
	return out
}
