package pdu

import (
	"fmt"
)

// Role is the side of the connection that receives the PDUs being checked.
type Role uint8

const (
	// Controller receives host-to-controller PDUs: ICReq, H2CTermReq, CapsuleCmd, H2CData.
	Controller Role = iota + 1
	// Host receives controller-to-host PDUs: ICResp, C2HTermReq, CapsuleResp, C2HData, R2T.
	Host
)

func (r Role) String() string {
	switch r {
	case Controller:
		return "controller"
	case Host:
		return "host"
	}
	return fmt.Sprintf("role-%d", uint8(r))
}

// receives reports whether r receives PDUs of type t (bit 0 of a type is its direction).
func (r Role) receives(t Type) bool {
	return r == Controller && t&1 == 0 || r == Host && t&1 == 1
}

// TermReqType is the termination request r sends: C2HTermReq for the controller.
func (r Role) TermReqType() Type {
	if r == Controller {
		return TypeC2HTermReq
	}
	return TypeH2CTermReq
}

// Limits is what a receiver holds its peer's PDUs to. Before the ICReq/ICResp exchange is done
// (ICDone false) digests are off whatever the other fields say, and only the IC PDU and a
// termination request are in sequence; afterwards the fields are the negotiated values for the
// direction being received.
type Limits struct {
	// ICDone: the IC exchange has completed. Until then ICReq (controller) or ICResp (host) is
	// the only PDU in sequence besides a termination request; afterwards it is out of sequence.
	ICDone bool
	// HeaderDigest and DataDigest: the digests the IC exchange enabled.
	HeaderDigest bool
	DataDigest   bool
	// PDA is the receiver's PDU data alignment, 0's based in dwords (0..31): the CPDA the
	// controller sent in ICResp (Controller role) or the HPDA the host sent in ICReq (Host
	// role). A PDU with data must start it at a multiple of (PDA+1)*4 bytes.
	PDA uint8
	// CapsuleDataMax is the most in-capsule data a CapsuleCmd may carry (Controller role):
	// IOCCSZ*16-64 on an I/O queue; at least 8192 on the admin queue.
	CapsuleDataMax uint32
	// DataMax is the most data one H2CData (Controller role: the MAXH2CDATA it announced) or
	// C2HData (Host role: the most it will take in one PDU) may carry.
	DataMax uint32
}

// Alignment is the byte alignment of PDU data for l.PDA.
func (l Limits) Alignment() uint32 { return (uint32(l.PDA) + 1) * 4 }

// Validate reports a Limits no connection can negotiate.
func (l Limits) Validate(r Role) error {
	if r != Controller && r != Host {
		return fmt.Errorf("pdu: role %d, want Controller or Host", uint8(r))
	}
	if l.PDA > PDAMax {
		return fmt.Errorf("pdu: PDA %d, want at most %d", l.PDA, PDAMax)
	}
	if l.ICDone && r == Controller && (l.DataMax < MAXH2CDataMin || l.DataMax%4 != 0) {
		return fmt.Errorf("pdu: controller DataMax (MAXH2CDATA) %d, want a multiple of 4 of at least %d",
			l.DataMax, MAXH2CDataMin)
	}
	return nil
}

// FES is the Fatal Error Status of a termination request (NVMe/TCP 1.0, "H2CTermReq"; NVMe-oF
// 1.1 §7.4.7).
type FES uint16

const (
	// FESNone is no status on the wire: the connection closes without a termination request.
	// Errors found in a received termination request carry it: the peer is already closing and
	// will not read a reply (NVMe-oF 1.1 §7.4.7; FreeBSD's nvmf_tcp does the same).
	FESNone                 FES = 0x00
	FESInvalidHeaderField   FES = 0x01 // FEI: byte offset of the field
	FESPDUSequenceError     FES = 0x02
	FESHeaderDigestError    FES = 0x03
	FESDataOutOfRange       FES = 0x04 // Data Transfer Out of Range
	FESDataLimitExceeded    FES = 0x05 // Data Transfer Limit Exceeded ("R2T Limit Exceeded" in NVMe-oF 1.1)
	FESUnsupportedParameter FES = 0x06 // FEI: byte offset of the field
)

var fesNames = [...]string{
	FESNone:                 "none",
	FESInvalidHeaderField:   "invalid-header-field",
	FESPDUSequenceError:     "pdu-sequence-error",
	FESHeaderDigestError:    "header-digest-error",
	FESDataOutOfRange:       "data-out-of-range",
	FESDataLimitExceeded:    "data-limit-exceeded",
	FESUnsupportedParameter: "unsupported-parameter",
}

func (f FES) String() string {
	if int(f) < len(fesNames) {
		return fesNames[f]
	}
	return fmt.Sprintf("fes-%#x", uint16(f))
}

// FieldError is a PDU a receiver must not accept: the field that broke a rule, its byte offset
// from the start of the PDU header, its value, and what was wanted. FES and FEI give the
// termination request to send (EncodeTermReq, or TermReq below). Creating one allocates, which
// only happens when a check fails.
type FieldError struct {
	Field  string // spec field name, lower case: "pdu-type", "flags", "hlen", "pdo", "plen", "hdgst", ...
	Offset uint32 // byte offset of the field in the PDU header
	Value  uint32
	Want   string
	fes    FES
}

// NewFieldError builds a FieldError for checks above this package (a TTAG no R2T issued, a
// DATAO out of order): fes says which termination request it implies.
func NewFieldError(fes FES, field string, offset, value uint32, want string) *FieldError {
	return &FieldError{Field: field, Offset: offset, Value: value, Want: want, fes: fes}
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("nvme/tcp pdu: %s (byte %d) is %#x, want %s: %v", e.Field, e.Offset, e.Value, e.Want, e.fes)
}

// FES is the Fatal Error Status to send; FESNone means close without a termination request.
func (e *FieldError) FES() FES { return e.fes }

// FEI is the Fatal Error Information to send: the field's byte offset for an invalid header
// field or unsupported parameter, otherwise 0 (reserved).
func (e *FieldError) FEI() uint32 {
	if e.fes == FESInvalidHeaderField || e.fes == FESUnsupportedParameter {
		return e.Offset
	}
	return 0
}

// TermReq writes the termination request role r sends for e into b, carrying hdr (the
// received PDU header, cut to 128 bytes), and returns its length; 0 if b is too short or e
// implies no termination request (FESNone).
func (e *FieldError) TermReq(b []byte, r Role, hdr []byte) int {
	if e.fes == FESNone {
		return 0
	}
	return EncodeTermReq(b, r.TermReqType(), e.fes, e.FEI(), hdr)
}

// typeSpec is what NVMe/TCP 1.0 fixes per PDU type.
type typeSpec struct {
	hlen  uint8
	flags Flags // flags the type may carry
	data  bool  // may carry PDU data
	hdgst bool  // carries a header digest when header digests are enabled
	ddgst bool  // carries a data digest when data digests are enabled and it has data
	ic    bool  // ICReq/ICResp: no digests, only before IC completes
	term  bool  // termination request: data is the erroneous header, no digests
}

var typeSpecs = [...]typeSpec{
	TypeICReq:       {hlen: ICReqSize, ic: true},
	TypeICResp:      {hlen: ICRespSize, ic: true},
	TypeH2CTermReq:  {hlen: TermReqHeaderSize, data: true, term: true},
	TypeC2HTermReq:  {hlen: TermReqHeaderSize, data: true, term: true},
	TypeCapsuleCmd:  {hlen: CapsuleCmdSize, flags: FlagHDGSTF | FlagDDGSTF, data: true, hdgst: true, ddgst: true},
	TypeCapsuleResp: {hlen: CapsuleRespSize, flags: FlagHDGSTF, hdgst: true},
	TypeH2CData:     {hlen: DataHeaderSize, flags: FlagHDGSTF | FlagDDGSTF | FlagLastPDU, data: true, hdgst: true, ddgst: true},
	TypeC2HData:     {hlen: DataHeaderSize, flags: FlagHDGSTF | FlagDDGSTF | FlagLastPDU | FlagSuccess, data: true, hdgst: true, ddgst: true},
	TypeR2T:         {hlen: R2TSize, flags: FlagHDGSTF, hdgst: true},
}

// specOf returns t's spec; ok is false for an undefined type.
func specOf(t Type) (typeSpec, bool) {
	if int(t) >= len(typeSpecs) || typeSpecs[t].hlen == 0 {
		return typeSpec{}, false
	}
	return typeSpecs[t], true
}

// Layout is where the parts of a PDU lie, in bytes from its first byte.
type Layout struct {
	HeaderLen    uint32 // HLEN
	HeaderDigest bool   // a 4-byte header digest follows the header
	DataOffset   uint32 // where data starts (PDO, or HLEN for a termination request); 0 if none
	DataLen      uint32 // data bytes, digest excluded
	DataDigest   bool   // a 4-byte data digest follows the data
	PDULen       uint32 // PLEN
}

// HeaderEnd is how many bytes precede the data: header, digest and padding. For a PDU without
// data it is the whole PDU.
func (l Layout) HeaderEnd() uint32 {
	if l.DataLen > 0 {
		return l.DataOffset
	}
	return l.PDULen
}

// Layout computes h's layout under lim. It is meaningful only for a header Check accepted with
// the same role and lim (P3); on others it returns numbers without panicking.
func (h *CommonHeader) Layout(lim Limits) Layout {
	spec, _ := specOf(h.Type())
	hd := lim.ICDone && lim.HeaderDigest && spec.hdgst
	l := Layout{HeaderLen: uint32(h.HeaderLen()), HeaderDigest: hd, PDULen: h.PDULen()}
	full := l.HeaderLen + digestLen(hd)
	switch {
	case spec.term && l.PDULen > l.HeaderLen:
		l.DataOffset, l.DataLen = l.HeaderLen, l.PDULen-l.HeaderLen
	case spec.data && l.PDULen > full:
		l.DataDigest = lim.ICDone && lim.DataDigest && spec.ddgst
		l.DataOffset = uint32(h.PDUDataOffset())
		l.DataLen = l.PDULen - l.DataOffset - digestLen(l.DataDigest)
	}
	return l
}

func digestLen(on bool) uint32 {
	if on {
		return DigestSize
	}
	return 0
}

// Check validates the common header of a PDU that role receives, under lim, field by field in
// byte order so the lowest bad field is the one reported (as FreeBSD's nvmf_tcp does): type
// (valid, of the right direction, in sequence), flags (defined for the type; HDGSTF and DDGSTF
// exactly as negotiated; SUCCESS only with LAST_PDU), HLEN (exact per type), PDO (0 without
// data; else at least HLEN plus header digest and a multiple of the data alignment), PLEN
// (exact for header-only PDUs; room for at least one data byte and its digest; data within the
// negotiated limit, else FESDataLimitExceeded). A *FieldError's Offset becomes the FEI of the
// termination request. No allocation unless it fails.
//
// What an accepted header guarantees is listed as P1..P6 in the package comment.
func (h *CommonHeader) Check(role Role, lim Limits) error {
	t := h.Type()
	spec, ok := specOf(t)
	if !ok || !role.receives(t) {
		return &FieldError{"pdu-type", offType, uint32(t), "a " + role.wantTypes(), FESInvalidHeaderField}
	}
	if !spec.term && spec.ic == lim.ICDone {
		want := "the IC PDU first"
		if lim.ICDone {
			want = "no second IC PDU"
		}
		return &FieldError{"pdu-type", offType, uint32(t), want, FESPDUSequenceError}
	}
	c := h.derive(spec, lim)
	if err := h.checkFlags(c, lim); err != nil {
		return err
	}
	if hlen := h.HeaderLen(); hlen != spec.hlen {
		return &FieldError{"hlen", offHeaderLen, uint32(hlen), fmt.Sprint(spec.hlen), c.fes}
	}
	if err := h.checkPDO(c, lim); err != nil {
		return err
	}
	return h.checkPLEN(c, lim)
}

// derived is what Check works out from a header's type, PLEN and the limits before it looks at
// the fields that must agree with it.
type derived struct {
	spec    typeSpec
	fes     FES    // what a bad field of this PDU implies: none for a termination request
	hd      bool   // a header digest follows the header
	full    uint32 // HLEN + header digest
	plen    uint32
	hasData bool // a CapsuleCmd, H2CData or C2HData longer than its header: it carries data
	dd      bool // a data digest follows the data
}

func (h *CommonHeader) derive(spec typeSpec, lim Limits) derived {
	c := derived{spec: spec, fes: FESInvalidHeaderField, plen: h.PDULen()}
	if spec.term {
		c.fes = FESNone
	}
	c.hd = lim.ICDone && lim.HeaderDigest && spec.hdgst
	c.full = uint32(spec.hlen) + digestLen(c.hd)
	c.hasData = spec.data && !spec.term && c.plen > c.full
	c.dd = lim.ICDone && lim.DataDigest && spec.ddgst && c.hasData
	return c
}

// checkFlags: every bit defined for the type (P3), digests exactly as negotiated.
func (h *CommonHeader) checkFlags(c derived, lim Limits) error {
	flags := h.Flags()
	bad := func(want string) error { return &FieldError{"flags", offFlags, uint32(flags), want, c.fes} }
	switch {
	case flags&^c.spec.flags != 0:
		return bad(fmt.Sprintf("only bits %#x for %v", uint8(c.spec.flags), h.Type()))
	case flags&FlagHDGSTF != 0 != c.hd:
		return bad(fmt.Sprintf("HDGSTF %v (header digests %s)", c.hd, onOff(c.hd)))
	case flags&FlagDDGSTF != 0 != c.dd:
		return bad(fmt.Sprintf("DDGSTF %v (data digests %s, data %v)", c.dd, onOff(lim.ICDone && lim.DataDigest), c.hasData))
	case flags&(FlagSuccess|FlagLastPDU) == FlagSuccess:
		return bad("SUCCESS only with LAST_PDU")
	}
	return nil
}

// checkPDO: 0 without data; with data past the header and its digest, aligned, inside PLEN (P4).
func (h *CommonHeader) checkPDO(c derived, lim Limits) error {
	pdo := uint32(h.PDUDataOffset())
	bad := func(want string) error { return &FieldError{"pdo", offDataOffset, pdo, want, c.fes} }
	switch {
	case c.spec.term:
		if pdo != 0 && pdo != uint32(c.spec.hlen) { // SPDK sends 0; the data follows the header
			return bad(fmt.Sprintf("0 or %d", c.spec.hlen))
		}
	case !c.hasData:
		if pdo != 0 && (!c.spec.data || pdo != c.full) { // Linux sends 0 for a capsule without data
			return bad("0 (no data)")
		}
	default:
		if align := lim.Alignment(); pdo < c.full || pdo%align != 0 || pdo > c.plen {
			return bad(fmt.Sprintf("a multiple of %d in %d..%d", align, c.full, c.plen))
		}
	}
	return nil
}

// checkPLEN: exact for header-only PDUs, room for the data and its digest, data within the
// limits (P4, P5, P6).
func (h *CommonHeader) checkPLEN(c derived, lim Limits) error {
	plen, t := c.plen, h.Type()
	bad := func(want string) error { return &FieldError{"plen", offPDULen, plen, want, c.fes} }
	switch {
	case c.spec.ic:
		if plen != uint32(c.spec.hlen) {
			return bad(fmt.Sprint(c.spec.hlen))
		}
	case c.spec.term:
		if plen < uint32(c.spec.hlen) || plen > TermReqPDUSizeMax {
			return bad(fmt.Sprintf("%d..%d", c.spec.hlen, TermReqPDUSizeMax))
		}
	case !c.spec.data:
		if plen != c.full {
			return bad(fmt.Sprint(c.full))
		}
	case plen < c.full:
		return bad(fmt.Sprintf("at least %d (header and digest)", c.full))
	case !c.hasData && t != TypeCapsuleCmd:
		return bad(fmt.Sprintf("more than %d: a %v carries data", c.full, t))
	case c.hasData:
		pdo := uint32(h.PDUDataOffset())
		if plen-pdo <= digestLen(c.dd) {
			return bad(fmt.Sprintf("at least %d (PDO, a data byte, digest)", pdo+1+digestLen(c.dd)))
		}
		dataMax := lim.DataMax
		if t == TypeCapsuleCmd {
			dataMax = lim.CapsuleDataMax
		}
		if n := plen - pdo - digestLen(c.dd); n > dataMax {
			return &FieldError{"plen", offPDULen, plen, fmt.Sprintf("data of at most %d, not %d", dataMax, n), FESDataLimitExceeded}
		}
	}
	return nil
}

func (r Role) wantTypes() string {
	if r == Controller {
		return "host-to-controller type (icreq, h2c-term-req, capsule-cmd, h2c-data)"
	}
	return "controller-to-host type (icresp, c2h-term-req, capsule-resp, c2h-data, r2t)"
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// CheckPSH validates the PDU specific header after its common header passed Check and its
// header digest matched: hdr holds the whole header (HLEN bytes at least). It checks what only
// the full header shows: IC parameters (PFV, PDA range, DGST bits, MAXH2CDATA, reserved bytes),
// that DATAL of a data PDU equals the data PLEN and PDO frame, that R2TL is not zero, and that
// reserved bytes are zero (N3 of protocols/nvme applies to the wire: reserved is zero on
// receive). The command-level checks (CCCID, TTAG, DATAO against the transfer) belong to the
// connection above.
func CheckPSH(hdr []byte, lim Limits) error {
	h := HeaderOf(hdr)
	switch h.Type() {
	case TypeICReq:
		p := ICReqOf(hdr)
		if err := checkIC(hdr, p.PFV(), p.HPDA(), p.DGST()); err != nil {
			return err
		}
	case TypeICResp:
		p := ICRespOf(hdr)
		if err := checkIC(hdr, p.PFV(), p.CPDA(), p.DGST()); err != nil {
			return err
		}
		if n := p.MAXH2CData(); n < MAXH2CDataMin || n%4 != 0 {
			return &FieldError{"maxh2cdata", offMAXH2C, n, fmt.Sprintf("a multiple of 4 of at least %d", MAXH2CDataMin), FESInvalidHeaderField}
		}
	case TypeH2CData, TypeC2HData:
		p := DataHeaderOf(hdr)
		if l := h.Layout(lim); p.DataLen() != l.DataLen {
			return &FieldError{"datal", offDATAL, p.DataLen(), fmt.Sprintf("%d (PLEN-PDO-digest)", l.DataLen), FESInvalidHeaderField}
		}
		if h.Type() == TypeC2HData && p.TTAG() != 0 {
			return &FieldError{"reserved", offTTAG, uint32(p.TTAG()), "0", FESInvalidHeaderField}
		}
		return checkReserved(hdr, offDataRsvd, DataHeaderSize, FESInvalidHeaderField)
	case TypeR2T:
		p := R2THeaderOf(hdr)
		if p.R2TLen() == 0 {
			return &FieldError{"r2tl", offDATAL, 0, "at least 1", FESInvalidHeaderField}
		}
		return checkReserved(hdr, offDataRsvd, R2TSize, FESInvalidHeaderField)
	}
	return nil
}

// checkIC checks the fields ICReq and ICResp share.
func checkIC(hdr []byte, pfv uint16, pda, dgst uint8) error {
	if pfv != PFV10 {
		return &FieldError{"pfv", offPFV, uint32(pfv), "0 (NVMe/TCP 1.0)", FESUnsupportedParameter}
	}
	if pda > PDAMax {
		return &FieldError{"pda", offPDA, uint32(pda), fmt.Sprintf("0..%d", PDAMax), FESInvalidHeaderField}
	}
	if dgst&^(DGSTHeader|DGSTData) != 0 {
		return &FieldError{"dgst", offDGST, uint32(dgst), "only bits 0x3", FESInvalidHeaderField}
	}
	return checkReserved(hdr, offICRsvd, ICReqSize, FESInvalidHeaderField)
}

// checkReserved blames the first non-zero byte of hdr[from:to].
func checkReserved(hdr []byte, from, to int, fes FES) error {
	for i := from; i < to; i++ {
		if hdr[i] != 0 {
			return &FieldError{"reserved", uint32(i), uint32(hdr[i]), "0", fes}
		}
	}
	return nil
}
