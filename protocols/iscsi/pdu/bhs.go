package pdu

import (
	"encoding/binary"
	"fmt"
)

// Sizes (RFC 7143 §11.2).
const (
	// BHSSize is the fixed size of the Basic Header Segment that starts every PDU.
	BHSSize = 48
	// DigestSize is the size of a header or data digest (CRC32C) when negotiated.
	DigestSize = 4
	// AHSSizeMax is the largest AHS region: TotalAHSLength is one byte counting 4-byte words.
	AHSSizeMax = 255 * 4
	// DataSegmentLengthMax is the largest value the 24-bit DataSegmentLength field holds.
	DataSegmentLengthMax = 1<<24 - 1
	// CDBSize is the size of the CDB field in a SCSI Command BHS; longer CDBs spill into an AHS.
	CDBSize = 16
	// ISIDSize is the size of the initiator part of the session identifier.
	ISIDSize = 6
	// ReservedTag is the value of an ITT, TTT or RTT that names no task (RFC 7143 §11.2.1).
	ReservedTag = 0xffffffff
)

// Byte offsets shared by every BHS (RFC 7143 §11.2.1).
const (
	offOpcode            = 0  // .|I|opcode(6)
	offFlags             = 1  // F bit and opcode-specific flags
	offTotalAHSLength    = 4  // 4-byte words
	offDataSegmentLength = 5  // 24 bits, big endian
	offLUN               = 8  // 8 bytes, or opcode-specific
	offITT               = 16 // Initiator Task Tag
	offTTT               = 20 // Target Transfer Tag (and friends) in many PDUs
	offCmdSN             = 24 // initiator PDUs
	offExpStatSN         = 28 // initiator PDUs
	offStatSN            = 24 // target PDUs
	offExpCmdSN          = 28 // target PDUs
	offMaxCmdSN          = 32 // target PDUs
)

const (
	bitImmediate = 0x40 // byte 0: I bit (initiator PDUs)
	maskOpcode   = 0x3f // byte 0: opcode
	bitFinal     = 0x80 // byte 1: F bit, or a bit fixed to 1 in most PDUs
)

// Opcode is the 6-bit PDU opcode (RFC 7143 §11.2.1). Initiator opcodes have bit 5
// clear, target opcodes have it set.
type Opcode uint8

// Opcodes (RFC 7143 §11.2.1).
const (
	OpNOPOut           Opcode = 0x00
	OpSCSICommand      Opcode = 0x01
	OpTaskMgmtRequest  Opcode = 0x02
	OpLoginRequest     Opcode = 0x03
	OpTextRequest      Opcode = 0x04
	OpDataOut          Opcode = 0x05
	OpLogoutRequest    Opcode = 0x06
	OpSNACKRequest     Opcode = 0x10
	OpNOPIn            Opcode = 0x20
	OpSCSIResponse     Opcode = 0x21
	OpTaskMgmtResponse Opcode = 0x22
	OpLoginResponse    Opcode = 0x23
	OpTextResponse     Opcode = 0x24
	OpDataIn           Opcode = 0x25
	OpLogoutResponse   Opcode = 0x26
	OpR2T              Opcode = 0x31
	OpAsyncMessage     Opcode = 0x32
	OpReject           Opcode = 0x3f
)

// FromTarget reports whether o is in the target-to-initiator half of the opcode space.
func (o Opcode) FromTarget() bool { return o&0x20 != 0 }

// Defined reports whether RFC 7143 defines o (vendor-specific opcodes are not "defined":
// Sluice implements none of them).
func (o Opcode) Defined() bool {
	switch o {
	case OpNOPOut, OpSCSICommand, OpTaskMgmtRequest, OpLoginRequest, OpTextRequest,
		OpDataOut, OpLogoutRequest, OpSNACKRequest,
		OpNOPIn, OpSCSIResponse, OpTaskMgmtResponse, OpLoginResponse, OpTextResponse,
		OpDataIn, OpLogoutResponse, OpR2T, OpAsyncMessage, OpReject:
		return true
	}
	return false
}

func (o Opcode) String() string {
	switch o {
	case OpNOPOut:
		return "NOP-Out"
	case OpSCSICommand:
		return "SCSI-Command"
	case OpTaskMgmtRequest:
		return "Task-Mgmt-Request"
	case OpLoginRequest:
		return "Login-Request"
	case OpTextRequest:
		return "Text-Request"
	case OpDataOut:
		return "Data-Out"
	case OpLogoutRequest:
		return "Logout-Request"
	case OpSNACKRequest:
		return "SNACK-Request"
	case OpNOPIn:
		return "NOP-In"
	case OpSCSIResponse:
		return "SCSI-Response"
	case OpTaskMgmtResponse:
		return "Task-Mgmt-Response"
	case OpLoginResponse:
		return "Login-Response"
	case OpTextResponse:
		return "Text-Response"
	case OpDataIn:
		return "Data-In"
	case OpLogoutResponse:
		return "Logout-Response"
	case OpR2T:
		return "R2T"
	case OpAsyncMessage:
		return "Async-Message"
	case OpReject:
		return "Reject"
	}
	return fmt.Sprintf("opcode-%#02x", uint8(o))
}

// BHS is the 48-byte Basic Header Segment. It is viewed in place over a receive
// buffer (BHSOf) and nothing in it is trusted before Check (invariant P1). The
// per-opcode views (SCSICommand, DataIn, …) are the same bytes under another type.
type BHS [BHSSize]byte

// BHSOf views b's first 48 bytes in place. It panics if b is shorter: callers have
// framed a whole header first.
func BHSOf(b []byte) *BHS { return (*BHS)(b[:BHSSize]) }

// Opcode returns the opcode without the I bit.
func (h *BHS) Opcode() Opcode { return Opcode(h[offOpcode] & maskOpcode) }

// Immediate reports the I bit (immediate delivery, initiator PDUs only).
func (h *BHS) Immediate() bool { return h[offOpcode]&bitImmediate != 0 }

// SetImmediate sets or clears the I bit.
func (h *BHS) SetImmediate(v bool) { setBit(&h[offOpcode], bitImmediate, v) }

// Final reports the F bit (byte 1, bit 7). In PDUs where the RFC fixes that bit to 1 it
// reads true for a well-formed PDU.
func (h *BHS) Final() bool { return h[offFlags]&bitFinal != 0 }

// SetFinal sets or clears the F bit.
func (h *BHS) SetFinal(v bool) { setBit(&h[offFlags], bitFinal, v) }

// TotalAHSLength is the AHS length in 4-byte words.
func (h *BHS) TotalAHSLength() uint8 { return h[offTotalAHSLength] }

// SetTotalAHSLength sets the AHS length in 4-byte words.
func (h *BHS) SetTotalAHSLength(words uint8) { h[offTotalAHSLength] = words }

// AHSSize is the AHS length in bytes.
func (h *BHS) AHSSize() int { return int(h[offTotalAHSLength]) * 4 }

// DataSegmentLength is the data segment length in bytes, without padding.
func (h *BHS) DataSegmentLength() uint32 {
	b := h[offDataSegmentLength:]
	return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
}

// SetDataSegmentLength sets the 24-bit data segment length. n beyond 24 bits is a bug.
func (h *BHS) SetDataSegmentLength(n uint32) {
	if n > DataSegmentLengthMax {
		panic(fmt.Sprintf("pdu: data segment length %d exceeds %d", n, DataSegmentLengthMax))
	}
	b := h[offDataSegmentLength:]
	b[0], b[1], b[2] = byte(n>>16), byte(n>>8), byte(n)
}

// LUN returns bytes 8-15 as a big-endian number: the SAM LUN structure, or reserved /
// opcode-specific bytes in PDUs that carry no LUN.
func (h *BHS) LUN() uint64 { return be64(h[offLUN:]) }

// SetLUN sets bytes 8-15.
func (h *BHS) SetLUN(lun uint64) { put64(h[offLUN:], lun) }

// ITT returns the Initiator Task Tag.
func (h *BHS) ITT() uint32 { return be32(h[offITT:]) }

// SetITT sets the Initiator Task Tag.
func (h *BHS) SetITT(v uint32) { put32(h[offITT:], v) }

// PaddedDataSize is the data segment length rounded up to 4 bytes (RFC 7143 §11.2).
func (h *BHS) PaddedDataSize() uint32 { n := h.DataSegmentLength(); return n + PadSize(n) }

// Reset zeroes the whole header.
func (h *BHS) Reset() { *h = BHS{} }

// init zeroes h and sets the opcode byte and byte 1, so that every reserved field of
// a PDU we send is zero (invariant P2).
func (h *BHS) init(op Opcode, flags byte) {
	*h = BHS{}
	h[offOpcode] = byte(op)
	h[offFlags] = flags
}

func be16(b []byte) uint16     { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32     { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64     { return binary.BigEndian.Uint64(b) }
func put16(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }
func put32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
func put64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }

func setBit(b *byte, mask byte, v bool) {
	if v {
		*b |= mask
	} else {
		*b &^= mask
	}
}
