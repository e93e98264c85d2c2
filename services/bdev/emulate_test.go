package bdev

import (
	"strings"
	"testing"

	"github.com/sluice-storage/sluice/reactors"
)

// cawSubmit submits a compare-and-write of blocks at off: compare with cmp,
// then write data.
func (s *stack) cawSubmit(t testing.TB, ch *Channel, rec *recorder, off, blocks uint64, cmp, data []byte, tag uint64) {
	t.Helper()
	s.call(t, ch.owner.Index(), func() {
		io := ch.AllocIO()
		io.Type, io.OffsetBlocks, io.Blocks, io.Completer = IOCompareAndWrite, off, blocks, rec
		io.SetBuf(data)
		io.CompareIovecs = [][]byte{cmp}
		io.Ctx[0] = tag
		ch.Submit(io)
	})
}

func TestCompareEmulated(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{IOTypes: IOTypesOf(IORead, IOWrite)})
	b := s.fakeBdev(t, "f0", f, 64)
	if !b.IOTypes().Has(IOCompare) || !b.IOTypes().Has(IOCompareAndWrite) {
		t.Fatalf("IOTypes %v, want the emulated compares", b.IOTypes())
	}
	ch := s.channel(t, s.open(t, "f0", true), 0)
	data, other := s.buf(t, 0, 2048), s.buf(t, 0, 2048)
	for i := range data {
		data[i] = byte(i)
	}
	copy(other, data)
	other[700] ^= 1
	rec := newRecorder()
	s.submit(t, ch, rec, IOWrite, 4, 4, data, 0)
	rec.wait(t)
	tests := []struct {
		buf  []byte
		want Status
		off  uint64
	}{{data, StatusSuccess, 0}, {other, StatusMiscompare, 700}}
	for _, tc := range tests {
		s.call(t, 0, func() {
			io := ch.AllocIO()
			io.Type, io.OffsetBlocks, io.Blocks, io.Completer = IOCompare, 4, 4, completerFunc(func(io *IO) {
				if io.Status != tc.want || io.MiscompareOffset != tc.off {
					t.Errorf("compare: %s, want %v at %d", io.StatusString(), tc.want, tc.off)
				}
				io.Free()
				rec.done <- result{}
			})
			io.AddIovec(tc.buf[:1000]) // two iovecs, cut mid-block
			io.AddIovec(tc.buf[1000:])
			ch.Submit(io)
		})
		rec.wait(t)
	}
	if log := s.atBackend(t, f, 0); strings.Contains(log, "compare") {
		t.Fatalf("a compare reached a back end that does none: %s", log)
	}
}

type completerFunc func(io *IO)

func (f completerFunc) Complete(io *IO) { f(io) }

func TestCompareAndWrite(t *testing.T) {
	s := newStack(t, 1, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{IOTypes: IOTypesOf(IORead, IOWrite)})
	s.fakeBdev(t, "f0", f, 64)
	ch := s.channel(t, s.open(t, "f0", true), 0)
	old, next, wrong := s.buf(t, 0, 1024), s.buf(t, 0, 1024), s.buf(t, 0, 1024)
	for i := range old {
		old[i], next[i], wrong[i] = 1, 2, 1
	}
	wrong[1023] = 9
	rec := newRecorder()
	s.submit(t, ch, rec, IOWrite, 10, 2, old, 0)
	rec.wait(t)
	s.cawSubmit(t, ch, rec, 10, 2, wrong, next, 1)
	if res := rec.wait(t); res.status != StatusMiscompare {
		t.Fatalf("compare-and-write with a wrong last byte: %v, want miscompare", res.status)
	}
	if got := f.mem[10*512 : 12*512]; got[0] != 1 || got[1023] != 1 {
		t.Fatalf("a miscompared compare-and-write wrote")
	}
	s.cawSubmit(t, ch, rec, 10, 2, old, next, 2)
	if res := rec.wait(t); res.status != StatusSuccess {
		t.Fatalf("compare-and-write: %v", res.status)
	}
	if got := f.mem[10*512 : 12*512]; got[0] != 2 || got[1023] != 2 {
		t.Fatalf("compare-and-write did not write")
	}
	s.call(t, 0, func() {
		l := s.reg.Local(s.set.Get(0))
		if l.FreeIOs() != testOptions.IOPoolSize || len(l.small.free) != testOptions.BufSmallCount-3 {
			t.Errorf("%d IOs, %d small buffers free; want all IOs and all but the test's 3 buffers", l.FreeIOs(), len(l.small.free))
		}
	})
}

// TestCompareAndWriteAtomic: from the moment a compare-and-write holds its
// range until its write is done, a write to the range from another reactor
// waits; reads pass.
func TestCompareAndWriteAtomic(t *testing.T) {
	s := newStack(t, 2, reactors.Options{}, testOptions)
	f := newFake(512, 64, Info{IOTypes: IOTypesOf(IORead, IOWrite)})
	f.hold = true
	s.fakeBdev(t, "f0", f, 64)
	d := s.open(t, "f0", true)
	ch0, ch1 := s.channel(t, d, 0), s.channel(t, d, 1)
	zero, data := s.buf(t, 0, 512), s.buf(t, 0, 512)
	data[0] = 7
	rec := newRecorder()
	s.cawSubmit(t, ch0, rec, 5, 1, zero, data, 1)
	// The lock goes round both reactors before the read goes down.
	s.eventually(t, func() bool { return strings.Contains(s.atBackend(t, f, 0), "read 5+1") })
	other := s.buf(t, 1, 512)
	s.submit(t, ch1, rec, IOWrite, 5, 1, other, 2)
	s.submit(t, ch1, rec, IORead, 5, 1, other, 3)
	if log := s.atBackend(t, f, 1); strings.Contains(log, "write") || !strings.Contains(log, "read 5+1") {
		t.Fatalf("reactor 1's back end saw %q during the compare-and-write: want the read only", log)
	}
	s.call(t, 0, func() { f.chans[0].release(1) }) // the read: equal, so the write goes down
	if log := s.atBackend(t, f, 0); !strings.Contains(log, "write 5+1") {
		t.Fatalf("compare-and-write's write not sent: %s", log)
	}
	s.call(t, 1, func() { f.chans[1].release(1) }) // reactor 1's read
	if res := rec.wait(t); res.tag != 3 {
		t.Fatalf("IO %d completed, want the read 3", res.tag)
	}
	s.call(t, 0, func() { f.chans[0].release(1) }) // the write
	if res := rec.wait(t); res.tag != 1 || res.status != StatusSuccess {
		t.Fatalf("IO %d %v, want the compare-and-write to succeed", res.tag, res.status)
	}
	// The unlock goes round, then reactor 1 admits its held write.
	s.eventually(t, func() bool { return strings.Contains(s.atBackend(t, f, 1), "write 5+1") })
	s.call(t, 1, func() { f.chans[1].release(1) })
	if res := rec.wait(t); res.tag != 2 {
		t.Fatalf("IO %d completed, want the held write 2", res.tag)
	}
	if f.mem[5*512] != 0 {
		t.Fatalf("block 5 starts with %d, want reactor 1's write (0) last", f.mem[5*512])
	}
}

// eventually polls cond, a reactor turn apart (atBackend is a Call), and
// fails after waitTurnsMax tries.
func (s *stack) eventually(t testing.TB, cond func() bool) {
	t.Helper()
	const waitTurnsMax = 100000
	for range waitTurnsMax {
		if cond() {
			return
		}
	}
	t.Fatalf("condition not met after %d reactor turns", waitTurnsMax)
}
