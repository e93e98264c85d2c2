package nvmf

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Options make a Target.
type Options struct {
	Set    *reactors.Set  // the reactors; one poll group each
	Bdevs  *bdev.Registry // where namespaces' bdevs come from
	Logger *slog.Logger   // nil: slog.Default()
	// Firmware is the Identify FR and firmware slot 1 revision: at most 8 printable ASCII
	// bytes; "" is FirmwareDefault.
	Firmware string
	// DrainTimeout bounds a namespace removal's wait for in-flight commands; 0 is 10 s.
	DrainTimeout time.Duration
}

// FirmwareDefault is the firmware revision controllers report when none is configured.
const FirmwareDefault = "0.1"

// drainTimeoutDefault: a namespace's commands finish in milliseconds unless the back end is
// stuck; 10 s is the RPC's patience before it reports that instead.
const drainTimeoutDefault = 10 * time.Second

// Target is the NVMe-oF target: subsystems (the discovery one included), the transports that
// carry their queues, the listen addresses, and a poll group per reactor. Its methods are the
// control plane (T1 in doc.go): they run on goroutines that are not reactors and may wait for
// reactors; reactors reach it only through Qpair and the lock-free lookups.
type Target struct {
	set      *reactors.Set
	reg      *bdev.Registry
	log      *slog.Logger
	firmware string
	drain    time.Duration
	groups   []*PollGroup // index: reactor index
	qpairIDs atomic.Uint64

	// The published subsystem table: replaced whole under mu, read by Connects anywhere.
	table     atomic.Pointer[map[string]*Subsystem]
	discovery *Subsystem
	genctr    atomic.Uint64 // discovery log generation (S3)

	// lock: the transports, listener reference counts and the subsystem table's writers;
	// control plane only.
	mu         sync.Mutex
	transports map[string]Transport
	listeners  map[ListenAddress]int // how many subsystems use each address
	closed     bool
}

// NewTarget makes a target with the discovery subsystem and a poll group on every reactor.
func NewTarget(o Options) (*Target, error) {
	if o.Set == nil || o.Bdevs == nil {
		return nil, fmt.Errorf("nvmf: target needs a reactor set and a bdev registry: %w", ErrConfig)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Firmware == "" {
		o.Firmware = FirmwareDefault
	}
	if len(o.Firmware) > 8 || !printableASCII(o.Firmware) {
		return nil, fmt.Errorf("nvmf: firmware revision %q, want at most 8 printable ASCII bytes: %w", o.Firmware, ErrConfig)
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = drainTimeoutDefault
	}
	t := &Target{set: o.Set, reg: o.Bdevs, log: o.Logger, firmware: o.Firmware,
		drain: o.DrainTimeout, transports: map[string]Transport{}, listeners: map[ListenAddress]int{}}
	t.discovery = newSubsystem(t, &SubsystemConfig{NQN: nvme.DiscoveryNQN, AllowAnyHost: true}, true)
	t.discovery.state = SubsystemActive
	t.table.Store(&map[string]*Subsystem{nvme.DiscoveryNQN: t.discovery})
	for _, r := range o.Set.All() {
		g := newPollGroup(t, r)
		if err := r.Call(g.start); err != nil {
			t.stopGroups()
			return nil, fmt.Errorf("nvmf: poll group on reactor %d: %w", r.Index(), err)
		}
		t.groups = append(t.groups, g)
	}
	return t, nil
}

// PollGroup is the target's group on r.
func (t *Target) PollGroup(r *reactors.Reactor) *PollGroup { return t.groups[r.Index()] }

// Reactors is the target's reactor set.
func (t *Target) Reactors() *reactors.Set { return t.set }

// Bdevs is the registry namespaces come from; transports take their buffers from its
// per-reactor pools.
func (t *Target) Bdevs() *bdev.Registry { return t.reg }

// Logger is the target's logger.
func (t *Target) Logger() *slog.Logger { return t.log }

// AddTransport registers tr under its name (nvmf_create_transport); a second transport of one
// name is an error, never a replacement.
func (t *Target) AddTransport(tr Transport) error {
	o := tr.Options()
	if err := o.Validate(); err != nil {
		return fmt.Errorf("nvmf: transport %s: %w", tr.Name(), err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.transports[tr.Name()]; dup {
		return fmt.Errorf("nvmf: transport %s: %w", tr.Name(), ErrExists)
	}
	t.transports[tr.Name()] = tr
	return nil
}

// Transports lists the registered transports, by name.
func (t *Target) Transports() []Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Transport, 0, len(t.transports))
	for _, tr := range t.transports {
		out = append(out, tr)
	}
	slices.SortFunc(out, func(a, b Transport) int {
		if a.Name() < b.Name() {
			return -1
		}
		return 1
	})
	return out
}

// lookup finds a subsystem by NQN without a lock (a Connect on a reactor).
func (t *Target) lookup(nqn string) *Subsystem { return (*t.table.Load())[nqn] }

// Subsystem finds a subsystem by NQN ("discovery" is a shortcut for the discovery NQN, as in
// SPDK's RPCs).
func (t *Target) Subsystem(nqn string) (*Subsystem, error) {
	if nqn == "discovery" {
		nqn = nvme.DiscoveryNQN
	}
	if s := t.lookup(nqn); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("nvmf: subsystem %q: %w", nqn, ErrNotFound)
}

// Subsystems lists every subsystem, the discovery one first, then by NQN.
func (t *Target) Subsystems() []*Subsystem {
	m := *t.table.Load()
	out := make([]*Subsystem, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Subsystem) int {
		switch {
		case a.discovery != b.discovery:
			if a.discovery {
				return -1
			}
			return 1
		case a.nqn < b.nqn:
			return -1
		}
		return 1
	})
	return out
}

// CreateSubsystem adds an NVM subsystem (nvmf_create_subsystem). NQNs are unique.
func (t *Target) CreateSubsystem(cfg SubsystemConfig) (*Subsystem, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := newSubsystem(t, &cfg, false)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("nvmf: subsystem %q: target closed", cfg.NQN)
	}
	old := *t.table.Load()
	if _, dup := old[cfg.NQN]; dup {
		return nil, fmt.Errorf("nvmf: subsystem %q: %w", cfg.NQN, ErrExists)
	}
	if len(old) > SubsystemsMax {
		return nil, fmt.Errorf("nvmf: subsystem %q: %d subsystems: %w", cfg.NQN, SubsystemsMax, ErrLimit)
	}
	s.state = SubsystemActive
	t.storeTable(old, cfg.NQN, s)
	t.discoveryChanged()
	return s, nil
}

// storeTable publishes old plus (s nil: minus) nqn. t.mu held.
func (t *Target) storeTable(old map[string]*Subsystem, nqn string, s *Subsystem) {
	m := make(map[string]*Subsystem, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if s == nil {
		delete(m, nqn)
	} else {
		m[nqn] = s
	}
	t.table.Store(&m)
}

// DeleteSubsystem tears down a subsystem's controllers, detaches its namespaces and drops its
// listeners (nvmf_delete_subsystem), within deadline.
func (t *Target) DeleteSubsystem(nqn string, deadline time.Time) error {
	s, err := t.Subsystem(nqn)
	if err != nil {
		return err
	}
	if s.discovery {
		return fmt.Errorf("nvmf: the discovery subsystem cannot be deleted: %w", ErrConfig)
	}
	var errs []error
	if err := s.teardown(deadline); err != nil {
		errs = append(errs, err)
	}
	for _, id := range s.table.Load().active {
		if err := s.removeNamespace(id, max(time.Until(deadline), time.Millisecond)); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	addrs := s.listeners
	s.listeners = nil
	s.mu.Unlock()
	t.mu.Lock()
	for _, a := range addrs {
		errs = append(errs, t.unrefListenerLocked(a))
	}
	t.storeTable(*t.table.Load(), nqn, nil)
	t.discoveryChanged()
	t.mu.Unlock()
	return errors.Join(errs...)
}

// AddListener makes the subsystem reachable at addr (nvmf_subsystem_add_listener): the
// transport listens there (once for every subsystem that uses the address). A duplicate
// listener is refused; an address that cannot be bound is an error and changes nothing.
func (t *Target) AddListener(nqn string, addr ListenAddress) error {
	s, err := t.Subsystem(nqn)
	if err != nil {
		return err
	}
	addr, err = addr.Normalize()
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tr, ok := t.transports[addr.TrType]
	if !ok {
		return fmt.Errorf("nvmf: listener %v: transport %s not created (nvmf_create_transport): %w", addr, addr.TrType, ErrNotFound)
	}
	s.mu.Lock()
	dup := slices.Contains(s.listeners, addr)
	full := len(s.listeners) >= ListenersPerSubsystemMax
	s.mu.Unlock()
	switch {
	case dup:
		return fmt.Errorf("nvmf: subsystem %q: listener %v: %w", s.nqn, addr, ErrExists)
	case full:
		return fmt.Errorf("nvmf: subsystem %q: %d listeners: %w", s.nqn, ListenersPerSubsystemMax, ErrLimit)
	}
	if t.listeners[addr] == 0 {
		if err := tr.Listen(addr); err != nil {
			return fmt.Errorf("nvmf: subsystem %q: listener %v: %w", s.nqn, addr, err)
		}
	}
	t.listeners[addr]++
	s.mu.Lock()
	s.listeners = append(s.listeners, addr)
	s.mu.Unlock()
	t.discoveryChanged()
	return nil
}

// RemoveListener drops a listener (nvmf_subsystem_remove_listener); connections made through
// it stay up, as in SPDK.
func (t *Target) RemoveListener(nqn string, addr ListenAddress) error {
	s, err := t.Subsystem(nqn)
	if err != nil {
		return err
	}
	addr, err = addr.Normalize()
	if err != nil {
		return err
	}
	s.mu.Lock()
	i := slices.Index(s.listeners, addr)
	if i >= 0 {
		s.listeners = slices.Delete(s.listeners, i, i+1)
	}
	s.mu.Unlock()
	if i < 0 {
		return fmt.Errorf("nvmf: subsystem %q: listener %v: %w", s.nqn, addr, ErrNotFound)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.discoveryChanged()
	return t.unrefListenerLocked(addr)
}

func (t *Target) unrefListenerLocked(addr ListenAddress) error {
	t.listeners[addr]--
	if t.listeners[addr] > 0 {
		return nil
	}
	delete(t.listeners, addr)
	if t.closed {
		return nil // Close stopped the transports, and their listeners with them
	}
	if tr, ok := t.transports[addr.TrType]; ok {
		return tr.StopListen(addr)
	}
	return nil
}

// AddNamespace attaches a bdev (nvmf_subsystem_add_ns) and returns its NSID; controllers of the
// subsystem get a Namespace Attribute Changed notice.
func (t *Target) AddNamespace(nqn string, cfg NamespaceConfig) (uint32, error) {
	s, err := t.Subsystem(nqn)
	if err != nil {
		return 0, err
	}
	return s.addNamespace(cfg)
}

// RemoveNamespace detaches a namespace (nvmf_subsystem_remove_ns) once its in-flight commands
// have completed.
func (t *Target) RemoveNamespace(nqn string, nsid uint32) error {
	s, err := t.Subsystem(nqn)
	if err != nil {
		return err
	}
	return s.removeNamespace(nsid, t.drain)
}

// AddHost allows a host NQN (nvmf_subsystem_add_host); allowing it twice is an error.
func (t *Target) AddHost(nqn, host string) error {
	s, err := t.Subsystem(nqn)
	if err != nil {
		return err
	}
	if err := nvme.ValidateNQN(host); err != nil {
		return fmt.Errorf("nvmf: subsystem %q: host: %w: %w", nqn, err, ErrConfig)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.discovery:
		return fmt.Errorf("nvmf: the discovery subsystem allows every host: %w", ErrConfig)
	case slices.Contains(s.hosts, host):
		return fmt.Errorf("nvmf: subsystem %q: host %q: %w", nqn, host, ErrExists)
	case len(s.hosts) >= HostsPerSubsystemMax:
		return fmt.Errorf("nvmf: subsystem %q: %d hosts: %w", nqn, HostsPerSubsystemMax, ErrLimit)
	}
	s.hosts = append(s.hosts, host)
	t.discoveryChanged()
	return nil
}

// RemoveHost revokes a host (nvmf_subsystem_remove_host): its controllers are torn down, as
// SPDK does.
func (t *Target) RemoveHost(nqn, host string) error {
	s, err := t.Subsystem(nqn)
	if err != nil {
		return err
	}
	s.mu.Lock()
	i := slices.Index(s.hosts, host)
	if i < 0 {
		s.mu.Unlock()
		return fmt.Errorf("nvmf: subsystem %q: host %q: %w", nqn, host, ErrNotFound)
	}
	s.hosts = slices.Delete(s.hosts, i, i+1)
	var drop []*Controller
	if !s.allowAny {
		for _, c := range s.ctrlrs {
			if c.hostNQN == host {
				drop = append(drop, c)
			}
		}
	}
	s.mu.Unlock()
	for _, c := range drop {
		t.post(c.owner, c.destroy)
	}
	t.discoveryChanged()
	return nil
}

// SetAllowAnyHost changes whether the allow list is enforced (nvmf_subsystem_allow_any_host).
func (t *Target) SetAllowAnyHost(nqn string, allow bool) error {
	s, err := t.Subsystem(nqn)
	if err != nil {
		return err
	}
	if s.discovery {
		return fmt.Errorf("nvmf: the discovery subsystem allows every host: %w", ErrConfig)
	}
	s.mu.Lock()
	s.allowAny = allow
	s.mu.Unlock()
	t.discoveryChanged()
	return nil
}

// DisconnectController tears a controller down on request: its host sees its queues close
// and, typically, reconnects.
func (t *Target) DisconnectController(nqn string, cntlid uint16) error {
	s, err := t.Subsystem(nqn)
	if err != nil {
		return err
	}
	return s.disconnectController(cntlid)
}

// katoFor applies the keep-alive limits to a KATO a host asked for (Connect or Set Features):
// 0 stays 0 (no keep alive) except on a discovery controller, which gets discoveryKATO;
// shorter than the minimum is raised to it; the rest is rounded up to the granularity (NVMe
// Base 2.0, "Keep Alive Timer"); longer than the maximum is refused.
func katoFor(o *TransportOptions, asked time.Duration, discovery bool) (time.Duration, bool) {
	switch {
	case asked == 0 && discovery:
		return discoveryKATO, true
	case asked == 0:
		return 0, true
	case asked > o.KeepAliveTimeoutMax:
		return 0, false
	case asked < o.KeepAliveTimeoutMin:
		return o.KeepAliveTimeoutMin, true
	}
	g := o.KeepAliveGranularity
	return (asked + g - 1) / g * g, true
}

// discoveryChanged bumps the discovery log generation and notifies discovery controllers
// (S3).
func (t *Target) discoveryChanged() {
	t.genctr.Add(1)
	d := t.discovery
	d.mu.Lock()
	ctrlrs := d.controllersLocked()
	d.mu.Unlock()
	for _, c := range ctrlrs {
		c := c
		t.post(c.owner, c.discoveryChanged)
	}
}

// discoveryLog builds the discovery log page hostnqn sees: one entry per listener of each NVM
// subsystem that allows the host (NVMe-oF 1.1, "Discovery Log Page"). It allocates: admin path.
func (t *Target) discoveryLog(hostnqn string) []byte {
	gen := t.genctr.Load()
	var entries []nvme.DiscoveryEntry
	for _, s := range t.Subsystems() {
		if s.discovery {
			continue
		}
		ok, addrs := s.hostAllowed(hostnqn)
		if !ok {
			continue
		}
		for _, a := range addrs {
			t.mu.Lock()
			tr := t.transports[a.TrType]
			t.mu.Unlock()
			if tr == nil {
				continue
			}
			entries = append(entries, nvme.DiscoveryEntry{
				TRTYPE: tr.Type(), ADRFAM: a.adrfamCode(), SUBTYPE: nvme.SubsystemNVM,
				// No secure channel requirement stated (as Linux's nvmet), and SQ flow
				// control may be disabled: the host may then take reads completed by
				// their C2HData alone. nvme-cli prints this as "not specified, sq flow
				// control disable supported".
				TREQ:   nvme.TREQSecureNotSpecified | nvme.TREQDisableSQFlow,
				PORTID: portID(a), CNTLID: nvme.CNTLIDDynamic, ASQSZ: tr.Options().MaxAdminQueueDepth,
				TRSVCID: a.TrSvcID, TRADDR: a.TrAddr, SUBNQN: s.nqn,
			})
		}
	}
	page := make([]byte, nvme.DiscoveryLogSize(len(entries)))
	if _, err := nvme.BuildDiscoveryLog(page, gen, entries); err != nil {
		// Every field was validated when its subsystem and listener were added.
		panic(fmt.Sprintf("nvmf: discovery log: %v", err))
	}
	return page
}

// portID is a listener's PORTID: its port number, stable across restarts and distinct for
// each address a host is likely to compare.
func portID(a ListenAddress) uint16 {
	var p uint16
	fmt.Sscan(a.TrSvcID, &p)
	return p
}

// drainNamespace waits until no reactor has a command holding ns, then closes its bdev
// descriptor (N2). On timeout the descriptor is closed later, when the drain finishes.
func (t *Target) drainNamespace(ns *Namespace, timeout time.Duration) error {
	done := make(chan int, t.set.Len())
	for _, r := range t.set.All() {
		r := r
		t.post(r, func() {
			slot := &ns.slots[r.Index()]
			if slot.outstanding == 0 {
				done <- r.Index()
				return
			}
			var h *reactors.PollerHandle
			h = r.AddTimer("nvmf-ns-drain", drainPollPeriod, reactors.PollFunc(func() int {
				if slot.outstanding != 0 {
					return 0
				}
				r.RemovePoller(h)
				done <- r.Index()
				return 1
			}), nil)
		})
	}
	closeDesc := func() { ns.desc.Close() }
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for n := 0; n < t.set.Len(); n++ {
		select {
		case <-done:
		case <-timer.C:
			left := t.set.Len() - n
			go func() { // control plane: finish the drain in the background
				for ; left > 0; left-- {
					<-done
				}
				closeDesc()
			}()
			return fmt.Errorf("nvmf: namespace %d (bdev %s): %d reactors still have commands: %w",
				ns.nsid, ns.bdev.Name(), left, ErrDrainTimeout)
		}
	}
	closeDesc()
	return nil
}

// Close stops the transports (every connection drains and closes), deletes every subsystem
// (controllers, namespaces), and stops the poll groups, within deadline.
func (t *Target) Close(deadline time.Time) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	trs := make([]Transport, 0, len(t.transports))
	for _, tr := range t.transports {
		trs = append(trs, tr)
	}
	t.mu.Unlock()
	var errs []error
	for _, tr := range trs {
		if err := tr.Close(deadline); err != nil {
			errs = append(errs, fmt.Errorf("transport %s: %w", tr.Name(), err))
		}
	}
	for _, s := range t.Subsystems() {
		if s.discovery {
			errs = append(errs, s.teardown(deadline))
			continue
		}
		errs = append(errs, t.DeleteSubsystem(s.nqn, deadline))
	}
	t.stopGroups()
	return errors.Join(errs...)
}

func (t *Target) stopGroups() {
	for _, g := range t.groups {
		g := g
		_ = g.owner.Call(g.stop)
	}
}

// Stats is nvmf_get_stats: the poll groups in SPDK's shape.
type Stats struct {
	TickRate   uint64           `json:"tick_rate"`
	PollGroups []PollGroupStats `json:"poll_groups"`
}

// Stats reads every poll group's counters. Any goroutine.
func (t *Target) Stats() Stats {
	st := Stats{TickRate: uint64(time.Second), PollGroups: []PollGroupStats{}}
	for _, g := range t.groups {
		st.PollGroups = append(st.PollGroups, g.Stats())
	}
	return st
}
