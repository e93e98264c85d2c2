// Package malloc is the RAM-disk back end: the bdev's data lives in one
// off-heap region (bdev.MapRegion: mmap, huge pages when the system has
// them), taken whole when the bdev is created and returned when it closes.
// Reads and writes are copies, so a malloc bdev costs what memmove costs.
//
// Owner: the region belongs to the Backend (control plane: created and
// unmapped there); every reactor's channel copies to and from it. Like a
// real device, two writes to one block from two reactors at once leave one
// of them: ordering overlapping writes is the submitters' business (range
// locks).
//
// Invariants:
//
//	M1. Every IO completes inside Submit (the bdev layer defers the
//	    completion, bdev B2).
//	M2. A block never written, or last unmapped or write-zeroed, reads as
//	    zeros (the region is zeroed by mmap; unmap and write-zeroes clear it).
//	M3. A read returns the last completed write's bytes for every block
//	    (each copy runs whole inside one Submit on one reactor).
//
// Imports: services/bdev (and reactors through it), golang.org/x/sys.
package malloc
