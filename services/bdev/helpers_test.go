package bdev

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/reactors"
)

// waitTimeout bounds every wait in these tests; reaching it is a failure,
// never a measurement.
const waitTimeout = 10 * time.Second

// testOptions keep the pools small so tests start fast and can run dry.
var testOptions = Options{IOPoolSize: 256, BufSmallCount: 16, BufLargeCount: 2}

// stack is a reactor set and a registry with the test driver registered.
type stack struct {
	set *reactors.Set
	reg *Registry
}

func newStack(t testing.TB, reactorsN int, ro reactors.Options, o Options) *stack {
	t.Helper()
	ro.NoPin = true
	cores := make([]int, reactorsN)
	set, err := reactors.Start(cores, ro)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(set, o)
	if err != nil {
		set.Stop(waitTimeout)
		t.Fatal(err)
	}
	s := &stack{set: set, reg: reg}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
		if err := set.Stop(waitTimeout); err != nil {
			t.Error(err)
		}
	})
	return s
}

// call runs fn on reactor i and waits for it.
func (s *stack) call(t testing.TB, i int, fn func()) {
	t.Helper()
	if err := s.set.Get(i).Call(fn); err != nil {
		t.Fatal(err)
	}
}

// channel opens d's channel on reactor i.
func (s *stack) channel(t testing.TB, d *Desc, i int) *Channel {
	t.Helper()
	var ch *Channel
	var err error
	s.call(t, i, func() { ch, err = d.Channel(s.set.Get(i)) })
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// fakeBackend is a RAM disk on the Go heap whose behaviour tests set:
// complete inside Submit or from a poller, hold IO until released, refuse
// with StatusNoResources beyond a depth, fail given offsets.
type fakeBackend struct {
	info      Info
	blockSize int
	mem       []byte
	async     bool // complete from a poller, not inside Submit
	hold      bool // keep IO until release
	depth     int  // > 0: StatusNoResources when this many are at the back end
	failAt    map[uint64]Status
	chans     []*fakeChannel // by reactor index; each touched on its reactor
	closed    bool
}

func newFake(blockSize, blocks int, info Info) *fakeBackend {
	if info.IOTypes == 0 {
		info.IOTypes = IOTypesOf(IORead, IOWrite, IOFlush, IOUnmap, IOWriteZeroes, IOCompare)
	}
	return &fakeBackend{info: info, blockSize: blockSize, mem: make([]byte, blockSize*blocks), chans: make([]*fakeChannel, 8)}
}

func (f *fakeBackend) Info() Info { return f.info }

func (f *fakeBackend) NewChannel(l *Local) (ChannelBackend, error) {
	c := &fakeChannel{f: f, l: l}
	f.chans[l.Reactor().Index()] = c
	if f.async {
		c.poller = l.Reactor().AddPoller("fake", c, nil)
	}
	return c, nil
}

func (f *fakeBackend) Close() error { f.closed = true; return nil }

// fakeChannel is the fake on one reactor. Owner: that reactor.
type fakeChannel struct {
	f       *fakeBackend
	l       *Local
	poller  *reactors.PollerHandle
	queue   []*IO // async or held, in submission order
	out     int   // at the back end
	log     []string
	refused int
}

func (c *fakeChannel) Submit(io *IO) {
	c.log = append(c.log, fmt.Sprintf("%v %d+%d iov=%d", io.Type, io.OffsetBlocks, io.Blocks, len(io.Iovecs)))
	if c.f.depth > 0 && c.out >= c.f.depth {
		c.refused++
		io.Complete(StatusNoResources)
		return
	}
	c.out++
	if c.f.async || c.f.hold {
		c.queue = append(c.queue, io)
		return
	}
	c.do(io)
}

// Poll completes the queued IO (async mode) unless holding.
func (c *fakeChannel) Poll() int {
	if c.f.hold || len(c.queue) == 0 {
		return 0
	}
	return c.release(len(c.queue))
}

// release completes the n oldest queued IOs.
func (c *fakeChannel) release(n int) int {
	q := c.queue[:n]
	c.queue = append([]*IO(nil), c.queue[n:]...)
	for _, io := range q {
		c.do(io)
	}
	return n
}

func (c *fakeChannel) do(io *IO) {
	c.out--
	if st, ok := c.f.failAt[io.OffsetBlocks]; ok {
		io.Complete(st)
		return
	}
	off := int(io.OffsetBlocks) * c.f.blockSize
	n := int(io.Blocks) * c.f.blockSize
	switch io.Type {
	case IORead:
		src := c.f.mem[off : off+n]
		for _, v := range io.Iovecs {
			src = src[copy(v, src):]
		}
	case IOWrite:
		dst := c.f.mem[off : off+n]
		for _, v := range io.Iovecs {
			dst = dst[copy(dst, v):]
		}
	case IOUnmap, IOWriteZeroes:
		clear(c.f.mem[off : off+n])
	}
	io.Complete(StatusSuccess)
}

func (c *fakeChannel) Close() error {
	if c.poller != nil {
		c.l.Reactor().RemovePoller(c.poller)
	}
	return nil
}

// result is what a recorder saw of one completion.
type result struct {
	io      *IO
	status  Status
	reactor int
	tag     uint64
}

// recorder is a Completer that sends each completion to the test goroutine
// and can check that it never runs inside a Submit (B2).
type recorder struct {
	set        *reactors.Set // when set, result.reactor is where Complete ran
	done       chan result
	submitting bool // set around Submit calls made by the test on the reactor
	recursed   bool
	free       bool // free the IO on completion
}

func newRecorder() *recorder { return &recorder{done: make(chan result, 1024), free: true} }

func (r *recorder) Complete(io *IO) {
	if r.submitting {
		r.recursed = true
	}
	res := result{io: io, status: io.Status, reactor: -1, tag: io.Ctx[0]}
	if r.set != nil {
		for _, x := range r.set.All() {
			if x.IsCurrent() {
				res.reactor = x.Index()
			}
		}
	}
	if r.free {
		io.Free()
	}
	r.done <- res
}

func (r *recorder) wait(t testing.TB) result {
	t.Helper()
	select {
	case res := <-r.done:
		return res
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for a completion")
	}
	return result{}
}

// none checks that nothing completes before the reactors have turned a few
// times (a Call on each is a full turn of its loop).
func (r *recorder) none(t testing.TB, s *stack, what string) {
	t.Helper()
	for range 3 {
		for i := range s.set.Len() {
			s.call(t, i, func() {})
		}
	}
	select {
	case res := <-r.done:
		t.Fatalf("%s: IO %v %d+%d completed (%v), want it still pending", what, res.io.Type,
			res.io.OffsetBlocks, res.io.Blocks, res.status)
	default:
	}
}

// submit builds and submits one IO on ch from its reactor; buf may be nil.
func (s *stack) submit(t testing.TB, ch *Channel, rec *recorder, typ IOType, off, blocks uint64, buf []byte, tag uint64) {
	t.Helper()
	s.call(t, ch.owner.Index(), func() {
		io := ch.AllocIO()
		if io == nil {
			t.Error("IO pool empty")
			return
		}
		io.Type, io.OffsetBlocks, io.Blocks = typ, off, blocks
		if buf != nil {
			io.SetBuf(buf)
		}
		io.Completer = rec
		io.Ctx[0] = tag
		ch.Submit(io)
	})
}
