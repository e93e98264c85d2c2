package uring

import (
	"bytes"
	"errors"
	"github.com/sluice-storage/sluice/internal/invariants"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNopRoundTrip(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		r := newRing(t, 8, m.opts)
		t.Logf("setup flags %#x, features %#x, SQ %d, CQ %d",
			r.SetupFlags(), r.Features(), r.SQEntries(), r.CQEntries())
		const perRound = 5
		for round := range 4 { // 20 SQEs through 8 slots: every slot is reused
			want := make([]uint64, perRound)
			for i := range perRound {
				sqe := r.GetSQE()
				if sqe == nil {
					t.Fatalf("round %d: GetSQE %d returned nil with %d slots", round, i, r.SQEntries())
				}
				sqe.PrepNop()
				want[i] = uint64(round)<<32 | uint64(i) | 1<<63
				sqe.SetUserData(want[i])
			}
			if n, err := r.Submit(); err != nil || n != perRound {
				t.Fatalf("round %d: Submit = %d, %v; want %d", round, n, err, perRound)
			}
			for ud, c := range byUserData(t, waitCQEs(t, r, perRound), want...) {
				if c.Res() != 0 || c.Flags() != 0 {
					t.Errorf("round %d: nop %#x: res %d flags %#x, want 0 0", round, ud, c.Res(), c.Flags())
				}
			}
		}
		if n, err := r.Submit(); n != 0 || err != nil {
			t.Errorf("Submit with nothing queued = %d, %v; want 0, nil", n, err)
		}
	})
}

// TestFileIO writes patterns with WRITE, WRITEV and WRITE_FIXED, fdatasyncs,
// and reads them back with READ, READV and READ_FIXED, crossing the kinds, on
// an O_DIRECT file.
func TestFileIO(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		r := newRing(t, 16, m.opts)
		const fileSize = 1 << 20
		fd := openDirect(t, fileSize)
		const regionBlocks = 16
		wr := alignedBuf(t, regionBlocks*blockSize) // fixed buffer 0
		rd := alignedBuf(t, regionBlocks*blockSize) // fixed buffer 1
		if err := r.RegisterBuffers([][]byte{wr, rd}); err != nil {
			t.Fatalf("RegisterBuffers: %v", err)
		}
		type kind int
		const (
			plain kind = iota
			vectored
			fixed
		)
		tests := []struct {
			name          string
			write, read   kind
			off           uint64
			blocks, block int // length, and first block in the regions
		}{
			{"write, read at 0", plain, plain, 0, 1, 0},
			{"writev, readv 3 blocks at 64 KiB", vectored, vectored, 64 << 10, 3, 1},
			{"write_fixed, read_fixed at the end", fixed, fixed, fileSize - 2*blockSize, 2, 4},
			{"write, read_fixed", plain, fixed, 256 << 10, 2, 6},
			{"write_fixed, readv", fixed, vectored, 512 << 10, 4, 8},
			{"writev, read", vectored, plain, 12 << 10, 2, 12},
		}
		iovs := make([][]unix.Iovec, len(tests)) // live until the SQEs are submitted
		prep := func(i int, k kind, write bool) {
			tc := tests[i]
			region, bufIndex := rd, uint16(1)
			if write {
				region, bufIndex = wr, 0
			}
			buf := region[tc.block*blockSize : (tc.block+tc.blocks)*blockSize]
			sqe := r.GetSQE()
			switch {
			case k == plain && write:
				sqe.PrepWrite(fd, buf, tc.off)
			case k == plain:
				sqe.PrepRead(fd, buf, tc.off)
			case k == fixed && write:
				sqe.PrepWriteFixed(fd, buf, tc.off, bufIndex)
			case k == fixed:
				sqe.PrepReadFixed(fd, buf, tc.off, bufIndex)
			default: // vectored: one iovec per block
				iovs[i] = make([]unix.Iovec, tc.blocks)
				for b := range tc.blocks {
					iovs[i][b].Base = &buf[b*blockSize]
					iovs[i][b].SetLen(blockSize)
				}
				if write {
					sqe.PrepWritev(fd, iovs[i], tc.off)
				} else {
					sqe.PrepReadv(fd, iovs[i], tc.off)
				}
			}
			sqe.SetUserData(uint64(i))
		}
		checkRes := func(phase string, cqes []CQE) {
			want := make([]uint64, len(tests))
			for i := range tests {
				want[i] = uint64(i)
			}
			for i, c := range byUserData(t, cqes, want...) {
				if n := int32(tests[i].blocks * blockSize); c.Res() != n {
					t.Fatalf("%s %q: res %d, want %d", phase, tests[i].name, c.Res(), n)
				}
			}
		}

		for i, tc := range tests {
			pattern(wr[tc.block*blockSize:(tc.block+tc.blocks)*blockSize], uint64(i+1))
			prep(i, tc.write, true)
		}
		checkRes("write", waitCQEs(t, r, len(tests)))

		sqe := r.GetSQE()
		sqe.PrepFsync(fd, FsyncDatasync)
		sqe.SetUserData(100)
		if c := waitCQEs(t, r, 1)[0]; c.UserData() != 100 || c.Res() != 0 {
			t.Fatalf("fdatasync: user_data %d res %d, want 100 0", c.UserData(), c.Res())
		}

		clear(rd)
		for i, tc := range tests {
			prep(i, tc.read, false)
		}
		checkRes("read", waitCQEs(t, r, len(tests)))
		for _, tc := range tests {
			span := func(b []byte) []byte { return b[tc.block*blockSize : (tc.block+tc.blocks)*blockSize] }
			if !bytes.Equal(span(rd), span(wr)) {
				t.Errorf("%s: read back differs from what was written at offset %d", tc.name, tc.off)
			}
		}
	})
}

// TestQueueDepth128 keeps 128 O_DIRECT reads of distinct random blocks in
// flight and matches every completion to its request by user_data.
func TestQueueDepth128(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		const qd, fileBlocks = 128, 512
		r := newRing(t, qd, m.opts)
		fd := openDirect(t, fileBlocks*blockSize)
		src := alignedBuf(t, fileBlocks*blockSize)
		for b := range fileBlocks {
			pattern(src[b*blockSize:(b+1)*blockSize], uint64(b)<<8|0x5a)
		}
		if n, err := unix.Pwrite(fd, src, 0); err != nil || n != len(src) {
			t.Fatalf("fill: pwrite = %d, %v", n, err)
		}
		dst := alignedBuf(t, qd*blockSize)
		blocks := rand.New(rand.NewPCG(1, 2)).Perm(fileBlocks)[:qd]
		const udTag = 0xfeed << 48 // a stale or foreign user_data would not carry it
		want := make([]uint64, qd)
		for slot, b := range blocks {
			sqe := r.GetSQE()
			if sqe == nil {
				t.Fatalf("GetSQE returned nil at slot %d of %d", slot, qd)
			}
			sqe.PrepRead(fd, dst[slot*blockSize:(slot+1)*blockSize], uint64(b*blockSize))
			want[slot] = udTag | uint64(slot)
			sqe.SetUserData(want[slot])
		}
		if n, err := r.Submit(); err != nil || n != qd {
			t.Fatalf("Submit = %d, %v; want %d", n, err, qd)
		}
		for ud, c := range byUserData(t, waitCQEs(t, r, qd), want...) {
			slot := int(ud &^ udTag)
			b := blocks[slot]
			if c.Res() != blockSize {
				t.Fatalf("slot %d (block %d): res %d", slot, b, c.Res())
			}
			if !bytes.Equal(dst[slot*blockSize:(slot+1)*blockSize], src[b*blockSize:(b+1)*blockSize]) {
				t.Errorf("slot %d: data is not block %d's", slot, b)
			}
		}
	})
}

func TestSQFull(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		r := newRing(t, 8, m.opts)
		want := make([]uint64, r.SQEntries())
		for i := range want {
			sqe := r.GetSQE()
			if sqe == nil {
				t.Fatalf("GetSQE %d of %d returned nil", i, len(want))
			}
			sqe.PrepNop()
			want[i] = uint64(i + 1)
			sqe.SetUserData(want[i])
		}
		if sqe := r.GetSQE(); sqe != nil {
			t.Fatalf("GetSQE on a full SQ returned an SQE")
		}
		if s := r.SQSpace(); s != 0 {
			t.Fatalf("SQSpace on a full SQ = %d", s)
		}
		byUserData(t, waitCQEs(t, r, len(want)), want...)
		if s := r.SQSpace(); s != r.SQEntries() {
			t.Fatalf("SQSpace after everything completed = %d, want %d", s, r.SQEntries())
		}
		if sqe := r.GetSQE(); sqe == nil {
			t.Fatalf("GetSQE after Submit returned nil")
		} else {
			sqe.PrepNop()
			sqe.SetUserData(99)
		}
		byUserData(t, waitCQEs(t, r, 1), 99)
	})
}

// TestEventFD sleeps in poll(2) on the eventfd, as an idle reactor does in
// epoll_wait, until a receive completes.
func TestEventFD(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		opts := m.opts
		opts.EventFD = true
		r := newRing(t, 8, opts)
		efd := r.EventFD()
		if efd < 0 {
			t.Fatalf("EventFD() = %d with Options.EventFD", efd)
		}
		a, b := socketPair(t)
		buf := make([]byte, 16)
		sqe := r.GetSQE()
		sqe.PrepRecv(a, buf, 0)
		sqe.SetUserData(1)
		if _, err := r.Submit(); err != nil {
			t.Fatalf("Submit: %v", err)
		}
		// Idle protocol: drain, reap, then sleep.
		if _, err := r.DrainEventFD(); err != nil {
			t.Fatal(err)
		}
		cqes := make([]CQE, 4)
		if n, err := r.Reap(cqes); n != 0 || err != nil {
			t.Fatalf("Reap before any data = %d, %v", n, err)
		}
		if _, err := unix.Write(b, []byte("wake up")); err != nil {
			t.Fatal(err)
		}
		if !pollReadable(t, efd, waitTimeout) {
			t.Fatalf("eventfd not readable %v after the receive's data was sent", waitTimeout)
		}
		if sig, err := r.DrainEventFD(); !sig || err != nil {
			t.Fatalf("DrainEventFD after wake-up = %v, %v; want true", sig, err)
		}
		// No SubmitAndWait: the wake-up alone must be enough for Reap.
		n, err := r.Reap(cqes)
		for try := 0; n == 0 && err == nil && try < 1000 && m.opts.SQPoll; try++ {
			n, err = r.Reap(cqes) // the SQPOLL thread may signal just before it posts
		}
		if n != 1 || err != nil || cqes[0].UserData() != 1 || cqes[0].Res() != 7 {
			t.Fatalf("Reap after wake-up = %d, %v (res %d); want the 7-byte receive", n, err, cqes[0].Res())
		}
		if string(buf[:7]) != "wake up" {
			t.Fatalf("received %q", buf[:7])
		}

		if m.opts.SQPoll || !r.SetEventFDEnabled(false) {
			return // only owner-driven completions make "no signal" observable at once
		}
		r.DrainEventFD() // a second signal may follow the posting of the CQE above
		sqe = r.GetSQE()
		sqe.PrepNop()
		byUserData(t, waitCQEs(t, r, 1), 0)
		if pollReadable(t, efd, 0) {
			t.Fatalf("eventfd signaled while IORING_CQ_EVENTFD_DISABLED was set")
		}
		r.SetEventFDEnabled(true)
		r.GetSQE().PrepNop()
		byUserData(t, waitCQEs(t, r, 1), 0)
		if !pollReadable(t, efd, waitTimeout) {
			t.Fatalf("eventfd not signaled after re-enabling")
		}
	})
}

func TestEventFDOff(t *testing.T) {
	lockThread(t)
	r := newRing(t, 4, Options{})
	if fd := r.EventFD(); fd != -1 {
		t.Errorf("EventFD() = %d without Options.EventFD, want -1", fd)
	}
}

// TestOverflow posts twice as many completions as the CQ holds; the kernel
// keeps the rest (IORING_FEAT_NODROP) and Reap must flush them, in order.
func TestOverflow(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		if m.opts.SQPoll {
			t.Skip("the SQPOLL thread's pace makes the overflow point racy; the flush path is the same")
		}
		opts := m.opts
		opts.CQEntries = 8
		r := newRing(t, 4, opts)
		const rounds, perRound = 4, 4
		for round := range rounds {
			for i := range perRound {
				sqe := r.GetSQE()
				sqe.PrepNop()
				sqe.SetUserData(uint64(round*perRound + i))
			}
			if n, err := r.Submit(); n != perRound || err != nil {
				t.Fatalf("round %d: Submit = %d, %v", round, n, err)
			}
		}
		if flags := atomic.LoadUint32(r.sqFlags); flags&sqCQOverflow == 0 {
			t.Fatalf("SQ flags %#x lack IORING_SQ_CQ_OVERFLOW after %d completions in a CQ of %d",
				flags, rounds*perRound, r.CQEntries())
		}
		var got []CQE
		buf := make([]CQE, 32)
		for try := 0; len(got) < rounds*perRound && try < 8; try++ {
			n, err := r.Reap(buf)
			if err != nil {
				t.Fatalf("Reap: %v", err)
			}
			got = append(got, buf[:n]...)
		}
		if len(got) != rounds*perRound {
			t.Fatalf("reaped %d completions, want %d", len(got), rounds*perRound)
		}
		for i := range got {
			if ud := got[i].UserData(); ud != uint64(i) {
				t.Fatalf("completion %d has user_data %d: overflow flushed out of order", i, ud)
			}
		}
		if d := r.CQOverflow(); d != 0 {
			t.Errorf("kernel dropped %d completions", d)
		}
	})
}

// TestFallocate deallocates and zeroes ranges the way a block back end serves
// DEALLOCATE and WRITE ZEROES, and reads zeros back.
func TestFallocate(t *testing.T) {
	lockThread(t)
	r := newRing(t, 8, Options{})
	f, err := os.Create(filepath.Join(t.TempDir(), "holes"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	const blocks = 4
	data := make([]byte, blocks*blockSize)
	pattern(data, 7)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		mode      uint32
		off, size uint64
		zeroed    []int // blocks that read as zeros afterwards, cumulatively
	}{
		{"punch hole", unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE, blockSize, blockSize, []int{1}},
		{"zero range", unix.FALLOC_FL_ZERO_RANGE, 3 * blockSize, blockSize, []int{1, 3}},
	}
	for _, tc := range tests {
		sqe := r.GetSQE()
		sqe.PrepFallocate(fd, tc.mode, tc.off, tc.size)
		if c := waitCQEs(t, r, 1)[0]; c.Res() == -int32(unix.EOPNOTSUPP) {
			t.Skipf("%s: the file system under %s does not support mode %#x", tc.name, f.Name(), tc.mode)
		} else if c.Res() != 0 {
			t.Fatalf("%s: fallocate res %d", tc.name, c.Res())
		}
		got := make([]byte, len(data))
		sqe = r.GetSQE()
		sqe.PrepRead(fd, got, 0)
		if c := waitCQEs(t, r, 1)[0]; c.Res() != int32(len(got)) {
			t.Fatalf("%s: read res %d, want %d (size kept)", tc.name, c.Res(), len(got))
		}
		for b := range blocks {
			want := data[b*blockSize : (b+1)*blockSize]
			for _, z := range tc.zeroed {
				if z == b {
					want = make([]byte, blockSize)
				}
			}
			if !bytes.Equal(got[b*blockSize:(b+1)*blockSize], want) {
				t.Errorf("%s: block %d reads wrong (zero expected: %v)", tc.name, b, tc.zeroed)
			}
		}
		if st, err := f.Stat(); err != nil || st.Size() != int64(len(data)) {
			t.Errorf("%s: size %d, %v; want %d kept", tc.name, st.Size(), err, len(data))
		}
	}
}

// TestSocket runs the socket opcodes: poll, recv, send and cancel.
func TestSocket(t *testing.T) {
	forEachMode(t, func(t *testing.T, m mode) {
		r := newRing(t, 8, m.opts)
		a, b := socketPair(t)
		in := make([]byte, 32)
		sqe := r.GetSQE()
		sqe.PrepPollAdd(a, unix.POLLIN)
		sqe.SetUserData(1)
		sqe = r.GetSQE()
		sqe.PrepRecv(a, in, 0)
		sqe.SetUserData(2)
		if _, err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		out := []byte("hello, reactor")
		sqe = r.GetSQE()
		sqe.PrepSend(b, out, unix.MSG_NOSIGNAL)
		sqe.SetUserData(3)
		got := byUserData(t, waitCQEs(t, r, 3), 1, 2, 3)
		if c := got[1]; c.Res()&unix.POLLIN == 0 {
			t.Errorf("poll res %#x lacks POLLIN", c.Res())
		}
		if c := got[3]; c.Res() != int32(len(out)) {
			t.Errorf("send res %d, want %d", c.Res(), len(out))
		}
		if c := got[2]; c.Res() != int32(len(out)) || !bytes.Equal(in[:len(out)], out) {
			t.Errorf("recv res %d data %q, want %q", c.Res(), in[:max(c.Res(), 0)], out)
		}

		// A receive with nothing to receive waits until canceled.
		sqe = r.GetSQE()
		sqe.PrepRecv(a, in, 0)
		sqe.SetUserData(4)
		if _, err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		sqe = r.GetSQE()
		sqe.PrepCancel(4)
		sqe.SetUserData(5)
		got = byUserData(t, waitCQEs(t, r, 2), 4, 5)
		if res := got[4].Res(); res != -int32(unix.ECANCELED) {
			t.Errorf("canceled recv res %d, want -ECANCELED", res)
		}
		if res := got[5].Res(); res != 0 {
			t.Errorf("cancel res %d, want 0", res)
		}
	})
}

func TestRegisterFiles(t *testing.T) {
	lockThread(t)
	r := newRing(t, 8, Options{})
	f, err := os.Create(filepath.Join(t.TempDir(), "fixed"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := r.RegisterFiles([]int{-1, int(f.Fd())}); err != nil {
		t.Fatalf("RegisterFiles: %v", err)
	}
	out := make([]byte, 3*blockSize)
	pattern(out, 3)
	sqe := r.GetSQE()
	sqe.PrepWrite(1, out, blockSize) // index 1 in the table, not fd 1
	sqe.SetFlags(FlagFixedFile)
	if c := waitCQEs(t, r, 1)[0]; c.Res() != int32(len(out)) {
		t.Fatalf("fixed-file write res %d", c.Res())
	}
	in := make([]byte, len(out))
	if _, err := f.ReadAt(in, blockSize); err != nil || !bytes.Equal(in, out) {
		t.Fatalf("the write through fixed file 1 did not land in the file (%v)", err)
	}
	sqe = r.GetSQE()
	sqe.PrepRead(0, in, 0)
	sqe.SetFlags(FlagFixedFile)
	if c := waitCQEs(t, r, 1)[0]; c.Res() != -int32(unix.EBADF) {
		t.Errorf("read through the empty slot 0: res %d, want -EBADF", c.Res())
	}
	if err := r.UnregisterFiles(); err != nil {
		t.Fatalf("UnregisterFiles: %v", err)
	}
	sqe = r.GetSQE()
	sqe.PrepRead(1, in, 0)
	sqe.SetFlags(FlagFixedFile)
	if c := waitCQEs(t, r, 1)[0]; c.Res() >= 0 {
		t.Errorf("read through an unregistered fixed file: res %d, want an error", c.Res())
	}
}

func TestRegisterValidation(t *testing.T) {
	lockThread(t)
	r := newRing(t, 4, Options{})
	tests := []struct {
		name  string
		call  func() error
		blame string
	}{
		{"no buffers", func() error { return r.RegisterBuffers(nil) }, "0 buffers"},
		{"empty buffer", func() error {
			return r.RegisterBuffers([][]byte{make([]byte, 8), {}})
		}, "buffer 1 is 0 bytes"},
		{"no files", func() error { return r.RegisterFiles(nil) }, "0 files"},
		{"files twice", func() error {
			if err := r.RegisterFiles([]int{-1}); err != nil {
				return err
			}
			return r.RegisterFiles([]int{-1})
		}, "already registered"},
	}
	for _, tc := range tests {
		if err := tc.call(); err == nil || !strings.Contains(err.Error(), tc.blame) {
			t.Errorf("%s: error %v, want one naming %q", tc.name, err, tc.blame)
		}
	}
}

// TestNotOwner enters a SINGLE_ISSUER ring from a second thread: the kernel
// answers EEXIST, which must surface as a panic naming both threads.
func TestNotOwner(t *testing.T) {
	lockThread(t)
	r := newRing(t, 4, Options{})
	if r.SetupFlags()&SetupSingleIssuer == 0 {
		t.Skipf("kernel refused IORING_SETUP_SINGLE_ISSUER (flags %#x)", r.SetupFlags())
	}
	sqe := r.GetSQE()
	sqe.PrepNop()
	sqe.SetUserData(42)
	panicked := make(chan string)
	go func() {
		runtime.LockOSThread() // a thread of its own, exited with the goroutine
		defer func() {
			msg, _ := recover().(string)
			panicked <- msg
		}()
		r.Submit()
	}()
	msg := <-panicked
	// Under invariants our own gettid check fires before the kernel is asked.
	want := []string{"EEXIST", "LockOSThread"}
	if invariants.Enabled {
		want = []string{"Submit on thread", "is owned by thread"}
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Fatalf("Submit from another thread: panic %q, want %q", msg, w)
		}
	}
	byUserData(t, waitCQEs(t, r, 1), 42) // the owner still submits it
}

func TestClosePanicsTwice(t *testing.T) {
	lockThread(t)
	r, err := New(4, Options{EventFD: true})
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		call       func()
	}{
		{"Close", "already closed", func() { r.Close() }},
		{"Submit", "closed ring", func() { r.Submit() }},
		{"GetSQE", "closed ring", func() { r.GetSQE() }},
	} {
		func() {
			defer func() {
				if msg, _ := recover().(string); !strings.Contains(msg, tc.want) {
					t.Errorf("%s after Close: panic %q, want %q", tc.name, msg, tc.want)
				}
			}()
			tc.call()
		}()
	}
}

// TestSupported checks the probe agrees with New on this host.
func TestSupported(t *testing.T) {
	lockThread(t)
	r, newErr := New(2, Options{})
	if newErr == nil {
		r.Close()
	}
	err := Supported()
	if newErr == nil && err != nil {
		t.Fatalf("New works but Supported says: %v", err)
	}
	if errors.Is(newErr, ErrUnavailable) && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("New says %v but Supported says %v", newErr, err)
	}
	t.Logf("Supported() = %v", err)
}

// TestZeroAllocs holds the hot path to no allocation: take, prepare, submit
// and reap a NOP, and a 4 KiB read.
func TestZeroAllocs(t *testing.T) {
	lockThread(t)
	r := newRing(t, 8, Options{})
	path := filepath.Join(t.TempDir(), "page")
	if err := os.WriteFile(path, make([]byte, blockSize), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	dst := alignedBuf(t, blockSize)
	cqes := make([]CQE, 4)
	tests := []struct {
		name string
		prep func(*SQE)
		res  int32
	}{
		{"nop", func(s *SQE) { s.PrepNop() }, 0},
		{"read", func(s *SQE) { s.PrepRead(fd, dst, 0) }, blockSize},
	}
	for _, tc := range tests {
		var failed string
		allocs := testing.AllocsPerRun(1000, func() {
			sqe := r.GetSQE()
			tc.prep(sqe)
			sqe.SetUserData(7)
			if _, err := r.Submit(); err != nil {
				failed = err.Error()
				return
			}
			n, err := reapSpin(r, cqes)
			if n != 1 || err != nil || cqes[0].Res() != tc.res {
				failed = "reap: no completion, or wrong res"
			}
		})
		if failed != "" {
			t.Fatalf("%s: %s", tc.name, failed)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per GetSQE+Prep+Submit+Reap, want 0", tc.name, allocs)
		}
	}
}

// reapSpin polls Reap as a reactor does, a bounded number of times.
func reapSpin(r *Ring, buf []CQE) (int, error) {
	const spinMax = 1 << 24 // ~seconds of polling: a lost completion, not a slow one
	for range spinMax {
		if n, err := r.Reap(buf); n != 0 || err != nil {
			return n, err
		}
	}
	return 0, nil
}
