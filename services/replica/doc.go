// Package replica is the N-way mirror stage (raid1 in SPDK's RPC names): every
// write goes to every member that takes writes and completes when all of
// them have; reads are balanced over the members in sync; a member that
// fails is marked faulty and IO goes on with the others; a replacement (or a
// member back from a brief absence) is rebuilt in the background, region by
// region, under range locks, throttled, with its progress on the debug
// endpoint. A dirty-region bitmap kept on a metadata bdev is a write-intent
// bitmap, as Linux md's: a region is marked, and the mark persisted, before
// the first write into it goes to the members, and cleared lazily once it
// has been quiet with every member in sync. So a returning member's resync
// copies only what it missed, and after an unclean shutdown (kill -9, a
// crash) only the regions written in the last seconds are copied from one
// in-sync member to the others: the mirror's write hole closed.
//
// # Member states
//
//	in-sync     holds every completed write: reads and writes go to it
//	rebuilding  being copied to: writes go to it, reads do not
//	faulty      failed an IO or was failed by the operator: nothing goes to it
//
// Persisted (metadata bdev): in-sync; stale (missed the writes the bitmap
// marks: resync copies those regions); empty (a replacement: copy it all);
// and the stage's flag active (running) or clean (stopped by Close).
//
// # Owners
//
//   - Stage: the control plane for everything under its mutex (member
//     replacement, starting and stopping a rebuild). Member states, descriptors
//     and the bitmap are atomics every reactor reads.
//   - channel: one per reactor, owned by it: the member channels it opened,
//     its pool of write records, the writes waiting for the bitmap to be
//     persisted, its count of writes out per epoch (atomics the sweeper
//     reads), and two preallocated messages (ask, done).
//   - The metadata flusher, the sweeper and the rebuilder: the stage's home
//     reactor (the first member's owner), which alone issues metadata and
//     rebuild IO and clears dirty bits.
//
// # Invariants
//
//	X1. A write completes successfully only when every member it was sent
//	    to has completed it and at least one member in sync when it was sent
//	    has stored it; a member that failed it is faulty before the write
//	    completes.
//	X2. Write intent: before a write (write, unmap, write zeroes) is sent
//	    to any member, the regions it touches are marked dirty, and with a
//	    metadata bdev the marks are persisted; the writes that wait share
//	    the flusher's one write in flight and the next. A region already
//	    marked and persisted costs a few atomic operations (the write's
//	    epoch count, its touched and persisted bits) and never waits. A write
//	    not stored on some member (skipped, or failed there) completes only
//	    once that member's state is persisted. So after a crash the bitmap
//	    covers every region where the members may differ: one a write in
//	    flight reached on some members only, and one a stale member missed.
//	X3. A read is served by an in-sync member; one that fails is retried on
//	    another in-sync member after the first is marked faulty, so a read
//	    fails only when no in-sync member can serve it.
//	X4. A rebuild copies each region it visits from an in-sync member to the
//	    target under a LockWrites range lock of the replica, so no write to
//	    the region runs while it is copied; writes to regions before and
//	    after the cursor reach the target directly (it takes writes). When
//	    the last region is copied the target is in sync. A resync copies
//	    the regions the bitmap marked when it started: one marked later was
//	    written to the target too.
//	X5. Lazy clearing: the sweeper (a timer on the home reactor, every
//	    Config.CleanDelay) clears a region's bit only when every member is
//	    in sync, no rebuild or resync runs, and no write entered the region
//	    in this epoch or the last, once every write of the last epoch has
//	    completed (each write counts itself in its channel for its epoch).
//	    A write that enters a region while it is cleared marks it again: it
//	    sets its touched bit before it reads the persisted mark, and the
//	    sweeper clears the mark before it reads the touched bit. So no bit is
//	    clear while a write into its region is out, or while a member that
//	    missed a write there is out of sync; a member failing meanwhile
//	    misses only writes that marked their regions first.
//	X6. Nothing on the submit and complete path allocates: write records
//	    and messages are made with the channel; metadata and rebuild IO use
//	    buffers mapped when they start.
//	X7. Clean and unclean stops: the metadata is written active before the
//	    stage takes its first IO, and clean by Close, after the bdev layer
//	    closed every channel (no write out), with the bitmap cleared when
//	    every member is in sync. A load that finds it active follows an
//	    unclean shutdown: Start resyncs the dirty regions (and only those)
//	    from the first in-sync member to the other in-sync members, each
//	    under the range lock of X4, before it rebuilds a stale member. Until
//	    that resync has finished, a stop stays unclean and the bits stay.
//	    Without a metadata bdev a restart knows nothing of the last run.
//	X8. While that resync runs, a read that touches a dirty region it has
//	    yet to copy is served by the first in-sync member, the resync's
//	    source (md's raid1 reads from its first disk past the resync point
//	    likewise): every read of a block returns the same data, the data
//	    the members will agree on.
//
// Imports: services/bdev, services/stage, reactors.
package replica
