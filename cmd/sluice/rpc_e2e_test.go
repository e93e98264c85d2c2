package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rpcJSON runs `sluice rpc -s sock args…`, which must succeed, and decodes its output into v.
func rpcJSON(t *testing.T, sock string, v any, args ...string) {
	t.Helper()
	out := rpc(t, sock, true, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("sluice rpc %v: %v\n%s", args, err, out)
	}
}

// nvmfControllerView is the part of nvmf_subsystem_get_controllers an operator reads.
type nvmfControllerView struct {
	CNTLID      int    `json:"cntlid"`
	HostNQN     string `json:"hostnqn"`
	NumIOQpairs int    `json:"num_io_qpairs"`
}

// TestRPCEndToEnd: a daemon started with no bdevs and no targets is configured with nothing
// but the `sluice rpc` command line, in SPDK's order: a malloc bdev, the TCP transport, a
// subsystem, its namespace and its listener. `sluice perf nvmf -w verify` then moves data
// through it with no error; while it runs the subsystem lists its connected controller, and
// once it ends the controller is gone (SPDK removes a controller when its host disconnects).
// The removals then tear everything down: the port stops listening and nothing is left.
func TestRPCEndToEnd(t *testing.T) {
	topo, sock := topology(t, t.TempDir(), "reactors:\n  cores: [0]\n")
	p := start(t, topo, sock, true)
	const nqn = "nqn.2016-06.io.sluice:e2e"
	port := strconv.Itoa(freeTCPPort(t))
	listen := `{"nqn": "` + nqn + `", "listen_address": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "` + port + `"}}`

	var name string
	rpcJSON(t, sock, &name, "bdev_malloc_create", "--name", "Malloc0", "--num_blocks", "32768", "--block_size", "512")
	if name != "Malloc0" {
		t.Fatalf("bdev_malloc_create returned %q", name)
	}
	for _, args := range [][]string{
		{"nvmf_create_transport", "--trtype", "TCP"},
		{"nvmf_create_subsystem", "--nqn", nqn, "--allow_any_host", "--serial_number", "SLUICE0001", "--max_namespaces", "8"},
		{"nvmf_subsystem_add_listener", listen},
	} {
		if out := strings.TrimSpace(rpc(t, sock, true, args...)); out != "true" {
			t.Fatalf("sluice rpc %v: %s, want true", args, out)
		}
	}
	var nsid int
	rpcJSON(t, sock, &nsid, "nvmf_subsystem_add_ns", `{"nqn": "`+nqn+`", "namespace": {"bdev_name": "Malloc0"}}`)
	if nsid != 1 {
		t.Fatalf("nvmf_subsystem_add_ns returned NSID %d, want 1", nsid)
	}

	var subs []struct {
		NQN             string `json:"nqn"`
		Subtype         string `json:"subtype"`
		SerialNumber    string `json:"serial_number"`
		AllowAnyHost    bool   `json:"allow_any_host"`
		ListenAddresses []struct {
			TrType  string `json:"trtype"`
			AdrFam  string `json:"adrfam"`
			TrAddr  string `json:"traddr"`
			TrSvcID string `json:"trsvcid"`
		} `json:"listen_addresses"`
		Namespaces []struct {
			NSID     int    `json:"nsid"`
			BdevName string `json:"bdev_name"`
			UUID     string `json:"uuid"`
		} `json:"namespaces"`
	}
	rpcJSON(t, sock, &subs, "nvmf_get_subsystems", "--nqn", nqn)
	if len(subs) != 1 || subs[0].Subtype != "NVMe" || subs[0].SerialNumber != "SLUICE0001" || !subs[0].AllowAnyHost ||
		len(subs[0].Namespaces) != 1 || subs[0].Namespaces[0].NSID != 1 || subs[0].Namespaces[0].BdevName != "Malloc0" ||
		len(subs[0].ListenAddresses) != 1 || subs[0].ListenAddresses[0].TrSvcID != port ||
		subs[0].ListenAddresses[0].TrAddr != "127.0.0.1" || !strings.EqualFold(subs[0].ListenAddresses[0].TrType, "tcp") {
		t.Fatalf("nvmf_get_subsystems: %+v, want %s with Malloc0 as NSID 1 and the listener on %s", subs, nqn, port)
	}

	// perf runs in the background; the controller shows while it does.
	perfCmd := exec.Command(binary, "perf", "nvmf", "-r", "trtype:tcp traddr:127.0.0.1 trsvcid:"+port+" subnqn:"+nqn,
		"-w", "verify", "-t", "3", "-q", "16", "--json")
	var stdout, stderr bytes.Buffer
	perfCmd.Stdout, perfCmd.Stderr = &stdout, &stderr
	if err := perfCmd.Start(); err != nil {
		t.Fatal(err)
	}
	perfDone := make(chan error, 1)
	go func() { perfDone <- perfCmd.Wait() }()
	// The controller appears at the admin queue's Connect, its I/O qpair right after.
	var ctrls []nvmfControllerView
	deadline := time.Now().Add(waitTimeout)
	for len(ctrls) == 0 || ctrls[0].NumIOQpairs == 0 {
		select {
		case err := <-perfDone:
			t.Fatalf("perf ended (%v) before its controller was seen:\n%s\n%s", err, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no controller with an I/O qpair within %v of perf's start: %+v", waitTimeout, ctrls)
		}
		rpcJSON(t, sock, &ctrls, "nvmf_subsystem_get_controllers", "--nqn", nqn)
		time.Sleep(20 * time.Millisecond)
	}
	if len(ctrls) != 1 || !strings.HasPrefix(ctrls[0].HostNQN, "nqn.2014-08.org.nvmexpress:uuid:") || ctrls[0].NumIOQpairs < 1 {
		t.Fatalf("nvmf_subsystem_get_controllers while perf runs: %+v, want perf's one controller with an I/O qpair", ctrls)
	}
	if err := <-perfDone; err != nil {
		t.Fatalf("sluice perf nvmf: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	wantCleanVerify(t, "perf nvmf -w verify", decodeNVMfReport(t, stdout.Bytes(), stderr.String()))

	// The host disconnected: its controller goes, as SPDK's does.
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(20 * time.Millisecond) {
		rpcJSON(t, sock, &ctrls, "nvmf_subsystem_get_controllers", "--nqn", nqn)
		if len(ctrls) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("controllers %+v still listed %v after perf ended", ctrls, waitTimeout)
		}
	}

	// Teardown, in SPDK's reverse order.
	for _, args := range [][]string{
		{"nvmf_subsystem_remove_listener", listen},
		{"nvmf_subsystem_remove_ns", "--nqn", nqn, "--nsid", "1"},
		{"nvmf_delete_subsystem", "--nqn", nqn},
		{"bdev_malloc_delete", "--name", "Malloc0"},
	} {
		if out := strings.TrimSpace(rpc(t, sock, true, args...)); out != "true" {
			t.Fatalf("sluice rpc %v: %s, want true", args, out)
		}
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		c.Close()
		t.Errorf("port %s still accepts connections after nvmf_subsystem_remove_listener", port)
	}
	rpcJSON(t, sock, &subs, "nvmf_get_subsystems")
	if len(subs) != 1 || subs[0].Subtype != "Discovery" {
		t.Errorf("nvmf_get_subsystems after the teardown: %+v, want the discovery subsystem only", subs)
	}
	if out := rpc(t, sock, false, "nvmf_get_subsystems", "--nqn", nqn); !strings.Contains(out, "-32602") || !strings.Contains(out, nqn) {
		t.Errorf("nvmf_get_subsystems of the deleted subsystem: %s, want -32602 naming it", out)
	}
	if got := bdevList(t, sock); len(got) != 0 {
		t.Errorf("bdevs after the teardown: %+v", got)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.log)
	}
}
