package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
	"github.com/sluice-storage/sluice/services/qos"
	"github.com/sluice-storage/sluice/services/replica"
	"github.com/sluice-storage/sluice/services/stage"
)

// stagesDaemon is a daemon with reactors, the topology's bdevs and its
// stages started as startDaemon starts them, without sockets.
func stagesDaemon(t *testing.T, top *conf.Topology) (*daemon, *stagesPart) {
	t.Helper()
	d, p := partDaemon(t, top, startStages)
	return d, p.(*stagesPart)
}

// method finds a stage RPC handler by name.
func method(t *testing.T, d *daemon, name string) jsonrpc.Handler {
	t.Helper()
	for _, m := range stageMethods(d) {
		if m.Name == name {
			return m.Handler
		}
	}
	t.Fatalf("no method %s", name)
	return nil
}

// callErr runs a handler that must fail, and returns its error text.
func callErr(t *testing.T, h jsonrpc.Handler, params string) string {
	t.Helper()
	_, err := h(context.Background(), json.RawMessage(params))
	if err == nil {
		t.Fatalf("%s: no error", params)
	}
	return err.Error()
}

func keyFile(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "k0.key")
	hex := "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
		"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeffe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
	if err := os.WriteFile(path, []byte(hex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStagesFromTopology: every service from a topology, made in
// dependency order whatever the file order, and written back by
// save_config's yaml form unchanged.
func TestStagesFromTopology(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf(`bdevs:
  - {name: M0, driver: malloc, size: 8MiB}
  - {name: M1, driver: malloc, size: 8MiB}
  - {name: M2, driver: malloc, size: 4MiB}
  - {name: M3, driver: malloc, size: 4MiB}
  - {name: MD, driver: malloc, size: 1MiB}
stages:
  - {name: Top, service: crypto, base: Q, key_file: %s, key_name: k0}
  - {name: Q, service: qos, base: D, rw_ios_per_sec: 100000}
  - {name: D, service: delay, base: EE_R, read_latency: 5us}
  - {name: EE_R, service: error, base: R}
  - {name: R, service: replica, bases: [M0, P, C], metadata: MD}
  - {name: P, service: passthru, base: M1}
  - {name: C, service: concat, bases: [M2, M3]}
`, keyFile(t, dir))
	top, err := conf.ParseFor("topo.yaml", []byte(yaml), conf.Machine{CPUs: []int{0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	d, p := stagesDaemon(t, top)
	var names []string
	for _, n := range p.list.All() {
		names = append(names, n.Name)
	}
	if want := []string{"P", "C", "R", "EE_R", "D", "Q", "Top"}; !slices.Equal(names, want) {
		t.Fatalf("stages made in order %v, want %v", names, want)
	}
	if b, ok := d.bdevs.Lookup("Top"); !ok || b.Blocks() != 8<<20/512 {
		t.Fatalf("Top: %v", b)
	}
	saved := &conf.Topology{}
	p.saveTopology(saved)
	if len(saved.Stages) != 7 || saved.Stages[6].KeyFile == "" || saved.Stages[2].Metadata != "MD" {
		t.Fatalf("saved %+v", saved.Stages)
	}
	// The key's bytes never reach a status.
	if out, _ := json.Marshal(p.list.Source().Snapshot()); strings.Contains(string(out), "0001020304") {
		t.Fatalf("a stage status shows key bytes: %s", out)
	}
}

// TestStageRPCs drives the SPDK-named methods: create, inject, raid1
// member replacement with a rebuild, qos put under a live bdev, keys that
// never come back out, and deletion refused while in use.
func TestStageRPCs(t *testing.T) {
	top, err := conf.Parse("topo.yaml", []byte(`bdevs:
  - {name: M0, driver: malloc, size: 4MiB}
  - {name: M1, driver: malloc, size: 4MiB}
  - {name: M2, driver: malloc, size: 4MiB}
  - {name: M3, driver: malloc, size: 4MiB}
  - {name: M4, driver: malloc, size: 4MiB}
`))
	if err != nil {
		t.Fatal(err)
	}
	d, p := stagesDaemon(t, top)
	m := func(name string) jsonrpc.Handler { return method(t, d, name) }

	if got := call(t, m("bdev_passthru_create"), `{"name":"P0","base_bdev_name":"M0"}`); got != "P0" {
		t.Fatalf("bdev_passthru_create = %v", got)
	}
	if e := callErr(t, m("bdev_passthru_create"), `{"name":"P1","base_bdev_name":"M0"}`); !strings.Contains(e, "claimed") {
		t.Fatalf("a second stage on a claimed base: %s", e)
	}
	if e := callErr(t, m("bdev_delay_delete"), `{"name":"P0"}`); !strings.Contains(e, "passthru") {
		t.Fatalf("delay_delete of a passthru: %s", e)
	}
	call(t, m("bdev_passthru_delete"), `{"name":"P0"}`)

	if got := call(t, m("bdev_delay_create"), `{"name":"D0","base_bdev_name":"M0","avg_read_latency":"15","p99_read_latency":"50","avg_write_latency":40,"p99_write_latency":110}`); got != "D0" {
		t.Fatalf("bdev_delay_create = %v", got)
	}
	call(t, m("bdev_delay_update_latency"), `{"delay_bdev_name":"D0","latency_type":"avg_read","latency_us":"100"}`)
	call(t, m("bdev_delay_delete"), `{"name":"D0"}`)

	if got := call(t, m("bdev_error_create"), `{"base_name":"M1"}`); got != true {
		t.Fatalf("bdev_error_create = %v", got)
	}
	call(t, m("bdev_error_inject_error"), `{"name":"EE_M1","io_type":"write","error_type":"nvme_failure","nvme_sct":2,"nvme_sc":129,"num":3}`)
	call(t, m("bdev_error_inject_error"), `{"name":"EE_M1","io_type":"read","error_type":"failure","probability":0.5,"seed":7}`)
	call(t, m("bdev_error_inject_error"), `{"name":"EE_M1","io_type":"clear","error_type":"failure"}`)
	if e := callErr(t, m("bdev_error_inject_error"), `{"name":"EE_M1","io_type":"write","error_type":"pending"}`); !strings.Contains(e, "pending") {
		t.Fatalf("pending: %s", e)
	}

	call(t, m("bdev_raid_create"), `{"name":"R1","raid_level":"raid1","base_bdevs":["EE_M1","M2"]}`)
	call(t, m("bdev_raid_create"), `{"name":"R0","raid_level":"0","base_bdevs":["M3"],"strip_size_kb":64}`)
	if e := callErr(t, m("bdev_raid_create"), `{"name":"R5","raid_level":"raid5f","base_bdevs":["M4"]}`); !strings.Contains(e, "raid5f") {
		t.Fatalf("raid5f: %s", e)
	}
	var raids []raidBdev
	out, _ := json.Marshal(call(t, m("bdev_raid_get_bdevs"), `{"category":"all"}`))
	json.Unmarshal(out, &raids)
	if len(raids) != 2 || raids[0].Name != "R1" || raids[0].RaidLevel != "raid1" || raids[1].StripSizeKB != 64 {
		t.Fatalf("bdev_raid_get_bdevs = %s", out)
	}
	call(t, m("bdev_raid_remove_base_bdev"), `{"name":"EE_M1"}`)
	call(t, m("bdev_raid_add_base_bdev"), `{"raid_bdev":"R1","base_bdev":"M4"}`)
	st, _ := p.list.Get("R1")
	if err := st.(*replica.Stage).WaitRebuild(waitTimeout); err != nil {
		t.Fatal(err)
	}
	if names := st.Bases(); !slices.Equal(names, []string{"M4", "M2"}) {
		t.Fatalf("R1 members after the replacement: %v", names)
	}
	if e := callErr(t, m("bdev_raid_delete"), `{"name":"M2"}`); !strings.Contains(e, "not a stage") {
		t.Fatalf("raid_delete of a base: %s", e)
	}

	// QoS on a plain bdev that something has open: a qos stage goes under it.
	desc, err := d.bdevs.Open("R0", true)
	if err != nil {
		t.Fatal(err)
	}
	call(t, m("bdev_set_qos_limit"), `{"name":"R0","rw_ios_per_sec":20000}`)
	call(t, m("bdev_set_qos_limit"), `{"name":"R0","w_mbytes_per_sec":10}`)
	q, ok := p.list.Get("R0")
	if !ok {
		t.Fatal("no qos stage under R0")
	}
	if l := q.(*qos.Stage).Limits(); l.IOPS != 20000 || l.WriteBPS != 10<<20 {
		t.Fatalf("limits %+v", l)
	}
	if e := callErr(t, m("bdev_raid_delete"), `{"name":"R0"}`); !strings.Contains(e, "sluice_stage_remove") {
		t.Fatalf("deleting a stage put under a live bdev: %s", e)
	}
	saved := &conf.Topology{}
	p.saveTopology(saved)
	if i := slices.IndexFunc(saved.Stages, func(s conf.Stage) bool { return s.Name == "R0" }); i < 0 ||
		saved.Stages[i].Service != conf.ServiceQoS || saved.Stages[i].Bases[0] != "R0.base" {
		t.Fatalf("saved stages %+v", saved.Stages)
	}
	call(t, m("sluice_stage_remove"), `{"name":"R0"}`)
	desc.Close()
	if _, ok := p.list.Get("R0"); !ok {
		t.Fatal("R0, the raid0 stage, is gone")
	}

	// Keys: created, used, never shown, not destroyed while used.
	call(t, m("accel_crypto_key_create"), `{"cipher":"AES_XTS","key":"00112233445566778899aabbccddeeff","key2":"ffeeddccbbaa99887766554433221100","name":"k1"}`)
	if e := callErr(t, m("accel_crypto_key_create"), `{"cipher":"AES_XTS","key":"00112233445566778899aabbccddeeff","key2":"00112233445566778899aabbccddeeff","name":"k2"}`); strings.Contains(e, "0011") {
		t.Fatalf("an error shows key bytes: %s", e)
	}
	call(t, m("bdev_crypto_create"), `{"base_bdev_name":"R1","name":"C0","key_name":"k1"}`)
	out, _ = json.Marshal(call(t, m("accel_crypto_keys_get"), `{}`))
	if strings.Contains(string(out), "0011") || !strings.Contains(string(out), `"k1"`) {
		t.Fatalf("accel_crypto_keys_get = %s", out)
	}
	if e := callErr(t, m("accel_crypto_key_destroy"), `{"key_name":"k1"}`); !strings.Contains(e, "used") {
		t.Fatalf("destroy a key in use: %s", e)
	}
	if e := callErr(t, m("bdev_raid_delete"), `{"name":"R1"}`); !strings.Contains(e, "in use") {
		t.Fatalf("delete a raid under a crypto bdev: %s", e)
	}
	call(t, m("bdev_crypto_delete"), `{"name":"C0"}`)
	call(t, m("accel_crypto_key_destroy"), `{"key_name":"k1"}`)
	call(t, m("sluice_stage_create"), `{"name":"Q9","service":"qos","base":"M0","rw_ios_per_sec":5000}`)
	if views := call(t, m("sluice_get_stages"), `{"name":"Q9"}`).([]stage.View); views[0].Service != "qos" {
		t.Fatalf("sluice_get_stages = %+v", views)
	}
}

// TestSaveCallsReplay: the calls save_config writes for the stages make
// the same stages again on a daemon with the same bdevs (load_config).
func TestSaveCallsReplay(t *testing.T) {
	top, err := conf.Parse("topo.yaml", []byte(`bdevs:
  - {name: M0, driver: malloc, size: 4MiB}
  - {name: M1, driver: malloc, size: 4MiB}
  - {name: M2, driver: malloc, size: 4MiB}
stages:
  - {name: EE_M0, service: error, base: M0}
  - {name: E9, service: error, base: M1}
  - {name: R, service: replica, bases: [EE_M0, E9], region_size: 64KiB, rebuild_rate: 10MiB}
  - {name: Q, service: qos, base: R, r_mbytes_per_sec: 5}
  - {name: D, service: delay, base: Q, write_latency: 7us}
  - {name: S, service: raid0, bases: [M2], strip_size: 8KiB}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, pa := stagesDaemon(t, top)
	var calls []spdkCall
	for _, sub := range pa.saveCalls(nil) {
		calls = append(calls, sub.Config...)
	}
	bare := *top
	bare.Stages = nil
	b, pb := stagesDaemon(t, &bare)
	handlers := map[string]jsonrpc.Handler{}
	for _, m := range stageMethods(b) {
		handlers[m.Name] = m.Handler
	}
	for _, c := range calls {
		params, _ := json.Marshal(c.Params)
		if _, err := handlers[c.Method](context.Background(), params); err != nil {
			t.Fatalf("%s %s: %v", c.Method, params, err)
		}
	}
	want, got := &conf.Topology{}, &conf.Topology{}
	pa.saveTopology(want)
	pb.saveTopology(got)
	wy, _ := conf.Marshal(want)
	gy, _ := conf.Marshal(got)
	if string(wy) != string(gy) {
		t.Fatalf("replayed stages differ:\n%s\n---\n%s", wy, gy)
	}
}
