package bdev

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// hugePageSize is the x86-64 and arm64 (4 KiB granule) huge page. A
	// region of at least this size first asks for MAP_HUGETLB pages.
	hugePageSize = 2 << 20
	// PageSize is the alignment every region and pooled buffer has: what
	// O_DIRECT needs of a buffer address for any logical block size we allow.
	PageSize = 4096
)

// Region is memory off the Go heap, from an anonymous mmap: the garbage
// collector never scans it or moves it, so I/O data lives here, and the
// kernel may pin it (io_uring fixed buffers). Owner: whoever made it; Unmap
// once, after the last I/O on it has completed.
type Region struct {
	mem      []byte
	mapLen   uintptr // bytes mapped at &mem[0], what Unmap returns
	huge     bool
	unmapped atomic.Bool
}

// ErrRegionSize is wrapped by MapRegion for a size it refuses.
var ErrRegionSize = errors.New("region size")

// MapRegion maps size bytes of zeroed, page-aligned memory and takes it all
// now (populated), as a RAM disk's or a pool's should be: no IO pays a page
// fault, and a shortage shows at start. Regions of at least 2 MiB try huge
// pages (MAP_HUGETLB) and, when the system has none reserved, fall back to
// normal pages aligned to 2 MiB with MADV_HUGEPAGE asked before the first
// touch, so transparent huge pages can back them and a random 4 KiB copy
// does not walk the page tables of 4 KiB pages. Control plane.
func MapRegion(size int) (*Region, error) {
	if size <= 0 {
		return nil, fmt.Errorf("map region of %d bytes, want > 0: %w", size, ErrRegionSize)
	}
	const prot = unix.PROT_READ | unix.PROT_WRITE
	const anon = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
	if size < hugePageSize {
		n := uintptr(roundUp(size, PageSize))
		p, err := unix.MmapPtr(-1, 0, nil, n, prot, anon|unix.MAP_POPULATE)
		if err != nil {
			return nil, fmt.Errorf("mmap %d bytes: %w", n, err)
		}
		return newRegion(p, n, size, false), nil
	}
	n := uintptr(roundUp(size, hugePageSize))
	if p, err := unix.MmapPtr(-1, 0, nil, n, prot, anon|unix.MAP_HUGETLB|unix.MAP_POPULATE); err == nil {
		return newRegion(p, n, size, true), nil
	}
	// ENOMEM: no huge pages reserved (HugePages_Total 0); EINVAL: none of
	// this size. Normal pages, aligned for transparent huge pages: map one
	// huge page more and trim both ends.
	raw, err := unix.MmapPtr(-1, 0, nil, n+hugePageSize, prot, anon)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", n+hugePageSize, err)
	}
	head := uintptr(roundUp(int(uintptr(raw)), hugePageSize)) - uintptr(raw)
	p := unsafe.Add(raw, head)
	if head > 0 {
		unix.MunmapPtr(raw, head)
	}
	if tail := hugePageSize - head; tail > 0 {
		unix.MunmapPtr(unsafe.Add(p, n), tail)
	}
	r := newRegion(p, n, size, false)
	full := unsafe.Slice((*byte)(p), n)
	_ = unix.Madvise(full, unix.MADV_HUGEPAGE)               // a hint; without THP it is refused, harmlessly
	if unix.Madvise(full, unix.MADV_POPULATE_WRITE) != nil { // Linux 5.14+
		for i := 0; i < len(full); i += PageSize {
			full[i] = 0
		}
	}
	return r, nil
}

func newRegion(p unsafe.Pointer, mapLen uintptr, size int, huge bool) *Region {
	return &Region{mem: unsafe.Slice((*byte)(p), size), mapLen: mapLen, huge: huge}
}

// Bytes is the region's memory. It stays valid until Unmap.
func (r *Region) Bytes() []byte { return r.mem }

// Len is the region's size in bytes.
func (r *Region) Len() int { return len(r.mem) }

// Huge reports whether MAP_HUGETLB pages back the region.
func (r *Region) Huge() bool { return r.huge }

// Contains reports whether b lies wholly inside the region.
func (r *Region) Contains(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(r.mem)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= base && p+uintptr(len(b)) <= base+uintptr(len(r.mem))
}

// Offset is the byte offset of b's first byte in the region; b must be
// inside it (Contains).
func (r *Region) Offset(b []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(unsafe.SliceData(r.mem))))
}

// Unmap returns the memory to the system. A second Unmap panics: it would
// unmap whatever the address space holds there by then.
func (r *Region) Unmap() error {
	if !r.unmapped.CompareAndSwap(false, true) {
		panic(fmt.Sprintf("bdev: region %p of %d bytes unmapped twice", unsafe.SliceData(r.mem), len(r.mem)))
	}
	p := unsafe.Pointer(unsafe.SliceData(r.mem))
	r.mem = nil
	return unix.MunmapPtr(p, r.mapLen)
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// bufPool is a fixed number of equal buffers carved from one Region, handed
// out and taken back by the owner reactor only (B4).
type bufPool struct {
	region  *Region
	bufSize int
	free    []uint32 // stack of free buffer indexes; cap = count, made once
	out     []bool   // out[i]: buffer i is handed out; catches a double free in O(1)
}

func newBufPool(count, bufSize int) (*bufPool, error) {
	if count <= 0 || bufSize <= 0 || bufSize%PageSize != 0 {
		return nil, fmt.Errorf("buffer pool of %d x %d bytes, want > 0 buffers of a multiple of %d bytes: %w",
			count, bufSize, PageSize, ErrRegionSize)
	}
	region, err := MapRegion(count * bufSize)
	if err != nil {
		return nil, err
	}
	p := &bufPool{region: region, bufSize: bufSize, free: make([]uint32, count), out: make([]bool, count)}
	for i := range p.free {
		p.free[i] = uint32(count - 1 - i) // pop order 0, 1, 2, ...
	}
	return p, nil
}

// get returns a free buffer of n <= bufSize bytes, capacity bufSize, or nil.
func (p *bufPool) get(n int) []byte {
	if len(p.free) == 0 {
		return nil
	}
	i := int(p.free[len(p.free)-1])
	p.free = p.free[:len(p.free)-1]
	p.out[i] = true
	off := i * p.bufSize
	return p.region.mem[off : off+n : off+p.bufSize]
}

// owns reports whether b starts at one of the pool's buffers.
func (p *bufPool) owns(b []byte) bool {
	b = b[:1]
	return p.region.Contains(b) && p.region.Offset(b)%p.bufSize == 0
}

// put takes back a buffer get returned. A foreign or misaligned buffer, or
// one not handed out, panics: each is a bug (a double free).
func (p *bufPool) put(b []byte) {
	if !p.owns(b) {
		panic(fmt.Sprintf("bdev: buffer %p is not one of pool %p's %d-byte buffers", unsafe.SliceData(b),
			unsafe.SliceData(p.region.mem), p.bufSize))
	}
	i := p.region.Offset(b[:1]) / p.bufSize
	if !p.out[i] {
		panic(fmt.Sprintf("bdev: buffer %d (%p) of a %d-byte pool freed twice", i, unsafe.SliceData(b), p.bufSize))
	}
	p.out[i] = false
	p.free = append(p.free, uint32(i))
}
