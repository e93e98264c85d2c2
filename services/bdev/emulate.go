package bdev

import "bytes"

// Emulation: a back end that reads but does not compare gets IOCompare as
// a read into a bounce buffer and a memcmp; one that also writes gets
// IOCompareAndWrite as SBC-4 describes it, made atomic by a range lock:
//
//	lock the range (LockWrites) ─► read ─► compare ─► write ─► unlock ─► complete
//	                                         └─ differ: unlock ─► StatusMiscompare
//
// The IO is admitted before the lock is asked for and carries it (IO.lock),
// so the lock's drain does not wait for the IO itself, while every other
// write to the range, on any reactor, is held until the write is done. The
// read and the write are children at the back end, like split children:
// not admitted, not held. Out of IOs or bounce buffers, the parent parks
// and resumes the step it was at (B5).

type emuStep uint8

const (
	emuLocking emuStep = iota
	emuReading
	emuWriting
	emuUnlocking
)

// emuState is an emulated IO's progress.
type emuState struct {
	step emuStep
	buf  []byte // bounce buffer of the read, from the Local's pool
}

// emulates reports whether the layer does t for this bdev's back end.
func (info *Info) emulates(t IOType) bool {
	switch t {
	case IOCompare:
		return !info.IOTypes.Has(IOCompare) && info.IOTypes.Has(IORead)
	case IOCompareAndWrite:
		return !info.IOTypes.Has(IOCompareAndWrite) && info.IOTypes.Has(IORead) && info.IOTypes.Has(IOWrite)
	}
	return false
}

// emulateStart begins an admitted compare or compare-and-write.
func (bc *bdevChannel) emulateStart(io *IO) {
	io.emu = emuState{step: emuReading}
	if io.Type == IOCompareAndWrite {
		io.emu.step = emuLocking
		lock, err := io.ch.LockRange(LockRequest{OffsetBlocks: io.OffsetBlocks, Blocks: io.Blocks, Mode: LockWrites, Ctx: io}, cawLocker{})
		if err != nil { // check() made the range valid: cannot happen
			bc.endAdmitted(io, StatusFailed)
			return
		}
		io.lock = lock // the IO passes its own lock (B6)
		return
	}
	bc.emulateRun(io)
}

// cawLocker is every compare-and-write's LockCompleter: zero size, so no
// allocation (B9).
type cawLocker struct{}

func (cawLocker) RangeLocked(l *RangeLock, err error) {
	io := l.Ctx().(*IO)
	bc := io.ch.bc
	if err != nil { // no timeout is asked for; fail safe
		io.lock = nil
		bc.endAdmitted(io, StatusAborted)
		return
	}
	io.emu.step = emuReading
	bc.local.submitDepth++
	bc.emulateRun(io)
	bc.local.submitDepth--
}

func (cawLocker) RangeUnlocked(l *RangeLock) {
	io := l.Ctx().(*IO)
	io.lock = nil
	io.ch.bc.endAdmitted(io, io.Status)
}

// emulateRun sends down the read or the write of the current step.
func (bc *bdevChannel) emulateRun(io *IO) {
	l := bc.local
	size := io.Blocks << bc.bdev.blockShift
	if io.emu.step == emuReading && io.emu.buf == nil {
		if size > uint64(l.large.bufSize) {
			bc.emulateEnd(io, StatusInvalid) // larger than a bounce buffer
			return
		}
		if io.emu.buf = l.AllocBuf(int(size)); io.emu.buf == nil {
			io.flags |= ioResume
			bc.park(io)
			return
		}
	}
	child := l.AllocIO()
	if child == nil {
		io.flags |= ioResume
		bc.park(io)
		return
	}
	child.OffsetBlocks, child.Blocks = io.OffsetBlocks, io.Blocks
	child.Parent, child.ch = io, io.ch
	child.flags, child.state, child.Status = ioEmuChild, ioPending, StatusPending
	if io.emu.step == emuReading {
		child.Type = IORead
		child.SetBuf(io.emu.buf)
	} else {
		child.Type = IOWrite
		child.Iovecs = append(child.inline[:0], io.Iovecs...)
	}
	bc.toBackend(child)
}

// emulateChildDone takes the read's or the write's result.
func (bc *bdevChannel) emulateChildDone(child *IO) {
	io := child.Parent
	st := child.Status
	io.NVMe, io.SCSI, io.Errno = child.NVMe, child.SCSI, child.Errno
	child.flags, child.state = 0, ioReady
	child.Free()
	if st != StatusSuccess || io.emu.step == emuWriting {
		bc.emulateEnd(io, st)
		return
	}
	want := io.Iovecs
	if io.Type == IOCompareAndWrite {
		want = io.CompareIovecs
	}
	got := io.emu.buf
	at := 0
	for _, v := range want {
		if !bytes.Equal(v, got[:len(v)]) {
			for i := range v {
				if v[i] != got[i] {
					io.MiscompareOffset = uint64(at + i)
					break
				}
			}
			bc.emulateEnd(io, StatusMiscompare)
			return
		}
		got = got[len(v):]
		at += len(v)
	}
	if io.Type == IOCompare {
		bc.emulateEnd(io, StatusSuccess)
		return
	}
	io.emu.step = emuWriting
	bc.emulateRun(io)
}

// emulateEnd gives back the bounce buffer and ends the IO, after the
// unlock for a compare-and-write.
func (bc *bdevChannel) emulateEnd(io *IO, st Status) {
	if io.emu.buf != nil {
		bc.local.FreeBuf(io.emu.buf)
		io.emu.buf = nil
	}
	if io.lock != nil {
		io.emu.step = emuUnlocking
		io.Status = st // kept until RangeUnlocked
		io.lock.Unlock()
		return
	}
	bc.endAdmitted(io, st)
}

// endAdmitted completes an admitted IO the layer itself ran (a split
// parent, an emulation), now or, inside a Submit, on the next poll (B2).
func (bc *bdevChannel) endAdmitted(io *IO, st Status) {
	io.state = ioCompleting
	io.Status = st
	if bc.local.submitDepth > 0 {
		bc.local.deferCompletion(io)
		return
	}
	io.finish()
}
