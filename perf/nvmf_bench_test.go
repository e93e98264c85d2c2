package perf

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/protocols/nvmf"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// startOwnTarget runs our NVMe/TCP target on core (busy polling when poll)
// with a 64 MiB malloc namespace and returns its transport ID; it stops when
// tb ends.
func startOwnTarget(tb testing.TB, core int, mode reactors.Mode) host.TransportID {
	tb.Helper()
	set, err := reactors.Start([]int{core}, reactors.Options{Mode: mode, NoPin: mode != reactors.ModePoll})
	if err != nil {
		tb.Fatal(err)
	}
	reg, err := bdev.NewRegistry(set, bdev.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	reg.RegisterDriver(malloc.Name, malloc.Driver{})
	if _, err := reg.Create(bdev.Spec{Name: "Malloc0", Driver: malloc.Name, BlockSize: 512, Blocks: 131072}); err != nil {
		tb.Fatal(err)
	}
	tg, err := nvmf.NewTarget(nvmf.Options{Set: set, Bdevs: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		tg.Close(time.Now().Add(20 * time.Second))
		reg.Close()
		set.Stop(20 * time.Second)
	})
	if _, err := tcp.New(tg, tcp.Options{}); err != nil {
		tb.Fatal(err)
	}
	const nqn = "nqn.2016-06.io.sluice:bench"
	if _, err := tg.CreateSubsystem(nvmf.SubsystemConfig{NQN: nqn, AllowAnyHost: true}); err != nil {
		tb.Fatal(err)
	}
	if _, err := tg.AddNamespace(nqn, nvmf.NamespaceConfig{NSID: 1, Bdev: "Malloc0"}); err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	if err := tg.AddListener(nqn, nvmf.ListenAddress{TrType: "TCP", AdrFam: "IPv4", TrAddr: "127.0.0.1", TrSvcID: port}); err != nil {
		tb.Fatal(err)
	}
	return host.TransportID{TrType: "tcp", TrAddr: "127.0.0.1", TrSvcID: port, SubNQN: nqn}
}

// TestRunNVMfOwnTarget: verify through our host against our target, at
// depths 1 and 16, 4 KiB and 64 KiB, digests off and on: every block read
// back carries its LBA, generation and hash.
func TestRunNVMfOwnTarget(t *testing.T) {
	trid := startOwnTarget(t, 0, reactors.ModeAdaptive)
	for _, c := range []struct {
		qd, size int
		digests  bool
	}{{1, 4096, false}, {16, 65536, false}, {16, 4096, true}} {
		rep, err := RunNVMf(t.Context(), NVMfOptions{TransportIDs: []host.TransportID{trid}, Workload: WorkloadVerify,
			QueueDepth: c.qd, IOSize: c.size, Duration: 500 * time.Millisecond,
			Host: host.ControllerOptions{HeaderDigest: c.digests, DataDigest: c.digests}})
		if err != nil {
			t.Fatalf("verify qd %d size %d digests %v: %v", c.qd, c.size, c.digests, err)
		}
		if rep.Total.IOs == 0 || rep.Errors != 0 {
			t.Errorf("verify qd %d size %d: %+v", c.qd, c.size, rep.Total)
		}
	}
}

// BenchmarkNVMfOwnTarget measures `sluice perf nvmf` (our host) against our
// NVMe/TCP target (protocols/nvmf) over loopback, each on one pinned
// busy-polling core (target on the second allowed CPU, host on the first),
// 4 KiB randread of a 64 MiB malloc namespace at queue depths 1, 32 and 128.
// One run of -benchtime seconds per depth; run it with -benchtime=1x and
// read the IOPS and latency metrics:
//
//	go test -run XXX -bench NVMfOwnTarget -benchtime 1x ./perf/
func BenchmarkNVMfOwnTarget(b *testing.B) {
	cores, err := reactors.AllowedCores()
	if err != nil || len(cores) < 2 {
		b.Skipf("needs two CPUs, have %v (%v)", cores, err)
	}
	trid := startOwnTarget(b, cores[1], reactors.ModePoll)
	for _, qd := range []int{1, 32, 128} {
		b.Run(fmt.Sprintf("randread-4k-qd%d", qd), func(b *testing.B) {
			rep, err := RunNVMf(b.Context(), NVMfOptions{TransportIDs: []host.TransportID{trid}, Workload: WorkloadRandRead,
				QueueDepth: qd, IOSize: 4096, Duration: max(b.Elapsed(), 5*time.Second), Cores: []int{cores[0]}})
			if err != nil {
				b.Fatal(err)
			}
			l := rep.Total.Latency
			b.ReportMetric(rep.Total.IOPS, "IOPS")
			b.ReportMetric(l.Avg, "avg-us")
			b.ReportMetric(l.P50, "p50-us")
			b.ReportMetric(l.P99, "p99-us")
			b.ReportMetric(l.P9999, "p99.99-us")
			b.ReportMetric(0, "ns/op")
		})
	}
}
