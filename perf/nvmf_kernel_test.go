package perf

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-storage/sluice/drivers/nvmf/host/hosttest"
)

// TestMainNVMfKernelTarget runs `sluice perf nvmf` against the Linux
// kernel's nvmet-tcp in the guest: verify at queue depths 1 and 16 and IO
// sizes 4 KiB and 64 KiB (every block read back carries its LBA, generation
// and hash), digests on for one of them, and a randread. Under TCG the
// figures mean nothing (ARCHITECTURE.md); the test checks the data and the
// report, never a speed.
func TestMainNVMfKernelTarget(t *testing.T) {
	kt := hosttest.StartKernelTarget(t)
	trid := fmt.Sprintf("trtype:tcp adrfam:ipv4 traddr:127.0.0.1 trsvcid:%d subnqn:%s", kt.Port(), hosttest.KernelTargetNQN)
	for _, args := range [][]string{
		{"-w", "verify", "-q", "1", "-o", "4096", "-t", "2"},
		{"-w", "verify", "-q", "16", "-o", "65536", "-t", "2"},
		{"-w", "verify", "-q", "8", "-o", "4096", "-t", "2", "-H", "-I"},
		{"-w", "randread", "-q", "32", "-o", "4096", "-t", "2"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := MainNVMf(context.Background(), append([]string{"-r", trid, "-m", "0"}, args...), &out, &errOut)
			t.Logf("report:\n%s", out.String())
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			if !strings.Contains(out.String(), "Nvme0n1") || !strings.Contains(out.String(), " 0\n") {
				t.Errorf("report lacks the namespace row or shows errors")
			}
		})
	}
}
