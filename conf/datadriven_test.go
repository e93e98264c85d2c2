package conf

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestDataDriven runs the scripts in testdata/. Commands:
//
//	parse [cpus=0-3]   the input is a topology file, topo.yaml, parsed for a
//	                   machine with those CPUs (default 0-3); prints the
//	                   problems one per line, or "ok" and the file Marshal
//	                   writes for it
//	size               each input line is a size; prints its bytes and
//	                   canonical form, or the problem
//
// go test ./conf -run DataDriven -rewrite regenerates the expected output;
// review the diff.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/datadriven", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "parse":
				return runParse(t, d)
			case "size":
				var out strings.Builder
				for _, line := range strings.Split(d.Input, "\n") {
					n, err := ParseSize(line)
					if err != nil {
						fmt.Fprintf(&out, "%s\n", err)
						continue
					}
					fmt.Fprintf(&out, "%s = %d bytes = %s\n", line, uint64(n), n)
				}
				return out.String()
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}

func runParse(t *testing.T, d *datadriven.TestData) string {
	m := testMachine
	if d.HasArg("cpus") {
		var cpus string
		d.ScanArgs(t, "cpus", &cpus)
		m = Machine{}
		if cpus != "none" {
			lo, hi, _ := strings.Cut(cpus, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				d.Fatalf(t, "cpus=%s: want a-b or none", cpus)
			}
			for id := a; id <= b; id++ {
				m.CPUs = append(m.CPUs, id)
			}
		}
	}
	top, err := ParseFor("topo.yaml", []byte(d.Input+"\n"), m)
	if err != nil {
		return err.Error() + "\n"
	}
	saved, err := Marshal(top)
	if err != nil {
		d.Fatalf(t, "Marshal: %v", err)
	}
	back, err := Parse("saved.yaml", saved)
	if err != nil || !sameTopology(top, back) {
		d.Fatalf(t, "round trip: %v\n%s", err, saved)
	}
	return "ok\n" + string(saved)
}
