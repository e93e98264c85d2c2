package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/perf"
)

// nvmfTargetYAML is a targets.nvmf section: one subsystem open to any host on 127.0.0.1:port
// exporting bdevs as namespaces 1, 2…
func nvmfTargetYAML(nqn string, port int, bdevs ...string) string {
	var ns []string
	for _, b := range bdevs {
		ns = append(ns, "{bdev: "+b+"}")
	}
	return "targets:\n  nvmf:\n    subsystems:\n      - nqn: " + nqn + "\n        allow_any_host: true\n" +
		"        max_namespaces: 64\n" +
		"        listeners: [{transport: tcp, address: 127.0.0.1, port: " + strconv.Itoa(port) + "}]\n" +
		"        namespaces: [" + strings.Join(ns, ", ") + "]\n"
}

// nvmfBdevYAML is an nvmf bdev Nvme0 attaching subsystem nqn at 127.0.0.1:port, with SPDK's
// reconnect settings of the README's example.
func nvmfBdevYAML(nqn string, port int) string {
	return "  - name: Nvme0\n    driver: nvmf\n    trtype: tcp\n    adrfam: ipv4\n    traddr: 127.0.0.1\n" +
		"    trsvcid: " + strconv.Itoa(port) + "\n    subnqn: " + nqn + "\n    hdgst: false\n    ddgst: false\n" +
		"    io_queue_size: 128\n    num_io_queues: 2\n    reconnect_delay_sec: 1\n" +
		"    ctrlr_loss_timeout_sec: 30\n    fast_io_fail_timeout_sec: 5\n"
}

// perfTRID is `sluice perf nvmf -r`'s transport ID of subsystem nqn at 127.0.0.1:port.
func perfTRID(nqn string, port int) string {
	return "trtype:tcp traddr:127.0.0.1 trsvcid:" + strconv.Itoa(port) + " subnqn:" + nqn
}

// perfNVMf runs `sluice perf nvmf -r trid --json args…` to the end and returns its report;
// the run must exit 0.
func perfNVMf(t *testing.T, trid string, args ...string) *perf.NVMfReport {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"perf", "nvmf", "-r", trid, "--json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sluice perf nvmf -r %q %v: %v\nstdout:\n%s\nstderr:\n%s", trid, args, err, stdout.String(), stderr.String())
	}
	return decodeNVMfReport(t, stdout.Bytes(), stderr.String())
}

func decodeNVMfReport(t *testing.T, stdout []byte, stderr string) *perf.NVMfReport {
	t.Helper()
	var rep perf.NVMfReport
	if err := json.Unmarshal(stdout, &rep); err != nil {
		t.Fatalf("perf nvmf --json: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	return &rep
}

// wantCleanVerify fails unless rep moved data and every IO and check passed.
func wantCleanVerify(t *testing.T, what string, rep *perf.NVMfReport) {
	t.Helper()
	if rep.Errors != 0 || rep.Total.Errors != 0 || rep.Total.IOs == 0 {
		t.Fatalf("%s: %d errors (%d in total), %d IOs; want 0 errors and some IOs: %+v",
			what, rep.Errors, rep.Total.Errors, rep.Total.IOs, rep)
	}
	t.Logf("%s: %d IOs, %.0f IOPS, 0 errors", what, rep.Total.IOs, rep.Total.IOPS)
}

// controllerList is bdev_nvme_get_controllers reduced to what a restart must keep.
func controllerList(t *testing.T, sock string) []map[string]any {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal([]byte(rpc(t, sock, true, "bdev_nvme_get_controllers")), &list); err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		for _, cc := range c["ctrlrs"].([]any) {
			delete(cc.(map[string]any), "sluice") // counters and qpairs of this run
			delete(cc.(map[string]any), "cntlid") // the remote picks a new one per association
		}
	}
	return list
}

// TestNVMfBdevFromTopology: daemon A serves a malloc bdev over NVMe/TCP; daemon B's topology
// attaches A's subsystem as nvmf bdev Nvme0, builds a passthru stage on its namespace Nvme0n1
// and exports that over its own NVMe/TCP listener; `sluice perf nvmf -w verify` through B
// (and so through B's host into A) passes. B's save_config writes the nvmf bdev back: the
// topology restarts B to the same bdevs and controller, and the SPDK JSON load_config
// replays into a fresh daemon.
func TestNVMfBdevFromTopology(t *testing.T) {
	const nqnA, nqnB = "nqn.2016-06.io.sluice:a", "nqn.2016-06.io.sluice:b"
	portA, portB := freeTCPPort(t), freeTCPPort(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	topoA, sockA := topology(t, dirA, "reactors:\n  cores: [0]\nbdevs:\n  - {name: Malloc0, driver: malloc, size: 16MiB}\n"+
		nvmfTargetYAML(nqnA, portA, "Malloc0"))
	a := start(t, topoA, sockA, true)

	topoB, sockB := topology(t, dirB, "reactors:\n  cores: [0]\nbdevs:\n"+nvmfBdevYAML(nqnA, portA)+
		"stages:\n  - {name: Pass0, service: passthru, base: Nvme0n1}\n"+nvmfTargetYAML(nqnB, portB, "Pass0"))
	if out, err := exec.Command(binary, "validate", "-c", topoB).CombinedOutput(); err != nil {
		t.Fatalf("sluice validate: %v\n%s", err, out)
	}
	b := start(t, topoB, sockB, true)
	want := bdevList(t, sockB)
	if len(want) != 2 || want[0].Name != "Nvme0n1" || want[0].ProductName != "NVMe disk" ||
		want[0].NumBlocks != 16<<20/512 || want[1].Name != "Pass0" {
		t.Fatalf("daemon B's bdevs: %+v, want Nvme0n1 (NVMe disk, A's 16MiB) and Pass0 on it", want)
	}
	ctrlrs := controllerList(t, sockB)
	if len(ctrlrs) != 1 || ctrlrs[0]["name"] != "Nvme0" {
		t.Fatalf("bdev_nvme_get_controllers: %v", ctrlrs)
	}

	wantCleanVerify(t, "perf nvmf -w verify through B", perfNVMf(t, perfTRID(nqnB, portB), "-w", "verify", "-t", "2", "-q", "16"))
	var stat struct {
		Bdevs []struct {
			Name        string `json:"name"`
			NumWriteOps uint64 `json:"num_write_ops"`
			NumReadOps  uint64 `json:"num_read_ops"`
		} `json:"bdevs"`
	}
	if err := json.Unmarshal([]byte(rpc(t, sockA, true, "bdev_get_iostat", "--name", "Malloc0")), &stat); err != nil {
		t.Fatal(err)
	}
	if s := stat.Bdevs[0]; s.NumWriteOps == 0 || s.NumReadOps == 0 {
		t.Fatalf("daemon A's Malloc0 saw %d writes and %d reads: the IO did not go through B's host", s.NumWriteOps, s.NumReadOps)
	}

	// save_config's topology restarts B to the same bdevs and controller.
	saved := filepath.Join(dirB, "saved.yaml")
	yml, err := exec.Command(binary, "rpc", "-s", sockB, "--raw", "save_config", "--format", "yaml").Output()
	if err != nil {
		t.Fatalf("save_config yaml: %v", err)
	}
	for _, field := range []string{"driver: nvmf", "traddr: 127.0.0.1", "trsvcid: " + strconv.Itoa(portA), "subnqn: " + nqnA,
		"num_io_queues: 2", "reconnect_delay_sec: 1", "ctrlr_loss_timeout_sec: 30", "fast_io_fail_timeout_sec: 5", "base: Nvme0n1"} {
		if !strings.Contains(string(yml), field) {
			t.Errorf("saved topology lacks %q:\n%s", field, yml)
		}
	}
	if err := os.WriteFile(saved, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	spdk := rpc(t, sockB, true, "save_config")
	if !strings.Contains(spdk, `"method": "bdev_nvme_attach_controller"`) {
		t.Errorf("save_config json lacks bdev_nvme_attach_controller:\n%s", spdk)
	}
	if code := b.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon B: exit %d:\n%s", code, b.log)
	}
	if out, err := exec.Command(binary, "validate", "-c", saved).CombinedOutput(); err != nil {
		t.Fatalf("saved topology does not validate: %v\n%s\n%s", err, out, yml)
	}
	b2 := start(t, saved, sockB, true)
	if got := bdevList(t, sockB); !reflect.DeepEqual(got, want) {
		t.Fatalf("after run -c saved.yaml:\n got %+v\nwant %+v", got, want)
	}
	if got := controllerList(t, sockB); !reflect.DeepEqual(got, ctrlrs) {
		t.Fatalf("controllers after run -c saved.yaml:\n got %v\nwant %v", got, ctrlrs)
	}
	wantCleanVerify(t, "perf nvmf -w verify through B restarted", perfNVMf(t, perfTRID(nqnB, portB), "-w", "verify", "-t", "1"))
	b2.stop(t, syscall.SIGTERM)

	emptyTopo, sockC := topology(t, t.TempDir(), "reactors:\n  cores: [0]\n")
	c := start(t, emptyTopo, sockC, true)
	rpc(t, sockC, true, "load_config", spdk)
	if got := bdevList(t, sockC); !reflect.DeepEqual(got, want) {
		t.Fatalf("after load_config:\n got %+v\nwant %+v", got, want)
	}
	c.stop(t, syscall.SIGTERM)
	if code := a.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon A: exit %d:\n%s", code, a.log)
	}
}

// TestNVMfBdevStartErrors: a controller that cannot be reached, and a namespace the
// controller does not have, each fail the start with a message naming it; nothing is served.
func TestNVMfBdevStartErrors(t *testing.T) {
	const nqnA = "nqn.2016-06.io.sluice:a"
	portA := freeTCPPort(t)
	topoA, sockA := topology(t, t.TempDir(), "reactors:\n  cores: [0]\nbdevs:\n  - {name: Malloc0, driver: malloc, size: 4MiB}\n"+
		nvmfTargetYAML(nqnA, portA, "Malloc0"))
	a := start(t, topoA, sockA, true)

	closed := freeTCPPort(t) // nothing listens there
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unreachable",
			"bdevs:\n  - {name: Nvme0, driver: nvmf, traddr: 127.0.0.1, trsvcid: " + strconv.Itoa(closed) + ", subnqn: " + nqnA + "}\n",
			[]string{"bdevs[0] Nvme0: attach failed after 1 attempt(s)", "ctrlr_loss_timeout_sec 0",
				"trtype:tcp traddr:127.0.0.1 trsvcid:" + strconv.Itoa(closed) + " subnqn:" + nqnA, "connection refused"}},
		{"a subsystem the target does not have",
			"bdevs:\n  - {name: Nvme0, driver: nvmf, traddr: 127.0.0.1, trsvcid: " + strconv.Itoa(portA) + ", subnqn: nqn.2016-06.io.sluice:none}\n",
			[]string{"bdevs[0] Nvme0: attach failed after 1 attempt(s)", "subnqn:nqn.2016-06.io.sluice:none", "refused"}},
		{"a namespace the controller does not have",
			"bdevs:\n" + nvmfBdevYAML(nqnA, portA) + "stages:\n  - {name: Pass0, service: passthru, base: Nvme0n1}\n" +
				"  - {name: Pass1, service: passthru, base: Nvme0n2}\n" + nvmfTargetYAML("nqn.2016-06.io.sluice:b", freeTCPPort(t), "Nvme0n3"),
			[]string{"stages[1].base: Nvme0n2: not a namespace of nvmf bdev Nvme0, whose controller has namespaces Nvme0n1",
				"targets.nvmf.subsystems[0].namespaces[0].bdev: Nvme0n3: not a namespace of nvmf bdev Nvme0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, sock := topology(t, t.TempDir(), "reactors:\n  cores: [0]\n"+tc.yaml)
			p := start(t, topo, sock, false)
			if code := p.cmd.ProcessState.ExitCode(); code == 0 {
				t.Fatalf("daemon started and exited 0:\n%s", p.log)
			}
			log := p.log.String()
			for _, line := range strings.Split(log, "\n") {
				if strings.Contains(line, `"start failed"`) {
					t.Log(line)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(log, w) {
					t.Errorf("start failure does not say %q:\n%s", w, log)
				}
			}
			if _, err := os.Stat(sock); !os.IsNotExist(err) {
				t.Errorf("socket %s left behind by a failed start: %v", sock, err)
			}
		})
	}
	// Daemon A is unharmed: it answers and stops cleanly.
	var subs []map[string]any
	if err := json.Unmarshal([]byte(rpc(t, sockA, true, "nvmf_get_subsystems", "--nqn", nqnA)), &subs); err != nil || len(subs) != 1 {
		t.Fatalf("daemon A after the failed starts: %v %v", subs, err)
	}
	if code := a.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon A: exit %d:\n%s", code, a.log)
	}
}

// logWriter feeds a daemon's stderr into a syncLog.
type logWriter struct{ l *syncLog }

func (w logWriter) Write(b []byte) (int, error) { w.l.WriteString(string(b)); return len(b), nil }

// waitLog waits until l holds want, or the process behind done exits, or waitTimeout.
func waitLog(t *testing.T, l *syncLog, want string, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(l.String(), want) {
		select {
		case <-done:
			t.Fatalf("daemon exited before logging %q:\n%s", want, l)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v:\n%s", want, waitTimeout, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNVMfBdevWaitsForTarget: a daemon whose nvmf bdev's target is not up yet retries the
// attach every reconnect_delay_sec (within ctrlr_loss_timeout_sec) and starts once the target
// comes up.
func TestNVMfBdevWaitsForTarget(t *testing.T) {
	const nqnA = "nqn.2016-06.io.sluice:a"
	portA := freeTCPPort(t)
	topoB, sockB := topology(t, t.TempDir(), "reactors:\n  cores: [0]\nbdevs:\n"+nvmfBdevYAML(nqnA, portA))
	cmd := exec.Command(binary, "run", "-c", topoB, "--log-format", "json")
	blog := &syncLog{}
	cmd.Stderr = logWriter{blog}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	waitLog(t, blog, "nvmf bdev: attach failed; retrying", exited)

	topoA, sockA := topology(t, t.TempDir(), "reactors:\n  cores: [0]\nbdevs:\n  - {name: Malloc0, driver: malloc, size: 4MiB}\n"+
		nvmfTargetYAML(nqnA, portA, "Malloc0"))
	a := start(t, topoA, sockA, true)
	waitLog(t, blog, `"msg":"sluice ready"`, exited)
	if got := bdevList(t, sockB); len(got) != 1 || got[0].Name != "Nvme0n1" {
		t.Fatalf("daemon B's bdevs once A came up: %+v", got)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(waitTimeout):
		t.Fatalf("daemon B did not stop:\n%s", blog)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("daemon B: exit %d:\n%s", code, blog)
	}
	a.stop(t, syscall.SIGTERM)
}
