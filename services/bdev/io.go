package bdev

import (
	"fmt"

	"golang.org/x/sys/unix"
)

const (
	// IovecsInlineMax iovecs fit in an IO without the submitter owning an
	// array: a 4 KiB page-crossing buffer needs 2, a split child of a
	// 128 KiB I/O over 8 KiB pool buffers needs up to 16.
	IovecsInlineMax = 16
	// CtxWordsMax words of per-I/O context are reserved in every IO for its
	// submitter (a front end's tag, a stage's saved offset), so a stage needs
	// no allocation per I/O.
	CtxWordsMax = 4
)

// Iovec is one contiguous piece of an IO's data: a slice of off-heap memory
// (a Local's buffer pool or a caller's Region).
type Iovec = []byte

// Completer is told that an IO it submitted has completed. Complete runs
// exactly once per Submit (B1), on the reactor that submitted the IO (B3),
// never inside that Submit call (B2). It reads io.Status and detail, then
// frees the IO (IO.Free) or submits it again. Implement it on a pooled
// request object: an interface holding a pointer does not allocate (B9).
type Completer interface {
	Complete(io *IO)
}

// ioState is where an IO is in its life; every transition is checked (B1).
type ioState uint8

const (
	ioFree       ioState = iota // on its Local's free list
	ioReady                     // allocated, or completed and handed back
	ioPending                   // submitted: held, admitted, parked or at the back end
	ioCompleting                // Complete called: deferred or being finished
	ioForwarding                // in the target reactor's ring (Forward)
	ioReturning                 // completed on the target, on its way home
)

var ioStateNames = [...]string{"free", "ready", "pending", "completing", "forwarding", "returning"}

func (s ioState) String() string {
	if int(s) < len(ioStateNames) {
		return ioStateNames[s]
	}
	return fmt.Sprintf("ioState(%d)", uint8(s))
}

// ioFlags mark what the layer is doing with an IO.
type ioFlags uint8

const (
	ioAdmitted     ioFlags = 1 << iota // in its channel's in-flight list
	ioAtBackend                        // handed to the back end, not completed yet
	ioChild                            // a split child: its Parent is the admitted IO
	ioEmuChild                         // an emulation's read or write: its Parent is the admitted IO
	ioResume                           // parked parent: resume its split or emulation, not resubmit
	ioRetrying                         // being resubmitted from the no-resources queue
	ioResetBackend                     // a reset at the back end, after its drain
)

// IO is one request on its way down the stack and back. It is pooled per
// reactor (Local.AllocIO) and never allocated per I/O (B9).
//
// Owner: the submitter from AllocIO until Submit and again from its
// Completer's Complete until Free or the next Submit; the layer and the back
// end in between. The request fields are read-only below the submitter while
// the IO is pending; the result fields are written once, by Complete.
type IO struct {
	// Request, set by the submitter.
	Type         IOType
	OffsetBlocks uint64
	Blocks       uint64
	// Iovecs is the data (IOWrite, IORead, IOCompare, the write half of
	// IOCompareAndWrite): SetBuf or AddIovec fill it from the inline array,
	// or point it at the submitter's own array. The lengths add up to
	// Blocks*BlockSize.
	Iovecs []Iovec
	// CompareIovecs is the compare half of IOCompareAndWrite.
	CompareIovecs []Iovec
	// Metadata is the separate per-block metadata, Blocks*MetadataSize
	// bytes, on bdevs that have it; nil otherwise.
	Metadata []byte
	// Completer is told when the IO completes.
	Completer Completer
	// Parent is the IO this one serves: a split child's original, or a
	// stage's upper IO. The layer sets it for split children only.
	Parent *IO
	// Lock lets this IO through a range lock its submitter holds (a
	// rebuild's copy, a stage's read-modify-write); nil for other IO.
	Lock *RangeLock
	// Ctx is the submitter's per-I/O context; the layer never touches it.
	Ctx [CtxWordsMax]uint64
	// CtxRef is the submitter's per-I/O pointer (assigning a pointer to an
	// interface does not allocate).
	CtxRef any

	// Result, written when the IO completes.
	Status           Status
	NVMe             NVMeStatus // StatusNVMe detail
	SCSI             SCSIStatus // StatusSCSI detail
	Errno            unix.Errno // StatusErrno detail
	MiscompareOffset uint64     // StatusMiscompare: byte offset of the first difference

	// Layer-owned.
	state  ioState
	flags  ioFlags
	local  *Local     // the pool it came from: its origin reactor (B3)
	ch     *Channel   // where it was submitted
	fwd    *Channel   // Forward's target; nil when not forwarded
	next   *IO        // intrusive link: free list, deferred, held, parked
	ilPrev *IO        // in-flight list (ioAdmitted)
	ilNext *IO        //
	seq    uint64     // admission order on its channel (B6)
	split  splitState // a parent being split
	lock   *RangeLock // reset, compare-and-write: the lock it took and passes
	emu    emuState   // an emulated compare or compare-and-write
	inline [IovecsInlineMax]Iovec
}

// splitState is a parent IO's progress through its split.
type splitState struct {
	nextBlock uint64 // first block not yet given to a child
	leftBlock uint64 // blocks not yet given to a child
	iov       int    // Iovecs index where the next child's data starts
	iovOff    int    // byte offset in Iovecs[iov]
	out       int32  // children submitted and not completed
}

// SetBuf makes b the IO's only iovec.
func (io *IO) SetBuf(b []byte) {
	io.inline[0] = b
	io.Iovecs = io.inline[:1]
}

// ResetIovecs empties Iovecs onto the inline array.
func (io *IO) ResetIovecs() { io.Iovecs = io.inline[:0] }

// AddIovec appends b to the inline iovecs (after ResetIovecs or SetBuf);
// false when IovecsInlineMax are in use.
func (io *IO) AddIovec(b []byte) bool {
	if len(io.Iovecs) == IovecsInlineMax || (len(io.Iovecs) > 0 && &io.Iovecs[0] != &io.inline[0]) {
		return false
	}
	io.Iovecs = io.inline[:len(io.Iovecs)+1]
	io.Iovecs[len(io.Iovecs)-1] = b
	return true
}

// Channel is the channel the IO was last submitted on.
func (io *IO) Channel() *Channel { return io.ch }

// Bytes is Blocks times the block size of the bdev the IO was submitted to.
func (io *IO) Bytes() uint64 { return io.Blocks * uint64(io.ch.bc.bdev.blockSize) }

// Complete ends a pending IO with st: the back end's one call per
// submission (B1). It runs on the reactor the IO was submitted on. A status
// of StatusNoResources parks the IO for resubmission (B5).
func (io *IO) Complete(st Status) {
	if io.state != ioPending {
		panic(fmt.Sprintf("bdev: Complete(%v) on %s IO (type %v, LBA %d+%d, status %v): completed twice?",
			st, io.state, io.Type, io.OffsetBlocks, io.Blocks, io.Status))
	}
	if st == StatusPending || !st.Valid() {
		panic(fmt.Sprintf("bdev: Complete(%v) on %v LBA %d+%d: not a final status", st, io.Type, io.OffsetBlocks, io.Blocks))
	}
	io.state = ioCompleting
	io.Status = st
	bc := io.atBackend()
	if bc != nil {
		bc.backendOut--
		if st == StatusNoResources {
			io.state = ioPending
			bc.park(io)
			return
		}
	}
	l := io.here()
	if l.submitDepth > 0 {
		l.deferCompletion(io) // B2
		return
	}
	io.finish()
}

// CompleteNVMe ends io with StatusNVMe and the given detail.
func (io *IO) CompleteNVMe(s NVMeStatus) {
	io.NVMe = s
	io.Complete(StatusNVMe)
}

// CompleteSCSI ends io with StatusSCSI and the given detail.
func (io *IO) CompleteSCSI(s SCSIStatus) {
	io.SCSI = s
	io.Complete(StatusSCSI)
}

// CompleteErrno ends io with StatusErrno and e.
func (io *IO) CompleteErrno(e unix.Errno) {
	io.Errno = e
	io.Complete(StatusErrno)
}

// CompleteMiscompare ends a compare with StatusMiscompare at byte offset off.
func (io *IO) CompleteMiscompare(off uint64) {
	io.MiscompareOffset = off
	io.Complete(StatusMiscompare)
}

// StatusString describes the status with its detail, for logs and errors.
// It allocates: not for the I/O path.
func (io *IO) StatusString() string {
	switch io.Status {
	case StatusNVMe:
		return "nvme " + io.NVMe.String()
	case StatusSCSI:
		return "scsi " + io.SCSI.String()
	case StatusErrno:
		return fmt.Sprintf("errno %d (%v)", int(io.Errno), io.Errno)
	case StatusMiscompare:
		return fmt.Sprintf("miscompare at byte %d", io.MiscompareOffset)
	}
	return io.Status.String()
}

// Free returns a ready IO to the pool of the reactor it came from; it must
// run on that reactor. Freeing a pending IO panics.
func (io *IO) Free() {
	if io.state != ioReady {
		panic(fmt.Sprintf("bdev: Free of %s IO (type %v, LBA %d+%d)", io.state, io.Type, io.OffsetBlocks, io.Blocks))
	}
	io.local.freeIO(io)
}

// atBackend is the back-end channel an IO sits at, or nil for an IO that
// never reached one (refused at Submit, or a failed Forward).
// carries reports whether io may pass lock l: its submitter's, or the one
// the layer took for it.
func (io *IO) carries(l *RangeLock) bool { return io.Lock == l || io.lock == l }

func (io *IO) atBackend() *bdevChannel {
	if io.flags&ioAtBackend == 0 {
		return nil
	}
	io.flags &^= ioAtBackend
	return io.ch.bc
}

// here is the Local of the reactor the IO is on now: its channel's, or
// its pool's when it has none (a failed Forward completes at home).
func (io *IO) here() *Local {
	if io.ch != nil {
		return io.ch.bc.local
	}
	return io.local
}

// finish runs a completed IO's completion on its channel's reactor: a split
// child reports to its parent; an admitted IO leaves the in-flight list
// (waking lock drains and parked IO); then the Completer runs here, or at
// home for a forwarded IO.
func (io *IO) finish() {
	if io.flags&ioChild != 0 {
		bc := io.ch.bc
		bc.childDone(io)
		bc.kick() // a child left the back end: room for what is parked (B5)
		return
	}
	if io.flags&ioEmuChild != 0 {
		bc := io.ch.bc
		bc.emulateChildDone(io)
		bc.kick()
		return
	}
	if io.flags&ioResetBackend != 0 {
		io.ch.bc.resetBackendDone(io)
		return
	}
	var bc *bdevChannel
	if io.flags&ioAdmitted != 0 {
		bc = io.ch.bc
		bc.retire(io)
	}
	io.flags = 0
	if io.fwd != nil {
		io.state = ioReturning
		io.ch.bc.local.post(io.local.reactor, io) // B8: never dropped
	} else {
		io.state = ioReady
		io.Completer.Complete(io)
	}
	if bc != nil {
		bc.kick()
	}
}

// Deliver is the IO as a reactors.Message: on the target reactor of a
// Forward it is submitted there; back home it completes.
func (io *IO) Deliver() {
	switch io.state {
	case ioForwarding:
		io.state = ioReady
		io.fwd.Submit(io)
	case ioReturning:
		io.fwd = nil
		io.state = ioReady
		io.Completer.Complete(io)
	default:
		panic(fmt.Sprintf("bdev: delivered %s IO (type %v, LBA %d+%d)", io.state, io.Type, io.OffsetBlocks, io.Blocks))
	}
}

// Forward submits io on ch, a channel owned by another reactor: the IO is
// posted to that reactor, submitted there, and its completion posted back,
// so the Completer still runs here (B3). io must come from this reactor's
// pool. When the target's ring is full the IO completes here with
// StatusNoResources (backpressure to the submitter), never waits.
func Forward(io *IO, ch *Channel) {
	if io.state != ioReady {
		panic(fmt.Sprintf("bdev: Forward of %s IO (type %v, LBA %d+%d)", io.state, io.Type, io.OffsetBlocks, io.Blocks))
	}
	io.ch = nil
	io.fwd = ch
	io.state = ioForwarding
	if err := ch.owner.Post(io); err != nil {
		io.fwd = nil
		io.state = ioCompleting
		io.Status = StatusNoResources
		io.local.deferCompletion(io) // B2: not inside this call
	}
}
