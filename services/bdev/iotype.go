package bdev

import (
	"fmt"
	"strings"
)

// IOType is what an IO asks for. The zero value is invalid, so an IO whose
// Type was never set is refused (StatusInvalid).
type IOType uint8

const (
	IOInvalid IOType = iota
	// IORead reads Blocks blocks at OffsetBlocks into Iovecs.
	IORead
	// IOWrite writes Iovecs to Blocks blocks at OffsetBlocks.
	IOWrite
	// IOFlush makes completed writes in the range durable; Blocks 0 means
	// the whole bdev.
	IOFlush
	// IOUnmap deallocates the range (NVMe Deallocate, SCSI UNMAP); on bdevs
	// whose Info.UnmapZeroes is set, the range then reads as zeros.
	IOUnmap
	// IOWriteZeroes writes zeros to the range without a data buffer.
	IOWriteZeroes
	// IOReset waits for every IO in flight on the bdev (every reactor) and
	// resets the back end; IO admitted meanwhile waits.
	IOReset
	// IOCompare reads the range and compares it with Iovecs: success or
	// StatusMiscompare.
	IOCompare
	// IOCompareAndWrite compares the range with CompareIovecs and, only if
	// equal, writes Iovecs, atomically against other writes (SBC-4 COMPARE
	// AND WRITE, NVMe fused compare+write).
	IOCompareAndWrite

	// IOTypeCount is one past the last type.
	IOTypeCount
)

var ioTypeNames = [IOTypeCount]string{
	IOInvalid:         "invalid",
	IORead:            "read",
	IOWrite:           "write",
	IOFlush:           "flush",
	IOUnmap:           "unmap",
	IOWriteZeroes:     "write-zeroes",
	IOReset:           "reset",
	IOCompare:         "compare",
	IOCompareAndWrite: "compare-and-write",
}

func (t IOType) String() string {
	if t < IOTypeCount {
		return ioTypeNames[t]
	}
	return fmt.Sprintf("IOType(%d)", uint8(t))
}

// Writes reports whether t changes data: the types a range lock holds.
func (t IOType) Writes() bool {
	switch t {
	case IOWrite, IOUnmap, IOWriteZeroes, IOCompareAndWrite:
		return true
	}
	return false
}

// HasData reports whether t moves data through Iovecs.
func (t IOType) HasData() bool {
	switch t {
	case IORead, IOWrite, IOCompare, IOCompareAndWrite:
		return true
	}
	return false
}

// IOTypeSet is a set of IOTypes, as a back end declares what it does.
type IOTypeSet uint16

// Has reports whether t is in s.
func (s IOTypeSet) Has(t IOType) bool { return t < IOTypeCount && s&(1<<t) != 0 }

// With returns s plus ts.
func (s IOTypeSet) With(ts ...IOType) IOTypeSet {
	for _, t := range ts {
		s |= 1 << t
	}
	return s
}

// Fails to compile if a new IOType no longer fits an IOTypeSet.
const _ uint = 16 - uint(IOTypeCount)

func (s IOTypeSet) String() string {
	var names []string
	for t := IORead; t < IOTypeCount; t++ {
		if s.Has(t) {
			names = append(names, t.String())
		}
	}
	return strings.Join(names, ",")
}

// IOTypesOf makes a set.
func IOTypesOf(ts ...IOType) IOTypeSet { return IOTypeSet(0).With(ts...) }
