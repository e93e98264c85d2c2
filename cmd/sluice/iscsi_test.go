package main

import (
	"context"
	"encoding/json"
	"github.com/sluice-storage/sluice/perf"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// iscsiDaemon is a daemon with reactors, bdevs and the iSCSI part started
// from top, as startDaemon starts them, without sockets.
func iscsiDaemon(t *testing.T, top *conf.Topology) *daemon {
	t.Helper()
	d, _ := partDaemon(t, top, startISCSI)
	return d
}

// partDaemon is a daemon with reactors, the topology's bdevs and one part
// started by start, as startDaemon does, without sockets; the test's end
// stops them all.
func partDaemon(t *testing.T, top *conf.Topology, start func(*daemon) (part, error)) (*daemon, part) {
	t.Helper()
	set, err := reactors.Start([]int{0, 0}, reactors.Options{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil)), top: top, set: set}
	reg, err := bdev.NewRegistry(set, bdev.Options{})
	if err != nil {
		set.Stop(waitTimeout)
		t.Fatal(err)
	}
	d.bdevs = reg
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
		set.Stop(waitTimeout)
	})
	if err := registerDrivers(reg); err != nil {
		t.Fatal(err)
	}
	for _, b := range top.Bdevs {
		if _, err := reg.Create(perf.SpecOf(b)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := start(d)
	if err != nil {
		t.Fatal(err)
	}
	d.parts = append(d.parts, p)
	t.Cleanup(func() { // runs first: the part stops before the registry closes
		if err := p.stop(time.Now().Add(waitTimeout)); err != nil {
			t.Error(err)
		}
	})
	return d, p
}

// call runs an RPC handler with params as JSON.
func call(t *testing.T, h jsonrpc.Handler, params string) any {
	t.Helper()
	v, err := h(context.Background(), json.RawMessage(params))
	if err != nil {
		t.Fatalf("%s: %v", params, err)
	}
	return v
}

// TestISCSIFromTopology: targets.iscsi with CHAP secrets from a file comes
// up listening; iscsi-ls finds the node only with the right secret.
func TestISCSIFromTopology(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "chap.secrets")
	if err := os.WriteFile(secrets, []byte("# initiator secrets\nalice alice-secret-1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := `bdevs:
  - {name: Malloc0, driver: malloc, size: 16MiB}
targets:
  iscsi:
    portal_groups: [{tag: 1, portals: [127.0.0.1:0]}]
    initiator_groups: [{tag: 1, initiators: [ANY], netmasks: [127.0.0.1/32]}]
    auth_groups: [{tag: 1, secrets_file: ` + secrets + `}]
    target_nodes:
      - {name: disk0, luns: [{lun: 0, bdev: Malloc0}], maps: [{portal_group: 1, initiator_group: 1}], chap: one-way, auth_group: 1}
`
	top, err := conf.Parse("topo.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	d := iscsiDaemon(t, top)
	pgs := call(t, d.iscsiGetPortalGroups, "").([]spdkPortalGroup)
	if len(pgs) != 1 || pgs[0].Portals[0].Port == "0" {
		t.Fatalf("portal groups %+v", pgs)
	}
	port := pgs[0].Portals[0].Port
	nodes := call(t, d.iscsiGetTargetNodes, "").([]spdkTargetNode)
	if len(nodes) != 1 || nodes[0].Name != "iqn.2016-06.io.spdk:disk0" || !nodes[0].RequireCHAP || nodes[0].CHAPGroup != 1 {
		t.Fatalf("target nodes %+v", nodes)
	}
	ls, err := exec.LookPath("iscsi-ls")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("iscsi-ls not installed: .ci/deps installs libiscsi-bin in CI")
		}
		t.Skip("iscsi-ls not installed (libiscsi-bin; .ci/deps installs it)")
	}
	run := func(user string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, ls, "-s", "iscsi://"+user+"127.0.0.1:"+port).CombinedOutput()
		return string(out), err
	}
	if out, err := run("alice%alice-secret-1234@"); err != nil || !strings.Contains(out, "Lun:0") {
		t.Errorf("iscsi-ls with the secret: %v\n%s", err, out)
	}
	if out, err := run("alice%wrong-secret-5678@"); err == nil && strings.Contains(out, "Lun:0") {
		t.Errorf("iscsi-ls with a wrong secret listed the LUN:\n%s", out)
	}
}

// TestISCSIRPCs: the SPDK-named methods build a target from nothing, list
// it, save it as SPDK calls and as topology, and take it down.
func TestISCSIRPCs(t *testing.T) {
	top, err := conf.Parse("topo.yaml", []byte("bdevs:\n  - {name: Malloc0, driver: malloc, size: 8MiB}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := iscsiDaemon(t, top)
	call(t, d.iscsiCreatePortalGroup, `{"tag": 1, "portals": [{"host": "127.0.0.1", "port": "0"}]}`)
	call(t, d.iscsiCreateInitiatorGroup, `{"tag": 2, "initiators": ["ANY"], "netmasks": ["ANY"]}`)
	call(t, d.iscsiCreateAuthGroup, `{"tag": 3, "secrets": [{"user": "u1", "secret": "secret-one-1", "muser": "mu1", "msecret": "secret-two-2"}]}`)
	call(t, d.iscsiSetDiscoveryAuth, `{"require_chap": true, "chap_group": 3}`)
	call(t, d.iscsiCreateTargetNode, `{"name": "target1", "alias_name": "t1", "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 2}],
		"luns": [{"bdev_name": "Malloc0", "lun_id": 0, "thin": true}], "queue_depth": 32}`)
	if _, err := d.iscsiCreateTargetNode(context.Background(), json.RawMessage(
		`{"name": "target2", "alias_name": "", "pg_ig_maps": [{"pg_tag": 9, "ig_tag": 2}], "luns": [{"bdev_name": "Nope", "lun_id": 0}], "queue_depth": 32}`)); err == nil {
		t.Error("a node naming a missing portal group and bdev was created")
	}
	nodes := call(t, d.iscsiGetTargetNodes, "").([]spdkTargetNode)
	if len(nodes) != 1 || nodes[0].Name != "iqn.2016-06.io.spdk:target1" || nodes[0].QueueDepth != 32 || !nodes[0].LUNs[0].Thin {
		t.Fatalf("target nodes %+v", nodes)
	}
	if g := call(t, d.iscsiGetAuthGroups, "").([]spdkAuthGroup); len(g) != 1 || g[0].Secrets[0].MUser != "mu1" {
		t.Errorf("auth groups %+v", g)
	}
	if a := call(t, d.iscsiGetDiscoveryAuth, "").(spdkCHAP); !a.RequireCHAP || a.CHAPGroup != 3 {
		t.Errorf("discovery auth %+v", a)
	}
	if c := call(t, d.iscsiGetConnections, ""); c == nil {
		t.Error("no connection list")
	}
	saved := d.parts[0].(saver).saveCalls(nil)
	methods := []string{}
	for _, c := range saved[0].Config {
		methods = append(methods, c.Method)
	}
	if want := "iscsi_create_auth_group iscsi_set_discovery_auth iscsi_create_portal_group iscsi_create_initiator_group iscsi_create_target_node"; strings.Join(methods, " ") != want {
		t.Errorf("saveCalls: %v, want %s", methods, want)
	}
	var st conf.Topology
	d.parts[0].(saver).saveTopology(&st)
	if st.Targets.ISCSI == nil || len(st.Targets.ISCSI.PortalGroups) != 1 || len(st.Targets.ISCSI.Nodes) != 1 {
		t.Errorf("saveTopology: %+v", st.Targets.ISCSI)
	}
	call(t, d.iscsiDeleteTargetNode, `{"name": "target1"}`)
	for _, m := range iscsiMethods(d) {
		if m.Name == "iscsi_delete_portal_group" {
			call(t, m.Handler, `{"tag": 1}`)
		}
	}
	if pgs := call(t, d.iscsiGetPortalGroups, "").([]spdkPortalGroup); len(pgs) != 0 {
		t.Errorf("portal groups after delete: %+v", pgs)
	}
}
