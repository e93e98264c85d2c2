package null

import (
	"testing"
	"time"

	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

const waitTimeout = 10 * time.Second

// stack starts one reactor, a registry with this driver and a null bdev,
// and opens its channel there.
func stack(t testing.TB, d Driver) (*reactors.Reactor, *bdev.Registry, *bdev.Channel) {
	t.Helper()
	set, err := reactors.Start([]int{0}, reactors.Options{NoPin: true, Mode: reactors.ModePoll})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := bdev.NewRegistry(set, bdev.Options{IOPoolSize: 64, BufSmallCount: 8, BufLargeCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	var desc *bdev.Desc
	t.Cleanup(func() {
		if desc != nil {
			desc.Close()
		}
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
		set.Stop(waitTimeout)
	})
	if err := reg.RegisterDriver(Name, d); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(bdev.Spec{Name: "Null0", Driver: Name, BlockSize: 512, Blocks: 1 << 31}); err != nil {
		t.Fatal(err)
	}
	if desc, err = reg.Open("Null0", true); err != nil {
		t.Fatal(err)
	}
	r := set.Get(0)
	var ch *bdev.Channel
	r.Call(func() { ch, err = desc.Channel(r) })
	if err != nil {
		t.Fatal(err)
	}
	return r, reg, ch
}

// counter is a Completer that keeps its IO for the next round.
type counter struct {
	n      int
	status bdev.Status
}

func (c *counter) Complete(io *bdev.IO) {
	c.n++
	c.status = io.Status
}

// TestNullZeroAllocs: one submit and its completion on the null path make
// no allocation (bdev B9), for reads (zeroing or not) and writes.
func TestNullZeroAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Driver
		typ  bdev.IOType
	}{
		{"read", Driver{}, bdev.IORead},
		{"read-untouched", Driver{ReadsUntouched: true}, bdev.IORead},
		{"write", Driver{}, bdev.IOWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, reg, ch := stack(t, tc.d)
			c := &counter{}
			var allocs float64
			r.Call(func() {
				l := reg.Local(r)
				io := l.AllocIO()
				buf := l.AllocBuf(4096)
				io.Type, io.OffsetBlocks, io.Blocks, io.Completer = tc.typ, 8, 8, c
				io.SetBuf(buf)
				allocs = testing.AllocsPerRun(1000, func() {
					ch.Submit(io)
					l.Poll() // the deferred completion (B2)
				})
				io.Free()
				l.FreeBuf(buf)
			})
			if allocs != 0 || c.n < 1000 || c.status != bdev.StatusSuccess {
				t.Fatalf("%v allocations per IO over %d IOs (last %v), want 0", allocs, c.n, c.status)
			}
		})
	}
}

func TestNullReadsZeroes(t *testing.T) {
	for _, tc := range []struct {
		d    Driver
		want byte
	}{{Driver{}, 0}, {Driver{ReadsUntouched: true}, 0xa5}} {
		r, reg, ch := stack(t, tc.d)
		c := &counter{}
		var got byte
		r.Call(func() {
			l := reg.Local(r)
			io := l.AllocIO()
			buf := l.AllocBuf(1024)
			for i := range buf {
				buf[i] = 0xa5
			}
			io.Type, io.Blocks, io.Completer = bdev.IORead, 2, c
			io.SetBuf(buf)
			ch.Submit(io)
			l.Poll()
			got = buf[1023]
			io.Free()
			l.FreeBuf(buf)
		})
		if c.status != bdev.StatusSuccess || got != tc.want {
			t.Errorf("ReadsUntouched %t: %v, last byte %#x, want success and %#x", tc.d.ReadsUntouched, c.status, got, tc.want)
		}
	}
}

// BenchmarkNullIO is the bdev layer's cost per IO on the null back end:
// Submit, the back end, the deferred completion and the Completer, on the
// reactor, one IO at a time, 4 KiB reads.
func BenchmarkNullIO(b *testing.B) {
	for _, tc := range []struct {
		name string
		d    Driver
	}{{"zeroing", Driver{}}, {"untouched", Driver{ReadsUntouched: true}}} {
		b.Run(tc.name, func(b *testing.B) {
			r, reg, ch := stack(b, tc.d)
			c := &counter{}
			b.ReportAllocs()
			r.Call(func() {
				l := reg.Local(r)
				io := l.AllocIO()
				buf := l.AllocBuf(4096)
				io.Type, io.Blocks, io.Completer = bdev.IORead, 8, c
				io.SetBuf(buf)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					io.OffsetBlocks = uint64(i&1023) * 8
					ch.Submit(io)
					l.Poll()
				}
				b.StopTimer()
				io.Free()
				l.FreeBuf(buf)
			})
		})
	}
}
