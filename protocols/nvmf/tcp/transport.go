package tcp

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
	"github.com/sluice-storage/sluice/reactors"
	"golang.org/x/sys/unix"
)

// Name is the transport's name in RPCs, listen addresses and the registry of transports.
const Name = "TCP"

// acceptsPerPollMax connections are accepted per listener per turn (SPDK's 16), so a
// connection storm cannot starve the reactor's other pollers.
const acceptsPerPollMax = 16

// Transport is NVMe/TCP: listeners on the acceptor reactor (reactor 0), a poll group on every
// reactor, connections placed by Options.Placement and owned by their reactor for life.
// Its methods are the control plane (nvmf.Transport).
type Transport struct {
	target   *nvmf.Target      // set in New, never changed
	opts     Options           // filled
	log      *slog.Logger      //
	acceptor *reactors.Reactor // runs every listener's accept poller
	groups   []*pollGroup      // index: reactor index

	// Acceptor-owned.
	next int // round robin

	terminations counter // C2HTermReqs sent, any reactor (a store race loses a count at worst)

	// lock: the listeners and the closed flag; control plane only.
	mu        sync.Mutex
	listeners map[nvmf.ListenAddress]*listener
	closed    bool
}

// New makes the TCP transport of target, with a poll group on each of its reactors, and
// registers it with the target (nvmf_create_transport).
func New(target *nvmf.Target, opts Options) (*Transport, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	set := target.Reactors()
	t := &Transport{target: target, opts: opts, log: target.Logger(), acceptor: set.Get(0),
		listeners: map[nvmf.ListenAddress]*listener{}}
	for _, r := range set.All() {
		g, err := newPollGroup(t, r)
		if err == nil {
			var startErr error
			if err = r.Call(func() { startErr = g.start() }); err == nil {
				err = startErr
			}
		}
		if err != nil {
			t.stopGroups()
			return nil, fmt.Errorf("nvmf/tcp: poll group on reactor %d: %w", r.Index(), err)
		}
		t.groups = append(t.groups, g)
	}
	if err := target.AddTransport(t); err != nil {
		t.stopGroups()
		return nil, err
	}
	return t, nil
}

// Name implements nvmf.Transport.
func (t *Transport) Name() string { return Name }

// Type implements nvmf.Transport.
func (t *Transport) Type() uint8 { return nvme.TransportTCP }

// Options implements nvmf.Transport.
func (t *Transport) Options() nvmf.TransportOptions { return t.opts.TransportOptions }

// TCPOptions are the transport's options, filled.
func (t *Transport) TCPOptions() Options { return t.opts }

// limits are the framer limits for a connection that negotiated these digests.
func (t *Transport) limits(hd, dd bool) pdu.Limits {
	return pdu.Limits{ICDone: true, HeaderDigest: hd, DataDigest: dd, PDA: 0,
		CapsuleDataMax: max(t.opts.InCapsuleDataSize, nvmf.AdminInCapsuleDataSize), DataMax: t.opts.MaxH2CData}
}

// listener is one listening socket, in the acceptor reactor's poll group epoll set, so
// waiting for connections costs no system call of its own (the group's epoll_wait reports
// them) and an idle reactor wakes on one. Owner: the acceptor reactor.
type listener struct {
	t    *Transport
	addr nvmf.ListenAddress
	fd   int
	id   int // index in the acceptor group's listeners, the epoll data

	// Owner-only.
	pending bool // epoll said a connection waits; accept has not returned EAGAIN yet
	rsa     unix.RawSockaddrAny
	rsaLen  uint32
	errs    counter
}

// Listen implements nvmf.Transport: bind and listen now (so a bad address fails here), accept
// on the acceptor reactor.
func (t *Transport) Listen(addr nvmf.ListenAddress) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("nvmf/tcp: listen %v: transport closed", addr)
	}
	if _, dup := t.listeners[addr]; dup {
		return fmt.Errorf("nvmf/tcp: listen %v: %w", addr, nvmf.ErrExists)
	}
	fd, err := listenSocket(addr)
	if err != nil {
		return fmt.Errorf("nvmf/tcp: listen %v: %w", addr, err)
	}
	l := &listener{t: t, addr: addr, fd: fd}
	g := t.groups[t.acceptor.Index()]
	var addErr error
	if err := t.acceptor.Call(func() { addErr = g.addListener(l) }); err != nil || addErr != nil {
		unix.Close(fd)
		return fmt.Errorf("nvmf/tcp: listen %v: %w", addr, errors.Join(err, addErr))
	}
	t.listeners[addr] = l
	t.log.Info("nvmf/tcp listening", "listen", addr.String(), "port", boundPort(fd))
	return nil
}

// StopListen implements nvmf.Transport.
func (t *Transport) StopListen(addr nvmf.ListenAddress) error {
	t.mu.Lock()
	l, ok := t.listeners[addr]
	delete(t.listeners, addr)
	t.mu.Unlock()
	if !ok {
		return fmt.Errorf("nvmf/tcp: stop listening %v: %w", addr, nvmf.ErrNotFound)
	}
	return l.stop()
}

func (l *listener) stop() error {
	g := l.t.groups[l.t.acceptor.Index()]
	err := l.t.acceptor.Call(func() { g.removeListener(l) })
	unix.Close(l.fd)
	return err
}

// accept takes up to acceptsPerPollMax connections and hands each to its poll group's
// reactor. It clears pending on EAGAIN. Acceptor only.
func (l *listener) accept() int {
	n := 0
	for ; n < acceptsPerPollMax; n++ {
		fd, errno := accept4(l.fd, &l.rsa, &l.rsaLen)
		switch {
		case errno == unix.EAGAIN:
			l.pending = false
			return n
		case errno == unix.EINTR || errno == unix.ECONNABORTED:
			continue
		case errno != 0:
			// EMFILE and friends: the connection waits in the backlog; logged once per burst.
			if l.errs.load() == 0 {
				l.t.log.Error("nvmf/tcp: accept", "listen", l.addr.String(), "err", errno)
			}
			l.errs.add(1)
			l.pending = false // retried on the next readiness edge: a new connection
			return n
		}
		l.errs.v.Store(0)
		if err := tuneConn(fd); err != nil {
			unix.Close(fd)
			continue
		}
		g := l.t.pick()
		addr, peer := l.addr, rawSockaddrString(&l.rsa)
		if err := g.owner.PostFunc(func() { g.adopt(fd, addr, peer) }); err != nil {
			unix.Close(fd)
		}
	}
	return n
}

// pick chooses the poll group of a new connection. Acceptor only.
func (t *Transport) pick() *pollGroup {
	if t.opts.Placement == PlacementLeastConnections {
		best := t.groups[0]
		for _, g := range t.groups[1:] {
			if g.connCount.Load() < best.connCount.Load() {
				best = g
			}
		}
		return best
	}
	g := t.groups[t.next%len(t.groups)]
	t.next++
	return g
}

// Close implements nvmf.Transport: stop listening, close every connection gracefully (their
// commands finish and responses go out), wait for all of them until the deadline, then stop the
// poll groups.
func (t *Transport) Close(deadline time.Time) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	ls := t.listeners
	t.listeners = map[nvmf.ListenAddress]*listener{}
	t.mu.Unlock()
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.stop())
	}
	waits := make([]chan struct{}, len(t.groups))
	for i, g := range t.groups {
		g := g
		waits[i] = make(chan struct{})
		w := waits[i]
		errs = append(errs, g.owner.Call(func() { g.closeAll(w) }))
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for i, w := range waits {
		select {
		case <-w:
		case <-timer.C:
			errs = append(errs, fmt.Errorf("nvmf/tcp: reactor %d still has %d connections at the deadline",
				i, t.groups[i].connCount.Load()))
			return errors.Join(errs...)
		}
	}
	t.stopGroups()
	return errors.Join(errs...)
}

func (t *Transport) stopGroups() {
	for _, g := range t.groups {
		g := g
		_ = g.owner.Call(g.stop)
	}
}

// GroupStats is one reactor's transport counters (nvmf_get_stats' transports entry).
type GroupStats struct {
	Reactor     int    `json:"reactor"`
	Connections int32  `json:"connections"`
	Accepted    uint64 `json:"accepted"`
	PDUsIn      uint64 `json:"pdus_in"`
	PDUsOut     uint64 `json:"pdus_out"`
	SendBlocked uint64 `json:"send_blocked"` // sendmsg found a socket full
	BufferWaits uint64 `json:"buffer_waits"` // requests that waited for a pool buffer
}

// Stats reads every group's counters. Any goroutine.
func (t *Transport) Stats() (groups []GroupStats, terminations uint64) {
	for _, g := range t.groups {
		groups = append(groups, GroupStats{Reactor: g.owner.Index(), Connections: g.connCount.Load(), Accepted: g.accepted.load(),
			PDUsIn: g.pdusIn.load(), PDUsOut: g.pdusOut.load(), SendBlocked: g.sendBlocked.load(), BufferWaits: g.bufferWaits.load()})
	}
	return groups, t.terminations.load()
}
