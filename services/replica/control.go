package replica

import (
	"fmt"
	"time"

	"github.com/sluice-storage/sluice/services/stage"
)

// Fail marks a member faulty on the operator's word (SPDK's
// bdev_raid_remove_base_bdev keeps the slot): IO stops going to it and its
// missed writes are tracked from now on. Control plane.
func (s *Stage) Fail(member string) error {
	s.mu.Lock()
	i, err := s.memberIndex(member)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if rb := s.runningRebuild(); rb != nil && rb.target == i {
		s.StopRebuild()
	}
	s.setFaulty(i)
	return s.persistSync()
}

// ReAdd brings a faulty member back after a brief absence: it takes writes
// at once and a resync copies the regions the bitmap marks (all of them when
// the member needs a full rebuild). Control plane.
func (s *Stage) ReAdd(member string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, err := s.memberIndex(member)
	if err != nil {
		return err
	}
	if st := s.members[i].state.Load(); st != stateFaulty {
		return fmt.Errorf("replica %q: member %q is %s, want faulty to add it back: %w",
			s.cfg.Name, member, stateNames[st], stage.ErrConfig)
	}
	return s.startRebuild(i, s.members[i].needsFull.Load())
}

// Replace puts bdev base in the slot of the faulty member old and rebuilds
// it whole (SPDK's bdev_raid_add_base_bdev into an empty slot). The swap
// happens under a quiesce of the replica, so no IO is in flight on the old
// member when it is released. Control plane.
func (s *Stage) Replace(old, base string) error {
	s.mu.Lock()
	i, err := s.memberIndex(old)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if rb := s.runningRebuild(); rb != nil && rb.target == i {
		s.StopRebuild()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &s.members[i]
	if st := m.state.Load(); st != stateFaulty {
		return fmt.Errorf("replica %q: member %q is %s, want faulty to replace it (fail it first): %w",
			s.cfg.Name, old, stateNames[st], stage.ErrConfig)
	}
	nb, err := s.openMember(base)
	if err != nil {
		return err
	}
	d := nb.Descs[0]
	self, err := s.reg.Open(s.cfg.Name, false)
	if err != nil {
		nb.Close()
		return err
	}
	var was interface{ Close() }
	err = self.Quiesce(quiesceTimeout, func() error {
		was = m.desc.Swap(d)
		m.gen.Add(1)
		m.needsFull.Store(true)
		m.failures.Store(0) // a new device: the old one's count is in the log
		return nil
	})
	self.Close()
	if err != nil {
		nb.Close()
		return err
	}
	was.Close()
	s.log.Info("replica member replaced", "old", old, "new", base)
	return s.startRebuild(i, true)
}

func (s *Stage) runningRebuild() *rebuilder {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rb := s.rebuild; rb != nil && rb.step.Load() != stepDone {
		return rb
	}
	return nil
}

// StopRebuild stops a running rebuild after the region it is copying and
// waits for it to settle; the target stays faulty, and ReAdd resumes it.
func (s *Stage) StopRebuild() {
	s.mu.Lock()
	rb := s.rebuild
	s.mu.Unlock()
	if rb == nil {
		return
	}
	rb.stop.Store(true)
	s.home.PostFunc(rb.poke) // a throttled rebuild stops now, not after its wait
	<-rb.ended
}

// WaitRebuild waits at most timeout for the last rebuild started to end and
// returns how it ended; nil when none was started.
func (s *Stage) WaitRebuild(timeout time.Duration) error {
	s.mu.Lock()
	rb := s.rebuild
	s.mu.Unlock()
	if rb == nil {
		return nil
	}
	select {
	case <-rb.ended:
		return rb.err
	case <-time.After(timeout):
		return fmt.Errorf("replica %q: rebuild still running after %v (%d of %d regions)",
			s.cfg.Name, timeout, rb.regionsDone.Load(), rb.regionsAll)
	}
}

// openMember opens and claims base for a member slot and checks it can
// mirror this replica without changing what the replica promised (its
// Info, bdev B10).
func (s *Stage) openMember(base string) (*stage.Bases, error) {
	nb, err := stage.OpenBases(s.reg, s.cfg.Name, []string{base})
	if err != nil {
		return nil, err
	}
	b := nb.Descs[0].Bdev()
	bi := b.Info()
	switch {
	case b.BlockSize() != s.blockSize || b.MetadataSize() != 0:
		err = fmt.Errorf("replica %q: %q has %d-byte blocks (%d metadata bytes), want %d and none",
			s.cfg.Name, base, b.BlockSize(), b.MetadataSize(), s.blockSize)
	case b.Blocks() < s.blocks:
		err = fmt.Errorf("replica %q: %q has %d blocks, want at least %d", s.cfg.Name, base, b.Blocks(), s.blocks)
	case bi.IOTypes&s.info.IOTypes != s.info.IOTypes:
		err = fmt.Errorf("replica %q: %q does %v, want at least %v", s.cfg.Name, base, bi.IOTypes, s.info.IOTypes)
	case bi.BufAlign > max(s.info.BufAlign, 1):
		err = fmt.Errorf("replica %q: %q needs buffers aligned to %d, the replica promised %d",
			s.cfg.Name, base, bi.BufAlign, s.info.BufAlign)
	}
	if err != nil {
		nb.Close()
		return nil, fmt.Errorf("%w: %w", err, stage.ErrConfig)
	}
	return nb, nil
}

// AddMember grows the mirror by one member, base, and rebuilds it whole
// while IO goes on: what makes a replica put under a live bdev (its one
// member the old back end) a real mirror. The slot is added under a
// quiesce, so every reactor sees the new count from its next IO. Control
// plane.
func (s *Stage) AddMember(base string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.membersN()
	if n == MembersMax {
		return fmt.Errorf("replica %q: %d members already, the most a mirror takes: %w", s.cfg.Name, n, stage.ErrConfig)
	}
	if s.store != nil {
		return fmt.Errorf("replica %q: a replica with a metadata bdev keeps its member count (its bitmap's records); replace a member instead: %w",
			s.cfg.Name, stage.ErrConfig)
	}
	nb, err := s.openMember(base)
	if err != nil {
		return err
	}
	self, err := s.reg.Open(s.cfg.Name, false)
	if err != nil {
		nb.Close()
		return err
	}
	m := &s.members[n]
	err = self.Quiesce(quiesceTimeout, func() error {
		m.desc.Store(nb.Descs[0])
		m.gen.Add(1)
		m.state.Store(stateFaulty) // startRebuild makes it rebuilding: writes from then on (X4)
		m.needsFull.Store(true)
		m.failures.Store(0)
		s.n.Store(int32(n + 1))
		return nil
	})
	self.Close()
	if err != nil {
		nb.Close()
		return err
	}
	s.log.Info("replica member added", "member", base, "members", n+1)
	return s.startRebuild(n, true)
}
