package mpsc

import (
	"fmt"
	"sync/atomic"
)

type cell[T any] struct {
	seq atomic.Uint64
	val T
}

// Ring is the queue. Owner: its consumer for Pop and Empty; any goroutine
// for Push and Len.
type Ring[T any] struct {
	_     [64]byte // tail on its own cache line: producers hammer it
	tail  atomic.Uint64
	_     [56]byte
	head  atomic.Uint64 // stored by the consumer only; loaded by Len anywhere
	_     [56]byte
	mask  uint64
	cells []cell[T]
}

// New makes a ring of size cells; size must be a power of two.
func New[T any](size int) *Ring[T] {
	if size <= 0 || size&(size-1) != 0 {
		panic(fmt.Sprintf("mpsc: ring size %d is not a power of two", size))
	}
	r := &Ring[T]{mask: uint64(size - 1), cells: make([]cell[T], size)}
	for i := range r.cells {
		r.cells[i].seq.Store(uint64(i))
	}
	return r
}

// Push enqueues v; false when the ring is full. Any goroutine.
func (r *Ring[T]) Push(v T) bool {
	for {
		pos := r.tail.Load()
		c := &r.cells[pos&r.mask]
		seq := c.seq.Load()
		switch {
		case seq == pos:
			if r.tail.CompareAndSwap(pos, pos+1) {
				c.val = v
				c.seq.Store(pos + 1) // Q2: publish after the value
				return true
			}
		case seq < pos:
			return false // the consumer has not freed this cell yet: full
		}
		// Another producer took pos: try the next position.
	}
}

// Pop dequeues the oldest value; ok is false when the ring is empty.
// Consumer only.
func (r *Ring[T]) Pop() (v T, ok bool) {
	head := r.head.Load()
	c := &r.cells[head&r.mask]
	if c.seq.Load() != head+1 {
		return v, false
	}
	v = c.val
	var zero T
	c.val = zero                   // drop the reference so the GC can free what it pointed to
	c.seq.Store(head + r.mask + 1) // free the cell for the producer one lap ahead
	r.head.Store(head + 1)
	return v, true
}

// Empty reports whether Pop would find nothing. Consumer only.
func (r *Ring[T]) Empty() bool {
	head := r.head.Load()
	return r.cells[head&r.mask].seq.Load() != head+1
}

// Len is the number of values pushed and not yet popped; approximate while
// producers run. Any goroutine.
func (r *Ring[T]) Len() int {
	n := int64(r.tail.Load()) - int64(r.head.Load())
	if n < 0 {
		return 0
	}
	return int(n)
}

// Cap is the number of cells.
func (r *Ring[T]) Cap() int { return len(r.cells) }

// Pushed is the number of successful pushes since New. Any goroutine.
func (r *Ring[T]) Pushed() uint64 { return r.tail.Load() }
