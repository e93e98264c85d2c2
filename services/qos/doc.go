// Package qos is the rate-limiting stage: IOPS and bandwidth limits on a
// bdev, as SPDK's bdev_set_qos_limit sets them (rw_ios_per_sec,
// rw_mbytes_per_sec, r_mbytes_per_sec, w_mbytes_per_sec), built as a stage
// so it can be put under a live bdev (services/bdev swap) or declared in the
// topology. IO within the limits passes straight down; IO over them waits in
// its reactor's queue and a reactor timer releases it as tokens return.
//
// # Token buckets
//
// Each limit is a bucket shared by every reactor: an atomic token count, a
// quantum (what one timeslice of qosTimeslice earns) and the timeslice the
// bucket was last refilled in. Refill is lazy: the first reactor to see a
// newer timeslice wins a compare-and-swap of the timeslice and adds a
// quantum per elapsed slice, capped at one quantum, so an idle bdev bursts
// at most one timeslice's worth. An IO is admitted when every bucket it
// draws from has tokens left; it then takes its cost from each, which may
// leave a bucket in debt (a large IO, or two reactors at once) that later
// slices repay. IOPS tokens count thousandths of an IO, so limits under
// 1000 IOPS keep their precision per 1 ms slice.
//
// # Owners
//
//   - Stage and the buckets' quanta: the control plane (SetLimits); the
//     token counts: every reactor, through atomics.
//   - channel: one per reactor, owned by it: two FIFOs of throttled IO
//     (reads; writes and other changes), linked through the child IO's
//     CtxRef, and the release timer, added when IO first waits and removed
//     after qosTimerLinger without any.
//
// # Invariants
//
//	Q1. Over any run of whole timeslices, what a bucket admits is at most
//	    its quantum per slice plus one quantum and one IO (the burst and the
//	    last debt): the rate holds within a timeslice's worth.
//	Q2. Throttled IO of one class leaves its reactor in the order it came;
//	    while IO of a class waits, newer IO of that class waits behind it.
//	Q3. With no limit set an IO takes the passthru path: no clock read, no
//	    bucket, no queue. Flush and reset are never throttled.
//	Q4. Nothing waits when a channel closes (the layer closes it only with
//	    no IO in flight); throttling allocates nothing.
//
// Imports: services/bdev, services/stage, reactors.
package qos
