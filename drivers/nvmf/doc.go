// Package nvmf is the back end that makes the namespaces of a remote NVMe/TCP
// controller local bdevs, through our host (drivers/nvmf/host): SPDK's
// bdev_nvme for fabrics. Attaching controller "Nvme0" makes one bdev per
// active namespace, "Nvme0n1", "Nvme0n2"…; a namespace added later (an
// asynchronous event) becomes a bdev too.
//
// # Owners
//
//   - Manager and each attached Ctrlr's identity and namespace table: the
//     control plane (Attach, Detach, Stats, the RPC handlers).
//   - A Ctrlr's supervisor goroutine (control plane) owns its association:
//     it connects, notices losses and reconnects by the Recovery policy, and
//     tells every reactor what changed by message (Reactor.Call).
//   - ctrlrChannel: one per (controller, reactor), shared by the namespaces'
//     bdev channels there. Owner: that reactor. It holds the reactor's I/O
//     qpair, a pool of requests (one per queue slot) and the FIFO of
//     requests waiting for a reconnect.
//
// # I/O across a connection loss
//
// A command whose connection fails completes with a host path error (host
// H4); the channel keeps its IO queued instead of completing it, and sends
// it again, in order, on the next association. New IO submitted meanwhile
// queues too, up to the qpair depth (then StatusNoResources: the bdev layer
// parks it, bdev B5). When FastIOFailTimeout passes, queued and new IO fail
// with StatusRetry until the controller is back; when CtrlrLossTimeout
// passes, everything fails with StatusFailed and the controller stays failed
// until detached (SPDK deletes it; we keep the bdevs so a stage on top does
// not lose its base under it).
//
// # Invariants
//
//	D1. Every IO handed to Submit completes exactly once (bdev B1): through
//	    its command's completion, or from the retry FIFO when the controller
//	    fast-fails or is given up.
//	D2. An IO is in at most one place: a qpair slot or the retry FIFO, and
//	    holds one request of its reactor's pool until it completes. So the
//	    FIFO never holds more than the pool.
//	D3. A loss is acted on once per association: each carries a generation,
//	    and a report from an older one is ignored.
//	D4. Nothing on the submit and complete path allocates (bdev B9): requests
//	    and the FIFO are made with the channel.
//
// # Imports
//
// services/bdev, reactors, drivers/nvmf/host, protocols/nvme, internal/jsonrpc
// (the RPC handlers' types): ARCHITECTURE.md's table for drivers.
package nvmf
