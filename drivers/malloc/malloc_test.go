package malloc

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
)

var seedFlag = flag.Uint64("seed", 0, "metamorphic seed; 0 picks one from the clock")

func seed() uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return uint64(time.Now().UnixNano())
}

// TestMetamorphicModel runs one seeded op stream on malloc (3 reactors) and
// on the reference model with small transfer limits (so the bdev layer
// splits), and wants the same history.
func TestMetamorphicModel(t *testing.T) {
	sd := seed()
	for _, bs := range []uint32{512, 4096} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			const blocks = 512
			ops := bdevtest.Ops(sd, 400, 3, blocks, 48)
			for i := range ops {
				// The model's 5-block transfers would refuse a longer
				// compare-and-write (atomic: never split) where malloc takes it.
				if ops[i].Type == bdev.IOCompareAndWrite {
					ops[i].Blocks = min(ops[i].Blocks, 5)
				}
			}
			s := bdevtest.NewStack(t, 3, reactors.Options{})
			s.Reg.RegisterDriver(Name, Driver{})
			s.Reg.RegisterDriver("model", bdevtest.Model{Info: bdev.Info{MaxTransferBlocks: 5, BoundaryBlocks: 8, MaxUnmapBlocks: 3}})
			for _, d := range []string{Name, "model"} {
				if _, err := s.Reg.Create(bdev.Spec{Name: d, Driver: d, BlockSize: bs, Blocks: blocks}); err != nil {
					t.Fatal(err)
				}
			}
			got := bdevtest.Run(t, s.Open(t, Name), ops)
			want := bdevtest.Run(t, s.Open(t, "model"), ops)
			if testing.Verbose() {
				counts := map[string]int{}
				for _, line := range got {
					counts[line[strings.Index(line, ": ")+2:][:min(10, len(line)-strings.Index(line, ": ")-2)]]++
				}
				t.Logf("outcomes: %v", counts)
			}
			bdevtest.Compare(t, sd, Name, got, "model", want,
				fmt.Sprintf("go test ./drivers/malloc -run 'TestMetamorphicModel/%d' -seed %d", bs, sd))
		})
	}
}

func TestMallocMetadata(t *testing.T) {
	s := bdevtest.NewStack(t, 1, reactors.Options{})
	s.Reg.RegisterDriver(Name, Driver{})
	if _, err := s.Reg.Create(bdev.Spec{Name: "m", Driver: Name, BlockSize: 512, Blocks: 16, MetadataSize: 8}); err != nil {
		t.Fatal(err)
	}
	h := s.Open(t, "m")
	r := s.Set.Get(0)
	md := make([]byte, 4*8)
	back := make([]byte, 4*8)
	for i := range md {
		md[i] = byte(i + 1)
	}
	done := make(chan bdev.Status, 1)
	c := completerFunc(func(io *bdev.IO) { done <- io.Status; io.Free() })
	for _, step := range []struct {
		typ bdev.IOType
		md  []byte
	}{{bdev.IOWrite, md}, {bdev.IORead, back}} {
		r.Call(func() {
			ch, _ := h.Desc.Channel(r)
			io := ch.AllocIO()
			io.Type, io.OffsetBlocks, io.Blocks, io.Completer, io.Metadata = step.typ, 3, 4, c, step.md
			io.SetBuf(h.Buf(0)[:4*512])
			ch.Submit(io)
		})
		if st := <-done; st != bdev.StatusSuccess {
			t.Fatalf("%v with metadata: %v", step.typ, st)
		}
	}
	if string(md) != string(back) {
		t.Fatalf("metadata read back %v, wrote %v", back, md)
	}
}

type completerFunc func(io *bdev.IO)

func (f completerFunc) Complete(io *bdev.IO) { f(io) }

// BenchmarkMallocIO is one 4 KiB IO at a time through the layer to malloc.
func BenchmarkMallocIO(b *testing.B) {
	for _, typ := range []bdev.IOType{bdev.IORead, bdev.IOWrite} {
		b.Run(typ.String(), func(b *testing.B) {
			s := bdevtest.NewStack(b, 1, reactors.Options{Mode: reactors.ModePoll})
			s.Reg.RegisterDriver(Name, Driver{})
			if _, err := s.Reg.Create(bdev.Spec{Name: "m", Driver: Name, BlockSize: 4096, Blocks: 16384}); err != nil {
				b.Fatal(err)
			}
			h := s.Open(b, "m")
			r := s.Set.Get(0)
			n := 0
			c := completerFunc(func(*bdev.IO) { n++ })
			b.ReportAllocs()
			r.Call(func() {
				ch, _ := h.Desc.Channel(r)
				l := ch.Local()
				io := ch.AllocIO()
				io.Type, io.Blocks, io.Completer = typ, 1, c
				io.SetBuf(h.Buf(0)[:4096])
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					io.OffsetBlocks = uint64(i*7919) & 16383
					ch.Submit(io)
					l.Poll()
				}
				b.StopTimer()
				io.Free()
			})
			b.SetBytes(4096)
		})
	}
}
