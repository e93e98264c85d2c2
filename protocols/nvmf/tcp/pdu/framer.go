package pdu

import (
	"errors"
	"fmt"
)

// BufferSizeDefault is the receive buffer a Framer gets when its config names none and its
// limits need less: a read into 16 KiB takes ~650 response capsules or a couple of 8 KiB
// in-capsule writes in one syscall, which is what batching at the poller is for.
const BufferSizeDefault = 16 << 10

// pdoMax is the largest PDO Check can accept: an 8-bit field. The header part of a PDU (up to
// its data) is never longer, so it always fits the buffer.
const pdoMax = 255

// compactDivisor: Space moves the unread bytes to the front of the buffer once fewer than
// len/compactDivisor bytes are free behind them, so reads stay large; the move is of a partial
// PDU, never more than the buffer.
const compactDivisor = 4

// ErrDataDigest is returned by Framer.Next with a complete frame whose data digest did not
// match. The framing is intact, so the connection can go on: the receiver fails the command the
// data belongs to with Transient Transport Error (nvme.StatusTransientTransportError), as SPDK
// and FreeBSD do, or drops the connection, as Linux does.
var ErrDataDigest = errors.New("nvme/tcp pdu: data digest mismatch")

// Kind says what Framer.Next found.
type Kind uint8

const (
	// KindNeedMore: no complete unit is buffered; read more into Space and Commit it.
	KindNeedMore Kind = iota
	// KindPDU: a whole PDU. Header holds its HLEN header bytes and Data its data (nil if
	// none), both in the receive buffer, digests verified.
	KindPDU
	// KindDataHeader: the header of a PDU whose type is in FramerConfig.Direct and which
	// carries DataLen bytes of data. Before the next Next, call DataInto with a buffer of
	// DataLen bytes for the data to land in, or Discard.
	KindDataHeader
	// KindDataDone: the data announced by the last KindDataHeader has landed in the buffer
	// given to DataInto (Data; nil after Discard) and its digest matched. Header repeats that
	// PDU's header.
	KindDataDone
)

func (k Kind) String() string {
	switch k {
	case KindNeedMore:
		return "need-more"
	case KindPDU:
		return "pdu"
	case KindDataHeader:
		return "data-header"
	case KindDataDone:
		return "data-done"
	}
	return fmt.Sprintf("kind-%d", uint8(k))
}

// Frame is one result of Framer.Next. Header and Data of a KindPDU frame alias the Framer's
// receive buffer and stay valid until the next Space, Commit or Feed (those may move the
// buffered bytes); copy what must live longer, or make its type Direct. Header of the data
// frames is a copy the Framer keeps until the next KindDataHeader.
type Frame struct {
	Kind    Kind
	Header  []byte // the PDU header, HLEN bytes, without its digest
	Data    []byte
	DataLen uint32 // KindDataHeader and KindDataDone: the data bytes of the PDU
}

// Type is the PDU type of a frame that has a header.
func (fr *Frame) Type() Type { return Type(fr.Header[offType]) }

// Common views the frame's common header.
func (fr *Frame) Common() *CommonHeader { return HeaderOf(fr.Header) }

// TypeSet is a set of PDU types.
type TypeSet uint16

// Types makes a TypeSet.
func Types(ts ...Type) TypeSet {
	var s TypeSet
	for _, t := range ts {
		s |= 1 << (t & 0xF)
	}
	return s
}

// Has reports whether t is in s.
func (s TypeSet) Has(t Type) bool { return t < 16 && s&(1<<t) != 0 }

// directCapable are the types whose data may be large enough to land straight in I/O buffers.
var directCapable = Types(TypeCapsuleCmd, TypeH2CData, TypeC2HData)

// FramerConfig sets a Framer up.
type FramerConfig struct {
	Role Role
	// Limits are the largest the connection will negotiate, for sizing the receive buffer;
	// the Framer itself starts before the IC exchange (Limits{}) until SetLimits.
	Limits Limits
	// Direct are the types whose data the caller lands itself (DataInto): a target sets
	// H2CData (and CapsuleCmd to land in-capsule writes in the I/O buffer too), a host sets
	// C2HData. Their data need not fit the receive buffer. Other types are delivered whole.
	Direct TypeSet
	// BufferSize is the receive buffer size; 0 picks max(BufferSizeMin, BufferSizeDefault).
	BufferSize int
}

// BufferSizeMin is the smallest receive buffer that holds every unit a Framer for role may
// need contiguous under lim: a whole non-direct PDU (up to a PDO of 255, its data and digest),
// the header part of a direct one, a termination request (152), an IC PDU (128).
func BufferSizeMin(role Role, lim Limits, direct TypeSet) int {
	n := max(TermReqPDUSizeMax, ICReqSize)
	data := func(t Type, dataMax uint32) int {
		if direct.Has(t) {
			return pdoMax
		}
		return pdoMax + int(dataMax) + DigestSize
	}
	if role == Controller {
		n = max(n, data(TypeCapsuleCmd, lim.CapsuleDataMax), data(TypeH2CData, lim.DataMax))
	} else {
		n = max(n, data(TypeC2HData, lim.DataMax), CapsuleRespSize+DigestSize, R2TSize+DigestSize)
	}
	return n
}

type framerState uint8

var framerStateNames = [...]string{"common", "header", "whole", "await-dst", "data", "digest", "failed"}

func (s framerState) String() string { return framerStateNames[s] }

const (
	stCommon   framerState = iota // waiting for the 8-byte common header
	stHeader                      // common header checked; waiting for the header part
	stWhole                       // header checked; waiting for the rest of a buffered PDU
	stAwaitDst                    // KindDataHeader returned; waiting for DataInto or Discard
	stData                        // landing data in dst (or skipping it)
	stDigest                      // data landed; waiting for its digest
	stFailed                      // a FieldError was returned; the connection is done
)

// Framer cuts a byte stream from a non-blocking socket into checked PDUs, for one connection
// and one Role. It is a pure state machine: it owns no goroutine, timer or socket, and after
// NewFramer it allocates nothing unless a check fails (F5). It is not safe for concurrent use;
// its owner is the reactor that owns the connection.
//
// The caller's loop, on readiness:
//
//	data, buf := f.Space()          // data: rest of a DataInto buffer; buf: free receive buffer
//	n, err := unix.Readv(fd, [][]byte{data, buf})  // or Read into data if non-empty, else buf
//	f.Commit(n)
//	for {
//		fr, err := f.Next()
//		// *FieldError: send fe.TermReq(b, role, f.FailedHeader()) (unless FESNone), close.
//		// ErrDataDigest: fr is complete; fail its command, go on.
//		if fr.Kind == pdu.KindNeedMore { break }
//		// KindPDU: handle; KindDataHeader: f.DataInto(ioBuf[off:off+fr.DataLen]) or
//		// f.Discard(); KindDataDone: the data is in ioBuf.
//	}
type Framer struct {
	role   Role
	direct TypeSet
	lim    Limits
	buf    []byte // made once, in NewFramer
	r, w   int    // buf[r:w] is received and not yet consumed

	st   framerState
	lay  Layout // of the PDU in progress, once its common header passed Check
	hdr  [CapsuleCmdSize]byte
	dst  []byte // DataInto's buffer
	got  uint32 // data bytes landed (or skipped)
	skip bool   // Discard: data is skipped, its digest not checked
	crc  uint32 // running data digest over dst[:got]
	err  error  // the FieldError that failed the stream
	bad  int    // bytes of the failed PDU's header that were checked (8, or HLEN)
}

// NewFramer makes a Framer and its receive buffer.
func NewFramer(cfg FramerConfig) (*Framer, error) {
	if err := cfg.Limits.Validate(cfg.Role); err != nil {
		return nil, err
	}
	for t := Type(0); t < 16; t++ {
		if cfg.Direct.Has(t) && (!directCapable.Has(t) || !cfg.Role.receives(t)) {
			return nil, fmt.Errorf("pdu: direct data for %v, which a %v does not receive with data", t, cfg.Role)
		}
	}
	need := BufferSizeMin(cfg.Role, cfg.Limits, cfg.Direct)
	size := cfg.BufferSize
	switch {
	case size == 0:
		size = max(need, BufferSizeDefault)
	case size < need:
		return nil, fmt.Errorf("pdu: receive buffer of %d bytes, want at least %d for %v limits %+v",
			size, need, cfg.Role, cfg.Limits)
	}
	return &Framer{role: cfg.Role, direct: cfg.Direct, buf: make([]byte, size)}, nil
}

// Limits returns the limits PDUs are checked against now.
func (f *Framer) Limits() Limits { return f.lim }

// SetLimits installs the limits the IC exchange settled (ICDone true). Call it between PDUs:
// right after Next returned the ICReq (controller) or ICResp (host) and the answer was decided.
// Bytes already buffered are checked under the new limits, which is what the spec wants: the
// host sends nothing after ICReq until ICResp arrives.
func (f *Framer) SetLimits(lim Limits) error {
	if f.st != stCommon {
		return fmt.Errorf("pdu: SetLimits in the middle of a PDU")
	}
	if err := lim.Validate(f.role); err != nil {
		return err
	}
	if need := BufferSizeMin(f.role, lim, f.direct); need > len(f.buf) {
		return fmt.Errorf("pdu: limits %+v need a %d-byte receive buffer, have %d", lim, need, len(f.buf))
	}
	f.lim = lim
	return nil
}

// Buffered is the number of received bytes not yet consumed by Next.
func (f *Framer) Buffered() int { return f.w - f.r }

// Space returns where the next received bytes go: data is the unfilled rest of the DataInto
// buffer (empty unless data is landing), buf the free tail of the receive buffer. Bytes fill
// data first, then buf. It may move buffered bytes to the front of the receive buffer, which
// ends the validity of earlier KindPDU frames.
func (f *Framer) Space() (data, buf []byte) {
	if f.st == stData && !f.skip {
		data = f.dst[f.got:] // F3: r == w here, so these bytes come next on the wire
	}
	f.compact()
	return data, f.buf[f.w:]
}

// Commit records that n bytes were written to the front of data ++ buf as returned by the
// last Space.
func (f *Framer) Commit(n int) {
	if n < 0 {
		panic(fmt.Sprintf("pdu: Commit(%d)", n))
	}
	if f.st == stData && !f.skip {
		k := min(n, len(f.dst)-int(f.got))
		if f.lay.DataDigest {
			f.crc = DigestUpdate(f.crc, f.dst[f.got:int(f.got)+k])
		}
		f.got += uint32(k)
		n -= k
	}
	if f.w+n > len(f.buf) {
		panic(fmt.Sprintf("pdu: Commit of %d bytes past a %d-byte buffer holding %d", n, len(f.buf), f.w))
	}
	f.w += n
	if f.st == stData {
		f.absorb()
	}
}

// Feed copies as much of p as fits into Space and commits it, returning the bytes taken. It is
// for callers that already hold the bytes (tests, a TLS layer); it takes fewer than len(p) only
// when the buffer is full of PDUs Next has not returned yet.
func (f *Framer) Feed(p []byte) int {
	data, buf := f.Space()
	n := copy(data, p)
	n += copy(buf, p[n:])
	f.Commit(n)
	return n
}

// compact moves the unread bytes to the front when the unit in progress would not fit behind
// them or little room is left; F2 guarantees any unit fits once moved.
func (f *Framer) compact() {
	if f.r == f.w {
		f.r, f.w = 0, 0
		return
	}
	if f.r == 0 {
		return
	}
	if f.r+f.unitSize() > len(f.buf) || len(f.buf)-f.w < len(f.buf)/compactDivisor {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
}

// unitSize is how many contiguous bytes from r the state in progress waits for.
func (f *Framer) unitSize() int {
	switch f.st {
	case stCommon:
		return CommonHeaderSize
	case stHeader:
		return int(f.lay.HeaderEnd())
	case stWhole:
		return int(f.lay.PDULen)
	case stDigest:
		return DigestSize
	}
	return 0
}

// Next returns the next unit of the stream: a whole PDU, the header of a direct-data PDU, the
// end of its data, or KindNeedMore. A *FieldError means the stream broke the protocol: Next
// returns it from then on, and FailedHeader holds the header for the termination request.
// ErrDataDigest comes with a complete frame (see ErrDataDigest).
func (f *Framer) Next() (Frame, error) {
	switch f.st {
	case stFailed:
		return Frame{}, f.err
	case stAwaitDst:
		panic("pdu: Framer.Next before DataInto or Discard for the last data header")
	case stData, stDigest:
		return f.nextData()
	case stWhole:
		return f.nextWhole()
	}
	avail := f.w - f.r
	if f.st == stCommon {
		if avail < CommonHeaderSize {
			return Frame{}, nil
		}
		h := HeaderOf(f.buf[f.r:])
		if err := h.Check(f.role, f.lim); err != nil {
			return f.fail(err, CommonHeaderSize)
		}
		f.lay = h.Layout(f.lim)
		f.st = stHeader
	}
	end := int(f.lay.HeaderEnd())
	if avail < end {
		return Frame{}, nil
	}
	hlen := int(f.lay.HeaderLen)
	part := f.buf[f.r : f.r+end]
	if f.lay.HeaderDigest {
		if got, want := DigestAt(part[hlen:]), Digest(part[:hlen]); got != want {
			fe := &FieldError{"hdgst", uint32(hlen), got, fmt.Sprintf("%#08x", want), FESHeaderDigestError}
			return f.fail(fe, hlen)
		}
	}
	if err := CheckPSH(part[:hlen], f.lim); err != nil {
		return f.fail(err, hlen)
	}
	if f.lay.DataLen == 0 {
		f.r += end
		f.st = stCommon
		return Frame{Kind: KindPDU, Header: part[:hlen]}, nil
	}
	if f.direct.Has(Type(part[offType])) {
		copy(f.hdr[:], part[:hlen])
		f.r += end
		f.st = stAwaitDst
		return Frame{Kind: KindDataHeader, Header: f.hdr[:hlen], DataLen: f.lay.DataLen}, nil
	}
	f.st = stWhole
	return f.nextWhole()
}

// nextWhole returns a buffered PDU once all PLEN bytes are in.
func (f *Framer) nextWhole() (Frame, error) {
	plen := int(f.lay.PDULen)
	if f.w-f.r < plen {
		return Frame{}, nil
	}
	p := f.buf[f.r : f.r+plen]
	f.r += plen
	f.st = stCommon
	data := p[f.lay.DataOffset : f.lay.DataOffset+f.lay.DataLen]
	fr := Frame{Kind: KindPDU, Header: p[:f.lay.HeaderLen], Data: data}
	if f.lay.DataDigest && DigestAt(p[plen-DigestSize:]) != Digest(fr.Data) {
		return fr, ErrDataDigest
	}
	return fr, nil
}

// DataInto lands the data announced by the last KindDataHeader in dst, which must be exactly
// Frame.DataLen bytes: the bytes already buffered are copied now, the rest arrive through
// Space/Commit straight into dst.
func (f *Framer) DataInto(dst []byte) {
	if f.st != stAwaitDst {
		panic("pdu: DataInto without a data header")
	}
	if uint32(len(dst)) != f.lay.DataLen {
		panic(fmt.Sprintf("pdu: DataInto of %d bytes for %d bytes of data", len(dst), f.lay.DataLen))
	}
	f.dst, f.got, f.crc, f.skip = dst, 0, 0, false
	f.st = stData
	f.absorb()
}

// Discard skips the data announced by the last KindDataHeader (and does not check its digest).
func (f *Framer) Discard() {
	if f.st != stAwaitDst {
		panic("pdu: Discard without a data header")
	}
	f.dst, f.got, f.crc, f.skip = nil, 0, 0, true
	f.st = stData
	f.absorb()
}

// absorb moves buffered data bytes into dst (or past them when skipping).
func (f *Framer) absorb() {
	n := min(f.w-f.r, int(f.lay.DataLen-f.got))
	if n <= 0 {
		return
	}
	if !f.skip {
		src := f.buf[f.r : f.r+n]
		copy(f.dst[f.got:], src)
		if f.lay.DataDigest {
			f.crc = DigestUpdate(f.crc, src)
		}
	}
	f.got += uint32(n)
	f.r += n
}

func (f *Framer) nextData() (Frame, error) {
	if f.st == stData {
		f.absorb()
		if f.got < f.lay.DataLen {
			return Frame{}, nil
		}
		if !f.lay.DataDigest {
			return f.dataDone(nil)
		}
		f.st = stDigest
	}
	if f.w-f.r < DigestSize {
		return Frame{}, nil
	}
	got := DigestAt(f.buf[f.r:])
	f.r += DigestSize
	if !f.skip && got != f.crc {
		return f.dataDone(ErrDataDigest)
	}
	return f.dataDone(nil)
}

func (f *Framer) dataDone(err error) (Frame, error) {
	fr := Frame{Kind: KindDataDone, Header: f.hdr[:f.lay.HeaderLen], Data: f.dst, DataLen: f.lay.DataLen}
	f.dst, f.skip = nil, false
	f.st = stCommon
	return fr, err
}

// fail makes err sticky; checked is how much of the PDU's header was looked at.
func (f *Framer) fail(err error, checked int) (Frame, error) {
	f.err = err
	f.st = stFailed
	f.bad = checked
	return Frame{}, err
}

// FailedHeader is the header of the PDU that failed, as received, for the data of the
// termination request: its 8-byte common header when that was at fault (HLEN may be garbage
// then), else its HLEN header bytes (at most 128). It is nil unless Next returned a
// *FieldError, and aliases the receive buffer until the next Space, Commit or Feed.
func (f *Framer) FailedHeader() []byte {
	if f.st != stFailed {
		return nil
	}
	return f.buf[f.r : f.r+min(f.bad, TermReqDataMax)]
}
