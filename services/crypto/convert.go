package crypto

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage"
)

const (
	// ConvertRegionSize is what one step of a conversion encrypts, under
	// one lock: 1 MiB holds a foreground IO back at most the time of four
	// 1 MiB IOs (read, journal, record, write) and keeps the journal small.
	ConvertRegionSize = 1 << 20
	// convertTimerPeriod is how often a throttled conversion looks at the
	// clock.
	convertTimerPeriod = 100 * time.Microsecond
)

// Conversion steps, for the state machine and the debug endpoint.
const (
	cstepIdle uint32 = iota
	cstepLocking
	cstepReading
	cstepJournal
	cstepRecordJournaled
	cstepWriting
	cstepRecordDone
	cstepWiping
	cstepUnlocking
	cstepWaiting
	cstepDone
)

var cstepNames = [...]string{"idle", "locking", "reading", "journaling", "recording", "encrypting",
	"recording", "wiping journal", "unlocking", "throttled", "done"}

// converter encrypts a base that holds plaintext, in place, region by region
// (the package doc's C5-C7, C9). Owner: the control plane for setup, recovery
// and the end; the base's owner reactor (home) for the steps in between.
type converter struct {
	s            *Stage
	home         *reactors.Reactor
	clock        reactors.Clock
	regionBlocks uint64
	dataBlocks   uint64 // the stage's capacity
	regions      uint64
	meta         *bdev.Desc // where the journal and record are: the base, or Config.Metadata's bdev
	journalAt    uint64     // first block of the journal, on meta
	recordAt     uint64     // first of the two record blocks, on meta
	bs           uint64
	keyCheck     [16]byte
	per          time.Duration // one region at the rate; 0: unthrottled
	flushBase    bool          // the base takes flushes: each write step is made durable (C6)
	flushMeta    bool          // the metadata bdev does

	// Set before the steps start and when they end (before ended is
	// closed); read by the debug endpoint from any thread.
	from      uint64    // the watermark this run started at (after any replay)
	replayed  bool      // the run began by replaying a journaled region
	startedAt time.Time // wall clock, for the rate
	endedAt   time.Time

	// watermark: regions [0, w) are encrypted. Written by the home reactor
	// under the region's lock, read by every reactor per IO (C5).
	watermark atomic.Uint64

	// Home reactor while running; the control plane before start and
	// after done.
	rec     record
	self    *bdev.Desc // read descriptor on the stage, for its range locks
	lockCh  *bdev.Channel
	lock    *bdev.RangeLock
	baseCh  *bdev.Channel
	metaCh  *bdev.Channel // baseCh when the record is in the base's tail
	cur     *bdev.Channel // where the step's IO went: a flush follows it there
	io      *bdev.IO
	buf     *bdev.Region // one region
	recBuf  *bdev.Region // one block
	regionN uint64
	nextAt  time.Duration
	timer   *reactors.PollerHandle
	abort   error

	step    atomic.Uint32
	stop    atomic.Bool
	done    chan error    // home to the control plane, buffered
	ended   chan struct{} // closed once settled
	endOnce sync.Once
	err     error // set before ended is closed
}

func newConverter(s *Stage) (*converter, error) {
	bs := uint64(s.blockSize)
	v := &converter{s: s, home: s.base.Owner(), clock: s.base.Owner().Clock(), bs: bs,
		regionBlocks: ConvertRegionSize / bs, done: make(chan error, 1), ended: make(chan struct{})}
	if ConvertRegionSize%bs != 0 {
		v.regionBlocks = 1
	}
	if err := v.layout(); err != nil {
		return nil, err
	}
	v.regions = (v.dataBlocks + v.regionBlocks - 1) / v.regionBlocks
	v.flushBase = s.base.IOTypes().Has(bdev.IOFlush)
	v.flushMeta = v.meta.Bdev().IOTypes().Has(bdev.IOFlush)
	var zero [16]byte
	s.cfg.Key.cipher.Encrypt(v.keyCheck[:], zero[:], keyCheckTweak)
	if rate := s.cfg.ConvertRate; rate > 0 {
		v.per = time.Duration(float64(v.regionBlocks*bs) / float64(rate) * float64(time.Second))
	}
	var err error
	if v.buf, err = bdev.MapRegion(int(v.regionBlocks * bs)); err != nil {
		return nil, err
	}
	if v.recBuf, err = bdev.MapRegion(int(bs)); err != nil {
		v.buf.Unmap()
		return nil, err
	}
	if err := v.recover(); err != nil {
		v.close()
		return nil, err
	}
	v.from, v.startedAt = v.rec.watermark, time.Now()
	return v, nil
}

// layout places the journal and record (the package doc): in the base's
// tail, or at the start of the metadata bdev, the base then whole.
func (v *converter) layout() error {
	s := v.s
	reserve := v.regionBlocks + 2
	if s.meta != nil {
		v.meta = s.meta
		if n := s.meta.Bdev().Blocks(); n < reserve {
			return fmt.Errorf("crypto %q: metadata bdev %q of %d blocks, want at least %d (two record blocks and a %d-byte journal): %w",
				s.cfg.Name, s.meta.Bdev().Name(), n, reserve, v.regionBlocks*v.bs, stage.ErrConfig)
		}
		v.dataBlocks = s.base.Blocks()
		v.recordAt, v.journalAt = 0, 2
		return nil
	}
	v.meta = s.bases.Descs[0]
	if s.base.Blocks() <= reserve {
		return fmt.Errorf("crypto %q: base %q of %d blocks leaves nothing after the %d-block journal and record: %w",
			s.cfg.Name, s.base.Name(), s.base.Blocks(), reserve, stage.ErrConfig)
	}
	v.dataBlocks = s.base.Blocks() - reserve
	v.journalAt = v.dataBlocks
	v.recordAt = s.base.Blocks() - 2
	return nil
}

func (v *converter) close() {
	v.buf.Unmap()
	v.recBuf.Unmap()
}

// boundary is the first block not encrypted yet (C5). Any reactor.
func (v *converter) boundary() uint64 {
	w := v.watermark.Load()
	if w >= v.regions {
		return ^uint64(0)
	}
	return w * v.regionBlocks
}

// syncIO is a control-plane IO on the base or the metadata bdev (recovery
// only); a write is flushed before it counts as done (C6).
func (v *converter) syncIO(d *bdev.Desc, typ bdev.IOType, off, blocks uint64, buf []byte) error {
	if err := stage.SyncIO(v.home, d, typ, off, blocks, buf); err != nil || typ != bdev.IOWrite {
		return err
	}
	if !d.Bdev().IOTypes().Has(bdev.IOFlush) {
		return nil
	}
	return stage.SyncIO(v.home, d, bdev.IOFlush, 0, 0, nil)
}

// recover reads the record and finishes a region left journaled (C6), so
// the conversion resumes at a region boundary with the base consistent.
// Control plane, before the stage is registered.
func (v *converter) recover() error {
	s := v.s
	rb := v.recBuf.Bytes()
	a := make([]byte, len(rb))
	if err := v.syncIO(v.meta, bdev.IORead, v.recordAt, 1, rb); err != nil {
		return err
	}
	copy(a, rb)
	if err := v.syncIO(v.meta, bdev.IORead, v.recordAt+1, 1, rb); err != nil {
		return err
	}
	r, fresh, err := newestRecord(a, rb)
	switch {
	case r == nil && fresh:
		v.rec = record{state: convConverting, regionBlocks: v.regionBlocks, dataBlocks: v.dataBlocks, keyCheck: v.keyCheck}
		s.cfgLog("conversion starts", "regions", v.regions, "record_on", v.meta.Bdev().Name())
		return v.writeRecordSync()
	case r == nil:
		return fmt.Errorf("crypto %q: conversion record on %q damaged (%v); restore it, the data is partly encrypted",
			s.cfg.Name, v.meta.Bdev().Name(), err)
	case s.cfg.ConvertFresh:
		return fmt.Errorf("crypto %q: %q already holds a conversion record (%d of %d regions, state %d), and %q is plaintext to convert: "+
			"give a metadata bdev no conversion used, or zero its first two blocks: %w",
			s.cfg.Name, v.meta.Bdev().Name(), r.watermark, (r.dataBlocks+r.regionBlocks-1)/max(r.regionBlocks, 1), r.state,
			s.base.Name(), ErrRecord)
	case r.keyCheck != v.keyCheck:
		return fmt.Errorf("crypto %q: base %q was converted with another key than %q: %w", s.cfg.Name, s.base.Name(), s.cfg.Key.Name(), ErrKey)
	case r.regionBlocks != v.regionBlocks || r.dataBlocks != v.dataBlocks:
		return fmt.Errorf("crypto %q: record of %d-block regions over %d blocks, want %d over %d: %w",
			s.cfg.Name, r.regionBlocks, r.dataBlocks, v.regionBlocks, v.dataBlocks, ErrRecord)
	case r.watermark > v.regions:
		return fmt.Errorf("crypto %q: record watermark %d past %d regions: %w", s.cfg.Name, r.watermark, v.regions, ErrRecord)
	}
	v.rec = *r
	switch r.state {
	case convJournaled:
		if err := v.replayJournal(); err != nil {
			return err
		}
	case convDone:
		if err := v.wipeJournalSync(); err != nil { // a crash between the last record and the wipe
			return err
		}
	}
	v.watermark.Store(v.rec.watermark)
	if v.rec.state == convDone {
		s.cfgLog("conversion was done", "regions", v.regions, "record_on", v.meta.Bdev().Name())
	} else {
		s.cfgLog("conversion resumes", "watermark", v.rec.watermark, "regions", v.regions, "record_on", v.meta.Bdev().Name())
	}
	return nil
}

// replayJournal finishes the region the record says was being encrypted:
// from its journaled plaintext, so it is encrypted exactly once whatever
// the crash left in place (C6).
func (v *converter) replayJournal() error {
	s := v.s
	k := v.rec.watermark
	off := k * v.regionBlocks
	n := min(v.regionBlocks, v.dataBlocks-off)
	buf := v.buf.Bytes()[:n*v.bs]
	if err := v.syncIO(v.meta, bdev.IORead, v.journalAt, n, buf); err != nil {
		return err
	}
	if h := xxhash.Sum64(buf); h != v.rec.journalHash {
		return fmt.Errorf("crypto %q: journal of region %d hashes to %#x, the record says %#x: %w",
			s.cfg.Name, k, h, v.rec.journalHash, ErrRecord)
	}
	v.encryptRegion(buf, off)
	if err := v.syncIO(v.s.bases.Descs[0], bdev.IOWrite, off, n, buf); err != nil {
		return err
	}
	v.replayed = true
	v.advanceRecord()
	s.cfgLog("conversion journal replayed", "region", k)
	return v.writeRecordSync()
}

// wipeJournalSync zeroes the journal unless it is zeros already: once the
// conversion is done no plaintext may stay behind (C9).
func (v *converter) wipeJournalSync() error {
	buf := v.buf.Bytes()
	if err := v.syncIO(v.meta, bdev.IORead, v.journalAt, v.regionBlocks, buf); err != nil {
		return err
	}
	if allZero(buf) {
		return nil
	}
	clear(buf)
	v.s.cfgLog("conversion journal wiped", "on", v.meta.Bdev().Name())
	return v.syncIO(v.meta, bdev.IOWrite, v.journalAt, v.regionBlocks, buf)
}

func (v *converter) encryptRegion(buf []byte, off uint64) {
	k := v.s.cfg.Key.cipher
	for b := uint64(0); b*v.bs < uint64(len(buf)); b++ {
		blk := buf[b*v.bs : (b+1)*v.bs]
		k.Encrypt(blk, blk, off+b)
	}
}

// advanceRecord moves the record past the region just encrypted.
func (v *converter) advanceRecord() {
	v.rec.watermark++
	v.rec.state = convConverting
	v.rec.journalHash = 0
	if v.rec.watermark == v.regions {
		v.rec.state = convDone
	}
}

// encodeRecord writes the next record into recBuf and returns its block.
func (v *converter) encodeRecord() uint64 {
	v.rec.seq++
	v.rec.encode(v.recBuf.Bytes())
	return v.recordAt + v.rec.seq%2
}

func (v *converter) writeRecordSync() error {
	at := v.encodeRecord()
	return v.syncIO(v.meta, bdev.IOWrite, at, 1, v.recBuf.Bytes())
}

// start begins the steps on the home reactor unless the base is done.
// Control plane (Stage.Start, after registration).
func (v *converter) start() error {
	if v.rec.state == convDone {
		v.endedAt = v.startedAt
		v.step.Store(cstepDone)
		v.endOnce.Do(func() { close(v.ended) })
		return nil
	}
	self, err := v.s.reg.Open(v.s.cfg.Name, false)
	if err != nil {
		return err
	}
	v.self = self
	if err := v.home.PostFunc(v.begin); err != nil {
		self.Close()
		return err
	}
	go v.wait()
	return nil
}

func (v *converter) begin() {
	var err error
	if v.lockCh, err = v.self.Channel(v.home); err == nil {
		v.baseCh, err = v.s.bases.Descs[0].Channel(v.home)
	}
	if err == nil {
		v.metaCh, err = v.meta.Channel(v.home)
	}
	if err != nil {
		v.finish(err)
		return
	}
	if v.io = v.baseCh.AllocIO(); v.io == nil {
		v.finish(fmt.Errorf("crypto %q: conversion: IO pool empty", v.s.cfg.Name))
		return
	}
	v.nextAt = v.clock.Now()
	v.next()
}

// next locks the region at the watermark, or finishes.
func (v *converter) next() {
	if v.stop.Load() {
		v.finish(errStopped)
		return
	}
	w := v.rec.watermark
	if w >= v.regions {
		v.finish(nil)
		return
	}
	if now := v.clock.Now(); now < v.nextAt {
		v.step.Store(cstepWaiting)
		if v.timer == nil {
			v.timer = v.home.AddTimer("crypto-convert-"+v.s.cfg.Name, convertTimerPeriod, v, nil)
		}
		return
	}
	off := w * v.regionBlocks
	v.regionN = min(v.regionBlocks, v.dataBlocks-off)
	v.step.Store(cstepLocking)
	// LockAll: reads too wait, since the region is rewritten in place (C7).
	if _, err := v.lockCh.LockRange(bdev.LockRequest{OffsetBlocks: off, Blocks: v.regionN, Mode: bdev.LockAll}, v); err != nil {
		v.finish(err)
	}
}

// Poll is the throttle's timer.
func (v *converter) Poll() int {
	if v.clock.Now() < v.nextAt && !v.stop.Load() {
		return 0
	}
	v.home.RemovePoller(v.timer)
	v.timer = nil
	v.next()
	return 1
}

// poke wakes a throttled conversion to see its stop flag. Home reactor.
func (v *converter) poke() {
	if v.step.Load() == cstepWaiting {
		v.home.RemovePoller(v.timer)
		v.timer = nil
		v.next()
	}
}

func (v *converter) RangeLocked(l *bdev.RangeLock, err error) {
	if err != nil {
		v.finish(err)
		return
	}
	v.lock = l
	v.submit(v.baseCh, bdev.IORead, v.rec.watermark*v.regionBlocks, v.regionN, v.buf.Bytes(), cstepReading)
}

func (v *converter) submit(ch *bdev.Channel, typ bdev.IOType, off, blocks uint64, buf []byte, step uint32) {
	io := v.io
	io.Type, io.OffsetBlocks, io.Blocks, io.Completer = typ, off, blocks, v
	io.SetBuf(buf[:blocks*v.bs])
	v.step.Store(step)
	v.cur = ch
	ch.Submit(io)
}

// flushAfter reports whether a write that completed on ch is flushed
// before the next step: each step must be durable before the next one
// counts on it (C6), across a power loss too, not only a crash.
func (v *converter) flushAfter(io *bdev.IO) bool {
	if io.Type != bdev.IOWrite {
		return false
	}
	if v.cur == v.baseCh {
		return v.flushBase
	}
	return v.flushMeta
}

// Complete moves the region through its steps: read, journal, record
// (journaled), encrypt and write, record (next region), unlock (C6); each
// write is followed by a flush of its bdev when the bdev takes flushes.
func (v *converter) Complete(io *bdev.IO) {
	if io.Status != bdev.StatusSuccess {
		v.unlock(fmt.Errorf("crypto %q: conversion of region %d: %s (%v) failed: %s",
			v.s.cfg.Name, v.rec.watermark, cstepNames[v.step.Load()], io.Type, io.StatusString()))
		return
	}
	if v.flushAfter(io) {
		io.Type, io.OffsetBlocks, io.Blocks = bdev.IOFlush, 0, 0 // the whole bdev
		io.ResetIovecs()
		v.cur.Submit(io)
		return
	}
	region := v.buf.Bytes()[:v.regionN*v.bs]
	off := v.rec.watermark * v.regionBlocks
	switch v.step.Load() {
	case cstepReading:
		v.submit(v.metaCh, bdev.IOWrite, v.journalAt, v.regionN, region, cstepJournal)
	case cstepJournal:
		v.rec.state = convJournaled
		v.rec.journalHash = xxhash.Sum64(region)
		at := v.encodeRecord()
		v.submit(v.metaCh, bdev.IOWrite, at, 1, v.recBuf.Bytes(), cstepRecordJournaled)
	case cstepRecordJournaled:
		v.encryptRegion(region, off)
		v.submit(v.baseCh, bdev.IOWrite, off, v.regionN, region, cstepWriting)
	case cstepWriting:
		v.advanceRecord()
		at := v.encodeRecord()
		v.submit(v.metaCh, bdev.IOWrite, at, 1, v.recBuf.Bytes(), cstepRecordDone)
	case cstepRecordDone:
		v.watermark.Store(v.rec.watermark) // C5: under the lock, before any held IO runs
		if v.rec.state != convDone {
			v.unlock(nil)
			return
		}
		buf := v.buf.Bytes()
		clear(buf)
		v.submit(v.metaCh, bdev.IOWrite, v.journalAt, v.regionBlocks, buf, cstepWiping) // C9
	case cstepWiping:
		v.unlock(nil)
	}
}

func (v *converter) unlock(abort error) {
	v.abort = abort
	v.step.Store(cstepUnlocking)
	v.lock.Unlock()
}

func (v *converter) RangeUnlocked(*bdev.RangeLock) {
	if v.abort != nil {
		v.finish(v.abort)
		return
	}
	if v.per > 0 {
		v.nextAt = max(v.nextAt, v.clock.Now()) + v.per
	}
	v.next()
}

// finish hands the end to the control plane. Home reactor.
func (v *converter) finish(err error) {
	if v.timer != nil {
		v.home.RemovePoller(v.timer)
		v.timer = nil
	}
	if v.io != nil {
		v.io.Free()
		v.io = nil
	}
	v.step.Store(cstepDone)
	v.done <- err
}

// wait settles the end on the control plane.
func (v *converter) wait() {
	err := <-v.done
	v.self.Close()
	if err == nil {
		v.s.cfgLog("conversion done", "regions", v.regions)
	} else {
		v.s.cfgLog("conversion stopped", "watermark", v.watermark.Load(), "regions", v.regions, "err", err.Error())
	}
	v.err = err
	v.endedAt = time.Now()
	v.endOnce.Do(func() { close(v.ended) })
}

var errStopped = fmt.Errorf("conversion stopped")

// stopAndWait stops a running conversion after its region and waits.
func (v *converter) stopAndWait() {
	if v.self == nil {
		return // never started
	}
	v.stop.Store(true)
	v.home.PostFunc(v.poke)
	<-v.ended
}

// Wait waits at most timeout for the conversion to end and returns how.
func (s *Stage) WaitConversion(timeout time.Duration) error {
	if s.conv == nil {
		return nil
	}
	select {
	case <-s.conv.ended:
		return s.conv.err
	case <-time.After(timeout):
		return fmt.Errorf("crypto %q: conversion still running after %v (%d of %d regions)",
			s.cfg.Name, timeout, s.conv.watermark.Load(), s.conv.regions)
	}
}

// StopConversion stops the conversion after the region it is on; Start (a
// new stage on the same base, after a restart) resumes it.
func (s *Stage) StopConversion() {
	if s.conv != nil {
		s.conv.stopAndWait()
	}
}

// ConvertStatus is a conversion's progress on the debug endpoint.
type ConvertStatus struct {
	RegionsDone uint64  `json:"regions_done"`
	Regions     uint64  `json:"regions"`
	RegionSize  uint64  `json:"region_size"`
	Percent     float64 `json:"percent"`
	RateLimit   uint64  `json:"rate_limit_bytes_per_sec"`
	// Rate is what this run converted per second of wall time since the
	// stage was made (until the end, when it ended).
	Rate uint64 `json:"rate_bytes_per_sec"`
	// ResumedFrom is the watermark this run started at: 0 for a fresh
	// conversion, else where a restart found it (after any replay).
	ResumedFrom uint64 `json:"resumed_from_region"`
	// Replayed: the run began by finishing a region from its journal.
	Replayed bool `json:"replayed_journal,omitempty"`
	// RecordOn is the bdev with the journal and record.
	RecordOn string `json:"record_on"`
	State    string `json:"state"`
	Error    string `json:"error,omitempty"`
}

func (v *converter) status() *ConvertStatus {
	st := &ConvertStatus{RegionsDone: v.watermark.Load(), Regions: v.regions, RegionSize: v.regionBlocks * v.bs,
		RateLimit: v.s.cfg.ConvertRate, ResumedFrom: v.from, Replayed: v.replayed, RecordOn: v.meta.Bdev().Name(),
		State: cstepNames[v.step.Load()]}
	st.Percent = 100 * float64(st.RegionsDone) / float64(st.Regions)
	end := time.Now()
	select {
	case <-v.ended:
		end = v.endedAt
		if v.err != nil {
			st.Error = v.err.Error()
		}
	default:
	}
	if secs := end.Sub(v.startedAt).Seconds(); secs > 0 && st.RegionsDone > v.from {
		st.Rate = uint64(float64((st.RegionsDone-v.from)*st.RegionSize) / secs)
	}
	return st
}
