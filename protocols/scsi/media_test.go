package scsi

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
	"github.com/sluice-storage/sluice/services/bdev"
	"golang.org/x/sys/unix"
)

// TestStatusSense walks every bdev.Status through the one translation.
func TestStatusSense(t *testing.T) {
	for st := bdev.Status(0); st < bdev.StatusCount; st++ {
		io := &bdev.IO{Type: bdev.IORead, Status: st, Errno: unix.EIO, MiscompareOffset: 7,
			SCSI: bdev.SCSIStatus{Status: 0x02, SenseKey: 0x3, ASC: 0x11, ASCQ: 0}}
		status, s := statusSense(io, opRead)
		switch st {
		case bdev.StatusSuccess:
			if status != cdb.StatusGood {
				t.Errorf("%v: status %#x", st, status)
			}
		case bdev.StatusNoResources, bdev.StatusRetry:
			if status != cdb.StatusBusy {
				t.Errorf("%v: status %#x, want BUSY", st, status)
			}
		default:
			if status != cdb.StatusCheckCondition || s.Key == cdb.KeyNoSense {
				t.Errorf("%v: status %#x key %#x, want CHECK CONDITION with a sense key", st, status, s.Key)
			}
		}
	}
	io := &bdev.IO{Type: bdev.IOWrite, Status: bdev.StatusErrno, Errno: unix.ENOSPC}
	if _, s := statusSense(io, opWrite); s.Key != cdb.KeyDataProtect || s.ASC != ascSpaceAllocationFailed {
		t.Errorf("ENOSPC: %+v", s)
	}
}

// TestReadWriteZeroAllocs: a READ(10) and a WRITE(10) of 8 blocks through
// the device, with their completions, allocate nothing (S3).
func TestReadWriteZeroAllocs(t *testing.T) {
	g := newRig(t, 1024, 512, Config{})
	n := g.nexus(t, "iqn.2024-01.test:a", 1)
	g.clearUA(t, n)
	c := &countingCompleter{}
	read := &Task{Nexus: n, CDB: []byte{0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0}, TransferLength: 4096, Completer: c}
	write := &Task{Nexus: n, CDB: []byte{0x2a, 0, 0, 0, 0, 8, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0}, TransferLength: 4096, Completer: c}
	var allocs float64
	g.call(t, func() {
		l := g.reg.Local(g.r)
		allocs = testing.AllocsPerRun(500, func() {
			if g.dev.Start(write) != ProgressDataOut || write.Resume() != ProgressRunning {
				panic("write did not run")
			}
			l.Poll()
			write.Release()
			if g.dev.Start(read) != ProgressRunning {
				panic("read did not run")
			}
			l.Poll()
			read.Release()
		})
	})
	if allocs != 0 || c.n < 1000 || c.bad != 0 {
		t.Fatalf("%v allocations per read+write over %d tasks (%d not GOOD), want 0", allocs, c.n, c.bad)
	}
}

type countingCompleter struct{ n, bad int }

func (c *countingCompleter) TaskDone(t *Task) {
	c.n++
	if t.Status != cdb.StatusGood {
		c.bad++
	}
}

// TestTaskReleaseReturnsEverything: after a mix of commands, every IO and
// buffer is back in the reactor's pools (S3).
func TestTaskReleaseReturnsEverything(t *testing.T) {
	g := newRig(t, 2048, 512, Config{Thin: true})
	n := g.nexus(t, "iqn.2024-01.test:a", 1)
	var before int
	g.call(t, func() { before = g.reg.Local(g.r).FreeIOs() })
	seeds := []string{"00", "12 01 83 00 ff 00", "2a 00 00 00 00 00 00 00 04 00", "28 00 00 00 00 00 00 00 04 00",
		"41 08 00 00 00 00 00 00 08 00", "89 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00", "8b 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00"}
	for _, s := range seeds {
		g.do(t, n, s, 4096, make([]byte, 4096))
	}
	g.call(t, func() {
		if after := g.reg.Local(g.r).FreeIOs(); after != before {
			t.Errorf("free IOs %d after the commands, %d before", after, before)
		}
	})
}

// FuzzTask feeds random CDBs with random data-out to a thin malloc LUN: the
// device never panics, answers CHECK CONDITION with sense, and gives back
// every IO.
func FuzzTask(f *testing.F) {
	for _, s := range [][]byte{
		{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, {0x2a, 0, 0, 0, 0, 1, 0, 0, 2, 0}, {0x12, 1, 0xb0, 0, 0xff, 0},
		{0x89, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0}, {0x41, 0x08, 0, 0, 0, 0, 0, 0, 4, 0},
		{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, {0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0}, {0x15, 0x10, 0, 0, 16, 0},
		{0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, {0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0},
	} {
		f.Add(s, uint32(4096), []byte{0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2})
	}
	g := newRig(f, 256, 512, Config{Thin: true, Removable: true})
	n := g.nexus(f, "iqn.2024-01.test:fuzz", 1)
	f.Fuzz(func(t *testing.T, c []byte, edtl uint32, out []byte) {
		edtl %= 1 << 18
		r := g.doCDB(t, n, 0, c, edtl, out)
		if r.status == cdb.StatusCheckCondition && len(r.sense) == 0 {
			t.Fatalf("cdb % x: CHECK CONDITION without sense", c)
		}
		if r.status == cdb.StatusGood && uint32(len(r.data)) > max(r.dataSize, uint32(TransferSizeMax)) {
			t.Fatalf("cdb % x: %d bytes of data-in for a %d-byte command", c, len(r.data), r.dataSize)
		}
		g.call(t, func() {
			if l := g.lun; l.Running() != 0 {
				t.Fatalf("cdb % x: %d tasks still at the bdev", c, l.Running())
			}
		})
	})
}

// TestRandomMix runs a seeded stream of reads, writes, compares and unmaps
// from two nexuses and checks every read against a model of the LUN.
func TestRandomMix(t *testing.T) {
	const blocks, bs = 512, 512
	g := newRig(t, blocks, bs, Config{Thin: true})
	ns := []*Nexus{g.nexus(t, "iqn.2024-01.test:a", 1), g.nexus(t, "iqn.2024-01.test:b", 2)}
	for _, n := range ns {
		g.clearUA(t, n)
	}
	model := make([]byte, blocks*bs)
	seed := uint64(20240117)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 400 {
		n := ns[rng.IntN(2)]
		lba := rng.Uint64N(blocks - 16)
		cnt := 1 + rng.Uint64N(16)
		cdb10 := func(op byte) []byte {
			c := []byte{op, 0, 0, 0, 0, 0, 0, 0, 0, 0}
			binary.BigEndian.PutUint32(c[2:], uint32(lba))
			binary.BigEndian.PutUint16(c[7:], uint16(cnt))
			return c
		}
		span := model[lba*bs : (lba+cnt)*bs]
		switch rng.IntN(4) {
		case 0:
			data := make([]byte, len(span))
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			if r := g.doCDB(t, n, 0, cdb10(0x2a), uint32(len(data)), data); r.status != cdb.StatusGood {
				t.Fatalf("seed %d op %d: write: %v", seed, i, r)
			}
			copy(span, data)
		case 1:
			r := g.doCDB(t, n, 0, cdb10(0x28), uint32(len(span)), nil)
			if r.status != cdb.StatusGood || string(r.data) != string(span) {
				t.Fatalf("seed %d op %d: read LBA %d+%d differs from the model (%v)", seed, i, lba, cnt, r)
			}
		case 2:
			p := make([]byte, 24)
			binary.BigEndian.PutUint16(p, 22)
			binary.BigEndian.PutUint16(p[2:], 16)
			binary.BigEndian.PutUint64(p[8:], lba)
			binary.BigEndian.PutUint32(p[16:], uint32(cnt))
			if r := g.doCDB(t, n, 0, []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, 24, p); r.status != cdb.StatusGood {
				t.Fatalf("seed %d op %d: unmap: %v", seed, i, r)
			}
			clear(span)
		case 3:
			c := []byte{0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}
			binary.BigEndian.PutUint64(c[2:], lba)
			newData := make([]byte, bs)
			for j := range newData {
				newData[j] = byte(rng.Uint32())
			}
			r := g.doCDB(t, n, 0, c, 2*bs, append(append([]byte{}, span[:bs]...), newData...))
			if r.status != cdb.StatusGood {
				t.Fatalf("seed %d op %d: compare and write of the model's data: %v", seed, i, r)
			}
			copy(span, newData)
		}
	}
}

// TestBusyIsBackpressure: with the reactor's IOs all taken, Start answers
// ProgressBusy and keeps nothing; once an IO is back the same task runs.
func TestBusyIsBackpressure(t *testing.T) {
	g := newRig(t, 1024, 512, Config{})
	n := g.nexus(t, "iqn.2024-01.test:a", 1)
	g.clearUA(t, n)
	c := &countingCompleter{}
	task := &Task{Nexus: n, CDB: []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, TransferLength: 512, Completer: c}
	g.call(t, func() {
		l := g.reg.Local(g.r)
		var taken []*bdev.IO
		for io := l.AllocIO(); io != nil; io = l.AllocIO() {
			taken = append(taken, io)
		}
		bufs := l.FreeIOs()
		if p := g.dev.Start(task); p != ProgressBusy || task.Running() || bufs != l.FreeIOs() {
			t.Errorf("Start with no IO left: %v (running %v)", p, task.Running())
		}
		taken[0].Free()
		if p := g.dev.Start(task); p != ProgressRunning {
			t.Errorf("Start with an IO back: %v", p)
		}
		l.Poll()
		task.Release()
		for _, io := range taken[1:] {
			io.Free()
		}
	})
	if c.n != 1 || c.bad != 0 {
		t.Errorf("%d completions (%d bad), want 1 good", c.n, c.bad)
	}
}
