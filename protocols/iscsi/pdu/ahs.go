package pdu

import "fmt"

// AHSType is the type of one Additional Header Segment (RFC 7143 §11.2.2).
type AHSType uint8

// AHS types; only a SCSI Command carries them.
const (
	AHSExtendedCDB        AHSType = 1 // CDB bytes beyond the 16 in the BHS
	AHSBidiReadDataLength AHSType = 2 // Expected Bidirectional Read Data Length
)

// AHS layout (RFC 7143 §11.2.2): AHSLength(2) AHSType(1) AHS-specific(1) data…, padded
// to 4 bytes. AHSLength counts the bytes after AHSType, excluding padding.
const (
	ahsHeaderSize = 3 // AHSLength and AHSType
	ahsBidiLength = 5 // reserved byte + 4-byte length
)

// CheckAHS validates the AHS region of a SCSI Command: ahs is the TotalAHSLength*4
// bytes after the BHS. Each segment must fit, be of a known type and size, and appear
// at most once, and the padded segments must fill the region exactly. Offsets in the
// error count from the start of the PDU.
func CheckAHS(ahs []byte) error {
	var seen [3]bool
	for pos := 0; pos < len(ahs); {
		rest := ahs[pos:]
		if len(rest) < 4 {
			return &FieldError{"AHSLength", BHSSize + pos, uint32(len(rest)), "a whole AHS header", ReasonInvalidPDUField}
		}
		n := int(be16(rest))
		typ := AHSType(rest[2])
		size := ahsHeaderSize + n
		size += int(PadSize(uint32(size)))
		switch {
		case n == 0 || size > len(rest):
			return &FieldError{"AHSLength", BHSSize + pos, uint32(n),
				fmt.Sprintf("1..%d", len(rest)-ahsHeaderSize), ReasonInvalidPDUField}
		case typ == AHSExtendedCDB:
		case typ == AHSBidiReadDataLength && n == ahsBidiLength:
		case typ == AHSBidiReadDataLength:
			return &FieldError{"AHSLength", BHSSize + pos, uint32(n), "5 for a bidirectional read length", ReasonInvalidPDUField}
		default:
			return &FieldError{"AHSType", BHSSize + pos + 2, uint32(typ), "1 or 2", ReasonInvalidPDUField}
		}
		if seen[typ] {
			return &FieldError{"AHSType", BHSSize + pos + 2, uint32(typ), "once per PDU", ReasonInvalidPDUField}
		}
		seen[typ] = true
		pos += size
	}
	return nil
}

// FindAHS returns the AHS-specific bytes (after AHSType, without padding) of the first
// segment of type t in ahs, which CheckAHS has accepted.
func FindAHS(ahs []byte, t AHSType) ([]byte, bool) {
	for pos := 0; pos+4 <= len(ahs); {
		n := int(be16(ahs[pos:]))
		size := ahsHeaderSize + n
		size += int(PadSize(uint32(size)))
		if n == 0 || pos+size > len(ahs) {
			return nil, false
		}
		if AHSType(ahs[pos+2]) == t {
			return ahs[pos+ahsHeaderSize : pos+ahsHeaderSize+n], true
		}
		pos += size
	}
	return nil, false
}

// ExtendedCDB returns the CDB bytes the extended-CDB AHS adds after the first 16 (its
// first AHS-specific byte is reserved).
func ExtendedCDB(ahs []byte) ([]byte, bool) {
	b, ok := FindAHS(ahs, AHSExtendedCDB)
	if !ok || len(b) < 2 {
		return nil, false
	}
	return b[1:], true
}

// BidiReadDataLength returns the Expected Bidirectional Read Data Length.
func BidiReadDataLength(ahs []byte) (uint32, bool) {
	b, ok := FindAHS(ahs, AHSBidiReadDataLength)
	if !ok || len(b) != ahsBidiLength {
		return 0, false
	}
	return be32(b[1:]), true
}

// AppendExtendedCDBAHS appends an extended-CDB AHS carrying cdb[16:] (cdb longer than
// 16 bytes) and returns the result; the caller adds its length to TotalAHSLength.
func AppendExtendedCDBAHS(dst, cdb []byte) []byte {
	if len(cdb) <= CDBSize {
		panic(fmt.Sprintf("pdu: extended CDB AHS for a %d-byte CDB", len(cdb)))
	}
	extra := cdb[CDBSize:]
	n := 1 + len(extra)
	dst = append(dst, byte(n>>8), byte(n), byte(AHSExtendedCDB), 0)
	dst = append(dst, extra...)
	return append(dst, zeroPad[:PadSize(uint32(ahsHeaderSize+n))]...)
}

// AppendBidiReadDataLengthAHS appends a bidirectional read length AHS (8 bytes).
func AppendBidiReadDataLengthAHS(dst []byte, n uint32) []byte {
	return append(dst, 0, ahsBidiLength, byte(AHSBidiReadDataLength), 0,
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
