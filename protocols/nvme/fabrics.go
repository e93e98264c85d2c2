package nvme

import "fmt"

// Fabrics commands (NVMe-oF 1.1, "Fabrics Command Set"; NVMe Base 2.0, "Fabrics Command Set"). Every fabrics
// command is an SQE with opcode 7Fh, byte 1 reserved, the CID in bytes 3:2, FCTYPE in byte 4
// and its own fields from byte 40. The views below are conversions of the same 64 bytes.

const offSQEFCType = 4

// FCType is the fabrics command type of an SQE whose opcode is OpcodeFabrics.
func (s *SQE) FCType() FabricsType { return FabricsType(s[offSQEFCType]) }

// SetFabrics makes s a fabrics command of type t: opcode 7Fh, PSDT SGL, FCTYPE t.
func (s *SQE) SetFabrics(t FabricsType) {
	s.SetOpcode(OpcodeFabrics)
	s.SetPSDT(PSDTSGL)
	s[offSQEFCType] = uint8(t)
}

// Connect command fields (NVMe-oF 1.1, "Connect Command – Submission Queue Entry").
const (
	offConnectRECFMT = 40
	offConnectQID    = 42
	offConnectSQSIZE = 44 // 0's based
	offConnectCATTR  = 46
	offConnectKATO   = 48 // milliseconds
)

// Connect CATTR bits.
const (
	ConnectAttrPriorityMask  uint8 = 0x3    // bits 1:0: priority class of an I/O queue
	ConnectAttrDisableSQFlow uint8 = 1 << 2 // host asks for SQ flow control off (no SQHD)
)

// ConnectRECFMT0 is the only Connect record format defined.
const ConnectRECFMT0 uint16 = 0

// ConnectCmd views an SQE as a Connect command.
type ConnectCmd SQE

// Connect views s as a Connect command (check FCType first).
func (s *SQE) Connect() *ConnectCmd { return (*ConnectCmd)(s) }

// SQE returns the underlying entry (CID, SGL1).
func (c *ConnectCmd) SQE() *SQE          { return (*SQE)(c) }
func (c *ConnectCmd) RECFMT() uint16     { return get16(c[:], offConnectRECFMT) }
func (c *ConnectCmd) SetRECFMT(f uint16) { put16(c[:], offConnectRECFMT, f) }
func (c *ConnectCmd) QID() uint16        { return get16(c[:], offConnectQID) }
func (c *ConnectCmd) SetQID(q uint16)    { put16(c[:], offConnectQID, q) }
func (c *ConnectCmd) SQSIZE() uint16     { return get16(c[:], offConnectSQSIZE) }
func (c *ConnectCmd) SetSQSIZE(n uint16) { put16(c[:], offConnectSQSIZE, n) }
func (c *ConnectCmd) CATTR() uint8       { return c[offConnectCATTR] }
func (c *ConnectCmd) SetCATTR(a uint8)   { c[offConnectCATTR] = a }
func (c *ConnectCmd) KATO() uint32       { return get32(c[:], offConnectKATO) }
func (c *ConnectCmd) SetKATO(ms uint32)  { put32(c[:], offConnectKATO, ms) }

// QueueDepth is SQSIZE+1, the number of entries the host asks for.
func (c *ConnectCmd) QueueDepth() uint32 { return uint32(c.SQSIZE()) + 1 }

// ConnectDataSize is the size of the data a Connect command carries (in-capsule on TCP).
const ConnectDataSize = 1024

// Connect data fields (NVMe-oF 1.1, "Connect Command – Data").
const (
	offConnectHostID  = 0 // 16-byte host identifier (a UUID)
	offConnectCNTLID  = 16
	offConnectSubNQN  = 256
	offConnectHostNQN = 512
	nqnFieldSize      = 256
)

// N1: the size is the spec's and the last field ends inside it.
const _ = uint(ConnectDataSize-1024) + uint(1024-ConnectDataSize) +
	uint(ConnectDataSize-(offConnectHostNQN+nqnFieldSize))

// CNTLID values a host puts in Connect data for the admin queue.
const (
	CNTLIDDynamic uint16 = 0xFFFF // dynamic controller model: the subsystem picks one
	CNTLIDStatic  uint16 = 0xFFFE // static model: any controller
)

// ConnectData is the 1024-byte data of a Connect command.
type ConnectData [ConnectDataSize]byte

// ConnectDataOf views the first 1024 bytes of b; b must hold them.
func ConnectDataOf(b []byte) *ConnectData { return (*ConnectData)(b[:ConnectDataSize]) }

func (d *ConnectData) HostID() (id [16]byte) { copy(id[:], d[offConnectHostID:]); return id }
func (d *ConnectData) SetHostID(id [16]byte) { copy(d[offConnectHostID:], id[:]) }
func (d *ConnectData) CNTLID() uint16        { return get16(d[:], offConnectCNTLID) }
func (d *ConnectData) SetCNTLID(id uint16)   { put16(d[:], offConnectCNTLID, id) }

// SubNQN returns the subsystem NQN, or a *ConnectParamError (IATTR 1, IPO 256) when the field
// holds no NUL terminator. The NQN's form is the caller's to check (ValidateNQN).
func (d *ConnectData) SubNQN() (string, error) {
	return d.nqn("subnqn", offConnectSubNQN)
}

// HostNQN returns the host NQN, or a *ConnectParamError (IATTR 1, IPO 512).
func (d *ConnectData) HostNQN() (string, error) {
	return d.nqn("hostnqn", offConnectHostNQN)
}

func (d *ConnectData) nqn(name string, off int) (string, error) {
	s, ok := getCString(d[off : off+nqnFieldSize])
	if !ok {
		return "", &ConnectParamError{Field: name, Offset: uint16(off), InData: true,
			Reason: "no NUL terminator in 256 bytes"}
	}
	return s, nil
}

// SetSubNQN writes the subsystem NQN, NUL-terminated and NUL-padded (N4).
func (d *ConnectData) SetSubNQN(nqn string) error {
	return putNQNField(d[offConnectSubNQN:offConnectSubNQN+nqnFieldSize], "subnqn", nqn)
}

// SetHostNQN writes the host NQN, NUL-terminated and NUL-padded (N4).
func (d *ConnectData) SetHostNQN(nqn string) error {
	return putNQNField(d[offConnectHostNQN:offConnectHostNQN+nqnFieldSize], "hostnqn", nqn)
}

// ConnectParamError names the field of a Connect command (InData false: Offset is a byte of the
// SQE) or of its data (InData true) that made the controller refuse it. It becomes a Connect
// Invalid Parameters completion whose DW0 carries IPO = Offset and IATTR bit 0 = InData
// (NVMe-oF 1.1, "Connect Response": "Invalid Parameter Offset" and "Invalid Attributes").
type ConnectParamError struct {
	Field  string
	Offset uint16
	InData bool
	Reason string
}

func (e *ConnectParamError) Error() string {
	where := "command"
	if e.InData {
		where = "data"
	}
	return fmt.Sprintf("nvme: connect %s %s (byte %d): %s", where, e.Field, e.Offset, e.Reason)
}

// Connect response DW0 (NVMe-oF 1.1, "Connect Response"): on success CNTLID in bits 15:0 and
// AUTHREQ in 31:16; on Connect Invalid Parameters IPO in 15:0 and IATTR in 23:16.

// SetConnectSuccess fills a successful Connect completion.
func (c *CQE) SetConnectSuccess(cntlid, authreq uint16) {
	c.SetStatus(StatusSuccess)
	c.SetDW0(uint32(cntlid) | uint32(authreq)<<16)
}

// ConnectCNTLID is the controller ID of a successful Connect completion.
func (c *CQE) ConnectCNTLID() uint16 { return uint16(c.DW0()) }

// ConnectAUTHREQ is the authentication requirement of a successful Connect completion.
func (c *CQE) ConnectAUTHREQ() uint16 { return uint16(c.DW0() >> 16) }

// SetConnectInvalidParam fills a Connect Invalid Parameters completion for e, with DNR set.
func (c *CQE) SetConnectInvalidParam(e *ConnectParamError) {
	c.SetStatus(StatusConnectInvalidParameters)
	c.SetDNR(true)
	c.SetDW0(uint32(e.Offset) | b2u(e.InData)<<16)
}

// ConnectInvalidParam decodes IPO and IATTR of a Connect Invalid Parameters completion.
func (c *CQE) ConnectInvalidParam() (ipo uint16, inData bool) {
	return uint16(c.DW0()), c.DW0()&(1<<16) != 0
}

// Property Get / Property Set (NVMe-oF 1.1, "Property Get Command", "Property Set Command").
const (
	offPropATTRIB = 40 // bits 2:0: 0 = 4-byte property, 1 = 8-byte
	offPropOFST   = 44
	offPropVALUE  = 48 // Property Set only
)

// PropertyCmd views an SQE as a Property Get or Property Set command.
type PropertyCmd SQE

// Property views s as a Property Get/Set command.
func (s *SQE) Property() *PropertyCmd { return (*PropertyCmd)(s) }

func (p *PropertyCmd) SQE() *SQE { return (*SQE)(p) }

// Size is 4 or 8 bytes from ATTRIB; a reserved encoding returns 0.
func (p *PropertyCmd) Size() int {
	switch p[offPropATTRIB] & 0x7 {
	case 0:
		return 4
	case 1:
		return 8
	}
	return 0
}

// SetSize sets ATTRIB for a 4- or 8-byte property.
func (p *PropertyCmd) SetSize(n int) {
	switch n {
	case 4:
		p[offPropATTRIB] = 0
	case 8:
		p[offPropATTRIB] = 1
	default:
		panic(fmt.Sprintf("nvme: property size %d, want 4 or 8", n))
	}
}

func (p *PropertyCmd) Offset() uint32        { return get32(p[:], offPropOFST) }
func (p *PropertyCmd) SetOffset(ofst uint32) { put32(p[:], offPropOFST, ofst) }
func (p *PropertyCmd) Value() uint64         { return get64(p[:], offPropVALUE) }
func (p *PropertyCmd) SetValue(v uint64)     { put64(p[:], offPropVALUE, v) }

// Authentication Send / Receive (TP 8006; NVMe Base 2.0, "Authentication Send command").
const (
	offAuthSPSP0 = 41
	offAuthSPSP1 = 42
	offAuthSECP  = 43
	offAuthLen   = 44 // TL (send) or AL (receive)
)

// AuthCmd views an SQE as an Authentication Send or Receive command.
type AuthCmd SQE

func (s *SQE) Auth() *AuthCmd         { return (*AuthCmd)(s) }
func (a *AuthCmd) SQE() *SQE          { return (*SQE)(a) }
func (a *AuthCmd) SECP() uint8        { return a[offAuthSECP] }
func (a *AuthCmd) SetSECP(v uint8)    { a[offAuthSECP] = v }
func (a *AuthCmd) SPSP() uint16       { return uint16(a[offAuthSPSP0]) | uint16(a[offAuthSPSP1])<<8 }
func (a *AuthCmd) SetSPSP(v uint16)   { a[offAuthSPSP0], a[offAuthSPSP1] = byte(v), byte(v>>8) }
func (a *AuthCmd) Length() uint32     { return get32(a[:], offAuthLen) }
func (a *AuthCmd) SetLength(n uint32) { put32(a[:], offAuthLen, n) }

// Disconnect (NVMe-oF 1.1, "Disconnect Command"): RECFMT in bytes 41:40.
type DisconnectCmd SQE

func (s *SQE) Disconnect() *DisconnectCmd   { return (*DisconnectCmd)(s) }
func (d *DisconnectCmd) SQE() *SQE          { return (*SQE)(d) }
func (d *DisconnectCmd) RECFMT() uint16     { return get16(d[:], offConnectRECFMT) }
func (d *DisconnectCmd) SetRECFMT(f uint16) { put16(d[:], offConnectRECFMT, f) }
