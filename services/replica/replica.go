package replica

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage"
)

// Service is the stage's service name; SPDK's RPCs call it raid1.
const Service = "replica"

const (
	// MembersMax copies: three is the usual mirror; eight leaves room for
	// replacements next to a wide mirror, and a member mask fits a byte.
	MembersMax = 8
	// RegionSizeDefault is the unit of the dirty bitmap and of a rebuild's
	// copy: 1 MiB, so a 64 GiB replica's bitmap is 8 KiB and a copy is a few
	// large IOs.
	RegionSizeDefault = 1 << 20
	// regionsMax bounds the bitmap at 1 MiB: 8 TiB at the default region.
	regionsMax = 1 << 23
	// writesMax write records per reactor: a queue depth of 128 on two
	// connections; past it, backpressure (stage S4).
	writesMax = 256
	// quiesceTimeout bounds the drain when a member is replaced.
	quiesceTimeout = 10 * time.Second
	// CleanDelayDefault is how long a region goes unwritten, with every
	// member in sync, before its dirty bit is cleared (X5): long enough that
	// a hot region is marked once and costs nothing after, short enough
	// that a crash resyncs only what was written in the last seconds (Linux
	// md's bitmap daemon sleeps 5 s between its sweeps).
	CleanDelayDefault = time.Second
)

// Member states, in member.state.
const (
	stateInSync uint32 = iota + 1
	stateRebuilding
	stateFaulty
)

var stateNames = map[uint32]string{stateInSync: "in-sync", stateRebuilding: "rebuilding", stateFaulty: "faulty"}

// replicaTypes are what a mirror can do when every member does it.
var replicaTypes = bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap,
	bdev.IOWriteZeroes, bdev.IOReset, bdev.IOCompare)

// Config makes one replica stage.
type Config struct {
	Name    string
	Members []string // base bdevs, 1..MembersMax, one block size
	// Metadata names the bdev that keeps member states, the dirty bitmap
	// and the clean flag across restarts (X7); "" keeps the bitmap in
	// memory, and a restart knows nothing of the run before it.
	Metadata string
	// RegionSize bytes: a power of two, a multiple of the block size; 0
	// takes RegionSizeDefault.
	RegionSize uint64
	// RebuildRate bounds a rebuild's copy in bytes per second; 0: as fast
	// as the members go.
	RebuildRate uint64
	// CleanDelay is the sweeper's period: a dirty region no write entered
	// for a whole period, with every member in sync, is cleared (X5); 0
	// takes CleanDelayDefault.
	CleanDelay time.Duration
	UUID       uuid.UUID
	// Logger gets member failures and rebuild progress; nil: slog.Default.
	Logger *slog.Logger
}

// member is one mirror copy. Its fields are atomics: the control plane
// writes them, every reactor reads them.
type member struct {
	desc      atomic.Pointer[bdev.Desc]
	gen       atomic.Uint32 // bumped when desc changes, so channels reopen
	state     atomic.Uint32
	needsFull atomic.Bool   // holds nothing of the replica, or lost its bitmap (X5)
	failures  atomic.Uint64 // IOs that failed on it
}

// Stage is one replica stage: a stage.Backend.
type Stage struct {
	cfg          Config
	reg          *bdev.Registry
	log          *slog.Logger
	n            atomic.Int32 // members in use; grows under a quiesce (AddMember)
	members      [MembersMax]member
	blockSize    uint32
	blocks       uint64
	regionBlocks uint64
	regionShift  uint
	regions      uint64
	info         bdev.Info
	home         *reactors.Reactor         // runs the flusher and the rebuilder
	chanPtrs     []atomic.Pointer[channel] // index: reactor index; slot i written on reactor i

	dirty        []atomic.Uint64 // bit r: the members may differ on region r (X2)
	synced       []atomic.Uint64 // bit r: dirty, and so on the metadata bdev: a write goes at once (X2)
	dirtyGen     atomic.Uint64   // bumped when a bit or a member state changes
	persistedGen atomic.Uint64   // the newest gen on the metadata bdev
	store        *metaStore      // nil without a metadata bdev

	// The sweeper (X5): a write counts itself in its channel's inflight
	// for its epoch's parity and sets its regions' bits in touched[parity];
	// the sweeper, on the home reactor, clears the dirty bits of regions
	// neither parity touched and then moves the epoch on.
	epoch   atomic.Uint64
	touched [2][]atomic.Uint64
	sweep   *reactors.PollerHandle // home reactor only
	copying atomic.Bool            // a rebuild or resync runs: the sweeper clears nothing

	// unclean: the metadata said the stage was running when it stopped
	// (X7); the resync that makes the in-sync members agree on the dirty
	// regions has not finished. resync: that resync while it runs; reads of
	// a region it has yet to copy go to the first in-sync member (X8).
	unclean atomic.Bool
	resync  atomic.Pointer[rebuilder]

	// lock: replacement, rebuild start and stop, and the fields below; the
	// control plane only.
	mu         sync.Mutex
	rebuild    *rebuilder
	lastResync *rebuilder // the resync after an unclean shutdown, for Status
	wasUnclean bool       // the metadata said so at load
	closed     bool
}

// New opens and claims the members (and the metadata bdev), reads the
// metadata if any, and returns the stage; stage.Add registers it, then
// Start resumes a resync the metadata asks for.
func New(reg *bdev.Registry, cfg Config) (*Stage, error) {
	if len(cfg.Members) == 0 || len(cfg.Members) > MembersMax {
		return nil, fmt.Errorf("replica %q: %d members, want 1..%d: %w", cfg.Name, len(cfg.Members), MembersMax, stage.ErrConfig)
	}
	if cfg.RegionSize == 0 {
		cfg.RegionSize = RegionSizeDefault
	}
	if cfg.CleanDelay == 0 {
		cfg.CleanDelay = CleanDelayDefault
	}
	if cfg.CleanDelay < 0 {
		return nil, fmt.Errorf("replica %q: clean delay %v, want a positive duration: %w", cfg.Name, cfg.CleanDelay, stage.ErrConfig)
	}
	names := cfg.Members
	if cfg.Metadata != "" {
		names = append(append([]string(nil), names...), cfg.Metadata)
	}
	bases, err := stage.OpenBases(reg, cfg.Name, names)
	if err != nil {
		return nil, err
	}
	s, err := newStage(reg, cfg, bases)
	if err != nil {
		bases.Close()
		return nil, err
	}
	return s, nil
}

func newStage(reg *bdev.Registry, cfg Config, bases *stage.Bases) (*Stage, error) {
	s := &Stage{cfg: cfg, reg: reg, log: cfg.Logger, chanPtrs: make([]atomic.Pointer[channel], reg.Set().Len())}
	s.n.Store(int32(len(cfg.Members)))
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("stage", cfg.Name)
	memberBases := &stage.Bases{Descs: bases.Descs[:s.membersN()]}
	bs, err := memberBases.SameBlockSize(cfg.Name)
	if err != nil {
		return nil, err
	}
	s.blockSize = bs
	rs := cfg.RegionSize
	if bits.OnesCount64(rs) != 1 || rs < uint64(bs) || rs > 1<<30 {
		return nil, fmt.Errorf("replica %q: region size %d bytes, want a power of two from the block size %d to 1 GiB: %w",
			cfg.Name, rs, bs, stage.ErrConfig)
	}
	s.regionBlocks = rs / uint64(bs)
	s.regionShift = uint(bits.TrailingZeros64(s.regionBlocks))
	s.blocks = ^uint64(0)
	s.info = bdev.Info{IOTypes: replicaTypes, UnmapZeroes: true, MaxIovecs: bdev.IovecsInlineMax}
	for i, d := range memberBases.Descs {
		s.blocks = min(s.blocks, d.Bdev().Blocks())
		combine(&s.info, d.Bdev().Info())
		m := &s.members[i]
		m.desc.Store(d)
		m.state.Store(stateInSync)
	}
	s.regions = (s.blocks + s.regionBlocks - 1) >> s.regionShift
	if s.regions > regionsMax {
		return nil, fmt.Errorf("replica %q: %d regions of %d bytes, want at most %d: raise region_size: %w",
			cfg.Name, s.regions, rs, regionsMax, stage.ErrConfig)
	}
	words := (s.regions + 63) / 64
	s.dirty = make([]atomic.Uint64, words)
	s.synced = make([]atomic.Uint64, words)
	s.touched = [2][]atomic.Uint64{make([]atomic.Uint64, words), make([]atomic.Uint64, words)}
	s.home = memberBases.Descs[0].Bdev().Owner()
	if cfg.Metadata != "" {
		md := bases.Descs[s.membersN()]
		if s.store, err = openStore(s, md); err != nil {
			return nil, err
		}
		if err := s.store.load(); err != nil {
			s.store.close()
			return nil, err
		}
	}
	if err := s.home.Call(func() {
		s.sweep = s.home.AddTimer("replica-sweep-"+cfg.Name, cfg.CleanDelay, reactors.PollFunc(s.sweepOnce), nil)
	}); err != nil {
		if s.store != nil {
			s.store.close()
		}
		return nil, err
	}
	return s, nil
}

// membersN is how many member slots are in use.
func (s *Stage) membersN() int { return int(s.n.Load()) }

// combine narrows info to what base can take too.
func combine(info *bdev.Info, bi bdev.Info) {
	info.IOTypes &= bi.IOTypes
	info.UnmapZeroes = info.UnmapZeroes && bi.UnmapZeroes
	if bi.MaxTransferBlocks != 0 && (info.MaxTransferBlocks == 0 || bi.MaxTransferBlocks < info.MaxTransferBlocks) {
		info.MaxTransferBlocks = bi.MaxTransferBlocks
	}
	if bi.MaxUnmapBlocks != 0 && (info.MaxUnmapBlocks == 0 || bi.MaxUnmapBlocks < info.MaxUnmapBlocks) {
		info.MaxUnmapBlocks = bi.MaxUnmapBlocks
	}
	if bi.MaxIovecs != 0 {
		info.MaxIovecs = min(info.MaxIovecs, bi.MaxIovecs)
	}
	info.BufAlign = max(info.BufAlign, bi.BufAlign)
}

// Spec is the smallest member's capacity under the stage's name.
func (s *Stage) Spec() bdev.Spec { return stage.Spec(s.cfg.Name, s.cfg.UUID, s.blockSize, s.blocks) }

func (s *Stage) Name() string    { return s.cfg.Name }
func (s *Stage) Service() string { return Service }
func (s *Stage) Info() bdev.Info { return s.info }

// Bases are the members' bdevs now (a replacement changes them), then the
// metadata bdev.
func (s *Stage) Bases() []string {
	var out []string
	for i := range s.membersN() {
		out = append(out, s.members[i].desc.Load().Bdev().Name())
	}
	if s.store != nil {
		out = append(out, s.store.desc.Bdev().Name())
	}
	return out
}

// Start resumes what the metadata says is unfinished (stage.Add calls it
// once the bdev exists): after an unclean shutdown the dirty regions are
// resynced among the in-sync members first (X7), then a member persisted
// stale or empty is rebuilt.
func (s *Stage) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resume()
}

// resume starts the next copy the stage owes itself, one at a time: the
// unclean-shutdown resync, else the first faulty member (the rest wait for
// ReAdd). s.mu held.
func (s *Stage) resume() error {
	if s.unclean.Load() {
		return s.startResync()
	}
	for i := range s.membersN() {
		if s.members[i].state.Load() == stateFaulty {
			return s.startRebuild(i, s.members[i].needsFull.Load())
		}
	}
	return nil
}

// Close stops a rebuild and releases members and metadata; with a metadata
// bdev it records a clean stop first (X7): no write is in flight (the bdev
// layer calls Close after closing every channel of the stage), so with
// every member in sync the bitmap is cleared, and the next start resyncs
// nothing. A stale member keeps its bits; an unclean resync that did not
// finish keeps the stop unclean, so the next start resumes it.
func (s *Stage) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true // no copy starts from now on, not even the one a finished resync chains to
	s.mu.Unlock()
	s.StopRebuild()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.home.Call(func() {
		if s.sweep != nil {
			s.home.RemovePoller(s.sweep)
			s.sweep = nil
		}
	})
	if s.store != nil && !s.store.failed.Load() {
		clean := !s.unclean.Load()
		if clean && s.allInSync() {
			for i := range s.dirty {
				s.dirty[i].Store(0)
				s.synced[i].Store(0)
			}
		}
		if err := s.persistStop(clean); err != nil {
			s.log.Error("replica metadata: the clean stop was not recorded; the next start resyncs the dirty regions",
				"err", err)
		}
	}
	for i := range s.membersN() {
		s.members[i].desc.Load().Close()
	}
	if s.store != nil {
		s.store.close()
	}
	return nil
}

// allInSync: every member is in sync.
func (s *Stage) allInSync() bool {
	for i := range s.membersN() {
		if s.members[i].state.Load() != stateInSync {
			return false
		}
	}
	return true
}

// inSyncMask is the members in sync now, a bit each.
func (s *Stage) inSyncMask() uint8 {
	var m uint8
	for i := range s.membersN() {
		if s.members[i].state.Load() == stateInSync {
			m |= 1 << i
		}
	}
	return m
}

// MemberStatus is one member on the debug endpoint.
type MemberStatus struct {
	Name     string `json:"name"`
	UUID     string `json:"uuid"`
	State    string `json:"state"`
	Failures uint64 `json:"failures"`
	Full     bool   `json:"needs_full_rebuild,omitempty"`
}

// Status is the mirror's members, bitmap and rebuild.
type Status struct {
	Members      []MemberStatus `json:"members"`
	InSync       int            `json:"in_sync"`
	DirtyRegions uint64         `json:"dirty_regions"`
	Regions      uint64         `json:"regions"`
	RegionSize   uint64         `json:"region_size"`
	Metadata     string         `json:"metadata,omitempty"`
	// Rebuild is the copy running now, or the last one started.
	Rebuild *RebuildStatus `json:"rebuild,omitempty"`
	// UncleanShutdown: the metadata said the stage was running when it
	// last stopped (X7); UncleanResync is the resync that followed: how many
	// regions and bytes it copied of the replica's.
	UncleanShutdown bool           `json:"unclean_shutdown,omitempty"`
	UncleanResync   *RebuildStatus `json:"unclean_resync,omitempty"`
}

// RebuildStatus is a rebuild's or resync's progress.
type RebuildStatus struct {
	// Kind: "full" (a replacement, everything), "resync" (a member back,
	// the regions the bitmap marks), "unclean" (after an unclean shutdown,
	// the dirty regions from the first in-sync member to the others).
	Kind        string   `json:"kind"`
	Target      string   `json:"target,omitempty"`
	Source      string   `json:"source,omitempty"` // unclean: the member copied from
	Targets     []string `json:"targets,omitempty"`
	Full        bool     `json:"full"`
	RegionsDone uint64   `json:"regions_done"`
	Regions     uint64   `json:"regions"`
	BytesDone   uint64   `json:"bytes_done"`
	Bytes       uint64   `json:"bytes"`
	Percent     float64  `json:"percent"`
	RateLimit   uint64   `json:"rate_limit_bytes_per_sec"`
	State       string   `json:"state"`
	Error       string   `json:"error,omitempty"`
}

func (s *Stage) Status() any {
	st := Status{Regions: s.regions, RegionSize: s.regionBlocks * uint64(s.blockSize), DirtyRegions: s.dirtyCount()}
	for i := range s.membersN() {
		m := &s.members[i]
		b := m.desc.Load().Bdev()
		state := m.state.Load()
		if state == stateInSync {
			st.InSync++
		}
		st.Members = append(st.Members, MemberStatus{Name: b.Name(), UUID: b.UUID().String(),
			State: stateNames[state], Failures: m.failures.Load(), Full: m.needsFull.Load()})
	}
	if s.store != nil {
		st.Metadata = s.store.desc.Bdev().Name()
	}
	s.mu.Lock()
	rb, last := s.rebuild, s.lastResync
	st.UncleanShutdown = s.wasUnclean
	s.mu.Unlock()
	if rb != nil {
		st.Rebuild = rb.status()
	}
	if last != nil {
		st.UncleanResync = last.status()
	}
	return st
}

// Metrics are the rebuild's progress and each member's state and failures.
func (st Status) Metrics() []stage.Metric {
	var out []stage.Metric
	for _, m := range st.Members {
		out = append(out,
			stage.Metric{Name: "replica_member_in_sync", Help: "1 when the member is in sync.",
				Value: b2f(m.State == "in-sync"), Labels: []string{"member", m.Name}},
			stage.Metric{Name: "replica_member_failures", Help: "IOs that failed on the member.",
				Value: float64(m.Failures), Labels: []string{"member", m.Name}})
	}
	out = append(out, stage.Metric{Name: "replica_dirty_regions", Help: "Regions the members may differ on: written lately, or missed by a member.",
		Value: float64(st.DirtyRegions)})
	if rb := st.Rebuild; rb != nil {
		out = append(out, stage.Metric{Name: "replica_rebuild_regions_done", Help: "Regions the running or last rebuild copied.",
			Value: float64(rb.RegionsDone), Labels: []string{"member", rb.Target, "kind", rb.Kind}},
			stage.Metric{Name: "replica_rebuild_bytes_done", Help: "Bytes the running or last rebuild copied.",
				Value: float64(rb.BytesDone), Labels: []string{"member", rb.Target, "kind", rb.Kind}})
	}
	if rs := st.UncleanResync; rs != nil {
		out = append(out, stage.Metric{Name: "replica_unclean_resync_regions_done",
			Help: "Regions the resync after the last unclean shutdown copied.", Value: float64(rs.RegionsDone)},
			stage.Metric{Name: "replica_unclean_resync_bytes_done",
				Help: "Bytes the resync after the last unclean shutdown copied.", Value: float64(rs.BytesDone)})
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// memberIndex finds a member by its bdev's name.
func (s *Stage) memberIndex(name string) (int, error) {
	for i := range s.membersN() {
		if s.members[i].desc.Load().Bdev().Name() == name {
			return i, nil
		}
	}
	return -1, fmt.Errorf("replica %q: no member %q, want one of %v: %w", s.cfg.Name, name, s.Bases()[:s.membersN()], stage.ErrConfig)
}

// fault marks member i faulty, once: the data path's answer to a failed IO
// (X1, X3). It runs on any reactor.
func (s *Stage) fault(i int) {
	s.members[i].failures.Add(1)
	s.setFaulty(i)
}

// setFaulty marks member i faulty unless it is already.
func (s *Stage) setFaulty(i int) {
	m := &s.members[i]
	for {
		st := m.state.Load()
		if st == stateFaulty {
			return
		}
		if m.state.CompareAndSwap(st, stateFaulty) {
			s.dirtyGen.Add(1) // the state must reach the metadata (X2)
			s.log.Warn("replica member faulty", "member", m.desc.Load().Bdev().Name(), "was", stateNames[st])
			return
		}
	}
}

// markDirty sets the bits of the regions [off, off+n) touches and returns
// the generation the metadata must reach before the write goes on (X2);
// 0 when every bit was set already.
func (s *Stage) markDirty(off, n uint64) uint64 {
	changed := false
	for r := off >> s.regionShift; r <= (off+n-1)>>s.regionShift; r++ {
		w, bit := &s.dirty[r>>6], uint64(1)<<(r&63)
		if w.Load()&bit == 0 {
			w.Or(bit)
			changed = true
		}
	}
	if changed {
		return s.dirtyGen.Add(1)
	}
	return 0
}

// intend is the write intent (X2): before a write into [off, off+n) is
// sent to any member, its regions are marked dirty and, with a metadata
// bdev, the marks persisted. It returns 0 when the write may go now, else
// the generation the metadata must reach first. A region already marked
// and persisted costs two atomic loads per region; a region marked by its
// first write waits for one metadata write, which every write marking
// meanwhile shares (the flusher batches them). ep is the write's epoch.
func (s *Stage) intend(ep, off, n uint64) uint64 {
	t := s.touched[ep&1]
	first, last := off>>s.regionShift, (off+n-1)>>s.regionShift
	for r := first; r <= last; r++ {
		w, bit := &t[r>>6], uint64(1)<<(r&63)
		if w.Load()&bit == 0 {
			w.Or(bit) // before synced is read: the sweeper clears, then reads this (X5)
		}
	}
	ready := true
	for r := first; r <= last && ready; r++ {
		ready = s.synced[r>>6].Load()&(1<<(r&63)) != 0
	}
	if ready {
		return 0
	}
	gen := s.markDirty(off, n)
	if s.store == nil { // the bitmap is memory only: marked is all there is to it
		for r := first; r <= last; r++ {
			if w, bit := &s.synced[r>>6], uint64(1)<<(r&63); w.Load()&bit == 0 {
				w.Or(bit)
			}
		}
		return 0
	}
	if gen == 0 { // marked by another write, maybe not persisted yet
		gen = s.dirtyGen.Load()
	}
	if s.persistedGen.Load() >= gen {
		return 0
	}
	return gen
}

// sweepOnce is the sweeper's timer (X5), on the home reactor: once every
// write of the last epoch has completed, it clears the dirty bits of the
// regions no write entered in the last epoch or this one, provided every
// member is in sync and no copy runs; then it starts the next epoch. The
// clears reach the metadata bdev with its next write, which it asks for.
func (s *Stage) sweepOnce() int {
	e := s.epoch.Load()
	prev := (e + 1) & 1
	for i := range s.chanPtrs {
		if c := s.chanPtrs[i].Load(); c != nil && c.inflight[prev].Load() != 0 {
			return 0 // a write of the last epoch is still out: next tick
		}
	}
	cleared := 0
	if !s.copying.Load() && !s.unclean.Load() && s.allInSync() {
		cur, old := s.touched[e&1], s.touched[prev]
		for i := range s.dirty {
			d := s.dirty[i].Load()
			if d == 0 {
				continue
			}
			quiet := d &^ (cur[i].Load() | old[i].Load())
			if quiet == 0 {
				continue
			}
			was := s.synced[i].Load()
			s.dirty[i].And(^quiet)
			s.synced[i].And(^quiet)
			// A write that entered since cur was read saw its bit set (it
			// set touched before reading synced) and went on: mark it again.
			// The metadata never saw the bit clear: encode runs here too.
			if back := quiet & cur[i].Load(); back != 0 {
				s.dirty[i].Or(back)
				s.synced[i].Or(back & was)
				quiet &^= back
			}
			cleared += bits.OnesCount64(quiet)
		}
	}
	for i := range s.touched[prev] { // no write of that parity is out, and none starts before the store below
		s.touched[prev][i].Store(0)
	}
	s.epoch.Store(e + 1)
	if cleared > 0 {
		s.dirtyGen.Add(1)
		if s.store != nil {
			s.store.want()
		}
	}
	return cleared
}

func (s *Stage) dirtyCount() uint64 {
	n := 0
	for i := range s.dirty {
		n += bits.OnesCount64(s.dirty[i].Load())
	}
	return uint64(n)
}

// ErrNoSync is wrapped when no member in sync is left to read or copy from.
var ErrNoSync = errors.New("no member in sync")
