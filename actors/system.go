package actors

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/sluice-storage/sluice/reactors"
)

// System is the actor system of one daemon: protoactor's ActorSystem whose
// actors run on our reactors, plus the registry the debug endpoint walks.
type System struct {
	// Actor is protoactor's system; Root spawns and sends through it.
	Actor    *actor.ActorSystem
	reactors *reactors.Set
	log      *slog.Logger
	budget   int

	// lock: the registry of live actors; taken when an actor starts or
	// stops and when the debug endpoint reads it, never on the I/O path.
	mu      sync.Mutex
	entries map[*entry]struct{}
	top     []*actor.PID // spawned by SpawnOn, stopped by Shutdown in reverse
}

// Options configure a System.
type Options struct {
	Logger *slog.Logger // nil: slog.Default()
	Budget int          // messages per mailbox turn; 0: turnBudgetDefault
}

// NewSystem makes the actor system on the reactors of set. protoactor's
// logging goes into opts.Logger with lib=protoactor.
func NewSystem(set *reactors.Set, opts Options) *System {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &System{reactors: set, log: log, budget: opts.Budget, entries: map[*entry]struct{}{}}
	if s.budget <= 0 {
		s.budget = turnBudgetDefault
	}
	s.Actor = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return log.With("lib", "protoactor")
	}))
	return s
}

// Reactors is the set the actors run on.
func (s *System) Reactors() *reactors.Set { return s.reactors }

// Root is protoactor's root context.
func (s *System) Root() *actor.RootContext { return s.Actor.Root }

// entry is one actor's statistics. Written by its mailbox (posters and the
// owner reactor), read by the debug endpoint.
type entry struct {
	core    int
	reactor int
	mailbox *mailbox

	name      atomic.Pointer[string]
	processed atomic.Uint64
	restarts  atomic.Uint64
	panics    atomic.Uint64

	handlerNanos atomic.Int64
}

// Props returns props for an actor that runs on reactor index (0-based) with
// our mailbox, supervised by strategy (nil: restart on failure, at most
// restartsMax times within restartWindow, then stop).
func (s *System) Props(index int, producer actor.Producer, strategy actor.SupervisorStrategy,
	opts ...actor.PropsOption) (*actor.Props, error) {
	if index < 0 || index >= s.reactors.Len() {
		return nil, fmt.Errorf("actors: reactor index %d, want 0..%d", index, s.reactors.Len()-1)
	}
	r := s.reactors.Get(index)
	if strategy == nil {
		strategy = actor.NewOneForOneStrategy(restartsMax, restartWindow, actor.DefaultDecider)
	}
	all := append([]actor.PropsOption{
		actor.WithDispatcher(dispatcher{reactor: r, budget: s.budget}),
		actor.WithMailbox(func() actor.Mailbox {
			e := &entry{core: r.Core(), reactor: index}
			e.mailbox = newMailbox(r, s.budget, e)
			e.mailbox.onSystem = s.systemHook(e)
			return e.mailbox
		}),
		actor.WithSupervisor(strategy),
	}, opts...)
	return actor.PropsFromProducer(producer, all...), nil
}

const (
	// restartsMax restarts within restartWindow are allowed before a
	// failing actor is stopped for good: a crash loop must end.
	restartsMax   = 10
	restartWindow = 10 * time.Second
)

// systemHook keeps the registry in step with the actor's life: registered
// when it starts, counted when it restarts, removed once it is gone.
func (s *System) systemHook(e *entry) func(msg any, invoker actor.MessageInvoker) {
	return func(msg any, invoker actor.MessageInvoker) {
		self, _ := invoker.(interface{ Self() *actor.PID })
		switch msg.(type) {
		case *actor.Started:
			if self != nil {
				name := self.Self().Id
				e.name.Store(&name)
			}
			s.mu.Lock()
			s.entries[e] = struct{}{}
			s.mu.Unlock()
		case *actor.Restart:
			e.restarts.Add(1)
		case *actor.Stop, *actor.Terminated:
			if self != nil {
				if _, alive := s.Actor.ProcessRegistry.GetLocal(self.Self().Id); !alive {
					s.mu.Lock()
					delete(s.entries, e)
					s.mu.Unlock()
				}
			}
		}
	}
}

// SpawnOn spawns a top-level actor named name on reactor index.
func (s *System) SpawnOn(index int, name string, producer actor.Producer,
	opts ...actor.PropsOption) (*actor.PID, error) {
	props, err := s.Props(index, producer, nil, opts...)
	if err != nil {
		return nil, err
	}
	pid, err := s.Actor.Root.SpawnNamed(props, name)
	if err != nil {
		return nil, fmt.Errorf("actors: spawn %q on reactor %d: %w", name, index, err)
	}
	s.mu.Lock()
	s.top = append(s.top, pid)
	s.mu.Unlock()
	return pid, nil
}

// Shutdown stops every top-level actor (and so their children), newest
// first, waiting up to timeout for each. Call it before stopping the
// reactors, from a goroutine that is not a reactor.
func (s *System) Shutdown(timeout time.Duration) error {
	s.mu.Lock()
	top := s.top
	s.top = nil
	s.mu.Unlock()
	var firstErr error
	for i := len(top) - 1; i >= 0; i-- {
		if err := s.Actor.Root.StopFuture(top[i]).Wait(); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("actors: stop %s: %w", top[i].Id, err)
		}
	}
	s.Actor.Shutdown()
	return firstErr
}

// ActorStats is one actor's row on /debug/actors.
type ActorStats struct {
	Name       string        `json:"name"`
	Reactor    int           `json:"reactor"`
	Core       int           `json:"core"`
	Depth      int64         `json:"mailbox_depth"`
	HighWater  int64         `json:"mailbox_high_water"`
	Overflowed uint64        `json:"mailbox_overflowed"`
	Processed  uint64        `json:"processed"`
	Handler    time.Duration `json:"handler_ns"`
	Restarts   uint64        `json:"restarts"`
	Panics     uint64        `json:"panics"`
	Suspended  bool          `json:"suspended"`
}

// Stats snapshots every live actor, sorted by name (so children follow
// their parent: protoactor names a child "parent/child").
func (s *System) Stats() []ActorStats {
	s.mu.Lock()
	out := make([]ActorStats, 0, len(s.entries))
	for e := range s.entries {
		name := ""
		if p := e.name.Load(); p != nil {
			name = *p
		}
		q := e.mailbox.user
		out = append(out, ActorStats{
			Name: name, Reactor: e.reactor, Core: e.core,
			Depth: q.depth.Load(), HighWater: q.highWater.Load(), Overflowed: q.overflowed.Load(),
			Processed: e.processed.Load(), Handler: time.Duration(e.handlerNanos.Load()),
			Restarts: e.restarts.Load(), Panics: e.panics.Load(), Suspended: e.mailbox.suspended.Load(),
		})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
