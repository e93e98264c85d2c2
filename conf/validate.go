package conf

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/uuid"
)

// validate checks the rules of the schema on t's typed values, where a zero
// field is unset, and those against the machine when m is not nil (C4). It
// runs after decoding (whose problems it does not repeat: their fields are
// bad in c) and on Topologies built in code, before defaults are filled.
func validate(c *checker, t *Topology, m *Machine) {
	validateReactors(c, &t.Reactors, m)
	for i := range t.Bdevs {
		validateBdev(c, itemPath("bdevs", i), &t.Bdevs[i])
	}
	validateStages(c, t)
	checkGraph(c, append(bdevNodes(t.Bdevs), stageNodes(t.Stages)...))
	checkBdevsShared(c, t.Bdevs)
	checkNVMfTargetRefs(c, t) // before the targets' checks, which then skip what it reported
	validateTargets(c, t)
	validateNVMf(c, t)
	if l := t.RPC.Listen; l != "" && c.ok("rpc.listen") && !validSocketPath(l) {
		c.value("rpc.listen", l, wantRPCListen)
	}
	if l := t.Debug.Listen; l != "" && c.ok("debug.listen") {
		if want := checkHostPort(l); want != "" {
			c.value("debug.listen", l, want)
		}
	}
	if n := len(t.Bdevs); n > BdevsMax && c.ok("bdevs") { // decode truncates: code only
		c.problem("bdevs", strconv.Itoa(n)+" bdevs", "at most "+strconv.Itoa(BdevsMax))
	}
}

// given reports whether the file wrote a value at path, so that a zero there
// was written ("size: 0") rather than left out.
func (c *checker) given(path string) bool {
	_, ok := c.src.texts[path]
	return ok
}

// missingOr reports path as missing, or as the empty value it was given.
func (c *checker) missingOr(path, want string) {
	if c.given(path) {
		c.value(path, c.src.text(path, ""), want)
		return
	}
	c.problem(path, "missing", want)
}

// where names the element at path for a message about another: "bdevs[0]
// at line 4", or "bdevs[0]" when the line is unknown.
func (c *checker) where(path string) string {
	if l := c.src.line(path); l > 0 {
		return path + " at line " + strconv.Itoa(l)
	}
	return path
}

func validateReactors(c *checker, r *Reactors, m *Machine) {
	const cores = "reactors.cores"
	// A file's ids are in range and listed once (decode checks each item);
	// a Topology built in code gets the same rules here.
	if len(c.src.cores) == 0 {
		for i, id := range r.Cores {
			p := itemPath(cores, i)
			switch {
			case id < 0 || id >= CoresMax:
				c.value(p, strconv.Itoa(id), "CPU ids below "+strconv.Itoa(CoresMax))
			case i > 0 && id <= r.Cores[i-1]:
				c.value(p, strconv.Itoa(id), "CPU ids in ascending order, each once")
			}
		}
	}
	if m != nil && c.ok(cores) {
		checkCoresOn(c, r, *m)
	}

	const mode, idleAfter = "reactors.mode", "reactors.idle_after"
	switch r.Mode {
	case ModeAdaptive, ModePoll:
	case "":
		if c.given(mode) {
			c.value(mode, "", wantMode)
		}
	default:
		c.value(mode, string(r.Mode), wantMode)
	}
	if c.ok(idleAfter) && (r.IdleAfter != 0 || c.given(idleAfter)) {
		text := c.src.text(idleAfter, r.IdleAfter.String())
		switch {
		case r.Mode == ModePoll:
			c.value(idleAfter, text, "no idle_after with mode poll, which never sleeps")
		case r.IdleAfter < IdleAfterMin || r.IdleAfter > IdleAfterMax:
			c.value(idleAfter, text, wantIdleAfter)
		}
	}
}

// checkCoresOn checks that every core r names is a CPU of m, item by item
// as the file wrote them, and that leaving cores out leaves some CPU.
func checkCoresOn(c *checker, r *Reactors, m Machine) {
	const cores = "reactors.cores"
	var allowed [CoresMax]bool
	beyond := false // m has CPUs a reactor cannot pin itself to
	for _, id := range m.CPUs {
		if id >= 0 && id < CoresMax {
			allowed[id] = true
		} else {
			beyond = true
		}
	}
	allowedText := formatCPUs(allowed[:])
	if len(r.Cores) == 0 {
		if _, written := c.src.positions[cores]; written {
			return // a file's cores that all failed to decode: reported there
		}
		switch {
		case allowedText == "":
			c.problem(cores, "left out, on a machine with no CPU this process may run on",
				"a machine with one")
		case beyond:
			c.problem(cores, "left out, on a machine with CPU ids of "+strconv.Itoa(CoresMax)+" or more",
				"cores listed, each below "+strconv.Itoa(CoresMax))
		}
		return
	}
	items := c.src.cores
	if len(items) == 0 { // built in code: one item per id
		for i, id := range r.Cores {
			items = append(items, coreItem{path: itemPath(cores, i), text: strconv.Itoa(id), lo: id, hi: id})
		}
	}
	for _, it := range items {
		if !c.ok(it.path) || it.lo < 0 || it.hi >= CoresMax {
			continue
		}
		for id := it.lo; id <= it.hi; id++ {
			if !allowed[id] {
				if allowedText == "" {
					allowedText = "none"
				}
				c.value(it.path, it.text, "CPUs this process may run on: "+allowedText)
				break
			}
		}
	}
}

// formatCPUs writes the set ids (true at each id in it) as ids and ranges:
// "0-3,8". Empty for an empty set.
func formatCPUs(set []bool) string {
	var parts []string
	for lo := 0; lo < len(set); lo++ {
		if !set[lo] {
			continue
		}
		hi := lo
		for hi+1 < len(set) && set[hi+1] {
			hi++
		}
		if hi == lo {
			parts = append(parts, strconv.Itoa(lo))
		} else {
			parts = append(parts, strconv.Itoa(lo)+"-"+strconv.Itoa(hi))
		}
		lo = hi
	}
	return strings.Join(parts, ",")
}

// validateBdev checks the rules of one bdev at path ("bdevs[2]").
func validateBdev(c *checker, path string, b *Bdev) {
	if p := path + ".name"; c.ok(p) {
		switch {
		case b.Name == "":
			c.missingOr(p, wantName)
		case !validName(b.Name):
			c.value(p, b.Name, wantName)
		}
	}
	driverOK := false
	if p := path + ".driver"; c.ok(p) {
		switch b.Driver {
		case DriverMalloc, DriverNull, DriverUring, DriverNVMf:
			driverOK = true
		case "":
			c.missingOr(p, wantDriver)
		case "nvme", "rbd": // drivers ARCHITECTURE.md plans
			c.problem(p, string(b.Driver)+": not supported yet", wantDriver)
		default:
			c.value(p, string(b.Driver), wantDriver)
		}
	}
	switch {
	case driverOK && b.Driver == DriverNVMf:
		validateBdevNVMf(c, path, b)
	case driverOK:
		validateBdevCapacity(c, path, b, driverOK)
		validateBdevPath(c, path+".path", b)
		checkNVMfFieldsAbsent(c, path, b)
	case b.Remote == nil: // an unknown driver with nvmf's fields may need no capacity
		validateBdevCapacity(c, path, b, driverOK)
	}
}

// validateBdevCapacity checks block_size, and size or blocks against it.
func validateBdevCapacity(c *checker, path string, b *Bdev, driverOK bool) {
	pBlockSize, pSize, pBlocks := path+".block_size", path+".size", path+".blocks"
	bs, bsOK := b.BlockSize, c.ok(pBlockSize)
	if bsOK && (bs != 0 || c.given(pBlockSize)) && !validBlockSize(bs) {
		text := c.src.text(pBlockSize, strconv.FormatUint(uint64(bs), 10))
		c.value(pBlockSize, text, wantBlockSize+bytesNote(text, bs))
		bsOK = false
	}
	if bs == 0 { // the default depends on the driver
		bs, bsOK = b.Driver.blockSizeDefault(), bsOK && driverOK
	}

	sizeText := c.src.text(pSize, b.Size.String())
	blocksText := c.src.text(pBlocks, strconv.FormatUint(b.Blocks, 10))
	bsText := strconv.FormatUint(uint64(bs), 10)
	switch {
	case !c.ok(pSize, pBlocks):
	case b.Size == 0 && b.Blocks == 0 && c.given(pSize):
		c.value(pSize, sizeText, "at least one block")
	case b.Size == 0 && b.Blocks == 0 && c.given(pBlocks):
		c.value(pBlocks, blocksText, "at least one block")
	case b.Size == 0 && b.Blocks == 0:
		c.problem(pSize, "missing", "size (such as 64MiB) or blocks")
	case !bsOK: // nothing to measure blocks with
	case b.Size%bs != 0:
		c.value(pSize, sizeText, "a multiple of the block size "+bsText+bytesNote(sizeText, b.Size))
	case b.Blocks > uint64(SizeMax/bs):
		c.value(pBlocks, blocksText, "at most "+strconv.FormatUint(uint64(SizeMax/bs), 10)+
			" blocks of "+bsText+" bytes ("+SizeMax.String()+")")
	case b.Size != 0 && b.Blocks != 0 && b.Blocks != uint64(b.Size/bs):
		c.value(pBlocks, blocksText, strconv.FormatUint(uint64(b.Size/bs), 10)+" to match size "+b.Size.String())
	}
}

// validateBdevPath checks the path at p against b's driver, a valid one.
func validateBdevPath(c *checker, p string, b *Bdev) {
	switch {
	case !c.ok(p):
	case b.Driver != DriverUring && (b.Path != "" || c.given(p)):
		c.value(p, b.Path, "no path: driver "+string(b.Driver)+" has no file (uring does)")
	case b.Driver != DriverUring:
	case b.Path == "":
		c.missingOr(p, wantPath)
	case !validFilePath(b.Path):
		c.value(p, b.Path, wantPath+" of at most "+strconv.Itoa(PathLenMax)+" printable bytes")
	}
}

// checkBdevsShared checks what no two bdevs may share but a name: a UUID
// (hosts would take them for one namespace) and a file.
func checkBdevsShared(c *checker, bdevs []Bdev) {
	uuids := map[uuid.UUID]string{} // -> path of the bdev that has it
	files := map[string]string{}
	for i := range bdevs {
		b, p := &bdevs[i], itemPath("bdevs", i)
		if pu := p + ".uuid"; b.UUID != uuid.Nil && c.ok(pu) {
			if first, dup := uuids[b.UUID]; dup {
				c.value(pu, c.src.text(pu, b.UUID.String()), "a UUID no other bdev has ("+c.where(first)+" has it)")
			} else {
				uuids[b.UUID] = p
			}
		}
		if pp := p + ".path"; b.Driver == DriverUring && b.Path != "" && c.ok(pp) {
			file := filepath.Clean(b.Path)
			if first, dup := files[file]; dup {
				c.value(pp, b.Path, "a file no other bdev uses ("+c.where(first)+" does)")
			} else {
				files[file] = p
			}
		}
	}
}

// bytesNote explains a size written with a unit that turned out wrong:
// " (4KB is 4000 bytes)". Empty when text is the plain number.
func bytesNote(text string, n Size) string {
	bytes := strconv.FormatUint(uint64(n), 10)
	if text == bytes {
		return ""
	}
	return " (" + text + " is " + bytes + " bytes)"
}

// validBlockSize: a power of two in BlockSizeMin..BlockSizeMax.
func validBlockSize(bs Size) bool {
	return bs >= BlockSizeMin && bs <= BlockSizeMax && bs&(bs-1) == 0
}

// validName: 1..NameLenMax characters of A-Z a-z 0-9 _ . : -
func validName(s string) bool {
	if len(s) == 0 || len(s) > NameLenMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			ch == '_' || ch == '.' || ch == ':' || ch == '-'
		if !ok {
			return false
		}
	}
	return true
}

// validFilePath: absolute, at most PathLenMax bytes, printable.
func validFilePath(s string) bool {
	return strings.HasPrefix(s, "/") && len(s) <= PathLenMax && printable(s)
}

// validSocketPath: absolute, at most UnixPathMax bytes, printable.
func validSocketPath(s string) bool {
	return strings.HasPrefix(s, "/") && len(s) <= UnixPathMax && printable(s)
}

// printable reports whether s holds no control or other unprintable rune:
// such a path is a mistake, and YAML reads some as line breaks.
func printable(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// checkHostPort checks a debug.listen address; want is "" if it is valid.
func checkHostPort(s string) (want string) {
	host, port, err := net.SplitHostPort(s)
	switch {
	case err != nil:
		return wantDebugListen
	case host == "":
		return "a host before the port (0.0.0.0" + s + " listens on every address)"
	case port == "" || len(port) > 5 || digitsEnd(port, 0) != len(port):
		return "a port in 0..65535 (0 takes any free port)"
	}
	if p, _ := strconv.Atoi(port); p > 65535 {
		return "a port in 0..65535 (0 takes any free port)"
	}
	if net.ParseIP(host) == nil && !validHostname(host) {
		return "an IP address or host name before the port"
	}
	return ""
}

// validHostname: dot-separated labels of 1..63 letters, digits and inner
// hyphens, at most 253 bytes in all (RFC 1123 section 2.1).
func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-') {
				return false
			}
		}
	}
	return true
}
