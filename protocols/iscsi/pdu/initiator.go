package pdu

// Views of the PDUs an initiator sends (RFC 7143 §11.3-§11.14, §11.18). Each view is the
// BHS under another type: h.SCSICommand() reinterprets the bytes without checking the
// opcode (call Check first); h.InitSCSICommand() zeroes h and stamps the opcode, for
// encoding. Offsets are bytes from the start of the BHS.

// NOPOut is the NOP-Out BHS (RFC 7143 §11.18).
//
//	0 |.|I| 0x00 |1| reserved     8 LUN      16 ITT (0xffffffff: no reply wanted)
//	20 TTT (0xffffffff unless answering a NOP-In)  24 CmdSN  28 ExpStatSN  32-47 reserved
type NOPOut BHS

// NOPOut views h as a NOP-Out.
func (h *BHS) NOPOut() *NOPOut { return (*NOPOut)(h) }

// InitNOPOut zeroes h as a NOP-Out (byte 1 bit 7 is fixed to 1).
func (h *BHS) InitNOPOut() *NOPOut { h.init(OpNOPOut, bitFinal); return (*NOPOut)(h) }

// BHS returns the common view.
func (p *NOPOut) BHS() *BHS { return (*BHS)(p) }

// TTT returns the Target Transfer Tag.
func (p *NOPOut) TTT() uint32 { return be32(p[offTTT:]) }

// SetTTT sets the Target Transfer Tag.
func (p *NOPOut) SetTTT(v uint32) { put32(p[offTTT:], v) }

// CmdSN returns CmdSN.
func (p *NOPOut) CmdSN() uint32 { return be32(p[offCmdSN:]) }

// SetCmdSN sets CmdSN.
func (p *NOPOut) SetCmdSN(v uint32) { put32(p[offCmdSN:], v) }

// ExpStatSN returns ExpStatSN.
func (p *NOPOut) ExpStatSN() uint32 { return be32(p[offExpStatSN:]) }

// SetExpStatSN sets ExpStatSN.
func (p *NOPOut) SetExpStatSN(v uint32) { put32(p[offExpStatSN:], v) }

// TaskAttr is the ATTR field of a SCSI Command (RFC 7143 §11.3).
type TaskAttr uint8

// Task attributes.
const (
	AttrUntagged    TaskAttr = 0
	AttrSimple      TaskAttr = 1
	AttrOrdered     TaskAttr = 2
	AttrHeadOfQueue TaskAttr = 3
	AttrACA         TaskAttr = 4
)

// SCSI Command byte 1 flags and field offsets (RFC 7143 §11.3).
const (
	bitCmdRead  = 0x40
	bitCmdWrite = 0x20
	maskAttr    = 0x07
	offEDTL     = 20
	offCDB      = 32
)

// SCSICommand is the SCSI Command BHS (RFC 7143 §11.3).
//
//	0 |.|I| 0x01  1 |F|R|W|.|.|ATTR|  8 LUN  16 ITT  20 Expected Data Transfer Length
//	24 CmdSN  28 ExpStatSN  32-47 CDB
type SCSICommand BHS

// SCSICommand views h as a SCSI Command.
func (h *BHS) SCSICommand() *SCSICommand { return (*SCSICommand)(h) }

// InitSCSICommand zeroes h as a SCSI Command.
func (h *BHS) InitSCSICommand() *SCSICommand {
	h.init(OpSCSICommand, 0)
	return (*SCSICommand)(h)
}

// BHS returns the common view.
func (p *SCSICommand) BHS() *BHS { return (*BHS)(p) }

// Read reports the R bit: the command expects input (Data-In) data.
func (p *SCSICommand) Read() bool { return p[offFlags]&bitCmdRead != 0 }

// SetRead sets the R bit.
func (p *SCSICommand) SetRead(v bool) { setBit(&p[offFlags], bitCmdRead, v) }

// Write reports the W bit: the command expects output (Data-Out) data.
func (p *SCSICommand) Write() bool { return p[offFlags]&bitCmdWrite != 0 }

// SetWrite sets the W bit.
func (p *SCSICommand) SetWrite(v bool) { setBit(&p[offFlags], bitCmdWrite, v) }

// Attr returns the task attribute.
func (p *SCSICommand) Attr() TaskAttr { return TaskAttr(p[offFlags] & maskAttr) }

// SetAttr sets the task attribute.
func (p *SCSICommand) SetAttr(a TaskAttr) {
	p[offFlags] = p[offFlags]&^maskAttr | byte(a)&maskAttr
}

// ExpectedDataTransferLength returns the EDTL field.
func (p *SCSICommand) ExpectedDataTransferLength() uint32 { return be32(p[offEDTL:]) }

// SetExpectedDataTransferLength sets the EDTL field.
func (p *SCSICommand) SetExpectedDataTransferLength(v uint32) { put32(p[offEDTL:], v) }

// CmdSN returns CmdSN.
func (p *SCSICommand) CmdSN() uint32 { return be32(p[offCmdSN:]) }

// SetCmdSN sets CmdSN.
func (p *SCSICommand) SetCmdSN(v uint32) { put32(p[offCmdSN:], v) }

// ExpStatSN returns ExpStatSN.
func (p *SCSICommand) ExpStatSN() uint32 { return be32(p[offExpStatSN:]) }

// SetExpStatSN sets ExpStatSN.
func (p *SCSICommand) SetExpStatSN(v uint32) { put32(p[offExpStatSN:], v) }

// CDB returns the 16-byte CDB field in place.
func (p *SCSICommand) CDB() []byte { return p[offCDB : offCDB+CDBSize] }

// SetCDB copies cdb (at most 16 bytes) into the CDB field and zeroes the rest of it.
func (p *SCSICommand) SetCDB(cdb []byte) {
	n := copy(p[offCDB:offCDB+CDBSize], cdb)
	clear(p[offCDB+n : offCDB+CDBSize])
}

// TaskFunction is the Task Management function code (RFC 7143 §11.5.1, RFC 7144 §4.1).
type TaskFunction uint8

// Task management functions.
const (
	TaskAbortTask        TaskFunction = 1
	TaskAbortTaskSet     TaskFunction = 2
	TaskClearACA         TaskFunction = 3
	TaskClearTaskSet     TaskFunction = 4
	TaskLogicalUnitReset TaskFunction = 5
	TaskTargetWarmReset  TaskFunction = 6
	TaskTargetColdReset  TaskFunction = 7
	TaskReassign         TaskFunction = 8
	TaskQueryTask        TaskFunction = 9  // RFC 7144
	TaskQueryTaskSet     TaskFunction = 10 // RFC 7144
	TaskITNexusReset     TaskFunction = 11 // RFC 7144
	TaskQueryAsyncEvent  TaskFunction = 12 // RFC 7144
	maskTaskFunction                  = 0x7f
)

// Task Management Request offsets (RFC 7143 §11.5).
const (
	offRTT       = 20
	offRefCmdSN  = 32
	offExpDataSN = 36
)

// TaskMgmtRequest is the Task Management Function Request BHS (RFC 7143 §11.5).
//
//	0 |.|I| 0x02  1 |1|Function|  8 LUN  16 ITT  20 Referenced Task Tag (or 0xffffffff)
//	24 CmdSN  28 ExpStatSN  32 RefCmdSN  36 ExpDataSN  40-47 reserved
type TaskMgmtRequest BHS

// TaskMgmtRequest views h as a Task Management Function Request.
func (h *BHS) TaskMgmtRequest() *TaskMgmtRequest { return (*TaskMgmtRequest)(h) }

// InitTaskMgmtRequest zeroes h as a Task Management Function Request.
func (h *BHS) InitTaskMgmtRequest() *TaskMgmtRequest {
	h.init(OpTaskMgmtRequest, bitFinal)
	return (*TaskMgmtRequest)(h)
}

// BHS returns the common view.
func (p *TaskMgmtRequest) BHS() *BHS { return (*BHS)(p) }

// Function returns the task management function.
func (p *TaskMgmtRequest) Function() TaskFunction {
	return TaskFunction(p[offFlags] & maskTaskFunction)
}

// SetFunction sets the function, keeping byte 1 bit 7 at 1.
func (p *TaskMgmtRequest) SetFunction(f TaskFunction) {
	p[offFlags] = bitFinal | byte(f)&maskTaskFunction
}

// RTT returns the Referenced Task Tag.
func (p *TaskMgmtRequest) RTT() uint32 { return be32(p[offRTT:]) }

// SetRTT sets the Referenced Task Tag.
func (p *TaskMgmtRequest) SetRTT(v uint32) { put32(p[offRTT:], v) }

// CmdSN returns CmdSN.
func (p *TaskMgmtRequest) CmdSN() uint32 { return be32(p[offCmdSN:]) }

// SetCmdSN sets CmdSN.
func (p *TaskMgmtRequest) SetCmdSN(v uint32) { put32(p[offCmdSN:], v) }

// ExpStatSN returns ExpStatSN.
func (p *TaskMgmtRequest) ExpStatSN() uint32 { return be32(p[offExpStatSN:]) }

// SetExpStatSN sets ExpStatSN.
func (p *TaskMgmtRequest) SetExpStatSN(v uint32) { put32(p[offExpStatSN:], v) }

// RefCmdSN returns RefCmdSN.
func (p *TaskMgmtRequest) RefCmdSN() uint32 { return be32(p[offRefCmdSN:]) }

// SetRefCmdSN sets RefCmdSN.
func (p *TaskMgmtRequest) SetRefCmdSN(v uint32) { put32(p[offRefCmdSN:], v) }

// ExpDataSN returns ExpDataSN.
func (p *TaskMgmtRequest) ExpDataSN() uint32 { return be32(p[offExpDataSN:]) }

// SetExpDataSN sets ExpDataSN.
func (p *TaskMgmtRequest) SetExpDataSN(v uint32) { put32(p[offExpDataSN:], v) }

// Stage is a login stage, the CSG and NSG fields (RFC 7143 §11.12).
type Stage uint8

// Login stages. 2 is reserved.
const (
	StageSecurityNegotiation    Stage = 0
	StageOperationalNegotiation Stage = 1
	StageFullFeature            Stage = 3
)

// Login Request/Response byte 1 and field offsets (RFC 7143 §11.12, §11.13).
const (
	bitTransit      = 0x80
	bitContinue     = 0x40
	shiftCSG        = 2
	maskStage       = 0x03
	offVersionMax   = 2
	offVersionMin   = 3 // VersionActive in the response
	offISID         = 8
	offTSIH         = 14
	offCID          = 20
	offStatusClass  = 36
	offStatusDetail = 37
)

// LoginRequest is the Login Request BHS (RFC 7143 §11.12).
//
//	0 |.|1| 0x03  1 |T|C|.|.|CSG|NSG|  2 Version-max  3 Version-min  8 ISID  14 TSIH
//	16 ITT  20 CID  22 reserved  24 CmdSN  28 ExpStatSN  32-47 reserved
type LoginRequest BHS

// LoginRequest views h as a Login Request.
func (h *BHS) LoginRequest() *LoginRequest { return (*LoginRequest)(h) }

// InitLoginRequest zeroes h as a Login Request (the I bit is always 1).
func (h *BHS) InitLoginRequest() *LoginRequest {
	h.init(OpLoginRequest|bitImmediate, 0)
	return (*LoginRequest)(h)
}

// BHS returns the common view.
func (p *LoginRequest) BHS() *BHS { return (*BHS)(p) }

// Transit reports the T bit.
func (p *LoginRequest) Transit() bool { return p[offFlags]&bitTransit != 0 }

// SetTransit sets the T bit.
func (p *LoginRequest) SetTransit(v bool) { setBit(&p[offFlags], bitTransit, v) }

// Continue reports the C bit.
func (p *LoginRequest) Continue() bool { return p[offFlags]&bitContinue != 0 }

// SetContinue sets the C bit.
func (p *LoginRequest) SetContinue(v bool) { setBit(&p[offFlags], bitContinue, v) }

// CSG returns the current stage.
func (p *LoginRequest) CSG() Stage { return Stage(p[offFlags] >> shiftCSG & maskStage) }

// NSG returns the next stage (meaningful when T is set).
func (p *LoginRequest) NSG() Stage { return Stage(p[offFlags] & maskStage) }

// SetStages sets CSG and NSG.
func (p *LoginRequest) SetStages(csg, nsg Stage) { setStages(&p[offFlags], csg, nsg) }

// VersionMax returns Version-max.
func (p *LoginRequest) VersionMax() uint8 { return p[offVersionMax] }

// VersionMin returns Version-min.
func (p *LoginRequest) VersionMin() uint8 { return p[offVersionMin] }

// SetVersions sets Version-max and Version-min.
func (p *LoginRequest) SetVersions(max, min uint8) {
	p[offVersionMax], p[offVersionMin] = max, min
}

// ISID returns the 6-byte ISID.
func (p *LoginRequest) ISID() [ISIDSize]byte { return [ISIDSize]byte(p[offISID : offISID+ISIDSize]) }

// SetISID sets the ISID.
func (p *LoginRequest) SetISID(v [ISIDSize]byte) { copy(p[offISID:], v[:]) }

// TSIH returns the Target Session Identifying Handle.
func (p *LoginRequest) TSIH() uint16 { return be16(p[offTSIH:]) }

// SetTSIH sets the TSIH.
func (p *LoginRequest) SetTSIH(v uint16) { put16(p[offTSIH:], v) }

// CID returns the Connection ID.
func (p *LoginRequest) CID() uint16 { return be16(p[offCID:]) }

// SetCID sets the Connection ID.
func (p *LoginRequest) SetCID(v uint16) { put16(p[offCID:], v) }

// CmdSN returns CmdSN.
func (p *LoginRequest) CmdSN() uint32 { return be32(p[offCmdSN:]) }

// SetCmdSN sets CmdSN.
func (p *LoginRequest) SetCmdSN(v uint32) { put32(p[offCmdSN:], v) }

// ExpStatSN returns ExpStatSN.
func (p *LoginRequest) ExpStatSN() uint32 { return be32(p[offExpStatSN:]) }

// SetExpStatSN sets ExpStatSN.
func (p *LoginRequest) SetExpStatSN(v uint32) { put32(p[offExpStatSN:], v) }

// TextRequest is the Text Request BHS (RFC 7143 §11.10).
//
//	0 |.|I| 0x04  1 |F|C|  8 LUN or reserved  16 ITT  20 TTT (0xffffffff for a new request)
//	24 CmdSN  28 ExpStatSN  32-47 reserved
type TextRequest BHS

// TextRequest views h as a Text Request.
func (h *BHS) TextRequest() *TextRequest { return (*TextRequest)(h) }

// InitTextRequest zeroes h as a Text Request.
func (h *BHS) InitTextRequest() *TextRequest {
	h.init(OpTextRequest, 0)
	return (*TextRequest)(h)
}

// BHS returns the common view.
func (p *TextRequest) BHS() *BHS { return (*BHS)(p) }

// Continue reports the C bit.
func (p *TextRequest) Continue() bool { return p[offFlags]&bitContinue != 0 }

// SetContinue sets the C bit.
func (p *TextRequest) SetContinue(v bool) { setBit(&p[offFlags], bitContinue, v) }

// TTT returns the Target Transfer Tag.
func (p *TextRequest) TTT() uint32 { return be32(p[offTTT:]) }

// SetTTT sets the Target Transfer Tag.
func (p *TextRequest) SetTTT(v uint32) { put32(p[offTTT:], v) }

// CmdSN returns CmdSN.
func (p *TextRequest) CmdSN() uint32 { return be32(p[offCmdSN:]) }

// SetCmdSN sets CmdSN.
func (p *TextRequest) SetCmdSN(v uint32) { put32(p[offCmdSN:], v) }

// ExpStatSN returns ExpStatSN.
func (p *TextRequest) ExpStatSN() uint32 { return be32(p[offExpStatSN:]) }

// SetExpStatSN sets ExpStatSN.
func (p *TextRequest) SetExpStatSN(v uint32) { put32(p[offExpStatSN:], v) }

// Data-Out/Data-In offsets (RFC 7143 §11.7).
const (
	offDataSN       = 36
	offBufferOffset = 40
	offResidual     = 44
)

// DataOut is the SCSI Data-Out BHS (RFC 7143 §11.7).
//
//	0 |.|.| 0x05  1 |F|  8 LUN  16 ITT  20 TTT (0xffffffff for unsolicited data)
//	24 reserved  28 ExpStatSN  32 reserved  36 DataSN  40 Buffer Offset  44 reserved
type DataOut BHS

// DataOut views h as a SCSI Data-Out.
func (h *BHS) DataOut() *DataOut { return (*DataOut)(h) }

// InitDataOut zeroes h as a SCSI Data-Out.
func (h *BHS) InitDataOut() *DataOut { h.init(OpDataOut, 0); return (*DataOut)(h) }

// BHS returns the common view.
func (p *DataOut) BHS() *BHS { return (*BHS)(p) }

// TTT returns the Target Transfer Tag.
func (p *DataOut) TTT() uint32 { return be32(p[offTTT:]) }

// SetTTT sets the Target Transfer Tag.
func (p *DataOut) SetTTT(v uint32) { put32(p[offTTT:], v) }

// ExpStatSN returns ExpStatSN.
func (p *DataOut) ExpStatSN() uint32 { return be32(p[offExpStatSN:]) }

// SetExpStatSN sets ExpStatSN.
func (p *DataOut) SetExpStatSN(v uint32) { put32(p[offExpStatSN:], v) }

// DataSN returns DataSN.
func (p *DataOut) DataSN() uint32 { return be32(p[offDataSN:]) }

// SetDataSN sets DataSN.
func (p *DataOut) SetDataSN(v uint32) { put32(p[offDataSN:], v) }

// BufferOffset returns the offset of this data in the command's buffer.
func (p *DataOut) BufferOffset() uint32 { return be32(p[offBufferOffset:]) }

// SetBufferOffset sets the buffer offset.
func (p *DataOut) SetBufferOffset(v uint32) { put32(p[offBufferOffset:], v) }

// LogoutReason is the Logout Request reason code (RFC 7143 §11.14).
type LogoutReason uint8

// Logout reasons.
const (
	LogoutCloseSession    LogoutReason = 0
	LogoutCloseConnection LogoutReason = 1
	LogoutRecovery        LogoutReason = 2
	logoutReasonMax                    = LogoutRecovery
	maskLogoutReason                   = 0x7f
)

// LogoutRequest is the Logout Request BHS (RFC 7143 §11.14).
//
//	0 |.|I| 0x06  1 |1|Reason Code|  8-15 reserved  16 ITT  20 CID or reserved
//	22 reserved  24 CmdSN  28 ExpStatSN  32-47 reserved
type LogoutRequest BHS

// LogoutRequest views h as a Logout Request.
func (h *BHS) LogoutRequest() *LogoutRequest { return (*LogoutRequest)(h) }

// InitLogoutRequest zeroes h as a Logout Request.
func (h *BHS) InitLogoutRequest() *LogoutRequest {
	h.init(OpLogoutRequest, bitFinal)
	return (*LogoutRequest)(h)
}

// BHS returns the common view.
func (p *LogoutRequest) BHS() *BHS { return (*BHS)(p) }

// Reason returns the reason code.
func (p *LogoutRequest) Reason() LogoutReason {
	return LogoutReason(p[offFlags] & maskLogoutReason)
}

// SetReason sets the reason code, keeping byte 1 bit 7 at 1.
func (p *LogoutRequest) SetReason(r LogoutReason) {
	p[offFlags] = bitFinal | byte(r)&maskLogoutReason
}

// CID returns the Connection ID to close (reasons 1 and 2).
func (p *LogoutRequest) CID() uint16 { return be16(p[offCID:]) }

// SetCID sets the Connection ID.
func (p *LogoutRequest) SetCID(v uint16) { put16(p[offCID:], v) }

// CmdSN returns CmdSN.
func (p *LogoutRequest) CmdSN() uint32 { return be32(p[offCmdSN:]) }

// SetCmdSN sets CmdSN.
func (p *LogoutRequest) SetCmdSN(v uint32) { put32(p[offCmdSN:], v) }

// ExpStatSN returns ExpStatSN.
func (p *LogoutRequest) ExpStatSN() uint32 { return be32(p[offExpStatSN:]) }

// SetExpStatSN sets ExpStatSN.
func (p *LogoutRequest) SetExpStatSN(v uint32) { put32(p[offExpStatSN:], v) }

func setStages(b *byte, csg, nsg Stage) {
	*b = *b&^(maskStage<<shiftCSG|maskStage) | byte(csg&maskStage)<<shiftCSG | byte(nsg&maskStage)
}
