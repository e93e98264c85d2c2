package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/sluice-storage/sluice/conf"
	drvnvmf "github.com/sluice-storage/sluice/drivers/nvmf"
	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/perf"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/passthru"
	"github.com/sluice-storage/sluice/services/replica"
)

// Issue #12's crash test: kill -9 the daemon while a verify workload writes
// to a three-way replica over uring files, exported over NVMe/TCP; restart
// it; the replica resyncs only the regions its write-intent bitmap marks;
// every block the workload saw acknowledged reads back; the members agree.
//
// The workload is perf's verify engine (RunBdev: its jobs, block format and
// --verify-state file) in this process, over our NVMe/TCP host attached
// with a reconnect policy. `sluice perf nvmf` attaches with none (one
// attempt, then every IO fails), so across a daemon restart its final flush
// fails and its state file keeps only the run's starting (dirty) save,
// whose generations are lower bounds: the writes acknowledged by the daemon
// that was killed would go unchecked. Riding the restart as a real host does
// (ctrlr_loss_timeout_sec), the run ends with a flush on the new daemon and a
// clean save of exactly what was acknowledged, before and after the kill.

const (
	crashBlockSize = 4096
	crashBlocks    = 16384 // 64 MiB members
	crashRegion    = 1 << 20
	crashRegions   = crashBlocks * crashBlockSize / crashRegion
	// crashDriven is what the workload drives: the first half of the
	// namespace. Regions past it are never written, so a resync that copied
	// all would show.
	crashDriven = crashBlocks / 2
	crashNQN    = "nqn.2016-06.io.sluice:replica-crash"
	// crashRun bounds the workload: the kill comes after its second
	// progress line, the restart and resync take about a second.
	crashRun = 8 * time.Second
)

// crashSetup writes the topology: members U0..U2 and metadata UM, uring
// files in a direct-I/O directory, the replica R0 over them, and the NVMe/TCP
// target exporting R0 on port.
func crashSetup(t *testing.T, port int) (topo, sock, dir string) {
	dir = directIODir(t)
	var b strings.Builder
	b.WriteString("reactors:\n  cores: [0]\nbdevs:\n")
	for _, n := range []string{"U0", "U1", "U2"} {
		fmt.Fprintf(&b, "  - {name: %s, driver: uring, block_size: %d, blocks: %d, path: %s}\n", n, crashBlockSize,
			crashBlocks, filepath.Join(dir, n+".img"))
	}
	fmt.Fprintf(&b, "  - {name: UM, driver: uring, block_size: %d, blocks: 16, path: %s}\n", crashBlockSize,
		filepath.Join(dir, "UM.img"))
	fmt.Fprintf(&b, "stages:\n  - {name: R0, service: replica, bases: [U0, U1, U2], metadata: UM, region_size: 1MiB}\n")
	fmt.Fprintf(&b, "targets:\n  nvmf:\n    subsystems:\n      - nqn: %s\n        allow_any_host: true\n"+
		"        listeners: [{transport: tcp, address: 127.0.0.1, port: %d}]\n        namespaces: [{bdev: R0}]\n", crashNQN, port)
	topo, sock = topology(t, dir, b.String())
	return topo, sock, dir
}

// hostBdevDriver is a driver for perf's topology that attaches the
// daemon's subsystem as Nvme0 with recovery (zero: one attempt, a lost
// connection fails IO) and puts a passthru named as the topology bdev over
// Nvme0n1; the topology's size is what is driven.
type hostBdevDriver struct {
	reg      **bdev.Registry
	m        **drvnvmf.Manager
	trid     host.TransportID
	recovery drvnvmf.Recovery
}

func (d hostBdevDriver) Create(spec bdev.Spec) (bdev.Backend, error) {
	m := drvnvmf.NewManager(*d.reg, nil)
	*d.m = m
	names, err := m.Attach(context.Background(), drvnvmf.AttachOptions{Name: "Nvme0", TransportID: d.trid,
		Recovery: d.recovery})
	if err != nil {
		return nil, err
	}
	if len(names) != 1 {
		return nil, fmt.Errorf("attached %v, want one namespace", names)
	}
	return passthru.New(*d.reg, passthru.Config{Name: spec.Name, Base: names[0]})
}

// hostPerf runs perf's verify workload on the first blocks of subsystem nqn
// at port through our host (on core 1 when there is one: the daemons poll
// core 0) until d passes or ctx is cancelled; the state file carries the
// generations; progress lines go to ticks.
func hostPerf(ctx context.Context, port int, nqn string, recovery drvnvmf.Recovery, blockSize uint32, blocks uint64,
	state string, d time.Duration, ticks chan<- string) (*perf.Report, error) {
	var reg *bdev.Registry
	var m *drvnvmf.Manager
	drv := hostBdevDriver{reg: &reg, m: &m, recovery: recovery, trid: host.TransportID{TrType: "tcp",
		TrAddr: "127.0.0.1", TrSvcID: strconv.Itoa(port), SubNQN: nqn}}
	cores := []int{0}
	if all, err := reactors.AllowedCores(); err == nil && len(all) > 1 {
		cores = all[1:2]
	}
	top := &conf.Topology{Bdevs: []conf.Bdev{{Name: "R0", Driver: "perf-host", BlockSize: conf.Size(blockSize), Blocks: blocks}}}
	rep, err := perf.RunBdev(ctx, perf.BdevOptions{Topology: top, Bdev: "R0", Workload: perf.WorkloadVerify,
		QueueDepth: 16, IOSize: int(blockSize), Duration: d, Cores: cores, VerifyState: state,
		Progress: crashTicks(ticks), Register: func(r *bdev.Registry) error {
			reg = r
			return r.RegisterDriver("perf-host", drv)
		}})
	if m != nil {
		m.Close()
	}
	return rep, err
}

// crashPerf runs the workload on R0's first half, riding a daemon restart
// (reconnecting for 20 s, IO waiting meanwhile).
func crashPerf(ctx context.Context, port int, state string, d time.Duration, ticks chan<- string) (*perf.Report, error) {
	return hostPerf(ctx, port, crashNQN, drvnvmf.Recovery{ReconnectDelay: 100 * time.Millisecond,
		CtrlrLossTimeout: 20 * time.Second}, crashBlockSize, crashDriven, state, d, ticks)
}

// crashTicks passes perf's progress lines on without blocking it.
type crashTicks chan<- string

func (c crashTicks) Write(b []byte) (int, error) {
	select {
	case c <- string(b):
	default:
	}
	return len(b), nil
}

// crashMeta is the newer valid copy of the replica's metadata on the UM
// file (services/replica/meta.go's format): its flags and dirty bitmap.
type crashMeta struct {
	seq    uint64
	active bool
	dirty  []int // regions marked
}

func readCrashMeta(t *testing.T, path string) crashMeta {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const copySize = crashBlockSize // the 640-byte header and an 8-byte bitmap fit one block
	var best *crashMeta
	for c := range 2 {
		cp := b[c*copySize : (c+1)*copySize]
		if string(cp[:8]) != "SLUICERM" {
			continue
		}
		var d xxhash.Digest
		d.Reset()
		d.Write(cp[:48])
		d.Write(make([]byte, 8))
		d.Write(cp[56:])
		if d.Sum64() != leUint64(cp[48:]) {
			continue // torn
		}
		m := crashMeta{seq: leUint64(cp[16:]), active: leUint64(cp[56:])&1 != 0}
		bitmap := cp[640 : 640+leUint64(cp[40:])]
		for r := range crashRegions {
			if bitmap[r/8]&(1<<(r%8)) != 0 {
				m.dirty = append(m.dirty, r)
			}
		}
		if best == nil || m.seq > best.seq {
			best = &m
		}
	}
	if best == nil {
		t.Fatalf("%s holds no valid metadata copy", path)
	}
	return *best
}

// crashStatus is R0's replica status from /debug/stages.
func crashStatus(t *testing.T, p *proc) replica.Status {
	t.Helper()
	body := httpGet(t, "http://"+p.debug+"/debug/stages")
	var views []struct {
		Name   string         `json:"name"`
		Status replica.Status `json:"status"`
	}
	if err := json.Unmarshal([]byte(body), &views); err != nil {
		t.Fatalf("/debug/stages: %v\n%s", err, body)
	}
	for _, v := range views {
		if v.Name == "R0" {
			return v.Status
		}
	}
	t.Fatalf("/debug/stages has no R0:\n%s", body)
	return replica.Status{}
}

// diffBlocks counts the blocks where the member files differ.
func diffBlocks(t *testing.T, dir string) (members [3][]byte, differ int) {
	t.Helper()
	for i := range members {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("U%d.img", i)))
		if err != nil {
			t.Fatal(err)
		}
		members[i] = b
	}
	for off := 0; off < crashBlocks*crashBlockSize; off += crashBlockSize {
		a := members[0][off : off+crashBlockSize]
		if !bytes.Equal(a, members[1][off:off+crashBlockSize]) || !bytes.Equal(a, members[2][off:off+crashBlockSize]) {
			differ++
		}
	}
	return members, differ
}

// TestReplicaCrashResync: kill -9 mid-write; the restart resyncs exactly
// the regions the metadata marked when the daemon died (some, never all:
// the workload reaches half the regions); the workload rides the restart,
// and every block it saw acknowledged, before and after the kill, reads
// back through the replica and is the same on every member file.
func TestReplicaCrashResync(t *testing.T) {
	if testing.Short() {
		t.Skip("replica crash test runs a workload across a kill -9 and a restart for about 12 s; skipped with -short")
	}
	port := freeTCPPort(t)
	topo, sock, dir := crashSetup(t, port)
	state := filepath.Join(dir, "state")
	p := start(t, topo, sock, true)
	if st := crashStatus(t, p); st.UncleanShutdown || st.InSync != 3 || st.Regions != crashRegions {
		t.Fatalf("a fresh replica: %+v", st)
	}

	ticks := make(chan string, 16)
	type result struct {
		rep *perf.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := crashPerf(context.Background(), port, state, crashRun, ticks)
		done <- result{rep, err}
	}()
	for range 2 {
		select {
		case <-ticks:
		case r := <-done:
			t.Fatalf("the workload ended before the kill: %v", r.err)
		case <-time.After(waitTimeout):
			t.Fatal("no progress from the workload")
		}
	}
	p.stop(t, syscall.SIGKILL)
	killed := time.Now()

	md := readCrashMeta(t, filepath.Join(dir, "UM.img"))
	if !md.active || len(md.dirty) == 0 || md.dirty[len(md.dirty)-1] >= crashDriven*crashBlockSize/crashRegion {
		t.Fatalf("metadata after kill -9: active %v, dirty regions %v; want active, some of the %d the workload reaches",
			md.active, md.dirty, crashDriven*crashBlockSize/crashRegion)
	}
	_, differ := diffBlocks(t, dir)
	t.Logf("kill -9 with writes in flight: metadata active, %d of %d regions marked dirty %v; the member files differ on %d blocks",
		len(md.dirty), crashRegions, md.dirty, differ)

	p = start(t, topo, sock, true)
	var st replica.Status
	for deadline := time.Now().Add(waitTimeout); ; time.Sleep(50 * time.Millisecond) {
		st = crashStatus(t, p)
		if rs := st.UncleanResync; rs != nil && rs.State == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resync did not finish within %v: %+v\n%s", waitTimeout, st.UncleanResync, p.log)
		}
	}
	rs := st.UncleanResync
	want := uint64(len(md.dirty))
	if !st.UncleanShutdown || rs.Error != "" || rs.Regions != want || rs.RegionsDone != want ||
		rs.BytesDone != want*crashRegion || rs.Source != "U0" || st.InSync != 3 {
		t.Fatalf("after the restart: unclean %v, resync %+v, %d in sync; want the %d regions the metadata marked copied from U0",
			st.UncleanShutdown, rs, st.InSync, want)
	}
	line := fmt.Sprintf("replica R0: unclean shutdown, resyncing %d of %d regions (%d MiB)", want, crashRegions, want)
	if !strings.Contains(p.log.String(), line) {
		t.Errorf("the daemon's log lacks %q:\n%s", line, p.log)
	}
	t.Logf("restart %.1f s after the kill: %q; %d bytes copied",
		time.Since(killed).Seconds(), line, rs.BytesDone)

	r := <-done
	if r.err != nil {
		t.Fatalf("the workload across the kill: %v", r.err)
	}
	s := r.rep.VerifyState
	if r.rep.Errors != 0 || !s.Saved || s.SavedBlocks == 0 || s.SavedPendingBlocks != 0 {
		t.Fatalf("the workload across the kill: %d errors, state %+v; want a clean save with no pending block", r.rep.Errors, s)
	}
	t.Logf("workload: %d IOs in %.1f s, %.0f IOPS (kill and restart included); %d blocks acknowledged and saved",
		r.rep.Total.IOs, r.rep.Total.Seconds, r.rep.Total.IOPS, s.SavedBlocks)

	rep, err := crashPerf(context.Background(), port, state, 300*time.Millisecond, make(chan string, 16))
	if err != nil {
		t.Fatal(err)
	}
	readBackPassed(t, "read-back through the replica", rep, true)

	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d:\n%s", code, p.log)
	}
	if md := readCrashMeta(t, filepath.Join(dir, "UM.img")); md.active || len(md.dirty) != 0 {
		t.Fatalf("metadata after a clean stop: active %v, dirty %v; want clean and none", md.active, md.dirty)
	}
	members, differ := diffBlocks(t, dir)
	vs := loadState(t, state)
	var checked uint64
	for _, e := range vs.Extents {
		for lba := e.LBA; lba < e.LBA+uint64(e.Blocks); lba++ {
			at := lba * crashBlockSize
			blk := members[0][at : at+crashBlockSize]
			for i := 1; i < 3; i++ {
				if !bytes.Equal(blk, members[i][at:at+crashBlockSize]) {
					t.Fatalf("LBA %d: U%d differs from U0", lba, i)
				}
			}
			if g := leUint64(blk[genOffset:]); g != uint64(e.Generation) {
				t.Fatalf("LBA %d: generation %d on the members, the state records %d", lba, g, e.Generation)
			}
			checked++
		}
	}
	if differ != 0 {
		t.Fatalf("after the resync and a clean stop the member files differ on %d blocks", differ)
	}
	t.Logf("members U0, U1, U2 agree on all %d blocks; the %d recorded blocks hold their recorded generation",
		crashBlocks, checked)
}
