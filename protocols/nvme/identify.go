package nvme

import "fmt"

// IdentifySize is the size of every Identify data structure.
const IdentifySize = 4096

// Identify Controller data structure (NVMe Base 2.0, "Identify Controller Data
// Structure"; NVMe-oF 1.1 adds bytes 2047:1792). Byte offsets:
const (
	offIDCtrlVID           = 0    // PCI vendor ID (2)
	offIDCtrlSSVID         = 2    // PCI subsystem vendor ID (2)
	offIDCtrlSN            = 4    // serial number, ASCII (20)
	offIDCtrlMN            = 24   // model number, ASCII (40)
	offIDCtrlFR            = 64   // firmware revision, ASCII (8)
	offIDCtrlRAB           = 72   // recommended arbitration burst
	offIDCtrlIEEE          = 73   // IEEE OUI (3), least significant byte first
	offIDCtrlCMIC          = 76   // multi-path I/O and namespace sharing capabilities
	offIDCtrlMDTS          = 77   // maximum data transfer size, 2^n min pages; 0 = no limit
	offIDCtrlCNTLID        = 78   // controller ID
	offIDCtrlVER           = 80   // version (same encoding as VS)
	offIDCtrlOAES          = 92   // optional asynchronous events supported
	offIDCtrlCTRATT        = 96   // controller attributes
	offIDCtrlCNTRLTYPE     = 111  // controller type
	offIDCtrlOACS          = 256  // optional admin command support
	offIDCtrlACL           = 258  // abort command limit, 0's based
	offIDCtrlAERL          = 259  // asynchronous event request limit, 0's based
	offIDCtrlFRMW          = 260  // firmware updates
	offIDCtrlLPA           = 261  // log page attributes
	offIDCtrlELPE          = 262  // error log page entries, 0's based
	offIDCtrlNPSS          = 263  // number of power states support, 0's based
	offIDCtrlKAS           = 320  // keep alive support, 100 ms units; 0 = not supported
	offIDCtrlSQES          = 512  // SQ entry size: required (3:0), maximum (7:4), 2^n
	offIDCtrlCQES          = 513  // CQ entry size
	offIDCtrlMAXCMD        = 514  // maximum outstanding commands (fabrics)
	offIDCtrlNN            = 516  // number of namespaces (largest NSID)
	offIDCtrlONCS          = 520  // optional NVM command support
	offIDCtrlFUSES         = 522  // fused operation support
	offIDCtrlFNA           = 524  // format NVM attributes
	offIDCtrlVWC           = 525  // volatile write cache
	offIDCtrlAWUN          = 526  // atomic write unit normal
	offIDCtrlAWUPF         = 528  // atomic write unit power fail
	offIDCtrlACWU          = 532  // atomic compare & write unit
	offIDCtrlSGLS          = 536  // SGL support
	offIDCtrlMNAN          = 540  // maximum number of allowed namespaces
	offIDCtrlSUBNQN        = 768  // NVM subsystem NQN, NUL-terminated UTF-8 (256)
	offIDCtrlIOCCSZ        = 1792 // I/O queue command capsule supported size, 16-byte units
	offIDCtrlIORCSZ        = 1796 // I/O queue response capsule supported size, 16-byte units
	offIDCtrlICDOFF        = 1800 // in-capsule data offset, 16-byte units
	offIDCtrlFCATT         = 1802 // fabrics controller attributes
	offIDCtrlMSDBD         = 1803 // maximum SGL data block descriptors
	offIDCtrlOFCS          = 1804 // optional fabric commands support
	offIDCtrlPSD0          = 2048 // power state descriptors, 32 bytes each
	offIDCtrlVS            = 3072 // vendor specific
	snSize, mnSize, frSize = 20, 40, 8
)

// N1: the size is the spec's and the last field ends inside it.
const _ = uint(IdentifySize-4096) + uint(4096-IdentifySize) +
	uint(offIDCtrlVS-(offIDCtrlOFCS+2)) +
	uint(IdentifySize-offIDCtrlVS)

// CMIC bits.
const (
	CMICMultiPort       uint8 = 1 << 0
	CMICMultiController uint8 = 1 << 1
	CMICSRIOV           uint8 = 1 << 2
	CMICANA             uint8 = 1 << 3
)

// OAES bits.
const (
	OAESNSAttribute    uint32 = 1 << 8  // namespace attribute notices
	OAESFirmwareActive uint32 = 1 << 9  // firmware activation notices
	OAESANAChange      uint32 = 1 << 11 // ANA change notices
	OAESDiscoveryLog   uint32 = 1 << 31 // discovery log page change notices
)

// CTRATT bits.
const (
	CTRATTHostID128 uint32 = 1 << 0 // 128-bit host identifier
	CTRATTTBKAS     uint32 = 1 << 6 // traffic based keep alive
)

// CNTRLTYPE values.
const (
	ControllerTypeIO        uint8 = 1
	ControllerTypeDiscovery uint8 = 2
	ControllerTypeAdmin     uint8 = 3
)

// LPA bits.
const (
	LPASMARTPerNS       uint8 = 1 << 0
	LPACommandsEffects  uint8 = 1 << 1
	LPAExtendedData     uint8 = 1 << 2 // Get Log Page extended data (NUMDU, LPO)
	LPATelemetry        uint8 = 1 << 3
	LPAPersistentEvents uint8 = 1 << 4
)

// ONCS bits.
const (
	ONCSCompare            uint16 = 1 << 0
	ONCSWriteUncorrectable uint16 = 1 << 1
	ONCSDatasetManagement  uint16 = 1 << 2
	ONCSWriteZeroes        uint16 = 1 << 3
	ONCSSaveSelect         uint16 = 1 << 4
	ONCSReservations       uint16 = 1 << 5
	ONCSTimestamp          uint16 = 1 << 6
	ONCSVerify             uint16 = 1 << 7
	ONCSCopy               uint16 = 1 << 8
)

// FUSES bits.
const FUSESCompareAndWrite uint16 = 1 << 0

// VWC bits: present (0); bits 2:1 say whether Flush with NSID FFFFFFFFh is supported.
const (
	VWCPresent         uint8 = 1 << 0
	VWCFlushAllNotSupp uint8 = 2 << 1
	VWCFlushAllSupport uint8 = 3 << 1
)

// SGLS bits.
const (
	SGLSSupported      uint32 = 1 << 0 // bits 1:0 = 01b: SGLs supported, no alignment needed
	SGLSDwordAligned   uint32 = 2 << 0 // bits 1:0 = 10b
	SGLSKeyed          uint32 = 1 << 2
	SGLSBitBucket      uint32 = 1 << 16
	SGLSMetaByteAlign  uint32 = 1 << 17
	SGLSOversized      uint32 = 1 << 18
	SGLSMPTRSGL        uint32 = 1 << 19
	SGLSAddressOffset  uint32 = 1 << 20 // the Offset subtype (in-capsule data)
	SGLSTransportBlock uint32 = 1 << 21 // Transport SGL Data Block
)

// OFCS bits.
const OFCSDisconnect uint16 = 1 << 0

// FCATT bits: 0 = dynamic controller model, 1 = static.
const FCATTStatic uint8 = 1 << 0

// QueueEntrySizes packs SQES/CQES: required size in bits 3:0, maximum in 7:4, both as log2.
func QueueEntrySizes(requiredLog2, maxLog2 uint8) uint8 { return requiredLog2&0xF | maxLog2<<4 }

// SQES64 and CQES16 are the entry sizes every NVMe controller uses.
const (
	SQES64 uint8 = 6 | 6<<4
	CQES16 uint8 = 4 | 4<<4
)

// IdentifyController is the Identify Controller data structure (CNS 01h).
type IdentifyController [IdentifySize]byte

func (c *IdentifyController) Reset() { *c = IdentifyController{} }

func (c *IdentifyController) VID() uint16          { return get16(c[:], offIDCtrlVID) }
func (c *IdentifyController) SetVID(v uint16)      { put16(c[:], offIDCtrlVID, v) }
func (c *IdentifyController) SSVID() uint16        { return get16(c[:], offIDCtrlSSVID) }
func (c *IdentifyController) SetSSVID(v uint16)    { put16(c[:], offIDCtrlSSVID, v) }
func (c *IdentifyController) SN() string           { return getASCII(c[offIDCtrlSN : offIDCtrlSN+snSize]) }
func (c *IdentifyController) MN() string           { return getASCII(c[offIDCtrlMN : offIDCtrlMN+mnSize]) }
func (c *IdentifyController) FR() string           { return getASCII(c[offIDCtrlFR : offIDCtrlFR+frSize]) }
func (c *IdentifyController) RAB() uint8           { return c[offIDCtrlRAB] }
func (c *IdentifyController) SetRAB(v uint8)       { c[offIDCtrlRAB] = v }
func (c *IdentifyController) IEEE() uint32         { return get24(c[:], offIDCtrlIEEE) }
func (c *IdentifyController) SetIEEE(oui uint32)   { put24(c[:], offIDCtrlIEEE, oui) }
func (c *IdentifyController) CMIC() uint8          { return c[offIDCtrlCMIC] }
func (c *IdentifyController) SetCMIC(v uint8)      { c[offIDCtrlCMIC] = v }
func (c *IdentifyController) MDTS() uint8          { return c[offIDCtrlMDTS] }
func (c *IdentifyController) SetMDTS(v uint8)      { c[offIDCtrlMDTS] = v }
func (c *IdentifyController) CNTLID() uint16       { return get16(c[:], offIDCtrlCNTLID) }
func (c *IdentifyController) SetCNTLID(v uint16)   { put16(c[:], offIDCtrlCNTLID, v) }
func (c *IdentifyController) VER() Version         { return Version(get32(c[:], offIDCtrlVER)) }
func (c *IdentifyController) SetVER(v Version)     { put32(c[:], offIDCtrlVER, uint32(v)) }
func (c *IdentifyController) OAES() uint32         { return get32(c[:], offIDCtrlOAES) }
func (c *IdentifyController) SetOAES(v uint32)     { put32(c[:], offIDCtrlOAES, v) }
func (c *IdentifyController) CTRATT() uint32       { return get32(c[:], offIDCtrlCTRATT) }
func (c *IdentifyController) SetCTRATT(v uint32)   { put32(c[:], offIDCtrlCTRATT, v) }
func (c *IdentifyController) CNTRLTYPE() uint8     { return c[offIDCtrlCNTRLTYPE] }
func (c *IdentifyController) SetCNTRLTYPE(v uint8) { c[offIDCtrlCNTRLTYPE] = v }
func (c *IdentifyController) OACS() uint16         { return get16(c[:], offIDCtrlOACS) }
func (c *IdentifyController) SetOACS(v uint16)     { put16(c[:], offIDCtrlOACS, v) }
func (c *IdentifyController) ACL() uint8           { return c[offIDCtrlACL] }
func (c *IdentifyController) SetACL(v uint8)       { c[offIDCtrlACL] = v }
func (c *IdentifyController) AERL() uint8          { return c[offIDCtrlAERL] }
func (c *IdentifyController) SetAERL(v uint8)      { c[offIDCtrlAERL] = v }
func (c *IdentifyController) FRMW() uint8          { return c[offIDCtrlFRMW] }
func (c *IdentifyController) SetFRMW(v uint8)      { c[offIDCtrlFRMW] = v }
func (c *IdentifyController) LPA() uint8           { return c[offIDCtrlLPA] }
func (c *IdentifyController) SetLPA(v uint8)       { c[offIDCtrlLPA] = v }
func (c *IdentifyController) ELPE() uint8          { return c[offIDCtrlELPE] }
func (c *IdentifyController) SetELPE(v uint8)      { c[offIDCtrlELPE] = v }
func (c *IdentifyController) NPSS() uint8          { return c[offIDCtrlNPSS] }
func (c *IdentifyController) SetNPSS(v uint8)      { c[offIDCtrlNPSS] = v }
func (c *IdentifyController) KAS() uint16          { return get16(c[:], offIDCtrlKAS) }
func (c *IdentifyController) SetKAS(v uint16)      { put16(c[:], offIDCtrlKAS, v) }
func (c *IdentifyController) SQES() uint8          { return c[offIDCtrlSQES] }
func (c *IdentifyController) SetSQES(v uint8)      { c[offIDCtrlSQES] = v }
func (c *IdentifyController) CQES() uint8          { return c[offIDCtrlCQES] }
func (c *IdentifyController) SetCQES(v uint8)      { c[offIDCtrlCQES] = v }
func (c *IdentifyController) MAXCMD() uint16       { return get16(c[:], offIDCtrlMAXCMD) }
func (c *IdentifyController) SetMAXCMD(v uint16)   { put16(c[:], offIDCtrlMAXCMD, v) }
func (c *IdentifyController) NN() uint32           { return get32(c[:], offIDCtrlNN) }
func (c *IdentifyController) SetNN(v uint32)       { put32(c[:], offIDCtrlNN, v) }
func (c *IdentifyController) ONCS() uint16         { return get16(c[:], offIDCtrlONCS) }
func (c *IdentifyController) SetONCS(v uint16)     { put16(c[:], offIDCtrlONCS, v) }
func (c *IdentifyController) FUSES() uint16        { return get16(c[:], offIDCtrlFUSES) }
func (c *IdentifyController) SetFUSES(v uint16)    { put16(c[:], offIDCtrlFUSES, v) }
func (c *IdentifyController) FNA() uint8           { return c[offIDCtrlFNA] }
func (c *IdentifyController) SetFNA(v uint8)       { c[offIDCtrlFNA] = v }
func (c *IdentifyController) VWC() uint8           { return c[offIDCtrlVWC] }
func (c *IdentifyController) SetVWC(v uint8)       { c[offIDCtrlVWC] = v }
func (c *IdentifyController) AWUN() uint16         { return get16(c[:], offIDCtrlAWUN) }
func (c *IdentifyController) SetAWUN(v uint16)     { put16(c[:], offIDCtrlAWUN, v) }
func (c *IdentifyController) AWUPF() uint16        { return get16(c[:], offIDCtrlAWUPF) }
func (c *IdentifyController) SetAWUPF(v uint16)    { put16(c[:], offIDCtrlAWUPF, v) }
func (c *IdentifyController) ACWU() uint16         { return get16(c[:], offIDCtrlACWU) }
func (c *IdentifyController) SetACWU(v uint16)     { put16(c[:], offIDCtrlACWU, v) }
func (c *IdentifyController) SGLS() uint32         { return get32(c[:], offIDCtrlSGLS) }
func (c *IdentifyController) SetSGLS(v uint32)     { put32(c[:], offIDCtrlSGLS, v) }
func (c *IdentifyController) MNAN() uint32         { return get32(c[:], offIDCtrlMNAN) }
func (c *IdentifyController) SetMNAN(v uint32)     { put32(c[:], offIDCtrlMNAN, v) }
func (c *IdentifyController) IOCCSZ() uint32       { return get32(c[:], offIDCtrlIOCCSZ) }
func (c *IdentifyController) SetIOCCSZ(v uint32)   { put32(c[:], offIDCtrlIOCCSZ, v) }
func (c *IdentifyController) IORCSZ() uint32       { return get32(c[:], offIDCtrlIORCSZ) }
func (c *IdentifyController) SetIORCSZ(v uint32)   { put32(c[:], offIDCtrlIORCSZ, v) }
func (c *IdentifyController) ICDOFF() uint16       { return get16(c[:], offIDCtrlICDOFF) }
func (c *IdentifyController) SetICDOFF(v uint16)   { put16(c[:], offIDCtrlICDOFF, v) }
func (c *IdentifyController) FCATT() uint8         { return c[offIDCtrlFCATT] }
func (c *IdentifyController) SetFCATT(v uint8)     { c[offIDCtrlFCATT] = v }
func (c *IdentifyController) MSDBD() uint8         { return c[offIDCtrlMSDBD] }
func (c *IdentifyController) SetMSDBD(v uint8)     { c[offIDCtrlMSDBD] = v }
func (c *IdentifyController) OFCS() uint16         { return get16(c[:], offIDCtrlOFCS) }
func (c *IdentifyController) SetOFCS(v uint16)     { put16(c[:], offIDCtrlOFCS, v) }

// SetSN sets the serial number: printable ASCII, space-padded, at most 20 bytes (N4).
func (c *IdentifyController) SetSN(s string) error {
	return putASCII(c[offIDCtrlSN:offIDCtrlSN+snSize], "sn", s)
}

// SetMN sets the model number: printable ASCII, space-padded, at most 40 bytes.
func (c *IdentifyController) SetMN(s string) error {
	return putASCII(c[offIDCtrlMN:offIDCtrlMN+mnSize], "mn", s)
}

// SetFR sets the firmware revision: printable ASCII, space-padded, at most 8 bytes.
func (c *IdentifyController) SetFR(s string) error {
	return putASCII(c[offIDCtrlFR:offIDCtrlFR+frSize], "fr", s)
}

// SubNQN returns the subsystem NQN, or an error if the field has no NUL terminator.
func (c *IdentifyController) SubNQN() (string, error) {
	s, ok := getCString(c[offIDCtrlSUBNQN : offIDCtrlSUBNQN+nqnFieldSize])
	if !ok {
		return "", fmt.Errorf("nvme: identify controller subnqn (byte %d): no NUL terminator", offIDCtrlSUBNQN)
	}
	return s, nil
}

// SetSubNQN sets the subsystem NQN, NUL-terminated and NUL-padded (N4).
func (c *IdentifyController) SetSubNQN(nqn string) error {
	return putNQNField(c[offIDCtrlSUBNQN:offIDCtrlSUBNQN+nqnFieldSize], "subnqn", nqn)
}

// MaxTransferSize is the largest data transfer in bytes MDTS allows for a controller whose
// CAP.MPSMIN is mpsmin, or 0 when MDTS is 0 (no limit).
func (c *IdentifyController) MaxTransferSize(mpsmin uint8) uint64 {
	if c.MDTS() == 0 {
		return 0
	}
	return uint64(1) << (12 + uint(mpsmin) + uint(c.MDTS()))
}

// Identify Namespace data structure, NVM command set (NVM Command Set 1.0, "Identify
// Namespace Data Structure"; NVMe 1.4, "Identify Namespace Data Structure"). Byte offsets:
const (
	offIDNsNSZE     = 0   // namespace size, blocks
	offIDNsNCAP     = 8   // namespace capacity, blocks
	offIDNsNUSE     = 16  // namespace utilization, blocks
	offIDNsNSFEAT   = 24  // namespace features
	offIDNsNLBAF    = 25  // number of LBA formats, 0's based
	offIDNsFLBAS    = 26  // formatted LBA size: index in 3:0 (and 6:5 in 2.0), extended bit 4
	offIDNsMC       = 27  // metadata capabilities
	offIDNsDPC      = 28  // end-to-end protection capabilities
	offIDNsDPS      = 29  // end-to-end protection type settings
	offIDNsNMIC     = 30  // namespace multi-path I/O and sharing
	offIDNsRESCAP   = 31  // reservation capabilities
	offIDNsFPI      = 32  // format progress indicator
	offIDNsDLFEAT   = 33  // deallocate logical block features
	offIDNsNAWUN    = 34  // namespace atomic write unit normal
	offIDNsNAWUPF   = 36  // namespace atomic write unit power fail
	offIDNsNACWU    = 38  // namespace atomic compare & write unit
	offIDNsNABSN    = 40  // namespace atomic boundary size normal
	offIDNsNABO     = 42  // namespace atomic boundary offset
	offIDNsNABSPF   = 44  // namespace atomic boundary size power fail
	offIDNsNOIOB    = 46  // namespace optimal I/O boundary
	offIDNsNVMCAP   = 48  // NVM capacity, bytes (16)
	offIDNsNPWG     = 64  // preferred write granularity, 0's based blocks
	offIDNsNPWA     = 66  // preferred write alignment
	offIDNsNPDG     = 68  // preferred deallocate granularity
	offIDNsNPDA     = 70  // preferred deallocate alignment
	offIDNsNOWS     = 72  // optimal write size, 0's based blocks
	offIDNsANAGRPID = 92  // ANA group identifier
	offIDNsNSATTR   = 99  // namespace attributes (bit 0: write protected)
	offIDNsNVMSETID = 100 // NVM set identifier
	offIDNsENDGID   = 102 // endurance group identifier
	offIDNsNGUID    = 104 // namespace globally unique identifier (16)
	offIDNsEUI64    = 120 // IEEE extended unique identifier (8)
	offIDNsLBAF0    = 128 // LBA format 0..63, 4 bytes each
	lbafCountMax    = 64
)

const _ = uint(offIDNsLBAF0-(offIDNsEUI64+8)) + uint(IdentifySize-(offIDNsLBAF0+4*lbafCountMax)) // N1

// NSFEAT bits.
const (
	NSFEATThinProvisioning uint8 = 1 << 0
	NSFEATAtomicNS         uint8 = 1 << 1 // NAWUN, NAWUPF, NACWU are valid
	NSFEATDeallocError     uint8 = 1 << 2 // DULBE supported
	NSFEATGUIDNeverReused  uint8 = 1 << 3
	NSFEATOptPerf          uint8 = 1 << 4 // NPWG, NPWA, NPDG, NPDA, NOWS are valid
)

// DLFEAT values: bits 2:0 say what reading a deallocated block returns; bit 3 says Write
// Zeroes with DEAC deallocates.
const (
	DLFEATReadUnreported         uint8 = 0
	DLFEATReadZeroes             uint8 = 1
	DLFEATReadOnes               uint8 = 2
	DLFEATWriteZeroesDeallocates uint8 = 1 << 3
)

// NMIC bits.
const NMICShared uint8 = 1 << 0

// LBAFormat is one LBA Format entry: metadata size, data size as log2 (LBADS), relative
// performance.
type LBAFormat struct {
	MS    uint16 // metadata bytes per block
	LBADS uint8  // block size is 2^LBADS bytes (9 = 512, 12 = 4096); 0 = format not supported
	RP    uint8  // relative performance, 0 best .. 3 degraded
}

// IdentifyNamespace is the Identify Namespace data structure (CNS 00h).
type IdentifyNamespace [IdentifySize]byte

func (n *IdentifyNamespace) Reset() { *n = IdentifyNamespace{} }

func (n *IdentifyNamespace) NSZE() uint64         { return get64(n[:], offIDNsNSZE) }
func (n *IdentifyNamespace) SetNSZE(v uint64)     { put64(n[:], offIDNsNSZE, v) }
func (n *IdentifyNamespace) NCAP() uint64         { return get64(n[:], offIDNsNCAP) }
func (n *IdentifyNamespace) SetNCAP(v uint64)     { put64(n[:], offIDNsNCAP, v) }
func (n *IdentifyNamespace) NUSE() uint64         { return get64(n[:], offIDNsNUSE) }
func (n *IdentifyNamespace) SetNUSE(v uint64)     { put64(n[:], offIDNsNUSE, v) }
func (n *IdentifyNamespace) NSFEAT() uint8        { return n[offIDNsNSFEAT] }
func (n *IdentifyNamespace) SetNSFEAT(v uint8)    { n[offIDNsNSFEAT] = v }
func (n *IdentifyNamespace) NLBAF() uint8         { return n[offIDNsNLBAF] }
func (n *IdentifyNamespace) SetNLBAF(v uint8)     { n[offIDNsNLBAF] = v }
func (n *IdentifyNamespace) FLBAS() uint8         { return n[offIDNsFLBAS] }
func (n *IdentifyNamespace) SetFLBAS(v uint8)     { n[offIDNsFLBAS] = v }
func (n *IdentifyNamespace) MC() uint8            { return n[offIDNsMC] }
func (n *IdentifyNamespace) SetMC(v uint8)        { n[offIDNsMC] = v }
func (n *IdentifyNamespace) DPC() uint8           { return n[offIDNsDPC] }
func (n *IdentifyNamespace) DPS() uint8           { return n[offIDNsDPS] }
func (n *IdentifyNamespace) NMIC() uint8          { return n[offIDNsNMIC] }
func (n *IdentifyNamespace) SetNMIC(v uint8)      { n[offIDNsNMIC] = v }
func (n *IdentifyNamespace) RESCAP() uint8        { return n[offIDNsRESCAP] }
func (n *IdentifyNamespace) SetRESCAP(v uint8)    { n[offIDNsRESCAP] = v }
func (n *IdentifyNamespace) FPI() uint8           { return n[offIDNsFPI] }
func (n *IdentifyNamespace) DLFEAT() uint8        { return n[offIDNsDLFEAT] }
func (n *IdentifyNamespace) SetDLFEAT(v uint8)    { n[offIDNsDLFEAT] = v }
func (n *IdentifyNamespace) NAWUN() uint16        { return get16(n[:], offIDNsNAWUN) }
func (n *IdentifyNamespace) SetNAWUN(v uint16)    { put16(n[:], offIDNsNAWUN, v) }
func (n *IdentifyNamespace) NAWUPF() uint16       { return get16(n[:], offIDNsNAWUPF) }
func (n *IdentifyNamespace) SetNAWUPF(v uint16)   { put16(n[:], offIDNsNAWUPF, v) }
func (n *IdentifyNamespace) NACWU() uint16        { return get16(n[:], offIDNsNACWU) }
func (n *IdentifyNamespace) SetNACWU(v uint16)    { put16(n[:], offIDNsNACWU, v) }
func (n *IdentifyNamespace) NOIOB() uint16        { return get16(n[:], offIDNsNOIOB) }
func (n *IdentifyNamespace) SetNOIOB(v uint16)    { put16(n[:], offIDNsNOIOB, v) }
func (n *IdentifyNamespace) NVMCAP() Uint128      { return get128(n[:], offIDNsNVMCAP) }
func (n *IdentifyNamespace) SetNVMCAP(v Uint128)  { put128(n[:], offIDNsNVMCAP, v) }
func (n *IdentifyNamespace) NPWG() uint16         { return get16(n[:], offIDNsNPWG) }
func (n *IdentifyNamespace) SetNPWG(v uint16)     { put16(n[:], offIDNsNPWG, v) }
func (n *IdentifyNamespace) NPWA() uint16         { return get16(n[:], offIDNsNPWA) }
func (n *IdentifyNamespace) SetNPWA(v uint16)     { put16(n[:], offIDNsNPWA, v) }
func (n *IdentifyNamespace) NPDG() uint16         { return get16(n[:], offIDNsNPDG) }
func (n *IdentifyNamespace) SetNPDG(v uint16)     { put16(n[:], offIDNsNPDG, v) }
func (n *IdentifyNamespace) NPDA() uint16         { return get16(n[:], offIDNsNPDA) }
func (n *IdentifyNamespace) SetNPDA(v uint16)     { put16(n[:], offIDNsNPDA, v) }
func (n *IdentifyNamespace) NOWS() uint16         { return get16(n[:], offIDNsNOWS) }
func (n *IdentifyNamespace) SetNOWS(v uint16)     { put16(n[:], offIDNsNOWS, v) }
func (n *IdentifyNamespace) ANAGRPID() uint32     { return get32(n[:], offIDNsANAGRPID) }
func (n *IdentifyNamespace) SetANAGRPID(v uint32) { put32(n[:], offIDNsANAGRPID, v) }
func (n *IdentifyNamespace) NSATTR() uint8        { return n[offIDNsNSATTR] }
func (n *IdentifyNamespace) SetNSATTR(v uint8)    { n[offIDNsNSATTR] = v }
func (n *IdentifyNamespace) NVMSETID() uint16     { return get16(n[:], offIDNsNVMSETID) }
func (n *IdentifyNamespace) ENDGID() uint16       { return get16(n[:], offIDNsENDGID) }

// NGUID is the 16-byte namespace globally unique identifier (a byte string, big endian).
func (n *IdentifyNamespace) NGUID() (id [16]byte) { copy(id[:], n[offIDNsNGUID:]); return id }
func (n *IdentifyNamespace) SetNGUID(id [16]byte) { copy(n[offIDNsNGUID:], id[:]) }

// EUI64 is the 8-byte IEEE extended unique identifier (a byte string, big endian).
func (n *IdentifyNamespace) EUI64() (id [8]byte) { copy(id[:], n[offIDNsEUI64:]); return id }
func (n *IdentifyNamespace) SetEUI64(id [8]byte) { copy(n[offIDNsEUI64:], id[:]) }

// LBAF returns LBA format i (0..63).
func (n *IdentifyNamespace) LBAF(i int) LBAFormat {
	v := get32(n[:], offIDNsLBAF0+4*i)
	return LBAFormat{MS: uint16(v), LBADS: uint8(v >> 16), RP: uint8(v>>24) & 0x3}
}

// SetLBAF sets LBA format i (0..63).
func (n *IdentifyNamespace) SetLBAF(i int, f LBAFormat) {
	put32(n[:], offIDNsLBAF0+4*i, uint32(f.MS)|uint32(f.LBADS)<<16|uint32(f.RP&0x3)<<24)
}

// FormatIndex is the LBA format in use: FLBAS bits 3:0, with bits 6:5 as the high bits when
// NLBAF says more than 16 formats exist (NVMe 2.0).
func (n *IdentifyNamespace) FormatIndex() int {
	f := n.FLBAS()
	i := int(f & 0xF)
	if n.NLBAF() >= 16 {
		i |= int(f>>5&0x3) << 4
	}
	return i
}

// BlockSize is the data size of a logical block in the format in use, or 0 if that format's
// LBADS is below 9 (not a valid format).
func (n *IdentifyNamespace) BlockSize() uint32 {
	lbads := n.LBAF(n.FormatIndex()).LBADS
	if lbads < 9 || lbads > 31 {
		return 0
	}
	return 1 << lbads
}

// NSListSize is the size of a Namespace List (Identify CNS 02h and the Changed Namespace List
// log page 04h share it: NVMe Base 2.0, "Namespace List").
const NSListSize = 4096

// NSListCountMax is how many NSIDs a Namespace List holds.
const NSListCountMax = NSListSize / 4

const _ = uint(NSListSize-IdentifySize) + uint(IdentifySize-NSListSize) + uint(NSListCountMax-1024) // N1

// NSList is a Namespace List: NSIDs in increasing order, ending at the first zero entry.
type NSList [NSListSize]byte

// Set writes nsids, which must be strictly increasing, non-zero and at most 1024, then zeroes the
// rest of l. For CNS 02h the caller passes the active NSIDs greater than the command's NSID.
func (l *NSList) Set(nsids []uint32) error {
	if len(nsids) > NSListCountMax {
		return fmt.Errorf("nvme: namespace list of %d NSIDs, want at most %d", len(nsids), NSListCountMax)
	}
	prev := uint32(0)
	for i, id := range nsids {
		if id <= prev || id == NSIDAll {
			return fmt.Errorf("nvme: namespace list entry %d is %#x after %#x, want increasing and below %#x",
				i, id, prev, NSIDAll)
		}
		prev = id
		put32(l[:], 4*i, id)
	}
	clear(l[4*len(nsids):])
	return nil
}

// SetOverflow marks a Changed Namespace List that overflowed (more than 1024 namespaces
// changed): the first entry is FFFFFFFFh and the rest zero.
func (l *NSList) SetOverflow() {
	*l = NSList{}
	put32(l[:], 0, NSIDAll)
}

// Overflowed reports the overflow marker of a Changed Namespace List.
func (l *NSList) Overflowed() bool { return get32(l[:], 0) == NSIDAll }

// NSIDs appends the NSIDs of l up to the first zero entry to dst.
func (l *NSList) NSIDs(dst []uint32) []uint32 {
	for i := 0; i < NSListCountMax; i++ {
		id := get32(l[:], 4*i)
		if id == 0 {
			break
		}
		dst = append(dst, id)
	}
	return dst
}

// NIDT is a Namespace Identifier Type (NVMe Base 2.0, "Namespace Identification Descriptor").
type NIDT uint8

const (
	NIDTEUI64 NIDT = 0x1 // 8 bytes
	NIDTNGUID NIDT = 0x2 // 16 bytes
	NIDTUUID  NIDT = 0x3 // 16 bytes
	NIDTCSI   NIDT = 0x4 // 1 byte: command set identifier (NVMe 2.0)
)

// Length is the NIDL the spec fixes for t, or 0 for an unknown type.
func (t NIDT) Length() int {
	switch t {
	case NIDTEUI64:
		return 8
	case NIDTNGUID, NIDTUUID:
		return 16
	case NIDTCSI:
		return 1
	}
	return 0
}

// NSDescriptor is one Namespace Identification Descriptor.
type NSDescriptor struct {
	Type NIDT
	ID   []byte // len must be Type.Length()
}

// nsDescHeaderSize is NIDT, NIDL and two reserved bytes.
const nsDescHeaderSize = 4

// NSDescList is the Namespace Identification Descriptor list (Identify CNS 03h).
type NSDescList [IdentifySize]byte

// Set writes descs in order and zeroes the rest (a zero NIDT ends the list).
func (l *NSDescList) Set(descs ...NSDescriptor) error {
	off := 0
	for i, d := range descs {
		n := d.Type.Length()
		if n == 0 || len(d.ID) != n {
			return fmt.Errorf("nvme: NS descriptor %d: type %#x with %d-byte ID, want a known type with NIDL %d",
				i, uint8(d.Type), len(d.ID), n)
		}
		if off+nsDescHeaderSize+n > len(l) {
			return fmt.Errorf("nvme: NS descriptor %d does not fit in %d bytes", i, len(l))
		}
		l[off], l[off+1], l[off+2], l[off+3] = uint8(d.Type), uint8(n), 0, 0
		copy(l[off+nsDescHeaderSize:], d.ID)
		off += nsDescHeaderSize + n
	}
	clear(l[off:])
	return nil
}

// Descriptors parses l up to its terminating zero NIDT, checking each NIDL against its type
// (N6). IDs are copies.
func (l *NSDescList) Descriptors() ([]NSDescriptor, error) {
	var out []NSDescriptor
	for off := 0; off+nsDescHeaderSize <= len(l); {
		t, nidl := NIDT(l[off]), int(l[off+1])
		if t == 0 {
			return out, nil
		}
		if want := t.Length(); want != 0 && nidl != want {
			return out, fmt.Errorf("nvme: NS descriptor at byte %d: type %#x NIDL %d, want %d", off, uint8(t), nidl, want)
		}
		end := off + nsDescHeaderSize + nidl
		if nidl == 0 || end > len(l) {
			return out, fmt.Errorf("nvme: NS descriptor at byte %d: NIDL %d runs past the list", off, nidl)
		}
		if t.Length() != 0 { // unknown types are skipped by their NIDL
			out = append(out, NSDescriptor{Type: t, ID: append([]byte(nil), l[off+nsDescHeaderSize:end]...)})
		}
		off = end
	}
	return out, nil
}
