package replica

import (
	"sync/atomic"

	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage"
)

// NewChannel makes the stage's state on this reactor; member channels are
// opened on first use (and again after a replacement).
func (s *Stage) NewChannel(l *bdev.Local) (bdev.ChannelBackend, error) {
	c := &channel{s: s, r: l.Reactor(), writes: make([]write, writesMax)}
	c.ask.c, c.done.c = c, c
	for i := range c.writes {
		w := &c.writes[i]
		w.c = c
		w.next = c.free
		c.free = w
	}
	s.chanSlot(c.r.Index()).Store(c)
	return c, nil
}

// chanSlot is reactor i's channel, for the home reactor's wake-ups.
func (s *Stage) chanSlot(i int) *atomic.Pointer[channel] { return &s.chanPtrs[i] }

// write is one upper IO that changes data (or flushes, or resets), sent to
// every member that takes writes. Owner: its channel's reactor.
type write struct {
	c      *channel
	parent *bdev.IO
	out    int
	sent   uint8 // members it was sent to
	ok     uint8 // members that completed it
	inSync uint8 // members that were in sync when it was sent
	fail   stage.Failure
	gen    uint64 // waiting: the metadata generation it needs (X2)
	next   *write // free list, then wait list
}

// Child context words.
const (
	ctxMember = 0 // the member the child went to
	ctxTried  = 1 // reads: the members tried, a mask
)

// channel is the stage on one reactor. Owner: that reactor.
type channel struct {
	s *Stage
	r *reactors.Reactor

	// Owner-only.
	bases    [MembersMax]*bdev.Channel
	gens     [MembersMax]uint32
	rr       int // read round robin
	writes   []write
	free     *write
	waitHead *write // writes waiting for the metadata (X2), oldest first
	waitTail *write

	// Posted to the home reactor and back; the flags say a post is in the
	// ring, so each is posted once at a time (set here, cleared there).
	ask   askMsg
	done  doneMsg
	asked atomic.Bool
	woken atomic.Bool
}

// base is member i's channel on this reactor, opened again when the member
// was replaced; nil when it cannot be opened.
func (c *channel) base(i int) *bdev.Channel {
	m := &c.s.members[i]
	if g := m.gen.Load(); c.bases[i] == nil || c.gens[i] != g {
		ch, err := m.desc.Load().Channel(c.r)
		if err != nil {
			return nil
		}
		c.bases[i], c.gens[i] = ch, g
	}
	return c.bases[i]
}

// Submit routes io: reads and compares to one in-sync member (X3), the rest
// to every member that takes writes (X1).
func (c *channel) Submit(io *bdev.IO) {
	switch io.Type {
	case bdev.IORead, bdev.IOCompare:
		c.read(io)
	default:
		c.write(io)
	}
}

// pickRead is the next in-sync member not in tried, round robin; -1: none.
func (c *channel) pickRead(tried uint64) int {
	n := c.s.membersN()
	for k := range n {
		i := (c.rr + k) % n
		if tried&(1<<i) == 0 && c.s.members[i].state.Load() == stateInSync {
			c.rr = i + 1
			return i
		}
	}
	return -1
}

func (c *channel) read(io *bdev.IO) {
	i := c.pickRead(0)
	if i < 0 {
		io.Complete(bdev.StatusFailed) // ErrNoSync: nothing can serve it
		return
	}
	base := c.base(i)
	if base == nil {
		c.s.fault(i)
		c.read(io)
		return
	}
	child := stage.Child(base, io, c)
	if child == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	child.Ctx[ctxMember], child.Ctx[ctxTried] = uint64(i), 1<<i
	base.Submit(child)
}

// Complete ends a read, or retries it on another in-sync member after
// marking the one that failed faulty (X3).
func (c *channel) Complete(child *bdev.IO) {
	st := child.Status
	switch st {
	case bdev.StatusSuccess, bdev.StatusMiscompare, bdev.StatusInvalid, bdev.StatusOutOfRange, bdev.StatusUnsupported:
		stage.Finish(child) // done, or the request's own fault: another member would say the same
		return
	case bdev.StatusFailed, bdev.StatusNVMe, bdev.StatusSCSI, bdev.StatusErrno:
		c.s.fault(int(child.Ctx[ctxMember]))
	}
	for {
		j := c.pickRead(child.Ctx[ctxTried])
		if j < 0 {
			stage.Finish(child)
			return
		}
		child.Ctx[ctxTried] |= 1 << j
		if base := c.base(j); base != nil {
			child.Ctx[ctxMember] = uint64(j)
			base.Submit(child)
			return
		}
		c.s.fault(j)
	}
}

// write sends io to every member that takes writes, or to none (stage S4).
func (c *channel) write(io *bdev.IO) {
	s := c.s
	w := c.free
	if w == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	var kids [MembersMax]*bdev.IO
	var sent, inSync uint8
	k := 0
	for i := range s.membersN() {
		st := s.members[i].state.Load()
		if st == stateFaulty {
			continue
		}
		base := c.base(i)
		if base == nil {
			s.fault(i)
			continue
		}
		child := stage.Child(base, io, w)
		if child == nil {
			for _, kid := range kids[:k] {
				kid.Free()
			}
			io.Complete(bdev.StatusNoResources)
			return
		}
		child.Ctx[ctxMember] = uint64(i)
		kids[k] = child
		k++
		sent |= 1 << i
		if st == stateInSync {
			inSync |= 1 << i
		}
	}
	if inSync == 0 {
		for _, kid := range kids[:k] {
			kid.Free()
		}
		io.Complete(bdev.StatusFailed) // ErrNoSync: no copy would hold it
		return
	}
	c.free = w.next
	*w = write{c: c, parent: io, out: k, sent: sent, inSync: inSync}
	for _, kid := range kids[:k] {
		c.base(int(kid.Ctx[ctxMember])).Submit(kid)
	}
}

// Complete folds one member's answer into its write (X1).
func (w *write) Complete(child *bdev.IO) {
	i := int(child.Ctx[ctxMember])
	if child.Status == bdev.StatusSuccess {
		w.ok |= 1 << i
	} else {
		w.fail.Note(child)
		w.c.s.fault(i)
	}
	child.Free()
	if w.out--; w.out == 0 {
		w.c.writeDone(w)
	}
}

// writeDone marks what some member missed (X2) and completes the write, or
// parks it until the metadata holds the marks.
func (c *channel) writeDone(w *write) {
	s := c.s
	io := w.parent
	all := uint8(1)<<s.membersN() - 1
	missed := all &^ w.ok
	if missed != 0 && (io.Type == bdev.IOWrite || io.Type == bdev.IOUnmap || io.Type == bdev.IOWriteZeroes) {
		s.markDirty(io.OffsetBlocks, io.Blocks)
		if s.store != nil {
			if need := s.dirtyGen.Load(); s.persistedGen.Load() < need {
				w.gen = need
				w.next = nil
				if c.waitTail == nil {
					c.waitHead = w
				} else {
					c.waitTail.next = w
				}
				c.waitTail = w
				c.askFlush()
				return
			}
		}
	}
	c.finishWrite(w)
}

// finishWrite completes the upper IO: success when an in-sync member
// stored it (X1), else the first failure.
func (c *channel) finishWrite(w *write) {
	io := w.parent
	stored := w.ok&w.inSync != 0
	w.parent = nil
	w.next = c.free
	c.free = w
	if stored {
		w.fail.Status = bdev.StatusPending
		io.Complete(bdev.StatusSuccess)
		return
	}
	if w.fail.Status == bdev.StatusPending {
		w.fail.Status = bdev.StatusFailed
	}
	w.fail.Complete(io)
}

// askFlush asks the home reactor to persist the metadata, once at a time.
func (c *channel) askFlush() {
	if c.asked.CompareAndSwap(false, true) {
		c.s.home.Schedule(&c.ask)
	}
}

// wake tells this channel (from the home reactor) that the metadata moved on.
func (c *channel) wake() {
	if c.woken.CompareAndSwap(false, true) {
		c.r.Schedule(&c.done)
	}
}

// released completes the waiting writes the metadata now covers, in order.
func (c *channel) released() {
	c.woken.Store(false)
	persisted := c.s.persistedGen.Load()
	for c.waitHead != nil && c.waitHead.gen <= persisted {
		w := c.waitHead
		c.waitHead = w.next
		if c.waitHead == nil {
			c.waitTail = nil
		}
		c.finishWrite(w)
	}
	if c.waitHead != nil {
		c.askFlush()
	}
}

// askMsg is a channel's request for a metadata flush, delivered on the home
// reactor.
type askMsg struct{ c *channel }

func (m *askMsg) Deliver() {
	m.c.asked.Store(false)
	m.c.s.store.want()
}

// doneMsg wakes a channel's waiting writes, delivered on its reactor.
type doneMsg struct{ c *channel }

func (m *doneMsg) Deliver() { m.c.released() }

// Close forgets the channel; nothing is in flight (the layer checks).
func (c *channel) Close() error {
	c.s.chanSlot(c.r.Index()).Store(nil)
	return nil
}
