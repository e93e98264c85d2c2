// Package passthru is the stage that passes every IO to its one base
// unchanged: SPDK's vbdev_passthru, the smallest stage, the template the
// others follow and the one a benchmark puts in front of a null bdev to
// measure what a stage costs.
//
// Owner: the Stage (its base descriptor) belongs to the control plane; each
// reactor's channel belongs to that reactor and submits children only on
// that reactor's base channel.
//
// Invariants:
//
//	P1. Every upper IO becomes exactly one child on the base, with the same
//	    type, range, data and metadata; the upper IO completes with the
//	    child's status and detail (stage S2).
//	P2. The stage's Info is its base's (stage.Transparent), so the upper
//	    layer splits and emulates as the base's does and a child always fits.
//
// Imports: services/bdev, services/stage.
package passthru
