package perf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/sluice-storage/sluice/drivers/nvmf"
	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// RunNVMf is spdk_nvme_perf's job over NVMe/TCP: it connects our host
// (drivers/nvmf) to each controller, finds the namespaces (Identify active
// namespace list; the discovery log first when a transport ID names the
// discovery subsystem), opens one I/O qpair per controller on each core,
// and runs the same closed-loop jobs as RunBdev (workloads, verify format,
// histogram) on every (core, namespace) pair, each the size of its own
// queue depth. The report has a row per (core, namespace) qpair user and a
// total, with IOPS, MiB/s and latency avg, min, p50, p90, p99, p99.9,
// p99.99 and max.

// NVMfOptions configure RunNVMf. Zero fields take the default given.
type NVMfOptions struct {
	// TransportIDs are the controllers (or discovery controllers) to use.
	TransportIDs []host.TransportID
	// Workload; "" means randread.
	Workload Workload
	// QueueDepth IOs outstanding per (core, namespace); 0 means 32.
	QueueDepth int
	// IOSize bytes per IO, a multiple of the block size; 0 means 4096.
	IOSize int
	// Duration of the run; 0 means 10 s.
	Duration time.Duration
	// Cores run one reactor each (busy polling); nil means the first CPU.
	Cores []int
	// RWMixRead percent reads for rw and randrw; 0 means 50, RWMixReadNone 0%.
	RWMixRead int
	// Seed of the random offsets; 0 means 1.
	Seed uint64
	// LatencySampleEvery: one IO in this many is timed; 0 means 1.
	LatencySampleEvery int
	// Host: host NQN, digests, KATO of every controller.
	Host host.ControllerOptions
	// Progress gets one line per second; nil prints none.
	Progress io.Writer
	// Log gets the driver's messages; nil discards them.
	Log *slog.Logger
	// Pools size the bdev layer's per-reactor pools; zero fields default.
	Pools bdev.Options
	// VerifyState is BdevOptions.VerifyState for the one namespace the
	// transport IDs reach (a state file records one bdev: Nvme0n1).
	VerifyState string
}

// NVMfReport is RunNVMf's result; its JSON is what `sluice perf nvmf
// --json` prints.
type NVMfReport struct {
	Qpairs []NVMfQpairReport `json:"qpairs"`
	Total  NVMfStats         `json:"total"`
	Errors uint64            `json:"errors"`
	// VerifyState is --verify-state's read-back and save; nil without it.
	VerifyState *StateReport `json:"verify_state,omitempty"`
}

// NVMfQpairReport is one (core, namespace) job.
type NVMfQpairReport struct {
	Core       int    `json:"core"`
	Controller string `json:"controller"` // the transport ID
	Bdev       string `json:"bdev"`       // Nvme<i>n<NSID>
	NVMfStats
}

// NVMfStats are the figures of one job or of all.
type NVMfStats struct {
	IOPS    float64     `json:"iops"`
	MiBps   float64     `json:"mibps"`
	Latency NVMfLatency `json:"latency_us"`
	IOs     uint64      `json:"ios"`
	Errors  uint64      `json:"errors"`
	Seconds float64     `json:"seconds"`
}

// NVMfLatency is in microseconds, submit to completion as the job saw it.
// Min is the lower edge of the smallest recording's histogram bucket (at
// most 1/64 below it); the percentiles are bucket middles, as RunBdev's.
type NVMfLatency struct {
	Avg   float64 `json:"avg"`
	Min   float64 `json:"min"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99.9"`
	P9999 float64 `json:"p99.99"`
	Max   float64 `json:"max"`
}

// Validate fills the defaults and checks every field at once.
func (o *NVMfOptions) Validate() error {
	b := o.bdevOptions()
	var errs []error
	if len(o.TransportIDs) == 0 {
		errs = append(errs, fmt.Errorf("transport IDs: none, want at least one -r: %w", ErrOptions))
	}
	for i := range o.TransportIDs {
		if err := o.TransportIDs[i].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("-r %q: %w", o.TransportIDs[i].String(), err))
		}
	}
	b.Topology = nil
	err := b.Validate() // workload, depth, size, duration, mix, seed, sample
	o.Workload, o.QueueDepth, o.IOSize, o.Duration = b.Workload, b.QueueDepth, b.IOSize, b.Duration
	o.Seed, o.LatencySampleEvery = b.Seed, b.LatencySampleEvery // RWMixRead keeps its encoding (0: 50%)
	if err != nil {
		errs = append(errs, err)
	}
	if o.QueueDepth > host.QueueDepthMax {
		errs = append(errs, fmt.Errorf("queue depth %d, want at most %d (one qpair per core and controller): %w",
			o.QueueDepth, host.QueueDepthMax, ErrOptions))
	}
	return errors.Join(errs...)
}

// bdevOptions are the job options RunBdev's jobs read.
func (o *NVMfOptions) bdevOptions() BdevOptions {
	return BdevOptions{Workload: o.Workload, QueueDepth: o.QueueDepth, IOSize: o.IOSize, Duration: o.Duration,
		Cores: o.Cores, RWMixRead: o.RWMixRead, Seed: o.Seed, LatencySampleEvery: o.LatencySampleEvery,
		Progress: o.Progress, Pools: o.Pools, VerifyState: o.VerifyState}
}

// nvmfTarget is one namespace being driven and its jobs.
type nvmfTarget struct {
	trid string
	desc *bdev.Desc
	jobs []*job
}

// RunNVMf runs the workload against every namespace of every controller and
// returns the report (also with an error, whenever the run happened).
// Cancelling ctx ends the run early.
func RunNVMf(ctx context.Context, o NVMfOptions) (*NVMfReport, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	bo := o.bdevOptions()
	bo.Validate() // the same defaults as o's, and RWMixRead decoded (RWMixReadNone: 0%)
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
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := nvmf.NewManager(reg, log)
	defer func() {
		reg.Close() // channels and qpairs first, on their reactors
		m.Close()   // then each controller's admin queue
	}()
	targets, err := attachAll(ctx, set, m, reg, &o)
	if err != nil {
		return nil, err
	}
	var stop atomic.Bool
	var all []*job
	for _, t := range targets {
		t.jobs, err = makeJobs(set, reg, t.desc, &bo, &stop)
		all = append(all, t.jobs...)
		if err != nil {
			break
		}
	}
	defer func() {
		freeJobs(all)
		for _, t := range targets {
			t.desc.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	var state *stateRun
	if o.VerifyState != "" {
		if len(targets) != 1 {
			return nil, fmt.Errorf("perf: verify state %s: %d namespaces, want one (a state file records one bdev): %w",
				o.VerifyState, len(targets), ErrOptions)
		}
		if state, err = startState(ctx, &bo, targets[0].desc.Bdev(), all, &stop); err != nil {
			var rep *NVMfReport
			if state != nil {
				rep = &NVMfReport{Qpairs: []NVMfQpairReport{}, VerifyState: &state.report}
			}
			return rep, err
		}
	}
	for _, j := range all {
		j.done = make(chan struct{}) // a read-back or a flush used the last one
		if err := j.r.PostFunc(j.start); err != nil {
			return nil, err
		}
		j.running = true
	}
	wait(ctx, all, &bo, &stop, time.Now())
	rep := nvmfReport(targets, &bo)
	err = runError(all, report(all, &bo))
	if state != nil {
		rep.VerifyState = &state.report
		err = errors.Join(err, state.save(all, true)) // as RunBdev: saved after a mismatch too
	}
	return rep, err
}

// attachAll attaches every controller (each NVM subsystem of a discovery
// log) as Nvme0, Nvme1… and opens each namespace's bdev.
func attachAll(ctx context.Context, set *reactors.Set, m *nvmf.Manager, reg *bdev.Registry, o *NVMfOptions) ([]*nvmfTarget, error) {
	var trids []host.TransportID
	for _, t := range o.TransportIDs {
		if !t.Discovery() {
			trids = append(trids, t)
			continue
		}
		entries, err := host.Discover(ctx, set.Get(0), t, o.Host)
		if err != nil {
			return nil, fmt.Errorf("perf: discovery at %s: %w", t, err)
		}
		n := 0
		for _, e := range entries {
			if sub, ok := host.FromDiscovery(e, t.HostNQN); ok {
				trids = append(trids, sub)
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("perf: discovery at %s: no NVM subsystem over TCP among %d entries", t, len(entries))
		}
	}
	var targets []*nvmfTarget
	var err error
	for i, t := range trids {
		name := fmt.Sprintf("Nvme%d", i)
		var names []string
		names, err = m.Attach(ctx, nvmf.AttachOptions{Name: name, TransportID: t, Host: o.Host, IOQueueDepth: o.QueueDepth})
		if err != nil {
			err = fmt.Errorf("perf: %s: %w", t, err)
			break
		}
		if len(names) == 0 {
			err = fmt.Errorf("perf: %s: the controller has no active namespace", t)
			break
		}
		c, _ := m.Controller(name)
		c.SetIOQueueDepth(o.QueueDepth * len(names)) // one qpair per core carries every namespace's jobs
		for _, n := range names {
			d, openErr := reg.Open(n, o.Workload.writes())
			if openErr != nil {
				err = openErr
				break
			}
			targets = append(targets, &nvmfTarget{trid: t.String(), desc: d})
		}
	}
	if err != nil {
		for _, t := range targets {
			t.desc.Close()
		}
		return nil, err
	}
	return targets, nil
}

func nvmfReport(targets []*nvmfTarget, o *BdevOptions) *NVMfReport {
	rep := &NVMfReport{Qpairs: []NVMfQpairReport{}}
	var all histogram
	var secsMax float64
	for _, t := range targets {
		for _, j := range t.jobs {
			if !isDone(j) {
				continue // hung: runError says so
			}
			secs := time.Duration(j.ended - j.started).Seconds()
			st := nvmfStats(&j.hist, j.ios, j.errors, secs, o.IOSize)
			rep.Qpairs = append(rep.Qpairs, NVMfQpairReport{Core: j.core, Controller: t.trid,
				Bdev: t.desc.Bdev().Name(), NVMfStats: st})
			rep.Total.IOPS += st.IOPS
			rep.Total.MiBps += st.MiBps
			rep.Total.IOs += j.ios
			rep.Errors += j.errors
			secsMax = max(secsMax, secs)
			all.merge(&j.hist)
		}
	}
	tot := nvmfStats(&all, rep.Total.IOs, rep.Errors, secsMax, o.IOSize)
	rep.Total.Latency, rep.Total.Errors, rep.Total.Seconds = tot.Latency, rep.Errors, secsMax
	return rep
}

func nvmfStats(h *histogram, ios, errs uint64, secs float64, ioSize int) NVMfStats {
	st := NVMfStats{IOs: ios, Errors: errs, Seconds: secs}
	if secs > 0 {
		st.IOPS = float64(ios) / secs
		st.MiBps = st.IOPS * float64(ioSize) / (1 << 20)
	}
	us := func(ns float64) float64 { return ns / 1e3 }
	minNS := 0.0
	for i, c := range h.counts {
		if c != 0 {
			minNS = float64(histLow(i))
			break
		}
	}
	st.Latency = NVMfLatency{Avg: us(h.mean()), Min: us(minNS), P50: us(h.quantile(0.5)), P90: us(h.quantile(0.9)),
		P99: us(h.quantile(0.99)), P999: us(h.quantile(0.999)), P9999: us(h.quantile(0.9999)), Max: us(float64(h.max))}
	return st
}

// WriteJSON writes the report as one JSON object and a newline.
func (r *NVMfReport) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes a row per (core, namespace) and a total, latencies in µs.
func (r *NVMfReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "core\tbdev\tIOPS\tMiB/s\tavg us\tmin us\tp50 us\tp90 us\tp99 us\tp99.9 us\tp99.99 us\tmax us\terrors\t")
	row := func(core, name string, s NVMfStats) {
		l := s.Latency
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", core, name,
			s.IOPS, s.MiBps, l.Avg, l.Min, l.P50, l.P90, l.P99, l.P999, l.P9999, l.Max, s.Errors)
	}
	for _, q := range r.Qpairs {
		row(fmt.Sprint(q.Core), q.Bdev, q.NVMfStats)
	}
	row("total", "", r.Total)
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.VerifyState != nil {
		if _, err := fmt.Fprintln(w, r.VerifyState.summary()); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, q := range r.Qpairs {
		if !seen[q.Bdev] {
			seen[q.Bdev] = true
			fmt.Fprintf(w, "%s: %s\n", q.Bdev, q.Controller)
		}
	}
	return nil
}
