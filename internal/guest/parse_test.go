package guest

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseLDD(t *testing.T) {
	out := "\tlinux-vdso.so.1 (0x00007ffc5a1f2000)\n" +
		"\tlibnvme.so.1 => /cache/debs/libnvme1/root/usr/lib/x86_64-linux-gnu/libnvme.so.1 (0x00007f)\n" +
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n" +
		"\tlibisns.so.0 => not found\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n"
	libs, missing := parseLDD(out)
	wantLibs := []lddLib{
		{guest: "/lib/x86_64-linux-gnu/libnvme.so.1", host: "/cache/debs/libnvme1/root/usr/lib/x86_64-linux-gnu/libnvme.so.1"},
		{guest: "/lib/x86_64-linux-gnu/libc.so.6", host: "/lib/x86_64-linux-gnu/libc.so.6"},
		{guest: "/lib64/ld-linux-x86-64.so.2", host: "/lib64/ld-linux-x86-64.so.2"},
	}
	if !reflect.DeepEqual(libs, wantLibs) {
		t.Errorf("libs = %+v, want %+v", libs, wantLibs)
	}
	if !reflect.DeepEqual(missing, []string{"libisns.so.0"}) {
		t.Errorf("missing = %q, want [libisns.so.0]", missing)
	}
	if libs, missing := parseLDD("\tnot a dynamic executable\n"); libs != nil || missing != nil {
		t.Errorf("static binary: %v %v, want nothing", libs, missing)
	}
}

func TestParseKernelDepends(t *testing.T) {
	tests := []struct{ out, want string }{
		{"linux-image-amd64\n  Depends: linux-image-6.1.0-48-amd64\n", "linux-image-6.1.0-48-amd64"},
		{"linux-image-amd64\n  Depends: firmware\n  Depends: linux-image-6.1.0-56-amd64\n", "linux-image-6.1.0-56-amd64"},
		{"linux-image-amd64\n  Depends: linux-image-6.1.0-48-amd64 ; rm -rf /\n", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got, err := parseKernelDepends([]byte(tc.out))
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("parseKernelDepends(%q) = %q, %v; want %q", tc.out, got, err, tc.want)
		}
	}
}

func TestParseModinfoDepends(t *testing.T) {
	tests := []struct {
		modinfo string
		want    []string
	}{
		{"license=GPL\x00depends=nvme-core,nvme-fabrics\x00intree=Y\x00", []string{"nvme-core", "nvme-fabrics"}},
		{"depends=\x00name=configfs\x00", nil},
		{"name=x\x00", nil},
		{"xdepends=a\x00", nil},
	}
	for _, tc := range tests {
		if got := parseModinfoDepends([]byte(tc.modinfo)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseModinfoDepends(%q) = %q, want %q", tc.modinfo, got, tc.want)
		}
	}
}

func TestParseModulesAliasAndBuiltin(t *testing.T) {
	aliases, err := parseModulesAlias(strings.NewReader(
		"alias crypto-crc32c crc32c_generic\nalias crc32c crc32c_generic\n" +
			"alias pci:v00001B36d00000010sv*sd*bc*sc*i* nvme\nalias nvme-tcp-like x y\n"))
	if err != nil || !reflect.DeepEqual(aliases, []string{"crypto_crc32c", "crc32c"}) {
		t.Errorf("parseModulesAlias = %q, %v", aliases, err)
	}
	builtin, err := parseModulesBuiltin(strings.NewReader("kernel/fs/configfs/configfs.ko\n\nkernel/drivers/virtio/virtio-mmio.ko\n"))
	if err != nil || !reflect.DeepEqual(builtin, map[string]bool{"configfs": true, "virtio_mmio": true}) {
		t.Errorf("parseModulesBuiltin = %v, %v", builtin, err)
	}
}

func TestModuleClosure(t *testing.T) {
	deps := map[string][]string{
		"drivers/nvme-tcp.ko":     {"nvme-core", "nvme-fabrics"},
		"drivers/nvme-fabrics.ko": {"nvme-core"},
		"drivers/nvme-core.ko":    {"t10-pi"},
		"lib/t10-pi.ko":           nil,
		"fs/ext4.ko":              {"jbd2", "crc16", "mbcache"},
		"fs/jbd2.ko":              nil,
		"fs/mbcache.ko":           nil,
		"cycle/a.ko":              {"b"},
		"cycle/b.ko":              {"a"},
	}
	tree := &moduleTree{
		dir:     "/m",
		paths:   map[string]string{},
		builtin: map[string]bool{"crc16": true, "configfs": true},
		depends: func(p string) ([]string, error) { return deps[strings.TrimPrefix(p, "/m/")], nil },
	}
	for rel := range deps {
		tree.paths[moduleName(strings.TrimSuffix(filepath.Base(rel), ".ko"))] = rel
	}
	tests := []struct {
		names []string
		want  []string // sorted paths; nil = error
	}{
		{[]string{"nvme_tcp"}, []string{"drivers/nvme-core.ko", "drivers/nvme-fabrics.ko", "drivers/nvme-tcp.ko", "lib/t10-pi.ko"}},
		{[]string{"ext4", "configfs"}, []string{"fs/ext4.ko", "fs/jbd2.ko", "fs/mbcache.ko"}},
		{[]string{"a"}, []string{"cycle/a.ko", "cycle/b.ko"}},
		{[]string{"nvme-tcp", "zfs"}, nil},
	}
	for _, tc := range tests {
		got, err := tree.closure(tc.names)
		if !reflect.DeepEqual(got, tc.want) || (err == nil) != (tc.want != nil) {
			t.Errorf("closure(%q) = %q, %v; want %q", tc.names, got, err, tc.want)
		}
	}
}

func TestHasELFNote(t *testing.T) {
	note := func(name string, typ uint32, desc []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(name)+1))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = append(b, name...)
		b = append(b, make([]byte, alignNote(uint64(len(name)+1))-uint64(len(name)))...)
		return append(b, desc...)
	}
	gnu := note("GNU", 3, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	pvh := note("Xen", xenElfnotePhys32Entry, []byte{0, 0, 0, 1})
	tests := []struct {
		name  string
		notes []byte
		want  bool
	}{
		{"pvh after gnu", append(append([]byte(nil), gnu...), pvh...), true},
		{"gnu only", gnu, false},
		{"other Xen note", note("Xen", 1, []byte{0, 0, 0, 0}), false},
		{"truncated", pvh[:14], false},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		if got := hasELFNote(tc.notes, "Xen", xenElfnotePhys32Entry); got != tc.want {
			t.Errorf("%s: hasELFNote = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMarkerField(t *testing.T) {
	tests := []struct {
		line, want string
		ok         bool
	}{
		{"SLUICE-GUEST-EXIT n1 0", "0", true},
		{"SLUICE-GUEST-EXIT n1 137", "137", true},
		{"[    2.1] nvme: x SLUICE-GUEST-EXIT n1 3 trailing", "3", true}, // a kernel message on the same line
		{"SLUICE-GUEST-EXIT n2 0", "", false},                            // another run's nonce
		{"SLUICE-GUEST-EXIT n1 ", "", false},
		{"echo SLUICE-GUEST-EXIT $nonce $rc", "", false},
	}
	for _, tc := range tests {
		got, ok := markerField(tc.line, markerExit, "n1")
		if got != tc.want || ok != tc.ok {
			t.Errorf("markerField(%q) = %q, %v; want %q, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

// TestConsoleSink feeds console bytes in awkward pieces: CRLF line ends,
// markers split across writes, and a last line without a newline.
func TestConsoleSink(t *testing.T) {
	tests := []struct {
		name      string
		readyText string
		chunks    []string
		ready     bool
		exitCode  int // -1: no exit marker
	}{
		{"normal", "", []string{"boot\r\nSLUICE-GUEST-RE", "ADY n1 2.0s\r\nagent\r\nSLUICE-GUEST-EXIT n1 7\r\n"}, true, 7},
		{"ready text", "TARGET-UP", []string{"SLUICE-GUEST-READY n1 1s\n", "TARGET-", "UP\nSLUICE-GUEST-EXIT n1 0"}, true, 0},
		{"ready text never seen", "TARGET-UP", []string{"SLUICE-GUEST-READY n1 1s\nSLUICE-GUEST-EXIT n1 0\n"}, false, 0},
		{"panic", "", []string{"Kernel panic - not syncing: VFS\n"}, false, -1},
		{"foreign nonce", "", []string{"SLUICE-GUEST-READY n9 1s\nSLUICE-GUEST-EXIT n9 0\n"}, false, -1},
		{"bad status", "", []string{"SLUICE-GUEST-EXIT n1 x\n"}, false, -1},
	}
	for _, tc := range tests {
		var forwarded strings.Builder
		ready, exits := 0, 0
		s := &consoleSink{forward: &forwarded, nonce: "n1", readyText: tc.readyText, start: time.Now(),
			onReady: func() { ready++ }, onExit: func() { exits++ }}
		for _, c := range tc.chunks {
			s.Write([]byte(c))
		}
		res, err := s.finish(context.Background(), errors.New("exit status 0"), time.Second)
		wantOutput := strings.ReplaceAll(strings.Join(tc.chunks, ""), "\r", "")
		if !strings.HasSuffix(wantOutput, "\n") {
			wantOutput += "\n"
		}
		switch {
		case res.Output != wantOutput || forwarded.String() != wantOutput:
			t.Errorf("%s: output %q, forwarded %q, want %q", tc.name, res.Output, forwarded.String(), wantOutput)
		case (ready == 1) != tc.ready || ready > 1:
			t.Errorf("%s: onReady called %d times, want ready=%v", tc.name, ready, tc.ready)
		case res.ExitCode != tc.exitCode:
			t.Errorf("%s: exit code %d, want %d", tc.name, res.ExitCode, tc.exitCode)
		case tc.exitCode >= 0 && (err != nil || exits != 1):
			t.Errorf("%s: err %v, onExit %d times; want nil, once", tc.name, err, exits)
		case tc.exitCode < 0 && !errors.Is(err, ErrNoExit):
			t.Errorf("%s: err %v, want ErrNoExit", tc.name, err)
		}
	}
}

func TestConsoleSinkCauses(t *testing.T) {
	for _, cause := range []error{ErrTimeout, ErrStopped, context.Canceled} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(cause)
		s := &consoleSink{nonce: "n1", start: time.Now(), onReady: func() {}, onExit: func() {}}
		s.Write([]byte("half a boot\n"))
		_, err := s.finish(ctx, errors.New("signal: killed"), time.Second)
		if !errors.Is(err, cause) || errors.Is(err, ErrNoExit) || !strings.Contains(err.Error(), "half a boot") {
			t.Errorf("cause %v: err %v, want it wrapped with the console tail", cause, err)
		}
	}
}

func TestLastLines(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"", 3, ""},
		{"one\n", 1, "one"},
	}
	for _, tc := range tests {
		if got := lastLines(tc.s, tc.n); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// TestDebPrograms builds a fake unpacked package: programs are found in the
// four directories, symlinks resolve inside the root, and data files, links
// out of the root and dangling links are skipped.
func TestDebPrograms(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string, mode os.FileMode) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
	}
	ln := func(target, rel string) {
		if err := os.Symlink(target, filepath.Join(root, rel)); err != nil {
			t.Fatal(err)
		}
	}
	mk("usr/sbin/nvme", 0o755)
	mk("sbin/iscsid", 0o755)
	mk("usr/bin/readme.txt", 0o644)
	mk("usr/lib/tool", 0o755)
	ln("/usr/lib/tool", "usr/bin/tool")  // absolute: inside the root
	ln("../sbin/nvme", "usr/bin/nvme2")  // relative
	ln("/bin/sh", "usr/bin/hostsh")      // would be the host's /bin/sh: skipped
	ln("../../../../etc", "sbin/escape") // out of the root: skipped
	ln("missing", "sbin/dangling")
	progs, err := debPrograms(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []program{
		{name: "iscsid", host: filepath.Join(root, "sbin/iscsid")},
		{name: "nvme2", host: filepath.Join(root, "usr/sbin/nvme")},
		{name: "tool", host: filepath.Join(root, "usr/lib/tool")},
		{name: "nvme", host: filepath.Join(root, "usr/sbin/nvme")},
	}
	if !reflect.DeepEqual(progs, want) {
		t.Errorf("debPrograms = %+v, want %+v", progs, want)
	}
}

func TestCheckAgent(t *testing.T) {
	self, err := os.Executable() // the test binary: an x86-64 ELF on our CI
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "s")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	empty := filepath.Join(dir, "e")
	os.WriteFile(empty, nil, 0o755)
	tests := []struct {
		path string
		ok   bool
	}{{self, true}, {script, true}, {empty, false}, {dir, false}}
	for _, tc := range tests {
		if err := checkAgent(tc.path); (err == nil) != tc.ok {
			t.Errorf("checkAgent(%s) = %v, want ok=%v", tc.path, err, tc.ok)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv(envCache, "relative/cache")
	t.Setenv(envKernelPkg, "")
	t.Setenv(envExtraModules, "dm-mod, zram\tbtrfs")
	t.Setenv(envAccel, "")
	cfg, err := configFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(cfg.cacheDir) || cfg.accel != "tcg" || !reflect.DeepEqual(cfg.extraModules, []string{"dm-mod", "zram", "btrfs"}) {
		t.Errorf("config %+v", cfg)
	}
	t.Setenv(envAccel, "hvf")
	t.Setenv(envKernelPkg, "linux image")
	t.Setenv(envExtraModules, "ok,bad;name")
	_, err = configFromEnv()
	for _, want := range []string{envAccel, envKernelPkg, envExtraModules} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("configFromEnv: %v, want it to name %s", err, want)
		}
	}
}

func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".lock")
	unlock, err := lockFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description contends like another process would.
	ctx, cancel := context.WithTimeout(t.Context(), 3*lockPollInterval)
	defer cancel()
	if _, err := lockFile(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lockFile while held: %v, want the context's DeadlineExceeded", err)
	}
	unlock()
	unlock2, err := lockFile(t.Context(), path)
	if err != nil {
		t.Errorf("lockFile after unlock: %v", err)
	} else {
		unlock2()
	}
}
