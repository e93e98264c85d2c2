package bdev

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/reactors"
)

const (
	// BlockSizeMin and BlockSizeMax bound a bdev's logical block: 512 is
	// the smallest sector any protocol speaks; 64 KiB the largest SBC-4
	// allows in a READ CAPACITY answer that initiators accept.
	BlockSizeMin = 512
	BlockSizeMax = 64 << 10
	// MetadataSizeMax bytes of separate metadata per block: NVMe's largest
	// common format (protection information plus a tag).
	MetadataSizeMax = 128
	// NameLenMax characters in a bdev name: what NVMe-oF and iSCSI show
	// comfortably, and what conf accepts.
	NameLenMax = 64
)

// Spec is what a driver needs to make one bdev: conf.Bdev in the layer's
// own terms (services import nothing of conf; cmd/sluice converts).
type Spec struct {
	Name         string
	Driver       string    // the Registry's name for the driver
	BlockSize    uint32    // bytes, a power of two in BlockSizeMin..BlockSizeMax
	Blocks       uint64    // capacity in blocks, > 0
	UUID         uuid.UUID // the nil UUID: the layer picks a random one
	Path         string    // file or block device (uring)
	MetadataSize uint32    // separate metadata bytes per block; 0 for none
}

// Info is what a back end tells the layer about itself.
type Info struct {
	// IOTypes the back end does. IOReset is always accepted: the layer
	// drains, and passes it down only when the back end lists it.
	IOTypes IOTypeSet
	// MaxTransferBlocks is the most blocks one read, write or compare may
	// move; the layer splits larger ones. 0: no limit.
	MaxTransferBlocks uint32
	// BoundaryBlocks is the optimal I/O boundary: the layer splits reads,
	// writes and compares so no piece crosses a multiple of it (a stripe,
	// a device's internal boundary). 0: none. A power of two.
	BoundaryBlocks uint32
	// MaxUnmapBlocks is the most blocks one unmap or write-zeroes may
	// cover; the layer splits larger ones. 0: no limit.
	MaxUnmapBlocks uint32
	// MaxIovecs is the most iovecs one IO may carry to the back end; the
	// layer splits IOs with more. 0: IovecsInlineMax.
	MaxIovecs int
	// BufAlign is the alignment each iovec's address and length needs
	// (O_DIRECT: the logical block size). 0 or 1: none. A power of two. An
	// IO that breaks it fails with StatusInvalid.
	BufAlign int
	// UnmapZeroes: after an unmap the range reads as zeros.
	UnmapZeroes bool
}

// Backend is one bdev's implementation: a driver's device or a stage. Its
// methods other than NewChannel run on the control plane.
type Backend interface {
	// Info describes the back end; called once, by Registry.Add.
	Info() Info
	// NewChannel makes the back end's state for reactor l.Reactor(): a
	// queue pair, an io_uring, a stage's per-core half. It runs on that
	// reactor, once per reactor, on first use.
	NewChannel(l *Local) (ChannelBackend, error)
	// Close releases the back end after every channel has been closed.
	Close() error
}

// ChannelBackend is a back end's per-reactor half. Owner: its reactor.
type ChannelBackend interface {
	// Submit hands io over: the back end owns it until it calls one of
	// io's Complete methods, exactly once (B1), on this reactor. It may
	// complete inside Submit (the layer defers that, B2) or later from a
	// poller. StatusNoResources is backpressure: the layer resubmits (B5).
	Submit(io *IO)
	// Close releases the channel; nothing is in flight on it.
	Close() error
}

// Driver makes back ends from specs: null, malloc, uring, registered by
// name in a Registry by cmd/sluice.
type Driver interface {
	Create(spec Spec) (Backend, error)
}

// DriverFunc adapts a function to Driver.
type DriverFunc func(spec Spec) (Backend, error)

// Create implements Driver.
func (f DriverFunc) Create(spec Spec) (Backend, error) { return f(spec) }

// Bdev is one block device. Its identity (name, UUID, geometry, Info) is set
// by Registry.Add and never changes; the lock list belongs to its owner
// reactor; the open and claim state to the Registry's lock.
type Bdev struct {
	name         string
	driver       string
	uuid         uuid.UUID
	blockSize    uint32
	blockShift   uint8
	blocks       uint64
	metadataSize uint32
	info         Info
	be           Backend
	owner        *reactors.Reactor // holds the range locks
	chans        []*bdevChannel    // index: reactor index; each owned by its reactor

	// Owner-only (owner reactor): range locks granted or being acquired,
	// and those waiting behind an overlapping one (B7).
	locks        []*RangeLock
	locksWaiting []*RangeLock

	// Registry lock.
	writers  int           // open descriptors that may write
	readers  int           // open read-only descriptors
	claimer  string        // the stage that claimed it; "" when none
	descs    []*Desc       // open descriptors, for Delete's hot-remove notices
	removing bool          // Delete has asked the openers to close: no new Open
	idle     chan struct{} // made by Delete; closed when the last descriptor closes
	removed  bool
}

// Name is the bdev's unique name.
func (b *Bdev) Name() string { return b.name }

// Driver is the name of the driver that made it, or "" for a stage.
func (b *Bdev) Driver() string { return b.driver }

// UUID identifies the bdev to hosts.
func (b *Bdev) UUID() uuid.UUID { return b.uuid }

// BlockSize is the logical block size in bytes.
func (b *Bdev) BlockSize() uint32 { return b.blockSize }

// Blocks is the capacity in blocks.
func (b *Bdev) Blocks() uint64 { return b.blocks }

// Size is the capacity in bytes.
func (b *Bdev) Size() uint64 { return b.blocks << b.blockShift }

// MetadataSize is the separate metadata per block in bytes; 0 for none.
func (b *Bdev) MetadataSize() uint32 { return b.metadataSize }

// IOTypes is what the bdev does: what its back end does, IOReset always,
// and the compares the layer emulates.
func (b *Bdev) IOTypes() IOTypeSet {
	s := b.info.IOTypes.With(IOReset)
	for _, t := range []IOType{IOCompare, IOCompareAndWrite} {
		if b.info.emulates(t) {
			s = s.With(t)
		}
	}
	return s
}

// Info is the back end's description.
func (b *Bdev) Info() Info { return b.info }

// Owner is the reactor that holds the bdev's range locks.
func (b *Bdev) Owner() *reactors.Reactor { return b.owner }

// Backend is the bdev's implementation.
func (b *Bdev) Backend() Backend { return b.be }

// ErrSpec is wrapped by every error about a malformed Spec or Info.
var ErrSpec = errors.New("bdev spec")

// validate reports every problem with s and info at once (STYLE: collect all).
func (s *Spec) validate(info *Info) error {
	var errs []error
	bad := func(field string, value any, rule string) {
		errs = append(errs, fmt.Errorf("bdev %q: %s %v, want %s: %w", s.Name, field, value, rule, ErrSpec))
	}
	if s.Name == "" || len(s.Name) > NameLenMax {
		bad("name", fmt.Sprintf("%q", s.Name), fmt.Sprintf("1..%d characters", NameLenMax))
	}
	if s.BlockSize < BlockSizeMin || s.BlockSize > BlockSizeMax || bits.OnesCount32(s.BlockSize) != 1 {
		bad("block size", s.BlockSize, fmt.Sprintf("a power of two in %d..%d", BlockSizeMin, BlockSizeMax))
	}
	if s.Blocks == 0 {
		bad("blocks", s.Blocks, "> 0")
	} else if s.BlockSize != 0 && s.Blocks > (1<<63)/uint64(s.BlockSize) {
		bad("blocks", s.Blocks, "a size under 8 EiB")
	}
	if s.MetadataSize > MetadataSizeMax {
		bad("metadata size", s.MetadataSize, fmt.Sprintf("0..%d", MetadataSizeMax))
	}
	if info != nil {
		if b := info.BoundaryBlocks; b != 0 && bits.OnesCount32(b) != 1 {
			bad("boundary blocks", b, "0 or a power of two")
		}
		if a := info.BufAlign; a > 1 && (bits.OnesCount(uint(a)) != 1 || a > PageSize) {
			bad("buffer alignment", a, fmt.Sprintf("0, 1 or a power of two up to %d", PageSize))
		}
		if info.MaxIovecs < 0 || info.MaxIovecs > IovecsInlineMax {
			bad("max iovecs", info.MaxIovecs, fmt.Sprintf("0..%d", IovecsInlineMax))
		}
	}
	return errors.Join(errs...)
}

// Validate checks s alone (before a driver sees it): name and geometry.
func (s Spec) Validate() error { return s.validate(nil) }
