package qos

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage"
)

// Service is the stage's service name.
const Service = "qos"

const (
	// qosTimeslice is the refill period: SPDK's QoS timeslice (1 ms), short
	// enough that a limit holds within a millisecond, long enough that a
	// slice of a 1000-IOPS limit is one whole IO.
	qosTimeslice = time.Millisecond
	// qosTimerPeriod: a reactor with throttled IO looks for tokens four
	// times a slice, so a refill is used within a quarter slice.
	qosTimerPeriod = qosTimeslice / 4
	// qosTimerLinger keeps the timer a slice after the queues empty, so a
	// load at the limit does not add and remove it per IO.
	qosTimerLinger = qosTimeslice
	// ioUnits are the IOPS bucket's tokens per IO: thousandths, so a limit
	// below 1000 IOPS still earns whole tokens every slice.
	ioUnits = 1000
	// refillSlicesMax bounds the slices one refill credits (anything past
	// one is capped anyway): keeps the product from overflowing after a
	// long idle stretch.
	refillSlicesMax = 1 << 20
	// MBytes is SPDK's megabyte in rw_mbytes_per_sec: 1024*1024 bytes.
	MBytes = 1 << 20
)

// Limits are a bdev's limits; 0 is unlimited.
type Limits struct {
	IOPS     uint64 // reads and writes per second (rw_ios_per_sec)
	BPS      uint64 // bytes per second, reads and writes (rw_mbytes_per_sec)
	ReadBPS  uint64 // bytes per second of reads (r_mbytes_per_sec)
	WriteBPS uint64 // bytes per second of writes (w_mbytes_per_sec)
}

// Config makes one qos stage.
type Config struct {
	Name   string
	Base   string
	UUID   uuid.UUID
	Limits Limits
}

// bucket is one limit's tokens, shared by every reactor.
type bucket struct {
	quantum atomic.Int64 // tokens per timeslice; 0: unlimited
	tokens  atomic.Int64
	slice   atomic.Int64 // the last timeslice credited
}

// refill credits the slices since the last one, once, capped (package doc).
func (b *bucket) refill(slice int64) {
	last := b.slice.Load()
	if slice <= last || !b.slice.CompareAndSwap(last, slice) {
		return
	}
	q := b.quantum.Load()
	add := q * min(slice-last, refillSlicesMax)
	for {
		old := b.tokens.Load()
		if b.tokens.CompareAndSwap(old, min(old+add, q)) {
			return
		}
	}
}

// bucket indexes.
const (
	bucketIOPS = iota
	bucketBPS
	bucketReadBPS
	bucketWriteBPS
	bucketCount
)

// Stage is one qos stage: a stage.Backend.
type Stage struct {
	stage.Filter
	cfg     Config
	buckets [bucketCount]bucket
	limited atomic.Bool // any quantum set
	limits  atomic.Pointer[Limits]
	clock   reactors.Clock
	chans   []*channel // index: reactor index; slot i written on reactor i

	throttled atomic.Uint64 // IOs that waited
	waiting   atomic.Int64  // IOs waiting now
	admitted  atomic.Uint64 // IOs that passed a limit check
}

// New opens and claims cfg.Base; stage.Add registers the result.
func New(reg *bdev.Registry, cfg Config) (*Stage, error) {
	f, err := stage.OpenFilter(reg, Service, cfg.Name, cfg.UUID, cfg.Base)
	if err != nil {
		return nil, err
	}
	s := &Stage{Filter: f, cfg: cfg, clock: reg.Set().Get(0).Clock(),
		chans: make([]*channel, reg.Set().Len())}
	s.SetLimits(cfg.Limits)
	return s, nil
}

// SetLimits replaces the limits; IO waiting now is released under the new
// ones. Control plane or any reactor.
func (s *Stage) SetLimits(l Limits) {
	slice := int64(s.clock.Now() / qosTimeslice)
	rates := [bucketCount]uint64{l.IOPS * ioUnits, l.BPS, l.ReadBPS, l.WriteBPS}
	limited := false
	for i, rate := range rates {
		b := &s.buckets[i]
		q := int64(rate / uint64(time.Second/qosTimeslice))
		if rate != 0 && q == 0 {
			q = 1 // a rate under one token per slice still trickles
		}
		b.quantum.Store(q)
		b.slice.Store(slice)
		b.tokens.Store(q)
		limited = limited || q != 0
	}
	s.limits.Store(&l)
	s.limited.Store(limited)
}

// Limits are the limits in force, as set (the buckets round them to whole
// tokens per timeslice).
func (s *Stage) Limits() Limits { return *s.limits.Load() }

func (s *Stage) Service() string { return Service }

// Status is the limits in SPDK's units and the throttling counters.
type Status struct {
	IOPS      uint64 `json:"rw_ios_per_sec"`
	MBPS      uint64 `json:"rw_mbytes_per_sec"`
	ReadMBPS  uint64 `json:"r_mbytes_per_sec"`
	WriteMBPS uint64 `json:"w_mbytes_per_sec"`
	Admitted  uint64 `json:"admitted"`
	Throttled uint64 `json:"throttled"`
	Waiting   int64  `json:"waiting"`
}

func (s *Stage) Status() any {
	l := s.Limits()
	return Status{IOPS: l.IOPS, MBPS: l.BPS / MBytes, ReadMBPS: l.ReadBPS / MBytes, WriteMBPS: l.WriteBPS / MBytes,
		Admitted: s.admitted.Load(), Throttled: s.throttled.Load(), Waiting: s.waiting.Load()}
}

// NewChannel opens the base's channel on this reactor.
func (s *Stage) NewChannel(l *bdev.Local) (bdev.ChannelBackend, error) {
	base, err := s.BaseChannel(l.Reactor())
	if err != nil {
		return nil, err
	}
	r := l.Reactor()
	c := &channel{s: s, base: base, r: r, clock: r.Clock()}
	s.chans[r.Index()] = c
	return c, nil
}

// class of an IO: which queue it waits in and which byte bucket it draws.
const (
	classRead = iota
	classWrite
	classCount
	classFree // never throttled: flush, reset
)

func classOf(t bdev.IOType) int {
	switch t {
	case bdev.IORead, bdev.IOCompare:
		return classRead
	case bdev.IOFlush, bdev.IOReset:
		return classFree
	}
	return classWrite
}

// channel is the stage on one reactor. Owner: that reactor.
type channel struct {
	s     *Stage
	base  *bdev.Channel
	r     *reactors.Reactor
	clock reactors.Clock

	// Owner-only.
	queues  [classCount]stage.IOFIFO
	waiting int
	timer   *reactors.PollerHandle
	emptyAt time.Duration
}

// Submit admits io within the limits or queues it (Q2, Q3).
func (c *channel) Submit(io *bdev.IO) {
	child := stage.Child(c.base, io, c)
	if child == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	class := classOf(io.Type)
	if class == classFree || !c.s.limited.Load() {
		c.base.Submit(child)
		return
	}
	q := &c.queues[class]
	if q.Peek() == nil && c.admit(child, class, c.clock.Now()) {
		c.base.Submit(child)
		return
	}
	q.Push(child)
	c.waiting++
	c.s.waiting.Add(1)
	c.s.throttled.Add(1)
	if c.timer == nil {
		c.timer = c.r.AddTimer("qos-"+c.s.cfg.Name, qosTimerPeriod, c, nil)
	}
}

// admit takes child's cost from every bucket it draws on, if each has
// tokens left (Q1).
func (c *channel) admit(child *bdev.IO, class int, now time.Duration) bool {
	s := c.s
	slice := int64(now / qosTimeslice)
	byteBucket := bucketReadBPS
	if class == classWrite {
		byteBucket = bucketWriteBPS
	}
	draws := [3]int{bucketIOPS, bucketBPS, byteBucket}
	for _, i := range draws {
		b := &s.buckets[i]
		if b.quantum.Load() == 0 {
			continue
		}
		b.refill(slice)
		if b.tokens.Load() <= 0 {
			return false
		}
	}
	bytes := int64(0)
	if child.Type.HasData() {
		bytes = int64(child.Blocks) * int64(s.Base().BlockSize())
	}
	costs := [3]int64{ioUnits, bytes, bytes}
	for k, i := range draws {
		if s.buckets[i].quantum.Load() != 0 {
			s.buckets[i].tokens.Add(-costs[k])
		}
	}
	s.admitted.Add(1)
	return true
}

// Poll is the timer: release queued IO, oldest first, while the buckets
// allow (Q2); remove the timer after qosTimerLinger without any.
func (c *channel) Poll() int {
	now := c.clock.Now()
	if c.waiting == 0 {
		if now-c.emptyAt >= qosTimerLinger {
			c.r.RemovePoller(c.timer)
			c.timer = nil
		}
		return 0
	}
	n := 0
	limited := c.s.limited.Load()
	for class := range c.queues {
		q := &c.queues[class]
		for q.Peek() != nil && (!limited || c.admit(q.Peek(), class, now)) {
			child := q.Pop()
			c.waiting--
			n++
			c.base.Submit(child)
		}
	}
	c.s.waiting.Add(int64(-n))
	if c.waiting == 0 {
		c.emptyAt = now
	}
	return n
}

// Complete ends the upper IO with the child's status.
func (c *channel) Complete(child *bdev.IO) { stage.Finish(child) }

// Close removes the timer; nothing waits (Q4).
func (c *channel) Close() error {
	if c.waiting != 0 {
		return fmt.Errorf("qos %q: %d IOs waiting at close", c.s.cfg.Name, c.waiting)
	}
	if c.timer != nil {
		c.r.RemovePoller(c.timer)
		c.timer = nil
	}
	return nil
}
