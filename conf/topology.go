package conf

import (
	"bytes"
	_ "embed"
	"io"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Topology is one topology file, decoded, validated and with its defaults
// filled (C1, C2). Later issues add Stages and Targets beside Bdevs.
type Topology struct {
	Reactors Reactors
	Bdevs    []Bdev  // in file order; names unique (C2)
	Stages   []Stage // in file order; one namespace with Bdevs (C2); stages.go
	Targets  Targets
	RPC      RPC
	Debug    Debug

	// src is where each field was written, so Validate can cite lines; nil
	// for a Topology built in code. Not part of the value: Marshal ignores it.
	src *source
}

// Reactors is the reactors: section: which CPUs run a reactor, and how a
// reactor waits when it has nothing to do.
type Reactors struct {
	// Cores are the CPU ids that get a reactor each, ascending and distinct.
	// Written as a list of ids and a-b ranges: [0, 1] or [0-3, 8]. Nil means
	// every CPU the process may run on (its affinity set), which depends on
	// the machine: see CoresOn (C4).
	Cores []int

	// Mode is how an idle reactor waits. Default ModeAdaptive.
	Mode ReactorMode

	// IdleAfter is how long an adaptive reactor sees no work before it sleeps
	// in epoll_wait; within IdleAfterMin..IdleAfterMax, default
	// IdleAfterDefault. Zero, and not allowed in a file, with ModePoll.
	IdleAfter time.Duration
}

// ReactorMode is how a reactor waits when idle.
type ReactorMode string

const (
	// ModeAdaptive polls while there is work and sleeps in epoll_wait on an
	// eventfd after IdleAfter without any, so an idle daemon costs ~0% CPU.
	ModeAdaptive ReactorMode = "adaptive"
	// ModePoll always busy-polls: one CPU at 100% per reactor, for benchmarks.
	ModePoll ReactorMode = "poll"
)

// Bdev is one entry of bdevs:, a back end that ends an I/O.
type Bdev struct {
	// Name is 1..NameLenMax characters of A-Z a-z 0-9 _ . : -, unique among
	// bdevs and stages (one namespace: a stage's base names either).
	Name string

	// Driver is the back end.
	Driver Driver

	// BlockSize is the logical block size, a power of two in
	// BlockSizeMin..BlockSizeMax. Default BlockSizeDefault (malloc, null) or
	// BlockSizeDefaultUring (uring).
	BlockSize Size

	// Size is the capacity, a whole number of blocks of at most SizeMax. A
	// file gives size or blocks, exactly one; both are filled (C1):
	// Size == Blocks*BlockSize.
	Size Size

	// Blocks is the capacity in blocks; see Size.
	Blocks uint64

	// UUID identifies the bdev to hosts (NVMe namespace UUID). Optional: the
	// zero UUID means none given, and the driver picks one at creation as
	// SPDK does. A file may not write the nil UUID; two bdevs may not share one.
	UUID uuid.UUID

	// Path is the file or block device of a uring bdev, absolute; required
	// for uring and not allowed for other drivers. A missing file is created
	// at Size; an existing one must hold at least Size bytes (checked when
	// the bdev starts, not here). Two bdevs may not share a path.
	Path string

	// Remote is the controller an nvmf bdev attaches (nvmf_bdev.go); set exactly for
	// DriverNVMf, whose bdevs have no BlockSize, Size, Blocks, UUID or Path: each of the
	// controller's namespaces becomes a bdev <Name>n<NSID> with the remote's.
	Remote *NVMfRemote
}

// Driver names a back end.
type Driver string

const (
	// DriverMalloc keeps the data in memory: Size bytes taken at start.
	DriverMalloc Driver = "malloc"
	// DriverNull completes reads (zeros) and writes without storing; for
	// measuring the stack. Write it quoted: a bare null is YAML's null.
	DriverNull Driver = "null"
	// DriverUring does I/O on Path through io_uring with O_DIRECT.
	DriverUring Driver = "uring"
	// DriverNVMf is in nvmf_bdev.go.
)

// RPC is the rpc: section: the JSON-RPC 2.0 control socket.
type RPC struct {
	// Listen is the absolute path of the unix socket, at most UnixPathMax
	// bytes; "" disables the RPC server. A file that leaves it out gets
	// RPCListenDefault.
	Listen string
}

// Debug is the debug: section: the HTTP endpoint with stats, /metrics and pprof.
type Debug struct {
	// Listen is host:port; the host may not be empty (write 0.0.0.0:port to
	// listen on every address, knowing it serves pprof) and port 0 takes any
	// free port. "" disables the endpoint. A file that leaves it out gets
	// DebugListenDefault.
	Listen string
}

// Machine is what validation needs to know about the host a topology is to
// run on. Tests make their own; HostMachine reads this process's.
type Machine struct {
	// CPUs are the ids of the CPUs this process may run on.
	CPUs []int
}

// DefaultYAML is the topology `sluice run` uses without a file: one 64MiB
// malloc bdev Malloc0 with 512-byte blocks, RPC and debug at their defaults.
// It is the embedded conf/default.yaml; read it, do not modify it.
//
//go:embed default.yaml
var DefaultYAML []byte

// Default returns DefaultYAML parsed. It does not check cores (C4): call
// Validate with the machine.
func Default() *Topology {
	t, err := Parse("default.yaml", DefaultYAML)
	if err != nil {
		// TestDefault parses it: reaching here means the embedded file was broken.
		panic("conf: embedded default.yaml: " + err.Error())
	}
	return t
}

// Load reads and parses the file at path, like Parse; it checks nothing that
// depends on the machine (C4). A file that cannot be read gives the os error
// (errors.Is(err, fs.ErrNotExist) works); a file that is wrong gives *Errors.
func Load(path string) (*Topology, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, nil)
}

// LoadFor is Load followed by Validate(m), reporting the problems of both at
// once: what `sluice run` and `sluice validate` call.
func LoadFor(path string, m Machine) (*Topology, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data, &m)
}

// Parse decodes and validates one topology file; name is the file name its
// errors cite. It checks every rule that does not depend on the machine (C4)
// and reports every problem at once as *Errors (C5); on success it returns
// the Topology with its defaults filled (C1). It never panics (C6).
func Parse(name string, data []byte) (*Topology, error) {
	return parse(name, data, nil)
}

// ParseFor is Parse plus the checks against machine m (C4), all problems
// reported together.
func ParseFor(name string, data []byte, m Machine) (*Topology, error) {
	return parse(name, data, &m)
}

// Validate checks t against every rule and against machine m, reporting
// every problem as *Errors, and on success fills what t leaves unset with
// its defaults (C1), so a Topology built in code is checked and completed
// exactly as a file would be. A zero field counts as unset, except
// RPC.Listen and Debug.Listen, where "" disables. Errors cite the lines of
// the file t was parsed from, unless t changed since: then they cite none.
func (t *Topology) Validate(m Machine) error {
	src := t.src
	if src == nil || !src.describes(t) {
		src = newSource("")
	}
	c := newChecker(src)
	validate(c, t, &m)
	if err := c.result(); err != nil {
		return err
	}
	fillDefaults(t)
	return nil
}

// CoresOn returns the CPUs to start reactors on: r.Cores, or every CPU of m
// when the file named none (C4). The result is ascending and not shared.
func (r *Reactors) CoresOn(m Machine) []int {
	if len(r.Cores) > 0 {
		return slices.Clone(r.Cores)
	}
	cpus := slices.Clone(m.CPUs)
	slices.Sort(cpus)
	return slices.Compact(cpus)
}

// parse is Parse, with the machine checks when m is not nil.
func parse(name string, data []byte, m *Machine) (*Topology, error) {
	src := newSource(name)
	c := newChecker(src)
	if len(data) > FileSizeMax {
		c.addAt("", position{}, Error{Msg: "larger than " + Size(FileSizeMax).String(),
			Want: "a topology, which is far smaller"})
		return nil, c.result()
	}
	doc, synErr := parseYAML(data)
	if synErr != nil {
		c.addAt("", position{line: synErr.Line}, *synErr)
		return nil, c.result()
	}
	t := &Topology{src: src}
	d := &decoder{c: c, src: src}
	d.topology(doc, t)
	validate(c, t, m)
	if err := c.result(); err != nil {
		return nil, err
	}
	fillDefaults(t) // C1: after validation, so no default hides a problem
	src.marshaled = marshalOrNil(t)
	return t, nil
}

// readFile reads at most one byte more than FileSizeMax, so Parse can tell
// a file that is too large without reading all of it.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, FileSizeMax+1))
}

// describes reports whether t is still the Topology s was recorded for, so
// s's lines still point at t's fields.
func (s *source) describes(t *Topology) bool {
	return s.marshaled != nil && bytes.Equal(s.marshaled, marshalOrNil(t))
}

// fillDefaults fills every field a file may leave out (C1). It runs after
// validation, on a Topology that passed it.
func fillDefaults(t *Topology) {
	r := &t.Reactors
	if r.Mode == "" {
		r.Mode = ModeAdaptive
	}
	if r.Mode == ModeAdaptive && r.IdleAfter == 0 {
		r.IdleAfter = IdleAfterDefault
	}
	fillTargetDefaults(t)
	fillNVMfDefaults(t)
	fillStageDefaults(t)
	for i := range t.Bdevs {
		b := &t.Bdevs[i]
		if b.Driver == DriverNVMf { // no capacity: its namespaces have the remote's
			fillNVMfRemoteDefaults(b)
			continue
		}
		if b.BlockSize == 0 {
			b.BlockSize = b.Driver.blockSizeDefault()
		}
		if b.Size == 0 {
			b.Size = Size(b.Blocks) * b.BlockSize
		}
		if b.Blocks == 0 {
			b.Blocks = uint64(b.Size / b.BlockSize)
		}
	}
}

// blockSizeDefault is the block size of a bdev of driver d that names none.
func (d Driver) blockSizeDefault() Size {
	if d == DriverUring {
		return BlockSizeDefaultUring
	}
	return BlockSizeDefault
}
