package nvme

// SQESize is the size of a submission queue entry: a command (NVMe Base 2.0, "Common Command
// Format"; 1.4 §4.2). A fabrics command capsule starts with one.
const SQESize = 64

// Byte offsets in an SQE (NVMe Base 2.0, "Common Command Format" and "Command Dword 0").
const (
	offSQEOpcode = 0  // CDW0 bits 7:0
	offSQEFlags  = 1  // CDW0 bits 15:8: FUSE (1:0), PSDT (7:6)
	offSQECID    = 2  // CDW0 bits 31:16
	offSQENSID   = 4  // CDW1
	offSQECDW2   = 8  // command specific
	offSQEMPTR   = 16 // metadata pointer
	offSQEDPTR   = 24 // data pointer: PRP1 (24) and PRP2 (32), or SGL1 (24..39)
	offSQEPRP2   = 32
	offSQECDW10  = 40
	offSQECDW15  = 60
)

const _ = uint(SQESize-64) + uint(64-SQESize) + uint(SQESize-(offSQECDW15+4)) // N1

// SQE is one submission queue entry, viewed in place over 64 bytes.
type SQE [SQESize]byte

// FUSE values (CDW0 bits 9:8).
const (
	FuseNone   uint8 = 0
	FuseFirst  uint8 = 1 // first command of a fused operation (Compare of Compare and Write)
	FuseSecond uint8 = 2
)

// PSDT values (CDW0 bits 15:14): how DPTR and MPTR describe the data. NVMe over Fabrics
// commands use SGLs: PSDTSGL (NVMe-oF 1.1, "Command Capsule"; Linux sets NVME_CMD_SGL_METABUF).
const (
	PSDTPRP        uint8 = 0
	PSDTSGL        uint8 = 1 // SGL for data; MPTR holds the address of a contiguous metadata buffer
	PSDTSGLSegment uint8 = 2 // SGL for data; MPTR holds an SGL segment
)

// SQEOf views the first 64 bytes of b as an SQE; b must hold them.
func SQEOf(b []byte) *SQE { return (*SQE)(b[:SQESize]) }

// Reset zeroes s, so a reused entry carries no stale fields (N3).
func (s *SQE) Reset() { *s = SQE{} }

func (s *SQE) Opcode() uint8       { return s[offSQEOpcode] }
func (s *SQE) SetOpcode(op uint8)  { s[offSQEOpcode] = op }
func (s *SQE) Flags() uint8        { return s[offSQEFlags] }
func (s *SQE) SetFlags(f uint8)    { s[offSQEFlags] = f }
func (s *SQE) FUSE() uint8         { return s[offSQEFlags] & 0x3 }
func (s *SQE) SetFUSE(f uint8)     { s[offSQEFlags] = s[offSQEFlags]&^0x3 | f&0x3 }
func (s *SQE) PSDT() uint8         { return s[offSQEFlags] >> 6 }
func (s *SQE) SetPSDT(p uint8)     { s[offSQEFlags] = s[offSQEFlags]&^0xC0 | p<<6 }
func (s *SQE) CID() uint16         { return get16(s[:], offSQECID) }
func (s *SQE) SetCID(cid uint16)   { put16(s[:], offSQECID, cid) }
func (s *SQE) NSID() uint32        { return get32(s[:], offSQENSID) }
func (s *SQE) SetNSID(nsid uint32) { put32(s[:], offSQENSID, nsid) }
func (s *SQE) MPTR() uint64        { return get64(s[:], offSQEMPTR) }
func (s *SQE) SetMPTR(p uint64)    { put64(s[:], offSQEMPTR, p) }
func (s *SQE) PRP1() uint64        { return get64(s[:], offSQEDPTR) }
func (s *SQE) SetPRP1(p uint64)    { put64(s[:], offSQEDPTR, p) }
func (s *SQE) PRP2() uint64        { return get64(s[:], offSQEPRP2) }
func (s *SQE) SetPRP2(p uint64)    { put64(s[:], offSQEPRP2, p) }

// SGL1 views the data pointer as SGL Descriptor 1 (when PSDT selects SGLs).
func (s *SQE) SGL1() *SGLDescriptor {
	return (*SGLDescriptor)(s[offSQEDPTR : offSQEDPTR+SGLDescriptorSize])
}

// CDW returns command dword i (0..15). CDW0 holds opcode, flags and CID; CDW1 the NSID.
func (s *SQE) CDW(i int) uint32 { return get32(s[:], 4*i) }

// SetCDW sets command dword i (0..15).
func (s *SQE) SetCDW(i int, v uint32) { put32(s[:], 4*i, v) }

func (s *SQE) CDW2() uint32      { return s.CDW(2) }
func (s *SQE) CDW3() uint32      { return s.CDW(3) }
func (s *SQE) CDW10() uint32     { return s.CDW(10) }
func (s *SQE) CDW11() uint32     { return s.CDW(11) }
func (s *SQE) CDW12() uint32     { return s.CDW(12) }
func (s *SQE) CDW13() uint32     { return s.CDW(13) }
func (s *SQE) CDW14() uint32     { return s.CDW(14) }
func (s *SQE) CDW15() uint32     { return s.CDW(15) }
func (s *SQE) SetCDW2(v uint32)  { s.SetCDW(2, v) }
func (s *SQE) SetCDW3(v uint32)  { s.SetCDW(3, v) }
func (s *SQE) SetCDW10(v uint32) { s.SetCDW(10, v) }
func (s *SQE) SetCDW11(v uint32) { s.SetCDW(11, v) }
func (s *SQE) SetCDW12(v uint32) { s.SetCDW(12, v) }
func (s *SQE) SetCDW13(v uint32) { s.SetCDW(13, v) }
func (s *SQE) SetCDW14(v uint32) { s.SetCDW(14, v) }
func (s *SQE) SetCDW15(v uint32) { s.SetCDW(15, v) }

// NSIDAll addresses every namespace (NVMe Base 2.0, "Namespace Identifier": FFFFFFFFh).
const NSIDAll uint32 = 0xFFFFFFFF
