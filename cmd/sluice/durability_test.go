package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	iouring "github.com/sluice-storage/sluice/internal/uring"
	"github.com/sluice-storage/sluice/perf"
)

// Durability end to end: `sluice perf bdev -w verify --verify-state` on a
// uring bdev over a file, stopped by SIGTERM or killed by SIGKILL, then
// started again to read back and check every block the state records.

const (
	durabilityBlockSize = 4096
	// durabilityBlocks: 16 MiB, 4096 slots of one block for -q 16: a second
	// of writes touches nearly every one.
	durabilityBlocks = 4096
	// genOffset is where perf's verify block format keeps the generation
	// (perf/verify.go).
	genOffset = 16
)

var progressLine = regexp.MustCompile(`^ *\d+\.\d s +\d+ IOPS`)

// directIODir returns a directory whose file system takes O_DIRECT: the
// test's temporary directory, or one under /var/tmp when that is tmpfs.
func directIODir(t *testing.T) string {
	t.Helper()
	if err := iouring.Supported(); err != nil {
		t.Skip(err)
	}
	tmp := t.TempDir()
	if directIOWorks(tmp) {
		return tmp
	}
	dir, err := os.MkdirTemp("/var/tmp", "sluice-durability-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if !directIOWorks(dir) {
		t.Skipf("neither %s nor %s takes O_DIRECT (tmpfs does not)", tmp, dir)
	}
	return dir
}

func directIOWorks(dir string) bool {
	probe := filepath.Join(dir, "odirect-probe")
	f, err := os.OpenFile(probe, os.O_CREATE|os.O_RDWR|syscall.O_DIRECT, 0o600)
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(probe)
	return true
}

// durabilitySetup writes a topology with one uring bdev on a file in a
// direct-I/O directory; it returns the topology, the disk and a state path.
func durabilitySetup(t *testing.T) (topo, disk, state string) {
	dir := directIODir(t)
	disk = filepath.Join(dir, "disk.img")
	topo, _ = topology(t, dir, fmt.Sprintf("bdevs:\n  - name: Uring0\n    driver: uring\n    block_size: %d\n"+
		"    blocks: %d\n    path: %s\n", durabilityBlockSize, durabilityBlocks, disk))
	return topo, disk, filepath.Join(dir, "state")
}

// perfRun is one `sluice perf bdev` process.
type perfRun struct {
	cmd      *exec.Cmd
	stdout   bytes.Buffer
	stderr   strings.Builder // complete once exited is closed
	progress chan struct{}   // closed at the first progress line
	exited   chan struct{}
	started  time.Time
}

// startPerf runs the verify workload for seconds with the state file.
func startPerf(t *testing.T, topo, state, seconds string) *perfRun {
	t.Helper()
	return startPerfCmd(t, "bdev", "-c", topo, "-b", "Uring0", "-w", "verify", "-q", "16", "-o", "4096",
		"-t", seconds, "--verify-state", state, "--json")
}

// startPerfCmd starts `sluice perf ARGS…`: stdout is kept for the report,
// stderr's lines are kept and the first progress line (writes are being
// acknowledged) closes progress; the test's end kills it if still running.
func startPerfCmd(t *testing.T, args ...string) *perfRun {
	t.Helper()
	p := &perfRun{progress: make(chan struct{}), exited: make(chan struct{}), started: time.Now()}
	p.cmd = exec.Command(binary, append([]string{"perf"}, args...)...)
	p.cmd.Stdout = &p.stdout
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			p.stderr.WriteString(sc.Text() + "\n")
			if !seen && progressLine.MatchString(sc.Text()) {
				seen = true
				close(p.progress)
			}
		}
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// signalAfterProgress waits for the first progress line (writes are being
// acknowledged), sends sig and waits for the exit.
func (p *perfRun) signalAfterProgress(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-p.progress:
	case <-p.exited:
		t.Fatalf("perf exited before its first progress line (%v):\n%s", p.cmd.ProcessState, p.stderr.String())
	case <-time.After(waitTimeout):
		t.Fatalf("no progress line within %v", waitTimeout)
	}
	p.cmd.Process.Signal(sig)
	p.wait(t)
}

func (p *perfRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(waitTimeout):
		t.Fatalf("perf did not exit within %v", waitTimeout)
	}
}

// report is the process's --json report; it fails the test unless the exit
// code is wantCode.
func (p *perfRun) report(t *testing.T, wantCode int) *perf.Report {
	t.Helper()
	p.wait(t)
	if code := p.cmd.ProcessState.ExitCode(); code != wantCode {
		t.Fatalf("perf exit %d (%v), want %d:\n%s%s", code, p.cmd.ProcessState, wantCode, p.stdout.String(), p.stderr.String())
	}
	var rep perf.Report
	if err := json.Unmarshal(p.stdout.Bytes(), &rep); err != nil || rep.VerifyState == nil {
		t.Fatalf("stdout is not a report with verify_state: %v\n%s", err, p.stdout.String())
	}
	return &rep
}

// runPerf runs the workload for seconds to its end.
func runPerf(t *testing.T, topo, state, seconds string, wantCode int) (*perf.Report, *perfRun) {
	t.Helper()
	p := startPerf(t, topo, state, seconds)
	return p.report(t, wantCode), p
}

// readBackPassed fails unless the run read back every recorded block of a
// save of the given kind with no mismatch; it logs the figures.
func readBackPassed(t *testing.T, what string, rep *perf.Report, clean bool) *perf.StateReport {
	t.Helper()
	s := rep.VerifyState
	if !s.Loaded || s.LoadedClean != clean || s.CheckedBlocks == 0 || s.CheckedBlocks != s.RecordedBlocks ||
		s.Mismatches != 0 || !s.Saved {
		t.Fatalf("%s: read-back %+v; want every recorded block of a clean=%v save checked, none mismatched, saved",
			what, s, clean)
	}
	t.Logf("%s: read back %d blocks (clean save %v) in %.3f s: 0 mismatches, %d newer, %d pending; then %d IOs",
		what, s.CheckedBlocks, clean, s.ReadBackSeconds, s.NewerBlocks, s.PendingBlocks, rep.Total.IOs)
	return s
}

func loadState(t *testing.T, path string) *perf.VerifyState {
	t.Helper()
	st, err := perf.LoadVerifyState(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// leUint64 reads a little-endian uint64 (encoding/binary's name is taken
// by the binary under test).
func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// xorByte flips bits of the byte at off in the disk file, written through
// the page cache and synced; the next O_DIRECT read writes it back first.
func xorByte(t *testing.T, disk string, off int64, mask byte) {
	t.Helper()
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= mask
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestDurabilitySIGTERM: SIGTERM mid-run saves a clean state after a flush;
// a restart reads back every recorded block exactly; a byte flipped on the
// file is reported with its LBA, and the state is left as it was.
func TestDurabilitySIGTERM(t *testing.T) {
	topo, disk, state := durabilitySetup(t)
	p := startPerf(t, topo, state, "30")
	p.signalAfterProgress(t, syscall.SIGTERM)
	rep := p.report(t, 0)
	if s := rep.VerifyState; s.Loaded || !s.Saved || s.SavedBlocks == 0 || rep.Total.IOs == 0 {
		t.Fatalf("first run: %+v, %d IOs; want a save of the blocks it wrote", s, rep.Total.IOs)
	}
	t.Logf("SIGTERM after %.1f s: %d IOs, saved %d blocks in %d extents", time.Since(p.started).Seconds(),
		rep.Total.IOs, rep.VerifyState.SavedBlocks, rep.VerifyState.SavedExtents)
	if st := loadState(t, state); !st.Clean || st.RecordedBlocks() != rep.VerifyState.SavedBlocks {
		t.Fatalf("state after SIGTERM: clean %v, %d blocks; want clean, %d", st.Clean, st.RecordedBlocks(),
			rep.VerifyState.SavedBlocks)
	}

	rep, _ = runPerf(t, topo, state, "0.5", 0)
	readBackPassed(t, "restart after SIGTERM", rep, true)

	st := loadState(t, state)
	lba := st.Extents[len(st.Extents)/2].LBA
	off := int64(lba)*durabilityBlockSize + 2048 // in the payload: the hash catches it
	xorByte(t, disk, off, 0x5a)
	before, _ := os.ReadFile(state)
	rep, p = runPerf(t, topo, state, "0.5", 1)
	s := rep.VerifyState
	if s.Mismatches != 1 || len(s.FirstMismatches) != 1 || s.FirstMismatches[0].LBA != lba ||
		s.FirstMismatches[0].Field != "hash" || s.Saved || len(rep.Cores) != 0 {
		t.Fatalf("flipped byte at LBA %d: %+v; want one hash mismatch there, no workload, no save", lba, s)
	}
	if want := fmt.Sprintf("LBA %d: hash", lba); !strings.Contains(p.stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, p.stderr.String())
	}
	if after, _ := os.ReadFile(state); !bytes.Equal(before, after) {
		t.Error("a failed read-back rewrote the state file")
	}
	t.Logf("flipped byte at LBA %d reported: %s", lba, s.FirstMismatches[0].String())

	xorByte(t, disk, off, 0x5a) // repaired, the same state reads back again
	rep, _ = runPerf(t, topo, state, "0.5", 0)
	readBackPassed(t, "after the repair", rep, true)
}

// TestDurabilityKill9: SIGKILL loses the state's final save; the file keeps
// the dirty save from the run's start, whose generations are lower bounds.
// A restart accepts blocks the killed run wrote later (newer), and rejects
// a block rolled back to an older generation.
func TestDurabilityKill9(t *testing.T) {
	topo, disk, state := durabilitySetup(t)
	p := startPerf(t, topo, state, "30")
	p.signalAfterProgress(t, syscall.SIGTERM)
	p.report(t, 0)
	clean := loadState(t, state)
	old, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}

	p = startPerf(t, topo, state, "30")
	p.signalAfterProgress(t, syscall.SIGKILL)
	if ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("after SIGKILL: %v", p.cmd.ProcessState)
	}
	dirty := loadState(t, state)
	if dirty.Clean || !reflect.DeepEqual(dirty.Extents, clean.Extents) {
		t.Fatalf("state after kill -9: clean %v, %d extents; want the dirty save of the %d extents read back",
			dirty.Clean, len(dirty.Extents), len(clean.Extents))
	}

	rep, _ := runPerf(t, topo, state, "0.5", 0)
	if s := readBackPassed(t, "restart after kill -9", rep, false); s.NewerBlocks == 0 {
		t.Errorf("no block newer than the dirty save, though the killed run wrote for a second: %+v", s)
	}

	p = startPerf(t, topo, state, "30")
	p.signalAfterProgress(t, syscall.SIGKILL)
	dirty = loadState(t, state)
	// Roll one block back to what the first run left there: a whole,
	// valid verify block, but older than the dirty save records.
	var lba uint64
	found := false
	for _, e := range dirty.Extents {
		at := e.LBA * durabilityBlockSize
		if g := leUint64(old[at+genOffset:]); g != 0 && g < uint64(e.Generation) {
			lba, found = e.LBA, true
			break
		}
	}
	if !found {
		t.Fatal("no recorded block was rewritten since the first run")
	}
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := int64(lba) * durabilityBlockSize
	if _, err := f.WriteAt(old[at:at+durabilityBlockSize], at); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	rep, p = runPerf(t, topo, state, "0.5", 1)
	s := rep.VerifyState
	if s.Mismatches != 1 || s.FirstMismatches[0].LBA != lba || s.FirstMismatches[0].Field != "generation" ||
		!s.FirstMismatches[0].AtLeast || !strings.Contains(p.stderr.String(), "older than the recorded") {
		t.Fatalf("LBA %d rolled back: %+v\n%s\nwant one generation mismatch there under the dirty rule", lba, s,
			p.stderr.String())
	}
	t.Logf("rolled-back LBA %d reported: %s", lba, s.FirstMismatches[0].String())
}
