// Package pdu is the NVMe/TCP PDU codec (NVM Express TCP Transport Specification 1.0; the same
// transport as NVMe-oF 1.1 §7.4): PDU types and flags, each PDU header as a fixed-size byte
// array with in-place accessors, header checks that name the bad field and the termination
// request it implies, CRC32C header and data digests with running values, encoders that write
// headers into the caller's buffer, and Framer, an incremental receive state machine an event
// loop feeds from a non-blocking socket.
//
// One codec, both directions: the NVMe/TCP target (protocols/nvmf/tcp) receives as Controller
// and sends with a Sender; our host (drivers/nvmf) receives as Host and sends with a Sender. The
// package imports only the standard library (not even protocols/nvme: a capsule's SQE and CQE
// are handed out as *[64]byte and *[16]byte, which convert to *nvme.SQE and *nvme.CQE). It owns
// no goroutine, socket, timer or lock; a Framer belongs to the reactor that owns its connection.
//
// What the codec does not judge: whether a CCCID or TTAG names a live command, whether DATAO
// continues the transfer, how many R2Ts are outstanding, the SQE's contents. Those are the
// connection's (NewFieldError builds the termination request they imply).
//
// A header accepted by CommonHeader.Check(role, lim) obeys (cite as P1..P6):
//
//	P1. Its type is defined, flows toward role, and is in sequence: the IC PDU (ICReq to a
//	    controller, ICResp to a host) exactly while !lim.ICDone; a termination request any time.
//	P2. HLEN is the type's fixed header length (8+120 IC, 72 CapsuleCmd, 24 otherwise).
//	P3. Flags hold only bits defined for the type; HDGSTF is set exactly when header digests are
//	    on and the type carries one (not IC, not a termination request); DDGSTF exactly when data
//	    digests are on and a CapsuleCmd, H2CData or C2HData carries data; SUCCESS implies
//	    LAST_PDU.
//	P4. Layout(lim) is consistent: without data PLEN is HLEN plus the header digest and PDO is 0
//	    (a CapsuleCmd may also say HLEN plus digest, there being nothing after it);
//	    with data HLEN+digest ≤ PDO ≤ 255, PDO is a multiple of (PDA+1)*4, and PLEN = PDO + data
//	    + data digest with at least one data byte. A termination request's data follows its
//	    header. So HeaderEnd() ≤ 255 and every part lies inside PLEN.
//	P5. Data is within limits: in-capsule data ≤ lim.CapsuleDataMax, H2CData/C2HData data ≤
//	    lim.DataMax (else FESDataLimitExceeded), termination request PLEN ≤ 152, IC PLEN = 128.
//	P6. H2CData and C2HData carry data; IC PDUs, CapsuleResp and R2T carry none.
//
// CheckPSH adds what needs the whole header: IC fields (PFV 0, PDA ≤ 31, defined DGST bits,
// MAXH2CDATA ≥ 4096 and a multiple of 4), DATAL equal to the data the framing gives, R2TL ≥ 1,
// and zero reserved bytes. A rejected PDU yields a *FieldError whose Offset is the FEI.
//
// A Framer keeps (cite as F1..F6):
//
//	F1. Next returns no header that failed Check, its header digest, or CheckPSH; a data frame
//	    whose data digest failed comes with ErrDataDigest, never silently.
//	F2. Every unit it waits for (common header, header part, whole buffered PDU, data digest)
//	    fits its receive buffer: BufferSizeMin(role, limits, direct) ≤ buffer size is checked in
//	    NewFramer and SetLimits. So KindNeedMore always means "read more", never "stuck".
//	F3. While data lands in a DataInto buffer the receive buffer holds no unread bytes, so the
//	    bytes read into Space's data slice are the next bytes of the stream.
//	F4. A KindPDU frame aliases the receive buffer until the next Space, Commit or Feed; the
//	    header of data frames is the Framer's copy until the next data header.
//	F5. After NewFramer, nothing allocates on the success path; the first *FieldError is
//	    sticky (every later Next returns it) and allocated once.
//	F6. It reads only received bytes (buf[r:w]) and writes only the receive buffer's free tail
//	    and the DataInto buffer.
package pdu
