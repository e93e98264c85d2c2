package tcp

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/perf"
	"github.com/sluice-storage/sluice/reactors"
)

// BenchmarkTarget measures the target with `sluice perf nvmf`'s engine (our NVMe/TCP host,
// drivers/nvmf) over loopback: the target busy-polls on the second allowed CPU with a null
// namespace (as SPDK's reference figures were taken), the host on the first. Each sub-benchmark
// is one run of SLUICE_BENCH_SECONDS (default 5) seconds whatever b.N is, so run it with
// -benchtime 1x and read the metrics; perf/nvmf-target.sh repeats it and prints medians.
//
//	go test ./protocols/nvmf/tcp -run '^$' -bench Target -benchtime 1x
func BenchmarkTarget(b *testing.B) {
	cores, err := reactors.AllowedCores()
	if err != nil || len(cores) < 2 {
		b.Skipf("needs two CPUs, have %v (%v)", cores, err)
	}
	seconds := 5.0
	if s, err := strconv.ParseFloat(os.Getenv("SLUICE_BENCH_SECONDS"), 64); err == nil && s > 0 {
		seconds = s
	}
	tt := newTestTarget(b, targetConfig{reactors: 1, driver: "null", blocks: 1 << 21, mode: reactors.ModePoll,
		pinned: []int{cores[1]}})
	trid := host.TransportID{TrType: "tcp", TrAddr: tt.listen.TrAddr, TrSvcID: tt.listen.TrSvcID, SubNQN: testNQN}
	for _, c := range []struct {
		w        perf.Workload
		size     int
		qd       int
		noSQFlow bool // the host turns SQ flow control off: reads end with C2HData SUCCESS
	}{
		{perf.WorkloadRandRead, 4096, 1, false}, {perf.WorkloadRandRead, 4096, 32, false},
		{perf.WorkloadRandRead, 4096, 128, false}, {perf.WorkloadRandRead, 4096, 32, true},
		{perf.WorkloadRandWrite, 4096, 1, false}, {perf.WorkloadRandWrite, 4096, 32, false},
		{perf.WorkloadRandWrite, 4096, 128, false},
		{perf.WorkloadRead, 128 << 10, 32, false}, {perf.WorkloadWrite, 128 << 10, 32, false},
	} {
		name := fmt.Sprintf("%s-%dk-qd%d", c.w, c.size>>10, c.qd)
		if c.noSQFlow {
			name += "-success"
		}
		b.Run(name, func(b *testing.B) {
			rep, err := perf.RunNVMf(b.Context(), perf.NVMfOptions{TransportIDs: []host.TransportID{trid},
				Workload: c.w, QueueDepth: c.qd, IOSize: c.size, Cores: []int{cores[0]},
				Host:     host.ControllerOptions{DisableSQFlow: c.noSQFlow},
				Duration: time.Duration(seconds * float64(time.Second))})
			if err != nil {
				b.Fatal(err)
			}
			if rep.Errors != 0 {
				b.Fatalf("%d I/O errors", rep.Errors)
			}
			if testing.Verbose() {
				gs, terms := tt.tr.Stats()
				b.Logf("target: %+v, terminations %d", gs, terms)
			}
			l := rep.Total.Latency
			b.ReportMetric(rep.Total.IOPS, "IOPS")
			b.ReportMetric(rep.Total.MiBps, "MiB/s")
			b.ReportMetric(l.Avg, "avg-us")
			b.ReportMetric(l.P50, "p50-us")
			b.ReportMetric(l.P99, "p99-us")
			b.ReportMetric(0, "ns/op")
		})
	}
}
