// Package reactors runs one pinned OS thread per core: the poll loop every
// other layer of Sluice runs on.
//
// A Reactor owns a goroutine locked to its OS thread (runtime.LockOSThread)
// and pinned to one CPU (sched_setaffinity). Its loop, one turn at a time:
//
//  1. drains its inbound message ring in batches of at most ringBatchMax;
//  2. runs every registered poller once (each returns how much work it did);
//  3. runs the timed pollers whose deadline, read from the injected Clock,
//     has passed;
//  4. in ModeAdaptive, when nothing has happened for Options.IdleAfter, it
//     sleeps in epoll_wait on an eventfd plus every fd its pollers asked it to
//     watch, and wakes on a Post or on readiness. In ModePoll it never sleeps.
//
// Posting (Reactor.Post) works from any goroutine, never blocks and never
// allocates: a full ring is reported to the poster as ErrRingFull, which the
// poster treats as backpressure. Reactor.Schedule is the one never-failing
// post, for the actor mailboxes: a full ring spills to a counted overflow
// list, the only place a post allocates.
//
// Everything a reactor runs (ring messages, pollers, timers) runs under
// recover. A panicking message or poller is reported to its PanicFunc (the
// owner's supervisor) and the poller is removed; the reactor keeps running the
// others.
//
// Ownership. Only code running on a reactor touches what that reactor owns;
// code elsewhere posts a message. Methods documented "owner only" assert it
// (Reactor.AssertCurrent) when invariants.Enabled.
//
// Imports: the standard library, golang.org/x/sys, internal/invariants and
// internal/mpsc only (ARCHITECTURE.md's table).
//
// Invariants:
//
//	R1. A message pushed onto a ring is delivered exactly once, on that
//	    ring's reactor, in push order per producer.
//	R2. A reactor never sleeps while its ring or overflow list holds a
//	    message: it publishes "sleeping" before its last emptiness check,
//	    and a poster checks "sleeping" after its push (both sequentially
//	    consistent), so one of them sees the other and the eventfd is
//	    written.
//	R3. Pollers run only on their reactor's thread, and a removed poller is
//	    never run again.
//	R4. Stop returns only after the loop has exited and every fd the
//	    reactor opened is closed.
package reactors
