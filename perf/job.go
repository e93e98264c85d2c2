package perf

import (
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// publishEvery completions a job stores its IO count for the progress line:
// an atomic store per IO would cost more than the bdev layer does.
const publishEvery = 64

// A verify slot's word in job.gens: the generation of the slot's last
// acknowledged write (a write that completed with success) in the low bits,
// flags in the high ones.
const (
	// slotBusy: an IO is outstanding on the slot (P3).
	slotBusy = 1 << 31
	// slotUnsure: the slot's blocks may not all hold its generation (they
	// differed when --verify-state loaded them, or its last write failed),
	// so it is written before it is read again.
	slotUnsure = 1 << 30
	// slotAcked: a write to the slot was acknowledged in this run, so its
	// blocks hold its generation, not what the state file loaded (P5).
	slotAcked = 1 << 29
	// slotFailed: the slot's last write failed: its blocks hold the old
	// generation or that write's (writeGen of the slot's), the state file
	// records both (P5).
	slotFailed = 1 << 28
	// slotGenMask selects the generation.
	slotGenMask = slotFailed - 1
	// verifyGenMax is the largest generation a write stamps; a slot that
	// reached it is only read from then on (at 1M writes a second on one
	// slot that is 4.5 minutes: no run gets there but a contrived one).
	verifyGenMax = slotGenMask
)

// writeGen is the generation a write to a slot at generation g stamps: the
// next one, so generations only grow (P7), or g itself at verifyGenMax (only
// an unsure slot writes there: its write makes it sure, at no lower
// generation than any of its blocks holds).
func writeGen(g uint32) uint32 {
	if g < verifyGenMax {
		return g + 1
	}
	return g
}

// jobPhase is what a job's IOs are doing; task.Complete dispatches on it.
type jobPhase uint8

const (
	phaseWorkload jobPhase = iota // the closed loop (P1)
	phaseReadBack                 // --verify-state: reading back the recorded blocks (P6)
	phaseFlush                    // one flush of the whole bdev before the state is saved (P5)
)

// job is one core's load. Owner: its reactor, from start to the close of
// done; RunBdev's goroutine reads it after done is closed.
type job struct {
	core  int
	r     *reactors.Reactor
	ch    *bdev.Channel
	o     *BdevOptions // read-only
	tasks []task

	blockSize   uint64
	ioBlocks    uint64   // blocks per IO
	firstBlock  uint64   // the job's range, in blocks
	slots       uint64   // IO-sized slots in the range
	rng         uint64   // xorshift64* state
	seqNext     uint64   // next slot of a sequential workload
	gens        []uint32 // verify: a word per slot (slotBusy…)
	phase       jobPhase
	readBack    *readBack   // --verify-state's read-back: the job's share
	flushStatus bdev.Status // phaseFlush's result
	deadline    int64       // nanotime
	stop        *atomic.Bool
	stopping    bool
	outstanding int

	sampleLeft int   // IOs until the next timed one
	lastNow    int64 // the latest clock reading: deadline checks between timed IOs

	hist      histogram
	ios       uint64
	reads     uint64
	errors    uint64
	firstErr  string // the first failed IO, formatted off the IO path
	verifyErr *VerifyError
	started   int64
	ended     int64

	region *bdev.Region // buffers, when the reactor's pool could not hold them

	published atomic.Uint64 // ios, every publishEvery
	done      chan struct{} // closed when the phase's last IO completed; made anew per phase
	running   bool          // RunBdev's goroutine only: a phase was posted
}

// task is one outstanding IO slot of a job: its IO, buffer and what it is
// doing. It is the IO's Completer (a method, not a closure: P2). Owner: its
// job's reactor.
type task struct {
	j     *job
	io    *bdev.IO
	buf   []byte
	start int64
	slot  uint64
	timed bool // this IO's latency is recorded
	write bool // verify: this IO is the write half

	readExtent int // phaseReadBack: the extent of j.readBack being read
	readFound  int // phaseReadBack: index in j.readBack.found of the IO's first block
}

// start submits QueueDepth IOs (P1). On the job's reactor.
func (j *job) start() {
	j.phase = phaseWorkload
	for i := range j.tasks { // a read-back or a flush may have changed them
		j.tasks[i].io.SetBuf(j.tasks[i].buf)
	}
	now := nanotime()
	j.started = now
	j.lastNow = now
	j.sampleLeft = 1
	j.deadline = now + int64(j.o.Duration)
	for i := range j.tasks {
		j.outstanding++
		j.tasks[i].next(now)
	}
}

// random returns a uniform value in [0, n).
func (j *job) random(n uint64) uint64 {
	j.rng ^= j.rng >> 12
	j.rng ^= j.rng << 25
	j.rng ^= j.rng >> 27
	hi, _ := bits.Mul64(j.rng*0x2545f4914f6cdd1d, n)
	return hi
}

// Complete implements bdev.Completer: account for the IO, then submit the
// next one or, past the deadline, finish.
func (t *task) Complete(io *bdev.IO) {
	j := t.j
	switch j.phase {
	case phaseReadBack:
		t.readBackDone(io)
		return
	case phaseFlush:
		j.flushStatus = io.Status
		close(j.done)
		return
	}
	now := j.lastNow
	if t.timed {
		now = nanotime()
		j.lastNow = now
		j.hist.record(uint64(now - t.start))
	}
	j.ios++
	if io.Type == bdev.IORead {
		j.reads++
	}
	if j.ios%publishEvery == 0 {
		j.published.Store(j.ios)
	}
	if io.Status != bdev.StatusSuccess {
		j.errors++
		if j.firstErr == "" {
			j.firstErr = fmt.Sprintf("%v LBA %d+%d: %s", io.Type, io.OffsetBlocks, io.Blocks, io.StatusString())
		}
		if t.slot != noSlot && j.gens != nil {
			if io.Type == bdev.IOWrite { // old or new on the device now
				j.gens[t.slot] |= slotUnsure | slotFailed
			}
			j.gens[t.slot] &^= slotBusy
		}
	} else if j.gens != nil {
		t.verifyDone(now)
		return
	}
	t.continueOrFinish(now)
}

const noSlot = ^uint64(0)

func (t *task) continueOrFinish(now int64) {
	j := t.j
	if !j.stopping && (now >= j.deadline || j.stop.Load() || j.verifyErr != nil) {
		j.stopping = true
	}
	if j.stopping {
		j.finishOne(now)
		return
	}
	t.next(now)
}

func (j *job) finishOne(now int64) {
	j.outstanding--
	if j.outstanding == 0 {
		j.ended = nanotime()
		j.published.Store(j.ios)
		close(j.done)
	}
}

// next picks and submits the task's next IO.
func (t *task) next(now int64) {
	j := t.j
	if j.gens != nil {
		t.verifyNext(now)
		return
	}
	var slot uint64
	if j.o.Workload.random() {
		slot = j.random(j.slots)
	} else {
		slot = j.seqNext
		if j.seqNext++; j.seqNext == j.slots {
			j.seqNext = 0
		}
	}
	typ := bdev.IORead
	switch j.o.Workload {
	case WorkloadRandWrite, WorkloadWrite:
		typ = bdev.IOWrite
	case WorkloadRW, WorkloadRandRW:
		if j.random(100) >= uint64(j.o.RWMixRead) {
			typ = bdev.IOWrite
		}
	}
	t.submit(typ, slot, now)
}

func (t *task) submit(typ bdev.IOType, slot uint64, now int64) {
	j := t.j
	io := t.io
	io.Type = typ
	io.OffsetBlocks = j.firstBlock + slot*j.ioBlocks
	io.Blocks = j.ioBlocks
	t.slot = slot
	t.timed = false
	if j.sampleLeft--; j.sampleLeft == 0 {
		j.sampleLeft = j.o.LatencySampleEvery
		t.timed = true
		t.start = now // the completion that submits this one just read the clock
		if j.o.LatencySampleEvery > 1 {
			t.start = nanotime() // it may not have
		}
	}
	j.ch.Submit(io)
}

// verifyNext: read back a slot written before, or write a free slot with the
// next generation (then read it, in verifyDone). Busy slots are skipped, so
// no two IOs touch one block (P3); an unsure slot is written, not read.
func (t *task) verifyNext(now int64) {
	j := t.j
	slot := j.random(j.slots)
	for j.gens[slot]&slotBusy != 0 { // QueueDepth <= slots: a free one exists
		if slot++; slot == j.slots {
			slot = 0
		}
	}
	word := j.gens[slot]
	j.gens[slot] = word | slotBusy
	g := word & slotGenMask
	if g != 0 && word&slotUnsure == 0 && (g == verifyGenMax || j.random(2) == 0) {
		t.write = false
		t.submit(bdev.IORead, slot, now)
		return
	}
	gen := writeGen(g)
	lba := j.firstBlock + slot*j.ioBlocks
	for k := range j.ioBlocks {
		stampBlock(t.buf[k*j.blockSize:(k+1)*j.blockSize], lba+k, uint64(gen))
	}
	t.write = true
	t.submit(bdev.IOWrite, slot, now)
}

// verifyDone: a write completed, so its slot's generation moves on and the
// same slot is read back; a read completed, so every block is checked (P4).
func (t *task) verifyDone(now int64) {
	j := t.j
	slot := t.slot
	if t.write { // acknowledged: sure again, at the generation it stamped
		j.gens[slot] = writeGen(j.gens[slot]&slotGenMask) | slotAcked | slotBusy
		t.write = false
		if !j.stopping && j.verifyErr == nil {
			clear(t.buf) // what the read brings back must be the device's
			t.submit(bdev.IORead, slot, now)
			return
		}
	} else {
		gen := uint64(j.gens[slot] & slotGenMask)
		lba := j.firstBlock + slot*j.ioBlocks
		for k := range j.ioBlocks {
			field, want, got := checkBlock(t.buf[k*j.blockSize:(k+1)*j.blockSize], lba+k, gen)
			if field != "" && j.verifyErr == nil {
				j.verifyErr = &VerifyError{LBA: lba + k, Field: field, Want: want, Got: got, Core: j.core}
			}
		}
	}
	j.gens[slot] &^= slotBusy
	t.continueOrFinish(now)
}
