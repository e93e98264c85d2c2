package reactors

import "time"

// Clock gives the time a reactor's timers and statistics run on. Tests inject
// a manual clock so timers fire by ticks, never by sleeping.
type Clock interface {
	// Now is monotonic time since an arbitrary origin fixed at creation.
	Now() time.Duration
}

// MonotonicClock is the wall monotonic clock.
type MonotonicClock struct{ origin time.Time }

// NewMonotonicClock returns a clock whose origin is now.
func NewMonotonicClock() *MonotonicClock { return &MonotonicClock{origin: time.Now()} }

// Now implements Clock.
func (c *MonotonicClock) Now() time.Duration { return time.Since(c.origin) }
