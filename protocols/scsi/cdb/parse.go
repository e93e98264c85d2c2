package cdb

import (
	"encoding/binary"
	"fmt"
)

// Opcode is a CDB operation code.
type Opcode uint8

// Operation codes the target decodes (SPC-4, SBC-3).
const (
	OpTestUnitReady             Opcode = 0x00
	OpRequestSense              Opcode = 0x03
	OpRead6                     Opcode = 0x08
	OpWrite6                    Opcode = 0x0a
	OpInquiry                   Opcode = 0x12
	OpModeSelect6               Opcode = 0x15
	OpReserve6                  Opcode = 0x16
	OpRelease6                  Opcode = 0x17
	OpModeSense6                Opcode = 0x1a
	OpStartStopUnit             Opcode = 0x1b
	OpPreventAllowMediumRemoval Opcode = 0x1e
	OpReadCapacity10            Opcode = 0x25
	OpRead10                    Opcode = 0x28
	OpWrite10                   Opcode = 0x2a
	OpWriteAndVerify10          Opcode = 0x2e
	OpVerify10                  Opcode = 0x2f
	OpPreFetch10                Opcode = 0x34
	OpSynchronizeCache10        Opcode = 0x35
	OpReadDefectData10          Opcode = 0x37
	OpWriteSame10               Opcode = 0x41
	OpUnmap                     Opcode = 0x42
	OpModeSelect10              Opcode = 0x55
	OpReserve10                 Opcode = 0x56
	OpRelease10                 Opcode = 0x57
	OpModeSense10               Opcode = 0x5a
	OpPersistentReserveIn       Opcode = 0x5e
	OpPersistentReserveOut      Opcode = 0x5f
	OpRead16                    Opcode = 0x88
	OpCompareAndWrite           Opcode = 0x89
	OpWrite16                   Opcode = 0x8a
	OpORWrite16                 Opcode = 0x8b
	OpWriteAndVerify16          Opcode = 0x8e
	OpVerify16                  Opcode = 0x8f
	OpPreFetch16                Opcode = 0x90
	OpSynchronizeCache16        Opcode = 0x91
	OpWriteSame16               Opcode = 0x93
	OpWriteAtomic16             Opcode = 0x9c
	OpServiceActionIn16         Opcode = 0x9e
	OpReportLUNs                Opcode = 0xa0
	OpMaintenanceIn             Opcode = 0xa3
	OpRead12                    Opcode = 0xa8
	OpWrite12                   Opcode = 0xaa
	OpWriteAndVerify12          Opcode = 0xae
	OpVerify12                  Opcode = 0xaf
	OpReadDefectData12          Opcode = 0xb7
)

// ServiceAction is the service action of an opcode that has them (5 bits in byte 1).
type ServiceAction uint16

// Service actions.
const (
	SAReadCapacity16                    ServiceAction = 0x10 // SERVICE ACTION IN(16)
	SAGetLBAStatus                      ServiceAction = 0x12 // SERVICE ACTION IN(16)
	SAReportSupportedOperationCodes     ServiceAction = 0x0c // MAINTENANCE IN
	SAReportSupportedTaskManagementFunc ServiceAction = 0x0d // MAINTENANCE IN
)

// Flags are the one-bit CDB fields, wherever they sit in their command.
type Flags uint32

// CDB flags.
const (
	FlagFUA     Flags = 1 << iota // force unit access (READ/WRITE, ORWRITE, COMPARE AND WRITE)
	FlagDPO                       // disable page out
	FlagImmed                     // return before the operation completes
	FlagUnmap                     // WRITE SAME: unmap if possible
	FlagAnchor                    // WRITE SAME, UNMAP: anchor instead of deallocate
	FlagNDOB                      // WRITE SAME(16): no data-out buffer, write zeroes
	FlagEVPD                      // INQUIRY: vital product data page
	FlagDesc                      // REQUEST SENSE: descriptor format
	FlagPF                        // MODE SELECT: page format
	FlagSP                        // MODE SELECT: save pages
	FlagDBD                       // MODE SENSE: disable block descriptors
	FlagLLBAA                     // MODE SENSE(10): long LBA accepted
	FlagPMI                       // READ CAPACITY: partial medium indicator (obsolete)
	FlagStart                     // START STOP UNIT
	FlagLoEj                      // START STOP UNIT: load/eject
	FlagNoFlush                   // START STOP UNIT
	FlagRCTD                      // REPORT SUPPORTED OPERATION CODES: return timeouts
	FlagREPD                      // REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS: extended
)

// Direction is the way a command's data moves.
type Direction uint8

// Directions.
const (
	DirNone Direction = iota
	DirIn             // data-in: device server to application client (Data-In PDUs)
	DirOut            // data-out: application client to device server (Data-Out PDUs)
)

// PR IN service actions (SPC-4).
const (
	PRInReadKeys           ServiceAction = 0
	PRInReadReservation    ServiceAction = 1
	PRInReportCapabilities ServiceAction = 2
	PRInReadFullStatus     ServiceAction = 3
)

// PR OUT service actions (SPC-4; REPLACE LOST RESERVATION from SPC-5).
const (
	PROutRegister          ServiceAction = 0
	PROutReserve           ServiceAction = 1
	PROutRelease           ServiceAction = 2
	PROutClear             ServiceAction = 3
	PROutPreempt           ServiceAction = 4
	PROutPreemptAndAbort   ServiceAction = 5
	PROutRegisterAndIgnore ServiceAction = 6
	PROutRegisterAndMove   ServiceAction = 7
	PROutReplaceLost       ServiceAction = 8
)

// PRType is a persistent reservation type (SPC-4).
type PRType uint8

// Persistent reservation types.
const (
	PRWriteExclusive                PRType = 1
	PRExclusiveAccess               PRType = 3
	PRWriteExclusiveRegistrants     PRType = 5
	PRExclusiveAccessRegistrants    PRType = 6
	PRWriteExclusiveAllRegistrants  PRType = 7
	PRExclusiveAccessAllRegistrants PRType = 8
)

// Valid reports whether t is a defined reservation type.
func (t PRType) Valid() bool {
	switch t {
	case PRWriteExclusive, PRExclusiveAccess, PRWriteExclusiveRegistrants,
		PRExclusiveAccessRegistrants, PRWriteExclusiveAllRegistrants, PRExclusiveAccessAllRegistrants:
		return true
	}
	return false
}

// Command is a decoded CDB. Fields a command does not have are zero; which field holds
// the length depends on the command: Blocks for commands that move logical blocks,
// ParameterListLength for data-out parameter lists, AllocationLength for data-in.
type Command struct {
	Opcode        Opcode
	ServiceAction ServiceAction
	Size          int // CDB length in bytes
	Control       uint8

	LBA    uint64
	Blocks uint32 // transfer/verification/prefetch length in logical blocks (READ(6): 0 means 256)

	ParameterListLength uint32
	AllocationLength    uint32

	Flags     Flags
	Protect   uint8 // RDPROTECT, WRPROTECT, VRPROTECT or ORPROTECT (byte 1 bits 7-5)
	ByteCheck uint8 // BYTCHK of VERIFY and WRITE AND VERIFY
	Group     uint8 // GROUP NUMBER

	PageCode    uint8 // INQUIRY (with EVPD), MODE SENSE
	SubpageCode uint8 // MODE SENSE
	PageControl uint8 // MODE SENSE PC: 0 current, 1 changeable, 2 default, 3 saved

	SelectReport uint8 // REPORT LUNS

	PRScope uint8  // PERSISTENT RESERVE OUT
	PRType  PRType // PERSISTENT RESERVE OUT

	ReportingOptions       uint8         // REPORT SUPPORTED OPERATION CODES
	RequestedOpcode        Opcode        // REPORT SUPPORTED OPERATION CODES
	RequestedServiceAction ServiceAction // REPORT SUPPORTED OPERATION CODES

	PowerCondition         uint8 // START STOP UNIT
	PowerConditionModifier uint8 // START STOP UNIT

	Prevent uint8 // PREVENT ALLOW MEDIUM REMOVAL: byte 4 bits 1-0

	DefectListFormat uint8 // READ DEFECT DATA: byte 2 (10) or 1 (12) bits 2-0
	DefectRequest    uint8 // READ DEFECT DATA: REQ_PLIST(4) REQ_GLIST(3), in place
}

// Has reports whether all of f are set.
func (c *Command) Has(f Flags) bool { return c.Flags&f == f }

// Control byte bits (SAM-5): ACA is not supported, linked commands are obsolete.
const (
	bitNACA = 0x04
	bitLink = 0x01
)

// Size returns the CDB length for op from its group code (SPC-4), or 0 for
// the reserved and vendor-specific groups.
func Size(op Opcode) int {
	switch op >> 5 {
	case 0:
		return 6
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	}
	return 0
}

// Parse decodes cdb (at least as long as its opcode's CDB; iSCSI passes 16 bytes) and
// checks the fields the target can never honor. It returns an *Error carrying sense key,
// ASC and field pointer for an unsupported opcode or service action or an invalid field;
// rejecting does not allocate (C3). Checks that depend on the logical unit (capacity,
// protection information, limits) are the caller's: see CheckRange and ProtectError.
func Parse(cdb []byte) (Command, error) {
	var c Command
	if len(cdb) == 0 {
		return c, errShortCDB
	}
	op := Opcode(cdb[0])
	size := Size(op)
	if size == 0 || !known(op) {
		return c, errInvalidOpcode
	}
	if len(cdb) < size {
		return c, errShortCDB
	}
	b := cdb[:size]
	c.Opcode, c.Size, c.Control = op, size, b[size-1]
	if c.Control&bitNACA != 0 {
		return c, invalidField(size-1, 2)
	}
	if c.Control&bitLink != 0 {
		return c, invalidField(size-1, 0)
	}
	return c, parseByOpcode(&c, b)
}

// known reports whether Parse decodes op.
func known(op Opcode) bool {
	switch op {
	case OpTestUnitReady, OpRequestSense, OpRead6, OpWrite6, OpInquiry, OpModeSelect6,
		OpReserve6, OpRelease6, OpModeSense6, OpStartStopUnit, OpReadCapacity10, OpRead10,
		OpWrite10, OpWriteAndVerify10, OpVerify10, OpPreFetch10, OpSynchronizeCache10,
		OpWriteSame10, OpUnmap, OpModeSelect10, OpReserve10, OpRelease10, OpModeSense10,
		OpPersistentReserveIn, OpPersistentReserveOut, OpRead16, OpCompareAndWrite,
		OpWrite16, OpORWrite16, OpWriteAndVerify16, OpVerify16, OpPreFetch16,
		OpSynchronizeCache16, OpWriteSame16, OpServiceActionIn16, OpReportLUNs,
		OpMaintenanceIn, OpRead12, OpWrite12, OpPreventAllowMediumRemoval, OpReadDefectData10,
		OpReadDefectData12, OpWriteAtomic16, OpWriteAndVerify12, OpVerify12:
		return true
	}
	return false
}

// parseByOpcode is the one dispatch switch; each case cites its CDB layout.
func parseByOpcode(c *Command, b []byte) error {
	switch c.Opcode {
	case OpTestUnitReady: // SPC-4: no fields
	case OpRequestSense: // SPC-4: 1 DESC(0); 4 ALLOCATION LENGTH
		c.setFlag(FlagDesc, b[1]&0x01 != 0)
		c.AllocationLength = uint32(b[4])
	case OpInquiry: // SPC-4: 1 EVPD(0) CMDDT(1, obsolete); 2 PAGE CODE; 3-4 ALLOCATION LENGTH
		return parseInquiry(c, b)
	case OpRead6, OpWrite6: // SBC-3: 1-3 LBA (21 bits); 4 TRANSFER LENGTH, 0 = 256
		c.LBA = uint64(b[1]&0x1f)<<16 | uint64(b[2])<<8 | uint64(b[3])
		c.Blocks = uint32(b[4])
		if c.Blocks == 0 {
			c.Blocks = 256
		}
	case OpRead10, OpWrite10: // SBC-3: 1 PROTECT(7-5) DPO(4) FUA(3); 2-5 LBA; 6 GROUP; 7-8 LENGTH
		c.readWriteFlags(b[1])
		c.lba10(b)
	case OpRead12, OpWrite12: // SBC-3: 2-5 LBA; 6-9 LENGTH; 10 GROUP
		c.readWriteFlags(b[1])
		c.LBA, c.Blocks, c.Group = uint64(be32(b[2:])), be32(b[6:]), b[10]&0x3f
	case OpRead16, OpWrite16, OpORWrite16, OpWriteAtomic16: // SBC-3/4: 2-9 LBA; 10-13 LENGTH; 14 GROUP
		c.readWriteFlags(b[1])
		c.lba16(b)
	case OpVerify10, OpVerify12, OpVerify16, OpWriteAndVerify10, OpWriteAndVerify12, OpWriteAndVerify16:
		return parseVerify(c, b)
	case OpPreventAllowMediumRemoval: // SPC-4: 4 PREVENT(1-0)
		c.Prevent = b[4] & 0x03
	case OpReadDefectData10: // SBC-3: 2 REQ_PLIST(4) REQ_GLIST(3) FORMAT(2-0); 7-8 ALLOCATION LENGTH
		c.DefectRequest, c.DefectListFormat = b[2]&0x18, b[2]&0x07
		c.AllocationLength = uint32(be16(b[7:]))
	case OpReadDefectData12: // SBC-3: 1 REQ_PLIST(4) REQ_GLIST(3) FORMAT(2-0); 6-9 ALLOCATION LENGTH
		c.DefectRequest, c.DefectListFormat = b[1]&0x18, b[1]&0x07
		c.AllocationLength = be32(b[6:])
	case OpCompareAndWrite: // SBC-3: 1 WRPROTECT DPO FUA; 2-9 LBA; 13 NUMBER OF LOGICAL BLOCKS; 14 GROUP
		c.readWriteFlags(b[1])
		c.LBA, c.Blocks, c.Group = be64(b[2:]), uint32(b[13]), b[14]&0x3f
	case OpPreFetch10, OpSynchronizeCache10: // SBC-3: 1 IMMED(1); 2-5 LBA; 6 GROUP; 7-8 LENGTH
		c.setFlag(FlagImmed, b[1]&0x02 != 0)
		c.lba10(b)
	case OpPreFetch16, OpSynchronizeCache16: // SBC-3: 1 IMMED(1); 2-9 LBA; 10-13 LENGTH; 14 GROUP
		c.setFlag(FlagImmed, b[1]&0x02 != 0)
		c.lba16(b)
	case OpWriteSame10, OpWriteSame16:
		return parseWriteSame(c, b)
	case OpUnmap: // SBC-3: 1 ANCHOR(0); 6 GROUP; 7-8 PARAMETER LIST LENGTH
		c.setFlag(FlagAnchor, b[1]&0x01 != 0)
		c.Group = b[6] & 0x3f
		c.ParameterListLength = uint32(be16(b[7:]))
	case OpReadCapacity10: // SBC-3: 2-5 LBA; 8 PMI(0)
		c.LBA = uint64(be32(b[2:]))
		c.setFlag(FlagPMI, b[8]&0x01 != 0)
		c.AllocationLength = 8
		if !c.Has(FlagPMI) && c.LBA != 0 {
			return invalidField(2, -1)
		}
	case OpServiceActionIn16:
		return parseServiceActionIn(c, b)
	case OpMaintenanceIn:
		return parseMaintenanceIn(c, b)
	case OpModeSense6: // SPC-4: 1 DBD(3); 2 PC(7-6) PAGE CODE(5-0); 3 SUBPAGE; 4 ALLOCATION LENGTH
		c.setFlag(FlagDBD, b[1]&0x08 != 0)
		c.modePage(b[2], b[3])
		c.AllocationLength = uint32(b[4])
	case OpModeSense10: // SPC-4: 1 LLBAA(4) DBD(3); 2 PC/PAGE; 3 SUBPAGE; 7-8 ALLOCATION LENGTH
		c.setFlag(FlagLLBAA, b[1]&0x10 != 0)
		c.setFlag(FlagDBD, b[1]&0x08 != 0)
		c.modePage(b[2], b[3])
		c.AllocationLength = uint32(be16(b[7:]))
	case OpModeSelect6: // SPC-4: 1 PF(4) SP(0); 4 PARAMETER LIST LENGTH
		c.modeSelectFlags(b[1])
		c.ParameterListLength = uint32(b[4])
	case OpModeSelect10: // SPC-4: 1 PF(4) SP(0); 7-8 PARAMETER LIST LENGTH
		c.modeSelectFlags(b[1])
		c.ParameterListLength = uint32(be16(b[7:]))
	case OpReserve6, OpRelease6: // SPC-2 RESERVE(6)/RELEASE(6): third-party and extent forms unsupported
		if b[1]&0x10 != 0 {
			return invalidField(1, 4)
		}
		if b[1]&0x01 != 0 {
			return invalidField(1, 0)
		}
	case OpReserve10, OpRelease10: // SPC-2 RESERVE(10)/RELEASE(10): 1 3RDPTY(4) LONGID(1); 7-8 PARAMETER LIST LENGTH
		if b[1]&0x10 != 0 {
			return invalidField(1, 4)
		}
		if b[1]&0x02 != 0 {
			return invalidField(1, 1)
		}
		c.ParameterListLength = uint32(be16(b[7:]))
	case OpPersistentReserveIn: // SPC-4: 1 SERVICE ACTION(4-0); 7-8 ALLOCATION LENGTH
		c.ServiceAction = ServiceAction(b[1] & 0x1f)
		c.AllocationLength = uint32(be16(b[7:]))
		if c.ServiceAction > PRInReadFullStatus {
			return invalidField(1, 4)
		}
	case OpPersistentReserveOut:
		return parsePROut(c, b)
	case OpReportLUNs: // SPC-4: 2 SELECT REPORT; 6-9 ALLOCATION LENGTH
		c.SelectReport = b[2]
		c.AllocationLength = be32(b[6:])
		switch c.SelectReport {
		case 0x00, 0x01, 0x02, 0x10, 0x11, 0x12:
		default:
			return invalidField(2, -1)
		}
	case OpStartStopUnit: // SBC-3: 1 IMMED(0); 3 MODIFIER(3-0); 4 CONDITION(7-4) NO_FLUSH(2) LOEJ(1) START(0)
		c.setFlag(FlagImmed, b[1]&0x01 != 0)
		c.PowerConditionModifier = b[3] & 0x0f
		c.PowerCondition = b[4] >> 4
		c.setFlag(FlagNoFlush, b[4]&0x04 != 0)
		c.setFlag(FlagLoEj, b[4]&0x02 != 0)
		c.setFlag(FlagStart, b[4]&0x01 != 0)
	default:
		panic(fmt.Sprintf("cdb: known opcode %#02x has no case", uint8(c.Opcode)))
	}
	return nil
}

func parseInquiry(c *Command, b []byte) error {
	if b[1]&0x02 != 0 { // CMDDT: obsolete, never supported
		return invalidField(1, 1)
	}
	c.setFlag(FlagEVPD, b[1]&0x01 != 0)
	c.PageCode = b[2]
	c.AllocationLength = uint32(be16(b[3:]))
	if !c.Has(FlagEVPD) && c.PageCode != 0 {
		// SPC-4: a page code without EVPD is an invalid field.
		return invalidField(2, -1)
	}
	return nil
}

// parseVerify decodes VERIFY and WRITE AND VERIFY (SBC-3):
// 1 PROTECT(7-5) DPO(4) BYTCHK(2-1); then the 10- or 16-byte LBA/length/group layout.
func parseVerify(c *Command, b []byte) error {
	c.Protect = b[1] >> 5
	c.setFlag(FlagDPO, b[1]&0x10 != 0)
	c.ByteCheck = b[1] >> 1 & 0x03
	switch c.Opcode {
	case OpVerify10, OpWriteAndVerify10:
		c.lba10(b)
	case OpVerify12, OpWriteAndVerify12: // 2-5 LBA; 6-9 LENGTH; 10 GROUP
		c.LBA, c.Blocks, c.Group = uint64(be32(b[2:])), be32(b[6:]), b[10]&0x3f
	default:
		c.lba16(b)
	}
	writeAndVerify := c.Opcode == OpWriteAndVerify10 || c.Opcode == OpWriteAndVerify12 ||
		c.Opcode == OpWriteAndVerify16
	switch {
	case c.ByteCheck == 0b10:
		// Reserved in both commands.
		return invalidField(1, 2)
	case c.ByteCheck == 0b11 && writeAndVerify:
		// Only VERIFY compares against a single block.
		return invalidField(1, 2)
	}
	return nil
}

// parseWriteSame decodes WRITE SAME (SBC-3): 1 WRPROTECT(7-5) ANCHOR(4)
// UNMAP(3) PBDATA(2) LBDATA(1) NDOB(0, 16-byte only).
func parseWriteSame(c *Command, b []byte) error {
	c.Protect = b[1] >> 5
	c.setFlag(FlagAnchor, b[1]&0x10 != 0)
	c.setFlag(FlagUnmap, b[1]&0x08 != 0)
	if c.Opcode == OpWriteSame10 {
		c.lba10(b)
	} else {
		c.setFlag(FlagNDOB, b[1]&0x01 != 0)
		c.lba16(b)
	}
	switch {
	case b[1]&0x04 != 0: // PBDATA: obsolete physical-sector data, not supported
		return invalidField(1, 2)
	case b[1]&0x02 != 0: // LBDATA: obsolete LBA-stamped data, not supported
		return invalidField(1, 1)
	case c.Has(FlagAnchor) && !c.Has(FlagUnmap):
		// SBC-3: ANCHOR without UNMAP is an invalid field.
		return invalidField(1, 4)
	}
	return nil
}

func parseServiceActionIn(c *Command, b []byte) error {
	c.ServiceAction = ServiceAction(b[1] & 0x1f)
	switch c.ServiceAction {
	case SAReadCapacity16: // SBC-3: 2-9 LBA; 10-13 ALLOCATION LENGTH; 14 PMI(0)
		c.LBA = be64(b[2:])
		c.AllocationLength = be32(b[10:])
		c.setFlag(FlagPMI, b[14]&0x01 != 0)
		if !c.Has(FlagPMI) && c.LBA != 0 {
			return invalidField(2, -1)
		}
	case SAGetLBAStatus: // SBC-3: 2-9 STARTING LBA; 10-13 ALLOCATION LENGTH
		c.LBA = be64(b[2:])
		c.AllocationLength = be32(b[10:])
	default:
		return invalidField(1, 4)
	}
	return nil
}

func parseMaintenanceIn(c *Command, b []byte) error {
	c.ServiceAction = ServiceAction(b[1] & 0x1f)
	switch c.ServiceAction {
	case SAReportSupportedOperationCodes:
		// SPC-4: 2 RCTD(7) REPORTING OPTIONS(2-0); 3 REQUESTED OPCODE;
		// 4-5 REQUESTED SERVICE ACTION; 6-9 ALLOCATION LENGTH
		c.setFlag(FlagRCTD, b[2]&0x80 != 0)
		c.ReportingOptions = b[2] & 0x07
		c.RequestedOpcode = Opcode(b[3])
		c.RequestedServiceAction = ServiceAction(be16(b[4:]))
		c.AllocationLength = be32(b[6:])
		if c.ReportingOptions > 3 {
			return invalidField(2, 2)
		}
	case SAReportSupportedTaskManagementFunc:
		// SPC-4: 2 REPD(7); 6-9 ALLOCATION LENGTH
		c.setFlag(FlagREPD, b[2]&0x80 != 0)
		c.AllocationLength = be32(b[6:])
	default:
		return invalidField(1, 4)
	}
	return nil
}

// parsePROut decodes PERSISTENT RESERVE OUT (SPC-4): 1 SERVICE ACTION(4-0);
// 2 SCOPE(7-4) TYPE(3-0); 5-8 PARAMETER LIST LENGTH. Scope and type matter only to the
// service actions that name a reservation.
func parsePROut(c *Command, b []byte) error {
	c.ServiceAction = ServiceAction(b[1] & 0x1f)
	c.PRScope = b[2] >> 4
	c.PRType = PRType(b[2] & 0x0f)
	c.ParameterListLength = be32(b[5:])
	switch c.ServiceAction {
	case PROutRegister, PROutClear, PROutRegisterAndIgnore:
		return nil
	case PROutReserve, PROutRelease, PROutPreempt, PROutPreemptAndAbort, PROutRegisterAndMove,
		PROutReplaceLost:
	default:
		return invalidField(1, 4)
	}
	if c.PRScope != 0 { // only LU_SCOPE is defined
		return invalidField(2, 7)
	}
	if !c.PRType.Valid() {
		return invalidField(2, 3)
	}
	return nil
}

func (c *Command) setFlag(f Flags, v bool) {
	if v {
		c.Flags |= f
	}
}

func (c *Command) readWriteFlags(b1 byte) {
	c.Protect = b1 >> 5
	c.setFlag(FlagDPO, b1&0x10 != 0)
	c.setFlag(FlagFUA, b1&0x08 != 0)
}

func (c *Command) lba10(b []byte) {
	c.LBA, c.Group, c.Blocks = uint64(be32(b[2:])), b[6]&0x3f, uint32(be16(b[7:]))
}

func (c *Command) lba16(b []byte) {
	c.LBA, c.Blocks, c.Group = be64(b[2:]), be32(b[10:]), b[14]&0x3f
}

func (c *Command) modePage(b2, b3 byte) {
	c.PageControl, c.PageCode, c.SubpageCode = b2>>6, b2&0x3f, b3
}

func (c *Command) modeSelectFlags(b1 byte) {
	c.setFlag(FlagPF, b1&0x10 != 0)
	c.setFlag(FlagSP, b1&0x01 != 0)
}

// Direction returns the way the command's data moves.
func (c *Command) Direction() Direction {
	switch c.Opcode {
	case OpRead6, OpRead10, OpRead12, OpRead16, OpRequestSense, OpInquiry, OpModeSense6,
		OpModeSense10, OpReadCapacity10, OpServiceActionIn16, OpMaintenanceIn,
		OpPersistentReserveIn, OpReportLUNs, OpReadDefectData10, OpReadDefectData12:
		return DirIn
	case OpWrite6, OpWrite10, OpWrite12, OpWrite16, OpORWrite16, OpWriteAndVerify10,
		OpWriteAndVerify12, OpWriteAndVerify16, OpCompareAndWrite, OpUnmap, OpModeSelect6,
		OpModeSelect10, OpPersistentReserveOut, OpReserve10, OpRelease10, OpWriteAtomic16:
		return DirOut
	case OpVerify10, OpVerify12, OpVerify16:
		if c.ByteCheck != 0 {
			return DirOut
		}
	case OpWriteSame10, OpWriteSame16:
		if !c.Has(FlagNDOB) {
			return DirOut
		}
	}
	return DirNone
}

// DataSize is the number of bytes the command moves for logical blocks of blockSize
// bytes: what the iSCSI Expected Data Transfer Length should be. For data-in commands
// with an allocation length it is that length (the most the device server returns).
func (c *Command) DataSize(blockSize uint32) uint64 {
	bs := uint64(blockSize)
	switch c.Opcode {
	case OpRead6, OpRead10, OpRead12, OpRead16, OpWrite6, OpWrite10, OpWrite12, OpWrite16,
		OpORWrite16, OpWriteAndVerify10, OpWriteAndVerify12, OpWriteAndVerify16, OpWriteAtomic16:
		return uint64(c.Blocks) * bs
	case OpCompareAndWrite: // verify data then write data (SBC-3)
		return 2 * uint64(c.Blocks) * bs
	case OpVerify10, OpVerify12, OpVerify16:
		switch c.ByteCheck {
		case 0b01:
			return uint64(c.Blocks) * bs
		case 0b11:
			return bs
		}
		return 0
	case OpWriteSame10, OpWriteSame16:
		if c.Has(FlagNDOB) {
			return 0
		}
		return bs
	}
	if c.Direction() == DirOut {
		return uint64(c.ParameterListLength)
	}
	return uint64(c.AllocationLength)
}

// CheckRange returns ErrLBAOutOfRange unless [LBA, LBA+Blocks) lies within a logical
// unit of capacity blocks (SBC-3), without overflowing.
func (c *Command) CheckRange(capacity uint64) error {
	if c.LBA > capacity || uint64(c.Blocks) > capacity-c.LBA {
		return ErrLBAOutOfRange
	}
	return nil
}

// ProtectError is the INVALID FIELD IN CDB error for a non-zero RDPROTECT, WRPROTECT,
// VRPROTECT or ORPROTECT field (byte 1 bits 7-5), for a logical unit formatted without
// protection information (SBC-3, READ(10) and its siblings).
func (c *Command) ProtectError() error { return invalidField(1, 7) }

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
