// Package bdev is Sluice's block-device model: the Bdev, its per-reactor
// Channel, the pooled IO that carries one request down the stack and back,
// the Registry of drivers and bdevs with open and claim, range locks and
// quiesce. It is SPDK's lib/bdev, shaped by ARCHITECTURE.md's ownership rule.
//
// # Owners
//
//   - Registry, Bdev's identity and Desc: the control plane. Open, Claim,
//     Create and Close run on any goroutine that is not a reactor; the
//     registry's mutex guards only these tables, never the I/O path.
//   - Local: the layer's per-reactor state (IO pool, off-heap buffer pools,
//     deferred completions, posts waiting for a full ring). Owner: its
//     reactor; only code running there touches it.
//   - Channel: one per (Desc, reactor), over one shared channel per (Bdev,
//     reactor) that holds the back end's per-reactor state, the in-flight
//     list, the held and no-resources queues and the locks seen there.
//     Owner: that reactor.
//   - Range locks: held by the bdev's owner reactor (Bdev.Owner), which
//     alone reads and writes the bdev's lock list; every other reactor is
//     told by message.
//
// # The flow of one IO
//
// The submitter takes an IO from its reactor's pool (Channel.AllocIO), fills
// Type, OffsetBlocks, Blocks, the iovecs and a Completer (a method on its own
// pooled request: no closure), and calls Channel.Submit. The channel checks
// the request (type, range, length), holds it if a lock or quiesce covers it,
// splits it on the back end's boundaries, and hands it to the back end's
// ChannelBackend.Submit. The back end ends it with IO.Complete (or one of
// the CompleteNVMe/SCSI/Errno variants) on that same reactor. The channel
// then calls the Completer, which reads Status and frees the IO.
//
// An IO crosses to another reactor only by Forward: the IO is itself the
// reactors.Message, submitted on the target channel when delivered and
// posted back to its origin to complete.
//
// For a back end that reads but does not compare, the layer emulates
// IOCompare (a read into a bounce buffer and a memcmp) and IOCompareAndWrite
// (the same under a LockWrites range lock, then the write): see emulate.go.
// Registry.Source shows the bdevs on the debug endpoint.
//
// # Invariants
//
// Comments cite these by number.
//
//	B1. An IO completes exactly once per submission: Complete on an IO that is
//	    not pending panics with the IO's values (always on, O(1)).
//	B2. A completion never runs inside the Submit call that started it: a back
//	    end that completes synchronously has its completion deferred to the
//	    Local poller's next turn, so a closed loop (complete, resubmit) never
//	    recurses, and each poll runs only the completions queued before it.
//	B3. A Completer runs on the reactor whose pool the IO came from, which is
//	    the reactor that submitted it, also when the IO was forwarded.
//	B4. Per-reactor state (Local, channels, a lock's per-reactor visit) is
//	    touched only on its reactor. Between reactors there are messages only.
//	B5. StatusNoResources never reaches the Completer of an IO a Channel
//	    admitted: the channel parks it and resubmits it, in order, when
//	    another IO on that back-end channel completes, or from a retry timer
//	    when none is in flight. Never a spin, never a drop.
//	B6. An IO is admitted (enters the channel's in-flight list) or held, never
//	    both. A lock is granted only when every admitted IO that overlaps it,
//	    admitted on any reactor before the lock reached that reactor, has
//	    completed; from that arrival until release, overlapping writes (all
//	    overlapping IO for a quiesce) that do not carry the lock are held.
//	B7. Overlapping locks are granted one at a time in the order the owner
//	    received them.
//	B8. A message a reactor posts to another that finds the ring full waits in
//	    its Local's FIFO and is retried by the Local poller; later posts from
//	    that reactor queue behind it, so per-producer order (reactors R1)
//	    holds for everything the layer sends.
//	B9. Nothing on the submit and complete path allocates: IOs, buffers and
//	    lock objects are pooled, the completion target is an interface value
//	    holding a pointer, lists are intrusive.
//	B12. Delete removes a bdev only when nothing has it open: an opener that
//	    asked for hot-remove notices (Desc.OnRemove) is told and waited for;
//	    any other opener or a claim makes Delete refuse and change nothing.
//	    From the first notice no Open succeeds.
//
// # Imports
//
// reactors, actors (the debug Source only) and internal packages
// (ARCHITECTURE.md's table), golang.org/x/sys for mmap, github.com/google/uuid.
// Never a driver, a stage or a protocol: they import this package.
// bdevtest, its test helper, is imported by tests only.
package bdev
