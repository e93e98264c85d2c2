// Package errinject is the fault-injection stage (SPDK's vbdev_error): it
// passes IO to its one base unchanged until told to fail chosen IO types
// with a chosen status, a given number of times or with a seeded
// probability, or to corrupt what chosen reads bring back. Tests put it
// under any stage to prove that stage survives its base failing (a replica
// member, a raid leg); operators use it through bdev_error_inject_error.
//
// # Owners
//
//   - Stage and its rules: the control plane replaces the rule set (Inject,
//     Clear); the set is immutable once published through an atomic
//     pointer, so every reactor reads it without a lock.
//   - channel: one per reactor, owned by it, with its own random generator
//     reseeded from the rule's seed and the reactor's index whenever a new
//     rule set is published, so a seeded run fails the same IOs per reactor.
//   - Counters (remaining failures, injected totals) are atomics shared by
//     every reactor: an injection is rare, so their cost is off the fast path.
//
// # Invariants
//
//	E1. With no rule for its type, an IO goes down as exactly one child and
//	    completes with the child's status (the passthru path, stage S2).
//	E2. A rule with Count n > 0 fails at most n IOs in all, on all reactors
//	    together; Count CountUnlimited fails every matching IO until cleared.
//	E3. An IO failed by a rule never reaches the base: a failed write
//	    changed nothing below.
//	E4. Corruption changes only what a successful read brought back, never a
//	    caller's write buffer.
//
// Imports: services/bdev, services/stage.
package errinject
