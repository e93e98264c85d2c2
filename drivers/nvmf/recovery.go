package nvmf

import (
	"errors"
	"fmt"
	"time"
)

// Recovery is SPDK bdev_nvme's reconnect policy as a pure state machine:
// time is an input (Step's now, on any clock), the output is what to do.
// It owns no timer and no goroutine; the controller's supervisor feeds it
// events and sleeps until Deadline.
//
// The three settings are SPDK's (bdev_nvme_attach_controller):
//
//   - ReconnectDelay (reconnect_delay_sec): the wait between a failed
//     attempt and the next. The first attempt follows the loss at once.
//   - CtrlrLossTimeout (ctrlr_loss_timeout_sec): how long after the loss
//     attempts go on; then the controller is given up and its I/O fails for
//     good. 0: a single attempt; negative (-1): forever.
//   - FastIOFailTimeout (fast_io_fail_timeout_sec): how long after the loss
//     I/O waits for the connection to come back; then queued and new I/O
//     fails at once (retryable) while attempts go on. 0: I/O waits until
//     the controller is back or given up.
type Recovery struct {
	ReconnectDelay    time.Duration
	CtrlrLossTimeout  time.Duration
	FastIOFailTimeout time.Duration

	state      RecoveryState
	lostAt     time.Duration
	next       time.Duration // rsWaiting: when to attempt
	fastFailed bool
}

// RecoveryState is where a controller's connection is.
type RecoveryState uint8

const (
	StateConnected  RecoveryState = iota // I/O flows
	StateConnecting                      // an attempt is running
	StateWaiting                         // between attempts (reconnect delay)
	StateFailed                          // given up: I/O fails for good
)

var recoveryStateNames = [...]string{"connected", "connecting", "waiting", "failed"}

func (s RecoveryState) String() string {
	if int(s) < len(recoveryStateNames) {
		return recoveryStateNames[s]
	}
	return fmt.Sprintf("RecoveryState(%d)", uint8(s))
}

// Event is what happened.
type Event uint8

const (
	EventLost          Event = iota + 1 // the connection failed
	EventAttemptOK                      // an attempt connected
	EventAttemptFailed                  // an attempt failed
	EventTick                           // time passed
)

// Action is a set of things to do now.
type Action uint8

const (
	ActDisconnect Action = 1 << iota // tear the old association down; queued I/O waits
	ActAttempt                       // start a connection attempt
	ActFailIO                        // fast-I/O-fail: fail queued and new I/O (retryable) until resumed
	ActResume                        // the new association carries I/O; resubmit what waited
	ActGiveUp                        // controller lost: fail all I/O for good
)

// ErrRecoveryOptions is wrapped by Validate's errors.
var ErrRecoveryOptions = errors.New("reconnect options")

// Validate checks the settings as SPDK's bdev_nvme_check_io_error_resiliency_params
// does, every problem at once.
func (r *Recovery) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(a, ErrRecoveryOptions)...))
	}
	loss, delay, fast := r.CtrlrLossTimeout, r.ReconnectDelay, r.FastIOFailTimeout
	switch {
	case loss < -time.Second || (loss < 0 && loss != -time.Second):
		bad("ctrlr_loss_timeout_sec %v, want -1 (forever), 0 or a positive time", loss)
	case loss == 0:
		if delay != 0 {
			bad("reconnect_delay_sec %v with ctrlr_loss_timeout_sec 0, want 0", delay)
		}
		if fast != 0 {
			bad("fast_io_fail_timeout_sec %v with ctrlr_loss_timeout_sec 0, want 0", fast)
		}
	default:
		if delay <= 0 {
			bad("reconnect_delay_sec %v, want > 0 when ctrlr_loss_timeout_sec is not 0", delay)
		}
		if loss > 0 && delay > loss {
			bad("reconnect_delay_sec %v, want at most ctrlr_loss_timeout_sec %v", delay, loss)
		}
		if fast < 0 {
			bad("fast_io_fail_timeout_sec %v, want >= 0", fast)
		}
		if fast > 0 && loss > 0 && fast > loss {
			bad("fast_io_fail_timeout_sec %v, want at most ctrlr_loss_timeout_sec %v", fast, loss)
		}
		if fast > 0 && fast < delay {
			bad("fast_io_fail_timeout_sec %v, want at least reconnect_delay_sec %v", fast, delay)
		}
	}
	return errors.Join(errs...)
}

// State is where the controller is.
func (r *Recovery) State() RecoveryState { return r.state }

// FastFailed reports whether fast-I/O-fail is in force.
func (r *Recovery) FastFailed() bool { return r.fastFailed }

// Deadline is the next time a Tick may change something, and whether there
// is one (connected and failed controllers wait for events only).
func (r *Recovery) Deadline() (time.Duration, bool) {
	if r.state != StateWaiting && r.state != StateConnecting {
		return 0, false
	}
	d, ok := time.Duration(0), false
	add := func(t time.Duration) {
		if !ok || t < d {
			d, ok = t, true
		}
	}
	if r.state == StateWaiting {
		add(r.next)
	}
	if r.FastIOFailTimeout > 0 && !r.fastFailed {
		add(r.lostAt + r.FastIOFailTimeout)
	}
	if r.CtrlrLossTimeout > 0 && r.state == StateWaiting {
		add(r.lostAt + r.CtrlrLossTimeout)
	}
	return d, ok
}

// Step feeds one event at time now and returns what to do. An event that
// does not apply in the current state (a second loss while reconnecting, a
// tick while connected) changes nothing.
func (r *Recovery) Step(ev Event, now time.Duration) Action {
	var act Action
	switch ev {
	case EventLost:
		if r.state != StateConnected {
			return 0
		}
		r.lostAt = now
		r.fastFailed = false
		r.state = StateConnecting
		return ActDisconnect | ActAttempt
	case EventAttemptOK:
		if r.state != StateConnecting {
			return 0
		}
		r.state = StateConnected
		r.fastFailed = false
		return ActResume
	case EventAttemptFailed:
		if r.state != StateConnecting {
			return 0
		}
		if r.CtrlrLossTimeout == 0 || (r.CtrlrLossTimeout > 0 && now-r.lostAt >= r.CtrlrLossTimeout) {
			r.state = StateFailed
			return ActGiveUp
		}
		r.state = StateWaiting
		r.next = now + r.ReconnectDelay
	case EventTick:
	}
	if r.state != StateWaiting && r.state != StateConnecting {
		return act
	}
	if r.FastIOFailTimeout > 0 && !r.fastFailed && now-r.lostAt >= r.FastIOFailTimeout {
		r.fastFailed = true
		act |= ActFailIO
	}
	if r.state == StateWaiting {
		if r.CtrlrLossTimeout > 0 && now-r.lostAt >= r.CtrlrLossTimeout {
			r.state = StateFailed
			return act | ActGiveUp
		}
		if now >= r.next {
			r.state = StateConnecting
			act |= ActAttempt
		}
	}
	return act
}
