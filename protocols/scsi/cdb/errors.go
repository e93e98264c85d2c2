package cdb

import (
	"encoding/binary"
	"fmt"
)

// Error is a command the device server must terminate with CHECK CONDITION: its sense
// key, additional sense code and, for a bad field, the sense-key specific field pointer.
// Errors about CDB fields are preallocated and shared, so Parse does not allocate when
// it rejects a command (invariant C3); treat an *Error as immutable.
type Error struct {
	key SenseKey
	asc ASC
	sks [3]byte // SKSV set when there is a field pointer
}

func (e *Error) Error() string {
	s := fmt.Sprintf("cdb: sense key %#x, ASC %s", uint8(e.key), e.asc)
	if b, bit, inCDB, ok := e.FieldPointer(); ok {
		where := "parameter list"
		if inCDB {
			where = "CDB"
		}
		s += fmt.Sprintf(", %s byte %d", where, b)
		if bit >= 0 {
			s += fmt.Sprintf(" bit %d", bit)
		}
	}
	return s
}

// SenseKey returns the sense key.
func (e *Error) SenseKey() SenseKey { return e.key }

// ASC returns the additional sense code and qualifier.
func (e *Error) ASC() ASC { return e.asc }

// FieldPointer returns the field in error: its byte, its most significant bit (-1 when
// the whole byte or a multi-byte field is meant) and whether it is in the CDB.
func (e *Error) FieldPointer() (byteIndex, bit int, inCDB, ok bool) {
	if e.sks[0]&bitSKSV == 0 {
		return 0, -1, false, false
	}
	bit = -1
	if e.sks[0]&bitBPV != 0 {
		bit = int(e.sks[0] & 7)
	}
	return int(binary.BigEndian.Uint16(e.sks[1:])), bit, e.sks[0]&bitCD != 0, true
}

// Sense returns the sense data for e, with no INFORMATION field.
func (e *Error) Sense() Sense {
	return Sense{Key: e.key, ASC: e.asc, SenseKeySpecific: e.sks}
}

// cdbSizeMax is the longest CDB Parse decodes; iSCSI carries 16 bytes in the BHS.
const cdbSizeMax = 16

// cdbFieldErrors holds every INVALID FIELD IN CDB error: [byte][bit 0..7, or 8 for no
// bit pointer]. Preallocating them keeps rejections allocation-free (C3).
var cdbFieldErrors = func() (t [cdbSizeMax][9]Error) {
	for b := range t {
		for bit := range t[b] {
			p := bit
			if bit == 8 {
				p = -1
			}
			t[b][bit] = Error{KeyIllegalRequest, ASCInvalidFieldInCDB, FieldPointer(b, p, true)}
		}
	}
	return t
}()

// invalidField returns the shared INVALID FIELD IN CDB error for byte b, bit bit (-1:
// no bit pointer).
func invalidField(b, bit int) *Error {
	if bit < 0 {
		bit = 8
	}
	return &cdbFieldErrors[b][bit]
}

var (
	// errInvalidOpcode: INVALID COMMAND OPERATION CODE, pointing at byte 0.
	errInvalidOpcode = &Error{KeyIllegalRequest, ASCInvalidCommandOperationCode, FieldPointer(0, -1, true)}
	// errShortCDB: fewer bytes than the operation code's CDB length.
	errShortCDB = &Error{KeyIllegalRequest, ASCInvalidFieldInCDB, [3]byte{}}
	// ErrLBAOutOfRange is LOGICAL BLOCK ADDRESS OUT OF RANGE (SBC-3): no field
	// pointer.
	ErrLBAOutOfRange = &Error{KeyIllegalRequest, ASCLBAOutOfRange, [3]byte{}}
	// ErrParameterListLength is PARAMETER LIST LENGTH ERROR.
	ErrParameterListLength = &Error{KeyIllegalRequest, ASCParameterListLengthError, [3]byte{}}
)

// invalidParameter returns INVALID FIELD IN PARAMETER LIST for byte b, bit bit of the
// parameter data. Parameter lists are on the control path; this allocates.
func invalidParameter(b, bit int) *Error {
	return &Error{KeyIllegalRequest, ASCInvalidFieldInParameterList, FieldPointer(b, bit, false)}
}
