package uring

import (
	"fmt"

	iouring "github.com/sluice-storage/sluice/internal/uring"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"golang.org/x/sys/unix"
)

// channel is one reactor's ring on the file. Owner: that reactor.
type channel struct {
	b       *backend          // read-only
	r       *reactors.Reactor //
	ring    *iouring.Ring
	poller  *reactors.PollerHandle
	watched bool // the eventfd is in the reactor's epoll set

	// Owner-only.
	slots     []slot   // len = depth; index is the SQE's user data
	free      []uint16 // free slot indexes, a stack
	queued    int      // SQEs taken since the last Submit (G2)
	fixed     []*bdev.Region
	idlePolls int
	cqes      [reapBatch]iouring.CQE
	submitErr error // the last Submit failure, for Close
}

// slot is one IO at the kernel.
type slot struct {
	io     *bdev.IO
	want   int32 // bytes a read or write must move
	iovecs [bdev.IovecsInlineMax]unix.Iovec
}

func (b *backend) NewChannel(l *bdev.Local) (bdev.ChannelBackend, error) {
	r := l.Reactor()
	poll := r.Mode() == reactors.ModePoll
	ring, err := iouring.New(uint32(b.depth), iouring.Options{EventFD: true})
	if err != nil {
		return nil, fmt.Errorf("uring bdev %q: reactor %d: %w", b.name, r.Index(), err)
	}
	c := &channel{b: b, r: r, ring: ring, slots: make([]slot, b.depth), free: make([]uint16, b.depth)}
	for i := range c.free {
		c.free[i] = uint16(b.depth - 1 - i)
	}
	if b.fixed {
		regions := l.BufRegions()
		bufs := make([][]byte, len(regions))
		for i, reg := range regions {
			bufs[i] = reg.Bytes()
		}
		// Best effort: without CAP_IPC_LOCK a low RLIMIT_MEMLOCK refuses
		// the pin, and plain reads and writes work as well, a little slower.
		if ring.RegisterBuffers(bufs) == nil {
			c.fixed = regions
		}
	}
	if poll {
		ring.SetEventFDEnabled(false) // nobody sleeps on it
	} else {
		if err := r.WatchFD(ring.EventFD(), unix.EPOLLIN); err != nil {
			ring.Close()
			return nil, fmt.Errorf("uring bdev %q: %w", b.name, err)
		}
		c.watched = true
	}
	c.poller = r.AddPoller("uring:"+b.name, c, nil)
	return c, nil
}

// Submit queues io's SQE; the poller submits the batch this turn (G2).
func (c *channel) Submit(io *bdev.IO) {
	if len(c.free) == 0 {
		io.Complete(bdev.StatusNoResources) // G3
		return
	}
	sqe := c.ring.GetSQE()
	if sqe == nil {
		c.flush()
		if sqe = c.ring.GetSQE(); sqe == nil {
			io.Complete(bdev.StatusNoResources)
			return
		}
	}
	i := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	s := &c.slots[i]
	s.io = io
	s.want = 0
	c.prep(sqe, s, io)
	sqe.SetUserData(uint64(i))
	c.queued++
}

// prep fills sqe for io.
func (c *channel) prep(sqe *iouring.SQE, s *slot, io *bdev.IO) {
	fd := c.b.fd
	off := io.OffsetBlocks << c.b.blockShift
	n := io.Blocks << c.b.blockShift
	switch io.Type {
	case bdev.IORead, bdev.IOWrite:
		s.want = int32(n)
		read := io.Type == bdev.IORead
		if len(io.Iovecs) == 1 {
			buf := io.Iovecs[0]
			for k, reg := range c.fixed {
				if reg.Contains(buf) {
					if read {
						sqe.PrepReadFixed(fd, buf, off, uint16(k))
					} else {
						sqe.PrepWriteFixed(fd, buf, off, uint16(k))
					}
					return
				}
			}
			if read {
				sqe.PrepRead(fd, buf, off)
			} else {
				sqe.PrepWrite(fd, buf, off)
			}
			return
		}
		iovs := s.iovecs[:len(io.Iovecs)]
		for k, v := range io.Iovecs {
			iovs[k].Base = &v[0]
			iovs[k].SetLen(len(v))
		}
		if read {
			sqe.PrepReadv(fd, iovs, off)
		} else {
			sqe.PrepWritev(fd, iovs, off)
		}
	case bdev.IOFlush:
		sqe.PrepFsync(fd, iouring.FsyncDatasync)
	case bdev.IOUnmap:
		sqe.PrepFallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	case bdev.IOWriteZeroes:
		sqe.PrepFallocate(fd, unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	default:
		// The layer sends only the types Info lists: reaching here is a bug.
		panic(fmt.Sprintf("uring bdev %q: IO type %v not listed in Info", c.b.name, io.Type))
	}
}

// flush submits the queued SQEs. A busy kernel keeps them for the next poll.
func (c *channel) flush() {
	if c.queued == 0 {
		return
	}
	if _, err := c.ring.Submit(); err != nil {
		c.submitErr = err
		return // ErrBusy: reap, then the next poll submits them again
	}
	c.queued = 0
}

// Poll submits, reaps and completes; IOs submitted by the completions go out
// before it returns (G2).
func (c *channel) Poll() int {
	c.flush()
	work := 0
	for {
		n, err := c.ring.Reap(c.cqes[:])
		if err != nil {
			// ErrCQEDropped: the depth bound (G1) makes it impossible.
			panic(fmt.Sprintf("uring bdev %q: reactor %d: reap: %v", c.b.name, c.r.Index(), err))
		}
		for k := range n {
			c.complete(&c.cqes[k])
		}
		work += n
		if n < len(c.cqes) {
			break
		}
	}
	c.flush()
	if work > 0 {
		c.idlePolls = 0
		return work
	}
	if c.watched {
		if c.idlePolls++; c.idlePolls == drainAfterIdlePolls {
			// Idle protocol: drain, then one more reap catches what
			// completed before the drain; anything later signals again.
			c.ring.DrainEventFD()
			if n, _ := c.ring.Reap(c.cqes[:]); n > 0 {
				for k := range n {
					c.complete(&c.cqes[k])
				}
				c.flush()
				return n
			}
		}
	}
	return 0
}

// complete ends the IO of one CQE (G1).
func (c *channel) complete(cqe *iouring.CQE) {
	i := uint16(cqe.UserData())
	s := &c.slots[i]
	io := s.io
	if io == nil {
		panic(fmt.Sprintf("uring bdev %q: CQE for free slot %d (res %d)", c.b.name, i, cqe.Res()))
	}
	s.io = nil
	c.free = append(c.free, i)
	res := cqe.Res()
	switch {
	case res == -int32(unix.EAGAIN) || res == -int32(unix.ENOMEM):
		io.Complete(bdev.StatusNoResources)
	case res < 0:
		io.CompleteErrno(unix.Errno(-res))
	case s.want != 0 && res != s.want:
		// A short transfer with O_DIRECT inside the file means the device
		// gave up part way: report it as the media error it is.
		io.CompleteErrno(unix.EIO)
	default:
		io.Complete(bdev.StatusSuccess)
	}
}

// Close releases the ring; nothing is in flight (G4).
func (c *channel) Close() error {
	if out := len(c.slots) - len(c.free); out != 0 {
		return fmt.Errorf("uring bdev %q: reactor %d: %d IOs in flight at close", c.b.name, c.r.Index(), out)
	}
	c.r.RemovePoller(c.poller)
	var err error
	if c.watched {
		err = c.r.UnwatchFD(c.ring.EventFD())
	}
	if cerr := c.ring.Close(); err == nil {
		err = cerr
	}
	return err
}
