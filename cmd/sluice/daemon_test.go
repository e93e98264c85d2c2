package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the sluice executable built once by TestMain.
var binary string

// waitTimeout bounds every wait on the daemon; reaching it fails the test.
const waitTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncLog is the daemon's stderr as the reader goroutine collects it; the
// test reads it while it grows.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) WriteString(s string) {
	l.mu.Lock()
	l.b.WriteString(s)
	l.mu.Unlock()
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a daemon started by a test.
type proc struct {
	cmd     *exec.Cmd
	rpc     string
	debug   string // host:port of the debug endpoint
	log     *syncLog
	exited  chan struct{}
	logDone chan struct{}
}

// topology writes a topology with its RPC socket in dir and the debug
// endpoint on a free loopback port; extra is appended (bdevs, reactors…).
func topology(t *testing.T, dir, extra string) (path, sock string) {
	t.Helper()
	sock = filepath.Join(dir, "rpc.sock")
	path = filepath.Join(dir, "topo.yaml")
	text := fmt.Sprintf("rpc:\n  listen: %s\ndebug:\n  listen: 127.0.0.1:0\n%s", sock, extra)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, sock
}

// start runs `sluice run -c topo` and waits for "sluice ready"; wantReady
// false returns as soon as the process exits instead.
func start(t *testing.T, topo, sock string, wantReady bool) *proc {
	t.Helper()
	cmd := exec.Command(binary, "run", "-c", topo, "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, rpc: sock, log: &syncLog{}, exited: make(chan struct{}),
		logDone: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		defer close(p.logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.log.WriteString(line + "\n")
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "sluice ready" {
				debug, _ := rec["debug"].(string)
				ready <- debug
			}
		}
	}()
	go func() { <-p.logDone; cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
	})
	if !wantReady {
		select {
		case <-p.exited:
		case <-time.After(waitTimeout):
			t.Fatalf("daemon neither became ready nor exited:\n%s", p.log)
		}
		return p
	}
	select {
	case p.debug = <-ready:
	case <-p.exited:
		t.Fatalf("daemon exited before ready (status %v):\n%s", cmd.ProcessState, p.log)
	case <-time.After(waitTimeout):
		t.Fatalf("daemon not ready within %v:\n%s", waitTimeout, p.log)
	}
	return p
}

// stop sends sig and returns the exit status.
func (p *proc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(waitTimeout):
		t.Fatalf("daemon did not exit within %v after %v:\n%s", waitTimeout, sig, p.log)
	}
	return p.cmd.ProcessState.ExitCode()
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func TestDebugEndpointAndSIGTERM(t *testing.T) {
	topo, sock := topology(t, t.TempDir(), "reactors:\n  cores: [0]\n")
	p := start(t, topo, sock, true)
	var rs []map[string]any
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+p.debug+"/debug/reactors")), &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0]["core"] != 0.0 || rs[0]["mode"] != "adaptive" {
		t.Fatalf("/debug/reactors = %v", rs)
	}
	if s := httpGet(t, "http://"+p.debug+"/debug/actors"); !strings.HasPrefix(strings.TrimSpace(s), "[") {
		t.Fatalf("/debug/actors is not a JSON list: %s", s)
	}
	if m := httpGet(t, "http://"+p.debug+"/metrics"); !strings.Contains(m, `sluice_reactor_loops_total{reactor="0",core="0"}`) {
		t.Fatalf("/metrics lacks the reactor loop counter:\n%s", m)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("rpc socket %s: %v %v, want a socket with mode 0600", sock, st.Mode(), err)
	}
	out, err := exec.Command(binary, "rpc", "-s", sock, "framework_get_reactors").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"lcore": 0`) {
		t.Fatalf("sluice rpc framework_get_reactors: %v\n%s", err, out)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d, want 0:\n%s", code, p.log)
	}
	if !strings.Contains(p.log.String(), `"msg":"stopped"`) {
		t.Fatalf("no stop report in the log:\n%s", p.log)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket %s left behind after a clean stop: %v", sock, err)
	}
}

func TestSecondDaemonOnSameSocketRefused(t *testing.T) {
	dir := t.TempDir()
	topo, sock := topology(t, dir, "reactors:\n  cores: [0]\n")
	first := start(t, topo, sock, true)
	second := start(t, topo, sock, false)
	if code := second.cmd.ProcessState.ExitCode(); code == 0 {
		t.Fatalf("second daemon exited 0:\n%s", second.log)
	}
	if !strings.Contains(second.log.String(), "another sluice daemon is running on this socket") {
		t.Fatalf("second daemon's message does not say why:\n%s", second.log)
	}
	// The first one is unharmed.
	if out, err := exec.Command(binary, "rpc", "-s", sock, "spdk_get_version").CombinedOutput(); err != nil {
		t.Fatalf("first daemon stopped answering: %v\n%s", err, out)
	}
	first.stop(t, syscall.SIGTERM)
}

func TestRestartAfterKill9(t *testing.T) {
	dir := t.TempDir()
	topo, sock := topology(t, dir, "reactors:\n  cores: [0]\n")
	p := start(t, topo, sock, true)
	p.stop(t, syscall.SIGKILL)
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("kill -9 should leave the socket behind: %v", err)
	}
	again := start(t, topo, sock, true)
	if !strings.Contains(again.log.String(), "stale RPC socket") {
		t.Fatalf("restart did not report replacing the stale socket:\n%s", again.log)
	}
	if code := again.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after restart:\n%s", code, again.log)
	}
}

func TestBadTopologyReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	topo := filepath.Join(dir, "bad.yaml")
	os.WriteFile(topo, []byte("bdevs:\n  - name: A\n    driver: malloc\n    size: 1MiB\n    block_size: 3000\n"+
		"  - name: A\n    driver: floppy\n    size: 1MiB\nfrobnicate: 1\n"), 0o644)
	for _, sub := range []string{"run", "validate"} {
		out, err := exec.Command(binary, sub, "-c", topo).CombinedOutput()
		if err == nil {
			t.Fatalf("%s accepted a bad file:\n%s", sub, out)
		}
		for _, want := range []string{"bad.yaml:5: bdevs[0].block_size: 3000", "bad.yaml:7: bdevs[1].driver: floppy",
			"bad.yaml:9: frobnicate"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("sluice %s output lacks %q:\n%s", sub, want, out)
			}
		}
	}
}

// cpuTime is the process's user+system CPU time, from /proc/PID/stat.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the ")" that ends the command name; utime and stime are
	// fields 14 and 15 of proc(5), in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// TestIdlePolicy: an idle adaptive daemon costs under 1% of a core; a poll
// daemon keeps its reactor's core busy. A test of the policy, not of speed:
// the bounds are an order of magnitude from what either mode does.
func TestIdlePolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("idle policy test takes 12 s; skipped with -short")
	}
	run := func(mode string, idle time.Duration) float64 {
		topo, sock := topology(t, t.TempDir(), "reactors:\n  mode: "+mode+"\n")
		p := start(t, topo, sock, true)
		time.Sleep(500 * time.Millisecond) // let start-up work finish
		before := cpuTime(t, p.cmd.Process.Pid)
		time.Sleep(idle)
		used := cpuTime(t, p.cmd.Process.Pid) - before
		p.stop(t, syscall.SIGTERM)
		return used.Seconds() / idle.Seconds()
	}
	if share := run("adaptive", 10*time.Second); share >= 0.01 {
		t.Errorf("idle adaptive daemon used %.2f%% of a core, want under 1%%", share*100)
	} else {
		t.Logf("idle adaptive daemon: %.3f%% of a core over 10 s", share*100)
	}
	// A poll daemon spins one core per reactor; the bound is low because
	// other test binaries share the 2 cores (go test runs packages in
	// parallel), yet still two orders of magnitude above an idle one.
	if share := run("poll", 2*time.Second); share < 0.2 {
		t.Errorf("poll daemon used %.0f%% of a core, want about one core per reactor (at least 20%%)", share*100)
	} else {
		t.Logf("poll daemon: %.0f%% of a core", share*100)
	}
}
