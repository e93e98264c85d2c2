package hosttest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/internal/guest"
)

// KernelTargetScript configures the kernel's nvmet-tcp in the guest through
// configfs: subsystem KernelTargetNQN with namespace 1 on a 64 MiB brd RAM
// disk (null_blk would discard what we write), port 1 on 0.0.0.0:$1, and
// then obeys lines on its stdin:
//
//	down   unlink the subsystem from the port: nvmet drops its connections
//	       and, with no subsystem left, closes the listener (a restart)
//	up     link it again
//	addns  add namespace 2 (another 64 MiB RAM disk): an NS-changed AEN
//	quit   end the agent
//
// and prints NVMET-<WORD>-DONE after each.
const KernelTargetScript = `set -e
port=$1
modprobe brd rd_nr=2 rd_size=65536
nvmet=/sys/kernel/config/nvmet
nqn=nqn.2024-01.io.sluice:kernel-target
mkdir $nvmet/subsystems/$nqn
echo 1 >$nvmet/subsystems/$nqn/attr_allow_any_host
mkdir $nvmet/subsystems/$nqn/namespaces/1
echo -n /dev/ram0 >$nvmet/subsystems/$nqn/namespaces/1/device_path
echo 1 >$nvmet/subsystems/$nqn/namespaces/1/enable
mkdir $nvmet/ports/1
echo tcp >$nvmet/ports/1/addr_trtype
echo ipv4 >$nvmet/ports/1/addr_adrfam
echo 0.0.0.0 >$nvmet/ports/1/addr_traddr
echo $port >$nvmet/ports/1/addr_trsvcid
ln -s $nvmet/subsystems/$nqn $nvmet/ports/1/subsystems/$nqn
echo NVMET-READY
while read -r cmd; do
	case $cmd in
	down) rm $nvmet/ports/1/subsystems/$nqn ;;
	up) ln -s $nvmet/subsystems/$nqn $nvmet/ports/1/subsystems/$nqn ;;
	addns)
		mkdir $nvmet/subsystems/$nqn/namespaces/2
		echo -n /dev/ram1 >$nvmet/subsystems/$nqn/namespaces/2/device_path
		echo 1 >$nvmet/subsystems/$nqn/namespaces/2/enable ;;
	quit) echo NVMET-QUIT-DONE; exit 0 ;;
	esac
	echo "NVMET-$(echo $cmd | tr a-z A-Z)-DONE"
done
`

// KernelTargetNQN is the subsystem KernelTargetScript exports.
const KernelTargetNQN = "nqn.2024-01.io.sluice:kernel-target"

// markerConsole logs the guest console to t and lets the test wait for a
// line containing a marker.
type markerConsole struct {
	log io.Writer
	mu  sync.Mutex // lock: Write runs on QEMU's console goroutine, wait on the test's
	buf bytes.Buffer
	ch  chan struct{}
}

func newMarkerConsole(t testing.TB) *markerConsole {
	return &markerConsole{log: guest.ConsoleLog(t), ch: make(chan struct{}, 1)}
}

func (m *markerConsole) Write(p []byte) (int, error) {
	m.mu.Lock()
	m.buf.Write(p)
	m.mu.Unlock()
	select {
	case m.ch <- struct{}{}:
	default:
	}
	return m.log.Write(p)
}

// wait waits for marker to appear after the part of the console already
// consumed, and consumes up to it.
func (m *markerConsole) wait(t testing.TB, marker string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		m.mu.Lock()
		i := strings.Index(m.buf.String(), marker)
		if i >= 0 {
			m.buf.Next(i + len(marker))
		}
		m.mu.Unlock()
		if i >= 0 {
			return
		}
		select {
		case <-m.ch:
		case <-deadline:
			t.Fatalf("guest console: no %q within 2 minutes", marker)
		}
	}
}

// KernelTarget is the guest running nvmet-tcp, reached at 127.0.0.1:port
// (forwarded to the same port in the guest).
type KernelTarget struct {
	g       *guest.Guest
	console *markerConsole
	port    int
}

// StartKernelTarget boots the guest with KernelTargetScript (skipped under
// -short, as every guest test) and stops it when t ends.
func StartKernelTarget(t *testing.T) *KernelTarget {
	t.Helper()
	env := guest.Require(t)
	port := guest.FreePort(t)
	kt := &KernelTarget{console: newMarkerConsole(t), port: port}
	g, err := env.Start(t.Context(), guest.Options{
		AgentScript: KernelTargetScript,
		Args:        []string{fmt.Sprint(port)},
		Modules:     []string{"nvmet-tcp"}, // brd: the script loads it with its size
		Forwards:    []guest.Forward{{HostPort: port, GuestPort: port}},
		Ready:       "NVMET-READY",
		Timeout:     10 * time.Minute,
		Console:     kt.console,
	})
	if err != nil {
		t.Fatal(err)
	}
	kt.g = g
	t.Cleanup(func() {
		g.Send("quit\n")
		select {
		case <-g.Done():
		case <-time.After(30 * time.Second):
			g.Stop()
		}
	})
	if err := g.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	return kt
}

// Do sends a command to the agent and waits for it to be done.
func (kt *KernelTarget) Do(t testing.TB, cmd string) {
	t.Helper()
	if err := kt.g.Send(cmd + "\n"); err != nil {
		t.Fatal(err)
	}
	kt.console.wait(t, "NVMET-"+strings.ToUpper(cmd)+"-DONE")
}

// Port is the TCP port of the target, the same on the host's 127.0.0.1
// (forwarded) and in the guest.
func (kt *KernelTarget) Port() int { return kt.port }
