package nvme

// Controller properties a fabrics host reaches with Property Get/Set instead of MMIO (NVMe-oF
// 1.1, "Property Definitions"; NVMe Base 2.0, "Controller Properties").
const (
	PropCAP  uint32 = 0x00 // Controller Capabilities, 8 bytes
	PropVS   uint32 = 0x08 // Version, 4 bytes
	PropCC   uint32 = 0x14 // Controller Configuration, 4 bytes
	PropCSTS uint32 = 0x1C // Controller Status, 4 bytes
	PropNSSR uint32 = 0x20 // NVM Subsystem Reset, 4 bytes (optional)
)

// NSSRReset is the value written to NSSR to reset the subsystem ("NVMe").
const NSSRReset uint32 = 0x4E564D65

// PropertySize is the size of the property at ofst, or 0 when none is defined there for a
// fabrics controller (the Property Get/Set is then Invalid Field).
func PropertySize(ofst uint32) int {
	switch ofst {
	case PropCAP:
		return 8
	case PropVS, PropCC, PropCSTS, PropNSSR:
		return 4
	}
	return 0
}

// Version is the VS property and the Identify Controller VER field: MJR in bits 31:16, MNR in
// 15:8, TER in 7:0.
type Version uint32

// Versions a fabrics target reports.
const (
	Version1_3 Version = 0x00010300
	Version1_4 Version = 0x00010400
	Version2_0 Version = 0x00020000
)

// MakeVersion builds a Version.
func MakeVersion(major uint16, minor, tertiary uint8) Version {
	return Version(major)<<16 | Version(minor)<<8 | Version(tertiary)
}

func (v Version) Major() uint16   { return uint16(v >> 16) }
func (v Version) Minor() uint8    { return uint8(v >> 8) }
func (v Version) Tertiary() uint8 { return uint8(v) }

// CAP is the Controller Capabilities property (NVMe Base 2.0, "Offset 0h: CAP").
type CAP uint64

// CAP.CSS bits (CAP bits 44:37, here shifted down to 7:0).
const (
	CAPCSSNVM    uint8 = 1 << 0 // NVM command set
	CAPCSSIOCS   uint8 = 1 << 6 // one or more I/O command sets
	CAPCSSNoIOCS uint8 = 1 << 7 // admin only (a discovery controller in NVMe 2.0)
)

// CAPFields are the CAP fields a fabrics controller reports.
type CAPFields struct {
	MQES   uint16 // maximum queue entries supported, 0's based
	CQR    bool   // contiguous queues required (1 for fabrics)
	AMS    uint8  // arbitration mechanisms supported (bits 1:0)
	TO     uint8  // timeout for CSTS.RDY changes, in 500 ms units
	DSTRD  uint8  // doorbell stride (0 for fabrics)
	NSSRS  bool   // NVM subsystem reset supported
	CSS    uint8  // command sets supported (CAPCSS* bits)
	BPS    bool   // boot partition support
	MPSMIN uint8  // minimum memory page size 2^(12+MPSMIN)
	MPSMAX uint8  // maximum memory page size 2^(12+MPSMAX)
	CMBS   bool   // controller memory buffer supported
}

// Fields decodes c.
func (c CAP) Fields() CAPFields {
	v := uint64(c)
	return CAPFields{
		MQES:   uint16(v),
		CQR:    v>>16&1 != 0,
		AMS:    uint8(v>>17) & 0x3,
		TO:     uint8(v >> 24),
		DSTRD:  uint8(v>>32) & 0xF,
		NSSRS:  v>>36&1 != 0,
		CSS:    uint8(v >> 37),
		BPS:    v>>45&1 != 0,
		MPSMIN: uint8(v>>48) & 0xF,
		MPSMAX: uint8(v>>52) & 0xF,
		CMBS:   v>>57&1 != 0,
	}
}

// CAP encodes f.
func (f CAPFields) CAP() CAP {
	v := uint64(f.MQES) |
		uint64(b2u(f.CQR))<<16 |
		uint64(f.AMS&0x3)<<17 |
		uint64(f.TO)<<24 |
		uint64(f.DSTRD&0xF)<<32 |
		uint64(b2u(f.NSSRS))<<36 |
		uint64(f.CSS)<<37 |
		uint64(b2u(f.BPS))<<45 |
		uint64(f.MPSMIN&0xF)<<48 |
		uint64(f.MPSMAX&0xF)<<52 |
		uint64(b2u(f.CMBS))<<57
	return CAP(v)
}

// CC is the Controller Configuration property (NVMe Base 2.0, "Offset 14h: CC").
type CC uint32

// CC.CSS values.
const (
	CCCSSNVM       uint8 = 0 // NVM command set
	CCCSSAllIOCS   uint8 = 6 // all supported I/O command sets
	CCCSSAdminOnly uint8 = 7
)

// CC.SHN values: shutdown notification.
const (
	ShutdownNone   uint8 = 0
	ShutdownNormal uint8 = 1
	ShutdownAbrupt uint8 = 2
)

// CCFields are the CC fields a host writes.
type CCFields struct {
	EN     bool  // enable
	CSS    uint8 // I/O command set selected (3 bits)
	MPS    uint8 // memory page size 2^(12+MPS)
	AMS    uint8 // arbitration mechanism selected (3 bits)
	SHN    uint8 // shutdown notification (2 bits)
	IOSQES uint8 // I/O SQ entry size 2^n (6 for 64 bytes)
	IOCQES uint8 // I/O CQ entry size 2^n (4 for 16 bytes)
	CRIME  bool  // controller ready independent of media enable (NVMe 2.0)
}

// Fields decodes c.
func (c CC) Fields() CCFields {
	v := uint32(c)
	return CCFields{
		EN:     v&1 != 0,
		CSS:    uint8(bits32(v, 4, 3)),
		MPS:    uint8(bits32(v, 7, 4)),
		AMS:    uint8(bits32(v, 11, 3)),
		SHN:    uint8(bits32(v, 14, 2)),
		IOSQES: uint8(bits32(v, 16, 4)),
		IOCQES: uint8(bits32(v, 20, 4)),
		CRIME:  bits32(v, 24, 1) != 0,
	}
}

// CC encodes f.
func (f CCFields) CC() CC {
	var v uint32
	v = setBits32(v, 0, 1, b2u(f.EN))
	v = setBits32(v, 4, 3, uint32(f.CSS))
	v = setBits32(v, 7, 4, uint32(f.MPS))
	v = setBits32(v, 11, 3, uint32(f.AMS))
	v = setBits32(v, 14, 2, uint32(f.SHN))
	v = setBits32(v, 16, 4, uint32(f.IOSQES))
	v = setBits32(v, 20, 4, uint32(f.IOCQES))
	v = setBits32(v, 24, 1, b2u(f.CRIME))
	return CC(v)
}

// CSTS is the Controller Status property (NVMe Base 2.0, "Offset 1Ch: CSTS").
type CSTS uint32

// CSTS.SHST values: shutdown status.
const (
	ShutdownStatusNormal     uint8 = 0 // normal operation
	ShutdownStatusProcessing uint8 = 1
	ShutdownStatusComplete   uint8 = 2
)

// CSTSFields are the CSTS fields a controller reports.
type CSTSFields struct {
	RDY   bool  // ready
	CFS   bool  // controller fatal status
	SHST  uint8 // shutdown status (2 bits)
	NSSRO bool  // NVM subsystem reset occurred
	PP    bool  // processing paused
	ST    bool  // shutdown type: subsystem (NVMe 2.0)
}

// Fields decodes c.
func (c CSTS) Fields() CSTSFields {
	v := uint32(c)
	return CSTSFields{
		RDY:   v&1 != 0,
		CFS:   bits32(v, 1, 1) != 0,
		SHST:  uint8(bits32(v, 2, 2)),
		NSSRO: bits32(v, 4, 1) != 0,
		PP:    bits32(v, 5, 1) != 0,
		ST:    bits32(v, 6, 1) != 0,
	}
}

// CSTS encodes f.
func (f CSTSFields) CSTS() CSTS {
	var v uint32
	v = setBits32(v, 0, 1, b2u(f.RDY))
	v = setBits32(v, 1, 1, b2u(f.CFS))
	v = setBits32(v, 2, 2, uint32(f.SHST))
	v = setBits32(v, 4, 1, b2u(f.NSSRO))
	v = setBits32(v, 5, 1, b2u(f.PP))
	v = setBits32(v, 6, 1, b2u(f.ST))
	return CSTS(v)
}
