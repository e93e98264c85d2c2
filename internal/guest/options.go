package guest

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"
	"unicode"
)

// Options describe one boot of the guest. The zero value boots, runs nothing
// and powers off with exit code 0.
type Options struct {
	// Agent is a host executable copied to /agent and run by /init with Args:
	// a static Go binary (see BuildAgent), a "#!/bin/sh" script (busybox sh
	// in the guest), or a dynamic x86-64 binary (its ldd libraries come
	// along). Its stdin, stdout and stderr are the serial console, its cwd
	// /root, PATH=/bin. At most one of Agent and AgentScript.
	Agent string
	// AgentScript is a shell script run as /agent instead of a file
	// ("#!/bin/sh" is prepended unless it starts with "#!").
	AgentScript string
	// Args are the agent's argv[1:]. They travel in a file of the initramfs,
	// quoted for the shell, so any bytes but NUL pass unchanged.
	Args []string

	// Files are host files or directory trees copied into the guest.
	Files []File
	// Packages are Debian packages downloaded (apt-get download, cached,
	// never installed on the host) and unpacked; their programs go to /bin
	// and the libraries those need (ldd, with the packages' own library
	// directories searched first) to /lib/x86_64-linux-gnu. Library-only
	// packages just supply libraries, e.g. "nvme-cli", "libnvme1".
	Packages []string
	// Binaries are host programs (a name looked up in PATH, or a path)
	// copied to /bin with their ldd libraries. Debian's static busybox runs
	// its own applet for a bare command name that is one, even over a file
	// in /bin and even through env: call such a program by path ("/bin/xz").
	Binaries []string
	// Modules are loaded with modprobe, in order, before the agent starts.
	// Each must be in the base initramfs (see baseModules and
	// SLUICE_GUEST_EXTRA_MODULES), an alias of one, or built in.
	Modules []string

	// NVMe attaches one emulated NVMe controller (QEMU "nvme", 1b36:0010) per
	// disk; the guest sees /dev/nvme0n1, /dev/nvme1n1… in order.
	NVMe []Disk
	// IOMMU adds an emulated Intel IOMMU (q35 intel-iommu, intel_iommu=on)
	// and loads vfio-pci and vfio_iommu_type1, so a PCI device can be bound
	// to vfio-pci. Debian's kernel has no VFIO no-IOMMU mode.
	IOMMU bool
	// VhostUser attaches one vhost-user-blk-pci device per unix socket; the
	// back end must already be listening (QEMU connects at start and fails
	// otherwise). Guest RAM becomes a shared memfd, which vhost-user needs.
	VhostUser []string
	// Forwards expose guest TCP ports on host loopback ports.
	Forwards []Forward

	MemoryMiB int           // guest RAM; 0 means memoryMiBDefault
	CPUs      int           // vCPUs; 0 means 1
	Timeout   time.Duration // from QEMU's start to its exit, boot included; 0 means timeoutDefault

	// Console receives the serial console line by line ("\n"-terminated,
	// CR stripped) as it arrives: kernel messages, /init and the agent.
	// ConsoleLog(t) makes one that logs to a test.
	Console io.Writer
	// Ready, if set, is text whose appearance in a console line makes
	// Guest.Ready fire (e.g. an agent's "TARGET-READY"); if empty, Ready
	// fires when /init is about to start the agent.
	Ready string
	// KernelArgs are appended to the kernel command line, one word each
	// (e.g. "hugepages=64").
	KernelArgs []string
	// Verbose drops "quiet" from the kernel command line: the whole kernel
	// log goes to the console.
	Verbose bool
}

// File copies a host file or directory tree into the guest.
type File struct {
	Host  string // host path; a directory is copied with its contents
	Guest string // absolute guest path
}

// Disk is a raw image file on the host behind an emulated device.
type Disk struct {
	Path string // created, sparse, when missing
	Size int64  // bytes: a new file's size (0: diskSizeDefault); must match an existing file unless 0
}

// Forward makes host 127.0.0.1:HostPort reach guest 10.0.2.15:GuestPort
// (QEMU user networking's hostfwd). The other direction needs nothing: the
// guest reaches host 127.0.0.1:P at 10.0.2.2:P.
type Forward struct {
	HostPort  int
	GuestPort int
}

const (
	// memoryMiBDefault is what the reference harness was measured with: the
	// kernel, the ~60 MiB unpacked initramfs, nvmet or LIO with null_blk,
	// and a Go agent fit with room to spare.
	memoryMiBDefault = 512
	// memoryMiBMin leaves room for the kernel and the unpacked initramfs
	// (the compressed-less base archive lives in RAM twice while unpacking).
	memoryMiBMin = 256
	// memoryMiBMax: guest RAM is host RAM, and with VhostUser a shared
	// memfd; tests prove correctness with tens of MiB.
	memoryMiBMax = 8192
	// cpusMax: under TCG each vCPU is a host thread, and CI hosts have a few
	// cores; more vCPUs than that only slow the guest down.
	cpusMax = 8
	// timeoutDefault covers a boot (2-5 s under TCG, more on a loaded host)
	// plus an interop test moving tens of MiB at ~20 MiB/s, with margin for
	// a CI machine running other tests at the same time.
	timeoutDefault = 5 * time.Minute
	// diskSizeDefault is a new NVMe image's size: small enough to create
	// instantly, big enough for a filesystem or a few verify passes.
	diskSizeDefault = 64 << 20
	// diskBlockSize: QEMU's nvme device exposes 512-byte logical blocks and
	// needs an image that is a whole number of them.
	diskBlockSize = 512
	// kernelCmdlineMax is COMMAND_LINE_SIZE on x86 (arch/x86/include/uapi/
	// asm/setup.h); the kernel truncates a longer command line silently.
	kernelCmdlineMax = 2048
)

// reservedGuestPaths belong to /init and the per-run archive; Files may not
// overwrite them.
var reservedGuestPaths = []string{"/init", "/agent", "/guest"}

// validate checks every option against its rule and reports every problem
// at once, each naming the field, the value and the rule. env supplies the
// module names the base initramfs can load.
func (o *Options) validate(env *Env) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if o.Agent != "" && o.AgentScript != "" {
		bad("Options.Agent %q and Options.AgentScript: want at most one", o.Agent)
	}
	if o.Agent != "" {
		if err := checkAgent(o.Agent); err != nil {
			bad("Options.Agent %q: %v", o.Agent, err)
		}
	}
	for i, a := range o.Args {
		if strings.ContainsRune(a, 0) {
			bad("Options.Args[%d] %q: contains NUL, which no argv can carry", i, a)
		}
	}
	for i, f := range o.Files {
		if _, err := os.Lstat(f.Host); err != nil {
			bad("Options.Files[%d].Host %q: %v", i, f.Host, err)
		}
		if err := checkGuestPath(f.Guest); err != nil {
			bad("Options.Files[%d].Guest %q: %v", i, f.Guest, err)
		}
	}
	for i, p := range o.Packages {
		if err := checkPackageName(p); err != nil {
			bad("Options.Packages[%d]: %v", i, err)
		}
	}
	for i, b := range o.Binaries {
		if _, err := exec.LookPath(b); err != nil {
			bad("Options.Binaries[%d] %q: %v", i, b, err)
		}
	}
	for i, m := range o.Modules {
		switch {
		case !moduleNameRE.MatchString(m):
			bad("Options.Modules[%d] %q: want a module name (%s)", i, m, moduleNameRE)
		case env != nil && !env.modules[moduleName(m)]:
			bad("Options.Modules[%d] %q: not in the base initramfs; add it to %s", i, m, envExtraModules)
		}
	}
	for i, d := range o.NVMe {
		if err := checkDisk(d); err != nil {
			bad("Options.NVMe[%d] %q: %v", i, d.Path, err)
		}
	}
	for i, s := range o.VhostUser {
		if st, err := os.Stat(s); err != nil {
			bad("Options.VhostUser[%d] %q: %v (start the back end first: QEMU connects at start)", i, s, err)
		} else if st.Mode().Type() != os.ModeSocket {
			bad("Options.VhostUser[%d] %q: a %v, want a listening unix socket", i, s, st.Mode().Type())
		}
	}
	hostPorts := map[int]int{}
	for i, f := range o.Forwards {
		if f.HostPort < 1 || f.HostPort > 65535 {
			bad("Options.Forwards[%d].HostPort %d: want 1..65535", i, f.HostPort)
		}
		if f.GuestPort < 1 || f.GuestPort > 65535 {
			bad("Options.Forwards[%d].GuestPort %d: want 1..65535", i, f.GuestPort)
		}
		if j, dup := hostPorts[f.HostPort]; dup {
			bad("Options.Forwards[%d].HostPort %d: already used by Forwards[%d]", i, f.HostPort, j)
		}
		hostPorts[f.HostPort] = i
	}
	if o.MemoryMiB != 0 && (o.MemoryMiB < memoryMiBMin || o.MemoryMiB > memoryMiBMax) {
		bad("Options.MemoryMiB %d: want 0 (%d) or %d..%d", o.MemoryMiB, memoryMiBDefault, memoryMiBMin, memoryMiBMax)
	}
	if o.CPUs < 0 || o.CPUs > cpusMax {
		bad("Options.CPUs %d: want 0 (1) or 1..%d", o.CPUs, cpusMax)
	}
	if o.Timeout < 0 {
		bad("Options.Timeout %v: want 0 (%v) or positive", o.Timeout, timeoutDefault)
	}
	if strings.ContainsAny(o.Ready, "\r\n") {
		bad("Options.Ready %q: want text within one line", o.Ready)
	}
	for i, a := range o.KernelArgs {
		if err := checkKernelArg(a); err != nil {
			bad("Options.KernelArgs[%d] %q: %v", i, a, err)
		}
	}
	if n := len(o.kernelCmdline()); n > kernelCmdlineMax-1 {
		bad("Options.KernelArgs: command line of %d bytes, want under %d", n, kernelCmdlineMax)
	}
	return errors.Join(errs...)
}

// checkAgent accepts a script with a "#!" line or an x86-64 ELF executable.
func checkAgent(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("a %v, want a regular file", st.Mode().Type())
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	switch {
	case n >= 2 && string(head[:2]) == "#!":
		return nil
	case n == 4 && string(head) == elf.ELFMAG:
		ef, err := elf.NewFile(f)
		if err != nil {
			return err
		}
		if ef.Machine != elf.EM_X86_64 {
			return fmt.Errorf("ELF for %v, want EM_X86_64 (build with GOARCH=amd64)", ef.Machine)
		}
		return nil
	default:
		return fmt.Errorf("starts with %q, want \"#!\" or an ELF executable", head[:n])
	}
}

// checkGuestPath wants an absolute, clean path that /init does not own.
func checkGuestPath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("want an absolute clean path below /")
	}
	for _, r := range reservedGuestPaths {
		if p == r || strings.HasPrefix(p, r+"/") {
			return fmt.Errorf("%s belongs to the guest's /init", r)
		}
	}
	return nil
}

func checkDisk(d Disk) error {
	if d.Path == "" {
		return fmt.Errorf("want a path")
	}
	if d.Size < 0 || d.Size%diskBlockSize != 0 {
		return fmt.Errorf("Size %d: want 0 or a positive multiple of %d", d.Size, diskBlockSize)
	}
	st, err := os.Stat(d.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return fmt.Errorf("a %v, want a raw image file", st.Mode().Type())
	case d.Size != 0 && st.Size() != d.Size:
		return fmt.Errorf("exists with %d bytes, want Size %d", st.Size(), d.Size)
	case st.Size() == 0 || st.Size()%diskBlockSize != 0:
		return fmt.Errorf("exists with %d bytes, want a positive multiple of %d", st.Size(), diskBlockSize)
	}
	return nil
}

// checkKernelArg wants one word the kernel's parser reads as written: no
// whitespace (a separator), no quotes (the parser strips them), no controls.
func checkKernelArg(a string) error {
	if a == "" {
		return fmt.Errorf("empty")
	}
	for _, r := range a {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' || r > unicode.MaxASCII {
			return fmt.Errorf("character %q: want printable ASCII without spaces or quotes", r)
		}
	}
	return nil
}

// kernelCmdline is the guest kernel's command line for these options.
func (o *Options) kernelCmdline() string {
	words := []string{"console=ttyS0", "rdinit=/init", "panic=-1"}
	if !o.Verbose {
		words = append(words, "quiet")
	}
	if o.IOMMU {
		words = append(words, "intel_iommu=on")
	}
	return strings.Join(append(words, o.KernelArgs...), " ")
}

// guestModules is the modprobe list /init runs: the IOMMU's drivers first
// (vfio_iommu_type1 is only a softdep of vfio, which busybox ignores), then
// Options.Modules.
func (o *Options) guestModules() []string {
	var mods []string
	if o.IOMMU {
		mods = append(mods, "vfio-pci", "vfio_iommu_type1")
	}
	return append(mods, o.Modules...)
}

// shellQuote quotes s for a POSIX shell. Inside single quotes every byte is
// literal except the single quote itself, which closes the quoting, is
// written escaped and reopens it:
//
//	it's → 'it'\''s'
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// argsScript is the /guest/args.sh that /init sources to set "$@".
func argsScript(args []string) string {
	var b strings.Builder
	b.WriteString("set --")
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(shellQuote(a))
	}
	b.WriteByte('\n')
	return b.String()
}

// qemuEscape doubles commas: QEMU's option parser reads ",," as a literal
// comma inside a value such as file=PATH.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
