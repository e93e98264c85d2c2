package perf

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/services/bdev"
)

// BdevFlags is the command line of `sluice perf bdev`, as bdevperf's:
//
//	-c FILE        topology: its bdevs and stages (default: the embedded default, Malloc0)
//	-b NAME        bdev or stage to drive (default: the topology's first bdev)
//	-w WORKLOAD    randread|randwrite|read|write|rw|randrw|verify (randread)
//	-q DEPTH       IOs outstanding per core (32)
//	-o SIZE        bytes per IO: 4096, 4k, 4KiB, 128k, 1M (4096)
//	-t SECONDS     run time, fractions allowed (10)
//	-m CORES       cores, one job each: 0x3, 0-1, 0,2 or [0,2] (the first allowed)
//	--rwmixread N  percent reads for rw and randrw (50)
//	--seed N       random offsets' seed (1)
//	--latency-sample N  time one IO in N (1: every IO)
//	--json         print the report as one JSON object on stdout
//	--verify-state FILE  with -w verify: read back and check what FILE
//	               records first, continue from it, save it at the end
type BdevFlags struct {
	Config      string
	Bdev        string
	Workload    string
	QueueDepth  int
	IOSize      string
	Seconds     float64
	Cores       string
	RWMixRead   int
	Seed        uint64
	Sample      int
	JSON        bool
	VerifyState string
}

// Register defines the flags on fs (Go's flag package takes --json as -json).
func (f *BdevFlags) Register(fs *flag.FlagSet) {
	var names []string
	for _, w := range Workloads {
		names = append(names, string(w))
	}
	fs.StringVar(&f.Config, "c", "", "topology `FILE`, its bdevs and stages (default: the embedded default topology, Malloc0)")
	fs.StringVar(&f.Bdev, "b", "", "bdev or stage `NAME` to drive (default: the topology's first bdev)")
	fs.StringVar(&f.Workload, "w", string(WorkloadRandRead), "`workload`: "+strings.Join(names, "|"))
	fs.IntVar(&f.QueueDepth, "q", 32, "IOs outstanding per core (`DEPTH`)")
	fs.StringVar(&f.IOSize, "o", "4096", "IO `SIZE`: bytes, or 4k, 128k, 1M, 4KiB")
	fs.Float64Var(&f.Seconds, "t", 10, "run time in `SECONDS`")
	fs.StringVar(&f.Cores, "m", "", "`CORES`, one job each: a mask 0x3, a list 0,2, a range 0-3 (default: the first allowed CPU)")
	fs.IntVar(&f.RWMixRead, "rwmixread", 50, "percent reads for rw and randrw (`N`, 0..100)")
	fs.Uint64Var(&f.Seed, "seed", 1, "random offsets' `seed`")
	fs.IntVar(&f.Sample, "latency-sample", 1, "time one IO in `N` (1: every IO; more measures throughput without the clock's cost)")
	fs.BoolVar(&f.JSON, "json", false, "print the report as one JSON object on stdout")
	fs.StringVar(&f.VerifyState, "verify-state", "", "with -w verify: read back and check every block state `FILE` records, "+
		"continue from it, and save it (atomically, after a flush) when the read-back passed and at the end")
}

// Options turns the flags into BdevOptions (reading the topology file),
// reporting every bad flag at once. Register and Progress are the caller's.
func (f *BdevFlags) Options() (BdevOptions, error) {
	var errs []error
	o := BdevOptions{Bdev: f.Bdev, Workload: Workload(f.Workload), QueueDepth: f.QueueDepth, Seed: f.Seed,
		LatencySampleEvery: f.Sample, VerifyState: f.VerifyState}
	if f.Config != "" {
		t, err := conf.LoadFor(f.Config, conf.HostMachine())
		if err != nil {
			errs = append(errs, fmt.Errorf("-c %s: %w", f.Config, err))
		}
		o.Topology = t
	}
	size, err := ParseIOSize(f.IOSize)
	if err != nil {
		errs = append(errs, fmt.Errorf("-o: %w", err))
	}
	o.IOSize = size
	if f.Seconds <= 0 || f.Seconds > DurationMax.Seconds() || math.IsNaN(f.Seconds) {
		errs = append(errs, fmt.Errorf("-t %v, want seconds in (0, %v]: %w", f.Seconds, DurationMax.Seconds(), ErrOptions))
	}
	o.Duration = time.Duration(f.Seconds * float64(time.Second))
	if f.Cores != "" {
		if o.Cores, err = ParseCores(f.Cores); err != nil {
			errs = append(errs, fmt.Errorf("-m: %w", err))
		}
	}
	o.RWMixRead = f.RWMixRead
	if f.RWMixRead == 0 {
		o.RWMixRead = RWMixReadNone
	}
	if f.QueueDepth < 1 || f.QueueDepth > QueueDepthMax {
		errs = append(errs, fmt.Errorf("-q %d, want 1..%d: %w", f.QueueDepth, QueueDepthMax, ErrOptions))
	}
	errs = append(errs, o.Validate()) // also with bad flags: every problem at once
	return o, errors.Join(errs...)
}

// ParseIOSize reads an IO size: conf's sizes (4096, 4KiB, 1MiB, 4kB) or the
// bdevperf and fio shorthand with one letter, k, m or g (powers of 1024).
func ParseIOSize(s string) (int, error) {
	if n := len(s); n > 1 {
		if shift, ok := map[byte]uint{'k': 10, 'K': 10, 'm': 20, 'M': 20, 'g': 30, 'G': 30}[s[n-1]]; ok {
			if v, err := strconv.ParseUint(s[:n-1], 10, 32); err == nil && v<<shift <= IOSizeMax {
				return int(v << shift), nil
			}
		}
	}
	v, err := conf.ParseSize(s)
	if err != nil {
		return 0, err
	}
	if v > IOSizeMax {
		return 0, fmt.Errorf("IO size %s, want at most %d bytes: %w", s, IOSizeMax, ErrOptions)
	}
	return int(v), nil
}

// ParseCores reads a core set: a hex mask (0x3), or a list of ids and
// ranges, optionally in brackets (0,2-3 or [0,2-3]). The result ascends.
func ParseCores(s string) ([]int, error) {
	bad := func(why string) error {
		return fmt.Errorf("cores %q: %s; want a mask like 0x3 or a list like 0,2-3: %w", s, why, ErrOptions)
	}
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		mask, err := strconv.ParseUint(h, 16, 64)
		if err != nil || mask == 0 {
			return nil, bad("not a non-zero 64-bit hex mask")
		}
		var cores []int
		for mask != 0 {
			c := bits.TrailingZeros64(mask)
			cores = append(cores, c)
			mask &^= 1 << c
		}
		return cores, nil
	}
	list := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	seen := map[int]bool{}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a || b >= conf.CoresMax {
			return nil, bad(fmt.Sprintf("%q is not a core id or a-b range below %d", part, conf.CoresMax))
		}
		for c := a; c <= b; c++ {
			if seen[c] {
				return nil, bad(fmt.Sprintf("core %d twice", c))
			}
			seen[c] = true
		}
	}
	cores := make([]int, 0, len(seen))
	for c := range conf.CoresMax {
		if seen[c] {
			cores = append(cores, c)
		}
	}
	return cores, nil
}

// MainBdev is `sluice perf bdev ARGS...` whole: it parses args, runs, prints
// progress on stderr and the report on stdout (text, or JSON with --json),
// and returns the exit code: 0, 1 when the run failed (verify mismatch,
// failed IOs, a stack that would not build), 2 for bad flags.
func MainBdev(ctx context.Context, args []string, stdout, stderr io.Writer, register func(*bdev.Registry) error,
	stages func(*bdev.Registry, []conf.Stage) (func() error, error)) int {
	fs := flag.NewFlagSet("sluice perf bdev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f BdevFlags
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice perf bdev: unexpected arguments %q\n", fs.Args())
		return 2
	}
	o, err := f.Options()
	if err != nil {
		fmt.Fprintf(stderr, "sluice perf bdev: %v\n", err)
		return 2
	}
	o.Register, o.Stages = register, stages
	o.Progress = stderr
	rep, err := RunBdev(ctx, o)
	if rep != nil {
		if f.JSON {
			rep.WriteJSON(stdout)
		} else {
			rep.WriteText(stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice perf bdev: %v\n", err)
		return 1
	}
	return 0
}
