package bdev

import (
	"fmt"
)

// IOStat counts the I/O a bdev completed, summed over its channels (SPDK's
// bdev_get_iostat). Each channel counts on its own reactor without atomics
// (B4); Registry.IOStat visits every reactor to add them up.
type IOStat struct {
	BytesRead       uint64 `json:"bytes_read"`
	NumReadOps      uint64 `json:"num_read_ops"`
	BytesWritten    uint64 `json:"bytes_written"`
	NumWriteOps     uint64 `json:"num_write_ops"`
	BytesUnmapped   uint64 `json:"bytes_unmapped"`
	NumUnmapOps     uint64 `json:"num_unmap_ops"`
	BytesCopied     uint64 `json:"bytes_copied"`
	NumFlushOps     uint64 `json:"num_flush_ops"`
	NumWriteZeroes  uint64 `json:"num_write_zeroes_ops"`
	NumCompareOps   uint64 `json:"num_compare_ops"`
	NumFailedOps    uint64 `json:"num_failed_ops"`
	NumOtherOps     uint64 `json:"num_other_ops"`
	InFlightNow     uint64 `json:"queue_depth"`
	HeldNow         uint64 `json:"held"`
	ParkedNow       uint64 `json:"parked"`
	ChannelsCounted int    `json:"channels"`
}

// count adds one completed admitted IO; owner only, called from retire.
func (s *IOStat) count(io *IO, shift uint8) {
	if io.Status != StatusSuccess {
		s.NumFailedOps++
		return
	}
	bytes := io.Blocks << shift
	switch io.Type {
	case IORead:
		s.NumReadOps++
		s.BytesRead += bytes
	case IOWrite:
		s.NumWriteOps++
		s.BytesWritten += bytes
	case IOUnmap:
		s.NumUnmapOps++
		s.BytesUnmapped += bytes
	case IOFlush:
		s.NumFlushOps++
	case IOWriteZeroes:
		s.NumWriteZeroes++
		s.BytesWritten += bytes
	case IOCompare, IOCompareAndWrite:
		s.NumCompareOps++
	default:
		s.NumOtherOps++
	}
}

func (s *IOStat) add(o *IOStat) {
	s.BytesRead += o.BytesRead
	s.NumReadOps += o.NumReadOps
	s.BytesWritten += o.BytesWritten
	s.NumWriteOps += o.NumWriteOps
	s.BytesUnmapped += o.BytesUnmapped
	s.NumUnmapOps += o.NumUnmapOps
	s.BytesCopied += o.BytesCopied
	s.NumFlushOps += o.NumFlushOps
	s.NumWriteZeroes += o.NumWriteZeroes
	s.NumCompareOps += o.NumCompareOps
	s.NumFailedOps += o.NumFailedOps
	s.NumOtherOps += o.NumOtherOps
}

// IOStat sums b's counters over every reactor, by a call to each (a
// control-plane read: it waits for the reactors). Call it from a goroutine
// that is not a reactor.
func (reg *Registry) IOStat(b *Bdev) (IOStat, error) {
	var total IOStat
	for j, bc := range b.chans {
		r := reg.set.Get(j)
		var one IOStat
		if err := r.Call(func() {
			one = bc.stat
			one.InFlightNow = uint64(bc.inflight)
			one.HeldNow = uint64(bc.held)
			one.ParkedNow = uint64(bc.parked)
		}); err != nil {
			return IOStat{}, fmt.Errorf("bdev %q iostat on reactor %d: %w", b.name, j, err)
		}
		total.add(&one)
		total.InFlightNow += one.InFlightNow
		total.HeldNow += one.HeldNow
		total.ParkedNow += one.ParkedNow
		total.ChannelsCounted++
	}
	return total, nil
}
