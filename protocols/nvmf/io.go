package nvmf

import (
	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/services/bdev"
)

// execIO runs an NVM command set I/O command: the ordered checks of SPDK's
// nvmf_ctrlr_process_io_cmd (controller enabled, fused, namespace attached), then the command's
// own checks (nvmf_bdev_ctrlr_*_cmd: range with overflow, length), each ending in a status,
// then a bdev.IO on the namespace's channel of this reactor. No allocation, no lock (T2).
func (q *Qpair) execIO(req *Request) {
	if !q.ctrlr.enabled.Load() {
		q.complete(req, nvme.StatusCommandSequenceError, true) // a reset or shutdown is under way
		return
	}
	if req.Cmd.FUSE() != nvme.FuseNone { // FUSES reports no fused operation
		q.complete(req, nvme.StatusInvalidField, true)
		return
	}
	ns := q.ctrlr.subsys.namespace(req.Cmd.NSID())
	if ns == nil || ns.removed.Load() {
		q.complete(req, nvme.StatusInvalidNamespaceOrFormat, true)
		return
	}
	ch, err := ns.channel(q.owner)
	if err != nil {
		q.complete(req, nvme.StatusNamespaceNotReady, false)
		return
	}
	var t bdev.IOType
	var lba, blocks uint64
	switch op := nvme.IOOpcode(req.Cmd.Opcode()); op {
	case nvme.IORead, nvme.IOWrite, nvme.IOCompare:
		t = map3(op)
		lba, blocks = req.Cmd.SLBA(), uint64(req.Cmd.BlockCount())
		if st := q.checkRange(ns, lba, blocks); !st.Success() {
			q.complete(req, st, true)
			return
		}
		want := blocks << ns.blockLog
		dir := nvme.DataToCtrl
		if op == nvme.IORead {
			dir = nvme.DataFromCtrl
		}
		if req.Xfer != dir || uint64(req.Length) < want {
			// NVM Command Set 1.0: the SGL must describe NLB blocks of data.
			q.complete(req, nvme.StatusDataSGLLengthInvalid, true)
			return
		}
		if op == nvme.IORead {
			req.SetLength(uint32(want)) // send what was read, not the SGL's slack
		}
		req.op = opWrite
		if op == nvme.IORead {
			req.op = opRead
		}
	case nvme.IOFlush:
		t = bdev.IOFlush // the whole namespace: Blocks 0
	case nvme.IOWriteZeroes:
		t = bdev.IOWriteZeroes
		lba, blocks = req.Cmd.SLBA(), uint64(req.Cmd.BlockCount())
		if st := q.checkRange(ns, lba, blocks); !st.Success() {
			q.complete(req, st, true)
			return
		}
	case nvme.IODatasetManagement:
		q.execDSM(req, ns, ch)
		return
	default:
		q.complete(req, nvme.StatusInvalidOpcode, true)
		return
	}
	req.ns = ns
	ns.slots[q.owner.Index()].outstanding++
	q.submit(req, ch, t, lba, blocks)
}

func map3(op nvme.IOOpcode) bdev.IOType {
	switch op {
	case nvme.IORead:
		return bdev.IORead
	case nvme.IOWrite:
		return bdev.IOWrite
	}
	return bdev.IOCompare
}

// checkRange is LBA Out of Range for SLBA+NLB past the namespace, with overflow (SPDK's
// nvmf_bdev_ctrlr_lba_in_range).
func (q *Qpair) checkRange(ns *Namespace, lba, blocks uint64) nvme.Status {
	end := lba + blocks
	if end < lba || end > ns.blocks {
		return nvme.StatusLBAOutOfRange
	}
	return nvme.StatusSuccess
}

// submit takes a bdev.IO and submits it, or parks req until the pool has one (backpressure),
// keeping what the retry needs.
func (q *Qpair) submit(req *Request, ch *bdev.Channel, t bdev.IOType, lba, blocks uint64) {
	io := ch.AllocIO()
	if io == nil {
		req.ioType, req.ioLBA, req.ioBlocks = t, lba, blocks
		q.parked++
		q.group.parkRetry(req)
		return
	}
	q.fill(io, req, t, lba, blocks)
	q.group.pendingIO.add(1)
	ch.Submit(io)
}

// fill sets up io for req.
func (q *Qpair) fill(io *bdev.IO, req *Request, t bdev.IOType, lba, blocks uint64) {
	io.Type = t
	io.OffsetBlocks = lba
	io.Blocks = blocks
	if t.HasData() {
		io.SetBuf(req.Data[:blocks<<req.ns.blockLog])
	}
	io.Completer = req
}

// resubmit retries a parked command's bdev.IO; false if the pool is still empty.
func (q *Qpair) resubmit(req *Request) bool {
	ch, err := req.ns.channel(q.owner)
	if err != nil {
		q.parked--
		q.endIO(req)
		q.complete(req, nvme.StatusNamespaceNotReady, false)
		return true
	}
	io := ch.AllocIO()
	if io == nil {
		return false
	}
	q.parked--
	q.fill(io, req, req.ioType, req.ioLBA, req.ioBlocks)
	q.group.pendingIO.add(1)
	ch.Submit(io)
	return true
}

// endIO releases req's hold on its namespace.
func (q *Qpair) endIO(req *Request) {
	if req.ns != nil {
		req.ns.slots[q.owner.Index()].outstanding--
		req.ns = nil
	}
}

// Complete is the bdev.Completer of every IO a command submits: it runs on this reactor (B3),
// translates the status (ioStatus), frees the IO, and answers, or submits the next range of a
// Dataset Management command.
func (req *Request) Complete(io *bdev.IO) {
	q := req.qpair
	q.group.pendingIO.sub(1)
	q.group.completedIO.add(1)
	st, dnr := ioStatus(io, io.Type)
	io.Free()
	if st.Success() && nvme.IOOpcode(req.Cmd.Opcode()) == nvme.IODatasetManagement {
		req.dsm++
		if ch, err := req.ns.channel(q.owner); err == nil && q.nextDSM(req, ch) {
			return
		}
	}
	q.endIO(req)
	q.complete(req, st, dnr)
}

// execDSM runs Dataset Management (NVM Command Set 1.0, "Dataset Management command"): with
// the Attribute – Deallocate bit, each range becomes an unmap, one after another; without it
// the command is advisory and completes at once.
func (q *Qpair) execDSM(req *Request, ns *Namespace, ch *bdev.Channel) {
	n := req.Cmd.DSMRangeCount()
	if req.Xfer != nvme.DataToCtrl || req.Length < uint32(n*nvme.DSMRangeSize) {
		q.complete(req, nvme.StatusDataSGLLengthInvalid, true)
		return
	}
	for i := 0; i < n; i++ {
		r := (*nvme.DSMRange)(req.Data[i*nvme.DSMRangeSize:])
		if st := q.checkRange(ns, r.SLBA(), uint64(r.Blocks())); !st.Success() {
			q.complete(req, st, true)
			return
		}
	}
	if !req.Cmd.DSMDeallocate() || !ns.types.Has(bdev.IOUnmap) {
		// Advisory without Deallocate; a back end that cannot unmap keeps the data, which
		// Deallocate allows (DLFEAT then says nothing about what reads return).
		q.complete(req, nvme.StatusSuccess, false)
		return
	}
	req.ns = ns
	ns.slots[q.owner.Index()].outstanding++
	req.dsm = 0
	if !q.nextDSM(req, ch) {
		q.endIO(req)
		q.complete(req, nvme.StatusSuccess, false)
	}
}

// nextDSM submits the unmap of range req.dsm, skipping empty ranges; false when none is left.
func (q *Qpair) nextDSM(req *Request, ch *bdev.Channel) bool {
	n := req.Cmd.DSMRangeCount()
	for ; req.dsm < n; req.dsm++ {
		r := (*nvme.DSMRange)(req.Data[req.dsm*nvme.DSMRangeSize:])
		if r.Blocks() == 0 {
			continue
		}
		q.submit(req, ch, bdev.IOUnmap, r.SLBA(), uint64(r.Blocks()))
		return true
	}
	return false
}
