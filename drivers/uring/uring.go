package uring

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	iouring "github.com/sluice-storage/sluice/internal/uring"
	"github.com/sluice-storage/sluice/services/bdev"
	"golang.org/x/sys/unix"
)

// Name is the driver's name in a bdev.Registry and in conf's driver field.
const Name = "uring"

const (
	// QueueDepthDefault IOs per reactor at the kernel: a deep NVMe queue's
	// worth; past it the bdev layer parks IO (G3).
	QueueDepthDefault = 256
	// QueueDepthMax bounds Driver.QueueDepth: io_uring's SQ is at most 32768.
	QueueDepthMax = 32768
	// reapBatch CQEs are copied per Reap call.
	reapBatch = 64
	// drainAfterIdlePolls empty polls in a row with the eventfd on make the
	// poller drain it and reap once more (package doc): well under the
	// reactor's idle_after at ~0.1-1 µs a poll, so it has run before the
	// reactor sleeps.
	drainAfterIdlePolls = 64
)

// Driver makes uring bdevs. The zero value is the default.
type Driver struct {
	// QueueDepth is the IOs each reactor's ring has at the kernel at once;
	// 0 means QueueDepthDefault. A power of two.
	QueueDepth int
	// NoFixedBuffers leaves the reactors' buffer pools unregistered.
	NoFixedBuffers bool
}

// Create implements bdev.Driver: it checks io_uring works here, then opens
// spec.Path with O_DIRECT, creating a missing file at spec's size.
func (d Driver) Create(spec bdev.Spec) (bdev.Backend, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	depth := d.QueueDepth
	if depth == 0 {
		depth = QueueDepthDefault
	}
	if depth < 1 || depth > QueueDepthMax || depth&(depth-1) != 0 {
		return nil, fmt.Errorf("uring bdev %q: queue depth %d, want a power of two in 1..%d", spec.Name, depth, QueueDepthMax)
	}
	if err := iouring.Supported(); err != nil {
		return nil, fmt.Errorf("uring bdev %q: %w", spec.Name, err)
	}
	fd, align, err := openDirect(spec)
	if err != nil {
		return nil, fmt.Errorf("uring bdev %q: %w", spec.Name, err)
	}
	return &backend{fd: fd, depth: depth, fixed: !d.NoFixedBuffers, align: align,
		blockShift: shiftOf(spec.BlockSize), name: spec.Name}, nil
}

func shiftOf(v uint32) uint8 {
	s := uint8(0)
	for v > 1 {
		v >>= 1
		s++
	}
	return s
}

// Errors of Create, wrapped with the path and the numbers.
var (
	ErrTooSmall      = errors.New("file or device smaller than the bdev")
	ErrNoDirectIO    = errors.New("O_DIRECT not supported")
	ErrBlockTooSmall = errors.New("block size below the device's direct-I/O alignment")
)

// openDirect opens (or creates at size) the file or block device and
// returns the fd and the buffer alignment O_DIRECT needs of it.
func openDirect(spec bdev.Spec) (fd int, align int, err error) {
	path := spec.Path
	if path == "" || path[0] != '/' {
		return -1, 0, fmt.Errorf("path %q, want an absolute path", path)
	}
	size := spec.Blocks * uint64(spec.BlockSize)
	if _, statErr := os.Stat(path); errors.Is(statErr, os.ErrNotExist) {
		if err := createFile(path, size); err != nil {
			return -1, 0, err
		}
	}
	fd, err = unix.Open(path, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err == unix.EINVAL {
		return -1, 0, fmt.Errorf("open %s: %w: its file system refuses O_DIRECT (tmpfs does); put it on ext4, xfs or a block device",
			path, ErrNoDirectIO)
	}
	if err != nil {
		return -1, 0, fmt.Errorf("open %s: %w", path, err)
	}
	have, align, err := geometry(fd, path)
	if err == nil && have < size {
		err = fmt.Errorf("%s holds %d bytes, the bdev needs %d (%d blocks of %d): %w", path, have, size,
			spec.Blocks, spec.BlockSize, ErrTooSmall)
	}
	if err == nil && int(spec.BlockSize) < align {
		err = fmt.Errorf("%s: block size %d, direct I/O there needs offsets aligned to %d: %w", path,
			spec.BlockSize, align, ErrBlockTooSmall)
	}
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	return fd, align, nil
}

// createFile makes a missing file of size bytes, allocated when the file
// system can (so a full disk shows at creation, not mid-write).
func createFile(path string, size uint64) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Fallocate(fd, 0, 0, int64(size)); err != nil {
		if err != unix.EOPNOTSUPP {
			unix.Unlink(path)
			return fmt.Errorf("allocate %d bytes for %s: %w", size, path, err)
		}
		if err := unix.Ftruncate(fd, int64(size)); err != nil {
			unix.Unlink(path)
			return fmt.Errorf("size %s to %d bytes: %w", path, size, err)
		}
	}
	return nil
}

// geometry is the size of an open file or block device and the alignment
// direct I/O needs: statx's DIO alignment (Linux 6.1+), the device's logical
// block size, or 512.
func geometry(fd int, path string) (size uint64, align int, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	align = 512
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		var n uint64
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&n))); errno != 0 {
			return 0, 0, fmt.Errorf("%s: BLKGETSIZE64: %w", path, errno)
		}
		if ssz, err := unix.IoctlGetInt(fd, unix.BLKSSZGET); err == nil && ssz > 0 {
			align = ssz
		}
		return n, align, nil
	case unix.S_IFREG:
		var sx unix.Statx_t
		if unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &sx) == nil && sx.Mask&unix.STATX_DIOALIGN != 0 &&
			sx.Dio_offset_align > 0 {
			align = int(max(sx.Dio_offset_align, sx.Dio_mem_align))
		}
		return uint64(st.Size), align, nil
	}
	return 0, 0, fmt.Errorf("%s is neither a regular file nor a block device (mode %#o)", path, st.Mode)
}

type backend struct {
	// Set in Create, never changed; fd is used by every reactor's ring.
	name       string
	fd         int
	depth      int
	fixed      bool
	align      int
	blockShift uint8
}

func (b *backend) Info() bdev.Info {
	return bdev.Info{
		IOTypes: bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap, bdev.IOWriteZeroes),
		// Direct I/O wants aligned addresses and lengths; the layer refuses
		// what is not (StatusInvalid). Our pools are page aligned.
		BufAlign: b.align,
		// Punching a hole (a file) or a zeroing discard (a block device)
		// reads back as zeros.
		UnmapZeroes: true,
	}
}

func (b *backend) Close() error {
	if err := unix.Close(b.fd); err != nil {
		return fmt.Errorf("uring bdev %q: close: %w", b.name, err)
	}
	return nil
}

// Fails to build if a slot index no longer fits the uint16 it travels in.
const _ uint = 1<<16 - QueueDepthMax

// Fails to build if a slot's iovec array is smaller than what the layer sends.
const _ uint = uint(len(slot{}.iovecs)) - bdev.IovecsInlineMax
