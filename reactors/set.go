package reactors

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Set is the reactors of one process, one per core, indexed 0..Len()-1.
type Set struct {
	reactors []*Reactor
}

// AllowedCores lists the CPUs this process may run on, ascending.
func AllowedCores() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	var cores []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cores = append(cores, c)
		}
	}
	return cores, nil
}

// Start makes one reactor per core and starts them; cores empty means every
// allowed core. On error, the reactors already started are stopped.
func Start(cores []int, opts Options) (*Set, error) {
	if len(cores) == 0 {
		all, err := AllowedCores()
		if err != nil {
			return nil, err
		}
		cores = all
	}
	s := &Set{}
	for i, core := range cores {
		r, err := newReactor(i, core, opts)
		if err == nil {
			err = r.start()
		}
		if err != nil {
			s.Stop(time.Second)
			return nil, err
		}
		s.reactors = append(s.reactors, r)
	}
	return s, nil
}

// Len is the number of reactors.
func (s *Set) Len() int { return len(s.reactors) }

// Get returns reactor i (0-based index, not the core number).
func (s *Set) Get(i int) *Reactor { return s.reactors[i] }

// All returns the reactors in index order. The slice is shared: do not modify.
func (s *Set) All() []*Reactor { return s.reactors }

// Stats snapshots every reactor.
func (s *Set) Stats() []Stats {
	out := make([]Stats, len(s.reactors))
	for i, r := range s.reactors {
		out[i] = r.Stats()
	}
	return out
}

// Stop asks every reactor to deliver what is queued and exit, and waits up to
// timeout for all of them (R4). Posts racing with Stop may get ErrStopped;
// the daemon stops its actors and targets first, so nothing does.
func (s *Set) Stop(timeout time.Duration) error {
	for _, r := range s.reactors {
		r.stop()
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, r := range s.reactors {
		select {
		case <-r.done:
		case <-deadline.C:
			return fmt.Errorf("reactor %d (core %d) did not stop within %v", r.index, r.core, timeout)
		}
	}
	return nil
}
