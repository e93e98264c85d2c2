package perf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/drivers/nvmf/host/hosttest"
)

func fakeTRID(ft *hosttest.Target) host.TransportID {
	addr, port, nqn := ft.Addr()
	return host.TransportID{TrType: "tcp", TrAddr: addr, TrSvcID: port, SubNQN: nqn}
}

// TestRunNVMfFake: every workload runs against the fake target (the host's
// test controller, never a figure) and reports a row per qpair user; verify
// checks every block it reads.
func TestRunNVMfFake(t *testing.T) {
	ft := hosttest.New(t)
	ft.Blocks = 8192
	ft.Start()
	for _, w := range Workloads {
		t.Run(string(w), func(t *testing.T) {
			rep, err := RunNVMf(t.Context(), NVMfOptions{TransportIDs: []host.TransportID{fakeTRID(ft)}, Workload: w,
				QueueDepth: 8, IOSize: 4096, Duration: 300 * time.Millisecond, Cores: []int{0}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Qpairs) != 1 || rep.Qpairs[0].Bdev != "Nvme0n1" || rep.Total.IOs == 0 || rep.Errors != 0 {
				t.Fatalf("report %+v", rep)
			}
			l := rep.Total.Latency
			if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.P9999 && l.P9999 <= l.Max) {
				t.Errorf("latency not ordered: %+v", l)
			}
		})
	}
}

// TestMainNVMf: the command line, its report shapes and its exit codes.
func TestMainNVMf(t *testing.T) {
	ft := hosttest.New(t)
	ft.Start()
	trid := fakeTRID(ft).String()
	var out, errOut bytes.Buffer
	code := MainNVMf(context.Background(), []string{"-r", trid, "-q", "4", "-o", "4k", "-w", "verify", "-t", "0.3", "-m", "0", "--json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep NVMfReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Total.IOs == 0 {
		t.Fatalf("--json output %q: %v", out.String(), err)
	}
	out.Reset()
	errOut.Reset()
	if code := MainNVMf(context.Background(), []string{"-r", trid, "-t", "0.3", "-m", "0"}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "p99.99") || !strings.Contains(out.String(), "Nvme0n1: "+trid) {
		t.Errorf("text report (exit %d):\n%s\n%s", code, out.String(), errOut.String())
	}
	errOut.Reset()
	if code := MainNVMf(context.Background(), []string{"-r", "trtype:rdma traddr:x", "-q", "0", "-w", "bogus"}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "trtype") || !strings.Contains(errOut.String(), "-q 0") {
		t.Errorf("bad flags: exit %d, %s", code, errOut.String())
	}
	ft.Stop()
	errOut.Reset()
	if code := MainNVMf(context.Background(), []string{"-r", trid, "-t", "0.3", "-m", "0"}, &out, &errOut); code != 1 {
		t.Errorf("target down: exit %d, want 1: %s", code, errOut.String())
	}
}

// TestRunNVMfVerifyState: --verify-state over NVMe/TCP as over a bdev: a
// run saves what it wrote, the next reads every recorded block back first;
// it needs -w verify.
func TestRunNVMfVerifyState(t *testing.T) {
	ft := hosttest.New(t)
	ft.Blocks = 4096
	ft.Start()
	state := filepath.Join(t.TempDir(), "state")
	o := NVMfOptions{TransportIDs: []host.TransportID{fakeTRID(ft)}, Workload: WorkloadVerify, QueueDepth: 8,
		IOSize: 4096, Duration: 300 * time.Millisecond, Cores: []int{0}, VerifyState: state}
	rep, err := RunNVMf(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.VerifyState; s == nil || s.Loaded || !s.Saved || s.SavedBlocks == 0 {
		t.Fatalf("first run: %+v", s)
	}
	saved := rep.VerifyState.SavedBlocks
	rep, err = RunNVMf(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.VerifyState; !s.Loaded || !s.LoadedClean || s.CheckedBlocks != saved || s.Mismatches != 0 || !s.Saved {
		t.Fatalf("second run read back %+v, want all %d saved blocks", s, saved)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "verify-state "+state) {
		t.Errorf("text report lacks the verify-state line:\n%s", text.String())
	}
	o.Workload = WorkloadRandWrite
	if _, err := RunNVMf(t.Context(), o); !errors.Is(err, ErrOptions) {
		t.Errorf("--verify-state with randwrite: %v, want ErrOptions", err)
	}
}
