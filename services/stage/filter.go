package stage

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Filter is what a stage over one base that keeps the base's geometry and
// promises (passthru, delay, error, qos) has besides its own work: its name
// and UUID, the claimed base, and the Backend methods that follow from them.
// Such a stage embeds a Filter and adds Service, Status and NewChannel.
// Set by OpenFilter, never changed.
type Filter struct {
	name  string
	id    uuid.UUID
	bases *Bases
	base  *bdev.Bdev
}

// OpenFilter opens and claims base for the stage called name, whose service
// names it in errors. On an error nothing stays open or claimed.
func OpenFilter(reg *bdev.Registry, service, name string, id uuid.UUID, base string) (Filter, error) {
	if base == "" {
		return Filter{}, fmt.Errorf("%s %q: base empty, want the name of a bdev: %w", service, name, ErrConfig)
	}
	bases, err := OpenBases(reg, name, []string{base})
	if err != nil {
		return Filter{}, err
	}
	return Filter{name: name, id: id, bases: bases, base: bases.Descs[0].Bdev()}, nil
}

// Spec is the base's geometry under the stage's name.
func (f *Filter) Spec() bdev.Spec {
	sp := Spec(f.name, f.id, f.base.BlockSize(), f.base.Blocks())
	sp.MetadataSize = f.base.MetadataSize()
	return sp
}

// Name is the stage's bdev name.
func (f *Filter) Name() string { return f.name }

// Bases is the one base's name.
func (f *Filter) Bases() []string { return f.bases.Names() }

// Info promises what the base promises (Transparent).
func (f *Filter) Info() bdev.Info { return Transparent(f.base) }

// Close releases the base and its claim.
func (f *Filter) Close() error { f.bases.Close(); return nil }

// Base is the base bdev.
func (f *Filter) Base() *bdev.Bdev { return f.base }

// BaseChannel is the base's channel on r, opened on first use. Runs on r.
func (f *Filter) BaseChannel(r *reactors.Reactor) (*bdev.Channel, error) {
	return f.bases.Descs[0].Channel(r)
}
