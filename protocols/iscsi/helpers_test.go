package iscsi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/protocols/scsi"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// waitTimeout bounds waits in these tests; reaching it fails the test.
const waitTimeout = 30 * time.Second

// testTarget is a server on two reactors with malloc bdevs, listening on
// a loopback port.
type testTarget struct {
	set  *reactors.Set
	reg  *bdev.Registry
	srv  *Server
	port uint16
	iqn  string
}

// targetOptions shape newTarget.
type targetOptions struct {
	reactors   int
	blocks     uint64 // per bdev; 131072 (64 MiB of 512-byte blocks) when 0
	blockSize  uint32
	luns       []scsi.Config // one malloc bdev each; one thick LUN when empty
	chap       CHAP
	secrets    []CHAPSecret
	nop        time.Duration // NOP-In interval; the default when 0
	nopTimeout time.Duration // the answer's deadline; the default when 0
	mode       reactors.Mode
	pinned     bool // reactor i on core i (performance runs)
}

func newTarget(t testing.TB, o targetOptions) *testTarget {
	t.Helper()
	if o.reactors == 0 {
		o.reactors = 2
	}
	if o.blocks == 0 {
		o.blocks = 131072
	}
	if o.blockSize == 0 {
		o.blockSize = 512
	}
	if len(o.luns) == 0 {
		o.luns = []scsi.Config{{}}
	}
	cores := make([]int, o.reactors)
	if o.pinned {
		for i := range cores {
			cores[i] = i
		}
	}
	set, err := reactors.Start(cores, reactors.Options{NoPin: !o.pinned, Mode: o.mode})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := bdev.NewRegistry(set, bdev.Options{})
	if err != nil {
		set.Stop(waitTimeout)
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := New(set, reg, Options{Logger: log, NopInInterval: o.nop, NopTimeout: o.nopTimeout, Discovery: CHAP{}})
	tt := &testTarget{set: set, reg: reg, srv: srv, iqn: "iqn.2024-01.io.sluice:test"}
	t.Cleanup(func() {
		if err := srv.Close(waitTimeout); err != nil {
			t.Error(err)
		}
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
		if err := set.Stop(waitTimeout); err != nil {
			t.Error(err)
		}
	})
	if err := reg.RegisterDriver(malloc.Name, malloc.Driver{}); err != nil {
		t.Fatal(err)
	}
	cfg := NodeConfig{Name: tt.iqn, Alias: "test", Maps: []Mapping{{1, 1}}, CHAP: o.chap}
	for i, l := range o.luns {
		name := fmt.Sprintf("Malloc%d", i)
		if _, err := reg.Create(bdev.Spec{Name: name, Driver: malloc.Name, BlockSize: o.blockSize, Blocks: o.blocks}); err != nil {
			t.Fatal(err)
		}
		cfg.LUNs = append(cfg.LUNs, LUNConfig{ID: i, Bdev: name, SCSI: l})
	}
	if err := srv.AddPortalGroup(PortalGroup{Tag: 1, Portals: []Portal{{Host: "127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddInitiatorGroup(InitiatorGroup{Tag: 1, Initiators: []string{"ANY"}, Netmasks: []string{"ANY"}}); err != nil {
		t.Fatal(err)
	}
	if len(o.secrets) > 0 {
		if err := srv.AddAuthGroup(AuthGroup{Tag: 1, Secrets: o.secrets}); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.AddNode(cfg); err != nil {
		t.Fatal(err)
	}
	tt.port = srv.PortalGroups()[0].Portals[0].Port
	return tt
}

// url is libiscsi's URL of LUN lun, with credentials when user is set.
func (tt *testTarget) url(lun int, user, secret string) string {
	cred := ""
	if user != "" {
		cred = user + "%" + secret + "@"
	}
	return fmt.Sprintf("iscsi://%s127.0.0.1:%d/%s/%d", cred, tt.port, tt.iqn, lun)
}

// needTool skips unless a libiscsi tool is installed (never under CI=true,
// where .ci/deps installs them).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed (.ci/deps installs libiscsi-bin)", name)
		}
		t.Skipf("%s not installed (Debian package libiscsi-bin)", name)
	}
	return p
}

// runTool runs a tool with a deadline and returns its combined output.
func runTool(t testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, needTool(t, name), args...).CombinedOutput()
	return string(out), err
}

func mustContain(t testing.TB, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}
