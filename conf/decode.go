package conf

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"
)

// The file is decoded by walking yaml.v3's Node tree by hand rather than by
// yaml.Unmarshal into structs: every problem, an unknown or repeated key
// included, then carries its line, and decoding goes on past the first one
// (C5). yaml.v3's KnownFields(true) stops at the first unknown field and
// Unmarshal does not say where a value it could not convert was.

// What each field accepts, as error messages say it.
const (
	wantName        = "1..64 characters of A-Z a-z 0-9 _ . : -"
	wantDriver      = `malloc, "null", uring or nvmf`
	wantBlockSize   = "a power of two in 512..4096"
	wantBlocks      = "a whole number of blocks such as 131072"
	wantUUID        = "a UUID such as 5d2a7c1e-3b4f-4a8e-9c1d-2e6f7a8b9c0d"
	wantPath        = "an absolute path of a file or block device"
	wantMode        = "adaptive or poll"
	wantIdleAfter   = "a duration in 10us..10s such as 1ms"
	wantCore        = "a CPU id or an a-b range such as 4-7"
	wantCores       = "a list of CPU ids and a-b ranges such as [0-3, 8]"
	wantRPCListen   = `an absolute path of a unix socket of at most 107 bytes, or "" to disable`
	wantDebugListen = `host:port such as 127.0.0.1:9390, or "" to disable`
)

// The keys of each mapping, in the order the schema lists them.
var (
	topKeys      = []string{"reactors", "bdevs", "stages", "targets", "rpc", "debug"}
	reactorsKeys = []string{"cores", "mode", "idle_after"}
	bdevKeys     = append([]string{"name", "driver", "block_size", "size", "blocks", "uuid", "path"}, nvmfBdevKeys...)
	listenKeys   = []string{"listen"}
)

// notSupportedYet are the sections of parts not built yet, with why; a file
// that has one is rejected at its line rather than half served.
var notSupportedYet = map[string]string{}

// parseYAML reads the one YAML document of data; nil for an empty file.
func parseYAML(data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(err, data)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(err, data)
		}
		return nil, &Error{Line: next.Line, Msg: "a second YAML document", Want: "one document per file"}
	}
	return &doc, nil
}

// yamlErrorLine matches yaml.v3's "yaml: line 3: did not find expected key".
var yamlErrorLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// yamlParserProblems are the problems yaml.v3 (v3.0.1, parserc.go) reports
// as parser errors. For those it prints the 0-based line of the construct
// being parsed (or of the token, when the construct starts on the first
// line) and leaves "line 0" out; scanner errors it prints 1-based.
// TestRules pins both.
var yamlParserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// yamlUnknownAnchor matches the one composer error that has no line.
var yamlUnknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)

// syntaxError turns a yaml.v3 parse error into an Error at its 1-based
// line. The parser stops at the first, so a syntax error is reported alone.
func syntaxError(err error, data []byte) *Error {
	msg, line := err.Error(), 0
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	switch {
	case slices.Contains(yamlParserProblems, msg):
		line++
	case yamlUnknownAnchor.MatchString(err.Error()):
		alias := "*" + yamlUnknownAnchor.FindStringSubmatch(err.Error())[1]
		if i := bytes.Index(data, []byte(alias)); i >= 0 {
			line = 1 + bytes.Count(data[:i], []byte("\n"))
		}
	}
	return &Error{Line: line, Msg: "YAML syntax: " + msg}
}

// decoder walks the Node tree of one file into a Topology, recording where
// each field was written and reporting each problem with its line.
type decoder struct {
	c   *checker
	src *source
}

// report records e about path, at node n.
func (d *decoder) report(path string, n *yaml.Node, e Error) {
	d.c.addAt(path, at(n), e)
}

// at is where n is in the file.
func at(n *yaml.Node) position {
	return position{n.Line, n.Column}
}

// topology decodes the document doc (nil: an empty file) into t.
func (d *decoder) topology(doc *yaml.Node, t *Topology) {
	// The one default that depends on presence rather than on a zero value:
	// listen "" disables, so only a missing key gets the default.
	t.RPC.Listen, t.Debug.Listen = RPCListenDefault, DebugListenDefault
	if doc == nil || len(doc.Content) == 0 {
		return
	}
	d.fields("", doc.Content[0], topKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "reactors":
			d.reactors(key, v, &t.Reactors)
		case "bdevs":
			t.Bdevs = d.bdevs(key, v)
		case "stages":
			t.Stages = d.stages(key, v)
		case "targets":
			d.targets(key, v, &t.Targets)
		case "rpc":
			d.listen(key, v, &t.RPC.Listen, wantRPCListen)
		case "debug":
			d.listen(key, v, &t.Debug.Listen, wantDebugListen)
		}
	})
}

// fields walks the mapping n at path, calling visit once for each known key
// and reporting unknown and repeated keys. A null n (a section written with
// nothing under it) is an empty mapping.
func (d *decoder) fields(path string, n *yaml.Node, keys []string, visit func(key string, k, v *yaml.Node)) {
	var listed []string // the keys an unknown one could have meant
	for _, k := range keys {
		if _, later := notSupportedYet[k]; !later {
			listed = append(listed, k)
		}
	}
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.wrong(path, n, "a mapping of "+strings.Join(listed, ", "))
		return
	}
	seen := map[string]int{} // key -> line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		child, oneOf := joinPath(path, k.Value), "one of "+strings.Join(listed, ", ")
		switch {
		case k.Kind != yaml.ScalarNode:
			d.report(path, k, Error{Msg: "a key that is not a plain name", Want: oneOf})
		case k.Value == "<<" && k.ShortTag() == "!!merge":
			d.report(child, k, Error{Msg: "a merge key",
				Want: "the fields written out (merge keys and aliases are not supported)"})
			d.c.bad[path] = true // what the merge would have brought is unknown: check no more of it
		case seen[k.Value] != 0:
			first := strconv.Itoa(seen[k.Value])
			d.report(child, k, Error{Msg: "repeated (first at line " + first + ")", Want: "each key once"})
		case !slices.Contains(keys, k.Value):
			seen[k.Value] = k.Line
			d.report(child, k, Error{Msg: "unknown key", Want: oneOf})
		default:
			seen[k.Value] = k.Line
			d.src.positions[child] = at(k)
			visit(k.Value, k, v)
		}
	}
}

// joinPath names the field key of the mapping at path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// itemPath names the i-th item of the list at path.
func itemPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// isNull reports whether n is YAML's null: an empty value, ~ or null.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// wrong reports that n, at path, is not the kind of value want describes.
func (d *decoder) wrong(path string, n *yaml.Node, want string) {
	e := Error{Want: want}
	switch {
	case isNull(n) && n.Value == "":
		e.Msg = "no value"
	case isNull(n):
		e.Msg = n.Value + " (YAML null)"
	case n.Kind == yaml.ScalarNode:
		e.Value = n.Value
	case n.Kind == yaml.SequenceNode:
		e.Msg = "a list"
	case n.Kind == yaml.MappingNode:
		e.Msg = "a mapping"
	case n.Kind == yaml.AliasNode:
		e.Msg = "an alias (*" + n.Value + ")"
		e.Want = "the value written out (aliases are not supported)"
	default:
		e.Msg = "not a value"
	}
	d.report(path, n, e)
}

// scalar returns the text of n, a scalar that is not null; else it reports
// n against want and returns ok false.
func (d *decoder) scalar(path string, n *yaml.Node, want string) (text string, ok bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.wrong(path, n, want)
		return "", false
	}
	d.src.texts[path] = n.Value
	return n.Value, true
}

// size decodes a size (ParseSize).
func (d *decoder) size(path string, n *yaml.Node, want string) Size {
	text, ok := d.scalar(path, n, want)
	if !ok {
		return 0
	}
	s, sizeWant := parseSize(text)
	if sizeWant != "" {
		d.report(path, n, Error{Value: text, Want: sizeWant})
	}
	return s
}

// reactors decodes the reactors: section.
func (d *decoder) reactors(path string, n *yaml.Node, r *Reactors) {
	d.fields(path, n, reactorsKeys, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "cores":
			r.Cores = d.cores(p, v)
		case "mode":
			text, _ := d.scalar(p, v, wantMode)
			r.Mode = ReactorMode(text)
		case "idle_after":
			text, ok := d.scalar(p, v, wantIdleAfter)
			if !ok {
				return
			}
			dur, err := time.ParseDuration(text)
			if err != nil {
				d.report(p, v, Error{Value: text, Want: wantIdleAfter})
			}
			r.IdleAfter = dur
		}
	})
}

// cores decodes reactors.cores: a list of ids and a-b ranges naming each CPU
// once. It records each item in src.cores, for the machine check.
func (d *decoder) cores(path string, n *yaml.Node) []int {
	if n.Kind != yaml.SequenceNode {
		d.wrong(path, n, wantCores)
		return nil
	}
	if len(n.Content) == 0 {
		d.report(path, n, Error{Msg: "an empty list",
			Want: "at least one CPU (leave cores out for every CPU the process may run on)"})
		return nil
	}
	items := n.Content
	if len(items) > CoresMax { // more items than ids: some repeat
		d.report(path, n, Error{Msg: strconv.Itoa(len(items)) + " entries",
			Want: "at most " + strconv.Itoa(CoresMax)})
		items = items[:CoresMax]
	}
	var named [CoresMax]string // id -> the item that named it
	for i, item := range items {
		p := itemPath(path, i)
		d.src.positions[p] = at(item)
		text, ok := d.scalar(p, item, wantCore)
		if !ok {
			continue
		}
		lo, hi, want := parseCoreRange(text)
		if want != "" {
			d.report(p, item, Error{Value: text, Want: want})
			continue
		}
		if id := slices.IndexFunc(named[lo:hi+1], func(s string) bool { return s != "" }); id >= 0 {
			d.report(p, item, Error{Value: text, Want: "CPUs not listed before (" +
				strconv.Itoa(lo+id) + " is in " + named[lo+id] + ")"})
			continue
		}
		for id := lo; id <= hi; id++ {
			named[id] = p
		}
		d.src.cores = append(d.src.cores, coreItem{path: p, text: text, lo: lo, hi: hi})
	}
	var cores []int
	for id, p := range named {
		if p != "" {
			cores = append(cores, id)
		}
	}
	return cores
}

// parseCoreRange reads "N" or "A-B", ids below CoresMax; want is "" if valid.
func parseCoreRange(s string) (lo, hi int, want string) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}
	lo, ok1 := parseCoreID(a)
	hi, ok2 := parseCoreID(b)
	switch {
	case lo < 0 || hi < 0:
		return 0, 0, wantCore
	case !ok1 || !ok2:
		return 0, 0, "CPU ids below " + strconv.Itoa(CoresMax)
	case lo > hi:
		return 0, 0, "a range a-b with a <= b"
	}
	return lo, hi, ""
}

// parseCoreID reads a decimal CPU id: -1 if s is not digits, ok false if
// the id is not below CoresMax.
func parseCoreID(s string) (id int, ok bool) {
	if s == "" || digitsEnd(s, 0) != len(s) {
		return -1, false
	}
	if len(s) > 9 { // more digits than any id, and more than an int is sure to hold
		return 0, false
	}
	id, _ = strconv.Atoi(s) // at most 9 digits: cannot fail
	return id, id < CoresMax
}

// bdevs decodes the bdevs: section, a list of bdevs.
func (d *decoder) bdevs(path string, n *yaml.Node) []Bdev {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.wrong(path, n, "a list of bdevs")
		return nil
	}
	items := n.Content
	if len(items) > BdevsMax {
		d.report(path, n, Error{Msg: strconv.Itoa(len(items)) + " bdevs",
			Want: "at most " + strconv.Itoa(BdevsMax)})
		items = items[:BdevsMax]
	}
	if len(items) == 0 {
		return nil
	}
	bdevs := make([]Bdev, len(items))
	for i, item := range items {
		p := itemPath(path, i)
		d.src.positions[p] = at(item)
		d.bdev(p, item, &bdevs[i])
	}
	return bdevs
}

// bdev decodes one item of bdevs:. The rules between fields (sizes against
// block sizes, path and nvmf's fields against driver) are validate's.
func (d *decoder) bdev(path string, n *yaml.Node, b *Bdev) {
	var sizeKey, blocksKey *yaml.Node
	d.fields(path, n, bdevKeys, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "name":
			b.Name, _ = d.scalar(p, v, wantName)
		case "driver":
			b.Driver = d.driver(p, v)
		case "block_size":
			b.BlockSize = d.size(p, v, wantBlockSize)
		case "size":
			sizeKey, b.Size = k, d.size(p, v, sizeWantSyntax)
		case "blocks":
			blocksKey, b.Blocks = k, d.blocks(p, v)
		case "uuid":
			b.UUID = d.uuid(p, v)
		case "path":
			b.Path, _ = d.scalar(p, v, wantPath)
		default: // one of nvmfBdevKeys
			d.bdevNVMf(key, p, v, b)
		}
	})
	if sizeKey != nil && blocksKey != nil {
		d.report(joinPath(path, "blocks"), blocksKey, Error{Msg: "given with size",
			Want: "exactly one of size and blocks"})
	}
}

// driver decodes bdevs[i].driver, with a hint for the bare null that YAML
// reads as no value at all.
func (d *decoder) driver(path string, n *yaml.Node) Driver {
	if isNull(n) && strings.EqualFold(n.Value, "null") {
		d.report(path, n, Error{Value: n.Value,
			Want: `"null" in quotes (a bare null is YAML's empty value, not the null driver)`})
		return ""
	}
	text, _ := d.scalar(path, n, wantDriver)
	return Driver(text)
}

// blocks decodes bdevs[i].blocks: decimal digits, no sign, no unit.
func (d *decoder) blocks(path string, n *yaml.Node) uint64 {
	text, ok := d.scalar(path, n, wantBlocks)
	if !ok {
		return 0
	}
	if text == "" || digitsEnd(text, 0) != len(text) {
		d.report(path, n, Error{Value: text, Want: wantBlocks})
		return 0
	}
	blocks, err := strconv.ParseUint(text, 10, 64)
	if err != nil || blocks > uint64(SizeMax/BlockSizeMin) {
		d.report(path, n, Error{Value: text,
			Want: "at most " + strconv.FormatUint(uint64(SizeMax/BlockSizeMin), 10) + " blocks"})
		return 0
	}
	return blocks
}

// uuid decodes bdevs[i].uuid in its canonical 8-4-4-4-12 form (either case).
func (d *decoder) uuid(path string, n *yaml.Node) uuid.UUID {
	text, ok := d.scalar(path, n, wantUUID)
	if !ok {
		return uuid.Nil
	}
	u, err := uuid.Parse(text)
	switch {
	case err != nil || len(text) != 36: // uuid.Parse also takes {…}, urn:uuid: and bare hex
		d.report(path, n, Error{Value: text, Want: wantUUID})
		return uuid.Nil
	case u == uuid.Nil:
		d.report(path, n, Error{Value: text,
			Want: "a UUID other than the nil UUID (leave uuid out to let the driver pick one)"})
	}
	return u
}

// listen decodes the rpc: or debug: section at path into dst.
func (d *decoder) listen(path string, n *yaml.Node, dst *string, want string) {
	d.fields(path, n, listenKeys, func(key string, k, v *yaml.Node) {
		text, _ := d.scalar(joinPath(path, key), v, want)
		*dst = text
	})
}
