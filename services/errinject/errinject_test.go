package errinject

import (
	"errors"
	"testing"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
	"github.com/sluice-storage/sluice/services/stage"
	"github.com/sluice-storage/sluice/services/stage/stagetest"
)

func setup(t *testing.T, reactorsN int) (*stagetest.Stack, *Stage, *bdevtest.Handle) {
	t.Helper()
	s := stagetest.NewStack(t, reactorsN, malloc.Driver{}, reactors.Options{})
	s.Disks(t, 512, 256, "M0")
	st, err := New(s.Reg, Config{Base: "M0"})
	s.Add(t, st, err)
	if st.Name() != "EE_M0" {
		t.Fatalf("default name %q, want SPDK's EE_M0", st.Name())
	}
	return s, st, s.Open(t, "EE_M0")
}

// TestCount: a rule with Count 3 fails exactly 3 writes over two reactors
// (E2), the failed writes never reach the base (E3), reads pass (E1).
func TestCount(t *testing.T) {
	_, st, h := setup(t, 2)
	if err := st.Inject(Rule{Types: bdev.IOTypesOf(bdev.IOWrite), Count: 3}); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := range 10 {
		bdevtest.Fill(h.Buf(i % 2)[:512], uint64(i+1))
		st, _ := h.Do(t, i%2, bdev.IOWrite, uint64(i), 1)
		if st == bdev.StatusFailed {
			failed++
		} else if st != bdev.StatusSuccess {
			t.Fatalf("write %d: %v", i, st)
		}
	}
	if failed != 3 || st.Injected() != 3 {
		t.Fatalf("%d writes failed, %d injected, want 3", failed, st.Injected())
	}
	// The first three writes failed: blocks 0..2 of the base are still zero.
	for i := range 3 {
		if st, _ := h.Do(t, 0, bdev.IORead, uint64(i), 1); st != bdev.StatusSuccess {
			t.Fatalf("read %d: %v", i, st)
		}
		for _, b := range h.Buf(0)[:512] {
			if b != 0 {
				t.Fatalf("block %d changed by a failed write", i)
			}
		}
	}
	st.Clear(bdev.IOTypesOf(bdev.IOWrite))
	if st, _ := h.Do(t, 1, bdev.IOWrite, 0, 1); st != bdev.StatusSuccess {
		t.Fatalf("write after clear: %v", st)
	}
}

// TestProbability: a seeded probability fails the same IOs on every run, and
// about the share asked for.
func TestProbability(t *testing.T) {
	run := func() []bool {
		_, st, h := setup(t, 1)
		if err := st.Inject(Rule{Types: bdev.IOTypesOf(bdev.IORead), Count: CountUnlimited, Probability: 0.25, Seed: 42}); err != nil {
			t.Fatal(err)
		}
		var out []bool
		for i := range 400 {
			st, _ := h.Do(t, 0, bdev.IORead, uint64(i%256), 1)
			out = append(out, st == bdev.StatusFailed)
		}
		return out
	}
	a, b := run(), run()
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("IO %d failed in one run and not the other: the seed does not fix the draws", i)
		}
		if a[i] {
			n++
		}
	}
	if n < 60 || n > 140 {
		t.Fatalf("%d of 400 reads failed with probability 0.25", n)
	}
}

// TestNVMeAndNoMem: an NVMe status carries its detail; nomem is retried by
// the upper channel until the count runs out, so the IO succeeds.
func TestNVMeAndNoMem(t *testing.T) {
	_, st, h := setup(t, 1)
	nv := bdev.NVMeStatus{SCT: 2, SC: 0x81, DNR: true}
	if err := st.Inject(Rule{Types: bdev.IOTypesOf(bdev.IOFlush), Status: bdev.StatusNVMe, NVMe: nv, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if got, detail := h.Do(t, 0, bdev.IOFlush, 0, 0); got != bdev.StatusNVMe || detail != "nvme "+nv.String() {
		t.Fatalf("flush: %v %s, want nvme %v", got, detail, nv)
	}
	if err := st.Inject(Rule{Types: bdev.IOTypesOf(bdev.IOWrite), Status: bdev.StatusNoResources, Count: 5}); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.Do(t, 0, bdev.IOWrite, 0, 1); got != bdev.StatusSuccess || st.Injected() != 1+5 {
		t.Fatalf("write under nomem: %v after %d injections, want success after 1+5", got, st.Injected())
	}
}

// TestCorrupt: a corrupting rule flips one byte of a read, never the data
// on the base (E4).
func TestCorrupt(t *testing.T) {
	_, st, h := setup(t, 1)
	bdevtest.Fill(h.Buf(0)[:1024], 7)
	want := append([]byte(nil), h.Buf(0)[:1024]...)
	if got, _ := h.Do(t, 0, bdev.IOWrite, 4, 2); got != bdev.StatusSuccess {
		t.Fatal(got)
	}
	if err := st.Inject(Rule{Types: bdev.IOTypesOf(bdev.IORead), Count: 1, CorruptOffset: 700, CorruptValue: 0x5a}); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		clear(h.Buf(0)[:1024])
		if got, _ := h.Do(t, 0, bdev.IORead, 4, 2); got != bdev.StatusSuccess {
			t.Fatal(got)
		}
		for i, b := range h.Buf(0)[:1024] {
			w := want[i]
			if round == 0 && i == 700 {
				w ^= 0x5a
			}
			if b != w {
				t.Fatalf("round %d: byte %d is %#x, want %#x", round, i, b, w)
			}
		}
	}
}

func TestRuleChecks(t *testing.T) {
	_, st, _ := setup(t, 1)
	for _, r := range []Rule{
		{},
		{Types: bdev.IOTypesOf(bdev.IOWrite), Count: -2},
		{Types: bdev.IOTypesOf(bdev.IOWrite), Count: 1, Probability: 1.5},
		{Types: bdev.IOTypesOf(bdev.IOWrite), Count: 1, Status: bdev.StatusSuccess},
		{Types: bdev.IOTypesOf(bdev.IOWrite), Count: 1, CorruptValue: 1},
	} {
		if err := st.Inject(r); err == nil {
			t.Errorf("Inject(%+v) accepted", r)
		}
	}
	if _, err := New(nil, Config{Name: "E"}); !errors.Is(err, stage.ErrConfig) {
		t.Errorf("no base: %v, want ErrConfig", err)
	}
}
