package nvmf

import "time"

// Transport is a fabric's half of the target (SPDK's spdk_nvmf_transport_ops, kept small): it
// listens, accepts connections onto reactors, moves capsules and data, and hands each command to
// the Qpair it made for the connection. The core never touches a socket; a transport never
// parses a command beyond its data pointer. RDMA will implement the same.
//
// Listen, StopListen and Close run on the control plane (any goroutine that is not a reactor);
// they may wait for reactors.
type Transport interface {
	// Name is the transport type as RPCs and listen addresses spell it: "TCP".
	Name() string
	// Type is the discovery log TRTYPE (nvme.TransportTCP).
	Type() uint8
	// Options are the generic options the transport was created with, filled.
	Options() TransportOptions
	// Listen starts accepting connections at addr (normalized). An address that cannot be
	// bound is an error; other listeners are unaffected.
	Listen(addr ListenAddress) error
	// StopListen stops accepting at addr; connections accepted there stay up.
	StopListen(addr ListenAddress) error
	// Close stops listening, disconnects every connection, and waits until each has
	// finished its in-flight commands and released its qpair, or the deadline passes.
	Close(deadline time.Time) error
}

// QpairOps is what the core asks of a transport's connection. Owner: the connection's reactor;
// the core calls these only there.
type QpairOps interface {
	// Complete hands req back: the transport sends its data (Xfer DataFromCtrl on success)
	// and its response, then reuses it. Called exactly once per Exec (T3).
	Complete(req *Request)
	// Disconnect asks the transport to close the connection. It stops taking commands, lets
	// every Exec'd request Complete, and then calls Qpair.Closed. Idempotent.
	Disconnect()
	// AbortQueued completes the request with CID cid with Abort Requested if the transport
	// still holds it before Exec (waiting for a buffer or for its data), and reports whether
	// it did (NVMe Base 2.0, "Abort command": only commands not yet started are aborted).
	AbortQueued(cid uint16) bool
}
