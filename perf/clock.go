package perf

import _ "unsafe" // go:linkname

// nanotime is the runtime's monotonic clock: one vDSO read, about half of
// time.Now (which also reads the wall clock). Read twice per IO.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64
