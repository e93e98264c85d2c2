package nvme

// CQESize is the size of a completion queue entry (NVMe Base 2.0, "Common Completion Queue
// Entry Layout"; 1.4 §4.6). A fabrics response capsule is one.
const CQESize = 16

// Byte offsets in a CQE.
const (
	offCQEDW0    = 0  // command specific
	offCQEDW1    = 4  // command specific (reserved for most commands)
	offCQESQHD   = 8  // SQ head pointer
	offCQESQID   = 10 // SQ identifier
	offCQECID    = 12 // command identifier
	offCQEStatus = 14 // bit 0 phase tag; bits 15:1 the Status Field
)

const _ = uint(CQESize-16) + uint(16-CQESize) + uint(CQESize-(offCQEStatus+2)) // N1

// Bits of the 16-bit word at offCQEStatus (NVMe Base 2.0, "Status Field Definition").
const (
	cqePhase      = 1 << 0
	cqeSCShift    = 1       // SC in bits 8:1, SCT in 11:9: Status<<1
	cqeCRDShift   = 12      // Command Retry Delay, bits 13:12
	cqeMore       = 1 << 14 // more status information in the Error Information log
	cqeDNR        = 1 << 15 // Do Not Retry
	cqeStatusMask = 0x7FF << cqeSCShift
)

// CQE is one completion queue entry, viewed in place over 16 bytes.
type CQE [CQESize]byte

// CQEOf views the first 16 bytes of b as a CQE; b must hold them.
func CQEOf(b []byte) *CQE { return (*CQE)(b[:CQESize]) }

// Reset zeroes c (N3).
func (c *CQE) Reset() { *c = CQE{} }

func (c *CQE) DW0() uint32            { return get32(c[:], offCQEDW0) }
func (c *CQE) SetDW0(v uint32)        { put32(c[:], offCQEDW0, v) }
func (c *CQE) DW1() uint32            { return get32(c[:], offCQEDW1) }
func (c *CQE) SetDW1(v uint32)        { put32(c[:], offCQEDW1, v) }
func (c *CQE) SQHD() uint16           { return get16(c[:], offCQESQHD) }
func (c *CQE) SetSQHD(h uint16)       { put16(c[:], offCQESQHD, h) }
func (c *CQE) SQID() uint16           { return get16(c[:], offCQESQID) }
func (c *CQE) SetSQID(id uint16)      { put16(c[:], offCQESQID, id) }
func (c *CQE) CID() uint16            { return get16(c[:], offCQECID) }
func (c *CQE) SetCID(cid uint16)      { put16(c[:], offCQECID, cid) }
func (c *CQE) statusWord() uint16     { return get16(c[:], offCQEStatus) }
func (c *CQE) setStatusWord(w uint16) { put16(c[:], offCQEStatus, w) }

// Result64 is DW1:DW0, the value a Property Get completion returns.
func (c *CQE) Result64() uint64 { return get64(c[:], offCQEDW0) }

// SetResult64 sets DW1:DW0.
func (c *CQE) SetResult64(v uint64) { put64(c[:], offCQEDW0, v) }

// Status is SCT and SC from the status field (N5).
func (c *CQE) Status() Status { return Status(c.statusWord()&cqeStatusMask) >> cqeSCShift }

// SetStatus sets SCT and SC, leaving P, CRD, M and DNR as they are (N5).
func (c *CQE) SetStatus(s Status) {
	c.setStatusWord(c.statusWord()&^cqeStatusMask | uint16(s&0x7FF)<<cqeSCShift)
}

func (c *CQE) Phase() bool     { return c.statusWord()&cqePhase != 0 }
func (c *CQE) SetPhase(p bool) { c.setBit(cqePhase, p) }
func (c *CQE) More() bool      { return c.statusWord()&cqeMore != 0 }
func (c *CQE) SetMore(m bool)  { c.setBit(cqeMore, m) }
func (c *CQE) DNR() bool       { return c.statusWord()&cqeDNR != 0 }
func (c *CQE) SetDNR(d bool)   { c.setBit(cqeDNR, d) }

// CRD is the Command Retry Delay index (0..3) into the controller's CRDT fields.
func (c *CQE) CRD() uint8 { return uint8(c.statusWord()>>cqeCRDShift) & 0x3 }

// SetCRD sets the Command Retry Delay index (0..3).
func (c *CQE) SetCRD(crd uint8) {
	c.setStatusWord(c.statusWord()&^(0x3<<cqeCRDShift) | uint16(crd&0x3)<<cqeCRDShift)
}

func (c *CQE) setBit(bit uint16, on bool) {
	w := c.statusWord() &^ bit
	if on {
		w |= bit
	}
	c.setStatusWord(w)
}
