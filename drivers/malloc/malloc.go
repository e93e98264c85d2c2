package malloc

import (
	"bytes"
	"fmt"

	"github.com/sluice-storage/sluice/services/bdev"
)

// Name is the driver's name in a bdev.Registry and in conf's driver field.
const Name = "malloc"

// SizeMax is the largest malloc bdev: the region is one Go slice, and half
// the address space is plenty for a RAM disk on any machine we run on.
const SizeMax = 1 << 46

// Driver makes malloc bdevs.
type Driver struct{}

// Create implements bdev.Driver: it maps spec's whole size at once.
func (Driver) Create(spec bdev.Spec) (bdev.Backend, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	size := spec.Blocks * uint64(spec.BlockSize)
	if size > SizeMax {
		return nil, fmt.Errorf("malloc bdev %q: size %d bytes, want at most %d", spec.Name, size, uint64(SizeMax))
	}
	data, err := bdev.MapRegion(int(size))
	if err != nil {
		return nil, fmt.Errorf("malloc bdev %q: %d bytes: %w", spec.Name, size, err)
	}
	b := &backend{data: data, mem: data.Bytes(), blockShift: shiftOf(spec.BlockSize)}
	if spec.MetadataSize > 0 {
		md, err := bdev.MapRegion(int(spec.Blocks * uint64(spec.MetadataSize)))
		if err != nil {
			data.Unmap()
			return nil, fmt.Errorf("malloc bdev %q: metadata: %w", spec.Name, err)
		}
		b.md, b.mdMem, b.mdSize = md, md.Bytes(), uint64(spec.MetadataSize)
	}
	return b, nil
}

func shiftOf(v uint32) uint8 {
	s := uint8(0)
	for v > 1 {
		v >>= 1
		s++
	}
	return s
}

type backend struct {
	// Set in Create, never changed; the bytes are written by every channel.
	data       *bdev.Region
	mem        []byte
	md         *bdev.Region // nil without metadata
	mdMem      []byte
	mdSize     uint64
	blockShift uint8
}

func (b *backend) Info() bdev.Info {
	return bdev.Info{
		IOTypes: bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap,
			bdev.IOWriteZeroes, bdev.IOReset, bdev.IOCompare),
		UnmapZeroes: true,
	}
}

func (b *backend) NewChannel(*bdev.Local) (bdev.ChannelBackend, error) {
	return &channel{b: b}, nil
}

func (b *backend) Close() error {
	err := b.data.Unmap()
	if b.md != nil {
		if mdErr := b.md.Unmap(); err == nil {
			err = mdErr
		}
	}
	return err
}

// channel is the malloc back end on one reactor. Owner: that reactor.
type channel struct {
	b *backend
}

// Submit copies and completes (M1). The bdev layer checked the range and
// the lengths before it got here.
func (c *channel) Submit(io *bdev.IO) {
	b := c.b
	off := io.OffsetBlocks << b.blockShift
	n := io.Blocks << b.blockShift
	switch io.Type {
	case bdev.IORead:
		src := b.mem[off : off+n]
		for _, v := range io.Iovecs {
			src = src[copy(v, src):]
		}
		if io.Metadata != nil {
			copy(io.Metadata, b.mdRange(io))
		}
	case bdev.IOWrite:
		dst := b.mem[off : off+n]
		for _, v := range io.Iovecs {
			dst = dst[copy(dst, v):]
		}
		if io.Metadata != nil {
			copy(b.mdRange(io), io.Metadata)
		}
	case bdev.IOUnmap, bdev.IOWriteZeroes: // M2
		clear(b.mem[off : off+n])
		if b.md != nil {
			clear(b.mdRange(io))
		}
	case bdev.IOCompare:
		src := b.mem[off : off+n]
		at := 0
		for _, v := range io.Iovecs {
			if !bytes.Equal(v, src[:len(v)]) {
				io.CompleteMiscompare(uint64(at + firstDiff(v, src)))
				return
			}
			src = src[len(v):]
			at += len(v)
		}
	case bdev.IOFlush, bdev.IOReset:
		// Memory is as durable as it gets; nothing is queued to drop.
	}
	io.Complete(bdev.StatusSuccess)
}

func (b *backend) mdRange(io *bdev.IO) []byte {
	return b.mdMem[io.OffsetBlocks*b.mdSize : (io.OffsetBlocks+io.Blocks)*b.mdSize]
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

func (c *channel) Close() error { return nil }
