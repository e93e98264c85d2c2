package conf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// sameTopology compares two Topologies as values: the source positions
// they remember are not part of the value.
func sameTopology(a, b *Topology) bool {
	ac, bc := *a, *b
	ac.src, bc.src = nil, nil
	return reflect.DeepEqual(ac, bc)
}

// FuzzParse: Parse never panics (C6); it accepts a file or explains every
// problem as *Errors (C5); what it accepts marshals to a file it reads back
// to the same Topology, and that file marshals to itself (C3). ParseFor
// accepts no more than Parse. Seeds: testdata/fuzz/FuzzParse, the examples
// and the default.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range append(files, "default.yaml") {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	machine := Machine{CPUs: []int{0, 1, 2, 3}}
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse("fuzz.yaml", data)
		checkRejection(t, err)
		topOn, errOn := ParseFor("fuzz.yaml", data, machine)
		checkRejection(t, errOn)
		if errOn == nil && err != nil {
			t.Fatalf("ParseFor accepted what Parse rejected:\n%v", err)
		}
		if errOn == nil && !sameTopology(top, topOn) {
			t.Fatalf("ParseFor and Parse disagree:\n%+v\n%+v", topOn, top)
		}
		if err != nil {
			return
		}
		saved, err := Marshal(top)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		back, err := Parse("saved.yaml", saved)
		if err != nil {
			t.Fatalf("Parse(Marshal(t)): %v\nsaved:\n%s", err, saved)
		}
		if !sameTopology(top, back) {
			t.Fatalf("Parse(Marshal(t)) != t:\n%+v\n%+v\nsaved:\n%s", top, back, saved)
		}
		if again, _ := Marshal(back); !bytes.Equal(again, saved) {
			t.Fatalf("Marshal not stable:\n%s\nthen:\n%s", saved, again)
		}
		if err := top.Validate(Machine{CPUs: top.Reactors.CoresOn(machine)}); err != nil {
			t.Fatalf("Validate on the machine it names rejected a parsed topology: %v", err)
		}
		if !sameTopology(top, back) {
			t.Fatalf("Validate changed a parsed topology:\n%+v\n%+v", top, back)
		}
	})
}

// checkRejection fails t unless err is nil or a non-empty *Errors whose
// every Error names the file and prints.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) == 0 {
		t.Fatalf("error %T %q, want a non-empty *Errors", err, err)
	}
	for _, e := range errs.List {
		if e.File != "fuzz.yaml" || e.Error() == "" {
			t.Fatalf("error %q names file %q, want fuzz.yaml", e.Error(), e.File)
		}
	}
}
