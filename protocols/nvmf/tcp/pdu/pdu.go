package pdu

import (
	"encoding/binary"
	"fmt"
)

// Type is a PDU type, byte 0 of every PDU (NVMe/TCP 1.0, "PDU Type"; NVMe-oF 1.1 §7.4). Bit 0
// is the direction: even types flow host to controller, odd ones controller to host.
type Type uint8

const (
	TypeICReq       Type = 0x00
	TypeICResp      Type = 0x01
	TypeH2CTermReq  Type = 0x02
	TypeC2HTermReq  Type = 0x03
	TypeCapsuleCmd  Type = 0x04
	TypeCapsuleResp Type = 0x05
	TypeH2CData     Type = 0x06
	TypeC2HData     Type = 0x07
	TypeR2T         Type = 0x09
)

var typeNames = [...]string{
	TypeICReq:       "icreq",
	TypeICResp:      "icresp",
	TypeH2CTermReq:  "h2c-term-req",
	TypeC2HTermReq:  "c2h-term-req",
	TypeCapsuleCmd:  "capsule-cmd",
	TypeCapsuleResp: "capsule-resp",
	TypeH2CData:     "h2c-data",
	TypeC2HData:     "c2h-data",
	TypeR2T:         "r2t",
}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("pdu-type-%#02x", uint8(t))
}

// Flags is byte 1 of every PDU (NVMe/TCP 1.0, "PDU Header Flags").
type Flags uint8

const (
	FlagHDGSTF  Flags = 1 << 0 // a header digest follows the header
	FlagDDGSTF  Flags = 1 << 1 // a data digest follows the data
	FlagLastPDU Flags = 1 << 2 // H2CData/C2HData: last data PDU of the transfer (of the R2T)
	FlagSuccess Flags = 1 << 3 // C2HData: the command succeeded; no CapsuleResp follows
)

// DGST bits of ICReq/ICResp: which digests the host asks for and the controller grants.
const (
	DGSTHeader uint8 = 1 << 0
	DGSTData   uint8 = 1 << 1
)

// Sizes. HLEN of every header is fixed by its type; a digest is 4 bytes.
const (
	CommonHeaderSize  = 8
	ICReqSize         = 128
	ICRespSize        = 128
	TermReqHeaderSize = 24
	CapsuleCmdSize    = CommonHeaderSize + SQESize // 72
	CapsuleRespSize   = CommonHeaderSize + CQESize // 24
	DataHeaderSize    = 24                         // H2CData and C2HData
	R2TSize           = 24
	DigestSize        = 4
	SQESize           = 64 // an NVMe submission queue entry (nvme.SQESize)
	CQESize           = 16 // an NVMe completion queue entry (nvme.CQESize)

	// HeaderSizeMax is the longest PDU header (ICReq/ICResp).
	HeaderSizeMax = ICReqSize

	// A termination request carries at most 128 bytes of the PDU header in error, so its PLEN
	// is at most 152 (NVMe/TCP 1.0, "H2CTermReq"/"C2HTermReq"; SPDK and FreeBSD use 152).
	TermReqDataMax    = 128
	TermReqPDUSizeMax = TermReqHeaderSize + TermReqDataMax

	// PDAMax is the largest HPDA/CPDA: alignment (PDA+1)*4 is at most 128 bytes.
	PDAMax = 31

	// MAXH2CDataMin is the smallest MAXH2CDATA a controller may announce, which must also be a
	// multiple of 4 (NVMe/TCP 1.0, "ICResp"; the Linux host refuses anything else).
	MAXH2CDataMin = 4096

	// PFV10 is the only PDU format version defined.
	PFV10 = 0
)

// Header byte offsets (NVMe/TCP 1.0, "PDU Common Header" and each PDU's definition; SPDK's
// nvmf_spec.h asserts the same offsets at compile time).
const (
	offType       = 0
	offFlags      = 1
	offHeaderLen  = 2
	offDataOffset = 3 // PDO
	offPDULen     = 4

	offPFV      = 8  // ICReq/ICResp
	offPDA      = 10 // ICReq HPDA / ICResp CPDA
	offDGST     = 11 // ICReq/ICResp
	offMAXR2T   = 12 // ICReq: maximum outstanding R2Ts per command, 0's based
	offMAXH2C   = 12 // ICResp: MAXH2CDATA
	offICRsvd   = 16 // ICReq/ICResp: reserved to the end (127:16)
	offFES      = 8  // TermReq
	offFEI      = 10 // TermReq: 4 bytes, 13:10
	offTermRsvd = 14 // TermReq: reserved 23:14
	offSQE      = 8  // CapsuleCmd
	offCQE      = 8  // CapsuleResp
	offCCCID    = 8  // H2CData/C2HData/R2T: command capsule CID
	offTTAG     = 10 // H2CData/R2T: transfer tag; reserved in C2HData
	offDATAO    = 12 // H2CData/C2HData: data offset; R2T: R2TO
	offDATAL    = 16 // H2CData/C2HData: data length; R2T: R2TL
	offDataRsvd = 20 // H2CData/C2HData/R2T: reserved 23:20
)

// N1: each header ends where its type says, and the common header sits inside every one.
const (
	_ = uint(ICReqSize-128) + uint(128-ICReqSize) + uint(ICRespSize-ICReqSize) + uint(ICReqSize-ICRespSize)
	_ = uint(CapsuleCmdSize-72) + uint(72-CapsuleCmdSize) + uint(CapsuleRespSize-24) + uint(24-CapsuleRespSize)
	_ = uint(TermReqHeaderSize-(offTermRsvd+10)) + uint(DataHeaderSize-(offDataRsvd+4)) + uint(R2TSize-(offDataRsvd+4))
	_ = uint(TermReqPDUSizeMax-152) + uint(152-TermReqPDUSizeMax)
	_ = uint(255 - HeaderSizeMax - DigestSize) // any header and its digest fit under an 8-bit PDO
)

func le16(b []byte, off int) uint16       { return binary.LittleEndian.Uint16(b[off:]) }
func le32(b []byte, off int) uint32       { return binary.LittleEndian.Uint32(b[off:]) }
func putLE16(b []byte, off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }
func putLE32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

// CommonHeader is the 8 bytes that start every NVMe/TCP PDU: type, flags, HLEN, PDO, PLEN.
type CommonHeader [CommonHeaderSize]byte

// HeaderOf views buf's first 8 bytes in place; the reader always has 8 first.
func HeaderOf(buf []byte) *CommonHeader { return (*CommonHeader)(buf[:CommonHeaderSize]) }

func (h *CommonHeader) Type() Type                 { return Type(h[offType]) }
func (h *CommonHeader) SetType(t Type)             { h[offType] = uint8(t) }
func (h *CommonHeader) Flags() Flags               { return Flags(h[offFlags]) }
func (h *CommonHeader) SetFlags(f Flags)           { h[offFlags] = uint8(f) }
func (h *CommonHeader) HeaderLen() uint8           { return h[offHeaderLen] }
func (h *CommonHeader) SetHeaderLen(n uint8)       { h[offHeaderLen] = n }
func (h *CommonHeader) PDUDataOffset() uint8       { return h[offDataOffset] }
func (h *CommonHeader) SetPDUDataOffset(pdo uint8) { h[offDataOffset] = pdo }
func (h *CommonHeader) PDULen() uint32             { return le32(h[:], offPDULen) }
func (h *CommonHeader) SetPDULen(n uint32)         { putLE32(h[:], offPDULen, n) }

// ICReq is the Initialize Connection Request a host sends first (128 bytes).
type ICReq [ICReqSize]byte

func ICReqOf(b []byte) *ICReq          { return (*ICReq)(b[:ICReqSize]) }
func (p *ICReq) Common() *CommonHeader { return HeaderOf(p[:]) }
func (p *ICReq) PFV() uint16           { return le16(p[:], offPFV) }
func (p *ICReq) HPDA() uint8           { return p[offPDA] }
func (p *ICReq) DGST() uint8           { return p[offDGST] }
func (p *ICReq) MAXR2T() uint32        { return le32(p[:], offMAXR2T) }

// ICResp is the Initialize Connection Response a controller answers with (128 bytes).
type ICResp [ICRespSize]byte

func ICRespOf(b []byte) *ICResp         { return (*ICResp)(b[:ICRespSize]) }
func (p *ICResp) Common() *CommonHeader { return HeaderOf(p[:]) }
func (p *ICResp) PFV() uint16           { return le16(p[:], offPFV) }
func (p *ICResp) CPDA() uint8           { return p[offPDA] }
func (p *ICResp) DGST() uint8           { return p[offDGST] }
func (p *ICResp) MAXH2CData() uint32    { return le32(p[:], offMAXH2C) }

// TermReq is the header of an H2CTermReq or C2HTermReq (24 bytes); up to 128 bytes of the PDU
// header in error follow it as data.
//
// FEI is at bytes 13:10 as the spec and SPDK place it. Linux's struct nvme_tcp_term_pdu is not
// packed, so its fei lands at byte 12; Linux only ever reads fes, so nothing depends on that.
type TermReq [TermReqHeaderSize]byte

func TermReqOf(b []byte) *TermReq        { return (*TermReq)(b[:TermReqHeaderSize]) }
func (p *TermReq) Common() *CommonHeader { return HeaderOf(p[:]) }
func (p *TermReq) FES() FES              { return FES(le16(p[:], offFES)) }
func (p *TermReq) FEI() uint32           { return le32(p[:], offFEI) }

// CapsuleCmd is the header of a command capsule: the common header and a 64-byte SQE.
type CapsuleCmd [CapsuleCmdSize]byte

func CapsuleCmdOf(b []byte) *CapsuleCmd     { return (*CapsuleCmd)(b[:CapsuleCmdSize]) }
func (p *CapsuleCmd) Common() *CommonHeader { return HeaderOf(p[:]) }

// SQE is the command, in place. Callers view it as (*nvme.SQE)(p.SQE()).
func (p *CapsuleCmd) SQE() *[SQESize]byte { return (*[SQESize]byte)(p[offSQE : offSQE+SQESize]) }

// CapsuleResp is a response capsule: the common header and a 16-byte CQE.
type CapsuleResp [CapsuleRespSize]byte

func CapsuleRespOf(b []byte) *CapsuleResp    { return (*CapsuleResp)(b[:CapsuleRespSize]) }
func (p *CapsuleResp) Common() *CommonHeader { return HeaderOf(p[:]) }

// CQE is the completion, in place. Callers view it as (*nvme.CQE)(p.CQE()).
func (p *CapsuleResp) CQE() *[CQESize]byte { return (*[CQESize]byte)(p[offCQE : offCQE+CQESize]) }

// DataHeader is the header of an H2CData or C2HData PDU (24 bytes; TTAG is reserved in C2HData).
type DataHeader [DataHeaderSize]byte

func DataHeaderOf(b []byte) *DataHeader     { return (*DataHeader)(b[:DataHeaderSize]) }
func (p *DataHeader) Common() *CommonHeader { return HeaderOf(p[:]) }
func (p *DataHeader) CCCID() uint16         { return le16(p[:], offCCCID) }
func (p *DataHeader) TTAG() uint16          { return le16(p[:], offTTAG) }
func (p *DataHeader) DataOffset() uint32    { return le32(p[:], offDATAO) } // DATAO
func (p *DataHeader) DataLen() uint32       { return le32(p[:], offDATAL) } // DATAL

// R2THeader is a Ready to Transfer PDU (24 bytes).
type R2THeader [R2TSize]byte

func R2THeaderOf(b []byte) *R2THeader      { return (*R2THeader)(b[:R2TSize]) }
func (p *R2THeader) Common() *CommonHeader { return HeaderOf(p[:]) }
func (p *R2THeader) CCCID() uint16         { return le16(p[:], offCCCID) }
func (p *R2THeader) TTAG() uint16          { return le16(p[:], offTTAG) }
func (p *R2THeader) R2TOffset() uint32     { return le32(p[:], offDATAO) } // R2TO
func (p *R2THeader) R2TLen() uint32        { return le32(p[:], offDATAL) } // R2TL
