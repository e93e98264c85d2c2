package bdev

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/reactors"
)

// Options size the layer's per-reactor pools; a zero field takes its default.
type Options struct {
	IOPoolSize    int // IOs per reactor; IOPoolSizeDefault
	BufSmallSize  int // bytes, a multiple of PageSize; BufSmallSizeDefault
	BufSmallCount int // per reactor; BufSmallCountDefault
	BufLargeSize  int // bytes, a multiple of PageSize, >= BufSmallSize; BufLargeSizeDefault
	BufLargeCount int // per reactor; BufLargeCountDefault
}

func (o *Options) fill() error {
	if o.IOPoolSize == 0 {
		o.IOPoolSize = IOPoolSizeDefault
	}
	if o.BufSmallSize == 0 {
		o.BufSmallSize = BufSmallSizeDefault
	}
	if o.BufSmallCount == 0 {
		o.BufSmallCount = BufSmallCountDefault
	}
	if o.BufLargeSize == 0 {
		o.BufLargeSize = BufLargeSizeDefault
	}
	if o.BufLargeCount == 0 {
		o.BufLargeCount = BufLargeCountDefault
	}
	var errs []error
	if o.IOPoolSize < 0 {
		errs = append(errs, fmt.Errorf("bdev options: IO pool size %d, want > 0", o.IOPoolSize))
	}
	if o.BufLargeSize < o.BufSmallSize {
		errs = append(errs, fmt.Errorf("bdev options: large buffer %d bytes, want >= small buffer %d", o.BufLargeSize, o.BufSmallSize))
	}
	return errors.Join(errs...)
}

// Errors of Open, Claim and Create; each returned error wraps one and names
// the bdev.
var (
	ErrNotFound       = errors.New("no such bdev")
	ErrExists         = errors.New("name taken")
	ErrClaimed        = errors.New("claimed by a stage")
	ErrNoDriver       = errors.New("no such driver")
	ErrDriverExists   = errors.New("driver registered twice")
	ErrReadOnly       = errors.New("descriptor opened read-only")
	ErrOtherWriters   = errors.New("open for writing elsewhere")
	ErrDescClosed     = errors.New("descriptor closed")
	ErrRegistryClosed = errors.New("registry closed")
	ErrNotReactor     = errors.New("reactor not in the registry's set")
	ErrRemoving       = errors.New("being deleted")
)

// Registry is the process's drivers and bdevs, and the layer's state on each
// reactor of one reactors.Set. Control plane: its methods run on goroutines
// that are not reactors (they wait for reactors), except Local, Open and
// Desc methods documented otherwise.
type Registry struct {
	set    *reactors.Set
	locals []*Local // index: reactor index; each owned by its reactor

	// lock: drivers, bdevs and their open/claim counts; taken by control-plane
	// calls only, never on the I/O path.
	mu        sync.Mutex
	drivers   map[string]Driver
	bdevs     map[string]*Bdev
	order     []*Bdev // creation order, for Close and listings
	nextOwner int     // round robin of bdev owner reactors
	closed    bool
}

// NewRegistry makes the layer's state on every reactor of set: IO and buffer
// pools and the poller that runs deferred completions. It waits for each
// reactor: call it from the control plane, not from a reactor.
func NewRegistry(set *reactors.Set, opts Options) (*Registry, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	reg := &Registry{set: set, drivers: map[string]Driver{}, bdevs: map[string]*Bdev{}}
	for _, r := range set.All() {
		l, err := newLocal(reg, r, &opts)
		if err == nil {
			reg.locals = append(reg.locals, l) // closeLocals unmaps its pools from here on
			err = r.Call(func() { l.poller = r.AddPoller("bdev", l, nil) })
		}
		if err != nil {
			reg.closeLocals()
			return nil, fmt.Errorf("bdev registry on reactor %d: %w", r.Index(), err)
		}
	}
	return reg, nil
}

// Set is the reactors the registry runs on.
func (reg *Registry) Set() *reactors.Set { return reg.set }

// Local is the layer's state on r. The result is owned by r: only code
// running there may use it.
func (reg *Registry) Local(r *reactors.Reactor) *Local {
	i := r.Index()
	if i >= len(reg.locals) || reg.locals[i].reactor != r {
		panic(fmt.Sprintf("bdev: reactor %d (core %d) is not in the registry's set", i, r.Core()))
	}
	return reg.locals[i]
}

// RegisterDriver makes d available to Create under name. A second driver
// with the same name is an error, never a replacement.
func (reg *Registry) RegisterDriver(name string, d Driver) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if name == "" || d == nil {
		return fmt.Errorf("register driver %q (%T): want a name and a driver", name, d)
	}
	if _, dup := reg.drivers[name]; dup {
		return fmt.Errorf("register driver %q: %w", name, ErrDriverExists)
	}
	reg.drivers[name] = d
	return nil
}

// Drivers lists the registered driver names, sorted.
func (reg *Registry) Drivers() []string {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	names := make([]string, 0, len(reg.drivers))
	for n := range reg.drivers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Create makes a bdev with spec.Driver's driver and adds it.
func (reg *Registry) Create(spec Spec) (*Bdev, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	reg.mu.Lock()
	d, ok := reg.drivers[spec.Driver]
	_, dup := reg.bdevs[spec.Name]
	reg.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("bdev %q: driver %q, want one of %v: %w", spec.Name, spec.Driver, reg.Drivers(), ErrNoDriver)
	}
	if dup {
		return nil, fmt.Errorf("bdev %q: %w", spec.Name, ErrExists)
	}
	be, err := d.Create(spec)
	if err != nil {
		return nil, fmt.Errorf("bdev %q (driver %s): %w", spec.Name, spec.Driver, err)
	}
	b, err := reg.Add(spec, be)
	if err != nil {
		be.Close()
		return nil, err
	}
	return b, nil
}

// Add registers be as a bdev with spec's identity: what Create does after
// the driver, and what a stage calls for the bdev it exposes.
func (reg *Registry) Add(spec Spec, be Backend) (*Bdev, error) {
	info := be.Info()
	if err := spec.validate(&info); err != nil {
		return nil, err
	}
	if spec.UUID == uuid.Nil {
		spec.UUID = uuid.New() // as SPDK does: none given, one picked at creation
	}
	if info.MaxIovecs == 0 {
		info.MaxIovecs = IovecsInlineMax
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.closed {
		return nil, fmt.Errorf("bdev %q: %w", spec.Name, ErrRegistryClosed)
	}
	if _, dup := reg.bdevs[spec.Name]; dup {
		return nil, fmt.Errorf("bdev %q: %w", spec.Name, ErrExists)
	}
	for _, o := range reg.order {
		if o.uuid == spec.UUID {
			return nil, fmt.Errorf("bdev %q: UUID %s already used by bdev %q: %w", spec.Name, spec.UUID, o.name, ErrExists)
		}
	}
	b := &Bdev{
		name: spec.Name, driver: spec.Driver, uuid: spec.UUID,
		blockSize: spec.BlockSize, blockShift: uint8(bitsLen(spec.BlockSize) - 1),
		blocks: spec.Blocks, metadataSize: spec.MetadataSize, info: info, be: be,
		owner: reg.set.Get(reg.nextOwner % reg.set.Len()),
	}
	reg.nextOwner++
	b.chans = make([]*bdevChannel, reg.set.Len())
	for i := range b.chans {
		b.chans[i] = &bdevChannel{bdev: b, local: reg.locals[i]}
	}
	reg.bdevs[b.name] = b
	reg.order = append(reg.order, b)
	return b, nil
}

func bitsLen(v uint32) int {
	n := 0
	for ; v != 0; v >>= 1 {
		n++
	}
	return n
}

// Lookup finds a bdev by name.
func (reg *Registry) Lookup(name string) (*Bdev, bool) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	b, ok := reg.bdevs[name]
	return b, ok
}

// Bdevs lists the bdevs in creation order.
func (reg *Registry) Bdevs() []*Bdev {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return slices.Clone(reg.order)
}

// Desc is one opener's handle on a bdev: read-only or read-write, and the
// way to its channels. Control plane for Open, Claim and Close; Channel runs
// on the reactor it is for.
type Desc struct {
	reg   *Registry
	bdev  *Bdev
	write bool
	chans []*Channel // index: reactor index; made at Open, opened on first use

	// Registry lock.
	claim    string
	closed   bool
	onRemove func() // OnRemove's; nil: Delete is refused while d is open
	notified bool   // onRemove has been called
}

// Open opens the bdev called name. A write descriptor is refused while a
// stage has claimed the bdev (ErrClaimed): what a stage claims, only it
// writes.
func (reg *Registry) Open(name string, write bool) (*Desc, error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.closed {
		return nil, fmt.Errorf("open bdev %q: %w", name, ErrRegistryClosed)
	}
	b, ok := reg.bdevs[name]
	if !ok || b.removed {
		return nil, fmt.Errorf("open bdev %q: %w", name, ErrNotFound)
	}
	if b.removing {
		return nil, fmt.Errorf("open bdev %q: %w", name, ErrRemoving)
	}
	if write && b.claimer != "" {
		return nil, fmt.Errorf("open bdev %q for writing: %w (%s)", name, ErrClaimed, b.claimer)
	}
	d := &Desc{reg: reg, bdev: b, write: write, chans: make([]*Channel, len(b.chans))}
	for i, bc := range b.chans {
		d.chans[i] = &Channel{desc: d, bc: bc, owner: bc.local.reactor}
	}
	if write {
		b.writers++
	} else {
		b.readers++
	}
	b.descs = append(b.descs, d)
	return d, nil
}

// OnRemove asks for SPDK's hot-remove event on d: when the bdev is deleted,
// fn runs once, on a goroutine of its own (control plane), and must lead to
// d.Close, after the opener has stopped using the bdev (a namespace drains
// its commands). A bdev open only by descriptors that asked for it can be
// deleted; any other open descriptor makes Delete refuse (ErrInUse).
func (d *Desc) OnRemove(fn func()) {
	d.reg.mu.Lock()
	defer d.reg.mu.Unlock()
	d.onRemove = fn
}

// Claim makes stage the only writer of d's bdev: d must be a write
// descriptor and the bdev's only one, and no later Open may write it.
func (reg *Registry) Claim(d *Desc, stage string) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	b := d.bdev
	switch {
	case d.closed:
		return fmt.Errorf("claim bdev %q for %s: %w", b.name, stage, ErrDescClosed)
	case stage == "":
		return fmt.Errorf("claim bdev %q: stage name empty, want the claiming stage's name", b.name)
	case b.claimer != "":
		return fmt.Errorf("claim bdev %q for %s: %w (%s)", b.name, stage, ErrClaimed, b.claimer)
	case !d.write:
		return fmt.Errorf("claim bdev %q for %s: %w", b.name, stage, ErrReadOnly)
	case b.writers > 1:
		return fmt.Errorf("claim bdev %q for %s: %d write descriptors: %w", b.name, stage, b.writers, ErrOtherWriters)
	}
	b.claimer = stage
	d.claim = stage
	return nil
}

// Claimer is the stage that claimed the bdev, or "".
func (reg *Registry) Claimer(b *Bdev) string {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return b.claimer
}

// Bdev is the descriptor's bdev.
func (d *Desc) Bdev() *Bdev { return d.bdev }

// Writable reports whether the descriptor may write.
func (d *Desc) Writable() bool { return d.write }

// Close releases the descriptor and its claim. Its channels must have no IO
// in flight; they are not used again.
func (d *Desc) Close() {
	reg := d.reg
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	b := d.bdev
	if d.write {
		b.writers--
	} else {
		b.readers--
	}
	if d.claim != "" {
		b.claimer = ""
	}
	if i := slices.Index(b.descs, d); i >= 0 {
		b.descs = slices.Delete(b.descs, i, i+1)
	}
	if b.idle != nil && len(b.descs) == 0 {
		close(b.idle)
		b.idle = nil
	}
}

// Channel is the descriptor's channel on r, opening the back end's channel
// on first use. Owner only: it runs on r.
func (d *Desc) Channel(r *reactors.Reactor) (*Channel, error) {
	r.AssertCurrent()
	i := r.Index()
	if i >= len(d.chans) || d.chans[i].owner != r {
		return nil, fmt.Errorf("bdev %q channel: reactor %d (core %d): %w", d.bdev.name, i, r.Core(), ErrNotReactor)
	}
	ch := d.chans[i]
	if err := ch.bc.open(); err != nil {
		return nil, err
	}
	return ch, nil
}

// Close closes every bdev's channels (on their reactors), then the back
// ends, then the per-reactor state. Every IO must have completed. Control
// plane.
func (reg *Registry) Close() error {
	reg.mu.Lock()
	if reg.closed {
		reg.mu.Unlock()
		return nil
	}
	reg.closed = true
	order := slices.Clone(reg.order)
	reg.mu.Unlock()
	var errs []error
	for i := len(order) - 1; i >= 0; i-- { // stages before what they sit on
		b := order[i]
		for j, bc := range b.chans {
			r := reg.set.Get(j)
			var err error
			if callErr := r.Call(func() { err = bc.close() }); callErr != nil {
				err = callErr
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("bdev %q channel on reactor %d: %w", b.name, j, err))
			}
		}
		if err := b.be.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bdev %q: close: %w", b.name, err))
		}
	}
	errs = append(errs, reg.closeLocals())
	return errors.Join(errs...)
}

func (reg *Registry) closeLocals() error {
	var errs []error
	for _, l := range reg.locals {
		r := l.reactor
		if err := r.Call(func() {
			if l.poller != nil {
				r.RemovePoller(l.poller)
			}
			if l.retryTimer != nil {
				r.RemovePoller(l.retryTimer)
			}
			if out := len(l.ios) - l.freeCount; out != 0 {
				errs = append(errs, fmt.Errorf("bdev: reactor %d: %d IOs not freed at close", r.Index(), out))
			}
		}); err != nil {
			errs = append(errs, err)
			continue // the reactor may still run: leave its memory mapped
		}
		errs = append(errs, l.small.region.Unmap(), l.large.region.Unmap())
	}
	reg.locals = nil
	return errors.Join(errs...)
}
