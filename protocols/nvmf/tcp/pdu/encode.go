package pdu

import "fmt"

// Sender is the negotiated shape of the PDUs one side sends on a connection, after the IC
// exchange: which digests are on, and the alignment the receiver asked for its PDU data.
type Sender struct {
	HeaderDigest bool
	DataDigest   bool
	// PDA is the receiver's PDU data alignment, 0's based dwords: the CPDA a host received in
	// ICResp, or the HPDA a controller received in ICReq.
	PDA uint8
}

// DataOffset is the PDO of a PDU with data whose header is hlen bytes: the header and its
// digest, rounded up to the receiver's alignment (SPDK and Linux pad to the smallest such
// offset; Check accepts any aligned offset).
func (s Sender) DataOffset(hlen int) int {
	align := (int(s.PDA) + 1) * 4
	n := hlen + int(digestLen(s.HeaderDigest))
	return (n + align - 1) / align * align
}

// begin zeroes and fills the common header of a PDU of type t with dataLen bytes of data and
// returns the length of its header part (header, header digest, padding), or 0 when b is
// shorter than that. Every encoder writes its fields after begin and then calls seal (N3: the
// reserved bytes and the padding go out as zero).
func (s Sender) begin(b []byte, t Type, hlen int, dataLen uint32, flags Flags) int {
	if s.PDA > PDAMax {
		panic(fmt.Sprintf("pdu: sender PDA %d, want at most %d", s.PDA, PDAMax))
	}
	n := hlen + int(digestLen(s.HeaderDigest))
	pdo := 0
	plen := uint32(n)
	if dataLen > 0 {
		pdo = s.DataOffset(hlen)
		n = pdo
		plen = uint32(pdo) + dataLen + digestLen(s.DataDigest)
		if s.DataDigest {
			flags |= FlagDDGSTF
		}
	}
	if s.HeaderDigest {
		flags |= FlagHDGSTF
	}
	if len(b) < n {
		return 0
	}
	clear(b[:n])
	h := HeaderOf(b)
	h.SetType(t)
	h.SetFlags(flags)
	h.SetHeaderLen(uint8(hlen))
	h.SetPDUDataOffset(uint8(pdo))
	h.SetPDULen(plen)
	return n
}

// seal computes the header digest once the header's fields are written.
func (s Sender) seal(b []byte) {
	if s.HeaderDigest {
		SetHeaderDigest(b)
	}
}

// EncodeCapsuleCmd writes a CapsuleCmd carrying sqe and announcing dataLen bytes of in-capsule
// data into b: header, header digest, zero padding up to PDO. It returns the bytes written, 0
// if b is too short. The caller sends the data next and then, if s.DataDigest and dataLen > 0,
// its digest (DigestUpdate over the data, PutDigest); PLEN already counts both. sqe may point
// into b.
func (s Sender) EncodeCapsuleCmd(b []byte, sqe *[SQESize]byte, dataLen uint32) int {
	cmd := *sqe // sqe may alias b[8:72], which begin clears
	n := s.begin(b, TypeCapsuleCmd, CapsuleCmdSize, dataLen, 0)
	if n == 0 {
		return 0
	}
	copy(b[offSQE:offSQE+SQESize], cmd[:])
	s.seal(b)
	return n
}

// EncodeCapsuleResp writes a CapsuleResp carrying cqe into b (header and header digest) and
// returns the bytes written, 0 if b is too short. cqe may point into b.
func (s Sender) EncodeCapsuleResp(b []byte, cqe *[CQESize]byte) int {
	cpl := *cqe
	n := s.begin(b, TypeCapsuleResp, CapsuleRespSize, 0, 0)
	if n == 0 {
		return 0
	}
	copy(b[offCQE:offCQE+CQESize], cpl[:])
	s.seal(b)
	return n
}

// DataFields are the fields of an H2CData or C2HData PDU.
type DataFields struct {
	CCCID      uint16
	TTAG       uint16 // H2CData only: the TTAG of the R2T answered
	DataOffset uint32 // DATAO: offset of this data in the command's transfer
	DataLen    uint32 // DATAL: bytes in this PDU, at least 1
	Last       bool   // LAST_PDU
	Success    bool   // C2HData only: command complete, no CapsuleResp follows; needs Last
}

// EncodeH2CData writes an H2CData header (with digest and padding) for f into b and returns the
// bytes written, 0 if b is too short; the caller sends f.DataLen data bytes and the data digest.
func (s Sender) EncodeH2CData(b []byte, f DataFields) int {
	if f.Success {
		panic("pdu: H2CData has no SUCCESS flag")
	}
	return s.encodeData(b, TypeH2CData, f)
}

// EncodeC2HData writes a C2HData header for f into b; TTAG is reserved there and sent as 0.
func (s Sender) EncodeC2HData(b []byte, f DataFields) int {
	if f.Success && !f.Last {
		panic("pdu: C2HData SUCCESS without LAST_PDU") // Check rejects it on receive
	}
	f.TTAG = 0
	return s.encodeData(b, TypeC2HData, f)
}

func (s Sender) encodeData(b []byte, t Type, f DataFields) int {
	if f.DataLen == 0 {
		panic(fmt.Sprintf("pdu: %v with no data", t)) // Check rejects it on receive
	}
	var flags Flags
	if f.Last {
		flags |= FlagLastPDU
	}
	if f.Success {
		flags |= FlagSuccess
	}
	n := s.begin(b, t, DataHeaderSize, f.DataLen, flags)
	if n == 0 {
		return 0
	}
	putLE16(b, offCCCID, f.CCCID)
	putLE16(b, offTTAG, f.TTAG)
	putLE32(b, offDATAO, f.DataOffset)
	putLE32(b, offDATAL, f.DataLen)
	s.seal(b)
	return n
}

// R2TFields are the fields of an R2T PDU.
type R2TFields struct {
	CCCID     uint16
	TTAG      uint16
	R2TOffset uint32 // R2TO
	R2TLen    uint32 // R2TL, at least 1
}

// EncodeR2T writes an R2T into b and returns the bytes written, 0 if b is too short.
func (s Sender) EncodeR2T(b []byte, f R2TFields) int {
	if f.R2TLen == 0 {
		panic("pdu: R2T for no data") // CheckPSH rejects it on receive
	}
	n := s.begin(b, TypeR2T, R2TSize, 0, 0)
	if n == 0 {
		return 0
	}
	putLE16(b, offCCCID, f.CCCID)
	putLE16(b, offTTAG, f.TTAG)
	putLE32(b, offDATAO, f.R2TOffset)
	putLE32(b, offDATAL, f.R2TLen)
	s.seal(b)
	return n
}

// ICReqFields are what a host asks for in ICReq.
type ICReqFields struct {
	HPDA         uint8  // the alignment the host wants for C2H data, 0..31
	HeaderDigest bool   // HDGST_ENABLE
	DataDigest   bool   // DDGST_ENABLE
	MAXR2T       uint32 // outstanding R2Ts per command the host supports, 0's based
}

// EncodeICReq writes an ICReq (128 bytes, no digests ever) into b; 0 if b is too short.
func EncodeICReq(b []byte, f ICReqFields) int {
	if f.HPDA > PDAMax {
		panic(fmt.Sprintf("pdu: HPDA %d, want at most %d", f.HPDA, PDAMax))
	}
	n := Sender{}.begin(b, TypeICReq, ICReqSize, 0, 0)
	if n == 0 {
		return 0
	}
	putLE16(b, offPFV, PFV10)
	b[offPDA] = f.HPDA
	b[offDGST] = dgstBits(f.HeaderDigest, f.DataDigest)
	putLE32(b, offMAXR2T, f.MAXR2T)
	return n
}

// ICRespFields are what a controller grants in ICResp.
type ICRespFields struct {
	CPDA         uint8 // the alignment the controller wants for H2C data, 0..31
	HeaderDigest bool
	DataDigest   bool
	MAXH2CData   uint32 // most data bytes in one H2CData: a multiple of 4, at least 4096
}

// EncodeICResp writes an ICResp (128 bytes) into b; 0 if b is too short.
func EncodeICResp(b []byte, f ICRespFields) int {
	if f.CPDA > PDAMax || f.MAXH2CData < MAXH2CDataMin || f.MAXH2CData%4 != 0 {
		panic(fmt.Sprintf("pdu: ICResp CPDA %d MAXH2CDATA %d, want CPDA ≤ %d and a multiple of 4 ≥ %d",
			f.CPDA, f.MAXH2CData, PDAMax, MAXH2CDataMin))
	}
	n := Sender{}.begin(b, TypeICResp, ICRespSize, 0, 0)
	if n == 0 {
		return 0
	}
	putLE16(b, offPFV, PFV10)
	b[offPDA] = f.CPDA
	b[offDGST] = dgstBits(f.HeaderDigest, f.DataDigest)
	putLE32(b, offMAXH2C, f.MAXH2CData)
	return n
}

func dgstBits(hdr, data bool) uint8 {
	var d uint8
	if hdr {
		d |= DGSTHeader
	}
	if data {
		d |= DGSTData
	}
	return d
}

// EncodeTermReq writes a whole termination request of type t (TypeH2CTermReq from a host,
// TypeC2HTermReq from a controller) into b: header with fes and fei, then the first
// min(len(hdr), 128) bytes of the PDU header in error as data. Termination requests never carry
// digests. It returns the PDU length, 0 if b is too short.
func EncodeTermReq(b []byte, t Type, fes FES, fei uint32, hdr []byte) int {
	if t != TypeH2CTermReq && t != TypeC2HTermReq {
		panic(fmt.Sprintf("pdu: EncodeTermReq of type %v", t))
	}
	if fes == FESNone || fes > FESUnsupportedParameter {
		panic(fmt.Sprintf("pdu: EncodeTermReq with FES %v", fes))
	}
	data := hdr[:min(len(hdr), TermReqDataMax)]
	n := TermReqHeaderSize + len(data)
	if len(b) < n {
		return 0
	}
	copy(b[TermReqHeaderSize:n], data) // first: hdr may alias the front of b
	clear(b[:TermReqHeaderSize])
	h := HeaderOf(b)
	h.SetType(t)
	h.SetHeaderLen(TermReqHeaderSize)
	h.SetPDULen(uint32(n))
	putLE16(b, offFES, uint16(fes))
	putLE32(b, offFEI, fei)
	return n
}
