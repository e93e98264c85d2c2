package bdev

import (
	"errors"
	"fmt"
	"slices"
)

// ErrInUse is returned by Delete while a descriptor is open on the bdev: a
// bdev something still uses is not removed under it.
var ErrInUse = errors.New("bdev in use")

// Delete removes the bdev called name: it closes the bdev's channels on
// their reactors, then the back end (a malloc bdev's memory is unmapped, a
// uring file closed). It is refused while any descriptor is open (a
// namespace, a LUN or a stage uses it). Control plane.
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
	case b.readers+b.writers > 0:
		claim := ""
		if b.claimer != "" {
			claim = ", claimed by " + b.claimer
		}
		reg.mu.Unlock()
		return fmt.Errorf("delete bdev %q: open by %d reader(s) and %d writer(s)%s: %w",
			name, b.readers, b.writers, claim, ErrInUse)
	}
	b.removed = true // no Open succeeds from here on
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
