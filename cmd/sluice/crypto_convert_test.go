package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/perf"
	"github.com/sluice-storage/sluice/services/crypto"
	"github.com/sluice-storage/sluice/services/stage"
)

// Online encryption of a live volume end to end (issue #12): a uring bdev
// on a file full of perf's verify blocks, exported over NVMe/TCP with a
// verify writer connected; a crypto stage goes under it by RPC
// (sluice_stage_insert, journal and record on a metadata bdev so the
// namespace keeps its size); kill -9 mid-conversion; a restart from
// save_config's topology resumes at the watermark; every block reads back
// right through the stack, and neither file holds a verify header in the
// clear.

const (
	convertBlockSize = 4096
	// convertBlocks: 32 MiB, 32 regions of crypto.ConvertRegionSize.
	convertBlocks = 8192
	// convertMetaBlocks: the journal (one region) and the two record
	// blocks, with room to spare.
	convertMetaBlocks = 512
	// convertRateMiB throttles the conversion: 32 MiB at 4 MiB/s is 8 s,
	// long enough to kill the daemon in the middle.
	convertRateMiB = 4
	convertNQN     = "nqn.2016-06.io.sluice:vol0"
)

// verifyMagic is how perf's verify block format starts (perf/verify.go:
// "SLUICEVB", little endian at offset 0).
var verifyMagic = []byte("SLUICEVB")

// fillVerified writes the disk file as perf's verify writes would have
// left it, every block at generation 1, and a clean state file saying so
// for the bdev the NVMe/TCP host sees (Nvme0n1): the first --verify-state
// run reads every block back before it writes.
func fillVerified(t *testing.T, disk, state string) {
	t.Helper()
	buf := make([]byte, convertBlocks*convertBlockSize)
	for lba := range uint64(convertBlocks) {
		perf.StampBlock(buf[lba*convertBlockSize:(lba+1)*convertBlockSize], lba, 1)
	}
	if err := os.WriteFile(disk, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	st := &perf.VerifyState{Bdev: "Nvme0n1", BlockSize: convertBlockSize, Blocks: convertBlocks, Clean: true,
		Extents: []perf.VerifyExtent{{LBA: 0, Blocks: convertBlocks, Generation: 1}}}
	if err := st.Save(state); err != nil {
		t.Fatal(err)
	}
}

// plainHeaders counts the verify headers in the clear anywhere in path.
func plainHeaders(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, verifyMagic)
}

// startNVMfPerf runs `sluice perf nvmf -w verify --verify-state` against the
// target for seconds, on core 1 (the daemon's reactor is on core 0).
func startNVMfPerf(t *testing.T, port int, state, seconds string) *perfRun {
	t.Helper()
	trid := fmt.Sprintf("trtype:tcp traddr:127.0.0.1 trsvcid:%d subnqn:%s", port, convertNQN)
	return startPerfCmd(t, "nvmf", "-r", trid, "-w", "verify", "-q", "8", "-o", "4096", "-t", seconds,
		"-m", "1", "--verify-state", state, "--json")
}

// nvmfReport is the writer's --json report; it fails the test unless perf
// exited 0 with no failed IO and read back every recorded block of a clean
// save without a mismatch.
func (p *perfRun) nvmfReport(t *testing.T, what string) *perf.NVMfReport {
	t.Helper()
	p.wait(t)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("%s: perf exit %d (%v):\n%s%s", what, code, p.cmd.ProcessState, p.stdout.String(), p.stderr.String())
	}
	var rep perf.NVMfReport
	if err := json.Unmarshal(p.stdout.Bytes(), &rep); err != nil || rep.VerifyState == nil {
		t.Fatalf("%s: stdout is not a report with verify_state: %v\n%s", what, err, p.stdout.String())
	}
	s := rep.VerifyState
	if rep.Errors != 0 || rep.Total.IOs == 0 || !s.Loaded || !s.LoadedClean || s.CheckedBlocks != convertBlocks ||
		s.RecordedBlocks != convertBlocks || s.Mismatches != 0 || !s.Saved {
		t.Fatalf("%s: %d IOs, %d errors, read-back %+v; want IO without error, every one of %d blocks read back clean, saved",
			what, rep.Total.IOs, rep.Errors, s, convertBlocks)
	}
	t.Logf("%s: read back %d blocks in %.2f s (0 mismatches, %d newer); then %d verify IOs, 0 errors, %.0f IOPS",
		what, s.CheckedBlocks, s.ReadBackSeconds, s.NewerBlocks, rep.Total.IOs, rep.Total.IOPS)
	return &rep
}

// conversion is Vol0's conversion status from the debug endpoint.
func conversion(t *testing.T, p *proc) crypto.ConvertStatus {
	t.Helper()
	var views []struct {
		stage.View
		Status crypto.Status `json:"status"`
	}
	body := httpGet(t, "http://"+p.debug+"/debug/stages")
	if err := json.Unmarshal([]byte(body), &views); err != nil {
		t.Fatalf("/debug/stages: %v\n%s", err, body)
	}
	for _, v := range views {
		if v.Name == "Vol0" && v.Service == crypto.Service && v.Status.Conversion != nil {
			return *v.Status.Conversion
		}
	}
	t.Fatalf("/debug/stages has no converting crypto stage Vol0:\n%s", body)
	return crypto.ConvertStatus{}
}

// waitConversion polls the debug endpoint until done says so.
func waitConversion(t *testing.T, p *proc, what string, done func(crypto.ConvertStatus) bool) crypto.ConvertStatus {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		st := conversion(t, p)
		if st.Error != "" {
			t.Fatalf("conversion failed: %+v\n%s", st, p.log)
		}
		if done(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("conversion not %s within %v: %+v", what, waitTimeout, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCryptoConvertLive: the scenario, over NVMe/TCP.
func TestCryptoConvertLive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon and two perf writers for about 20 s")
	}
	dir := directIODir(t)
	disk, meta := filepath.Join(dir, "vol0.img"), filepath.Join(dir, "meta0.img")
	state := filepath.Join(dir, "state")
	fillVerified(t, disk, state)
	if err := os.WriteFile(meta, make([]byte, convertMetaBlocks*convertBlockSize), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := plainHeaders(t, disk); n != convertBlocks { // the scan below finds what is there
		t.Fatalf("the filled disk shows %d verify headers, want %d", n, convertBlocks)
	}
	key := keyFile(t, dir)
	port := freeTCPPort(t)
	topo, sock := topology(t, dir, fmt.Sprintf("reactors:\n  cores: [0]\nbdevs:\n"+
		"  - {name: Vol0, driver: uring, block_size: %d, blocks: %d, path: %s}\n"+
		"  - {name: Meta0, driver: uring, block_size: %d, blocks: %d, path: %s}\n"+
		"targets:\n  nvmf:\n    subsystems:\n      - nqn: %s\n        allow_any_host: true\n"+
		"        listeners: [{transport: tcp, address: 127.0.0.1, port: %d}]\n        namespaces: [{bdev: Vol0}]\n",
		convertBlockSize, convertBlocks, disk, convertBlockSize, convertMetaBlocks, meta, convertNQN, port))
	d := start(t, topo, sock, true)

	// A writer through the insertion: read back, then write and verify.
	w := startNVMfPerf(t, port, state, "4")
	select {
	case <-w.progress:
	case <-w.exited:
		t.Fatalf("perf exited before writing:\n%s", w.stderr.String())
	case <-time.After(waitTimeout):
		t.Fatalf("perf wrote nothing within %v:\n%s", waitTimeout, w.stderr.String())
	}
	out := rpc(t, sock, true, "sluice_stage_insert", fmt.Sprintf(
		`{"name":"Vol0","service":"crypto","metadata":"Meta0","key_file":%q,"convert_rate_mbytes_per_sec":%d}`, key, convertRateMiB))
	if !strings.Contains(out, `"Vol0.base"`) {
		t.Fatalf("sluice_stage_insert = %s", out)
	}
	insertedAt := time.Now()
	yml, err := exec.Command(binary, "rpc", "-s", sock, "--raw", "save_config", "--format", "yaml").Output()
	if err != nil {
		t.Fatalf("save_config: %v", err)
	}
	saved := filepath.Join(dir, "saved.yaml")
	if err := os.WriteFile(saved, yml, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: Vol0.base", "path: " + disk, "metadata: Meta0", "convert: true", "key_file: " + key} {
		if !strings.Contains(string(yml), want) {
			t.Fatalf("saved topology lacks %q:\n%s", want, yml)
		}
	}
	w.nvmfReport(t, "writer through the insertion")

	// Kill -9 in the middle of the conversion.
	before := waitConversion(t, d, "past 20%", func(st crypto.ConvertStatus) bool { return st.Percent >= 20 })
	if before.Percent > 80 {
		t.Fatalf("the conversion was at %.0f%% before it could be killed; want 20..80%%", before.Percent)
	}
	killedAt := conversion(t, d)
	d.stop(t, syscall.SIGKILL)
	t.Logf("killed at region %d of %d (%.0f%%), %.1f s after the insertion, converting at %.2f MiB/s (limit %d MiB/s)",
		killedAt.RegionsDone, killedAt.Regions, killedAt.Percent, time.Since(insertedAt).Seconds(),
		float64(killedAt.Rate)/(1<<20), convertRateMiB)
	if n := plainHeaders(t, disk); n == 0 || n == convertBlocks {
		t.Fatalf("mid-conversion the disk shows %d verify headers in the clear, want some (the rest) but not all", n)
	}

	// Restart from the saved topology: the conversion resumes from its
	// watermark, with a writer on it again.
	d = start(t, saved, sock, true)
	resumed := conversion(t, d)
	if resumed.ResumedFrom < killedAt.RegionsDone || resumed.ResumedFrom == 0 || resumed.ResumedFrom >= resumed.Regions {
		t.Fatalf("after the restart %+v; want it resumed at or past region %d, not from zero", resumed, killedAt.RegionsDone)
	}
	t.Logf("resumed at region %d (killed at %d; journal replayed: %v)", resumed.ResumedFrom, killedAt.RegionsDone, resumed.Replayed)
	w = startNVMfPerf(t, port, state, "2")
	w.nvmfReport(t, "writer after the restart")
	done := waitConversion(t, d, "done", func(st crypto.ConvertStatus) bool { return st.State == "done" })
	if done.Percent != 100 {
		t.Fatalf("done at %+v", done)
	}
	t.Logf("done: %d regions, %d of them after the restart at %.2f MiB/s", done.Regions, done.Regions-done.ResumedFrom,
		float64(done.Rate)/(1<<20))

	// Everything reads back through the stack; nothing is left in the clear.
	w = startNVMfPerf(t, port, state, "0.5")
	w.nvmfReport(t, "after the conversion")
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d:\n%s", code, d.log)
	}
	for _, f := range []string{disk, meta} {
		if n := plainHeaders(t, f); n != 0 {
			t.Errorf("%s holds %d verify headers in the clear after the conversion, want none", f, n)
		}
	}
	if !strings.Contains(d.log.String(), `"msg":"conversion resumes"`) || !strings.Contains(d.log.String(), `"msg":"conversion done"`) {
		t.Errorf("the restarted daemon's log lacks the resume or the end:\n%s", d.log)
	}
}

// TestCryptoInsertRPC: sluice_stage_insert's crypto rules, each refusal
// naming its field (-32602 unless a device is missing or busy); an
// insertion that passes keeps the bdev's size, loads the key file once,
// stays in (remove refused) and is saved with what brings it back.
func TestCryptoInsertRPC(t *testing.T) {
	dir := t.TempDir()
	key := keyFile(t, dir)
	top, err := conf.Parse("topo.yaml", []byte(`bdevs:
  - {name: M0, driver: malloc, size: 8MiB, block_size: 4096}
  - {name: N0, driver: "null", size: 8MiB, block_size: 4096}
  - {name: N1, driver: "null", size: 8MiB, block_size: 4096}
  - {name: MD, driver: "null", size: 2MiB, block_size: 4096}
  - {name: MD1, driver: "null", size: 2MiB, block_size: 4096}
  - {name: MDsmall, driver: "null", size: 1MiB, block_size: 4096}
`))
	if err != nil {
		t.Fatal(err)
	}
	d, p := stagesDaemon(t, top)
	insert := method(t, d, "sluice_stage_insert")
	crypto := func(name, extra string) string {
		return fmt.Sprintf(`{"name":%q,"service":"crypto","key_file":%q%s}`, name, key, extra)
	}
	for _, tc := range []struct{ name, params, want string }{
		{"no metadata", crypto("N0", ""), "metadata: required"},
		{"convert false", crypto("N0", `,"metadata":"MD","convert":false`), "convert false"},
		{"metadata is the bdev", crypto("N0", `,"metadata":"N0"`), `metadata "N0": the bdev the stage goes under`},
		{"no such metadata", crypto("N0", `,"metadata":"MDX"`), "No such device: metadata MDX"},
		{"metadata too small", crypto("N0", `,"metadata":"MDsmall"`), `metadata bdev "MDsmall" of 256 blocks, want at least 258`},
		{"native compare", crypto("M0", `,"metadata":"MD"`), "M0 does compare itself"},
		{"relative key file", `{"name":"N0","service":"crypto","metadata":"MD","key_file":"k0.key"}`, `key_file "k0.key", want an absolute path`},
		{"no key", `{"name":"N0","service":"crypto","metadata":"MD","key_name":"nokey"}`, "nokey"},
		{"rate too high", crypto("N0", `,"metadata":"MD","convert_rate_mbytes_per_sec":99999999999`), "convert_rate_mbytes_per_sec 99999999999, want at most"},
		{"crypto field for qos", `{"name":"N0","service":"qos","metadata":"MD"}`, "metadata: given for service qos, want it for crypto only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := insert(context.Background(), json.RawMessage(tc.params))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: %v, want an error saying %s", tc.params, err, tc.want)
			}
			if _, ok := p.list.Get("N0"); ok {
				t.Fatal("a refused insertion left a stage")
			}
			if _, ok := d.bdevs.Lookup("N0.base"); ok {
				t.Fatal("a refused insertion left N0.base")
			}
		})
	}
	if ks := p.keys.List(); len(ks) != 0 { // the failed insertions loaded and dropped it
		t.Fatalf("keys after refused insertions: %+v", ks)
	}

	desc, err := d.bdevs.Open("N0", true) // a namespace's
	if err != nil {
		t.Fatal(err)
	}
	defer desc.Close()
	got := call(t, insert, crypto("N0", `,"metadata":"MD","convert_rate_mbytes_per_sec":1`))
	if got.(map[string]string)["base"] != "N0.base" || desc.Bdev().Blocks() != 2048 {
		t.Fatalf("insert = %v, N0 of %d blocks; want base N0.base, 2048 blocks", got, desc.Bdev().Blocks())
	}
	// The same key file again, for another volume: loaded once, used twice.
	call(t, insert, fmt.Sprintf(`{"name":"N1","service":"crypto","key_name":"N0","key_file":%q,"metadata":"MD1"}`, key))
	if ks := p.keys.List(); len(ks) != 1 || ks[0].Users != 2 {
		t.Fatalf("keys %+v, want N0's used by both stages", ks)
	}
	if e := callErr(t, method(t, d, "sluice_stage_remove"), `{"name":"N0"}`); !strings.Contains(e, "crypto") {
		t.Fatalf("sluice_stage_remove of a crypto stage: %s", e)
	}
	if e := callErr(t, method(t, d, "bdev_crypto_delete"), `{"name":"N0"}`); !strings.Contains(e, "it stays") {
		t.Fatalf("bdev_crypto_delete of an inserted crypto stage: %s", e)
	}
	if e := callErr(t, insert, crypto("N0", `,"metadata":"MD"`)); !strings.Contains(e, "already has a stage") {
		t.Fatalf("a second insertion: %s", e)
	}
	saved := &conf.Topology{}
	p.saveTopology(saved)
	i := slices.IndexFunc(saved.Stages, func(s conf.Stage) bool { return s.Name == "N0" })
	if i < 0 {
		t.Fatalf("saved stages %+v lack N0", saved.Stages)
	}
	if s := saved.Stages[i]; s.Service != conf.ServiceCrypto || !slices.Equal(s.Bases, []string{"N0.base"}) ||
		s.Metadata != "MD" || !s.Convert || s.ConvertRate != 1<<20 || s.KeyName != "N0" || s.KeyFile != key ||
		s.UUID != desc.Bdev().UUID() {
		t.Fatalf("saved N0 %+v", s)
	}
}
