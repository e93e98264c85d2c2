package iscsi

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/iscsi/login"
	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
)

// pduBytes encodes a PDU with its padded data, as an initiator sends it.
func pduBytes(h *pdu.BHS, data []byte) []byte {
	h.SetDataSegmentLength(uint32(len(data)))
	b := append(append([]byte(nil), h[:]...), data...)
	return append(b, pdu.Pad(uint32(len(data)))...)
}

// fuzzSeeds are Full Feature Phase streams: commands with and without
// data, Data-Out in and out of order, NOP, Text, TMF, Logout.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	cmd := func(cdb []byte, edtl uint32, r, w, final bool, sn uint32, imm []byte) []byte {
		var h pdu.BHS
		sc := h.InitSCSICommand()
		h.SetFinal(final)
		sc.SetRead(r)
		sc.SetWrite(w)
		sc.SetExpectedDataTransferLength(edtl)
		sc.SetCmdSN(sn)
		sc.SetCDB(cdb)
		h.SetITT(0x1000 + sn)
		return pduBytes(&h, imm)
	}
	dataOut := func(itt, ttt, dsn, off uint32, final bool, n int) []byte {
		var h pdu.BHS
		do := h.InitDataOut()
		h.SetFinal(final)
		h.SetITT(itt)
		do.SetTTT(ttt)
		do.SetDataSN(dsn)
		do.SetBufferOffset(off)
		return pduBytes(&h, make([]byte, n))
	}
	tur := cmd([]byte{0, 0, 0, 0, 0, 0}, 0, false, false, true, 1, nil)
	seeds = append(seeds, tur)
	seeds = append(seeds, append(append([]byte{}, tur...), cmd(read10(0, 8), 4096, true, false, true, 2, nil)...))
	seeds = append(seeds, cmd(write10(0, 8), 4096, false, true, true, 1, make([]byte, 4096)))
	seeds = append(seeds, append(cmd(write10(0, 16), 8192, false, true, false, 1, make([]byte, 1024)),
		dataOut(0x1001, pdu.ReservedTag, 0, 1024, true, 7168)...))
	seeds = append(seeds, append(cmd(write10(8, 4), 2048, false, true, true, 1, nil),
		dataOut(0x1001, 0x10000, 0, 0, true, 2048)...))
	seeds = append(seeds, append(cmd(write10(8, 4), 2048, false, true, false, 1, nil),
		dataOut(0x1001, pdu.ReservedTag, 3, 512, true, 512)...))
	seeds = append(seeds, cmd([]byte{0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, 1024, false, true, true, 1, make([]byte, 1024)))
	var nop pdu.BHS
	no := nop.InitNOPOut()
	nop.SetImmediate(true)
	no.SetTTT(pdu.ReservedTag)
	nop.SetITT(9)
	seeds = append(seeds, pduBytes(&nop, []byte("ping")))
	var text pdu.BHS
	tr := text.InitTextRequest()
	text.SetFinal(true)
	tr.SetTTT(pdu.ReservedTag)
	tr.SetCmdSN(1)
	text.SetITT(10)
	seeds = append(seeds, pduBytes(&text, login.AppendPair(nil, "SendTargets", "")))
	var tm pdu.BHS
	tmr := tm.InitTaskMgmtRequest()
	tm.SetImmediate(true)
	tmr.SetFunction(pdu.TaskLogicalUnitReset)
	tm.SetITT(11)
	seeds = append(seeds, append(cmd(write10(0, 1), 512, false, true, true, 1, nil), pduBytes(&tm, nil)...))
	var lo pdu.BHS
	lo.InitLogoutRequest()
	lo.SetImmediate(true)
	lo.SetITT(12)
	seeds = append(seeds, pduBytes(&lo, nil))
	return seeds
}

// FuzzConnection logs in to a malloc target and sends arbitrary bytes as
// Full Feature Phase PDUs: the connection never panics (its pollers'
// supervisor counts panics), answers or drops, and when the initiator goes
// away it is torn down with every command freed and every IO back in the
// pool (I6). An iteration takes tens of milliseconds (a real TCP login), so
// run it with -fuzzminimizetime 1x: minimizing each new input for the
// default minute looks like a stall.
func FuzzConnection(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	tt := newTarget(f, targetOptions{blocks: 256, luns: nil})
	freeIOs := func() []int {
		var n []int
		for _, r := range tt.set.All() {
			r.Call(func() { n = append(n, tt.reg.Local(r).FreeIOs()) })
		}
		return n
	}
	before := freeIOs()
	f.Fuzz(func(t *testing.T, stream []byte) {
		i := dial(t, tt, iniOptions{isid: 1})
		i.c.SetWriteDeadline(time.Now().Add(time.Second))
		i.c.Write(stream)
		// Drain what comes back until the target stops talking or hangs up.
		for {
			if _, _, err := i.recv(50 * time.Millisecond); err != nil {
				break
			}
		}
		i.c.Close()
		deadline := time.Now().Add(waitTimeout)
		for len(tt.srv.Connections()) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("connection not torn down: %+v", tt.srv.Connections())
			}
			time.Sleep(time.Millisecond)
		}
		if n := tt.srv.panics.Load(); n != 0 {
			t.Fatalf("%d connection pollers panicked", n)
		}
		if after := freeIOs(); !slices.Equal(after, before) {
			t.Fatalf("free IOs per reactor %v after the connection, %v before", after, before)
		}
	})
}
