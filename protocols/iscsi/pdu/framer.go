package pdu

import "fmt"

// Event is what Framer.Next found.
type Event uint8

// Framer events.
const (
	// EventNeedMore: read more bytes into Space and Commit them.
	EventNeedMore Event = iota
	// EventHeader: the BHS, AHS and header digest are in. Inspect Header and AHS (Check
	// them), then either call LandData to receive the data segment into a buffer of
	// yours, Discard to skip it, or nothing to have it buffered in place.
	EventHeader
	// EventPDU: the whole PDU is in. Header, AHS and Data stay valid until the next call
	// to Space or Next. A non-nil error with it is a data digest mismatch: the PDU was
	// framed (the stream is intact) but its data must be rejected (ReasonDataDigest).
	EventPDU
)

// FrameSize is the largest PDU with a data segment of at most dataSizeMax bytes: BHS,
// the largest AHS, both digests and padding.
func FrameSize(dataSizeMax uint32) int {
	return BHSSize + AHSSizeMax + DigestSize + int(dataSizeMax) + 3 + DigestSize
}

// FramerConfig sizes a Framer once, at connection setup.
type FramerConfig struct {
	// DataSegmentSizeMax is the largest data segment buffered in place: at least the
	// largest MaxRecvDataSegmentLength the connection may declare. Larger segments must
	// be landed (LandData) or skipped (Discard).
	DataSegmentSizeMax uint32
	// BufferSize is the receive buffer size; 0 means FrameSize(DataSegmentSizeMax). A
	// larger buffer lets one read bring in several PDUs.
	BufferSize int
}

type framerState uint8

const (
	stateHeader      framerState = iota // waiting for BHS, AHS, header digest
	stateHeaderReady                    // EventHeader returned; caller may land or discard
	stateData                           // data buffered in place
	stateLanding                        // data landing in the caller's buffer
	stateDiscard                        // skipping the data segment
	stateDone                           // EventPDU returned; released by Space or Next
)

// Framer cuts PDUs out of a byte stream for a non-blocking event loop. It owns no
// socket and never blocks: the caller reads into Space, Commits the count, and calls
// Next until it returns EventNeedMore. Its buffer is allocated once in NewFramer; no
// call allocates unless it returns an error (invariant P4). Owner: the reactor that owns
// the connection; not safe for concurrent use.
type Framer struct {
	buf  []byte
	head int // start of the current PDU in buf
	tail int // end of the bytes received into buf

	state     framerState
	spaceLand bool // the last Space returned the landing buffer
	spaceOut  bool // Space was called and not yet committed

	headerDigest bool
	dataDigest   bool
	dataSizeMax  uint32

	// The current PDU, set at EventHeader. Indexes into buf move with compact.
	hdrSize     int    // BHS + AHS + header digest
	dataSize    uint32 // DataSegmentLength
	land        []byte // caller's buffer for the data segment (stateLanding)
	landed      int    // bytes of land filled
	trailer     int    // index of the padding (then data digest) after the data
	end         int    // index just past the PDU
	discardLeft int    // bytes still to skip (stateDiscard)

	err error // sticky: after a fatal error the stream cannot be resynchronized
}

// NewFramer allocates the receive buffer. A buffer smaller than
// FrameSize(DataSegmentSizeMax) is a configuration bug.
func NewFramer(cfg FramerConfig) *Framer {
	if cfg.DataSegmentSizeMax > DataSegmentLengthMax {
		panic(fmt.Sprintf("pdu: DataSegmentSizeMax %d exceeds %d", cfg.DataSegmentSizeMax, DataSegmentLengthMax))
	}
	size := FrameSize(cfg.DataSegmentSizeMax)
	if cfg.BufferSize == 0 {
		cfg.BufferSize = size
	}
	if cfg.BufferSize < size {
		panic(fmt.Sprintf("pdu: framer buffer %d < frame size %d", cfg.BufferSize, size))
	}
	return &Framer{buf: make([]byte, cfg.BufferSize), dataSizeMax: cfg.DataSegmentSizeMax}
}

// SetDigests turns header and data digests on or off from the next PDU on: call it
// after handling the final Login Request, before parsing Full Feature Phase PDUs.
func (f *Framer) SetDigests(header, data bool) {
	f.release()
	if f.state != stateHeader {
		panic(fmt.Sprintf("pdu: SetDigests inside a PDU (state %d)", f.state))
	}
	f.headerDigest, f.dataDigest = header, data
}

// Space returns where the caller should read the next bytes: free space in the
// receive buffer, or the rest of the caller's landing buffer while a data segment
// lands. It releases a PDU returned by EventPDU.
func (f *Framer) Space() []byte {
	f.release()
	f.spaceOut = true
	if f.state == stateLanding && f.landed < len(f.land) {
		f.spaceLand = true
		return f.land[f.landed:]
	}
	f.spaceLand = false
	free := len(f.buf) - f.tail
	if f.head > 0 && (f.head == f.tail || free < f.need() || free < len(f.buf)/4) {
		f.compact()
	}
	return f.buf[f.tail:]
}

// Commit records that n bytes were read into the slice Space returned.
func (f *Framer) Commit(n int) {
	if !f.spaceOut {
		panic("pdu: Commit without Space")
	}
	f.spaceOut = false
	if f.spaceLand {
		if n < 0 || n > len(f.land)-f.landed {
			panic(fmt.Sprintf("pdu: Commit(%d) beyond landing space %d", n, len(f.land)-f.landed))
		}
		f.landed += n
		return
	}
	if n < 0 || n > len(f.buf)-f.tail {
		panic(fmt.Sprintf("pdu: Commit(%d) beyond buffer space %d", n, len(f.buf)-f.tail))
	}
	f.tail += n
}

// Next parses what has arrived. A returned error with Fatal() true is sticky: the
// connection must be dropped.
func (f *Framer) Next() (Event, error) {
	if f.err != nil {
		return EventNeedMore, f.err
	}
	f.release()
	for {
		switch f.state {
		case stateHeader:
			return f.nextHeader()
		case stateHeaderReady:
			if f.dataSize > f.dataSizeMax {
				return f.fail(&FieldError{"DataSegmentLength", offDataSegmentLength, f.dataSize,
					fmt.Sprintf("<= %d to buffer in place (or LandData, Discard)", f.dataSizeMax), ReasonNone})
			}
			f.trailer = f.head + f.hdrSize + int(f.dataSize)
			f.end = f.trailer + f.trailerSize()
			f.state = stateData
		case stateData, stateLanding:
			return f.nextData()
		case stateDiscard:
			if !f.skip() {
				return EventNeedMore, nil
			}
		default:
			panic(fmt.Sprintf("pdu: framer in state %d", f.state))
		}
	}
}

// LandData receives the current data segment into dst instead of the receive buffer:
// bytes already buffered are copied, the rest is read by the caller straight into dst
// through Space. Call it after EventHeader, with len(dst) == DataSegmentLength.
func (f *Framer) LandData(dst []byte) {
	if f.state != stateHeaderReady || f.spaceOut {
		panic(fmt.Sprintf("pdu: LandData in state %d (uncommitted Space %v)", f.state, f.spaceOut))
	}
	if len(dst) != int(f.dataSize) {
		panic(fmt.Sprintf("pdu: LandData into %d bytes for a %d-byte segment", len(dst), f.dataSize))
	}
	start := f.head + f.hdrSize
	n := copy(dst, f.buf[start:f.tail])
	f.land, f.landed = dst, n
	if n < len(dst) {
		// Everything buffered after the header was data: what follows the data goes
		// into the buffer right after the header.
		f.tail = start
		f.trailer = start
	} else {
		f.trailer = start + n
	}
	f.end = f.trailer + f.trailerSize()
	f.state = stateLanding
}

// Discard skips the current data segment (and its padding and digest): for a PDU that
// will be rejected, or one too large to buffer. Call it after EventHeader.
func (f *Framer) Discard() {
	if f.state != stateHeaderReady || f.spaceOut {
		panic(fmt.Sprintf("pdu: Discard in state %d (uncommitted Space %v)", f.state, f.spaceOut))
	}
	f.discardLeft = int(f.dataSize) + f.trailerSize()
	f.state = stateDiscard
}

// Header returns the current PDU's BHS. Valid from EventHeader until the next Space or
// Next after EventPDU (or, after Discard, until the next Next).
func (f *Framer) Header() *BHS {
	f.assertPDU()
	return BHSOf(f.buf[f.head:])
}

// AHS returns the current PDU's AHS region (TotalAHSLength*4 bytes), unchecked: see
// CheckAHS.
func (f *Framer) AHS() []byte {
	f.assertPDU()
	return f.buf[f.head+BHSSize : f.head+BHSSize+f.Header().AHSSize()]
}

// Data returns the current PDU's data segment (without padding): the landing buffer if
// LandData was used. Valid after EventPDU until the next Space or Next.
func (f *Framer) Data() []byte {
	if f.state != stateDone {
		panic(fmt.Sprintf("pdu: Data in state %d", f.state))
	}
	if f.land != nil {
		return f.land
	}
	start := f.head + f.hdrSize
	return f.buf[start : start+int(f.dataSize)]
}

// Buffered is the number of received bytes not yet released.
func (f *Framer) Buffered() int { return f.tail - f.head }

func (f *Framer) nextHeader() (Event, error) {
	avail := f.tail - f.head
	if avail < BHSSize {
		return EventNeedMore, nil
	}
	h := BHSOf(f.buf[f.head:])
	covered := BHSSize + h.AHSSize()
	f.hdrSize = covered
	if f.headerDigest {
		f.hdrSize += DigestSize
	}
	if avail < f.hdrSize {
		return EventNeedMore, nil
	}
	if f.headerDigest {
		want := CRC32C(0, f.buf[f.head:f.head+covered])
		if got := Digest(f.buf[f.head+covered:]); got != want {
			// RFC 7143 §7 (Digest Errors): the header, and so the length of what follows, is not
			// trustworthy: the stream cannot be resynchronized.
			return f.fail(&FieldError{"HeaderDigest", covered, got, fmt.Sprintf("%#08x", want), ReasonNone})
		}
	}
	f.dataSize = h.DataSegmentLength()
	f.land, f.landed = nil, 0
	f.state = stateHeaderReady
	return EventHeader, nil
}

func (f *Framer) nextData() (Event, error) {
	if f.state == stateLanding && f.landed < len(f.land) {
		return EventNeedMore, nil
	}
	if f.tail < f.end {
		return EventNeedMore, nil
	}
	f.state = stateDone
	if !f.dataDigest {
		return EventPDU, nil
	}
	pad := int(PadSize(f.dataSize))
	var want uint32
	if f.land != nil {
		want = CRC32C(CRC32C(0, f.land), f.buf[f.trailer:f.trailer+pad])
	} else {
		want = CRC32C(0, f.buf[f.head+f.hdrSize:f.trailer+pad])
	}
	if got := Digest(f.buf[f.trailer+pad:]); got != want {
		off := f.hdrSize + int(f.dataSize) + pad
		return EventPDU, &FieldError{"DataDigest", off, got, fmt.Sprintf("%#08x", want), ReasonDataDigest}
	}
	return EventPDU, nil
}

// skip drops data-segment bytes as they arrive, keeping any bytes of the next PDU read
// along with them. It reports whether the whole segment has been skipped.
func (f *Framer) skip() bool {
	start := f.head + f.hdrSize
	n := min(f.tail-start, f.discardLeft)
	copy(f.buf[start:], f.buf[start+n:f.tail])
	f.tail -= n
	f.discardLeft -= n
	if f.discardLeft > 0 {
		return false
	}
	f.head = start // the header goes with its data
	f.state = stateHeader
	return true
}

// release ends a PDU returned with EventPDU.
func (f *Framer) release() {
	if f.state != stateDone {
		return
	}
	f.head = f.end
	f.land = nil
	f.state = stateHeader
	if f.head == f.tail {
		f.head, f.tail = 0, 0
	}
}

// need is the number of bytes still missing for the unit being parsed.
func (f *Framer) need() int {
	switch f.state {
	case stateHeader:
		avail := f.tail - f.head
		if avail < BHSSize {
			return BHSSize - avail
		}
		n := BHSSize + BHSOf(f.buf[f.head:]).AHSSize()
		if f.headerDigest {
			n += DigestSize
		}
		return max(n-avail, 1)
	case stateData, stateLanding:
		return max(f.end-f.tail, 1)
	}
	return 1
}

// compact moves the unreleased bytes to the start of the buffer. A PDU is never larger
// than the buffer (NewFramer), so after compacting it fits.
func (f *Framer) compact() {
	shift := f.head
	copy(f.buf, f.buf[f.head:f.tail])
	f.head = 0
	f.tail -= shift
	f.trailer -= shift
	f.end -= shift
}

func (f *Framer) trailerSize() int {
	n := int(PadSize(f.dataSize))
	if f.dataDigest {
		n += DigestSize
	}
	return n
}

func (f *Framer) fail(err *FieldError) (Event, error) {
	f.err = err
	return EventNeedMore, err
}

func (f *Framer) assertPDU() {
	if f.state == stateHeader {
		panic("pdu: no current PDU")
	}
}
