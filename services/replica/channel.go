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
	c       *channel
	parent  *bdev.IO
	out     int
	sent    uint8 // members it was sent to
	ok      uint8 // members that completed it
	inSync  uint8 // members that were in sync when it was sent
	counted bool  // in c.inflight[ep] (X5): it changes data
	ep      uint8 // its epoch's parity
	posted  bool  // sent to the members; false while it waits for its intent (X2)
	fail    stage.Failure
	gen     uint64 // waiting: the metadata generation it needs (X2)
	next    *write // free list, then wait list
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

	// inflight: this channel's data-changing writes out, by their epoch's
	// parity; the owner adds, the sweeper reads (X5).
	inflight [2]atomic.Int32

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

// pickRead is the next in-sync member not in tried, round robin, or the
// first one while an unclean resync has yet to copy a region of io (X8);
// -1: none.
func (c *channel) pickRead(io *bdev.IO, tried uint64) int {
	n := c.s.membersN()
	if rb := c.s.resync.Load(); rb != nil && rb.uncopied(io.OffsetBlocks, io.Blocks) {
		for i := range n {
			if tried&(1<<i) == 0 && c.s.members[i].state.Load() == stateInSync {
				return i
			}
		}
		return -1
	}
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
	i := c.pickRead(io, 0)
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
		j := c.pickRead(child, child.Ctx[ctxTried])
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

// write marks io's regions dirty (X2) and sends it to every member that
// takes writes, or to none (stage S4).
func (c *channel) write(io *bdev.IO) {
	s := c.s
	w := c.free
	if w == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	c.free = w.next
	*w = write{c: c, parent: io}
	if changesData(io.Type) && io.Blocks > 0 {
		ep := c.enter(w)
		if gen := s.intend(ep, io.OffsetBlocks, io.Blocks); gen != 0 {
			c.park(w, gen)
			return
		}
	}
	c.send(w)
}

func changesData(t bdev.IOType) bool {
	return t == bdev.IOWrite || t == bdev.IOUnmap || t == bdev.IOWriteZeroes
}

// enter counts w in this channel's writes of the epoch now (X5) and returns
// the epoch. The epoch is read again after the count: a sweeper that moved
// it on between the two may have found the old parity's count zero, so
// the write counts itself in the new one instead.
func (c *channel) enter(w *write) uint64 {
	for {
		e := c.s.epoch.Load()
		c.inflight[e&1].Add(1)
		if c.s.epoch.Load() == e {
			w.counted, w.ep = true, uint8(e&1)
			return e
		}
		c.inflight[e&1].Add(-1)
	}
}

// drop completes a write that was never sent and frees its record.
func (c *channel) drop(w *write, st bdev.Status) {
	io := w.parent
	c.release(w)
	io.Complete(st)
}

// release leaves the epoch count and puts the record back on the free list.
func (c *channel) release(w *write) {
	if w.counted {
		c.inflight[w.ep].Add(-1)
		w.counted = false
	}
	w.parent = nil
	w.next = c.free
	c.free = w
}

// park queues w until the metadata reaches gen (X2): before it is sent when
// it waits for its intent, after its members answered when it waits for a
// member's state.
func (c *channel) park(w *write, gen uint64) {
	w.gen = gen
	w.next = nil
	if c.waitTail == nil {
		c.waitHead = w
	} else {
		c.waitTail.next = w
	}
	c.waitTail = w
	c.askFlush()
}

// send reads the member states and sends w to every member that takes
// writes (X1): after its intent, so a member made rebuilding after this
// read sees the region marked (X4).
func (c *channel) send(w *write) {
	s := c.s
	io := w.parent
	w.posted = true
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
			c.drop(w, bdev.StatusNoResources)
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
		c.drop(w, bdev.StatusFailed) // ErrNoSync: no copy would hold it
		return
	}
	w.out, w.sent, w.inSync = k, sent, inSync
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

// writeDone completes the write, or parks it until the metadata holds the
// state of a member that missed it (X2; its regions were marked before it
// was sent, and stay marked while a member is not in sync).
func (c *channel) writeDone(w *write) {
	s := c.s
	io := w.parent
	all := uint8(1)<<s.membersN() - 1
	missed := all &^ w.ok
	if missed != 0 && changesData(io.Type) && io.Blocks > 0 {
		s.markDirty(io.OffsetBlocks, io.Blocks) // marked already by its intent: costs a load
		if s.store != nil {
			if need := s.dirtyGen.Load(); s.persistedGen.Load() < need {
				c.park(w, need)
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
	c.release(w)
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

// released sends or completes the waiting writes the metadata now covers,
// in order.
func (c *channel) released() {
	c.woken.Store(false)
	persisted := c.s.persistedGen.Load()
	for c.waitHead != nil && c.waitHead.gen <= persisted {
		w := c.waitHead
		c.waitHead = w.next
		if c.waitHead == nil {
			c.waitTail = nil
		}
		w.next = nil
		if w.posted {
			c.finishWrite(w)
		} else {
			c.send(w)
		}
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
