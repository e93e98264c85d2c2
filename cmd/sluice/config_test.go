package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// bdevList is bdev_get_bdevs reduced to what must survive a save and load.
func bdevList(t *testing.T, sock string) []bdevView {
	t.Helper()
	var bdevs []bdevView
	if err := json.Unmarshal([]byte(rpc(t, sock, true, "bdev_get_bdevs")), &bdevs); err != nil {
		t.Fatal(err)
	}
	return bdevs
}

// TestSaveConfigRoundTrip: what was added at runtime is saved as a topology
// that `sluice run -c` loads back to the same bdevs, and as SPDK JSON that
// load_config replays into a fresh daemon.
func TestSaveConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	topo, sock := topology(t, dir, "reactors:\n  cores: [0]\nbdevs:\n  - name: Malloc0\n    driver: malloc\n    size: 4MiB\n")
	a := start(t, topo, sock, true)
	img := filepath.Join(dir, "u.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	rpc(t, sock, true, "bdev_null_create", `{"name":"Null7","num_blocks":4096,"block_size":4096}`)
	rpc(t, sock, true, "bdev_uring_create", "--filename", img, "--name", "Uring0")
	want := bdevList(t, sock)

	saved := filepath.Join(dir, "saved.yaml")
	yml, err := exec.Command(binary, "rpc", "-s", sock, "--raw", "save_config", "--format", "yaml").Output()
	if err != nil {
		t.Fatalf("save_config yaml: %v", err)
	}
	os.WriteFile(saved, yml, 0o644)
	spdk := rpc(t, sock, true, "save_config")
	a.stop(t, syscall.SIGTERM)

	if out, err := exec.Command(binary, "validate", "-c", saved).CombinedOutput(); err != nil {
		t.Fatalf("saved topology does not validate: %v\n%s\n%s", err, out, yml)
	}
	b := start(t, saved, sock, true)
	if got := bdevList(t, sock); !reflect.DeepEqual(got, want) {
		t.Fatalf("after run -c saved.yaml:\n got %+v\nwant %+v", got, want)
	}
	b.stop(t, syscall.SIGTERM)

	emptyTopo, sock2 := topology(t, t.TempDir(), "reactors:\n  cores: [0]\n")
	c := start(t, emptyTopo, sock2, true)
	rpc(t, sock2, true, "load_config", spdk)
	if got := bdevList(t, sock2); !reflect.DeepEqual(got, want) {
		t.Fatalf("after load_config:\n got %+v\nwant %+v", got, want)
	}
	if out := rpc(t, sock2, false, "load_config", `{"subsystems":[{"subsystem":"bdev","config":[{"method":"no_such_method"}]}]}`); !strings.Contains(out, "no_such_method") {
		t.Fatalf("load_config of an unknown method: %s", out)
	}
	c.stop(t, syscall.SIGTERM)
}
