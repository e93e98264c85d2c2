// Package tcp is the NVMe/TCP transport of the target (NVMe/TCP Transport Specification 1.0;
// NVMe-oF 1.1 §7.4): listeners, a poll group per reactor, and connections, each an admin or I/O
// queue pair carrying PDUs coded by protocols/nvmf/tcp/pdu.
//
// # Sockets and reactors
//
// Sockets are raw non-blocking file descriptors (golang.org/x/sys/unix: socket, bind, listen,
// accept4, readv, sendmsg through RawSyscall with iovecs made once, so the data path allocates
// nothing). No goroutine per connection and no lock on the path: every reactor has a poll
// group with an edge-triggered epoll set of its connections, which the reactor watches
// (Reactor.WatchFD), so an adaptive reactor sleeping in epoll_wait wakes when any socket is
// ready. The listening sockets sit in the acceptor reactor's (reactor 0) set; an accepted
// connection goes to a reactor by Options.Placement (round robin by default) and is owned by it
// for life. Each turn a group harvests readiness with one epoll_wait(0), reads each ready
// connection (at most recvCallsPerPollMax reads, for fairness), retries requests waiting for
// buffers, and flushes each connection's send queue with one sendmsg of many PDUs.
//
// epoll, not io_uring, for the socket path (measured by BenchmarkSocketPath, medians of 5 on a
// loaded 2-core VM): per 4 KiB read exchange at depth 32, epoll 2.1-2.7 us and io_uring
// 1.7-2.6 us; for 24-byte answers both 1.0-2.0 us; at depth 1 both 30-60 us, all noise of
// loopback wake-ups. The difference (under 0.5 us a command at best) is within the end-to-end
// runs' noise, where the host's core is the bottleneck; and a recv posted before the PDU
// header is known cannot land data in the request's own buffer (the framer chooses it after
// the header), so io_uring would add a copy or a second recv per PDU. epoll also gives the
// adaptive reactor its wake-up for free. Revisit with multishot recv and SEND_ZC.
//
// # A connection
//
// ICReq/ICResp negotiate digests (granted as the host asks unless refused by Options), the
// host's data alignment for C2HData, CPDA 0 and MAXH2CDATA. A capsule's in-capsule data lands
// straight in its request's slot of a per-connection region; a write beyond it gets one R2T
// for the whole transfer and its H2CData lands in a pool buffer at its offset; a read's data
// goes out in one C2HData (SUCCESS when the host turned SQ flow control off, then no response
// capsule). A header that breaks a rule (pdu.CommonHeader.Check, CheckPSH, and the checks the
// codec leaves to the connection: TTAG, CCCID, DATAO, DATAL) ends the connection with the
// C2HTermReq its FieldError implies, and nothing else.
//
// Imports: protocols/nvmf, protocols/nvmf/tcp/pdu, protocols/nvme, services/bdev, reactors,
// internal/invariants and the standard library, golang.org/x/sys.
//
// # Invariants
//
//	K1. A connection, its requests, buffers, framer and send queue are touched only on the
//	    reactor of its poll group, from adopt to maybeFinish.
//	K2. A request's state changes only through Conn.setState, which keeps the per-state counts;
//	    a connection is released only when every request is free (maybeFinish panics otherwise).
//	K3. A request that needs a buffer the pool does not have waits in the connection's needBuf
//	    queue, retried in order each turn: backpressure, never a drop. In-capsule data needs no
//	    pool buffer (its slot is the request's), so a stalled pool never stops the stream.
//	K4. After a C2HTermReq is queued nothing else is queued behind it, and a PDU partly written
//	    before it is finished first, so the host can parse the termination request.
//	K5. A request and its buffer are reused only after every queued PDU that points into them
//	    has been written or dropped.
//	K6. After a connection is set up, receiving, running and answering a command allocates
//	    nothing (TestHotPathAllocs).
package tcp
