package nvme

import "fmt"

// Status is the status of a completed command as SCT<<8 | SC: the Status Code Type in bits 10:8
// and the Status Code in bits 7:0 (NVMe Base 2.0, "Status Field Definition"; 1.4 §4.6.1). In
// the CQE it sits one bit up, above the phase tag (see CQE.SetStatus). The zero value is success.
//
// Command-specific codes (SCT 1) and media errors (SCT 2) at and above 0x80 depend on the
// opcode; only the ones a fabrics target returns are named here, and the fabrics ones (Connect)
// own the 0x80..0x91 names because no NVM I/O command-specific code is named beside them.
type Status uint16

// Status Code Types (NVMe Base 2.0, "Status Code – Status Code Type Values").
const (
	SCTGeneric         uint8 = 0x0
	SCTCommandSpecific uint8 = 0x1
	SCTMediaError      uint8 = 0x2
	SCTPath            uint8 = 0x3
	SCTVendorSpecific  uint8 = 0x7
)

// MakeStatus combines a Status Code Type (0..7) and a Status Code.
func MakeStatus(sct, sc uint8) Status { return Status(sct&0x7)<<8 | Status(sc) }

// SCT is the Status Code Type.
func (s Status) SCT() uint8 { return uint8(s>>8) & 0x7 }

// SC is the Status Code.
func (s Status) SC() uint8 { return uint8(s) }

// Success reports whether s is Successful Completion.
func (s Status) Success() bool { return s == StatusSuccess }

// Generic command status (SCT 0) (NVMe Base 2.0, "Generic Command Status Values").
const (
	StatusSuccess                     Status = 0x000
	StatusInvalidOpcode               Status = 0x001
	StatusInvalidField                Status = 0x002
	StatusCommandIDConflict           Status = 0x003
	StatusDataTransferError           Status = 0x004
	StatusAbortedPowerLoss            Status = 0x005
	StatusInternalError               Status = 0x006
	StatusAbortRequested              Status = 0x007
	StatusAbortedSQDeletion           Status = 0x008
	StatusAbortedFailedFused          Status = 0x009
	StatusAbortedMissingFused         Status = 0x00A
	StatusInvalidNamespaceOrFormat    Status = 0x00B
	StatusCommandSequenceError        Status = 0x00C
	StatusInvalidSGLSegmentDescriptor Status = 0x00D
	StatusInvalidSGLDescriptorCount   Status = 0x00E // "Invalid Number of SGL Descriptors"
	StatusDataSGLLengthInvalid        Status = 0x00F
	StatusMetadataSGLLengthInvalid    Status = 0x010
	StatusSGLDescriptorTypeInvalid    Status = 0x011
	StatusInvalidPRPOffset            Status = 0x013
	StatusAtomicWriteUnitExceeded     Status = 0x014
	StatusOperationDenied             Status = 0x015
	StatusSGLOffsetInvalid            Status = 0x016
	StatusHostIDInconsistentFormat    Status = 0x018
	StatusKeepAliveTimerExpired       Status = 0x019
	StatusKeepAliveTimeoutInvalid     Status = 0x01A
	StatusAbortedPreempt              Status = 0x01B
	StatusSanitizeFailed              Status = 0x01C
	StatusSanitizeInProgress          Status = 0x01D
	StatusNamespaceWriteProtected     Status = 0x020
	StatusCommandInterrupted          Status = 0x021
	StatusTransientTransportError     Status = 0x022
	StatusLBAOutOfRange               Status = 0x080
	StatusCapacityExceeded            Status = 0x081
	StatusNamespaceNotReady           Status = 0x082
	StatusReservationConflict         Status = 0x083
	StatusFormatInProgress            Status = 0x084
)

// Command specific status (SCT 1) (NVMe Base 2.0, "Command Specific Status Values"; the
// 0x80.. fabrics codes from NVMe-oF 1.1, "Fabrics Command Status Values").
const (
	StatusInvalidCompletionQueue         Status = 0x100
	StatusInvalidQueueIdentifier         Status = 0x101
	StatusInvalidQueueSize               Status = 0x102
	StatusAbortCommandLimitExceeded      Status = 0x103
	StatusAsyncEventRequestLimitExceeded Status = 0x105
	StatusInvalidFirmwareSlot            Status = 0x106
	StatusInvalidFirmwareImage           Status = 0x107
	StatusInvalidInterruptVector         Status = 0x108
	StatusInvalidLogPage                 Status = 0x109
	StatusInvalidFormat                  Status = 0x10A
	StatusInvalidQueueDeletion           Status = 0x10C
	StatusFeatureNotSaveable             Status = 0x10D
	StatusFeatureNotChangeable           Status = 0x10E
	StatusFeatureNotNamespaceSpecific    Status = 0x10F
	StatusConnectIncompatibleFormat      Status = 0x180 // Connect RECFMT not supported
	StatusConnectControllerBusy          Status = 0x181 // Connect: controller or queue busy
	StatusConnectInvalidParameters       Status = 0x182 // DW0 carries IATTR/IPO
	StatusConnectRestartDiscovery        Status = 0x183
	StatusConnectInvalidHost             Status = 0x184 // host not allowed by the subsystem
	StatusDiscoverRestart                Status = 0x190 // Discovery log page changed: restart
	StatusAuthenticationRequired         Status = 0x191
)

// Media and data integrity errors (SCT 2) (NVMe Base 2.0, "Media and Data Integrity Errors").
const (
	StatusWriteFault                  Status = 0x280
	StatusUnrecoveredReadError        Status = 0x281
	StatusGuardCheckError             Status = 0x282
	StatusApplicationTagCheckError    Status = 0x283
	StatusReferenceTagCheckError      Status = 0x284
	StatusCompareFailure              Status = 0x285
	StatusAccessDenied                Status = 0x286
	StatusDeallocatedOrUnwrittenBlock Status = 0x287
)

// Path related status (SCT 3) (NVMe Base 2.0, "Path Related Status Values").
const (
	StatusInternalPathError Status = 0x300
	StatusANAPersistentLoss Status = 0x301
	StatusANAInaccessible   Status = 0x302
	StatusANATransition     Status = 0x303
	StatusHostPathError     Status = 0x370
	StatusAbortedByHost     Status = 0x371
)

// statusNames is a map literal so the compiler rejects two names for one value.
var statusNames = map[Status]string{
	StatusSuccess:                        "success",
	StatusInvalidOpcode:                  "invalid opcode",
	StatusInvalidField:                   "invalid field in command",
	StatusCommandIDConflict:              "command ID conflict",
	StatusDataTransferError:              "data transfer error",
	StatusAbortedPowerLoss:               "aborted: power loss",
	StatusInternalError:                  "internal error",
	StatusAbortRequested:                 "aborted: abort requested",
	StatusAbortedSQDeletion:              "aborted: SQ deletion",
	StatusAbortedFailedFused:             "aborted: failed fused command",
	StatusAbortedMissingFused:            "aborted: missing fused command",
	StatusInvalidNamespaceOrFormat:       "invalid namespace or format",
	StatusCommandSequenceError:           "command sequence error",
	StatusInvalidSGLSegmentDescriptor:    "invalid SGL segment descriptor",
	StatusInvalidSGLDescriptorCount:      "invalid number of SGL descriptors",
	StatusDataSGLLengthInvalid:           "data SGL length invalid",
	StatusMetadataSGLLengthInvalid:       "metadata SGL length invalid",
	StatusSGLDescriptorTypeInvalid:       "SGL descriptor type invalid",
	StatusInvalidPRPOffset:               "invalid PRP offset",
	StatusAtomicWriteUnitExceeded:        "atomic write unit exceeded",
	StatusOperationDenied:                "operation denied",
	StatusSGLOffsetInvalid:               "SGL offset invalid",
	StatusHostIDInconsistentFormat:       "host identifier inconsistent format",
	StatusKeepAliveTimerExpired:          "keep alive timer expired",
	StatusKeepAliveTimeoutInvalid:        "keep alive timeout invalid",
	StatusAbortedPreempt:                 "aborted: preempt and abort",
	StatusSanitizeFailed:                 "sanitize failed",
	StatusSanitizeInProgress:             "sanitize in progress",
	StatusNamespaceWriteProtected:        "namespace is write protected",
	StatusCommandInterrupted:             "command interrupted",
	StatusTransientTransportError:        "transient transport error",
	StatusLBAOutOfRange:                  "LBA out of range",
	StatusCapacityExceeded:               "capacity exceeded",
	StatusNamespaceNotReady:              "namespace not ready",
	StatusReservationConflict:            "reservation conflict",
	StatusFormatInProgress:               "format in progress",
	StatusInvalidCompletionQueue:         "invalid completion queue",
	StatusInvalidQueueIdentifier:         "invalid queue identifier",
	StatusInvalidQueueSize:               "invalid queue size",
	StatusAbortCommandLimitExceeded:      "abort command limit exceeded",
	StatusAsyncEventRequestLimitExceeded: "asynchronous event request limit exceeded",
	StatusInvalidFirmwareSlot:            "invalid firmware slot",
	StatusInvalidFirmwareImage:           "invalid firmware image",
	StatusInvalidInterruptVector:         "invalid interrupt vector",
	StatusInvalidLogPage:                 "invalid log page",
	StatusInvalidFormat:                  "invalid format",
	StatusInvalidQueueDeletion:           "invalid queue deletion",
	StatusFeatureNotSaveable:             "feature identifier not saveable",
	StatusFeatureNotChangeable:           "feature not changeable",
	StatusFeatureNotNamespaceSpecific:    "feature not namespace specific",
	StatusConnectIncompatibleFormat:      "connect: incompatible format",
	StatusConnectControllerBusy:          "connect: controller busy",
	StatusConnectInvalidParameters:       "connect: invalid parameters",
	StatusConnectRestartDiscovery:        "connect: restart discovery",
	StatusConnectInvalidHost:             "connect: invalid host",
	StatusDiscoverRestart:                "discovery restart",
	StatusAuthenticationRequired:         "authentication required",
	StatusWriteFault:                     "write fault",
	StatusUnrecoveredReadError:           "unrecovered read error",
	StatusGuardCheckError:                "end-to-end guard check error",
	StatusApplicationTagCheckError:       "end-to-end application tag check error",
	StatusReferenceTagCheckError:         "end-to-end reference tag check error",
	StatusCompareFailure:                 "compare failure",
	StatusAccessDenied:                   "access denied",
	StatusDeallocatedOrUnwrittenBlock:    "deallocated or unwritten logical block",
	StatusInternalPathError:              "internal path error",
	StatusANAPersistentLoss:              "asymmetric access persistent loss",
	StatusANAInaccessible:                "asymmetric access inaccessible",
	StatusANATransition:                  "asymmetric access transition",
	StatusHostPathError:                  "host path error",
	StatusAbortedByHost:                  "aborted by host",
}

// String names a known status, or shows SCT and SC in hex.
func (s Status) String() string {
	if name, ok := statusNames[s]; ok {
		return name
	}
	return fmt.Sprintf("status sct=%#x sc=%#02x", s.SCT(), s.SC())
}
