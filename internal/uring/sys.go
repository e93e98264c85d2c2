package uring

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The three io_uring system calls. x/sys/unix has their numbers but no
// wrappers; these return the raw errno so hot paths compare it without an
// interface conversion.

// sysSetup is io_uring_setup(2): it reads p, fills in the kernel's answer and
// returns the ring fd (O_CLOEXEC is implied by the kernel).
func sysSetup(entries uint32, p *params) (int, unix.Errno) {
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries),
		uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), 0
}

// sysEnter is io_uring_enter(2) without an argument block. A call that does
// not wait (minComplete == 0) goes through RawSyscall6: it only hands SQEs to
// the kernel or runs completion work, which io_uring bounds (requests that
// would block are punted to io-wq workers), so the Go scheduler does not need
// to hand our P to another thread, and the entersyscall/exitsyscall pair is
// saved on every batch: BenchmarkNop measured ~380 ns per NOP round trip this
// way against ~430 ns through Syscall6. A call that waits must let the
// scheduler run others.
func sysEnter(fd int, toSubmit, minComplete, flags uint32) (int, unix.Errno) {
	var n uintptr
	var errno unix.Errno
	if minComplete == 0 {
		n, _, errno = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(fd),
			uintptr(toSubmit), 0, uintptr(flags), 0, 0)
	} else {
		n, _, errno = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd),
			uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// geteventsArg is struct io_uring_getevents_arg (5.11, IORING_FEAT_EXT_ARG):
// sigmask u64, sigmask_sz u32, min_wait_usec u32, ts u64 (a pointer to a
// struct __kernel_timespec).
type geteventsArg [geteventsArgSize]byte

const (
	geteventsArgSize = 24
	offGeteventsTS   = 16
)

// kernelTimespec is struct __kernel_timespec: tv_sec s64, tv_nsec s64.
type kernelTimespec [16]byte

// sysEnterTimeout is io_uring_enter(2) with IORING_ENTER_EXT_ARG and a
// timeout; it waits, so it goes through Syscall6. Only SubmitAndWait uses it.
func sysEnterTimeout(fd int, toSubmit, minComplete, flags uint32, nsec int64) (int, unix.Errno) {
	var ts kernelTimespec
	ne.PutUint64(ts[0:], uint64(nsec/1e9))
	ne.PutUint64(ts[8:], uint64(nsec%1e9))
	var arg geteventsArg
	ne.PutUint64(arg[offGeteventsTS:], uint64(uintptr(unsafe.Pointer(&ts))))
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(toSubmit),
		uintptr(minComplete), uintptr(flags|enterExtArg),
		uintptr(unsafe.Pointer(&arg)), geteventsArgSize)
	// ts is reached only through an integer inside arg, which the garbage
	// collector does not follow: keep it alive until the kernel has read it.
	runtime.KeepAlive(&ts)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// sysRegister is io_uring_register(2).
func sysRegister(fd int, opcode uint32, arg unsafe.Pointer, nrArgs uint32) (int, unix.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), uintptr(opcode),
		uintptr(arg), uintptr(nrArgs), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}
