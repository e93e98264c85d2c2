package perf

import (
	"math"
	"math/bits"
)

// Latency histogram: log-linear buckets, HDR-style. Values below
// histSubCount nanoseconds have a bucket each; above, each power of two is
// cut into histSubCount buckets, so a bucket is at most 1/histSubCount
// (1.6%) of its value wide. A fixed array: recording is a few instructions
// and never allocates (P2).
const (
	histSubBits  = 6
	histSubCount = 1 << histSubBits
	// histShiftMax covers 2^(histShiftMax+histSubBits+1) ns ≈ 38 hours;
	// longer latencies land in the last bucket.
	histShiftMax = 40
	histBuckets  = (histShiftMax + 2) * histSubCount
)

type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    uint64 // ns
	max    uint64 // ns
}

func histBucket(v uint64) int {
	if v < histSubCount {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1 // v>>shift is in [histSubCount, 2*histSubCount)
	if shift > histShiftMax {
		return histBuckets - 1
	}
	return (shift+1)<<histSubBits + int(v>>shift) - histSubCount
}

// histLow is the smallest value of bucket i; histLow(i+1) is one past its
// largest.
func histLow(i int) uint64 {
	if i < histSubCount {
		return uint64(i)
	}
	shift := i>>histSubBits - 1
	return uint64(i&(histSubCount-1)+histSubCount) << shift
}

func (h *histogram) record(ns uint64) {
	h.counts[histBucket(ns)]++
	h.n++
	h.sum += ns
	if ns > h.max {
		h.max = ns
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns a value at quantile q (0..1): the middle of the bucket
// holding the ceil(q*n)-th smallest recording, never above the maximum.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histLow(i), histLow(i+1)
			return math.Min(float64(lo)+float64(hi-lo-1)/2, float64(h.max))
		}
	}
	return float64(h.max)
}

func (h *histogram) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return float64(h.sum) / float64(h.n)
}
