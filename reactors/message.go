package reactors

// Message is what a reactor's ring carries. Deliver runs on the reactor's
// thread. Posting a pointer type that implements Message does not allocate;
// the object is typically preallocated by its owner (a pooled I/O, an actor
// mailbox), so delivering it needs no per-message memory.
type Message interface {
	Deliver()
}
