package stage

import (
	"github.com/sluice-storage/sluice/services/bdev"
	"golang.org/x/sys/unix"
)

// Child takes an IO from ch's reactor pool and makes it the child of parent:
// the same type, range, data, compare data and metadata, Parent set, done as
// its completer. It returns nil when the pool is empty (S4). The child is
// ready to Submit on ch; the caller may still change its range or data.
func Child(ch *bdev.Channel, parent *bdev.IO, done bdev.Completer) *bdev.IO {
	c := ch.AllocIO()
	if c == nil {
		return nil
	}
	c.Type = parent.Type
	c.OffsetBlocks = parent.OffsetBlocks
	c.Blocks = parent.Blocks
	c.Iovecs = parent.Iovecs // read-only below the submitter while pending
	c.CompareIovecs = parent.CompareIovecs
	c.Metadata = parent.Metadata
	c.Parent = parent
	c.Completer = done
	return c
}

// CopyStatus gives dst src's status detail (NVMe, SCSI, errno, miscompare
// offset), so an upper IO fails exactly as the child below it did.
func CopyStatus(dst, src *bdev.IO) {
	dst.NVMe, dst.SCSI, dst.Errno, dst.MiscompareOffset = src.NVMe, src.SCSI, src.Errno, src.MiscompareOffset
}

// Finish ends child's parent with child's status and detail and frees child:
// the whole completion of a stage that sends one child per IO.
func Finish(child *bdev.IO) {
	parent := child.Parent
	st := child.Status
	CopyStatus(parent, child)
	child.Free()
	parent.Complete(st)
}

// Failure keeps the first failure of several children of one upper IO (S2).
type Failure struct {
	Status     bdev.Status // StatusPending while none failed
	nvme       bdev.NVMeStatus
	scsi       bdev.SCSIStatus
	errno      unix.Errno
	miscompare uint64
}

// Note records child's status if it failed and none failed before.
func (f *Failure) Note(child *bdev.IO) {
	if child.Status == bdev.StatusSuccess || f.Status != bdev.StatusPending {
		return
	}
	f.Status = child.Status
	f.nvme, f.scsi, f.errno, f.miscompare = child.NVMe, child.SCSI, child.Errno, child.MiscompareOffset
}

// NoteMiscompare records a miscompare at byte offset off of the upper IO
// (a child's offset moved into the parent's data) if none failed before.
func (f *Failure) NoteMiscompare(off uint64) {
	if f.Status == bdev.StatusPending || f.Status == bdev.StatusMiscompare && off < f.miscompare {
		f.Status = bdev.StatusMiscompare
		f.miscompare = off
	}
}

// Complete ends parent with the first failure, or success, and resets f.
func (f *Failure) Complete(parent *bdev.IO) {
	st := f.Status
	if st == bdev.StatusPending {
		st = bdev.StatusSuccess
	} else {
		parent.NVMe, parent.SCSI, parent.Errno, parent.MiscompareOffset = f.nvme, f.scsi, f.errno, f.miscompare
	}
	f.Status = bdev.StatusPending
	parent.Complete(st)
}

// SliceIovecs points dst's iovecs at size bytes of src starting at byte off:
// a child's share of its parent's data, without a copy. It uses dst's
// inline iovecs and reports false when the share needs more than
// bdev.IovecsInlineMax of them or src is too short.
func SliceIovecs(dst *bdev.IO, src []bdev.Iovec, off, size uint64) bool {
	dst.ResetIovecs()
	for _, v := range src {
		if size == 0 {
			break
		}
		if off >= uint64(len(v)) {
			off -= uint64(len(v))
			continue
		}
		piece := v[off:]
		off = 0
		if uint64(len(piece)) > size {
			piece = piece[:size]
		}
		if !dst.AddIovec(piece) {
			return false
		}
		size -= uint64(len(piece))
	}
	return size == 0
}
