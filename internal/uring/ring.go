package uring

import (
	"errors"
	"fmt"
	"github.com/sluice-storage/sluice/internal/invariants"
	"math/bits"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// enterRetryMax bounds the io_uring_enter retries after EINTR. Go's
	// preemption signal (SIGURG) is the usual interrupter and arrives at most
	// every 10 ms, so a second try nearly always succeeds; 16 only guards
	// against a signal storm turning into an endless loop on a reactor.
	enterRetryMax = 16

	// reapFlushMax bounds the io_uring_enter calls one Reap makes to flush
	// completion work. With DEFER_TASKRUN a flush runs at most 20 completions
	// (the kernel's IO_LOCAL_TW_DEFAULT_MAX) and sets IORING_SQ_TASKRUN again if
	// more wait, so 4 cover a queue depth of 64 and the next poll does the rest:
	// a Reap stays short and the reactor's other pollers get their turn.
	reapFlushMax = 4
)

// Options tune New. The zero value is the setting for a reactor that busy-polls.
type Options struct {
	// CQEntries sizes the completion queue: 0 means twice the SQ entries (the
	// kernel's default), otherwise a power of two in entries..65536. Keep the
	// I/O in flight at or under CQEntries(): beyond it the kernel parks
	// completions in its overflow list (IORING_FEAT_NODROP), which costs Reap
	// an extra io_uring_enter, and when that list cannot grow a CQE is lost.
	CQEntries uint32

	// EventFD registers an eventfd (IORING_REGISTER_EVENTFD) that the kernel
	// signals when completions are ready, so a reactor can sleep in epoll_wait.
	EventFD bool

	// SQPoll asks for a kernel thread that polls the SQ (IORING_SETUP_SQPOLL),
	// so Submit rarely enters the kernel. Off by default: the thread spins on a
	// core for SQPollIdle after each submission, a core the reactors want.
	SQPoll bool
	// SQPollIdle is how long the SQPOLL thread spins before it sleeps; 0 keeps
	// the kernel's default (1 s). Millisecond resolution.
	SQPollIdle time.Duration
	// SQPollPinned pins the SQPOLL thread to SQPollCPU (IORING_SETUP_SQ_AFF).
	SQPollPinned bool
	// SQPollCPU is the CPU the SQPOLL thread runs on when SQPollPinned.
	SQPollCPU uint32

	// setupFlagsLadder replaces the fallback ladder below; tests use it to run
	// every rung on a kernel that accepts the first.
	setupFlagsLadder []uint32
}

// The flag sets New tries, best first, stepping down when the kernel answers
// EINVAL (it does for any flag it does not know). Every rung keeps
// TASKRUN_FLAG beside COOP/DEFER_TASKRUN: without it the kernel could hold
// completions until our next system call and never say so.
var (
	setupLadderDefault = []uint32{
		SetupSingleIssuer | SetupDeferTaskrun | SetupTaskrunFlag | SetupSubmitAll, // 6.1
		SetupSingleIssuer | SetupCoopTaskrun | SetupTaskrunFlag | SetupSubmitAll,  // 6.0
		SetupCoopTaskrun | SetupTaskrunFlag | SetupSubmitAll,                      // 5.19
		SetupSubmitAll, // 5.18
		0,
	}
	// The kernel refuses COOP_TASKRUN, TASKRUN_FLAG and DEFER_TASKRUN with
	// SQPOLL: the SQPOLL thread runs completion work itself.
	setupLadderSQPoll = []uint32{
		SetupSQPoll | SetupSingleIssuer | SetupSubmitAll,
		SetupSQPoll | SetupSubmitAll,
		SetupSQPoll,
	}
)

// Ring is one io_uring instance: the SQ and CQ rings and the SQE array mapped
// from the kernel, and optionally an eventfd. Owner: the OS thread that called
// New (see the package comment); only Close may run elsewhere, and never
// concurrently with the owner.
type Ring struct {
	// Set in New, never changed.
	fd         int
	eventFD    int // -1 without Options.EventFD
	ownerTID   int
	setupFlags uint32
	features   uint32
	sqEntries  uint32
	sqMask     uint32
	cqEntries  uint32
	cqMask     uint32
	ringMem    []byte // SQ ring, and the CQ ring with IORING_FEAT_SINGLE_MMAP
	cqMem      []byte // CQ ring when it has its own mapping (kernels before 5.4)
	sqeMem     []byte
	sqes       []SQE // over sqeMem
	cqes       []CQE // over the CQ ring

	// Words in the kernel-shared rings.
	sqHead     *uint32 // kernel writes: SQEs it has consumed
	sqTail     *uint32 // we write (U1, U4)
	sqFlags    *uint32 // kernel writes: IORING_SQ_*
	cqHead     *uint32 // we write (U3, U4)
	cqTail     *uint32 // kernel writes (U2)
	cqOverflow *uint32 // kernel writes: CQEs it had to drop
	cqFlags    *uint32 // we write: IORING_CQ_*; nil before 5.8

	// Owner-only.
	sqeTail         uint32 // one past the last SQE GetSQE handed out
	sqTailPublished uint32 // the value last stored to *sqTail
	cqHeadLocal     uint32 // our copy of *cqHead (U4)
	closed          bool
	eventBuf        [8]byte // DrainEventFD reads the eventfd counter here
}

// New sets up a ring with entries SQ slots (a power of two, 1..32768) on the
// calling thread, which becomes its owner: lock the goroutine to its thread
// (runtime.LockOSThread) first. It asks for the best mode the kernel offers
// (SINGLE_ISSUER with DEFER_TASKRUN on 6.1+) and steps down on EINVAL;
// SetupFlags reports what it got.
func New(entries uint32, opts Options) (*Ring, error) {
	if err := opts.validate(entries); err != nil {
		return nil, err
	}
	ladder := opts.setupFlagsLadder
	if ladder == nil {
		ladder = setupLadderDefault
		if opts.SQPoll {
			ladder = setupLadderSQPoll
		}
	}
	var p params
	var fd int
	var errno unix.Errno
	var flags uint32
	for i, rung := range ladder {
		flags = rung
		p = opts.params(rung)
		fd, errno = sysSetup(entries, &p)
		if errno != unix.EINVAL || i == len(ladder)-1 {
			break
		}
	}
	if errno != 0 {
		return nil, setupError(entries, flags, errno)
	}
	r := &Ring{fd: fd, eventFD: -1, ownerTID: unix.Gettid(), setupFlags: flags}
	if err := r.mapRings(&p); err != nil {
		r.unmap()
		unix.Close(fd)
		return nil, err
	}
	if opts.EventFD {
		if err := r.registerEventFD(); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// validate reports every bad option at once, each with its value and the rule.
func (o *Options) validate(entries uint32) error {
	var errs []error
	if entries == 0 || entries > entriesMax || bits.OnesCount32(entries) != 1 {
		errs = append(errs, fmt.Errorf("uring: entries %d, want a power of two in 1..%d",
			entries, entriesMax))
	}
	if c := o.CQEntries; c != 0 && (c < entries || c > cqEntriesMax || bits.OnesCount32(c) != 1) {
		errs = append(errs, fmt.Errorf("uring: CQEntries %d, want 0 or a power of two in %d..%d",
			c, entries, cqEntriesMax))
	}
	if !o.SQPoll && (o.SQPollIdle != 0 || o.SQPollPinned) {
		errs = append(errs, fmt.Errorf("uring: SQPollIdle %v, SQPollPinned %v without SQPoll",
			o.SQPollIdle, o.SQPollPinned))
	}
	if ms := o.SQPollIdle.Milliseconds(); o.SQPollIdle < 0 || ms > 1<<32-1 {
		errs = append(errs, fmt.Errorf("uring: SQPollIdle %v, want 0..%d ms", o.SQPollIdle, uint32(1<<32-1)))
	}
	return errors.Join(errs...)
}

// params builds the io_uring_setup argument for one rung of the ladder.
func (o *Options) params(flags uint32) params {
	var p params
	if o.CQEntries != 0 {
		flags |= setupCQSize
		p.setU32(offParamsCQEntries, o.CQEntries)
	}
	if flags&SetupSQPoll != 0 {
		p.setU32(offParamsSQThreadIdle, uint32(o.SQPollIdle.Milliseconds()))
		if o.SQPollPinned {
			flags |= setupSQAff
			p.setU32(offParamsSQThreadCPU, o.SQPollCPU)
		}
	}
	p.setU32(offParamsFlags, flags)
	return p
}

// mapRings maps the rings as liburing's io_uring_mmap does and points r's
// fields into them.
func (r *Ring) mapRings(p *params) error {
	r.sqEntries = p.u32(offParamsSQEntries)
	r.cqEntries = p.u32(offParamsCQEntries)
	r.features = p.u32(offParamsFeatures)
	r.sqMask, r.cqMask = r.sqEntries-1, r.cqEntries-1
	if r.features&FeatNoDrop == 0 {
		return fmt.Errorf("uring: kernel features %#x lack IORING_FEAT_NODROP (Linux 5.5): "+
			"a full CQ would drop completions", r.features)
	}
	sqRingSize := int(p.u32(offSQOffArray)) + int(r.sqEntries)*4
	cqRingSize := int(p.u32(offCQOffCQEs)) + int(r.cqEntries)*CQESize
	single := r.features&FeatSingleMMap != 0
	if single {
		sqRingSize = max(sqRingSize, cqRingSize)
	}
	const prot, flags = unix.PROT_READ | unix.PROT_WRITE, unix.MAP_SHARED | unix.MAP_POPULATE
	var err error
	if r.ringMem, err = unix.Mmap(r.fd, offSQRing, sqRingSize, prot, flags); err != nil {
		return fmt.Errorf("uring: mmap SQ ring, %d bytes: %w", sqRingSize, err)
	}
	cqMem := r.ringMem
	if !single {
		if r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqRingSize, prot, flags); err != nil {
			return fmt.Errorf("uring: mmap CQ ring, %d bytes: %w", cqRingSize, err)
		}
		cqMem = r.cqMem
	}
	sqeSize := int(r.sqEntries) * SQESize
	if r.sqeMem, err = unix.Mmap(r.fd, offSQEs, sqeSize, prot, flags); err != nil {
		return fmt.Errorf("uring: mmap SQE array, %d bytes: %w", sqeSize, err)
	}

	r.sqHead = word(r.ringMem, p.u32(offSQOffHead))
	r.sqTail = word(r.ringMem, p.u32(offSQOffTail))
	r.sqFlags = word(r.ringMem, p.u32(offSQOffFlags))
	r.cqHead = word(cqMem, p.u32(offCQOffHead))
	r.cqTail = word(cqMem, p.u32(offCQOffTail))
	r.cqOverflow = word(cqMem, p.u32(offCQOffOverflow))
	if off := p.u32(offCQOffFlags); off != 0 { // 0: a kernel before 5.8
		r.cqFlags = word(cqMem, off)
	}
	sqErr := checkRing("SQ", r.ringMem, p.u32(offSQOffRingMask), p.u32(offSQOffRingEntries), r.sqEntries)
	cqErr := checkRing("CQ", cqMem, p.u32(offCQOffRingMask), p.u32(offCQOffRingEntries), r.cqEntries)
	if err := errors.Join(sqErr, cqErr); err != nil {
		return err
	}
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.sqeMem[0])), r.sqEntries)
	r.cqes = unsafe.Slice((*CQE)(unsafe.Pointer(&cqMem[p.u32(offCQOffCQEs)])), r.cqEntries)

	// The SQ array holds SQE indexes; map slot i to SQE i once, as liburing
	// does, so submission never writes it again.
	array := unsafe.Slice(word(r.ringMem, p.u32(offSQOffArray)), r.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	// The kernel starts both rings at 0; read them once to start from its word.
	r.sqeTail = atomic.LoadUint32(r.sqTail)
	r.sqTailPublished = r.sqeTail
	r.cqHeadLocal = atomic.LoadUint32(r.cqHead)
	return nil
}

// checkRing compares a mapped ring's own mask and size words with what
// io_uring_setup returned: indexing with slot & mask relies on both agreeing
// and on the size being a power of two.
func checkRing(name string, mem []byte, maskOff, entriesOff, entries uint32) error {
	mask, n := *word(mem, maskOff), *word(mem, entriesOff)
	if n != entries || mask != entries-1 || bits.OnesCount32(entries) != 1 {
		return fmt.Errorf("uring: %s ring says mask %#x entries %d, io_uring_setup said %d entries",
			name, mask, n, entries)
	}
	return nil
}

// word points at the kernel-shared uint32 at off in mem. The kernel's offsets
// are aligned; indexing mem panics if one were past the mapping.
func word(mem []byte, off uint32) *uint32 {
	if off%4 != 0 {
		panic(fmt.Sprintf("uring: kernel ring offset %d is not 4-byte aligned", off))
	}
	_ = mem[off+3]
	return (*uint32)(unsafe.Pointer(&mem[off]))
}

func (r *Ring) registerEventFD() error {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("uring: eventfd: %w", err)
	}
	r.eventFD = efd
	fd := int32(efd)
	if _, errno := sysRegister(r.fd, registerEventFD, unsafe.Pointer(&fd), 1); errno != 0 {
		return r.registerError("IORING_REGISTER_EVENTFD", errno)
	}
	return nil
}

// Close unmaps the rings and closes the ring fd and the eventfd. The owner
// reaps every completion first (U7). It may run on any thread, but not
// concurrently with the owner; a second Close panics.
func (r *Ring) Close() error {
	if r.closed {
		panic(fmt.Sprintf("uring: Close of ring fd %d, already closed", r.fd))
	}
	r.closed = true
	err := r.unmap()
	if e := unix.Close(r.fd); e != nil {
		err = errors.Join(err, fmt.Errorf("uring: close ring fd %d: %w", r.fd, e))
	}
	if r.eventFD >= 0 {
		if e := unix.Close(r.eventFD); e != nil {
			err = errors.Join(err, fmt.Errorf("uring: close eventfd %d: %w", r.eventFD, e))
		}
	}
	return err
}

// unmap releases the mappings and drops every pointer into them, so a use
// after Close is a nil dereference (a recoverable panic), not a fault on
// unmapped memory (which kills the process).
func (r *Ring) unmap() error {
	var errs []error
	for _, m := range [...]*[]byte{&r.sqeMem, &r.cqMem, &r.ringMem} {
		if *m != nil {
			if err := unix.Munmap(*m); err != nil {
				errs = append(errs, fmt.Errorf("uring: munmap %d bytes: %w", len(*m), err))
			}
			*m = nil
		}
	}
	r.sqes, r.cqes = nil, nil
	r.sqHead, r.sqTail, r.sqFlags = nil, nil, nil
	r.cqHead, r.cqTail, r.cqOverflow, r.cqFlags = nil, nil, nil, nil
	return errors.Join(errs...)
}

// SetupFlags is the IORING_SETUP_* set the kernel accepted (Setup*).
func (r *Ring) SetupFlags() uint32 { return r.setupFlags }

// Features is the kernel's IORING_FEAT_* answer (Feat*).
func (r *Ring) Features() uint32 { return r.features }

// SQEntries is the number of SQ slots: how many SQEs GetSQE hands out before
// a Submit.
func (r *Ring) SQEntries() uint32 { return r.sqEntries }

// CQEntries is the number of CQ slots; keep the I/O in flight at or under it.
func (r *Ring) CQEntries() uint32 { return r.cqEntries }

// EventFD is the eventfd the kernel signals on completion, for the reactor's
// epoll set, or -1 without Options.EventFD. The Ring owns and closes it.
func (r *Ring) EventFD() int { return r.eventFD }

// CQOverflow is the kernel's count of completions it dropped because the CQ
// and its overflow list were full (cq_ring->overflow). Nonzero means I/O was
// lost: a broken invariant of the owner, which let too much be in flight.
func (r *Ring) CQOverflow() uint32 { return atomic.LoadUint32(r.cqOverflow) }

// DrainEventFD reads the eventfd counter back to zero, so a level-triggered
// epoll stops reporting it; signaled says whether it was set. Call it before
// the final Reap of the idle protocol (package comment).
func (r *Ring) DrainEventFD() (signaled bool, err error) {
	r.assertUsable("DrainEventFD")
	if r.eventFD < 0 {
		panic(fmt.Sprintf("uring: DrainEventFD on ring fd %d without Options.EventFD", r.fd))
	}
	if _, err := unix.Read(r.eventFD, r.eventBuf[:]); err != nil {
		if err == unix.EAGAIN {
			return false, nil
		}
		return false, fmt.Errorf("uring: read eventfd %d: %w", r.eventFD, err)
	}
	return true, nil
}

// SetEventFDEnabled turns the eventfd signal on or off (IORING_CQ_EVENTFD_DISABLED,
// 5.8): a busy-polling reactor turns it off to spare the kernel a wake-up per
// batch, and back on before it sleeps. It reports false, changing nothing, on a
// kernel without the flag, where the signal stays on.
func (r *Ring) SetEventFDEnabled(on bool) bool {
	r.assertUsable("SetEventFDEnabled")
	if r.cqFlags == nil {
		return false
	}
	// Only we write cq_ring->flags; the kernel reads it before signaling.
	v := atomic.LoadUint32(r.cqFlags)
	if on {
		v &^= cqEventFDDisabled
	} else {
		v |= cqEventFDDisabled
	}
	atomic.StoreUint32(r.cqFlags, v)
	return true
}

// assertUsable is the always-on check of every owner-only call (one load and
// a predictable branch), plus the owner-thread check under invariants.
func (r *Ring) assertUsable(call string) {
	if r.closed {
		panic(fmt.Sprintf("uring: %s on closed ring fd %d", call, r.fd))
	}
	if invariants.Enabled {
		if tid := unix.Gettid(); tid != r.ownerTID {
			panic(fmt.Sprintf("uring: %s on thread %d, ring fd %d is owned by thread %d",
				call, tid, r.fd, r.ownerTID))
		}
	}
}

// panicNotOwner handles EEXIST from a SINGLE_ISSUER ring: the kernel saw a
// thread other than the creator. It can only be a bug of the caller.
func (r *Ring) panicNotOwner(call string) {
	panic(fmt.Sprintf("uring: %s: EEXIST: ring fd %d belongs to thread %d "+
		"(IORING_SETUP_SINGLE_ISSUER) but was entered from thread %d; "+
		"its owner must hold runtime.LockOSThread from New on",
		call, r.fd, r.ownerTID, unix.Gettid()))
}
