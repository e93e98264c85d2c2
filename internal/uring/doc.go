// Package uring drives Linux io_uring through raw system calls
// (io_uring_setup, io_uring_enter, io_uring_register from golang.org/x/sys/unix):
// no cgo, no third-party io_uring library, no allocation and no lock on the
// submit and reap paths.
//
// Users: the `uring` block back end (drivers/uring) opens one Ring per reactor,
// and later perhaps the socket path. The ABI facts here come from the kernel's
// include/uapi/linux/io_uring.h; the ring protocol (who writes which index, which
// barrier pairs with which) follows liburing's src/setup.c, src/queue.c,
// src/include/liburing.h and src/include/liburing/barrier.h.
//
// # Ownership
//
// A Ring is owned by one OS thread: its reactor's, which holds
// runtime.LockOSThread. New runs on that thread, and so do every later call
// except Close. Two reasons, one of them the kernel's:
//
//   - The rings are single-producer, single-consumer in each direction; the
//     owner is the only user-space producer of SQEs and the only consumer of
//     CQEs, so none of the ring state needs a lock.
//   - New asks for IORING_SETUP_SINGLE_ISSUER (and DEFER_TASKRUN), which binds
//     the ring to the creating kernel task — a thread, not a process. A Go
//     goroutine that is not locked to its thread may enter the ring from
//     another thread, and the kernel answers EEXIST. The package turns that
//     answer into a panic naming both thread ids, since it can only be a bug.
//
// Other reactors never touch a Ring; they send its owner a message. Under
// `-tags invariants` (or -race) every owner-only method also compares gettid(2)
// with the thread that called New.
//
// # The ring protocol
//
// The owner takes an SQE with GetSQE (nil when the submission queue is full:
// backpressure, never a wait), fills it with a Prep helper and SetUserData, and
// calls Submit once per batch; Submit enters the kernel only when something is
// queued. Completions come back with Reap, which copies up to len(buf) CQEs into
// the caller's buffer and frees their ring slots at once, so the caller can
// resubmit from inside its loop over buf.
//
// # Waking an idle reactor
//
// With Options.EventFD the kernel signals an eventfd (IORING_REGISTER_EVENTFD)
// when a completion is ready; the reactor adds EventFD() to its epoll set. With
// DEFER_TASKRUN that signal arrives when completion work is queued, before the
// CQE is visible: the CQE appears once Reap enters the kernel, which it does when
// the kernel sets IORING_SQ_TASKRUN. The idle protocol that loses no wake-up:
//
//  1. SetEventFDEnabled(true) (if the poller turned it off while busy polling),
//  2. DrainEventFD(),
//  3. Reap once more — anything that completed before step 1 is caught here,
//  4. if Reap found nothing, sleep in epoll_wait; anything that completes after
//     step 1 signals the eventfd.
//
// # Invariants
//
// Comments cite these by number.
//
//	U1  An SQE is fully written before the SQ tail that covers it is published,
//	    and the tail is published with a release store (sync/atomic.StoreUint32).
//	    The kernel reads the tail with smp_load_acquire, so it sees every field.
//	U2  The CQ tail is read with an acquire load (sync/atomic.LoadUint32) before
//	    any CQE it covers is read: the kernel fills a CQE, then publishes the tail
//	    with smp_store_release.
//	U3  The CQ head is advanced with a release store only after the CQEs it frees
//	    have been copied out, so the kernel cannot overwrite a slot being read.
//	U4  Only the owner writes the SQ tail and the CQ head, and the kernel never
//	    does, so the owner keeps private copies (sqeTail, cqHeadLocal) and never reads
//	    those two words back from shared memory.
//	U5  Slots in use never exceed the ring: GetSQE refuses when sqeTail - SQ head
//	    == SQ entries; Reap asserts CQ tail - CQ head <= CQ entries (a kernel
//	    that broke this would make us read garbage).
//	U6  Memory the kernel reads or writes after Submit returns — the buffers of
//	    reads, writes, sends and receives, and every registered buffer — stays
//	    valid until its CQE has been reaped. Registered (fixed) buffers must be
//	    off the Go heap (mmap'd memory, as the bdev layer uses): the kernel pins
//	    their pages for as long as they are registered, and the garbage collector
//	    neither knows that nor keeps an unreferenced heap object alive. Iovec
//	    arrays need only live until Submit returns (IORING_FEAT_SUBMIT_STABLE).
//	U7  Close runs once; a second Close panics. The owner reaps every completion
//	    before Close: closing the ring fd cancels what is in flight, but the
//	    kernel finishes that in a worker after close(2) returns, so a buffer
//	    freed early could still be written.
//
// # Why sync/atomic is the right barrier
//
// The head and tail words live in memory shared with the kernel. Go's
// sync/atomic operations are sequentially consistent (the Go memory model),
// which is at least the acquire/release the kernel's
// smp_load_acquire/smp_store_release pairs need, and the compiler does not move
// ordinary loads and stores across them. On amd64 LoadUint32 is a plain MOV
// (TSO makes every load an acquire) and StoreUint32 is an XCHG (a full barrier);
// on arm64 they are LDAR and STLR. SQPOLL also needs the tail store ordered
// before the load of IORING_SQ_NEED_WAKEUP (liburing's io_uring_smp_mb): XCHG
// gives that on amd64, and an LDAR is never satisfied before an earlier STLR on
// arm64. The SQEs and CQEs themselves are plain memory, ordered by U1–U3.
//
// This package imports only the standard library and golang.org/x/sys.
package uring
