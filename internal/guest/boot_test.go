package guest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests in this file boot the guest, one QEMU each, a few seconds under
// TCG (more on a loaded machine). They log boot and run times and never
// assert one.

// bootTimeout bounds one test's guest; a boot takes 2-10 s here depending on
// the host's load, and the slowest test moves under 1 MiB.
const bootTimeout = 2 * time.Minute

// hostWait bounds how long the host side of a test waits for the guest.
const hostWait = time.Minute

// runGuest boots opts and fails the test unless the agent ran to its end.
func runGuest(t *testing.T, opts Options) *Result {
	t.Helper()
	env := Require(t)
	if opts.Console == nil {
		opts.Console = ConsoleLog(t)
	}
	if opts.Timeout == 0 {
		opts.Timeout = bootTimeout
	}
	res, err := env.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot %v, run %v, agent exit %d", res.BootTime.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond), res.ExitCode)
	return res
}

// wantOutput fails t for each text missing from the console output.
func wantOutput(t *testing.T, res *Result, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(res.Output, s) {
			t.Errorf("console lacks %q", s)
		}
	}
}

// wantGone fails t if process pid still exists (not even as a zombie).
func wantGone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("QEMU pid %d still there after Wait: kill(0) = %v", pid, err)
	}
}

// TestBootRunsAgent: arguments of every awkward kind arrive unchanged, files
// and directory trees are copied in, a dynamic host binary runs with its
// libraries, kernel arguments are passed, and the agent's exit status comes
// back.
func TestBootRunsAgent(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data.txt")
	tree := filepath.Join(dir, "tree")
	if err := errors.Join(
		os.WriteFile(data, []byte("payload from the host\n"), 0o644),
		os.MkdirAll(filepath.Join(tree, "sub"), 0o755),
		os.WriteFile(filepath.Join(tree, "sub", "f"), []byte("nested file\n"), 0o600),
	); err != nil {
		t.Fatal(err)
	}
	args := []string{"plain", "two words", `it's "quoted"`, "$(poweroff)", "*", ""}
	res := runGuest(t, Options{
		AgentScript: `for a in "$@"; do echo "arg=[$a]"; done
echo "argc=$#"
cat /root/data.txt /opt/tree/sub/f
echo "cmdline: $(cat /proc/cmdline)"
/bin/xz --version | head -1 # by path: a bare "xz" runs the busybox applet
exit 7`,
		Args:       args,
		Binaries:   []string{"xz"}, // dynamic: comes with liblzma and libc
		Files:      []File{{Host: data, Guest: "/root/data.txt"}, {Host: tree, Guest: "/opt/tree"}},
		KernelArgs: []string{"sluice.test=1"},
	})
	if res.ExitCode != 7 {
		t.Errorf("exit code %d, want the agent's 7", res.ExitCode)
	}
	if res.BootTime == 0 {
		t.Error("BootTime 0: the ready marker was not seen")
	}
	for _, a := range args {
		wantOutput(t, res, "arg=["+a+"]\n")
	}
	wantOutput(t, res, fmt.Sprintf("argc=%d\n", len(args)), "payload from the host\n", "nested file\n",
		"sluice.test=1", "xz (XZ Utils) ")
}

// TestNoExitMarker: a guest that never reaches its agent (here the kernel
// finds no init and panics; panic=-1 plus -no-reboot ends QEMU) is reported
// as ErrNoExit, not as a timeout or an exit status.
func TestNoExitMarker(t *testing.T) {
	env := Require(t)
	res, err := env.Run(t.Context(), Options{
		KernelArgs: []string{"rdinit=/no-such-init"}, // the last rdinit= wins
		Console:    ConsoleLog(t),
		Timeout:    bootTimeout,
	})
	if !errors.Is(err, ErrNoExit) {
		t.Fatalf("Run: %v, want ErrNoExit", err)
	}
	if res == nil || !strings.Contains(res.Output, "Kernel panic") {
		t.Errorf("Result %+v: want the panic in Output", res)
	}
}

// TestTimeoutKillsQEMU: Options.Timeout ends a guest whose agent never
// returns, and QEMU is gone when Wait returns.
func TestTimeoutKillsQEMU(t *testing.T) {
	env := Require(t)
	g, err := env.Start(t.Context(), Options{AgentScript: "sleep 600", Timeout: 3 * time.Second, Console: ConsoleLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Wait()
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait: %v, want ErrTimeout", err)
	}
	wantGone(t, g.PID())
}

// TestCancelKillsQEMU: cancelling Start's context ends a running guest.
func TestCancelKillsQEMU(t *testing.T) {
	env := Require(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	g, err := env.Start(ctx, Options{AgentScript: "echo AGENT-UP; sleep 600", Ready: "AGENT-UP",
		Timeout: bootTimeout, Console: ConsoleLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	cancel()
	res, err := g.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Wait: %v, want context.Canceled", err)
	}
	if res == nil || !strings.Contains(res.Output, "AGENT-UP") {
		t.Errorf("Result %+v: want the agent's output", res)
	}
	wantGone(t, g.PID())
}

// nvmeTCPICReq is the NVMe/TCP Initialize Connection Request the Linux host
// sends first (NVMe/TCP transport spec 1.0, §3.6.2.2): PDU type 0x00, flags
// 0, HLEN 128, PDO 0, PLEN 128; PFV 0, HPDA 0, no digests, MAXR2T 0
// (0's based: one R2T); the rest reserved.
func nvmeTCPICReq() []byte {
	b := make([]byte, 128)
	b[2] = 128
	binary.LittleEndian.PutUint32(b[4:], 128)
	return b
}

// TestKernelNVMeTCPReachesHost: the guest kernel's nvme-tcp connects to a
// listener of this test at the host's 127.0.0.1, and its first PDU is the
// ICReq byte for byte. The agent is a Go program built by BuildAgent.
func TestKernelNVMeTCPReachesHost(t *testing.T) {
	agent := BuildAgent(t, "./testdata/fabrics")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close() // hang up: the kernel's connect then fails, and the agent ends
		c.SetDeadline(time.Now().Add(hostWait))
		b := make([]byte, 128)
		if _, err := io.ReadFull(c, b); err != nil {
			b = nil
		}
		got <- b
	}()
	port := l.Addr().(*net.TCPAddr).Port
	connect := fmt.Sprintf("transport=tcp,traddr=10.0.2.2,trsvcid=%d,nqn=nqn.2014-08.org.nvmexpress.discovery", port)
	res := runGuest(t, Options{
		Agent:   agent,
		Args:    []string{connect, `second "arg", it's`},
		Modules: []string{"nvme-tcp"},
	})
	if res.ExitCode != 0 {
		t.Errorf("agent exit %d, want 0", res.ExitCode)
	}
	wantOutput(t, res, fmt.Sprintf("arg[1]=%q", connect), fmt.Sprintf("arg[2]=%q", `second "arg", it's`), "connect: ")
	select {
	case b := <-got:
		if want := nvmeTCPICReq(); !bytes.Equal(b, want) {
			t.Errorf("first PDU from the guest:\n%s\nwant the ICReq:\n%s", hex.Dump(b), hex.Dump(want))
		}
	case <-time.After(hostWait):
		t.Error("no connection from the guest reached the host listener")
	}
}

// TestNVMeCLI: nvme-cli from Debian's packages (downloaded, not installed on
// the host) runs in the guest and lists QEMU's NVMe controller.
func TestNVMeCLI(t *testing.T) {
	res := runGuest(t, Options{
		Packages:    []string{"nvme-cli", "libnvme1"},
		NVMe:        []Disk{{Path: filepath.Join(t.TempDir(), "nvme.img"), Size: 32 << 20}},
		AgentScript: "nvme version && nvme list",
	})
	if res.ExitCode != 0 {
		t.Errorf("agent exit %d, want 0", res.ExitCode)
	}
	wantOutput(t, res, "nvme version 2.", "/dev/nvme0n1", "sluice0", "QEMU NVMe Ctrl")
}

// TestISCSI: open-iscsi's iscsid and iscsiadm discover an in-guest LIO
// target, log in (the kernel's iscsi_tcp shows the LUN as /dev/sda, which
// reads) and log out.
func TestISCSI(t *testing.T) {
	res := runGuest(t, Options{
		Agent:    "testdata/iscsi.sh",
		Packages: []string{"open-iscsi", "libopeniscsiusr", "libisns0"},
		Modules:  []string{"iscsi_tcp", "iscsi_target_mod", "target_core_iblock", "null_blk", "sd_mod"},
	})
	if res.ExitCode != 0 {
		t.Errorf("agent exit %d, want 0", res.ExitCode)
	}
	wantOutput(t, res,
		"127.0.0.1:3260,1 iqn.2024-01.io.sluice:guest-target", // discovery
		"ISCSI-DISK vendor=LIO-ORG", "ISCSI-READ ok",
		"tcp: [1] 127.0.0.1:3260,1 iqn.2024-01.io.sluice:guest-target", // iscsiadm -m session
		"successful") // login and logout
}

// nvmetScript sets up the kernel's NVMe/TCP target on a null_blk namespace,
// listening on 0.0.0.0:4420, and keeps it up until the test sends a line.
const nvmetScript = `set -e
nvmet=/sys/kernel/config/nvmet
nqn=nqn.2024-01.io.sluice:guest-target
mkdir $nvmet/subsystems/$nqn
echo 1 >$nvmet/subsystems/$nqn/attr_allow_any_host
mkdir $nvmet/subsystems/$nqn/namespaces/1
echo -n /dev/nullb0 >$nvmet/subsystems/$nqn/namespaces/1/device_path
echo 1 >$nvmet/subsystems/$nqn/namespaces/1/enable
mkdir $nvmet/ports/1
echo tcp >$nvmet/ports/1/addr_trtype
echo ipv4 >$nvmet/ports/1/addr_adrfam
echo 0.0.0.0 >$nvmet/ports/1/addr_traddr
echo 4420 >$nvmet/ports/1/addr_trsvcid
ln -s $nvmet/subsystems/$nqn $nvmet/ports/1/subsystems/$nqn
echo NVMET-READY
read -r line
echo "NVMET-RELEASED by $line"
`

// TestKernelNVMeTargetThroughForward: the kernel's nvmet-tcp in the guest,
// the reference target later interop tests run our host against, answers an
// ICReq from this test through a host port forward. The test waits for the
// agent's ready line and ends it through the console.
func TestKernelNVMeTargetThroughForward(t *testing.T) {
	env := Require(t)
	hostPort := FreePort(t)
	g, err := env.Start(t.Context(), Options{
		AgentScript: nvmetScript,
		Modules:     []string{"nvmet-tcp", "null_blk"},
		Forwards:    []Forward{{HostPort: hostPort, GuestPort: 4420}},
		Ready:       "NVMET-READY",
		Timeout:     bootTimeout,
		Console:     ConsoleLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	if err := g.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}

	resp, err := icReqExchange(fmt.Sprintf("127.0.0.1:%d", hostPort))
	if err != nil {
		t.Error(err)
	} else {
		// ICResp (§3.6.2.3): type 0x01, HLEN 128, PLEN 128, PFV 0, and a
		// non-zero MAXH2CDATA.
		if resp[0] != 0x01 || resp[2] != 128 || binary.LittleEndian.Uint32(resp[4:]) != 128 ||
			binary.LittleEndian.Uint16(resp[8:]) != 0 || binary.LittleEndian.Uint32(resp[12:]) == 0 {
			t.Errorf("reply to ICReq is not an ICResp:\n%s", hex.Dump(resp))
		}
		t.Logf("ICResp: cpda %d, digests %#x, maxh2cdata %d", resp[10], resp[11], binary.LittleEndian.Uint32(resp[12:]))
	}

	if err := g.Send("test\n"); err != nil {
		t.Fatal(err)
	}
	res, err := g.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Errorf("agent exit %d, want 0", res.ExitCode)
	}
	wantOutput(t, res, "NVMET-RELEASED by test")
	t.Logf("boot %v, run %v", res.BootTime.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond))
}

// icReqExchange sends an ICReq to addr and returns the 128-byte reply.
func icReqExchange(addr string) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, hostWait)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hostWait))
	if _, err := c.Write(nvmeTCPICReq()); err != nil {
		return nil, fmt.Errorf("send ICReq to %s: %w", addr, err)
	}
	resp := make([]byte, 128)
	if _, err := io.ReadFull(c, resp); err != nil {
		return nil, fmt.Errorf("read ICResp from %s: %w", addr, err)
	}
	return resp, nil
}

// TestVFIO: with the emulated IOMMU, QEMU's NVMe controller moves from the
// nvme driver to vfio-pci and its VFIO group device appears: the setup our
// user-space NVMe driver needs.
func TestVFIO(t *testing.T) {
	res := runGuest(t, Options{
		Agent: "testdata/vfio.sh",
		NVMe:  []Disk{{Path: filepath.Join(t.TempDir(), "nvme.img"), Size: 16 << 20}},
		IOMMU: true,
	})
	if res.ExitCode != 0 {
		t.Errorf("agent exit %d, want 0", res.ExitCode)
	}
	wantOutput(t, res, " driver=nvme\n", " driver=vfio-pci group=", "VFIO-NODES /dev/vfio/vfio /dev/vfio/")
}

// TestVhostUserBlk: QEMU's vhost-user-blk-pci against qemu-storage-daemon
// (the reference back end) exporting a raw file: the guest sees /dev/vda of
// the file's size, reads what the host wrote and writes what the host reads.
func TestVhostUserBlk(t *testing.T) {
	Require(t) // installs QEMU, which brings qemu-storage-daemon
	qsd, err := exec.LookPath("qemu-storage-daemon")
	if err != nil {
		t.Fatalf("qemu-storage-daemon (Debian qemu-system-common): %v", err)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "vhost.img")
	const imgSize = 16 << 20
	const hostMarker, guestMarker = "SLUICE-HOST-MARKER", "SLUICE-GUEST-WROTE-THIS"
	const guestOffset = 1 << 20
	if err := errors.Join(os.WriteFile(img, []byte(hostMarker), 0o644), os.Truncate(img, imgSize)); err != nil {
		t.Fatal(err)
	}

	// The test makes the listening socket and hands it to the daemon as fd 3,
	// so it is listening before the daemon even runs: no wait for it.
	sock := filepath.Join(dir, "vhost.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	lf, err := l.File()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(qsd,
		"--blockdev", "driver=file,node-name=file0,filename="+qemuEscape(img),
		"--export", "type=vhost-user-blk,id=export0,node-name=file0,writable=on,addr.type=fd,addr.str=3")
	cmd.ExtraFiles = []*os.File{lf}
	cmd.Stdout, cmd.Stderr = ConsoleLog(t), ConsoleLog(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()

	res := runGuest(t, Options{
		VhostUser: []string{sock},
		AgentScript: fmt.Sprintf(`set -e
echo "VDA-SECTORS $(cat /sys/block/vda/size)"
echo "VDA-HEAD $(head -c %d /dev/vda)"
printf %s | dd of=/dev/vda bs=%d seek=1 conv=fsync 2>/dev/null
`, len(hostMarker), guestMarker, guestOffset),
	})
	if res.ExitCode != 0 {
		t.Errorf("agent exit %d, want 0", res.ExitCode)
	}
	wantOutput(t, res, fmt.Sprintf("VDA-SECTORS %d\n", imgSize/512), "VDA-HEAD "+hostMarker+"\n")
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, len(guestMarker))
	if _, err := f.ReadAt(b, guestOffset); err != nil || string(b) != guestMarker {
		t.Errorf("host file at %d: %q, %v; want %q written by the guest", guestOffset, b, err, guestMarker)
	}
}
