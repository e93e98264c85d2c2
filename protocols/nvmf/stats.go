package nvmf

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histBuckets latency buckets: bucket i counts latencies in [2^i, 2^(i+1)) ns, bucket 0 also
// [0, 1); 2^38 ns is 4.5 minutes, longer than any command lives.
const histBuckets = 39

// counter is a statistic with one writer, its owner reactor, and readers anywhere: the owner
// adds with a load and a store (no locked read-modify-write on the I/O path), readers load.
type counter struct{ v atomic.Uint64 }

func (c *counter) add(n uint64) { c.v.Store(c.v.Load() + n) }
func (c *counter) sub(n uint64) { c.v.Store(c.v.Load() - n) }
func (c *counter) load() uint64 { return c.v.Load() }

// ioStats are one qpair's counters (SPDK's per-bdev-channel stats, per queue here). Owner: the
// qpair's reactor writes; the debug endpoint and RPCs read from any goroutine.
type ioStats struct {
	readOps, writeOps, otherOps counter
	readBytes, writeBytes       counter
	errors                      counter
	latencySum                  counter // ns, read and write commands
	latency                     [histBuckets]counter
}

// record counts one completed command.
func (s *ioStats) record(op opKind, bytes uint32, failed bool, latency time.Duration) {
	switch op {
	case opRead:
		s.readOps.add(1)
		s.readBytes.add(uint64(bytes))
	case opWrite:
		s.writeOps.add(1)
		s.writeBytes.add(uint64(bytes))
	default:
		s.otherOps.add(1)
	}
	if failed {
		s.errors.add(1)
	}
	if op != opOther {
		ns := uint64(max(latency, 0))
		s.latencySum.add(ns)
		s.latency[latencyBucket(ns)].add(1)
	}
}

// latencyBucket is the histogram bucket of a latency in ns.
func latencyBucket(ns uint64) int {
	i := bits.Len64(ns)
	if i > 0 {
		i--
	}
	return min(i, histBuckets-1)
}

// IOStats is a snapshot of counters: a qpair's, or the sum over a controller's or a
// subsystem's qpairs (retired ones included).
type IOStats struct {
	ReadOps      uint64              `json:"read_ops"`
	WriteOps     uint64              `json:"write_ops"`
	OtherOps     uint64              `json:"other_ops"`
	BytesRead    uint64              `json:"bytes_read"`
	BytesWritten uint64              `json:"bytes_written"`
	Errors       uint64              `json:"errors"`
	LatencySumNS uint64              `json:"latency_sum_ns"`
	Latency      [histBuckets]uint64 `json:"-"`
}

func (s *ioStats) snapshot() IOStats {
	out := IOStats{
		ReadOps: s.readOps.load(), WriteOps: s.writeOps.load(), OtherOps: s.otherOps.load(),
		BytesRead: s.readBytes.load(), BytesWritten: s.writeBytes.load(),
		Errors: s.errors.load(), LatencySumNS: s.latencySum.load(),
	}
	for i := range s.latency {
		out.Latency[i] = s.latency[i].load()
	}
	return out
}

// Add accumulates o into s.
func (s *IOStats) Add(o IOStats) {
	s.ReadOps += o.ReadOps
	s.WriteOps += o.WriteOps
	s.OtherOps += o.OtherOps
	s.BytesRead += o.BytesRead
	s.BytesWritten += o.BytesWritten
	s.Errors += o.Errors
	s.LatencySumNS += o.LatencySumNS
	for i := range s.Latency {
		s.Latency[i] += o.Latency[i]
	}
}

// IOs is the number of read and write commands counted in the histogram.
func (s *IOStats) IOs() uint64 { return s.ReadOps + s.WriteOps }

// LatencyPercentile returns an upper bound of the p-th percentile (0 < p <= 100) of read and
// write latency from the histogram: the top of the bucket it falls in, so at most 2x high.
// Zero when nothing was counted.
func (s *IOStats) LatencyPercentile(p float64) time.Duration {
	var total uint64
	for _, n := range s.Latency {
		total += n
	}
	if total == 0 {
		return 0
	}
	want := uint64(float64(total)*p/100 + 0.5)
	want = max(want, 1)
	var seen uint64
	for i, n := range s.Latency {
		seen += n
		if seen >= want {
			return time.Duration(uint64(1) << (i + 1))
		}
	}
	return time.Duration(uint64(1) << histBuckets)
}

// LatencyMean is the mean read and write latency.
func (s *IOStats) LatencyMean() time.Duration {
	if n := s.IOs(); n > 0 {
		return time.Duration(s.LatencySumNS / n)
	}
	return 0
}
