// Package uring is the io_uring back end: a bdev on a file or a block
// device, read and written with O_DIRECT through one io_uring per reactor
// (internal/uring), so the page cache is bypassed and a completed write is
// on the device (as far as its own cache allows; a flush is fdatasync).
//
// Owners: the Backend (the open file) is control plane: Create opens it,
// Close closes it. Each reactor's channel owns its ring, made in NewChannel
// on that reactor's locked thread (io_uring SINGLE_ISSUER binds the ring to
// it), its slot table and its poller; nothing is shared between reactors
// but the file descriptor, which the kernel makes safe.
//
// The channel queues SQEs as IOs are submitted and its poller, once per
// reactor turn, submits the batch with one io_uring_enter, reaps the
// completions, ends their IOs (which may submit more) and submits again. An
// adaptive reactor sleeps in epoll_wait; the ring's eventfd is in its epoll
// set (Reactor.WatchFD), so a completion wakes it. After a run of empty polls
// the poller drains the eventfd and reaps once more (internal/uring's idle
// protocol), so a completion is never lost and a stale signal never keeps
// the reactor awake. A polling reactor turns the eventfd signal off.
//
// Buffers: the reactor's off-heap buffer pools are registered with the ring
// (fixed buffers); an IO whose single buffer lies in them is read or written
// with READ_FIXED/WRITE_FIXED and the kernel skips pinning its pages.
//
// Invariants:
//
//	G1. An IO is at the kernel at most once: it takes a slot at submit, the
//	    CQE carrying the slot's index frees it and completes the IO, exactly
//	    once (bdev B1). Slots in use never exceed the channel's depth, which
//	    never exceeds the CQ: the kernel never overflows it.
//	G2. Every SQE taken is submitted before the poll that took it returns,
//	    and the iovec arrays of vectored IO live in the slot until its CQE.
//	G3. A full ring or slot table is StatusNoResources (the bdev layer
//	    retries as IOs complete, bdev B5), never a wait.
//	G4. The channel closes only with no IO in flight (U7: its buffers must
//	    outlive the kernel's use of them).
//
// Imports: services/bdev, reactors, internal/uring, golang.org/x/sys.
package uring
