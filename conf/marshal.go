package conf

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"
)

// Marshal writes t as a topology file that Parse reads back to t (C3): what
// a later save_config writes. Every field is written, defaults included, so
// the file does not change meaning when a default does; only what is unset
// stays out (Reactors.Cores nil: every CPU; a zero UUID; IdleAfter with
// ModePoll). Sizes take their canonical form (Size.String). Marshal does not
// validate: an invalid t gives a file Parse rejects.
func Marshal(t *Topology) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(t.node()); err != nil {
		return nil, fmt.Errorf("conf: marshal: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("conf: marshal: %w", err)
	}
	return buf.Bytes(), nil
}

// MarshalYAML makes yaml.Marshal write a *Topology as the document Marshal
// writes (in yaml.Marshal's own indentation), so a Topology can sit inside
// a larger YAML value.
func (t *Topology) MarshalYAML() (any, error) {
	return t.node(), nil
}

// marshalOrNil is Marshal for comparisons; nil if it failed, which does not
// happen for the nodes t.node builds.
func marshalOrNil(t *Topology) []byte {
	b, err := Marshal(t)
	if err != nil {
		return nil
	}
	return b
}

// node builds t's document, keys in the order the schema lists them.
func (t *Topology) node() *yaml.Node {
	top := mappingNode()

	r := &t.Reactors
	reactors := mappingNode()
	if len(r.Cores) > 0 {
		addField(reactors, "cores", coresNode(r.Cores))
	}
	if r.Mode != "" {
		addField(reactors, "mode", stringNode(string(r.Mode)))
	}
	if r.IdleAfter != 0 {
		addField(reactors, "idle_after", stringNode(r.IdleAfter.String()))
	}
	if len(reactors.Content) > 0 {
		addField(top, "reactors", reactors)
	}

	if len(t.Bdevs) > 0 {
		bdevs := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i := range t.Bdevs {
			bdevs.Content = append(bdevs.Content, bdevNode(&t.Bdevs[i]))
		}
		addField(top, "bdevs", bdevs)
	}
	if len(t.Stages) > 0 {
		addField(top, "stages", stagesNode(t.Stages))
	}

	targets := t.Targets.node() // iscsi, or nil
	if nv := t.Targets.NVMf.node(); nv != nil {
		if targets == nil {
			targets = mappingNode()
		}
		// nvmf first, in the schema's order of targets: keys.
		targets.Content = append([]*yaml.Node{stringNode("nvmf"), nv}, targets.Content...)
	}
	if targets != nil {
		addField(top, "targets", targets)
	}

	rpc := mappingNode()
	addField(rpc, "listen", stringNode(t.RPC.Listen))
	addField(top, "rpc", rpc)
	debug := mappingNode()
	addField(debug, "listen", stringNode(t.Debug.Listen))
	addField(top, "debug", debug)
	return top
}

// bdevNode writes one bdev; the size as size, or as blocks when only
// Blocks is set (a Topology built in code and not yet validated).
func bdevNode(b *Bdev) *yaml.Node {
	n := mappingNode()
	addField(n, "name", stringNode(b.Name))
	addField(n, "driver", stringNode(string(b.Driver))) // "null" comes out quoted
	if b.BlockSize != 0 {
		addField(n, "block_size", intNode(uint64(b.BlockSize)))
	}
	switch {
	case b.Size != 0:
		addField(n, "size", sizeNode(b.Size))
	case b.Blocks != 0:
		addField(n, "blocks", intNode(b.Blocks))
	}
	if b.UUID != uuid.Nil {
		addField(n, "uuid", stringNode(b.UUID.String()))
	}
	if b.Path != "" {
		addField(n, "path", stringNode(b.Path))
	}
	if b.Remote != nil {
		b.Remote.addFields(n)
	}
	return n
}

// coresNode writes ascending ids as a flow list, runs of three or more as
// a-b ranges: [0-3, 8].
func coresNode(cores []int) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for i := 0; i < len(cores); {
		j := i
		for j+1 < len(cores) && cores[j+1] == cores[j]+1 {
			j++
		}
		if j-i >= 2 {
			n.Content = append(n.Content, stringNode(strconv.Itoa(cores[i])+"-"+strconv.Itoa(cores[j])))
			i = j + 1
			continue
		}
		n.Content = append(n.Content, intNode(uint64(cores[i])))
		i++
	}
	return n
}

func mappingNode() *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
}

func addField(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, stringNode(key), v)
}

// stringNode is a string the encoder quotes whenever YAML would read it as
// something else (null, true, 12…).
func stringNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func intNode(v uint64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(v, 10)}
}

// sizeNode writes a size in its canonical form, unquoted even when plain digits.
func sizeNode(s Size) *yaml.Node {
	text := s.String()
	if digitsEnd(text, 0) == len(text) {
		return intNode(uint64(s))
	}
	return stringNode(text)
}
