// Package iscsi is the iSCSI target (RFC 7143): portal groups that listen,
// initiator groups that admit, auth groups that hold CHAP secrets, target
// nodes whose LUNs are bdevs served by protocols/scsi, and the sessions and
// connections between them. It is SPDK's lib/iscsi on Sluice's reactors.
//
// # Owners
//
//   - Server: the control plane. Its methods (AddPortalGroup, AddNode, …)
//     run on goroutines that are not reactors; its mutex guards only the
//     tables. What a reactor reads of them (targets, access, secrets) is an
//     immutable snapshot behind an atomic pointer, so no reactor takes it.
//   - portal: a listening socket, polled by one reactor (its owner), which
//     accepts connections and runs their logins.
//   - Node: a target node. Owner: the reactor it was given at creation; its
//     scsi.Device, its LUNs, its sessions and every connection in Full
//     Feature Phase to it run there (as SPDK puts a target's connections on
//     one poll group), so reservations and unit attentions need no lock.
//   - Conn: one TCP connection, owned by one reactor at a time: the portal's
//     while it logs in (and for a discovery session), then its node's. It
//     moves once, by a message, with nothing in flight. Its socket is
//     non-blocking (x/sys/unix); one poller per connection reads, frames
//     (pdu.Framer) and writes (writev); no goroutine per connection.
//
// # Invariants
//
// Comments cite these by number.
//
//	I1. A connection's PDUs are handled in arrival order on its owner
//	    reactor; responses leave in the order their StatSN was assigned (the
//	    send queue is FIFO and StatSN is taken when a response is queued).
//	I2. A non-immediate command is executed only when its CmdSN equals
//	    ExpCmdSN; CmdSNs outside [ExpCmdSN, MaxCmdSN] are dropped silently
//	    (RFC 7143 §4.2.2.1). MaxCmdSN never decreases and never promises
//	    more commands than there are free command slots.
//	I3. A command's data buffer is the scsi.Task's (off-heap, from the bdev
//	    pool): immediate data and Data-Out land in it directly when they fit
//	    (pdu.Framer.LandData), Data-In is written from it (writev). It is
//	    released exactly once, after the last byte referring to it was sent
//	    or the command was aborted.
//	I4. Data-Out is accepted only in order: the expected DataSN, the next
//	    buffer offset, inside the burst an R2T asked for (or the first burst
//	    for unsolicited data). Anything else is rejected and ends the command
//	    without a response.
//	I5. A task management response is sent only after every task it
//	    aborted has left the bdev; aborted tasks get no response.
//	I6. A connection is freed only when none of its tasks is at the bdev:
//	    teardown waits for their completions (the poller keeps running).
//	I6a. A LUN removed with its bdev (hot remove) takes no new command from
//	    the moment it leaves the device; its bdev is closed only once no task
//	    started on it is left on any connection (Task.Holds), so nothing
//	    sends IO to a closed channel.
//	I7. Nothing on the Full Feature Phase path allocates: commands, their
//	    PDU headers and iovecs are preallocated per connection; login,
//	    discovery, text and task management may.
//
// # Imports
//
// protocols/iscsi/pdu, protocols/iscsi/login, protocols/scsi,
// protocols/scsi/cdb, services/bdev, reactors, actors (the debug Source),
// golang.org/x/sys/unix.
package iscsi
