package host

import (
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
	"github.com/sluice-storage/sluice/reactors"
)

// countingCompleter counts completions per command (H1: exactly one each).
type countingCompleter struct{ done [8]atomic.Int32 }

func (c *countingCompleter) CommandDone(ctx any, _ Completion) { c.done[ctx.(int)].Add(1) }

// fuzzDepth is the fuzzed qpair's depth: the Connect's CID is fuzzDepth.
const fuzzDepth = 4

// hostileSeeds are byte streams a controller could send after ICResp (no
// digests, CPDA 0): valid exchanges and broken ones, for the fuzzer to mutate.
func hostileSeeds() [][]byte {
	resp := func(cid uint16, st nvme.Status) []byte {
		var cqe nvme.CQE
		cqe.SetCID(cid)
		cqe.SetStatus(st)
		b := make([]byte, pdu.CapsuleRespSize)
		pdu.Sender{}.EncodeCapsuleResp(b, (*[pdu.CQESize]byte)(&cqe))
		return b
	}
	c2h := func(cid uint16, off, n uint32, last, success bool) []byte {
		b := make([]byte, 64)
		k := pdu.Sender{}.EncodeC2HData(b, pdu.DataFields{CCCID: cid, DataOffset: off, DataLen: n, Last: last, Success: success})
		return append(b[:k], make([]byte, n)...)
	}
	r2t := func(cid uint16, off, n uint32) []byte {
		b := make([]byte, 64)
		return b[:pdu.Sender{}.EncodeR2T(b, pdu.R2TFields{CCCID: cid, TTAG: 7, R2TOffset: off, R2TLen: n})]
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	connected := resp(fuzzDepth, nvme.StatusSuccess)
	term := make([]byte, 64)
	term = term[:pdu.EncodeTermReq(term, pdu.TypeC2HTermReq, pdu.FESInvalidHeaderField, 2, connected[:8])]
	return [][]byte{
		{},
		connected,
		cat(connected, c2h(0, 0, 4096, true, false), resp(0, nvme.StatusSuccess)),
		cat(connected, c2h(0, 0, 1000, false, false), c2h(0, 1000, 3096, true, true)),
		cat(connected, r2t(1, 0, 8192), resp(1, nvme.StatusSuccess), resp(2, nvme.StatusSuccess)),
		cat(connected, r2t(1, 4096, 4096)),          // R2T out of order
		cat(connected, c2h(0, 0, 8192, true, true)), // more data than the read
		cat(connected, resp(3, nvme.StatusSuccess)), // a CID never used
		cat(connected, resp(0, nvme.StatusSuccess)), // a read answered without its data
		cat(connected, c2h(1, 0, 512, true, false)), // data for a write
		cat(resp(fuzzDepth, nvme.StatusConnectInvalidParameters)),
		cat(connected, term),
		[]byte(strings.Repeat("\x05\x00\x18\x00\x18\x00\x00\x00", 8)),
	}
}

// FuzzHostileController: whatever a controller sends after a valid ICResp,
// the host neither panics (a poller panic would show as its error) nor
// writes outside a command's buffers (the Go runtime would fault), and every
// command it accepted completes exactly once (H1, H2, H4).
func FuzzHostileController(f *testing.F) {
	for _, s := range hostileSeeds() {
		f.Add(s)
	}
	set, err := reactors.Start([]int{0}, reactors.Options{NoPin: true, Mode: reactors.ModePoll})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { set.Stop(10 * time.Second) })
	r := set.Get(0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	f.Fuzz(func(t *testing.T, stream []byte) {
		served := make(chan struct{})
		go func() {
			defer close(served)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			icreq := make([]byte, pdu.ICReqSize)
			if _, err := io.ReadFull(c, icreq); err != nil {
				return
			}
			icresp := make([]byte, pdu.ICRespSize)
			pdu.EncodeICResp(icresp, pdu.ICRespFields{MAXH2CData: 4096})
			c.Write(icresp)
			c.Write(stream)
			// End of stream, then drain what the host sends until it hangs
			// up: the host sees EOF after the last byte, and its writes do
			// not fail early.
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
		}()
		var cc countingCompleter
		bufs := [3][]byte{make([]byte, 4096), make([]byte, 8192), make([]byte, 512)}
		var q *Qpair
		var setupErr error
		r.Call(func() {
			q, setupErr = NewQpair(r, QpairOptions{Addr: addr, QueueDepth: fuzzDepth, HostNQN: "nqn.2024-01.io.sluice:fuzz-host",
				SubNQN: "nqn.2024-01.io.sluice:fuzz", CNTLID: nvme.CNTLIDDynamic, InCapsuleMax: 4096,
				ConnectTimeout: 2 * time.Second})
			if setupErr != nil {
				return
			}
			for i, b := range bufs {
				var sqe nvme.SQE
				op, dir := nvme.IOWrite, DirToCtrl
				if i == 0 {
					op, dir = nvme.IORead, DirFromCtrl
				}
				sqe.SetOpcode(uint8(op))
				sqe.SetNSID(1)
				sqe.SetBlockCount(uint32(len(b) / 512))
				if err := q.Submit(&sqe, [][]byte{b}, uint32(len(b)), dir, &cc, i); err != nil {
					setupErr = err
				}
			}
		})
		if setupErr != nil {
			t.Fatal(setupErr)
		}
		// The stream ends with the target's close: the qpair fails (or its
		// connect deadline passes); either way it ends.
		deadline := time.Now().Add(10 * time.Second)
		var failed bool
		var qerr error
		for !failed && time.Now().Before(deadline) {
			r.Call(func() { failed, qerr = q.Failed(), q.Err() })
			if !failed {
				time.Sleep(time.Millisecond)
			}
		}
		r.Call(q.Close)
		<-served
		if qerr != nil && strings.Contains(qerr.Error(), "panicked") {
			t.Fatalf("host panicked on the stream: %v", qerr)
		}
		for i := range bufs {
			if n := cc.done[i].Load(); n != 1 {
				t.Fatalf("command %d completed %d times, want once (qpair error: %v)", i, n, qerr)
			}
		}
	})
}
