package perf

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// ErrIOFailed is wrapped by RunBdev's error when IOs completed with an error.
var ErrIOFailed = errors.New("IOs failed")

// stopTimeout bounds the wait for the jobs after their deadline: the IOs
// outstanding at the deadline must complete by then, or the back end hangs.
const stopTimeout = 30 * time.Second

// RunBdev builds o.Topology's bdevs in this process on reactors pinned to
// o.Cores (busy polling), drives o.Bdev from one job per core, and returns
// the report. It returns an error for bad options, a stack that cannot be
// built, a verify mismatch (*VerifyError, with the LBA) or failed IOs
// (ErrIOFailed); the report is returned whenever the run happened. Cancelling
// ctx ends the run early, as its deadline would.
func RunBdev(ctx context.Context, o BdevOptions) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Register == nil {
		return nil, fmt.Errorf("perf: no driver registration function: %w", ErrOptions)
	}
	cores := o.Cores
	if len(cores) == 0 {
		all, err := reactors.AllowedCores()
		if err != nil {
			return nil, err
		}
		cores = all[:1]
	}
	set, err := reactors.Start(cores, reactors.Options{Mode: reactors.ModePoll})
	if err != nil {
		return nil, fmt.Errorf("perf: start reactors on cores %v: %w", cores, err)
	}
	defer set.Stop(stopTimeout)
	reg, err := bdev.NewRegistry(set, o.Pools)
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	if err := o.Register(reg); err != nil {
		return nil, fmt.Errorf("perf: register drivers: %w", err)
	}
	for _, b := range o.Topology.Bdevs {
		if _, err := reg.Create(SpecOf(b)); err != nil {
			return nil, fmt.Errorf("perf: %w", err)
		}
	}
	if len(o.Topology.Stages) > 0 {
		if o.Stages == nil {
			return nil, fmt.Errorf("perf: the topology has %d stages and no stage builder: %w", len(o.Topology.Stages), ErrOptions)
		}
		stop, err := o.Stages(reg, o.Topology.Stages)
		if err != nil {
			return nil, fmt.Errorf("perf: stages: %w", err)
		}
		defer stop() // after the job's descriptor closes, before the registry does
	}
	desc, err := reg.Open(o.Bdev, o.Workload.writes())
	if err != nil {
		return nil, fmt.Errorf("perf: %w", err)
	}
	defer desc.Close()
	var stop atomic.Bool
	jobs, err := makeJobs(set, reg, desc, &o, &stop)
	defer freeJobs(jobs)
	if err != nil {
		return nil, err
	}
	var state *stateRun
	if o.VerifyState != "" {
		if state, err = startState(ctx, &o, desc.Bdev(), jobs, &stop); err != nil {
			var rep *Report
			if state != nil {
				rep = &Report{Cores: []CoreReport{}, VerifyState: &state.report}
			}
			return rep, err
		}
	}
	for _, j := range jobs {
		j.done = make(chan struct{}) // a read-back or a flush used the last one
		if err := j.r.PostFunc(j.start); err != nil {
			return nil, err
		}
		j.running = true
	}
	started := time.Now()
	wait(ctx, jobs, &o, &stop, started)
	rep := report(jobs, &o)
	err = runError(jobs, rep)
	if state != nil {
		rep.VerifyState = &state.report
		// Saved even after a verify mismatch or failed IOs: the file says
		// what was acknowledged, and the next read-back finds the damage
		// again.
		err = errors.Join(err, state.save(jobs, true))
	}
	return rep, err
}

// startState is --verify-state before the workload: load the file, read
// every recorded block back and check it (P6), continue each slot from what
// was found (P7), and save the dirty state the workload's writes can only
// raise. A returned stateRun with an error carries the read-back's report.
func startState(ctx context.Context, o *BdevOptions, b *bdev.Bdev, jobs []*job, stop *atomic.Bool) (*stateRun, error) {
	state, err := openStateRun(o.VerifyState, b)
	if err != nil {
		return nil, err
	}
	if err := state.readBack(ctx, jobs, stop); err != nil {
		return state, err
	}
	for _, j := range jobs {
		seedSlots(j, state.base)
	}
	if err := state.save(jobs, false); err != nil {
		return state, err
	}
	return state, nil
}

// makeJobs prepares one job per reactor, on that reactor: its channel, its
// range, its tasks with an IO and a buffer each (P2).
func makeJobs(set *reactors.Set, reg *bdev.Registry, desc *bdev.Desc, o *BdevOptions, stop *atomic.Bool) ([]*job, error) {
	b := desc.Bdev()
	bs := uint64(b.BlockSize())
	if uint64(o.IOSize)%bs != 0 {
		return nil, fmt.Errorf("perf: IO size %d, want a multiple of bdev %q's block size %d: %w", o.IOSize, b.Name(), bs, ErrOptions)
	}
	if o.Workload == WorkloadVerify && bs < VerifyHeaderSize {
		return nil, fmt.Errorf("perf: verify needs blocks of at least %d bytes: %w", VerifyHeaderSize, ErrOptions)
	}
	ioBlocks := uint64(o.IOSize) / bs
	n := uint64(set.Len())
	perJob := b.Blocks() / n / ioBlocks * ioBlocks // disjoint ranges (P3)
	if perJob == 0 {
		return nil, fmt.Errorf("perf: bdev %q of %d blocks holds no %d-block IO per each of %d cores: %w",
			b.Name(), b.Blocks(), ioBlocks, n, ErrOptions)
	}
	slots := perJob / ioBlocks
	if o.Workload == WorkloadVerify {
		slots = min(slots, verifySlotsMax)
		if slots < uint64(o.QueueDepth) {
			return nil, fmt.Errorf("perf: verify with queue depth %d needs %d IO slots per core, bdev %q has %d: %w",
				o.QueueDepth, o.QueueDepth, b.Name(), slots, ErrOptions)
		}
	}
	var jobs []*job
	for i, r := range set.All() {
		j := &job{core: r.Core(), r: r, o: o, blockSize: bs, ioBlocks: ioBlocks,
			firstBlock: uint64(i) * perJob, slots: slots, stop: stop,
			rng: o.Seed*0x9e3779b97f4a7c15 + uint64(i+1), done: make(chan struct{})}
		if o.Workload == WorkloadVerify {
			j.gens = make([]uint32, slots)
		}
		jobs = append(jobs, j)
		var err error
		if callErr := r.Call(func() { err = j.prepare(desc, reg.Local(r)) }); callErr != nil {
			err = callErr
		}
		if err != nil {
			return jobs, fmt.Errorf("perf: core %d: %w", r.Core(), err)
		}
	}
	return jobs, nil
}

// prepare opens the job's channel and takes its IOs and buffers. Buffers
// come from the reactor's pool when it has enough (a back end may have
// registered it: io_uring fixed buffers), else from a region of the job's.
func (j *job) prepare(desc *bdev.Desc, l *bdev.Local) error {
	ch, err := desc.Channel(j.r)
	if err != nil {
		return err
	}
	j.ch = ch
	j.tasks = make([]task, j.o.QueueDepth)
	pooled := true
	for i := range j.tasks {
		t := &j.tasks[i]
		t.j = j
		t.slot = noSlot
		if t.io = l.AllocIO(); t.io == nil {
			return fmt.Errorf("IO pool empty after %d IOs: raise the bdev IO pool size", i)
		}
		t.io.Completer = t
		if pooled {
			if t.buf = l.AllocBuf(j.o.IOSize); t.buf == nil {
				pooled = false
			}
		}
	}
	if !pooled { // too many or too large for the pool: a region of our own
		for i := range j.tasks {
			if b := j.tasks[i].buf; b != nil {
				l.FreeBuf(b)
				j.tasks[i].buf = nil
			}
		}
		if j.region, err = bdev.MapRegion(len(j.tasks) * j.o.IOSize); err != nil {
			return fmt.Errorf("buffers: %w", err)
		}
		for i := range j.tasks {
			j.tasks[i].buf = j.region.Bytes()[i*j.o.IOSize : (i+1)*j.o.IOSize]
		}
	}
	for i := range j.tasks {
		j.tasks[i].io.SetBuf(j.tasks[i].buf)
	}
	return nil
}

// freeJobs gives the IOs and buffers back, on each job's reactor. A job
// still running (a hung back end) keeps them: its IOs are pending.
func freeJobs(jobs []*job) {
	for _, j := range jobs {
		if j.running && !isDone(j) {
			continue
		}
		j.r.Call(func() {
			l := j.ch.Local()
			for i := range j.tasks {
				t := &j.tasks[i]
				if t.io != nil {
					t.io.Free()
				}
				if t.buf != nil && j.region == nil {
					l.FreeBuf(t.buf)
				}
			}
		})
		if j.region != nil {
			j.region.Unmap()
		}
	}
}

// wait prints progress once a second until every job is done; past the
// deadline or on ctx's end it asks the jobs to stop.
func wait(ctx context.Context, jobs []*job, o *BdevOptions, stop *atomic.Bool, started time.Time) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last uint64
	lastAt := started
	cancelled := ctx.Done()
	for _, j := range jobs {
		for done := false; !done; {
			select {
			case <-j.done:
				done = true
			case <-cancelled:
				stop.Store(true)
				cancelled = nil // asked once
			case now := <-tick.C:
				var ios uint64
				for _, x := range jobs {
					ios += x.published.Load()
				}
				if o.Progress != nil {
					rate := float64(ios-last) / now.Sub(lastAt).Seconds()
					fmt.Fprintf(o.Progress, "%6.1f s  %12.0f IOPS  %10.2f MiB/s\n", now.Sub(started).Seconds(),
						rate, rate*float64(o.IOSize)/(1<<20))
				}
				last, lastAt = ios, now
				if now.Sub(started) > o.Duration+stopTimeout {
					stop.Store(true) // a hung back end: report what finished
					return
				}
			}
		}
	}
}

func runError(jobs []*job, rep *Report) error {
	for _, j := range jobs {
		if !isDone(j) {
			return fmt.Errorf("perf: core %d: %d IOs still outstanding %v after the deadline", j.core, j.outstanding, stopTimeout)
		}
	}
	for _, j := range jobs {
		if j.verifyErr != nil {
			return j.verifyErr
		}
	}
	if rep.Errors > 0 {
		for _, j := range jobs {
			if j.firstErr != "" {
				return fmt.Errorf("perf: %d of %d IOs failed; first on core %d: %s: %w", rep.Errors, rep.Total.IOs, j.core, j.firstErr, ErrIOFailed)
			}
		}
	}
	return nil
}

func isDone(j *job) bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}
