package perf

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/drivers/uring"
	iouring "github.com/sluice-storage/sluice/internal/uring"
	"github.com/sluice-storage/sluice/services/bdev"
)

// TestVerifyURing: the verify workload end to end on a file through
// io_uring, two cores, deep queues, IOs of several blocks.
func TestVerifyURing(t *testing.T) {
	if err := iouring.Supported(); err != nil {
		t.Skip(err)
	}
	top := &conf.Topology{Bdevs: []conf.Bdev{{Name: "U", Driver: conf.DriverUring, BlockSize: 4096,
		Size: 16 << 20, Blocks: 4096, Path: filepath.Join(t.TempDir(), "disk.img")}}}
	reg := func(r *bdev.Registry) error { return r.RegisterDriver(uring.Name, uring.Driver{QueueDepth: 16}) }
	// Queue depth 64 over a ring of 16: the layer parks and retries (bdev B5).
	rep, err := RunBdev(context.Background(), BdevOptions{Topology: top, Workload: WorkloadVerify, IOSize: 16384,
		QueueDepth: 64, Duration: 300 * time.Millisecond, Cores: testCores(t), Register: reg})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, len(testCores(t)))
}

// TestRunBdevCancelled: a cancelled context ends the run at the first
// completions, with a report and no error.
func TestRunBdevCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := RunBdev(ctx, BdevOptions{Duration: time.Hour, QueueDepth: 4, Register: register(nil)})
	if err != nil || rep.Total.IOs == 0 || rep.Total.IOs > 1e6 {
		t.Fatalf("cancelled run: %v, %d IOs; want a short report", err, rep.Total.IOs)
	}
}

// TestProgress: a run of a little over a second prints one progress line.
func TestProgress(t *testing.T) {
	var progress bytes.Buffer
	if _, err := RunBdev(context.Background(), BdevOptions{Duration: 1100 * time.Millisecond, QueueDepth: 4,
		Register: register(nil), Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^ +1\.0 s +\d+ IOPS +\d+\.\d\d MiB/s\n$`).Match(progress.Bytes()) {
		t.Fatalf("progress %q, want one line at 1.0 s", progress.String())
	}
}

func FuzzCheckBlock(f *testing.F) {
	good := make([]byte, 512)
	stampBlock(good, 9, 3)
	f.Add(good, uint64(9), uint64(3))
	f.Add(make([]byte, 512), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, lba, gen uint64) {
		if len(b) < VerifyHeaderSize {
			return
		}
		field, _, _ := checkBlock(b, lba, gen) // must not panic, whatever the bytes
		if field == "" && (le.Uint64(b[offVerifyLBA:]) != lba || blockHash(b) != le.Uint64(b[offVerifyHash:])) {
			t.Fatalf("accepted a block whose LBA or hash is wrong")
		}
	})
}

func FuzzParseCores(f *testing.F) {
	for _, s := range []string{"0x3", "0,2-3", "[1]", "0-1023", "x", "", "1-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cores, err := ParseCores(s)
		if err != nil {
			return
		}
		if len(cores) == 0 {
			t.Fatalf("ParseCores(%q) accepted no cores", s)
		}
		for i, c := range cores {
			if c < 0 || c >= 64 && s[:min(2, len(s))] == "0x" || c >= conf.CoresMax || i > 0 && c <= cores[i-1] {
				t.Fatalf("ParseCores(%q) = %v: not ascending distinct ids in range", s, cores)
			}
		}
	})
}

// TestRunBdevAllocsPerIO: the engine's IO loop allocates nothing (P2, bdev
// B9): a run of millions of IOs makes about as many allocations as a run of
// a few, all of them setup and teardown.
func TestRunBdevAllocsPerIO(t *testing.T) {
	top := topology(t, testTopology)
	run := func(d time.Duration) (mallocs, ios uint64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rep, err := RunBdev(context.Background(), BdevOptions{Topology: top, Bdev: "Null0", QueueDepth: 32,
			Duration: d, Register: register(nil)})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		return after.Mallocs - before.Mallocs, rep.Total.IOs
	}
	run(10 * time.Millisecond) // warm up whatever is made once per process
	shortAllocs, shortIOs := run(10 * time.Millisecond)
	longAllocs, longIOs := run(300 * time.Millisecond)
	extraIOs := float64(longIOs) - float64(shortIOs)
	extraAllocs := float64(longAllocs) - float64(shortAllocs)
	if extraIOs < 1e4 || extraAllocs/extraIOs > 1e-3 {
		t.Fatalf("%.0f more IOs made %.0f more allocations (%d vs %d): want ~0 per IO", extraIOs, extraAllocs, longAllocs, shortAllocs)
	}
}
