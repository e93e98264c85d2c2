package perf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/services/bdev"
)

func testState() *VerifyState {
	return &VerifyState{Bdev: "Uring0", BlockSize: 4096, Blocks: 1000, Clean: true, Extents: []VerifyExtent{
		{LBA: 0, Blocks: 4, Generation: 1},
		{LBA: 4, Blocks: 1, Generation: 7, Pending: 8},
		{LBA: 100, Blocks: 900, Generation: verifyGenMax},
	}}
}

func TestVerifyStateRoundTrip(t *testing.T) {
	for _, clean := range []bool{true, false} {
		s := testState()
		s.Clean = clean
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if want := StateHeaderSize + 3*StateExtentSize + StateTrailerSize; len(b) != want {
			t.Fatalf("%d bytes, want %d", len(b), want)
		}
		got, err := ParseVerifyState(b)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("ParseVerifyState(Marshal(%+v)) = %+v, %v", s, got, err)
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "state")
		for range 2 { // the second Save replaces the first
			if err := s.Save(path); err != nil {
				t.Fatal(err)
			}
		}
		loaded, err := LoadVerifyState(path)
		if err != nil || !reflect.DeepEqual(loaded, s) {
			t.Fatalf("LoadVerifyState after Save = %+v, %v", loaded, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("Save left %d files in its directory, want only the state", len(entries))
		}
	}
	empty := &VerifyState{Bdev: "M", BlockSize: 512, Blocks: 1}
	if b, err := empty.Marshal(); err != nil || len(b) != StateHeaderSize+StateTrailerSize {
		t.Fatalf("an empty state: %d bytes, %v", len(b), err)
	}
	if _, err := LoadVerifyState(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want os.ErrNotExist", err)
	}
}

// TestVerifyStateCorrupt damages a good file one way at a time; each must
// be refused with ErrStateCorrupt and a message naming what is wrong.
// Mutations marked reseal fix the checksum after the change, so the field
// checks behind it are reached.
func TestVerifyStateCorrupt(t *testing.T) {
	good, err := testState().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ext := func(i, off int) int { return StateHeaderSize + i*StateExtentSize + off }
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		reseal bool
		want   string
	}{
		{"empty", func(b []byte) []byte { return nil }, false, "0 bytes, a state file has at least 112"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, false, "truncated or extended"},
		{"an extent too many", func(b []byte) []byte { return append(b, make([]byte, StateExtentSize)...) }, false, "truncated or extended"},
		{"payload bit flip", func(b []byte) []byte { b[ext(2, offExtentLBA)] ^= 1; return b }, false, "checksum"},
		{"checksum bit flip", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }, false, "checksum"},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, false, "not a verify state file"},
		{"version", func(b []byte) []byte { le.PutUint32(b[offStateVersion:], 2); return b }, false, "version 2, want 1"},
		{"flags", func(b []byte) []byte { b[offStateFlags] |= 2; return b }, true, "flags 0x3"},
		{"block size", func(b []byte) []byte { le.PutUint32(b[offStateBlockSize:], 3000); return b }, true, "block size 3000"},
		{"name length 0", func(b []byte) []byte { le.PutUint32(b[offStateNameLen:], 0); return b }, true, "name length 0"},
		{"name length 65", func(b []byte) []byte { le.PutUint32(b[offStateNameLen:], 65); return b }, true, "name length 65"},
		{"name padding", func(b []byte) []byte { b[offStateName+63] = 'x'; return b }, true, "offset 103: padding"},
		{"zero blocks", func(b []byte) []byte { le.PutUint32(b[ext(1, offExtentBlocks):], 0); return b }, true, "extent 1: 0 blocks"},
		{"overlap", func(b []byte) []byte { le.PutUint64(b[ext(1, offExtentLBA):], 3); return b }, true, "extent 1: LBA 3, want at least 4"},
		{"past the end", func(b []byte) []byte { le.PutUint32(b[ext(2, offExtentBlocks):], 901); return b }, true, "extent 2: LBA 100+901 past the bdev's 1000 blocks"},
		{"generation 0", func(b []byte) []byte { le.PutUint32(b[ext(0, offExtentGen):], 0); return b }, true, "extent 0: generation 0"},
		{"generation too big", func(b []byte) []byte { le.PutUint32(b[ext(0, offExtentGen):], verifyGenMax+1); return b }, true, "extent 0: generation 268435456"},
		{"pending not above", func(b []byte) []byte { le.PutUint32(b[ext(1, offExtentPending):], 7); return b }, true, "extent 1: pending generation 7"},
		{"reserved", func(b []byte) []byte { b[ext(0, offExtentReserved)] = 1; return b }, true, "extent 0: reserved 0x1"},
		{"more extents than blocks", func(b []byte) []byte { le.PutUint64(b[offStateBlocks:], 2); return b }, true, "3 extents in a bdev of 2 blocks"},
	}
	for _, tc := range tests {
		b := tc.mutate(slices.Clone(good))
		if tc.reseal {
			le.PutUint64(b[len(b)-StateTrailerSize:], xxhash.Sum64(b[:len(b)-StateTrailerSize]))
		}
		_, err := ParseVerifyState(b)
		if !errors.Is(err, ErrStateCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrStateCorrupt saying %q", tc.name, err, tc.want)
		}
	}
	bad := testState()
	bad.Extents[1].LBA = 2 // overlaps extent 0
	if _, err := bad.Marshal(); !errors.Is(err, ErrStateCorrupt) {
		t.Errorf("Marshal of overlapping extents: %v, want it refused", err)
	}
	path := filepath.Join(t.TempDir(), "state")
	damaged := slices.Clone(good)
	damaged[ext(0, offExtentGen)] ^= 4
	os.WriteFile(path, damaged, 0o600)
	if _, err := LoadVerifyState(path); !errors.Is(err, ErrStateCorrupt) || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadVerifyState of a damaged file: %v, want ErrStateCorrupt naming the file", err)
	}
}

// TestCheckRecorded walks the read-back rules (P6).
func TestCheckRecorded(t *testing.T) {
	tests := []struct {
		name         string
		stamp        uint64 // generation on the block
		flip         int    // byte flipped after stamping, -1 none
		gen, pending uint32
		clean        bool
		field        string // "" accepted
	}{
		{"clean exact", 5, -1, 5, 0, true, ""},
		{"clean newer", 6, -1, 5, 0, true, "generation"},
		{"clean older", 4, -1, 5, 0, true, "generation"},
		{"clean pending old", 5, -1, 5, 6, true, ""},
		{"clean pending new", 6, -1, 5, 6, true, ""},
		{"clean pending other", 7, -1, 5, 6, true, "generation"},
		{"dirty exact", 5, -1, 5, 0, false, ""},
		{"dirty newer", 9, -1, 5, 0, false, ""},
		{"dirty older", 4, -1, 5, 0, false, "generation"},
		{"dirty pending older", 4, -1, 5, 6, false, "generation"},
		{"beyond the generation limit", verifyGenMax + 1, -1, 5, 0, false, "generation"},
		{"magic", 5, offVerifyMagic, 5, 0, true, "magic"},
		{"lba", 5, offVerifyLBA, 5, 0, false, "lba"},
		{"generation byte is damage", 5, offVerifyGen, 5, 0, false, "hash"},
		{"payload", 5, 4000, 5, 0, true, "hash"},
	}
	b := make([]byte, 4096)
	for _, tc := range tests {
		stampBlock(b, 42, tc.stamp)
		if tc.flip >= 0 {
			b[tc.flip] ^= 0x10
		}
		found, field, _, _ := checkRecorded(b, 42, tc.gen, tc.pending, tc.clean)
		if field != tc.field || (field == "" && uint64(found) != tc.stamp) {
			t.Errorf("%s: found %d, blamed %q; want %q", tc.name, found, field, tc.field)
		}
	}
	if testing.AllocsPerRun(100, func() { checkRecorded(b, 42, 5, 0, true) }) != 0 {
		t.Error("checkRecorded allocates")
	}
}

func TestShareExtents(t *testing.T) {
	in := []VerifyExtent{{LBA: 0, Blocks: 10, Generation: 1}, {LBA: 20, Blocks: 1, Generation: 2},
		{LBA: 30, Blocks: 5, Generation: 3, Pending: 4}}
	for n := 1; n <= 5; n++ {
		shares := shareExtents(in, n)
		var joined extentBuilder
		for _, s := range shares {
			var blocks uint64
			for _, e := range s {
				joined.add(e.LBA, uint64(e.Blocks), e.Generation, e.Pending)
				blocks += uint64(e.Blocks)
			}
			if per := (16 + uint64(n) - 1) / uint64(n); blocks > per {
				t.Errorf("%d shares: one of %d blocks, want at most %d", n, blocks, per)
			}
		}
		if len(shares) != n || !reflect.DeepEqual(joined.extents, in) {
			t.Errorf("%d shares %v do not join back to the input", n, shares)
		}
	}
}

// memDisk is a RAM bdev that outlives a registry, so successive RunBdev
// calls see one disk as successive processes see a file; the test reads
// and damages its bytes between runs. Its hooks fail writes and flushes.
type memDisk struct {
	blockSize uint64
	data      []byte
	// failWrite, when set, fails the writes it returns true for, after
	// applying them when apply says so.
	failWrite func(lba uint64) (fail, apply bool)
	// flushesOK flushes succeed; later ones fail (negative: all succeed).
	flushesOK int32
	flushes   atomic.Int32
}

func newMemDisk(blockSize, blocks uint64) *memDisk {
	return &memDisk{blockSize: blockSize, data: make([]byte, blockSize*blocks), flushesOK: -1}
}

func (d *memDisk) Info() bdev.Info {
	return bdev.Info{IOTypes: bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush)}
}
func (d *memDisk) NewChannel(*bdev.Local) (bdev.ChannelBackend, error) { return memChannel{d}, nil }
func (d *memDisk) Close() error                                        { return nil }

type memChannel struct{ d *memDisk }

func (c memChannel) Close() error { return nil }

func (c memChannel) Submit(io *bdev.IO) {
	d := c.d
	at := d.data[io.OffsetBlocks*d.blockSize : (io.OffsetBlocks+io.Blocks)*d.blockSize]
	switch io.Type {
	case bdev.IORead:
		for _, v := range io.Iovecs {
			at = at[copy(v, at):]
		}
	case bdev.IOWrite:
		fail, apply := false, true
		if d.failWrite != nil {
			fail, apply = d.failWrite(io.OffsetBlocks)
		}
		if apply {
			for _, v := range io.Iovecs {
				at = at[copy(at, v):]
			}
		}
		if fail {
			io.Complete(bdev.StatusFailed)
			return
		}
	case bdev.IOFlush:
		if n := d.flushes.Add(1); d.flushesOK >= 0 && n > d.flushesOK {
			io.Complete(bdev.StatusFailed)
			return
		}
	}
	io.Complete(bdev.StatusSuccess)
}

// block returns the bytes of one LBA.
func (d *memDisk) block(lba uint64) []byte { return d.data[lba*d.blockSize : (lba+1)*d.blockSize] }

// run drives the disk with verify for a short while with the state at path.
func (d *memDisk) run(t *testing.T, path string, ioSize int, cores []int) (*Report, error) {
	t.Helper()
	blocks := uint64(len(d.data)) / d.blockSize
	top := &conf.Topology{Bdevs: []conf.Bdev{{Name: "D", Driver: "mem", BlockSize: conf.Size(d.blockSize),
		Size: conf.Size(len(d.data)), Blocks: blocks}}}
	reg := register(map[string]bdev.Driver{"mem": bdev.DriverFunc(func(bdev.Spec) (bdev.Backend, error) { return d, nil })})
	return RunBdev(context.Background(), BdevOptions{Topology: top, Workload: WorkloadVerify, IOSize: ioSize,
		QueueDepth: 4, Duration: 60 * time.Millisecond, Cores: cores, Register: reg, VerifyState: path})
}

// wantReadBack fails unless the run read back every recorded block of a
// save of the given kind, found all of them as the rules want, and saved.
func wantReadBack(t *testing.T, rep *Report, err error, clean bool) *StateReport {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	s := rep.VerifyState
	if !s.Loaded || s.LoadedClean != clean || s.CheckedBlocks == 0 || s.CheckedBlocks != s.RecordedBlocks ||
		s.Mismatches != 0 || !s.Saved {
		t.Fatalf("read-back %+v: want %d of %d blocks checked after a clean=%v save, no mismatch, saved",
			s, s.CheckedBlocks, s.RecordedBlocks, clean)
	}
	return s
}

// TestVerifyStateAcrossRuns: what a run acknowledges, the next reads back,
// also when the IO size and the cores change between them (slots whose
// blocks differ, P7); a damaged block is reported by LBA and field, and
// the file is left as it was.
func TestVerifyStateAcrossRuns(t *testing.T) {
	d := newMemDisk(4096, 256)
	path := filepath.Join(t.TempDir(), "state")
	rep, err := d.run(t, path, 4096, testCores(t))
	if err != nil || rep.VerifyState.Loaded || !rep.VerifyState.Saved {
		t.Fatalf("first run: %v, state %+v", err, rep.VerifyState)
	}
	st, err := LoadVerifyState(path)
	if err != nil || !st.Clean || st.Bdev != "D" || st.RecordedBlocks() != rep.VerifyState.SavedBlocks || st.RecordedBlocks() == 0 {
		t.Fatalf("saved state %+v, %v; report %+v", st, err, rep.VerifyState)
	}
	for _, e := range st.Extents { // what the file says is what the disk holds
		for lba := e.LBA; lba < e.end(); lba++ {
			if field, _, _ := checkBlock(d.block(lba), lba, uint64(e.Generation)); field != "" {
				t.Fatalf("LBA %d: %s does not match the saved generation %d", lba, field, e.Generation)
			}
		}
	}
	for _, step := range []struct {
		ioSize int
		cores  []int
	}{{4096, testCores(t)}, {16384, testCores(t)[:1]}, {8192, testCores(t)}, {4096, testCores(t)[:1]}} {
		rep, err := d.run(t, path, step.ioSize, step.cores)
		wantReadBack(t, rep, err, true)
	}

	st, _ = LoadVerifyState(path)
	lba := st.Extents[len(st.Extents)/2].LBA
	d.block(lba)[1000] ^= 0x01
	before, _ := os.ReadFile(path)
	rep, err = d.run(t, path, 4096, testCores(t))
	var rbe *ReadBackError
	if !errors.As(err, &rbe) || !errors.Is(err, ErrVerify) || rbe.Mismatches != 1 || rbe.First[0].LBA != lba ||
		rbe.First[0].Field != "hash" || rep.VerifyState.Mismatches != 1 || rep.VerifyState.Saved || len(rep.Cores) != 0 {
		t.Fatalf("damaged LBA %d: %v, report %+v; want one hash mismatch there and no workload", lba, err, rep)
	}
	if !strings.Contains(err.Error(), "LBA ") || !strings.Contains(err.Error(), "hash") {
		t.Errorf("error %q does not name the LBA and the field", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a failed read-back rewrote the state file")
	}
	d.block(lba)[1000] ^= 0x01
	rep, err = d.run(t, path, 4096, testCores(t))
	wantReadBack(t, rep, err, true)
	t.Logf("read back %d blocks; saved %d in %d extents", rep.VerifyState.CheckedBlocks,
		rep.VerifyState.SavedBlocks, rep.VerifyState.SavedExtents)
}

// TestVerifyStateFailedWrites: a failed write is recorded as pending, not
// acknowledged (P5); the next read-back accepts the old generation where it
// never reached the disk and the new one where it did.
func TestVerifyStateFailedWrites(t *testing.T) {
	d := newMemDisk(4096, 64)
	path := filepath.Join(t.TempDir(), "state")
	if _, err := d.run(t, path, 4096, testCores(t)[:1]); err != nil {
		t.Fatal(err)
	}
	// LBA%4 0: fails, not applied; 1: fails after it was applied; 2, 3: fine.
	d.failWrite = func(lba uint64) (fail, apply bool) { return lba%4 < 2, lba%4 != 0 }
	rep, err := d.run(t, path, 4096, testCores(t)[:1])
	if !errors.Is(err, ErrIOFailed) || !rep.VerifyState.Saved || rep.VerifyState.SavedPendingBlocks == 0 {
		t.Fatalf("run with failing writes: %v, state %+v; want failed IOs and a save with pending blocks", err, rep.VerifyState)
	}
	st, _ := LoadVerifyState(path)
	for _, e := range st.Extents {
		for lba := e.LBA; lba < e.end() && e.Pending != 0; lba++ {
			if lba%4 >= 2 {
				t.Errorf("extent %+v: a pending generation on LBA %d, whose writes did not fail", e, lba)
			}
		}
	}
	d.failWrite = nil
	rep, err = d.run(t, path, 4096, testCores(t)[:1])
	if s := wantReadBack(t, rep, err, true); s.PendingBlocks == 0 {
		t.Errorf("no block read back at its pending generation, though half the failed writes were applied: %+v", s)
	}
}

// TestVerifyStateDirty: a run whose end is lost (here its final flush
// fails, as a kill -9 loses it) leaves the dirty save from its start. The
// next read-back takes newer generations as data written after that save,
// and an older one as a lost write (P6).
func TestVerifyStateDirty(t *testing.T) {
	d := newMemDisk(4096, 64)
	path := filepath.Join(t.TempDir(), "state")
	cores := testCores(t)[:1]
	if _, err := d.run(t, path, 4096, cores); err != nil {
		t.Fatal(err)
	}
	old := slices.Clone(d.data)
	if _, err := d.run(t, path, 4096, cores); err != nil {
		t.Fatal(err)
	}
	d.flushes.Store(0)
	d.flushesOK = 1 // the dirty save's flush; the final one fails
	rep, err := d.run(t, path, 4096, cores)
	if err == nil || !strings.Contains(err.Error(), "not saved") || rep.VerifyState.Saved {
		t.Fatalf("final flush failed: %v, state %+v; want not saved", err, rep.VerifyState)
	}
	d.flushesOK = -1
	st, err := LoadVerifyState(path)
	if err != nil || st.Clean {
		t.Fatalf("state after a lost end: %+v, %v; want the dirty save", st, err)
	}
	// A block the dirty save records above what the first run left there.
	lba := ^uint64(0)
	for _, e := range st.Extents {
		if g := le.Uint64(old[e.LBA*4096+offVerifyGen:]); g != 0 && g < uint64(e.Generation) {
			lba = e.LBA
			break
		}
	}
	if lba == ^uint64(0) {
		t.Fatal("the second run rewrote no block the first had written")
	}
	current := slices.Clone(d.block(lba))
	copy(d.block(lba), old[lba*4096:(lba+1)*4096]) // rolled back: a valid block, an older generation
	_, err = d.run(t, path, 4096, cores)
	var rbe *ReadBackError
	if !errors.As(err, &rbe) || rbe.Mismatches != 1 || rbe.First[0].LBA != lba || rbe.First[0].Field != "generation" ||
		!rbe.First[0].AtLeast || !strings.Contains(err.Error(), "older than the recorded") {
		t.Fatalf("rolled-back LBA %d: %v; want one generation mismatch there, older than a dirty save allows", lba, err)
	}
	copy(d.block(lba), current)
	rep, err = d.run(t, path, 4096, cores)
	if s := wantReadBack(t, rep, err, false); s.NewerBlocks == 0 {
		t.Errorf("no block newer than the dirty save, though the lost run wrote after it: %+v", s)
	}
	if st, _ := LoadVerifyState(path); !st.Clean {
		t.Error("a run that read back a dirty save and ended normally did not save clean")
	}
}

// TestMainBdevVerifyState: the flag on the command line and the report's
// verify_state object; a malloc bdev keeps nothing between runs, so the
// second run's read-back finds every recorded block gone and exits 1; the
// flag is refused without -w verify.
func TestMainBdevVerifyState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	args := []string{"-w", "verify", "-t", "0.05", "-q", "4", "--json", "--verify-state", path}
	run := func(wantCode int) (*StateReport, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := MainBdev(context.Background(), args, &out, &errOut, register(nil), nil); code != wantCode {
			t.Fatalf("exit %d, want %d: %s", code, wantCode, errOut.String())
		}
		var rep Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.VerifyState == nil {
			t.Fatalf("%v: no verify_state in %s", err, out.String())
		}
		return rep.VerifyState, errOut.String()
	}
	if s, _ := run(0); s.Loaded || !s.Saved || s.SavedBlocks == 0 {
		t.Fatalf("first run: %+v; want nothing loaded and blocks saved", s)
	}
	s, stderr := run(1)
	if !s.Loaded || s.Mismatches == 0 || s.Mismatches != s.RecordedBlocks || s.Saved ||
		!strings.Contains(stderr, "did not read back as saved") || !strings.Contains(stderr, "magic 0x0") {
		t.Fatalf("second run over a fresh malloc: %+v\n%s\nwant every recorded block missing", s, stderr)
	}
	var out, errOut bytes.Buffer
	if code := MainBdev(context.Background(), []string{"-w", "randread", "--verify-state", path}, &out, &errOut,
		register(nil), nil); code != 2 || !strings.Contains(errOut.String(), "want workload verify") {
		t.Errorf("--verify-state with randread: exit %d, %q; want 2 and why", code, errOut.String())
	}
}

// TestVerifyStateOtherBdev: a state file for another bdev, or for this
// name with another geometry, is refused before any IO, naming both; the
// matching one is taken.
func TestVerifyStateOtherBdev(t *testing.T) {
	top := topology(t, "bdevs:\n  - name: M\n    driver: malloc\n    block_size: 512\n    size: 1MiB\n")
	tests := []struct {
		name      string
		blockSize uint32
		blocks    uint64
		refused   bool
	}{
		{"M", 512, 2048, false},
		{"N", 512, 2048, true},
		{"M", 4096, 256, true},
		{"M", 512, 4096, true},
	}
	for _, tc := range tests {
		path := filepath.Join(t.TempDir(), "state")
		saved := &VerifyState{Bdev: tc.name, BlockSize: tc.blockSize, Blocks: tc.blocks, Clean: true}
		if err := saved.Save(path); err != nil {
			t.Fatal(err)
		}
		rep, err := RunBdev(context.Background(), BdevOptions{Topology: top, Workload: WorkloadVerify, QueueDepth: 4,
			Duration: 20 * time.Millisecond, Register: register(nil), VerifyState: path})
		if !tc.refused {
			if err != nil || !rep.VerifyState.Loaded || !rep.VerifyState.Saved {
				t.Errorf("state for %q %d×%d: %v; want it loaded and saved", tc.name, tc.blocks, tc.blockSize, err)
			}
			continue
		}
		want := fmt.Sprintf(`records bdev %q of %d blocks of %d bytes, this run drives "M" of 2048 blocks of 512 bytes`,
			tc.name, tc.blocks, tc.blockSize)
		if !errors.Is(err, ErrStateOtherBdev) || !strings.Contains(err.Error(), want) || rep != nil {
			t.Errorf("state for %q %d×%d: %v; want it refused saying %q", tc.name, tc.blocks, tc.blockSize, err, want)
		}
		if got, _ := LoadVerifyState(path); !reflect.DeepEqual(got, saved) {
			t.Errorf("a refused state file was rewritten: %+v", got)
		}
	}
}
