package nvmf

import (
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Request is one command on a queue pair, from its capsule to its response. The transport owns
// it (an array per connection, made at connect: nothing per command) and fills the command
// part; the core owns it from Qpair.Exec until it calls QpairOps.Complete, and fills the
// response. Owner: the qpair's reactor.
type Request struct {
	// Filled by the transport before Exec.
	Cmd    nvme.SQE           // the command, copied out of the capsule
	Xfer   nvme.DataDirection // DataToCtrl, DataFromCtrl or DataNone, from the opcode
	Length uint32             // data bytes the command's SGL describes
	// Data is the command's data, Length bytes, one contiguous buffer: what the host sent
	// (DataToCtrl, in capsule or by R2T/H2CData) or where the answer goes (DataFromCtrl).
	// The core may shorten a DataFromCtrl answer with SetLength before Complete.
	Data []byte
	// Tag is the transport's index of the request; the core never reads it.
	Tag uint16

	// Written by the core; read by the transport in Complete.
	Rsp nvme.CQE

	// Core-owned.
	qpair *Qpair
	ns    *Namespace    // I/O commands: the namespace, counted in ns.outstanding
	start time.Duration // Exec time, for the latency histogram
	next  *Request      // intrusive link: no-resources queue, AER list
	op    opKind        // what the statistics count it as
	dsm   int           // Dataset Management: ranges done
	// A command parked for a bdev.IO: what to submit when one is free.
	ioType   bdev.IOType
	ioLBA    uint64
	ioBlocks uint64
}

// opKind is how a command is counted.
type opKind uint8

const (
	opOther opKind = iota
	opRead
	opWrite
)

// SetLength shortens the data of a DataFromCtrl answer to n bytes (an Identify or log page the
// host asked for more of than exists is answered with what exists, zero padded by the caller).
func (r *Request) SetLength(n uint32) {
	if n > uint32(len(r.Data)) {
		panic("nvmf: SetLength beyond the request's buffer")
	}
	r.Length = n
	r.Data = r.Data[:n]
}

// Qpair is the queue pair this request runs on (nil before Exec).
func (r *Request) Qpair() *Qpair { return r.qpair }

// status sets the response status: SCT/SC and DNR.
func (r *Request) status(st nvme.Status, dnr bool) {
	r.Rsp.SetStatus(st)
	r.Rsp.SetDNR(dnr)
}

// fail sets a status that must not be retried as is (a malformed command): DNR set.
func (r *Request) fail(st nvme.Status) { r.status(st, true) }

// copyOut copies src to the request's data, zero padding the rest of the buffer the host
// gave (NVMe Base 2.0: data beyond a structure's end reads as zero), and returns whether the
// command has a buffer at all.
func (r *Request) copyOut(src []byte) {
	n := copy(r.Data, src)
	clear(r.Data[n:])
}
