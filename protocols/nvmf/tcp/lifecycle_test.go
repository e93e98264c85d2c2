package tcp

import (
	"testing"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// TestCloseWithCommandsInFlight: a host that vanishes with commands in every state (writes
// waiting for their data after an R2T, reads, in-capsule writes) leaves nothing behind: the
// connection and its qpair go, every request slot is free (maybeFinish checks it), every
// bdev.IO is back in its pool, and the controller is freed.
func TestCloseWithCommandsInFlight(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	admin := adminSession(t, tt.addr, testNQN, false, false)
	h := ioSession(t, tt.addr, testNQN, admin.cntlid, 1, false, false, true)
	for i := 0; i < 40; i++ {
		var sqe nvme.SQE
		sqe.SetNSID(1)
		sqe.SetSLBA(uint64(i * 64))
		sqe.SetBlockCount(64)
		switch i % 3 {
		case 0: // a write whose data the target asks for and never gets
			sqe.SetOpcode(uint8(nvme.IOWrite))
			h.submit(&sqe, 64*testBlockSize)
		case 1:
			sqe.SetOpcode(uint8(nvme.IORead))
			h.submit(&sqe, 64*testBlockSize)
		case 2:
			sqe.SetOpcode(uint8(nvme.IOWrite))
			sqe.SetBlockCount(8)
			h.cid++
			sqe.SetCID(h.cid)
			h.capsule(&sqe, make([]byte, 8*testBlockSize), true, 0)
		}
	}
	h.conn.Close()
	admin.conn.Close()
	s, _ := tt.target.Subsystem(testNQN)
	waitFor(t, "connections released", func() bool { return tt.tr.groups[0].connCount.Load()+tt.tr.groups[1].connCount.Load() == 0 })
	waitFor(t, "controller freed", func() bool { return len(s.Controllers()) == 0 })
	for _, r := range tt.set.All() {
		var free int
		r.Call(func() { free = tt.reg.Local(r).FreeIOs() })
		if want := 8192; free != want { // bdev.IOPoolSizeDefault: every IO back
			t.Errorf("reactor %d: %d IOs free after the host vanished, want %d", r.Index(), free, want)
		}
	}
}

// TestIdleReactorSleeps: with connections open and nothing to do, an adaptive reactor still
// sleeps (the group's epoll set wakes it), so an idle target costs ~0% CPU.
func TestIdleReactorSleeps(t *testing.T) {
	tt := newTestTarget(t, targetConfig{reactors: 1})
	admin := adminSession(t, tt.addr, testNQN, false, false)
	io := ioSession(t, tt.addr, testNQN, admin.cntlid, 1, false, false, true)
	r := tt.set.Get(0)
	waitFor(t, "the reactor sleeps", func() bool { return r.Stats().State == "sleeping" })
	wakeups := r.Stats().Wakeups
	// A command still wakes it and completes.
	io.mustOK(first(io.rw(nvme.IORead, 1, 0, 1, nil, testBlockSize)), "read after sleeping")
	if r.Stats().Wakeups == wakeups {
		t.Errorf("the read was served without a wake-up: the reactor was not asleep")
	}
	if r.Mode() != reactors.ModeAdaptive {
		t.Fatalf("reactor mode %v", r.Mode())
	}
}

// TestBackpressure: with a reactor's bdev.IO pool and buffer pools far smaller than the queue,
// every command still completes: reads wait for buffers (K3), commands wait for IOs in their
// poll group (T2), in order, none dropped.
func TestBackpressure(t *testing.T) {
	tt := newTestTarget(t, targetConfig{reactors: 1,
		bdevOpts: bdev.Options{IOPoolSize: 2, BufSmallCount: 1, BufLargeCount: 1}})
	admin := adminSession(t, tt.addr, testNQN, false, false)
	h := ioSession(t, tt.addr, testNQN, admin.cntlid, 1, false, false, true)
	// Every capsule in one write, so the target takes many per turn: more than its pools hold.
	want := map[uint16]bool{}
	var stream []byte
	for i := 0; i < 64; i++ {
		var sqe nvme.SQE
		sqe.SetNSID(1)
		sqe.SetSLBA(uint64(i * 8))
		sqe.SetBlockCount(8)
		sqe.SetCID(uint16(1000 + i))
		sqe.SetPSDT(nvme.PSDTSGL)
		var data []byte
		if i%2 == 0 {
			sqe.SetOpcode(uint8(nvme.IORead))
			sqe.SGL1().SetTransport(8 * testBlockSize)
		} else {
			sqe.SetOpcode(uint8(nvme.IOWrite))
			data = make([]byte, 8*testBlockSize)
			sqe.SGL1().SetInCapsule(uint32(len(data)))
		}
		b := make([]byte, 256)
		n := h.send.EncodeCapsuleCmd(b, (*[pdu.SQESize]byte)(&sqe), uint32(len(data)))
		stream = append(append(stream, b[:n]...), data...)
		want[sqe.CID()] = true
	}
	h.write(stream)
	for len(want) > 0 {
		fr := h.next()
		if fr.Type() != pdu.TypeCapsuleResp {
			continue
		}
		cqe := (*nvme.CQE)(pdu.CapsuleRespOf(fr.Header).CQE())
		if !want[cqe.CID()] || !cqe.Status().Success() {
			t.Fatalf("cid %d: %v", cqe.CID(), cqe.Status())
		}
		delete(want, cqe.CID())
	}
	gs, _ := tt.tr.Stats()
	retried := tt.target.Stats().PollGroups[0].NomemRetries
	if gs[0].BufferWaits == 0 || retried == 0 {
		t.Errorf("buffer waits %d, IO waits %d: want both paths taken", gs[0].BufferWaits, retried)
	}
}
