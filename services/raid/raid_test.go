package raid

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

// TestMetamorphic: raid0 and concat over mallocs read back as one malloc of
// their size does, for a seeded stream of every IO type (R1-R3).
func TestMetamorphic(t *testing.T) {
	sd := seed()
	for _, tc := range []struct {
		name  string
		cfg   Config
		bs    uint32
		sizes []uint64
	}{
		{"raid0-512", Config{Level: Raid0, StripSize: 4096}, 512, []uint64{200, 208, 300}},
		{"raid0-4096", Config{Level: Raid0, StripSize: 8192}, 4096, []uint64{100, 100}},
		{"raid0-one", Config{Level: Raid0, StripSize: 512}, 512, []uint64{300}},
		{"concat", Config{Level: Concat}, 512, []uint64{37, 1, 120, 90}},
		{"concat-strips", Config{Level: Concat, StripSize: 2048}, 512, []uint64{37, 64, 120}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
			cfg := tc.cfg
			cfg.Name = "R0"
			for i, n := range tc.sizes {
				name := fmt.Sprintf("M%d", i)
				s.Disks(t, tc.bs, n, name)
				cfg.Bases = append(cfg.Bases, name)
			}
			st, err := New(s.Reg, cfg)
			s.Add(t, st, err)
			s.Metamorphic(t, sd, 400, "R0", 24,
				fmt.Sprintf("go test ./services/raid -run 'TestMetamorphic/%s' -seed %d", tc.name, sd))
		})
	}
}

// TestGeometry: capacity and the Info the layer splits by.
func TestGeometry(t *testing.T) {
	s := stagetest.NewStack(t, 1, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 512, 100, "A")
	s.Disks(t, 512, 90, "B")
	s.Disks(t, 4096, 90, "C")
	st, err := New(s.Reg, Config{Name: "R", Level: Raid0, Bases: []string{"A", "B"}, StripSize: 8192})
	b := s.Add(t, st, err)
	if b.Blocks() != 2*80 || st.Info().BoundaryBlocks != 16 {
		t.Fatalf("raid0 of 100 and 90 blocks, 16-block strips: %d blocks, info %+v", b.Blocks(), st.Info())
	}
	if got := st.Status().(Status); got.StripSizeKB != 8 || got.NumBase != 2 || got.BaseBdevsList[1].DataSize != 80 {
		t.Fatalf("status %+v", got)
	}
	for _, bad := range []Config{
		{Name: "X", Level: "raid5", Bases: []string{"C"}},
		{Name: "X", Level: Raid0, Bases: []string{"C"}, StripSize: 3000},
		{Name: "X", Level: Raid0, Bases: []string{"C"}, StripSize: 2048},
	} {
		if _, err := New(s.Reg, bad); !errors.Is(err, stage.ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", bad, err)
		}
	}
	s.Disks(t, 512, 100, "D")
	s.Disks(t, 4096, 100, "E")
	if _, err := New(s.Reg, Config{Name: "X", Level: Concat, Bases: []string{"D", "E"}}); !errors.Is(err, stage.ErrConfig) {
		t.Errorf("mixed block sizes: %v, want ErrConfig", err)
	}
	// A refused stage releases its bases: D and E open for writing again.
	for _, n := range []string{"D", "E"} {
		d, err := s.Reg.Open(n, true)
		if err != nil {
			t.Fatalf("%s after a refused stage: %v", n, err)
		}
		d.Close()
	}
}

// TestZeroAllocs: a single-strip IO and a fanned-out flush allocate nothing.
func TestZeroAllocs(t *testing.T) {
	s := stagetest.NewStack(t, 1, null.Driver{}, reactors.Options{})
	s.Disks(t, 512, 4096, "N0", "N1", "N2")
	st, err := New(s.Reg, Config{Name: "R", Level: Raid0, Bases: []string{"N0", "N1", "N2"}, StripSize: 4096})
	s.Add(t, st, err)
	d, err := s.Reg.Open("R", true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := s.Set.Get(0)
	ch := stagetest.Channel(t, r, d)
	for _, typ := range []bdev.IOType{bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap} {
		var allocs float64
		var failed int
		r.Call(func() {
			lp := stagetest.NewLoop(ch, typ, 4, 16)
			lp.Run(8, nil)
			allocs = testing.AllocsPerRun(100, func() { failed, _ = lp.Run(4, nil) })
			lp.Free()
		})
		if allocs != 0 || failed != 0 {
			t.Errorf("%v: %v allocations per 4 IOs (%d failed), want 0", typ, allocs, failed)
		}
	}
}
