package tcp

import (
	"fmt"
	"sync/atomic"

	"github.com/sluice-storage/sluice/protocols/nvmf"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"golang.org/x/sys/unix"
)

// epollEventsMax readiness events are taken per poll; more wait for the next turn.
const epollEventsMax = 128

// The epoll data of a socket in a group's set: Fd holds a connection's slot or a listener's
// index, Pad says which.
const (
	epollConn     = 0
	epollListener = 1
)

// counter is a statistic with one writer (its owner reactor) and readers anywhere.
type counter struct{ v atomic.Uint64 }

func (c *counter) add(n uint64) { c.v.Store(c.v.Load() + n) }
func (c *counter) load() uint64 { return c.v.Load() }

// pollGroup is the transport on one reactor: the connections placed there and an epoll set
// of their sockets, edge-triggered, which the reactor watches (WatchFD) so an adaptive reactor
// sleeping in epoll_wait wakes when any of them is ready. Owner: that reactor.
type pollGroup struct {
	t      *Transport        // set in newPollGroup, never changed
	owner  *reactors.Reactor //
	core   *nvmf.PollGroup   //
	local  *bdev.Local       //
	epfd   int               //
	poller *reactors.PollerHandle

	// Owner-only.
	events     [epollEventsMax]unix.EpollEvent
	conns      []*Conn // index: slot, the epoll data; nil slots are free
	freeSlots  []int
	ready      []*Conn // readable, not yet drained to EAGAIN
	sends      []*Conn // with PDUs queued and a socket that takes them
	sendsSpare []*Conn
	bufWait    []*Conn     // with requests waiting for a pool buffer
	listeners  []*listener // the acceptor's group only; nil slots are free
	accepting  []*listener // with connections waiting
	closing    int         // connections in connClosing
	stopping   bool
	drained    chan struct{} // closed when stopping and the last connection is gone

	// Read anywhere.
	connCount   atomic.Int32
	accepted    counter
	pdusIn      counter // PDUs received (a data PDU once, at its header)
	pdusOut     counter // PDUs sent whole
	sendBlocked counter // sendmsg found the socket full: the host reads slower than we answer
	bufferWaits counter // requests that waited for a pool buffer (backpressure, K3)
}

func newPollGroup(t *Transport, r *reactors.Reactor) (*pollGroup, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &pollGroup{t: t, owner: r, core: t.target.PollGroup(r), local: t.target.Bdevs().Local(r), epfd: epfd}, nil
}

// start registers the group on its reactor. Owner only.
func (g *pollGroup) start() error {
	if err := g.owner.WatchFD(g.epfd, unix.EPOLLIN); err != nil {
		return err
	}
	g.poller = g.owner.AddPoller("nvmf-tcp", g, func(v any) {
		g.t.log.Error("nvmf/tcp poll group panicked; its connections are dropped", "reactor", g.owner.Index(), "panic", fmt.Sprint(v))
	})
	return nil
}

// adopt takes an accepted socket: a connection on this reactor for life (K1).
func (g *pollGroup) adopt(fd int, listen nvmf.ListenAddress, peer string) {
	if g.stopping {
		unix.Close(fd)
		return
	}
	c, err := newConn(g, fd, listen, peer)
	if err != nil {
		g.t.log.Error("nvmf/tcp: connection refused", "conn", peer, "err", err)
		unix.Close(fd)
		return
	}
	if n := len(g.freeSlots); n > 0 {
		c.slot = g.freeSlots[n-1]
		g.freeSlots = g.freeSlots[:n-1]
		g.conns[c.slot] = c
	} else {
		c.slot = len(g.conns)
		g.conns = append(g.conns, c)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.slot), Pad: epollConn}
	if err := unix.EpollCtl(g.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		g.t.log.Error("nvmf/tcp: epoll_ctl", "conn", peer, "err", err)
		g.conns[c.slot] = nil
		g.freeSlots = append(g.freeSlots, c.slot)
		c.q.Closed()
		c.region.Unmap()
		unix.Close(fd)
		return
	}
	g.connCount.Add(1)
	g.accepted.add(1)
	c.readable = true // bytes may have arrived before the registration
	g.wantReceive(c)
}

// remove forgets a closed connection.
func (g *pollGroup) remove(c *Conn) {
	_ = unix.EpollCtl(g.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	g.conns[c.slot] = nil
	g.freeSlots = append(g.freeSlots, c.slot)
	g.closing--
	if g.connCount.Add(-1) == 0 && g.stopping && g.drained != nil {
		close(g.drained)
		g.drained = nil
	}
}

func (g *pollGroup) wantReceive(c *Conn) {
	if !c.inReady {
		c.inReady = true
		g.ready = append(g.ready, c)
	}
}

func (g *pollGroup) wantSend(c *Conn) {
	if !c.inSend {
		c.inSend = true
		g.sends = append(g.sends, c)
	}
}

func (g *pollGroup) wantBuffers(c *Conn) {
	for _, w := range g.bufWait {
		if w == c {
			return
		}
	}
	g.bufWait = append(g.bufWait, c)
}

// Poll is the group's turn: readiness, receives, buffer retries, sends, closing connections.
func (g *pollGroup) Poll() int {
	work := 0
	n, errno := epollPoll(g.epfd, g.events[:])
	if errno != 0 && errno != unix.EINTR {
		panic(fmt.Sprintf("tcp: epoll_pwait on reactor %d: %v", g.owner.Index(), errno))
	}
	for i := 0; i < n; i++ {
		ev := &g.events[i]
		if ev.Pad == epollListener {
			if l := g.listeners[ev.Fd]; l != nil && !l.pending {
				l.pending = true
				g.accepting = append(g.accepting, l)
			}
			work++
			continue
		}
		c := g.conns[ev.Fd]
		if c == nil {
			continue
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.readable = true
			c.hup = c.hup || ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
			g.wantReceive(c)
		}
		if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.sendBlocked {
			c.sendBlocked = false
			g.wantSend(c)
		}
		work++
	}
	if len(g.accepting) > 0 {
		work += g.acceptReady()
	}
	if len(g.ready) > 0 {
		work += g.receiveReady()
	}
	if len(g.bufWait) > 0 {
		work += g.retryBuffers()
	}
	if len(g.sends) > 0 {
		work += g.flushSends()
	}
	if g.closing > 0 {
		for _, c := range g.conns {
			if c != nil && c.state == connClosing {
				c.maybeFinish()
			}
		}
	}
	return work
}

func (g *pollGroup) acceptReady() int {
	work := 0
	keep := g.accepting[:0]
	for _, l := range g.accepting {
		if g.listeners[l.id] != l {
			continue // stopped meanwhile
		}
		work += l.accept()
		if l.pending {
			keep = append(keep, l) // more than a turn's worth waiting
		}
	}
	clear(g.accepting[len(keep):])
	g.accepting = keep
	return work
}

// addListener puts l's socket in the group's epoll set (edge-triggered: a burst of
// connections is one event; accept drains it). Owner only.
func (g *pollGroup) addListener(l *listener) error {
	l.id = len(g.listeners)
	for i, x := range g.listeners {
		if x == nil {
			l.id = i
			break
		}
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(l.id), Pad: epollListener}
	if err := unix.EpollCtl(g.epfd, unix.EPOLL_CTL_ADD, l.fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl listener: %w", err)
	}
	if l.id == len(g.listeners) {
		g.listeners = append(g.listeners, l)
	} else {
		g.listeners[l.id] = l
	}
	l.pending = true // connections may have queued before the registration
	g.accepting = append(g.accepting, l)
	return nil
}

// removeListener takes l out of the epoll set. Owner only.
func (g *pollGroup) removeListener(l *listener) {
	_ = unix.EpollCtl(g.epfd, unix.EPOLL_CTL_DEL, l.fd, nil)
	g.listeners[l.id] = nil
	l.pending = false
}

func (g *pollGroup) receiveReady() int {
	work := 0
	keep := g.ready[:0]
	for _, c := range g.ready {
		work += c.receive()
		if c.readable && c.state < connClosing {
			keep = append(keep, c)
		} else {
			c.inReady = false
		}
	}
	clear(g.ready[len(keep):])
	g.ready = keep
	return work
}

func (g *pollGroup) retryBuffers() int {
	work := 0
	keep := g.bufWait[:0]
	for _, c := range g.bufWait {
		if c.state < connClosing {
			work += c.retryBuffers()
		}
		if len(c.needBuf) > 0 && c.state < connClosing {
			keep = append(keep, c)
		}
	}
	clear(g.bufWait[len(keep):])
	g.bufWait = keep
	return work
}

func (g *pollGroup) flushSends() int {
	work := 0
	// Walk this turn's list while the next one fills (two arrays, swapped: no allocation once
	// they have grown to the number of connections).
	list := g.sends
	g.sends = g.sendsSpare[:0]
	for _, c := range list {
		c.inSend = false
		if c.state == connClosed {
			continue
		}
		work += c.flush()
		if !c.sq.empty() && !c.sendBlocked && c.state != connClosed {
			g.wantSend(c)
		}
	}
	clear(list)
	g.sendsSpare = list[:0]
	return work
}

// closeAll starts a graceful close of every connection (transport Close). Owner only.
func (g *pollGroup) closeAll(drained chan struct{}) {
	g.stopping = true
	if g.connCount.Load() == 0 {
		close(drained)
		return
	}
	g.drained = drained
	for _, c := range g.conns {
		if c != nil && c.state < connClosing {
			c.close(closeGraceful, "target stopping")
			g.wantSend(c)
		}
	}
}

// stop unregisters the group once its connections are gone. Owner only.
func (g *pollGroup) stop() {
	if g.poller != nil {
		g.owner.RemovePoller(g.poller)
		g.poller = nil
	}
	_ = g.owner.UnwatchFD(g.epfd)
	unix.Close(g.epfd)
}
