// Package null is the null back end: every IO completes at once, nothing is
// stored. It measures the stack (front ends, stages, the bdev layer,
// reactors) with no device in the way, as SPDK's bdev_null does.
//
// Owner: the Backend is control plane; each channel belongs to its reactor
// and keeps no state, so nothing is shared between reactors.
//
// Invariants:
//
//	N1. Every IO completes inside Submit (the bdev layer defers the
//	    completion to its next poll, bdev B2), with StatusSuccess for every
//	    type it lists and never anything else.
//	N2. Reads fill their buffers (and metadata) with zeros, as conf documents,
//	    so a null bdev served to a host never shows it another I/O's data —
//	    unless Driver.ReadsUntouched asks to leave them as they are, which
//	    measures the stack alone, as SPDK's null bdev does.
//
// Imports: services/bdev (and reactors through it).
package null
