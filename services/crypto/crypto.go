package crypto

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage"
)

// Service is the stage's service name.
const Service = "crypto"

// transferSizeMax bytes is the most one IO moves through the stage: a write
// is encrypted into one pooled buffer of this size (the bdev layer's large
// buffer, NVMe/TCP's MDTS), so the layer splits larger IO before it
// arrives.
const transferSizeMax = 128 << 10

// cryptoTypes: compare is emulated above (a read here decrypts), compare
// and write too; write-zeroes is done here, as encrypted zeros.
var cryptoTypes = bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap, bdev.IOWriteZeroes, bdev.IOReset)

// Config makes one crypto stage.
type Config struct {
	Name string
	Base string
	UUID uuid.UUID
	Key  *Key // from Keys.Use; the stage never copies its bytes
	// Convert encrypts a base that holds plaintext, online, region by
	// region (convert.go); it reserves the base's tail for the progress
	// record. A base whose tail holds a record resumes where it stopped.
	Convert bool
	// ConvertRate bounds the conversion in bytes per second; 0: as fast
	// as it goes.
	ConvertRate uint64
	// Logger gets the conversion's progress; nil: slog.Default. Nothing
	// about the key but its name is ever logged.
	Logger *slog.Logger
}

// Stage is one crypto stage: a stage.Backend.
type Stage struct {
	cfg       Config
	reg       *bdev.Registry
	bases     *stage.Bases
	base      *bdev.Bdev
	blockSize uint32
	blocks    uint64
	info      bdev.Info
	conv      *converter // nil unless Convert
	log       *slog.Logger

	encrypted atomic.Uint64 // blocks encrypted on writes, all reactors, published every few IOs
}

// New opens and claims cfg.Base; stage.Add registers the result (and
// starts a conversion, Start).
func New(reg *bdev.Registry, cfg Config) (*Stage, error) {
	if cfg.Base == "" || cfg.Key == nil {
		return nil, fmt.Errorf("crypto %q: base %q key %v, want both: %w", cfg.Name, cfg.Base, cfg.Key, stage.ErrConfig)
	}
	bases, err := stage.OpenBases(reg, cfg.Name, []string{cfg.Base})
	if err != nil {
		return nil, err
	}
	s := &Stage{cfg: cfg, reg: reg, bases: bases, base: bases.Descs[0].Bdev(), log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("stage", cfg.Name, "key", cfg.Key.Name())
	if s.blockSize, err = bases.SameBlockSize(cfg.Name); err != nil {
		bases.Close()
		return nil, err
	}
	bi := s.base.Info()
	s.info = bi
	s.info.IOTypes = bi.IOTypes & cryptoTypes
	if bi.IOTypes.Has(bdev.IOWrite) {
		s.info.IOTypes = s.info.IOTypes.With(bdev.IOWriteZeroes)
	}
	s.info.UnmapZeroes = false // an unmapped block reads as zeros below: decrypted, noise
	maxBlocks := uint32(transferSizeMax / s.blockSize)
	if m := s.info.MaxTransferBlocks; m == 0 || m > maxBlocks {
		s.info.MaxTransferBlocks = maxBlocks
	}
	s.info.MaxUnmapBlocks = minLimit(s.info.MaxUnmapBlocks, maxBlocks) // write-zeroes too: one buffer each
	s.blocks = s.base.Blocks()
	if cfg.Convert {
		if s.conv, err = newConverter(s); err != nil {
			bases.Close()
			return nil, err
		}
		s.blocks = s.conv.dataBlocks
		s.info.BoundaryBlocks = uint32(s.conv.regionBlocks) // an IO is on one side of the watermark
	}
	return s, nil
}

func minLimit(a, b uint32) uint32 {
	if a == 0 {
		return b
	}
	return min(a, b)
}

// Spec is the base's geometry (less a conversion's record) under the
// stage's name.
func (s *Stage) Spec() bdev.Spec { return stage.Spec(s.cfg.Name, s.cfg.UUID, s.blockSize, s.blocks) }

func (s *Stage) Name() string    { return s.cfg.Name }
func (s *Stage) Service() string { return Service }
func (s *Stage) Bases() []string { return s.bases.Names() }
func (s *Stage) Info() bdev.Info { return s.info }

func (s *Stage) cfgLog(msg string, args ...any) { s.log.Info(msg, args...) }

// Key is the stage's key (for Keys.Release when it is deleted).
func (s *Stage) Key() *Key { return s.cfg.Key }

// Start resumes or begins a conversion; nothing for a fresh stage.
func (s *Stage) Start() error {
	if s.conv == nil {
		return nil
	}
	return s.conv.start()
}

// Close stops a conversion and releases the base.
func (s *Stage) Close() error {
	if s.conv != nil {
		s.conv.stopAndWait()
		s.conv.close()
	}
	s.bases.Close()
	return nil
}

// Status is the stage's key name (never the key), cipher and conversion.
type Status struct {
	KeyName    string         `json:"key_name"`
	Cipher     string         `json:"cipher"`
	KeyBits    int            `json:"key_bits"`
	Encrypted  uint64         `json:"blocks_encrypted"`
	Conversion *ConvertStatus `json:"conversion,omitempty"`
}

func (s *Stage) Status() any {
	st := Status{KeyName: s.cfg.Key.Name(), Cipher: CipherXTS, KeyBits: s.cfg.Key.Bits(), Encrypted: s.encrypted.Load()}
	if s.conv != nil {
		st.Conversion = s.conv.status()
	}
	return st
}

// NewChannel opens the base's channel and makes a scratch block for data
// that straddles two iovecs.
func (s *Stage) NewChannel(l *bdev.Local) (bdev.ChannelBackend, error) {
	base, err := s.bases.Descs[0].Channel(l.Reactor())
	if err != nil {
		return nil, err
	}
	// A pooled buffer must hold the largest transfer: refuse now, rather
	// than answer no-resources forever.
	if b := l.AllocBuf(transferSizeMax); b == nil {
		return nil, fmt.Errorf("crypto %q: the reactor's buffer pool has no %d-byte buffer: raise the large buffer size",
			s.cfg.Name, transferSizeMax)
	} else {
		l.FreeBuf(b)
	}
	scratch, err := bdev.MapRegion(int(s.blockSize))
	if err != nil {
		return nil, err
	}
	return &channel{s: s, base: base, l: l, r: l.Reactor(), scratch: scratch}, nil
}

// channel is the stage on one reactor. Owner: that reactor.
type channel struct {
	s       *Stage
	base    *bdev.Channel
	l       *bdev.Local
	r       *reactors.Reactor
	scratch *bdev.Region // one block: a block split over two iovecs is put together here

	// Owner-only.
	encrypted uint64 // blocks, published to Stage.encrypted every publishEvery
}

// publishEvery blocks a channel adds its count to the stage's atomic: an
// atomic add per IO would cost more than a small encryption.
const publishEvery = 1024

// Submit encrypts writes into a pooled buffer (the caller's buffer is never
// written: C1), decrypts reads in place when they complete (C2), and
// passes the rest down. Blocks a conversion has not reached go down as
// plaintext (C5): below boundary a block is encrypted, from it on it is not.
func (c *channel) Submit(io *bdev.IO) {
	boundary := ^uint64(0)
	if c.s.conv != nil {
		boundary = c.s.conv.boundary()
	}
	if io.OffsetBlocks >= boundary && io.Type != bdev.IOWriteZeroes {
		c.plain(io)
		return
	}
	switch io.Type {
	case bdev.IOWrite, bdev.IOWriteZeroes:
		c.write(io, boundary)
	default:
		child := stage.Child(c.base, io, c)
		if child == nil {
			io.Complete(bdev.StatusNoResources)
			return
		}
		child.Ctx[ctxBoundary] = boundary
		c.base.Submit(child)
	}
}

// Child context word: the first block not encrypted when the IO was
// submitted (C5); a conversion's lock keeps it still while the IO runs.
const ctxBoundary = 0

// plain passes io down unchanged: a region still plaintext (C5).
func (c *channel) plain(io *bdev.IO) {
	child := stage.Child(c.base, io, plainDone{})
	if child == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	c.base.Submit(child)
}

// plainDone completes a plaintext child without decrypting.
type plainDone struct{}

func (plainDone) Complete(child *bdev.IO) { stage.Finish(child) }

// write encrypts io's data (zeros for write-zeroes) block by block into a
// pooled buffer, tweak = LBA, and writes that; blocks from boundary on are
// copied as they are (C5).
func (c *channel) write(io *bdev.IO, boundary uint64) {
	bs := uint64(c.s.blockSize)
	size := io.Blocks * bs
	buf := c.l.AllocBuf(int(size))
	if buf == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	child := stage.Child(c.base, io, c)
	if child == nil {
		c.l.FreeBuf(buf)
		io.Complete(bdev.StatusNoResources)
		return
	}
	k := c.s.cfg.Key.cipher
	if io.Type == bdev.IOWriteZeroes {
		clear(buf)
		for b := uint64(0); b < io.Blocks && io.OffsetBlocks+b < boundary; b++ {
			blk := buf[b*bs : (b+1)*bs]
			k.Encrypt(blk, blk, io.OffsetBlocks+b)
		}
		child.Type = bdev.IOWrite
	} else {
		iov, at := 0, 0
		for b := uint64(0); b < io.Blocks; b++ {
			blk := buf[b*bs : (b+1)*bs]
			lba := io.OffsetBlocks + b
			switch v := io.Iovecs[iov]; {
			case lba >= boundary:
				iov, at = gather(blk, io.Iovecs, iov, at)
			case len(v)-at >= int(bs):
				k.Encrypt(blk, v[at:at+int(bs)], lba) // C1: read from the caller's, written to ours
				at += int(bs)
			default:
				iov, at = gather(blk, io.Iovecs, iov, at)
				k.Encrypt(blk, blk, lba)
			}
			if iov < len(io.Iovecs) && at == len(io.Iovecs[iov]) {
				iov, at = iov+1, 0
			}
		}
	}
	child.SetBuf(buf)
	c.count(io.Blocks)
	c.base.Submit(child)
}

// gather copies the next len(dst) bytes of iovs from (iov, at) into dst
// and returns where it stopped.
func gather(dst []byte, iovs []bdev.Iovec, iov, at int) (int, int) {
	for n := 0; n < len(dst); {
		k := copy(dst[n:], iovs[iov][at:])
		n += k
		if at += k; at == len(iovs[iov]) && n < len(dst) {
			iov, at = iov+1, 0
		}
	}
	return iov, at
}

// scatter is gather's inverse: src back into iovs from (iov, at).
func scatter(iovs []bdev.Iovec, iov, at int, src []byte) (int, int) {
	for n := 0; n < len(src); {
		k := copy(iovs[iov][at:], src[n:])
		n += k
		if at += k; at == len(iovs[iov]) && n < len(src) {
			iov, at = iov+1, 0
		}
	}
	return iov, at
}

func (c *channel) count(blocks uint64) {
	c.encrypted += blocks
	if c.encrypted >= publishEvery {
		c.s.encrypted.Add(c.encrypted)
		c.encrypted = 0
	}
}

// Complete frees a write's buffer, or decrypts a read in place (C2), and
// ends the upper IO.
func (c *channel) Complete(child *bdev.IO) {
	io := child.Parent
	switch {
	case io.Type == bdev.IOWrite || io.Type == bdev.IOWriteZeroes:
		c.l.FreeBuf(child.Iovecs[0])
	case io.Type == bdev.IORead && child.Status == bdev.StatusSuccess:
		c.decrypt(io, child.Ctx[ctxBoundary])
	}
	stage.Finish(child)
}

// decrypt turns io's data, read from the base, into plaintext in place,
// up to boundary (C5).
func (c *channel) decrypt(io *bdev.IO, boundary uint64) {
	k := c.s.cfg.Key.cipher
	bs := int(c.s.blockSize)
	scratch := c.scratch.Bytes()
	iov, at := 0, 0
	for b := uint64(0); b < io.Blocks && io.OffsetBlocks+b < boundary; b++ {
		if v := io.Iovecs[iov]; len(v)-at >= bs {
			blk := v[at : at+bs]
			k.Decrypt(blk, blk, io.OffsetBlocks+b)
			at += bs
		} else {
			ni, na := gather(scratch, io.Iovecs, iov, at)
			k.Decrypt(scratch, scratch, io.OffsetBlocks+b)
			scatter(io.Iovecs, iov, at, scratch)
			iov, at = ni, na
		}
		if iov < len(io.Iovecs) && at == len(io.Iovecs[iov]) {
			iov, at = iov+1, 0
		}
	}
}

// Close releases the scratch block; nothing is in flight.
func (c *channel) Close() error {
	c.s.encrypted.Add(c.encrypted)
	c.encrypted = 0
	return c.scratch.Unmap()
}
