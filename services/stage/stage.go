package stage

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/services/bdev"
)

// BasesMax bounds the bases of one stage: a raid0 or concat wider than this
// spreads one IO over more children than a split parent keeps in flight
// (the bdev layer's 32), and no mirror needs more copies.
const BasesMax = 32

// ErrConfig is wrapped by every error about a stage's configuration: its
// name, its bases or its parameters. The message names the field, the value
// and the rule.
var ErrConfig = errors.New("stage config")

// Bases are a stage's base bdevs, opened for writing and claimed by the
// stage (S1). Control plane: Open and Close run off the reactors.
type Bases struct {
	Descs []*bdev.Desc
	names []string
}

// OpenBases opens every base in names for writing and claims it for stage.
// On any error nothing stays open or claimed.
func OpenBases(reg *bdev.Registry, stage string, names []string) (*Bases, error) {
	if len(names) == 0 || len(names) > BasesMax {
		return nil, fmt.Errorf("stage %q: %d bases, want 1..%d: %w", stage, len(names), BasesMax, ErrConfig)
	}
	seen := map[string]bool{}
	b := &Bases{names: append([]string(nil), names...)}
	for _, name := range names {
		if seen[name] {
			b.Close()
			return nil, fmt.Errorf("stage %q: base %q given twice, want each base once: %w", stage, name, ErrConfig)
		}
		seen[name] = true
		d, err := reg.Open(name, true)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("stage %q: %w", stage, err)
		}
		if err := reg.Claim(d, stage); err != nil {
			d.Close()
			b.Close()
			return nil, fmt.Errorf("stage %q: %w", stage, err)
		}
		b.Descs = append(b.Descs, d)
	}
	return b, nil
}

// Names are the bases' names in the order given.
func (b *Bases) Names() []string { return append([]string(nil), b.names...) }

// Close releases every base and its claim. The stage's channels must be
// closed (no IO of the stage in flight).
func (b *Bases) Close() {
	for _, d := range b.Descs {
		d.Close()
	}
	b.Descs = nil
}

// SameBlockSize checks that every base has one block size and returns it.
func (b *Bases) SameBlockSize(stage string) (uint32, error) {
	bs := b.Descs[0].Bdev().BlockSize()
	for _, d := range b.Descs[1:] {
		if d.Bdev().BlockSize() != bs {
			return 0, fmt.Errorf("stage %q: base %q has %d-byte blocks, base %q %d: want one block size: %w",
				stage, d.Bdev().Name(), d.Bdev().BlockSize(), b.Descs[0].Bdev().Name(), bs, ErrConfig)
		}
		if d.Bdev().MetadataSize() != 0 {
			return 0, fmt.Errorf("stage %q: base %q has %d metadata bytes per block, want none: %w",
				stage, d.Bdev().Name(), d.Bdev().MetadataSize(), ErrConfig)
		}
	}
	return bs, nil
}

// Spec is the bdev spec of a stage: its name and UUID, the geometry it
// computed from its bases. Driver stays "": a stage is no driver's.
func Spec(name string, id uuid.UUID, blockSize uint32, blocks uint64) bdev.Spec {
	return bdev.Spec{Name: name, BlockSize: blockSize, Blocks: blocks, UUID: id}
}

// Transparent is the Info of a stage that passes every IO down unchanged
// (passthru, delay, errinject, qos): its base's, so the upper layer splits
// and emulates exactly as the base's would and a child always fits the base.
func Transparent(base *bdev.Bdev) bdev.Info { return base.Info() }

// Backend is what every stage package makes: the bdev back end with its
// control-plane face and the spec of the bdev it exposes.
type Backend interface {
	bdev.Backend
	Stage
	// Spec is the bdev the stage exposes: name, UUID, geometry.
	Spec() bdev.Spec
}

// Add registers s as a bdev and records it in list (nil: no list). On error
// s is closed, which releases its bases.
func Add(reg *bdev.Registry, list *List, s Backend) (*bdev.Bdev, error) {
	b, err := reg.Add(s.Spec(), s)
	if err != nil {
		s.Close()
		return nil, err
	}
	if list != nil {
		if err := list.Add(s); err != nil {
			reg.Delete(b.Name())
			return nil, err
		}
	}
	if st, ok := s.(Starter); ok {
		if err := st.Start(); err != nil {
			Delete(reg, list, b.Name())
			return nil, fmt.Errorf("stage %q: start: %w", b.Name(), err)
		}
	}
	return b, nil
}

// Starter is a stage with work to begin once its bdev exists: a replica
// resuming a resync its metadata asks for, a crypto stage resuming an
// online conversion.
type Starter interface {
	Start() error
}

// Delete removes the stage called name: its bdev is deleted (refused while
// anything has it open, bdev.ErrInUse, so a stage something uses stays), its
// back end closed, its bases released, and it leaves list.
func Delete(reg *bdev.Registry, list *List, name string) error {
	if err := reg.Delete(name); err != nil {
		return err
	}
	if list != nil {
		list.Remove(name)
	}
	return nil
}
