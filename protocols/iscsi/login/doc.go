// Package login is the target side of iSCSI login (RFC 7143 §6, §12, §13): the text
// key=value format and its C-bit reassembly, a pure state machine that negotiates
// security (AuthMethod None or CHAP with MD5, SHA-1 or SHA-256, one-way or mutual) and
// the operational keys, and the SendTargets answer for discovery.
//
// It is a leaf: standard library only (crypto/md5, sha1, sha256, subtle), no sockets,
// goroutines, timers or PDU encoding. The iSCSI connection (protocols/iscsi) decodes a
// Login Request with protocols/iscsi/pdu, calls Machine.Step, encodes the Response,
// adds ISID, ITT and sequence numbers, and acts on the Action. The target names, CHAP
// secrets and limits come in a Config; target existence, access control and sessions
// through a Directory. The caller owns the login timeout.
//
// Invariants, cited in comments as L1…L5:
//
//	L1. Step is the only way the machine changes, and every Step returns exactly one
//	    response to send. A failure response carries Status-Class 2 or 3, no text and
//	    ActionClose; the machine then answers every later Step with it again (L2).
//	L2. A failed machine stays failed; a machine in Full Feature Phase fails any
//	    further Login Request.
//	L3. A key is negotiated at most once per login (RFC 7143 §6.2): a duplicate inside
//	    one text fails the login; the same key again in a later text gets its earlier
//	    answer only if the value is identical (libiscsi repeats its identity keys),
//	    otherwise the login fails. Security keys may never repeat.
//	L4. Authentication is never skipped: with Auth.Required, the machine reaches Full
//	    Feature Phase only after CHAP_R matched (constant-time compare) and, if asked or
//	    required, after answering mutual CHAP with a challenge that is not ours reflected.
//	L5. Negotiated values respect their result functions: a minimum never exceeds our
//	    limit or the offer, a maximum never falls below either, OR/AND as the RFC says,
//	    FirstBurstLength never exceeds MaxBurstLength, ErrorRecoveryLevel is 0. Where a
//	    default would break our limits and the initiator is silent, we offer the key.
package login
