package uring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBusy says the kernel took no SQE this time: EAGAIN (it could not allocate
// a request) or EBUSY (completions wait in its overflow list, on older
// kernels). The SQEs stay queued; reap completions, then Submit again.
// Test with errors.Is; the error also unwraps to the errno.
var ErrBusy = errors.New("uring: kernel busy")

// ErrCQEDropped says the kernel lost a completion (EBADR from io_uring_enter):
// its overflow list could not grow. Some I/O in flight on the ring will never
// complete; the owner fails everything outstanding and rebuilds the ring.
var ErrCQEDropped = errors.New("uring: kernel dropped a completion (EBADR)")

// ErrTimeout says SubmitAndWait's timeout passed first (ETIME).
var ErrTimeout = errors.New("uring: wait timed out (ETIME)")

type errnoError struct {
	kind  error
	errno unix.Errno
	what  string
}

func (e *errnoError) Error() string        { return e.what }
func (e *errnoError) Is(target error) bool { return target == e.kind }
func (e *errnoError) Unwrap() error        { return e.errno }

// Made once: the hot paths return these without allocating.
var (
	errBusyEAGAIN = &errnoError{ErrBusy, unix.EAGAIN,
		"uring: io_uring_enter: EAGAIN: kernel could not allocate requests; reap, then Submit again"}
	errBusyEBUSY = &errnoError{ErrBusy, unix.EBUSY,
		"uring: io_uring_enter: EBUSY: completions wait in the overflow list; reap, then Submit again"}
	errDropped = &errnoError{ErrCQEDropped, unix.EBADR,
		"uring: io_uring_enter: EBADR: kernel dropped a completion; I/O in flight is lost"}
	errTimeout = &errnoError{ErrTimeout, unix.ETIME, "uring: io_uring_enter: ETIME: wait timed out"}
)

// GetSQE returns the next free SQE, zeroed, or nil when all SQEntries() slots
// hold SQEs the kernel has not consumed yet: backpressure, never a wait. The
// SQE belongs to the caller until Submit; every SQE taken is submitted (an
// untouched one is a NOP whose CQE carries user_data 0).
func (r *Ring) GetSQE() *SQE {
	r.assertUsable("GetSQE")
	// Acquire: with SQPOLL the kernel thread advances the head once it has
	// read the SQEs, and we must not rewrite a slot before that (liburing's
	// io_uring_load_sq_head). Without SQPOLL it moves only inside our enter.
	head := atomic.LoadUint32(r.sqHead)
	if r.sqeTail-head >= r.sqEntries { // U5
		return nil
	}
	sqe := &r.sqes[r.sqeTail&r.sqMask]
	*sqe = SQE{} // no stale field of the slot's last use reaches the kernel
	r.sqeTail++
	return sqe
}

// SQSpace is how many more SQEs GetSQE would hand out now.
func (r *Ring) SQSpace() uint32 {
	return r.sqEntries - (r.sqeTail - atomic.LoadUint32(r.sqHead))
}

// publish makes the SQEs handed out so far visible to the kernel (U1).
func (r *Ring) publish() (published uint32) {
	tail := r.sqeTail
	published = tail - r.sqTailPublished
	if published != 0 {
		atomic.StoreUint32(r.sqTail, tail) // release: the SQEs before the tail
		r.sqTailPublished = tail
	}
	return published
}

// Submit hands the SQEs taken since the last Submit to the kernel and returns
// how many it consumed. It enters the kernel only when something is queued
// (with SQPOLL, only when the kernel thread sleeps), and then also flushes
// completion work the kernel flagged, saving Reap a system call.
// ErrBusy means nothing was consumed: reap, then Submit again.
func (r *Ring) Submit() (int, error) {
	r.assertUsable("Submit")
	published := r.publish()
	pending := r.sqeTail - atomic.LoadUint32(r.sqHead)
	if pending == 0 {
		return 0, nil
	}
	var flags uint32
	if r.setupFlags&SetupSQPoll != 0 {
		// The kernel thread takes SQEs by itself; enter only to wake it. The
		// tail store above is a full barrier before this load (package doc).
		if atomic.LoadUint32(r.sqFlags)&sqNeedWakeup == 0 {
			return int(published), nil
		}
		if _, err := r.enter("submit", 0, 0, enterSQWakeup); err != nil {
			return 0, err
		}
		return int(published), nil
	}
	if r.cqNeedsFlush() {
		flags |= enterGetEvents
	}
	return r.enter("submit", pending, 0, flags)
}

// cqNeedsFlush reports whether completions wait in the kernel: in its overflow
// list, or as completion work it runs only when we enter (IORING_SQ_TASKRUN).
func (r *Ring) cqNeedsFlush() bool {
	return atomic.LoadUint32(r.sqFlags)&(sqCQOverflow|sqTaskrun) != 0
}

// enter calls io_uring_enter without waiting, retrying EINTR, and maps the
// errors the caller can act on to values made once.
func (r *Ring) enter(call string, toSubmit, minComplete, flags uint32) (int, error) {
	for try := 0; ; try++ {
		n, errno := sysEnter(r.fd, toSubmit, minComplete, flags)
		switch errno {
		case 0:
			return n, nil
		case unix.EINTR:
			if try < enterRetryMax {
				continue
			}
		case unix.EAGAIN:
			return 0, errBusyEAGAIN
		case unix.EBUSY:
			return 0, errBusyEBUSY
		case unix.EBADR:
			return 0, errDropped
		case unix.EEXIST:
			if r.setupFlags&SetupSingleIssuer != 0 {
				r.panicNotOwner("io_uring_enter (" + call + ")")
			}
		}
		return 0, fmt.Errorf("uring: io_uring_enter (%s) on ring fd %d, to_submit %d, flags %#x: %w",
			call, r.fd, toSubmit, flags, errno)
	}
}

// Reap copies up to len(buf) completions into buf, frees their ring slots and
// returns how many it copied. When the kernel holds completions back (CQ
// overflow, or completion work under COOP/DEFER_TASKRUN) it enters the kernel
// to post them, at most reapFlushMax times. ErrCQEDropped is fatal for the I/O
// in flight; buf[:n] is valid even then.
func (r *Ring) Reap(buf []CQE) (int, error) {
	r.assertUsable("Reap")
	n := r.reapRing(buf)
	for flush := 0; n < len(buf) && flush < reapFlushMax && r.cqNeedsFlush(); flush++ {
		if _, err := r.enter("reap", 0, 0, enterGetEvents); err != nil {
			if errors.Is(err, ErrBusy) {
				break // the next Reap tries again
			}
			return n, err
		}
		n += r.reapRing(buf[n:])
	}
	return n, nil
}

// reapRing copies what the CQ ring holds now, up to len(buf).
func (r *Ring) reapRing(buf []CQE) int {
	head := r.cqHeadLocal
	tail := atomic.LoadUint32(r.cqTail) // U2: acquire before reading CQEs
	ready := tail - head
	if ready > r.cqEntries { // U5
		panic(fmt.Sprintf("uring: ring fd %d CQ tail %d head %d: %d ready in a ring of %d",
			r.fd, tail, head, ready, r.cqEntries))
	}
	n := min(int(ready), len(buf))
	for i := range n {
		buf[i] = r.cqes[(head+uint32(i))&r.cqMask]
	}
	if n > 0 {
		r.cqHeadLocal = head + uint32(n)
		atomic.StoreUint32(r.cqHead, r.cqHeadLocal) // U3: release after the copies
	}
	return n
}

// CQReady is how many completions Reap would copy without entering the kernel.
func (r *Ring) CQReady() uint32 {
	return atomic.LoadUint32(r.cqTail) - r.cqHeadLocal
}

// SubmitAndWait submits what is queued and blocks until at least waitNr
// completions are ready to reap or timeout passes (ErrTimeout; the timeout
// needs IORING_FEAT_EXT_ARG, 5.11, and is ignored without it). It blocks the
// thread, so it is for tests and teardown, never for a reactor's loop.
func (r *Ring) SubmitAndWait(waitNr uint32, timeout time.Duration) (int, error) {
	r.assertUsable("SubmitAndWait")
	deadline := time.Now().Add(timeout)
	sqpoll := r.setupFlags&SetupSQPoll != 0
	submitted := 0
	if sqpoll {
		submitted = int(r.publish())
	}
	for {
		r.publish()
		var pending uint32
		if !sqpoll {
			pending = r.sqeTail - atomic.LoadUint32(r.sqHead)
		}
		if pending == 0 && r.CQReady() >= waitNr {
			return submitted, nil
		}
		flags := enterGetEvents
		if sqpoll && atomic.LoadUint32(r.sqFlags)&sqNeedWakeup != 0 {
			flags |= enterSQWakeup
		}
		var n int
		var errno unix.Errno
		if r.features&FeatExtArg != 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return submitted, errTimeout
			}
			n, errno = sysEnterTimeout(r.fd, pending, waitNr, flags, left.Nanoseconds())
		} else {
			n, errno = sysEnter(r.fd, pending, waitNr, flags)
		}
		switch errno {
		case 0:
			submitted += n
			continue
		case unix.EINTR:
			continue // the deadline bounds the retries
		case unix.ETIME:
			return submitted, errTimeout
		case unix.EAGAIN:
			return submitted, errBusyEAGAIN
		case unix.EBUSY:
			return submitted, errBusyEBUSY
		case unix.EBADR:
			return submitted, errDropped
		case unix.EEXIST:
			if r.setupFlags&SetupSingleIssuer != 0 {
				r.panicNotOwner("io_uring_enter (SubmitAndWait)")
			}
		}
		return submitted, fmt.Errorf("uring: io_uring_enter (wait %d) on ring fd %d: %w",
			waitNr, r.fd, errno)
	}
}
