package guest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "agent.sh")
	notAgent := filepath.Join(dir, "data.txt")
	oddDisk := filepath.Join(dir, "odd.img")
	regular := filepath.Join(dir, "regular")
	for path, data := range map[string]string{
		script: "#!/bin/sh\necho hi\n", notAgent: "hello", oddDisk: "123", regular: "x",
	} {
		if err := os.WriteFile(path, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "vhost.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env := &Env{modules: map[string]bool{"nvme_tcp": true, "null_blk": true}}

	tests := []struct {
		name  string
		opts  Options
		blame string // substring naming the field and value; "" = valid
	}{
		{"zero value", Options{}, ""},
		{"everything valid", Options{
			Agent: script, Args: []string{"a b", "it's", "$(x)", ""},
			Files:    []File{{Host: script, Guest: "/root/x.sh"}},
			Packages: []string{"nvme-cli", "libnvme1", "g++"}, Binaries: []string{"sh"},
			Modules: []string{"nvme-tcp", "null_blk"},
			NVMe:    []Disk{{Path: filepath.Join(dir, "new.img"), Size: 1 << 20}},
			IOMMU:   true, VhostUser: []string{sock},
			Forwards:  []Forward{{HostPort: 4420, GuestPort: 4420}, {HostPort: 4421, GuestPort: 4420}},
			MemoryMiB: 1024, CPUs: 2, Timeout: time.Minute, Ready: "READY", KernelArgs: []string{"hugepages=64"},
		}, ""},
		{"agent and script", Options{Agent: script, AgentScript: "true"}, "Options.Agent"},
		{"agent missing", Options{Agent: filepath.Join(dir, "nope")}, `Options.Agent "` + dir + `/nope"`},
		{"agent not executable format", Options{Agent: notAgent}, `want "#!" or an ELF`},
		{"NUL in arg", Options{Args: []string{"ok", "a\x00b"}}, "Options.Args[1]"},
		{"file host missing", Options{Files: []File{{Host: "/nonexistent/x", Guest: "/x"}}}, "Options.Files[0].Host"},
		{"file guest relative", Options{Files: []File{{Host: script, Guest: "root/x"}}}, `Options.Files[0].Guest "root/x"`},
		{"file guest unclean", Options{Files: []File{{Host: script, Guest: "/root/../x"}}}, "Options.Files[0].Guest"},
		{"file over init", Options{Files: []File{{Host: script, Guest: "/init"}}}, "belongs to the guest's /init"},
		{"file in /guest", Options{Files: []File{{Host: script, Guest: "/guest/args.sh"}}}, "belongs to the guest's /init"},
		{"bad package", Options{Packages: []string{"-o=evil"}}, `package "-o=evil"`},
		{"package with slash", Options{Packages: []string{"../x"}}, `package "../x"`},
		{"binary missing", Options{Binaries: []string{"no-such-binary-sluice"}}, `Options.Binaries[0] "no-such-binary-sluice"`},
		{"module unknown", Options{Modules: []string{"nvme_tcp", "zfs"}}, `Options.Modules[1] "zfs": not in the base initramfs`},
		{"module shell chars", Options{Modules: []string{"a;reboot"}}, `Options.Modules[0] "a;reboot"`},
		{"disk no path", Options{NVMe: []Disk{{}}}, `Options.NVMe[0] ""`},
		{"disk odd size", Options{NVMe: []Disk{{Path: filepath.Join(dir, "n.img"), Size: 1000}}}, "Size 1000"},
		{"disk size mismatch", Options{NVMe: []Disk{{Path: oddDisk, Size: 4096}}}, "exists with 3 bytes, want Size 4096"},
		{"disk existing odd", Options{NVMe: []Disk{{Path: oddDisk}}}, "exists with 3 bytes"},
		{"vhost missing", Options{VhostUser: []string{filepath.Join(dir, "none.sock")}}, "start the back end first"},
		{"vhost not socket", Options{VhostUser: []string{regular}}, "want a listening unix socket"},
		{"host port 0", Options{Forwards: []Forward{{HostPort: 0, GuestPort: 1}}}, "Options.Forwards[0].HostPort 0"},
		{"guest port big", Options{Forwards: []Forward{{HostPort: 1, GuestPort: 70000}}}, "Options.Forwards[0].GuestPort 70000"},
		{"host port twice", Options{Forwards: []Forward{{1000, 1}, {1000, 2}}}, "already used by Forwards[0]"},
		{"memory small", Options{MemoryMiB: 64}, "Options.MemoryMiB 64"},
		{"memory big", Options{MemoryMiB: 1 << 20}, "Options.MemoryMiB 1048576"},
		{"cpus", Options{CPUs: 99}, "Options.CPUs 99"},
		{"cpus negative", Options{CPUs: -1}, "Options.CPUs -1"},
		{"timeout", Options{Timeout: -time.Second}, "Options.Timeout -1s"},
		{"ready newline", Options{Ready: "a\nb"}, "Options.Ready"},
		{"kernel arg space", Options{KernelArgs: []string{"a b"}}, `Options.KernelArgs[0] "a b"`},
		{"kernel arg quote", Options{KernelArgs: []string{`a="b"`}}, "Options.KernelArgs[0]"},
		{"kernel arg empty", Options{KernelArgs: []string{""}}, "Options.KernelArgs[0]"},
		{"cmdline too long", Options{KernelArgs: []string{strings.Repeat("x", kernelCmdlineMax)}}, "command line of"},
	}
	for _, tc := range tests {
		err := tc.opts.validate(env)
		switch {
		case tc.blame == "" && err != nil:
			t.Errorf("%s: validate: %v, want nil", tc.name, err)
		case tc.blame != "" && (err == nil || !strings.Contains(err.Error(), tc.blame)):
			t.Errorf("%s: validate: %v, want an error containing %q", tc.name, err, tc.blame)
		}
	}
}

// TestValidateReportsAll: every problem at once, not the first only.
func TestValidateReportsAll(t *testing.T) {
	o := Options{CPUs: -1, MemoryMiB: 1, Timeout: -1, Ready: "\n"}
	err := o.validate(&Env{})
	for _, field := range []string{"Options.CPUs", "Options.MemoryMiB", "Options.Timeout", "Options.Ready"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("validate: %v, want it to name %s", err, field)
		}
	}
}

// TestArgsScript runs the generated args.sh in the host's /bin/sh (dash on
// Debian; the guest's is busybox ash, and both are POSIX shells) and checks
// that every argument comes back byte for byte.
func TestArgsScript(t *testing.T) {
	tests := [][]string{
		nil,
		{""},
		{"plain"},
		{"with space", "tab\there", "new\nline"},
		{"it's", `"double"`, `back\slash`, "$HOME", "$(reboot)", "`reboot`", "*", "-n", "--", ";", "'"},
		{"ünïcödé", "\x01\x7f\xff"},
	}
	for _, args := range tests {
		script := argsScript(args) + `for a in "$@"; do printf '%s\0' "$a"; done`
		out, err := exec.Command("/bin/sh", "-c", script).Output()
		if err != nil {
			t.Fatalf("sh -c %q: %v", script, err)
		}
		var got []string
		if len(out) > 0 {
			got = strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		}
		if len(got) != len(args) || (len(args) > 0 && !reflect.DeepEqual(got, args)) {
			t.Errorf("args %q came back as %q", args, got)
		}
	}
}

func TestKernelCmdline(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{}, "console=ttyS0 rdinit=/init panic=-1 quiet"},
		{Options{Verbose: true}, "console=ttyS0 rdinit=/init panic=-1"},
		{Options{IOMMU: true, KernelArgs: []string{"hugepages=8"}},
			"console=ttyS0 rdinit=/init panic=-1 quiet intel_iommu=on hugepages=8"},
	}
	for _, tc := range tests {
		if got := tc.opts.kernelCmdline(); got != tc.want {
			t.Errorf("kernelCmdline(%+v) = %q, want %q", tc.opts, got, tc.want)
		}
	}
}

func TestGuestModules(t *testing.T) {
	o := Options{IOMMU: true, Modules: []string{"nvme"}}
	want := []string{"vfio-pci", "vfio_iommu_type1", "nvme"}
	if got := o.guestModules(); !reflect.DeepEqual(got, want) {
		t.Errorf("guestModules = %q, want %q", got, want)
	}
}

func TestQEMUArgs(t *testing.T) {
	env := &Env{Kernel: "/k/vmlinux", Accel: "tcg"}
	o := &Options{
		NVMe:      []Disk{{Path: "/d/a,b.img"}},
		IOMMU:     true,
		VhostUser: []string{"/s/vhost.sock"},
		Forwards:  []Forward{{HostPort: 24420, GuestPort: 4420}},
		CPUs:      2,
	}
	args := strings.Join(env.qemuArgs(o, "/r/initrd"), " ")
	for _, want := range []string{
		"-accel tcg", "-smp 2", "-m 512",
		"-object memory-backend-memfd,id=mem,size=512M,share=on", "-machine q35,memory-backend=mem",
		"-kernel /k/vmlinux -initrd /r/initrd", "-no-reboot", "-serial stdio",
		"-device intel-iommu",
		"-netdev user,id=n0,hostfwd=tcp:127.0.0.1:24420-:4420",
		"-drive file=/d/a,,b.img,if=none,id=nvm0,format=raw", "-device nvme,serial=sluice0,drive=nvm0",
		"-chardev socket,id=vub0,path=/s/vhost.sock", "-device vhost-user-blk-pci,chardev=vub0",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q:\n%s", want, args)
		}
	}
	if strings.Index(args, "intel-iommu") > strings.Index(args, "virtio-net-pci") {
		t.Errorf("intel-iommu after the first PCI device:\n%s", args)
	}
	plain := strings.Join(env.qemuArgs(&Options{}, "/r/initrd"), " ")
	for _, absent := range []string{"memory-backend", "intel-iommu", "hostfwd", "nvme"} {
		if strings.Contains(plain, absent) {
			t.Errorf("qemu args for zero Options contain %q:\n%s", absent, plain)
		}
	}
}
