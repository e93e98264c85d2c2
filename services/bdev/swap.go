package bdev

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Inserting a stage under a live bdev. A namespace or LUN holds a
// descriptor on bdev "X"; to put a stage under it without disconnecting
// anyone, X keeps its name, UUID, geometry, descriptors and channels, and
// only its back end changes, under a quiesce:
//
//	before:  X ──► old back end
//	after:   X ──► stage ──► X' (a new bdev named base) ──► old back end
//
// The old back end's per-reactor channels move to X' as they are (a back
// end's NewChannel still runs once per reactor), the stage's channels are
// opened on every reactor for X, and the IO held by the quiesce resumes
// into the stage. Remove undoes it the same way.
//
// Invariants, on top of B1-B9:
//
//	B10. A bdev's Info and geometry never change: the stage must describe
//	     itself exactly as the back end it goes over (a transparent stage
//	     does: passthru, qos, delay, error; a one-member replica).
//	B11. The swap happens while the bdev is quiesced (no IO admitted
//	     anywhere, new IO held), each reactor's channel is changed on that
//	     reactor, and every reactor's channel gets the stage's, so no
//	     reactor ever opens a channel of the old back end for X again.

// ErrSwap is wrapped by every InsertUnder and Remove error.
var ErrSwap = errors.New("stage insertion")

// Inserted is a stage put under a live bdev by InsertUnder.
type Inserted struct {
	reg   *Registry
	top   *Bdev   // the live bdev: its back end is the stage now
	base  *Bdev   // the old back end under its new name
	stage Backend // the stage
	old   Backend

	// Control plane during the insertion: reactor i's old channel was
	// shared with base (the bdev had one there).
	shared []bool
}

// Bdev is the live bdev the stage sits under.
func (in *Inserted) Bdev() *Bdev { return in.top }

// Base is the bdev the old back end is now, under the stage.
func (in *Inserted) Base() *Bdev { return in.base }

// Stage is the inserted back end.
func (in *Inserted) Stage() Backend { return in.stage }

// InsertUnder puts a stage under the live bdev called name (B10, B11). The
// bdev's current back end becomes a new bdev called base (a new UUID, the
// same geometry and Info); build makes the stage over it (opening and
// claiming base) while name is quiesced, with at most timeout for the
// drain. On any error nothing changes. Control plane.
func (reg *Registry) InsertUnder(name, base string, timeout time.Duration, build func(base string) (Backend, error)) (*Inserted, error) {
	reg.mu.Lock()
	top, ok := reg.bdevs[name]
	_, taken := reg.bdevs[base]
	switch {
	case reg.closed:
		reg.mu.Unlock()
		return nil, fmt.Errorf("insert under %q: %w", name, ErrRegistryClosed)
	case !ok || top.removed:
		reg.mu.Unlock()
		return nil, fmt.Errorf("insert under %q: %w", name, ErrNotFound)
	case top.removing:
		reg.mu.Unlock()
		return nil, fmt.Errorf("insert under %q: %w", name, ErrRemoving)
	case taken:
		reg.mu.Unlock()
		return nil, fmt.Errorf("insert under %q: base name %q: %w", name, base, ErrExists)
	case base == "" || len(base) > NameLenMax:
		reg.mu.Unlock()
		return nil, fmt.Errorf("insert under %q: base name %q, want 1..%d characters: %w", name, base, NameLenMax, ErrSwap)
	}
	in := &Inserted{reg: reg, top: top, old: top.be}
	in.base = &Bdev{
		name: base, driver: top.driver, uuid: uuid.New(), blockSize: top.blockSize, blockShift: top.blockShift,
		blocks: top.blocks, metadataSize: top.metadataSize, info: top.info, be: top.be,
		owner: reg.set.Get(reg.nextOwner % reg.set.Len()),
	}
	reg.nextOwner++
	in.base.chans = make([]*bdevChannel, reg.set.Len())
	for i := range in.base.chans {
		in.base.chans[i] = &bdevChannel{bdev: in.base, local: reg.locals[i]}
	}
	reg.bdevs[base] = in.base
	i := slices.Index(reg.order, top)
	reg.order = slices.Insert(reg.order, i, in.base) // closed after the stage above it
	reg.mu.Unlock()

	d, err := reg.Open(name, false)
	if err != nil {
		reg.forget(in.base)
		return nil, err
	}
	err = d.Quiesce(timeout, func() error { return in.insert(build) })
	d.Close()
	switch {
	case err != nil && in.stage != nil: // swapped, but the resume failed: it stands
		return in, fmt.Errorf("insert under %q: %w", name, err)
	case err != nil:
		reg.forget(in.base)
		return nil, fmt.Errorf("insert under %q: %w", name, err)
	}
	return in, nil
}

// insert runs while top is quiesced: the old channels are shared with base
// while build runs (it may read base), then top gets the stage's channels.
func (in *Inserted) insert(build func(string) (Backend, error)) error {
	reg, top, base := in.reg, in.top, in.base
	in.shared = make([]bool, len(top.chans))
	for i, bc := range top.chans {
		if err := reg.set.Get(i).Call(func() {
			base.chans[i].be = bc.be
			in.shared[i] = bc.be != nil
		}); err != nil {
			in.unshare()
			return err
		}
	}
	st, err := build(base.name)
	if err != nil {
		in.unshare()
		return err
	}
	if err := sameShape(top, st); err != nil {
		st.Close()
		in.unshare()
		return err
	}
	opened := make([]ChannelBackend, len(top.chans))
	for i := range top.chans {
		var err error
		if cerr := reg.set.Get(i).Call(func() { opened[i], err = st.NewChannel(top.chans[i].local) }); cerr != nil {
			err = cerr
		}
		if err != nil {
			for j, ch := range opened[:i] {
				reg.set.Get(j).Call(func() { ch.Close() })
			}
			st.Close()
			in.unshare()
			return fmt.Errorf("stage channel on reactor %d: %w", i, err)
		}
	}
	for i, bc := range top.chans {
		reg.set.Get(i).Call(func() { bc.be = opened[i] }) // B11: on its reactor, every reactor
	}
	reg.mu.Lock()
	top.be = st
	reg.mu.Unlock()
	in.stage = st
	return nil
}

// unshare takes the old channels back from base (an insertion that failed),
// closing those build opened on reactors where the bdev had none.
func (in *Inserted) unshare() {
	for i, bc := range in.base.chans {
		in.reg.set.Get(i).Call(func() {
			if bc.be != nil && !in.shared[i] {
				bc.be.Close()
			}
			bc.be = nil
		})
	}
}

// sameShape checks B10: the stage's Info and, when it says, geometry.
func sameShape(top *Bdev, st Backend) error {
	info := st.Info()
	if info.MaxIovecs == 0 {
		info.MaxIovecs = IovecsInlineMax
	}
	if info != top.info {
		return fmt.Errorf("stage describes itself as %+v, bdev %q is %+v: want the same (a transparent stage): %w",
			info, top.name, top.info, ErrSwap)
	}
	if sp, ok := st.(interface{ Spec() Spec }); ok {
		s := sp.Spec()
		if s.BlockSize != top.blockSize || s.Blocks != top.blocks || s.MetadataSize != top.metadataSize {
			return fmt.Errorf("stage is %d blocks of %d (+%d metadata), bdev %q %d of %d (+%d): %w",
				s.Blocks, s.BlockSize, s.MetadataSize, top.name, top.blocks, top.blockSize, top.metadataSize, ErrSwap)
		}
	}
	return nil
}

// forget removes a bdev from the tables without closing anything: base
// after a failed insertion, or after Remove gave its channels back.
func (reg *Registry) forget(b *Bdev) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	b.removed = true
	delete(reg.bdevs, b.name)
	if i := slices.Index(reg.order, b); i >= 0 {
		reg.order = slices.Delete(reg.order, i, i+1)
	}
}

// Remove takes the stage out again, under a quiesce: the bdev goes back to
// its old back end and channels, the stage is closed (releasing base), and
// base disappears. Refused while anything but the stage has base open.
// Control plane.
func (in *Inserted) Remove(timeout time.Duration) error {
	reg, top, base := in.reg, in.top, in.base
	reg.mu.Lock()
	users := base.readers + base.writers
	reg.mu.Unlock()
	if users > 1 {
		return fmt.Errorf("remove the stage under %q: %q is open %d times, want only the stage's: %w",
			top.name, base.name, users, ErrInUse)
	}
	d, err := reg.Open(top.name, false)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Quiesce(timeout, func() error {
		for i, bc := range top.chans {
			r := reg.set.Get(i)
			var err error
			if cerr := r.Call(func() {
				if bc.be != nil {
					err = bc.be.Close()
				}
				bc.be = base.chans[i].be
				base.chans[i].be = nil
				if bc.be == nil { // base never opened one here: make top's now (B11)
					bc.be, err = in.old.NewChannel(bc.local)
				}
			}); cerr != nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("remove the stage under %q: reactor %d: %w", top.name, i, err)
			}
		}
		reg.mu.Lock()
		top.be = in.old
		reg.mu.Unlock()
		err := in.stage.Close()
		reg.forget(base)
		return err
	})
}
