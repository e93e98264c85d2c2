// Package cdb decodes SCSI Command Descriptor Blocks for the SPC-4 and SBC-3 commands a
// block target serves, parses the UNMAP and PERSISTENT RESERVE OUT parameter lists, and
// builds sense data (fixed 70h/71h and descriptor 72h/73h formats) into a caller's
// buffer. It names SCSI statuses, sense keys and additional sense codes.
//
// It is a leaf: standard library only, no logical-unit state. protocols/scsi runs the
// commands against a bdev; protocols/iscsi carries CDBs and sense data. Everything here
// runs on the reactor that owns the I/O.
//
// Invariants, cited in comments as C1…C4:
//
//	C1. Parse never trusts the CDB: every byte it reads is within the CDB length implied
//	    by the operation code's group (Size), and a shorter CDB is rejected first.
//	C2. A rejected command carries the sense that SPC-4 requires: INVALID COMMAND
//	    OPERATION CODE for an unknown opcode, INVALID FIELD IN CDB with SKSV, C/D = 1,
//	    the byte and (for a bit field) the most significant bit of the field for a bad
//	    field or an unsupported service action, and field pointers with C/D = 0 into
//	    the parameter list for parameter data.
//	C3. Parse does not allocate, accepted or rejected: CDB errors are preallocated and
//	    shared (*Error is immutable). Parameter-list errors may allocate (control path).
//	C4. Sense builders write only into the caller's buffer, zero every byte they cover
//	    first, and return 0 rather than a partial encoding when it is too short.
package cdb
