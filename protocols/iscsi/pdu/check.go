package pdu

import "fmt"

// RejectReason is the Reason field of a Reject PDU (RFC 7143 §11.17). ReasonNone is
// ours: the error leaves the byte stream untrustworthy, so no Reject can follow and the
// connection is dropped (RFC 7143 §7, "Digest Errors" for a header digest error and "Format Errors").
type RejectReason uint8

// Reject reasons.
const (
	ReasonNone                RejectReason = 0x00 // not a wire value: drop the connection
	ReasonDataDigest          RejectReason = 0x02
	ReasonSNACKReject         RejectReason = 0x03
	ReasonProtocolError       RejectReason = 0x04
	ReasonCommandNotSupported RejectReason = 0x05
	ReasonImmediateCommand    RejectReason = 0x06 // too many immediate commands
	ReasonTaskInProgress      RejectReason = 0x07
	ReasonInvalidDataAck      RejectReason = 0x08
	ReasonInvalidPDUField     RejectReason = 0x09
	ReasonLongOperation       RejectReason = 0x0a // cannot generate a TTT: out of resources
	ReasonWaitingForLogout    RejectReason = 0x0c
)

func (r RejectReason) String() string {
	switch r {
	case ReasonNone:
		return "drop-connection"
	case ReasonDataDigest:
		return "data-digest-error"
	case ReasonSNACKReject:
		return "snack-reject"
	case ReasonProtocolError:
		return "protocol-error"
	case ReasonCommandNotSupported:
		return "command-not-supported"
	case ReasonImmediateCommand:
		return "immediate-command-reject"
	case ReasonTaskInProgress:
		return "task-in-progress"
	case ReasonInvalidDataAck:
		return "invalid-data-ack"
	case ReasonInvalidPDUField:
		return "invalid-pdu-field"
	case ReasonLongOperation:
		return "long-op-reject"
	case ReasonWaitingForLogout:
		return "waiting-for-logout"
	}
	return fmt.Sprintf("reason-%#02x", uint8(r))
}

// FieldError says which field of a received PDU broke which rule. Offset counts bytes
// from the start of the PDU (the BHS, then the AHS, the header digest and the data
// segment). Reason is the Reject to send; ReasonNone means drop the connection. A
// Login Request that fails Check is answered with a Login Response (status 0x0200),
// never a Reject.
type FieldError struct {
	Field  string
	Offset int
	Value  uint32
	Want   string
	Reason RejectReason
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("pdu: %s (offset %d) = %#x, want %s: %s",
		e.Field, e.Offset, e.Value, e.Want, e.Reason)
}

// Fatal reports whether the connection must be dropped rather than answered by a Reject.
func (e *FieldError) Fatal() bool { return e.Reason == ReasonNone }

// Role says which side received the PDU being checked.
type Role uint8

// Roles.
const (
	// RoleTarget checks PDUs sent by an initiator.
	RoleTarget Role = iota + 1
	// RoleInitiator checks PDUs sent by a target.
	RoleInitiator
)

// Limits are the negotiated values Check enforces.
type Limits struct {
	// MaxRecvDataSegmentLength is what the receiver declared (RFC 7143 §13.12); 8192
	// during login. Zero is a bug.
	MaxRecvDataSegmentLength uint32
	// ImmediateData and FirstBurstLength bound the data a SCSI Command may carry
	// (RFC 7143 §13.11, §13.14). Ignored for RoleInitiator.
	ImmediateData    bool
	FirstBurstLength uint32
}

// Check validates h's header fields against role and lim: the opcode's direction,
// fields the RFC says must be zero or one, DataSegmentLength against the negotiated
// limit, TotalAHSLength, and per-opcode consistency. It trusts nothing and allocates
// only when it fails (invariant P1). Digests, the AHS contents (CheckAHS) and session
// state (CmdSN window, task tags) are checked elsewhere.
func (h *BHS) Check(role Role, lim Limits) error {
	if lim.MaxRecvDataSegmentLength == 0 {
		panic("pdu: Check with zero MaxRecvDataSegmentLength")
	}
	op := h.Opcode()
	if err := checkOpcode(h, op, role); err != nil {
		return err
	}
	if n := h.TotalAHSLength(); n != 0 && op != OpSCSICommand {
		// RFC 7143 §11.2.1 (TotalAHSLength): MUST be 0 in PDUs that have no AHS.
		return &FieldError{"TotalAHSLength", offTotalAHSLength, uint32(n), "0", ReasonInvalidPDUField}
	}
	dsl := h.DataSegmentLength()
	if dsl > lim.MaxRecvDataSegmentLength {
		return &FieldError{"DataSegmentLength", offDataSegmentLength, dsl,
			fmt.Sprintf("<= MaxRecvDataSegmentLength %d", lim.MaxRecvDataSegmentLength),
			ReasonProtocolError}
	}
	if dsl != 0 && !hasDataSegment(op) {
		// RFC 7143 §11.2.1 (DataSegmentLength): MUST be 0 whenever the PDU has no data segment.
		return &FieldError{"DataSegmentLength", offDataSegmentLength, dsl, "0", ReasonInvalidPDUField}
	}
	if role == RoleTarget {
		return checkFromInitiator(h, op, lim)
	}
	return checkFromTarget(h, op)
}

func checkOpcode(h *BHS, op Opcode, role Role) error {
	fromTarget := role == RoleTarget
	if op.FromTarget() == fromTarget {
		return &FieldError{"opcode", offOpcode, uint32(op), "an opcode of the other side", ReasonProtocolError}
	}
	if !op.Defined() {
		return &FieldError{"opcode", offOpcode, uint32(op), "a defined opcode", ReasonCommandNotSupported}
	}
	return nil
}

// hasDataSegment reports whether RFC 7143 §11 defines a data segment for op.
func hasDataSegment(op Opcode) bool {
	switch op {
	case OpTaskMgmtRequest, OpLogoutRequest, OpSNACKRequest,
		OpTaskMgmtResponse, OpLogoutResponse, OpR2T:
		return false
	}
	return true
}

// fixedOne reports whether RFC 7143 fixes byte 1 bit 7 of op to 1.
func fixedOne(op Opcode) bool {
	switch op {
	case OpNOPOut, OpTaskMgmtRequest, OpLogoutRequest, OpSNACKRequest,
		OpNOPIn, OpSCSIResponse, OpTaskMgmtResponse, OpLogoutResponse, OpR2T,
		OpAsyncMessage, OpReject:
		return true
	}
	return false
}

func checkFromInitiator(h *BHS, op Opcode, lim Limits) error {
	flags := h[offFlags]
	if fixedOne(op) && flags&bitFinal == 0 {
		return &FieldError{"byte 1 bit 7", offFlags, uint32(flags), "set (fixed to 1)", ReasonInvalidPDUField}
	}
	switch op {
	case OpNOPOut:
		// RFC 7143 §11.18: an ITT of 0xffffffff (no response wanted) needs the I bit.
		if h.ITT() == ReservedTag && !h.Immediate() {
			return &FieldError{"I bit", offOpcode, uint32(h[offOpcode]), "set when ITT is 0xffffffff", ReasonProtocolError}
		}
	case OpSCSICommand:
		return checkSCSICommand(h.SCSICommand(), lim)
	case OpLoginRequest:
		// RFC 7143 §11.12: the I bit of a Login Request is always 1.
		if !h.Immediate() {
			return &FieldError{"I bit", offOpcode, uint32(h[offOpcode]), "set", ReasonInvalidPDUField}
		}
	case OpTextRequest:
		// RFC 7143 §11.10: C=1 requires F=0.
		if flags&bitContinue != 0 && flags&bitFinal != 0 {
			return &FieldError{"F/C bits", offFlags, uint32(flags), "not both set", ReasonProtocolError}
		}
	case OpLogoutRequest:
		if r := h.LogoutRequest().Reason(); r > logoutReasonMax {
			return &FieldError{"reason code", offFlags, uint32(r), "0..2", ReasonInvalidPDUField}
		}
	}
	return nil
}

func checkSCSICommand(c *SCSICommand, lim Limits) error {
	flags := c[offFlags]
	edtl := c.ExpectedDataTransferLength()
	dsl := c.BHS().DataSegmentLength()
	switch {
	case edtl != 0 && !c.Read() && !c.Write():
		// RFC 7143 §11.3: R and W say which way the EDTL bytes flow.
		return &FieldError{"R/W bits", offFlags, uint32(flags), "R or W set when EDTL is not 0", ReasonInvalidPDUField}
	case !c.BHS().Final() && !c.Write():
		// RFC 7143 §11.3: unsolicited Data-Out (F=0) only follows a write.
		return &FieldError{"F bit", offFlags, uint32(flags), "set when W is clear", ReasonInvalidPDUField}
	case dsl == 0:
		return nil
	case !c.Write():
		return &FieldError{"DataSegmentLength", offDataSegmentLength, dsl, "0 when W is clear", ReasonProtocolError}
	case !lim.ImmediateData:
		return &FieldError{"DataSegmentLength", offDataSegmentLength, dsl, "0: ImmediateData=No", ReasonProtocolError}
	case dsl > lim.FirstBurstLength:
		return &FieldError{"DataSegmentLength", offDataSegmentLength, dsl,
			fmt.Sprintf("<= FirstBurstLength %d", lim.FirstBurstLength), ReasonProtocolError}
	case dsl > edtl:
		return &FieldError{"DataSegmentLength", offDataSegmentLength, dsl,
			fmt.Sprintf("<= EDTL %d", edtl), ReasonProtocolError}
	}
	return nil
}

func checkFromTarget(h *BHS, op Opcode) error {
	flags := h[offFlags]
	if fixedOne(op) && flags&bitFinal == 0 {
		return &FieldError{"byte 1 bit 7", offFlags, uint32(flags), "set (fixed to 1)", ReasonInvalidPDUField}
	}
	switch op {
	case OpSCSIResponse:
		if flags&bitOverflow != 0 && flags&bitUnderflow != 0 {
			return &FieldError{"O/U bits", offFlags, uint32(flags), "not both set", ReasonInvalidPDUField}
		}
		if flags&bitBidiOverflow != 0 && flags&bitBidiUnderflow != 0 {
			return &FieldError{"o/u bits", offFlags, uint32(flags), "not both set", ReasonInvalidPDUField}
		}
	case OpDataIn:
		// RFC 7143 §11.7: S only with F; O and U only with S, never together.
		if flags&bitStatus != 0 && flags&bitFinal == 0 {
			return &FieldError{"S bit", offFlags, uint32(flags), "only with F", ReasonInvalidPDUField}
		}
		if flags&(bitOverflow|bitUnderflow) != 0 && flags&bitStatus == 0 {
			return &FieldError{"O/U bits", offFlags, uint32(flags), "only with S", ReasonInvalidPDUField}
		}
		if flags&bitOverflow != 0 && flags&bitUnderflow != 0 {
			return &FieldError{"O/U bits", offFlags, uint32(flags), "not both set", ReasonInvalidPDUField}
		}
	case OpLoginResponse, OpTextResponse:
		if flags&bitContinue != 0 && flags&bitTransit != 0 {
			// RFC 7143 §11.13 (T/C) and §11.11 (F/C) share the bit positions.
			return &FieldError{"byte 1 bits 7/6", offFlags, uint32(flags), "not both set", ReasonProtocolError}
		}
	}
	return nil
}
