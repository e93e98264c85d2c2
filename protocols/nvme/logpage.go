package nvme

// ErrorInfoSize is the size of one Error Information log entry (log page 01h; NVMe Base 2.0
// "Error Information Log Entry Data Structure").
const ErrorInfoSize = 64

const (
	offErrCount  = 0  // error count (8): unique, incrementing; 0 = empty entry
	offErrSQID   = 8  // submission queue ID
	offErrCID    = 10 // command ID
	offErrStatus = 12 // status field as in the CQE (bit 0 is the phase tag)
	offErrLoc    = 14 // parameter error location: byte (7:0), bit (10:8)
	offErrLBA    = 16
	offErrNSID   = 24
	offErrVSIA   = 28 // vendor specific information available
	offErrTRTYPE = 29 // transport type
	offErrCSI    = 32 // command specific information (8)
	offErrTTSI   = 40 // transport type specific information (2)
	offErrEnd    = 42 // 63:42 reserved
)

const _ = uint(ErrorInfoSize-64) + uint(64-ErrorInfoSize) + uint(ErrorInfoSize-offErrEnd) // N1

// ErrorInfo is one Error Information log entry.
type ErrorInfo [ErrorInfoSize]byte

func (e *ErrorInfo) ErrorCount() uint64        { return get64(e[:], offErrCount) }
func (e *ErrorInfo) SetErrorCount(n uint64)    { put64(e[:], offErrCount, n) }
func (e *ErrorInfo) SQID() uint16              { return get16(e[:], offErrSQID) }
func (e *ErrorInfo) SetSQID(id uint16)         { put16(e[:], offErrSQID, id) }
func (e *ErrorInfo) CID() uint16               { return get16(e[:], offErrCID) }
func (e *ErrorInfo) SetCID(cid uint16)         { put16(e[:], offErrCID, cid) }
func (e *ErrorInfo) Status() Status            { return Status(get16(e[:], offErrStatus)>>cqeSCShift) & 0x7FF }
func (e *ErrorInfo) SetStatus(s Status)        { put16(e[:], offErrStatus, uint16(s&0x7FF)<<cqeSCShift) }
func (e *ErrorInfo) LBA() uint64               { return get64(e[:], offErrLBA) }
func (e *ErrorInfo) SetLBA(lba uint64)         { put64(e[:], offErrLBA, lba) }
func (e *ErrorInfo) NSID() uint32              { return get32(e[:], offErrNSID) }
func (e *ErrorInfo) SetNSID(id uint32)         { put32(e[:], offErrNSID, id) }
func (e *ErrorInfo) TRTYPE() uint8             { return e[offErrTRTYPE] }
func (e *ErrorInfo) SetTRTYPE(t uint8)         { e[offErrTRTYPE] = t }
func (e *ErrorInfo) CommandInfo() uint64       { return get64(e[:], offErrCSI) }
func (e *ErrorInfo) SetCommandInfo(v uint64)   { put64(e[:], offErrCSI, v) }
func (e *ErrorInfo) TransportInfo() uint16     { return get16(e[:], offErrTTSI) }
func (e *ErrorInfo) SetTransportInfo(v uint16) { put16(e[:], offErrTTSI, v) }

// ErrorLocation is the byte (0..63) and bit (0..7) of the SQE field in error.
func (e *ErrorInfo) ErrorLocation() (byteIndex uint8, bit uint8) {
	v := get16(e[:], offErrLoc)
	return uint8(v), uint8(v>>8) & 0x7
}

// SetErrorLocation sets the byte and bit of the SQE field in error.
func (e *ErrorInfo) SetErrorLocation(byteIndex, bit uint8) {
	put16(e[:], offErrLoc, uint16(byteIndex)|uint16(bit&0x7)<<8)
}

// SMARTLogSize is the size of the SMART / Health Information log (log page 02h; NVMe Base 2.0
// "SMART / Health Information Log Page").
const SMARTLogSize = 512

const (
	offSMARTCritical    = 0   // critical warning bits
	offSMARTTemp        = 1   // composite temperature, kelvins (2)
	offSMARTSpare       = 3   // available spare, percent
	offSMARTSpareThresh = 4   // available spare threshold, percent
	offSMARTUsed        = 5   // percentage used
	offSMARTEGCritical  = 6   // endurance group critical warning summary
	offSMARTUnitsRead   = 32  // data units read, thousands of 512-byte units (16)
	offSMARTUnitsWrite  = 48  // data units written (16)
	offSMARTReadCmds    = 64  // host read commands (16)
	offSMARTWriteCmds   = 80  // host write commands (16)
	offSMARTBusyTime    = 96  // controller busy time, minutes (16)
	offSMARTPowerCycles = 112 // (16)
	offSMARTPowerHours  = 128 // (16)
	offSMARTUnsafe      = 144 // unsafe shutdowns (16)
	offSMARTMediaErrs   = 160 // media and data integrity errors (16)
	offSMARTErrEntries  = 176 // number of error information log entries (16)
	offSMARTWarnTime    = 192 // warning composite temperature time, minutes (4)
	offSMARTCritTime    = 196 // critical composite temperature time, minutes (4)
	offSMARTSensor1     = 200 // temperature sensors 1..8, kelvins (2 each)
	offSMARTEnd         = 232 // 511:232 reserved (thermal management fields not used)
)

const _ = uint(SMARTLogSize-512) + uint(512-SMARTLogSize) + uint(SMARTLogSize-offSMARTEnd) // N1

// Critical warning bits.
const (
	CriticalSpare       uint8 = 1 << 0
	CriticalTemperature uint8 = 1 << 1
	CriticalReliability uint8 = 1 << 2
	CriticalReadOnly    uint8 = 1 << 3
	CriticalBackup      uint8 = 1 << 4
)

// SMARTLog is the SMART / Health Information log page.
type SMARTLog [SMARTLogSize]byte

func (s *SMARTLog) CriticalWarning() uint8             { return s[offSMARTCritical] }
func (s *SMARTLog) SetCriticalWarning(v uint8)         { s[offSMARTCritical] = v }
func (s *SMARTLog) CompositeTemperature() uint16       { return get16(s[:], offSMARTTemp) }
func (s *SMARTLog) SetCompositeTemperature(k uint16)   { put16(s[:], offSMARTTemp, k) }
func (s *SMARTLog) AvailableSpare() uint8              { return s[offSMARTSpare] }
func (s *SMARTLog) SetAvailableSpare(p uint8)          { s[offSMARTSpare] = p }
func (s *SMARTLog) AvailableSpareThreshold() uint8     { return s[offSMARTSpareThresh] }
func (s *SMARTLog) SetAvailableSpareThreshold(p uint8) { s[offSMARTSpareThresh] = p }
func (s *SMARTLog) PercentageUsed() uint8              { return s[offSMARTUsed] }
func (s *SMARTLog) SetPercentageUsed(p uint8)          { s[offSMARTUsed] = p }
func (s *SMARTLog) DataUnitsRead() Uint128             { return get128(s[:], offSMARTUnitsRead) }
func (s *SMARTLog) SetDataUnitsRead(v Uint128)         { put128(s[:], offSMARTUnitsRead, v) }
func (s *SMARTLog) DataUnitsWritten() Uint128          { return get128(s[:], offSMARTUnitsWrite) }
func (s *SMARTLog) SetDataUnitsWritten(v Uint128)      { put128(s[:], offSMARTUnitsWrite, v) }
func (s *SMARTLog) HostReadCommands() Uint128          { return get128(s[:], offSMARTReadCmds) }
func (s *SMARTLog) SetHostReadCommands(v Uint128)      { put128(s[:], offSMARTReadCmds, v) }
func (s *SMARTLog) HostWriteCommands() Uint128         { return get128(s[:], offSMARTWriteCmds) }
func (s *SMARTLog) SetHostWriteCommands(v Uint128)     { put128(s[:], offSMARTWriteCmds, v) }
func (s *SMARTLog) ControllerBusyTime() Uint128        { return get128(s[:], offSMARTBusyTime) }
func (s *SMARTLog) SetControllerBusyTime(v Uint128)    { put128(s[:], offSMARTBusyTime, v) }
func (s *SMARTLog) PowerCycles() Uint128               { return get128(s[:], offSMARTPowerCycles) }
func (s *SMARTLog) SetPowerCycles(v Uint128)           { put128(s[:], offSMARTPowerCycles, v) }
func (s *SMARTLog) PowerOnHours() Uint128              { return get128(s[:], offSMARTPowerHours) }
func (s *SMARTLog) SetPowerOnHours(v Uint128)          { put128(s[:], offSMARTPowerHours, v) }
func (s *SMARTLog) UnsafeShutdowns() Uint128           { return get128(s[:], offSMARTUnsafe) }
func (s *SMARTLog) SetUnsafeShutdowns(v Uint128)       { put128(s[:], offSMARTUnsafe, v) }
func (s *SMARTLog) MediaErrors() Uint128               { return get128(s[:], offSMARTMediaErrs) }
func (s *SMARTLog) SetMediaErrors(v Uint128)           { put128(s[:], offSMARTMediaErrs, v) }
func (s *SMARTLog) ErrorLogEntries() Uint128           { return get128(s[:], offSMARTErrEntries) }
func (s *SMARTLog) SetErrorLogEntries(v Uint128)       { put128(s[:], offSMARTErrEntries, v) }
func (s *SMARTLog) WarningTempTime() uint32            { return get32(s[:], offSMARTWarnTime) }
func (s *SMARTLog) SetWarningTempTime(m uint32)        { put32(s[:], offSMARTWarnTime, m) }
func (s *SMARTLog) CriticalTempTime() uint32           { return get32(s[:], offSMARTCritTime) }
func (s *SMARTLog) SetCriticalTempTime(m uint32)       { put32(s[:], offSMARTCritTime, m) }

// TemperatureSensor returns sensor i (1..8), kelvins; 0 means not implemented.
func (s *SMARTLog) TemperatureSensor(i int) uint16 { return get16(s[:], offSMARTSensor1+2*(i-1)) }

// SetTemperatureSensor sets sensor i (1..8).
func (s *SMARTLog) SetTemperatureSensor(i int, k uint16) { put16(s[:], offSMARTSensor1+2*(i-1), k) }

// FirmwareSlotLogSize is the size of the Firmware Slot Information log (log page 03h; NVMe
// Base 2.0, "Firmware Slot Information").
const FirmwareSlotLogSize = 512

const (
	offFwAFI  = 0 // active firmware info: active slot (2:0), next reset slot (6:4)
	offFwFRS1 = 8 // firmware revision for slot 1..7, ASCII (8 each)
	fwSlotMax = 7
	offFwEnd  = offFwFRS1 + frSize*fwSlotMax // 511:64 reserved
)

// N1: the size is the spec's and the last field ends inside it.
const _ = uint(FirmwareSlotLogSize-512) + uint(512-FirmwareSlotLogSize) +
	uint(FirmwareSlotLogSize-offFwEnd)

// FirmwareSlotLog is the Firmware Slot Information log page.
type FirmwareSlotLog [FirmwareSlotLogSize]byte

// ActiveSlot is the slot (1..7) of the running firmware; NextSlot the one activated at the next
// reset (0 = none chosen).
func (f *FirmwareSlotLog) ActiveSlot() uint8 { return f[offFwAFI] & 0x7 }
func (f *FirmwareSlotLog) NextSlot() uint8   { return f[offFwAFI] >> 4 & 0x7 }

// SetAFI sets the active and next-reset slots.
func (f *FirmwareSlotLog) SetAFI(active, next uint8) { f[offFwAFI] = active&0x7 | (next&0x7)<<4 }

// Revision returns the firmware revision in slot (1..7), "" for an empty slot.
func (f *FirmwareSlotLog) Revision(slot int) string {
	off := offFwFRS1 + frSize*(slot-1)
	return getASCII(f[off : off+frSize])
}

// SetRevision sets the firmware revision of slot (1..7): printable ASCII, space padded.
func (f *FirmwareSlotLog) SetRevision(slot int, rev string) error {
	off := offFwFRS1 + frSize*(slot-1)
	return putASCII(f[off:off+frSize], "firmware revision", rev)
}

// CommandsEffectsLogSize is the size of the Commands Supported and Effects log (log page 05h;
// NVMe Base 2.0, "Commands Supported and Effects").
const CommandsEffectsLogSize = 4096

const (
	offEffectsAdmin = 0    // 256 admin entries, 4 bytes each
	offEffectsIO    = 1024 // 256 I/O entries
	offEffectsEnd   = 2048 // 4095:2048 reserved
)

// N1: the size is the spec's and the last field ends inside it.
const _ = uint(CommandsEffectsLogSize-4096) + uint(4096-CommandsEffectsLogSize) +
	uint(CommandsEffectsLogSize-offEffectsEnd)

// Commands Supported and Effects entry bits.
const (
	EffectCSUPP uint32 = 1 << 0 // command supported
	EffectLBCC  uint32 = 1 << 1 // logical block content change
	EffectNCC   uint32 = 1 << 2 // namespace capability change
	EffectNIC   uint32 = 1 << 3 // namespace inventory change
	EffectCCC   uint32 = 1 << 4 // controller capability change
	// Bits 18:16, CSE: 1 = no other command to the same namespace outstanding, 2 = none at all.
	EffectCSENamespace uint32 = 1 << 16
	EffectCSEAll       uint32 = 2 << 16
)

// CommandsEffectsLog is the Commands Supported and Effects log page.
type CommandsEffectsLog [CommandsEffectsLogSize]byte

func (l *CommandsEffectsLog) Admin(op AdminOpcode) uint32 {
	return get32(l[:], offEffectsAdmin+4*int(op))
}
func (l *CommandsEffectsLog) SetAdmin(op AdminOpcode, e uint32) {
	put32(l[:], offEffectsAdmin+4*int(op), e)
}
func (l *CommandsEffectsLog) IO(op IOOpcode) uint32 { return get32(l[:], offEffectsIO+4*int(op)) }
func (l *CommandsEffectsLog) SetIO(op IOOpcode, e uint32) {
	put32(l[:], offEffectsIO+4*int(op), e)
}
