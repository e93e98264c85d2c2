// Package hosttest is a small NVMe/TCP controller for the tests of
// drivers/nvmf and drivers/nvmf/host: one namespace of memory, just enough
// of the admin command set for a host to connect, and reads and writes
// through every data path a host must handle (in-capsule, R2T with
// MAXH2CDATA chunks, C2HData split in pieces, the SUCCESS flag, digests).
// It is NOT the project's target (protocols/nvmf is) and never a figure; it
// lets the host's tests run without the guest. Blocking I/O and a goroutine
// per connection: imported by tests only.
//
// Owner: the test that made it; its goroutines share the namespace's bytes
// and the connection list under one mutex (a test helper, off every
// reactor). Imports protocols/nvme and protocols/nvmf/tcp/pdu only.
//
// Invariants:
//
//	T1. Every goroutine it starts has ended when the test's cleanup
//	    returns (the listener and every connection are closed first).
//	T2. A write's data reaches the namespace only whole: in-capsule at
//	    once, through R2T once every H2CData arrived in order.
package hosttest
