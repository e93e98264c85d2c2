package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// rpc runs `sluice rpc -s sock args…` and returns its stdout, failing the
// test when the exit status is not wantOK.
func rpc(t *testing.T, sock string, wantOK bool, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, append([]string{"rpc", "-s", sock}, args...)...).CombinedOutput()
	if (err == nil) != wantOK {
		t.Fatalf("sluice rpc %v: err %v, want ok=%v\n%s", args, err, wantOK, out)
	}
	return string(out)
}

func TestBdevRPCs(t *testing.T) {
	dir := t.TempDir()
	topo, sock := topology(t, dir, "reactors:\n  cores: [0]\nbdevs:\n  - name: Malloc0\n    driver: malloc\n    size: 8MiB\n")
	p := start(t, topo, sock, true)

	var bdevs []bdevView
	if err := json.Unmarshal([]byte(rpc(t, sock, true, "bdev_get_bdevs")), &bdevs); err != nil {
		t.Fatal(err)
	}
	if len(bdevs) != 1 || bdevs[0].Name != "Malloc0" || bdevs[0].NumBlocks != 8<<20/512 ||
		bdevs[0].ProductName != "Malloc disk" || !bdevs[0].SupportedTypes["unmap"] {
		t.Fatalf("bdev_get_bdevs = %+v", bdevs)
	}
	if got := rpc(t, sock, true, "bdev_malloc_create", "--num_blocks", "2048", "--block_size", "4096"); strings.TrimSpace(got) != `"Malloc1"` {
		t.Fatalf("bdev_malloc_create without a name = %s, want \"Malloc1\"", got)
	}
	rpc(t, sock, true, "bdev_null_create", `{"name":"Null0","num_blocks":1000,"block_size":512}`)
	if out := rpc(t, sock, false, "bdev_null_create", `{"name":"Null0","num_blocks":1000,"block_size":512}`); !strings.Contains(out, "name taken") {
		t.Fatalf("duplicate name: %s", out)
	}
	if out := rpc(t, sock, false, "bdev_malloc_create", `{"name":"Bad","num_blocks":10,"block_size":3000}`); !strings.Contains(out, "3000") {
		t.Fatalf("bad block size not named: %s", out)
	}
	if out := rpc(t, sock, false, "bdev_malloc_create", `{"name":"X","num_blocks":10,"blok_size":512}`); !strings.Contains(out, "blok_size") {
		t.Fatalf("unknown parameter not named: %s", out)
	}
	file := filepath.Join(dir, "disk.img")
	if out, err := exec.Command("truncate", "-s", "4M", file).CombinedOutput(); err != nil {
		t.Fatal(err, string(out))
	}
	rpc(t, sock, true, "bdev_uring_create", "--filename", file, "--name", "Uring0")
	if err := json.Unmarshal([]byte(rpc(t, sock, true, "bdev_get_bdevs", "--name", "Uring0")), &bdevs); err != nil {
		t.Fatal(err)
	}
	if len(bdevs) != 1 || bdevs[0].NumBlocks != 1024 || bdevs[0].BlockSize != 4096 {
		t.Fatalf("uring bdev = %+v, want 1024 blocks of 4096", bdevs)
	}
	for _, name := range []string{"Malloc1", "Null0", "Uring0"} {
		rpc(t, sock, true, "bdev_malloc_delete", "--name", name)
	}
	if out := rpc(t, sock, false, "bdev_malloc_delete", "--name", "Null0"); !strings.Contains(out, "No such device") {
		t.Fatalf("deleting a missing bdev: %s", out)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.log)
	}
}

func TestPerfBdevJSON(t *testing.T) {
	dir := t.TempDir()
	topo, _ := topology(t, dir, "bdevs:\n  - name: Malloc0\n    driver: malloc\n    size: 64MiB\n")
	out, err := exec.Command(binary, "perf", "bdev", "-c", topo, "-b", "Malloc0", "-w", "verify", "-q", "8",
		"-o", "4096", "-t", "0.5", "--json").Output()
	if err != nil {
		t.Fatalf("sluice perf bdev: %v\n%s", err, out)
	}
	var report struct {
		Cores []any `json:"cores"`
		Total struct {
			IOPS    float64            `json:"iops"`
			MiBps   float64            `json:"mibps"`
			Latency map[string]float64 `json:"latency_us"`
		} `json:"total"`
		Errors *int `json:"errors"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("--json output is not one JSON object: %v\n%s", err, out)
	}
	if len(report.Cores) == 0 || report.Total.IOPS <= 0 || report.Errors == nil || *report.Errors != 0 {
		t.Fatalf("report %+v", report)
	}
	for _, k := range []string{"avg", "p50", "p99", "p999", "max"} {
		if _, ok := report.Total.Latency[k]; !ok {
			t.Errorf("latency_us lacks %q: %s", k, out)
		}
	}
}
