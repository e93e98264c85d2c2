package crypto

import (
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/null"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage/stagetest"
)

func benchKey(b *testing.B, bits int) *Key {
	raw := make([]byte, bits/4)
	for i := range raw {
		raw[i] = byte(3*i + 1)
	}
	k, err := NewKey("bench", raw[:len(raw)/2], raw[len(raw)/2:])
	if err != nil {
		b.Fatal(err)
	}
	return k
}

var benchSizes = []struct {
	name   string
	blocks uint64 // of 4 KiB
}{{"4KiB", 1}, {"128KiB", 32}}

// BenchmarkCryptoStack is the crypto stage's throughput on one core over a
// null bdev that leaves buffers untouched: writes encrypt into a pooled
// buffer, reads decrypt in place; a closed loop of 8 on the reactor. MB/s
// is per core; compare with BenchmarkRawXTS, the same cipher without the
// stack.
func BenchmarkCryptoStack(b *testing.B) {
	for _, bits := range []int{128, 256} {
		for _, sz := range benchSizes {
			for _, typ := range []bdev.IOType{bdev.IOWrite, bdev.IORead} {
				b.Run(typ.String()+"-"+sz.name+"-aes"+itoa(bits), func(b *testing.B) {
					s := stagetest.NewStack(b, 1, null.Driver{ReadsUntouched: true}, reactors.Options{Mode: reactors.ModePoll})
					s.Disks(b, 4096, 1<<18, "N0")
					st, err := New(s.Reg, Config{Name: "C0", Base: "N0", Key: benchKey(b, bits)})
					s.Add(b, st, err)
					d, err := s.Reg.Open("C0", true)
					if err != nil {
						b.Fatal(err)
					}
					defer d.Close()
					r := s.Set.Get(0)
					ch := stagetest.Channel(b, r, d)
					b.SetBytes(int64(sz.blocks * 4096))
					b.ReportAllocs()
					var elapsed time.Duration
					r.Call(func() {
						lp := stagetest.NewLoop(ch, typ, 8, sz.blocks)
						lp.Run(32, nil)
						b.ResetTimer()
						start := time.Now()
						lp.Run(b.N, nil)
						elapsed = time.Since(start)
						b.StopTimer()
						lp.Free()
					})
					b.ReportMetric(float64(b.N)/elapsed.Seconds(), "IOPS")
				})
			}
		}
	}
}

// BenchmarkRawXTS is the same key's AES-XTS over the same bytes, block by
// block with tweak = LBA, with no stack around it: on a reactor's thread
// too, over off-heap buffers, so the two differ only by the stack.
func BenchmarkRawXTS(b *testing.B) {
	for _, bits := range []int{128, 256} {
		for _, sz := range benchSizes {
			for _, dir := range []string{"encrypt", "decrypt"} {
				b.Run(dir+"-"+sz.name+"-aes"+itoa(bits), func(b *testing.B) {
					s := stagetest.NewStack(b, 1, null.Driver{}, reactors.Options{Mode: reactors.ModePoll})
					k := benchKey(b, bits).cipher
					region, err := bdev.MapRegion(int(2 * sz.blocks * 4096))
					if err != nil {
						b.Fatal(err)
					}
					defer region.Unmap()
					src, dst := region.Bytes()[:sz.blocks*4096], region.Bytes()[sz.blocks*4096:]
					b.SetBytes(int64(len(src)))
					b.ReportAllocs()
					s.Set.Get(0).Call(func() {
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							for blk := uint64(0); blk < sz.blocks; blk++ {
								s, d := src[blk*4096:(blk+1)*4096], dst[blk*4096:(blk+1)*4096]
								if dir == "encrypt" {
									k.Encrypt(d, s, uint64(i)*sz.blocks+blk)
								} else {
									k.Decrypt(d, d, uint64(i)*sz.blocks+blk)
								}
							}
						}
						b.StopTimer()
					})
				})
			}
		}
	}
}

func itoa(n int) string {
	if n == 128 {
		return "128"
	}
	return "256"
}
