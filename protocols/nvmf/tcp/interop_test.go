package tcp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/internal/guest"
	"github.com/sluice-storage/sluice/protocols/nvmf"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Interop with the Linux kernel's NVMe/TCP host and nvme-cli in a QEMU guest
// (internal/guest): the proof that a host we did not write uses the target as any other.
// The guest reaches the host's 127.0.0.1 as 10.0.2.2.

const (
	guestHostAddr = "10.0.2.2"
	interopBlocks = 262144 // 128 MiB of 512-byte blocks: the 64 MiB pattern and room
	interopWait   = 4 * time.Minute
)

// markers is a console writer that logs each line and closes a channel the first time a
// line contains its marker.
type markers struct {
	log io.Writer
	mu  sync.Mutex // lock: the pending markers; console lines arrive on QEMU's reader goroutine (test only)
	ch  map[string]chan struct{}
	buf strings.Builder
}

func newMarkers(t *testing.T, names ...string) *markers {
	m := &markers{log: guest.ConsoleLog(t), ch: map[string]chan struct{}{}}
	for _, n := range names {
		m.ch[n] = make(chan struct{})
	}
	return m
}

func (m *markers) Write(p []byte) (int, error) {
	m.log.Write(p)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf.Write(p)
	text := m.buf.String()
	for name, ch := range m.ch {
		if strings.Contains(text, name) {
			close(ch)
			delete(m.ch, name)
		}
	}
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		m.buf.Reset()
		m.buf.WriteString(text[i+1:])
	}
	return len(p), nil
}

// wait waits for marker name or fails the test.
func (m *markers) wait(t *testing.T, g *guest.Guest, name string) {
	t.Helper()
	m.mu.Lock()
	ch, ok := m.ch[name]
	m.mu.Unlock()
	if !ok {
		return // seen already
	}
	select {
	case <-ch:
	case <-g.Done():
		res, err := g.Wait()
		t.Fatalf("guest ended before %q: %v, exit %d", name, err, res.ExitCode)
	case <-time.After(interopWait):
		t.Fatalf("no %q from the guest within %v", name, interopWait)
	}
}

func guestOptions(t *testing.T, console io.Writer, args ...string) guest.Options {
	return guest.Options{
		Agent:     "testdata/interop.sh",
		Args:      args,
		Packages:  []string{"nvme-cli", "libnvme1"},
		Binaries:  []string{"dd", "blkdiscard"},
		Modules:   []string{"nvme-tcp"},
		MemoryMiB: 768,
		Timeout:   interopWait,
		Console:   console,
	}
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("guest output lacks %q", w)
		}
	}
}

// TestInteropLinux: discovery, connect, identify and logs through nvme-cli, 64 MiB of a
// pattern written at three block sizes and read back, flush, discard, write zeroes, and a
// clean disconnect, against the target in this process. The target checks its side after.
func TestInteropLinux(t *testing.T) {
	env := guest.Require(t)
	tt := newTestTarget(t, targetConfig{blocks: interopBlocks})
	if err := tt.target.AddListener("discovery", tt.listen); err != nil {
		t.Fatal(err)
	}
	m := newMarkers(t)
	res, err := env.Run(t.Context(), guestOptions(t, m, "full", guestHostAddr, tt.listen.TrSvcID, testNQN))
	if err != nil {
		t.Fatalf("guest: %v", err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("agent exit %d", res.ExitCode)
	}
	wantLines(t, res.Output, "CONNECTED", "DATA-OK", "FLUSH-OK", "DISCARD-OK", "WRITE-ZEROES-OK",
		"DISCONNECT-OK", "INTEROP-DONE",
		// nvme-cli's own words: discovery, id-ctrl, id-ns, list, smart-log, get-feature.
		"subnqn:  "+testNQN, "treq:    not specified, sq flow control disable supported",
		"sn        : SLUICE0001", "mdts      : 5", "ioccsz    : 516", "nsze    : 0x40000", "nmic    : 0x1",
		"Sluice NVMe-oF Controller", "Data Units Written", "get-feature:0x07 (Number of Queues)",
		"get-feature:0x0f (Keep Alive Timer), Current value:0x00002710")
	s, _ := tt.target.Subsystem(testNQN)
	info := s.Info()
	if info.Stats.BytesWritten < 64<<20 || info.Stats.BytesRead < 64<<20 {
		t.Errorf("target counted %d bytes written and %d read, want at least 64 MiB each",
			info.Stats.BytesWritten, info.Stats.BytesRead)
	}
	if n := len(s.Controllers()); n != 0 {
		t.Errorf("%d controllers left after nvme disconnect, want 0", n)
	}
}

// TestInteropDigestsReconnect: header and data digests on and SQ flow control off (reads
// complete by C2HData SUCCESS), and the host reconnecting after the target process is killed
// and started again on the same port.
func TestInteropDigestsReconnect(t *testing.T) {
	env := guest.Require(t)
	port := freePort(t)
	child := startTargetProcess(t, port, false)
	m := newMarkers(t, "RESTART-NOW", "RECONNECT-OK")
	g, err := env.Start(t.Context(), guestOptions(t, m, "restart", guestHostAddr, port, testNQN,
		"--hdr-digest", "--data-digest", "--disable-sqflow", "--reconnect-delay=1", "--ctrl-loss-tmo=60"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	m.wait(t, g, "RESTART-NOW")
	child.kill(t)
	startTargetProcess(t, port, false)
	if err := g.Send("target-restarted\n"); err != nil {
		t.Fatal(err)
	}
	m.wait(t, g, "RECONNECT-OK")
	res, err := g.Wait()
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("guest: %v, exit %d", err, res.ExitCode)
	}
	wantLines(t, res.Output, "CONNECTED", "RESTARTED target-restarted", "INTEROP-DONE")
}

// TestInteropNamespaceHotplug: the kernel host sees a namespace added at runtime appear as a
// block device and, when its bdev is deleted (SPDK's hot remove), disappear, both through the
// Namespace Attribute Changed event alone; the other namespace keeps working.
func TestInteropNamespaceHotplug(t *testing.T) {
	env := guest.Require(t)
	tt := newTestTarget(t, targetConfig{})
	if _, err := tt.reg.Create(bdev.Spec{Name: "Malloc1", Driver: "malloc", BlockSize: 512, Blocks: 16384}); err != nil {
		t.Fatal(err)
	}
	m := newMarkers(t, "ADD-NOW", "NS2-DATA-OK", "REMOVE-NOW", "NS2-GONE")
	g, err := env.Start(t.Context(), guestOptions(t, m, "hotplug", guestHostAddr, tt.listen.TrSvcID, testNQN))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	m.wait(t, g, "ADD-NOW")
	if _, err := tt.target.AddNamespace(testNQN, nvmf.NamespaceConfig{Bdev: "Malloc1", NSID: 2}); err != nil {
		t.Fatal(err)
	}
	if err := g.Send("added\n"); err != nil {
		t.Fatal(err)
	}
	m.wait(t, g, "REMOVE-NOW")
	if err := tt.reg.Delete("Malloc1"); err != nil {
		t.Fatalf("delete the bdev namespace 2 serves: %v", err)
	}
	if err := g.Send("deleted\n"); err != nil {
		t.Fatal(err)
	}
	m.wait(t, g, "NS2-GONE")
	res, err := g.Wait()
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("guest: %v, exit %d", err, res.ExitCode)
	}
	wantLines(t, res.Output, "NS2-APPEARED", "NS2-DATA-OK", "NS2-GONE", "NS1-OK", "INTEROP-DONE")
}

// TestInteropTargetKilled: the target process dies in the middle of a 48 MiB direct write;
// the host must report an error to the writer, never success.
func TestInteropTargetKilled(t *testing.T) {
	env := guest.Require(t)
	port := freePort(t)
	child := startTargetProcess(t, port, true)
	m := newMarkers(t, "WRITING", "DD-EXIT")
	g, err := env.Start(t.Context(), guestOptions(t, m, "kill", guestHostAddr, port, testNQN,
		"--reconnect-delay=1", "--ctrl-loss-tmo=3"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	m.wait(t, g, "WRITING")
	child.waitLine(t, "WRITES-SEEN") // the write is under way at the target
	child.kill(t)
	m.wait(t, g, "DD-EXIT")
	res, err := g.Wait()
	if err != nil {
		t.Fatalf("guest: %v", err)
	}
	if strings.Contains(res.Output, "DD-EXIT 0") || !strings.Contains(res.Output, "DD-EXIT ") {
		t.Fatalf("dd did not fail after the target was killed mid-write")
	}
	wantLines(t, res.Output, "Input/output error")
}

// targetProcess is this test binary re-run as a standalone target (TestHelperTargetProcess),
// so a test can kill it as a crash would.
type targetProcess struct {
	cmd   *exec.Cmd
	lines chan string
}

// startTargetProcess runs a target on 0.0.0.0:port with a 128 MiB malloc namespace and
// waits until it listens; watchWrites makes it print WRITES-SEEN once it has written data.
func startTargetProcess(t *testing.T, port string, watchWrites bool) *targetProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperTargetProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "SLUICE_NVMF_TARGET_PORT="+port, fmt.Sprintf("SLUICE_NVMF_WATCH_WRITES=%v", watchWrites))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &targetProcess{cmd: cmd, lines: make(chan string, 64)}
	t.Cleanup(func() { p.kill(t) })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	p.waitLine(t, "TARGET-READY")
	return p
}

func (p *targetProcess) waitLine(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(interopWait)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("target process exited before %q", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("target process: no %q within %v", want, interopWait)
		}
	}
}

func (p *targetProcess) kill(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// TestHelperTargetProcess is not a test: run by startTargetProcess with
// SLUICE_NVMF_TARGET_PORT set, it serves a target until killed.
func TestHelperTargetProcess(t *testing.T) {
	port := os.Getenv("SLUICE_NVMF_TARGET_PORT")
	if port == "" {
		t.Skip("helper process for the interop tests")
	}
	tt := newTestTargetOn(t, targetConfig{blocks: interopBlocks}, "127.0.0.1", port)
	fmt.Println("TARGET-READY")
	s, _ := tt.target.Subsystem(testNQN)
	ctx, cancel := context.WithTimeout(context.Background(), 2*interopWait)
	defer cancel()
	watch := os.Getenv("SLUICE_NVMF_WATCH_WRITES") == "true"
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if watch && s.Info().Stats.BytesWritten > 0 {
				fmt.Println("WRITES-SEEN")
				watch = false
			}
		}
	}
}
