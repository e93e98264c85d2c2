package conf

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNVMfBdevRules: one problem per file, at its line, in its words (testdata/datadriven/
// nvmf_bdev has them all together).
func TestNVMfBdevRules(t *testing.T) {
	const ok = "bdevs:\n  - name: Nvme0\n    driver: nvmf\n    traddr: 127.0.0.1\n    subnqn: nqn.2016-06.io.sluice:cnode1\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"valid", ok, ""},
		{"size", ok + "    size: 1GiB\n",
			"topo.yaml:6: bdevs[0].size: given for driver nvmf, want no size (each namespace has the remote's)"},
		{"traddr missing", "bdevs:\n  - {name: Nvme0, driver: nvmf, subnqn: nqn.2016-06.io.sluice:cnode1}\n",
			"topo.yaml:2: bdevs[0].traddr: missing, want an IP address or host name"},
		{"subnqn empty", "bdevs:\n  - {name: Nvme0, driver: nvmf, traddr: 127.0.0.1, subnqn: ''}\n",
			`topo.yaml:2: bdevs[0].subnqn: "", want ` + wantNQN},
		{"trsvcid by name", ok + "    trsvcid: nvme\n",
			"topo.yaml:6: bdevs[0].trsvcid: nvme, want a whole number (at most 9 digits)"},
		{"trsvcid zero", ok + "    trsvcid: 0\n",
			"topo.yaml:6: bdevs[0].trsvcid: 0, want a port in 1..65535 (4420 is NVMe/TCP's)"},
		{"adrfam against address", ok + "    adrfam: ipv6\n",
			"topo.yaml:6: bdevs[0].adrfam: ipv6, want ipv4 for the IPv4 address 127.0.0.1"},
		{"hostnqn discovery", ok + "    hostnqn: nqn.2014-08.org.nvmexpress.discovery\n",
			"topo.yaml:6: bdevs[0].hostnqn: nqn.2014-08.org.nvmexpress.discovery, want " + wantHostNQN},
		{"ddgst not a bool", ok + "    ddgst: 1\n",
			"topo.yaml:6: bdevs[0].ddgst: 1, want true or false"},
		{"loss forever without a delay", ok + "    ctrlr_loss_timeout_sec: -1\n",
			"topo.yaml:2: bdevs[0].reconnect_delay_sec: missing, want seconds > 0 between reconnects when ctrlr_loss_timeout_sec is -1"},
		{"loss with a unit", ok + "    ctrlr_loss_timeout_sec: 30s\n",
			"topo.yaml:6: bdevs[0].ctrlr_loss_timeout_sec: 30s, want -1 (reconnect forever), 0 (never) or whole seconds up to 2147483647"},
		{"delay negative", ok + "    reconnect_delay_sec: -1\n    ctrlr_loss_timeout_sec: 5\n",
			"topo.yaml:6: bdevs[0].reconnect_delay_sec: -1, want whole seconds in 0..2147483647"},
		{"not a driver's field", "bdevs:\n  - {name: M, driver: uring, path: /a.img, size: 1MiB, subnqn: nqn.2016-06.io.sluice:cnode1}\n",
			"topo.yaml:2: bdevs[0].subnqn: given for driver uring, want no subnqn (driver nvmf has it)"},
		{"stage on the controller", ok + "stages:\n  - {name: P, service: passthru, base: Nvme0}\n",
			"topo.yaml:7: stages[0].base: Nvme0, want a block device: a namespace of the nvmf bdev such as Nvme0n1 (bdevs[0] at line 2 attaches a controller)"},
		{"stage on a namespace", ok + "stages:\n  - {name: P, service: passthru, base: Nvme0n1}\n", ""},
		{"a bdev named as a namespace", ok + "  - {name: Nvme0n3, driver: \"null\", size: 1MiB}\n",
			"topo.yaml:6: bdevs[1].name: Nvme0n3, want a name that is not one of an nvmf bdev's namespaces (bdevs[0] at line 2 makes Nvme0n1, Nvme0n2, …)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := errorLines(t, tc.yaml)
			if tc.want == "" && got != nil || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
				t.Errorf("ParseFor(%q):\n got %q\nwant %q", tc.yaml, got, tc.want)
			}
		})
	}
}

// TestNVMfBdevInCode: a Topology built in code is checked as a file is, and completed with
// the same defaults.
func TestNVMfBdevInCode(t *testing.T) {
	top := &Topology{Bdevs: []Bdev{
		{Name: "Nvme0", Driver: DriverNVMf},
		{Name: "Malloc0", Driver: DriverMalloc, Size: 1 << 20, Remote: &NVMfRemote{TrAddr: "127.0.0.1"}},
		{Name: "Nvme1", Driver: DriverNVMf, Remote: &NVMfRemote{TrAddr: "127.0.0.1", SubNQN: "nqn.2016-06.io.sluice:a",
			ReconnectDelay: 1500 * time.Millisecond, CtrlrLossTimeout: 10 * time.Second}},
	}}
	err := top.Validate(testMachine)
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Validate: %v, want *Errors", err)
	}
	var got []string
	for _, e := range errs.List {
		got = append(got, e.Error())
	}
	want := []string{
		"bdevs[0].traddr: missing, want an IP address or host name",
		"bdevs[0].subnqn: missing, want " + wantNQN,
		"bdevs[1].traddr: given for driver malloc, want no traddr (driver nvmf has it)",
		"bdevs[2].reconnect_delay_sec: 1.5s, want whole seconds in 0..2147483647",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	good := &Topology{Bdevs: []Bdev{{Name: "Nvme0", Driver: DriverNVMf,
		Remote: &NVMfRemote{TrType: "TCP", TrAddr: "::FFFF:10.0.0.1", AdrFam: "IPv6", SubNQN: "nqn.2016-06.io.sluice:a"}}}}
	if err := good.Validate(testMachine); err != nil {
		t.Fatal(err)
	}
	r := good.Bdevs[0].Remote
	if r.TrType != "tcp" || r.AdrFam != "ipv6" || r.TrAddr != "::ffff:10.0.0.1" || r.TrSvcID != NVMfPortDefault ||
		r.IOQueueSize != NVMfIOQueueSizeDefault || r.NumIOQueues != NVMfNumIOQueuesDefault || good.Bdevs[0].Size != 0 {
		t.Errorf("defaults: %+v, bdev %+v", *r, good.Bdevs[0])
	}
}

func TestNVMfNamespaceOf(t *testing.T) {
	tests := []struct {
		name, ctrl string
		nsid       int
		ok         bool
	}{
		{"Nvme0n1", "Nvme0", 1, true},
		{"Nvme0n1024", "Nvme0", 1024, true},
		{"ctrl.n2n3", "ctrl.n2", 3, true},
		{"Nvme0n0", "Nvme0", 0, true},
		{"Nvme0n12345678901", "Nvme0", -1, true},
		{"Nvme0n01", "", 0, false},
		{"Nvme0n", "", 0, false},
		{"n1", "", 0, false},
		{"Nvme0", "", 0, false},
		{"Nvme0n1x", "", 0, false},
	}
	for _, tc := range tests {
		ctrl, nsid, ok := NVMfNamespaceOf(tc.name)
		if ctrl != tc.ctrl || nsid != tc.nsid || ok != tc.ok {
			t.Errorf("NVMfNamespaceOf(%q) = %q, %d, %v; want %q, %d, %v", tc.name, ctrl, nsid, ok, tc.ctrl, tc.nsid, tc.ok)
		}
	}
}
