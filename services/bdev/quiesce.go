package bdev

import (
	"fmt"
	"time"
)

// Quiesce and reset are the whole-bdev lock (LockAll over every block).

// Quiesce holds new IO at every channel of d's bdev, waits at most timeout
// for the IO in flight to drain, runs change (swap a stage in or out), and
// resumes, releasing what was held in order. If the drain does not finish in
// time nothing is changed, IO resumes, and the error wraps ErrDrainTimeout
// and says how many IOs were left on which reactor. Control plane: it waits,
// so it must not run on a reactor. change runs on the calling goroutine.
func (d *Desc) Quiesce(timeout time.Duration, change func() error) error {
	b := d.bdev
	if timeout <= 0 {
		return fmt.Errorf("bdev %q: quiesce timeout %v, want > 0 so a stuck drain cannot hang it", b.name, timeout)
	}
	owner := b.owner
	w := &quiesceWaiter{locked: make(chan error, 1), unlocked: make(chan struct{}, 1)}
	var lock *RangeLock
	if err := owner.Call(func() {
		ch, err := d.Channel(owner)
		if err == nil {
			lock, err = ch.LockRange(LockRequest{Blocks: b.blocks, Mode: LockAll, Timeout: timeout}, w)
		}
		if err != nil {
			w.locked <- err
		}
	}); err != nil {
		return fmt.Errorf("bdev %q: quiesce: %w", b.name, err)
	}
	if err := <-w.locked; err != nil {
		return fmt.Errorf("quiesce: %w", err)
	}
	changeErr := change()
	if err := owner.Call(lock.Unlock); err != nil {
		return fmt.Errorf("bdev %q: resume after quiesce: %w", b.name, err)
	}
	<-w.unlocked
	return changeErr
}

// quiesceWaiter turns lock callbacks into Go channel sends for a
// control-plane goroutine; the channels are buffered, so the reactor never
// waits.
type quiesceWaiter struct {
	locked   chan error
	unlocked chan struct{}
}

func (w *quiesceWaiter) RangeLocked(_ *RangeLock, err error) { w.locked <- err }
func (w *quiesceWaiter) RangeUnlocked(*RangeLock)            { w.unlocked <- struct{}{} }

// resetLocker is the LockCompleter of every reset: a zero-size value, so
// storing it in the lock's interface field allocates nothing.
type resetLocker struct{}

// reset starts an IOReset: a LockAll over the bdev drains every reactor;
// then the back end resets if it does resets; then the lock is released and
// the reset completes. The reset IO is not admitted, so it waits for no one
// but the others.
func (bc *bdevChannel) reset(io *IO) {
	lock, err := io.ch.LockRange(LockRequest{Blocks: bc.bdev.blocks, Mode: LockAll, Ctx: io}, resetLocker{})
	if err != nil {
		io.state = ioCompleting
		io.Status = StatusFailed
		bc.local.deferCompletion(io)
		return
	}
	io.lock = lock
}

func (resetLocker) RangeLocked(l *RangeLock, err error) {
	io := l.Ctx().(*IO)
	bc := io.ch.bc
	if err != nil { // no timeout is set, so this does not happen; fail safe
		io.lock = nil
		bc.completeReset(io, StatusAborted)
		return
	}
	if bc.bdev.info.IOTypes.Has(IOReset) {
		io.flags |= ioResetBackend
		bc.toBackend(io)
		return
	}
	io.Status = StatusSuccess
	l.Unlock()
}

// resetBackendDone: the back end finished its reset; release the drain.
func (bc *bdevChannel) resetBackendDone(io *IO) {
	io.flags &^= ioResetBackend
	io.state = ioPending // until the lock is released
	io.lock.Unlock()
}

func (resetLocker) RangeUnlocked(l *RangeLock) {
	io := l.Ctx().(*IO)
	io.lock = nil
	io.ch.bc.completeReset(io, io.Status)
}

func (bc *bdevChannel) completeReset(io *IO, st Status) {
	io.state = ioCompleting
	io.Status = st
	io.finish() // from a lock message: not inside any Submit (B2)
}
