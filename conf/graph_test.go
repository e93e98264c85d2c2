package conf

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestCheckGraph drives the name, base and cycle checks with the nodes that
// stages will add (bases), though a file cannot declare stages yet.
func TestCheckGraph(t *testing.T) {
	bdev := func(i int, name string) graphNode {
		return graphNode{path: itemPath("bdevs", i), name: name}
	}
	stage := func(i int, name string, bases ...string) graphNode {
		n := graphNode{path: itemPath("stages", i), name: name}
		for j, b := range bases {
			p := joinPath(n.path, "base")
			if len(bases) > 1 {
				p = itemPath(joinPath(n.path, "bases"), j)
			}
			n.bases = append(n.bases, graphEdge{path: p, name: b})
		}
		return n
	}
	nvmf := func(i int, name string) graphNode {
		return graphNode{path: itemPath("bdevs", i), name: name, namespaces: true}
	}
	tests := []struct {
		name  string
		nodes []graphNode
		want  []string
	}{
		{"empty", nil, nil},
		{"bdevs", []graphNode{bdev(0, "M0"), bdev(1, "M1")}, nil},
		{"a chain", []graphNode{bdev(0, "M0"), stage(0, "Crypt0", "M0"), stage(1, "Qos0", "Crypt0")}, nil},
		{"written before its base", []graphNode{stage(0, "Qos0", "Crypt0"), stage(1, "Crypt0", "M0"), bdev(0, "M0")}, nil},
		{"a diamond", []graphNode{bdev(0, "A"), bdev(1, "B"), stage(0, "L", "A", "B"), stage(1, "R", "A", "B"), stage(2, "Top", "L", "R")}, nil},
		{"bdev twice", []graphNode{bdev(0, "M0"), bdev(1, "M0")},
			[]string{"bdevs[1].name: M0, want a name no other bdev or stage has (bdevs[0] has it)"}},
		{"one namespace", []graphNode{bdev(0, "M0"), stage(0, "M0", "M0")},
			[]string{"stages[0].name: M0, want a name no other bdev or stage has (bdevs[0] has it)"}},
		{"missing base", []graphNode{bdev(0, "M0"), stage(0, "Crypt0", "M1")},
			[]string{"stages[0].base: M1, want the name of a bdev or stage"}},
		{"missing one of two bases", []graphNode{bdev(0, "M0"), stage(0, "Raid0", "M0", "M9")},
			[]string{"stages[0].bases[1]: M9, want the name of a bdev or stage"}},
		{"built on itself", []graphNode{stage(0, "Loop", "Loop")},
			[]string{"stages[0].base: Loop, want a base that is not built on Loop (cycle: Loop -> Loop)"}},
		{"two in a cycle", []graphNode{stage(0, "A", "B"), stage(1, "B", "A")},
			[]string{"stages[1].base: A, want a base that is not built on B (cycle: A -> B -> A)"}},
		{"a cycle under a tail", []graphNode{bdev(0, "M0"), stage(0, "Top", "A"), stage(1, "A", "B"), stage(2, "B", "C"), stage(3, "C", "A", "M0")},
			[]string{"stages[3].bases[0]: A, want a base that is not built on C (cycle: A -> B -> C -> A)"}},
		{"two cycles", []graphNode{stage(0, "A", "A"), stage(1, "B", "C"), stage(2, "C", "B")},
			[]string{
				"stages[0].base: A, want a base that is not built on A (cycle: A -> A)",
				"stages[2].base: B, want a base that is not built on C (cycle: B -> C -> B)",
			}},
		{"a duplicate's base still checked", []graphNode{bdev(0, "X"), stage(0, "X", "Nope")},
			[]string{
				"stages[0].name: X, want a name no other bdev or stage has (bdevs[0] has it)",
				"stages[0].base: Nope, want the name of a bdev or stage",
			}},
		{"a base names the first of two", []graphNode{bdev(0, "X"), stage(0, "S", "X"), stage(1, "X", "S")},
			[]string{"stages[1].name: X, want a name no other bdev or stage has (bdevs[0] has it)"}},
		{"nameless nodes are skipped", []graphNode{bdev(0, ""), bdev(1, ""), stage(0, "S", "")},
			[]string{"stages[0].base: \"\", want the name of a bdev or stage"}},

		// An nvmf bdev: its namespaces are leaves named before they exist.
		{"on remote namespaces", []graphNode{nvmf(0, "Nvme0"), stage(0, "Raid0", "Nvme0n1", "Nvme0n1024"), stage(1, "Top", "Raid0")}, nil},
		{"on the controller", []graphNode{nvmf(0, "Nvme0"), stage(0, "Pass0", "Nvme0")},
			[]string{"stages[0].base: Nvme0, want a block device: a namespace of the nvmf bdev such as Nvme0n1 (bdevs[0] attaches a controller)"}},
		{"NSID out of range", []graphNode{nvmf(0, "Nvme0"), stage(0, "Raid0", "Nvme0n0", "Nvme0n1025", "Nvme0n99999999999")},
			[]string{
				"stages[0].bases[0]: Nvme0n0, want a namespace of nvmf bdev Nvme0 with an NSID in 1..1024 such as Nvme0n1",
				"stages[0].bases[1]: Nvme0n1025, want a namespace of nvmf bdev Nvme0 with an NSID in 1..1024 such as Nvme0n1",
				"stages[0].bases[2]: Nvme0n99999999999, want a namespace of nvmf bdev Nvme0 with an NSID in 1..1024 such as Nvme0n1",
			}},
		{"a namespace of a bdev that is not nvmf", []graphNode{bdev(0, "M0"), stage(0, "Pass0", "M0n1")},
			[]string{"stages[0].base: M0n1, want the name of a bdev or stage"}},
		{"a name a namespace takes", []graphNode{nvmf(0, "Nvme0"), bdev(1, "Nvme0n2"), stage(0, "Pass0", "Nvme0n2")},
			[]string{"bdevs[1].name: Nvme0n2, want a name that is not one of an nvmf bdev's namespaces (bdevs[0] makes Nvme0n1, Nvme0n2, …)"}},
		{"a leading zero is not an NSID", []graphNode{nvmf(0, "Nvme0"), bdev(1, "Nvme0n01"), stage(0, "Pass0", "Nvme0n01")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChecker(newSource(""))
			checkGraph(c, tc.nodes)
			var got []string
			if err := c.result(); err != nil {
				for _, e := range err.(*Errors).List {
					got = append(got, e.Error())
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestCheckGraphSkipsBad: a name that already has a problem is not checked
// again, nor are bases naming it (C5); lines of the file are cited.
func TestCheckGraphSkipsBad(t *testing.T) {
	src := newSource("topo.yaml")
	src.positions["bdevs[0]"] = position{line: 3, column: 5}
	src.positions["bdevs[1]"] = position{line: 6, column: 5}
	src.positions["stages[0]"] = position{line: 8, column: 5}
	src.positions["stages[0].base"] = position{line: 9, column: 5}
	c := newChecker(src)
	c.value("bdevs[1].name", "bad name", wantName)
	nodes := []graphNode{
		{path: "bdevs[0]", name: "M0"},
		{path: "bdevs[1]", name: "bad name"},
		{path: "stages[0]", name: "M0", bases: []graphEdge{{path: "stages[0].base", name: "bad name"}}},
	}
	checkGraph(c, nodes)
	var errs *Errors
	if !errors.As(c.result(), &errs) {
		t.Fatal("no problems")
	}
	var got []string
	for _, e := range errs.List {
		got = append(got, e.Error())
	}
	want := []string{ // the base naming bdevs[1] is not reported again
		`topo.yaml:6: bdevs[1].name: "bad name", want ` + wantName,
		`topo.yaml:8: stages[0].name: M0, want a name no other bdev or stage has (bdevs[0] at line 3 has it)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
