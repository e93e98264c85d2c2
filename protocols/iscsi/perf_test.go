package iscsi

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/scsi"
	"github.com/sluice-storage/sluice/reactors"
)

// perfSeconds is how long each side runs: long enough for a steady
// average, short on a shared machine.
const perfSeconds = 10

// iopsAverage reads iscsi-perf's last "iops average N" figure.
var iopsAverage = regexp.MustCompile(`iops average (\d+)`)

// runPerf runs iscsi-perf on core 1 against url: 4 KiB random reads (8
// blocks of 512 bytes) at depth 32.
func runPerf(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), (perfSeconds+30)*time.Second)
	defer cancel()
	args := []string{"-c", "1", needTool(t, "iscsi-perf"), "-m", "32", "-b", "8", "-r", "-t", strconv.Itoa(perfSeconds), url}
	out, err := exec.CommandContext(ctx, "taskset", args...).CombinedOutput()
	m := iopsAverage.FindAllStringSubmatch(string(out), -1)
	if err != nil || m == nil {
		t.Fatalf("iscsi-perf %s: %v\n%s", url, err, tail(string(out), 10))
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// TestPerfAgainstTgt measures iscsi-perf's 4 KiB random reads at depth 32
// against this target (one polling reactor on core 0, a malloc LUN) and
// against Debian's tgtd (on core 0, LUN 1 a file in /dev/shm: RAM too;
// the uring driver's O_DIRECT is refused by tmpfs) side by side, and
// reports the ratio. It asserts nothing about time (STYLE: tests never do);
// run it with SLUICE_PERF=1.
func TestPerfAgainstTgt(t *testing.T) {
	if testing.Short() || os.Getenv("SLUICE_PERF") == "" {
		t.Skip("performance comparison: set SLUICE_PERF=1 (about 30 s, uses cores 0 and 1)")
	}
	// tgt first, alone on core 0; then this target, so neither shares its
	// core with the other's threads (a polling reactor never yields).
	theirs, ok := tgtPerf(t)
	tt := newTarget(t, targetOptions{reactors: 1, pinned: true, mode: reactors.ModePoll,
		blocks: 256 << 11, luns: []scsi.Config{{}}})
	ours := runPerf(t, tt.url(0, "", ""))
	if !ok {
		t.Logf("sluice: %d IOPS (tgtd not installed: Debian package tgt)", ours)
		return
	}
	t.Logf("sluice: %d IOPS; tgt 1.0.85: %d IOPS; sluice/tgt = %.2f", ours, theirs, float64(ours)/float64(theirs))
}

// tgtPerf runs tgtd on core 0 with LUN 1 a 256 MiB file in /dev/shm,
// measures it and kills it; ok false when tgtd is not installed.
func tgtPerf(t *testing.T) (iops int, ok bool) {
	tgtd, err := exec.LookPath("tgtd")
	if err != nil {
		return 0, false
	}
	img := filepath.Join("/dev/shm", fmt.Sprintf("sluice-perf-%d.img", os.Getpid()))
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(img)
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	port := 32000 + os.Getpid()%1000
	control := strconv.Itoa(port % 1000)
	cmd := exec.Command("taskset", "-c", "0", tgtd, "-f", "-C", control, "--iscsi", fmt.Sprintf("portal=127.0.0.1:%d", port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // never left running
		cmd.Wait()
	}()
	iqn := "iqn.2024-01.io.sluice:tgt-perf"
	adm := func(args ...string) {
		var err error
		var out []byte
		for try := 0; try < 50; try++ { // tgtd takes a moment to open its control socket
			out, err = exec.Command("tgtadm", append([]string{"-C", control, "--lld", "iscsi"}, args...)...).CombinedOutput()
			if err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("tgtadm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	adm("--op", "new", "--mode", "target", "--tid", "1", "-T", iqn)
	adm("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b", img)
	adm("--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")
	return runPerf(t, fmt.Sprintf("iscsi://127.0.0.1:%d/%s/1", port, iqn)), true
}
