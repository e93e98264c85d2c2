// Package actors runs protoactor-go actors on Sluice's reactors, and serves
// the debug endpoint that shows them.
//
// Each actor is spawned on one reactor (System.SpawnOn, System.Props): its
// protoactor Dispatcher is that reactor and its Mailbox is ours, so the
// actor's handler and the reactor's pollers take turns on one thread and
// what the core owns needs no lock (ARCHITECTURE.md, "Ownership").
//
// The mailbox (mailbox.go) is what ARCHITECTURE.md specifies:
//
//	A1. A post never blocks and never drops: a lock-free MPSC ring, and when
//	    it is full a counted overflow list, the only place a post allocates.
//	A2. Messages from one poster are handled in the order posted, across the
//	    ring and the overflow list.
//	A3. A turn handles at most a budget of messages, system messages first,
//	    then yields to the reactor's pollers; it never calls runtime.Gosched.
//	    A suspended mailbox handles only system messages.
//	A4. A handler's panic is recovered and passed to the invoker's
//	    EscalateFailure, so the actor's supervisor restarts or stops it and
//	    the reactor runs on.
//	A5. A mailbox is scheduled on its reactor at most once at a time.
//
// Nothing per I/O goes through a mailbox: I/O is a typed call on the same
// reactor or a reactor ring message (services/bdev).
//
// The debug endpoint (debug.go) serves /debug/actors and /debug/reactors
// (JSON, or an HTML table for a browser), every registered Source, /metrics
// in Prometheus text with sluice_-prefixed series, and Go's /debug/pprof/.
// cmd/sluice runs the HTTP server.
//
// Imports: reactors and internal packages (ARCHITECTURE.md's table), plus
// protoactor-go pinned at v0.0.0-20240822202345-3c0e61ca19c9.
package actors
