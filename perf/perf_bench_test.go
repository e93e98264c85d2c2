package perf

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/drivers/null"
	"github.com/sluice-storage/sluice/services/bdev"
)

// benchSeconds is how long each benchmark run drives its bdev; run with
// -benchtime=1x (each iteration is one whole run).
const benchSeconds = 2 * time.Second

// BenchmarkRunBdev is the engine on null and malloc, one core, 4 KiB
// random reads at queue depths 32 and 128, as the table asks:
// go test ./perf -run XXX -bench RunBdev -benchtime=1x
func BenchmarkRunBdev(b *testing.B) {
	top := topology(b, `
bdevs:
  - name: Null0
    driver: "null"
    size: 1GiB
  - name: Malloc0
    driver: malloc
    block_size: 4096
    size: 1GiB
`)
	untouched := func(reg *bdev.Registry) error {
		if err := reg.RegisterDriver(null.Name, null.Driver{ReadsUntouched: true}); err != nil {
			return err
		}
		return reg.RegisterDriver(malloc.Name, malloc.Driver{})
	}
	for _, tc := range []struct {
		name, bdev string
		reg        func(*bdev.Registry) error
	}{{"null", "Null0", register(nil)}, {"null-untouched", "Null0", untouched}, {"malloc", "Malloc0", register(nil)}} {
		for _, qd := range []int{32, 128} {
			for _, sample := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/qd%d/sample%d", tc.name, qd, sample), func(b *testing.B) {
					runBench(b, BdevOptions{Topology: top, Bdev: tc.bdev, QueueDepth: qd, Duration: benchSeconds,
						Register: tc.reg, LatencySampleEvery: sample})
				})
			}
		}
	}
}

func runBench(b *testing.B, o BdevOptions) {
	var iops, p50 float64
	for i := 0; i < b.N; i++ {
		rep, err := RunBdev(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		iops += rep.Total.IOPS
		p50 += rep.Total.Latency.P50
	}
	b.ReportMetric(iops/float64(b.N), "IOPS")
	b.ReportMetric(1e9/(iops/float64(b.N)), "ns/IO")
	b.ReportMetric(p50/float64(b.N), "p50-us")
}
