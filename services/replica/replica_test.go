package replica

import (
	"errors"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/drivers/null"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
	"github.com/sluice-storage/sluice/services/errinject"
	"github.com/sluice-storage/sluice/services/stage"
	"github.com/sluice-storage/sluice/services/stage/stagetest"
)

var seedFlag = flag.Uint64("seed", 0, "metamorphic seed; 0 picks one from the clock")

func seed() uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return uint64(time.Now().UnixNano())
}

const wait = 30 * time.Second

// mirror is a replica R over error stages E0..En-1 over mallocs M0..Mn-1,
// so a test can fail any member.
type mirror struct {
	s      *stagetest.Stack
	st     *Stage
	errs   []*errinject.Stage
	h      *bdevtest.Handle
	blocks uint64
	shadow []byte // what the replica must read back
}

func newMirror(t *testing.T, n int, blocks uint64, cfg Config) *mirror {
	t.Helper()
	s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
	return buildMirror(t, s, n, blocks, cfg, true)
}

func buildMirror(t *testing.T, s *stagetest.Stack, n int, blocks uint64, cfg Config, fresh bool) *mirror {
	t.Helper()
	g := &mirror{s: s, blocks: blocks, shadow: make([]byte, blocks*512)}
	for i := range n {
		m, e := fmt.Sprintf("M%d", i), fmt.Sprintf("E%d", i)
		if fresh {
			s.Disks(t, 512, blocks, m)
			es, err := errinject.New(s.Reg, errinject.Config{Name: e, Base: m})
			s.Add(t, es, err)
		}
		st, _ := s.List.Get(e)
		g.errs = append(g.errs, st.(*errinject.Stage))
		cfg.Members = append(cfg.Members, e)
	}
	if cfg.Name == "" {
		cfg.Name = "R"
	}
	if cfg.RegionSize == 0 {
		cfg.RegionSize = 16 << 10 // 32 blocks: many regions in a small mirror
	}
	st, err := New(s.Reg, cfg)
	s.Add(t, st, err)
	g.st = st
	g.h = s.Open(t, cfg.Name)
	return g
}

// write stamps blocks [off, off+n) with seed's data through the replica.
func (g *mirror) write(t *testing.T, r int, off, n, seed uint64) {
	t.Helper()
	bdevtest.Fill(g.h.Buf(r)[:n*512], seed)
	if st, detail := g.h.Do(t, r, bdev.IOWrite, off, n); st != bdev.StatusSuccess {
		t.Fatalf("write %d+%d: %s", off, n, detail)
	}
	copy(g.shadow[off*512:], g.h.Buf(r)[:n*512])
}

// checkAll reads the whole replica in 64-block pieces and wants the shadow.
func (g *mirror) checkAll(t *testing.T) {
	t.Helper()
	for off := uint64(0); off < g.blocks; off += 64 {
		n := min(64, g.blocks-off)
		r := int(off/64) % 2
		clear(g.h.Buf(r)[:n*512])
		if st, detail := g.h.Do(t, r, bdev.IORead, off, n); st != bdev.StatusSuccess {
			t.Fatalf("read %d+%d: %s", off, n, detail)
		}
		if string(g.h.Buf(r)[:n*512]) != string(g.shadow[off*512:(off+n)*512]) {
			t.Fatalf("read %d+%d: not the data written (%s)", off, n, g.states())
		}
	}
}

// check reads [off, off+n) through the replica and wants seed's data.
func (g *mirror) check(t *testing.T, r int, off, n, seed uint64) {
	t.Helper()
	want := make([]byte, n*512)
	bdevtest.Fill(want, seed)
	clear(g.h.Buf(r)[:n*512])
	if st, detail := g.h.Do(t, r, bdev.IORead, off, n); st != bdev.StatusSuccess {
		t.Fatalf("read %d+%d: %s", off, n, detail)
	}
	if string(g.h.Buf(r)[:n*512]) != string(want) {
		t.Fatalf("read %d+%d: not the data written", off, n)
	}
}

func (g *mirror) status() Status { return g.st.Status().(Status) }

// quiet runs the sweeper three times with no write between: every dirty
// region has gone a whole epoch unwritten, so each is cleared when every
// member is in sync (X5); then the clears are persisted.
func (g *mirror) quiet(t *testing.T) {
	t.Helper()
	for range 3 {
		if err := g.st.home.Call(func() { g.st.sweepOnce() }); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.st.persistSync(); err != nil {
		t.Fatal(err)
	}
}

func (g *mirror) states() string {
	out := ""
	for _, m := range g.status().Members {
		out += m.Name + "=" + m.State + " "
	}
	return out
}

func failAll(es *errinject.Stage) {
	es.Inject(errinject.Rule{Types: bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap, bdev.IOWriteZeroes),
		Count: errinject.CountUnlimited})
}

// TestMetamorphic: a three-way replica reads back as one malloc does.
func TestMetamorphic(t *testing.T) {
	sd := seed()
	g := newMirror(t, 3, 600, Config{})
	g.s.Metamorphic(t, sd, 400, "R", 40, fmt.Sprintf("go test ./services/replica -run TestMetamorphic -seed %d", sd))
}

// TestMemberFails: a member that fails writes is marked faulty and writes
// go on (X1); a member that fails reads is marked faulty and the read is
// served by another (X3); with none in sync IO fails.
func TestMemberFails(t *testing.T) {
	g := newMirror(t, 3, 256, Config{})
	g.write(t, 0, 0, 8, 1)
	failAll(g.errs[2])
	g.write(t, 1, 8, 8, 2)
	if got := g.states(); got != "E0=in-sync E1=in-sync E2=faulty " {
		t.Fatalf("after a failed write: %s", got)
	}
	if g.status().DirtyRegions != 1 {
		t.Fatalf("%d dirty regions after one degraded write, want 1", g.status().DirtyRegions)
	}
	failAll(g.errs[0])
	for r := range 2 {
		g.check(t, r, 0, 8, 1) // E0 fails the read: E1 serves it
		g.check(t, r, 8, 8, 2)
	}
	if got := g.states(); got != "E0=faulty E1=in-sync E2=faulty " {
		t.Fatalf("after a failed read: %s", got)
	}
	failAll(g.errs[1])
	if st, _ := g.h.Do(t, 0, bdev.IORead, 0, 8); st != bdev.StatusFailed {
		t.Fatalf("read with every member failing: %v, want failed", st)
	}
	if st, _ := g.h.Do(t, 0, bdev.IOWrite, 0, 8); st != bdev.StatusFailed {
		t.Fatalf("write with no member in sync: %v, want failed", st)
	}
}

// TestReplaceAndRebuild: a faulty member replaced by a fresh malloc is
// rebuilt whole while writes go on (X4); then, with the old members
// failed, every block reads back from the rebuilt one alone.
func TestReplaceAndRebuild(t *testing.T) {
	g := newMirror(t, 3, 1024, Config{})
	for i := uint64(0); i < 1024; i += 64 {
		g.write(t, int(i/64)%2, i, 64, 100+i)
	}
	failAll(g.errs[2])
	g.write(t, 0, 0, 64, 100) // marks E2 faulty
	if err := g.st.Replace("E0", "nope"); !errors.Is(err, stage.ErrConfig) {
		t.Fatalf("replace an in-sync member: %v, want ErrConfig", err)
	}
	g.s.Disks(t, 512, 1024, "M3")
	if err := g.st.Replace("E2", "M3"); err != nil {
		t.Fatal(err)
	}
	// Writes while the rebuild runs reach the new member too.
	for i := uint64(0); i < 1024; i += 128 {
		g.write(t, 1, i, 32, 900+i)
	}
	if err := g.st.WaitRebuild(wait); err != nil {
		t.Fatal(err)
	}
	g.quiet(t)
	st := g.status()
	if got := g.states(); got != "E0=in-sync E1=in-sync M3=in-sync " || st.Rebuild.RegionsDone != st.Regions || st.DirtyRegions != 0 {
		t.Fatalf("after the rebuild: %s, %+v", got, st.Rebuild)
	}
	// E2 was released: its base can be opened for writing again.
	if d, err := g.s.Reg.Open("E2", true); err != nil {
		t.Fatalf("replaced member still held: %v", err)
	} else {
		d.Close()
	}
	failAll(g.errs[0])
	failAll(g.errs[1])
	g.checkAll(t)
	if got := g.states(); got != "E0=faulty E1=faulty M3=in-sync " {
		t.Fatalf("reading with the old members failing: %s", got)
	}
}

// TestResyncCopiesOnlyDirty: a member back from a brief absence is resynced
// from the bitmap: only the regions written meanwhile are copied (X2, X4),
// and afterwards it alone serves every block right.
func TestResyncCopiesOnlyDirty(t *testing.T) {
	s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 512, 64, "MD")
	g := buildMirror(t, s, 3, 1024, Config{Metadata: "MD"}, true)
	for i := uint64(0); i < 1024; i += 64 {
		g.write(t, 0, i, 64, 7+i)
	}
	if got := g.status().DirtyRegions; got != 32 {
		t.Fatalf("%d dirty regions after writing all 32, want 32 (X2: marked before sent)", got)
	}
	g.quiet(t)
	failAll(g.errs[2])
	g.write(t, 1, 3*32+5, 4, 77)   // region 3
	g.write(t, 0, 10*32+31, 2, 78) // regions 10 and 11
	if got := g.status().DirtyRegions; got != 3 {
		t.Fatalf("%d dirty regions, want 3", got)
	}
	g.errs[2].Clear(bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap, bdev.IOWriteZeroes))
	if err := g.st.ReAdd("E2"); err != nil {
		t.Fatal(err)
	}
	if err := g.st.WaitRebuild(wait); err != nil {
		t.Fatal(err)
	}
	g.quiet(t)
	st := g.status()
	if st.Rebuild.RegionsDone != 3 || st.Rebuild.Full || st.DirtyRegions != 0 || st.InSync != 3 {
		t.Fatalf("after the resync: %+v, %d dirty, %d in sync; want 3 regions copied", st.Rebuild, st.DirtyRegions, st.InSync)
	}
	failAll(g.errs[0])
	failAll(g.errs[1])
	g.checkAll(t)
}

// TestRestartResumesResync: the bitmap and the member states survive the
// stage being torn down and made again on the same bdevs (a restart): the
// stale member is resynced from the persisted bitmap as the stage starts.
func TestRestartResumesResync(t *testing.T) {
	s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 512, 64, "MD")
	g := buildMirror(t, s, 3, 512, Config{Metadata: "MD"}, true)
	for i := uint64(0); i < 512; i += 64 {
		g.write(t, 1, i, 64, 3+i)
	}
	g.quiet(t)
	failAll(g.errs[1])
	g.write(t, 0, 5*32, 32, 55) // region 5
	g.write(t, 1, 14*32, 1, 56) // region 14
	g.h.Desc.Close()
	if err := stage.Delete(s.Reg, s.List, "R"); err != nil {
		t.Fatal(err)
	}
	g.errs[1].Clear(bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap, bdev.IOWriteZeroes))
	shadow := g.shadow
	g = buildMirror(t, s, 3, 512, Config{Metadata: "MD"}, false)
	g.shadow = shadow
	if err := g.st.WaitRebuild(wait); err != nil {
		t.Fatal(err)
	}
	if st := g.status(); st.Rebuild == nil || st.Rebuild.RegionsDone != 2 || st.Rebuild.Full || st.InSync != 3 {
		t.Fatalf("after the restart: %+v, %s", st.Rebuild, g.states())
	}
	failAll(g.errs[0])
	failAll(g.errs[2])
	g.checkAll(t)
}

// TestMetadataMismatch: metadata written for another replica is refused,
// not reinterpreted.
func TestMetadataMismatch(t *testing.T) {
	s := stagetest.NewStack(t, 1, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 512, 64, "MD")
	g := buildMirror(t, s, 2, 512, Config{Metadata: "MD"}, true)
	g.h.Desc.Close()
	if err := stage.Delete(s.Reg, s.List, "R"); err != nil {
		t.Fatal(err)
	}
	_, err := New(s.Reg, Config{Name: "R", Members: []string{"E0", "E1"}, Metadata: "MD", RegionSize: 32 << 10})
	if !errors.Is(err, ErrMeta) {
		t.Fatalf("another region size: %v, want ErrMeta", err)
	}
}

// TestRebuildThrottled: at one region per millisecond of the injected
// clock, the rebuild copies one region per millisecond advanced.
func TestRebuildThrottled(t *testing.T) {
	clock := &stagetest.ManualClock{}
	s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{Mode: reactors.ModePoll, Clock: clock})
	g := buildMirror(t, s, 2, 512, Config{RebuildRate: 16 << 20 * 1000 / 1024}, true) // 16 KiB regions: 1 per ms
	failAll(g.errs[1])
	g.write(t, 0, 0, 1, 1)
	g.errs[1].Clear(bdev.IOTypesOf(bdev.IORead, bdev.IOWrite))
	s.Disks(t, 512, 512, "M9")
	if err := g.st.Replace("E1", "M9"); err != nil {
		t.Fatal(err)
	}
	done := func() uint64 { return g.status().Rebuild.RegionsDone }
	settle := func(want uint64) {
		t.Helper()
		for range 200 {
			if done() >= want {
				break
			}
			s.Turns(t)
		}
		s.Turns(t)
		if got := done(); got != want {
			t.Fatalf("%d regions copied at %v, want %d", got, clock.Now(), want)
		}
	}
	settle(1)
	for k := uint64(2); k <= 6; k++ {
		clock.Advance(time.Millisecond)
		settle(k)
	}
	g.st.StopRebuild()
	if err := g.st.WaitRebuild(wait); !errors.Is(err, ErrStopped) {
		t.Fatalf("stopped rebuild ended with %v, want ErrStopped", err)
	}
	if got := g.states(); got != "E0=in-sync M9=faulty " {
		t.Fatalf("after the stop: %s", got)
	}
}

// TestZeroAllocs: reads, writes, writes with a metadata bdev (their
// intent, X2) and writes with a member faulty allocate nothing (X6).
func TestZeroAllocs(t *testing.T) {
	s := stagetest.NewStack(t, 1, null.Driver{}, reactors.Options{})
	s.Disks(t, 512, 1<<14, "N0", "N1", "N2", "N3", "N4")
	s.Disks(t, 512, 64, "NM")
	st, err := New(s.Reg, Config{Name: "R", Members: []string{"N0", "N1", "N2"}})
	s.Add(t, st, err)
	sm, err := New(s.Reg, Config{Name: "RM", Members: []string{"N3", "N4"}, Metadata: "NM"})
	s.Add(t, sm, err)
	r := s.Set.Get(0)
	chans := map[string]*bdev.Channel{}
	for _, name := range []string{"R", "RM"} {
		d, err := s.Reg.Open(name, true)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		chans[name] = stagetest.Channel(t, r, d)
		if name == "RM" { // mark every region first: the loop measures a region already marked
			buf, err := bdev.MapRegion(512)
			if err != nil {
				t.Fatal(err)
			}
			for off := uint64(0); off < 1<<14; off += RegionSizeDefault / 512 {
				if err := stage.SyncIO(r, d, bdev.IOWrite, off, 1, buf.Bytes()); err != nil {
					t.Fatal(err)
				}
			}
			buf.Unmap()
		}
	}
	for _, tc := range []struct {
		typ   bdev.IOType
		fail  bool
		stage string
	}{{bdev.IORead, false, "R"}, {bdev.IOWrite, false, "R"}, {bdev.IOWrite, false, "RM"}, {bdev.IOWrite, true, "R"}} {
		ch := chans[tc.stage]
		if tc.fail {
			if err := st.Fail("N2"); err != nil {
				t.Fatal(err)
			}
		}
		var allocs float64
		var failed int
		r.Call(func() {
			lp := stagetest.NewLoop(ch, tc.typ, 4, 8)
			lp.Run(64, nil)
			allocs = testing.AllocsPerRun(100, func() { failed, _ = lp.Run(4, nil) })
			lp.Free()
		})
		if allocs != 0 || failed != 0 {
			t.Errorf("%v on %s (a member failed: %t): %v allocations per 4 IOs (%d failed), want 0", tc.typ, tc.stage, tc.fail, allocs, failed)
		}
	}
}

// TestLiveInsertThenMirror: a replica goes under a live bdev with the old
// back end as its one in-sync member, a second member is added and rebuilt
// while the bdev is open, and then the old back end alone failing loses
// nothing: what an operator does to mirror a volume in service.
func TestLiveInsertThenMirror(t *testing.T) {
	s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 512, 512, "M0", "M1")
	es, err := errinject.New(s.Reg, errinject.Config{Name: "E0", Base: "M0"})
	s.Add(t, es, err)
	g := &mirror{s: s, blocks: 512, shadow: make([]byte, 512*512)}
	g.h = s.Open(t, "E0") // the namespace: opened before the replica exists
	for i := uint64(0); i < 512; i += 64 {
		g.write(t, int(i/64)%2, i, 64, 11+i)
	}
	var st *Stage
	in, err := s.Reg.InsertUnder("E0", "E0.m0", wait, func(base string) (bdev.Backend, error) {
		st, err = New(s.Reg, Config{Name: "E0", Members: []string{base}, RegionSize: 16 << 10})
		return st, err
	})
	if err != nil {
		t.Fatal(err)
	}
	g.st = st
	if in.Base().Name() != "E0.m0" {
		t.Fatal(in.Base().Name())
	}
	if err := st.AddMember("M1"); err != nil {
		t.Fatal(err)
	}
	g.write(t, 0, 100, 20, 99) // while it rebuilds
	if err := st.WaitRebuild(wait); err != nil {
		t.Fatal(err)
	}
	if got := g.states(); got != "E0.m0=in-sync M1=in-sync " {
		t.Fatalf("after the rebuild: %s", got)
	}
	// The old back end is E0's error stage, now under the replica.
	failAll(es)
	g.checkAll(t)
	if got := g.states(); got != "E0.m0=faulty M1=in-sync " {
		t.Fatalf("with the old back end failing: %s", got)
	}
}
