package nvme

// Command-specific fields a fabrics target decodes and a host encodes, as methods on the SQE.
// Each names the command and the spec section it comes from; they are plain accessors over the
// command dwords, so calling one on the wrong opcode reads meaningless bits, never fails (N2).

// Read, Write, Compare, Write Zeroes, Write Uncorrectable, Verify (NVM Command Set 1.0, "Read
// command", CDW10..13).

// SLBA is the starting LBA (CDW11:CDW10).
func (s *SQE) SLBA() uint64 { return get64(s[:], offSQECDW10) }

// SetSLBA sets the starting LBA.
func (s *SQE) SetSLBA(lba uint64) { put64(s[:], offSQECDW10, lba) }

// NLB is the 0's based number of logical blocks (CDW12 bits 15:0); BlockCount is NLB+1.
func (s *SQE) NLB() uint16 { return uint16(s.CDW12()) }

// BlockCount is the number of logical blocks the command covers, 1..65536.
func (s *SQE) BlockCount() uint32 { return uint32(s.NLB()) + 1 }

// SetBlockCount sets NLB to n-1; n must be 1..65536 (a caller with more blocks splits the I/O).
func (s *SQE) SetBlockCount(n uint32) {
	if n == 0 || n > 1<<16 {
		panic("nvme: SetBlockCount outside 1..65536")
	}
	s.SetCDW12(setBits32(s.CDW12(), 0, 16, n-1))
}

// FUA is Force Unit Access (CDW12 bit 30); LR is Limited Retry (bit 31); DEAC is Deallocate
// (bit 25, Write Zeroes only).
func (s *SQE) FUA() bool            { return s.CDW12()&(1<<30) != 0 }
func (s *SQE) SetFUA(on bool)       { s.SetCDW12(setBits32(s.CDW12(), 30, 1, b2u(on))) }
func (s *SQE) LimitedRetry() bool   { return s.CDW12()&(1<<31) != 0 }
func (s *SQE) Deallocate() bool     { return s.CDW12()&(1<<25) != 0 }
func (s *SQE) SetDeallocate(b bool) { s.SetCDW12(setBits32(s.CDW12(), 25, 1, b2u(b))) }

// Dataset Management (NVM Command Set 1.0, "Dataset Management command").

// DSMRangeCount is the number of ranges in the data (CDW10 bits 7:0 are 0's based).
func (s *SQE) DSMRangeCount() int { return int(s.CDW10()&0xFF) + 1 }

// SetDSMRangeCount sets the number of ranges, 1..256.
func (s *SQE) SetDSMRangeCount(n int) {
	if n < 1 || n > 256 {
		panic("nvme: SetDSMRangeCount outside 1..256")
	}
	s.SetCDW10(setBits32(s.CDW10(), 0, 8, uint32(n-1)))
}

// DSMDeallocate is the Attribute – Deallocate bit (CDW11 bit 2).
func (s *SQE) DSMDeallocate() bool      { return s.CDW11()&(1<<2) != 0 }
func (s *SQE) SetDSMDeallocate(on bool) { s.SetCDW11(setBits32(s.CDW11(), 2, 1, b2u(on))) }

// DSMRangeSize is the size of one Dataset Management range.
const DSMRangeSize = 16

const _ = uint(DSMRangeSize-16) + uint(16-DSMRangeSize) // N1

// DSMRange is one range of a Dataset Management command's data: context attributes (bytes
// 3:0), length in logical blocks (7:4), starting LBA (15:8).
type DSMRange [DSMRangeSize]byte

func (r *DSMRange) Attributes() uint32     { return get32(r[:], 0) }
func (r *DSMRange) SetAttributes(a uint32) { put32(r[:], 0, a) }
func (r *DSMRange) Blocks() uint32         { return get32(r[:], 4) }
func (r *DSMRange) SetBlocks(n uint32)     { put32(r[:], 4, n) }
func (r *DSMRange) SLBA() uint64           { return get64(r[:], 8) }
func (r *DSMRange) SetSLBA(lba uint64)     { put64(r[:], 8, lba) }

// Identify (NVMe Base 2.0, "Identify command").

// CNS is CDW10 bits 7:0; CNTID is CDW10 bits 31:16; CSI is CDW11 bits 31:24.
func (s *SQE) CNS() CNS           { return CNS(s.CDW10()) }
func (s *SQE) SetCNS(c CNS)       { s.SetCDW10(setBits32(s.CDW10(), 0, 8, uint32(c))) }
func (s *SQE) CNTID() uint16      { return uint16(s.CDW10() >> 16) }
func (s *SQE) SetCNTID(id uint16) { s.SetCDW10(setBits32(s.CDW10(), 16, 16, uint32(id))) }
func (s *SQE) CSI() uint8         { return uint8(s.CDW11() >> 24) }
func (s *SQE) SetCSI(csi uint8)   { s.SetCDW11(setBits32(s.CDW11(), 24, 8, uint32(csi))) }

// Get Log Page (NVMe Base 2.0, "Get Log Page command").

// LID is CDW10 bits 7:0; LSP is bits 14:8; RAE (Retain Asynchronous Event) is bit 15.
func (s *SQE) LID() LogPageID { return LogPageID(s.CDW10()) }
func (s *SQE) LSP() uint8     { return uint8(bits32(s.CDW10(), 8, 7)) }
func (s *SQE) RAE() bool      { return s.CDW10()&(1<<15) != 0 }

// LogDwords is the number of dwords to return: NUMDU (CDW11 15:0) : NUMDL (CDW10 31:16), 0's
// based, so 1..2^32.
func (s *SQE) LogDwords() uint64 {
	return uint64(bits32(s.CDW11(), 0, 16))<<16 | uint64(s.CDW10()>>16) + 1
}

// LogOffset is the Log Page Offset in bytes (CDW13:CDW12).
func (s *SQE) LogOffset() uint64 { return get64(s[:], offSQECDW10+8) }

// SetGetLogPage fills CDW10..13 of a Get Log Page for size bytes (a multiple of 4, ≥ 4) of page
// lid from byte offset, keeping other bits zero.
func (s *SQE) SetGetLogPage(lid LogPageID, size uint32, offset uint64) {
	if size < 4 || size%4 != 0 {
		panic("nvme: SetGetLogPage size must be a positive multiple of 4")
	}
	numd := size/4 - 1
	s.SetCDW10(uint32(lid) | numd<<16)
	s.SetCDW11(numd >> 16)
	put64(s[:], offSQECDW10+8, offset)
}

// Set Features / Get Features (NVMe Base 2.0, "Set Features command", "Get Features command").

// FID is CDW10 bits 7:0; SEL (Get Features) bits 10:8; SV (Set Features, save) bit 31.
func (s *SQE) FID() FeatureID     { return FeatureID(s.CDW10()) }
func (s *SQE) SetFID(f FeatureID) { s.SetCDW10(setBits32(s.CDW10(), 0, 8, uint32(f))) }
func (s *SQE) SEL() uint8         { return uint8(bits32(s.CDW10(), 8, 3)) }
func (s *SQE) SV() bool           { return s.CDW10()&(1<<31) != 0 }

// NumberOfQueues packs the Number of Queues feature value (CDW11 of Set Features, DW0 of its
// completion): NSQR in bits 15:0 and NCQR in 31:16, both 0's based counts.
func NumberOfQueues(sqCount, cqCount uint32) uint32 {
	return (sqCount-1)&0xFFFF | (cqCount-1)<<16
}

// QueueCounts unpacks a Number of Queues value into 1's based counts.
func QueueCounts(v uint32) (sqCount, cqCount uint32) {
	return v&0xFFFF + 1, v>>16 + 1
}

// TemperatureThreshold unpacks the Temperature Threshold feature (NVMe Base 2.0, "Temperature
// Threshold", FID 04h): TMPTH in bits 15:0 (kelvins), TMPSEL in 19:16 (0 the composite
// temperature, 1-8 a sensor, Fh every implemented one), THSEL in 21:20 (0 over, 1 under).
func TemperatureThreshold(v uint32) (tmpth uint16, tmpsel, thsel uint8) {
	return uint16(v), uint8(v>>16) & 0xF, uint8(v>>20) & 0x3
}

// Temperature Threshold selectors.
const (
	TMPSELComposite uint8 = 0
	TMPSELSensorMax uint8 = 8   // sensors are 1..8
	TMPSELAll       uint8 = 0xF // every implemented sensor (Set Features only)
	THSELOver       uint8 = 0
	THSELUnder      uint8 = 1
)

// Abort (NVMe Base 2.0, "Abort command"): SQID in CDW10 15:0, the CID to abort in CDW10 31:16.
func (s *SQE) AbortSQID() uint16 { return uint16(s.CDW10()) }
func (s *SQE) AbortCID() uint16  { return uint16(s.CDW10() >> 16) }
func (s *SQE) SetAbort(sqid, cid uint16) {
	s.SetCDW10(uint32(sqid) | uint32(cid)<<16)
}

// Asynchronous Event Request completions carry the event in DW0 (NVMe Base 2.0,
// "Asynchronous Event Request command"): type in
// bits 2:0, information in 15:8, the log page to read in 23:16.
type AsyncEventType uint8

const (
	AsyncEventError       AsyncEventType = 0
	AsyncEventSMART       AsyncEventType = 1
	AsyncEventNotice      AsyncEventType = 2
	AsyncEventIOCSpecific AsyncEventType = 6
	AsyncEventVendor      AsyncEventType = 7
)

// Notice event information values.
const (
	AsyncNoticeNSAttributeChanged uint8 = 0x00 // read LogChangedNSList
	AsyncNoticeFirmwareActivation uint8 = 0x01
	AsyncNoticeTelemetryChanged   uint8 = 0x02
	AsyncNoticeANAChange          uint8 = 0x03
	AsyncNoticeDiscoveryChanged   uint8 = 0xF0 // read LogDiscovery
)

// AsyncEvent packs an Asynchronous Event Request completion DW0.
func AsyncEvent(t AsyncEventType, info uint8, lid LogPageID) uint32 {
	return uint32(t)&0x7 | uint32(info)<<8 | uint32(lid)<<16
}

// ParseAsyncEvent unpacks an Asynchronous Event Request completion DW0.
func ParseAsyncEvent(dw0 uint32) (t AsyncEventType, info uint8, lid LogPageID) {
	return AsyncEventType(dw0 & 0x7), uint8(dw0 >> 8), LogPageID(dw0 >> 16)
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
