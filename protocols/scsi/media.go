package scsi

import (
	"bytes"
	"fmt"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
	"github.com/sluice-storage/sluice/services/bdev"
	"golang.org/x/sys/unix"
)

// op is the media operation a task runs; its steps follow one another on
// bdev completions.
type op uint8

const (
	opNone        op = iota
	opRead           // read → data-in
	opWrite          // write [→ flush]
	opVerify         // read into scratch [→ compare]
	opWriteVerify    // write → read into scratch [→ compare]
	opORWrite        // lock → read → OR → write [→ flush] → unlock
	opCAW            // compare-and-write (the layer locks, S5)
	opWriteSame      // unmap, write zeroes, or chunked writes of one block
	opUnmap          // one unmap per descriptor
	opSync           // flush
)

// Steps of the multi-step operations.
const (
	stepFirst  uint8 = iota // the operation's first IO
	stepSecond              // read-back of WRITE AND VERIFY, write of ORWRITE
	stepFlush               // the flush after a forced-unit-access write
	stepUnlock              // ORWRITE waits for its range to unlock
)

// media checks and starts the commands that touch the medium.
func (l *LUN) media(t *Task) Progress {
	c := &t.Cmd
	if c.Protect != 0 {
		// SBC-3 4.22: no protection information on this LU.
		t.fail(c.ProtectError())
		return l.done(t)
	}
	switch c.Opcode {
	case cdb.OpSynchronizeCache10, cdb.OpSynchronizeCache16:
		return l.synchronize(t)
	case cdb.OpPreFetch10, cdb.OpPreFetch16:
		// SBC-3 5.11: nothing to stage in a cache; the range must exist.
		if err := c.CheckRange(l.blocks); err != nil {
			t.fail(err)
			return l.done(t)
		}
		t.good(0)
		return l.done(t)
	case cdb.OpWriteSame10, cdb.OpWriteSame16:
		return l.writeSame(t)
	case cdb.OpCompareAndWrite:
		return l.compareAndWrite(t)
	}
	if err := c.CheckRange(l.blocks); err != nil {
		t.fail(err)
		return l.done(t)
	}
	if c.Blocks > l.transferBlocksMax() {
		// SBC-3 6.6.4: beyond the MAXIMUM TRANSFER LENGTH (after the
		// range, which libiscsi's BeyondEol tests want first).
		t.fail(lengthFieldError(c.Opcode))
		return l.done(t)
	}
	t.lba, t.blocks = c.LBA, uint64(c.Blocks)
	size := uint32(c.Blocks) << l.blockShift
	switch c.Opcode {
	case cdb.OpRead6, cdb.OpRead10, cdb.OpRead12, cdb.OpRead16:
		t.op, t.DataSize = opRead, size
		if c.Blocks == 0 {
			t.good(0)
			return l.done(t)
		}
		if !l.takeIO(t) || !l.takeBuf(t, size) {
			return l.busy(t)
		}
		return l.submit(t, bdev.IORead, &t.data)
	case cdb.OpVerify10, cdb.OpVerify12, cdb.OpVerify16:
		t.op = opVerify
		t.DataSize = uint32(c.DataSize(l.blockSize))
		if c.Blocks == 0 {
			t.good(0)
			return l.done(t)
		}
		if !l.takeIO(t) || !l.takeScratch(t, size) {
			return l.busy(t)
		}
		if c.ByteCheck == 0 {
			return l.submit(t, bdev.IORead, &t.scratch)
		}
		return l.askDataOut(t)
	case cdb.OpWrite6, cdb.OpWrite10, cdb.OpWrite12, cdb.OpWrite16, cdb.OpWriteAtomic16:
		t.op = opWrite
	case cdb.OpWriteAndVerify10, cdb.OpWriteAndVerify12, cdb.OpWriteAndVerify16:
		t.op = opWriteVerify
	case cdb.OpORWrite16:
		t.op = opORWrite
	default:
		panic(fmt.Sprintf("scsi: media opcode %#02x has no case", uint8(c.Opcode)))
	}
	t.DataSize = size
	if c.Blocks == 0 {
		t.good(0)
		return l.done(t)
	}
	if !l.takeIO(t) {
		return l.busy(t)
	}
	if (t.op == opWriteVerify || t.op == opORWrite) && !l.takeScratch(t, size) {
		return l.busy(t)
	}
	return l.askDataOut(t)
}

// lengthFieldError is INVALID FIELD IN CDB pointing at the transfer length.
func lengthFieldError(op cdb.Opcode) error {
	switch cdb.Size(op) {
	case 6:
		return cdbFieldError(4)
	case 10:
		return cdbFieldError(7)
	case 12:
		return cdbFieldError(6)
	}
	return cdbFieldError(10)
}

// askDataOut takes a buffer for the data-out (what the CDB asks, clamped to
// what the transport expects to move) and asks for it.
func (l *LUN) askDataOut(t *Task) Progress {
	t.DataOut = min(t.DataSize, t.TransferLength)
	if t.DataOut == 0 {
		// The initiator sends nothing: nothing is written (SAM-5 residual
		// overflow, which the transport reports).
		t.good(0)
		return l.done(t)
	}
	if !l.takeBuf(t, t.DataOut) {
		return l.busy(t)
	}
	t.state = taskDataOut
	return ProgressDataOut
}

func (l *LUN) takeIO(t *Task) bool {
	if t.io == nil {
		t.io = l.ch.AllocIO()
	}
	return t.io != nil
}

func (l *LUN) takeBuf(t *Task, n uint32) bool {
	return t.data.n > 0 || t.data.alloc(l.dev.local, n)
}

func (l *LUN) takeScratch(t *Task, n uint32) bool {
	return t.scratch.n > 0 || t.scratch.alloc(l.dev.local, n)
}

// mediaResume runs a media command once its data-out has landed.
func (l *LUN) mediaResume(t *Task) Progress {
	switch t.op {
	case opWrite, opWriteVerify, opORWrite:
		// Only whole blocks the initiator sent are written (a short EDTL).
		t.blocks = uint64(t.DataOut >> l.blockShift)
		if t.blocks == 0 {
			t.good(0)
			return l.done(t)
		}
		if t.op == opORWrite {
			return l.orwriteLock(t)
		}
		return l.submit(t, bdev.IOWrite, &t.data)
	case opVerify:
		need := t.DataSize
		if t.DataOut < need {
			t.fail(cdb.ErrParameterListLength)
			return l.done(t)
		}
		return l.submit(t, bdev.IORead, &t.scratch)
	case opCAW:
		if t.DataOut < t.DataSize {
			// SBC-3 5.2: the data-out must hold both halves.
			t.checkCondition(senseOf(cdb.KeyIllegalRequest, cdb.ASCInvalidFieldInCDB))
			return l.done(t)
		}
		return l.submitCAW(t)
	case opWriteSame:
		if t.DataOut < l.blockSize {
			t.fail(cdb.ErrParameterListLength)
			return l.done(t)
		}
		return l.writeSameRun(t)
	}
	panic(fmt.Sprintf("scsi: data-out for op %d", t.op))
}

// submit sends the task's IO down: typ over the task's range with buf.
func (l *LUN) submit(t *Task, typ bdev.IOType, buf *segs) Progress {
	l.listRunning(t)
	l.send(t, typ, t.lba, t.blocks, buf)
	return ProgressRunning
}

// send fills and submits the task's one IO (S1: its completion runs later):
// typ over blocks at lba, with the first blocks' bytes of buf.
func (l *LUN) send(t *Task, typ bdev.IOType, lba, blocks uint64, buf *segs) {
	io := t.io
	io.Type, io.OffsetBlocks, io.Blocks = typ, lba, blocks
	io.Completer = (*taskIO)(t)
	io.Lock = t.lock
	if buf != nil {
		buf.iovecs(io, uint32(blocks<<l.blockShift))
	} else {
		io.ResetIovecs()
	}
	io.CompareIovecs = nil
	l.ch.Submit(io)
}

// taskIO is a Task as the bdev.Completer of its IO (no closure, B9).
type taskIO Task

// Complete implements bdev.Completer: the next step of the task.
func (ti *taskIO) Complete(io *bdev.IO) {
	t := (*Task)(ti)
	t.lun.stepDone(t, io)
}

// stepDone runs when the task's IO completes: fail, finish or go on.
func (l *LUN) stepDone(t *Task, io *bdev.IO) {
	if io.Status != bdev.StatusSuccess {
		if t.op == opCAW && io.Status == bdev.StatusMiscompare {
			l.miscompare(t, io.MiscompareOffset)
		} else {
			st, s := statusSense(io, t.op)
			if st == cdb.StatusCheckCondition {
				t.checkCondition(s)
			} else {
				t.Status, t.SenseLen, t.DataIn = st, 0, 0
			}
		}
		if t.op == opORWrite && t.lock != nil {
			l.orwriteUnlock(t)
			return
		}
		l.complete(t)
		return
	}
	switch t.op {
	case opRead:
		l.stats.Reads.Add(1)
		l.stats.BytesRead.Add(uint64(t.data.size))
		t.good(int(t.data.size))
	case opWrite:
		l.written(t)
		if t.step == stepFirst && l.needsFlush(t) {
			t.step = stepFlush
			l.send(t, bdev.IOFlush, t.lba, t.blocks, nil)
			return
		}
		t.good(0)
	case opVerify:
		l.verifyCompare(t)
	case opWriteVerify:
		if t.step == stepFirst {
			l.written(t)
			t.step = stepSecond
			l.send(t, bdev.IORead, t.lba, t.blocks, &t.scratch)
			return
		}
		l.verifyCompare(t)
	case opORWrite:
		if l.orwriteStep(t) {
			return
		}
	case opCAW:
		l.written(t)
		t.good(0)
	case opWriteSame:
		if l.writeSameNext(t) {
			return
		}
	case opUnmap:
		if l.unmapNext(t) {
			return
		}
	case opSync:
		t.good(0)
	}
	l.complete(t)
}

// complete ends a running task and tells the transport (S1).
func (l *LUN) complete(t *Task) {
	l.unlistRunning(t)
	if t.Status == cdb.StatusCheckCondition {
		l.stats.CheckCondition.Add(1)
	}
	t.state = taskComplete
	t.Completer.TaskDone(t)
}

// written accounts a successful write of the task's range.
func (l *LUN) written(t *Task) {
	l.stats.Writes.Add(1)
	l.stats.BytesWritten.Add(t.blocks << l.blockShift)
	l.setProvisioning(t.lba, t.blocks, false)
}

// needsFlush: FUA asks for it, and so does a write-through cache (WCE 0).
func (l *LUN) needsFlush(t *Task) bool {
	return t.Cmd.Has(cdb.FlagFUA) || !l.mode.wce
}

// verifyCompare compares what was read into scratch with the data-out
// (BYTCHK 01b: the same range; 11b: one block against each).
func (l *LUN) verifyCompare(t *Task) {
	c := &t.Cmd
	n := uint32(t.blocks << l.blockShift)
	switch c.ByteCheck {
	case 0:
	case 0b11:
		want := t.data.s[0][:l.blockSize]
		for off := uint32(0); off < n; off += l.blockSize {
			got := t.scratch.span(off, l.blockSize)
			if !bytes.Equal(got, want) {
				l.miscompare(t, uint64(off)+uint64(firstDiff(want, got)))
				return
			}
		}
	default:
		if at := equalSegs(&t.data, &t.scratch, n); at >= 0 {
			l.miscompare(t, uint64(at))
			return
		}
	}
	t.good(0)
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// miscompare ends t with MISCOMPARE and the byte offset of the first
// difference in the INFORMATION field (SBC-3 5.2, 5.33).
func (l *LUN) miscompare(t *Task, off uint64) {
	t.checkCondition(cdb.Sense{Key: cdb.KeyMiscompare, ASC: cdb.ASCMiscompareDuringVerify,
		Information: off, InformationValid: true})
}

// statusSense is the one translation of a bdev status to SCSI status and
// sense; its test walks every bdev.Status.
func statusSense(io *bdev.IO, o op) (cdb.Status, cdb.Sense) {
	switch io.Status {
	case bdev.StatusSuccess:
		return cdb.StatusGood, cdb.Sense{}
	case bdev.StatusSCSI:
		d := io.SCSI
		return cdb.Status(d.Status), cdb.Sense{Key: cdb.SenseKey(d.SenseKey), ASC: cdb.ASC(d.ASC)<<8 | cdb.ASC(d.ASCQ)}
	case bdev.StatusMiscompare:
		return cdb.StatusCheckCondition, cdb.Sense{Key: cdb.KeyMiscompare, ASC: cdb.ASCMiscompareDuringVerify,
			Information: io.MiscompareOffset, InformationValid: true}
	case bdev.StatusOutOfRange:
		return cdb.StatusCheckCondition, senseOf(cdb.KeyIllegalRequest, cdb.ASCLBAOutOfRange)
	case bdev.StatusUnsupported:
		return cdb.StatusCheckCondition, senseOf(cdb.KeyIllegalRequest, cdb.ASCInvalidCommandOperationCode)
	case bdev.StatusInvalid:
		return cdb.StatusCheckCondition, senseOf(cdb.KeyIllegalRequest, cdb.ASCInvalidFieldInCDB)
	case bdev.StatusErrno:
		switch io.Errno {
		case unix.EIO:
			if io.Type == bdev.IORead || io.Type == bdev.IOCompare {
				return cdb.StatusCheckCondition, senseOf(cdb.KeyMediumError, cdb.ASCUnrecoveredReadError)
			}
			return cdb.StatusCheckCondition, senseOf(cdb.KeyMediumError, cdb.ASCWriteError)
		case unix.ENOSPC:
			// SBC-3 4.7.3.6: SPACE ALLOCATION FAILED WRITE PROTECT.
			return cdb.StatusCheckCondition, senseOf(cdb.KeyDataProtect, ascSpaceAllocationFailed)
		}
		return cdb.StatusCheckCondition, senseOf(cdb.KeyHardwareError, cdb.ASCInternalTargetFailure)
	case bdev.StatusAborted:
		return cdb.StatusCheckCondition, senseOf(cdb.KeyAbortedCommand, cdb.ASCNoAdditionalSense)
	case bdev.StatusNoResources, bdev.StatusRetry:
		return cdb.StatusBusy, cdb.Sense{} // the initiator retries
	}
	return cdb.StatusCheckCondition, senseOf(cdb.KeyHardwareError, cdb.ASCInternalTargetFailure)
}

// ascSpaceAllocationFailed is SPACE ALLOCATION FAILED WRITE PROTECT.
const ascSpaceAllocationFailed cdb.ASC = 0x2707

// synchronize runs SYNCHRONIZE CACHE (SBC-3 5.22): a flush of the range;
// NUMBER OF LOGICAL BLOCKS 0 means through the last block.
func (l *LUN) synchronize(t *Task) Progress {
	c := &t.Cmd
	if err := c.CheckRange(l.blocks); err != nil {
		t.fail(err)
		return l.done(t)
	}
	t.op, t.lba, t.blocks = opSync, c.LBA, uint64(c.Blocks)
	if t.blocks == 0 {
		t.blocks = l.blocks - c.LBA
	}
	if t.blocks == 0 {
		t.good(0)
		return l.done(t)
	}
	if !l.takeIO(t) {
		return l.busy(t)
	}
	if t.lba == 0 && t.blocks == l.blocks {
		t.blocks = 0 // bdev: a flush of 0 blocks is the whole bdev
	}
	return l.submit(t, bdev.IOFlush, nil)
}

// compareAndWrite checks COMPARE AND WRITE (SBC-3 5.2) and asks for its
// 2×N blocks of data-out.
func (l *LUN) compareAndWrite(t *Task) Progress {
	c := &t.Cmd
	if c.Blocks > l.cawBlocksMax() {
		t.fail(cdbFieldError(13))
		return l.done(t)
	}
	if err := c.CheckRange(l.blocks); err != nil {
		t.fail(err)
		return l.done(t)
	}
	t.op, t.lba, t.blocks = opCAW, c.LBA, uint64(c.Blocks)
	t.DataSize = uint32(c.Blocks) << l.blockShift * 2
	if t.TransferLength != t.DataSize {
		// SBC-3 5.2: the Data-Out Buffer holds exactly the verify and the
		// write data; another length means the CDB is not what was sent.
		t.fail(cdbFieldError(13))
		return l.done(t)
	}
	if c.Blocks == 0 {
		t.good(0)
		return l.done(t)
	}
	if !l.takeIO(t) {
		return l.busy(t)
	}
	return l.askDataOut(t)
}

// submitCAW sends the compare-and-write: the layer takes the range lock,
// reads, compares and writes (S5).
func (l *LUN) submitCAW(t *Task) Progress {
	n := t.blocks << l.blockShift
	l.listRunning(t)
	io := t.io
	io.Type, io.OffsetBlocks, io.Blocks = bdev.IOCompareAndWrite, t.lba, t.blocks
	io.Completer = (*taskIO)(t)
	io.Lock = nil
	buf := t.data.s[0] // one segment: cawBlocksMax keeps both halves in it
	io.SetBuf(buf[n : 2*n])
	t.cmpIov[0] = buf[:n]
	io.CompareIovecs = t.cmpIov[:]
	l.ch.Submit(io)
	return ProgressRunning
}

// writeSame checks WRITE SAME (SBC-3 5.41, 5.42).
func (l *LUN) writeSame(t *Task) Progress {
	c := &t.Cmd
	if c.Has(cdb.FlagAnchor) {
		t.fail(newFieldError(1, 4, true)) // ANC_SUP is 0
		return l.done(t)
	}
	if c.Has(cdb.FlagUnmap) && !l.cfg.Thin {
		t.fail(newFieldError(1, 3, true)) // LBPWS is 0
		return l.done(t)
	}
	if c.LBA > l.blocks {
		t.fail(cdb.ErrLBAOutOfRange)
		return l.done(t)
	}
	blocks := uint64(c.Blocks)
	if blocks == 0 {
		blocks = l.blocks - c.LBA // WSNZ 0: through the last block
	}
	if blocks > writeSameBlocksMax {
		t.fail(lengthFieldError(c.Opcode))
		return l.done(t)
	}
	if c.LBA+blocks > l.blocks {
		t.fail(cdb.ErrLBAOutOfRange)
		return l.done(t)
	}
	t.op, t.lba, t.blocks = opWriteSame, c.LBA, blocks
	if c.Has(cdb.FlagNDOB) {
		t.DataSize = 0
	} else {
		t.DataSize = l.blockSize
	}
	if blocks == 0 {
		t.good(0)
		return l.done(t)
	}
	if !l.takeIO(t) {
		return l.busy(t)
	}
	if c.Has(cdb.FlagNDOB) {
		return l.writeSameRun(t)
	}
	t.DataOut = min(t.DataSize, t.TransferLength)
	if t.DataOut < l.blockSize {
		// SBC-3 5.41: the data-out is exactly one logical block.
		t.fail(cdb.ErrParameterListLength)
		return l.done(t)
	}
	if !l.takeBuf(t, t.DataOut) {
		return l.busy(t)
	}
	t.state = taskDataOut
	return ProgressDataOut
}

// writeSameRun picks how to write the block over the range: unmap it when
// asked and the block reads back as unmapped blocks do, write zeroes when
// it is zeros, else chunks of the block repeated in scratch.
func (l *LUN) writeSameRun(t *Task) Progress {
	c := &t.Cmd
	zero := c.Has(cdb.FlagNDOB) || allZero(t.data.s[0][:l.blockSize])
	l.listRunning(t)
	switch {
	case c.Has(cdb.FlagUnmap):
		// SBC-3 5.42: UNMAP set on a thin LUN deallocates the range (which
		// then reads as zeros when LBPRZ is set), whatever the block holds.
		t.step = stepSecond // unmapping
		l.send(t, bdev.IOUnmap, t.lba, t.blocks, nil)
	case zero && l.b.IOTypes().Has(bdev.IOWriteZeroes):
		l.send(t, bdev.IOWriteZeroes, t.lba, t.blocks, nil)
	default:
		chunk := min(t.blocks<<l.blockShift, segSize)
		if !l.takeScratch(t, uint32(chunk)) {
			// Out of buffers after the data arrived: fail retryable.
			l.unlistRunning(t)
			t.Status, t.SenseLen = cdb.StatusBusy, 0
			return l.done(t)
		}
		src := t.scratch.s[0][:chunk]
		if zero {
			clear(src)
		} else {
			for off := 0; off < len(src); off += int(l.blockSize) {
				copy(src[off:], t.data.s[0][:l.blockSize])
			}
		}
		t.index = 0
		l.writeSameChunk(t)
	}
	return ProgressRunning
}

// writeSameChunk writes the next chunk of the range from scratch.
func (l *LUN) writeSameChunk(t *Task) {
	per := uint64(t.scratch.size) >> l.blockShift
	done := uint64(t.index) * per
	n := min(per, t.blocks-done)
	l.send(t, bdev.IOWrite, t.lba+done, n, &t.scratch)
}

// writeSameNext goes on after a WRITE SAME IO; false when the command is
// done.
func (l *LUN) writeSameNext(t *Task) bool {
	if t.step == stepSecond { // unmapped
		l.setProvisioning(t.lba, t.blocks, true)
		t.good(0)
		return false
	}
	if t.scratch.n == 0 { // write zeroes
		l.written(t)
		t.good(0)
		return false
	}
	per := uint64(t.scratch.size) >> l.blockShift
	t.index++
	if uint64(t.index)*per < t.blocks {
		l.writeSameChunk(t)
		return true
	}
	l.written(t)
	t.good(0)
	return false
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// unmap checks an UNMAP parameter list and starts its first descriptor.
func (l *LUN) unmap(t *Task, p []byte) Progress {
	list, err := cdb.ParseUnmapParameters(p)
	if err == nil {
		err = list.Check(l.blocks, unmapDescriptorsMax, unmapBlocksMax)
	}
	if err != nil {
		t.fail(err)
		return l.done(t)
	}
	t.op, t.index, t.lba, t.blocks = opUnmap, 0, 0, 0
	if !l.takeIO(t) {
		// Data arrived but no IO: fail retryable rather than lose it.
		t.Status, t.SenseLen = cdb.StatusBusy, 0
		return l.done(t)
	}
	l.listRunning(t)
	if !l.unmapNext(t) {
		l.unlistRunning(t)
		t.good(0)
		return l.done(t)
	}
	return ProgressRunning
}

// unmapNext sends the unmap of the next descriptor that covers blocks,
// after accounting the one that completed; false when none is left.
func (l *LUN) unmapNext(t *Task) bool {
	list, _ := cdb.ParseUnmapParameters(t.data.s[0][:t.DataOut]) // checked in unmap
	if t.blocks != 0 {
		l.setProvisioning(t.lba, t.blocks, true)
		t.blocks = 0
	}
	for int(t.index) < list.Len() {
		lba, n := list.At(int(t.index))
		t.index++
		if n == 0 {
			continue
		}
		t.lba, t.blocks = lba, uint64(n)
		l.send(t, bdev.IOUnmap, lba, uint64(n), nil)
		return true
	}
	t.good(0)
	return false
}

// orwriteLock asks for the range lock ORWRITE runs under (S5).
func (l *LUN) orwriteLock(t *Task) Progress {
	l.listRunning(t)
	lock, err := l.ch.LockRange(bdev.LockRequest{OffsetBlocks: t.lba, Blocks: t.blocks,
		Mode: bdev.LockWrites, Ctx: t}, orwriteLocker{})
	if err != nil {
		l.unlistRunning(t)
		t.fail(err)
		return l.done(t)
	}
	t.lock = lock
	return ProgressRunning
}

// orwriteLocker is every ORWRITE's bdev.LockCompleter: zero size, no
// allocation.
type orwriteLocker struct{}

func (orwriteLocker) RangeLocked(lock *bdev.RangeLock, err error) {
	t := lock.Ctx().(*Task)
	l := t.lun
	if err != nil {
		t.lock = nil
		t.checkCondition(senseOf(cdb.KeyAbortedCommand, cdb.ASCNoAdditionalSense))
		l.complete(t)
		return
	}
	t.step = stepFirst
	l.send(t, bdev.IORead, t.lba, t.blocks, &t.scratch)
}

func (orwriteLocker) RangeUnlocked(lock *bdev.RangeLock) {
	t := lock.Ctx().(*Task)
	t.lock = nil
	t.lun.complete(t)
}

// orwriteStep goes on after an ORWRITE IO; false never: it ends by unlock.
func (l *LUN) orwriteStep(t *Task) bool {
	n := t.blocks << l.blockShift
	switch t.step {
	case stepFirst: // read done: OR the data-out in, write it under the lock
		orSegs(&t.scratch, &t.data, uint32(n))
		t.step = stepSecond
		l.send(t, bdev.IOWrite, t.lba, t.blocks, &t.scratch)
		return true
	case stepSecond:
		l.written(t)
		if l.needsFlush(t) {
			t.step = stepFlush
			l.send(t, bdev.IOFlush, t.lba, t.blocks, nil)
			return true
		}
	}
	t.good(0)
	l.orwriteUnlock(t)
	return true
}

func (l *LUN) orwriteUnlock(t *Task) {
	t.step = stepUnlock
	t.lock.Unlock()
}
