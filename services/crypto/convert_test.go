package crypto

import (
	"bytes"
	"errors"
	"strings"
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
	meta   bool // the journal and record on MD (Config.Metadata): M0 is all data
	st     *Stage
	h      *bdevtest.Handle
	shadow []byte // the plaintext the stage must read back
	from   uint64 // the watermark the last start found (after any replay)
}

// layouts are the two places of the journal and record, for subtests.
var layouts = []struct {
	name string
	meta bool
}{{"tail", false}, {"metadata", true}}

// journal and record say where the rig's journal and record copy A are.
func (g *convRig) journal() (string, uint64) {
	if g.meta {
		return "MD", 2
	}
	return "M0", convData
}

func (g *convRig) record() (string, uint64) {
	if g.meta {
		return "MD", 0
	}
	return "M0", convBlocks - 2
}

func convKey(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// newConvRig fills M0 with plaintext through a plain descriptor; with meta
// M0 is the data alone and MD holds the journal and record.
func newConvRig(t *testing.T, meta bool) *convRig {
	t.Helper()
	g := &convRig{clock: &stagetest.ManualClock{}, key: convKey(1), meta: meta, shadow: make([]byte, convData*convBS)}
	// One reactor: with a busy-polling one per core, the test goroutine
	// would wait for a CPU. The RAM driver does no native compare, as
	// uring does not: a shaped stage then describes itself as its base.
	g.s = stagetest.NewStack(t, 1, noCompare{}, reactors.Options{Mode: reactors.ModePoll, Clock: g.clock})
	if meta {
		g.s.Disks(t, convBS, convData, "M0")
		g.s.Disks(t, convBS, convRegion+2, "MD")
	} else {
		g.s.Disks(t, convBS, convBlocks, "M0")
	}
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

// noCompare is the malloc driver without its native compare (the layer
// emulates it), as uring is.
type noCompare struct{}

func (noCompare) Create(spec bdev.Spec) (bdev.Backend, error) {
	b, err := malloc.Driver{}.Create(spec)
	return noCompareBackend{b}, err
}

type noCompareBackend struct{ bdev.Backend }

func (b noCompareBackend) Info() bdev.Info {
	i := b.Backend.Info()
	i.IOTypes &^= bdev.IOTypesOf(bdev.IOCompare)
	return i
}

// config is the stage's configuration: one region per millisecond of the
// manual clock.
func (g *convRig) config(t *testing.T, key []byte) Config {
	t.Helper()
	k := append([]byte(nil), key...)
	kk, err := NewKey("k", k[:16], k[16:])
	if err != nil {
		t.Fatal(err)
	}
	c := Config{Name: "C0", Base: "M0", Key: kk, Convert: true, ConvertRate: ConvertRegionSize * 1000}
	if g.meta {
		c.Metadata = "MD"
	}
	return c
}

// start makes the stage.
func (g *convRig) start(t *testing.T, key []byte) error {
	t.Helper()
	st, err := New(g.s.Reg, g.config(t, key))
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
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			g := newConvRig(t, l.meta)
			if err := g.start(t, g.key); err != nil {
				t.Fatal(err)
			}
			if got := g.h.Desc.Bdev().Blocks(); got != convData {
				t.Fatalf("stage of %d blocks, want %d (the data, without journal and record)", got, convData)
			}
			for w := uint64(1); w < convRegions; w += 3 {
				g.until(t, w)
				g.write(t, (w-1)*convRegion+10, 20, 100+w) // encrypted side
				g.write(t, w*convRegion-3, 6, 200+w)       // across the watermark: cut by the layer, or not (shaped)
				g.write(t, (w+1)*convRegion+7, 9, 300+w)   // plaintext side
				g.verify(t)
			}
			g.until(t, convRegions)
			if err := g.st.WaitConversion(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			g.verify(t)
			if st := g.st.Status().(Status).Conversion; st.State != "done" || st.Percent != 100 || st.ResumedFrom != 0 {
				t.Fatalf("status %+v", st)
			}
			g.journalZero(t, "after the conversion")
			// A crash after the last record but before the wipe: the
			// restart wipes the journal (C9).
			g.stop(t)
			g.forgeCrash(t, record{}, false) // plaintext into the journal only
			if err := g.start(t, g.key); err != nil {
				t.Fatal(err)
			}
			g.journalZero(t, "after a restart found plaintext there")
		})
	}
}

// journalZero fails unless the journal is all zeros (C9).
func (g *convRig) journalZero(t *testing.T, when string) {
	t.Helper()
	name, at := g.journal()
	if b := rawRead(t, g.s, name)(at, convRegion/4); !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatalf("%s: the journal on %s holds data, want zeros", when, name)
	}
	if b := rawRead(t, g.s, name)(at+convRegion-convRegion/4, convRegion/4); !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatalf("%s: the journal's end on %s holds data, want zeros", when, name)
	}
}

// TestConvertResume: a conversion stopped (a restart) resumes at its
// watermark, not at zero, and finishes right.
func TestConvertResume(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			g := newConvRig(t, l.meta)
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
			if st := g.st.Status().(Status).Conversion; st.ResumedFrom != 4 || st.Replayed {
				t.Fatalf("status %+v, want resumed from 4 without a replay", st)
			}
			g.verify(t)
			g.until(t, convRegions)
			g.verify(t)
		})
	}
}

// TestConvertCrash: a crash in either window of a region's conversion
// leaves it encrypted exactly once after the restart (C6): (1) the
// journal written but the record not yet saying so, (2) the record saying
// journaled and the region half rewritten in place; with the journal and
// record in the base's tail, and on a metadata bdev.
func TestConvertCrash(t *testing.T) {
	for _, l := range layouts {
		for _, tc := range []struct {
			name      string
			journaled bool
		}{{"journal-not-recorded", false}, {"half-rewritten", true}} {
			t.Run(l.name+"/"+tc.name, func(t *testing.T) {
				g := newConvRig(t, l.meta)
				if err := g.start(t, g.key); err != nil {
					t.Fatal(err)
				}
				g.until(t, 3)
				v := g.st.conv
				rec := v.rec // the home reactor is idle between regions while throttled
				g.stop(t)
				g.forgeCrash(t, rec, tc.journaled)
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
				if st := g.st.Status().(Status).Conversion; st.Replayed != tc.journaled {
					t.Fatalf("status %+v, want replayed_journal %v", st, tc.journaled)
				}
				g.verify(t)
				g.until(t, convRegions)
				g.verify(t)
			})
		}
	}
}

// forgeCrash writes on the rig's bdevs what a crash in region 3 leaves:
// its plaintext journaled, and with journaled the record saying so and the
// first half of the region encrypted in place.
func (g *convRig) forgeCrash(t *testing.T, rec record, journaled bool) {
	t.Helper()
	r := g.s.Set.Get(0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var opened []*bdev.Desc
	defer func() { // before the stage claims them again
		for _, d := range opened {
			d.Close()
		}
	}()
	open := func(name string) *bdev.Desc {
		d, err := g.s.Reg.Open(name, true)
		must(err)
		opened = append(opened, d)
		return d
	}
	region, _ := bdev.MapRegion(ConvertRegionSize)
	defer region.Unmap()
	plain := g.shadow[3*convRegion*convBS : 4*convRegion*convBS]
	copy(region.Bytes(), plain)
	jname, jat := g.journal()
	must(stage.SyncIO(r, open(jname), bdev.IOWrite, jat, convRegion, region.Bytes()))
	if !journaled {
		return
	}
	rec.state, rec.journalHash, rec.seq = convJournaled, xxhash.Sum64(plain), rec.seq+1
	blk, _ := bdev.MapRegion(convBS)
	defer blk.Unmap()
	rec.encode(blk.Bytes())
	rname, rat := g.record()
	must(stage.SyncIO(r, open(rname), bdev.IOWrite, rat+rec.seq%2, 1, blk.Bytes()))
	k := keyOf(t, "crash", g.key)
	half := region.Bytes()[:convRegion/2*convBS]
	for b := uint64(0); b < convRegion/2; b++ {
		blk := half[b*convBS : (b+1)*convBS]
		k.cipher.Encrypt(blk, blk, 3*convRegion+b)
	}
	must(stage.SyncIO(r, open("M0"), bdev.IOWrite, 3*convRegion, convRegion/2, half))
}

// TestConvertWrongKey: a base converted with one key is refused with
// another, not decrypted into noise.
func TestConvertWrongKey(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			g := newConvRig(t, l.meta)
			if err := g.start(t, g.key); err != nil {
				t.Fatal(err)
			}
			g.until(t, 2)
			g.stop(t)
			if err := g.start(t, convKey(9)); !errors.Is(err, ErrKey) {
				t.Fatalf("another key: %v, want ErrKey", err)
			}
		})
	}
}

// TestConvertShaped: with a metadata bdev the stage is its base's size and
// Info (C8); a write larger than a pooled buffer goes down in pieces, one
// across the watermark is encrypted only below it; unmap and write-zeroes
// reach the base as they are and read back as zeros, on both sides of the
// watermark.
func TestConvertShaped(t *testing.T) {
	g := newConvRig(t, true)
	if err := g.start(t, g.key); err != nil {
		t.Fatal(err)
	}
	base, _ := g.s.Reg.Lookup("M0")
	top := g.h.Desc.Bdev()
	if top.Blocks() != base.Blocks() || g.st.Info() != base.Info() {
		t.Fatalf("stage %d blocks %+v, base %d %+v: want the same", top.Blocks(), g.st.Info(), base.Blocks(), base.Info())
	}
	if top.Info().MaxTransferBlocks != 0 {
		t.Fatalf("max transfer %d blocks: want none, as the base", top.Info().MaxTransferBlocks)
	}
	g.until(t, 3)
	big := uint64(bdevtest.BufSize / convBS) // two pooled buffers' worth
	g.write(t, 3*convRegion-big/2, big, 7)   // half encrypted, half plaintext, in pieces
	g.write(t, convRegion+5, big, 8)
	for _, z := range []struct {
		typ      bdev.IOType
		off, len uint64
	}{{bdev.IOUnmap, 10, 7}, {bdev.IOWriteZeroes, 2*convRegion + 1, 30}, {bdev.IOUnmap, 6 * convRegion, 3},
		{bdev.IOWriteZeroes, 3*convRegion - 2, 4}} {
		if st, d := g.h.Do(t, 0, z.typ, z.off, z.len); st != bdev.StatusSuccess {
			t.Fatalf("%v %d+%d: %s", z.typ, z.off, z.len, d)
		}
		clear(g.shadow[z.off*convBS : (z.off+z.len)*convBS])
	}
	raw := rawRead(t, g.s, "M0")
	if b := raw(2*convRegion+1, 30); !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("write-zeroes below the watermark did not reach the base as zeros")
	}
	g.verifyReads(t)
	g.until(t, convRegions)
	g.verifyReads(t)
	// Converted, the zeros above the watermark are ciphertext now; those
	// below are still zeros on the base: both read as zeros.
	if b := raw(10, 7); !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("an unmapped range below the watermark was rewritten")
	}
	if b := raw(6*convRegion, 3); bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("the conversion left plaintext zeros")
	}
}

// verifyReads reads everything through the stage and compares it with the
// shadow (verify does the base too, for data without zeros).
func (g *convRig) verifyReads(t *testing.T) {
	t.Helper()
	for off := uint64(0); off < convData; off += 64 {
		if st, d := g.h.Do(t, 0, bdev.IORead, off, 64); st != bdev.StatusSuccess {
			t.Fatalf("read %d: %s", off, d)
		}
		if !bytes.Equal(g.h.Buf(0)[:64*convBS], g.shadow[off*convBS:(off+64)*convBS]) {
			t.Fatalf("blocks %d+64 read through the stage differ from what was written (watermark %d)", off, g.done())
		}
	}
}

// TestConvertInsertUnder: a shaped stage goes under a live bdev holding
// plaintext (bdev B10: its geometry and Info stay), the writer's
// descriptor kept; the conversion runs while it writes, and the bdev ends
// reading as written with its old back end all ciphertext. A second
// insertion with the same metadata bdev is refused (its record is
// another conversion's), as is a metadata bdev too small.
func TestConvertInsertUnder(t *testing.T) {
	g := newConvRig(t, true)
	g.h = g.s.Open(t, "M0") // a namespace's descriptor, open through the swap
	info := g.h.Desc.Bdev().Info()
	insert := func(md string) (*Stage, error) {
		var st *Stage
		_, err := g.s.Reg.InsertUnder("M0", "M0.base", 10*time.Second, func(base string) (bdev.Backend, error) {
			c := g.config(t, g.key)
			c.Base, c.Name, c.Metadata, c.ConvertFresh = base, "M0", md, true
			s, err := New(g.s.Reg, c)
			st = s
			return s, err
		})
		return st, err
	}
	g.s.Disks(t, convBS, convRegion+1, "MDsmall")
	if _, err := insert("MDsmall"); !errors.Is(err, stage.ErrConfig) {
		t.Fatalf("a metadata bdev of %d blocks: %v, want ErrConfig", convRegion+1, err)
	}
	st, err := insert("MD")
	if err != nil {
		t.Fatal(err)
	}
	g.st = st
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	if b := g.h.Desc.Bdev(); b.Blocks() != convData || b.Info() != info {
		t.Fatalf("after the insertion %d blocks %+v, want %d %+v", b.Blocks(), b.Info(), convData, info)
	}
	for w := uint64(2); w < convRegions; w += 4 {
		g.until(t, w)
		g.write(t, w*convRegion-5, 10, 400+w)
		g.verifyReads(t)
	}
	g.until(t, convRegions)
	if err := st.WaitConversion(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	g.verifyReads(t)
	raw := rawRead(t, g.s, "M0.base")
	k := keyOf(t, "check", g.key)
	for off := uint64(0); off < convData; off += 64 {
		got := raw(off, 64)
		for b := uint64(0); b < 64; b++ {
			blk := append([]byte(nil), g.shadow[(off+b)*convBS:(off+b+1)*convBS]...)
			k.cipher.Encrypt(blk, blk, off+b)
			if !bytes.Equal(got[b*convBS:(b+1)*convBS], blk) {
				t.Fatalf("block %d of the old back end is not the ciphertext of what was written", off+b)
			}
		}
	}
	st.StopConversion()

	// MD has a done record now: a new insertion over plaintext refuses it.
	g.s.Disks(t, convBS, convData, "M1")
	c := g.config(t, g.key)
	c.Name, c.Base, c.ConvertFresh = "C1", "M1", true
	g.s.Disks(t, convBS, convRegion+2, "MD2")
	stop := func(s *Stage) {
		if err := stage.Delete(g.s.Reg, nil, s.Name()); err != nil {
			t.Fatal(err)
		}
	}
	c.Metadata = "MD2"
	s1, err := New(g.s.Reg, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stage.Add(g.s.Reg, nil, s1); err != nil {
		t.Fatal(err)
	}
	s1.StopConversion()
	stop(s1) // MD2 has a record now
	if _, err := New(g.s.Reg, c); !errors.Is(err, ErrRecord) || !strings.Contains(err.Error(), "MD2") {
		t.Fatalf("a fresh conversion over a used metadata bdev: %v, want ErrRecord naming MD2", err)
	}
	c.ConvertFresh = false // a restart: the record is resumed
	s2, err := New(g.s.Reg, c)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

// TestConvertConfig: the metadata bdev's rules, each error naming the
// field and value.
func TestConvertConfig(t *testing.T) {
	g := newConvRig(t, true)
	g.s.Disks(t, 512, convRegion+2, "MD512")
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"metadata without convert", func(c *Config) { c.Convert = false }, `metadata "MD" without convert`},
		{"metadata is the base", func(c *Config) { c.Metadata = "M0" }, `"M0" given twice`},
		{"other block size", func(c *Config) { c.Metadata = "MD512" }, `"MD512" has 512-byte blocks`},
		{"no such bdev", func(c *Config) { c.Metadata = "MDX" }, `MDX`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := g.config(t, g.key)
			tc.edit(&c)
			st, err := New(g.s.Reg, c)
			if err == nil {
				st.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want it to say %s", err, tc.want)
			}
		})
	}
}
