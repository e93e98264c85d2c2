package uring

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Registration is control plane: it allocates and may block, and runs on the
// owner thread (a SINGLE_ISSUER ring answers EEXIST to any other).

// RegisterBuffers registers bufs as fixed buffers 0..len(bufs)-1 for
// PrepReadFixed and PrepWriteFixed (IORING_REGISTER_BUFFERS). The kernel pins
// their pages until UnregisterBuffers or Close, so they must be off the Go
// heap — mmap'd memory, as the bdev layer uses — and outlive the
// registration (U6). Pinned memory counts against RLIMIT_MEMLOCK unless the
// process has CAP_IPC_LOCK.
func (r *Ring) RegisterBuffers(bufs [][]byte) error {
	r.assertUsable("RegisterBuffers")
	var errs []error
	if len(bufs) == 0 || len(bufs) > registerBuffersMax {
		errs = append(errs, fmt.Errorf("uring: RegisterBuffers: %d buffers, want 1..%d",
			len(bufs), registerBuffersMax))
	}
	for i, b := range bufs {
		if len(b) == 0 || len(b) > registerBufferSize {
			errs = append(errs, fmt.Errorf("uring: RegisterBuffers: buffer %d is %d bytes, want 1..%d",
				i, len(b), registerBufferSize))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	iovs := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		iovs[i].Base = unsafe.SliceData(b)
		iovs[i].SetLen(len(b))
	}
	if _, errno := sysRegister(r.fd, registerBuffers, unsafe.Pointer(&iovs[0]), uint32(len(iovs))); errno != 0 {
		return r.registerError("IORING_REGISTER_BUFFERS", errno)
	}
	return nil
}

// UnregisterBuffers drops the fixed buffers; no I/O may use them any more.
func (r *Ring) UnregisterBuffers() error {
	r.assertUsable("UnregisterBuffers")
	if _, errno := sysRegister(r.fd, unregisterBuffers, nil, 0); errno != 0 {
		return r.registerError("IORING_UNREGISTER_BUFFERS", errno)
	}
	return nil
}

// RegisterFiles registers fds as fixed files 0..len(fds)-1
// (IORING_REGISTER_FILES); an SQE with FlagFixedFile then names a file by
// that index in its fd field, and the kernel skips the fd table lookup and
// reference per I/O. -1 leaves a slot empty. The kernel holds its own
// reference: closing an fd afterwards does not close the registered file.
func (r *Ring) RegisterFiles(fds []int) error {
	r.assertUsable("RegisterFiles")
	if len(fds) == 0 || len(fds) > registerFilesMax {
		return fmt.Errorf("uring: RegisterFiles: %d files, want 1..%d", len(fds), registerFilesMax)
	}
	table := make([]int32, len(fds))
	for i, fd := range fds {
		table[i] = int32(fd)
	}
	if _, errno := sysRegister(r.fd, registerFiles, unsafe.Pointer(&table[0]), uint32(len(table))); errno != 0 {
		return r.registerError("IORING_REGISTER_FILES", errno)
	}
	return nil
}

// UnregisterFiles drops the fixed file table.
func (r *Ring) UnregisterFiles() error {
	r.assertUsable("UnregisterFiles")
	if _, errno := sysRegister(r.fd, unregisterFiles, nil, 0); errno != 0 {
		return r.registerError("IORING_UNREGISTER_FILES", errno)
	}
	return nil
}

// registerError names the call and, for the errnos with a known cause, the
// cause.
func (r *Ring) registerError(call string, errno unix.Errno) error {
	switch errno {
	case unix.EEXIST:
		if r.setupFlags&SetupSingleIssuer != 0 {
			r.panicNotOwner("io_uring_register " + call)
		}
	case unix.ENOMEM:
		return fmt.Errorf("uring: io_uring_register %s on ring fd %d: %w: %s",
			call, r.fd, errno, memlockHint(readMemlock()))
	case unix.EBUSY:
		return fmt.Errorf("uring: io_uring_register %s on ring fd %d: %w: already registered",
			call, r.fd, errno)
	}
	return fmt.Errorf("uring: io_uring_register %s on ring fd %d: %w", call, r.fd, errno)
}

// probeOps asks the kernel which opcodes it supports (IORING_REGISTER_PROBE,
// 5.6). ringFD may be any ring: the answer is the kernel's, not the ring's.
func probeOps(ringFD int) (*probe, unix.Errno) {
	p := new(probe)
	if _, errno := sysRegister(ringFD, registerProbe, unsafe.Pointer(p), probeOpsMax); errno != 0 {
		return nil, errno
	}
	return p, 0
}
