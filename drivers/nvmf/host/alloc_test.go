package host

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
	"github.com/sluice-storage/sluice/reactors"
)

// readResponder answers every read capsule on c with a 512-byte C2HData
// carrying SUCCESS, from buffers made once: a peer that allocates nothing,
// so AllocsPerRun sees only the host. No digests, CPDA 0.
func readResponder(c net.Conn) {
	in := make([]byte, 64<<10)
	out := make([]byte, 0, 64<<10)
	zeros := make([]byte, 512)
	hdr := make([]byte, pdu.DataHeaderSize)
	var pending []byte
	for {
		n, err := c.Read(in[len(pending):])
		if err != nil {
			return
		}
		buf := in[:len(pending)+n]
		out = out[:0]
		for len(buf) >= pdu.CapsuleCmdSize {
			cid := binary.LittleEndian.Uint16(buf[8+2:])
			pdu.Sender{}.EncodeC2HData(hdr, pdu.DataFields{CCCID: cid, DataLen: 512, Last: true, Success: true})
			out = append(out, hdr...)
			out = append(out, zeros...) // in place: cap was made once
			buf = buf[pdu.CapsuleCmdSize:]
		}
		pending = in[:copy(in, buf)]
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// closedLoop keeps depth reads outstanding until left reaches zero, all on
// the reactor; it is a reactors.Message (to start) and the Completer.
type closedLoop struct {
	q     *Qpair
	depth int
	left  int
	out   int
	buf   [][]byte
	done  chan struct{}
	err   error
}

func (l *closedLoop) Deliver() {
	for range l.depth {
		l.submit()
	}
}

func (l *closedLoop) submit() {
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(nvme.IORead))
	sqe.SetNSID(1)
	sqe.SetBlockCount(1)
	if err := l.q.Submit(&sqe, l.buf, 512, DirFromCtrl, l, nil); err != nil {
		l.err = err
		return
	}
	l.left--
	l.out++
}

func (l *closedLoop) CommandDone(_ any, c Completion) {
	l.out--
	if !c.Status.Success() {
		l.err = ErrQpairFailed
	}
	if l.left > 0 && l.err == nil {
		l.submit()
	}
	if l.out == 0 {
		l.done <- struct{}{}
	}
}

// TestSubmitCompleteAllocs: a read's whole path on the host (Submit,
// capsule encode, sendmsg, receive, C2HData landing, completion) allocates
// nothing (H5).
func TestSubmitCompleteAllocs(t *testing.T) {
	set, err := reactors.Start([]int{0}, reactors.Options{NoPin: true, Mode: reactors.ModePoll})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Stop(10 * time.Second)
	r := set.Get(0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		icreq := make([]byte, pdu.ICReqSize)
		io.ReadFull(c, icreq)
		resp := make([]byte, pdu.ICRespSize)
		pdu.EncodeICResp(resp, pdu.ICRespFields{MAXH2CData: 8192})
		c.Write(resp)
		connect := make([]byte, pdu.CapsuleCmdSize+nvme.ConnectDataSize)
		io.ReadFull(c, connect)
		var cqe nvme.CQE
		cqe.SetCID(binary.LittleEndian.Uint16(connect[8+2:]))
		b := make([]byte, pdu.CapsuleRespSize)
		pdu.Sender{}.EncodeCapsuleResp(b, (*[pdu.CQESize]byte)(&cqe))
		c.Write(b)
		readResponder(c)
	}()
	ready := make(chan struct{}, 1)
	l := &closedLoop{depth: 8, buf: [][]byte{make([]byte, 512)}, done: make(chan struct{}, 1)}
	r.Call(func() {
		l.q, err = NewQpair(r, QpairOptions{Addr: ln.Addr().(*net.TCPAddr), QID: 1, QueueDepth: 8,
			HostNQN: "nqn.2024-01.io.sluice:alloc-host", SubNQN: "nqn.2024-01.io.sluice:alloc",
			OnReady: func(*Qpair) { ready <- struct{}{} }})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Call(l.q.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("qpair not ready")
	}
	run := func() {
		l.left = 1000
		if err := r.Post(l); err != nil {
			t.Fatal(err)
		}
		<-l.done
	}
	run() // warm up
	start := time.Now()
	run()
	t.Logf("1000 reads at depth 8 in %v (a peer goroutine on a shared machine: not a figure)", time.Since(start).Round(time.Microsecond))
	// testing.AllocsPerRun would pin GOMAXPROCS to 1, where a busy-polling
	// reactor and the peer take turns by preemption (seconds per run): the
	// process's malloc count around a window of runs says the same. The
	// runtime allocates on its own now and then (a GC cycle's workers, a new
	// OS thread for a goroutine that blocked), so GC is off and the quietest
	// of three windows counts: a path that allocated would show in all.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	least := ^uint64(0)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 5 {
			run()
		}
		runtime.ReadMemStats(&after)
		least = min(least, after.Mallocs-before.Mallocs)
	}
	if least != 0 || l.err != nil {
		t.Errorf("%d allocations in 5000 reads (err %v), want 0", least, l.err)
	}
}
