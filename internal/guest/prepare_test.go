package guest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestPrepareConcurrent: goroutines calling Prepare at once all get the same
// environment.
func TestPrepareConcurrent(t *testing.T) {
	want := Require(t)
	var wg sync.WaitGroup
	envs := make([]*Env, 4)
	errs := make([]error, len(envs))
	for i := range envs {
		wg.Go(func() { envs[i], errs[i] = Prepare(t.Context()) })
	}
	wg.Wait()
	for i := range envs {
		if errs[i] != nil || envs[i] != want {
			t.Errorf("Prepare #%d = %p, %v; want %p", i, envs[i], errs[i], want)
		}
	}
}

// envHelperProcess makes the test binary act as one Prepare-calling process
// for TestPrepareTwoProcesses.
const envHelperProcess = "SLUICE_GUEST_TEST_HELPER"

// TestPrepareTwoProcesses: two processes preparing one cold base initramfs
// at the same time both succeed with the same files, one of them builds it,
// and nothing temporary is left behind. The kernel directory is hard-linked
// from the real cache, so only the base is built.
func TestPrepareTwoProcesses(t *testing.T) {
	env := Require(t)
	cache, err := os.MkdirTemp(env.CacheDir, ".test-cache-") // same filesystem: hard links work
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(cache) })
	kdir := filepath.Join(cache, "kernel", env.KernelPackage)
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"kernel.deb", "vmlinux", "version"} {
		if err := os.Link(filepath.Join(filepath.Dir(env.Kernel), f), filepath.Join(kdir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(cache, "kernel-pkg"), []byte(env.KernelPackage+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	type proc struct {
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
	}
	procs := make([]*proc, 2)
	for i := range procs {
		p := &proc{cmd: exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestPrepareHelperProcess$", "-test.count=1")}
		p.cmd.Env = append(os.Environ(), envHelperProcess+"=1", envCache+"="+cache)
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	bases, builds := map[string]bool{}, 0
	for i, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s\n%s", i, err, p.stdout.Bytes(), p.stderr.Bytes())
		}
		for _, line := range strings.Split(p.stdout.String(), "\n") {
			if b, ok := strings.CutPrefix(line, "BASE "); ok {
				bases[b] = true
			}
		}
		builds += strings.Count(p.stderr.String(), "building base initramfs")
	}
	if len(bases) != 1 || builds != 1 {
		t.Errorf("base initramfs paths %v, built %d times; want one path, built once", bases, builds)
	}
	left, _ := filepath.Glob(filepath.Join(cache, ".*"))
	for _, p := range left {
		if filepath.Base(p) != ".lock" {
			t.Errorf("left behind: %s", p)
		}
	}
}

// TestPrepareHelperProcess is one process of TestPrepareTwoProcesses; it
// does nothing in a normal run.
func TestPrepareHelperProcess(t *testing.T) {
	if os.Getenv(envHelperProcess) != "1" {
		t.Skip("helper process of TestPrepareTwoProcesses")
	}
	env, err := Prepare(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("BASE " + env.BaseInitramfs + "\n")
}
