package crypto

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
	"github.com/sluice-storage/sluice/services/stage"
	"github.com/sluice-storage/sluice/services/stage/stagetest"
)

const (
	convBS      = 4096
	convRegion  = ConvertRegionSize / convBS // 256 blocks
	convRegions = 10
	convBlocks  = convRegions*convRegion + convRegion + 2
	convData    = convRegions * convRegion
)

// convRig is a malloc holding plaintext and the crypto stage converting it.
type convRig struct {
	s      *stagetest.Stack
	clock  *stagetest.ManualClock
	key    []byte
	st     *Stage
	h      *bdevtest.Handle
	shadow []byte // the plaintext the stage must read back
	from   uint64 // the watermark the last start found (after any replay)
}

func convKey(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// newConvRig fills M0 with plaintext through a plain descriptor.
func newConvRig(t *testing.T) *convRig {
	t.Helper()
	g := &convRig{clock: &stagetest.ManualClock{}, key: convKey(1), shadow: make([]byte, convData*convBS)}
	// One reactor: with a busy-polling one per core, the test goroutine
	// would wait for a CPU.
	g.s = stagetest.NewStack(t, 1, malloc.Driver{}, reactors.Options{Mode: reactors.ModePoll, Clock: g.clock})
	g.s.Disks(t, convBS, convBlocks, "M0")
	bdevtest.Fill(g.shadow, 42)
	h := g.s.Open(t, "M0")
	for off := uint64(0); off < convData; off += 64 {
		copy(h.Buf(0), g.shadow[off*convBS:(off+64)*convBS])
		if st, d := h.Do(t, 0, bdev.IOWrite, off, 64); st != bdev.StatusSuccess {
			t.Fatalf("fill %d: %s", off, d)
		}
	}
	h.Desc.Close()
	return g
}

// start makes the stage, one region per millisecond of the manual clock.
func (g *convRig) start(t *testing.T, key []byte) error {
	t.Helper()
	k := append([]byte(nil), key...)
	kk, err := NewKey("k", k[:16], k[16:])
	if err != nil {
		t.Fatal(err)
	}
	st, err := New(g.s.Reg, Config{Name: "C0", Base: "M0", Key: kk, Convert: true, ConvertRate: ConvertRegionSize * 1000})
	if err != nil {
		return err
	}
	g.from = st.conv.watermark.Load()
	if _, err := stage.Add(g.s.Reg, g.s.List, st); err != nil {
		return err
	}
	g.st = st
	g.h = g.s.Open(t, "C0")
	return nil
}

func (g *convRig) done() uint64 { return g.st.Status().(Status).Conversion.RegionsDone }

// until advances the clock a millisecond at a time until the watermark
// reaches w (at most a bounded number of steps).
func (g *convRig) until(t *testing.T, w uint64) {
	t.Helper()
	for range 2000 {
		if g.done() >= w {
			return
		}
		g.s.Turns(t)
		if g.done() >= w {
			return
		}
		g.clock.Advance(time.Millisecond)
	}
	t.Fatalf("watermark %d, want %d", g.done(), w)
}

// stop ends the stage as a restart would: conversion stopped, stage gone.
func (g *convRig) stop(t *testing.T) {
	t.Helper()
	g.st.StopConversion()
	g.h.Desc.Close()
	if err := stage.Delete(g.s.Reg, g.s.List, "C0"); err != nil {
		t.Fatal(err)
	}
}

// write writes seed's data through the stage and into the shadow.
func (g *convRig) write(t *testing.T, off, n, seed uint64) {
	t.Helper()
	bdevtest.Fill(g.h.Buf(0)[:n*convBS], seed)
	if st, d := g.h.DoIovecs(t, 0, bdev.IOWrite, off, n, 3); st != bdev.StatusSuccess {
		t.Fatalf("write %d+%d: %s", off, n, d)
	}
	copy(g.shadow[off*convBS:], g.h.Buf(0)[:n*convBS])
}

// verify reads everything through the stage (the shadow) and the base raw
// (each block below the watermark encrypted with tweak = LBA, the rest
// plaintext).
func (g *convRig) verify(t *testing.T) {
	t.Helper()
	raw := rawRead(t, g.s, "M0")
	k := keyOf(t, "check", g.key)
	// Wait for the region in flight: between regions a throttled
	// conversion holds still until the clock moves.
	for i := 0; ; i++ {
		if st := g.st.Status().(Status).Conversion.State; st == "throttled" || st == "done" {
			break
		}
		if i == 1000 {
			t.Fatal("the conversion never paused between regions")
		}
		g.s.Turns(t)
	}
	boundary := g.st.conv.boundary()
	for off := uint64(0); off < convData; off += 64 {
		clear(g.h.Buf(0)[:64*convBS])
		if st, d := g.h.Do(t, 0, bdev.IORead, off, 64); st != bdev.StatusSuccess {
			t.Fatalf("read %d: %s", off, d)
		}
		want := g.shadow[off*convBS : (off+64)*convBS]
		if !bytes.Equal(g.h.Buf(0)[:64*convBS], want) {
			t.Fatalf("blocks %d+64 read through the stage differ from what was written (watermark %d)", off, g.done())
		}
		onBase := raw(off, 64)
		for b := uint64(0); b < 64; b++ {
			blk := append([]byte(nil), want[b*convBS:(b+1)*convBS]...)
			if off+b < boundary {
				k.cipher.Encrypt(blk, blk, off+b)
			}
			if !bytes.Equal(onBase[b*convBS:(b+1)*convBS], blk) {
				t.Fatalf("block %d on the base is not %s (watermark %d)", off+b,
					map[bool]string{true: "encrypted", false: "plaintext"}[off+b < boundary], g.done())
			}
		}
	}
}

// TestConvertOnline: a base full of plaintext is encrypted region by region
// while writes go on to regions before, at and after the watermark (C5);
// every block reads back as written, and the base ends all ciphertext.
func TestConvertOnline(t *testing.T) {
	g := newConvRig(t)
	if err := g.start(t, g.key); err != nil {
		t.Fatal(err)
	}
	if got := g.h.Desc.Bdev().Blocks(); got != convData {
		t.Fatalf("stage of %d blocks, want %d (the tail is the journal and record)", got, convData)
	}
	for w := uint64(1); w < convRegions; w += 3 {
		g.until(t, w)
		g.write(t, (w-1)*convRegion+10, 20, 100+w) // encrypted side
		g.write(t, w*convRegion-3, 6, 200+w)       // across the watermark: cut by the layer
		g.write(t, (w+1)*convRegion+7, 9, 300+w)   // plaintext side
		g.verify(t)
	}
	g.until(t, convRegions)
	if err := g.st.WaitConversion(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	g.verify(t)
	if st := g.st.Status().(Status).Conversion; st.State != "done" || st.Percent != 100 {
		t.Fatalf("status %+v", st)
	}
}

// TestConvertResume: a conversion stopped (a restart) resumes at its
// watermark, not at zero, and finishes right.
func TestConvertResume(t *testing.T) {
	g := newConvRig(t)
	if err := g.start(t, g.key); err != nil {
		t.Fatal(err)
	}
	g.until(t, 4)
	g.write(t, 2*convRegion, 8, 5)
	g.stop(t)
	if err := g.start(t, g.key); err != nil {
		t.Fatal(err)
	}
	if g.from != 4 {
		t.Fatalf("resumed at region %d, want 4", g.from)
	}
	g.verify(t)
	g.until(t, convRegions)
	g.verify(t)
}

// TestConvertCrash: a crash in either window of a region's conversion
// leaves it encrypted exactly once after the restart (C6): (1) the
// journal written but the record not yet saying so, (2) the record saying
// journaled and the region half rewritten in place.
func TestConvertCrash(t *testing.T) {
	for _, tc := range []struct {
		name      string
		journaled bool
	}{{"journal-not-recorded", false}, {"half-rewritten", true}} {
		t.Run(tc.name, func(t *testing.T) {
			g := newConvRig(t)
			if err := g.start(t, g.key); err != nil {
				t.Fatal(err)
			}
			g.until(t, 3)
			v := g.st.conv
			rec := v.rec // the home reactor is idle between regions while throttled
			g.stop(t)
			// Forge the crash on the base: journal region 3, maybe the record,
			// and encrypt the first half of region 3 in place.
			d, err := g.s.Reg.Open("M0", true)
			if err != nil {
				t.Fatal(err)
			}
			r := g.s.Set.Get(0)
			region, _ := bdev.MapRegion(ConvertRegionSize)
			defer region.Unmap()
			plain := g.shadow[3*convRegion*convBS : 4*convRegion*convBS]
			copy(region.Bytes(), plain)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(stage.SyncIO(r, d, bdev.IOWrite, convData, convRegion, region.Bytes()))
			if tc.journaled {
				rec.state, rec.journalHash, rec.seq = convJournaled, xxhash.Sum64(plain), rec.seq+1
				blk, _ := bdev.MapRegion(convBS)
				defer blk.Unmap()
				rec.encode(blk.Bytes())
				must(stage.SyncIO(r, d, bdev.IOWrite, convBlocks-2+rec.seq%2, 1, blk.Bytes()))
				k := keyOf(t, "crash", g.key)
				half := region.Bytes()[:convRegion/2*convBS]
				for b := uint64(0); b < convRegion/2; b++ {
					blk := half[b*convBS : (b+1)*convBS]
					k.cipher.Encrypt(blk, blk, 3*convRegion+b)
				}
				must(stage.SyncIO(r, d, bdev.IOWrite, 3*convRegion, convRegion/2, half))
			}
			d.Close()
			if err := g.start(t, g.key); err != nil {
				t.Fatal(err)
			}
			want := uint64(3)
			if tc.journaled {
				want = 4 // replayed from the journal before the stage opened
			}
			if g.from != want {
				t.Fatalf("restarted at region %d, want %d", g.from, want)
			}
			g.verify(t)
			g.until(t, convRegions)
			g.verify(t)
		})
	}
}

// TestConvertWrongKey: a base converted with one key is refused with
// another, not decrypted into noise.
func TestConvertWrongKey(t *testing.T) {
	g := newConvRig(t)
	if err := g.start(t, g.key); err != nil {
		t.Fatal(err)
	}
	g.until(t, 2)
	g.stop(t)
	if err := g.start(t, convKey(9)); !errors.Is(err, ErrKey) {
		t.Fatalf("another key: %v, want ErrKey", err)
	}
}
