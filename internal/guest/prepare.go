package guest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

//go:embed init.sh
var initScript []byte

// baseFormat is part of the base initramfs's cache key: bump it whenever
// buildBase changes what it writes, so every cache rebuilds its base.
const baseFormat = "sluice-guest-base-v2"

// Environment variables read by Prepare (and documented in doc.go).
const (
	envCache        = "SLUICE_GUEST_CACHE"
	envKernelPkg    = "SLUICE_GUEST_KERNEL_PKG"
	envExtraModules = "SLUICE_GUEST_EXTRA_MODULES"
	envAccel        = "SLUICE_GUEST_ACCEL"
)

// Env is a prepared guest environment: the host tools and the cached kernel
// and base initramfs that Run boots. Fields are read-only after Prepare.
type Env struct {
	CacheDir      string // $SLUICE_GUEST_CACHE, default os.UserCacheDir()/sluice-guest
	KernelPackage string // e.g. linux-image-6.1.0-48-amd64
	KernelVersion string // the modules directory name, e.g. 6.1.0-48-amd64
	Kernel        string // uncompressed vmlinux, booted by QEMU through its PVH entry
	BaseInitramfs string // busybox, modules and /init; Run appends a per-run archive
	QEMU          string // path of qemu-system-x86_64
	Accel         string // QEMU accelerator: "tcg" (default) or "kvm"

	modules map[string]bool // normalized names Options.Modules may use
}

// baseManifest is stored beside a base initramfs: what Run needs to know
// about it without reading the archive.
type baseManifest struct {
	KernelPackage string
	KernelVersion string
	Modules       []string // loadable names: modules in the archive, built-ins, aliases
}

// config is what Prepare reads from the environment.
type config struct {
	cacheDir     string
	kernelPkg    string // pinned package, "" to resolve linux-image-amd64
	extraModules []string
	accel        string
}

func configFromEnv() (config, error) {
	cfg := config{
		cacheDir:  os.Getenv(envCache),
		kernelPkg: os.Getenv(envKernelPkg),
		accel:     os.Getenv(envAccel),
	}
	var errs []error
	if cfg.cacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s unset and no user cache dir: %w", envCache, err))
		}
		cfg.cacheDir = filepath.Join(dir, "sluice-guest")
	}
	if !filepath.IsAbs(cfg.cacheDir) {
		abs, err := filepath.Abs(cfg.cacheDir)
		errs = append(errs, err)
		cfg.cacheDir = abs
	}
	if cfg.kernelPkg != "" {
		if err := checkPackageName(cfg.kernelPkg); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envKernelPkg, err))
		}
	}
	cfg.extraModules = strings.FieldsFunc(os.Getenv(envExtraModules), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n'
	})
	for _, m := range cfg.extraModules {
		if !moduleNameRE.MatchString(m) {
			errs = append(errs, fmt.Errorf("%s: module %q: want %s", envExtraModules, m, moduleNameRE))
		}
	}
	switch cfg.accel {
	case "":
		cfg.accel = "tcg"
	case "tcg", "kvm":
	default:
		errs = append(errs, fmt.Errorf("%s=%q: want tcg or kvm", envAccel, cfg.accel))
	}
	return cfg, errors.Join(errs...)
}

func (c config) key() string {
	return strings.Join([]string{c.cacheDir, c.kernelPkg, strings.Join(c.extraModules, ","), c.accel}, "\x00")
}

// moduleNameRE is what a module name (or alias) may look like; it also keeps
// names safe inside the guest's shell.
var moduleNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// prepared is the in-process guard: one Prepare at a time, and a prepared
// Env is remembered per configuration. Failures are not remembered, so a
// later call retries (a download may succeed next time).
var prepared struct {
	mu   sync.Mutex // lock: serializes Prepare; held across downloads on purpose
	envs map[string]*Env
}

// Prepare makes the guest environment ready and returns it: it installs the
// missing host tools (as root), downloads Debian's kernel package into the
// cache, extracts its uncompressed vmlinux and builds the base initramfs.
// Everything is cached; a warm call only checks that the files are there.
// Safe for concurrent use by goroutines and by processes sharing the cache
// (a flock on the cache plus atomic renames). A host that cannot run the
// guest gives an error wrapping ErrUnavailable.
func Prepare(ctx context.Context) (*Env, error) {
	cfg, err := configFromEnv()
	if err != nil {
		return nil, fmt.Errorf("guest: %w", err)
	}
	prepared.mu.Lock()
	defer prepared.mu.Unlock()
	if env := prepared.envs[cfg.key()]; env != nil {
		return env, nil
	}
	env, err := prepare(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("guest: prepare: %w", err)
	}
	if prepared.envs == nil {
		prepared.envs = map[string]*Env{}
	}
	prepared.envs[cfg.key()] = env
	return env, nil
}

func prepare(ctx context.Context, cfg config) (*Env, error) {
	tools, err := ensureHostTools(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.cacheDir, 0o755); err != nil {
		return nil, err
	}
	modules := append(append([]string(nil), baseModules...), cfg.extraModules...)
	c := &cache{dir: cfg.cacheDir, xz: tools.xz, busybox: tools.busybox}

	// Warm path, without the lock: every file is created under a temporary
	// name and renamed into place, so a name that exists is complete (G1).
	if pkg := c.kernelPackage(cfg); pkg != "" {
		if env, err := c.load(pkg, modules); err == nil {
			return env.finish(tools, cfg), nil
		}
	}

	unlock, err := lockFile(ctx, filepath.Join(c.dir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	c.removeScratch()
	defer c.removeScratch()

	pkg, err := c.resolveKernelPackage(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if env, err := c.load(pkg, modules); err == nil { // another process built it
		return env.finish(tools, cfg), nil
	}
	if pkg, err = c.ensureKernelResolved(ctx, cfg, pkg); err != nil {
		return nil, err
	}
	if env, err := c.load(pkg, modules); err == nil { // a re-resolved kernel already built
		return env.finish(tools, cfg), nil
	}
	if err := c.ensureBase(ctx, pkg, modules); err != nil {
		return nil, err
	}
	env, err := c.load(pkg, modules)
	if err != nil {
		return nil, err
	}
	return env.finish(tools, cfg), nil
}

func (e *Env) finish(tools hostPaths, cfg config) *Env {
	e.QEMU = tools.qemu
	e.Accel = cfg.accel
	return e
}

// cache is the cache directory's layout:
//
//	.lock                    flock held while anything is built
//	kernel-pkg               resolved kernel package (unless pinned)
//	kernel/<pkg>/kernel.deb  the package as downloaded (for rebuilding the base)
//	kernel/<pkg>/vmlinux     uncompressed kernel
//	kernel/<pkg>/version     modules directory name
//	base-<key>.cpio, .json   base initramfs and its manifest
//	debs/<pkg>/              dpkg -x of a package Options.Packages asked for
//	.scratch-*               unpacked kernel package while building (deleted)
type cache struct {
	dir     string
	xz      string
	busybox string
	scratch string // unpacked kernel package, "" until unpacked
}

// kernelPackage returns the pinned or remembered kernel package, "" if none.
func (c *cache) kernelPackage(cfg config) string {
	if cfg.kernelPkg != "" {
		return cfg.kernelPkg
	}
	b, err := os.ReadFile(filepath.Join(c.dir, "kernel-pkg"))
	if err != nil || checkPackageName(strings.TrimSpace(string(b))) != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// resolveKernelPackage returns the pinned or remembered package, or asks apt
// which versioned package linux-image-amd64 depends on and remembers it, so
// the cache stays on one kernel until it is deleted.
func (c *cache) resolveKernelPackage(ctx context.Context, cfg config) (string, error) {
	if pkg := c.kernelPackage(cfg); pkg != "" {
		return pkg, nil
	}
	pkg, err := aptKernelPackage(ctx)
	if err != nil && os.Geteuid() == 0 {
		if uerr := aptUpdate(ctx); uerr != nil {
			return "", errors.Join(err, uerr)
		}
		pkg, err = aptKernelPackage(ctx)
	}
	if err != nil {
		return "", err
	}
	return pkg, writeFileAtomic(filepath.Join(c.dir, "kernel-pkg"), []byte(pkg+"\n"), 0o644)
}

func aptKernelPackage(ctx context.Context) (string, error) {
	out, err := runTool(ctx, "", nil, "apt-cache", "depends", "linux-image-amd64")
	if err != nil {
		return "", err
	}
	return parseKernelDepends(out)
}

// kernelDependsRE matches the versioned image in `apt-cache depends
// linux-image-amd64`, e.g. "  Depends: linux-image-6.1.0-48-amd64".
var kernelDependsRE = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-[0-9][a-z0-9+.-]*)\s*$`)

func parseKernelDepends(out []byte) (string, error) {
	m := kernelDependsRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64: no versioned linux-image dependency in %q", out)
	}
	return string(m[1]), nil
}

// ensureKernelResolved is ensureKernel, and when the download fails for a
// package that is not pinned, asks apt again and retries once with the
// answer: Debian replaces linux-image-6.1.0-N-amd64 by N+1 on security
// updates and drops N from the mirror, so a remembered or stale name can
// stop downloading. Returns the package in the cache.
func (c *cache) ensureKernelResolved(ctx context.Context, cfg config, pkg string) (string, error) {
	err := c.ensureKernel(ctx, pkg)
	if err == nil || cfg.kernelPkg != "" {
		return pkg, err
	}
	newPkg, rerr := aptKernelPackage(ctx)
	if rerr != nil || newPkg == pkg {
		return "", err
	}
	slog.Info("guest: kernel package changed", "old", pkg, "new", newPkg)
	if err := c.ensureKernel(ctx, newPkg); err != nil {
		return "", err
	}
	return newPkg, writeFileAtomic(filepath.Join(c.dir, "kernel-pkg"), []byte(newPkg+"\n"), 0o644)
}

func (c *cache) kernelDir(pkg string) string { return filepath.Join(c.dir, "kernel", pkg) }

// ensureKernel downloads the kernel package and extracts vmlinux, unless the
// kernel directory is already there.
func (c *cache) ensureKernel(ctx context.Context, pkg string) error {
	final := c.kernelDir(pkg)
	complete := true
	for _, f := range []string{"kernel.deb", "vmlinux", "version"} {
		if _, err := os.Stat(filepath.Join(final, f)); err != nil {
			complete = false
		}
	}
	if complete {
		return nil
	}
	os.RemoveAll(final) // someone deleted part of it: start again
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), ".tmp-"+pkg+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	slog.Info("guest: downloading kernel package", "package", pkg)
	if err := aptDownload(ctx, tmp, pkg); err != nil {
		return err
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: got %d .deb files, want 1", pkg, len(debs))
	}
	if err := os.Rename(debs[0], filepath.Join(tmp, "kernel.deb")); err != nil {
		return err
	}
	root, err := c.unpackKernel(ctx, filepath.Join(tmp, "kernel.deb"))
	if err != nil {
		return err
	}
	version, vmlinuz, err := findVmlinuz(root)
	if err != nil {
		return err
	}
	if err := extractVmlinux(ctx, c.xz, vmlinuz, filepath.Join(tmp, "vmlinux")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "version"), []byte(version+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return err
	}
	return os.Rename(tmp, final)
}

// unpackKernel runs dpkg -x on the kernel package into a scratch directory
// (once per Prepare) and returns it. Nothing is installed on the host.
func (c *cache) unpackKernel(ctx context.Context, deb string) (string, error) {
	if c.scratch != "" {
		return c.scratch, nil
	}
	dir, err := os.MkdirTemp(c.dir, ".scratch-")
	if err != nil {
		return "", err
	}
	c.scratch = dir
	slog.Info("guest: unpacking kernel package", "deb", deb)
	_, err = runTool(ctx, "", nil, "dpkg", "-x", deb, dir)
	return dir, err
}

// removeScratch deletes unpacked kernel trees: ours when done, and any a
// killed process left behind. Only called under the cache lock, so no other
// process is using one.
func (c *cache) removeScratch() {
	old, _ := filepath.Glob(filepath.Join(c.dir, ".scratch-*"))
	for _, d := range old {
		os.RemoveAll(d)
	}
	c.scratch = ""
}

// findVmlinuz finds boot/vmlinuz-<version> in an unpacked kernel package.
func findVmlinuz(root string) (version, path string, err error) {
	m, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(m) != 1 {
		return "", "", fmt.Errorf("%s/boot: %d vmlinuz files, want 1", root, len(m))
	}
	return strings.TrimPrefix(filepath.Base(m[0]), "vmlinuz-"), m[0], nil
}

// xzMagic starts an xz stream (the xz file format, §2.1.1.1). A bzImage is a
// small decompressor followed by the compressed ELF vmlinux.
var xzMagic = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}

// extractVmlinux writes the uncompressed ELF kernel inside a bzImage to dst.
// QEMU boots that ELF directly through its PVH entry point, which under TCG
// saves the several seconds the bzImage spends decompressing itself.
func extractVmlinux(ctx context.Context, xz, bzImage, dst string) error {
	data, err := os.ReadFile(bzImage)
	if err != nil {
		return err
	}
	off := bytes.Index(data, xzMagic)
	if off < 0 {
		return fmt.Errorf("%s: no xz stream (magic % X): not an xz-compressed bzImage", bzImage, xzMagic)
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	// --single-stream: the bzImage has trailing data after the stream.
	cmd := exec.CommandContext(ctx, xz, "-dc", "--single-stream")
	cmd.Stdin = bytes.NewReader(data[off:])
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("xz -dc %s at offset %d: %w: %s", bzImage, off, err, stderr.Bytes())
	}
	if err := out.Close(); err != nil {
		return err
	}
	return checkPVH(dst)
}

// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY (xen/include/public/
// elfnote.h): the PVH entry point QEMU's -kernel needs in an ELF kernel.
const xenElfnotePhys32Entry = 18

// checkPVH verifies that path is an x86-64 ELF with a PVH entry note.
func checkPVH(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("vmlinux %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("vmlinux %s: machine %v, want EM_X86_64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("vmlinux %s: PT_NOTE: %w", path, err)
		}
		if hasELFNote(notes, "Xen", xenElfnotePhys32Entry) {
			return nil
		}
	}
	return fmt.Errorf("vmlinux %s: no Xen PVH entry note (type %d): QEMU cannot boot it", path, xenElfnotePhys32Entry)
}

// hasELFNote walks ELF notes (namesz, descsz, type, name, desc; 4-aligned).
func hasELFNote(notes []byte, name string, typ uint32) bool {
	for len(notes) >= 12 {
		namesz := binary.LittleEndian.Uint32(notes[0:])
		descsz := binary.LittleEndian.Uint32(notes[4:])
		t := binary.LittleEndian.Uint32(notes[8:])
		nameEnd := 12 + uint64(namesz)
		next := 12 + alignNote(uint64(namesz)) + alignNote(uint64(descsz))
		if nameEnd > uint64(len(notes)) {
			return false
		}
		if t == typ && string(bytes.TrimRight(notes[12:nameEnd], "\x00")) == name {
			return true
		}
		if next > uint64(len(notes)) {
			return false
		}
		notes = notes[next:]
	}
	return false
}

func alignNote(n uint64) uint64 { return (n + 3) &^ 3 }

// baseKey names a base initramfs by everything that goes into it (G4).
func (c *cache) baseKey(pkg string, modules []string) (string, error) {
	bb, err := os.ReadFile(c.busybox)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(baseFormat), []byte(pkg),
		[]byte(strings.Join(modules, " ")), initScript, bb} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// load returns the Env of a complete cache entry, or an error if any part
// is missing.
func (c *cache) load(pkg string, modules []string) (*Env, error) {
	key, err := c.baseKey(pkg, modules)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(c.dir, "base-"+key+".cpio")
	kernel := filepath.Join(c.kernelDir(pkg), "vmlinux")
	for _, p := range []string{base, kernel} {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(filepath.Join(c.dir, "base-"+key+".json"))
	if err != nil {
		return nil, err
	}
	var m baseManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	env := &Env{
		CacheDir:      c.dir,
		KernelPackage: pkg,
		KernelVersion: m.KernelVersion,
		Kernel:        kernel,
		BaseInitramfs: base,
		modules:       map[string]bool{},
	}
	for _, n := range m.Modules {
		env.modules[n] = true
	}
	return env, nil
}

// staleBaseAge is how old another key's base must be before ensureBase
// deletes it: a process started with other SLUICE_GUEST_EXTRA_MODULES may
// still be reading it without the lock, and a day is far beyond any test run.
const staleBaseAge = 24 * time.Hour

// ensureBase builds the base initramfs for pkg and modules.
func (c *cache) ensureBase(ctx context.Context, pkg string, modules []string) error {
	key, err := c.baseKey(pkg, modules)
	if err != nil {
		return err
	}
	base := filepath.Join(c.dir, "base-"+key+".cpio")
	slog.Info("guest: building base initramfs", "path", base)
	kdir := c.kernelDir(pkg)
	v, err := os.ReadFile(filepath.Join(kdir, "version"))
	if err != nil {
		return err
	}
	version := strings.TrimSpace(string(v))
	root, err := c.unpackKernel(ctx, filepath.Join(kdir, "kernel.deb"))
	if err != nil {
		return err
	}
	manifest, tmpCPIO, err := c.buildBase(ctx, root, version, modules)
	if err != nil {
		return err
	}
	defer os.Remove(tmpCPIO)
	manifest.KernelPackage = pkg
	j, err := json.MarshalIndent(manifest, "", "\t")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(strings.TrimSuffix(base, ".cpio")+".json", j, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmpCPIO, base); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(c.dir, "base-*"))
	for _, p := range old {
		if st, err := os.Stat(p); err == nil && !strings.Contains(p, key) && time.Since(st.ModTime()) > staleBaseAge {
			os.Remove(p)
		}
	}
	return nil
}

// guestLibDir is where the guest's shared libraries go: the Debian multiarch
// directory, which the dynamic loader searches without an ld.so.cache.
const guestLibDir = "/lib/x86_64-linux-gnu"

// baseFiles are the small files every guest has. /etc/passwd and /etc/group
// because some tools (iscsid) look up uid 0; an initiator name because
// iscsid refuses to start without one.
var baseFiles = []struct {
	path string
	data string
}{
	{"/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"},
	{"/etc/group", "root:x:0:\n"},
	{"/etc/hosts", "127.0.0.1 localhost\n10.0.2.15 guest\n"},
	{"/etc/hostname", "guest\n"},
	{"/etc/iscsi/initiatorname.iscsi", "InitiatorName=iqn.2024-01.io.sluice:guest\n"},
}

// buildBase writes the base initramfs into a temporary file in the cache:
// busybox with a link per applet, the module closure with the modules.dep
// and modules.alias that busybox depmod makes for it, the base files and the
// embedded /init.
func (c *cache) buildBase(ctx context.Context, root, version string, modules []string) (baseManifest, string, error) {
	var m baseManifest
	m.KernelVersion = version
	tree, err := openModuleTree(filepath.Join(root, "lib", "modules", version))
	if err != nil {
		return m, "", err
	}
	paths, err := tree.closure(modules)
	if err != nil {
		return m, "", err
	}
	stage, err := c.stageModules(ctx, tree, version, paths)
	if err != nil {
		return m, "", err
	}
	m.Modules, err = loadableModules(tree, paths, stage)
	if err != nil {
		return m, "", err
	}
	applets, err := runTool(ctx, "", nil, c.busybox, "--list")
	if err != nil {
		return m, "", err
	}

	f, err := os.CreateTemp(c.dir, ".base-*.cpio")
	if err != nil {
		return m, "", err
	}
	w := newCPIOWriter(f)
	err = writeBase(w, c.busybox, strings.Fields(string(applets)), stage, version)
	if err == nil {
		err = w.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644) // CreateTemp makes it 0600
	}
	if err != nil {
		os.Remove(f.Name())
		return m, "", err
	}
	return m, f.Name(), nil
}

// stageModules copies the module closure into a scratch root and runs
// busybox depmod there, so modules.dep, modules.alias (for coldplug) and
// modules.symbols describe exactly what the guest has, in the format the
// guest's busybox modprobe reads. Returns the staged modules directory.
func (c *cache) stageModules(ctx context.Context, tree *moduleTree, version string, paths []string) (string, error) {
	stageRoot := filepath.Join(c.scratch, ".stage")
	stage := filepath.Join(stageRoot, "lib", "modules", version)
	for _, rel := range append([]string{"modules.builtin", "modules.order"}, paths...) {
		dst := filepath.Join(stage, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := os.Link(filepath.Join(tree.dir, rel), dst); err != nil {
			return "", err
		}
	}
	if _, err := runTool(ctx, "", nil, c.busybox, "depmod", "-b", stageRoot, version); err != nil {
		return "", err
	}
	return stage, nil
}

// loadableModules lists the names Options.Modules may use: what is in the
// archive, what is built in, and the plain aliases of what is in the archive.
func loadableModules(tree *moduleTree, paths []string, stage string) ([]string, error) {
	set := map[string]bool{}
	for _, p := range paths {
		set[moduleName(strings.TrimSuffix(filepath.Base(p), ".ko"))] = true
	}
	for n := range tree.builtin {
		set[n] = true
	}
	f, err := os.Open(filepath.Join(stage, "modules.alias"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	aliases, err := parseModulesAlias(f)
	if err != nil {
		return nil, err
	}
	for _, a := range aliases {
		if moduleNameRE.MatchString(a) { // not the "devname:…" forms
			set[a] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func writeBase(w *cpioWriter, busybox string, applets []string, stage, version string) error {
	// /etc/target: LIO's db_root, which it complains about when missing.
	for _, d := range []string{"/dev", "/proc", "/sys", "/tmp", "/run", "/root", "/mnt",
		"/var/lib", "/var/log", "/usr", "/etc/target", guestLibDir, "/lib64"} {
		if err := w.Dir(d, 0o755); err != nil {
			return err
		}
	}
	links := [][2]string{{"/sbin", "bin"}, {"/usr/bin", "../bin"}, {"/usr/sbin", "../bin"},
		{"/var/run", "../run"}, {"/var/lock", "../run/lock"}}
	for _, l := range links {
		if err := w.Symlink(l[0], l[1]); err != nil {
			return err
		}
	}
	// The kernel opens /dev/console before running /init; without the node
	// /init would start with no stdin/stdout until it mounts devtmpfs.
	if err := w.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := w.HostFile("/bin/busybox", busybox, 0o755); err != nil {
		return err
	}
	for _, a := range applets {
		if a == "busybox" || w.Has("/bin/"+a) {
			continue
		}
		if err := w.Symlink("/bin/"+a, "busybox"); err != nil {
			return err
		}
	}
	for _, f := range baseFiles {
		if err := w.File(f.path, 0o644, []byte(f.data)); err != nil {
			return err
		}
	}
	if err := w.File("/init", 0o755, initScript); err != nil {
		return err
	}
	return addTree(w, stage, "/lib/modules/"+version)
}

// addTree adds the host directory src as the guest directory dst, in sorted
// order: directories, regular files (mode kept) and symlinks (kept as is).
func addTree(w *cpioWriter, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return w.Dir(name, info.Mode().Perm())
		case info.Mode().IsRegular():
			return w.HostFile(name, p, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return w.Symlink(name, target)
		default:
			return fmt.Errorf("%s: a %v; only directories, files and symlinks can go into the guest", p, info.Mode().Type())
		}
	})
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it into place, so readers without the lock see all of it or nothing (G1).
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// lockPollInterval is how often lockFile retries a held lock: flock itself
// cannot be interrupted by a context, and a build holds it for seconds.
const lockPollInterval = 100 * time.Millisecond

// lockFile takes an exclusive flock on path, waiting until ctx ends. The
// lock belongs to the open file, so goroutines of one process exclude each
// other too.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		if !logged {
			slog.Info("guest: waiting for the cache lock", "path", path)
			logged = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, context.Cause(ctx))
		case <-time.After(lockPollInterval):
		}
	}
}
