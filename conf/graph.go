package conf

import "strings"

// Bdevs and stages form one graph: each is a node named in one namespace,
// and a stage's bases are edges to the nodes it is built on. A bdev has no
// bases. checkGraph is written over nodes rather than over Bdev so that
// stages (and later targets, whose namespaces name a bdev or stage) join the
// same checks by adding their nodes.

// graphNode is one named element of the bdev and stage namespace.
type graphNode struct {
	path  string      // the element: "bdevs[0]"; its name is at path+".name"
	name  string      // "" when missing: validate reported it
	bases []graphEdge // what it is built on, in the order written

	// namespaces marks an nvmf bdev: its name is a controller's, and the
	// block devices are its namespaces name+"n"+NSID, which exist only once
	// it connects. An edge may name any of them (a leaf: nothing is built
	// under a remote namespace here), never the controller itself, and no
	// other node may take such a name (nvmf_bdev.go).
	namespaces bool
}

// graphEdge is one reference by name from a node to another.
type graphEdge struct {
	path string // the field that names the base: "stages[1].base", "stages[2].bases[0]"
	name string
}

// bdevNodes returns the bdevs as graph nodes: named, without bases.
func bdevNodes(bdevs []Bdev) []graphNode {
	nodes := make([]graphNode, len(bdevs))
	for i := range bdevs {
		nodes[i] = graphNode{path: itemPath("bdevs", i), name: bdevs[i].Name, namespaces: bdevs[i].Driver == DriverNVMf}
	}
	return nodes
}

// checkGraph reports a name given twice (at the second), a base that names
// nothing, and each cycle through bases (at the edge that closes it), so a
// graph without reports is a forest of unique names built on what exists (C2).
// A base may also name a namespace of an nvmf bdev (graphNode.namespaces).
func checkGraph(c *checker, nodes []graphNode) {
	index := make(map[string]int, len(nodes)) // name -> its first node
	unchecked := map[string]bool{}            // names that have a problem of their own
	for i, n := range nodes {
		p := n.path + ".name"
		if !c.ok(p) {
			unchecked[n.name] = true
			continue
		}
		if n.name == "" {
			continue
		}
		if first, dup := index[n.name]; dup {
			c.value(p, n.name, "a name no other bdev or stage has ("+c.where(nodes[first].path)+" has it)")
			continue
		}
		index[n.name] = i
	}
	checkNamespaceNames(c, nodes, index, unchecked)

	type arc struct {
		to   int
		edge graphEdge
	}
	arcs := make([][]arc, len(nodes))
	for i, n := range nodes {
		for _, e := range n.bases {
			if !c.ok(e.path) {
				continue
			}
			to, ok := index[e.name]
			switch {
			case ok && nodes[to].namespaces:
				c.value(e.path, e.name, nvmfWantNamespace(e.name, c.where(nodes[to].path)))
				continue
			case !ok && unchecked[e.name]:
				continue // the node it names was reported: do not report it twice
			case !ok:
				if want := checkNamespaceEdge(nodes, index, unchecked, e.name); want != "" {
					c.value(e.path, e.name, want)
				}
				continue // or a remote namespace: a leaf, looked up when it connects
			}
			arcs[i] = append(arcs[i], arc{to, e})
		}
	}

	// Depth-first through bases; an arc to a node still on the stack closes
	// a cycle. Depth is at most len(nodes), bounded by the sections' limits.
	const (
		unseen = iota
		onStack
		done
	)
	state := make([]uint8, len(nodes))
	var stack []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = onStack
		stack = append(stack, i)
		for _, a := range arcs[i] {
			switch state[a.to] {
			case unseen:
				visit(a.to)
			case onStack:
				from := len(stack) - 1
				for stack[from] != a.to {
					from--
				}
				var cycle []string
				for _, j := range stack[from:] {
					cycle = append(cycle, nodes[j].name)
				}
				cycle = append(cycle, nodes[a.to].name)
				c.value(a.edge.path, a.edge.name, "a base that is not built on "+nodes[i].name+
					" (cycle: "+strings.Join(cycle, " -> ")+")")
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
	}
	for i := range nodes {
		if state[i] == unseen {
			visit(i)
		}
	}
}

// checkNamespaceNames reports a node that takes the name of a namespace of an
// nvmf bdev (Nvme0n1 beside nvmf bdev Nvme0), which the controller would make
// at start: it leaves index and joins unchecked, so edges naming it are not
// reported again.
func checkNamespaceNames(c *checker, nodes []graphNode, index map[string]int, unchecked map[string]bool) {
	for i, n := range nodes {
		p := n.path + ".name"
		if n.name == "" || index[n.name] != i || !c.ok(p) {
			continue
		}
		ctrl, _, ok := NVMfNamespaceOf(n.name)
		if j, isNode := index[ctrl]; ok && isNode && nodes[j].namespaces {
			c.value(p, n.name, "a name that is not one of an nvmf bdev's namespaces ("+
				c.where(nodes[j].path)+" makes "+ctrl+"n1, "+ctrl+"n2, …)")
			delete(index, n.name)
			unchecked[n.name] = true
		}
	}
}

// checkNamespaceEdge checks a base that names no node: "" when it names a
// namespace of an nvmf bdev with an NSID in range, or of one whose name was
// reported; else what it should name.
func checkNamespaceEdge(nodes []graphNode, index map[string]int, unchecked map[string]bool, name string) string {
	ctrl, nsid, ok := NVMfNamespaceOf(name)
	j, isNode := index[ctrl]
	switch {
	case ok && isNode && nodes[j].namespaces && (nsid < 1 || nsid > NVMfNamespacesMax):
		return nvmfWantNSID(ctrl)
	case ok && isNode && nodes[j].namespaces, ok && unchecked[ctrl]:
		return ""
	}
	return "the name of a bdev or stage"
}
