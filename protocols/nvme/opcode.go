package nvme

import "fmt"

// AdminOpcode is the opcode of a command on the admin queue (NVMe Base 2.0, "Opcodes for Admin
// Commands"). Fabrics commands (OpcodeFabrics) may arrive on any queue.
type AdminOpcode uint8

const (
	AdminDeleteIOSQ       AdminOpcode = 0x00
	AdminCreateIOSQ       AdminOpcode = 0x01
	AdminGetLogPage       AdminOpcode = 0x02
	AdminDeleteIOCQ       AdminOpcode = 0x04
	AdminCreateIOCQ       AdminOpcode = 0x05
	AdminIdentify         AdminOpcode = 0x06
	AdminAbort            AdminOpcode = 0x08
	AdminSetFeatures      AdminOpcode = 0x09
	AdminGetFeatures      AdminOpcode = 0x0A
	AdminAsyncEventReq    AdminOpcode = 0x0C
	AdminNSManagement     AdminOpcode = 0x0D
	AdminFirmwareCommit   AdminOpcode = 0x10
	AdminFirmwareDownload AdminOpcode = 0x11
	AdminNSAttachment     AdminOpcode = 0x15
	AdminKeepAlive        AdminOpcode = 0x18
	AdminDirectiveSend    AdminOpcode = 0x19
	AdminDirectiveRecv    AdminOpcode = 0x1A
	AdminFabrics          AdminOpcode = 0x7F
	AdminFormatNVM        AdminOpcode = 0x80
	AdminSecuritySend     AdminOpcode = 0x81
	AdminSecurityRecv     AdminOpcode = 0x82
)

var adminOpcodeNames = map[AdminOpcode]string{
	AdminDeleteIOSQ:       "delete-io-sq",
	AdminCreateIOSQ:       "create-io-sq",
	AdminGetLogPage:       "get-log-page",
	AdminDeleteIOCQ:       "delete-io-cq",
	AdminCreateIOCQ:       "create-io-cq",
	AdminIdentify:         "identify",
	AdminAbort:            "abort",
	AdminSetFeatures:      "set-features",
	AdminGetFeatures:      "get-features",
	AdminAsyncEventReq:    "async-event-request",
	AdminNSManagement:     "ns-management",
	AdminFirmwareCommit:   "firmware-commit",
	AdminFirmwareDownload: "firmware-download",
	AdminNSAttachment:     "ns-attachment",
	AdminKeepAlive:        "keep-alive",
	AdminDirectiveSend:    "directive-send",
	AdminDirectiveRecv:    "directive-receive",
	AdminFabrics:          "fabrics",
	AdminFormatNVM:        "format-nvm",
	AdminSecuritySend:     "security-send",
	AdminSecurityRecv:     "security-receive",
}

func (o AdminOpcode) String() string {
	if n, ok := adminOpcodeNames[o]; ok {
		return n
	}
	return fmt.Sprintf("admin-opcode-%#02x", uint8(o))
}

// IOOpcode is the opcode of an NVM command set I/O command (NVM Command Set 1.0, "Opcodes for
// NVM Commands").
type IOOpcode uint8

const (
	IOFlush              IOOpcode = 0x00
	IOWrite              IOOpcode = 0x01
	IORead               IOOpcode = 0x02
	IOWriteUncorrectable IOOpcode = 0x04
	IOCompare            IOOpcode = 0x05
	IOWriteZeroes        IOOpcode = 0x08
	IODatasetManagement  IOOpcode = 0x09
	IOVerify             IOOpcode = 0x0C
	IOReservationReg     IOOpcode = 0x0D
	IOReservationReport  IOOpcode = 0x0E
	IOReservationAcquire IOOpcode = 0x11
	IOReservationRelease IOOpcode = 0x15
	IOFabrics            IOOpcode = 0x7F
)

var ioOpcodeNames = map[IOOpcode]string{
	IOFlush:              "flush",
	IOWrite:              "write",
	IORead:               "read",
	IOWriteUncorrectable: "write-uncorrectable",
	IOCompare:            "compare",
	IOWriteZeroes:        "write-zeroes",
	IODatasetManagement:  "dataset-management",
	IOVerify:             "verify",
	IOReservationReg:     "reservation-register",
	IOReservationReport:  "reservation-report",
	IOReservationAcquire: "reservation-acquire",
	IOReservationRelease: "reservation-release",
	IOFabrics:            "fabrics",
}

func (o IOOpcode) String() string {
	if n, ok := ioOpcodeNames[o]; ok {
		return n
	}
	return fmt.Sprintf("io-opcode-%#02x", uint8(o))
}

// DataDirection is bits 1:0 of an opcode (NVMe Base 2.0, "Opcodes for Admin Commands", the
// "Data Transfer" column): 01b host to controller, 10b controller to host, 11b bidirectional.
// It holds for every admin, I/O and fabrics opcode except Fabrics itself, whose FCTYPE carries
// the direction in the same two bits.
type DataDirection uint8

const (
	DataNone     DataDirection = 0
	DataToCtrl   DataDirection = 1
	DataFromCtrl DataDirection = 2
	DataBidi     DataDirection = 3
)

// DirectionOf returns the data direction an opcode (or a fabrics FCTYPE) encodes.
func DirectionOf(opcodeOrFCType uint8) DataDirection { return DataDirection(opcodeOrFCType & 0x3) }

// OpcodeFabrics is the opcode of every NVMe over Fabrics command; FCTYPE (byte 4) says which
// (NVMe-oF 1.1, "Fabrics Command").
const OpcodeFabrics uint8 = 0x7F

// The fabrics opcode is the same on the admin and I/O queues.
const _ = (OpcodeFabrics - uint8(AdminFabrics)) + (uint8(AdminFabrics) - OpcodeFabrics) +
	(OpcodeFabrics - uint8(IOFabrics)) + (uint8(IOFabrics) - OpcodeFabrics)

// FabricsType is a fabrics command's FCTYPE (NVMe-oF 1.1, "Fabrics Command Type").
type FabricsType uint8

const (
	FabricsPropertySet FabricsType = 0x00
	FabricsConnect     FabricsType = 0x01
	FabricsPropertyGet FabricsType = 0x04
	FabricsAuthSend    FabricsType = 0x05
	FabricsAuthRecv    FabricsType = 0x06
	FabricsDisconnect  FabricsType = 0x08
)

var fabricsTypeNames = map[FabricsType]string{
	FabricsPropertySet: "property-set",
	FabricsConnect:     "connect",
	FabricsPropertyGet: "property-get",
	FabricsAuthSend:    "authentication-send",
	FabricsAuthRecv:    "authentication-receive",
	FabricsDisconnect:  "disconnect",
}

func (t FabricsType) String() string {
	if n, ok := fabricsTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("fctype-%#02x", uint8(t))
}

// FeatureID names a feature of Get/Set Features (NVMe Base 2.0, "Feature Identifiers").
type FeatureID uint8

const (
	FeatureArbitration          FeatureID = 0x01
	FeaturePowerManagement      FeatureID = 0x02
	FeatureLBARangeType         FeatureID = 0x03
	FeatureTemperatureThreshold FeatureID = 0x04
	FeatureErrorRecovery        FeatureID = 0x05
	FeatureVolatileWriteCache   FeatureID = 0x06
	FeatureNumberOfQueues       FeatureID = 0x07
	FeatureInterruptCoalescing  FeatureID = 0x08
	FeatureInterruptVectorCfg   FeatureID = 0x09
	FeatureWriteAtomicityNormal FeatureID = 0x0A
	FeatureAsyncEventConfig     FeatureID = 0x0B
	FeatureAutonomousPowerState FeatureID = 0x0C
	FeatureHostMemoryBuffer     FeatureID = 0x0D
	FeatureTimestamp            FeatureID = 0x0E
	FeatureKeepAliveTimer       FeatureID = 0x0F
	FeatureHostThermalMgmt      FeatureID = 0x10
	FeatureNonOpPowerStateCfg   FeatureID = 0x11
	FeatureHostBehaviorSupport  FeatureID = 0x16
	FeatureSoftwareProgress     FeatureID = 0x80
	FeatureHostIdentifier       FeatureID = 0x81
	FeatureReservationNotifMask FeatureID = 0x82
	FeatureReservationPersist   FeatureID = 0x83
)

// Get Features SEL values (CDW10 bits 10:8).
const (
	FeatureSelectCurrent   uint8 = 0
	FeatureSelectDefault   uint8 = 1
	FeatureSelectSaved     uint8 = 2
	FeatureSelectSupported uint8 = 3 // supported capabilities
)

// LogPageID names a log page of Get Log Page (NVMe Base 2.0, "Log Page Identifiers").
type LogPageID uint8

const (
	LogSupportedPages   LogPageID = 0x00
	LogErrorInfo        LogPageID = 0x01
	LogSMARTHealth      LogPageID = 0x02
	LogFirmwareSlot     LogPageID = 0x03
	LogChangedNSList    LogPageID = 0x04
	LogCommandsEffects  LogPageID = 0x05
	LogDeviceSelfTest   LogPageID = 0x06
	LogTelemetryHost    LogPageID = 0x07
	LogTelemetryCtrl    LogPageID = 0x08
	LogANA              LogPageID = 0x0C
	LogDiscovery        LogPageID = 0x70 // NVMe-oF 1.1 "Discovery Log Page"; discovery controllers only
	LogReservationNotif LogPageID = 0x80
	LogSanitizeStatus   LogPageID = 0x81
)

// CNS is the Controller or Namespace Structure an Identify command returns (CDW10 bits 7:0)
// (NVMe Base 2.0, "CNS Values").
type CNS uint8

const (
	CNSNamespace       CNS = 0x00 // Identify Namespace data structure for NSID
	CNSController      CNS = 0x01 // Identify Controller data structure
	CNSActiveNSList    CNS = 0x02 // up to 1024 active NSIDs greater than NSID
	CNSNSDescriptors   CNS = 0x03 // Namespace Identification Descriptor list for NSID
	CNSNamespaceIOCS   CNS = 0x05 // I/O command set specific Identify Namespace
	CNSControllerIOCS  CNS = 0x06 // I/O command set specific Identify Controller
	CNSActiveNSListCSI CNS = 0x07
	CNSNamespaceAny    CNS = 0x08 // I/O command set independent Identify Namespace
)
