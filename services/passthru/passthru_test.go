package passthru

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

// TestMetamorphic: one seeded op stream on passthru over malloc and on a
// plain malloc reads back alike (P1), with 512- and 4096-byte blocks.
func TestMetamorphic(t *testing.T) {
	sd := seed()
	for _, bs := range []uint32{512, 4096} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
			s.Disks(t, bs, 600, "M0")
			st, err := New(s.Reg, Config{Name: "P0", Base: "M0"})
			s.Add(t, st, err)
			s.Metamorphic(t, sd, 300, "P0", 40,
				fmt.Sprintf("go test ./services/passthru -run 'TestMetamorphic/%d' -seed %d", bs, sd))
		})
	}
}

// TestClaimAndDelete: the base is claimed (S1), so no one else may write
// it and it cannot be deleted; the stage cannot be deleted while open.
func TestClaimAndDelete(t *testing.T) {
	s := stagetest.NewStack(t, 1, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 512, 64, "M0")
	st, err := New(s.Reg, Config{Name: "P0", Base: "M0"})
	s.Add(t, st, err)
	if _, err := s.Reg.Open("M0", true); !errors.Is(err, bdev.ErrClaimed) {
		t.Errorf("open claimed base for writing: %v, want ErrClaimed", err)
	}
	if err := s.Reg.Delete("M0"); !errors.Is(err, bdev.ErrInUse) {
		t.Errorf("delete base under a stage: %v, want ErrInUse", err)
	}
	d, err := s.Reg.Open("P0", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := stage.Delete(s.Reg, s.List, "P0"); !errors.Is(err, bdev.ErrInUse) {
		t.Errorf("delete an open stage: %v, want ErrInUse", err)
	}
	d.Close()
	if err := stage.Delete(s.Reg, s.List, "P0"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.List.Get("P0"); ok {
		t.Error("deleted stage still listed")
	}
	if err := s.Reg.Delete("M0"); err != nil {
		t.Errorf("delete base after its stage: %v", err)
	}
	if _, err := New(s.Reg, Config{Name: "P1", Base: "M9"}); !errors.Is(err, bdev.ErrNotFound) {
		t.Errorf("missing base: %v, want ErrNotFound", err)
	}
	if _, err := New(s.Reg, Config{Name: "P1"}); !errors.Is(err, stage.ErrConfig) {
		t.Errorf("no base: %v, want ErrConfig", err)
	}
}

// TestZeroAllocs: an IO through passthru over null allocates nothing (S5).
func TestZeroAllocs(t *testing.T) {
	s := stagetest.NewStack(t, 1, null.Driver{}, reactors.Options{})
	s.Disks(t, 512, 1<<16, "N0")
	st, err := New(s.Reg, Config{Name: "P0", Base: "N0"})
	s.Add(t, st, err)
	d, err := s.Reg.Open("P0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := s.Set.Get(0)
	ch := stagetest.Channel(t, r, d)
	var allocs float64
	var failed int
	r.Call(func() {
		lp := stagetest.NewLoop(ch, bdev.IOWrite, 1, 8)
		lp.Run(10, nil)
		allocs = testing.AllocsPerRun(200, func() { failed, _ = lp.Run(1, nil) })
		lp.Free()
	})
	if allocs != 0 || failed != 0 {
		t.Errorf("%v allocations per IO (%d failed), want 0", allocs, failed)
	}
}
