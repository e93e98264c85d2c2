package host

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/nvmf/host/hosttest"
	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/reactors"
)

// startReactor runs one adaptive reactor for a test.
func startReactor(t testing.TB) *reactors.Reactor {
	t.Helper()
	set, err := reactors.Start([]int{0}, reactors.Options{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Stop(10 * time.Second) })
	return set.Get(0)
}

// result is one completion seen by a test.
type result struct {
	ctx any
	cpl Completion
}

// chanCompleter forwards completions to a test goroutine.
type chanCompleter struct{ ch chan result }

func (c *chanCompleter) CommandDone(ctx any, cpl Completion) { c.ch <- result{ctx, cpl} }

// ioq is an I/O qpair of a test, with helpers that wait.
type ioq struct {
	t    testing.TB
	r    *reactors.Reactor
	c    *Controller
	q    *Qpair
	done chanCompleter
}

func newIOQ(t testing.TB, r *reactors.Reactor, c *Controller, depth int) *ioq {
	t.Helper()
	x := &ioq{t: t, r: r, c: c, done: chanCompleter{ch: make(chan result, 4096)}}
	var err error
	if callErr := r.Call(func() { x.q, err = c.NewIOQpair(r, IOQpairOptions{QueueDepth: depth}) }); callErr != nil {
		t.Fatal(callErr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Call(func() { c.CloseIOQpair(x.q) }) })
	return x
}

// rw submits one read or write of buf at lba and returns its completion.
func (x *ioq) rw(write bool, nsid uint32, lba uint64, buf [][]byte, blockSize int) Completion {
	x.t.Helper()
	x.submitRW(write, nsid, lba, buf, blockSize, nil)
	return x.wait().cpl
}

func (x *ioq) submitRW(write bool, nsid uint32, lba uint64, buf [][]byte, blockSize int, ctx any) {
	x.t.Helper()
	n := 0
	for _, b := range buf {
		n += len(b)
	}
	var sqe nvme.SQE
	op, dir := nvme.IORead, DirFromCtrl
	if write {
		op, dir = nvme.IOWrite, DirToCtrl
	}
	sqe.SetOpcode(uint8(op))
	sqe.SetNSID(nsid)
	sqe.SetSLBA(lba)
	sqe.SetBlockCount(uint32(n / blockSize))
	var err error
	x.r.Call(func() { err = x.q.Submit(&sqe, buf, uint32(n), dir, &x.done, ctx) })
	if err != nil {
		x.t.Fatalf("submit: %v", err)
	}
}

func (x *ioq) wait() result {
	x.t.Helper()
	select {
	case r := <-x.done.ch:
		return r
	case <-time.After(30 * time.Second):
		x.t.Fatal("no completion within 30 s")
	}
	return result{}
}

func connectFake(t testing.TB, r *reactors.Reactor, ft *hosttest.Target, o ControllerOptions) *Controller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, port, nqn := ft.Addr()
	c, err := Connect(ctx, r, TransportID{TrType: "tcp", TrAddr: addr, TrSvcID: port, SubNQN: nqn}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestFakeDataPaths: every way data moves, against the fake target: sizes
// under and over the in-capsule limit, R2T split into MAXH2CDATA chunks,
// C2HData in one PDU or many, with or without SUCCESS, digests on and off,
// a CPDA that pads, and buffers split across slices (the bounce path).
func TestFakeDataPaths(t *testing.T) {
	type variant struct {
		name             string
		digests, success bool
		cpda             uint8
		c2hChunk, ioccsz uint32
		split            bool
	}
	variants := []variant{
		{name: "plain"},
		{name: "digests", digests: true},
		{name: "success-flag", success: true},
		{name: "c2h-chunks", c2hChunk: 1536},
		{name: "cpda-digests-chunks", digests: true, cpda: 7, c2hChunk: 1024},
		{name: "no-in-capsule", ioccsz: 4},
		{name: "split-buffers", split: true, c2hChunk: 1024, digests: true},
	}
	r := startReactor(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			ft := hosttest.New(t)
			ft.CPDA, ft.C2HChunk, ft.C2HSuccess = v.cpda, v.c2hChunk, v.success
			if v.ioccsz != 0 {
				ft.IOCCSZ = v.ioccsz
			}
			ft.Start()
			c := connectFake(t, r, ft, ControllerOptions{HeaderDigest: v.digests, DataDigest: v.digests})
			ids, err := c.ActiveNamespaces(t.Context())
			if err != nil || len(ids) != 1 || ids[0] != 1 {
				t.Fatalf("active namespaces %v, %v; want [1]", ids, err)
			}
			ns, err := c.IdentifyNamespace(t.Context(), 1)
			if err != nil || ns.BlockSize != 512 || ns.Blocks != 2048 {
				t.Fatalf("namespace %+v, %v", ns, err)
			}
			x := newIOQ(t, r, c, 16)
			for i, size := range []int{512, 4096, 8192, 12288, 65536, 131072} {
				want := pattern(size, uint64(i))
				lba := uint64(i * 256)
				var buf [][]byte
				if v.split && size > 512 {
					buf = [][]byte{bytes.Clone(want[:512]), bytes.Clone(want[512:])}
				} else {
					buf = [][]byte{bytes.Clone(want)}
				}
				if cpl := x.rw(true, 1, lba, buf, 512); !cpl.Status.Success() {
					t.Fatalf("write %d bytes: %v", size, cpl.Status)
				}
				got := make([]byte, size)
				rbuf := [][]byte{got}
				if v.split && size > 512 {
					rbuf = [][]byte{got[:300], got[300:1000], got[1000:]}
				}
				if cpl := x.rw(false, 1, lba, rbuf, 512); !cpl.Status.Success() {
					t.Fatalf("read %d bytes: %v", size, cpl.Status)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("read %d bytes at LBA %d: data differs from what was written", size, lba)
				}
			}
		})
	}
}

// TestQueueFullAndDepth: a qpair takes QueueDepth commands, refuses the
// next with ErrQueueFull, and takes one again after a completion.
func TestQueueFullAndDepth(t *testing.T) {
	r := startReactor(t)
	ft := hosttest.New(t)
	ft.Start()
	c := connectFake(t, r, ft, ControllerOptions{})
	x := newIOQ(t, r, c, 8)
	bufs := make([][]byte, 9)
	for i := range bufs {
		bufs[i] = make([]byte, 512)
	}
	var errs []error
	r.Call(func() {
		for i := range 9 {
			var sqe nvme.SQE
			sqe.SetOpcode(uint8(nvme.IORead))
			sqe.SetNSID(1)
			sqe.SetSLBA(uint64(i))
			sqe.SetBlockCount(1)
			errs = append(errs, x.q.Submit(&sqe, bufs[i:i+1], 512, DirFromCtrl, &x.done, i))
		}
	})
	for i, err := range errs[:8] {
		if err != nil {
			t.Errorf("submit %d: %v", i, err)
		}
	}
	if !errors.Is(errs[8], ErrQueueFull) {
		t.Errorf("submit 9 of depth 8: %v, want ErrQueueFull", errs[8])
	}
	seen := map[any]bool{}
	for range 8 {
		r := x.wait()
		if !r.cpl.Status.Success() || seen[r.ctx] {
			t.Errorf("completion %v of %v: status %v, seen before %v", r.ctx, r, r.cpl.Status, seen[r.ctx])
		}
		seen[r.ctx] = true
	}
}

// TestConnectionLossAbortsCommands: commands outstanding when the target
// drops the connection complete once with a host path error (H4), OnFail
// runs, and a later Submit says ErrQpairFailed.
func TestConnectionLossAbortsCommands(t *testing.T) {
	r := startReactor(t)
	ft := hosttest.New(t)
	ft.Start()
	failed := make(chan error, 1)
	c := connectFake(t, r, ft, ControllerOptions{OnFail: func(err error) { failed <- err }})
	x := newIOQ(t, r, c, 4)
	if cpl := x.rw(false, 1, 0, [][]byte{make([]byte, 512)}, 512); !cpl.Status.Success() {
		t.Fatalf("read: %v", cpl.Status)
	}
	ft.DropAll()
	select {
	case err := <-failed:
		t.Logf("admin failed: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("OnFail not called within 30 s of the connection loss")
	}
	// The I/O qpair notices on its next poll: wait for it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var failedQ bool
		r.Call(func() { failedQ = x.q.Failed() })
		if failedQ {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("I/O qpair did not notice the loss within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var err error
	r.Call(func() {
		var sqe nvme.SQE
		sqe.SetOpcode(uint8(nvme.IORead))
		err = x.q.Submit(&sqe, [][]byte{make([]byte, 512)}, 512, DirFromCtrl, &x.done, nil)
	})
	if !errors.Is(err, ErrQpairFailed) {
		t.Errorf("submit after loss: %v, want ErrQpairFailed", err)
	}
}

// TestParseTransportID: SPDK's form, round trip, and every error at once.
func TestParseTransportID(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"trtype:tcp traddr:127.0.0.1 trsvcid:4420 subnqn:nqn.2024-01.io.sluice:a",
			"trtype:tcp traddr:127.0.0.1 trsvcid:4420 subnqn:nqn.2024-01.io.sluice:a", ""},
		{"TRTYPE:TCP traddr:10.0.0.1", "trtype:tcp traddr:10.0.0.1 trsvcid:4420 subnqn:" + nvme.DiscoveryNQN, ""},
		{"trtype:tcp adrfam:ipv6 traddr:::1 trsvcid:8009 hostnqn:nqn.2014-08.org.nvmexpress:uuid:5d2a7c1e-0000-4000-8000-000000000001",
			"trtype:tcp adrfam:ipv6 traddr:::1 trsvcid:8009 subnqn:" + nvme.DiscoveryNQN +
				" hostnqn:nqn.2014-08.org.nvmexpress:uuid:5d2a7c1e-0000-4000-8000-000000000001", ""},
		{"trtype:rdma traddr:1.2.3.4 trsvcid:0", "", "trtype \"rdma\", want tcp"},
		{"trtype:tcp", "", "traddr \"\""},
		{"trtype:tcp traddr:x foo:bar", "", "key \"foo\""},
		{"", "", "empty"},
		{"trtype:tcp traddr:x subnqn:bogus", "", "subnqn"},
	}
	for _, tc := range tests {
		got, err := ParseTransportID(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.err)) {
				t.Errorf("ParseTransportID(%q) = %v, want an error with %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseTransportID(%q): %v", tc.in, err)
		case got.String() != tc.want:
			t.Errorf("ParseTransportID(%q) = %s, want %s", tc.in, got, tc.want)
		default:
			if again, err := ParseTransportID(got.String()); err != nil || again != got {
				t.Errorf("round trip of %s: %+v, %v", got, again, err)
			}
		}
	}
}
