package nvmf

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/reactors"
)

// SubsystemState is where a subsystem is in its life (SPDK's spdk_nvmf_subsystem_state,
// without the pause states: namespaces change under a drain instead, N2).
type SubsystemState uint8

const (
	// SubsystemInactive: made, not yet in the target's table.
	SubsystemInactive SubsystemState = iota
	// SubsystemActive: in the table; takes Connects.
	SubsystemActive
	// SubsystemDeactivating: being deleted; refuses Connects while its controllers go.
	SubsystemDeactivating
)

var subsystemStateNames = [...]string{"inactive", "active", "deactivating"}

func (s SubsystemState) String() string {
	if int(s) < len(subsystemStateNames) {
		return subsystemStateNames[s]
	}
	return fmt.Sprintf("SubsystemState(%d)", uint8(s))
}

// Subsystem is one NVM subsystem (or the discovery subsystem): its identity, allowed hosts,
// listeners, namespaces and controllers. The control plane changes it; reactors read the
// namespace table without a lock (an atomic pointer to an immutable table) and take the lock
// only to connect, to tear a controller down, and for statistics (S1..S3 in doc.go).
type Subsystem struct {
	target    *Target // set at creation, never changed
	nqn       string  //
	serial    string  //
	model     string  //
	discovery bool    //
	maxNS     uint32  //
	cntlidMin uint16  //
	cntlidMax uint16  //

	// The published namespace table: replaced whole under mu, read anywhere (S1).
	table atomic.Pointer[nsTable]

	// lock: identity-free bookkeeping: state, hosts, listeners, controllers, the qpairs and
	// counters of statistics. Taken by the control plane and, briefly, by a reactor
	// connecting or tearing down a queue; never on the I/O path and never across a wait.
	mu          sync.Mutex
	state       SubsystemState
	allowAny    bool
	hosts       []string
	listeners   []ListenAddress
	ctrlrs      map[uint16]*Controller
	nextCNTLID  uint16
	qpairs      map[*Qpair]struct{}
	retired     IOStats       // closed qpairs' counters
	ctrlrsGone  chan struct{} // closed when deactivating and the last controller is freed
	katoExpired counter
}

// nsTable is an immutable view of a subsystem's namespaces.
type nsTable struct {
	byID   []*Namespace // index NSID-1; len maxNS
	active []uint32     // attached NSIDs, increasing
}

func newSubsystem(t *Target, cfg *SubsystemConfig, discovery bool) *Subsystem {
	lo, hi := cfg.cntlidRange()
	s := &Subsystem{target: t, nqn: cfg.NQN, serial: cfg.SerialNumber, model: cfg.ModelNumber,
		discovery: discovery, maxNS: cfg.MaxNamespaces, cntlidMin: lo, cntlidMax: hi,
		allowAny: cfg.AllowAnyHost, hosts: slices.Clone(cfg.Hosts), ctrlrs: map[uint16]*Controller{},
		nextCNTLID: lo, qpairs: map[*Qpair]struct{}{}}
	if s.maxNS == 0 {
		s.maxNS = NamespacesMax
	}
	if discovery {
		s.maxNS = 0
	}
	if s.serial == "" {
		s.serial = defaultSerial(cfg.NQN)
	}
	if s.model == "" {
		s.model = ModelNumberDefault
	}
	s.table.Store(&nsTable{byID: make([]*Namespace, s.maxNS)})
	return s
}

// defaultSerial is a stable serial number for a subsystem that names none: hex of the NQN's
// name-based UUID, so it stays the same across restarts (hosts key on it).
func defaultSerial(nqn string) string {
	u := uuid.NewSHA1(uuid.NameSpaceURL, []byte(nqn))
	return hex.EncodeToString(u[:SerialNumberLenMax/2])
}

// NQN is the subsystem's NQN.
func (s *Subsystem) NQN() string { return s.nqn }

// namespace is the attached namespace nsid, or nil. Any reactor; no lock (S1).
func (s *Subsystem) namespace(nsid uint32) *Namespace {
	t := s.table.Load()
	if nsid == 0 || nsid > uint32(len(t.byID)) {
		return nil
	}
	return t.byID[nsid-1]
}

// activeNSList fills l with the attached NSIDs greater than after (Identify CNS 02h).
func (s *Subsystem) activeNSList(l *nvme.NSList, after uint32) {
	t := s.table.Load()
	i, _ := slices.BinarySearch(t.active, after+1)
	ids := t.active[i:]
	ids = ids[:min(len(ids), nvme.NSListCountMax)]
	_ = l.Set(ids) // increasing, non-zero, below NSIDAll by construction
}

// admits reports whether hostnqn may connect through listen: the subsystem is active, has
// that listener (the discovery subsystem answers on every listener of the target), and
// allows the host.
func (s *Subsystem) admits(listen ListenAddress, hostnqn string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != SubsystemActive {
		return false
	}
	if !s.discovery && !slices.Contains(s.listeners, listen) {
		return false
	}
	return s.allowAny || s.discovery || slices.Contains(s.hosts, hostnqn)
}

// hostAllowed reports whether the discovery log shows this subsystem to hostnqn.
func (s *Subsystem) hostAllowed(hostnqn string) (bool, []ListenAddress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != SubsystemActive || !(s.allowAny || slices.Contains(s.hosts, hostnqn)) {
		return false, nil
	}
	return true, slices.Clone(s.listeners)
}

// controller is controller cntlid, or nil.
func (s *Subsystem) controller(cntlid uint16) *Controller {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctrlrs[cntlid]
}

// newController makes a controller for admin qpair q with the next free CNTLID of the
// subsystem's range, or returns nil when every one is in use. It runs on q's reactor.
func (s *Subsystem) newController(q *Qpair, hostnqn string, hostID [16]byte, kato time.Duration) *Controller {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != SubsystemActive {
		return nil
	}
	span := int(s.cntlidMax-s.cntlidMin) + 1
	for i := 0; i < span; i++ {
		id := s.nextCNTLID
		if s.nextCNTLID == s.cntlidMax {
			s.nextCNTLID = s.cntlidMin
		} else {
			s.nextCNTLID++
		}
		if _, used := s.ctrlrs[id]; used {
			continue
		}
		opts := q.topts
		c := &Controller{owner: q.owner, target: s.target, subsys: s, cntlid: id, hostNQN: hostnqn,
			hostID: hostID, discovery: s.discovery, trtype: q.trtype, opts: opts, created: time.Now(), admin: q,
			kato: kato, queuesAlloc: opts.MaxIOQpairsPerCtrlr, vwc: true,
			ioQpairs: make([]*Qpair, int(opts.MaxIOQpairsPerCtrlr)+1)}
		if s.discovery {
			c.ioQpairs = nil
			c.queuesAlloc = 0
		}
		s.ctrlrs[id] = c
		return c
	}
	return nil
}

// freeController releases c's CNTLID once it is torn down and every queue has closed.
func (s *Subsystem) freeController(c *Controller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctrlrs[c.cntlid] != c {
		return // freed already
	}
	delete(s.ctrlrs, c.cntlid)
	if len(s.ctrlrs) == 0 && s.ctrlrsGone != nil {
		close(s.ctrlrsGone)
		s.ctrlrsGone = nil
	}
}

// addQpair registers a connected qpair for statistics and RPCs.
func (s *Subsystem) addQpair(q *Qpair) {
	s.mu.Lock()
	s.qpairs[q] = struct{}{}
	s.mu.Unlock()
}

// removeQpair retires a closed qpair: its counters move to the subsystem's and its
// controller's totals.
func (s *Subsystem) removeQpair(q *Qpair) {
	st := q.stats.snapshot()
	s.mu.Lock()
	delete(s.qpairs, q)
	s.retired.Add(st)
	q.ctrlr.retired.Add(st)
	s.mu.Unlock()
}

// controllerStats sums c's qpairs, live and retired.
func (s *Subsystem) controllerStats(c *Controller) IOStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := c.retired
	for q := range s.qpairs {
		if q.ctrlr == c {
			st.Add(q.stats.snapshot())
		}
	}
	return st
}

// Errors of the subsystem methods; each returned error wraps one and names the subsystem.
var (
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrLimit        = errors.New("limit reached")
	ErrDeactivating = errors.New("subsystem is being deleted")
	ErrDrainTimeout = errors.New("in-flight commands did not finish in time")
)

// addNamespace attaches a bdev (control plane). The bdev is opened for writing but not
// claimed (SPDK claims it): the default topology serves one bdev over NVMe/TCP and iSCSI at
// once, as two paths to one disk. A bdev a stage has claimed cannot be opened for writing,
// so it is never exported under the stage.
func (s *Subsystem) addNamespace(cfg NamespaceConfig) (uint32, error) {
	if s.discovery {
		return 0, fmt.Errorf("subsystem %q: the discovery subsystem has no namespaces: %w", s.nqn, ErrConfig)
	}
	d, err := s.target.reg.Open(cfg.Bdev, true)
	if err != nil {
		return 0, fmt.Errorf("subsystem %q: namespace: %w", s.nqn, err)
	}
	s.mu.Lock()
	nsid, err := s.pickNSID(cfg)
	if err != nil {
		s.mu.Unlock()
		d.Close()
		return 0, err
	}
	ns := newNamespace(nsid, d, &cfg, s.target.set.Len())
	old := s.table.Load()
	for _, o := range old.byID {
		if o != nil && o.uuid == ns.uuid {
			s.mu.Unlock()
			d.Close()
			return 0, fmt.Errorf("subsystem %q: namespace UUID %s already used by NSID %d: %w", s.nqn, ns.uuid, o.nsid, ErrExists)
		}
	}
	s.publish(old, nsid, ns)
	ctrlrs := s.controllersLocked()
	s.mu.Unlock()
	// SPDK's hot remove: deleting the bdev (bdev_malloc_delete, a remote
	// controller gone for good) removes the namespace, with the notice to
	// hosts, and Delete waits for the drain to close d.
	d.OnRemove(func() {
		err := s.removeNamespaceOf(nsid, ns, s.target.drain)
		switch {
		case errors.Is(err, ErrNotFound): // removed meanwhile by RPC: d is closed
		case err != nil:
			s.target.log.Warn("nvmf: bdev deleted: namespace drain", "nqn", s.nqn, "nsid", nsid, "err", err)
		default:
			s.target.log.Info("nvmf: bdev deleted: namespace removed", "nqn", s.nqn, "nsid", nsid, "bdev", cfg.Bdev)
		}
	})
	s.notifyNSChanged(ctrlrs, nsid)
	return nsid, nil
}

// pickNSID is cfg.NSID if it is free and in range, or the lowest free NSID. Lock held.
func (s *Subsystem) pickNSID(cfg NamespaceConfig) (uint32, error) {
	t := s.table.Load()
	if s.state != SubsystemActive && s.state != SubsystemInactive {
		return 0, fmt.Errorf("subsystem %q: %w", s.nqn, ErrDeactivating)
	}
	if cfg.NSID != 0 {
		if cfg.NSID > s.maxNS {
			return 0, fmt.Errorf("subsystem %q: nsid %d, want 1..%d (max_namespaces): %w", s.nqn, cfg.NSID, s.maxNS, ErrConfig)
		}
		if t.byID[cfg.NSID-1] != nil {
			return 0, fmt.Errorf("subsystem %q: nsid %d: %w", s.nqn, cfg.NSID, ErrExists)
		}
		return cfg.NSID, nil
	}
	for i, ns := range t.byID {
		if ns == nil {
			return uint32(i + 1), nil
		}
	}
	return 0, fmt.Errorf("subsystem %q: all %d namespaces in use: %w", s.nqn, s.maxNS, ErrLimit)
}

// publish replaces the table with old plus (or, ns nil, minus) nsid. Lock held.
func (s *Subsystem) publish(old *nsTable, nsid uint32, ns *Namespace) {
	t := &nsTable{byID: slices.Clone(old.byID)}
	t.byID[nsid-1] = ns
	for i, n := range t.byID {
		if n != nil {
			t.active = append(t.active, uint32(i+1))
		}
	}
	s.table.Store(t)
}

func (s *Subsystem) controllersLocked() []*Controller {
	out := make([]*Controller, 0, len(s.ctrlrs))
	for _, c := range s.ctrlrs {
		out = append(out, c)
	}
	return out
}

// notifyNSChanged tells each controller on its reactor that nsid changed (the AER).
func (s *Subsystem) notifyNSChanged(ctrlrs []*Controller, nsid uint32) {
	for _, c := range ctrlrs {
		c := c
		s.target.post(c.owner, func() { c.nsChanged(nsid) })
	}
}

// removeNamespace detaches nsid (control plane): it leaves the table at once (new commands
// get Invalid Namespace), controllers get the notice, and the bdev is closed once every
// reactor's commands holding it have completed (N2), or the error says they did not in time
// (the bdev is then closed when they do).
func (s *Subsystem) removeNamespace(nsid uint32, timeout time.Duration) error {
	return s.removeNamespaceOf(nsid, nil, timeout)
}

// removeNamespaceOf is removeNamespace of nsid only while it is want (nil:
// whatever it is), so a late hot-remove notice never takes out a namespace
// that reused the NSID.
func (s *Subsystem) removeNamespaceOf(nsid uint32, want *Namespace, timeout time.Duration) error {
	s.mu.Lock()
	ns := s.namespace(nsid)
	if ns == nil || (want != nil && ns != want) {
		s.mu.Unlock()
		return fmt.Errorf("subsystem %q: nsid %d: %w", s.nqn, nsid, ErrNotFound)
	}
	ns.removed.Store(true)
	s.publish(s.table.Load(), nsid, nil)
	ctrlrs := s.controllersLocked()
	s.mu.Unlock()
	s.notifyNSChanged(ctrlrs, nsid)
	return s.target.drainNamespace(ns, timeout)
}

// SubsystemInfo is one subsystem for nvmf_get_subsystems (SPDK's shape).
type SubsystemInfo struct {
	NQN             string          `json:"nqn"`
	Subtype         string          `json:"subtype"`
	State           string          `json:"state"`
	ListenAddresses []ListenAddress `json:"listen_addresses"`
	AllowAnyHost    bool            `json:"allow_any_host"`
	Hosts           []HostInfo      `json:"hosts"`
	SerialNumber    string          `json:"serial_number,omitempty"`
	ModelNumber     string          `json:"model_number,omitempty"`
	MaxNamespaces   uint32          `json:"max_namespaces,omitempty"`
	MinCNTLID       uint16          `json:"min_cntlid,omitempty"`
	MaxCNTLID       uint16          `json:"max_cntlid,omitempty"`
	Namespaces      []NamespaceInfo `json:"namespaces,omitempty"`
	Stats           *IOStats        `json:"stats,omitempty"`
}

// HostInfo is one allowed host.
type HostInfo struct {
	NQN string `json:"nqn"`
}

// Info describes the subsystem. Control plane.
func (s *Subsystem) Info() SubsystemInfo {
	s.mu.Lock()
	info := SubsystemInfo{NQN: s.nqn, Subtype: "NVMe", State: s.state.String(),
		ListenAddresses: slices.Clone(s.listeners), AllowAnyHost: s.allowAny, Hosts: []HostInfo{}}
	for _, h := range s.hosts {
		info.Hosts = append(info.Hosts, HostInfo{h})
	}
	st := s.retired
	for q := range s.qpairs {
		st.Add(q.stats.snapshot())
	}
	s.mu.Unlock()
	if info.ListenAddresses == nil {
		info.ListenAddresses = []ListenAddress{}
	}
	if s.discovery {
		info.Subtype = "Discovery"
		info.AllowAnyHost = true
		return info
	}
	info.SerialNumber, info.ModelNumber, info.MaxNamespaces = s.serial, s.model, s.maxNS
	info.MinCNTLID, info.MaxCNTLID = s.cntlidMin, s.cntlidMax
	info.Namespaces = []NamespaceInfo{}
	for _, ns := range s.table.Load().byID {
		if ns == nil {
			continue
		}
		ni := NamespaceInfo{NSID: ns.nsid, BdevName: ns.bdev.Name(), Name: ns.bdev.Name(), UUID: ns.uuid.String()}
		if ns.nguid != [16]byte{} {
			ni.NGUID = fmt.Sprintf("%X", ns.nguid[:])
		}
		if ns.eui64 != [8]byte{} {
			ni.EUI64 = fmt.Sprintf("%X", ns.eui64[:])
		}
		info.Namespaces = append(info.Namespaces, ni)
	}
	info.Stats = &st
	return info
}

// Controllers lists the subsystem's controllers (nvmf_subsystem_get_controllers).
func (s *Subsystem) Controllers() []ControllerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []ControllerInfo{}
	for _, c := range s.ctrlrs {
		st := c.retired
		for q := range s.qpairs {
			if q.ctrlr == c {
				st.Add(q.stats.snapshot())
			}
		}
		typ := "io"
		if c.discovery {
			typ = "discovery"
		}
		out = append(out, ControllerInfo{CNTLID: c.cntlid, CntrlType: typ, HostNQN: c.hostNQN,
			HostID: uuid.UUID(c.hostID).String(), NumIOQpairs: int(c.ioCountView.Load()),
			Reactor: c.owner.Index(), KATOms: c.katoView.Load(), Stats: st})
	}
	slices.SortFunc(out, func(a, b ControllerInfo) int { return int(a.CNTLID) - int(b.CNTLID) })
	return out
}

// Qpairs lists the subsystem's connected qpairs (nvmf_subsystem_get_qpairs).
func (s *Subsystem) Qpairs() []QpairInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []QpairInfo{}
	for q := range s.qpairs {
		out = append(out, QpairInfo{CNTLID: q.cntlid, QID: q.qid, State: qpairState(q.stateView.Load()).String(),
			ListenAddress: q.listen, PeerAddress: q.peer, HostNQN: q.ctrlr.hostNQN, Reactor: q.owner.Index(),
			Depth: q.depth, Stats: q.stats.snapshot()})
	}
	slices.SortFunc(out, func(a, b QpairInfo) int {
		if a.CNTLID != b.CNTLID {
			return int(a.CNTLID) - int(b.CNTLID)
		}
		return int(a.QID) - int(b.QID)
	})
	return out
}

// disconnectController tears controller cntlid down (an RPC drops it).
func (s *Subsystem) disconnectController(cntlid uint16) error {
	c := s.controller(cntlid)
	if c == nil {
		return fmt.Errorf("subsystem %q: controller %d: %w", s.nqn, cntlid, ErrNotFound)
	}
	s.target.post(c.owner, c.destroy)
	return nil
}

// teardown makes the subsystem refuse connects, tears every controller down and waits for
// them (control plane).
func (s *Subsystem) teardown(deadline time.Time) error {
	s.mu.Lock()
	s.state = SubsystemDeactivating
	ctrlrs := s.controllersLocked()
	var gone chan struct{}
	if len(ctrlrs) > 0 {
		gone = make(chan struct{})
		s.ctrlrsGone = gone
	}
	s.mu.Unlock()
	for _, c := range ctrlrs {
		s.target.post(c.owner, c.destroy)
	}
	if gone == nil {
		return nil
	}
	select {
	case <-gone:
		return nil
	case <-time.After(time.Until(deadline)):
		s.mu.Lock()
		n := len(s.ctrlrs)
		s.mu.Unlock()
		return fmt.Errorf("subsystem %q: %d controllers still closing: %w", s.nqn, n, ErrDrainTimeout)
	}
}

// post runs fn on r (control messages between reactors); a stopped reactor drops it, which
// happens only at shutdown after the target stopped.
func (t *Target) post(r *reactors.Reactor, fn func()) {
	if err := r.PostFunc(fn); err != nil {
		t.log.Error("nvmf: control message dropped", "reactor", r.Index(), "err", err)
	}
}
