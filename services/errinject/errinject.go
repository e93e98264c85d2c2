package errinject

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage"
)

// Service is the stage's service name: SPDK's "error" bdev.
const Service = "error"

// CountUnlimited as Rule.Count fails every matching IO until Clear.
const CountUnlimited = -1

// Rule is one injection.
type Rule struct {
	// Types are the IO types it applies to.
	Types bdev.IOTypeSet
	// Status the IO completes with; StatusFailed when zero. StatusNoResources
	// is SPDK's nomem: the upper channel retries the IO (bdev B5).
	Status bdev.Status
	// NVMe is the detail of StatusNVMe (SPDK's nvme_failure).
	NVMe bdev.NVMeStatus
	// Count IOs fail in all (E2); CountUnlimited for no limit; 0 disables.
	Count int64
	// Probability in (0, 1] that a matching IO fails; 0 means 1.
	Probability float64
	// Seed of each reactor's generator (mixed with the reactor index).
	Seed uint64
	// CorruptValue, when not 0, makes the rule corrupt instead of fail: a
	// matching read succeeds with byte CorruptOffset of its data XORed with
	// it (SPDK's corrupt_data). Reads only (E4).
	CorruptOffset uint64
	CorruptValue  uint8
}

func (r *Rule) check(name string) error {
	switch {
	case r.Types == 0:
		return fmt.Errorf("error bdev %q: rule with no IO types, want at least one: %w", name, stage.ErrConfig)
	case r.Status == bdev.StatusPending || r.Status == bdev.StatusSuccess || !r.Status.Valid():
		return fmt.Errorf("error bdev %q: status %v, want a failure status: %w", name, r.Status, stage.ErrConfig)
	case r.Count < CountUnlimited:
		return fmt.Errorf("error bdev %q: count %d, want %d (unlimited), 0 (off) or more: %w", name, r.Count, CountUnlimited, stage.ErrConfig)
	case !(r.Probability >= 0 && r.Probability <= 1):
		return fmt.Errorf("error bdev %q: probability %v, want 0..1: %w", name, r.Probability, stage.ErrConfig)
	case r.CorruptValue != 0 && r.Types&^bdev.IOTypesOf(bdev.IORead) != 0:
		return fmt.Errorf("error bdev %q: corrupt_data on %v, want reads only (a write's buffer is the caller's): %w",
			name, r.Types, stage.ErrConfig)
	}
	return nil
}

// rule is a published Rule with its shared counters.
type rule struct {
	Rule
	threshold uint64       // a draw below it fails; MaxUint64: always
	remaining atomic.Int64 // failures left when Count > 0
	injected  atomic.Uint64
}

// ruleSet is immutable once published: the rule per IO type and a
// generation that tells channels to reseed.
type ruleSet struct {
	byType [bdev.IOTypeCount]*rule
	gen    uint64
}

// Config makes one error stage.
type Config struct {
	Name string // SPDK names it EE_<base>; "" takes that name
	Base string
	UUID uuid.UUID
}

// Stage is one error-injection stage: a stage.Backend.
type Stage struct {
	stage.Filter
	cfg   Config
	rules atomic.Pointer[ruleSet]

	// lock: Inject and Clear, which copy and republish the rule set; control
	// plane only.
	mu sync.Mutex
}

// New opens and claims cfg.Base; stage.Add registers the result.
func New(reg *bdev.Registry, cfg Config) (*Stage, error) {
	if cfg.Name == "" {
		cfg.Name = "EE_" + cfg.Base
	}
	f, err := stage.OpenFilter(reg, Service, cfg.Name, cfg.UUID, cfg.Base)
	if err != nil {
		return nil, err
	}
	s := &Stage{Filter: f, cfg: cfg}
	s.rules.Store(&ruleSet{})
	return s, nil
}

// Inject publishes r for each of its types, replacing what those types had.
func (s *Stage) Inject(r Rule) error {
	if r.Status == 0 {
		r.Status = bdev.StatusFailed
	}
	if err := r.check(s.cfg.Name); err != nil {
		return err
	}
	nr := &rule{Rule: r, threshold: math.MaxUint64}
	if p := math.Ldexp(r.Probability, 64); p > 0 && p < math.Ldexp(1, 64) {
		nr.threshold = uint64(p)
	}
	nr.remaining.Store(r.Count)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.rules.Load()
	next := &ruleSet{byType: old.byType, gen: old.gen + 1}
	for t := bdev.IOType(0); t < bdev.IOTypeCount; t++ {
		if r.Types.Has(t) {
			next.byType[t] = nr
			if r.Count == 0 {
				next.byType[t] = nil // SPDK: num 0 disables the injection
			}
		}
	}
	s.rules.Store(next)
	return nil
}

// Clear removes the rules of types (SPDK's io_type clear with "all").
func (s *Stage) Clear(types bdev.IOTypeSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.rules.Load()
	next := &ruleSet{byType: old.byType, gen: old.gen + 1}
	for t := bdev.IOType(0); t < bdev.IOTypeCount; t++ {
		if types.Has(t) {
			next.byType[t] = nil
		}
	}
	s.rules.Store(next)
}

func (s *Stage) Service() string { return Service }

// RuleStatus is one active rule on the debug endpoint.
type RuleStatus struct {
	IOType      string  `json:"io_type"`
	Status      string  `json:"status"`
	Remaining   int64   `json:"remaining"` // -1: unlimited
	Probability float64 `json:"probability"`
	Corrupt     bool    `json:"corrupt"`
	Injected    uint64  `json:"injected"`
}

// Status lists the active rules and what each has injected.
func (s *Stage) Status() any {
	set := s.rules.Load()
	out := []RuleStatus{}
	for t, r := range set.byType {
		if r == nil {
			continue
		}
		rem := r.remaining.Load()
		if r.Count == CountUnlimited {
			rem = CountUnlimited
		}
		out = append(out, RuleStatus{IOType: bdev.IOType(t).String(), Status: r.Status.String(),
			Remaining: max(rem, CountUnlimited), Probability: r.Probability, Corrupt: r.CorruptValue != 0,
			Injected: r.injected.Load()})
	}
	return out
}

// Injected is how many IOs the rules now published have failed or corrupted.
func (s *Stage) Injected() uint64 {
	set := s.rules.Load()
	var n uint64
	seen := map[*rule]bool{}
	for _, r := range set.byType {
		if r != nil && !seen[r] {
			seen[r] = true
			n += r.injected.Load()
		}
	}
	return n
}

// NewChannel opens the base's channel on this reactor.
func (s *Stage) NewChannel(l *bdev.Local) (bdev.ChannelBackend, error) {
	base, err := s.BaseChannel(l.Reactor())
	if err != nil {
		return nil, err
	}
	return &channel{s: s, base: base, index: uint64(l.Reactor().Index())}, nil
}

// channel is the stage on one reactor. Owner: that reactor.
type channel struct {
	s     *Stage
	base  *bdev.Channel
	index uint64

	// Owner-only.
	gen uint64 // generation the generator was seeded for
	rng uint64 // splitmix64 state
}

// Submit fails io when a rule says so (E3), else sends it down (E1).
func (c *channel) Submit(io *bdev.IO) {
	set := c.s.rules.Load()
	if r := set.byType[io.Type]; r != nil && r.CorruptValue == 0 && c.fires(set, r) {
		r.injected.Add(1)
		io.NVMe = r.NVMe
		io.Complete(r.Status)
		return
	}
	child := stage.Child(c.base, io, c)
	if child == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	c.base.Submit(child)
}

// fires draws for r: its probability, then its count (E2).
func (c *channel) fires(set *ruleSet, r *rule) bool {
	if r.threshold != math.MaxUint64 {
		if c.gen != set.gen {
			c.gen = set.gen
			c.rng = r.Seed ^ (c.index+1)*0x9e3779b97f4a7c15
		}
		if c.next() >= r.threshold {
			return false
		}
	}
	if r.Count == CountUnlimited {
		return true
	}
	return r.remaining.Add(-1) >= 0
}

// next is splitmix64: a full-period generator with one word of state.
func (c *channel) next() uint64 {
	c.rng += 0x9e3779b97f4a7c15
	z := c.rng
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Complete ends the upper IO, corrupting a read's data first when a rule
// says so (E4).
func (c *channel) Complete(child *bdev.IO) {
	if child.Status == bdev.StatusSuccess && child.Type == bdev.IORead {
		set := c.s.rules.Load()
		if r := set.byType[bdev.IORead]; r != nil && r.CorruptValue != 0 && c.fires(set, r) {
			corrupt(child.Iovecs, r.CorruptOffset%child.Parent.Bytes(), r.CorruptValue)
			r.injected.Add(1)
		}
	}
	stage.Finish(child)
}

// corrupt XORs byte off of the data in iovs with v.
func corrupt(iovs []bdev.Iovec, off uint64, v uint8) {
	for _, iov := range iovs {
		if off < uint64(len(iov)) {
			iov[off] ^= v
			return
		}
		off -= uint64(len(iov))
	}
}

func (c *channel) Close() error { return nil }
