package guest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// baseModules are the kernel modules the base initramfs carries, with
// everything they depend on. Options.Modules may name any of them (or an
// alias of one, or a built-in); SLUICE_GUEST_EXTRA_MODULES adds more. The
// list is what the interop tests of ARCHITECTURE.md need: NVMe (PCIe, TCP,
// RDMA) and the kernel's nvmet target as a reference peer, vfio and
// uio for the user-space NVMe driver, the iSCSI initiator and the LIO target,
// the virtio devices QEMU gives the guest, and block devices to serve.
var baseModules = []string{
	"virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi", "virtio_console",
	"nvme", "nvme-tcp", "nvme-rdma", "nvmet-tcp", "nvmet-rdma",
	"vfio-pci", "vfio_iommu_type1", "uio_pci_generic",
	"iscsi_tcp", "iscsi_target_mod", "target_core_iblock", "target_core_file", "tcm_loop",
	"sd_mod", "sg", "loop", "null_blk", "brd", "nbd", "configfs", "ext4",
	"rdma_rxe", "ib_uverbs", "rdma_ucm", "crc32c_generic", "crc32c-intel",
	"vmw_vsock_virtio_transport",
}

// moduleName normalizes a module name the way modprobe compares them:
// "nvme-tcp" and "nvme_tcp" are the same module.
func moduleName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleDependsMax bounds the dependency walk: a module tree has no cycles,
// so reaching it means a corrupt tree rather than a deep one (the deepest
// chain in the Debian 6.1 kernel is under 10).
const moduleDependsMax = 64

// moduleTree is the modules directory of an unpacked kernel package.
type moduleTree struct {
	dir     string                              // …/lib/modules/<version>
	paths   map[string]string                   // normalized name → path relative to dir
	builtin map[string]bool                     // normalized names of modules built into the kernel
	depends func(path string) ([]string, error) // moduleDepends; tests give a fake
}

// openModuleTree indexes every .ko under dir/kernel and reads modules.builtin.
func openModuleTree(dir string) (*moduleTree, error) {
	t := &moduleTree{dir: dir, paths: map[string]string{}, builtin: map[string]bool{}, depends: moduleDepends}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".ko") {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		t.paths[moduleName(strings.TrimSuffix(d.Name(), ".ko"))] = rel
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	if len(t.paths) == 0 {
		return nil, fmt.Errorf("index modules in %s: no .ko files (compressed modules are not supported)", dir)
	}
	f, err := os.Open(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t.builtin, err = parseModulesBuiltin(f)
	return t, err
}

// parseModulesBuiltin reads modules.builtin: one "kernel/…/name.ko" a line.
func parseModulesBuiltin(r io.Reader) (map[string]bool, error) {
	builtin := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		builtin[moduleName(strings.TrimSuffix(filepath.Base(line), ".ko"))] = true
	}
	return builtin, sc.Err()
}

// closure returns the paths (relative to t.dir, sorted) of the named modules
// and of everything they depend on. Built-in names need no file; an unknown
// name is an error naming it, so a typo in the list cannot pass silently.
func (t *moduleTree) closure(names []string) ([]string, error) {
	seen := map[string]bool{}
	var missing []string
	var walk func(name string, depth int) error
	walk = func(name string, depth int) error {
		name = moduleName(name)
		if seen[name] || t.builtin[name] {
			return nil
		}
		if depth > moduleDependsMax {
			return fmt.Errorf("module %s: dependency chain deeper than %d", name, moduleDependsMax)
		}
		rel, ok := t.paths[name]
		if !ok {
			missing = append(missing, name)
			return nil
		}
		seen[name] = true
		deps, err := t.depends(filepath.Join(t.dir, rel))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := walk(d, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := walk(n, 0); err != nil {
			return nil, err
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("modules %s: not in %s and not built in", strings.Join(missing, ", "), t.dir)
	}
	var paths []string
	for name := range seen {
		paths = append(paths, t.paths[name])
	}
	sort.Strings(paths)
	return paths, nil
}

// moduleDepends reads the "depends=" field of a .ko's .modinfo section: the
// modules whose symbols it uses, which is what depmod itself records.
func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: .modinfo: %w", path, err)
	}
	return parseModinfoDepends(data), nil
}

// parseModinfoDepends extracts the comma-separated "depends=" list from a
// .modinfo section (NUL-separated key=value strings).
func parseModinfoDepends(modinfo []byte) []string {
	var deps []string
	for _, kv := range bytes.Split(modinfo, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte("depends="))
		if !ok {
			continue
		}
		for _, d := range strings.Split(string(v), ",") {
			if d != "" {
				deps = append(deps, d)
			}
		}
	}
	return deps
}

// parseModulesAlias returns the plain (wildcard-free) aliases of a
// modules.alias file, such as "crc32c" → crc32c_generic: modprobe accepts
// them as names. Wildcard aliases are device modaliases for coldplug.
func parseModulesAlias(r io.Reader) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "alias" || strings.ContainsAny(f[1], "*?[") {
			continue
		}
		names = append(names, moduleName(f[1]))
	}
	return names, sc.Err()
}
