package raid

import "math/bits"

// extent is one piece of an upper IO on one base.
type extent struct {
	base       int    // index into the bases
	baseOffset uint64 // first block on that base
	blocks     uint64
	upper      uint64 // blocks from the upper IO's start to this piece's start
}

// layout maps the stage's blocks to its bases (R1). Pure: no IO, no state.
type layout interface {
	// blocks is the stage's capacity.
	blocks() uint64
	// data cuts [off, off+n) at strip and base edges, in order, into out
	// (which it appends to); each piece is contiguous in the upper IO.
	data(out []extent, off, n uint64) []extent
	// ranges gives, per base, the one contiguous base range [off, off+n)
	// touches (R2), for IO without data.
	ranges(out []extent, off, n uint64) []extent
}

// raid0 deals strips of strip blocks (a power of two) over n bases.
type raid0 struct {
	n          uint64
	strip      uint64
	shift      uint
	baseBlocks uint64 // blocks used on each base: a whole number of strips
}

func newRaid0(n int, strip, smallestBase uint64) *raid0 {
	return &raid0{n: uint64(n), strip: strip, shift: uint(bits.TrailingZeros64(strip)),
		baseBlocks: smallestBase / strip * strip}
}

func (l *raid0) blocks() uint64 { return l.baseBlocks * l.n }

// locate maps upper block x to (base, base block).
func (l *raid0) locate(x uint64) (int, uint64) {
	s := x >> l.shift
	return int(s % l.n), (s/l.n)<<l.shift | x&(l.strip-1)
}

func (l *raid0) data(out []extent, off, n uint64) []extent {
	for at := uint64(0); at < n; {
		x := off + at
		k := min(n-at, l.strip-x&(l.strip-1))
		b, bo := l.locate(x)
		out = append(out, extent{base: b, baseOffset: bo, blocks: k, upper: at})
		at += k
	}
	return out
}

func (l *raid0) ranges(out []extent, off, n uint64) []extent {
	first, last := off>>l.shift, (off+n-1)>>l.shift // strips touched
	for b := uint64(0); b < l.n; b++ {
		// The first and last strip of base b in [first, last].
		lo := first + (b+l.n-first%l.n)%l.n
		hi := last - (last%l.n+l.n-b)%l.n
		if lo > last || hi < first || lo > hi {
			continue
		}
		start := lo << l.shift
		if lo == first {
			start = off
		}
		end := hi<<l.shift + l.strip // exclusive
		if hi == last {
			end = off + n
		}
		_, bo := l.locate(start)
		_, be := l.locate(end - 1)
		out = append(out, extent{base: int(b), baseOffset: bo, blocks: be + 1 - bo, upper: start - off})
	}
	return out
}

// concat puts the bases one after another.
type concat struct {
	starts []uint64 // starts[i]: base i's first upper block; starts[n]: capacity
}

func newConcat(sizes []uint64) *concat {
	l := &concat{starts: make([]uint64, len(sizes)+1)}
	for i, s := range sizes {
		l.starts[i+1] = l.starts[i] + s
	}
	return l
}

func (l *concat) blocks() uint64 { return l.starts[len(l.starts)-1] }

// baseOf is the base holding upper block x.
func (l *concat) baseOf(x uint64) int {
	lo, hi := 0, len(l.starts)-2
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if l.starts[mid] <= x {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

func (l *concat) data(out []extent, off, n uint64) []extent {
	for at := uint64(0); at < n; {
		x := off + at
		b := l.baseOf(x)
		k := min(n-at, l.starts[b+1]-x)
		out = append(out, extent{base: b, baseOffset: x - l.starts[b], blocks: k, upper: at})
		at += k
	}
	return out
}

// ranges: on concat a base's part of a range is contiguous already.
func (l *concat) ranges(out []extent, off, n uint64) []extent { return l.data(out, off, n) }
