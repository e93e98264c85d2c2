package pdu

// Views of the PDUs a target sends (RFC 7143 §11.4-§11.19). InitX zeroes the header
// and stamps the opcode and the bits the RFC fixes to 1, so reserved bytes go out as
// zero (invariant P2); the caller then fills in the fields.

// targetSN holds the StatSN/ExpCmdSN/MaxCmdSN accessors every target PDU carries at
// bytes 24-35; the views below forward to it.
type targetSN BHS

func (p *targetSN) statSN() uint32   { return be32(p[offStatSN:]) }
func (p *targetSN) expCmdSN() uint32 { return be32(p[offExpCmdSN:]) }
func (p *targetSN) maxCmdSN() uint32 { return be32(p[offMaxCmdSN:]) }
func (p *targetSN) setSNs(stat, exp, max uint32) {
	put32(p[offStatSN:], stat)
	put32(p[offExpCmdSN:], exp)
	put32(p[offMaxCmdSN:], max)
}

// NOPIn is the NOP-In BHS (RFC 7143 §11.19).
//
//	0 |.|.| 0x20  1 |1|  8 LUN or reserved  16 ITT or 0xffffffff  20 TTT or 0xffffffff
//	24 StatSN  28 ExpCmdSN  32 MaxCmdSN  36-47 reserved
type NOPIn BHS

// NOPIn views h as a NOP-In.
func (h *BHS) NOPIn() *NOPIn { return (*NOPIn)(h) }

// InitNOPIn zeroes h as a NOP-In.
func (h *BHS) InitNOPIn() *NOPIn { h.init(OpNOPIn, bitFinal); return (*NOPIn)(h) }

// BHS returns the common view.
func (p *NOPIn) BHS() *BHS { return (*BHS)(p) }

// TTT returns the Target Transfer Tag.
func (p *NOPIn) TTT() uint32 { return be32(p[offTTT:]) }

// SetTTT sets the Target Transfer Tag.
func (p *NOPIn) SetTTT(v uint32) { put32(p[offTTT:], v) }

// StatSN returns StatSN.
func (p *NOPIn) StatSN() uint32 { return (*targetSN)(p).statSN() }

// ExpCmdSN returns ExpCmdSN.
func (p *NOPIn) ExpCmdSN() uint32 { return (*targetSN)(p).expCmdSN() }

// MaxCmdSN returns MaxCmdSN.
func (p *NOPIn) MaxCmdSN() uint32 { return (*targetSN)(p).maxCmdSN() }

// SetSNs sets StatSN, ExpCmdSN and MaxCmdSN.
func (p *NOPIn) SetSNs(stat, exp, max uint32) { (*targetSN)(p).setSNs(stat, exp, max) }

// Response is the iSCSI response code of a SCSI Response (RFC 7143 §11.4).
type Response uint8

// SCSI Response codes.
const (
	ResponseCompleted     Response = 0x00 // command completed at target; see Status
	ResponseTargetFailure Response = 0x01
)

// SCSI Response byte 1 bits and offsets (RFC 7143 §11.4).
const (
	bitBidiOverflow  = 0x10 // o
	bitBidiUnderflow = 0x08 // u
	bitOverflow      = 0x04 // O
	bitUnderflow     = 0x02 // U
	offResponse      = 2
	offStatus        = 3
	offSNACKTag      = 20
	offBidiResidual  = 40
	offExpDataSNResp = 36
	offResidualCount = 44
)

// SCSIResponse is the SCSI Response BHS (RFC 7143 §11.4).
//
//	0 |.|.| 0x21  1 |1|.|.|o|u|O|U|.|  2 Response  3 Status  8-15 reserved  16 ITT
//	20 SNACK Tag or reserved  24 StatSN  28 ExpCmdSN  32 MaxCmdSN  36 ExpDataSN
//	40 Bidirectional Read Residual Count  44 Residual Count
type SCSIResponse BHS

// SCSIResponse views h as a SCSI Response.
func (h *BHS) SCSIResponse() *SCSIResponse { return (*SCSIResponse)(h) }

// InitSCSIResponse zeroes h as a SCSI Response.
func (h *BHS) InitSCSIResponse() *SCSIResponse {
	h.init(OpSCSIResponse, bitFinal)
	return (*SCSIResponse)(h)
}

// BHS returns the common view.
func (p *SCSIResponse) BHS() *BHS { return (*BHS)(p) }

// Response returns the iSCSI response code.
func (p *SCSIResponse) Response() Response { return Response(p[offResponse]) }

// SetResponse sets the iSCSI response code.
func (p *SCSIResponse) SetResponse(r Response) { p[offResponse] = byte(r) }

// Status returns the SCSI status byte (valid when Response is ResponseCompleted).
func (p *SCSIResponse) Status() uint8 { return p[offStatus] }

// SetStatus sets the SCSI status byte.
func (p *SCSIResponse) SetStatus(s uint8) { p[offStatus] = s }

// Overflow reports the O bit: Residual Count is the data that did not fit.
func (p *SCSIResponse) Overflow() bool { return p[offFlags]&bitOverflow != 0 }

// Underflow reports the U bit: Residual Count is the data not transferred.
func (p *SCSIResponse) Underflow() bool { return p[offFlags]&bitUnderflow != 0 }

// BidiOverflow reports the o bit (bidirectional read residual overflow).
func (p *SCSIResponse) BidiOverflow() bool { return p[offFlags]&bitBidiOverflow != 0 }

// BidiUnderflow reports the u bit (bidirectional read residual underflow).
func (p *SCSIResponse) BidiUnderflow() bool { return p[offFlags]&bitBidiUnderflow != 0 }

// ResidualCount returns the residual count.
func (p *SCSIResponse) ResidualCount() uint32 { return be32(p[offResidualCount:]) }

// BidiResidualCount returns the bidirectional read residual count.
func (p *SCSIResponse) BidiResidualCount() uint32 { return be32(p[offBidiResidual:]) }

// SetResidual sets the U or O bit and Residual Count from the initiator's Expected Data
// Transfer Length and the byte count the command needed: needing fewer is an underflow,
// more an overflow (the excess did not fit), equal clears both (RFC 7143 §11.4).
func (p *SCSIResponse) SetResidual(expected, needed uint32) {
	setResidual(&p[offFlags], p[offResidualCount:], expected, needed, bitUnderflow, bitOverflow)
}

// SetBidiResidual sets the u or o bit and the bidirectional read residual count.
func (p *SCSIResponse) SetBidiResidual(expected, actual uint32) {
	setResidual(&p[offFlags], p[offBidiResidual:], expected, actual, bitBidiUnderflow, bitBidiOverflow)
}

// SNACKTag returns the SNACK Tag.
func (p *SCSIResponse) SNACKTag() uint32 { return be32(p[offSNACKTag:]) }

// StatSN returns StatSN.
func (p *SCSIResponse) StatSN() uint32 { return (*targetSN)(p).statSN() }

// ExpCmdSN returns ExpCmdSN.
func (p *SCSIResponse) ExpCmdSN() uint32 { return (*targetSN)(p).expCmdSN() }

// MaxCmdSN returns MaxCmdSN.
func (p *SCSIResponse) MaxCmdSN() uint32 { return (*targetSN)(p).maxCmdSN() }

// SetSNs sets StatSN, ExpCmdSN and MaxCmdSN.
func (p *SCSIResponse) SetSNs(stat, exp, max uint32) { (*targetSN)(p).setSNs(stat, exp, max) }

// ExpDataSN returns ExpDataSN: the number of Data-In PDUs (and R2Ts) sent for the task.
func (p *SCSIResponse) ExpDataSN() uint32 { return be32(p[offExpDataSNResp:]) }

// SetExpDataSN sets ExpDataSN.
func (p *SCSIResponse) SetExpDataSN(v uint32) { put32(p[offExpDataSNResp:], v) }

// TaskResponse is the Task Management Function Response code (RFC 7143 §11.6).
type TaskResponse uint8

// Task management responses.
const (
	TaskComplete             TaskResponse = 0
	TaskNotExist             TaskResponse = 1
	TaskLUNNotExist          TaskResponse = 2
	TaskStillAllegiant       TaskResponse = 3
	TaskReassignNotSupported TaskResponse = 4
	TaskFunctionNotSupported TaskResponse = 5
	TaskFunctionAuthFailed   TaskResponse = 6
	TaskFunctionSucceeded    TaskResponse = 7 // RFC 7144
	TaskFunctionRejected     TaskResponse = 255
)

// TaskMgmtResponse is the Task Management Function Response BHS (RFC 7143 §11.6).
//
//	0 |.|.| 0x22  1 |1|  2 Response  3 reserved  8-15 reserved  16 ITT  20 reserved
//	24 StatSN  28 ExpCmdSN  32 MaxCmdSN  36-47 reserved
type TaskMgmtResponse BHS

// TaskMgmtResponse views h as a Task Management Function Response.
func (h *BHS) TaskMgmtResponse() *TaskMgmtResponse { return (*TaskMgmtResponse)(h) }

// InitTaskMgmtResponse zeroes h as a Task Management Function Response.
func (h *BHS) InitTaskMgmtResponse() *TaskMgmtResponse {
	h.init(OpTaskMgmtResponse, bitFinal)
	return (*TaskMgmtResponse)(h)
}

// BHS returns the common view.
func (p *TaskMgmtResponse) BHS() *BHS { return (*BHS)(p) }

// Response returns the response code.
func (p *TaskMgmtResponse) Response() TaskResponse { return TaskResponse(p[offResponse]) }

// SetResponse sets the response code.
func (p *TaskMgmtResponse) SetResponse(r TaskResponse) { p[offResponse] = byte(r) }

// StatSN returns StatSN.
func (p *TaskMgmtResponse) StatSN() uint32 { return (*targetSN)(p).statSN() }

// ExpCmdSN returns ExpCmdSN.
func (p *TaskMgmtResponse) ExpCmdSN() uint32 { return (*targetSN)(p).expCmdSN() }

// MaxCmdSN returns MaxCmdSN.
func (p *TaskMgmtResponse) MaxCmdSN() uint32 { return (*targetSN)(p).maxCmdSN() }

// SetSNs sets StatSN, ExpCmdSN and MaxCmdSN.
func (p *TaskMgmtResponse) SetSNs(stat, exp, max uint32) { (*targetSN)(p).setSNs(stat, exp, max) }

// LoginStatus is Status-Class (high byte) and Status-Detail (low byte) of a Login
// Response (RFC 7143 §11.13).
type LoginStatus uint16

// Login statuses.
const (
	LoginSuccess                 LoginStatus = 0x0000
	LoginTargetMovedTemporarily  LoginStatus = 0x0101
	LoginTargetMovedPermanently  LoginStatus = 0x0102
	LoginInitiatorError          LoginStatus = 0x0200
	LoginAuthenticationFailure   LoginStatus = 0x0201
	LoginAuthorizationFailure    LoginStatus = 0x0202 // "forbidden target"
	LoginNotFound                LoginStatus = 0x0203
	LoginTargetRemoved           LoginStatus = 0x0204
	LoginUnsupportedVersion      LoginStatus = 0x0205
	LoginTooManyConnections      LoginStatus = 0x0206
	LoginMissingParameter        LoginStatus = 0x0207
	LoginCannotIncludeInSession  LoginStatus = 0x0208
	LoginSessionTypeNotSupported LoginStatus = 0x0209
	LoginSessionDoesNotExist     LoginStatus = 0x020a
	LoginInvalidDuringLogin      LoginStatus = 0x020b
	LoginTargetError             LoginStatus = 0x0300
	LoginServiceUnavailable      LoginStatus = 0x0301
	LoginOutOfResources          LoginStatus = 0x0302
)

// Class returns Status-Class: 0 success, 1 redirection, 2 initiator error, 3 target error.
func (s LoginStatus) Class() uint8 { return uint8(s >> 8) }

// Detail returns Status-Detail.
func (s LoginStatus) Detail() uint8 { return uint8(s) }

// LoginResponse is the Login Response BHS (RFC 7143 §11.13).
//
//	0 |.|.| 0x23  1 |T|C|.|.|CSG|NSG|  2 Version-max  3 Version-active  8 ISID  14 TSIH
//	16 ITT  20 reserved  24 StatSN  28 ExpCmdSN  32 MaxCmdSN  36 Status-Class
//	37 Status-Detail  38-47 reserved
type LoginResponse BHS

// LoginResponse views h as a Login Response.
func (h *BHS) LoginResponse() *LoginResponse { return (*LoginResponse)(h) }

// InitLoginResponse zeroes h as a Login Response.
func (h *BHS) InitLoginResponse() *LoginResponse {
	h.init(OpLoginResponse, 0)
	return (*LoginResponse)(h)
}

// BHS returns the common view.
func (p *LoginResponse) BHS() *BHS { return (*BHS)(p) }

// Transit reports the T bit.
func (p *LoginResponse) Transit() bool { return p[offFlags]&bitTransit != 0 }

// SetTransit sets the T bit.
func (p *LoginResponse) SetTransit(v bool) { setBit(&p[offFlags], bitTransit, v) }

// Continue reports the C bit.
func (p *LoginResponse) Continue() bool { return p[offFlags]&bitContinue != 0 }

// SetContinue sets the C bit.
func (p *LoginResponse) SetContinue(v bool) { setBit(&p[offFlags], bitContinue, v) }

// CSG returns the current stage.
func (p *LoginResponse) CSG() Stage { return Stage(p[offFlags] >> shiftCSG & maskStage) }

// NSG returns the next stage.
func (p *LoginResponse) NSG() Stage { return Stage(p[offFlags] & maskStage) }

// SetStages sets CSG and NSG.
func (p *LoginResponse) SetStages(csg, nsg Stage) { setStages(&p[offFlags], csg, nsg) }

// VersionMax returns Version-max.
func (p *LoginResponse) VersionMax() uint8 { return p[offVersionMax] }

// VersionActive returns Version-active.
func (p *LoginResponse) VersionActive() uint8 { return p[offVersionMin] }

// SetVersions sets Version-max and Version-active.
func (p *LoginResponse) SetVersions(max, active uint8) {
	p[offVersionMax], p[offVersionMin] = max, active
}

// ISID returns the ISID.
func (p *LoginResponse) ISID() [ISIDSize]byte {
	return [ISIDSize]byte(p[offISID : offISID+ISIDSize])
}

// SetISID sets the ISID.
func (p *LoginResponse) SetISID(v [ISIDSize]byte) { copy(p[offISID:], v[:]) }

// TSIH returns the TSIH.
func (p *LoginResponse) TSIH() uint16 { return be16(p[offTSIH:]) }

// SetTSIH sets the TSIH.
func (p *LoginResponse) SetTSIH(v uint16) { put16(p[offTSIH:], v) }

// Status returns Status-Class and Status-Detail.
func (p *LoginResponse) Status() LoginStatus { return LoginStatus(be16(p[offStatusClass:])) }

// SetStatus sets Status-Class and Status-Detail.
func (p *LoginResponse) SetStatus(s LoginStatus) { put16(p[offStatusClass:], uint16(s)) }

// StatSN returns StatSN.
func (p *LoginResponse) StatSN() uint32 { return (*targetSN)(p).statSN() }

// ExpCmdSN returns ExpCmdSN.
func (p *LoginResponse) ExpCmdSN() uint32 { return (*targetSN)(p).expCmdSN() }

// MaxCmdSN returns MaxCmdSN.
func (p *LoginResponse) MaxCmdSN() uint32 { return (*targetSN)(p).maxCmdSN() }

// SetSNs sets StatSN, ExpCmdSN and MaxCmdSN.
func (p *LoginResponse) SetSNs(stat, exp, max uint32) { (*targetSN)(p).setSNs(stat, exp, max) }

// TextResponse is the Text Response BHS (RFC 7143 §11.11).
//
//	0 |.|.| 0x24  1 |F|C|  8 LUN or reserved  16 ITT  20 TTT or 0xffffffff
//	24 StatSN  28 ExpCmdSN  32 MaxCmdSN  36-47 reserved
type TextResponse BHS

// TextResponse views h as a Text Response.
func (h *BHS) TextResponse() *TextResponse { return (*TextResponse)(h) }

// InitTextResponse zeroes h as a Text Response.
func (h *BHS) InitTextResponse() *TextResponse {
	h.init(OpTextResponse, 0)
	return (*TextResponse)(h)
}

// BHS returns the common view.
func (p *TextResponse) BHS() *BHS { return (*BHS)(p) }

// Continue reports the C bit.
func (p *TextResponse) Continue() bool { return p[offFlags]&bitContinue != 0 }

// SetContinue sets the C bit.
func (p *TextResponse) SetContinue(v bool) { setBit(&p[offFlags], bitContinue, v) }

// TTT returns the Target Transfer Tag.
func (p *TextResponse) TTT() uint32 { return be32(p[offTTT:]) }

// SetTTT sets the Target Transfer Tag.
func (p *TextResponse) SetTTT(v uint32) { put32(p[offTTT:], v) }

// StatSN returns StatSN.
func (p *TextResponse) StatSN() uint32 { return (*targetSN)(p).statSN() }

// ExpCmdSN returns ExpCmdSN.
func (p *TextResponse) ExpCmdSN() uint32 { return (*targetSN)(p).expCmdSN() }

// MaxCmdSN returns MaxCmdSN.
func (p *TextResponse) MaxCmdSN() uint32 { return (*targetSN)(p).maxCmdSN() }

// SetSNs sets StatSN, ExpCmdSN and MaxCmdSN.
func (p *TextResponse) SetSNs(stat, exp, max uint32) { (*targetSN)(p).setSNs(stat, exp, max) }

// Data-In byte 1 bits (RFC 7143 §11.7.1).
const (
	bitAck    = 0x40 // A
	bitStatus = 0x01 // S
)

// DataIn is the SCSI Data-In BHS (RFC 7143 §11.7).
//
//	0 |.|.| 0x25  1 |F|A|.|.|.|O|U|S|  2 reserved  3 Status or reserved  8 LUN or reserved
//	16 ITT  20 TTT or 0xffffffff  24 StatSN or reserved  28 ExpCmdSN  32 MaxCmdSN
//	36 DataSN  40 Buffer Offset  44 Residual Count
type DataIn BHS

// DataIn views h as a SCSI Data-In.
func (h *BHS) DataIn() *DataIn { return (*DataIn)(h) }

// InitDataIn zeroes h as a SCSI Data-In.
func (h *BHS) InitDataIn() *DataIn { h.init(OpDataIn, 0); return (*DataIn)(h) }

// BHS returns the common view.
func (p *DataIn) BHS() *BHS { return (*BHS)(p) }

// Ack reports the A bit (DataACK SNACK requested, ErrorRecoveryLevel ≥ 1).
func (p *DataIn) Ack() bool { return p[offFlags]&bitAck != 0 }

// SetAck sets the A bit.
func (p *DataIn) SetAck(v bool) { setBit(&p[offFlags], bitAck, v) }

// HasStatus reports the S bit: this PDU carries the command's status (phase collapse).
func (p *DataIn) HasStatus() bool { return p[offFlags]&bitStatus != 0 }

// SetStatus sets the S bit and the status byte. The S bit requires the F bit, which
// SetStatus also sets (RFC 7143 §11.7).
func (p *DataIn) SetStatus(status uint8) {
	p[offFlags] |= bitStatus | bitFinal
	p[offStatus] = status
}

// Status returns the status byte (valid when HasStatus).
func (p *DataIn) Status() uint8 { return p[offStatus] }

// Overflow reports the O bit.
func (p *DataIn) Overflow() bool { return p[offFlags]&bitOverflow != 0 }

// Underflow reports the U bit.
func (p *DataIn) Underflow() bool { return p[offFlags]&bitUnderflow != 0 }

// ResidualCount returns the residual count (valid with the S bit).
func (p *DataIn) ResidualCount() uint32 { return be32(p[offResidual:]) }

// SetResidual sets the O or U bit and Residual Count, as SCSIResponse.SetResidual.
func (p *DataIn) SetResidual(expected, actual uint32) {
	setResidual(&p[offFlags], p[offResidual:], expected, actual, bitUnderflow, bitOverflow)
}

// TTT returns the Target Transfer Tag.
func (p *DataIn) TTT() uint32 { return be32(p[offTTT:]) }

// SetTTT sets the Target Transfer Tag.
func (p *DataIn) SetTTT(v uint32) { put32(p[offTTT:], v) }

// StatSN returns StatSN.
func (p *DataIn) StatSN() uint32 { return (*targetSN)(p).statSN() }

// ExpCmdSN returns ExpCmdSN.
func (p *DataIn) ExpCmdSN() uint32 { return (*targetSN)(p).expCmdSN() }

// MaxCmdSN returns MaxCmdSN.
func (p *DataIn) MaxCmdSN() uint32 { return (*targetSN)(p).maxCmdSN() }

// SetSNs sets StatSN (meaningful only with the S bit), ExpCmdSN and MaxCmdSN.
func (p *DataIn) SetSNs(stat, exp, max uint32) { (*targetSN)(p).setSNs(stat, exp, max) }

// DataSN returns DataSN.
func (p *DataIn) DataSN() uint32 { return be32(p[offDataSN:]) }

// SetDataSN sets DataSN.
func (p *DataIn) SetDataSN(v uint32) { put32(p[offDataSN:], v) }

// BufferOffset returns the offset of this data in the command's buffer.
func (p *DataIn) BufferOffset() uint32 { return be32(p[offBufferOffset:]) }

// SetBufferOffset sets the buffer offset.
func (p *DataIn) SetBufferOffset(v uint32) { put32(p[offBufferOffset:], v) }

// LogoutResponseCode is the Logout Response code (RFC 7143 §11.15).
type LogoutResponseCode uint8

// Logout responses.
const (
	LogoutClosed               LogoutResponseCode = 0
	LogoutCIDNotFound          LogoutResponseCode = 1
	LogoutRecoveryNotSupported LogoutResponseCode = 2
	LogoutCleanupFailed        LogoutResponseCode = 3
)

// Logout Response offsets (RFC 7143 §11.15).
const (
	offTime2Wait   = 40
	offTime2Retain = 42
)

// LogoutResponse is the Logout Response BHS (RFC 7143 §11.15).
//
//	0 |.|.| 0x26  1 |1|  2 Response  3 reserved  8-15 reserved  16 ITT  20 reserved
//	24 StatSN  28 ExpCmdSN  32 MaxCmdSN  36 reserved  40 Time2Wait  42 Time2Retain
//	44 reserved
type LogoutResponse BHS

// LogoutResponse views h as a Logout Response.
func (h *BHS) LogoutResponse() *LogoutResponse { return (*LogoutResponse)(h) }

// InitLogoutResponse zeroes h as a Logout Response.
func (h *BHS) InitLogoutResponse() *LogoutResponse {
	h.init(OpLogoutResponse, bitFinal)
	return (*LogoutResponse)(h)
}

// BHS returns the common view.
func (p *LogoutResponse) BHS() *BHS { return (*BHS)(p) }

// Response returns the response code.
func (p *LogoutResponse) Response() LogoutResponseCode {
	return LogoutResponseCode(p[offResponse])
}

// SetResponse sets the response code.
func (p *LogoutResponse) SetResponse(r LogoutResponseCode) { p[offResponse] = byte(r) }

// Time2Wait returns Time2Wait in seconds.
func (p *LogoutResponse) Time2Wait() uint16 { return be16(p[offTime2Wait:]) }

// Time2Retain returns Time2Retain in seconds.
func (p *LogoutResponse) Time2Retain() uint16 { return be16(p[offTime2Retain:]) }

// SetTimes sets Time2Wait and Time2Retain in seconds.
func (p *LogoutResponse) SetTimes(wait, retain uint16) {
	put16(p[offTime2Wait:], wait)
	put16(p[offTime2Retain:], retain)
}

// StatSN returns StatSN.
func (p *LogoutResponse) StatSN() uint32 { return (*targetSN)(p).statSN() }

// ExpCmdSN returns ExpCmdSN.
func (p *LogoutResponse) ExpCmdSN() uint32 { return (*targetSN)(p).expCmdSN() }

// MaxCmdSN returns MaxCmdSN.
func (p *LogoutResponse) MaxCmdSN() uint32 { return (*targetSN)(p).maxCmdSN() }

// SetSNs sets StatSN, ExpCmdSN and MaxCmdSN.
func (p *LogoutResponse) SetSNs(stat, exp, max uint32) { (*targetSN)(p).setSNs(stat, exp, max) }

// R2T offsets (RFC 7143 §11.8).
const (
	offR2TSN   = 36
	offDesired = 44
)

// R2T is the Ready To Transfer BHS (RFC 7143 §11.8).
//
//	0 |.|.| 0x31  1 |1|  8 LUN  16 ITT  20 TTT  24 StatSN  28 ExpCmdSN  32 MaxCmdSN
//	36 R2TSN  40 Buffer Offset  44 Desired Data Transfer Length
type R2T BHS

// R2T views h as an R2T.
func (h *BHS) R2T() *R2T { return (*R2T)(h) }

// InitR2T zeroes h as an R2T.
func (h *BHS) InitR2T() *R2T { h.init(OpR2T, bitFinal); return (*R2T)(h) }

// BHS returns the common view.
func (p *R2T) BHS() *BHS { return (*BHS)(p) }

// TTT returns the Target Transfer Tag.
func (p *R2T) TTT() uint32 { return be32(p[offTTT:]) }

// SetTTT sets the Target Transfer Tag.
func (p *R2T) SetTTT(v uint32) { put32(p[offTTT:], v) }

// StatSN returns StatSN.
func (p *R2T) StatSN() uint32 { return (*targetSN)(p).statSN() }

// ExpCmdSN returns ExpCmdSN.
func (p *R2T) ExpCmdSN() uint32 { return (*targetSN)(p).expCmdSN() }

// MaxCmdSN returns MaxCmdSN.
func (p *R2T) MaxCmdSN() uint32 { return (*targetSN)(p).maxCmdSN() }

// SetSNs sets StatSN, ExpCmdSN and MaxCmdSN.
func (p *R2T) SetSNs(stat, exp, max uint32) { (*targetSN)(p).setSNs(stat, exp, max) }

// R2TSN returns R2TSN.
func (p *R2T) R2TSN() uint32 { return be32(p[offR2TSN:]) }

// SetR2TSN sets R2TSN.
func (p *R2T) SetR2TSN(v uint32) { put32(p[offR2TSN:], v) }

// BufferOffset returns the offset of the requested data.
func (p *R2T) BufferOffset() uint32 { return be32(p[offBufferOffset:]) }

// SetBufferOffset sets the offset of the requested data.
func (p *R2T) SetBufferOffset(v uint32) { put32(p[offBufferOffset:], v) }

// DesiredDataTransferLength returns the number of bytes requested.
func (p *R2T) DesiredDataTransferLength() uint32 { return be32(p[offDesired:]) }

// SetDesiredDataTransferLength sets the number of bytes requested.
func (p *R2T) SetDesiredDataTransferLength(v uint32) { put32(p[offDesired:], v) }

// AsyncEvent is the AsyncEvent code of an Asynchronous Message (RFC 7143 §11.9).
type AsyncEvent uint8

// Asynchronous events.
const (
	AsyncSCSIEvent          AsyncEvent = 0
	AsyncLogoutRequest      AsyncEvent = 1
	AsyncDropConnection     AsyncEvent = 2
	AsyncDropAllConnections AsyncEvent = 3
	AsyncNegotiationRequest AsyncEvent = 4
	AsyncTaskTermination    AsyncEvent = 5 // RFC 7144
	AsyncVendorSpecific     AsyncEvent = 255
)

// Asynchronous Message offsets (RFC 7143 §11.9).
const (
	offAsyncEvent = 36
	offAsyncVCode = 37
	offParameter1 = 38
	offParameter2 = 40
	offParameter3 = 42
)

// AsyncMessage is the Asynchronous Message BHS (RFC 7143 §11.9).
//
//	0 |.|.| 0x32  1 |1|  8 LUN or reserved  16 0xffffffff  20 reserved  24 StatSN
//	28 ExpCmdSN  32 MaxCmdSN  36 AsyncEvent  37 AsyncVCode  38 Parameter1
//	40 Parameter2  42 Parameter3  44 reserved
type AsyncMessage BHS

// AsyncMessage views h as an Asynchronous Message.
func (h *BHS) AsyncMessage() *AsyncMessage { return (*AsyncMessage)(h) }

// InitAsyncMessage zeroes h as an Asynchronous Message; its ITT is 0xffffffff.
func (h *BHS) InitAsyncMessage() *AsyncMessage {
	h.init(OpAsyncMessage, bitFinal)
	h.SetITT(ReservedTag)
	return (*AsyncMessage)(h)
}

// BHS returns the common view.
func (p *AsyncMessage) BHS() *BHS { return (*BHS)(p) }

// Event returns AsyncEvent.
func (p *AsyncMessage) Event() AsyncEvent { return AsyncEvent(p[offAsyncEvent]) }

// SetEvent sets AsyncEvent.
func (p *AsyncMessage) SetEvent(e AsyncEvent) { p[offAsyncEvent] = byte(e) }

// VCode returns AsyncVCode.
func (p *AsyncMessage) VCode() uint8 { return p[offAsyncVCode] }

// SetVCode sets AsyncVCode.
func (p *AsyncMessage) SetVCode(v uint8) { p[offAsyncVCode] = v }

// Parameters returns Parameter1, Parameter2 and Parameter3.
func (p *AsyncMessage) Parameters() (p1, p2, p3 uint16) {
	return be16(p[offParameter1:]), be16(p[offParameter2:]), be16(p[offParameter3:])
}

// SetParameters sets Parameter1, Parameter2 and Parameter3.
func (p *AsyncMessage) SetParameters(p1, p2, p3 uint16) {
	put16(p[offParameter1:], p1)
	put16(p[offParameter2:], p2)
	put16(p[offParameter3:], p3)
}

// StatSN returns StatSN.
func (p *AsyncMessage) StatSN() uint32 { return (*targetSN)(p).statSN() }

// ExpCmdSN returns ExpCmdSN.
func (p *AsyncMessage) ExpCmdSN() uint32 { return (*targetSN)(p).expCmdSN() }

// MaxCmdSN returns MaxCmdSN.
func (p *AsyncMessage) MaxCmdSN() uint32 { return (*targetSN)(p).maxCmdSN() }

// SetSNs sets StatSN, ExpCmdSN and MaxCmdSN.
func (p *AsyncMessage) SetSNs(stat, exp, max uint32) { (*targetSN)(p).setSNs(stat, exp, max) }

// Reject offsets (RFC 7143 §11.17).
const (
	offReason       = 2
	offRejectDataSN = 36
)

// Reject is the Reject BHS (RFC 7143 §11.17). Its data segment is the complete header
// (BHS and AHS) of the rejected PDU.
//
//	0 |.|.| 0x3f  1 |1|  2 Reason  3 reserved  8-15 reserved  16 0xffffffff  20 reserved
//	24 StatSN  28 ExpCmdSN  32 MaxCmdSN  36 DataSN/R2TSN or reserved  40-47 reserved
type Reject BHS

// Reject views h as a Reject.
func (h *BHS) Reject() *Reject { return (*Reject)(h) }

// InitReject zeroes h as a Reject; its ITT is 0xffffffff.
func (h *BHS) InitReject() *Reject {
	h.init(OpReject, bitFinal)
	h.SetITT(ReservedTag)
	return (*Reject)(h)
}

// BHS returns the common view.
func (p *Reject) BHS() *BHS { return (*BHS)(p) }

// Reason returns the reject reason.
func (p *Reject) Reason() RejectReason { return RejectReason(p[offReason]) }

// SetReason sets the reject reason.
func (p *Reject) SetReason(r RejectReason) { p[offReason] = byte(r) }

// DataSN returns DataSN/R2TSN (for a rejected SNACK).
func (p *Reject) DataSN() uint32 { return be32(p[offRejectDataSN:]) }

// SetDataSN sets DataSN/R2TSN.
func (p *Reject) SetDataSN(v uint32) { put32(p[offRejectDataSN:], v) }

// StatSN returns StatSN.
func (p *Reject) StatSN() uint32 { return (*targetSN)(p).statSN() }

// ExpCmdSN returns ExpCmdSN.
func (p *Reject) ExpCmdSN() uint32 { return (*targetSN)(p).expCmdSN() }

// MaxCmdSN returns MaxCmdSN.
func (p *Reject) MaxCmdSN() uint32 { return (*targetSN)(p).maxCmdSN() }

// SetSNs sets StatSN, ExpCmdSN and MaxCmdSN.
func (p *Reject) SetSNs(stat, exp, max uint32) { (*targetSN)(p).setSNs(stat, exp, max) }

func setResidual(flags *byte, field []byte, expected, actual uint32, under, over byte) {
	*flags &^= under | over
	switch {
	case actual < expected:
		*flags |= under
		put32(field, expected-actual)
	case actual > expected:
		*flags |= over
		put32(field, actual-expected)
	default:
		put32(field, 0)
	}
}
