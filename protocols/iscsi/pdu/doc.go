// Package pdu is the iSCSI wire format (RFC 7143 §11): the 48-byte Basic Header
// Segment with in-place accessors and one view type per opcode, header checks that map
// to Reject reasons, the AHS, CRC32C digests with running values, serial number
// arithmetic for CmdSN/StatSN windows, and an incremental framer for a non-blocking
// event loop.
//
// It is a leaf: it imports only the standard library and knows nothing of sessions,
// sockets, reactors or SCSI. The iSCSI target glue (protocols/iscsi) owns a Framer per
// connection, on the reactor that owns the connection.
//
// A BHS is a fixed array viewed over the receive buffer (BHSOf) and encoded in place
// (InitX, then setters). Offsets are unexported constants named after the RFC fields;
// sizes are exported.
//
// Invariants, cited in comments as P1…P5:
//
//	P1. Nothing in a received header is trusted before Check (and CheckAHS for a SCSI
//	    Command with an AHS). Accessors do no validation; views do not check the opcode.
//	P2. Every header we send is built by an InitX method, which zeroes all 48 bytes
//	    first: reserved fields go out as zero and a reused buffer leaks no stale bytes.
//	    Setters write only their own field (and keep bits the RFC fixes to 1).
//	P3. Digests are CRC32C with a running value starting at 0, stored little endian
//	    (RFC 7143 Appendix B.4); they cover the padding. Pad bytes we send are zero; pad
//	    bytes we receive are digested as received and otherwise ignored.
//	P4. The Framer allocates its buffer once (NewFramer) and nothing per PDU; a PDU
//	    that is buffered in place always fits in that buffer, so compaction never has
//	    to grow it. Only error returns allocate.
//	P5. A *FieldError names the field, its byte offset in the PDU, the bad value and
//	    the rule. Its Reason is the Reject to send; ReasonNone (a header digest error,
//	    or a frame the stream cannot skip) means the connection must be dropped, and
//	    the Framer then returns that error for good.
package pdu
