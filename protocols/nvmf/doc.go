// Package nvmf is the transport-independent half of the NVMe-over-Fabrics target (NVMe-oF 1.1;
// SPDK's lib/nvmf without its transports): the Target with its subsystems and the discovery
// subsystem, controllers as state machines over the fabrics properties (CC, CSTS), keep-alive,
// asynchronous events and features, the admin command set a fabrics controller answers, the
// glue from NVM I/O commands to bdev.IO, the discovery log, and statistics. A Transport (NVMe/TCP
// in protocols/nvmf/tcp; RDMA later) carries capsules and data and hands each command to a Qpair.
//
// # Owners
//
//   - Target, Subsystem (identity, hosts, listeners, controller table) and the Transport
//     methods: the control plane. RPCs and the daemon call them from goroutines that are not
//     reactors (T1).
//   - PollGroup: one per reactor, owned by it: the qpairs placed there, commands parked for a
//     bdev.IO, counters.
//   - Qpair: owned by the reactor of its connection, for life; the transport calls Exec,
//     Closing and Closed there.
//   - Controller: owned by its admin qpair's reactor (C1).
//   - Namespace: identity fixed at attachment; slots[i] owned by reactor i (N1).
//
// # A command's path
//
// The transport decodes a capsule into a Request (its own array, made at connection setup),
// fetches the data (in capsule, or by R2T/H2CData into a pool buffer) and calls Qpair.Exec. A
// fabrics command (Connect, Property Get/Set, Disconnect) runs in the qpair; an admin command
// on the controller; an I/O command goes through the ordered checks of SPDK's
// nvmf_ctrlr_process_io_cmd (controller enabled, fused, namespace, range, length) to a bdev.IO on
// the namespace's channel of this reactor. Its completion (Request.Complete, the bdev
// Completer) translates bdev.Status with ioStatus, the one translator, and hands the Request back
// through QpairOps.Complete, which sends data and response.
//
// Imports: services/bdev, reactors, actors (the debug Source), protocols/nvme and the standard
// library, github.com/google/uuid and golang.org/x/sys (ARCHITECTURE.md's table). Never a
// driver, never a transport: transports import this package.
//
// # Invariants
//
//	T1. Target, Subsystem and Transport methods run on the control plane; they may wait for
//	    reactors (Call, a drain), reactors never wait for them. Reactors reach the target only
//	    through Qpair and the lock-free tables (S1).
//	T2. An I/O command takes no lock and allocates nothing from Exec to Complete: the namespace
//	    table is an atomic load, counters have one writer (load and store), the bdev.IO comes
//	    from the reactor's pool, and an empty pool parks the command in its PollGroup, retried in
//	    order (backpressure, never a drop).
//	T3. Every Request given to Qpair.Exec or Qpair.Fail comes back through QpairOps.Complete
//	    exactly once, on the qpair's reactor; Qpair.outstanding counts them and Closed panics
//	    unless it is zero.
//	C1. Only the admin qpair's reactor touches a Controller's state: properties, KATO timer,
//	    AERs and events, features, error log, the I/O qpair table.
//	C2. I/O qpairs on other reactors read only Controller.enabled (atomic); they join by a
//	    message to the controller's reactor (addIOQpair), which answers by a message, and leave
//	    the same way (removeIOQpair). Messages between two reactors arrive in order (reactors R1),
//	    so a qpair told to disconnect has been told it connected first.
//	C3. After destroy no command runs on the controller, every held AER has completed, every
//	    qpair has been asked to disconnect; its CNTLID is freed only once the admin and every I/O
//	    qpair have Closed, so no Connect can find a half-gone controller under a reused ID.
//	C4. At most aerOutstandingMax AERs are held; an event is reported once per log page until
//	    the host reads that page without RAE (NVMe Base 2.0, "Asynchronous Events").
//	N1. Namespace.slots[i] (channel, commands holding the namespace) is touched by reactor i only.
//	N2. removed is set before a namespace leaves its subsystem's table, and its descriptor is
//	    closed only once every reactor's slot count is zero: no IO is submitted on a closed
//	    descriptor, and every command that held the namespace has completed. Deleting the
//	    bdev (SPDK's hot remove, bdev B12) removes the namespace the same way, with the notice.
//	S1. A subsystem's namespace table and the target's subsystem table are immutable once
//	    published; writers replace them whole under the control-plane lock.
//	S2. Subsystem.mu and Target.mu are never held across a wait, a Call or a message; a reactor
//	    takes Subsystem.mu only to connect, to tear down, or to count.
//	S3. Every change the discovery log shows (a subsystem, listener or host) bumps the generation
//	    counter and raises the discovery notice on discovery controllers that asked for it.
package nvmf
