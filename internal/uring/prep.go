package uring

import (
	"fmt"
	"math"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Prep helpers fill an SQE from GetSQE (already zeroed) the way liburing's
// io_uring_prep_* do; SetUserData and SetFlags go after them. Buffers are
// passed as slices, and only their address reaches the kernel: they must stay
// valid, and be kept reachable, until the CQE is reaped (U6).

// bufAddr is the address of b's first byte as the kernel wants it; 0 for an
// empty slice.
func bufAddr(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// bufLen is len(b) as sqe->len; a buffer over 4 GiB cannot be described by
// one SQE, and silently truncating it would be worse than stopping.
func bufLen(b []byte) uint32 {
	if uint64(len(b)) > math.MaxUint32 {
		panic(fmt.Sprintf("uring: buffer of %d bytes, an SQE carries at most %d", len(b), uint32(math.MaxUint32)))
	}
	return uint32(len(b))
}

// iovecCount is len(iovs) as sqe->len, checked against UIO_MAXIOV, which the
// kernel would otherwise report as -EINVAL in the CQE.
func iovecCount(iovs []unix.Iovec) uint32 {
	if len(iovs) > iovecCountMax {
		panic(fmt.Sprintf("uring: %d iovecs, the kernel takes at most %d (UIO_MAXIOV)", len(iovs), iovecCountMax))
	}
	return uint32(len(iovs))
}

// prepRW is liburing's io_uring_prep_rw: the five fields every opcode uses.
func (s *SQE) prepRW(op Op, fd int, addr uint64, n uint32, off uint64) {
	s.SetOpcode(op)
	s.SetFd(int32(fd))
	s.SetAddr(addr)
	s.SetLen(n)
	s.SetOff(off)
}

// PrepNop prepares IORING_OP_NOP: it completes with res 0 and exercises only
// the ring.
func (s *SQE) PrepNop() { s.prepRW(OpNop, -1, 0, 0, 0) }

// PrepRead prepares IORING_OP_READ (pread) of len(buf) bytes at off.
func (s *SQE) PrepRead(fd int, buf []byte, off uint64) {
	s.prepRW(OpRead, fd, bufAddr(buf), bufLen(buf), off)
}

// PrepWrite prepares IORING_OP_WRITE (pwrite) of buf at off.
func (s *SQE) PrepWrite(fd int, buf []byte, off uint64) {
	s.prepRW(OpWrite, fd, bufAddr(buf), bufLen(buf), off)
}

// PrepReadv prepares IORING_OP_READV (preadv) at off. The kernel copies iovs
// during Submit (IORING_FEAT_SUBMIT_STABLE), so only the buffers they point
// to must outlive the call; the iovec array need not.
func (s *SQE) PrepReadv(fd int, iovs []unix.Iovec, off uint64) {
	s.prepRW(OpReadv, fd, uint64(uintptr(unsafe.Pointer(unsafe.SliceData(iovs)))), iovecCount(iovs), off)
}

// PrepWritev prepares IORING_OP_WRITEV (pwritev) at off; see PrepReadv.
func (s *SQE) PrepWritev(fd int, iovs []unix.Iovec, off uint64) {
	s.prepRW(OpWritev, fd, uint64(uintptr(unsafe.Pointer(unsafe.SliceData(iovs)))), iovecCount(iovs), off)
}

// PrepReadFixed prepares IORING_OP_READ_FIXED into buf, which lies inside the
// buffer registered at bufIndex (RegisterBuffers): the kernel skips pinning
// the pages per I/O, and fails the CQE with -EFAULT if buf strays outside.
func (s *SQE) PrepReadFixed(fd int, buf []byte, off uint64, bufIndex uint16) {
	s.prepRW(OpReadFixed, fd, bufAddr(buf), bufLen(buf), off)
	s.SetBufIndex(bufIndex)
}

// PrepWriteFixed prepares IORING_OP_WRITE_FIXED from buf inside the registered
// buffer bufIndex; see PrepReadFixed.
func (s *SQE) PrepWriteFixed(fd int, buf []byte, off uint64, bufIndex uint16) {
	s.prepRW(OpWriteFixed, fd, bufAddr(buf), bufLen(buf), off)
	s.SetBufIndex(bufIndex)
}

// PrepFsync prepares IORING_OP_FSYNC; FsyncDatasync makes it fdatasync. It is
// not ordered after writes submitted before it: wait for their CQEs first (or
// link them with FlagIOLink).
func (s *SQE) PrepFsync(fd int, flags FsyncFlags) {
	s.prepRW(OpFsync, fd, 0, 0, 0)
	s.SetOpFlags(uint32(flags))
}

// PrepFallocate prepares IORING_OP_FALLOCATE (fallocate(2)) over
// [off, off+length). For a block back end the modes that matter are
// unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE (deallocate / TRIM: reads
// return zeros) and unix.FALLOC_FL_ZERO_RANGE (WRITE ZEROES). The kernel
// takes the mode in sqe->len and the length in sqe->addr (liburing's
// io_uring_prep_fallocate).
func (s *SQE) PrepFallocate(fd int, mode uint32, off, length uint64) {
	s.prepRW(OpFallocate, fd, length, mode, off)
}

// PrepSend prepares IORING_OP_SEND (send(2)) of buf with msgFlags (unix.MSG_*).
func (s *SQE) PrepSend(fd int, buf []byte, msgFlags uint32) {
	s.prepRW(OpSend, fd, bufAddr(buf), bufLen(buf), 0)
	s.SetOpFlags(msgFlags)
}

// PrepRecv prepares IORING_OP_RECV (recv(2)) into buf with msgFlags.
func (s *SQE) PrepRecv(fd int, buf []byte, msgFlags uint32) {
	s.prepRW(OpRecv, fd, bufAddr(buf), bufLen(buf), 0)
	s.SetOpFlags(msgFlags)
}

// PrepPollAdd prepares a one-shot IORING_OP_POLL_ADD for events (unix.POLLIN
// …); the CQE's res is the ready mask. The kernel keeps poll32_events with its
// 16-bit halves swapped on big-endian machines (liburing's
// __io_uring_prep_poll_mask).
func (s *SQE) PrepPollAdd(fd int, events uint32) {
	s.prepRW(OpPollAdd, fd, 0, 0, 0)
	if bigEndian {
		events = events<<16 | events>>16
	}
	s.SetOpFlags(events)
}

// PrepCancel prepares IORING_OP_ASYNC_CANCEL of the request whose SQE carried
// userData: that request completes with -ECANCELED (if it was still
// cancelable), and this one with 0, -ENOENT or -EALREADY.
func (s *SQE) PrepCancel(userData uint64) {
	s.prepRW(OpAsyncCancel, -1, userData, 0, 0)
}

var bigEndian = ne.Uint16([]byte{0, 1}) == 1
