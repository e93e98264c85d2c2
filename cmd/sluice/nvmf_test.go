package main

import (
	"context"
	"encoding/json"
	"github.com/sluice-storage/sluice/perf"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/actors"
	"github.com/sluice-storage/sluice/conf"
	drvnvmf "github.com/sluice-storage/sluice/drivers/nvmf"
	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
)

// nvmfDaemon is a daemon with reactors, bdevs and the NVMe-oF part started from top, as
// startDaemon starts them, and our own NVMe/TCP host (drivers/nvmf) beside it.
func nvmfDaemon(t *testing.T, top *conf.Topology) *daemon {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	set, err := reactors.Start([]int{0, 0}, reactors.Options{NoPin: true})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: log, top: top, set: set}
	d.sys = actors.NewSystem(set, actors.Options{Logger: log})
	d.debug = actors.NewDebug(d.sys)
	reg, err := bdev.NewRegistry(set, bdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.bdevs = reg
	d.nvmf = drvnvmf.NewManager(reg, log)
	if err := registerDrivers(reg); err != nil {
		t.Fatal(err)
	}
	for _, b := range top.Bdevs {
		if _, err := reg.Create(perf.SpecOf(b)); err != nil {
			t.Fatal(err)
		}
	}
	bp := &bdevsPart{d: d, reg: reg}
	p, err := startNVMf(d)
	if err != nil {
		t.Fatal(err)
	}
	d.parts = append(d.parts, bp, p)
	t.Cleanup(func() {
		if err := p.stop(time.Now().Add(waitTimeout)); err != nil {
			t.Error(err)
		}
		if err := bp.stop(time.Now().Add(waitTimeout)); err != nil { // the registry and our host
			t.Error(err)
		}
		d.sys.Shutdown(waitTimeout)
		set.Stop(waitTimeout)
	})
	return d
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// asJSON round-trips a handler's result through JSON, as the client sees it.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNVMfFromTopology: targets.nvmf comes up serving; our host attaches the namespace as a
// bdev and moves data through it; the RPCs show the controller, its qpairs and counters in
// SPDK's shapes; a listener whose port is taken is skipped without taking the others down.
func TestNVMfFromTopology(t *testing.T) {
	port := freeTCPPort(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0") // a port the target cannot bind
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	const nqn = "nqn.2016-06.io.sluice:cnode1"
	yaml := "bdevs:\n  - {name: Malloc0, driver: malloc, size: 16MiB}\ntargets:\n  nvmf:\n" +
		"    discovery:\n      listeners: [{transport: tcp, address: 127.0.0.1, port: " + strconv.Itoa(port) + "}]\n" +
		"    subsystems:\n      - nqn: " + nqn + "\n        allow_any_host: true\n" +
		"        listeners:\n          - {transport: tcp, address: 127.0.0.1, port: " + strconv.Itoa(busyPort) + "}\n" +
		"          - {transport: tcp, address: 127.0.0.1, port: " + strconv.Itoa(port) + "}\n" +
		"        namespaces: [{bdev: Malloc0}]\n"
	top, err := conf.ParseFor("topo.yaml", []byte(yaml), conf.HostMachine())
	if err != nil {
		t.Fatal(err)
	}
	d := nvmfDaemon(t, top)

	subs := asJSON(t, call(t, d.nvmfGetSubsystems, `{}`)).([]any)
	if len(subs) != 2 {
		t.Fatalf("nvmf_get_subsystems: %v", subs)
	}
	cnode := subs[1].(map[string]any)
	if cnode["nqn"] != nqn || cnode["subtype"] != "NVMe" || len(cnode["listen_addresses"].([]any)) != 1 ||
		cnode["namespaces"].([]any)[0].(map[string]any)["bdev_name"] != "Malloc0" {
		t.Errorf("subsystem %v: want one listener (the busy port skipped) and Malloc0", cnode)
	}

	names, err := d.nvmf.Attach(context.Background(), drvnvmf.AttachOptions{Name: "Nvme0",
		TransportID: host.TransportID{TrType: "tcp", TrAddr: "127.0.0.1", TrSvcID: strconv.Itoa(port), SubNQN: nqn}})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if len(names) != 1 {
		t.Fatalf("attached bdevs %v, want one", names)
	}
	s := &bdevtest.Stack{Set: d.set, Reg: d.bdevs}
	h := s.Open(t, names[0])
	for i := 0; i < d.set.Len(); i++ { // through each reactor's I/O queue
		want := make([]byte, 64<<10)
		for k := range want {
			want[k] = byte(k*7 + i)
		}
		copy(h.Buf(i), want)
		if st, detail := h.Do(t, i, bdev.IOWrite, uint64(100+256*i), 128); st != bdev.StatusSuccess {
			t.Fatalf("write through the host: %v %s", st, detail)
		}
		clear(h.Buf(i)[:len(want)])
		if st, detail := h.Do(t, i, bdev.IORead, uint64(100+256*i), 128); st != bdev.StatusSuccess {
			t.Fatalf("read through the host: %v %s", st, detail)
		}
		if string(h.Buf(i)[:len(want)]) != string(want) {
			t.Fatalf("reactor %d: read back differs from what was written", i)
		}
	}
	h.Desc.Close()

	ctrls := asJSON(t, call(t, d.nvmfGetControllers, `{"nqn": "`+nqn+`"}`)).([]any)
	if len(ctrls) != 1 {
		t.Fatalf("controllers %v", ctrls)
	}
	c := ctrls[0].(map[string]any)
	for _, k := range []string{"cntlid", "cntrltype", "hostnqn", "hostid", "num_io_qpairs"} {
		if _, ok := c[k]; !ok {
			t.Errorf("controller lacks SPDK's %q: %v", k, c)
		}
	}
	qps := asJSON(t, call(t, d.nvmfGetQpairs, `{"nqn": "`+nqn+`"}`)).([]any)
	if len(qps) < 2 {
		t.Errorf("qpairs %v, want the admin and at least one I/O queue", qps)
	}
	stats := asJSON(t, call(t, d.nvmfGetStats, `{}`)).(map[string]any)
	if _, ok := stats["tick_rate"]; !ok || len(stats["poll_groups"].([]any)) != 2 {
		t.Errorf("nvmf_get_stats %v", stats)
	}
	if err := d.nvmf.Detach("Nvme0"); err != nil {
		t.Fatal(err)
	}
}

// TestNVMfRPC: every nvmf_* method on a daemon with no targets.nvmf, in SPDK's order of
// setup and teardown, with the refusals an operator can hit.
func TestNVMfRPC(t *testing.T) {
	top, err := conf.ParseFor("topo.yaml", []byte("bdevs:\n  - {name: Malloc0, driver: malloc, size: 8MiB}\n"), conf.HostMachine())
	if err != nil {
		t.Fatal(err)
	}
	d := nvmfDaemon(t, top)
	const nqn = "nqn.2016-06.io.sluice:rpc"
	port := strconv.Itoa(freeTCPPort(t))
	listen := `{"nqn": "` + nqn + `", "listen_address": {"trtype": "tcp", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "` + port + `"}}`

	if _, err := d.nvmfSubsystemAddListenerFor(t, listen); err == nil {
		t.Errorf("add_listener to a subsystem that does not exist succeeded")
	}
	call(t, d.nvmfCreateTransport, `{"trtype": "TCP", "max_queue_depth": 64, "io_unit_size": 8192, "c2h_success": false}`)
	if _, err := d.nvmfCreateTransport(context.Background(), json.RawMessage(`{"trtype": "TCP"}`)); err == nil {
		t.Errorf("a second TCP transport was created")
	}
	trs := asJSON(t, call(t, d.nvmfGetTransports, `{}`)).([]any)
	tr := trs[0].(map[string]any)
	if tr["trtype"] != "TCP" || tr["max_queue_depth"] != float64(64) || tr["c2h_success"] != false || tr["max_io_size"] != float64(131072) {
		t.Errorf("nvmf_get_transports %v", trs)
	}
	call(t, d.nvmfCreateSubsystem, `{"nqn": "`+nqn+`", "serial_number": "SN1", "model_number": "M1"}`)
	if _, err := d.nvmfCreateSubsystem(context.Background(), json.RawMessage(`{"nqn": "`+nqn+`"}`)); err == nil {
		t.Errorf("a duplicate NQN was created")
	}
	if _, err := d.nvmfCreateSubsystem(context.Background(), json.RawMessage(`{"nqn": "not-an-nqn"}`)); err == nil {
		t.Errorf("a malformed NQN was accepted")
	}
	call(t, d.nvmfListener(true), listen)
	if _, err := d.nvmfListener(true)(context.Background(), json.RawMessage(listen)); err == nil {
		t.Errorf("a duplicate listener was added")
	}
	if nsid := call(t, d.nvmfAddNamespace, `{"nqn": "`+nqn+`", "namespace": {"bdev_name": "Malloc0", "nguid": "000102030405060708090A0B0C0D0E0F"}}`); nsid != uint32(1) {
		t.Errorf("nvmf_subsystem_add_ns returned %v, want NSID 1", nsid)
	}
	call(t, d.nvmfHost(true), `{"nqn": "`+nqn+`", "host": "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000001"}`)
	subs := asJSON(t, call(t, d.nvmfGetSubsystems, `{"nqn": "`+nqn+`"}`)).([]any)
	s := subs[0].(map[string]any)
	if s["serial_number"] != "SN1" || s["allow_any_host"] != false || len(s["hosts"].([]any)) != 1 ||
		s["namespaces"].([]any)[0].(map[string]any)["nguid"] != "000102030405060708090A0B0C0D0E0F" {
		t.Errorf("subsystem %v", s)
	}

	// save_config's topology loads back as what runs.
	saved := d.runningTopology()
	b, err := conf.Marshal(saved)
	if err != nil {
		t.Fatal(err)
	}
	back, err := conf.Parse("saved.yaml", b)
	if err != nil {
		t.Fatalf("saved topology does not parse: %v\n%s", err, b)
	}
	if n := back.Targets.NVMf; n == nil || len(n.Subsystems) != 1 || n.Subsystems[0].Namespaces[0].NGUID[15] != 0x0F ||
		n.Transport.MaxQueueDepth != 64 || !n.Transport.NoC2HSuccess {
		t.Errorf("saved targets.nvmf:\n%s", b)
	}
	var calls []spdkSubsystem
	for _, p := range d.parts {
		if sv, ok := p.(saver); ok {
			calls = sv.saveCalls(calls)
		}
	}
	var methods []string
	for _, c := range calls[len(calls)-1].Config {
		methods = append(methods, c.Method)
	}
	if got := strings.Join(methods, ","); got != "nvmf_create_transport,nvmf_create_subsystem,nvmf_subsystem_add_ns,"+
		"nvmf_subsystem_add_host,nvmf_subsystem_add_listener" {
		t.Errorf("save_config calls %s", got)
	}

	call(t, d.nvmfRemoveNamespace, `{"nqn": "`+nqn+`", "nsid": 1}`)
	// Deleting a bdev a namespace serves is SPDK's hot remove: the namespace goes with it.
	call(t, d.nvmfAddNamespace, `{"nqn": "`+nqn+`", "namespace": {"bdev_name": "Malloc0"}}`)
	call(t, d.bdevDelete, `{"name": "Malloc0"}`)
	subs = asJSON(t, call(t, d.nvmfGetSubsystems, `{"nqn": "`+nqn+`"}`)).([]any)
	if ns := subs[0].(map[string]any)["namespaces"]; ns != nil {
		t.Errorf("after bdev_malloc_delete the subsystem still has namespaces %v", ns)
	}
	call(t, d.nvmfHost(false), `{"nqn": "`+nqn+`", "host": "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000001"}`)
	call(t, d.nvmfListener(false), listen)
	call(t, d.nvmfDeleteSubsystem, `{"nqn": "`+nqn+`"}`)
	if subs := asJSON(t, call(t, d.nvmfGetSubsystems, `{}`)).([]any); len(subs) != 1 {
		t.Errorf("after delete: %v, want the discovery subsystem only", subs)
	}
	if _, err := d.nvmfCreateTransport(context.Background(), json.RawMessage(`{"trtype": "RDMA"}`)); err == nil {
		t.Errorf("an RDMA transport was accepted")
	}
}

func (d *daemon) nvmfSubsystemAddListenerFor(t *testing.T, params string) (any, error) {
	return d.nvmfListener(true)(context.Background(), json.RawMessage(params))
}
