package replica

import (
	"fmt"
	"sync/atomic"

	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage"
)

// metaStore keeps the member states and the dirty bitmap on the metadata
// bdev (meta.go has the format). Owner: the control plane until the stage
// is registered (load, the first write), then the home reactor, which alone
// writes (want, Complete); persistSync asks it from the control plane.
type metaStore struct {
	s          *Stage
	desc       *bdev.Desc
	bs         uint64
	copyBlocks uint64
	buf        *bdev.Region // one copy, mapped at open

	// Home reactor only, after load.
	active  bool // encode sets the active flag (X7): from load to a clean stop
	seq     uint64
	io      *bdev.IO // the flush IO, taken once from the home reactor's pool
	writing bool
	target  uint64          // the generation the write in flight persists
	notify  []chan struct{} // control-plane waiters of the write in flight
	pending []chan struct{} // and of the next one
	failed  atomic.Bool     // a metadata write failed: the bitmap is memory only now
}

func openStore(s *Stage, d *bdev.Desc) (*metaStore, error) {
	bs := uint64(d.Bdev().BlockSize())
	size := metaCopySize(uint64(len(s.dirty))*8, bs)
	if need := 2 * size / bs; d.Bdev().Blocks() < need {
		return nil, fmt.Errorf("replica %q: metadata bdev %q has %d blocks, want at least %d for two copies of %d bytes: %w",
			s.cfg.Name, d.Bdev().Name(), d.Bdev().Blocks(), need, size, stage.ErrConfig)
	}
	buf, err := bdev.MapRegion(int(size))
	if err != nil {
		return nil, err
	}
	return &metaStore{s: s, desc: d, bs: bs, copyBlocks: size / bs, buf: buf}, nil
}

func (m *metaStore) close() {
	if m.io != nil {
		io := m.io
		m.s.home.Call(io.Free)
		m.io = nil
	}
	m.buf.Unmap()
	m.desc.Close()
}

// load reads both copies and restores member states and the bitmap from the
// newer valid one; a bdev never written gets its first copy now. Control
// plane, before the stage is registered.
func (m *metaStore) load() error {
	s := m.s
	b := m.buf.Bytes()
	a := make([]byte, len(b))
	if err := stage.SyncIO(s.home, m.desc, bdev.IORead, 0, m.copyBlocks, b); err != nil {
		return fmt.Errorf("replica %q: read metadata: %w", s.cfg.Name, err)
	}
	copy(a, b)
	if err := stage.SyncIO(s.home, m.desc, bdev.IORead, m.copyBlocks, m.copyBlocks, b); err != nil {
		return fmt.Errorf("replica %q: read metadata: %w", s.cfg.Name, err)
	}
	md, err := newestMeta(a, b)
	m.active = true // X7: running from the write below until a clean stop
	if err != nil {
		if isBlank(a) && isBlank(b) {
			return m.writeSync() // a fresh metadata bdev: the members start in sync
		}
		return fmt.Errorf("replica %q: metadata bdev %q holds no valid copy (%v); zero it to start afresh: %w",
			s.cfg.Name, m.desc.Bdev().Name(), err, ErrMeta)
	}
	switch {
	case md.regionBlocks != s.regionBlocks:
		return fmt.Errorf("replica %q: metadata region of %d blocks, the stage's is %d: %w", s.cfg.Name, md.regionBlocks, s.regionBlocks, ErrMeta)
	case md.capacity != s.blocks:
		return fmt.Errorf("replica %q: metadata for %d blocks, the stage has %d: %w", s.cfg.Name, md.capacity, s.blocks, ErrMeta)
	case len(md.names) != s.membersN():
		return fmt.Errorf("replica %q: metadata for %d members, the stage has %d: %w", s.cfg.Name, len(md.names), s.membersN(), ErrMeta)
	case uint64(len(md.bitmap)) != uint64(len(s.dirty))*8:
		return fmt.Errorf("replica %q: metadata bitmap of %d bytes, want %d: %w", s.cfg.Name, len(md.bitmap), len(s.dirty)*8, ErrMeta)
	}
	m.seq = md.seq
	for i := range s.dirty {
		w := le.Uint64(md.bitmap[8*i:])
		s.dirty[i].Store(w)
		s.synced[i].Store(w) // on the metadata bdev already
	}
	for i := range s.membersN() {
		mem := &s.members[i]
		name := mem.desc.Load().Bdev().Name()
		switch {
		case md.names[i] != name: // another bdev in this slot: it holds nothing of ours
			mem.state.Store(stateFaulty)
			mem.needsFull.Store(true)
		case md.states[i] == persistStale:
			mem.state.Store(stateFaulty)
		case md.states[i] == persistEmpty:
			mem.state.Store(stateFaulty)
			mem.needsFull.Store(true)
		}
	}
	if md.flags&metaFlagActive != 0 { // X7: the in-sync members may differ on the dirty regions
		s.wasUnclean = true
		s.unclean.Store(true)
		s.copying.Store(true) // the sweeper keeps the bits until the resync has copied them
	}
	return m.writeSync() // active: a crash from here on is seen by the next load
}

func isBlank(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// writeSync writes the next copy from the control plane, before any IO.
func (m *metaStore) writeSync() error {
	m.seq++
	m.encode()
	off := (m.seq % 2) * m.copyBlocks
	if err := stage.SyncIO(m.s.home, m.desc, bdev.IOWrite, off, m.copyBlocks, m.buf.Bytes()); err != nil {
		return fmt.Errorf("replica %q: write metadata: %w", m.s.cfg.Name, err)
	}
	return nil
}

// encode writes the stage's state now into the buffer: each member's
// persisted state and name, then the bitmap, then the checksum.
func (m *metaStore) encode() {
	s := m.s
	buf := m.buf.Bytes()
	clear(buf)
	le.PutUint64(buf[offMagic:], metaMagic)
	le.PutUint32(buf[offVersion:], metaVersion)
	le.PutUint32(buf[offMembers:], uint32(s.membersN()))
	le.PutUint64(buf[offSeq:], m.seq)
	le.PutUint64(buf[offRegion:], s.regionBlocks)
	le.PutUint64(buf[offCapacity:], s.blocks)
	le.PutUint64(buf[offBitmapBytes:], uint64(len(s.dirty))*8)
	if m.active {
		le.PutUint64(buf[offFlags:], metaFlagActive)
	}
	for i := range s.membersN() {
		mem := &s.members[i]
		rec := buf[offRecords+i*recordSize:]
		st := uint8(persistInSync)
		if mem.state.Load() != stateInSync {
			st = persistStale
			if mem.needsFull.Load() {
				st = persistEmpty
			}
		}
		rec[0] = st
		copy(rec[recordName:recordName+NameLenMax], mem.desc.Load().Bdev().Name())
	}
	for i := range s.dirty {
		le.PutUint64(buf[metaHeaderSize+8*i:], s.dirty[i].Load())
	}
	le.PutUint64(buf[offChecksum:], metaChecksum(buf))
}

// want starts a write of the newest state unless one is in flight (then
// Complete starts the next). Home reactor.
func (m *metaStore) want() {
	if m.writing {
		return
	}
	s := m.s
	if m.failed.Load() {
		s.persistedGen.Store(s.dirtyGen.Load())
		m.wakeAll()
		return
	}
	if m.io == nil {
		ch, err := m.desc.Channel(s.home)
		if err == nil {
			m.io = ch.AllocIO()
		}
		if m.io == nil {
			m.broken(fmt.Sprintf("no channel or IO for the metadata bdev: %v", err))
			return
		}
	}
	ch, _ := m.desc.Channel(s.home)
	m.writing = true
	m.target = s.dirtyGen.Load() // X2: every bit and state of gen <= target is set before this load
	m.notify, m.pending = m.pending, m.notify[:0]
	m.seq++
	m.encode()
	io := m.io
	io.Type, io.OffsetBlocks, io.Blocks, io.Completer = bdev.IOWrite, (m.seq%2)*m.copyBlocks, m.copyBlocks, m
	io.SetBuf(m.buf.Bytes())
	ch.Submit(io)
}

// Complete: the copy is written; release what waited for it.
func (m *metaStore) Complete(io *bdev.IO) {
	s := m.s
	m.writing = false
	if io.Status != bdev.StatusSuccess {
		m.broken("metadata write failed: " + io.StatusString())
	}
	if io.Status == bdev.StatusSuccess {
		// X2: a bit the copy holds and the bitmap still has is persisted;
		// one the sweeper cleared since the encode is not (its clear is on
		// the next write), so synced stays within what the next copy keeps.
		b := m.buf.Bytes()[metaHeaderSize:]
		for i := range s.synced {
			s.synced[i].Store(le.Uint64(b[8*i:]) & s.dirty[i].Load())
		}
	}
	if s.persistedGen.Load() < m.target {
		s.persistedGen.Store(m.target)
	}
	for _, c := range m.notify {
		close(c)
	}
	m.notify = m.notify[:0]
	m.wakeAll()
	if s.dirtyGen.Load() > s.persistedGen.Load() || len(m.pending) > 0 {
		m.want()
	}
}

// broken turns the bitmap memory-only after a metadata failure: writes are
// not held hostage by a dead metadata bdev; the log says what is lost.
func (m *metaStore) broken(why string) {
	if m.failed.CompareAndSwap(false, true) {
		m.s.log.Error("replica metadata lost: the bitmap is memory only, a resync after a crash may miss regions written from now on", "why", why,
			"metadata", m.desc.Bdev().Name())
	}
	m.s.persistedGen.Store(m.s.dirtyGen.Load())
}

// wakeAll tells every channel the metadata moved on.
func (m *metaStore) wakeAll() {
	for i := range m.s.chanPtrs {
		if c := m.s.chanPtrs[i].Load(); c != nil {
			c.wake()
		}
	}
}

// persistSync writes the state now and waits for it: control plane, after
// a member's state changed (replacement, rebuild start or end).
func (s *Stage) persistSync() error {
	return s.persistWith(func() {})
}

// persistStop writes the last copy at Close: clean, unless an unclean
// resync is unfinished (X7).
func (s *Stage) persistStop(clean bool) error {
	return s.persistWith(func() { s.store.active = !clean })
}

// persistWith runs set on the home reactor, then writes the state and
// waits for it.
func (s *Stage) persistWith(set func()) error {
	if s.store == nil {
		return nil
	}
	s.dirtyGen.Add(1)
	done := make(chan struct{})
	if err := s.home.PostFunc(func() {
		set()
		s.store.pending = append(s.store.pending, done)
		s.store.want()
	}); err != nil {
		return err
	}
	select {
	case <-done:
	case <-s.home.Done():
		return fmt.Errorf("replica %q: reactor stopped before the metadata was written", s.cfg.Name)
	}
	if s.store.failed.Load() {
		return fmt.Errorf("replica %q: metadata bdev %q failed: %w", s.cfg.Name, s.store.desc.Bdev().Name(), ErrMeta)
	}
	return nil
}
