package nvme

import "fmt"

// The Discovery log page (log page 70h; NVMe-oF 1.1, "Discovery Log Page"): a 1024-byte
// header followed by NUMREC 1024-byte entries, one per subsystem port a host may connect to.
const (
	DiscoveryLogHeaderSize = 1024
	DiscoveryLogEntrySize  = 1024
)

const (
	offDiscGENCTR = 0  // generation counter (8)
	offDiscNUMREC = 8  // number of records (8)
	offDiscRECFMT = 16 // record format (2); 0
	offDiscHdrEnd = 18 // 1023:18 reserved
)

// N1: the size is the spec's and the last field ends inside it.
const _ = uint(DiscoveryLogHeaderSize-1024) + uint(1024-DiscoveryLogHeaderSize) +
	uint(DiscoveryLogHeaderSize-offDiscHdrEnd)

const (
	offDiscTRTYPE  = 0
	offDiscADRFAM  = 1
	offDiscSUBTYPE = 2
	offDiscTREQ    = 3
	offDiscPORTID  = 4
	offDiscCNTLID  = 6
	offDiscASQSZ   = 8
	offDiscTRSVCID = 32  // ASCII, space padded (32)
	offDiscSUBNQN  = 256 // NUL-terminated UTF-8 (256)
	offDiscTRADDR  = 512 // ASCII, space padded (256)
	offDiscTSAS    = 768 // transport specific address subtype (256)
	trsvcidSize    = 32
	traddrSize     = 256
	tsasSize       = 256
)

// N1: the size is the spec's and the last field ends inside it.
const _ = uint(DiscoveryLogEntrySize-1024) + uint(1024-DiscoveryLogEntrySize) +
	uint(DiscoveryLogEntrySize-(offDiscTSAS+tsasSize))

// Transport types (TRTYPE).
const (
	TransportRDMA      uint8 = 1
	TransportFC        uint8 = 2
	TransportTCP       uint8 = 3
	TransportIntraHost uint8 = 0xFE // loopback
)

// Address families (ADRFAM).
const (
	AddrFamilyIPv4      uint8 = 1
	AddrFamilyIPv6      uint8 = 2
	AddrFamilyIB        uint8 = 3
	AddrFamilyFC        uint8 = 4
	AddrFamilyIntraHost uint8 = 0xFE
)

// Subsystem types (SUBTYPE).
const (
	SubsystemDiscoveryReferral uint8 = 1 // a referral to another discovery subsystem
	SubsystemNVM               uint8 = 2
	SubsystemCurrentDiscovery  uint8 = 3 // NVMe 2.0: the discovery subsystem being read
)

// TREQ bits: secure channel requirement in 1:0, SQ flow control disable in 2.
const (
	TREQSecureNotSpecified uint8 = 0
	TREQSecureRequired     uint8 = 1
	TREQSecureNotRequired  uint8 = 2
	TREQDisableSQFlow      uint8 = 1 << 2 // the port accepts Connect with SQ flow control off
)

// TCP security types, byte 0 of TSAS for TRTYPE TCP (NVMe/TCP 1.0, "Transport Specific Address
// Subtype").
const (
	TCPSecurityNone  uint8 = 0
	TCPSecurityTLS12 uint8 = 1
	TCPSecurityTLS13 uint8 = 2
)

// DiscoveryLogHeader is the first 1024 bytes of the Discovery log page.
type DiscoveryLogHeader [DiscoveryLogHeaderSize]byte

func (h *DiscoveryLogHeader) GENCTR() uint64     { return get64(h[:], offDiscGENCTR) }
func (h *DiscoveryLogHeader) SetGENCTR(g uint64) { put64(h[:], offDiscGENCTR, g) }
func (h *DiscoveryLogHeader) NUMREC() uint64     { return get64(h[:], offDiscNUMREC) }
func (h *DiscoveryLogHeader) SetNUMREC(n uint64) { put64(h[:], offDiscNUMREC, n) }
func (h *DiscoveryLogHeader) RECFMT() uint16     { return get16(h[:], offDiscRECFMT) }

// DiscoveryLogEntry is one 1024-byte Discovery log page entry.
type DiscoveryLogEntry [DiscoveryLogEntrySize]byte

// DiscoveryEntry is the content of a Discovery log entry, as a target fills it and a host reads
// it.
type DiscoveryEntry struct {
	TRTYPE  uint8
	ADRFAM  uint8
	SUBTYPE uint8
	TREQ    uint8
	PORTID  uint16
	CNTLID  uint16 // CNTLIDDynamic for the dynamic controller model
	ASQSZ   uint16 // maximum admin SQ size (at least 32)
	TRSVCID string // e.g. "4420"
	TRADDR  string // e.g. "192.0.2.7"
	SUBNQN  string
	TSAS    [tsasSize]byte
}

// Set writes e into d; d's reserved bytes are zeroed (N3).
func (d *DiscoveryLogEntry) Set(e *DiscoveryEntry) error {
	*d = DiscoveryLogEntry{}
	d[offDiscTRTYPE] = e.TRTYPE
	d[offDiscADRFAM] = e.ADRFAM
	d[offDiscSUBTYPE] = e.SUBTYPE
	d[offDiscTREQ] = e.TREQ
	put16(d[:], offDiscPORTID, e.PORTID)
	put16(d[:], offDiscCNTLID, e.CNTLID)
	put16(d[:], offDiscASQSZ, e.ASQSZ)
	if err := putASCII(d[offDiscTRSVCID:offDiscTRSVCID+trsvcidSize], "trsvcid", e.TRSVCID); err != nil {
		return err
	}
	if err := putASCII(d[offDiscTRADDR:offDiscTRADDR+traddrSize], "traddr", e.TRADDR); err != nil {
		return err
	}
	if err := putNQNField(d[offDiscSUBNQN:offDiscSUBNQN+nqnFieldSize], "subnqn", e.SUBNQN); err != nil {
		return err
	}
	copy(d[offDiscTSAS:], e.TSAS[:])
	return nil
}

// Entry decodes d. An unterminated SUBNQN is an error; ASCII fields lose their padding.
func (d *DiscoveryLogEntry) Entry() (DiscoveryEntry, error) {
	e := DiscoveryEntry{
		TRTYPE:  d[offDiscTRTYPE],
		ADRFAM:  d[offDiscADRFAM],
		SUBTYPE: d[offDiscSUBTYPE],
		TREQ:    d[offDiscTREQ],
		PORTID:  get16(d[:], offDiscPORTID),
		CNTLID:  get16(d[:], offDiscCNTLID),
		ASQSZ:   get16(d[:], offDiscASQSZ),
		TRSVCID: getASCII(d[offDiscTRSVCID : offDiscTRSVCID+trsvcidSize]),
		TRADDR:  getASCII(d[offDiscTRADDR : offDiscTRADDR+traddrSize]),
	}
	copy(e.TSAS[:], d[offDiscTSAS:])
	nqn, ok := getCString(d[offDiscSUBNQN : offDiscSUBNQN+nqnFieldSize])
	if !ok {
		return e, fmt.Errorf("nvme: discovery entry subnqn (byte %d): no NUL terminator", offDiscSUBNQN)
	}
	e.SUBNQN = nqn
	return e, nil
}

// DiscoveryLogSize is the size of a Discovery log page with n entries.
func DiscoveryLogSize(n int) int { return DiscoveryLogHeaderSize + n*DiscoveryLogEntrySize }

// BuildDiscoveryLog writes a whole Discovery log page into page, which must hold
// DiscoveryLogSize(len(entries)) bytes, and returns that size. A target builds the page once
// per generation and serves each Get Log Page from the requested offset; it allocates nothing.
func BuildDiscoveryLog(page []byte, genctr uint64, entries []DiscoveryEntry) (int, error) {
	n := DiscoveryLogSize(len(entries))
	if len(page) < n {
		return 0, fmt.Errorf("nvme: discovery log of %d entries needs %d bytes, have %d", len(entries), n, len(page))
	}
	h := (*DiscoveryLogHeader)(page[:DiscoveryLogHeaderSize])
	*h = DiscoveryLogHeader{}
	h.SetGENCTR(genctr)
	h.SetNUMREC(uint64(len(entries)))
	for i := range entries {
		off := DiscoveryLogHeaderSize + i*DiscoveryLogEntrySize
		if err := (*DiscoveryLogEntry)(page[off : off+DiscoveryLogEntrySize]).Set(&entries[i]); err != nil {
			return 0, fmt.Errorf("nvme: discovery entry %d: %w", i, err)
		}
	}
	return n, nil
}

// ParseDiscoveryLog decodes a Discovery log page as a host reads it: the header, then as many
// of NUMREC entries as page holds. It reports a short page (fewer bytes than NUMREC entries
// need) as an error after decoding what is there, so a host can re-read with a larger buffer.
func ParseDiscoveryLog(page []byte) (genctr uint64, entries []DiscoveryEntry, err error) {
	if len(page) < DiscoveryLogHeaderSize {
		return 0, nil, fmt.Errorf("nvme: discovery log of %d bytes, want at least %d", len(page), DiscoveryLogHeaderSize)
	}
	h := (*DiscoveryLogHeader)(page[:DiscoveryLogHeaderSize])
	if f := h.RECFMT(); f != 0 {
		return h.GENCTR(), nil, fmt.Errorf("nvme: discovery log RECFMT %d, want 0", f)
	}
	numrec := h.NUMREC()
	have := uint64(len(page)-DiscoveryLogHeaderSize) / DiscoveryLogEntrySize
	n := min(numrec, have)
	entries = make([]DiscoveryEntry, 0, n)
	for i := uint64(0); i < n; i++ {
		off := DiscoveryLogHeaderSize + int(i)*DiscoveryLogEntrySize
		e, err := (*DiscoveryLogEntry)(page[off : off+DiscoveryLogEntrySize]).Entry()
		if err != nil {
			return h.GENCTR(), entries, fmt.Errorf("nvme: discovery entry %d: %w", i, err)
		}
		entries = append(entries, e)
	}
	if n < numrec {
		return h.GENCTR(), entries, fmt.Errorf("nvme: discovery log NUMREC %d, page holds %d", numrec, n)
	}
	return h.GENCTR(), entries, nil
}
