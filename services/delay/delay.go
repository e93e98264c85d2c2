package delay

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
const Service = "delay"

const (
	// p99Every: one IO of a type in this many gets its p99 latency, what a
	// 99th percentile means.
	p99Every = 100
	// delayTimerPeriod is how often a reactor with held completions looks
	// at its lists: the resolution of the added latency, well under the
	// tens of microseconds anyone emulates.
	delayTimerPeriod = 10 * time.Microsecond
	// delayTimerLinger keeps the timer a while after the lists empty, so a
	// closed loop at queue depth 1 does not add and remove it per IO; as
	// long as the reactors' idle threshold, so an idle reactor still sleeps.
	delayTimerLinger = time.Millisecond
	// LatencyMax bounds a latency: past a minute an initiator has timed the
	// IO out, so it can only be a mistake.
	LatencyMax = time.Minute
)

// Latency is what one IO type waits: Avg for most IOs, P99 for one in
// p99Every (0: Avg for all).
type Latency struct {
	Avg, P99 time.Duration
}

// Config makes one delay stage.
type Config struct {
	Name string
	Base string
	UUID uuid.UUID
	// Latencies by IO type; a type left zero is not delayed.
	Latencies [bdev.IOTypeCount]Latency
}

// Stage is one delay stage: a stage.Backend.
type Stage struct {
	stage.Filter
	cfg   Config
	lat   [bdev.IOTypeCount][2]atomic.Int64 // [type][0 avg, 1 p99], nanoseconds
	held  atomic.Int64                      // completions held now, all reactors
	total atomic.Uint64                     // completions ever held
	chans []*channel                        // index: reactor index; slot i written on reactor i
}

// New opens and claims cfg.Base; stage.Add registers the result.
func New(reg *bdev.Registry, cfg Config) (*Stage, error) {
	for t, l := range cfg.Latencies {
		if err := checkLatency(cfg.Name, bdev.IOType(t), l); err != nil {
			return nil, err
		}
	}
	f, err := stage.OpenFilter(reg, Service, cfg.Name, cfg.UUID, cfg.Base)
	if err != nil {
		return nil, err
	}
	s := &Stage{Filter: f, cfg: cfg, chans: make([]*channel, reg.Set().Len())}
	for t, l := range cfg.Latencies {
		s.SetLatency(bdev.IOType(t), l)
	}
	return s, nil
}

func checkLatency(name string, t bdev.IOType, l Latency) error {
	for _, d := range []time.Duration{l.Avg, l.P99} {
		if d < 0 || d > LatencyMax {
			return fmt.Errorf("delay %q: %v latency %v, want 0..%v: %w", name, t, d, LatencyMax, stage.ErrConfig)
		}
	}
	return nil
}

// SetLatency changes t's latency; IOs submitted from now on take it.
func (s *Stage) SetLatency(t bdev.IOType, l Latency) error {
	if t >= bdev.IOTypeCount {
		return fmt.Errorf("delay %q: IO type %v: %w", s.cfg.Name, t, stage.ErrConfig)
	}
	if err := checkLatency(s.cfg.Name, t, l); err != nil {
		return err
	}
	if l.P99 == 0 {
		l.P99 = l.Avg
	}
	s.lat[t][0].Store(int64(l.Avg))
	s.lat[t][1].Store(int64(l.P99))
	return nil
}

// Latency is t's latency now.
func (s *Stage) Latency(t bdev.IOType) Latency {
	return Latency{time.Duration(s.lat[t][0].Load()), time.Duration(s.lat[t][1].Load())}
}

func (s *Stage) Service() string { return Service }

// Status is the stage's latencies and held completions.
type Status struct {
	ReadAvgUS  int64  `json:"avg_read_latency_us"`
	ReadP99US  int64  `json:"p99_read_latency_us"`
	WriteAvgUS int64  `json:"avg_write_latency_us"`
	WriteP99US int64  `json:"p99_write_latency_us"`
	Held       int64  `json:"held"`
	HeldTotal  uint64 `json:"held_total"`
}

func (s *Stage) Status() any {
	us := func(t bdev.IOType, i int) int64 { return s.lat[t][i].Load() / int64(time.Microsecond) }
	return Status{ReadAvgUS: us(bdev.IORead, 0), ReadP99US: us(bdev.IORead, 1),
		WriteAvgUS: us(bdev.IOWrite, 0), WriteP99US: us(bdev.IOWrite, 1),
		Held: s.held.Load(), HeldTotal: s.total.Load()}
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

// Child context words.
const (
	ctxLatency  = 0 // nanoseconds to hold the completion
	ctxDeadline = 1 // reactor clock time it may complete
)

// channel is the stage on one reactor. Owner: that reactor.
type channel struct {
	s     *Stage
	base  *bdev.Channel
	r     *reactors.Reactor
	clock reactors.Clock

	// Owner-only.
	lists   [bdev.IOTypeCount][2]stage.IOFIFO
	held    int
	ticks   [bdev.IOTypeCount]uint32 // IOs of each type, for the p99 share
	timer   *reactors.PollerHandle
	emptyAt time.Duration // when the lists last became empty
}

// Submit sends io down, noting the latency its completion will wait.
func (c *channel) Submit(io *bdev.IO) {
	child := stage.Child(c.base, io, c)
	if child == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	t := io.Type
	class := 0
	if c.ticks[t]++; c.ticks[t] == p99Every {
		c.ticks[t] = 0
		class = 1
	}
	child.Ctx[ctxLatency] = uint64(c.s.lat[t][class].Load())
	child.Ctx[ctxDeadline] = uint64(class)
	c.base.Submit(child)
}

// Complete holds the child until its deadline (D1), or finishes it at once
// when its latency is 0 (D3).
func (c *channel) Complete(child *bdev.IO) {
	lat := child.Ctx[ctxLatency]
	if lat == 0 {
		stage.Finish(child)
		return
	}
	class := child.Ctx[ctxDeadline]
	child.Ctx[ctxDeadline] = uint64(c.clock.Now()) + lat
	c.lists[child.Type][class].Push(child)
	c.held++
	c.s.held.Add(1)
	c.s.total.Add(1)
	if c.timer == nil {
		c.timer = c.r.AddTimer("delay-"+c.s.cfg.Name, delayTimerPeriod, c, nil)
	}
}

// Poll is the timer: finish every held child whose deadline has passed
// (D2), and remove the timer once idle for delayTimerLinger.
func (c *channel) Poll() int {
	now := c.clock.Now()
	if c.held == 0 {
		if now-c.emptyAt >= delayTimerLinger {
			c.r.RemovePoller(c.timer)
			c.timer = nil
		}
		return 0
	}
	n := 0
	for t := range c.lists {
		for k := range c.lists[t] {
			q := &c.lists[t][k]
			for q.Peek() != nil && time.Duration(q.Peek().Ctx[ctxDeadline]) <= now {
				child := q.Pop()
				c.held--
				n++
				stage.Finish(child)
			}
		}
	}
	c.s.held.Add(int64(-n))
	if c.held == 0 {
		c.emptyAt = now
	}
	return n
}

// Close removes the timer; nothing is held (D4).
func (c *channel) Close() error {
	if c.held != 0 {
		return fmt.Errorf("delay %q: %d completions held at close", c.s.cfg.Name, c.held)
	}
	if c.timer != nil {
		c.r.RemovePoller(c.timer)
		c.timer = nil
	}
	return nil
}
