package bdev

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrInUse is returned by Delete while a descriptor that did not ask for
// hot-remove notices (a stage's claim, a stage's own reads) is open on the
// bdev: a bdev something still uses is not removed under it.
var ErrInUse = errors.New("bdev in use")

// RemoveWait bounds how long Delete waits for the openers it notified to
// close: a namespace drains its commands first (a few seconds at most for a
// live device; an initiator's own timeout is 30 s).
const RemoveWait = 10 * time.Second

// removeWait is RemoveWait; tests shorten it.
var removeWait = RemoveWait

// Delete removes the bdev called name: it closes the bdev's channels on
// their reactors, then the back end (a malloc bdev's memory is unmapped, a
// uring file closed). When descriptors are open it is SPDK's hot remove:
// if every one asked for notices (OnRemove: an NVMe-oF namespace, an iSCSI
// LUN), each is told, and Delete waits up to RemoveWait for them to close;
// if any did not (a stage), Delete is refused and nothing changes. Control
// plane.
func (reg *Registry) Delete(name string) error {
	reg.mu.Lock()
	b, ok := reg.bdevs[name]
	switch {
	case reg.closed:
		reg.mu.Unlock()
		return fmt.Errorf("delete bdev %q: %w", name, ErrRegistryClosed)
	case !ok || b.removed:
		reg.mu.Unlock()
		return fmt.Errorf("delete bdev %q: %w", name, ErrNotFound)
	}
	if stuck := b.unnotifiable(); stuck > 0 {
		claim := ""
		if b.claimer != "" {
			claim = ", claimed by " + b.claimer
		}
		reg.mu.Unlock()
		return fmt.Errorf("delete bdev %q: open by %d reader(s) and %d writer(s)%s: %w",
			name, b.readers, b.writers, claim, ErrInUse)
	}
	var notify []func()
	for _, d := range b.descs {
		if !d.notified {
			d.notified = true
			notify = append(notify, d.onRemove)
		}
	}
	b.removing = true // no Open succeeds from here on
	idle := b.idle
	if idle == nil && len(b.descs) > 0 {
		idle = make(chan struct{})
		b.idle = idle
	}
	reg.mu.Unlock()

	if idle != nil {
		for _, fn := range notify {
			go fn() // control plane: the opener drains, then closes its descriptor
		}
		t := time.NewTimer(removeWait)
		defer t.Stop()
		select {
		case <-idle:
		case <-t.C:
			reg.mu.Lock()
			n := len(b.descs)
			reg.mu.Unlock()
			// Still removing: no new Open; a later Delete waits again.
			return fmt.Errorf("delete bdev %q: %d opener(s) told to close have not after %v: %w",
				name, n, removeWait, ErrInUse)
		}
	}
	reg.mu.Lock()
	if b.removed { // a concurrent Delete finished it
		reg.mu.Unlock()
		return fmt.Errorf("delete bdev %q: %w", name, ErrNotFound)
	}
	b.removed = true
	reg.mu.Unlock()

	var errs []error
	for j, bc := range b.chans {
		r := reg.set.Get(j)
		var err error
		if callErr := r.Call(func() { err = bc.close() }); callErr != nil {
			err = callErr
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("bdev %q channel on reactor %d: %w", name, j, err))
		}
	}
	if err := b.be.Close(); err != nil {
		errs = append(errs, fmt.Errorf("bdev %q: close: %w", name, err))
	}
	reg.mu.Lock()
	delete(reg.bdevs, name)
	if i := slices.Index(reg.order, b); i >= 0 {
		reg.order = slices.Delete(reg.order, i, i+1)
	}
	reg.mu.Unlock()
	return errors.Join(errs...)
}

// unnotifiable counts the open descriptors that did not ask for hot-remove
// notices, and counts a claim as one (what a stage claims, only the stage
// may let go). Registry lock held.
func (b *Bdev) unnotifiable() int {
	n := 0
	if b.claimer != "" {
		n++
	}
	for _, d := range b.descs {
		if d.onRemove == nil {
			n++
		}
	}
	return n
}
