package stage

import "github.com/sluice-storage/sluice/services/bdev"

// IOFIFO is a queue of IOs a stage holds (delay's completions waiting for
// their deadline, qos's throttled submissions), oldest first, linked through
// each IO's CtxRef, so holding one allocates nothing (bdev B9). Owner: the
// channel's reactor.
type IOFIFO struct {
	head, tail *bdev.IO
}

// Push appends io; its CtxRef is the queue's until Pop returns it.
func (q *IOFIFO) Push(io *bdev.IO) {
	io.CtxRef = nil
	if q.tail == nil {
		q.head = io
	} else {
		q.tail.CtxRef = io
	}
	q.tail = io
}

// Peek is the oldest IO, or nil.
func (q *IOFIFO) Peek() *bdev.IO { return q.head }

// Pop removes the oldest IO and returns it with its CtxRef cleared; nil when
// the queue is empty.
func (q *IOFIFO) Pop() *bdev.IO {
	io := q.head
	if io == nil {
		return nil
	}
	next, _ := io.CtxRef.(*bdev.IO)
	q.head = next
	if next == nil {
		q.tail = nil
	}
	io.CtxRef = nil
	return io
}
