package tcp

import (
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/sluice-storage/sluice/internal/uring"
	"golang.org/x/sys/unix"
)

// The socket path's choice: epoll readiness with readv/sendmsg (what the transport does) or
// io_uring recv/send (internal/uring), measured on the exchange of a 4 KiB NVMe/TCP read: a
// 72-byte capsule in, a 4144-byte C2HData and response capsule out (and a 24-byte response
// alone, the write case). The server busy-polls on one core as a reactor in poll mode does;
// the client, on the other core, keeps qd exchanges in flight. ns/op is per exchange.
//
//	go test ./protocols/nvmf/tcp -run '^$' -bench SocketPath -benchtime 100000x -count 5
//
// Measured (medians of 5, ns per exchange, a loaded 2-core VM; see doc.go for the choice):
//
//	               4144 B qd1  4144 B qd32  24 B qd1  24 B qd32
//	epoll              55113        2144      34217      1119
//	io_uring           41419        1715      31248      1209

const (
	benchCapsule = 72
	benchRead    = 24 + 4096 + 24
	benchWrite   = 24
)

func BenchmarkSocketPath(b *testing.B) {
	for _, impl := range []string{"epoll", "uring"} {
		for _, resp := range []int{benchRead, benchWrite} {
			for _, qd := range []int{1, 32} {
				b.Run(fmt.Sprintf("%s/resp=%d/qd=%d", impl, resp, qd), func(b *testing.B) {
					benchSocket(b, impl, resp, qd)
				})
			}
		}
	}
}

func benchSocket(b *testing.B, impl string, respSize, qd int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan int, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- -1
			return
		}
		f, _ := c.(*net.TCPConn).File() // a dup, blocking; made non-blocking below
		c.Close()
		accepted <- int(f.Fd())
		runtime.KeepAlive(f)
	}()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	client.(*net.TCPConn).SetNoDelay(true)
	fd := <-accepted
	if fd < 0 {
		b.Fatal("accept failed")
	}
	unix.SetNonblock(fd, true)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		pin(0)
		if impl == "epoll" {
			done <- serveEpoll(fd, respSize, &stop)
		} else {
			done <- serveUring(fd, respSize, qd, &stop)
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pin(1)
	// The client: a blocking raw socket, reading what has arrived and sending a new capsule
	// for each answer completed, in one write (so its cost per exchange stays small).
	cf, _ := client.(*net.TCPConn).File()
	cfd := int(cf.Fd())
	unix.SetNonblock(cfd, false)
	reqs := make([]byte, benchCapsule*qd)
	in := make([]byte, 256<<10)
	unix.Write(cfd, reqs)
	b.SetBytes(int64(respSize))
	b.ResetTimer()
	got := 0
	for done := 0; done < b.N; {
		n, err := unix.Read(cfd, in)
		if err != nil || n == 0 {
			b.Fatal(err)
		}
		got += n
		k := got / respSize
		got %= respSize
		done += k
		for k > 0 {
			m := min(k, qd)
			if _, err := unix.Write(cfd, reqs[:m*benchCapsule]); err != nil {
				b.Fatal(err)
			}
			k -= m
		}
	}
	b.StopTimer()
	cf.Close()
	stop.Store(true)
	client.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	unix.Close(fd)
}

func pin(cpu int) {
	var set unix.CPUSet
	set.Set(cpu % runtime.NumCPU())
	unix.SchedSetaffinity(0, &set)
}

// serveEpoll answers each whole capsule with respSize bytes: edge-triggered epoll_wait(0),
// readv until a short read, one sendmsg for every answer of the turn (the transport's loop).
func serveEpoll(fd, respSize int, stop *atomic.Bool) error {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLET}
	unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev)
	var events [8]unix.EpollEvent
	buf := make([]byte, 16<<10)
	out := make([]byte, respSize)
	var riov [1]unix.Iovec
	var siov [64]unix.Iovec
	var msg unix.Msghdr
	partial, owed, off := 0, 0, 0
	readable := true
	for !stop.Load() {
		n, _ := unix.EpollWait(ep, events[:], 0)
		if n > 0 {
			readable = true
		}
		for readable {
			setIovec(&riov[0], buf)
			k, errno := readv(fd, riov[:])
			if errno == unix.EAGAIN {
				readable = false
				break
			}
			if errno != 0 || k == 0 {
				return nil
			}
			if k < len(buf) {
				readable = false // a short read drained the socket (as Conn.receive)
			}
			partial += k
			owed += partial / benchCapsule
			partial %= benchCapsule
		}
		for owed > 0 {
			niov := min(owed, len(siov))
			setIovec(&siov[0], out[off:])
			for i := 1; i < niov; i++ {
				setIovec(&siov[i], out)
			}
			k, errno := sendmsg(fd, &msg, siov[:niov])
			if errno == unix.EAGAIN {
				break
			}
			if errno != 0 {
				return nil
			}
			k += off
			owed -= k / respSize
			off = k % respSize
		}
	}
	return nil
}

// serveUring answers the same exchange through io_uring: one recv always outstanding, one send
// of every answer owed at a time, submitted and reaped each turn.
func serveUring(fd, respSize, qd int, stop *atomic.Bool) error {
	r, err := uring.New(64, uring.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, 16<<10)
	out := make([]byte, respSize*max(qd, 64))
	var cqes [16]uring.CQE
	const recvTag, sendTag = 1, 2
	post := func(tag uint64, prep func(*uring.SQE)) {
		sqe := r.GetSQE()
		prep(sqe)
		sqe.SetUserData(tag)
	}
	post(recvTag, func(s *uring.SQE) { s.PrepRecv(fd, buf, 0) })
	partial, owed, sending := 0, 0, 0
	for !stop.Load() {
		if _, err := r.Submit(); err != nil {
			return err
		}
		n, err := r.Reap(cqes[:])
		if err != nil {
			return err
		}
		for _, c := range cqes[:n] {
			res := int(c.Res())
			switch c.UserData() {
			case recvTag:
				if res <= 0 {
					if res == -int(unix.EAGAIN) {
						post(recvTag, func(s *uring.SQE) { s.PrepRecv(fd, buf, 0) })
						continue
					}
					return nil
				}
				partial += res
				owed += partial / benchCapsule
				partial %= benchCapsule
				post(recvTag, func(s *uring.SQE) { s.PrepRecv(fd, buf, 0) })
			case sendTag:
				if res < 0 {
					return nil
				}
				owed -= res / respSize // whole answers; a short send's rest is sent again below
				sending = 0
			}
		}
		if owed > 0 && sending == 0 {
			sending = min(owed, len(out)/respSize)
			b := out[:sending*respSize]
			post(sendTag, func(s *uring.SQE) { s.PrepSend(fd, b, unix.MSG_NOSIGNAL) })
		}
	}
	return nil
}
