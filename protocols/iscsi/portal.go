package iscsi

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sluice-storage/sluice/reactors"
	"golang.org/x/sys/unix"
)

const (
	// listenBacklog is the accept queue of a portal: a burst of initiators
	// logging in at once (a cluster booting) waits there.
	listenBacklog = 128
	// acceptBudget connections are accepted per poll, so one portal's burst
	// does not starve the reactor's connections.
	acceptBudget = 16
	// acceptTurns spaces accept(2) calls to one per 64 reactor turns (tens
	// of microseconds when busy): a polling reactor would otherwise spend a
	// system call per turn on an idle listening socket. An adaptive reactor
	// woken by the socket polls far more turns than that before it sleeps
	// again (reactors.Options.IdleAfter), so no connection is missed.
	acceptTurns = 64
)

// portal is one listening socket. Owner: its reactor, which accepts and
// runs the logins of what it accepts.
type portal struct {
	srv   *Server
	pg    uint16
	addr  Portal // as bound (the real port when 0 was asked)
	fd    int
	owner *reactors.Reactor
	h     *reactors.PollerHandle
	turns uint32 // owner-only: polls since accept last ran
}

// listen opens pg.Portals[i] and starts accepting on the next reactor in
// turn. Caller does not hold s.mu (the reactor may be taking it).
func (s *Server) listen(pg *PortalGroup, i int) (*portal, error) {
	want := pg.Portals[i]
	addr, err := netip.ParseAddr(strings.Trim(want.Host, "[]"))
	if err != nil {
		return nil, fmt.Errorf("portal %s: %w", want, err)
	}
	fd, bound, err := listenTCP(netip.AddrPortFrom(addr, want.Port))
	if err != nil {
		return nil, fmt.Errorf("portal %s: %w", want, err)
	}
	pg.Portals[i].Port = bound.Port()
	p := &portal{srv: s, pg: pg.Tag, addr: Portal{Host: want.Host, Port: bound.Port()}, fd: fd,
		owner: s.nextOwner()}
	if err := p.owner.Call(func() {
		p.h = p.owner.AddPoller("iscsi-portal "+p.addr.String(), p, func(v any) {
			s.log.Error("iscsi portal poller panicked", "portal", p.addr.String(), "panic", v)
		})
		err = p.owner.WatchFD(fd, unix.EPOLLIN)
	}); err != nil || p.h == nil {
		unix.Close(fd)
		return nil, fmt.Errorf("portal %s: %v", want, err)
	}
	return p, err
}

// listenTCP makes a non-blocking listening socket.
func listenTCP(ap netip.AddrPort) (int, netip.AddrPort, error) {
	family := unix.AF_INET
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, ap, fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return -1, ap, fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(fd, sockaddr(ap)); err != nil {
		unix.Close(fd)
		return -1, ap, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		unix.Close(fd)
		return -1, ap, fmt.Errorf("listen: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, ap, fmt.Errorf("getsockname: %w", err)
	}
	return fd, addrPortOf(sa), nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func addrPortOf(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// Poll accepts up to acceptBudget connections and starts their logins.
func (p *portal) Poll() int {
	if p.turns++; p.turns < acceptTurns {
		return 0
	}
	p.turns = 0
	n := 0
	for ; n < acceptBudget; n++ {
		fd, sa, err := unix.Accept4(p.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if err != unix.EAGAIN && err != unix.EINTR && err != unix.ECONNABORTED {
				p.srv.log.Warn("iscsi accept failed", "portal", p.addr.String(), "err", err)
			}
			break
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		local := netip.AddrPort{}
		if lsa, err := unix.Getsockname(fd); err == nil {
			local = addrPortOf(lsa)
		}
		p.srv.serve(p.owner, fd, p.pg, addrPortOf(sa), local)
	}
	return n
}

// stop closes the socket on the owner. Caller does not hold s.mu.
func (p *portal) stop() {
	if err := p.owner.Call(func() {
		p.owner.RemovePoller(p.h)
		p.owner.UnwatchFD(p.fd)
		unix.Close(p.fd)
	}); err != nil {
		unix.Close(p.fd)
	}
}
