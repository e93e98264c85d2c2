package iscsi

import (
	"fmt"
	"syscall"
	"unsafe"

	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
	"golang.org/x/sys/unix"
)

const (
	// sendQueueSize PDUs wait to be written per connection: a queue depth
	// of responses plus Data-In PDUs for several reads in flight.
	sendQueueSize = 512
	// sendReserve slots are kept for PDUs that are not Data-In (responses,
	// R2Ts, NOP-Ins, Rejects), so reads waiting for room never block a
	// status.
	sendReserve = QueueDepthMax + immediateSlots + 16
	// iovecsMax iovecs go to one writev: three per PDU (header, data, pad
	// and digest), 21 PDUs.
	iovecsMax = 64
	// inlineDataSize bytes of a PDU's data segment are kept in the queue
	// slot itself: SenseLength and sense, a Reject's header.
	inlineDataSize = 64
)

// Fails to compile unless the reserve leaves room for Data-In.
const _ uint = sendQueueSize - sendReserve - 64

// Fails to compile unless sense data and a rejected header fit inline.
const _ uint = inlineDataSize - (2 + 32)
const _ uint = inlineDataSize - pdu.BHSSize

// outPDU is one PDU in the send queue: header (with its digest), data
// segment (inline, a command's buffer, or a control-path slice) and the
// padding with the data digest.
type outPDU struct {
	hdr     [pdu.BHSSize + pdu.DigestSize]byte
	hdrLen  uint8
	tailLen uint8
	tail    [3 + pdu.DigestSize]byte
	data    []byte
	inline  [inlineDataSize]byte
	// done is the command this PDU ends: freed once it is written (I3).
	done *cmd
}

// sendQueue is a connection's FIFO of PDUs to write (I1). Owner: the
// connection's reactor.
type sendQueue struct {
	ring       []outPDU
	head, n    int
	off        int // bytes of the head PDU already written
	iov        []unix.Iovec
	hdrDigest  bool
	dataDigest bool
}

func newSendQueue() sendQueue {
	return sendQueue{ring: make([]outPDU, sendQueueSize), iov: make([]unix.Iovec, iovecsMax)}
}

func (q *sendQueue) free() int   { return len(q.ring) - q.n }
func (q *sendQueue) empty() bool { return q.n == 0 }

// push takes the next slot; the caller fills hdr, then calls seal.
func (q *sendQueue) push() *outPDU {
	if q.n == len(q.ring) {
		panic(fmt.Sprintf("iscsi: push onto a full send queue of %d", len(q.ring)))
	}
	o := &q.ring[(q.head+q.n)%len(q.ring)]
	q.n++
	o.data, o.done = nil, nil
	return o
}

// seal sets the data segment, its length in the header, the digests and
// the padding of o (P3: pad bytes are zero, the digest covers them).
func (q *sendQueue) seal(o *outPDU, data []byte) {
	h := pdu.BHSOf(o.hdr[:])
	h.SetDataSegmentLength(uint32(len(data)))
	o.data = data
	o.hdrLen = pdu.BHSSize
	if q.hdrDigest {
		pdu.PutDigest(o.hdr[pdu.BHSSize:], pdu.CRC32C(0, o.hdr[:pdu.BHSSize]))
		o.hdrLen += pdu.DigestSize
	}
	pad := pdu.PadSize(uint32(len(data)))
	clear(o.tail[:])
	o.tailLen = uint8(pad)
	if q.dataDigest && len(data) > 0 {
		crc := pdu.CRC32C(pdu.CRC32C(0, data), o.tail[:pad])
		pdu.PutDigest(o.tail[pad:], crc)
		o.tailLen += pdu.DigestSize
	}
}

// writeTo writes as much as the socket takes. It returns the commands
// whose last PDU went out through done (called for each), whether the
// socket would block, and a fatal error.
func (q *sendQueue) writeTo(fd int, done func(*cmd)) (wrote int, blocked bool, err error) {
	for q.n > 0 {
		cnt := q.fill()
		n, errno := writev(fd, q.iov[:cnt])
		if errno == unix.EAGAIN {
			return wrote, true, nil
		}
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return wrote, false, errno
		}
		wrote += n
		q.advance(n, done)
	}
	return wrote, false, nil
}

// fill builds the iovecs of the queued PDUs from the head.
func (q *sendQueue) fill() int {
	cnt := 0
	skip := q.off
	for i := 0; i < q.n && cnt+3 <= len(q.iov); i++ {
		o := &q.ring[(q.head+i)%len(q.ring)]
		for _, b := range [3][]byte{o.hdr[:o.hdrLen], o.data, o.tail[:o.tailLen]} {
			if skip >= len(b) {
				skip -= len(b)
				continue
			}
			b = b[skip:]
			skip = 0
			q.iov[cnt].Base = &b[0]
			q.iov[cnt].SetLen(len(b))
			cnt++
		}
	}
	return cnt
}

// advance drops n written bytes from the head.
func (q *sendQueue) advance(n int, done func(*cmd)) {
	for n > 0 && q.n > 0 {
		o := &q.ring[q.head]
		size := int(o.hdrLen) + len(o.data) + int(o.tailLen)
		left := size - q.off
		if n < left {
			q.off += n
			return
		}
		n -= left
		q.off = 0
		q.pop(done)
	}
}

func (q *sendQueue) pop(done func(*cmd)) {
	o := &q.ring[q.head]
	c := o.done
	o.data, o.done = nil, nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	if c != nil {
		done(c)
	}
}

// drop empties the queue, handing each ending command to done.
func (q *sendQueue) drop(done func(*cmd)) {
	for q.n > 0 {
		q.pop(done)
	}
	q.off = 0
}

// writev is writev(2) on preallocated iovecs: no allocation (I7).
func writev(fd int, iov []unix.Iovec) (int, syscall.Errno) {
	if len(iov) == 0 {
		return 0, 0
	}
	n, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	return int(n), e
}
