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
	// region (convert.go); it keeps a journal and the progress record in
	// the base's tail, or on Metadata. A record found there resumes where
	// it stopped.
	Convert bool
	// ConvertRate bounds the conversion in bytes per second; 0: as fast
	// as it goes.
	ConvertRate uint64
	// Metadata names the bdev that keeps a conversion's journal and record
	// (Convert only) instead of the base's tail: the stage is then the
	// base's whole size and describes itself as the base does (C8), so it
	// can go under a live bdev whose size and shape are fixed (bdev B10).
	// The name stays part of the stage for good: the record on it says
	// where the conversion is, and that it is done.
	Metadata string
	// ConvertFresh says the base holds only plaintext (a live bdev the
	// stage goes under): a record already on the metadata bdev is refused
	// rather than resumed, since it belongs to another conversion.
	ConvertFresh bool
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
	meta      *bdev.Desc // Config.Metadata's descriptor (a second base); nil without one
	// shaped: Metadata given, so the stage has the base's shape (C8): IO
	// of any size, and a block of zeros on the base reads as zeros.
	shaped      bool
	chunkBlocks uint64 // the most blocks one child write carries: a pooled buffer's worth
	log         *slog.Logger

	encrypted atomic.Uint64 // blocks encrypted on writes, all reactors, published every few IOs
}

// New opens and claims cfg.Base; stage.Add registers the result (and
// starts a conversion, Start).
func New(reg *bdev.Registry, cfg Config) (*Stage, error) {
	if cfg.Base == "" || cfg.Key == nil {
		return nil, fmt.Errorf("crypto %q: base %q key %v, want both: %w", cfg.Name, cfg.Base, cfg.Key, stage.ErrConfig)
	}
	if cfg.Metadata != "" && !cfg.Convert {
		return nil, fmt.Errorf("crypto %q: metadata %q without convert, want convert (the metadata bdev keeps a conversion's record): %w",
			cfg.Name, cfg.Metadata, stage.ErrConfig)
	}
	names := []string{cfg.Base}
	if cfg.Metadata != "" {
		names = append(names, cfg.Metadata)
	}
	bases, err := stage.OpenBases(reg, cfg.Name, names)
	if err != nil {
		return nil, err
	}
	s := &Stage{cfg: cfg, reg: reg, bases: bases, base: bases.Descs[0].Bdev(), log: cfg.Logger, shaped: cfg.Metadata != ""}
	if s.shaped {
		s.meta = bases.Descs[1]
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("stage", cfg.Name, "key", cfg.Key.Name())
	if s.blockSize, err = bases.SameBlockSize(cfg.Name); err != nil {
		bases.Close()
		return nil, err
	}
	s.chunkBlocks = uint64(transferSizeMax / s.blockSize)
	s.info = s.describe()
	s.blocks = s.base.Blocks()
	if cfg.Convert {
		if s.conv, err = newConverter(s); err != nil {
			bases.Close()
			return nil, err
		}
		s.blocks = s.conv.dataBlocks
		if !s.shaped {
			s.info.BoundaryBlocks = uint32(s.conv.regionBlocks) // an IO is on one side of the watermark
		}
	}
	return s, nil
}

// describe is the stage's Info. Shaped (C8): the base's, less the IO types
// a crypto stage cannot pass (a native compare would see ciphertext; the
// layer emulates it above). Otherwise narrowed to one pooled buffer per
// IO, with write-zeroes done here and no promise about unmapped blocks.
func (s *Stage) describe() bdev.Info {
	bi := s.base.Info()
	info := bi
	info.IOTypes = bi.IOTypes & cryptoTypes
	if s.shaped {
		return info
	}
	if bi.IOTypes.Has(bdev.IOWrite) {
		info.IOTypes = info.IOTypes.With(bdev.IOWriteZeroes)
	}
	info.UnmapZeroes = false // an unmapped block reads as zeros below: decrypted, noise
	maxBlocks := uint32(s.chunkBlocks)
	if m := info.MaxTransferBlocks; m == 0 || m > maxBlocks {
		info.MaxTransferBlocks = maxBlocks
	}
	info.MaxUnmapBlocks = minLimit(info.MaxUnmapBlocks, maxBlocks) // write-zeroes too: one buffer each
	return info
}

// IOTypes are the IO types a crypto stage passes through: a shaped stage
// (Config.Metadata) goes under a live bdev only if that bdev's back end
// does no other (bdev B10 keeps its Info).
func IOTypes() bdev.IOTypeSet { return cryptoTypes }

func minLimit(a, b uint32) uint32 {
	if a == 0 {
		return b
	}
	return min(a, b)
}

// Spec is the base's geometry (less a conversion's journal and record when
// they are in its tail) under the stage's name.
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
// A shaped stage passes unmap and write-zeroes down as they are: zeros on
// the base read as zeros (C8).
func (c *channel) Submit(io *bdev.IO) {
	boundary := ^uint64(0)
	if c.s.conv != nil {
		boundary = c.s.conv.boundary()
	}
	zeroes := io.Type == bdev.IOWriteZeroes && !c.s.shaped
	if io.OffsetBlocks >= boundary && !zeroes {
		c.plain(io)
		return
	}
	switch {
	case io.Type == bdev.IOWrite || zeroes:
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

// Child context words: the first block not encrypted when the IO was
// submitted (C5; a conversion's lock keeps it still while the IO runs),
// and for a write the upper IO's blocks written or being written.
const (
	ctxBoundary = 0
	ctxWritten  = 1
)

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
// pooled buffer, tweak = LBA, and writes that, a buffer's worth
// (chunkBlocks) at a time: one child, refilled and sent again as each
// piece completes. Only a shaped stage gets IO larger than that.
func (c *channel) write(io *bdev.IO, boundary uint64) {
	n := min(io.Blocks, c.s.chunkBlocks)
	buf := c.l.AllocBuf(int(n * uint64(c.s.blockSize)))
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
	child.Type = bdev.IOWrite
	child.Ctx[ctxBoundary] = boundary
	c.fill(child, buf, 0)
	c.count(io.Blocks)
	c.base.Submit(child)
}

// fill points child at the piece of its upper IO from block done on:
// encrypted into buf (the pooled buffer, at least the piece's size), blocks
// from the boundary on copied as they are (C5).
func (c *channel) fill(child *bdev.IO, buf []byte, done uint64) {
	io := child.Parent
	bs := uint64(c.s.blockSize)
	n := min(io.Blocks-done, c.s.chunkBlocks)
	boundary := child.Ctx[ctxBoundary]
	child.OffsetBlocks, child.Blocks = io.OffsetBlocks+done, n
	child.Ctx[ctxWritten] = done + n
	buf = buf[:n*bs]
	k := c.s.cfg.Key.cipher
	if io.Type == bdev.IOWriteZeroes {
		clear(buf)
		for b := uint64(0); b < n && child.OffsetBlocks+b < boundary; b++ {
			blk := buf[b*bs : (b+1)*bs]
			k.Encrypt(blk, blk, child.OffsetBlocks+b)
		}
		child.SetBuf(buf)
		return
	}
	iov, at := seek(io.Iovecs, done*bs)
	for b := uint64(0); b < n; b++ {
		blk := buf[b*bs : (b+1)*bs]
		lba := child.OffsetBlocks + b
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
	child.SetBuf(buf)
}

// seek finds byte off of iovs as (iovec, offset in it).
func seek(iovs []bdev.Iovec, off uint64) (int, int) {
	iov := 0
	for iov < len(iovs)-1 && off >= uint64(len(iovs[iov])) {
		off -= uint64(len(iovs[iov]))
		iov++
	}
	return iov, int(off)
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

// Complete sends a write's next piece, or frees its buffer; decrypts a read
// in place (C2); and ends the upper IO.
func (c *channel) Complete(child *bdev.IO) {
	io := child.Parent
	switch {
	case child.Type == bdev.IOWrite: // write made it (Submit sends no other write here): our buffer
		if done := child.Ctx[ctxWritten]; child.Status == bdev.StatusSuccess && done < io.Blocks {
			c.fill(child, child.Iovecs[0], done) // the buffer holds the first, largest piece
			c.base.Submit(child)
			return
		}
		c.l.FreeBuf(child.Iovecs[0])
	case io.Type == bdev.IORead && child.Status == bdev.StatusSuccess:
		c.decrypt(io, child.Ctx[ctxBoundary])
	}
	stage.Finish(child)
}

// decrypt turns io's data, read from the base, into plaintext in place,
// up to boundary (C5). On a shaped stage a block of zeros stays zeros (C8).
func (c *channel) decrypt(io *bdev.IO, boundary uint64) {
	k := c.s.cfg.Key.cipher
	bs := int(c.s.blockSize)
	holes := c.s.shaped
	scratch := c.scratch.Bytes()
	iov, at := 0, 0
	for b := uint64(0); b < io.Blocks && io.OffsetBlocks+b < boundary; b++ {
		if v := io.Iovecs[iov]; len(v)-at >= bs {
			blk := v[at : at+bs]
			if !holes || !allZero(blk) {
				k.Decrypt(blk, blk, io.OffsetBlocks+b)
			}
			at += bs
		} else {
			ni, na := gather(scratch, io.Iovecs, iov, at)
			if !holes || !allZero(scratch) {
				k.Decrypt(scratch, scratch, io.OffsetBlocks+b)
				scatter(io.Iovecs, iov, at, scratch)
			}
			iov, at = ni, na
		}
		if iov < len(io.Iovecs) && at == len(io.Iovecs[iov]) {
			iov, at = iov+1, 0
		}
	}
}

// allZero reports whether b holds only zeros. A ciphertext block fails on
// its first word but once in 2^64, so reads pay next to nothing for it.
func allZero(b []byte) bool {
	for ; len(b) >= 8; b = b[8:] {
		if le.Uint64(b) != 0 {
			return false
		}
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// Close releases the scratch block; nothing is in flight.
func (c *channel) Close() error {
	c.s.encrypted.Add(c.encrypted)
	c.encrypted = 0
	return c.scratch.Unmap()
}
