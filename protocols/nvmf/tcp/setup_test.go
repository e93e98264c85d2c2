package tcp

import (
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/drivers/null"
	"github.com/sluice-storage/sluice/protocols/nvmf"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

const (
	testNQN       = "nqn.2016-06.io.sluice:cnode1"
	testBlockSize = 512
	testBlocks    = 32768 // 16 MiB
	stopTimeout   = 20 * time.Second
)

// testTarget is a target on its own reactors with one malloc namespace, listening on a free
// loopback port.
type testTarget struct {
	set    *reactors.Set
	reg    *bdev.Registry
	target *nvmf.Target
	tr     *Transport
	addr   string
	listen nvmf.ListenAddress
}

type targetConfig struct {
	reactors int
	opts     Options
	bdevOpts bdev.Options
	driver   string // malloc (default) or null
	blocks   uint64
	mode     reactors.Mode
	clock    reactors.Clock
	pinned   []int // cores to pin the reactors to; nil: unpinned
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(discard{}, nil))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// newTestTarget starts reactors, a bdev registry with a malloc (or null) bdev "Malloc0", the
// target with its TCP transport, subsystem testNQN with the bdev as namespace 1 allowing any
// host, and a listener on 127.0.0.1. Everything stops when the test ends.
func newTestTarget(t testing.TB, cfg targetConfig) *testTarget {
	t.Helper()
	return newTestTargetOn(t, cfg, "127.0.0.1", freePort(t))
}

// newTestTargetOn is newTestTarget listening on traddr:port.
func newTestTargetOn(t testing.TB, cfg targetConfig, traddr, port string) *testTarget {
	t.Helper()
	if cfg.reactors == 0 {
		cfg.reactors = 2
	}
	if cfg.blocks == 0 {
		cfg.blocks = testBlocks
	}
	log := testLogger(t)
	cores, noPin := make([]int, cfg.reactors), true
	if cfg.pinned != nil {
		cores, noPin = cfg.pinned, false
	}
	set, err := reactors.Start(cores, reactors.Options{NoPin: noPin, Logger: log, Mode: cfg.mode, Clock: cfg.clock})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := bdev.NewRegistry(set, cfg.bdevOpts)
	if err != nil {
		set.Stop(stopTimeout)
		t.Fatal(err)
	}
	tt := &testTarget{set: set, reg: reg}
	t.Cleanup(func() {
		if tt.target != nil {
			if err := tt.target.Close(time.Now().Add(stopTimeout)); err != nil {
				t.Errorf("target close: %v", err)
			}
		}
		if err := reg.Close(); err != nil {
			t.Errorf("registry close: %v", err)
		}
		if err := set.Stop(stopTimeout); err != nil {
			t.Errorf("reactors stop: %v", err)
		}
	})
	reg.RegisterDriver(malloc.Name, malloc.Driver{})
	reg.RegisterDriver("null", null.Driver{})
	if cfg.driver == "" {
		cfg.driver = malloc.Name
	}
	if _, err := reg.Create(bdev.Spec{Name: "Malloc0", Driver: cfg.driver, BlockSize: testBlockSize, Blocks: cfg.blocks}); err != nil {
		t.Fatal(err)
	}
	tt.target, err = nvmf.NewTarget(nvmf.Options{Set: set, Bdevs: reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	tt.tr, err = New(tt.target, cfg.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tt.target.CreateSubsystem(nvmf.SubsystemConfig{NQN: testNQN, AllowAnyHost: true, SerialNumber: "SLUICE0001"}); err != nil {
		t.Fatal(err)
	}
	// A stable namespace UUID, as a topology file gives one: a host that reconnects to a
	// restarted target refuses a namespace whose identifiers changed.
	nsUUID := uuid.NewSHA1(uuid.NameSpaceURL, []byte(testNQN+"/1"))
	if _, err := tt.target.AddNamespace(testNQN, nvmf.NamespaceConfig{NSID: 1, Bdev: "Malloc0", UUID: nsUUID}); err != nil {
		t.Fatal(err)
	}
	tt.listen = nvmf.ListenAddress{TrType: "TCP", AdrFam: "IPv4", TrAddr: traddr, TrSvcID: port}
	if err := tt.target.AddListener(testNQN, tt.listen); err != nil {
		t.Fatal(err)
	}
	tt.addr = net.JoinHostPort(tt.listen.TrAddr, tt.listen.TrSvcID)
	return tt
}
