package iscsi

import (
	"context"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// TestFullFeatureAllocs: in Full Feature Phase a READ costs no heap
// allocation in the target (I7): the process's mallocs over tens of
// thousands of 4 KiB reads from iscsi-perf (another process) stay at a
// handful, whatever the count of reads.
func TestFullFeatureAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("drives iscsi-perf for a few seconds: plain pass only")
	}
	tt := newTarget(t, targetOptions{blocks: 65536})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	perf := exec.CommandContext(ctx, needTool(t, "iscsi-perf"), "-m", "32", "-b", "8", "-r", "-t", "20", tt.url(0, "", ""))
	if err := perf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { perf.Process.Kill(); perf.Wait() }()
	lun := tt.srv.Node(tt.iqn).dev.LUN(0) // read-only use of atomic counters
	reads := func() uint64 { return lun.Stats().Reads.Load() }
	waitReads := func(n uint64) {
		deadline := time.Now().Add(waitTimeout)
		for reads() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d reads in %v", reads(), waitTimeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitReads(5000) // logged in, steady state
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r0 := reads()
	waitReads(r0 + 20000)
	runtime.ReadMemStats(&after)
	n := reads() - r0
	allocs := after.Mallocs - before.Mallocs
	t.Logf("%d mallocs over %d reads", allocs, n)
	if float64(allocs)/float64(n) > 0.01 {
		t.Errorf("%d mallocs over %d reads: the read path allocates", allocs, n)
	}
}
