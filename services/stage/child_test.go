package stage

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/sluice-storage/sluice/services/bdev"
)

// TestSliceIovecs checks SliceIovecs against copying the same bytes out of
// the flattened iovecs, at every offset and length over random cuts.
func TestSliceIovecs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for round := range 200 {
		var src []bdev.Iovec
		var flat []byte
		for range 1 + rnd.IntN(bdev.IovecsInlineMax) {
			v := make([]byte, 1+rnd.IntN(40))
			for i := range v {
				v[i] = byte(rnd.Uint32())
			}
			src = append(src, v)
			flat = append(flat, v...)
		}
		var io bdev.IO
		for range 20 {
			off := rnd.IntN(len(flat))
			n := rnd.IntN(len(flat) - off + 1)
			if !SliceIovecs(&io, src, uint64(off), uint64(n)) {
				t.Fatalf("round %d: slice %d+%d of %d bytes in %d iovecs refused", round, off, n, len(flat), len(src))
			}
			var got []byte
			for _, v := range io.Iovecs {
				got = append(got, v...)
			}
			if !bytes.Equal(got, flat[off:off+n]) {
				t.Fatalf("round %d: slice %d+%d is not the bytes there", round, off, n)
			}
		}
		if SliceIovecs(&io, src, 0, uint64(len(flat)+1)) {
			t.Fatal("a slice past the end was accepted")
		}
	}
}

// TestFailure: the first failure wins, a miscompare keeps the lowest
// offset, and success is success.
func TestFailure(t *testing.T) {
	var f Failure
	f.Status = bdev.StatusPending
	ok := &bdev.IO{Status: bdev.StatusSuccess}
	f.Note(ok)
	f.NoteMiscompare(700)
	f.NoteMiscompare(300)
	f.Note(&bdev.IO{Status: bdev.StatusFailed})
	if f.Status != bdev.StatusMiscompare || f.miscompare != 300 {
		t.Fatalf("%+v, want a miscompare at 300", f)
	}
	var g Failure
	g.Note(&bdev.IO{Status: bdev.StatusErrno, Errno: 5})
	g.NoteMiscompare(1)
	if g.Status != bdev.StatusErrno || g.errno != 5 {
		t.Fatalf("%+v, want the first failure, errno 5", g)
	}
}

type fakeStage struct{ name, service string }

func (f fakeStage) Name() string    { return f.name }
func (f fakeStage) Service() string { return f.service }
func (f fakeStage) Bases() []string { return []string{"X"} }
func (f fakeStage) Status() any     { return nil }

// TestListRename: a stage keeps its entry when its bdev is renamed under
// an inserted stage, and the debug view shows the bdev names.
func TestListRename(t *testing.T) {
	var l List
	if err := l.Add(fakeStage{"A", "raid0"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Add(fakeStage{"A", "qos"}); err == nil {
		t.Fatal("a second A accepted")
	}
	l.Rename("A", "A.base")
	if err := l.Add(fakeStage{"A", "qos"}); err != nil {
		t.Fatal(err)
	}
	views := l.Source().Snapshot().([]View)
	if len(views) != 2 || views[0].Name != "A.base" || views[0].Service != "raid0" || views[1].Service != "qos" {
		t.Fatalf("views %+v", views)
	}
	l.Remove("A")
	if s, ok := l.Get("A.base"); !ok || s.Service() != "raid0" {
		t.Fatal("A.base lost")
	}
}
