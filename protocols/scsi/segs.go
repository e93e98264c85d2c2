package scsi

import (
	"bytes"

	"github.com/sluice-storage/sluice/services/bdev"
)

const (
	// segSize is one segment of a task's data: a large pool buffer. A
	// transfer larger than that is several segments, each a bdev iovec.
	segSize = bdev.BufLargeSizeDefault
	// segsMax segments make the largest transfer (TransferSizeMax).
	segsMax = TransferSizeMax / segSize
)

// Fails to compile unless a whole transfer fits an IO's inline iovecs.
const _ uint = bdev.IovecsInlineMax - segsMax

// Fails to compile unless the transfer is whole segments.
const _ uint = 1 - TransferSizeMax%segSize

// segs is a task's data (or scratch) buffer: segments of segSize bytes from
// the reactor's pools, the last one shorter. Every block lies in one
// segment (block sizes divide segSize). Owner: the task's reactor.
type segs struct {
	s    [segsMax][]byte
	n    int
	size uint32
}

// alloc takes buffers for size bytes; false (nothing kept) when a pool is
// empty.
func (g *segs) alloc(l *bdev.Local, size uint32) bool {
	if g.n != 0 {
		panic("scsi: segments allocated twice")
	}
	for off := uint32(0); off < size; off += segSize {
		b := l.AllocBuf(int(min(size-off, segSize)))
		if b == nil {
			g.free(l)
			return false
		}
		g.s[g.n] = b
		g.n++
	}
	g.size = size
	return true
}

func (g *segs) free(l *bdev.Local) {
	for i := 0; i < g.n; i++ {
		l.FreeBuf(g.s[i])
		g.s[i] = nil
	}
	g.n, g.size = 0, 0
}

// span is [off, off+n) when it lies in one segment, else nil.
func (g *segs) span(off, n uint32) []byte {
	i := off / segSize
	if n == 0 || off+n > g.size || int(i) >= g.n || (off+n-1)/segSize != i {
		return nil
	}
	o := off - i*segSize
	return g.s[i][o : o+n]
}

// chunk is the longest piece from off of at most max bytes in one segment.
func (g *segs) chunk(off, max uint32) []byte {
	if off >= g.size {
		return nil
	}
	i := off / segSize
	o := off - i*segSize
	n := min(max, uint32(len(g.s[i]))-o)
	return g.s[i][o : o+n]
}

// copyIn copies p to offset off, clamped to the buffer's size.
func (g *segs) copyIn(off uint32, p []byte) {
	for len(p) > 0 && off < g.size {
		c := g.chunk(off, uint32(len(p)))
		n := copy(c, p)
		p = p[n:]
		off += uint32(n)
	}
}

// copyOut copies from offset off into p.
func (g *segs) copyOut(off uint32, p []byte) int {
	done := 0
	for done < len(p) && off < g.size {
		c := g.chunk(off, uint32(len(p)-done))
		n := copy(p[done:], c)
		done += n
		off += uint32(n)
	}
	return done
}

// iovecs makes io's data the first n bytes (whole segments but the last).
func (g *segs) iovecs(io *bdev.IO, n uint32) {
	io.ResetIovecs()
	for i := 0; n > 0; i++ {
		b := g.s[i][:min(uint32(len(g.s[i])), n)]
		io.AddIovec(b)
		n -= uint32(len(b))
	}
}

// equal compares the first n bytes of a and b (segmented alike); it
// returns the offset of the first difference, or -1.
func equalSegs(a, b *segs, n uint32) int64 {
	for off := uint32(0); off < n; {
		x := a.chunk(off, n-off)
		y := b.chunk(off, uint32(len(x)))
		if !bytes.Equal(x, y) {
			return int64(off) + int64(firstDiff(x, y))
		}
		off += uint32(len(x))
	}
	return -1
}

// orSegs ORs the first n bytes of src into dst (segmented alike).
func orSegs(dst, src *segs, n uint32) {
	for off := uint32(0); off < n; {
		x := dst.chunk(off, n-off)
		y := src.chunk(off, uint32(len(x)))
		for i := range x {
			x[i] |= y[i]
		}
		off += uint32(len(x))
	}
}
