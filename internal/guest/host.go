package guest

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// ErrUnavailable is wrapped by Prepare's error when this host cannot run the
// guest and the package cannot fix that by itself: QEMU or another tool is
// missing and we are not root, or the host has no apt. Require skips the test
// on it (outside CI); every other error is a failure.
var ErrUnavailable = errors.New("guest environment unavailable")

// hostTool is one program the environment needs on the host and the Debian
// package that provides it.
type hostTool struct {
	name string
	pkg  string
	// find returns the tool's path, or "" when it is missing or unusable.
	find func() string
}

// hostTools are installed by Prepare when missing. cpio is not among them:
// the initramfs is written by cpioWriter. qemu-system-x86 pulls in
// qemu-system-common, which also brings qemu-storage-daemon (the reference
// vhost-user back end).
var hostTools = []hostTool{
	{"qemu-system-x86_64", "qemu-system-x86", func() string { return lookPath("qemu-system-x86_64") }},
	{"busybox (static)", "busybox-static", findStaticBusybox},
	{"xz", "xz-utils", func() string { return lookPath("xz") }},
}

// debianTools come with every Debian-like system; without them nothing can
// be installed or downloaded, so their absence makes the guest unavailable.
var debianTools = []string{"apt-get", "apt-cache", "dpkg", "ldd"}

// hostPaths is where the host tools were found.
type hostPaths struct {
	qemu    string
	busybox string
	xz      string
}

func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// findStaticBusybox finds a busybox that runs in the guest without any
// library: Debian's dynamic "busybox" package would not.
func findStaticBusybox() string {
	for _, p := range []string{lookPath("busybox"), "/bin/busybox", "/usr/bin/busybox"} {
		if p == "" {
			continue
		}
		if dynamic, err := elfInterpreter(p); err == nil && dynamic == "" {
			return p
		}
	}
	return ""
}

// elfInterpreter returns the PT_INTERP of an ELF file: "" for a static binary.
func elfInterpreter(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", fmt.Errorf("%s: PT_INTERP: %w", path, err)
			}
			return string(bytes.TrimRight(b, "\x00")), nil
		}
	}
	return "", nil
}

// ensureHostTools finds the host tools and installs the missing ones with
// apt-get when running as root.
func ensureHostTools(ctx context.Context) (hostPaths, error) {
	for _, name := range debianTools {
		if lookPath(name) == "" {
			return hostPaths{}, fmt.Errorf("%w: %s not found: the guest needs a Debian-like host", ErrUnavailable, name)
		}
	}
	missing := missingTools()
	if len(missing) > 0 {
		pkgs := toolPackages(missing)
		if os.Geteuid() != 0 {
			return hostPaths{}, fmt.Errorf("%w: missing %s; as root run: apt-get install -y --no-install-recommends %s",
				ErrUnavailable, strings.Join(toolNames(missing), ", "), strings.Join(pkgs, " "))
		}
		slog.Info("guest: installing host packages", "packages", pkgs)
		if err := aptInstall(ctx, pkgs); err != nil {
			return hostPaths{}, err
		}
		if still := missingTools(); len(still) > 0 {
			return hostPaths{}, fmt.Errorf("guest: installed %s but %s still missing",
				strings.Join(pkgs, " "), strings.Join(toolNames(still), ", "))
		}
	}
	return hostPaths{
		qemu:    hostTools[0].find(),
		busybox: hostTools[1].find(),
		xz:      hostTools[2].find(),
	}, nil
}

func missingTools() []hostTool {
	var missing []hostTool
	for _, t := range hostTools {
		if t.find() == "" {
			missing = append(missing, t)
		}
	}
	return missing
}

func toolPackages(tools []hostTool) []string {
	var pkgs []string
	for _, t := range tools {
		pkgs = append(pkgs, t.pkg)
	}
	return pkgs
}

func toolNames(tools []hostTool) []string {
	var names []string
	for _, t := range tools {
		names = append(names, t.name)
	}
	return names
}

// aptLockTimeout is passed to apt-get as DPkg::Lock::Timeout (seconds): other
// test processes, or engineers, may be installing at the same time, and apt
// otherwise fails at once on a held lock.
const aptLockTimeout = "600"

// aptInstall installs packages non-interactively; when that fails (often a
// stale package index after a Debian point release) it updates the index once
// and tries again.
func aptInstall(ctx context.Context, pkgs []string) error {
	args := append([]string{"-o", "DPkg::Lock::Timeout=" + aptLockTimeout,
		"install", "-y", "--no-install-recommends"}, pkgs...)
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	if _, err := runTool(ctx, "", env, "apt-get", args...); err == nil {
		return nil
	}
	if err := aptUpdate(ctx); err != nil {
		return err
	}
	_, err := runTool(ctx, "", env, "apt-get", args...)
	return err
}

func aptUpdate(ctx context.Context) error {
	slog.Info("guest: apt-get update")
	_, err := runTool(ctx, "", []string{"DEBIAN_FRONTEND=noninteractive"},
		"apt-get", "-o", "DPkg::Lock::Timeout="+aptLockTimeout, "update")
	return err
}

// aptDownload fetches one package's .deb into dir (apt-get download never
// installs anything and needs no root). When it fails and we are root, the
// package index is refreshed once and the download retried: Debian drops a
// kernel package from the mirror when the next security update lands.
func aptDownload(ctx context.Context, dir, pkg string) error {
	_, err := runTool(ctx, dir, nil, "apt-get", "download", pkg)
	if err == nil || os.Geteuid() != 0 {
		return err
	}
	if uerr := aptUpdate(ctx); uerr != nil {
		return errors.Join(err, uerr)
	}
	_, err = runTool(ctx, dir, nil, "apt-get", "download", pkg)
	return err
}

// debPackageRE is Debian policy §5.6.1 for package names; checking it keeps a
// name from being read as an option or a path by apt-get and the cache.
var debPackageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

func checkPackageName(pkg string) error {
	if !debPackageRE.MatchString(pkg) {
		return fmt.Errorf("package %q: want a Debian package name (%s)", pkg, debPackageRE)
	}
	return nil
}

// toolOutputTail is how much of a failed tool's output its error carries:
// enough for apt's or dpkg's reason, not a whole log.
const toolOutputTail = 2048

// runTool runs a host tool and returns its combined output; a failure names
// the command and carries the end of its output.
func runTool(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := out
		if len(tail) > toolOutputTail {
			tail = tail[len(tail)-toolOutputTail:]
		}
		return out, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, bytes.TrimSpace(tail))
	}
	return out, nil
}
