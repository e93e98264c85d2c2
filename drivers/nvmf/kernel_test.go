package nvmf

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/drivers/nvmf/host/hosttest"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
)

// TestKernelTargetReconnect: the kernel's nvmet-tcp namespace as bdev
// Nvme0n1 on two reactors; data written through the bdev reads back; the
// target is restarted (its port unlinked and linked again in configfs)
// while a read is outstanding, and the read completes after the controller
// reconnects on its own, with the data intact; a namespace added in the
// guest becomes bdev Nvme0n2 through the asynchronous event.
func TestKernelTargetReconnect(t *testing.T) {
	kt := hosttest.StartKernelTarget(t)
	s := bdevtest.NewStack(t, 2, reactors.Options{})
	trid := host.TransportID{TrType: "tcp", AdrFam: "ipv4", TrAddr: "127.0.0.1", TrSvcID: fmt.Sprint(kt.Port()),
		SubNQN: hosttest.KernelTargetNQN}
	m, names := attach(t, s, trid, Recovery{ReconnectDelay: time.Second, CtrlrLossTimeout: 2 * time.Minute})
	if len(names) != 1 || names[0] != "Nvme0n1" {
		t.Fatalf("bdevs %v, want [Nvme0n1]", names)
	}
	h := s.Open(t, "Nvme0n1")
	const blocks = 256 // 128 KiB
	want := make([][]byte, 2)
	for i := range 2 {
		bdevtest.Fill(h.Buf(i)[:blocks*512], uint64(i+1))
		want[i] = bytes.Clone(h.Buf(i)[:blocks*512])
		if st, detail := h.Do(t, i, bdev.IOWrite, uint64(i)*blocks, blocks); st != bdev.StatusSuccess {
			t.Fatalf("write on reactor %d: %v %s", i, st, detail)
		}
	}

	kt.Do(t, "down")
	waitNotConnected(t, m)
	type res struct {
		st     bdev.Status
		detail string
	}
	done := make(chan res, 1)
	go func() {
		clear(h.Buf(0)[:blocks*512])
		st, detail := h.Do(t, 0, bdev.IORead, 0, blocks)
		done <- res{st, detail}
	}()
	time.Sleep(3 * time.Second) // a few reconnect attempts fail meanwhile
	select {
	case r := <-done:
		t.Fatalf("read completed while the target was down: %v %s", r.st, r.detail)
	default:
	}
	kt.Do(t, "up")
	select {
	case r := <-done:
		if r.st != bdev.StatusSuccess {
			t.Fatalf("read across the restart: %v %s", r.st, r.detail)
		}
	case <-time.After(time.Minute):
		t.Fatal("read not completed within a minute of the target coming back")
	}
	if !bytes.Equal(h.Buf(0)[:blocks*512], want[0]) {
		t.Error("reactor 0: data read after the reconnect differs from what was written")
	}
	clear(h.Buf(1)[:blocks*512])
	if st, detail := h.Do(t, 1, bdev.IORead, blocks, blocks); st != bdev.StatusSuccess || !bytes.Equal(h.Buf(1)[:blocks*512], want[1]) {
		t.Errorf("reactor 1 after the reconnect: %v %s, data equal %v", st, detail, bytes.Equal(h.Buf(1)[:blocks*512], want[1]))
	}
	st := m.Stats()[0]
	t.Logf("after the restart: %+v", st)
	if st.Reconnects < 1 || st.State != "connected" {
		t.Errorf("stats: %d reconnects, state %s; want at least one, connected", st.Reconnects, st.State)
	}

	kt.Do(t, "addns")
	deadline := time.Now().Add(time.Minute)
	for {
		if _, ok := s.Reg.Lookup("Nvme0n2"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("namespace 2 did not become bdev Nvme0n2 within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitNotConnected(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for m.Stats()[0].State == "connected" {
		select {
		case <-ctx.Done():
			t.Fatal("the controller did not notice the target going down within a minute")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
