// Package raid is the striping stages: raid0 (SPDK's RAID0: strips of
// StripSize dealt round-robin over the bases) and concat (the bases one
// after another). raid1 is not here: a mirror is the replica stage.
//
// The mapping from the stage's blocks to (base, base block) is pure
// (layout.go) and checked against a plain reference at many offsets; the
// stage itself (raid.go) cuts an IO into at most one child per extent.
//
// # Owners
//
//   - Stage and its layout: the control plane makes them; the layout never
//     changes afterwards and every reactor reads it.
//   - channel: one per reactor, owned by it, with its base channels and a
//     pool of fan-out records (an upper IO sent to more than one base),
//     made at channel creation (stage S5).
//
// # Invariants
//
//	R1. Every block of the stage maps to exactly one (base, base block), and
//	    the mapping is one-to-one: raid0's block x is in strip x/strip, on
//	    base (x/strip) mod n, at base strip (x/strip)/n; concat's is on the
//	    first base whose end is past it.
//	R2. A read, write or compare lies in one strip (Info.BoundaryBlocks is
//	    the strip, so the layer splits the rest), or else is cut at strip and
//	    base edges into children that each carry their slice of the data;
//	    an unmap, write-zeroes is cut into one contiguous range per base it
//	    touches; a flush or reset goes to every base.
//	R3. An upper IO completes once, after all its children, with the first
//	    failure (a miscompare at its offset in the upper IO) or success.
//	R4. Out of children or fan-out records, the upper IO completes with
//	    StatusNoResources before any child is sent (stage S4): nothing is
//	    half done.
//
// Imports: services/bdev, services/stage.
package raid
