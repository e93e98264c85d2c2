package raid

import (
	"math/rand/v2"
	"testing"
)

// reference maps block by block, the obvious way.
func referenceRaid0(n, strip, x uint64) (int, uint64) {
	s := x / strip
	return int(s % n), (s/n)*strip + x%strip
}

// TestRaid0Layout checks data and ranges against the block-by-block
// reference at many offsets and lengths (R1, R2).
func TestRaid0Layout(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ n, strip, baseBlocks uint64 }{{1, 8, 64}, {2, 8, 67}, {3, 16, 100}, {4, 1, 9}, {5, 128, 1024}} {
		l := newRaid0(int(tc.n), tc.strip, tc.baseBlocks)
		if want := tc.baseBlocks / tc.strip * tc.strip * tc.n; l.blocks() != want {
			t.Fatalf("%+v: %d blocks, want %d", tc, l.blocks(), want)
		}
		seen := map[[2]uint64]bool{}
		for x := range l.blocks() {
			b, bo := l.locate(x)
			rb, rbo := referenceRaid0(tc.n, tc.strip, x)
			if b != rb || bo != rbo {
				t.Fatalf("%+v: block %d -> (%d, %d), want (%d, %d)", tc, x, b, bo, rb, rbo)
			}
			if k := [2]uint64{uint64(b), bo}; seen[k] || bo >= l.baseBlocks {
				t.Fatalf("%+v: block %d maps to (%d, %d): twice or past the base", tc, x, b, bo)
			} else {
				seen[k] = true
			}
		}
		for range 500 {
			off := rnd.Uint64N(l.blocks())
			n := 1 + rnd.Uint64N(l.blocks()-off)
			checkExtents(t, "data", l.data(nil, off, n), off, n, func(x uint64) (int, uint64) { return l.locate(x) }, true)
			checkRanges(t, l.ranges(nil, off, n), off, n, func(x uint64) (int, uint64) { return l.locate(x) }, int(tc.n))
		}
	}
}

func TestConcatLayout(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	sizes := []uint64{10, 1, 33, 7}
	l := newConcat(sizes)
	locate := func(x uint64) (int, uint64) {
		for i, s := range sizes {
			if x < s {
				return i, x
			}
			x -= s
		}
		panic("past the end")
	}
	for range 500 {
		off := rnd.Uint64N(l.blocks())
		n := 1 + rnd.Uint64N(l.blocks()-off)
		checkExtents(t, "data", l.data(nil, off, n), off, n, locate, true)
		checkRanges(t, l.ranges(nil, off, n), off, n, locate, len(sizes))
	}
}

// checkExtents: the pieces cover [off, off+n) in order, each block where
// the reference puts it.
func checkExtents(t *testing.T, what string, es []extent, off, n uint64, locate func(uint64) (int, uint64), ordered bool) {
	t.Helper()
	at := uint64(0)
	for _, e := range es {
		if ordered && e.upper != at {
			t.Fatalf("%s %d+%d: piece at %d, want %d (%+v)", what, off, n, e.upper, at, es)
		}
		for k := range e.blocks {
			b, bo := locate(off + e.upper + k)
			if b != e.base || bo != e.baseOffset+k {
				t.Fatalf("%s %d+%d: block %d in piece %+v, reference (%d, %d)", what, off, n, off+e.upper+k, e, b, bo)
			}
		}
		at += e.blocks
	}
	if at != n {
		t.Fatalf("%s %d+%d: pieces cover %d blocks", what, off, n, at)
	}
}

// checkRanges: one range per base touched, holding exactly the base blocks
// the reference gives for [off, off+n).
func checkRanges(t *testing.T, es []extent, off, n uint64, locate func(uint64) (int, uint64), bases int) {
	t.Helper()
	want := make([]map[uint64]bool, bases)
	for i := range want {
		want[i] = map[uint64]bool{}
	}
	for x := off; x < off+n; x++ {
		b, bo := locate(x)
		want[b][bo] = true
	}
	got := make([]bool, bases)
	for _, e := range es {
		if got[e.base] {
			t.Fatalf("ranges %d+%d: base %d twice: %+v", off, n, e.base, es)
		}
		got[e.base] = true
		if uint64(len(want[e.base])) != e.blocks {
			t.Fatalf("ranges %d+%d: base %d range %+v, want %d blocks", off, n, e.base, e, len(want[e.base]))
		}
		for k := range e.blocks {
			if !want[e.base][e.baseOffset+k] {
				t.Fatalf("ranges %d+%d: base %d block %d not in the range", off, n, e.base, e.baseOffset+k)
			}
		}
	}
	for b := range bases {
		if !got[b] && len(want[b]) > 0 {
			t.Fatalf("ranges %d+%d: base %d left out", off, n, b)
		}
	}
}
