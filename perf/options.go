package perf

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Workload is what a job does.
type Workload string

const (
	WorkloadRandRead  Workload = "randread"
	WorkloadRandWrite Workload = "randwrite"
	WorkloadRead      Workload = "read"  // sequential
	WorkloadWrite     Workload = "write" // sequential
	// WorkloadRW mixes sequential reads and writes, RWMixRead percent reads
	// (bdevperf's rw); WorkloadRandRW is the random mix.
	WorkloadRW     Workload = "rw"
	WorkloadRandRW Workload = "randrw"
	// WorkloadVerify writes stamped blocks and reads them back (P3, P4).
	WorkloadVerify Workload = "verify"
)

// Workloads lists every workload, for flag help.
var Workloads = []Workload{WorkloadRandRead, WorkloadRandWrite, WorkloadRead, WorkloadWrite,
	WorkloadRW, WorkloadRandRW, WorkloadVerify}

func (w Workload) random() bool {
	return w == WorkloadRandRead || w == WorkloadRandWrite || w == WorkloadRandRW
}

func (w Workload) writes() bool { return w != WorkloadRandRead && w != WorkloadRead }

// Limits of BdevOptions, each checked by Validate.
const (
	// QueueDepthMax IOs per core: past this a closed loop measures queueing,
	// not the stack; SPDK's bdevperf users rarely pass 256.
	QueueDepthMax = 4096
	// IOSizeMax bytes per IO: what one IO may move before splitting is the
	// layer's and the back end's business; 16 MiB covers any benchmark.
	IOSizeMax = 16 << 20
	// LatencySampleEveryMax: sampling fewer than one IO in 1024 leaves too
	// few samples for a p99.9 in a short run.
	LatencySampleEveryMax = 1024
	// DurationMax of one run.
	DurationMax = 24 * time.Hour
	// verifySlotsMax IO-sized slots per core are tracked in verify mode (4
	// bytes each: 64 MiB at most); a bigger range is verified on its first
	// verifySlotsMax slots.
	verifySlotsMax = 1 << 24
)

// BdevOptions configure RunBdev. The zero value of a field takes the
// default given; Validate reports every problem at once.
type BdevOptions struct {
	// Topology is the stack to build; nil means conf.Default() (Malloc0).
	Topology *conf.Topology
	// Bdev is the bdev to drive; "" means the topology's first.
	Bdev string
	// Workload; "" means randread.
	Workload Workload
	// QueueDepth IOs outstanding per core; 0 means 32.
	QueueDepth int
	// IOSize bytes per IO, a multiple of the bdev's block size; 0 means 4096.
	IOSize int
	// Duration of the run; 0 means 10 s.
	Duration time.Duration
	// Cores run one job each (one reactor per core, busy polling); nil
	// means the first CPU this process may run on.
	Cores []int
	// RWMixRead percent of rw and randrw IOs are reads; 0 means 50, and
	// RWMixReadNone means 0%.
	RWMixRead int
	// Seed makes the random offsets repeatable; 0 means 1.
	Seed uint64
	// LatencySampleEvery: the latency of one IO in this many is measured
	// (two clock reads each); 0 means 1, every IO. Reading the clock costs
	// 20-60 ns on virtual machines, as much as the bdev layer: sampling
	// measures the stack's throughput without it, and the percentiles of a
	// sample of millions stay true, but the max is only the sample's.
	LatencySampleEvery int
	// Register fills the registry with drivers (cmd/sluice's list).
	// Required by RunBdev; Validate does not look at it.
	Register func(*bdev.Registry) error
	// Stages builds the topology's stages: on the registry once its bdevs
	// exist; stop takes them down before the bdevs close. Required when
	// the topology has stages (cmd/sluice's builder, the daemon's own).
	Stages func(reg *bdev.Registry, stages []conf.Stage) (stop func() error, err error)
	// Progress gets one line per second; nil prints none.
	Progress io.Writer
	// Pools size the bdev layer's per-reactor pools; zero fields default.
	Pools bdev.Options
	// VerifyState is a verify state file (state.go has its format and
	// rules): if it exists, every block it records is read back and checked
	// first, and the workload continues from the generations found; the
	// file is rewritten when the read-back passed (dirty) and at the end
	// (clean). "" keeps no state. Workload verify only.
	VerifyState string
}

// ErrOptions is wrapped by every option error.
var ErrOptions = errors.New("perf options")

// Validate checks o without building anything and fills the defaults.
func (o *BdevOptions) Validate() error {
	if o.Topology == nil {
		o.Topology = conf.Default()
	}
	if o.Workload == "" {
		o.Workload = WorkloadRandRead
	}
	if o.QueueDepth == 0 {
		o.QueueDepth = 32
	}
	if o.IOSize == 0 {
		o.IOSize = 4096
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	switch o.RWMixRead {
	case 0:
		o.RWMixRead = 50
	case RWMixReadNone:
		o.RWMixRead = 0
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.LatencySampleEvery == 0 {
		o.LatencySampleEvery = 1
	}
	var errs []error
	bad := func(field string, value any, want string) {
		errs = append(errs, fmt.Errorf("%s %v, want %s: %w", field, value, want, ErrOptions))
	}
	known := false
	for _, w := range Workloads {
		known = known || w == o.Workload
	}
	if !known {
		bad("workload", o.Workload, fmt.Sprint("one of ", Workloads))
	}
	if o.QueueDepth < 1 || o.QueueDepth > QueueDepthMax {
		bad("queue depth", o.QueueDepth, fmt.Sprintf("1..%d", QueueDepthMax))
	}
	if o.IOSize < bdev.BlockSizeMin || o.IOSize > IOSizeMax {
		bad("IO size", o.IOSize, fmt.Sprintf("%d..%d bytes", bdev.BlockSizeMin, IOSizeMax))
	}
	if o.Duration < 0 || o.Duration > DurationMax {
		bad("duration", o.Duration, fmt.Sprintf("up to %v", DurationMax))
	}
	if o.LatencySampleEvery < 1 || o.LatencySampleEvery > LatencySampleEveryMax {
		bad("latency sample", o.LatencySampleEvery, fmt.Sprintf("1..%d IOs", LatencySampleEveryMax))
	}
	if o.RWMixRead < 0 || o.RWMixRead > 100 {
		bad("rwmixread", o.RWMixRead, "0..100 percent")
	}
	if o.VerifyState != "" && o.Workload != WorkloadVerify {
		bad("verify state", o.VerifyState, "workload verify (it records verify generations)")
	}
	if len(o.Topology.Bdevs) == 0 {
		bad("topology bdevs", "none", "at least one bdev")
	} else if o.Bdev == "" {
		o.Bdev = o.Topology.Bdevs[0].Name
	} else {
		var names []string
		for _, b := range o.Topology.Bdevs {
			names = append(names, b.Name)
		}
		for _, s := range o.Topology.Stages {
			names = append(names, s.Name)
		}
		if !slices.Contains(names, o.Bdev) {
			bad("bdev", fmt.Sprintf("%q", o.Bdev), fmt.Sprint("one of the topology's bdevs and stages ", names))
		}
	}
	return errors.Join(errs...)
}

// RWMixReadNone as RWMixRead asks for 0% reads (0 itself means the default).
const RWMixReadNone = -1

// SpecOf converts a topology bdev to the layer's spec.
func SpecOf(b conf.Bdev) bdev.Spec {
	return bdev.Spec{Name: b.Name, Driver: string(b.Driver), BlockSize: uint32(b.BlockSize),
		Blocks: b.Blocks, UUID: b.UUID, Path: b.Path}
}
