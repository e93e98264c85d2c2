package guest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	// ErrTimeout is the cause when Options.Timeout ran out before the agent
	// ended. A parent context's end is reported as that context's error.
	ErrTimeout = errors.New("guest timed out")
	// ErrNoExit means QEMU ended without the guest's exit marker: QEMU
	// failed to start or died, or the kernel panicked (panic=-1 reboots and
	// -no-reboot makes that an exit), or /init itself failed.
	ErrNoExit = errors.New("guest ended without an exit marker")
	// ErrStopped is the cause when Guest.Stop ended the guest.
	ErrStopped = errors.New("guest stopped")
)

// Console markers printed by init.sh, each followed by the run's nonce.
const (
	markerReady = "SLUICE-GUEST-READY "
	markerExit  = "SLUICE-GUEST-EXIT "
)

const (
	// poweroffGrace is how long QEMU may take to exit after the exit marker
	// (sync and ACPI power-off take well under a second) before it is killed;
	// the agent's status is already known, so that is not an error.
	poweroffGrace = 10 * time.Second
	// qemuWaitDelay bounds how long Wait waits for QEMU's console pipe to
	// close after QEMU is killed.
	qemuWaitDelay = 5 * time.Second
	// outputSizeMax caps Result.Output: a kernel log plus a chatty agent is
	// well under 1 MiB; past the cap lines still reach Options.Console.
	outputSizeMax = 16 << 20
	// errorTailLines is how many console lines an error quotes: enough for a
	// QEMU start error or a panic's first lines.
	errorTailLines = 25
)

// Result is what one boot produced.
type Result struct {
	ExitCode int           // the agent's exit status; 0 without an agent, -1 without the exit marker
	Output   string        // the console, lines "\n"-terminated, CR stripped
	BootTime time.Duration // QEMU start to /init's ready marker; 0 if never reached
	Elapsed  time.Duration // QEMU start to QEMU exit
}

// Run boots a guest with opts, waits for it to power off and returns its
// result. It calls Prepare first. The Result is non-nil whenever QEMU was
// started, also with an error, so a test can log its Output.
func Run(ctx context.Context, opts Options) (*Result, error) {
	env, err := Prepare(ctx)
	if err != nil {
		return nil, err
	}
	return env.Run(ctx, opts)
}

// Start boots a guest with opts and returns at once; see Guest. It calls
// Prepare first.
func Start(ctx context.Context, opts Options) (*Guest, error) {
	env, err := Prepare(ctx)
	if err != nil {
		return nil, err
	}
	return env.Start(ctx, opts)
}

// Run is Start followed by Wait.
func (e *Env) Run(ctx context.Context, opts Options) (*Result, error) {
	g, err := e.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	return g.Wait()
}

// Guest is a running QEMU. Its methods are safe for concurrent use. The
// guest ends when the agent exits (the normal way), when Options.Timeout or
// the context of Start ends, or on Stop; in every case QEMU is killed if
// needed and reaped before Wait returns, and its files are removed.
type Guest struct {
	ready  chan struct{} // closed when the Ready text (or the ready marker) is seen
	done   chan struct{} // closed after QEMU was reaped; result and err are set
	cancel context.CancelCauseFunc
	stdin  io.WriteCloser
	pid    int

	// Written once before done is closed; read only after it.
	result *Result
	err    error
}

// Start boots a guest on this environment and returns once QEMU runs.
func (e *Env) Start(ctx context.Context, opts Options) (*Guest, error) {
	if err := opts.validate(e); err != nil {
		return nil, fmt.Errorf("guest: %w", err)
	}
	runDir, err := os.MkdirTemp("", "sluice-guest-run-")
	if err != nil {
		return nil, err
	}
	g, err := e.start(ctx, &opts, runDir)
	if err != nil {
		os.RemoveAll(runDir)
		return nil, fmt.Errorf("guest: %w", err)
	}
	return g, nil
}

func (e *Env) start(parent context.Context, o *Options, runDir string) (*Guest, error) {
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	initrd := filepath.Join(runDir, "initrd")
	if err := e.buildInitramfs(parent, o, nonce, initrd); err != nil {
		return nil, err
	}
	for _, d := range o.NVMe {
		if err := createDisk(d); err != nil {
			return nil, err
		}
	}

	timeout := o.Timeout
	if timeout == 0 {
		timeout = timeoutDefault
	}
	runCtx, cancel := context.WithCancelCause(parent)
	ctx, cancelTimeout := context.WithTimeoutCause(runCtx, timeout,
		fmt.Errorf("%w after Options.Timeout %v", ErrTimeout, timeout))

	cmd := exec.CommandContext(ctx, e.QEMU, e.qemuArgs(o, initrd)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // its own group, killed as one
		Pdeathsig: syscall.SIGKILL, // a test binary killed by the harness takes QEMU with it
	}
	// G2: the context (parent, Timeout, Stop) kills the whole group.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = qemuWaitDelay
	g := &Guest{ready: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	sink := &consoleSink{forward: o.Console, nonce: nonce, readyText: o.Ready}
	sink.onReady = func() { close(g.ready) }
	sink.onExit = func() {
		sink.grace = time.AfterFunc(poweroffGrace, func() { cancel(errors.New("no power-off after the exit marker")) })
	}
	cmd.Stdout = sink
	cmd.Stderr = sink // QEMU's own errors (a socket it cannot reach) belong with the console
	g.stdin, err = cmd.StdinPipe()
	if err != nil {
		cancelTimeout()
		cancel(nil)
		return nil, err
	}

	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked QEMU exits, not the
		// process: keep this goroutine on its thread until QEMU is reaped.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		sink.start = time.Now()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		g.pid = cmd.Process.Pid
		started <- nil
		waitErr := cmd.Wait()
		elapsed := time.Since(sink.start)
		g.result, g.err = sink.finish(ctx, waitErr, elapsed)
		cancelTimeout()
		cancel(nil)
		os.RemoveAll(runDir)
		close(g.done)
	}()
	if err := <-started; err != nil {
		cancelTimeout()
		cancel(nil)
		return nil, fmt.Errorf("start %s: %w", e.QEMU, err)
	}
	return g, nil
}

// Ready is closed when a console line contains Options.Ready, or, without
// it, when /init is about to start the agent. It is never closed if the
// guest ends first: select on Done too, or use WaitReady.
func (g *Guest) Ready() <-chan struct{} { return g.ready }

// Done is closed when QEMU has exited and Wait's result is ready.
func (g *Guest) Done() <-chan struct{} { return g.done }

// WaitReady waits for Ready. It fails if the guest ends first (with Wait's
// error and the console's end) or ctx ends.
func (g *Guest) WaitReady(ctx context.Context) error {
	select {
	case <-g.ready:
		return nil
	case <-g.done:
		select {
		case <-g.ready: // ready and done at once
			return nil
		default:
		}
		if g.err != nil {
			return fmt.Errorf("guest ended before it was ready: %w", g.err)
		}
		return fmt.Errorf("guest ended before it was ready (agent exit %d); console ends:\n%s",
			g.result.ExitCode, lastLines(g.result.Output, errorTailLines))
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Send writes s to the serial console's input: the agent reads it from its
// stdin (a tty in canonical mode, so it arrives line by line: end s with
// "\n"). This is how a test tells a long-running agent to finish.
func (g *Guest) Send(s string) error {
	_, err := io.WriteString(g.stdin, s)
	return err
}

// PID is QEMU's process id.
func (g *Guest) PID() int { return g.pid }

// Wait waits for QEMU to exit and returns the result. The error is nil when
// the agent's exit marker was seen, whatever the agent's status; otherwise
// it wraps ErrTimeout, ErrStopped, the context's error or ErrNoExit, and
// quotes the console's last lines.
func (g *Guest) Wait() (*Result, error) {
	<-g.done
	return g.result, g.err
}

// Stop kills QEMU (if still running) and waits for it.
func (g *Guest) Stop() (*Result, error) {
	g.cancel(ErrStopped)
	return g.Wait()
}

// consoleSink receives QEMU's stdout and stderr from exec's copy goroutine,
// splits it into lines, keeps them and watches for the markers.
type consoleSink struct {
	forward   io.Writer
	nonce     string
	readyText string
	onReady   func()
	onExit    func()
	start     time.Time // set before QEMU starts

	mu       sync.Mutex // lock: Write runs on exec's goroutine, finish on the waiter
	partial  []byte
	out      bytes.Buffer
	ready    bool
	booted   bool
	bootTime time.Duration
	exited   bool
	exitCode int
	grace    *time.Timer // kills a QEMU that does not power off after the exit marker
}

func (s *consoleSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	return len(p), nil
}

func (s *consoleSink) line(l string) {
	l = strings.TrimRight(l, "\r")
	if s.out.Len()+len(l) < outputSizeMax {
		s.out.WriteString(l)
		s.out.WriteByte('\n')
	}
	if s.forward != nil {
		io.WriteString(s.forward, l+"\n") // a failing log writer must not stop the guest
	}
	if !s.booted {
		if _, ok := markerField(l, markerReady, s.nonce); ok {
			s.booted, s.bootTime = true, time.Since(s.start)
		}
	}
	if !s.ready && (s.readyText == "" && s.booted || s.readyText != "" && strings.Contains(l, s.readyText)) {
		s.ready = true
		s.onReady()
	}
	if !s.exited {
		if f, ok := markerField(l, markerExit, s.nonce); ok {
			if code, err := strconv.Atoi(f); err == nil {
				s.exited, s.exitCode = true, code
				s.onExit()
			}
		}
	}
}

// markerField finds "<marker><nonce> <field>" anywhere in a line (a kernel
// message may share the line) and returns the field. Only this run's nonce
// matches (G3).
func markerField(line, marker, nonce string) (string, bool) {
	i := strings.Index(line, marker+nonce+" ")
	if i < 0 {
		return "", false
	}
	rest := line[i+len(marker)+len(nonce)+1:]
	if j := strings.IndexAny(rest, " \t"); j >= 0 {
		rest = rest[:j]
	}
	return rest, rest != ""
}

// finish turns QEMU's end into the run's result and error.
func (s *consoleSink) finish(ctx context.Context, waitErr error, elapsed time.Duration) (*Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.partial) > 0 {
		s.line(string(s.partial))
		s.partial = nil
	}
	if s.grace != nil {
		s.grace.Stop()
	}
	res := &Result{Output: s.out.String(), BootTime: s.bootTime, Elapsed: elapsed, ExitCode: -1}
	if s.exited {
		res.ExitCode = s.exitCode
		return res, nil
	}
	tail := lastLines(res.Output, errorTailLines)
	if ctx.Err() != nil {
		return res, fmt.Errorf("guest: %w after %v; console ends:\n%s", context.Cause(ctx), elapsed.Round(time.Millisecond), tail)
	}
	return res, fmt.Errorf("guest: %w (qemu: %v) after %v; console ends:\n%s", ErrNoExit, waitErr, elapsed.Round(time.Millisecond), tail)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	end := len(s) // s[end:] holds the lines taken so far, after a '\n'
	for ; n > 0; n-- {
		j := strings.LastIndexByte(s[:end], '\n')
		if j < 0 {
			return s
		}
		end = j
	}
	if end == len(s) {
		return ""
	}
	return s[end+1:]
}

// nonceSize is 8 random bytes: markers of two guests, or an agent echoing an
// old marker, never match by accident.
const nonceSize = 8

func newNonce() (string, error) {
	b := make([]byte, nonceSize)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// createDisk creates a missing raw image, sparse, of the disk's size.
func createDisk(d Disk) error {
	if _, err := os.Stat(d.Path); err == nil {
		return nil
	}
	size := d.Size
	if size == 0 {
		size = diskSizeDefault
	}
	f, err := os.OpenFile(d.Path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// qemuArgs is QEMU's command line for o, booting vmlinux with initrd.
func (e *Env) qemuArgs(o *Options, initrd string) []string {
	mem := o.MemoryMiB
	if mem == 0 {
		mem = memoryMiBDefault
	}
	cpus := max(o.CPUs, 1)
	machine := "q35"
	args := []string{"-accel", e.Accel, "-cpu", "max", "-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(mem)}
	if len(o.VhostUser) > 0 {
		// vhost-user back ends map guest RAM: it must be a shareable memfd.
		args = append(args, "-object", fmt.Sprintf("memory-backend-memfd,id=mem,size=%dM,share=on", mem))
		machine += ",memory-backend=mem"
	}
	args = append(args, "-machine", machine,
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		// -kernel, -initrd and -append take their value whole (no ",," escaping).
		"-kernel", e.Kernel, "-initrd", initrd, "-append", o.kernelCmdline(),
		"-serial", "stdio", "-monitor", "none")
	if o.IOMMU {
		// Before any other PCI device, so that all of them sit behind it.
		args = append(args, "-device", "intel-iommu")
	}
	netdev := "user,id=n0"
	for _, f := range o.Forwards {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.HostPort, f.GuestPort)
	}
	// romfile= : no iPXE option ROM; the kernel is loaded directly.
	args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile=")
	for i, d := range o.NVMe {
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,if=none,id=nvm%d,format=raw", qemuEscape(d.Path), i),
			"-device", fmt.Sprintf("nvme,serial=sluice%d,drive=nvm%d", i, i))
	}
	for i, s := range o.VhostUser {
		args = append(args,
			"-chardev", fmt.Sprintf("socket,id=vub%d,path=%s", i, qemuEscape(s)),
			"-device", fmt.Sprintf("vhost-user-blk-pci,chardev=vub%d", i))
	}
	return args
}
