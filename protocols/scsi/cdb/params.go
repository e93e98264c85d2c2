package cdb

// Parameter lists (data-out) of UNMAP and PERSISTENT RESERVE OUT. The parsers view the
// received bytes in place; field pointers in their errors count bytes from the start of
// the parameter list (C/D = 0).

// UNMAP parameter list layout (SBC-3): 0-1 UNMAP DATA LENGTH (n-1); 2-3 UNMAP
// BLOCK DESCRIPTOR DATA LENGTH; 4-7 reserved; then 16-byte descriptors: 0-7 LBA,
// 8-11 NUMBER OF LOGICAL BLOCKS, 12-15 reserved.
const (
	UnmapHeaderSize     = 8
	UnmapDescriptorSize = 16
)

// UnmapList is a checked UNMAP parameter list viewed in place.
type UnmapList struct {
	desc []byte // whole descriptors only
}

// ParseUnmapParameters checks the header of an UNMAP parameter list. An empty list
// (PARAMETER LIST LENGTH 0) unmaps nothing; a list shorter than its header is a
// PARAMETER LIST LENGTH ERROR; lengths that overrun the data are an INVALID FIELD IN
// PARAMETER LIST. A trailing partial descriptor is ignored (SBC-3).
func ParseUnmapParameters(p []byte) (UnmapList, error) {
	if len(p) == 0 {
		return UnmapList{}, nil
	}
	if len(p) < UnmapHeaderSize {
		return UnmapList{}, ErrParameterListLength
	}
	if n := int(be16(p)); n > len(p)-2 {
		return UnmapList{}, invalidParameter(0, -1)
	}
	n := int(be16(p[2:]))
	if n > len(p)-UnmapHeaderSize {
		return UnmapList{}, invalidParameter(2, -1)
	}
	n -= n % UnmapDescriptorSize
	return UnmapList{desc: p[UnmapHeaderSize : UnmapHeaderSize+n]}, nil
}

// Len is the number of block descriptors.
func (l UnmapList) Len() int { return len(l.desc) / UnmapDescriptorSize }

// At returns descriptor i.
func (l UnmapList) At(i int) (lba uint64, blocks uint32) {
	d := l.desc[i*UnmapDescriptorSize:]
	return be64(d), be32(d[8:])
}

// Check applies the logical unit's limits (Block Limits VPD page): at most
// descriptorsMax descriptors and blocksMax blocks in each, every range inside capacity.
func (l UnmapList) Check(capacity uint64, descriptorsMax, blocksMax uint32) error {
	if l.Len() > int(descriptorsMax) {
		return invalidParameter(2, -1)
	}
	for i := range l.Len() {
		lba, n := l.At(i)
		if n > blocksMax {
			return invalidParameter(UnmapHeaderSize+i*UnmapDescriptorSize+8, -1)
		}
		if lba > capacity || uint64(n) > capacity-lba {
			return ErrLBAOutOfRange
		}
	}
	return nil
}

// PERSISTENT RESERVE OUT parameter list (SPC-4): 0-7 RESERVATION KEY; 8-15
// SERVICE ACTION RESERVATION KEY; 16-19 obsolete; 20 SPEC_I_PT(3) ALL_TG_PT(2) APTPL(0);
// 21 reserved; 22-23 obsolete; with SPEC_I_PT, 24-27 TRANSPORTID PARAMETER DATA LENGTH
// and the TransportIDs. REGISTER AND MOVE: 16 reserved; 17 UNREG(1) APTPL(0);
// 18-19 RELATIVE TARGET PORT IDENTIFIER; 20-23 TRANSPORTID PARAMETER DATA LENGTH; 24…
const (
	PROutBasicSize  = 24
	offPRSpecIPT    = 20
	offPRTIDLen     = 24
	offPRMoveFlags  = 17
	offPRMovePort   = 18
	offPRMoveTIDLen = 20
)

// PROutParameters is a decoded PERSISTENT RESERVE OUT parameter list.
type PROutParameters struct {
	ReservationKey     uint64
	ServiceActionKey   uint64
	SpecIPT            bool // TransportIDs name the initiator ports to register
	AllTgPt            bool
	APTPL              bool
	Unreg              bool   // REGISTER AND MOVE
	RelativeTargetPort uint16 // REGISTER AND MOVE
	// TransportIDs is the raw TransportID list (SPEC_I_PT) or the single TransportID of
	// REGISTER AND MOVE, viewed in place; walk it with NextTransportID.
	TransportIDs []byte
}

// ParsePROutParameters decodes the parameter list of service action sa. Lengths that
// disagree with the list are PARAMETER LIST LENGTH ERROR; SPEC_I_PT on anything but
// REGISTER is an INVALID FIELD IN PARAMETER LIST (SPC-4).
func ParsePROutParameters(sa ServiceAction, p []byte) (PROutParameters, error) {
	var r PROutParameters
	if len(p) < PROutBasicSize {
		return r, ErrParameterListLength
	}
	r.ReservationKey, r.ServiceActionKey = be64(p), be64(p[8:])
	if sa == PROutRegisterAndMove {
		r.Unreg = p[offPRMoveFlags]&0x02 != 0
		r.APTPL = p[offPRMoveFlags]&0x01 != 0
		r.RelativeTargetPort = be16(p[offPRMovePort:])
		n := be32(p[offPRMoveTIDLen:])
		if uint64(n) != uint64(len(p)-PROutBasicSize) {
			return r, ErrParameterListLength
		}
		r.TransportIDs = p[PROutBasicSize:]
		return r, nil
	}
	flags := p[offPRSpecIPT]
	r.SpecIPT, r.AllTgPt, r.APTPL = flags&0x08 != 0, flags&0x04 != 0, flags&0x01 != 0
	if !r.SpecIPT {
		if len(p) != PROutBasicSize {
			return r, ErrParameterListLength
		}
		return r, nil
	}
	if sa != PROutRegister {
		return r, invalidParameter(offPRSpecIPT, 3)
	}
	if len(p) < PROutBasicSize+4 {
		return r, ErrParameterListLength
	}
	n := be32(p[offPRTIDLen:])
	if uint64(n) != uint64(len(p)-PROutBasicSize-4) {
		return r, ErrParameterListLength
	}
	r.TransportIDs = p[PROutBasicSize+4:]
	return r, nil
}

// TransportID is one TransportID (SPC-4, TransportID identifiers), viewed in place.
type TransportID []byte

// ProtocolISCSI is the iSCSI protocol identifier (SPC-4, PROTOCOL IDENTIFIER values).
const ProtocolISCSI = 0x5

// transportIDSizeFixed is the size of a TransportID of every protocol but iSCSI (and
// SOP), which have a fixed 24-byte form.
const transportIDSizeFixed = 24

// ProtocolID returns the PROTOCOL IDENTIFIER (byte 0 bits 3-0).
func (t TransportID) ProtocolID() uint8 { return t[0] & 0x0f }

// FormatCode returns the FORMAT CODE (byte 0 bits 7-6).
func (t TransportID) FormatCode() uint8 { return t[0] >> 6 }

// ISCSIName returns the iSCSI name of an iSCSI TransportID and, in the initiator-port
// format (FORMAT CODE 01b, "name,i,0x<ISID>"), the ISID text (SPC-4, iSCSI TransportID).
func (t TransportID) ISCSIName() (name, isid string, ok bool) {
	if t.ProtocolID() != ProtocolISCSI || len(t) < 4 {
		return "", "", false
	}
	s := t[4:]
	for i, c := range s {
		if c == 0 {
			s = s[:i]
			break
		}
	}
	switch t.FormatCode() {
	case 0:
		return string(s), "", true
	case 1:
		for i := 0; i+5 <= len(s); i++ {
			if string(s[i:i+5]) == ",i,0x" || string(s[i:i+5]) == ",I,0X" {
				return string(s[:i]), string(s[i+5:]), true
			}
		}
	}
	return "", "", false
}

// NextTransportID splits the first TransportID off list; offset is the list's position
// in the parameter data, for the error's field pointer. An iSCSI TransportID is 4 bytes
// plus its ADDITIONAL LENGTH (at least 20, a multiple of 4); others are 24 bytes.
func NextTransportID(list []byte, offset int) (TransportID, []byte, error) {
	if len(list) < 4 {
		return nil, nil, invalidParameter(offset, -1)
	}
	size := transportIDSizeFixed
	if list[0]&0x0f == ProtocolISCSI {
		n := int(be16(list[2:]))
		if n < 20 || n%4 != 0 {
			return nil, nil, invalidParameter(offset+2, -1)
		}
		size = 4 + n
	}
	if size > len(list) {
		return nil, nil, invalidParameter(offset, -1)
	}
	return TransportID(list[:size]), list[size:], nil
}
