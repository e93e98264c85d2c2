package bdev_test

import (
	"testing"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
)

func TestIOStatCountsEveryReactor(t *testing.T) {
	s := bdevtest.NewStack(t, 2, reactors.Options{})
	if err := s.Reg.RegisterDriver(malloc.Name, malloc.Driver{}); err != nil {
		t.Fatal(err)
	}
	b, err := s.Reg.Create(bdev.Spec{Name: "M0", Driver: malloc.Name, BlockSize: 512, Blocks: 4096})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Open(t, "M0")
	steps := []struct {
		reactor int
		typ     bdev.IOType
		off, n  uint64
	}{
		{0, bdev.IOWrite, 0, 8}, {1, bdev.IOWrite, 8, 16}, {1, bdev.IORead, 0, 24},
		{0, bdev.IOUnmap, 100, 4}, {0, bdev.IOFlush, 0, 0}, {1, bdev.IORead, 4095, 2}, // past the end
	}
	for _, st := range steps {
		h.Do(t, st.reactor, st.typ, st.off, st.n)
	}
	got, err := s.Reg.IOStat(b)
	if err != nil {
		t.Fatal(err)
	}
	want := bdev.IOStat{
		NumWriteOps: 2, BytesWritten: 24 * 512, NumReadOps: 1, BytesRead: 24 * 512,
		NumUnmapOps: 1, BytesUnmapped: 4 * 512, NumFlushOps: 1, ChannelsCounted: 2,
	}
	// The out-of-range read is refused before admission: not an I/O.
	if got != want {
		t.Fatalf("IOStat =\n %+v\nwant\n %+v", got, want)
	}
}
