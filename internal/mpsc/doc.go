// Package mpsc is a bounded lock-free multi-producer single-consumer ring:
// the inbound queue of every reactor and every actor mailbox.
//
// Producers are any goroutines; the consumer is one owner (a reactor
// thread). Push never blocks and never allocates: a full ring returns false
// and the producer decides (backpressure, or a counted overflow list).
//
// The algorithm is Vyukov's bounded queue: each cell carries a sequence
// number that says whose turn it is, so a producer claims a position with
// one CAS on the tail and publishes the value with one store to the cell.
//
// Invariants:
//
//	Q1. A value pushed is popped exactly once, in push order per producer.
//	Q2. Pop never returns a value whose cell store has not completed: the
//	    cell's sequence is stored after the value (release) and loaded
//	    before it (acquire); Go's atomics are sequentially consistent.
//
// It imports only the standard library.
package mpsc
