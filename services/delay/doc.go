// Package delay is the stage that adds latency (SPDK's vbdev_delay): each IO
// goes to its one base unchanged, and its completion is held back by the
// latency set for its IO type before the upper IO completes. One IO in a
// hundred of a type gets that type's p99 latency instead of its average, so
// a benchmark sees a tail. It never sleeps: a held completion waits on a
// per-reactor list that a reactor timer drains.
//
// # Owners
//
//   - Stage: the control plane; latencies are atomics it may change at any
//     time (bdev_delay_update_latency); an IO takes the value current when
//     it is submitted.
//   - channel: one per reactor, owned by it: the held lists (intrusive,
//     through the child IO's CtxRef, so holding allocates nothing), the
//     p99 counter, and the timer, added when the first completion is held
//     and removed after delayTimerLinger without any (a closed loop does not
//     add and remove it per IO; an idle reactor may sleep).
//
// # Invariants
//
//	D1. An upper IO completes no sooner than its latency after its child
//	    completed, measured on the reactor's clock (injected in tests), and
//	    with the child's status and detail (stage S2).
//	D2. Completions held with one latency leave in the order their children
//	    completed: each (type, average or p99) has its own FIFO, whose
//	    deadlines only grow while the latency is unchanged.
//	D3. With a latency of 0 an IO takes the passthru path: no clock read,
//	    no list, no timer.
//	D4. Nothing is held when a channel closes (the bdev layer closes it only
//	    with no IO in flight); holding never allocates.
//
// Imports: services/bdev, services/stage, reactors.
package delay
