// Package replica is the N-way mirror stage (raid1 in SPDK's RPC names): every
// write goes to every member that takes writes and completes when all of
// them have; reads are balanced over the members in sync; a member that
// fails is marked faulty and IO goes on with the others; a replacement (or a
// member back from a brief absence) is rebuilt in the background, region by
// region, under range locks, throttled, with its progress on the debug
// endpoint; a dirty-region bitmap kept on a metadata bdev makes a returning
// member's resync copy only what it missed, across a restart.
//
// # Member states
//
//	in-sync     holds every completed write: reads and writes go to it
//	rebuilding  being copied to: writes go to it, reads do not
//	faulty      failed an IO or was failed by the operator: nothing goes to it
//
// Persisted (metadata bdev): in-sync; stale (missed the writes the bitmap
// marks: resync copies those regions); empty (a replacement: copy it all).
//
// # Owners
//
//   - Stage: the control plane for everything under its mutex (member
//     replacement, starting and stopping a rebuild). Member states, descriptors
//     and the bitmap are atomics every reactor reads.
//   - channel: one per reactor, owned by it: the member channels it opened,
//     its pool of write records, the writes waiting for the bitmap to be
//     persisted, and two preallocated messages (ask, done).
//   - The metadata flusher and the rebuilder: the stage's home reactor (the
//     first member's owner), which alone issues metadata and rebuild IO.
//
// # Invariants
//
//	X1. A write completes successfully only when every member it was sent
//	    to has completed it and at least one member in sync when it was sent
//	    has stored it; a member that failed it is faulty before the write
//	    completes.
//	X2. A write that was not stored on some member (skipped because the
//	    member was not taking writes, or failed there) marks its regions
//	    dirty before it completes, and with a metadata bdev the mark (and the
//	    member's state) is persisted before it completes: after a crash the
//	    bitmap covers every region a stale member may have missed.
//	X3. A read is served by an in-sync member; one that fails is retried on
//	    another in-sync member after the first is marked faulty, so a read
//	    fails only when no in-sync member can serve it.
//	X4. A rebuild copies each region it visits from an in-sync member to the
//	    target under a LockWrites range lock of the replica, so no write to
//	    the region runs while it is copied; writes to regions before and
//	    after the cursor reach the target directly (it takes writes). When
//	    the last region is copied the target is in sync.
//	X5. The bitmap is cleared only when every member is in sync; a member
//	    that fails while it is cleared is marked for a full rebuild, since
//	    its regions may have been cleared.
//	X6. Nothing on the submit and complete path allocates: write records
//	    and messages are made with the channel; metadata and rebuild IO use
//	    buffers mapped when they start.
//
// Imports: services/bdev, services/stage, reactors.
package replica
