package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"strings"
	"testing"

	"github.com/sluice-storage/sluice/conf"
)

// TestPerfBdevStages: `sluice perf bdev -c` builds the topology's stages as
// `sluice run` does, so a verify run goes through crypto over a mirror over
// two malloc bdevs; -b naming something the file lacks lists both kinds.
func TestPerfBdevStages(t *testing.T) {
	dir := t.TempDir()
	topo, _ := topology(t, dir, fmt.Sprintf(`bdevs:
  - {name: M0, driver: malloc, size: 16MiB}
  - {name: M1, driver: malloc, size: 16MiB}
stages:
  - {name: R0, service: replica, bases: [M0, M1]}
  - {name: C0, service: crypto, base: R0, key_name: k0, key_file: %s}
`, keyFile(t, dir)))
	out, err := exec.Command(binary, "perf", "bdev", "-c", topo, "-b", "C0", "-w", "verify", "-q", "8",
		"-o", "4096", "-t", "0.5", "--json").Output()
	if err != nil {
		t.Fatalf("sluice perf bdev through stages: %v\n%s", err, out)
	}
	var report struct {
		Total  struct{ IOs uint64 } `json:"total"`
		Errors *int                 `json:"errors"`
	}
	if err := json.Unmarshal(out, &report); err != nil || report.Total.IOs == 0 || report.Errors == nil || *report.Errors != 0 {
		t.Errorf("report (%v): %s", err, out)
	}
	out, err = exec.Command(binary, "perf", "bdev", "-c", topo, "-b", "nope", "-t", "0.5").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "M0 M1 R0 C0") {
		t.Errorf("-b nope: %v\n%s", err, out)
	}
}

// TestStageProductNames: bdev_get_bdevs names a stage's product as SPDK
// names its virtual bdevs, so tools keyed on product_name find them.
func TestStageProductNames(t *testing.T) {
	top, err := conf.Parse("topo.yaml", []byte(`bdevs:
  - {name: M0, driver: malloc, size: 4MiB}
  - {name: M1, driver: malloc, size: 4MiB}
stages:
  - {name: P, service: passthru, base: M0}
  - {name: E, service: error, base: P}
  - {name: D, service: delay, base: E}
  - {name: R, service: replica, bases: [D, M1]}
`))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := stagesDaemon(t, top)
	var list []bdevView
	if err := json.Unmarshal(asJSONBytes(t, call(t, d.bdevGetBdevs, `{}`)), &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range list {
		got[b.Name] = b.ProductName
	}
	want := map[string]string{"M0": "Malloc disk", "M1": "Malloc disk", "P": "passthru",
		"E": "Error Injection Disk", "D": "delay", "R": "Raid Volume"}
	if !maps.Equal(got, want) {
		t.Errorf("product names %v, want %v", got, want)
	}
}

func asJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
