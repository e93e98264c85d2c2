package nvmf

import (
	"fmt"

	"github.com/sluice-storage/sluice/reactors"
)

// PollGroup is the target's state on one reactor (SPDK's spdk_nvmf_poll_group): the qpairs
// placed there, commands waiting for a bdev.IO, and its counters. Owner: its reactor; the
// counters are read from any goroutine.
type PollGroup struct {
	target *Target           // set in newPollGroup, never changed
	owner  *reactors.Reactor //
	name   string            //
	poller *reactors.PollerHandle

	// Owner-only.
	retryHead *Request // commands whose bdev.IO allocation failed (NOMEM), FIFO
	retryTail *Request
	retries   int

	// Written by the owner, read anywhere.
	adminQpairs, ioQpairs               counter // connected since start
	currentAdminQpairs, currentIOQpairs counter
	pendingIO                           counter // bdev IOs submitted and not completed
	completedIO                         counter
	retried                             counter // commands that waited for a bdev.IO
}

func newPollGroup(t *Target, r *reactors.Reactor) *PollGroup {
	return &PollGroup{target: t, owner: r, name: fmt.Sprintf("nvmf_tgt_poll_group_%03d", r.Index())} // SPDK's thread names
}

// Reactor is the group's reactor.
func (g *PollGroup) Reactor() *reactors.Reactor { return g.owner }

// Target is the group's target.
func (g *PollGroup) Target() *Target { return g.target }

// NewQpair makes the core's half of a new connection placed on this group's reactor: a queue
// pair waiting for its Connect. trtype is the transport's discovery TRTYPE and opts its
// filled options (shared, never changed), listen the (normalized) address the connection was
// accepted on, peer the host's address for RPCs. Owner only.
func (g *PollGroup) NewQpair(ops QpairOps, trtype uint8, opts *TransportOptions, listen ListenAddress, peer string) *Qpair {
	g.owner.AssertCurrent()
	return &Qpair{group: g, owner: g.owner, target: g.target, ops: ops, listen: listen, peer: peer,
		id: g.target.qpairIDs.Add(1), trtype: trtype, topts: opts}
}

// parkRetry queues a command whose bdev.IO allocation failed (backpressure: it is retried, in
// order, as soon as the group's pool has IOs again), never dropped.
func (g *PollGroup) parkRetry(req *Request) {
	req.next = nil
	if g.retryTail == nil {
		g.retryHead = req
	} else {
		g.retryTail.next = req
	}
	g.retryTail = req
	g.retries++
	g.retried.add(1)
}

// Poll retries parked commands in order until one fails to get an IO again. The reactor runs
// it every turn; it costs a nil check when nothing waits.
func (g *PollGroup) Poll() int {
	if g.retryHead == nil {
		return 0
	}
	n := 0
	for left := g.retries; left > 0 && g.retryHead != nil; left-- {
		req := g.retryHead
		if !req.qpair.resubmit(req) {
			break // still no IO: the rest wait behind it (FIFO)
		}
		g.retryHead = req.next
		if g.retryHead == nil {
			g.retryTail = nil
		}
		req.next = nil
		g.retries--
		n++
	}
	return n
}

// start registers the group's poller; it runs on the group's reactor.
func (g *PollGroup) start() {
	g.poller = g.owner.AddPoller("nvmf", g, func(v any) {
		g.target.log.Error("nvmf poll group panicked", "group", g.name, "panic", fmt.Sprint(v))
	})
}

func (g *PollGroup) stop() {
	if g.poller != nil {
		g.owner.RemovePoller(g.poller)
		g.poller = nil
	}
}

// PollGroupStats is one group in nvmf_get_stats (SPDK's shape).
type PollGroupStats struct {
	Name               string `json:"name"`
	AdminQpairs        uint64 `json:"admin_qpairs"`
	IOQpairs           uint64 `json:"io_qpairs"`
	CurrentAdminQpairs uint64 `json:"current_admin_qpairs"`
	CurrentIOQpairs    uint64 `json:"current_io_qpairs"`
	PendingBdevIO      uint64 `json:"pending_bdev_io"`
	CompletedNVMeIO    uint64 `json:"completed_nvme_io"`
	NomemRetries       uint64 `json:"nomem_retries"`
}

// Stats reads the group's counters. Any goroutine.
func (g *PollGroup) Stats() PollGroupStats {
	return PollGroupStats{
		Name: g.name, AdminQpairs: g.adminQpairs.load(), IOQpairs: g.ioQpairs.load(),
		CurrentAdminQpairs: g.currentAdminQpairs.load(), CurrentIOQpairs: g.currentIOQpairs.load(),
		PendingBdevIO: g.pendingIO.load(), CompletedNVMeIO: g.completedIO.load(), NomemRetries: g.retried.load(),
	}
}
