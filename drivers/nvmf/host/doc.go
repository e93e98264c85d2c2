// Package host is Sluice's NVMe/TCP host (initiator): queue pairs that speak
// NVMe/TCP 1.0 to a remote controller over a non-blocking socket polled by a
// reactor, and the controller-level control plane on top of them (Connect,
// Property Get/Set, enable, Identify, Set Features, Get Log Page including the
// Discovery log, keep-alive and asynchronous events). drivers/nvmf turns the
// namespaces it finds into bdevs; perf drives them as spdk_nvme_perf does.
//
// # Owners
//
//   - Qpair: one NVMe/TCP connection. Owner: the reactor it was made on
//     (NewQpair runs there); every method but Stats is owner only. It
//     registers one poller on that reactor and watches its socket
//     (Reactor.WatchFD) so an adaptive reactor wakes on data. No goroutine
//     per connection: the TCP connect, the ICReq/ICResp exchange and the
//     fabrics Connect are steps of the same poller, non-blocking.
//   - Controller: control plane. Connect, the admin helpers (Identify…) and
//     Close run on goroutines that are not reactors and wait for the owner
//     reactor, which holds the admin Qpair, its keep-alive timer and the
//     outstanding Asynchronous Event Request.
//
// The PDU codec is protocols/nvmf/tcp/pdu, the one both directions share:
// the Framer in the Host role cuts the receive stream (C2HData lands straight
// in the caller's buffer), Sender encodes capsules and H2CData. NVMe
// structures come from protocols/nvme.
//
// # Invariants
//
//	H1. A command completes exactly once: its slot goes free when its
//	    Completer is called, on the owner reactor, and a CID names at most
//	    one live command (the CID is the slot index).
//	H2. Nothing received is trusted before it is checked: every PDU passes
//	    the Framer's Check/CheckPSH, and a CCCID, DATAO, DATAL, R2TO or R2TL
//	    that does not fit a live command of the right direction fails the
//	    connection (an H2CTermReq, then close), never a panic or a write
//	    outside the command's buffers.
//	H3. Data is never read or written past the command's buffers: C2HData
//	    must continue the transfer in order (DATAO equal to the bytes already
//	    received) and end inside it; an R2T must ask for the next bytes not
//	    yet sent, inside the transfer.
//	H4. When the connection fails every live command completes with
//	    nvme.StatusHostPathError (Linux's nvme_host_path_error does the same),
//	    once, and the socket is closed after it is unwatched.
//	H5. After NewQpair nothing on the submit, send, receive or complete path
//	    allocates: slots, header buffers, the iovec array and the bounce
//	    buffer are made at creation.
//	H6. A write sends at most IOCCSZ*16-64 bytes in the capsule (8192 on the
//	    admin queue), the rest only when the controller asks with R2T, in
//	    H2CData PDUs of at most MAXH2CDATA bytes.
//
// # Imports
//
// reactors, protocols/nvme, protocols/nvmf/tcp/pdu and golang.org/x/sys
// (ARCHITECTURE.md: a driver imports only the leaf wire packages of
// protocols/). Never a target.
package host
