package tcp

import (
	"fmt"
	"net"
	"strconv"
	"unsafe"

	"github.com/sluice-storage/sluice/protocols/nvmf"
	"golang.org/x/sys/unix"
)

// Raw non-blocking sockets. readv and sendmsg go through unix.RawSyscall with iovec arrays the
// connection made once, so the receive and send paths allocate nothing (x/sys's Readv and
// Writev build a fresh []Iovec per call). Every socket is O_NONBLOCK: a call never waits, and
// EAGAIN is the answer "not now".

// listenBacklog is listen(2)'s backlog: a burst of hosts reconnecting after a target restart
// (each with an admin and a few I/O queues) fits without refused connections.
const listenBacklog = 512

// listenSocket makes a non-blocking listening TCP socket bound to addr (normalized).
func listenSocket(addr nvmf.ListenAddress) (int, error) {
	ip := net.ParseIP(addr.TrAddr)
	port, _ := strconv.Atoi(addr.TrSvcID) // Normalize checked it
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ip4 := ip.To4(); ip4 != nil {
		sa4 := &unix.SockaddrInet4{Port: port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: port}
		copy(sa6.Addr[:], ip.To16())
		sa = sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	// A restarted target rebinds at once, though the old connections linger in TIME_WAIT.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if family == unix.AF_INET6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1) // one family per listener
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", net.JoinHostPort(addr.TrAddr, addr.TrSvcID), err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen: %w", err)
	}
	return fd, nil
}

// boundPort is the port a socket is bound to (a listener on port 0, in tests).
func boundPort(fd int) int {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return 0
}

// accept4 accepts a connection, non-blocking and close-on-exec, writing the peer's address
// into the caller's rsa: unlike unix.Accept4 it allocates nothing, so a listener may try it on
// every readiness edge.
func accept4(fd int, rsa *unix.RawSockaddrAny, rsaLen *uint32) (int, unix.Errno) {
	*rsaLen = unix.SizeofSockaddrAny
	nfd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(rsa)),
		uintptr(unsafe.Pointer(rsaLen)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(nfd), 0
}

// rawSockaddrString renders an accepted peer's address (per connection: it allocates).
func rawSockaddrString(rsa *unix.RawSockaddrAny) string {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := int(a.Port>>8 | a.Port<<8) // network byte order
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(port))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		port := int(a.Port>>8 | a.Port<<8)
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(port))
	}
	return "?"
}

// tuneConn sets what every accepted connection needs: no Nagle delay (a response capsule is
// 24 bytes and must leave at once).
func tuneConn(fd int) error {
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
}

// setIovec points v at b.
func setIovec(v *unix.Iovec, b []byte) {
	v.Base = unsafe.SliceData(b)
	v.SetLen(len(b))
}

// readv reads into iov; n 0 with errno 0 is end of stream.
func readv(fd int, iov []unix.Iovec) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// epollPoll harvests ready events without waiting (timeout 0). Through RawSyscall6: the
// call never blocks, so it skips the scheduler's enter/exit-syscall bookkeeping that
// unix.EpollWait pays on every reactor turn.
func epollPoll(epfd int, events []unix.EpollEvent) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))),
		uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// sendmsg writes iov; MSG_NOSIGNAL turns a peer's reset into EPIPE rather than SIGPIPE.
func sendmsg(fd int, msg *unix.Msghdr, iov []unix.Iovec) (int, unix.Errno) {
	msg.Iov = unsafe.SliceData(iov)
	msg.SetIovlen(len(iov))
	n, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(msg)), unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
