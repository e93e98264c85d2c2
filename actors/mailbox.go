package actors

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/sluice-storage/sluice/internal/mpsc"
	"github.com/sluice-storage/sluice/reactors"
)

const (
	// mailboxRingSize user messages fit in a mailbox's ring before it spills
	// to the overflow list; control-plane traffic to one actor rarely
	// queues more than a handful.
	mailboxRingSize = 256
	// systemRingSize system messages (start, stop, watch, restart, suspend)
	// fit before spilling; they come a few at a time.
	systemRingSize = 16
	// turnBudgetDefault messages are handled per turn before the mailbox
	// yields back to the reactor's pollers (A3).
	turnBudgetDefault = 64
	// handlerSampleTurns: one turn in this many is timed for the handler
	// time statistic (an estimate, scaled up).
	handlerSampleTurns = 16
)

// queue is a mailbox queue: a lock-free ring, and when it is full a counted
// overflow list, so a post never blocks and never drops (A1).
//
// Order (A2): once anything has spilled, every later post spills too, until
// the consumer has emptied both; so nothing posted later overtakes it.
type queue struct {
	ring *mpsc.Ring[any]

	// lock: guards the overflow list only; taken by posters when the ring
	// is full or spilling is on, and by the consumer when the ring is empty
	// and spilling is on. Never on the steady path.
	mu       sync.Mutex
	overflow []any
	spilling atomic.Bool

	// Consumer only: what was taken from overflow and not yet handled.
	taken      []any
	takenIndex int

	depth      atomic.Int64 // posted and not yet popped
	highWater  atomic.Int64
	overflowed atomic.Uint64
}

func newQueue(size int) *queue { return &queue{ring: mpsc.New[any](size)} }

func (q *queue) push(m any) {
	if d := q.depth.Add(1); d > q.highWater.Load() {
		// A racing poster may store a smaller value; the mark is a gauge
		// for people, and the next post that exceeds it corrects it.
		q.highWater.Store(d)
	}
	if !q.spilling.Load() && q.ring.Push(m) {
		return
	}
	q.mu.Lock()
	q.overflow = append(q.overflow, m)
	q.spilling.Store(true)
	q.mu.Unlock()
	q.overflowed.Add(1)
}

// pop returns the oldest message, nil when empty. Consumer only.
func (q *queue) pop() any {
	if m, ok := q.ring.Pop(); ok {
		q.depth.Add(-1)
		return m
	}
	if q.takenIndex == len(q.taken) {
		if !q.spilling.Load() {
			return nil
		}
		q.mu.Lock()
		if len(q.overflow) == 0 {
			// The ring is empty and nothing spilled since the last take:
			// posts may use the ring again (A2).
			q.spilling.Store(false)
			q.mu.Unlock()
			// A poster that pushed to the ring just before spilling was
			// switched on cannot exist: spilling was on. But one that saw it
			// off just now may already have pushed: look once more.
			if m, ok := q.ring.Pop(); ok {
				q.depth.Add(-1)
				return m
			}
			return nil
		}
		clear(q.taken)
		q.taken, q.overflow = q.overflow, q.taken[:0]
		q.takenIndex = 0
		q.mu.Unlock()
	}
	m := q.taken[q.takenIndex]
	q.taken[q.takenIndex] = nil
	q.takenIndex++
	q.depth.Add(-1)
	return m
}

// mailbox is our actor.Mailbox: it runs its actor's turns on one reactor,
// never blocks, never drops, handles at most a budget of messages per turn
// and recovers a handler's panic into the invoker's EscalateFailure.
//
// Owner: the reactor it was made for. Posts come from any goroutine; the
// turn (Deliver) runs only on the owner.
type mailbox struct {
	reactor *reactors.Reactor
	budget  int
	entry   *entry // statistics, shared with the debug endpoint

	user   *queue
	system *queue

	scheduled atomic.Bool // a turn is queued on the reactor or running
	turns     uint64      // owner only: turns run, for sampling handler time
	suspended atomic.Bool // written by the owner; read by posters' reschedule check

	// Set once by RegisterHandlers, before the first post.
	invoker actor.MessageInvoker
	// onSystem, if set, is told of every system message after it was
	// handled (the System's registry hook). Set before the first post.
	onSystem func(msg any, invoker actor.MessageInvoker)
}

var (
	_ actor.Mailbox    = (*mailbox)(nil)
	_ reactors.Message = (*mailbox)(nil)
	_ actor.Dispatcher = dispatcher{}
)

func newMailbox(r *reactors.Reactor, budget int, e *entry) *mailbox {
	if budget <= 0 {
		budget = turnBudgetDefault
	}
	return &mailbox{reactor: r, budget: budget, entry: e,
		user: newQueue(mailboxRingSize), system: newQueue(systemRingSize)}
}

// PostUserMessage implements actor.Mailbox. Any goroutine; never blocks.
func (m *mailbox) PostUserMessage(msg any) {
	// protoactor's batches are unpacked by its default mailbox; do the same
	// so a batch is not one giant turn.
	if batch, ok := msg.(actor.MessageBatch); ok {
		for _, x := range batch.GetMessages() {
			m.PostUserMessage(x)
		}
	}
	m.user.push(msg)
	m.schedule()
}

// PostSystemMessage implements actor.Mailbox. Any goroutine; never blocks.
func (m *mailbox) PostSystemMessage(msg any) {
	m.system.push(msg)
	m.schedule()
}

// RegisterHandlers implements actor.Mailbox; the dispatcher is ignored
// because the mailbox schedules itself on its reactor.
func (m *mailbox) RegisterHandlers(invoker actor.MessageInvoker, _ actor.Dispatcher) {
	m.invoker = invoker
}

// Start implements actor.Mailbox.
func (m *mailbox) Start() {}

// UserMessageCount implements actor.Mailbox.
func (m *mailbox) UserMessageCount() int { return int(m.user.depth.Load()) }

// schedule queues one turn on the reactor unless one is queued or running.
func (m *mailbox) schedule() {
	if m.scheduled.CompareAndSwap(false, true) {
		if err := m.reactor.Schedule(m); err != nil {
			// The reactor is stopping: the actor system is being torn down
			// after its actors, so nothing is waiting for this message.
			m.scheduled.Store(false)
		}
	}
}

// Deliver is one turn, on the owner reactor (reactors.Message).
func (m *mailbox) Deliver() {
	m.turn()
	m.scheduled.Store(false)
	// A post that came after turn's last look saw scheduled == true and did
	// not schedule: look again.
	if m.system.depth.Load() > 0 || (!m.suspended.Load() && m.user.depth.Load() > 0) {
		m.schedule()
	}
}

// turn handles system messages first, then user messages unless suspended,
// at most budget of them (A3); a panic ends the turn and is escalated (A4).
func (m *mailbox) turn() {
	var msg any
	handled := uint64(0)
	// Handler time is sampled: one turn in handlerSampleTurns is timed and
	// counted that many times, since two clock reads cost more than a short
	// turn on some VMs.
	m.turns++
	var start time.Time
	timed := m.turns%handlerSampleTurns == 0
	if timed {
		start = time.Now()
	}
	defer func() {
		if timed {
			m.entry.handlerNanos.Add(int64(time.Since(start)) * handlerSampleTurns)
		}
		m.entry.processed.Add(handled)
		if reason := recover(); reason != nil {
			m.entry.panics.Add(1)
			m.invoker.EscalateFailure(reason, msg)
		}
	}()
	for i := 0; i < m.budget; i++ {
		if msg = m.system.pop(); msg != nil {
			switch msg.(type) {
			case *actor.SuspendMailbox:
				m.suspended.Store(true)
			case *actor.ResumeMailbox:
				m.suspended.Store(false)
			default:
				m.invoker.InvokeSystemMessage(msg)
				if m.onSystem != nil {
					m.onSystem(msg, m.invoker)
				}
			}
			continue
		}
		if m.suspended.Load() {
			return
		}
		if msg = m.user.pop(); msg == nil {
			return
		}
		m.invoker.InvokeUserMessage(msg)
		handled++
	}
}

// dispatcher is the actor.Dispatcher of an actor on a reactor. Our mailbox
// never calls Schedule; protoactor's own mailboxes would, so it still runs
// the function on the reactor rather than on a new goroutine.
type dispatcher struct {
	reactor *reactors.Reactor
	budget  int
}

func (d dispatcher) Schedule(fn func()) { d.reactor.PostFunc(fn) }
func (d dispatcher) Throughput() int    { return d.budget }
