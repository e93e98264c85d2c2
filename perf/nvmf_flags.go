package perf

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/sluice-storage/sluice/drivers/nvmf/host"
)

// NVMfFlags is the command line of `sluice perf nvmf`, as spdk_nvme_perf's:
//
//	-r TRID        transport ID, repeatable: 'trtype:tcp traddr:127.0.0.1
//	               trsvcid:4420 subnqn:NQN' (subnqn the discovery NQN, or
//	               none: every NVM subsystem its log lists)
//	-q DEPTH       IOs outstanding per core and namespace (32)
//	-o SIZE        bytes per IO: 4096, 4k, 128k (4096)
//	-w WORKLOAD    read|write|randread|randwrite|rw|randrw|verify (randread)
//	-t SECONDS     run time (10)
//	-m CORES       cores, a qpair per controller on each: 0x3, 0-1 (the first allowed)
//	-M N           percent reads for rw and randrw (50)
//	-H, -I         header digest, data digest
//	--hostnqn NQN  host NQN (default: one made from a random host ID)
//	--seed N, --latency-sample N, --json  as sluice perf bdev
//	--verify-state FILE  with -w verify and one namespace: as sluice perf
//	               bdev (the file records the host's bdev, Nvme0n1)
type NVMfFlags struct {
	TRIDs       multiFlag
	QueueDepth  int
	IOSize      string
	Workload    string
	Seconds     float64
	Cores       string
	RWMixRead   int
	HDigest     bool
	DDigest     bool
	HostNQN     string
	Seed        uint64
	Sample      int
	JSON        bool
	Verbose     bool
	VerifyState string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// Register defines the flags on fs.
func (f *NVMfFlags) Register(fs *flag.FlagSet) {
	var names []string
	for _, w := range Workloads {
		names = append(names, string(w))
	}
	fs.Var(&f.TRIDs, "r", "transport `ID`: 'trtype:tcp traddr:ADDR trsvcid:PORT subnqn:NQN' (repeatable)")
	fs.IntVar(&f.QueueDepth, "q", 32, "IOs outstanding per core and namespace (`DEPTH`)")
	fs.StringVar(&f.IOSize, "o", "4096", "IO `SIZE`: bytes, or 4k, 128k, 1M")
	fs.StringVar(&f.Workload, "w", string(WorkloadRandRead), "`workload`: "+strings.Join(names, "|"))
	fs.Float64Var(&f.Seconds, "t", 10, "run time in `SECONDS`")
	fs.StringVar(&f.Cores, "m", "", "`CORES`: a mask 0x3, a list 0,2, a range 0-3 (default: the first allowed CPU)")
	fs.IntVar(&f.RWMixRead, "M", 50, "percent reads for rw and randrw (`N`, 0..100)")
	fs.BoolVar(&f.HDigest, "H", false, "enable the header digest")
	fs.BoolVar(&f.DDigest, "I", false, "enable the data digest")
	fs.StringVar(&f.HostNQN, "hostnqn", "", "host `NQN` (default: nqn.2014-08.org.nvmexpress:uuid:<random>)")
	fs.Uint64Var(&f.Seed, "seed", 1, "random offsets' `seed`")
	fs.IntVar(&f.Sample, "latency-sample", 1, "time one IO in `N`")
	fs.BoolVar(&f.JSON, "json", false, "print the report as one JSON object on stdout")
	fs.BoolVar(&f.Verbose, "v", false, "log the host's connection events on stderr")
	fs.StringVar(&f.VerifyState, "verify-state", "", "with -w verify and one namespace: read back and check every block state `FILE` records, "+
		"continue from it, and save it (atomically, after a flush) when the read-back passed and at the end")
}

// Options turns the flags into NVMfOptions, every bad flag at once.
func (f *NVMfFlags) Options() (NVMfOptions, error) {
	var errs []error
	o := NVMfOptions{Workload: Workload(f.Workload), QueueDepth: f.QueueDepth, Seed: f.Seed,
		LatencySampleEvery: f.Sample, RWMixRead: f.RWMixRead, VerifyState: f.VerifyState,
		Host: host.ControllerOptions{HeaderDigest: f.HDigest, DataDigest: f.DDigest, HostNQN: f.HostNQN}}
	if f.RWMixRead == 0 {
		o.RWMixRead = RWMixReadNone
	}
	for _, s := range f.TRIDs {
		t, err := host.ParseTransportID(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("-r %q: %w", s, err))
			continue
		}
		o.TransportIDs = append(o.TransportIDs, t)
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
	if f.QueueDepth < 1 {
		errs = append(errs, fmt.Errorf("-q %d, want at least 1: %w", f.QueueDepth, ErrOptions))
	}
	if len(errs) == 0 {
		errs = append(errs, o.Validate())
	}
	return o, errors.Join(errs...)
}

// MainNVMf is `sluice perf nvmf ARGS...` whole: it parses args, runs, prints
// progress on stderr and the report on stdout (text, or JSON with --json),
// and returns the exit code: 0, 1 when the run failed (a controller out of
// reach, verify mismatch, failed IOs), 2 for bad flags.
func MainNVMf(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice perf nvmf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f NVMfFlags
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice perf nvmf: unexpected arguments %q (quote the -r transport ID)\n", fs.Args())
		return 2
	}
	o, err := f.Options()
	if err != nil {
		fmt.Fprintf(stderr, "sluice perf nvmf: %v\n", err)
		return 2
	}
	o.Progress = stderr
	if f.Verbose {
		o.Log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	rep, err := RunNVMf(ctx, o)
	if rep != nil {
		if f.JSON {
			rep.WriteJSON(stdout)
		} else {
			rep.WriteText(stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice perf nvmf: %v\n", err)
		return 1
	}
	return 0
}
