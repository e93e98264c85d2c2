package perf

import (
	"flag"
	"fmt"
	"testing"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/drivers/uring"
	"github.com/sluice-storage/sluice/services/bdev"
)

var (
	uringFile  = flag.String("uring-file", "", "file for BenchmarkRunBdevURing (a filled 1 GiB file; the benchmark skips without one)")
	uringCores = flag.String("uring-cores", "", "-m for BenchmarkRunBdevURing (default: the first allowed CPU)")
)

// BenchmarkRunBdevURing is the engine on a uring bdev over -uring-file,
// 4 KiB random reads, to set beside fio --ioengine=io_uring on the same
// file, depth and block size:
//
//	go test ./perf -run XXX -bench RunBdevURing -benchtime=1x -uring-file /var/tmp/disk.img
func BenchmarkRunBdevURing(b *testing.B) {
	if *uringFile == "" {
		b.Skip("no -uring-file")
	}
	top := &conf.Topology{Bdevs: []conf.Bdev{{Name: "Uring0", Driver: conf.DriverUring, BlockSize: 4096,
		Size: 1 << 30, Blocks: 1 << 18, Path: *uringFile}}}
	var cores []int
	if *uringCores != "" {
		var err error
		if cores, err = ParseCores(*uringCores); err != nil {
			b.Fatal(err)
		}
	}
	for _, fixed := range []bool{true, false} {
		reg := func(r *bdev.Registry) error {
			return r.RegisterDriver(uring.Name, uring.Driver{NoFixedBuffers: !fixed})
		}
		for _, qd := range []int{1, 32, 128} {
			b.Run(fmt.Sprintf("fixed=%t/qd%d", fixed, qd), func(b *testing.B) {
				runBench(b, BdevOptions{Topology: top, QueueDepth: qd, Duration: benchSeconds * 2, Cores: cores, Register: reg})
			})
		}
	}
}
