// Package scsi is a SCSI block device (SPC-4, SBC-3) emulated on a bdev: the
// logical units a transport exposes, the commands they serve and the state
// SCSI keeps per logical unit and per I_T nexus (unit attentions, SPC-2 and
// persistent reservations, mode parameters, the thin-provisioning map).
//
// It is transport-independent: iSCSI (protocols/iscsi) uses it today and
// vhost-scsi can reuse it. A transport hands a Device a Task that names an
// I_T nexus (a *Nexus from Device.Nexus), the LUN field, the CDB and the
// expected transfer length, and gets back a Progress:
//
//	Start ─► ProgressDone      status, sense and data-in are final now
//	      ─► ProgressDataOut   land Task.DataOut bytes (DataSpan, CopyDataOut), then Resume
//	      ─► ProgressRunning   the bdev works; Completer.TaskDone runs later
//	      ─► ProgressBusy      out of IOs or buffers: nothing changed, Start again later
//	Resume ─► ProgressDone | ProgressRunning
//
// After the transport has sent the response (and the data-in, DataChunk) it
// calls Task.Release, which returns the buffers and the IO to the reactor's
// pools. Residuals are the transport's: Task.DataSize is what the CDB asks
// to move, Task.DataIn what was produced.
//
// # Owner
//
// A Device, its LUNs, its Nexuses and every Task in it belong to one
// reactor: the one whose bdev channel the LUNs were made with. Every
// transport connection that reaches the device runs on that reactor (the
// iSCSI target puts all sessions of a target node there, as SPDK puts all
// connections of a target on one poll group), so reservations, unit
// attentions and mode parameters need no lock. Device.Nexus, NewLUN and
// Device.AddLUN run there too.
//
// # Invariants
//
// Comments cite these by number.
//
//	S1. Every Task that Start or Resume answered ProgressRunning gets exactly
//	    one TaskDone, on the owner reactor, never inside the Start or Resume
//	    call (the bdev layer's B2 carries over: the LUN completes only from a
//	    bdev completion).
//	S2. A task that fails a check never touches the medium: checks run in
//	    SAM-5/SPC-4 order (LUN present, unit attention, CDB, reservation
//	    conflict, readiness, write protection, range and limits) and end in
//	    one status with its sense before any IO is submitted.
//	S3. Buffers and IOs a task holds come from the reactor's bdev pools at
//	    Start (or Resume) and go back exactly once, at Release: the media path
//	    allocates nothing on the Go heap (AllocsPerRun 0 in the tests). A
//	    transfer is up to TransferSizeMax bytes in segments of one large pool
//	    buffer each; every block lies in one segment.
//	S4. Sense data is built in the Task's own array; its length never exceeds
//	    SenseSizeMax, and a CHECK CONDITION always carries sense.
//	S5. COMPARE AND WRITE and ORWRITE are atomic against every other write
//	    to their range, from any reactor: both run under a bdev range lock
//	    (bdev B6), the first through the layer's IOCompareAndWrite.
//	S6. A unit attention is reported once per I_T nexus and LUN, highest
//	    priority first (SPC-4 5.14), and never to INQUIRY, REPORT LUNS or
//	    REQUEST SENSE (which reports it as its sense data and clears it).
//
// # Imports
//
// services/bdev, reactors (through bdev), protocols/scsi/cdb and the
// standard library. Never a transport.
package scsi
