package replica

import (
	"bytes"
	"fmt"
	"math/bits"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
	"github.com/sluice-storage/sluice/services/errinject"
	"github.com/sluice-storage/sluice/services/stage"
	"github.com/sluice-storage/sluice/services/stage/stagetest"
)

// Crash tests: a crash is what the devices hold at an instant while the
// stage runs, never closed. The test takes their bytes (read descriptors
// go past the claims) and builds a new stack on copies of them: the restart.

const (
	crashBlocks = 1024 // 32 regions of 32 blocks
	crashRegion = 32   // blocks
	mdBlocks    = 64
)

// dump reads the whole bdev name of s.
func dump(t *testing.T, s *stagetest.Stack, name string) []byte {
	t.Helper()
	d, err := s.Reg.Open(name, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := d.Bdev()
	n := b.Blocks() * uint64(b.BlockSize())
	buf, err := bdev.MapRegion(int(n))
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Unmap()
	if err := stage.SyncIO(s.Set.Get(0), d, bdev.IORead, 0, b.Blocks(), buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// fill writes data over the whole bdev name of s (not claimed yet).
func fill(t *testing.T, s *stagetest.Stack, name string, data []byte) {
	t.Helper()
	d, err := s.Reg.Open(name, true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	buf, err := bdev.MapRegion(len(data))
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Unmap()
	copy(buf.Bytes(), data)
	if err := stage.SyncIO(s.Set.Get(0), d, bdev.IOWrite, 0, uint64(len(data))/512, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// crashImage is the devices' bytes at the crash: members M0..M2 and MD.
type crashImage map[string][]byte

func snapshot(t *testing.T, s *stagetest.Stack) crashImage {
	img := crashImage{}
	for _, n := range []string{"M0", "M1", "M2", "MD"} {
		img[n] = dump(t, s, n)
	}
	return img
}

// restart builds a new stack on copies of img: mallocs, an error stage on
// each member, and the replica over them with cfg.
func restart(t *testing.T, img crashImage, cfg Config) *mirror {
	t.Helper()
	s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
	for _, n := range []string{"M0", "M1", "M2"} {
		s.Disks(t, 512, crashBlocks, n)
		fill(t, s, n, img[n])
		es, err := errinject.New(s.Reg, errinject.Config{Name: "E" + n[1:], Base: n})
		s.Add(t, es, err)
	}
	s.Disks(t, 512, mdBlocks, "MD")
	fill(t, s, "MD", img["MD"])
	cfg.Metadata = "MD"
	return buildMirror(t, s, 3, crashBlocks, cfg, false)
}

// region is region r's bytes of a member image.
func region(img []byte, r int) []byte {
	return img[r*crashRegion*512 : (r+1)*crashRegion*512]
}

// persisted decodes the newer metadata copy on an MD image.
func persisted(t *testing.T, md []byte, regions uint64) *meta {
	t.Helper()
	size := metaCopySize((regions+63)/64*8, 512)
	m, err := newestMeta(md[:size], md[size:2*size])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func bitSet(bitmap []byte, r int) bool { return bitmap[r/8]&(1<<(r%8)) != 0 }

func popcount(b []byte) int {
	n := 0
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n
}

// crashMidWrites runs a fresh replica on M0..M2 and MD: every region
// written, the sweeper run until all are clean, then writes into the
// regions of dirtyWant; it returns the devices at that instant, with no
// Close (X7: the metadata still says active).
func crashMidWrites(t *testing.T, dirtyWant []int) crashImage {
	t.Helper()
	s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 512, mdBlocks, "MD")
	g := buildMirror(t, s, 3, crashBlocks, Config{Metadata: "MD", CleanDelay: time.Hour}, true)
	for off := uint64(0); off < crashBlocks; off += 64 {
		g.write(t, int(off/64)%2, off, 64, 1000+off)
	}
	g.quiet(t)
	if got := g.status().DirtyRegions; got != 0 {
		t.Fatalf("%d dirty regions after the sweeper ran with no writes, want 0", got)
	}
	g.write(t, 0, 3*crashRegion+5, 4, 3)                // region 3
	g.write(t, 1, 8*crashRegion-2, 4, 7)                // regions 7 and 8
	g.write(t, 0, 20*crashRegion, crashRegion, 20)      // region 20 whole
	g.write(t, 1, 20*crashRegion+crashRegion-1, 1, 201) // and again: one mark
	img := snapshot(t, s)
	md := persisted(t, img["MD"], 32)
	if md.flags&metaFlagActive == 0 {
		t.Fatal("metadata of a running stage: not active")
	}
	// X2: each mark reached the metadata bdev before its write was sent.
	for _, r := range dirtyWant {
		if !bitSet(md.bitmap, r) {
			t.Fatalf("region %d written, not marked on the metadata bdev (bitmap %x)", r, md.bitmap)
		}
	}
	if n := popcount(md.bitmap); n != len(dirtyWant) {
		t.Fatalf("%d regions marked on the metadata bdev, want %d (%v)", n, len(dirtyWant), dirtyWant)
	}
	return img
}

// TestCrashResyncsDirtyRegions: a crash with members that differ in dirty
// regions (the writes in flight reached some members only) is resynced on
// restart from the first in-sync member to the others, exactly the dirty
// regions (X7): afterwards the members agree; a region the bitmap says is
// clean is not copied (made to differ here as a probe, it still differs).
// A clean stop then records clean with an empty bitmap.
func TestCrashResyncsDirtyRegions(t *testing.T) {
	dirty := []int{3, 7, 8, 20}
	img := crashMidWrites(t, dirty)
	// The write hole: the writes in flight at the crash reached M0 only.
	bdevtest.Fill(region(img["M1"], 7), 71)
	bdevtest.Fill(region(img["M2"], 20)[:512*4], 72)
	bdevtest.Fill(region(img["M2"], 3), 73)
	probe := 25 // clean: a resync that copied it would undo this
	bdevtest.Fill(region(img["M1"], probe), 99)
	want := bytes.Clone(img["M0"])

	g := restart(t, img, Config{CleanDelay: time.Hour})
	if err := g.st.WaitRebuild(wait); err != nil {
		t.Fatal(err)
	}
	st := g.status()
	rs := st.UncleanResync
	if !st.UncleanShutdown || rs == nil || rs.Kind != "unclean" || rs.Regions != 4 || rs.RegionsDone != 4 ||
		rs.BytesDone != 4*crashRegion*512 || rs.Source != "E0" || fmt.Sprint(rs.Targets) != "[E1 E2]" || rs.Error != "" {
		t.Fatalf("after the restart: unclean %v, resync %+v; want 4 of 32 regions copied from E0 to E1 and E2",
			st.UncleanShutdown, rs)
	}
	if st.InSync != 3 {
		t.Fatalf("after the resync: %s", g.states())
	}
	t.Logf("resync after the crash: %d of %d regions (%d bytes)", rs.RegionsDone, st.Regions, rs.BytesDone)
	m := map[string][]byte{}
	for _, n := range []string{"M0", "M1", "M2"} {
		m[n] = dump(t, g.s, n)
	}
	for r := range 32 {
		for _, n := range []string{"M1", "M2"} {
			same := bytes.Equal(region(m[n], r), region(want, r))
			if r == probe && n == "M1" {
				if same {
					t.Errorf("region %d is clean in the bitmap, yet %s was copied over", r, n)
				}
				continue
			}
			if !same {
				t.Errorf("region %d: %s differs from M0 after the resync", r, n)
			}
		}
		if !bytes.Equal(region(m["M0"], r), region(want, r)) {
			t.Errorf("region %d: the source M0 changed", r)
		}
	}
	// Closed cleanly: the metadata says so, and nothing is dirty.
	g.h.Desc.Close()
	if err := stage.Delete(g.s.Reg, g.s.List, "R"); err != nil {
		t.Fatal(err)
	}
	md := persisted(t, dump(t, g.s, "MD"), 32)
	if md.flags&metaFlagActive != 0 || popcount(md.bitmap) != 0 {
		t.Fatalf("after a clean stop: flags %#x, %d regions marked; want clean and none", md.flags, popcount(md.bitmap))
	}
}

// TestUncleanReadsFollowSource: while the resync after a crash has yet to
// copy a dirty region, every read of it returns the first in-sync member's
// data, on any reactor, however often (X8); a resync stopped by Close
// leaves the stop unclean and the next start copies the regions again.
func TestUncleanReadsFollowSource(t *testing.T) {
	img := crashMidWrites(t, []int{3, 7, 8, 20})
	bdevtest.Fill(region(img["M1"], 20), 81)
	bdevtest.Fill(region(img["M2"], 20), 82)
	want := bytes.Clone(region(img["M0"], 20))

	// One region an hour: region 3 is copied, then the resync waits.
	g := restart(t, img, Config{CleanDelay: time.Hour, RebuildRate: crashRegion * 512})
	for k := range 6 {
		r := k % 2
		clear(g.h.Buf(r)[:len(want)])
		if st, detail := g.h.Do(t, r, bdev.IORead, 20*crashRegion, crashRegion); st != bdev.StatusSuccess {
			t.Fatalf("read of region 20: %s", detail)
		}
		if !bytes.Equal(g.h.Buf(r)[:len(want)], want) {
			t.Fatalf("read %d of region 20 (reactor %d) during the resync: not the first in-sync member's data", k, r)
		}
	}
	if rs := g.status().UncleanResync; rs == nil || rs.RegionsDone >= 4 {
		t.Fatalf("the throttled resync is not running: %+v", rs)
	}
	g.st.StopRebuild() // as the daemon's stop does before it closes the registry
	g.h.Desc.Close()
	if err := stage.Delete(g.s.Reg, g.s.List, "R"); err != nil {
		t.Fatal(err)
	}
	md := persisted(t, dump(t, g.s, "MD"), 32)
	if md.flags&metaFlagActive == 0 || popcount(md.bitmap) != 4 {
		t.Fatalf("after a stop mid-resync: flags %#x, %d regions marked; want still unclean, 4", md.flags, popcount(md.bitmap))
	}

	img2 := crashImage{"MD": dump(t, g.s, "MD")}
	for _, n := range []string{"M0", "M1", "M2"} {
		img2[n] = dump(t, g.s, n)
	}
	g = restart(t, img2, Config{CleanDelay: time.Hour})
	if err := g.st.WaitRebuild(wait); err != nil {
		t.Fatal(err)
	}
	if rs := g.status().UncleanResync; rs == nil || rs.RegionsDone != 4 {
		t.Fatalf("the resumed resync: %+v, want 4 regions", rs)
	}
	for _, n := range []string{"M1", "M2"} {
		if !bytes.Equal(region(dump(t, g.s, n), 20), want) {
			t.Errorf("region 20 of %s differs from M0 after the resumed resync", n)
		}
	}
}

// TestSweeperKeepsBusyRegions: a region written in this epoch or the last
// is not cleared; one untouched for a whole epoch is (X5); a write into a
// cleared region marks it on the metadata bdev again before it completes.
func TestSweeperKeepsBusyRegions(t *testing.T) {
	s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 512, mdBlocks, "MD")
	g := buildMirror(t, s, 3, crashBlocks, Config{Metadata: "MD", CleanDelay: time.Hour}, true)
	sweep := func() {
		if err := g.st.home.Call(func() { g.st.sweepOnce() }); err != nil {
			t.Fatal(err)
		}
	}
	g.write(t, 0, 0, 1, 1)             // region 0
	g.write(t, 1, 5*crashRegion, 1, 2) // region 5
	sweep()
	g.write(t, 0, 5*crashRegion, 1, 3) // region 5 again, in the next epoch
	sweep()
	// Region 0 was last written two epochs ago; region 5 in the last one.
	if st := g.status(); st.DirtyRegions != 2 {
		t.Fatalf("after two sweeps: %d dirty, want 2", st.DirtyRegions)
	}
	sweep()
	if st := g.status(); st.DirtyRegions != 1 {
		t.Fatalf("after three sweeps: %d dirty, want region 5 only", st.DirtyRegions)
	}
	sweep()
	if st := g.status(); st.DirtyRegions != 0 {
		t.Fatalf("after four sweeps: %d dirty, want 0", st.DirtyRegions)
	}
	if err := g.st.persistSync(); err != nil {
		t.Fatal(err)
	}
	if md := persisted(t, dump(t, s, "MD"), 32); popcount(md.bitmap) != 0 {
		t.Fatalf("the clears did not reach the metadata bdev: %x", md.bitmap)
	}
	g.write(t, 1, 9*crashRegion, 2, 4)
	if md := persisted(t, dump(t, s, "MD"), 32); !bitSet(md.bitmap, 9) || popcount(md.bitmap) != 1 {
		t.Fatalf("a write into region 9 completed with the metadata bitmap %x, want region 9 marked", md.bitmap)
	}
	// A member out of sync: nothing is cleared, however quiet.
	failAll(g.errs[2])
	g.write(t, 0, 12*crashRegion, 1, 5)
	for range 4 {
		sweep()
	}
	if st := g.status(); st.DirtyRegions != 2 {
		t.Fatalf("with E2 faulty, after four sweeps: %d dirty, want 2 (regions 9 and 12)", st.DirtyRegions)
	}
}
