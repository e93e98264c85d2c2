package guest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Helpers for tests in any package that boot the guest. This package is for
// tests only (ARCHITECTURE.md), so importing "testing" here costs nothing.

// Require prepares the guest environment for t, or skips t when this host
// cannot run the guest and the package cannot fix that (QEMU missing and not
// root, no apt), and under -short (the guest runs in the plain pass only).
// Otherwise, under CI=true it never skips: a CI machine that cannot run
// the guest is a failure. Any other problem fails t.
func Require(t testing.TB) *Env {
	t.Helper()
	if testing.Short() {
		// Guest tests prove interop once per CI run, in the plain pass;
		// the -race and -tags invariants passes run with -short.
		t.Skip("guest: boots QEMU; runs in the plain pass, skipped with -short")
	}
	env, err := Prepare(t.Context())
	if err == nil {
		return env
	}
	if errors.Is(err, ErrUnavailable) && os.Getenv("CI") != "true" {
		t.Skipf("guest: cannot run here (set CI=true to fail instead): %v", err)
	}
	t.Fatal(err)
	return nil
}

// BuildAgent builds the Go package pkg (an import path, or a directory
// relative to the test's package such as "./testdata/agent") as a static
// linux/amd64 binary for the guest and returns its path in t.TempDir().
func BuildAgent(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agent")
	// go test puts its GOROOT/bin first in PATH for the test binary.
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("guest: build agent %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// ConsoleLog returns an Options.Console that logs each console line to t.
// Lines arriving after the test ended are dropped (t.Log would panic).
func ConsoleLog(t testing.TB) io.Writer {
	l := &testLog{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.partial) > 0 {
			t.Logf("console: %s", l.partial)
		}
		l.ended = true
	})
	return l
}

type testLog struct {
	t       testing.TB
	mu      sync.Mutex // lock: Write may come from QEMU's console goroutine while Cleanup runs
	partial []byte
	ended   bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return len(p), nil
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.t.Logf("console: %s", strings.TrimRight(string(l.partial[:i]), "\r"))
		l.partial = l.partial[i+1:]
	}
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago, for
// Options.Forwards. Another process may take it before QEMU does; the
// window is small and the failure loud (QEMU cannot bind and exits).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
