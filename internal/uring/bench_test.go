package uring

import (
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkNop is the ring's own cost per request: GetSQE, PrepNop, Submit
// (one io_uring_enter) and Reap of one NOP.
func BenchmarkNop(b *testing.B) {
	lockThread(b)
	r := newRing(b, 64, Options{})
	cqes := make([]CQE, 64)
	b.ReportAllocs()
	for b.Loop() {
		sqe := r.GetSQE()
		sqe.PrepNop()
		sqe.SetUserData(1)
		if _, err := r.Submit(); err != nil {
			b.Fatal(err)
		}
		if n, err := reapSpin(r, cqes); n != 1 || err != nil {
			b.Fatalf("Reap = %d, %v", n, err)
		}
	}
}

// BenchmarkNopBatch32 submits and reaps NOPs 32 at a time, as a reactor
// batches a poll's worth of I/O; ns/nop is the cost per request.
func BenchmarkNopBatch32(b *testing.B) {
	lockThread(b)
	const batch = 32
	r := newRing(b, batch, Options{})
	cqes := make([]CQE, batch)
	b.ReportAllocs()
	batches := 0
	for b.Loop() {
		for i := range batch {
			sqe := r.GetSQE()
			sqe.PrepNop()
			sqe.SetUserData(uint64(i))
		}
		if _, err := r.Submit(); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < batch; {
			n, err := reapSpin(r, cqes[got:])
			if n == 0 || err != nil {
				b.Fatalf("Reap after %d of %d = %d, %v", got, batch, n, err)
			}
			got += n
		}
		batches++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(batches*batch), "ns/nop")
}

// BenchmarkRandRead4KQD32 keeps 32 random 4 KiB O_DIRECT reads in flight over
// a 64 MiB file, the shape of a bdevperf randread run; one op is one
// completed read. IOPS depend on the disk under the temp directory.
func BenchmarkRandRead4KQD32(b *testing.B) {
	lockThread(b)
	const fileSize = 64 << 20
	fd := openDirect(b, fileSize)
	chunk := alignedBuf(b, 1<<20)
	for off := 0; off < fileSize; off += len(chunk) {
		pattern(chunk, uint64(off))
		if n, err := unix.Pwrite(fd, chunk, int64(off)); err != nil || n != len(chunk) {
			b.Fatalf("fill at %d: pwrite = %d, %v", off, n, err)
		}
	}
	if err := unix.Fdatasync(fd); err != nil {
		b.Fatal(err)
	}
	b.Run("read", func(b *testing.B) { benchRandRead(b, fd, fileSize, false) })
	b.Run("read_fixed", func(b *testing.B) { benchRandRead(b, fd, fileSize, true) })
}

func benchRandRead(b *testing.B, fd int, fileSize int, fixed bool) {
	lockThread(b)
	const qd = 32
	r := newRing(b, qd, Options{})
	bufs := alignedBuf(b, qd*blockSize)
	if fixed {
		if err := r.RegisterBuffers([][]byte{bufs}); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	issue := func(slot uint64) {
		buf := bufs[slot*blockSize : (slot+1)*blockSize]
		off := uint64(rng.IntN(fileSize/blockSize)) * blockSize
		sqe := r.GetSQE()
		if fixed {
			sqe.PrepReadFixed(fd, buf, off, 0)
		} else {
			sqe.PrepRead(fd, buf, off)
		}
		sqe.SetUserData(slot)
	}
	for slot := range uint64(qd) {
		issue(slot)
	}
	if _, err := r.Submit(); err != nil {
		b.Fatal(err)
	}
	cqes := make([]CQE, qd)
	reaped, next := 0, 0 // cqes[next:reaped] are completions not yet counted
	b.ReportAllocs()
	for b.Loop() {
		if next == reaped {
			n, err := reapSpin(r, cqes)
			if n == 0 || err != nil {
				b.Fatalf("Reap = %d, %v", n, err)
			}
			reaped, next = n, 0
		}
		c := cqes[next]
		next++
		if c.Res() != blockSize {
			b.Fatalf("read slot %d: res %d", c.UserData(), c.Res())
		}
		issue(c.UserData())
		if next == reaped { // the batch is re-issued: one enter for all of it
			if _, err := r.Submit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
	b.StopTimer()
	// Reap what is still in flight before Close (U7).
	if _, err := r.Submit(); err != nil {
		b.Fatal(err)
	}
	waitCQEs(b, r, qd-(reaped-next))
}
