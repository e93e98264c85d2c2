package perf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/services/bdev"
)

// mismatchesKept per job are kept for the report; the rest are counted.
// Ten lines say where the damage is; a thousand bury it.
const mismatchesKept = 10

// StateReport is --verify-state's part of the report.
type StateReport struct {
	Path string `json:"path"`
	// Loaded: the file existed and its blocks were read back; LoadedClean:
	// its save was clean (exact rules), not dirty (lower bounds): P6.
	Loaded      bool `json:"loaded"`
	LoadedClean bool `json:"loaded_clean"`
	// RecordedBlocks the file listed; CheckedBlocks were read back (fewer
	// only when a signal interrupted the read-back).
	RecordedBlocks uint64 `json:"recorded_blocks"`
	CheckedBlocks  uint64 `json:"checked_blocks"`
	// NewerBlocks held a generation newer than recorded (a dirty save's
	// lost run wrote them); PendingBlocks held the generation of a write
	// that failed or was in flight at the save.
	NewerBlocks     uint64          `json:"newer_blocks"`
	PendingBlocks   uint64          `json:"pending_blocks"`
	Mismatches      uint64          `json:"mismatches"`
	FirstMismatches []StateMismatch `json:"first_mismatches,omitempty"`
	ReadBackSeconds float64         `json:"read_back_seconds"`
	// Saved: the file was rewritten clean at the end; SavedBlocks and
	// SavedExtents are what it records, SavedPendingBlocks of them with a
	// pending generation.
	Saved              bool   `json:"saved"`
	SavedBlocks        uint64 `json:"saved_blocks"`
	SavedExtents       uint64 `json:"saved_extents"`
	SavedPendingBlocks uint64 `json:"saved_pending_blocks"`
}

// summary is the report's text line.
func (s *StateReport) summary() string {
	text := fmt.Sprintf("verify-state %s: ", s.Path)
	if s.Loaded {
		rule := "dirty save: lower bounds"
		if s.LoadedClean {
			rule = "clean save: exact"
		}
		text += fmt.Sprintf("read back %d of %d recorded blocks (%s) in %.3f s: %d mismatches, %d newer, %d at a pending generation",
			s.CheckedBlocks, s.RecordedBlocks, rule, s.ReadBackSeconds, s.Mismatches, s.NewerBlocks, s.PendingBlocks)
	} else {
		text += "no file: nothing to read back"
	}
	if s.Saved {
		text += fmt.Sprintf("; saved %d blocks in %d extents (%d pending)", s.SavedBlocks, s.SavedExtents, s.SavedPendingBlocks)
	} else {
		text += "; not saved at the end"
	}
	return text
}

// readBack is one job's share of the read-back. Owner: the job's reactor
// during phaseReadBack; RunBdev's goroutine before and after.
type readBack struct {
	extents []VerifyExtent // this job's share, ascending
	found   []uint32       // per block of extents, in order: the generation read (0: mismatched)
	clean   bool

	next      int    // extent of the next read
	nextOff   uint64 // its first block not read yet
	nextFound int    // index in found of that block

	checked, newer, pending, mismatches uint64
	first                               []StateMismatch // cap mismatchesKept, made before the phase
}

// readBackNext submits the task's next read of recorded blocks: at most an
// IO's worth, inside one extent. It reports false when nothing is left or
// the run was stopped. On the job's reactor.
func (t *task) readBackNext() bool {
	j := t.j
	rb := j.readBack
	if rb.next == len(rb.extents) || j.stop.Load() {
		return false
	}
	e := &rb.extents[rb.next]
	n := min(j.ioBlocks, uint64(e.Blocks)-rb.nextOff)
	io := t.io
	io.Type = bdev.IORead
	io.OffsetBlocks = e.LBA + rb.nextOff
	io.Blocks = n
	io.SetBuf(t.buf[:n*j.blockSize])
	t.readExtent = rb.next
	t.readFound = rb.nextFound
	rb.nextFound += int(n)
	if rb.nextOff += n; rb.nextOff == uint64(e.Blocks) {
		rb.next++
		rb.nextOff = 0
	}
	j.outstanding++
	j.ch.Submit(io)
	return true
}

// readBackDone checks each block of a completed read-back (P6) and reads
// more; the last completion ends the phase. No allocation: mismatches past
// the kept few are only counted.
func (t *task) readBackDone(io *bdev.IO) {
	j := t.j
	rb := j.readBack
	e := &rb.extents[t.readExtent]
	for k := range io.Blocks {
		lba := io.OffsetBlocks + k
		rb.checked++
		if io.Status != bdev.StatusSuccess {
			rb.mismatch(StateMismatch{LBA: lba, Field: "read", Status: io.Status.String()})
			continue
		}
		block := t.buf[k*j.blockSize : (k+1)*j.blockSize]
		found, field, want, got := checkRecorded(block, lba, e.Generation, e.Pending, rb.clean)
		rb.found[t.readFound+int(k)] = found
		switch {
		case field == "generation":
			rb.mismatch(StateMismatch{LBA: lba, Field: field, Want: want, Got: got, Pending: e.Pending, AtLeast: !rb.clean})
		case field != "":
			rb.mismatch(StateMismatch{LBA: lba, Field: field, Want: want, Got: got})
		case found == e.Pending: // found >= 1, so a pending of 0 never matches
			rb.pending++
		case found != e.Generation:
			rb.newer++
		}
	}
	j.outstanding--
	if !t.readBackNext() && j.outstanding == 0 {
		close(j.done)
	}
}

// mismatch counts m and keeps it while there is room (no allocation).
func (rb *readBack) mismatch(m StateMismatch) {
	rb.mismatches++
	if len(rb.first) < cap(rb.first) {
		rb.first = append(rb.first, m)
	}
}

// startReadBack begins phaseReadBack on the job's reactor.
func (j *job) startReadBack() {
	j.phase = phaseReadBack
	for i := range j.tasks {
		if !j.tasks[i].readBackNext() {
			break
		}
	}
	if j.outstanding == 0 {
		close(j.done)
	}
}

// startFlush sends one flush of the whole bdev down the job's channel; its
// completion ends phaseFlush. On the job's reactor, with nothing in flight.
func (j *job) startFlush() {
	j.phase = phaseFlush
	io := j.tasks[0].io
	io.Type = bdev.IOFlush
	io.OffsetBlocks = 0
	io.Blocks = 0 // the whole bdev
	io.ResetIovecs()
	j.ch.Submit(io)
}

// stateRun is a run's --verify-state work. Owner: RunBdev's goroutine.
type stateRun struct {
	path   string
	bdev   *bdev.Bdev
	loaded *VerifyState   // nil: no file at the start
	base   []VerifyExtent // the blocks' generations as the read-back found them (no pending)
	report StateReport
}

// openStateRun loads path if it exists and checks it is for b.
func openStateRun(path string, b *bdev.Bdev) (*stateRun, error) {
	if len(b.Name()) > stateNameMax {
		return nil, fmt.Errorf("perf: verify-state: bdev name %q is %d bytes, a state file holds up to %d: %w",
			b.Name(), len(b.Name()), stateNameMax, ErrOptions)
	}
	s := &stateRun{path: path, bdev: b, report: StateReport{Path: path}}
	st, err := LoadVerifyState(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("perf: %w", err)
	}
	if err := st.CheckBdev(b); err != nil {
		return nil, fmt.Errorf("perf: verify state %s: %w", path, err)
	}
	s.loaded = st
	s.report.Loaded, s.report.LoadedClean = true, st.Clean
	s.report.RecordedBlocks = st.RecordedBlocks()
	return s, nil
}

// readBack reads every recorded block back on the jobs' reactors (each a
// share of about equal blocks) and checks it (P6); then s.base holds what
// was found. A signal stops it; the run then ends without writing. Returns
// a *ReadBackError when blocks broke the rules.
func (s *stateRun) readBack(ctx context.Context, jobs []*job, stop *atomic.Bool) error {
	if s.loaded == nil {
		return nil
	}
	started := time.Now()
	shares := shareExtents(s.loaded.Extents, len(jobs))
	for i, j := range jobs {
		var blocks uint64
		for _, e := range shares[i] {
			blocks += uint64(e.Blocks)
		}
		j.readBack = &readBack{extents: shares[i], found: make([]uint32, blocks), clean: s.loaded.Clean,
			first: make([]StateMismatch, 0, mismatchesKept)}
	}
	if !runPhase(ctx, jobs, stop, 0, (*job).startReadBack) {
		return fmt.Errorf("perf: verify-state %s: the read-back did not finish within %v of the stop", s.path, stopTimeout)
	}
	r := &s.report
	r.ReadBackSeconds = time.Since(started).Seconds()
	var first []StateMismatch
	var base extentBuilder
	for _, j := range jobs {
		rb := j.readBack
		r.CheckedBlocks += rb.checked
		r.NewerBlocks += rb.newer
		r.PendingBlocks += rb.pending
		r.Mismatches += rb.mismatches
		first = append(first, rb.first...)
		k := 0
		for _, e := range rb.extents {
			for b := range uint64(e.Blocks) {
				base.add(e.LBA+b, 1, rb.found[k], 0)
				k++
			}
		}
		j.readBack = nil
	}
	slices.SortFunc(first, func(a, b StateMismatch) int { return cmpUint64(a.LBA, b.LBA) })
	r.FirstMismatches = first[:min(len(first), mismatchesKept)]
	if r.Mismatches > 0 {
		return &ReadBackError{Path: s.path, Checked: r.CheckedBlocks, Mismatches: r.Mismatches, First: r.FirstMismatches}
	}
	if r.CheckedBlocks < r.RecordedBlocks {
		return fmt.Errorf("perf: verify-state %s: read-back stopped after %d of %d recorded blocks: %w", s.path,
			r.CheckedBlocks, r.RecordedBlocks, context.Canceled)
	}
	s.base = base.extents
	return nil
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// shareExtents splits extents into n shares of about equal blocks, cutting
// an extent where a share ends; each share ascends, and share i's blocks
// precede share i+1's.
func shareExtents(extents []VerifyExtent, n int) [][]VerifyExtent {
	var total uint64
	for _, e := range extents {
		total += uint64(e.Blocks)
	}
	shares := make([][]VerifyExtent, n)
	per := (total + uint64(n) - 1) / uint64(n)
	k, have := 0, uint64(0)
	for _, e := range extents {
		for e.Blocks > 0 {
			if k < n-1 && have == per {
				k, have = k+1, 0
			}
			take := uint64(e.Blocks)
			if k < n-1 {
				take = min(take, per-have)
			}
			piece := e
			piece.Blocks = uint32(take)
			shares[k] = append(shares[k], piece)
			e.LBA += take
			e.Blocks -= uint32(take)
			have += take
		}
	}
	return shares
}

// seedSlots sets each verify slot of j from what the read-back found on its
// blocks: the highest generation (P7), and slotUnsure when they differ or
// only some were ever written. Before the workload is posted.
func seedSlots(j *job, base []VerifyExtent) {
	i, _ := slices.BinarySearchFunc(base, j.firstBlock, func(e VerifyExtent, lba uint64) int {
		return cmpUint64(e.end(), lba+1)
	})
	for slot := range j.slots {
		lo := j.firstBlock + slot*j.ioBlocks
		hi := lo + j.ioBlocks
		for i < len(base) && base[i].end() <= lo {
			i++
		}
		var g uint32
		var covered uint64
		mixed := false
		for k := i; k < len(base) && base[k].LBA < hi; k++ {
			e := &base[k]
			if covered > 0 && e.Generation != g {
				mixed = true
			}
			g = max(g, e.Generation)
			covered += min(e.end(), hi) - max(e.LBA, lo)
		}
		if covered == 0 {
			continue
		}
		word := g
		if mixed || covered < j.ioBlocks {
			word |= slotUnsure
		}
		j.gens[slot] = word
	}
}

// runPhase posts start to every job with a fresh done channel and waits for
// them. ctx's end sets stop; then, or from the start when limit is set, the
// jobs have stopTimeout (or limit) to finish, else it reports false (a hung
// back end: those jobs' IOs stay pending and are not freed).
func runPhase(ctx context.Context, jobs []*job, stop *atomic.Bool, limit time.Duration, start func(*job)) bool {
	for _, j := range jobs {
		j.done = make(chan struct{})
		j.outstanding = 0
		if err := j.r.PostFunc(func() { start(j) }); err != nil {
			close(j.done) // nothing was posted: nothing is outstanding
			continue
		}
		j.running = true
	}
	var timeout <-chan time.Time
	if limit > 0 {
		timeout = time.After(limit)
	}
	cancelled := ctx.Done()
	for _, j := range jobs {
		for done := false; !done; {
			select {
			case <-j.done:
				done = true
			case <-cancelled:
				stop.Store(true)
				cancelled = nil
				if timeout == nil {
					timeout = time.After(stopTimeout)
				}
			case <-timeout:
				return false
			}
		}
	}
	return true
}

// save flushes the bdev from every job (P5: acknowledged data is durable
// before the file says so) and writes the state atomically: dirty from the
// read-back's base, or clean at the end with what the run acknowledged. It
// writes nothing when a job has not finished or a flush failed: the file
// then keeps the dirty save, whose lower bounds still hold (P6).
func (s *stateRun) save(jobs []*job, clean bool) error {
	for _, j := range jobs {
		if j.running && !isDone(j) {
			return fmt.Errorf("perf: verify-state %s: not saved: core %d has IOs outstanding; the file keeps its dirty save",
				s.path, j.core)
		}
	}
	if s.bdev.IOTypes().Has(bdev.IOFlush) {
		var never atomic.Bool
		if !runPhase(context.Background(), jobs, &never, stopTimeout, (*job).startFlush) {
			return fmt.Errorf("perf: verify-state %s: not saved: the flush did not complete within %v", s.path, stopTimeout)
		}
		for _, j := range jobs {
			if j.flushStatus != bdev.StatusSuccess {
				return fmt.Errorf("perf: verify-state %s: not saved: flush on core %d: %v: %w", s.path, j.core,
					j.flushStatus, ErrIOFailed)
			}
		}
	}
	st := &VerifyState{Bdev: s.bdev.Name(), BlockSize: s.bdev.BlockSize(), Blocks: s.bdev.Blocks(), Clean: clean,
		Extents: s.base}
	if clean {
		st.Extents = acknowledged(jobs, s.base)
	}
	if err := st.Save(s.path); err != nil {
		return fmt.Errorf("perf: %w", err)
	}
	if clean {
		r := &s.report
		r.Saved, r.SavedExtents, r.SavedBlocks = true, uint64(len(st.Extents)), st.RecordedBlocks()
		for _, e := range st.Extents {
			if e.Pending != 0 {
				r.SavedPendingBlocks += uint64(e.Blocks)
			}
		}
	}
	return nil
}

// acknowledged is the clean state at a run's end (P5): per block, the
// generation of its last acknowledged write and that of a later write that
// failed, from the jobs' slots where this run wrote, from base elsewhere.
// The jobs have finished; their ranges ascend.
func acknowledged(jobs []*job, base []VerifyExtent) []VerifyExtent {
	var out extentBuilder
	cur := baseCursor{extents: base}
	copyBase := func(lo, hi uint64) {
		cur.each(lo, hi, func(lba, n uint64, gen uint32) { out.add(lba, n, gen, 0) })
	}
	at := uint64(0)
	for _, j := range jobs {
		copyBase(at, j.firstBlock)
		for slot := range j.slots {
			lo := j.firstBlock + slot*j.ioBlocks
			word := j.gens[slot]
			g := word & slotGenMask
			w := writeGen(g) // what a failed write stamped
			switch {
			case word&(slotAcked|slotFailed) == 0: // not written: as loaded
				copyBase(lo, lo+j.ioBlocks)
			case word&slotFailed == 0:
				out.add(lo, j.ioBlocks, g, 0)
			case word&slotAcked != 0: // acknowledged g, then a write of w failed
				out.add(lo, j.ioBlocks, g, pendingOver(g, w))
			default: // the first write of this run failed: as loaded, or w
				cur.each(lo, lo+j.ioBlocks, func(lba, n uint64, gen uint32) { out.add(lba, n, gen, pendingOver(gen, w)) })
			}
		}
		at = j.firstBlock + j.slots*j.ioBlocks
	}
	copyBase(at, math.MaxUint64)
	return out.extents
}

// pendingOver is the pending generation recorded when a write of w may have
// replaced generation g: none when it is g itself (writeGen at the top).
func pendingOver(g, w uint32) uint32 {
	if w == g {
		return 0
	}
	return w
}

// extentBuilder appends blocks in ascending order and merges neighbours of
// equal generations. Blocks at generation 0 (never acknowledged) are left
// out.
type extentBuilder struct {
	extents []VerifyExtent
}

func (b *extentBuilder) add(lba, n uint64, gen, pending uint32) {
	if gen == 0 {
		return
	}
	for n > 0 {
		if k := len(b.extents); k > 0 {
			last := &b.extents[k-1]
			if last.end() == lba && last.Generation == gen && last.Pending == pending && last.Blocks < math.MaxUint32 {
				take := min(n, uint64(math.MaxUint32-last.Blocks))
				last.Blocks += uint32(take)
				lba, n = lba+take, n-take
				continue
			}
		}
		take := min(n, math.MaxUint32)
		b.extents = append(b.extents, VerifyExtent{LBA: lba, Blocks: uint32(take), Generation: gen, Pending: pending})
		lba, n = lba+take, n-take
	}
}

// baseCursor walks ascending, disjoint extents for ascending ranges.
type baseCursor struct {
	extents []VerifyExtent
	i       int // no extent before it reaches the ranges still to come
}

// each calls fn for every piece of an extent inside [lo, hi).
func (c *baseCursor) each(lo, hi uint64, fn func(lba, n uint64, gen uint32)) {
	for c.i < len(c.extents) && c.extents[c.i].end() <= lo {
		c.i++
	}
	for k := c.i; k < len(c.extents) && c.extents[k].LBA < hi; k++ {
		e := &c.extents[k]
		from := max(e.LBA, lo)
		fn(from, min(e.end(), hi)-from, e.Generation)
	}
}
