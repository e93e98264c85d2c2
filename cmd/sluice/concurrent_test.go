package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/internal/jsonrpc"
)

// TestConcurrentClients: 50 clients at once issue mixed calls (reads,
// creates, deletes, errors); every call is answered, and the answers are
// right for each client's own bdevs.
func TestConcurrentClients(t *testing.T) {
	topo, sock := topology(t, t.TempDir(), "reactors:\n  cores: [0]\nbdevs:\n  - name: Malloc0\n    driver: malloc\n    size: 4MiB\n")
	p := start(t, topo, sock, true)
	runClients(t, func(c, r int) error {
		name := fmt.Sprintf("C%dR%d", c, r)
		got, err := jsonrpc.Call(sock, "bdev_malloc_create",
			map[string]any{"name": name, "num_blocks": 256, "block_size": 512}, 30*time.Second)
		if err != nil || string(got) != `"`+name+`"` {
			return fmt.Errorf("client %d create %s: %s %v", c, name, got, err)
		}
		got, err = jsonrpc.Call(sock, "bdev_get_bdevs", map[string]any{"name": name}, 30*time.Second)
		var list []bdevView
		if err != nil || json.Unmarshal(got, &list) != nil || len(list) != 1 || list[0].NumBlocks != 256 {
			return fmt.Errorf("client %d get %s: %s %v", c, name, got, err)
		}
		if _, err := jsonrpc.Call(sock, "no_such_method", nil, 30*time.Second); err == nil {
			return fmt.Errorf("client %d: unknown method answered without error", c)
		}
		if _, err := jsonrpc.Call(sock, "bdev_malloc_delete", map[string]any{"name": name}, 30*time.Second); err != nil {
			return fmt.Errorf("client %d delete %s: %v", c, name, err)
		}
		return nil
	})
	if got := bdevList(t, sock); len(got) != 1 || got[0].Name != "Malloc0" {
		t.Fatalf("after every client deleted its bdevs: %+v", got)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.log)
	}
}

// TestConcurrentClientsUnderIO: while `sluice perf nvmf -w verify` drives a namespace of the
// daemon over NVMe/TCP, 50 clients at once issue mixed calls: reads of bdevs, iostat,
// subsystems and NVMe-oF stats; creates and deletes of their own malloc bdevs, each added to
// the served subsystem as a namespace and removed again; unknown methods and bad params.
// Every call gets its right answer (errors with SPDK's codes naming the field), the perf run
// is still going when the last client ends, and it reports no error.
func TestConcurrentClientsUnderIO(t *testing.T) {
	const nqn = "nqn.2016-06.io.sluice:concurrent"
	port := freeTCPPort(t)
	topo, sock := topology(t, t.TempDir(), "reactors:\n  cores: [0]\nbdevs:\n  - {name: Malloc0, driver: malloc, size: 16MiB}\n"+
		nvmfTargetYAML(nqn, port, "Malloc0"))
	p := start(t, topo, sock, true)

	perfCmd := exec.Command(binary, "perf", "nvmf", "-r", perfTRID(nqn, port), "-w", "verify", "-q", "16",
		"-t", "600", "--json") // ended by SIGINT once the clients are done
	var stdout bytes.Buffer
	perfLog := &syncLog{}
	perfCmd.Stdout, perfCmd.Stderr = &stdout, logWriter{perfLog}
	if err := perfCmd.Start(); err != nil {
		t.Fatal(err)
	}
	perfExited := make(chan struct{})
	go func() { perfCmd.Wait(); close(perfExited) }()
	t.Cleanup(func() { perfCmd.Process.Kill(); <-perfExited })
	readOps := func() uint64 {
		got, err := jsonrpc.Call(sock, "bdev_get_iostat", map[string]any{"name": "Malloc0"}, 30*time.Second)
		var st struct {
			Bdevs []struct {
				NumReadOps uint64 `json:"num_read_ops"`
			} `json:"bdevs"`
		}
		if err != nil || json.Unmarshal(got, &st) != nil || len(st.Bdevs) != 1 {
			t.Fatalf("bdev_get_iostat: %s %v", got, err)
		}
		return st.Bdevs[0].NumReadOps
	}
	for deadline := time.Now().Add(waitTimeout); readOps() == 0; time.Sleep(20 * time.Millisecond) {
		select {
		case <-perfExited:
			t.Fatalf("perf ended before its IO began:\n%s", perfLog)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no IO within %v of perf's start:\n%s", waitTimeout, perfLog)
		}
	}
	before := readOps()

	runClients(t, func(c, r int) error {
		if err := mixedCalls(sock, nqn, fmt.Sprintf("C%dR%d", c, r)); err != nil {
			return fmt.Errorf("client %d round %d: %w", c, r, err)
		}
		return nil
	})
	if after := readOps(); after <= before {
		t.Errorf("Malloc0 read ops %d before the clients and %d after: IO did not run throughout", before, after)
	}
	select {
	case <-perfExited:
		t.Fatalf("perf ended before the clients did:\n%s\n%s", stdout.String(), perfLog)
	default:
	}
	perfCmd.Process.Signal(syscall.SIGINT)
	select {
	case <-perfExited:
	case <-time.After(waitTimeout):
		t.Fatalf("perf did not end within %v of SIGINT", waitTimeout)
	}
	if code := perfCmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("perf nvmf exit %d:\n%s\n%s", code, stdout.String(), perfLog)
	}
	wantCleanVerify(t, "perf nvmf -w verify under 50 clients", decodeNVMfReport(t, stdout.Bytes(), perfLog.String()))

	var subs []map[string]any
	got, err := jsonrpc.Call(sock, "nvmf_get_subsystems", map[string]any{"nqn": nqn}, 30*time.Second)
	if err != nil || json.Unmarshal(got, &subs) != nil || len(subs) != 1 || len(subs[0]["namespaces"].([]any)) != 1 {
		t.Errorf("after every client removed its namespace: %s %v, want Malloc0 alone", got, err)
	}
	if got := bdevList(t, sock); len(got) != 1 || got[0].Name != "Malloc0" {
		t.Errorf("after every client deleted its bdevs: %+v", got)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.log)
	}
}

// mixedCalls is one round of one client of TestConcurrentClientsUnderIO: each answer is
// checked, name is the client's own bdev.
func mixedCalls(sock, nqn, name string) error {
	const timeout = 30 * time.Second
	call := func(method string, params any, v any) error {
		got, err := jsonrpc.Call(sock, method, params, timeout)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if err := json.Unmarshal(got, v); err != nil {
			return fmt.Errorf("%s: %s: %w", method, got, err)
		}
		return nil
	}
	wantError := func(method string, params any, code int, words ...string) error {
		got, err := jsonrpc.Call(sock, method, params, timeout)
		var e *jsonrpc.Error
		if !errors.As(err, &e) || e.Code != code {
			return fmt.Errorf("%s %v: %s %v, want error %d", method, params, got, err, code)
		}
		for _, w := range words {
			if !strings.Contains(e.Message, w) {
				return fmt.Errorf("%s %v: error %q does not name %q", method, params, e.Message, w)
			}
		}
		return nil
	}

	var bdevs []bdevView
	if err := call("bdev_get_bdevs", nil, &bdevs); err != nil || len(bdevs) == 0 {
		return fmt.Errorf("bdev_get_bdevs: %v %v", bdevs, err)
	}
	var iostat struct {
		Bdevs []struct {
			Name string `json:"name"`
		} `json:"bdevs"`
	}
	if err := call("bdev_get_iostat", map[string]any{"name": "Malloc0"}, &iostat); err != nil ||
		len(iostat.Bdevs) != 1 || iostat.Bdevs[0].Name != "Malloc0" {
		return fmt.Errorf("bdev_get_iostat: %+v %v", iostat, err)
	}
	var stats struct {
		PollGroups []any `json:"poll_groups"`
	}
	if err := call("nvmf_get_stats", nil, &stats); err != nil || len(stats.PollGroups) != 1 {
		return fmt.Errorf("nvmf_get_stats: %+v %v", stats, err)
	}
	var created string
	if err := call("bdev_malloc_create", map[string]any{"name": name, "num_blocks": 256, "block_size": 512}, &created); err != nil || created != name {
		return fmt.Errorf("bdev_malloc_create %s: %q %v", name, created, err)
	}
	var nsid uint32
	if err := call("nvmf_subsystem_add_ns", map[string]any{"nqn": nqn, "namespace": map[string]any{"bdev_name": name}}, &nsid); err != nil || nsid < 2 {
		return fmt.Errorf("nvmf_subsystem_add_ns %s: NSID %d %v", name, nsid, err)
	}
	var subs []struct {
		Namespaces []struct {
			NSID     uint32 `json:"nsid"`
			BdevName string `json:"bdev_name"`
		} `json:"namespaces"`
	}
	if err := call("nvmf_get_subsystems", map[string]any{"nqn": nqn}, &subs); err != nil || len(subs) != 1 {
		return fmt.Errorf("nvmf_get_subsystems: %+v %v", subs, err)
	}
	found := false
	for _, ns := range subs[0].Namespaces {
		found = found || ns.NSID == nsid && ns.BdevName == name
	}
	if !found {
		return fmt.Errorf("nvmf_get_subsystems lacks %s as NSID %d: %+v", name, nsid, subs[0].Namespaces)
	}
	var ok bool
	if err := call("nvmf_subsystem_remove_ns", map[string]any{"nqn": nqn, "nsid": nsid}, &ok); err != nil || !ok {
		return fmt.Errorf("nvmf_subsystem_remove_ns %d: %v %v", nsid, ok, err)
	}
	if err := call("bdev_malloc_delete", map[string]any{"name": name}, &ok); err != nil || !ok {
		return fmt.Errorf("bdev_malloc_delete %s: %v %v", name, ok, err)
	}
	if err := wantError("no_such_method", nil, jsonrpc.CodeMethodNotFound); err != nil {
		return err
	}
	if err := wantError("bdev_malloc_create", map[string]any{"name": name, "num_blocks": "many"}, jsonrpc.CodeInvalidParams, "num_blocks"); err != nil {
		return err
	}
	if err := wantError("nvmf_subsystem_add_ns", map[string]any{"nqn": nqn, "namespace": map[string]any{"bdev": name}},
		jsonrpc.CodeInvalidParams, "bdev"); err != nil {
		return err
	}
	return wantError("nvmf_subsystem_remove_ns", map[string]any{"nqn": nqn, "nsid": "one"}, jsonrpc.CodeInvalidParams, "nsid")
}

// clients call the daemon at once, rounds times each (issue #7: 50).
const clients, rounds = 50, 10

// runClients runs clients goroutines of rounds calls of round each, all at
// once, and fails the test with every error they return (a client stops at
// its first).
func runClients(t *testing.T, round func(client, r int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				if err := round(c, r); err != nil {
					errs <- err
					return
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
