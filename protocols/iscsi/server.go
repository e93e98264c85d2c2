package iscsi

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/protocols/iscsi/login"
	"github.com/sluice-storage/sluice/protocols/scsi"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Options are the server-wide settings.
type Options struct {
	// NodeBase prefixes a node name that is not a full iSCSI name (SPDK's
	// node_base): "disk1" becomes NodeBase + ":disk1".
	NodeBase string
	// Discovery is the CHAP policy of discovery sessions.
	Discovery CHAP
	// NopInInterval and NopTimeout: see NopInIntervalDefault.
	NopInInterval, NopTimeout time.Duration
	// Rand supplies CHAP challenges; crypto/rand when nil.
	Rand io.Reader
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
}

// NodeBaseDefault is SPDK's default node base.
const NodeBaseDefault = "iqn.2016-06.io.spdk"

// Server is the iSCSI target of one process. Control plane: its exported
// methods run on goroutines that are not reactors.
type Server struct {
	set  *reactors.Set
	reg  *bdev.Registry
	log  *slog.Logger
	opts Options

	// lock: the tables below and closed; taken by control-plane calls and
	// by connection setup and teardown (a few per connection), never per
	// PDU or per I/O.
	mu          sync.Mutex
	pgs         map[uint16]*PortalGroup
	igs         map[uint16]*InitiatorGroup
	ags         map[uint16]*AuthGroup
	nodes       map[string]*Node // key: lower-case name
	portals     map[uint16][]*portal
	conns       map[uint64]*Conn
	drained     chan struct{} // closed when conns empties after Close began
	nextReactor int
	closed      bool

	// snap is what reactors read: rebuilt under mu after every change.
	snap atomic.Pointer[snapshot]

	tsih   atomic.Uint32
	connID atomic.Uint64
	// panics counts connection pollers that panicked (each ended its
	// connection, never the reactor): the debug view shows it, tests want 0.
	panics atomic.Uint64
}

// snapshot is an immutable view of the tables for the reactors (login,
// access, SendTargets).
type snapshot struct {
	pgs     map[uint16]*PortalGroup
	igs     map[uint16]*InitiatorGroup
	nodes   map[string]*Node
	order   []*Node
	targets map[string]*login.Target
	configs map[uint16]*login.Config // per portal group
}

// New makes a server on set whose LUNs are reg's bdevs.
func New(set *reactors.Set, reg *bdev.Registry, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.NodeBase == "" {
		opts.NodeBase = NodeBaseDefault
	}
	if opts.NopInInterval == 0 {
		opts.NopInInterval = NopInIntervalDefault
	}
	if opts.NopTimeout == 0 {
		opts.NopTimeout = NopTimeoutDefault
	}
	s := &Server{set: set, reg: reg, log: opts.Logger, opts: opts,
		pgs: map[uint16]*PortalGroup{}, igs: map[uint16]*InitiatorGroup{}, ags: map[uint16]*AuthGroup{},
		nodes: map[string]*Node{}, portals: map[uint16][]*portal{}, conns: map[uint64]*Conn{}}
	s.mu.Lock()
	s.publish()
	s.mu.Unlock()
	return s
}

// nextOwner picks the next reactor in turn for a portal or a node.
func (s *Server) nextOwner() *reactors.Reactor {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.set.Get(s.nextReactor % s.set.Len())
	s.nextReactor++
	return r
}

// FullName is name with the node base applied when it is not a full iSCSI
// name already.
func (s *Server) FullName(name string) string {
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "iqn.") || strings.HasPrefix(lower, "eui.") || strings.HasPrefix(lower, "naa.") {
		return name
	}
	return s.opts.NodeBase + ":" + name
}

// publish rebuilds the snapshot. Caller holds mu.
func (s *Server) publish() {
	snap := &snapshot{
		pgs: maps(s.pgs), igs: maps(s.igs), nodes: map[string]*Node{},
		targets: map[string]*login.Target{}, configs: map[uint16]*login.Config{},
	}
	for k, n := range s.nodes {
		snap.nodes[k] = n
		snap.order = append(snap.order, n)
		snap.targets[k] = &login.Target{Name: n.cfg.Name, Alias: n.cfg.Alias,
			Auth: n.cfg.CHAP.auth(s.authGroup(n.cfg.CHAP.Group))}
	}
	sort.Slice(snap.order, func(i, j int) bool { return snap.order[i].cfg.Name < snap.order[j].cfg.Name })
	disc := s.opts.Discovery.auth(s.authGroup(s.opts.Discovery.Group))
	for tag := range s.pgs {
		snap.configs[tag] = &login.Config{
			Limits:         loginLimits(),
			PortalGroupTag: tag,
			DiscoveryAuth:  disc,
			CHAPAlgorithms: []login.CHAPAlgorithm{login.CHAPSHA256, login.CHAPSHA1, login.CHAPMD5},
			Rand:           s.opts.Rand,
		}
	}
	s.snap.Store(snap)
}

func maps[K comparable, V any](m map[K]*V) map[K]*V {
	out := make(map[K]*V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// authGroup is the group with tag, or the lowest-tagged one for tag 0
// (SPDK: chap_group 0 means the default), or nil. Caller holds mu.
func (s *Server) authGroup(tag uint16) *AuthGroup {
	if ag, ok := s.ags[tag]; ok {
		return ag
	}
	if tag != 0 {
		return nil
	}
	var best *AuthGroup
	for _, ag := range s.ags {
		if best == nil || ag.Tag < best.Tag {
			best = ag
		}
	}
	return best
}

// loginLimits are our side of the operational keys (RFC 7143 §13).
func loginLimits() login.Limits {
	l := login.DefaultLimits()
	l.MaxRecvDataSegmentLength = recvDataSegmentMax
	l.MaxBurstLength = burstMax
	l.FirstBurstLength = firstBurstMax
	l.MaxOutstandingR2T = 1
	l.MaxConnections = 1
	l.InitialR2T = false
	l.ImmediateData = true
	l.DefaultTime2Wait = 0
	l.DefaultTime2Retain = 0
	return l
}

// AddPortalGroup makes pg and starts listening on its portals. The lock is
// not held while a reactor opens a portal: a reactor registering a new
// connection takes it.
func (s *Server) AddPortalGroup(pg PortalGroup) error {
	if err := pg.validate(); err != nil {
		return err
	}
	pg.Portals = slices.Clone(pg.Portals)
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case len(s.pgs) >= GroupsMax:
		s.mu.Unlock()
		return invalid("portal groups", len(s.pgs), fmt.Sprintf("at most %d", GroupsMax))
	}
	if _, dup := s.pgs[pg.Tag]; dup || s.portals[pg.Tag] != nil {
		s.mu.Unlock()
		return fmt.Errorf("portal group %d: %w", pg.Tag, ErrExists)
	}
	s.portals[pg.Tag] = []*portal{} // reserved while its portals open
	s.mu.Unlock()
	var started []*portal
	var err error
	for i := range pg.Portals {
		var p *portal
		if p, err = s.listen(&pg, i); err != nil {
			err = fmt.Errorf("portal group %d: %w", pg.Tag, err)
			break
		}
		started = append(started, p)
	}
	s.mu.Lock()
	if err != nil || s.closed {
		delete(s.portals, pg.Tag)
		s.mu.Unlock()
		for _, q := range started {
			q.stop()
		}
		if err == nil {
			err = ErrClosed
		}
		return err
	}
	s.pgs[pg.Tag] = &pg
	s.portals[pg.Tag] = started
	s.publish()
	s.mu.Unlock()
	return nil
}

// DeletePortalGroup stops listening on pg's portals. Connections made
// through it stay. A group a node maps is in use.
func (s *Server) DeletePortalGroup(tag uint16) error {
	s.mu.Lock()
	if _, ok := s.pgs[tag]; !ok {
		s.mu.Unlock()
		return fmt.Errorf("portal group %d: %w", tag, ErrNotFound)
	}
	for _, n := range s.nodes {
		for _, m := range n.cfg.Maps {
			if m.PortalGroup == tag {
				s.mu.Unlock()
				return fmt.Errorf("portal group %d: mapped by target node %q: %w", tag, n.cfg.Name, ErrInUse)
			}
		}
	}
	ps := s.portals[tag]
	delete(s.portals, tag)
	delete(s.pgs, tag)
	s.publish()
	s.mu.Unlock()
	for _, p := range ps {
		p.stop()
	}
	return nil
}

// PortalGroups lists the groups with the addresses actually bound (a port
// 0 shows the port the system picked).
func (s *Server) PortalGroups() []PortalGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PortalGroup
	for tag, pg := range s.pgs {
		g := *pg
		g.Portals = nil
		for _, p := range s.portals[tag] {
			g.Portals = append(g.Portals, p.addr)
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out
}

// AddInitiatorGroup makes ig.
func (s *Server) AddInitiatorGroup(ig InitiatorGroup) error {
	if err := ig.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.igs[ig.Tag]; dup {
		return fmt.Errorf("initiator group %d: %w", ig.Tag, ErrExists)
	}
	ig.Initiators, ig.Netmasks = slices.Clone(ig.Initiators), slices.Clone(ig.Netmasks)
	s.igs[ig.Tag] = &ig
	s.publish()
	return nil
}

// DeleteInitiatorGroup removes a group no node maps.
func (s *Server) DeleteInitiatorGroup(tag uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.igs[tag]; !ok {
		return fmt.Errorf("initiator group %d: %w", tag, ErrNotFound)
	}
	for _, n := range s.nodes {
		for _, m := range n.cfg.Maps {
			if m.InitiatorGroup == tag {
				return fmt.Errorf("initiator group %d: mapped by target node %q: %w", tag, n.cfg.Name, ErrInUse)
			}
		}
	}
	delete(s.igs, tag)
	s.publish()
	return nil
}

// InitiatorGroups lists the groups by tag.
func (s *Server) InitiatorGroups() []InitiatorGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []InitiatorGroup
	for _, ig := range s.igs {
		out = append(out, *ig)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out
}

// AddAuthGroup makes ag.
func (s *Server) AddAuthGroup(ag AuthGroup) error {
	if err := ag.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.ags[ag.Tag]; dup {
		return fmt.Errorf("auth group %d: %w", ag.Tag, ErrExists)
	}
	ag.Secrets = slices.Clone(ag.Secrets)
	s.ags[ag.Tag] = &ag
	s.publish()
	return nil
}

// DeleteAuthGroup removes a group no node or discovery uses.
func (s *Server) DeleteAuthGroup(tag uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ags[tag]; !ok {
		return fmt.Errorf("auth group %d: %w", tag, ErrNotFound)
	}
	for _, n := range s.nodes {
		if n.cfg.CHAP.Group == tag {
			return fmt.Errorf("auth group %d: used by target node %q: %w", tag, n.cfg.Name, ErrInUse)
		}
	}
	delete(s.ags, tag)
	s.publish()
	return nil
}

// AuthGroups lists the groups by tag.
func (s *Server) AuthGroups() []AuthGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AuthGroup
	for _, ag := range s.ags {
		out = append(out, *ag)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out
}

// SetDiscoveryAuth sets the CHAP policy of discovery sessions.
func (s *Server) SetDiscoveryAuth(c CHAP) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Disable && (c.Require || c.Mutual) {
		return invalid("discovery auth", "disabled and required", "one of them")
	}
	if c.Group != 0 {
		if _, ok := s.ags[c.Group]; !ok {
			return fmt.Errorf("discovery auth: auth group %d: %w", c.Group, ErrNotFound)
		}
	}
	if (c.Require || c.Mutual) && s.authGroup(c.Group) == nil {
		return invalid("discovery auth", "CHAP required", "an auth group with secrets")
	}
	s.opts.Discovery = c
	s.publish()
	return nil
}

// DiscoveryAuth is the discovery sessions' CHAP policy.
func (s *Server) DiscoveryAuth() CHAP {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.Discovery
}

// AddNode makes a target node: it checks the groups it names, opens its
// bdevs and makes its SCSI device on the next reactor in turn.
func (s *Server) AddNode(cfg NodeConfig) error {
	cfg.Name = s.FullName(cfg.Name)
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.QueueDepth == 0 {
		cfg.QueueDepth = QueueDepthDefault
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = SessionsMaxDefault
	}
	cfg.LUNs, cfg.Maps = slices.Clone(cfg.LUNs), slices.Clone(cfg.Maps)
	key := strings.ToLower(cfg.Name)
	s.mu.Lock()
	if err := s.checkNodeRefs(&cfg, key); err != nil {
		s.mu.Unlock()
		return err
	}
	owner := s.set.Get(s.nextReactor % s.set.Len())
	s.nextReactor++
	n := &Node{srv: s, cfg: cfg, owner: owner}
	s.nodes[key] = n // reserved: a concurrent AddNode of the name fails
	s.mu.Unlock()
	err := n.open(s.reg)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.nodes, key)
		return err
	}
	n.ready = true
	n.watchRemovals()
	s.publish()
	return nil
}

// checkNodeRefs reports every problem with what cfg names. Caller holds mu.
func (s *Server) checkNodeRefs(cfg *NodeConfig, key string) error {
	var errs []error
	if s.closed {
		return ErrClosed
	}
	if _, dup := s.nodes[key]; dup {
		errs = append(errs, fmt.Errorf("target node %q: %w", cfg.Name, ErrExists))
	}
	if len(s.nodes) >= NodesMax {
		errs = append(errs, invalid("target nodes", len(s.nodes), fmt.Sprintf("at most %d", NodesMax)))
	}
	for i, m := range cfg.Maps {
		if _, ok := s.pgs[m.PortalGroup]; !ok {
			errs = append(errs, fmt.Errorf("target node %q: pg_ig_maps[%d]: portal group %d: %w", cfg.Name, i, m.PortalGroup, ErrNotFound))
		}
		if _, ok := s.igs[m.InitiatorGroup]; !ok {
			errs = append(errs, fmt.Errorf("target node %q: pg_ig_maps[%d]: initiator group %d: %w", cfg.Name, i, m.InitiatorGroup, ErrNotFound))
		}
	}
	if cfg.CHAP.Group != 0 {
		if _, ok := s.ags[cfg.CHAP.Group]; !ok {
			errs = append(errs, fmt.Errorf("target node %q: chap_group %d: %w", cfg.Name, cfg.CHAP.Group, ErrNotFound))
		}
	}
	if (cfg.CHAP.Require || cfg.CHAP.Mutual) && s.authGroup(cfg.CHAP.Group) == nil {
		errs = append(errs, invalid(fmt.Sprintf("target node %q: chap", cfg.Name), "required", "an auth group with secrets"))
	}
	if g := s.authGroup(cfg.CHAP.Group); cfg.CHAP.Mutual && g != nil && !slices.ContainsFunc(g.Secrets, func(c CHAPSecret) bool { return c.MutualUser != "" }) {
		errs = append(errs, invalid(fmt.Sprintf("target node %q: mutual_chap", cfg.Name), "set", "an auth group with muser and msecret"))
	}
	return errors.Join(errs...)
}

// DeleteNode closes the node's connections and LUNs and removes it.
func (s *Server) DeleteNode(name string) error {
	key := strings.ToLower(s.FullName(name))
	s.mu.Lock()
	n, ok := s.nodes[key]
	if !ok || !n.ready {
		s.mu.Unlock()
		return fmt.Errorf("target node %q: %w", name, ErrNotFound)
	}
	delete(s.nodes, key)
	s.publish()
	s.mu.Unlock()
	return n.close()
}

// Nodes lists the nodes' configurations by name.
func (s *Server) Nodes() []NodeConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.snap.Load()
	out := make([]NodeConfig, 0, len(snap.order))
	for _, n := range snap.order {
		out = append(out, n.liveConfig())
	}
	return out
}

// lunDrainPoll is how often a LUN removal looks for tasks still holding it.
const lunDrainPoll = 5 * time.Millisecond

// tasksHold reports whether a task of any connection was started on l and
// not released yet. Control plane: each connection is asked on its owner.
func (s *Server) tasksHold(l *scsi.LUN) bool {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		held := false
		if err := c.owner.Call(func() {
			for i := range c.cmds {
				if c.cmds[i].task.Holds(l) {
					held = true
					return
				}
			}
		}); err != nil {
			return false // the reactor stopped: nothing runs there any more
		}
		if held {
			return true
		}
	}
	return false
}

// Node returns the node called name (full or short), or nil.
func (s *Server) Node(name string) *Node {
	return s.snap.Load().nodes[strings.ToLower(s.FullName(name))]
}

// ConnInfo describes one connection (SPDK's iscsi_get_connections).
type ConnInfo struct {
	ID            uint64 `json:"id"`
	CID           uint16 `json:"cid"`
	TSIH          uint16 `json:"tsih"`
	Reactor       int    `json:"lcore_id"`
	InitiatorAddr string `json:"initiator_addr"`
	TargetAddr    string `json:"target_addr"`
	Target        string `json:"target_node_name"`
	Initiator     string `json:"initiator_name"`
	State         string `json:"state"`
	PDUsIn        uint64 `json:"pdus_in"`
	PDUsOut       uint64 `json:"pdus_out"`
}

// Connections lists the live connections by id.
func (s *Server) Connections() []ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ConnInfo, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// register and forget track live connections for Connections and Close.
func (s *Server) register(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c.id] = c
	return true
}

func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	if len(s.conns) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
	s.mu.Unlock()
}

// newTSIH reserves a TSIH: never 0 (RFC 7143 §11.12.6).
func (s *Server) newTSIH() uint16 {
	for {
		if v := uint16(s.tsih.Add(1)); v != 0 {
			return v
		}
	}
}

// Close stops the portals, closes every connection and node, and waits up
// to timeout for connections to finish their I/O.
func (s *Server) Close(timeout time.Duration) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var ports []*portal
	for _, ps := range s.portals {
		ports = append(ports, ps...)
	}
	s.portals = map[uint16][]*portal{}
	nodes := make([]*Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		if n.ready {
			nodes = append(nodes, n)
		}
	}
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.nodes = map[string]*Node{}
	s.publish()
	var drained chan struct{}
	if len(s.conns) > 0 {
		drained = make(chan struct{})
		s.drained = drained
	}
	s.mu.Unlock()
	for _, p := range ports {
		p.stop()
	}
	for _, c := range conns {
		c.closeFromOutside("server closing")
	}
	var errs []error
	if drained != nil {
		timer := time.NewTimer(timeout)
		select { // control plane: Close never runs on a reactor
		case <-drained:
		case <-timer.C:
			s.mu.Lock()
			errs = append(errs, fmt.Errorf("iscsi: %d connections still open after %v", len(s.conns), timeout))
			s.mu.Unlock()
		}
		timer.Stop()
	}
	for _, n := range nodes {
		errs = append(errs, n.close())
	}
	return errors.Join(errs...)
}

// permits reports whether node n admits initiator from addr through
// portal group pg (SPDK: a pg-ig map whose groups allow it).
func (snap *snapshot) permits(n *Node, pg uint16, initiator string, addr netip.Addr) bool {
	for _, m := range n.cfg.Maps {
		if m.PortalGroup != pg {
			continue
		}
		if ig, ok := snap.igs[m.InitiatorGroup]; ok && ig.permits(initiator, addr) {
			return true
		}
	}
	return false
}

// visible reports whether SendTargets shows n to initiator from addr: any
// of its maps admits it.
func (snap *snapshot) visible(n *Node, initiator string, addr netip.Addr) bool {
	for _, m := range n.cfg.Maps {
		if ig, ok := snap.igs[m.InitiatorGroup]; ok && ig.permits(initiator, addr) {
			return true
		}
	}
	return false
}

// sendTargets lists what a SendTargets answer shows to initiator from addr
// connected to local: visible nodes, each with the portals of its
// non-private groups (a wildcard host shows the address it was reached on).
func (snap *snapshot) sendTargets(initiator string, addr, local netip.Addr) []login.TargetRecord {
	var out []login.TargetRecord
	for _, n := range snap.order {
		if !snap.visible(n, initiator, addr) {
			continue
		}
		rec := login.TargetRecord{Name: n.cfg.Name}
		seen := map[uint16]bool{}
		for _, m := range n.cfg.Maps {
			pg, ok := snap.pgs[m.PortalGroup]
			if !ok || pg.Private || seen[pg.Tag] {
				continue
			}
			seen[pg.Tag] = true
			for _, p := range pg.Portals {
				host := strings.Trim(p.Host, "[]")
				if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
					host = local.Unmap().String()
				}
				rec.Portals = append(rec.Portals, login.Portal{Host: host, Port: p.Port, GroupTag: pg.Tag})
			}
		}
		out = append(out, rec)
	}
	return out
}
