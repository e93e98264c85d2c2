package nvmf

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func (a Action) String() string {
	var parts []string
	for i, name := range []string{"disconnect", "attempt", "fail-io", "resume", "give-up"} {
		if a&(1<<i) != 0 {
			parts = append(parts, name)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "+")
}

// TestRecovery walks the policy through scripted histories: each step is
// "event@seconds" and the actions and state it must produce.
func TestRecovery(t *testing.T) {
	s := time.Second
	type step struct {
		ev    Event
		at    float64
		want  string
		state RecoveryState
	}
	tests := []struct {
		name              string
		delay, loss, fast time.Duration
		steps             []step
	}{
		{"loss 0: one attempt, then give up", 0, 0, 0, []step{
			{EventLost, 0, "disconnect+attempt", StateConnecting},
			{EventAttemptFailed, 0.1, "give-up", StateFailed},
			{EventTick, 100, "-", StateFailed},
		}},
		{"loss 0: the one attempt works", 0, 0, 0, []step{
			{EventLost, 0, "disconnect+attempt", StateConnecting},
			{EventAttemptOK, 0.1, "resume", StateConnected},
		}},
		{"delay between attempts until it works", 2 * s, 10 * s, 0, []step{
			{EventLost, 0, "disconnect+attempt", StateConnecting},
			{EventLost, 0.5, "-", StateConnecting}, // a second report of the same loss
			{EventAttemptFailed, 1, "-", StateWaiting},
			{EventTick, 2.9, "-", StateWaiting},
			{EventTick, 3, "attempt", StateConnecting},
			{EventAttemptFailed, 3.5, "-", StateWaiting},
			{EventTick, 5.5, "attempt", StateConnecting},
			{EventAttemptOK, 6, "resume", StateConnected},
			{EventTick, 60, "-", StateConnected},
		}},
		{"loss timeout gives up between attempts", 2 * s, 5 * s, 0, []step{
			{EventLost, 0, "disconnect+attempt", StateConnecting},
			{EventAttemptFailed, 0.1, "-", StateWaiting},
			{EventTick, 2.1, "attempt", StateConnecting},
			{EventAttemptFailed, 2.2, "-", StateWaiting},
			{EventTick, 4.2, "attempt", StateConnecting},
			{EventAttemptFailed, 5.1, "give-up", StateFailed},
		}},
		{"loss timeout reached while waiting", 4 * s, 5 * s, 0, []step{
			{EventLost, 0, "disconnect+attempt", StateConnecting},
			{EventAttemptFailed, 3, "-", StateWaiting},
			{EventTick, 5, "give-up", StateFailed},
		}},
		{"fast I/O fail, then back", 1 * s, -1 * s, 3 * s, []step{
			{EventLost, 0, "disconnect+attempt", StateConnecting},
			{EventAttemptFailed, 0.5, "-", StateWaiting},
			{EventTick, 1.5, "attempt", StateConnecting},
			{EventTick, 3, "fail-io", StateConnecting},
			{EventAttemptFailed, 3.1, "-", StateWaiting},
			{EventTick, 3.5, "-", StateWaiting},
			{EventTick, 4.1, "attempt", StateConnecting},
			{EventAttemptOK, 4.2, "resume", StateConnected},
			{EventLost, 10, "disconnect+attempt", StateConnecting}, // fast-fail clock restarts
			{EventAttemptFailed, 10.5, "-", StateWaiting},
			{EventTick, 12.9, "attempt", StateConnecting},
			{EventTick, 13, "fail-io", StateConnecting},
		}},
		{"forever: never gives up", 1 * s, -1 * s, 0, []step{
			{EventLost, 0, "disconnect+attempt", StateConnecting},
			{EventAttemptFailed, 1000, "-", StateWaiting},
			{EventTick, 1001, "attempt", StateConnecting},
			{EventAttemptFailed, 100000, "-", StateWaiting},
		}},
	}
	for _, tc := range tests {
		r := Recovery{ReconnectDelay: tc.delay, CtrlrLossTimeout: tc.loss, FastIOFailTimeout: tc.fast}
		if err := r.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i, st := range tc.steps {
			now := time.Duration(math.Round(st.at*1000)) * time.Millisecond
			got := r.Step(st.ev, now)
			if got.String() != st.want || r.State() != st.state {
				t.Errorf("%s: step %d (event %d at %vs): %v, state %v; want %s, state %v",
					tc.name, i, st.ev, st.at, got, r.State(), st.want, st.state)
			}
			if d, ok := r.Deadline(); ok && d < now {
				t.Errorf("%s: step %d: deadline %v already past at %v", tc.name, i, d, now)
			}
		}
	}
}

// TestRecoveryValidate: SPDK's rules, each named with the values.
func TestRecoveryValidate(t *testing.T) {
	s := time.Second
	tests := []struct {
		delay, loss, fast time.Duration
		want              string // "" valid
	}{
		{0, 0, 0, ""},
		{1 * s, -1 * s, 0, ""},
		{1 * s, 10 * s, 5 * s, ""},
		{1 * s, 0, 0, "reconnect_delay_sec 1s with ctrlr_loss_timeout_sec 0"},
		{0, 10 * s, 0, "reconnect_delay_sec 0s, want > 0"},
		{20 * s, 10 * s, 0, "want at most ctrlr_loss_timeout_sec 10s"},
		{1 * s, 10 * s, 20 * s, "fast_io_fail_timeout_sec 20s, want at most"},
		{5 * s, 10 * s, 2 * s, "want at least reconnect_delay_sec 5s"},
		{1 * s, -2 * s, 0, "ctrlr_loss_timeout_sec -2s"},
	}
	for _, tc := range tests {
		r := Recovery{ReconnectDelay: tc.delay, CtrlrLossTimeout: tc.loss, FastIOFailTimeout: tc.fast}
		err := r.Validate()
		if got := fmt.Sprint(err); (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(got, tc.want)) {
			t.Errorf("Validate(delay %v, loss %v, fast %v) = %v, want %q", tc.delay, tc.loss, tc.fast, err, tc.want)
		}
	}
}
