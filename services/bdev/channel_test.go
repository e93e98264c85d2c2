package bdev

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sluice-storage/sluice/reactors"
)

// fakeDriver registers f under "fake" and creates one bdev on it.
func (s *stack) fakeBdev(t testing.TB, name string, f *fakeBackend, blocks uint64) *Bdev {
	t.Helper()
	b, err := s.reg.Add(Spec{Name: name, BlockSize: uint32(f.blockSize), Blocks: blocks}, f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *stack) open(t testing.TB, name string, write bool) *Desc {
	t.Helper()
	d, err := s.reg.Open(name, write)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// buf is an off-heap buffer from reactor i's pool; freed at cleanup.
func (s *stack) buf(t testing.TB, i, size int) []byte {
	t.Helper()
	var b []byte
	s.call(t, i, func() { b = s.reg.Local(s.set.Get(i)).AllocBuf(size) })
	if b == nil {
		t.Fatalf("no %d-byte buffer", size)
	}
	t.Cleanup(func() { s.set.Get(i).Call(func() { s.reg.Local(s.set.Get(i)).FreeBuf(b) }) })
	return b
}

func TestSubmitChecks(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{IOTypes: IOTypesOf(IORead, IOWrite, IOFlush), BufAlign: 512})
	s.fakeBdev(t, "f0", f, 64)
	rw := s.open(t, "f0", true)
	ro := s.open(t, "f0", false)
	chRW, chRO := s.channel(t, rw, 0), s.channel(t, ro, 0)
	good := s.buf(t, 0, 4096)
	tests := []struct {
		name   string
		ch     *Channel
		typ    IOType
		off, n uint64
		buf    []byte
		want   Status
	}{
		{"read", chRW, IORead, 0, 8, good, StatusSuccess},
		{"last block", chRW, IORead, 63, 1, good[:512], StatusSuccess},
		{"past end", chRW, IORead, 63, 2, good[:1024], StatusOutOfRange},
		{"offset wraps", chRW, IORead, ^uint64(0), 2, good[:1024], StatusOutOfRange},
		{"zero blocks", chRW, IORead, 0, 0, good[:0], StatusInvalid},
		{"short buffer", chRW, IORead, 0, 8, good[:4095], StatusInvalid},
		{"long buffer", chRW, IORead, 0, 7, good, StatusInvalid},
		{"misaligned buffer", chRW, IORead, 0, 1, good[1:513], StatusInvalid},
		{"unsupported", chRW, IOUnmap, 0, 8, nil, StatusUnsupported},
		{"invalid type", chRW, IOInvalid, 0, 8, good, StatusInvalid},
		{"write read-only", chRO, IOWrite, 0, 8, good, StatusInvalid},
		{"read read-only", chRO, IORead, 0, 8, good, StatusSuccess},
		{"flush all", chRW, IOFlush, 0, 0, nil, StatusSuccess},
		{"reset", chRW, IOReset, 0, 0, nil, StatusSuccess},
	}
	rec := newRecorder()
	for i, tc := range tests {
		s.submit(t, tc.ch, rec, tc.typ, tc.off, tc.n, tc.buf, uint64(i))
		if res := rec.wait(t); res.status != tc.want {
			t.Errorf("%s: %v %d+%d: %v, want %v", tc.name, tc.typ, tc.off, tc.n, res.status, tc.want)
		}
	}
}

// completer that resubmits its IO count times from inside Complete: with a
// back end that completes inside Submit, B2 keeps this from recursing.
type loopCompleter struct {
	ch         *Channel
	left       int
	submitting bool
	recursed   bool
	done       chan struct{}
}

func (c *loopCompleter) Complete(io *IO) {
	if c.submitting {
		c.recursed = true
	}
	if io.Status != StatusSuccess || c.left == 0 {
		io.Free()
		close(c.done)
		return
	}
	c.left--
	c.submitting = true
	c.ch.Submit(io)
	c.submitting = false
}

func TestCompletionNeverInsideSubmit(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{})
	s.fakeBdev(t, "f0", f, 64)
	ch := s.channel(t, s.open(t, "f0", true), 0)
	buf := s.buf(t, 0, 512)
	c := &loopCompleter{ch: ch, left: 100000, done: make(chan struct{})}
	s.call(t, 0, func() {
		io := ch.AllocIO()
		io.Type, io.Blocks, io.Completer = IOWrite, 1, c
		io.SetBuf(buf)
		c.submitting = true
		ch.Submit(io)
		c.submitting = false
	})
	<-c.done
	if c.recursed || c.left != 0 {
		t.Fatalf("recursed %t, %d left: a completion ran inside Submit (B2)", c.recursed, c.left)
	}
}

func TestCompleteTwicePanics(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	var msg string
	s.call(t, 0, func() {
		io := s.reg.Local(s.set.Get(0)).AllocIO()
		io.Type, io.OffsetBlocks, io.Blocks = IOWrite, 7, 1
		defer func() { msg = fmt.Sprint(recover()); io.state = ioReady; io.Free() }()
		io.Complete(StatusSuccess) // ready, never submitted: as bad as twice
	})
	if !strings.Contains(msg, "completed twice") || !strings.Contains(msg, "LBA 7+1") {
		t.Fatalf("panic %q, want one naming the double completion and the IO", msg)
	}
}

// TestNoResourcesParksInOrder: a back end that takes 2 IOs at a time gets
// 20 IOs; every one completes successfully (none sees StatusNoResources,
// B5), and the back end ran them in submission order.
func TestNoResourcesParksInOrder(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%t", async), func(t *testing.T) {
			s := newStack(t, 1, reactors.Options{}, testOptions)
			f := newFake(512, 64, Info{})
			f.depth, f.async, f.hold = 2, async, !async
			s.fakeBdev(t, "f0", f, 64)
			ch := s.channel(t, s.open(t, "f0", true), 0)
			rec := newRecorder()
			const n = 20
			s.call(t, 0, func() { // all at once, so the back end fills up
				for i := range n {
					io := ch.AllocIO()
					io.Type, io.OffsetBlocks, io.Blocks, io.Completer = IOFlush, uint64(i), 1, rec
					io.Ctx[0] = uint64(i)
					ch.Submit(io)
				}
			})
			if !async { // complete the held ones one at a time
				for range n {
					s.call(t, 0, func() { f.chans[0].release(1) })
				}
			}
			for range n {
				if res := rec.wait(t); res.status != StatusSuccess {
					t.Fatalf("IO %d: %v, want success", res.tag, res.status)
				}
			}
			var order []string
			s.call(t, 0, func() {
				seen := map[string]bool{}
				for _, e := range f.chans[0].log {
					if !seen[e] {
						seen[e] = true
						order = append(order, e)
					}
				}
			})
			for i, e := range order {
				if want := fmt.Sprintf("flush %d+1 iov=0", i); e != want {
					t.Fatalf("back end's %dth distinct IO was %q, want %q (FIFO)", i, e, want)
				}
			}
			if f.chans[0].refused == 0 {
				t.Fatal("the back end never refused: the test did not test parking")
			}
		})
	}
}

// flaky refuses the first refuse submissions with nothing in flight, so only
// the retry timer can make progress (B5).
type flakyBackend struct {
	*fakeBackend
	refuse int
}

func (f *flakyBackend) NewChannel(l *Local) (ChannelBackend, error) {
	c, _ := f.fakeBackend.NewChannel(l)
	return &flakyChannel{c.(*fakeChannel), f}, nil
}

type flakyChannel struct {
	*fakeChannel
	f *flakyBackend
}

func (c *flakyChannel) Submit(io *IO) {
	if c.f.refuse > 0 {
		c.f.refuse--
		io.Complete(StatusNoResources)
		return
	}
	c.fakeChannel.Submit(io)
}

func TestNoResourcesRetryTimer(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	f := &flakyBackend{newFake(512, 64, Info{}), 3}
	if _, err := s.reg.Add(Spec{Name: "f0", BlockSize: 512, Blocks: 64}, f); err != nil {
		t.Fatal(err)
	}
	ch := s.channel(t, s.open(t, "f0", true), 0)
	rec := newRecorder()
	s.submit(t, ch, rec, IOFlush, 0, 1, nil, 0)
	if res := rec.wait(t); res.status != StatusSuccess || f.refuse != 0 {
		t.Fatalf("%v with %d refusals left, want success after all 3", res.status, f.refuse)
	}
	s.call(t, 0, func() {
		if l := s.reg.Local(s.set.Get(0)); l.retryTimer != nil || len(l.starved) != 0 {
			t.Errorf("retry timer still set (%d starved) after the channel drained", len(l.starved))
		}
	})
}

// TestSplit writes and reads through a back end with small limits, with
// buffers cut into many iovecs at odd places, and checks both the data and
// that no piece the back end saw broke a limit.
func TestSplit(t *testing.T) {
	const bs, blocks = 512, 256
	info := Info{MaxTransferBlocks: 8, BoundaryBlocks: 16, MaxIovecs: 3, MaxUnmapBlocks: 5}
	s := newStack(t, 1, reactors.Options{}, testOptions)
	f := newFake(bs, blocks, info)
	s.fakeBdev(t, "f0", f, blocks)
	ch := s.channel(t, s.open(t, "f0", true), 0)
	rnd := rand.New(rand.NewPCG(1, 2))
	data := s.buf(t, 0, 64*bs)
	back := s.buf(t, 0, 64*bs)
	rec := newRecorder()
	for round := range 40 {
		off := uint64(rnd.IntN(blocks - 64))
		n := uint64(1 + rnd.IntN(64))
		size := int(n) * bs
		for i := range data[:size] {
			data[i] = byte(rnd.Uint32())
		}
		cuts := cut(rnd, size, 1+rnd.IntN(IovecsInlineMax))
		for pass, typ := range []IOType{IOWrite, IORead} {
			b := data
			if typ == IORead {
				b = back
				clear(back)
			}
			s.call(t, 0, func() {
				io := ch.AllocIO()
				io.Type, io.OffsetBlocks, io.Blocks, io.Completer = typ, off, n, rec
				io.Ctx[0] = uint64(round*2 + pass)
				at := 0
				for _, c := range cuts {
					io.AddIovec(b[at : at+c])
					at += c
				}
				ch.Submit(io)
			})
			if res := rec.wait(t); res.status != StatusSuccess {
				t.Fatalf("round %d %v %d+%d in %v: %v", round, typ, off, n, cuts, res.status)
			}
		}
		if !bytes.Equal(data[:size], back[:size]) {
			t.Fatalf("round %d: %d+%d in iovecs %v read back different data", round, off, n, cuts)
		}
	}
	s.submit(t, ch, rec, IOUnmap, 3, 40, nil, 0)
	if res := rec.wait(t); res.status != StatusSuccess {
		t.Fatalf("unmap: %v", res.status)
	}
	s.call(t, 0, func() {
		for _, e := range f.chans[0].log {
			var typ string
			var off, n, iov uint64
			fmt.Sscanf(strings.Replace(e, "+", " ", 1), "%s %d %d iov=%d", &typ, &off, &n, &iov)
			limit := uint64(info.MaxTransferBlocks)
			if typ == "unmap" {
				limit = uint64(info.MaxUnmapBlocks)
			} else if off/16 != (off+n-1)/16 || iov > uint64(info.MaxIovecs) {
				t.Errorf("back end got %q: crosses a 16-block boundary or has more than %d iovecs", e, info.MaxIovecs)
			}
			if n > limit {
				t.Errorf("back end got %q: more than %d blocks", e, limit)
			}
		}
	})
}

// cut splits size into up to k pieces of at least a block (so any two
// consecutive pieces hold a whole block), at odd places or on block
// boundaries.
func cut(rnd *rand.Rand, size, k int) []int {
	var pieces []int
	for k > 1 && size >= 1024 {
		p := 512 + rnd.IntN(size-1023)
		if rnd.IntN(2) == 0 {
			p = p / 512 * 512
		}
		pieces = append(pieces, p)
		size -= p
		k--
	}
	return append(pieces, size)
}

// TestSplitFragmented: when MaxIovecs iovecs cannot hold one whole block,
// the IO fails as invalid (as SPDK's split does), and gives back its IOs.
func TestSplitFragmented(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	s.fakeBdev(t, "f0", newFake(512, 64, Info{MaxIovecs: 3}), 64)
	ch := s.channel(t, s.open(t, "f0", true), 0)
	buf := s.buf(t, 0, 512)
	rec := newRecorder()
	s.call(t, 0, func() {
		io := ch.AllocIO()
		io.Type, io.Blocks, io.Completer = IORead, 1, rec
		for i := range 4 {
			io.AddIovec(buf[i*128 : (i+1)*128])
		}
		ch.Submit(io)
	})
	if res := rec.wait(t); res.status != StatusInvalid {
		t.Fatalf("1 block in 4 iovecs of 128 bytes, 3 iovecs allowed: %v, want invalid", res.status)
	}
	s.call(t, 0, func() {
		if l := s.reg.Local(s.set.Get(0)); l.FreeIOs() != testOptions.IOPoolSize {
			t.Errorf("%d IOs free, want all %d", l.FreeIOs(), testOptions.IOPoolSize)
		}
	})
}

func TestSplitChildFailure(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{MaxTransferBlocks: 4})
	f.failAt = map[uint64]Status{8: StatusErrno}
	s.fakeBdev(t, "f0", f, 64)
	ch := s.channel(t, s.open(t, "f0", true), 0)
	rec := newRecorder()
	s.submit(t, ch, rec, IORead, 0, 16, s.buf(t, 0, 16*512), 0)
	if res := rec.wait(t); res.status != StatusErrno {
		t.Fatalf("split read with its third child failing: %v, want errno", res.status)
	}
	s.call(t, 0, func() {
		if l := s.reg.Local(s.set.Get(0)); l.FreeIOs() != testOptions.IOPoolSize {
			t.Errorf("%d IOs free, want all %d back (children freed)", l.FreeIOs(), testOptions.IOPoolSize)
		}
	})
}

// TestForward submits on reactor 0 to a channel of reactor 1: the back end
// runs on 1, the Completer on 0 (B3).
func TestForward(t *testing.T) {
	s := newStack(t, 2, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{})
	f.async = true
	s.fakeBdev(t, "f0", f, 64)
	d := s.open(t, "f0", true)
	remote := s.channel(t, d, 1)
	rec := newRecorder()
	rec.set = s.set
	buf := s.buf(t, 0, 512)
	for i := range 100 {
		s.call(t, 0, func() {
			io := s.reg.Local(s.set.Get(0)).AllocIO()
			io.Type, io.OffsetBlocks, io.Blocks, io.Completer = IOWrite, uint64(i%64), 1, rec
			io.SetBuf(buf)
			Forward(io, remote)
		})
		if res := rec.wait(t); res.status != StatusSuccess || res.reactor != 0 {
			t.Fatalf("forwarded IO %d: %v on reactor %d, want success on 0", i, res.status, res.reactor)
		}
	}
	s.call(t, 1, func() {
		if got := len(f.chans[1].log); got != 100 {
			t.Errorf("reactor 1's back end saw %d IOs, want 100", got)
		}
	})
}

// TestForwardRingFull: a full target ring is StatusNoResources to the
// submitter, on its own reactor, after Forward returns.
func TestForwardRingFull(t *testing.T) {
	s := newStack(t, 2, reactors.Options{RingSize: 8}, testOptions)
	f := newFake(512, 64, Info{})
	s.fakeBdev(t, "f0", f, 64)
	d := s.open(t, "f0", true)
	remote := s.channel(t, d, 1)
	rec := newRecorder()
	rec.set = s.set
	block := make(chan struct{})
	if err := s.set.Get(1).PostFunc(func() { <-block }); err != nil { // reactor 1 stops draining
		t.Fatal(err)
	}
	sent := 0
	s.call(t, 0, func() {
		l := s.reg.Local(s.set.Get(0))
		for range 16 {
			io := l.AllocIO()
			io.Type, io.Completer = IOFlush, rec
			rec.submitting = true
			Forward(io, remote)
			rec.submitting = false
			sent++
		}
	})
	close(block)
	noRes := 0
	for range sent {
		res := rec.wait(t)
		if res.status == StatusNoResources {
			noRes++
			if res.reactor != 0 {
				t.Errorf("no-resources reported on reactor %d, want the submitter's 0", res.reactor)
			}
		}
	}
	if noRes == 0 || rec.recursed {
		t.Fatalf("%d of 16 saw no-resources (want some); completed inside Forward: %t", noRes, rec.recursed)
	}
}

func TestOpenClaim(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	s.fakeBdev(t, "base", newFake(512, 8, Info{}), 8)
	reader := s.open(t, "base", false)
	w1 := s.open(t, "base", true)
	w2, _ := s.reg.Open("base", true)
	if err := s.reg.Claim(reader, "crypt0"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("claim through a read-only desc: %v, want ErrReadOnly", err)
	}
	if err := s.reg.Claim(w1, "crypt0"); !errors.Is(err, ErrOtherWriters) {
		t.Errorf("claim with another writer open: %v, want ErrOtherWriters", err)
	}
	w2.Close()
	if err := s.reg.Claim(w1, "crypt0"); err != nil {
		t.Fatalf("claim as the only writer: %v", err)
	}
	if _, err := s.reg.Open("base", true); !errors.Is(err, ErrClaimed) || !strings.Contains(err.Error(), "crypt0") {
		t.Errorf("open for writing a claimed bdev: %v, want ErrClaimed naming crypt0", err)
	}
	if err := s.reg.Claim(w1, "raid0"); !errors.Is(err, ErrClaimed) {
		t.Errorf("second claim: %v, want ErrClaimed", err)
	}
	if d, err := s.reg.Open("base", false); err != nil {
		t.Errorf("read-only open of a claimed bdev: %v, want allowed", err)
	} else {
		d.Close()
	}
	w1.Close()
	if d, err := s.reg.Open("base", true); err != nil {
		t.Errorf("open for writing after the claimer closed: %v", err)
	} else {
		d.Close()
	}
	if _, err := s.reg.Open("nope", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("open of a missing bdev: %v, want ErrNotFound", err)
	}
}

func TestRegistryCreate(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	fake := DriverFunc(func(spec Spec) (Backend, error) { return newFake(int(spec.BlockSize), int(spec.Blocks), Info{}), nil })
	if err := s.reg.RegisterDriver("fake", fake); err != nil {
		t.Fatal(err)
	}
	if err := s.reg.RegisterDriver("fake", fake); !errors.Is(err, ErrDriverExists) {
		t.Errorf("second driver %q: %v, want ErrDriverExists", "fake", err)
	}
	b, err := s.reg.Create(Spec{Name: "a", Driver: "fake", BlockSize: 4096, Blocks: 16})
	if err != nil {
		t.Fatal(err)
	}
	if b.UUID().String() == "00000000-0000-0000-0000-000000000000" || b.Size() != 65536 {
		t.Errorf("bdev %q: UUID %v size %d, want a random UUID and 65536", b.Name(), b.UUID(), b.Size())
	}
	tests := []struct {
		spec Spec
		want error
		text string
	}{
		{Spec{Name: "a", Driver: "fake", BlockSize: 512, Blocks: 1}, ErrExists, `bdev "a"`},
		{Spec{Name: "b", Driver: "nope", BlockSize: 512, Blocks: 1}, ErrNoDriver, `driver "nope", want one of [fake]`},
		{Spec{Name: "c", Driver: "fake", BlockSize: 1000, Blocks: 1}, ErrSpec, "block size 1000, want a power of two in 512..65536"},
		{Spec{Name: "d", Driver: "fake", BlockSize: 512}, ErrSpec, "blocks 0, want > 0"},
		{Spec{Name: "e", Driver: "fake", BlockSize: 512, Blocks: 1, UUID: b.UUID()}, ErrExists, "already used by bdev \"a\""},
	}
	for _, tc := range tests {
		_, err := s.reg.Create(tc.spec)
		if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.text) {
			t.Errorf("Create(%+v): %v, want %v containing %q", tc.spec, err, tc.want, tc.text)
		}
	}
}

// TestNoResourcesSplitChildren: split children refused by a shallow back
// end park and go down as their siblings complete; the parent completes
// once, with its data right.
func TestNoResourcesSplitChildren(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	f := newFake(512, 256, Info{MaxTransferBlocks: 2})
	f.depth, f.async = 3, true
	s.fakeBdev(t, "f0", f, 256)
	ch := s.channel(t, s.open(t, "f0", true), 0)
	data, back := s.buf(t, 0, 64*512), s.buf(t, 0, 64*512)
	for i := range data {
		data[i] = byte(i * 7)
	}
	rec := newRecorder()
	s.submit(t, ch, rec, IOWrite, 10, 64, data, 1) // 32 children, 3 at a time
	s.submit(t, ch, rec, IORead, 100, 8, back[:8*512], 2)
	for range 2 {
		if res := rec.wait(t); res.status != StatusSuccess {
			t.Fatalf("IO %d: %v", res.tag, res.status)
		}
	}
	s.submit(t, ch, rec, IORead, 10, 64, back, 3)
	if res := rec.wait(t); res.status != StatusSuccess || !bytes.Equal(data, back) {
		t.Fatalf("read back: %v, equal %t", res.status, bytes.Equal(data, back))
	}
	s.call(t, 0, func() {
		if f.chans[0].refused == 0 {
			t.Error("the back end never refused a child: parking untested")
		}
		if l := s.reg.Local(s.set.Get(0)); l.FreeIOs() != testOptions.IOPoolSize {
			t.Errorf("%d IOs free, want %d", l.FreeIOs(), testOptions.IOPoolSize)
		}
	})
}
