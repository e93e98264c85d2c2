package raid

import (
	"fmt"
	"math/bits"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage"
)

// Level is the stage's RAID level, as SPDK's raid_level names it.
type Level string

const (
	// Raid0 stripes: strip i is on base i mod n.
	Raid0 Level = "raid0"
	// Concat appends the bases one after another.
	Concat Level = "concat"
)

const (
	// StripSizeDefault is raid0's strip when none is given: SPDK's examples
	// use 64 KiB, long enough that a 4 KiB random IO almost never straddles.
	StripSizeDefault = 64 << 10
	// fanoutsMax upper IOs per reactor may be spread over several bases at
	// once (flush, unmap, an IO across a concat edge); most IO goes to one
	// base and needs none. Past this, backpressure (R4).
	fanoutsMax = 128
	// raidTypes are what a striped stage can do when every base does it;
	// compare-and-write is emulated above (bdev layer), lock and all.
)

var raidTypes = bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap,
	bdev.IOWriteZeroes, bdev.IOReset, bdev.IOCompare)

// Config makes one raid0 or concat stage.
type Config struct {
	Name  string
	Level Level
	Bases []string
	// StripSize in bytes: a power of two, a multiple of the block size.
	// raid0: 0 takes StripSizeDefault. concat: 0 uses each base whole, else
	// each base is cut down to whole strips, as SPDK does.
	StripSize uint64
	UUID      uuid.UUID
}

// Stage is one raid0 or concat stage: a stage.Backend.
type Stage struct {
	cfg       Config
	bases     *stage.Bases
	blockSize uint32
	strip     uint64 // blocks; 0 for a concat without strips
	lay       layout
	info      bdev.Info
	used      []uint64 // blocks used on each base
}

// New opens and claims the bases and lays them out; stage.Add registers the
// result.
func New(reg *bdev.Registry, cfg Config) (*Stage, error) {
	if cfg.Level != Raid0 && cfg.Level != Concat {
		return nil, fmt.Errorf("raid %q: level %q, want %s or %s (raid1 is the replica stage): %w",
			cfg.Name, cfg.Level, Raid0, Concat, stage.ErrConfig)
	}
	if cfg.Level == Raid0 && cfg.StripSize == 0 {
		cfg.StripSize = StripSizeDefault
	}
	bases, err := stage.OpenBases(reg, cfg.Name, cfg.Bases)
	if err != nil {
		return nil, err
	}
	s, err := newStage(cfg, bases)
	if err != nil {
		bases.Close()
		return nil, err
	}
	return s, nil
}

func newStage(cfg Config, bases *stage.Bases) (*Stage, error) {
	bs, err := bases.SameBlockSize(cfg.Name)
	if err != nil {
		return nil, err
	}
	s := &Stage{cfg: cfg, bases: bases, blockSize: bs}
	if ss := cfg.StripSize; ss != 0 {
		if bits.OnesCount64(ss) != 1 || ss < uint64(bs) || ss > 1<<30 {
			return nil, fmt.Errorf("raid %q: strip size %d bytes, want a power of two from the block size %d to 1 GiB: %w",
				cfg.Name, ss, bs, stage.ErrConfig)
		}
		s.strip = ss / uint64(bs)
	}
	sizes := make([]uint64, len(bases.Descs))
	smallest := ^uint64(0)
	for i, d := range bases.Descs {
		sizes[i] = d.Bdev().Blocks()
		if s.strip != 0 {
			sizes[i] = sizes[i] / s.strip * s.strip
		}
		if sizes[i] == 0 {
			return nil, fmt.Errorf("raid %q: base %q of %d blocks holds no %d-block strip: %w",
				cfg.Name, d.Bdev().Name(), d.Bdev().Blocks(), s.strip, stage.ErrConfig)
		}
		smallest = min(smallest, sizes[i])
	}
	if cfg.Level == Raid0 {
		s.lay = newRaid0(len(sizes), s.strip, smallest)
		for i := range sizes {
			sizes[i] = smallest
		}
	} else {
		s.lay = newConcat(sizes)
	}
	s.used = sizes
	s.info = combineInfo(bases)
	if cfg.Level == Raid0 {
		// Reads, writes and compares arrive cut at strips. An emulated
		// compare-and-write's write does not (it is never split, to stay
		// atomic under its lock): spread cuts it.
		s.info.BoundaryBlocks = uint32(min(s.strip, 1<<31))
	}
	return s, nil
}

// combineInfo is what every base can take: the types all do, the smallest
// limits, the strictest alignment.
func combineInfo(bases *stage.Bases) bdev.Info {
	info := bdev.Info{IOTypes: raidTypes, UnmapZeroes: true, MaxIovecs: bdev.IovecsInlineMax}
	for _, d := range bases.Descs {
		bi := d.Bdev().Info()
		info.IOTypes &= bi.IOTypes
		info.UnmapZeroes = info.UnmapZeroes && bi.UnmapZeroes
		info.MaxTransferBlocks = minLimit(info.MaxTransferBlocks, bi.MaxTransferBlocks)
		info.MaxUnmapBlocks = minLimit(info.MaxUnmapBlocks, bi.MaxUnmapBlocks)
		if bi.MaxIovecs != 0 {
			info.MaxIovecs = min(info.MaxIovecs, bi.MaxIovecs)
		}
		info.BufAlign = max(info.BufAlign, bi.BufAlign)
	}
	// A reset drains above; it goes down only where every base resets.
	return info
}

// minLimit is the smaller of two limits where 0 means none.
func minLimit(a, b uint32) uint32 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// Spec is the laid-out capacity under the stage's name.
func (s *Stage) Spec() bdev.Spec {
	return stage.Spec(s.cfg.Name, s.cfg.UUID, s.blockSize, s.lay.blocks())
}

func (s *Stage) Name() string      { return s.cfg.Name }
func (s *Stage) Service() string   { return string(s.cfg.Level) }
func (s *Stage) Bases() []string   { return s.bases.Names() }
func (s *Stage) Info() bdev.Info   { return s.info }
func (s *Stage) Close() error      { s.bases.Close(); return nil }
func (s *Stage) Level() Level      { return s.cfg.Level }
func (s *Stage) StripSize() uint64 { return s.strip * uint64(s.blockSize) }

// BaseStatus is one base in bdev_raid_get_bdevs's shape.
type BaseStatus struct {
	Name         string `json:"name"`
	UUID         string `json:"uuid"`
	IsConfigured bool   `json:"is_configured"`
	DataOffset   uint64 `json:"data_offset"`
	DataSize     uint64 `json:"data_size"`
}

// Status is the stage in bdev_raid_get_bdevs's shape.
type Status struct {
	StripSizeKB    uint64       `json:"strip_size_kb"`
	State          string       `json:"state"`
	RaidLevel      string       `json:"raid_level"`
	NumBase        int          `json:"num_base_bdevs"`
	NumDiscovered  int          `json:"num_base_bdevs_discovered"`
	NumOperational int          `json:"num_base_bdevs_operational"`
	BaseBdevsList  []BaseStatus `json:"base_bdevs_list"`
}

func (s *Stage) Status() any {
	st := Status{StripSizeKB: s.StripSize() >> 10, State: "online", RaidLevel: string(s.cfg.Level),
		NumBase: len(s.used), NumDiscovered: len(s.used), NumOperational: len(s.used)}
	for i, d := range s.bases.Descs {
		st.BaseBdevsList = append(st.BaseBdevsList, BaseStatus{Name: d.Bdev().Name(), UUID: d.Bdev().UUID().String(),
			IsConfigured: true, DataSize: s.used[i]})
	}
	return st
}

// NewChannel opens every base's channel on this reactor and makes the
// fan-out records.
func (s *Stage) NewChannel(l *bdev.Local) (bdev.ChannelBackend, error) {
	c := &channel{s: s, ext: make([]extent, 0, len(s.used)+2), fanouts: make([]fanout, fanoutsMax)}
	for _, d := range s.bases.Descs {
		ch, err := d.Channel(l.Reactor())
		if err != nil {
			return nil, err
		}
		c.bases = append(c.bases, ch)
	}
	c.children = make([]*bdev.IO, 0, cap(c.ext))
	for i := range c.fanouts {
		f := &c.fanouts[i]
		f.c = c
		f.next = c.free
		c.free = f
	}
	return c, nil
}

// fanout is one upper IO spread over several bases. Owner: its channel.
type fanout struct {
	c      *channel
	parent *bdev.IO
	out    int
	fail   stage.Failure
	next   *fanout // free list
}

// Child context word: the child's first block within the upper IO.
const ctxUpper = 0

// channel is the stage on one reactor. Owner: that reactor.
type channel struct {
	s     *Stage
	bases []*bdev.Channel

	// Owner-only.
	ext      []extent   // scratch, cap = bases + 2, made once (an emulated compare-and-write over many strips grows it once)
	children []*bdev.IO // scratch
	fanouts  []fanout
	free     *fanout
}

// Submit cuts io into extents (R2) and sends one child per extent.
func (c *channel) Submit(io *bdev.IO) {
	ext := c.ext[:0]
	switch io.Type {
	case bdev.IORead, bdev.IOWrite, bdev.IOCompare:
		ext = c.s.lay.data(ext, io.OffsetBlocks, io.Blocks)
	case bdev.IOUnmap, bdev.IOWriteZeroes:
		ext = c.s.lay.ranges(ext, io.OffsetBlocks, io.Blocks)
	case bdev.IOFlush, bdev.IOReset:
		for i := range c.bases {
			ext = append(ext, extent{base: i})
		}
	default:
		io.Complete(bdev.StatusUnsupported)
		return
	}
	c.ext = ext[:0]
	if len(ext) == 1 {
		c.one(io, &ext[0])
		return
	}
	c.spread(io, ext)
}

// one sends io down as a single child: the common case, no fan-out record.
func (c *channel) one(io *bdev.IO, e *extent) {
	child := stage.Child(c.bases[e.base], io, c)
	if child == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	child.OffsetBlocks, child.Blocks = e.baseOffset, e.blocks
	c.bases[e.base].Submit(child)
}

// spread sends one child per extent under a fan-out record, or none (R4).
func (c *channel) spread(io *bdev.IO, ext []extent) {
	f := c.free
	if f == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	kids := c.children[:0]
	bs := uint64(c.s.blockSize)
	for i := range ext {
		e := &ext[i]
		child := stage.Child(c.bases[e.base], io, f)
		if child != nil && io.Type.HasData() &&
			!stage.SliceIovecs(child, io.Iovecs, e.upper*bs, e.blocks*bs) {
			child.Free()
			child = nil
		}
		if child == nil {
			for _, k := range kids {
				k.Free()
			}
			c.children = kids[:0]
			io.Complete(bdev.StatusNoResources)
			return
		}
		child.OffsetBlocks, child.Blocks = e.baseOffset, e.blocks
		child.Ctx[ctxUpper] = e.upper
		kids = append(kids, child)
	}
	c.free = f.next
	f.next = nil
	f.parent = io
	f.out = len(kids)
	for i, k := range kids {
		c.bases[ext[i].base].Submit(k)
	}
	c.children = kids[:0]
}

// Complete ends a single child's upper IO.
func (c *channel) Complete(child *bdev.IO) { stage.Finish(child) }

// Complete folds one child into its fan-out (R3).
func (f *fanout) Complete(child *bdev.IO) {
	if child.Status == bdev.StatusMiscompare {
		f.fail.NoteMiscompare(child.Ctx[ctxUpper]*uint64(f.c.s.blockSize) + child.MiscompareOffset)
	} else {
		f.fail.Note(child)
	}
	child.Free()
	if f.out--; f.out > 0 {
		return
	}
	parent := f.parent
	f.parent = nil
	c := f.c
	f.next = c.free
	c.free = f
	f.fail.Complete(parent)
}

func (c *channel) Close() error { return nil }
