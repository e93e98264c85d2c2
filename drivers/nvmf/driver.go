package nvmf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Name is the driver's name on its bdevs (bdev.Bdev.Driver) and in conf.
const Name = "nvmf"

// Limits, each with its reason.
const (
	// nlbMax blocks one Read, Write or Write Zeroes command covers: NLB is
	// a 16-bit 0's based count (NVM Command Set 1.0, "Read command").
	nlbMax = 1 << 16
	// attemptTimeout bounds one reconnect attempt (admin connect, enable,
	// identify): a target that accepts TCP and then says nothing must not
	// hold the supervisor past the loss timeout's granularity.
	attemptTimeout = 15 * time.Second
)

// AttachOptions are bdev_nvme_attach_controller's parameters.
type AttachOptions struct {
	// Name of the controller; its bdevs are Name+"n"+NSID (SPDK: Nvme0n1).
	Name        string
	TransportID host.TransportID
	// Controller options: host NQN and ID, digests, KATO, queues.
	Host host.ControllerOptions
	// IOQueueDepth per reactor's qpair; 0 means host.IOQueueDepthDefault.
	IOQueueDepth int
	// Recovery holds reconnect_delay_sec, ctrlr_loss_timeout_sec and
	// fast_io_fail_timeout_sec.
	Recovery Recovery
}

// ErrControllerExists and ErrNoController are wrapped by Attach and Detach.
var (
	ErrControllerExists = errors.New("controller name taken")
	ErrNoController     = errors.New("no such controller")
)

// Manager is the attached controllers of one bdev registry. Control plane.
type Manager struct {
	reg *bdev.Registry // set in NewManager, never changed
	log *slog.Logger   //

	// lock: the controller table, taken by Attach, Detach, Stats and Close on
	// the control plane, never on the I/O path.
	mu        sync.Mutex
	ctrlrs    map[string]*Ctrlr
	nextOwner int
	closed    bool
}

// NewManager makes the driver for reg's reactors.
func NewManager(reg *bdev.Registry, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	return &Manager{reg: reg, log: log, ctrlrs: map[string]*Ctrlr{}}
}

// assoc is one association: a connected host.Controller and its generation
// (D3). Published through Ctrlr.cur; nil while disconnected.
type assoc struct {
	hc  *host.Controller
	gen uint64
}

// Ctrlr is one attached controller.
type Ctrlr struct {
	m     *Manager          // set in Attach, never changed
	name  string            //
	opts  AttachOptions     //
	owner *reactors.Reactor // holds the admin qpair of every association

	cur     atomic.Pointer[assoc]
	lostGen atomic.Uint64 // highest generation reported lost (D3)
	ioMode  atomic.Uint32 // the mode a channel made now starts in
	state   atomic.Uint32 // RecoveryState, for Stats
	kick    chan struct{} // a loss was reported
	rescan  chan struct{} // the namespace list changed
	stop    chan struct{}
	done    chan struct{}

	// Each element is owned by its reactor (index).
	chans  []*ctrlrChannel
	qpairs []atomic.Pointer[host.Qpair] // for Stats from any goroutine

	// lock: namespaces, options, counters and the last error, taken by the
	// supervisor and Stats on the control plane and by a reactor making its
	// channel (setup), never per IO.
	mu         sync.Mutex
	namespaces map[uint32]*nsBackend
	reconnects uint64
	gen        uint64 // generations handed out

	lastErr atomic.Pointer[string] // set by whoever saw the last failure, reactors included
}

// Attach connects to the controller o names, makes one bdev per active
// namespace and starts watching the connection. It returns the bdev names.
// Control plane.
func (m *Manager) Attach(ctx context.Context, o AttachOptions) ([]string, error) {
	if err := m.validate(&o); err != nil {
		return nil, err
	}
	set := m.reg.Set()
	m.mu.Lock()
	if _, dup := m.ctrlrs[o.Name]; dup || m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("nvmf: attach %q: %w", o.Name, ErrControllerExists)
	}
	c := &Ctrlr{m: m, name: o.Name, opts: o, owner: set.Get(m.nextOwner % set.Len()),
		kick: make(chan struct{}, 1), rescan: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{}), chans: make([]*ctrlrChannel, set.Len()),
		qpairs: make([]atomic.Pointer[host.Qpair], set.Len()), namespaces: map[uint32]*nsBackend{}}
	m.nextOwner++
	m.ctrlrs[o.Name] = c // reserves the name while connecting
	m.mu.Unlock()
	names, err := c.start(ctx)
	if err != nil {
		c.mu.Lock()
		for _, be := range c.namespaces {
			names = append(names, be.name)
		}
		c.mu.Unlock()
		for _, n := range names { // a scan that failed half-way: nothing has them open yet
			m.reg.Delete(n)
		}
		c.shutdown()
		m.mu.Lock()
		delete(m.ctrlrs, o.Name)
		m.mu.Unlock()
		return nil, err
	}
	m.log.Info("nvmf controller attached", "ctrlr", o.Name, "trid", o.TransportID.String(), "bdevs", names)
	return names, nil
}

func (m *Manager) validate(o *AttachOptions) error {
	var errs []error
	if o.Name == "" || len(o.Name) > bdev.NameLenMax-6 { // room for "n" and an NSID
		errs = append(errs, fmt.Errorf("nvmf: name %q, want 1..%d characters", o.Name, bdev.NameLenMax-6))
	}
	if err := o.TransportID.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.TransportID.Discovery() {
		errs = append(errs, fmt.Errorf("nvmf: subnqn is the discovery NQN: attach an NVM subsystem (discover it first)"))
	}
	if err := o.Recovery.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.IOQueueDepth < 0 || o.IOQueueDepth > host.QueueDepthMax {
		errs = append(errs, fmt.Errorf("nvmf: io queue depth %d, want 0..%d", o.IOQueueDepth, host.QueueDepthMax))
	}
	return errors.Join(errs...)
}

// start makes the first association (a failure here is Attach's error, as
// in SPDK), the bdevs, and the supervisor.
func (c *Ctrlr) start(ctx context.Context) ([]string, error) {
	a, err := c.connect(ctx)
	if err == nil {
		c.cur.Store(a)
		var names []string
		if names, err = c.scan(ctx, a.hc); err == nil {
			go c.supervise()
			return names, nil
		}
	}
	close(c.done) // no supervisor to wait for
	return nil, err
}

// connect makes a new association whose failures report its generation.
func (c *Ctrlr) connect(ctx context.Context) (*assoc, error) {
	c.mu.Lock()
	c.gen++
	gen := c.gen
	c.mu.Unlock()
	o := c.opts.Host
	o.OnFail = func(err error) { c.reportLost(gen, err) }
	o.OnNamespaceChange = func() {
		select {
		case c.rescan <- struct{}{}:
		default:
		}
	}
	hc, err := host.Connect(ctx, c.owner, c.opts.TransportID, o)
	if err != nil {
		return nil, err
	}
	return &assoc{hc: hc, gen: gen}, nil
}

// reportLost tells the supervisor that association gen failed. Any
// goroutine, reactors included: it never blocks.
func (c *Ctrlr) reportLost(gen uint64, err error) {
	if a := c.cur.Load(); a == nil || a.gen != gen {
		return // an attempt that failed before it was published: the supervisor hears it from Connect
	}
	for {
		old := c.lostGen.Load()
		if gen <= old {
			return // already reported (D3)
		}
		if c.lostGen.CompareAndSwap(old, gen) {
			break
		}
	}
	c.m.log.Warn("nvmf controller connection lost", "ctrlr", c.name, "generation", gen, "err", err)
	msg := err.Error()
	c.lastErr.Store(&msg)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// scan makes a bdev for every active namespace without one; namespaces that
// are gone are logged (their bdevs stay until detach: something may have
// them open). It returns the names of every namespace's bdev.
func (c *Ctrlr) scan(ctx context.Context, hc *host.Controller) ([]string, error) {
	ids, err := hc.ActiveNamespaces(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, id := range ids {
		c.mu.Lock()
		_, known := c.namespaces[id]
		c.mu.Unlock()
		if known {
			continue
		}
		ns, err := hc.IdentifyNamespace(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.addNamespace(hc, ns); err != nil {
			errs = append(errs, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for id, be := range c.namespaces {
		if !slices.Contains(ids, id) {
			c.m.log.Warn("nvmf namespace gone from the controller; bdev kept until detach", "ctrlr", c.name, "bdev", be.name)
		}
		names = append(names, be.name)
	}
	slices.Sort(names)
	return names, errors.Join(errs...)
}

func (c *Ctrlr) addNamespace(hc *host.Controller, ns host.Namespace) error {
	bs := uint64(ns.BlockSize)
	be := &nsBackend{c: c, ns: ns, name: fmt.Sprintf("%sn%d", c.name, ns.NSID), shift: shiftOf(ns.BlockSize)}
	be.info = bdev.Info{
		IOTypes:           bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush),
		MaxTransferBlocks: uint32(min(uint64(hc.TransferSizeMax())/bs, nlbMax)),
		MaxUnmapBlocks:    nlbMax,
	}
	if ns.Deallocate {
		be.info.IOTypes = be.info.IOTypes.With(bdev.IOUnmap)
	}
	if ns.WriteZeroes {
		be.info.IOTypes = be.info.IOTypes.With(bdev.IOWriteZeroes)
	}
	spec := bdev.Spec{Name: be.name, Driver: Name, BlockSize: ns.BlockSize, Blocks: ns.Blocks}
	if ns.UUID != ([16]byte{}) {
		spec.UUID = uuid.UUID(ns.UUID)
	}
	if _, err := c.m.reg.Add(spec, be); err != nil {
		return fmt.Errorf("nvmf: controller %q namespace %d: %w", c.name, ns.NSID, err)
	}
	c.mu.Lock()
	c.namespaces[ns.NSID] = be
	c.mu.Unlock()
	return nil
}

func shiftOf(v uint32) uint8 {
	s := uint8(0)
	for v > 1 {
		v >>= 1
		s++
	}
	return s
}

// supervise is the controller's control-plane loop: it feeds the Recovery
// policy losses, attempt results and time, and carries out its actions.
func (c *Ctrlr) supervise() {
	defer close(c.done)
	rec := c.opts.Recovery
	epoch := time.Now()
	now := func() time.Duration { return time.Since(epoch) }
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	attemptDone := make(chan *assoc, 1)
	attemptErr := make(chan error, 1)
	var attemptCancel context.CancelFunc // non-nil while an attempt runs
	defer func() {
		if attemptCancel == nil {
			return
		}
		// An attempt still running would leave a live association behind:
		// cut it short and close what it made.
		attemptCancel()
		select {
		case a := <-attemptDone:
			a.hc.Close()
		case <-attemptErr:
		}
	}()
	act := func(a Action) {
		if a&ActDisconnect != 0 {
			c.disconnect()
		}
		if a&ActFailIO != 0 {
			c.setMode(modeFastFail, nil)
		}
		if a&ActGiveUp != 0 {
			c.m.log.Error("nvmf controller lost: reconnect attempts ended (ctrlr_loss_timeout_sec)", "ctrlr", c.name)
			c.setMode(modeFailed, nil)
		}
		if a&ActAttempt != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
			attemptCancel = cancel
			go func() {
				a, err := c.connect(ctx)
				if err != nil {
					attemptErr <- err
					return
				}
				attemptDone <- a
			}()
		}
		c.state.Store(uint32(rec.State()))
	}
	for {
		if d, ok := rec.Deadline(); ok {
			timer.Reset(max(d-now(), 0))
		} else {
			timer.Stop()
		}
		select {
		case <-c.stop:
			return
		case <-c.kick:
			if a := c.cur.Load(); a != nil && c.lostGen.Load() >= a.gen {
				act(rec.Step(EventLost, now()))
			}
		case <-timer.C:
			act(rec.Step(EventTick, now()))
		case err := <-attemptErr:
			attemptCancel()
			attemptCancel = nil
			c.m.log.Warn("nvmf reconnect attempt failed", "ctrlr", c.name, "err", err)
			msg := err.Error()
			c.lastErr.Store(&msg)
			act(rec.Step(EventAttemptFailed, now()))
		case a := <-attemptDone:
			attemptCancel()
			attemptCancel = nil
			if rec.State() != StateConnecting {
				a.hc.Close() // given up meanwhile
				continue
			}
			c.cur.Store(a)
			if a.hc.Failed() { // lost between Connect's return and its publication
				c.reportLost(a.gen, a.hc.Err())
			}
			c.mu.Lock()
			c.reconnects++
			c.mu.Unlock()
			c.m.log.Info("nvmf controller reconnected", "ctrlr", c.name, "generation", a.gen)
			act(rec.Step(EventAttemptOK, now()))
			c.setMode(modeNormal, a)
			if _, err := c.scan(context.Background(), a.hc); err != nil {
				c.m.log.Warn("nvmf namespace scan after reconnect", "ctrlr", c.name, "err", err)
			}
		case <-c.rescan:
			if a := c.cur.Load(); a != nil {
				if names, err := c.scan(context.Background(), a.hc); err != nil {
					c.m.log.Warn("nvmf namespace scan", "ctrlr", c.name, "err", err)
				} else {
					c.m.log.Info("nvmf namespaces rescanned", "ctrlr", c.name, "bdevs", names)
				}
			}
		}
	}
}

// disconnect tears the current association down: every reactor's qpair
// closed (their IO waits), then the admin queue.
func (c *Ctrlr) disconnect() {
	a := c.cur.Swap(nil)
	c.forEachChannel(func(ch *ctrlrChannel) { ch.drop() })
	if a != nil {
		a.hc.Close()
	}
}

// setMode tells every reactor's channel what to do with its IO; a is the new
// association for modeNormal.
func (c *Ctrlr) setMode(m ioMode, a *assoc) {
	c.ioMode.Store(uint32(m))
	c.forEachChannel(func(ch *ctrlrChannel) { ch.setMode(m, a) })
}

// forEachChannel runs fn on every reactor that has a channel, there.
func (c *Ctrlr) forEachChannel(fn func(ch *ctrlrChannel)) {
	for i, r := range c.m.reg.Set().All() {
		r.Call(func() {
			if ch := c.chans[i]; ch != nil {
				fn(ch)
			}
		})
	}
}

// channel is the controller's channel on reactor r, made on first use.
// Owner only (runs on r).
func (c *Ctrlr) channel(r *reactors.Reactor) *ctrlrChannel {
	i := r.Index()
	ch := c.chans[i]
	if ch == nil {
		c.mu.Lock()
		depth := c.opts.IOQueueDepth
		c.mu.Unlock()
		if depth == 0 {
			depth = host.IOQueueDepthDefault
		}
		if a := c.cur.Load(); a != nil {
			depth = min(depth, a.hc.QueueDepthMax())
		}
		ch = newCtrlrChannel(c, i, depth)
		ch.mode = ioMode(c.ioMode.Load())
		c.chans[i] = ch
		if a := c.cur.Load(); a != nil && ch.mode == modeNormal {
			ch.connect(a)
		}
	}
	ch.refs++
	return ch
}

// shutdown stops the supervisor and closes the association. Channels must
// be closed already (the bdevs deleted).
func (c *Ctrlr) shutdown() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	select {
	case <-c.done:
	case <-time.After(attemptTimeout + time.Second):
	}
	if a := c.cur.Swap(nil); a != nil {
		a.hc.Close()
	}
}

// Detach deletes the controller's bdevs (refused while one is open) and
// disconnects. Control plane.
func (m *Manager) Detach(name string) error {
	m.mu.Lock()
	c, ok := m.ctrlrs[name]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("nvmf: detach %q: %w", name, ErrNoController)
	}
	c.mu.Lock()
	var names []string
	for _, be := range c.namespaces {
		names = append(names, be.name)
	}
	c.mu.Unlock()
	slices.Sort(names)
	var errs []error
	for _, n := range names {
		if err := m.reg.Delete(n); err != nil && !errors.Is(err, bdev.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("nvmf: detach %q: %w", name, err)
	}
	c.shutdown()
	m.mu.Lock()
	delete(m.ctrlrs, name)
	m.mu.Unlock()
	m.log.Info("nvmf controller detached", "ctrlr", name)
	return nil
}

// Close stops every controller's supervisor and association. Call it after
// the registry closed the bdevs (Registry.Close), or after Detach. Control
// plane.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	ctrlrs := make([]*Ctrlr, 0, len(m.ctrlrs))
	for _, c := range m.ctrlrs {
		ctrlrs = append(ctrlrs, c)
	}
	m.ctrlrs = map[string]*Ctrlr{}
	m.mu.Unlock()
	for _, c := range ctrlrs {
		c.shutdown()
	}
	return nil
}

// CtrlrStats is one controller's state for the debug endpoint and
// bdev_nvme_get_controllers.
type CtrlrStats struct {
	Name        string            `json:"name"`
	TransportID string            `json:"trid"`
	State       string            `json:"state"`
	FastFailed  bool              `json:"fast_io_failed"`
	CNTLID      uint16            `json:"cntlid"`
	Generation  uint64            `json:"generation"`
	Reconnects  uint64            `json:"reconnects"`
	LastError   string            `json:"last_error,omitempty"`
	Bdevs       []string          `json:"bdevs"`
	Qpairs      []host.QpairStats `json:"qpairs"`
}

// Stats snapshots every controller, sorted by name. Any goroutine that is
// not a reactor.
func (m *Manager) Stats() []CtrlrStats {
	m.mu.Lock()
	ctrlrs := make([]*Ctrlr, 0, len(m.ctrlrs))
	for _, c := range m.ctrlrs {
		ctrlrs = append(ctrlrs, c)
	}
	m.mu.Unlock()
	out := make([]CtrlrStats, 0, len(ctrlrs))
	for _, c := range ctrlrs {
		out = append(out, c.Stats())
	}
	slices.SortFunc(out, func(a, b CtrlrStats) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Stats snapshots the controller.
func (c *Ctrlr) Stats() CtrlrStats {
	st := CtrlrStats{Name: c.name, TransportID: c.opts.TransportID.String(),
		State: RecoveryState(c.state.Load()).String(), FastFailed: ioMode(c.ioMode.Load()) == modeFastFail,
		Bdevs: []string{}, Qpairs: []host.QpairStats{}}
	if a := c.cur.Load(); a != nil {
		st.CNTLID, st.Generation = a.hc.CNTLID(), a.gen
	}
	if p := c.lastErr.Load(); p != nil {
		st.LastError = *p
	}
	c.mu.Lock()
	st.Reconnects = c.reconnects
	for _, be := range c.namespaces {
		st.Bdevs = append(st.Bdevs, be.name)
	}
	c.mu.Unlock()
	slices.Sort(st.Bdevs)
	for i := range c.qpairs {
		if q := c.qpairs[i].Load(); q != nil {
			st.Qpairs = append(st.Qpairs, q.Stats())
		}
	}
	return st
}

// Options returns the options the controller was attached with (and its
// queue depth as SetIOQueueDepth left it): what recreates it, for
// save_config's topology. Control plane.
func (c *Ctrlr) Options() AttachOptions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts
}

// SetIOQueueDepth sets the depth of the qpairs made from now on (channels
// opened later); perf sizes them for several namespaces sharing a reactor's
// qpair. Control plane; before the first channel opens.
func (c *Ctrlr) SetIOQueueDepth(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opts.IOQueueDepth = min(max(n, 1), host.QueueDepthMax)
}

// Namespaces is how many namespaces have bdevs.
func (c *Ctrlr) Namespaces() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.namespaces)
}

// Controller finds an attached controller by name.
func (m *Manager) Controller(name string) (*Ctrlr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.ctrlrs[name]
	return c, ok
}

// nsBackend is one namespace as a bdev back end.
type nsBackend struct {
	c     *Ctrlr // set at creation, never changed
	ns    host.Namespace
	name  string
	shift uint8
	info  bdev.Info
}

func (b *nsBackend) Info() bdev.Info { return b.info }

// NewChannel joins the controller's channel on l's reactor (made on first
// use, with its qpair).
func (b *nsBackend) NewChannel(l *bdev.Local) (bdev.ChannelBackend, error) {
	return &nsChannel{ch: b.c.channel(l.Reactor()), nsid: b.ns.NSID, shift: b.shift}, nil
}

// Close forgets the namespace; the controller stays attached.
func (b *nsBackend) Close() error {
	b.c.mu.Lock()
	delete(b.c.namespaces, b.ns.NSID)
	b.c.mu.Unlock()
	return nil
}
