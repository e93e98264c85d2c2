package nvmf

import (
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/protocols/nvme"
	target "github.com/sluice-storage/sluice/protocols/nvmf"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
)

const ownNQN = "nqn.2016-06.io.sluice:own-target"

// ownTarget is the project's NVMe/TCP target (protocols/nvmf, another
// engineer's) on its own two reactors with a 16 MiB malloc namespace.
type ownTarget struct {
	t      *target.Target
	listen target.ListenAddress
}

func startOwnTarget(t *testing.T) *ownTarget {
	t.Helper()
	set, err := reactors.Start(make([]int, 2), reactors.Options{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := bdev.NewRegistry(set, bdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg.RegisterDriver(malloc.Name, malloc.Driver{})
	if _, err := reg.Create(bdev.Spec{Name: "Malloc0", Driver: malloc.Name, BlockSize: 512, Blocks: 32768}); err != nil {
		t.Fatal(err)
	}
	tg, err := target.NewTarget(target.Options{Set: set, Bdevs: reg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tg.Close(time.Now().Add(20 * time.Second))
		reg.Close()
		set.Stop(20 * time.Second)
	})
	if _, err := tcp.New(tg, tcp.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.CreateSubsystem(target.SubsystemConfig{NQN: ownNQN, AllowAnyHost: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.AddNamespace(ownNQN, target.NamespaceConfig{NSID: 1, Bdev: "Malloc0",
		UUID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(ownNQN+"/1"))}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	ot := &ownTarget{t: tg, listen: target.ListenAddress{TrType: "TCP", AdrFam: "IPv4", TrAddr: "127.0.0.1", TrSvcID: port}}
	if err := tg.AddListener(ownNQN, ot.listen); err != nil {
		t.Fatal(err)
	}
	return ot
}

func (ot *ownTarget) trid(subnqn string) host.TransportID {
	return host.TransportID{TrType: "tcp", AdrFam: "ipv4", TrAddr: "127.0.0.1", TrSvcID: ot.listen.TrSvcID, SubNQN: subnqn}
}

// TestOwnTarget runs our host against our target: discovery, the namespace
// as a bdev, data at several sizes with digests off and on, and a restart
// (the listener removed, which drops the connections, then added back)
// that the controller rides out by reconnecting with its IO waiting.
func TestOwnTarget(t *testing.T) {
	ot := startOwnTarget(t)
	r := bdevtest.NewStack(t, 1, reactors.Options{}).Set.Get(0)
	entries, err := host.Discover(t.Context(), r, ot.trid(nvme.DiscoveryNQN), host.ControllerOptions{})
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	found := false
	for _, e := range entries {
		found = found || (e.SUBNQN == ownNQN && e.TRSVCID == ot.listen.TrSvcID)
	}
	if !found {
		t.Errorf("discovery log %+v lacks %s", entries, ownNQN)
	}

	for _, digests := range []bool{false, true} {
		t.Run("digests="+strconv.FormatBool(digests), func(t *testing.T) {
			s := bdevtest.NewStack(t, 2, reactors.Options{})
			m := NewManager(s.Reg, testLogger(t))
			t.Cleanup(func() { m.Close() })
			names, err := m.Attach(t.Context(), AttachOptions{Name: "Nvme0", TransportID: ot.trid(ownNQN),
				Host:     host.ControllerOptions{HeaderDigest: digests, DataDigest: digests},
				Recovery: Recovery{ReconnectDelay: 100 * time.Millisecond, CtrlrLossTimeout: 30 * time.Second}})
			if err != nil || len(names) != 1 {
				t.Fatalf("attach: %v, %v", names, err)
			}
			h := s.Open(t, "Nvme0n1")
			for k, blocks := range []uint64{1, 8, 16, 40, 128, 256, 512} {
				for i := range 2 {
					lba := uint64(k*1024 + i*512)
					bdevtest.Fill(h.Buf(i)[:blocks*512], lba+1)
					want := bytes.Clone(h.Buf(i)[:blocks*512])
					if st, d := h.Do(t, i, bdev.IOWrite, lba, blocks); st != bdev.StatusSuccess {
						t.Fatalf("write %d blocks on reactor %d: %v %s", blocks, i, st, d)
					}
					clear(h.Buf(i)[:blocks*512])
					if st, d := h.Do(t, i, bdev.IORead, lba, blocks); st != bdev.StatusSuccess {
						t.Fatalf("read %d blocks on reactor %d: %v %s", blocks, i, st, d)
					}
					if !bytes.Equal(h.Buf(i)[:blocks*512], want) {
						t.Fatalf("%d blocks at LBA %d: read back differs", blocks, lba)
					}
				}
			}
			if digests {
				return
			}
			// Restart: drop the listener (and with it the connections), read
			// while it is down, bring it back.
			if err := ot.t.RemoveListener(ownNQN, ot.listen); err != nil {
				t.Fatal(err)
			}
			if err := ot.t.DisconnectController(ownNQN, m.Stats()[0].CNTLID); err != nil {
				t.Logf("disconnect controller: %v", err)
			}
			done := make(chan bdev.Status, 1)
			go func() {
				st, _ := h.Do(t, 0, bdev.IORead, 0, 1)
				done <- st
			}()
			time.Sleep(500 * time.Millisecond)
			if err := ot.t.AddListener(ownNQN, ot.listen); err != nil {
				t.Fatal(err)
			}
			select {
			case st := <-done:
				if st != bdev.StatusSuccess {
					t.Errorf("read across the restart: %v", st)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("read not done within 30 s of the target coming back")
			}
			t.Logf("after the restart: %+v", m.Stats()[0])
		})
	}
}
