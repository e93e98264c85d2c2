package host

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/nvmf/host/hosttest"
	"github.com/sluice-storage/sluice/protocols/nvme"
)

// TestKernelTarget runs our host against the Linux kernel's nvmet-tcp in
// the guest (ARCHITECTURE.md: only a real peer proves a protocol): discovery,
// connect, identify, data written and read back at several sizes and depths
// with digests off and on, reads ended by C2HData SUCCESS (SQ flow control
// off), keep-alive holding an idle association past KATO, an asynchronous
// event when a namespace appears, and a target restart that fails the old
// association's commands with a host path error and lets a new one connect.
// One guest boot for all of it: under TCG a boot costs seconds.
func TestKernelTarget(t *testing.T) {
	kt := hosttest.StartKernelTarget(t)
	r := startReactor(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	t.Run("discovery", func(t *testing.T) {
		entries, err := Discover(ctx, r, ktTRID(kt, nvme.DiscoveryNQN), ControllerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range entries {
			t.Logf("discovery entry: trtype %d subtype %d traddr %q trsvcid %q subnqn %q", e.TRTYPE, e.SUBTYPE, e.TRADDR, e.TRSVCID, e.SUBNQN)
			if e.SUBNQN == hosttest.KernelTargetNQN && e.TRTYPE == nvme.TransportTCP && e.TRSVCID == fmt.Sprint(kt.Port()) {
				found = true
			}
		}
		if !found {
			t.Errorf("discovery log lacks %s on TCP port %d", hosttest.KernelTargetNQN, kt.Port())
		}
	})

	for _, v := range []struct {
		name    string
		o       ControllerOptions
		sizes   []int
		depths  []int
		blocksZ bool
	}{
		{"plain", ControllerOptions{}, []int{512, 4096, 8192, 16384, 20480, 65536, 131072, 1 << 20}, []int{1, 16}, true},
		{"digests", ControllerOptions{HeaderDigest: true, DataDigest: true}, []int{512, 4096, 20480, 131072}, []int{1, 8}, false},
		{"sqflow-off", ControllerOptions{DisableSQFlow: true}, []int{4096, 65536}, []int{1, 8}, false},
	} {
		t.Run(v.name, func(t *testing.T) {
			c, err := Connect(ctx, r, ktTRID(kt, hosttest.KernelTargetNQN), v.o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			id := c.Identify()
			subnqn, _ := id.SubNQN()
			t.Logf("controller %d: VS %#x MQES %d IOCCSZ %d (in-capsule %d) MDTS %d KAS %d queues %d subnqn %s",
				c.CNTLID(), uint32(c.Version()), c.CAP().MQES, id.IOCCSZ(), c.InCapsuleMax(), id.MDTS(), id.KAS(), c.IOQueues(), subnqn)
			if subnqn != hosttest.KernelTargetNQN {
				t.Errorf("Identify SUBNQN %q, want %q", subnqn, hosttest.KernelTargetNQN)
			}
			ids, err := c.ActiveNamespaces(ctx)
			if err != nil || len(ids) == 0 || ids[0] != 1 {
				t.Fatalf("active namespaces %v, %v; want 1 first", ids, err)
			}
			ns, err := c.IdentifyNamespace(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("namespace 1: %d blocks of %d bytes, uuid %x", ns.Blocks, ns.BlockSize, ns.UUID)
			if ns.Blocks*uint64(ns.BlockSize) != 64<<20 {
				t.Errorf("namespace 1 of %d bytes, want the 64 MiB RAM disk", ns.Blocks*uint64(ns.BlockSize))
			}
			bs := int(ns.BlockSize)
			for _, depth := range v.depths {
				x := newIOQ(t, r, c, depth)
				for k, size := range v.sizes {
					lba := uint64(k) * (2 << 20) / uint64(bs) // 2 MiB apart
					writeReadDepth(t, x, lba, size, depth, bs, uint64(depth*100+k))
				}
			}
		})
	}

	t.Run("keep-alive", func(t *testing.T) {
		c, err := Connect(ctx, r, ktTRID(kt, hosttest.KernelTargetNQN), ControllerOptions{KATO: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		x := newIOQ(t, r, c, 4)
		time.Sleep(4 * time.Second) // idle for four KATOs: only keep-alives keep it
		if c.Failed() {
			t.Fatalf("association failed while idle: %v", c.Err())
		}
		writeReadDepth(t, x, 0, 4096, 1, 512, 1)
	})

	t.Run("namespace-added-event", func(t *testing.T) {
		changed := make(chan struct{}, 4)
		c, err := Connect(ctx, r, ktTRID(kt, hosttest.KernelTargetNQN), ControllerOptions{
			OnNamespaceChange: func() { changed <- struct{}{} }})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		kt.Do(t, "addns")
		select {
		case <-changed:
		case <-time.After(time.Minute):
			t.Fatal("no namespace-change event within a minute of adding namespace 2")
		}
		ids, err := c.ActiveNamespaces(ctx)
		if err != nil || len(ids) != 2 || ids[1] != 2 {
			t.Errorf("active namespaces after the event: %v, %v; want [1 2]", ids, err)
		}
	})

	t.Run("restart", func(t *testing.T) {
		failed := make(chan error, 1)
		c, err := Connect(ctx, r, ktTRID(kt, hosttest.KernelTargetNQN), ControllerOptions{OnFail: func(err error) { failed <- err }})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		x := newIOQ(t, r, c, 4)
		writeReadDepth(t, x, 0, 4096, 1, 512, 2)
		kt.Do(t, "down")
		select {
		case err := <-failed:
			t.Logf("association failed as the target went down: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("no failure within a minute of the target going down")
		}
		if _, err := Connect(ctx, r, ktTRID(kt, hosttest.KernelTargetNQN), ControllerOptions{ConnectTimeout: 5 * time.Second}); err == nil {
			t.Error("connected while the subsystem is unlinked from the port")
		} else {
			t.Logf("connect while down: %v", err)
		}
		kt.Do(t, "up")
		c2, err := Connect(ctx, r, ktTRID(kt, hosttest.KernelTargetNQN), ControllerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		x2 := newIOQ(t, r, c2, 4)
		buf := make([]byte, 4096)
		if cpl := x2.rw(false, 1, 0, [][]byte{buf}, 512); !cpl.Status.Success() {
			t.Fatalf("read after restart: %v", cpl.Status)
		}
		if !bytes.Equal(buf, pattern(4096, 2*1000)) { // writeReadDepth's first IO of seed 2
			t.Error("data written before the restart did not read back after it")
		}
	})
}

// writeReadDepth writes depth IOs of size bytes from lba on at once, reads
// them back at once and compares.
func writeReadDepth(t *testing.T, x *ioq, lba uint64, size, depth, bs int, seed uint64) {
	t.Helper()
	want := make([][]byte, depth)
	for i := range want {
		want[i] = pattern(size, seed*1000+uint64(i))
		x.submitRW(true, 1, lba+uint64(i*size/bs), [][]byte{want[i]}, bs, i)
	}
	for range depth {
		if r := x.wait(); !r.cpl.Status.Success() {
			t.Fatalf("write %d bytes at depth %d (IO %v): %v", size, depth, r.ctx, r.cpl.Status)
		}
	}
	got := make([][]byte, depth)
	for i := range got {
		got[i] = make([]byte, size)
		x.submitRW(false, 1, lba+uint64(i*size/bs), [][]byte{got[i]}, bs, i)
	}
	for range depth {
		if r := x.wait(); !r.cpl.Status.Success() {
			t.Fatalf("read %d bytes at depth %d (IO %v): %v", size, depth, r.ctx, r.cpl.Status)
		}
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%d bytes at LBA %d (depth %d): read back differs from what was written", size, lba+uint64(i*size/bs), depth)
		}
	}
}

func ktTRID(kt *hosttest.KernelTarget, subnqn string) TransportID {
	return TransportID{TrType: "tcp", AdrFam: "ipv4", TrAddr: "127.0.0.1", TrSvcID: fmt.Sprint(kt.Port()), SubNQN: subnqn}
}
