package tcp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// sendKind is what a send queue entry carries, and so what its being sent means.
type sendKind uint8

const (
	sendICResp  sendKind = iota // the connection's ICResp (ctl buffer)
	sendR2T                     // a request's R2T: nothing happens when sent
	sendC2H                     // a request's C2HData (header, data, digest)
	sendC2HLast                 // C2HData with SUCCESS: the request is done when sent
	sendResp                    // a request's response capsule: the request is done when sent
	sendTermReq                 // the C2HTermReq (ctl buffer): the connection closes when sent
)

// sendEntry is one PDU waiting to be written, as up to three pieces: the header part (a
// request's or the connection's buffer), data, and a data digest.
type sendEntry struct {
	kind   sendKind
	tag    uint16
	header []byte
	data   []byte
	digest []byte
}

func (e *sendEntry) size() int { return len(e.header) + len(e.data) + len(e.digest) }

// sendIovecsMax iovecs go to one sendmsg: 64 read completions (C2HData header, data, response)
// per system call is past the point where the syscall's cost matters.
const sendIovecsMax = 192

// sendQueue is a connection's PDUs in send order: a ring sized at connection setup for two
// PDUs per request plus the connection's own (every request has at most two queued).
type sendQueue struct {
	entries []sendEntry
	head    int
	n       int
	off     int // bytes of the head entry already written
	iov     [sendIovecsMax]unix.Iovec
	msg     unix.Msghdr
}

func newSendQueue(requests int) sendQueue {
	return sendQueue{entries: make([]sendEntry, 2*requests+2)}
}

func (s *sendQueue) empty() bool { return s.n == 0 }

// push appends e. A full queue means more than two PDUs per request: a bug.
func (s *sendQueue) push(e sendEntry) {
	if s.n == len(s.entries) {
		panic(fmt.Sprintf("tcp: send queue of %d entries full", len(s.entries)))
	}
	s.entries[(s.head+s.n)%len(s.entries)] = e
	s.n++
}

// front is the oldest entry.
func (s *sendQueue) front() *sendEntry { return &s.entries[s.head] }

// pop drops the oldest entry.
func (s *sendQueue) pop() {
	s.entries[s.head] = sendEntry{}
	s.head = (s.head + 1) % len(s.entries)
	s.n--
	s.off = 0
}

// gather fills iov from the queue (skipping what the head already wrote) and returns the count
// and the bytes they hold.
func (s *sendQueue) gather() (int, int) {
	niov, total := 0, 0
	skip := s.off
	for i := 0; i < s.n && niov+3 <= len(s.iov); i++ {
		e := &s.entries[(s.head+i)%len(s.entries)]
		for _, part := range [3][]byte{e.header, e.data, e.digest} {
			if skip >= len(part) {
				skip -= len(part)
				continue
			}
			part = part[skip:]
			skip = 0
			setIovec(&s.iov[niov], part)
			niov++
			total += len(part)
		}
	}
	return niov, total
}

// advance consumes written bytes from the head entry: it returns the bytes left over once that
// entry is fully written (and popped, its kind and tag returned with done true), or consumes
// them all within it.
func (s *sendQueue) advance(n int) (rest int, done bool, kind sendKind, tag uint16) {
	e := s.front()
	left := e.size() - s.off
	if n < left {
		s.off += n
		return 0, false, 0, 0
	}
	kind, tag = e.kind, e.tag
	s.pop()
	return n - left, true, kind, tag
}
