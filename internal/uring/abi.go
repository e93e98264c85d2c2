package uring

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// The kernel ABI, from include/uapi/linux/io_uring.h. Every structure is
// native-endian (the kernel's own layout), hence binary.NativeEndian below.

// Op is an SQE opcode (enum io_uring_op). Only the ones this package prepares
// are named; the values are the kernel's and never change.
type Op uint8

const (
	OpNop         Op = 0  // IORING_OP_NOP, 5.1
	OpReadv       Op = 1  // IORING_OP_READV, 5.1
	OpWritev      Op = 2  // IORING_OP_WRITEV, 5.1
	OpFsync       Op = 3  // IORING_OP_FSYNC, 5.1
	OpReadFixed   Op = 4  // IORING_OP_READ_FIXED, 5.1
	OpWriteFixed  Op = 5  // IORING_OP_WRITE_FIXED, 5.1
	OpPollAdd     Op = 6  // IORING_OP_POLL_ADD, 5.1
	OpAsyncCancel Op = 14 // IORING_OP_ASYNC_CANCEL, 5.5
	OpFallocate   Op = 17 // IORING_OP_FALLOCATE, 5.6
	OpRead        Op = 22 // IORING_OP_READ, 5.6
	OpWrite       Op = 23 // IORING_OP_WRITE, 5.6
	OpSend        Op = 26 // IORING_OP_SEND, 5.6
	OpRecv        Op = 27 // IORING_OP_RECV, 5.6
)

// opsRequired are the opcodes the prep helpers emit; Supported checks each with
// IORING_REGISTER_PROBE, so a driver learns at start, not at its first I/O.
var opsRequired = [...]Op{
	OpNop, OpReadv, OpWritev, OpFsync, OpReadFixed, OpWriteFixed, OpPollAdd,
	OpAsyncCancel, OpFallocate, OpRead, OpWrite, OpSend, OpRecv,
}

func (o Op) String() string {
	switch o {
	case OpNop:
		return "NOP"
	case OpReadv:
		return "READV"
	case OpWritev:
		return "WRITEV"
	case OpFsync:
		return "FSYNC"
	case OpReadFixed:
		return "READ_FIXED"
	case OpWriteFixed:
		return "WRITE_FIXED"
	case OpPollAdd:
		return "POLL_ADD"
	case OpAsyncCancel:
		return "ASYNC_CANCEL"
	case OpFallocate:
		return "FALLOCATE"
	case OpRead:
		return "READ"
	case OpWrite:
		return "WRITE"
	case OpSend:
		return "SEND"
	case OpRecv:
		return "RECV"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// SQEFlags is sqe->flags (IOSQE_*).
type SQEFlags uint8

const (
	FlagFixedFile      SQEFlags = 1 << 0 // IOSQE_FIXED_FILE: fd is an index into RegisterFiles' table
	FlagIODrain        SQEFlags = 1 << 1 // IOSQE_IO_DRAIN: issue after everything before it completes
	FlagIOLink         SQEFlags = 1 << 2 // IOSQE_IO_LINK: the next SQE starts when this one succeeds
	FlagIOHardlink     SQEFlags = 1 << 3 // IOSQE_IO_HARDLINK: like IO_LINK, even if this one fails
	FlagAsync          SQEFlags = 1 << 4 // IOSQE_ASYNC: skip the inline attempt, go to a worker
	FlagBufferSelect   SQEFlags = 1 << 5 // IOSQE_BUFFER_SELECT
	FlagCQESkipSuccess SQEFlags = 1 << 6 // IOSQE_CQE_SKIP_SUCCESS: no CQE unless it fails (5.17)
	sqeFlagsKnownMask           = 1<<7 - 1
)

// FsyncFlags is sqe->fsync_flags.
type FsyncFlags uint32

// FsyncDatasync makes IORING_OP_FSYNC an fdatasync(2) (IORING_FSYNC_DATASYNC).
const FsyncDatasync FsyncFlags = 1 << 0

// cqe->flags (IORING_CQE_F_*).
const (
	CQEFlagBuffer       uint32 = 1 << 0 // upper 16 bits hold a provided-buffer id
	CQEFlagMore         uint32 = 1 << 1 // a multishot request will post more CQEs
	CQEFlagSockNonempty uint32 = 1 << 2 // more data is waiting after this recv
	CQEFlagNotif        uint32 = 1 << 3 // a zero-copy send notification
)

// io_uring_setup(2) flags (IORING_SETUP_*), as reported by SetupFlags.
const (
	SetupSQPoll       uint32 = 1 << 1  // a kernel thread polls the SQ (5.1; unprivileged 5.11)
	setupSQAff        uint32 = 1 << 2  // sq_thread_cpu is valid
	setupCQSize       uint32 = 1 << 3  // cq_entries is valid (5.5)
	SetupSubmitAll    uint32 = 1 << 7  // keep submitting after an SQE fails (5.18)
	SetupCoopTaskrun  uint32 = 1 << 8  // no IPI to run completion work (5.19)
	SetupTaskrunFlag  uint32 = 1 << 9  // set IORING_SQ_TASKRUN when work waits (5.19)
	SetupSingleIssuer uint32 = 1 << 12 // one task submits; the kernel can skip locks (6.0)
	SetupDeferTaskrun uint32 = 1 << 13 // completion work runs only when the owner enters (6.1)
	setupSQE128       uint32 = 1 << 10 // never set here: SQE is 64 bytes
	setupCQE32        uint32 = 1 << 11 // never set here: CQE is 16 bytes
)

// io_uring_params.features (IORING_FEAT_*), as reported by Features.
const (
	FeatSingleMMap   uint32 = 1 << 0 // SQ and CQ rings share one mapping (5.4)
	FeatNoDrop       uint32 = 1 << 1 // CQ overflow is kept, not dropped (5.5)
	FeatSubmitStable uint32 = 1 << 2 // SQE data is consumed by the time enter returns (5.5)
	FeatExtArg       uint32 = 1 << 8 // io_uring_enter takes a timeout (5.11)
)

// sq_ring->flags (IORING_SQ_*), written by the kernel.
const (
	sqNeedWakeup uint32 = 1 << 0 // the SQPOLL thread sleeps: enter with SQ_WAKEUP
	sqCQOverflow uint32 = 1 << 1 // CQEs wait in the kernel's overflow list
	sqTaskrun    uint32 = 1 << 2 // completion work waits for us to enter
)

// cq_ring->flags (IORING_CQ_*), written by us (5.8).
const cqEventFDDisabled uint32 = 1 << 0

// io_uring_enter(2) flags (IORING_ENTER_*).
const (
	enterGetEvents uint32 = 1 << 0
	enterSQWakeup  uint32 = 1 << 1
	enterExtArg    uint32 = 1 << 3
)

// io_uring_register(2) opcodes.
const (
	registerBuffers   = 0
	unregisterBuffers = 1
	registerFiles     = 2
	unregisterFiles   = 3
	registerEventFD   = 4
	registerProbe     = 8
)

// mmap offsets of the three regions (IORING_OFF_*).
const (
	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000
)

// Kernel limits we check before asking, so an error names our field, not EINVAL.
const (
	entriesMax         = 32768   // KERN_MAX_ENTRIES (IORING_MAX_ENTRIES)
	cqEntriesMax       = 65536   // IORING_MAX_CQ_ENTRIES = 2 × IORING_MAX_ENTRIES
	registerBuffersMax = 1 << 14 // IORING_MAX_REG_BUFFERS
	registerBufferSize = 1 << 30 // io_buffer_validate: SZ_1G per iovec
	registerFilesMax   = 1 << 20 // IORING_MAX_FIXED_FILES
	probeOpsMax        = 256     // io_probe: nr_args is capped at IORING_OP_LAST and 256
	iovecCountMax      = 1024    // UIO_MAXIOV: readv/writev refuse more
)

// SQESize is the size of one submission queue entry; the ring is never set up
// with IORING_SETUP_SQE128.
const SQESize = 64

// SQE is one submission queue entry (struct io_uring_sqe), viewed in place in
// the kernel-shared SQE array: GetSQE returns a pointer into it, the setters
// write fields where the kernel will read them. Offsets are the kernel's.
type SQE [SQESize]byte

const (
	offSQEOpcode    = 0  // __u8 opcode
	offSQEFlags     = 1  // __u8 flags (IOSQE_*)
	offSQEIOPrio    = 2  // __u16 ioprio (also send/recv and accept flags)
	offSQEFd        = 4  // __s32 fd
	offSQEOff       = 8  // __u64 off / addr2
	offSQEAddr      = 16 // __u64 addr / splice_off_in
	offSQELen       = 24 // __u32 len
	offSQEOpFlags   = 28 // __u32 rw_flags / fsync_flags / poll32_events / msg_flags …
	offSQEUserData  = 32 // __u64 user_data
	offSQEBufIndex  = 40 // __u16 buf_index / buf_group
	offSQEPersonal  = 42 // __u16 personality
	offSQEFileIndex = 44 // __u32 splice_fd_in / file_index / addr_len
	offSQEAddr3     = 48 // __u64 addr3
	offSQEPad2      = 56 // __u64 __pad2[1]
)

// Fails to compile unless SQE is exactly the kernel's 64 bytes.
const _ uintptr = unsafe.Sizeof(SQE{}) - SQESize
const _ uintptr = SQESize - unsafe.Sizeof(SQE{})

var ne = binary.NativeEndian

func (s *SQE) Opcode() Op         { return Op(s[offSQEOpcode]) }
func (s *SQE) Flags() SQEFlags    { return SQEFlags(s[offSQEFlags]) }
func (s *SQE) IOPrio() uint16     { return ne.Uint16(s[offSQEIOPrio:]) }
func (s *SQE) Fd() int32          { return int32(ne.Uint32(s[offSQEFd:])) }
func (s *SQE) Off() uint64        { return ne.Uint64(s[offSQEOff:]) }
func (s *SQE) Addr() uint64       { return ne.Uint64(s[offSQEAddr:]) }
func (s *SQE) Len() uint32        { return ne.Uint32(s[offSQELen:]) }
func (s *SQE) OpFlags() uint32    { return ne.Uint32(s[offSQEOpFlags:]) }
func (s *SQE) UserData() uint64   { return ne.Uint64(s[offSQEUserData:]) }
func (s *SQE) BufIndex() uint16   { return ne.Uint16(s[offSQEBufIndex:]) }
func (s *SQE) FileIndex() uint32  { return ne.Uint32(s[offSQEFileIndex:]) }
func (s *SQE) SetOpcode(o Op)     { s[offSQEOpcode] = byte(o) }
func (s *SQE) SetIOPrio(p uint16) { ne.PutUint16(s[offSQEIOPrio:], p) }
func (s *SQE) SetFd(fd int32)     { ne.PutUint32(s[offSQEFd:], uint32(fd)) }
func (s *SQE) SetOff(off uint64)  { ne.PutUint64(s[offSQEOff:], off) }
func (s *SQE) SetAddr(a uint64)   { ne.PutUint64(s[offSQEAddr:], a) }
func (s *SQE) SetLen(n uint32)    { ne.PutUint32(s[offSQELen:], n) }

// SetFlags replaces sqe->flags; FlagFixedFile makes Fd an index into the table
// of RegisterFiles. An unknown bit is a programmer error: the kernel would
// fail the SQE with EINVAL at completion, far from the cause.
func (s *SQE) SetFlags(f SQEFlags) {
	if f&^sqeFlagsKnownMask != 0 {
		panic(fmt.Sprintf("uring: SQE flags %#x has bits outside IOSQE_* %#x", uint8(f), sqeFlagsKnownMask))
	}
	s[offSQEFlags] = byte(f)
}

// SetOpFlags sets the per-opcode flag word: rw_flags (RWF_* from x/sys/unix)
// for reads and writes, fsync_flags, msg_flags, poll32_events.
func (s *SQE) SetOpFlags(f uint32) { ne.PutUint32(s[offSQEOpFlags:], f) }

// SetRWFlags sets rw_flags (unix.RWF_NOWAIT, RWF_DSYNC, RWF_HIPRI…) of a read
// or write; it is SetOpFlags under the name the kernel header uses.
func (s *SQE) SetRWFlags(f uint32) { s.SetOpFlags(f) }

// SetUserData sets the value its CQE carries back; the bdev layer stores the
// index of its request slot there.
func (s *SQE) SetUserData(v uint64) { ne.PutUint64(s[offSQEUserData:], v) }

// SetBufIndex selects a registered buffer for READ_FIXED and WRITE_FIXED.
func (s *SQE) SetBufIndex(i uint16) { ne.PutUint16(s[offSQEBufIndex:], i) }

// CQESize is the size of one completion queue entry; the ring is never set up
// with IORING_SETUP_CQE32.
const CQESize = 16

// CQE is one completion queue entry (struct io_uring_cqe). Reap copies CQEs out
// of the ring into the caller's []CQE, so a CQE is the caller's to keep.
type CQE [CQESize]byte

const (
	offCQEUserData = 0 // __u64 user_data
	offCQERes      = 8 // __s32 res: the syscall's return value, or -errno
	offCQEFlags    = 12
)

const _ uintptr = unsafe.Sizeof(CQE{}) - CQESize
const _ uintptr = CQESize - unsafe.Sizeof(CQE{})

// UserData is the value SetUserData put in the SQE.
func (c CQE) UserData() uint64 { return ne.Uint64(c[offCQEUserData:]) }

// Res is what the equivalent system call would return: a count, or -errno.
func (c CQE) Res() int32 { return int32(ne.Uint32(c[offCQERes:])) }

// Flags is cqe->flags (CQEFlag*).
func (c CQE) Flags() uint32 { return ne.Uint32(c[offCQEFlags:]) }

// params is struct io_uring_params: io_uring_setup reads the first seven words
// and writes back entries, features and the ring offsets.
type params [paramsSize]byte

const paramsSize = 120

const (
	offParamsSQEntries    = 0
	offParamsCQEntries    = 4
	offParamsFlags        = 8
	offParamsSQThreadCPU  = 12
	offParamsSQThreadIdle = 16 // milliseconds
	offParamsFeatures     = 20
	offParamsWQFd         = 24
	// resv[3] at 28..40

	// struct io_sqring_offsets sq_off at 40.
	offSQOffHead        = 40
	offSQOffTail        = 44
	offSQOffRingMask    = 48
	offSQOffRingEntries = 52
	offSQOffFlags       = 56
	offSQOffDropped     = 60
	offSQOffArray       = 64
	// resv1 at 68, user_addr at 72..80

	// struct io_cqring_offsets cq_off at 80.
	offCQOffHead        = 80
	offCQOffTail        = 84
	offCQOffRingMask    = 88
	offCQOffRingEntries = 92
	offCQOffOverflow    = 96
	offCQOffCQEs        = 100
	offCQOffFlags       = 104
	// resv1 at 108, user_addr at 112..120
)

func (p *params) u32(off int) uint32       { return ne.Uint32(p[off:]) }
func (p *params) setU32(off int, v uint32) { ne.PutUint32(p[off:], v) }

// probe is struct io_uring_probe with room for probeOpsMax struct
// io_uring_probe_op: last_op u8, ops_len u8, resv u16, resv2 u32[3], then
// 8 bytes per op {op u8, resv u8, flags u16, resv2 u32}.
type probe [probeHeaderSize + probeOpsMax*probeOpSize]byte

const (
	probeHeaderSize  = 16
	probeOpSize      = 8
	offProbeOpsLen   = 1
	offProbeOpFlags  = 2 // within one op
	probeOpSupported = 1 // IO_URING_OP_SUPPORTED
)

// supports reports whether the kernel's probe answer lists op as supported.
func (p *probe) supports(op Op) bool {
	if int(op) >= int(p[offProbeOpsLen]) {
		return false
	}
	at := probeHeaderSize + int(op)*probeOpSize + offProbeOpFlags
	return ne.Uint16(p[at:])&probeOpSupported != 0
}
