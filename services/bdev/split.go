package bdev

// Splitting: an admitted IO larger than the back end takes in one piece
// (Info.MaxTransferBlocks, BoundaryBlocks, MaxIovecs, MaxUnmapBlocks) goes
// down as children from the same reactor's pool, at most splitChildrenMax
// at a time; the parent completes when the last child does, with the first
// failure if any. Children are not admitted (the parent is, B6) and are not
// held: the parent got past the locks.

// splitChildrenMax children of one parent are in flight at once: enough to
// keep a striped back end busy, few enough that one huge IO cannot empty the
// reactor's pool.
const splitChildrenMax = 32

// needsSplit reports whether io must go down in pieces.
func (bc *bdevChannel) needsSplit(io *IO) bool {
	info := &bc.bdev.info
	switch io.Type {
	case IORead, IOWrite, IOCompare:
		if m := info.MaxTransferBlocks; m != 0 && io.Blocks > uint64(m) {
			return true
		}
		if b := uint64(info.BoundaryBlocks); b != 0 && io.OffsetBlocks&(b-1)+io.Blocks > b {
			return true
		}
		return len(io.Iovecs) > info.MaxIovecs
	case IOUnmap, IOWriteZeroes:
		m := info.MaxUnmapBlocks
		return m != 0 && io.Blocks > uint64(m)
	}
	return false
}

func (bc *bdevChannel) splitStart(io *IO) {
	io.split = splitState{nextBlock: io.OffsetBlocks, leftBlock: io.Blocks}
	bc.splitContinue(io)
}

// splitContinue sends the parent's next children down. Out of IOs with no
// child in flight, the parent parks and resumes from the retry (B5).
func (bc *bdevChannel) splitContinue(parent *IO) {
	l := bc.local
	s := &parent.split
	for s.leftBlock > 0 && s.out < splitChildrenMax && parent.Status == StatusPending {
		child := l.AllocIO()
		if child == nil {
			if s.out == 0 {
				parent.flags |= ioResume
				bc.park(parent)
			}
			return
		}
		n := bc.childBlocks(parent)
		if n == 0 {
			// Iovecs so fragmented that MaxIovecs of them hold no whole block.
			child.Free()
			parent.Status = StatusInvalid
			break
		}
		child.Type = parent.Type
		child.OffsetBlocks = s.nextBlock
		child.Blocks = n
		child.Parent = parent
		child.ch = parent.ch
		child.flags = ioChild
		child.state = ioPending
		child.Status = StatusPending
		if parent.Type.HasData() {
			bc.childIovecs(parent, child, n<<bc.bdev.blockShift)
			if parent.Metadata != nil {
				md := uint64(bc.bdev.metadataSize)
				first := (s.nextBlock - parent.OffsetBlocks) * md
				child.Metadata = parent.Metadata[first : first+n*md]
			}
		}
		s.nextBlock += n
		s.leftBlock -= n
		s.out++
		bc.toBackend(child)
	}
	if s.out == 0 && (s.leftBlock == 0 || parent.Status != StatusPending) {
		bc.splitEnd(parent)
	}
}

// childBlocks is how many blocks the next child of parent takes: up to the
// transfer limit and the next boundary, and for data only as many whole
// blocks as MaxIovecs iovecs hold.
func (bc *bdevChannel) childBlocks(parent *IO) uint64 {
	info := &bc.bdev.info
	s := &parent.split
	n := s.leftBlock
	switch parent.Type {
	case IOUnmap, IOWriteZeroes:
		if m := uint64(info.MaxUnmapBlocks); m != 0 {
			n = min(n, m)
		}
		return n
	}
	if m := uint64(info.MaxTransferBlocks); m != 0 {
		n = min(n, m)
	}
	if b := uint64(info.BoundaryBlocks); b != 0 {
		n = min(n, b-s.nextBlock&(b-1))
	}
	want := n << bc.bdev.blockShift
	var have uint64
	iov, off := s.iov, s.iovOff
	for k := 0; k < info.MaxIovecs && iov < len(parent.Iovecs) && have < want; k++ {
		have += uint64(len(parent.Iovecs[iov]) - off)
		iov, off = iov+1, 0
	}
	return min(want, have) >> bc.bdev.blockShift
}

// childIovecs gives child the next size bytes of parent's iovecs.
func (bc *bdevChannel) childIovecs(parent, child *IO, size uint64) {
	s := &parent.split
	child.Iovecs = child.inline[:0]
	for size > 0 {
		v := parent.Iovecs[s.iov][s.iovOff:]
		if uint64(len(v)) > size {
			v = v[:size]
			s.iovOff += len(v)
		} else {
			s.iov++
			s.iovOff = 0
		}
		child.Iovecs = append(child.Iovecs, v)
		size -= uint64(len(v))
	}
}

// childDone folds a finished child into its parent.
func (bc *bdevChannel) childDone(child *IO) {
	parent := child.Parent
	s := &parent.split
	if child.Status != StatusSuccess && parent.Status == StatusPending {
		parent.Status = child.Status
		parent.NVMe, parent.SCSI, parent.Errno = child.NVMe, child.SCSI, child.Errno
		if child.Status == StatusMiscompare {
			parent.MiscompareOffset = (child.OffsetBlocks-parent.OffsetBlocks)<<bc.bdev.blockShift + child.MiscompareOffset
		}
	}
	child.flags = 0
	child.state = ioReady
	child.Free()
	s.out--
	bc.splitContinue(parent)
}

// splitEnd completes the parent with the first failure, or success.
func (bc *bdevChannel) splitEnd(parent *IO) {
	st := parent.Status
	if st == StatusPending {
		st = StatusSuccess
	}
	bc.endAdmitted(parent, st)
}
