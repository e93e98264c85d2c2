package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	drvnvmf "github.com/sluice-storage/sluice/drivers/nvmf"
	"github.com/sluice-storage/sluice/perf"
	"github.com/sluice-storage/sluice/services/raid"
	"github.com/sluice-storage/sluice/services/replica"
)

// Issue #12's replication across machines: a replica whose members are a
// local uring bdev and a namespace of another daemon, attached over
// NVMe/TCP (issue #4's driver: nvmf). Daemon A exports a uring file; daemon
// B mirrors its own uring file with A's namespace (Nvme0n1) and exports the
// replica R0. Killing A mid-write costs the writer on B nothing: B's host
// fails the member's IO after fast_io_fail_timeout_sec, the replica marks
// Nvme0n1 faulty and goes on with the local member, its write-intent bitmap
// tracking what the remote missed. A comes back on the same file and port,
// B's host reconnects (reconnect_delay_sec, within ctrlr_loss_timeout_sec),
// and bdev_raid_add_base_bdev of the same member resyncs only the regions
// it missed. Every block the writer saw acknowledged reads back through B,
// and the two members' files agree block for block.
//
// The workload is perf's verify engine with its --verify-state file, run in
// this process over our NVMe/TCP host attached to B, as the replica crash
// test does: `sluice perf nvmf` drives the whole namespace at random, so in
// the seconds A is away every region would be written and a resync of the
// missed regions could not be told from a full rebuild. Here the topology
// bdev the workload drives is the first half of B's namespace. The host
// attaches with no reconnect policy: B never goes away, and any loss of its
// connection would fail the writer's IO rather than hide behind a retry.

const (
	remoteBlockSize = 4096
	remoteBlocks    = 16384 // 64 MiB members
	remoteRegion    = 1 << 20
	remoteRegions   = remoteBlocks * remoteBlockSize / remoteRegion
	// remoteDriven blocks, the first half of R0, are what the workload
	// writes: the regions past it are never written, so a resync that
	// copied them would show.
	remoteDriven        = remoteBlocks / 2
	remoteDrivenRegions = remoteDriven * remoteBlockSize / remoteRegion
	remoteNQNA          = "nqn.2016-06.io.sluice:remote-a"
	remoteNQNB          = "nqn.2016-06.io.sluice:remote-b"
	// remoteRun bounds the workload; the test cancels it once the member is
	// back in sync and a second of writes has reached both members.
	remoteRun = 30 * time.Second
)

// remoteSetup writes daemon A's topology (uring file UA exported on portA)
// and daemon B's (uring member U0, metadata UM, Nvme0 attaching A, replica
// R0 over [U0, Nvme0n1] exported on portB), each in its own direct-I/O
// directory; it returns the topologies, sockets and member files.
func remoteSetup(t *testing.T, portA, portB int) (topoA, sockA, fileA, topoB, sockB, fileB, dirB string) {
	t.Helper()
	dirA := directIODir(t)
	fileA = filepath.Join(dirA, "UA.img")
	topoA, sockA = topology(t, dirA, fmt.Sprintf("reactors:\n  cores: [0]\nbdevs:\n"+
		"  - {name: UA, driver: uring, block_size: %d, blocks: %d, path: %s}\n", remoteBlockSize, remoteBlocks, fileA)+
		nvmfTargetYAML(remoteNQNA, portA, "UA"))

	dirB = directIODir(t)
	fileB = filepath.Join(dirB, "U0.img")
	var b strings.Builder
	fmt.Fprintf(&b, "reactors:\n  cores: [0]\nbdevs:\n")
	fmt.Fprintf(&b, "  - {name: U0, driver: uring, block_size: %d, blocks: %d, path: %s}\n", remoteBlockSize, remoteBlocks, fileB)
	fmt.Fprintf(&b, "  - {name: UM, driver: uring, block_size: %d, blocks: 16, path: %s}\n", remoteBlockSize,
		filepath.Join(dirB, "UM.img"))
	// fast_io_fail_timeout_sec 1: the member's IO fails a second after A
	// is lost, and the replica goes on without it; ctrlr_loss_timeout_sec
	// 30: the controller is still reconnecting when A is back.
	fmt.Fprintf(&b, "  - name: Nvme0\n    driver: nvmf\n    trtype: tcp\n    adrfam: ipv4\n    traddr: 127.0.0.1\n"+
		"    trsvcid: %d\n    subnqn: %s\n    reconnect_delay_sec: 1\n    ctrlr_loss_timeout_sec: 30\n"+
		"    fast_io_fail_timeout_sec: 1\n", portA, remoteNQNA)
	fmt.Fprintf(&b, "stages:\n  - {name: R0, service: replica, bases: [U0, Nvme0n1], metadata: UM, region_size: 1MiB}\n")
	b.WriteString(nvmfTargetYAML(remoteNQNB, portB, "R0"))
	topoB, sockB = topology(t, dirB, b.String())
	return topoA, sockA, fileA, topoB, sockB, fileB, dirB
}

// remotePerf runs the workload on the first half of B's R0 with no
// reconnect policy: B never goes away, and any loss of its connection must
// fail the writer's IO rather than hide behind a retry.
func remotePerf(ctx context.Context, portB int, state string, d time.Duration, ticks chan<- string) (*perf.Report, error) {
	return hostPerf(ctx, portB, remoteNQNB, drvnvmf.Recovery{}, remoteBlockSize, remoteDriven, state, d, ticks)
}

// remoteStatus is R0's status from sluice_get_stages.
func remoteStatus(t *testing.T, sock string) replica.Status {
	t.Helper()
	var views []struct {
		Name   string         `json:"name"`
		Status replica.Status `json:"status"`
	}
	out := rpc(t, sock, true, "sluice_get_stages", "--name", "R0")
	if err := json.Unmarshal([]byte(out), &views); err != nil || len(views) != 1 {
		t.Fatalf("sluice_get_stages R0: %v\n%s", err, out)
	}
	return views[0].Status
}

// memberState is the state of member name in st, "" if it has none.
func memberState(st replica.Status, name string) string {
	for _, m := range st.Members {
		if m.Name == name {
			return m.State
		}
	}
	return ""
}

// raidView is R0 as bdev_raid_get_bdevs shows it.
func raidView(t *testing.T, sock string) raid.Status {
	t.Helper()
	var list []struct {
		Name string `json:"name"`
		raid.Status
	}
	out := rpc(t, sock, true, "bdev_raid_get_bdevs", "--category", "all")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Name != "R0" {
		t.Fatalf("bdev_raid_get_bdevs: %v\n%s", err, out)
	}
	return list[0].Status
}

// writeOps is bdev name's write count from bdev_get_iostat.
func writeOps(t *testing.T, sock, name string) uint64 {
	t.Helper()
	var stat struct {
		Bdevs []struct {
			NumWriteOps uint64 `json:"num_write_ops"`
		} `json:"bdevs"`
	}
	out := rpc(t, sock, true, "bdev_get_iostat", "--name", name)
	if err := json.Unmarshal([]byte(out), &stat); err != nil || len(stat.Bdevs) != 1 {
		t.Fatalf("bdev_get_iostat %s: %v\n%s", name, err, out)
	}
	return stat.Bdevs[0].NumWriteOps
}

// ctrlrState is the state of controller Nvme0 from bdev_nvme_get_controllers:
// enabled, resetting or failed.
func ctrlrState(t *testing.T, sock string) string {
	t.Helper()
	var list []struct {
		Name   string `json:"name"`
		Ctrlrs []struct {
			State string `json:"state"`
		} `json:"ctrlrs"`
	}
	out := rpc(t, sock, true, "bdev_nvme_get_controllers")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || len(list[0].Ctrlrs) != 1 {
		t.Fatalf("bdev_nvme_get_controllers: %v\n%s", err, out)
	}
	return list[0].Ctrlrs[0].State
}

// waitFor polls cond every 50 ms until it holds; it fails the test after
// waitTimeout, saying what and showing the daemon's log.
func waitFor(t *testing.T, what string, p *proc, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitTimeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v:\n%s", what, waitTimeout, p.log)
		}
	}
}

// logLine reports whether one line of l holds every one of parts.
func logLine(l *syncLog, parts ...string) bool {
	for _, line := range strings.Split(l.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// nextTick drops the progress lines already printed and waits for the
// workload's next one, a second of what happens from now on, and returns it.
func nextTick(t *testing.T, ticks <-chan string, done <-chan struct{}) string {
	t.Helper()
	for drained := false; !drained; {
		select {
		case <-ticks:
		default:
			drained = true
		}
	}
	select {
	case s := <-ticks:
		return strings.TrimSpace(s)
	case <-done:
		t.Fatal("the workload ended early")
	case <-time.After(waitTimeout):
		t.Fatal("no progress from the workload")
	}
	return ""
}

// TestReplicaRemoteMember: a replica over a local file and a remote
// NVMe/TCP namespace rides the remote daemon's kill -9 and restart with no
// error seen by the writer; the returning member is added back and resyncs
// only the regions it missed; every acknowledged block reads back; the
// members agree.
func TestReplicaRemoteMember(t *testing.T) {
	if testing.Short() {
		t.Skip("remote replica test kills and restarts a daemon under a workload for about 10 s; skipped with -short")
	}
	portA, portB := freeTCPPort(t), freeTCPPort(t)
	topoA, sockA, fileA, topoB, sockB, fileB, dirB := remoteSetup(t, portA, portB)
	state := filepath.Join(dirB, "state")
	a := start(t, topoA, sockA, true)
	b := start(t, topoB, sockB, true)
	if st := remoteStatus(t, sockB); st.InSync != 2 || st.Regions != remoteRegions || memberState(st, "U0") != "in-sync" ||
		memberState(st, "Nvme0n1") != "in-sync" {
		t.Fatalf("daemon B's fresh replica: %+v; want U0 and Nvme0n1 in sync, %d regions", st, remoteRegions)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ticks := make(chan string, 64)
	type result struct {
		rep *perf.Report
		err error
	}
	done := make(chan result, 1)
	ended := make(chan struct{})
	go func() {
		rep, err := remotePerf(ctx, portB, state, remoteRun, ticks)
		done <- result{rep, err}
		close(ended)
	}()
	t.Cleanup(func() { cancel(); <-ended }) // before the daemons go and the state's directory is removed
	t.Logf("both members in sync: %s", nextTick(t, ticks, ended))

	// Daemon A dies with writes in flight. B's host fails the member's IO
	// after fast_io_fail_timeout_sec; the replica marks it faulty.
	a.stop(t, syscall.SIGKILL)
	killed := time.Now()
	var st replica.Status
	waitFor(t, "Nvme0n1 faulty on daemon B after daemon A's kill -9", b, func() bool {
		st = remoteStatus(t, sockB)
		return memberState(st, "Nvme0n1") == "faulty"
	})
	faultyAfter := time.Since(killed)
	if st.InSync != 1 || memberState(st, "U0") != "in-sync" || st.DirtyRegions == 0 {
		t.Fatalf("after daemon A's kill -9: %+v; want U0 in sync, Nvme0n1 faulty, some regions dirty", st)
	}
	if rv := raidView(t, sockB); rv.State != "online" || rv.NumOperational != 1 || len(rv.BaseBdevsList) != 2 ||
		rv.BaseBdevsList[1].Name != "Nvme0n1" || rv.BaseBdevsList[1].IsConfigured {
		t.Fatalf("bdev_raid_get_bdevs after the kill: %+v; want online with one operational member, Nvme0n1 not configured", rv)
	}
	if !logLine(b.log, `"msg":"replica member faulty"`, `"member":"Nvme0n1"`) {
		t.Errorf("daemon B's log does not say Nvme0n1 went faulty:\n%s", b.log)
	}
	// The writer goes on with the local member alone.
	w0 := writeOps(t, sockB, "U0")
	tick := nextTick(t, ticks, ended)
	if st := remoteStatus(t, sockB); memberState(st, "Nvme0n1") != "faulty" {
		t.Fatalf("Nvme0n1 no longer faulty with daemon A down: %+v", st)
	}
	w1 := writeOps(t, sockB, "U0")
	if w1 == w0 {
		t.Fatalf("no write reached U0 in a second with Nvme0n1 faulty (%d writes): the replica stalled", w0)
	}
	t.Logf("kill -9 of daemon A: Nvme0n1 faulty %.1f s later (fast_io_fail_timeout_sec 1), %d regions dirty; "+
		"then %d writes on U0 alone: %s", faultyAfter.Seconds(), st.DirtyRegions, w1-w0, tick)

	// Daemon A comes back on the same file and port; B's host reconnects.
	a = start(t, topoA, sockA, true)
	restarted := time.Now()
	waitFor(t, "controller Nvme0 enabled again on daemon B", b, func() bool { return ctrlrState(t, sockB) == "enabled" })
	t.Logf("daemon A restarted %.1f s after the kill; B's controller Nvme0 reconnected %.1f s after the restart",
		restarted.Sub(killed).Seconds(), time.Since(restarted).Seconds())
	if st := remoteStatus(t, sockB); memberState(st, "Nvme0n1") != "faulty" {
		t.Fatalf("after the reconnect, before bdev_raid_add_base_bdev: %+v; want Nvme0n1 still faulty (the operator adds it back)", st)
	}

	// The member is added back: a resync of the regions it missed, every
	// one marked while it was away and none the workload never reached.
	dirty := remoteStatus(t, sockB).DirtyRegions
	rpc(t, sockB, true, "bdev_raid_add_base_bdev", "--raid_bdev", "R0", "--base_bdev", "Nvme0n1")
	added := time.Now()
	waitFor(t, "Nvme0n1 in sync again", b, func() bool {
		st = remoteStatus(t, sockB)
		return st.InSync == 2 && st.Rebuild != nil && st.Rebuild.State == "done"
	})
	resyncTime := time.Since(added)
	rb := st.Rebuild
	if rb.Kind != "resync" || rb.Full || rb.Target != "Nvme0n1" || rb.Error != "" || rb.Regions == 0 ||
		rb.RegionsDone != rb.Regions || rb.Regions < dirty || rb.Regions > remoteDrivenRegions || rb.BytesDone != rb.Regions*remoteRegion {
		t.Fatalf("the rebuild after bdev_raid_add_base_bdev: %+v; want a resync of Nvme0n1 copying the %d regions dirty before it "+
			"(and any marked since), at most the %d the workload reaches, of %d", rb, dirty, remoteDrivenRegions, remoteRegions)
	}
	if rv := raidView(t, sockB); rv.NumOperational != 2 || !rv.BaseBdevsList[1].IsConfigured {
		t.Fatalf("bdev_raid_get_bdevs after the resync: %+v; want both members operational", rv)
	}
	if want := fmt.Sprintf(`"regions":%d`, rb.Regions); !logLine(b.log, `"msg":"replica rebuild started"`,
		`"member":"Nvme0n1"`, `"full":false`, want) {
		t.Errorf("daemon B's log does not say the rebuild of Nvme0n1 started with %s:\n%s", want, b.log)
	}
	t.Logf("bdev_raid_add_base_bdev R0 Nvme0n1: resynced %d of %d regions (%d MiB) in %.2f s",
		rb.RegionsDone, remoteRegions, rb.BytesDone>>20, resyncTime.Seconds())

	// A second of writes to both members, then the workload stops.
	t.Logf("both members in sync again: %s", nextTick(t, ticks, ended))
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatalf("the workload across daemon A's kill and restart: %v", r.err)
	}
	s := r.rep.VerifyState
	if r.rep.Errors != 0 || r.rep.Total.Errors != 0 || r.rep.Total.IOs == 0 || !s.Saved || s.SavedBlocks == 0 ||
		s.SavedPendingBlocks != 0 {
		t.Fatalf("the workload: %d errors (%d in total), %d IOs, state %+v; want no error and a clean save with no pending block",
			r.rep.Errors, r.rep.Total.Errors, r.rep.Total.IOs, s)
	}
	t.Logf("workload: %d IOs in %.1f s, %.0f IOPS, 0 errors (kill, restart and resync included); %d blocks acknowledged and saved",
		r.rep.Total.IOs, r.rep.Total.Seconds, r.rep.Total.IOPS, s.SavedBlocks)

	rep, err := remotePerf(context.Background(), portB, state, 300*time.Millisecond, make(chan string, 16))
	if err != nil {
		t.Fatal(err)
	}
	readBackPassed(t, "read-back through daemon B", rep, true)

	if code := b.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon B: SIGTERM: exit %d:\n%s", code, b.log)
	}
	if code := a.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon A: SIGTERM: exit %d:\n%s", code, a.log)
	}
	remote, err := os.ReadFile(fileA)
	if err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(fileB)
	if err != nil {
		t.Fatal(err)
	}
	const size = remoteBlocks * remoteBlockSize
	if len(remote) < size || len(local) < size {
		t.Fatalf("member files of %d and %d bytes, want %d", len(remote), len(local), size)
	}
	differ := 0
	for off := 0; off < size; off += remoteBlockSize {
		if !bytes.Equal(remote[off:off+remoteBlockSize], local[off:off+remoteBlockSize]) {
			if differ == 0 {
				t.Errorf("LBA %d: daemon A's UA and daemon B's U0 differ", off/remoteBlockSize)
			}
			differ++
		}
	}
	if differ != 0 {
		t.Fatalf("the member files differ on %d of %d blocks", differ, remoteBlocks)
	}
	var checked uint64
	for _, e := range loadState(t, state).Extents {
		for lba := e.LBA; lba < e.LBA+uint64(e.Blocks); lba++ {
			if g := leUint64(remote[lba*remoteBlockSize+genOffset:]); g != uint64(e.Generation) {
				t.Fatalf("LBA %d: generation %d on the members, the state records %d", lba, g, e.Generation)
			}
			checked++
		}
	}
	t.Logf("members UA (daemon A) and U0 (daemon B) agree on all %d blocks; the %d recorded blocks hold their recorded generation",
		remoteBlocks, checked)
}
