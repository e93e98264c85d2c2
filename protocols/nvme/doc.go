// Package nvme holds the NVM Express data structures that cross a queue or a fabric: the 64-byte
// submission queue entry (SQE) and the 16-byte completion queue entry (CQE) with its Status, SGL
// descriptors, opcodes, feature and log page identifiers, the NVMe over Fabrics commands (Connect
// and its 1024-byte data, Property Get/Set, Disconnect, Authentication Send/Receive) and the
// controller properties they reach (CAP, VS, CC, CSTS, NSSR), the Identify data structures and log
// pages a fabrics target returns (Error Information, SMART / Health, Firmware Slot, Changed
// Namespace List, Commands Supported and Effects, Discovery), and NQN validation.
//
// One codec, both directions: the NVMe/TCP target (protocols/nvmf) builds these structures and our
// NVMe/TCP host (drivers/nvmf) parses them, with the same accessors. The package imports only the
// standard library, owns no state and runs on whichever reactor calls it; nothing here blocks.
//
// Sources. Layouts follow the NVM Express Base Specification 2.0 (and 1.4 where 2.0 did not move
// a field) and NVM Express over Fabrics 1.1; each type's comment names the spec data structure it
// implements. Offsets were cross-checked against the Linux kernel's include/linux/nvme.h and
// SPDK's include/spdk/nvme_spec.h and nvmf_spec.h, whose compile-time offset assertions agree.
//
// Shape. Every structure is a fixed-size byte array (type SQE [64]byte, ...). Accessors read and
// write their field in place, little endian, as gVisor's header package does; offsets are
// unexported constants, sizes are exported. A view over received bytes is a pointer conversion,
// not a copy: (*nvme.SQE)(buf[8:72]).
//
// Invariants (cite them as N1..N7):
//
//	N1. Every structure type is exactly its spec size, and its last field ends inside it: a
//	    constant expression beside each type fails to compile otherwise.
//	N2. Numeric getters are loads: they never fail, never allocate and never panic, whatever the
//	    bytes. String getters copy (they are for the control plane). Checking is a separate,
//	    explicit call (SGLDescriptor.CheckTCP, ValidateNQN, the NUL-terminated NQN getters that
//	    return an error, NSDescList.Descriptors, ParseDiscoveryLog), so nothing is trusted
//	    before it is checked, and a check on the data path (CheckTCP) allocates nothing.
//	N3. Setters write only their own field's bytes (bit-field setters only their own bits). A
//	    structure built for sending starts from a zeroed array (or Reset), so reserved fields go
//	    out as zero and a reused buffer leaks no stale bytes.
//	N4. String fields come in two encodings and never mix: ASCII fields (SN, MN, FR, firmware
//	    revisions, TRSVCID, TRADDR) are printable ASCII padded with spaces, never NUL-terminated;
//	    NQN fields (SUBNQN, HOSTNQN) are UTF-8, NUL-terminated and NUL-padded. Setters reject a
//	    value that does not fit or has a forbidden byte, rather than truncate it.
//	N5. A Status is SCT<<8 | SC; SetStatus then Status on a CQE returns it unchanged, and the
//	    phase, More, CRD and DNR bits around it are untouched by either.
//	N6. Parsers of peer-supplied structures (Connect data, NS identification descriptor list,
//	    namespace lists, Discovery log) bound every loop by the structure's size and report the
//	    first bad field; they never index past the bytes they were given.
//	N7. The package imports only the standard library (it is a leaf both the target and the
//	    host import; ARCHITECTURE.md's table lists the edge).
package nvme
