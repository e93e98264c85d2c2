package cdb

import (
	"encoding/binary"
	"fmt"
)

// Status is the SCSI status byte (SAM-5). RESERVATION CONFLICT is a status, not a
// sense key: it carries no sense data.
type Status uint8

// SCSI statuses.
const (
	StatusGood                Status = 0x00
	StatusCheckCondition      Status = 0x02
	StatusConditionMet        Status = 0x04
	StatusBusy                Status = 0x08
	StatusReservationConflict Status = 0x18
	StatusTaskSetFull         Status = 0x28
	StatusACAActive           Status = 0x30
	StatusTaskAborted         Status = 0x40
)

// SenseKey is the 4-bit sense key (SPC-4).
type SenseKey uint8

// Sense keys.
const (
	KeyNoSense        SenseKey = 0x0
	KeyRecoveredError SenseKey = 0x1
	KeyNotReady       SenseKey = 0x2
	KeyMediumError    SenseKey = 0x3
	KeyHardwareError  SenseKey = 0x4
	KeyIllegalRequest SenseKey = 0x5
	KeyUnitAttention  SenseKey = 0x6
	KeyDataProtect    SenseKey = 0x7
	KeyBlankCheck     SenseKey = 0x8
	KeyVendorSpecific SenseKey = 0x9
	KeyCopyAborted    SenseKey = 0xa
	KeyAbortedCommand SenseKey = 0xb
	KeyVolumeOverflow SenseKey = 0xd
	KeyMiscompare     SenseKey = 0xe
	KeyCompleted      SenseKey = 0xf
)

// ASC is an additional sense code (high byte) and qualifier (low byte), as SPC-4
// Annex D lists them: ASC(0x2400) is INVALID FIELD IN CDB.
type ASC uint16

// Code returns the ADDITIONAL SENSE CODE byte.
func (a ASC) Code() uint8 { return uint8(a >> 8) }

// Qualifier returns the ADDITIONAL SENSE CODE QUALIFIER byte.
func (a ASC) Qualifier() uint8 { return uint8(a) }

func (a ASC) String() string { return fmt.Sprintf("%02X/%02X", a.Code(), a.Qualifier()) }

// Additional sense codes a block target reports (SPC-4 Annex D).
const (
	ASCNoAdditionalSense             ASC = 0x0000
	ASCNotReadyCauseNotReportable    ASC = 0x0400 // LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE
	ASCNotReadyBecomingReady         ASC = 0x0401 // … IS IN PROCESS OF BECOMING READY
	ASCNotReadyInitializingRequired  ASC = 0x0402 // … INITIALIZING COMMAND REQUIRED
	ASCNotReadyManualIntervention    ASC = 0x0403 // … MANUAL INTERVENTION REQUIRED
	ASCNotReadyFormatInProgress      ASC = 0x0404 // … FORMAT IN PROGRESS
	ASCNotReadyAccessTransition      ASC = 0x040a // … ASYMMETRIC ACCESS STATE TRANSITION
	ASCNotReadyTargetPortStandby     ASC = 0x040b // … TARGET PORT IN STANDBY STATE
	ASCNotReadyTargetPortUnavailable ASC = 0x040c // … TARGET PORT IN UNAVAILABLE STATE
	ASCWriteError                    ASC = 0x0c00
	ASCGuardCheckFailed              ASC = 0x1001 // LOGICAL BLOCK GUARD CHECK FAILED
	ASCApplicationTagCheckFailed     ASC = 0x1002
	ASCReferenceTagCheckFailed       ASC = 0x1003
	ASCUnrecoveredReadError          ASC = 0x1100
	ASCParameterListLengthError      ASC = 0x1a00
	ASCMiscompareDuringVerify        ASC = 0x1d00
	ASCInvalidCommandOperationCode   ASC = 0x2000
	ASCLBAOutOfRange                 ASC = 0x2100
	ASCInvalidFieldInCDB             ASC = 0x2400
	ASCLogicalUnitNotSupported       ASC = 0x2500
	ASCInvalidFieldInParameterList   ASC = 0x2600
	ASCParameterNotSupported         ASC = 0x2601
	ASCParameterValueInvalid         ASC = 0x2602
	ASCWriteProtected                ASC = 0x2700
	ASCNotReadyToReadyChange         ASC = 0x2800 // NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED
	ASCPowerOnOrReset                ASC = 0x2900 // POWER ON, RESET, OR BUS DEVICE RESET OCCURRED
	ASCPowerOnOccurred               ASC = 0x2901
	ASCBusResetOccurred              ASC = 0x2902
	ASCDeviceResetOccurred           ASC = 0x2903 // BUS DEVICE RESET FUNCTION OCCURRED
	ASCDeviceInternalReset           ASC = 0x2904
	ASCITNexusLossOccurred           ASC = 0x2907
	ASCParametersChanged             ASC = 0x2a00
	ASCModeParametersChanged         ASC = 0x2a01
	ASCLogParametersChanged          ASC = 0x2a02
	ASCReservationsPreempted         ASC = 0x2a03
	ASCReservationsReleased          ASC = 0x2a04
	ASCRegistrationsPreempted        ASC = 0x2a05
	ASCAsymmetricAccessChanged       ASC = 0x2a06
	ASCCapacityDataChanged           ASC = 0x2a09
	ASCCommandSequenceError          ASC = 0x2c00
	ASCCommandsClearedByAnother      ASC = 0x2f00 // COMMANDS CLEARED BY ANOTHER INITIATOR
	ASCSavingParametersNotSupported  ASC = 0x3900
	ASCMediumNotPresent              ASC = 0x3a00
	ASCInquiryDataChanged            ASC = 0x3f03
	ASCReportedLUNsDataChanged       ASC = 0x3f0e
	ASCInternalTargetFailure         ASC = 0x4400
	ASCInvalidMessageError           ASC = 0x4900
	ASCOverlappedCommands            ASC = 0x4e00
	ASCInsufficientResources         ASC = 0x5503
)

// Sense data formats (SPC-4).
const (
	// FixedSenseSize is the size of fixed-format sense data as built here (ADDITIONAL
	// SENSE LENGTH 10).
	FixedSenseSize = 18
	// DescriptorSenseSizeMax is the most PutDescriptor writes: the 8-byte header, an
	// information descriptor (12) and a sense-key specific descriptor (8).
	DescriptorSenseSizeMax = 8 + infoDescriptorSize + sksDescriptorSize

	codeFixedCurrent       = 0x70
	codeFixedDeferred      = 0x71
	codeDescriptorCurrent  = 0x72
	codeDescriptorDeferred = 0x73
	bitValid               = 0x80 // fixed byte 0; information descriptor byte 2
	bitSKSV                = 0x80 // sense-key specific byte 0
	bitCD                  = 0x40 // sense-key specific byte 0: field in the CDB
	bitBPV                 = 0x08 // sense-key specific byte 0: bit pointer valid
	infoDescriptorSize     = 12
	sksDescriptorSize      = 8
	descriptorInformation  = 0x00
	descriptorSKS          = 0x02
)

// Sense is what sense data says; PutFixed and PutDescriptor encode it.
type Sense struct {
	Key      SenseKey
	ASC      ASC
	Deferred bool // a deferred error (response code 71h/73h)
	// Information is the INFORMATION field, e.g. the first LBA in error or the offset of
	// a miscompare; sent only when InformationValid.
	Information      uint64
	InformationValid bool
	// SenseKeySpecific is sent when its SKSV bit (byte 0, bit 7) is set.
	SenseKeySpecific [3]byte
}

// PutFixed writes fixed-format sense data (SPC-4) into dst and returns 18, or 0
// if dst is shorter. An Information value above 32 bits cannot be expressed: VALID is
// then clear (use descriptor format).
func (s *Sense) PutFixed(dst []byte) int {
	if len(dst) < FixedSenseSize {
		return 0
	}
	b := dst[:FixedSenseSize]
	clear(b)
	b[0] = codeFixedCurrent
	if s.Deferred {
		b[0] = codeFixedDeferred
	}
	if s.InformationValid && s.Information <= 0xffffffff {
		b[0] |= bitValid
		binary.BigEndian.PutUint32(b[3:], uint32(s.Information))
	}
	b[2] = byte(s.Key) & 0x0f
	b[7] = FixedSenseSize - 8 // ADDITIONAL SENSE LENGTH: bytes after byte 7
	b[12], b[13] = s.ASC.Code(), s.ASC.Qualifier()
	if s.SenseKeySpecific[0]&bitSKSV != 0 {
		copy(b[15:18], s.SenseKeySpecific[:])
	}
	return FixedSenseSize
}

// PutDescriptor writes descriptor-format sense data (SPC-4) into dst: the header,
// then an information descriptor if InformationValid and a sense-key specific
// descriptor if SKSV is set. It returns the length, or 0 if dst is shorter.
func (s *Sense) PutDescriptor(dst []byte) int {
	n := 8
	if s.InformationValid {
		n += infoDescriptorSize
	}
	hasSKS := s.SenseKeySpecific[0]&bitSKSV != 0
	if hasSKS {
		n += sksDescriptorSize
	}
	if len(dst) < n {
		return 0
	}
	b := dst[:n]
	clear(b)
	b[0] = codeDescriptorCurrent
	if s.Deferred {
		b[0] = codeDescriptorDeferred
	}
	b[1] = byte(s.Key) & 0x0f
	b[2], b[3] = s.ASC.Code(), s.ASC.Qualifier()
	b[7] = byte(n - 8)
	d := b[8:]
	if s.InformationValid {
		d[0] = descriptorInformation
		d[1] = infoDescriptorSize - 2
		d[2] = bitValid
		binary.BigEndian.PutUint64(d[4:], s.Information)
		d = d[infoDescriptorSize:]
	}
	if hasSKS {
		d[0] = descriptorSKS
		d[1] = sksDescriptorSize - 2
		copy(d[4:7], s.SenseKeySpecific[:])
	}
	return n
}

// Put writes descriptor format when descriptor is set (the D_SENSE bit of the Control
// mode page, or REQUEST SENSE's DESC bit), fixed format otherwise.
func (s *Sense) Put(dst []byte, descriptor bool) int {
	if descriptor {
		return s.PutDescriptor(dst)
	}
	return s.PutFixed(dst)
}

// FieldPointer encodes the sense-key specific field pointer (SPC-4): the
// byte (and, if bit >= 0, the most significant bit) of the field in error, in the CDB
// (inCDB) or in the parameter list.
func FieldPointer(byteIndex int, bit int, inCDB bool) [3]byte {
	var sks [3]byte
	sks[0] = bitSKSV
	if inCDB {
		sks[0] |= bitCD
	}
	if bit >= 0 {
		sks[0] |= bitBPV | byte(bit&7)
	}
	binary.BigEndian.PutUint16(sks[1:], uint16(byteIndex))
	return sks
}
