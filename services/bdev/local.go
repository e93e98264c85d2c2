package bdev

import (
	"fmt"
	"time"

	"github.com/sluice-storage/sluice/reactors"
)

const (
	// IOPoolSizeDefault IOs per reactor: a queue depth of 128 on 16
	// connections, each split in two, with room for stages' child IOs.
	IOPoolSizeDefault = 8192
	// BufSmallSizeDefault is the small pooled buffer: two 4 KiB blocks, the
	// usual I/O, with room for its metadata.
	BufSmallSizeDefault = 8 << 10
	// BufSmallCountDefault small buffers per reactor (8 MiB).
	BufSmallCountDefault = 1024
	// BufLargeSizeDefault is the large pooled buffer: the largest transfer
	// a front end takes in one piece (NVMe/TCP MDTS 128 KiB).
	BufLargeSizeDefault = 128 << 10
	// BufLargeCountDefault large buffers per reactor (8 MiB).
	BufLargeCountDefault = 64
	// postQueueSizeInitial slots are made at start for messages waiting on
	// a full ring (B8); the queue grows only under that backpressure.
	postQueueSizeInitial = 256
	// parkedRetryPeriod is how often a reactor retries IO parked on
	// StatusNoResources when nothing is in flight to complete and retry it
	// (B5). At least the reactors' sleep slack (1 ms), so an adaptive reactor
	// may still sleep between tries.
	parkedRetryPeriod = time.Millisecond
)

// Local is the bdev layer's state on one reactor: the IO pool, the off-heap
// buffer pools, completions deferred out of Submit (B2) and messages waiting
// for a full ring (B8). Owner: its reactor; every method is owner only.
type Local struct {
	reactor *reactors.Reactor // set in newLocal, never changed
	reg     *Registry         //

	// Owner-only.
	ios         []IO // the pool's IOs, made once
	free        *IO  // free list through IO.next
	freeCount   int
	small       *bufPool
	large       *bufPool
	submitDepth int // > 0 while a back end's Submit runs (B2)
	deferHead   *IO // completions to run on the next poll, FIFO through IO.next
	deferTail   *IO
	posts       []pendingPost // FIFO of posts that found a ring full (B8)
	starved     []*bdevChannel
	retryTimer  *reactors.PollerHandle
	poller      *reactors.PollerHandle
}

// pendingPost is a message waiting for room in its target's ring.
type pendingPost struct {
	to  *reactors.Reactor
	msg reactors.Message
}

func newLocal(reg *Registry, r *reactors.Reactor, o *Options) (*Local, error) {
	l := &Local{reactor: r, reg: reg, ios: make([]IO, o.IOPoolSize),
		posts: make([]pendingPost, 0, postQueueSizeInitial)}
	for i := len(l.ios) - 1; i >= 0; i-- {
		io := &l.ios[i]
		io.local = l
		io.next = l.free
		l.free = io
	}
	l.freeCount = len(l.ios)
	var err error
	if l.small, err = newBufPool(o.BufSmallCount, o.BufSmallSize); err != nil {
		return nil, fmt.Errorf("reactor %d small buffers: %w", r.Index(), err)
	}
	if l.large, err = newBufPool(o.BufLargeCount, o.BufLargeSize); err != nil {
		l.small.region.Unmap()
		return nil, fmt.Errorf("reactor %d large buffers: %w", r.Index(), err)
	}
	return l, nil
}

// Reactor is the reactor that owns l.
func (l *Local) Reactor() *reactors.Reactor { return l.reactor }

// AllocIO takes a ready IO from the pool, or nil when all are in use:
// backpressure, which the caller answers by trying again when one of its
// own IOs completes.
func (l *Local) AllocIO() *IO {
	io := l.free
	if io == nil {
		return nil
	}
	l.free = io.next
	l.freeCount--
	*io = IO{local: l, state: ioReady}
	io.Iovecs = io.inline[:0]
	return io
}

func (l *Local) freeIO(io *IO) {
	if io.local != l {
		panic(fmt.Sprintf("bdev: IO of reactor %d freed into reactor %d's pool", io.local.reactor.Index(), l.reactor.Index()))
	}
	io.state = ioFree
	io.Completer = nil // drop references the GC would keep alive
	io.CtxRef = nil
	io.Parent = nil
	io.Lock = nil
	io.lock = nil
	io.next = l.free
	l.free = io
	l.freeCount++
}

// FreeIOs is how many IOs the pool holds now.
func (l *Local) FreeIOs() int { return l.freeCount }

// AllocBuf returns an off-heap, page-aligned buffer of size bytes from the
// small or large pool, or nil when size is larger than a large buffer or the
// pool is empty (backpressure).
func (l *Local) AllocBuf(size int) []byte {
	switch {
	case size <= l.small.bufSize:
		if b := l.small.get(size); b != nil {
			return b
		}
		fallthrough
	case size <= l.large.bufSize:
		return l.large.get(size)
	}
	return nil
}

// FreeBuf returns a buffer AllocBuf handed out.
func (l *Local) FreeBuf(b []byte) {
	if l.small.owns(b) {
		l.small.put(b)
		return
	}
	l.large.put(b)
}

// BufRegions are the regions the buffer pools live in, for a back end that
// registers them with its device (io_uring fixed buffers). Index 0 is the
// small pool, 1 the large.
func (l *Local) BufRegions() []*Region { return []*Region{l.small.region, l.large.region} }

// deferCompletion queues a completed IO for the next poll (B2).
func (l *Local) deferCompletion(io *IO) {
	io.next = nil
	if l.deferTail == nil {
		l.deferHead = io
	} else {
		l.deferTail.next = io
	}
	l.deferTail = io
}

// post sends m to r, or queues it behind earlier posts that found a ring
// full (B8). It never fails: the Local poller retries.
func (l *Local) post(r *reactors.Reactor, m reactors.Message) {
	if len(l.posts) == 0 {
		if err := r.Post(m); err == nil {
			return
		}
	}
	l.posts = append(l.posts, pendingPost{r, m})
}

// Poll runs the completions deferred before it started (B2), then retries
// waiting posts in order (B8). The reactor runs it every turn.
func (l *Local) Poll() int {
	n := 0
	io := l.deferHead
	l.deferHead, l.deferTail = nil, nil
	for io != nil {
		next := io.next
		io.next = nil
		io.finish()
		io = next
		n++
	}
	if len(l.posts) > 0 {
		n += l.retryPosts()
	}
	return n
}

func (l *Local) retryPosts() int {
	sent := 0
	for sent < len(l.posts) {
		p := l.posts[sent]
		if p.to.Post(p.msg) != nil {
			break
		}
		sent++
	}
	if sent > 0 {
		k := copy(l.posts, l.posts[sent:])
		clear(l.posts[k:])
		l.posts = l.posts[:k]
	}
	return sent
}

// starve notes a channel with parked IO and nothing in flight to drive its
// retries, and starts the retry timer (B5).
func (l *Local) starve(bc *bdevChannel) {
	if bc.starved {
		return
	}
	bc.starved = true
	l.starved = append(l.starved, bc)
	if l.retryTimer == nil {
		l.retryTimer = l.reactor.AddTimer("bdev-parked-retry", parkedRetryPeriod, reactors.PollFunc(l.retryStarved), nil)
	}
}

// retryStarved kicks every starved channel; the timer stops when none is.
func (l *Local) retryStarved() int {
	work := 0
	kept := l.starved[:0]
	for _, bc := range l.starved {
		bc.starved = false
		work += bc.kick()
		if bc.parkedHead != nil && bc.backendOut == 0 {
			bc.starved = true
			kept = append(kept, bc)
		}
	}
	clear(l.starved[len(kept):])
	l.starved = kept
	if len(l.starved) == 0 {
		l.reactor.RemovePoller(l.retryTimer)
		l.retryTimer = nil
	}
	return work
}

// Compile-time relations between the limits: each fails to build if broken.
const (
	_ uint = BufLargeSizeDefault - BufSmallSizeDefault // a large buffer holds a small one
	_ uint = -(BufSmallSizeDefault % PageSize)         // pooled buffers stay page aligned
	_ uint = -(BufLargeSizeDefault % PageSize)         //
	_ uint = IOPoolSizeDefault - splitChildrenMax      // one split cannot empty the pool
)
