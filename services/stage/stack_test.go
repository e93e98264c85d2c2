package stage_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
	"github.com/sluice-storage/sluice/services/crypto"
	"github.com/sluice-storage/sluice/services/delay"
	"github.com/sluice-storage/sluice/services/passthru"
	"github.com/sluice-storage/sluice/services/qos"
	"github.com/sluice-storage/sluice/services/raid"
	"github.com/sluice-storage/sluice/services/replica"
	"github.com/sluice-storage/sluice/services/stage/stagetest"
)

const stackBlocks = 768 // 512-byte blocks: three 256-block raid0 legs, or one malloc

func testKey(t testing.TB, name string, bits int) *crypto.Key {
	t.Helper()
	raw := make([]byte, bits/4)
	for i := range raw {
		raw[i] = byte(i*13 + 5)
	}
	k, err := crypto.NewKey(name, raw[:len(raw)/2], raw[len(raw)/2:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// stacks are the stages to compare, each built over fresh mallocs on s and
// returning its top bdev's name. Every top has stackBlocks blocks.
var stacks = []struct {
	name  string
	build func(t *testing.T, s *stagetest.Stack) string
}{
	{"passthru", func(t *testing.T, s *stagetest.Stack) string {
		s.Disks(t, 512, stackBlocks, "M")
		st, err := passthru.New(s.Reg, passthru.Config{Name: "top", Base: "M"})
		s.Add(t, st, err)
		return "top"
	}},
	{"delay", func(t *testing.T, s *stagetest.Stack) string {
		s.Disks(t, 512, stackBlocks, "M")
		cfg := delay.Config{Name: "top", Base: "M"}
		cfg.Latencies[bdev.IORead] = delay.Latency{Avg: 10 * time.Microsecond, P99: 100 * time.Microsecond}
		cfg.Latencies[bdev.IOWrite] = delay.Latency{Avg: 20 * time.Microsecond}
		st, err := delay.New(s.Reg, cfg)
		s.Add(t, st, err)
		return "top"
	}},
	{"qos", func(t *testing.T, s *stagetest.Stack) string {
		s.Disks(t, 512, stackBlocks, "M")
		st, err := qos.New(s.Reg, qos.Config{Name: "top", Base: "M", Limits: qos.Limits{IOPS: 50000, WriteBPS: 20 << 20}})
		s.Add(t, st, err)
		return "top"
	}},
	{"raid0", func(t *testing.T, s *stagetest.Stack) string {
		s.Disks(t, 512, stackBlocks/3, "A", "B", "C")
		st, err := raid.New(s.Reg, raid.Config{Name: "top", Level: raid.Raid0, Bases: []string{"A", "B", "C"}, StripSize: 4096})
		s.Add(t, st, err)
		return "top"
	}},
	{"concat", func(t *testing.T, s *stagetest.Stack) string {
		s.Disks(t, 512, 100, "A")
		s.Disks(t, 512, 300, "B")
		s.Disks(t, 512, stackBlocks-400, "C")
		st, err := raid.New(s.Reg, raid.Config{Name: "top", Level: raid.Concat, Bases: []string{"A", "B", "C"}})
		s.Add(t, st, err)
		return "top"
	}},
	{"replica", func(t *testing.T, s *stagetest.Stack) string {
		s.Disks(t, 512, stackBlocks, "A", "B", "C")
		st, err := replica.New(s.Reg, replica.Config{Name: "top", Members: []string{"A", "B", "C"}, RegionSize: 16 << 10})
		s.Add(t, st, err)
		return "top"
	}},
	{"crypto", func(t *testing.T, s *stagetest.Stack) string {
		s.Disks(t, 512, stackBlocks, "M")
		st, err := crypto.New(s.Reg, crypto.Config{Name: "top", Base: "M", Key: testKey(t, "k", 256)})
		s.Add(t, st, err)
		return "top"
	}},
	{"crypto-replica-raid0", func(t *testing.T, s *stagetest.Stack) string {
		s.Disks(t, 512, stackBlocks/3, "A0", "A1", "A2")
		s.Disks(t, 512, stackBlocks, "B")
		r0, err := raid.New(s.Reg, raid.Config{Name: "R0", Level: raid.Raid0, Bases: []string{"A0", "A1", "A2"}, StripSize: 8192})
		s.Add(t, r0, err)
		rep, err := replica.New(s.Reg, replica.Config{Name: "Rep", Members: []string{"R0", "B"}, RegionSize: 32 << 10})
		s.Add(t, rep, err)
		c, err := crypto.New(s.Reg, crypto.Config{Name: "top", Base: "Rep", Key: testKey(t, "k", 128)})
		s.Add(t, c, err)
		return "top"
	}},
}

// TestMetamorphicStacks runs one seeded op stream on a malloc and on every
// stack and wants the same history from each (STYLE.md's metamorphic test).
// The stream starts by writing zeros everywhere (a block never written reads
// as zeros from malloc, as decrypted zeros through crypto) and writes zeros
// where it would unmap (an unmapped block's content is undefined on an
// encrypting bdev).
func TestMetamorphicStacks(t *testing.T) {
	sd := uint64(time.Now().UnixNano())
	if *seedFlag != 0 {
		sd = *seedFlag
	}
	var ops []bdevtest.Op
	for off := uint64(0); off < stackBlocks; off += 64 {
		ops = append(ops, bdevtest.Op{Type: bdev.IOWriteZeroes, Offset: off, Blocks: 64})
	}
	ops = append(ops, bdevtest.Replace(bdevtest.Ops(sd, 300, 2, stackBlocks, 40), bdev.IOUnmap, bdev.IOWriteZeroes)...)

	ref := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
	ref.Disks(t, 512, stackBlocks, "M")
	want := bdevtest.Run(t, ref.Open(t, "M"), ops)
	for _, sk := range stacks {
		t.Run(sk.name, func(t *testing.T) {
			s := stagetest.NewStack(t, 2, malloc.Driver{}, reactors.Options{})
			top := sk.build(t, s)
			if b, _ := s.Reg.Lookup(top); b.Blocks() != stackBlocks {
				t.Fatalf("%s has %d blocks, want %d", top, b.Blocks(), stackBlocks)
			}
			got := bdevtest.Run(t, s.Open(t, top), ops)
			bdevtest.Compare(t, sd, sk.name, got, "malloc", want,
				fmt.Sprintf("go test ./services/stage -run 'TestMetamorphicStacks/%s' -seed %d", sk.name, sd))
		})
	}
}
