package reactors

import (
	"sync/atomic"
	"time"
)

// Poller is work a reactor runs on every turn of its loop (or, when timed,
// every period). Poll returns how much work it did: zero tells the adaptive
// idle policy that nothing happened. Poll runs on the reactor's thread and
// must not block.
type Poller interface {
	Poll() int
}

// PollFunc adapts a function to Poller.
type PollFunc func() int

// Poll implements Poller.
func (f PollFunc) Poll() int { return f() }

// PanicFunc is told that a poller or message panicked with v; it runs on the
// reactor, under recover, after the poller has been removed. The owner's
// supervisor uses it to fail the owner's outstanding I/O with a retryable
// status and restart or tear the owner down.
type PanicFunc func(v any)

// PollerHandle is a registered poller. Owner: the reactor it was added to;
// the counters are atomics so the debug endpoint reads them from any thread.
type PollerHandle struct {
	name    string
	poller  Poller
	onPanic PanicFunc
	period  time.Duration // 0: runs every turn

	// Owner-only.
	next    time.Duration // timed: when to run next
	removed bool

	// Written by the owner, read by stats from any goroutine.
	runs atomic.Uint64
	work atomic.Uint64
}

// Name is the name given at registration.
func (h *PollerHandle) Name() string { return h.name }

// PollerStats is a snapshot of one poller.
type PollerStats struct {
	Name   string        `json:"name"`
	Period time.Duration `json:"period_ns,omitempty"`
	Runs   uint64        `json:"runs"`
	Work   uint64        `json:"work"`
}

func (h *PollerHandle) stats() PollerStats {
	return PollerStats{Name: h.name, Period: h.period, Runs: h.runs.Load(), Work: h.work.Load()}
}
