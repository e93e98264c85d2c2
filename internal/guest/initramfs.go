package guest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// buildInitramfs writes the run's initramfs to dst: a copy of the base
// archive followed by a second archive with the run's own files (the kernel
// unpacks both, later entries over earlier ones).
func (e *Env) buildInitramfs(ctx context.Context, o *Options, nonce, dst string) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	base, err := os.Open(e.BaseInitramfs)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, base)
	base.Close()
	if err != nil {
		return err
	}
	if n%cpioAlign != 0 { // cpioWriter always ends aligned; anything else is not our base
		return fmt.Errorf("%s: %d bytes, want a multiple of %d", e.BaseInitramfs, n, cpioAlign)
	}
	w := newCPIOWriter(out)
	w.offset = n
	if err := e.writeRunArchive(ctx, w, o, nonce); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return out.Close()
}

func (e *Env) writeRunArchive(ctx context.Context, w *cpioWriter, o *Options, nonce string) error {
	if err := writeControl(w, o, nonce); err != nil {
		return err
	}
	libs := newLibSet(w)
	switch {
	case o.AgentScript != "":
		script := o.AgentScript
		if !strings.HasPrefix(script, "#!") {
			script = "#!/bin/sh\n" + script
		}
		if err := w.File("/agent", 0o755, []byte(script)); err != nil {
			return err
		}
	case o.Agent != "":
		if err := w.HostFile("/agent", o.Agent, 0o755); err != nil {
			return err
		}
		if err := libs.addFor(ctx, o.Agent, nil); err != nil {
			return err
		}
	}
	for _, f := range o.Files {
		if err := addHostPath(w, f.Host, f.Guest); err != nil {
			return fmt.Errorf("Files %s → %s: %w", f.Host, f.Guest, err)
		}
	}
	return e.addPrograms(ctx, w, libs, o)
}

// writeControl writes the files /init reads: the nonce of its markers, the
// modules to load and the agent's arguments.
func writeControl(w *cpioWriter, o *Options, nonce string) error {
	if err := w.File("/guest/nonce", 0o644, []byte(nonce+"\n")); err != nil {
		return err
	}
	if mods := o.guestModules(); len(mods) > 0 {
		if err := w.File("/guest/modules", 0o644, []byte(strings.Join(mods, "\n")+"\n")); err != nil {
			return err
		}
	}
	return w.File("/guest/args.sh", 0o644, []byte(argsScript(o.Args)))
}

// addPrograms copies the programs of Options.Packages and Options.Binaries
// to /bin, with their libraries.
func (e *Env) addPrograms(ctx context.Context, w *cpioWriter, libs *libSet, o *Options) error {
	programs := map[string]string{} // guest name → host path, to refuse clashes
	add := func(p program, libDirs []string) error {
		guest := "/bin/" + p.name
		if prev, ok := programs[guest]; ok {
			if prev == p.host {
				return nil
			}
			return fmt.Errorf("program %s: both %s and %s", guest, prev, p.host)
		}
		programs[guest] = p.host
		if err := w.HostFile(guest, p.host, 0o755); err != nil {
			return err
		}
		return libs.addFor(ctx, p.host, libDirs)
	}
	roots, err := e.debRoots(ctx, o.Packages)
	if err != nil {
		return err
	}
	var libDirs []string
	for _, r := range roots {
		libDirs = append(libDirs, filepath.Join(r, "lib", "x86_64-linux-gnu"),
			filepath.Join(r, "usr", "lib", "x86_64-linux-gnu"))
	}
	for _, r := range roots {
		progs, err := debPrograms(r)
		if err != nil {
			return err
		}
		for _, p := range progs {
			if err := add(p, libDirs); err != nil {
				return err
			}
		}
	}
	for _, b := range o.Binaries {
		p, err := exec.LookPath(b)
		if err != nil {
			return err
		}
		host, err := filepath.EvalSymlinks(p)
		if err != nil {
			return err
		}
		if err := add(program{name: filepath.Base(p), host: host}, nil); err != nil {
			return err
		}
	}
	return nil
}

// addHostPath adds a host file, or a directory tree, at guest path dst.
func addHostPath(w *cpioWriter, src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return addTree(w, src, dst)
	}
	return w.HostFile(dst, src, st.Mode().Perm())
}

// debRoots returns the unpacked root of each package, downloading and
// unpacking the missing ones into the cache (under the cache lock).
func (e *Env) debRoots(ctx context.Context, pkgs []string) ([]string, error) {
	var roots []string
	for _, pkg := range pkgs {
		root, err := e.debRoot(ctx, pkg)
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", pkg, err)
		}
		roots = append(roots, root)
	}
	return roots, nil
}

// debRoot is cache/debs/<pkg>/root. The directory is renamed into place
// complete, so its existence means a finished unpack.
func (e *Env) debRoot(ctx context.Context, pkg string) (string, error) {
	if err := checkPackageName(pkg); err != nil {
		return "", err
	}
	final := filepath.Join(e.CacheDir, "debs", pkg)
	root := filepath.Join(final, "root")
	if _, err := os.Stat(root); err == nil {
		return root, nil
	}
	unlock, err := lockFile(ctx, filepath.Join(e.CacheDir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(root); err == nil { // another process did it
		return root, nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), ".tmp-"+pkg+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	slog.Info("guest: downloading package", "package", pkg)
	if err := aptDownload(ctx, tmp, pkg); err != nil {
		return "", err
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s: got %d .deb files, want 1", pkg, len(debs))
	}
	if _, err := runTool(ctx, "", nil, "dpkg", "-x", debs[0], filepath.Join(tmp, "root")); err != nil {
		return "", err
	}
	if err := os.Remove(debs[0]); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return "", err
	}
	os.RemoveAll(final) // a partial directory from an older layout
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	return root, nil
}

// programDirs are where a Debian package keeps its programs.
var programDirs = []string{"bin", "sbin", "usr/bin", "usr/sbin"}

// program is an executable to copy to /bin.
type program struct {
	name string // its name in /bin: the name the package installs it under
	host string // the file's host path, symlinks resolved
}

// debPrograms lists the executables a package installs. Symlinks are
// resolved inside the unpacked root (an absolute target means the root, not
// the host), and those leading outside it are skipped.
func debPrograms(root string) ([]program, error) {
	var progs []program
	for _, d := range programDirs {
		entries, err := os.ReadDir(filepath.Join(root, d))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, ent := range entries {
			p, ok := resolveInRoot(root, path.Join(d, ent.Name()))
			if !ok {
				continue
			}
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
				progs = append(progs, program{name: ent.Name(), host: p})
			}
		}
	}
	return progs, nil
}

// symlinkHopsMax bounds resolveInRoot, like the kernel's MAXSYMLINKS (40).
const symlinkHopsMax = 40

// resolveInRoot follows symlinks of rel (relative to root) as if root were
// "/", and returns the host path of the final file.
func resolveInRoot(root, rel string) (string, bool) {
	for range symlinkHopsMax {
		p := filepath.Join(root, rel)
		st, err := os.Lstat(p)
		if err != nil {
			return "", false
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return p, true
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", false
		}
		if path.IsAbs(target) {
			rel = path.Clean(target)
		} else {
			rel = path.Join(path.Dir(rel), target)
		}
		if strings.HasPrefix(rel, "../") || rel == ".." {
			return "", false
		}
	}
	return "", false
}

// libSet adds shared libraries to the archive once each.
type libSet struct {
	w    *cpioWriter
	done map[string]bool // guest paths already added
}

func newLibSet(w *cpioWriter) *libSet { return &libSet{w: w, done: map[string]bool{}} }

// addFor adds the shared libraries the host binary bin needs, as ldd
// resolves them with libDirs searched first; a static binary or a script
// needs none. A library ldd cannot find is an error naming it: the program
// would fail in the guest with a less helpful message.
func (s *libSet) addFor(ctx context.Context, bin string, libDirs []string) error {
	interp, err := elfInterpreter(bin)
	if err != nil || interp == "" { // not ELF (a script), or static
		return nil
	}
	cmd := exec.CommandContext(ctx, "ldd", bin)
	cmd.Env = os.Environ()
	if len(libDirs) > 0 {
		ldPath := strings.Join(libDirs, ":")
		if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
			ldPath += ":" + old
		}
		cmd.Env = append(cmd.Env, "LD_LIBRARY_PATH="+ldPath)
	}
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", bin, err)
	}
	libs, missing := parseLDD(string(out))
	if len(missing) > 0 {
		return fmt.Errorf("ldd %s: libraries not found: %s (add their package to Options.Packages)",
			bin, strings.Join(missing, ", "))
	}
	for _, l := range libs {
		if s.done[l.guest] {
			continue
		}
		s.done[l.guest] = true
		if err := s.w.HostFile(l.guest, l.host, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// lddLib is one library from ldd's output and where it goes in the guest.
type lddLib struct {
	guest string // the soname under guestLibDir, or the loader's own path
	host  string
}

// parseLDD reads ldd's output. Lines look like
//
//	linux-vdso.so.1 (0x…)                           the vDSO: nothing to copy
//	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)
//	/lib64/ld-linux-x86-64.so.2 (0x…)                the loader, by absolute path
//	libfoo.so.1 => not found
//
// A library is stored under its soname (the left side), since the file it
// resolves to is often a longer-versioned name; the loader keeps its path,
// which is compiled into every binary as PT_INTERP.
func parseLDD(out string) (libs []lddLib, missing []string) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && f[2] == "not":
			missing = append(missing, f[0])
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, lddLib{guest: path.Join(guestLibDir, path.Base(f[0])), host: f[2]})
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, lddLib{guest: f[0], host: f[0]})
		}
	}
	return libs, missing
}
