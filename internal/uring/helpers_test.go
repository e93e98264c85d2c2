package uring

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	blockSize   = 4096            // O_DIRECT alignment that suits every device here
	waitTimeout = 5 * time.Second // a test's wait for a completion; never reached when healthy
)

// mode is one way New can set a ring up; the I/O tests run under each, since
// the kernel delivers completions differently in each (task work deferred to
// our enter, run on any syscall, run by IPI, run by the SQPOLL thread).
type mode struct {
	name string
	opts Options
}

func modes() []mode {
	return []mode{
		{"defer", Options{setupFlagsLadder: []uint32{
			SetupSingleIssuer | SetupDeferTaskrun | SetupTaskrunFlag | SetupSubmitAll}}},
		{"coop", Options{setupFlagsLadder: []uint32{
			SetupSingleIssuer | SetupCoopTaskrun | SetupTaskrunFlag | SetupSubmitAll}}},
		{"plain", Options{setupFlagsLadder: []uint32{0}}},
		{"sqpoll", Options{SQPoll: true, SQPollIdle: 10 * time.Millisecond}},
	}
}

// forEachMode runs f in a subtest per mode, each on its own locked thread (the
// ring's owner, see doc.go).
func forEachMode(t *testing.T, f func(t *testing.T, m mode)) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			lockThread(t)
			f(t, m)
		})
	}
}

// lockThread makes the test goroutine its ring's owner thread. The thread is
// unlocked at cleanup, which runs on the same goroutine.
func lockThread(t testing.TB) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

// newRing sets up a ring closed at cleanup. A host without io_uring, or a
// kernel that refuses a mode's forced flags, skips the test with the reason.
func newRing(t testing.TB, entries uint32, opts Options) *Ring {
	t.Helper()
	r, err := New(entries, opts)
	if errors.Is(err, ErrUnavailable) || (opts.setupFlagsLadder != nil && errors.Is(err, unix.EINVAL)) {
		t.Skipf("mode unavailable here: %v", err)
	}
	if opts.SQPoll && errors.Is(err, unix.EPERM) {
		t.Skipf("SQPOLL not permitted here: %v", err)
	}
	if err != nil {
		t.Fatalf("New(%d, %+v): %v", entries, opts, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// waitCQEs submits what is queued and returns exactly n completions, failing
// the test if they do not arrive within waitTimeout.
func waitCQEs(t testing.TB, r *Ring, n int) []CQE {
	t.Helper()
	got := make([]CQE, 0, n)
	buf := make([]CQE, n)
	for len(got) < n {
		if _, err := r.SubmitAndWait(1, waitTimeout); err != nil {
			t.Fatalf("SubmitAndWait after %d of %d completions: %v", len(got), n, err)
		}
		k, err := r.Reap(buf[:n-len(got)])
		if err != nil {
			t.Fatalf("Reap: %v", err)
		}
		got = append(got, buf[:k]...)
	}
	if k := r.CQReady(); k != 0 {
		t.Fatalf("%d completions beyond the %d expected", k, n)
	}
	return got
}

// byUserData indexes completions, failing on a duplicate or an unknown one.
func byUserData(t testing.TB, cqes []CQE, want ...uint64) map[uint64]CQE {
	t.Helper()
	m := make(map[uint64]CQE, len(cqes))
	for i := range cqes {
		ud := cqes[i].UserData()
		if _, dup := m[ud]; dup {
			t.Fatalf("user_data %#x completed twice", ud)
		}
		m[ud] = cqes[i]
	}
	for _, ud := range want {
		if _, ok := m[ud]; !ok {
			t.Fatalf("user_data %#x did not complete; got %d completions", ud, len(cqes))
		}
	}
	if len(m) != len(want) {
		t.Fatalf("%d completions, want %d", len(m), len(want))
	}
	return m
}

// alignedBuf is page-aligned anonymous memory off the Go heap: what O_DIRECT
// and registered buffers need (U6).
func alignedBuf(t testing.TB, size int) []byte {
	t.Helper()
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap %d anonymous bytes: %v", size, err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	return b
}

// openDirect creates a file of size bytes opened with O_DIRECT, in the first
// directory whose file system takes O_DIRECT (tmpfs before 6.6 refuses it with
// EINVAL). It skips the test, naming the directories tried, when none does.
func openDirect(t testing.TB, size int64) int {
	t.Helper()
	var tried []string
	for _, dir := range []string{t.TempDir(), os.TempDir(), "/var/tmp"} {
		fd, err := openDirectIn(dir, size)
		if err == nil {
			t.Cleanup(func() { unix.Close(fd) })
			return fd
		}
		tried = append(tried, fmt.Sprintf("%s: %v", dir, err))
	}
	t.Skipf("no directory here takes O_DIRECT: %v", tried)
	return -1
}

func openDirectIn(dir string, size int64) (int, error) {
	f, err := os.CreateTemp(dir, "uring-test-*")
	if err != nil {
		return -1, err
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path) // the open fd keeps the inode
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open O_DIRECT: %w", err)
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("ftruncate %d: %w", size, err)
	}
	// Some file systems accept the flag at open and refuse the I/O.
	probe, err := unix.Mmap(-1, 0, blockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	defer unix.Munmap(probe)
	if _, err := unix.Pread(fd, probe, 0); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("O_DIRECT pread: %w", err)
	}
	return fd, nil
}

// pattern fills b with bytes that depend on seed and the position, so a
// block read from the wrong place or a stale buffer does not compare equal.
func pattern(b []byte, seed uint64) {
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
}

// socketPair is a connected AF_UNIX stream pair closed at cleanup.
func socketPair(t testing.TB) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// pollReadable waits up to timeout for fd to be readable, retrying EINTR (a
// completion's task work interrupts the wait on COOP_TASKRUN rings).
func pollReadable(t testing.TB, fd int, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		ms := int(time.Until(deadline).Milliseconds())
		if ms < 0 {
			ms = 0
		}
		n, err := unix.Poll(pfd, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll fd %d: %v", fd, err)
		}
		return n == 1 && pfd[0].Revents&unix.POLLIN != 0
	}
}

func uintptrOf(iov *unix.Iovec) uintptr { return uintptr(unsafe.Pointer(iov)) }
