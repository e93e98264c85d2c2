package nvmf

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/drivers/nvmf/host/hosttest"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/bdev/bdevtest"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func fakeTRID(ft *hosttest.Target) host.TransportID {
	addr, port, nqn := ft.Addr()
	return host.TransportID{TrType: "tcp", TrAddr: addr, TrSvcID: port, SubNQN: nqn}
}

func attach(t *testing.T, s *bdevtest.Stack, trid host.TransportID, rec Recovery) (*Manager, []string) {
	t.Helper()
	m := NewManager(s.Reg, testLogger(t))
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	names, err := m.Attach(ctx, AttachOptions{Name: "Nvme0", TransportID: trid, IOQueueDepth: 16, Recovery: rec})
	if err != nil {
		t.Fatal(err)
	}
	return m, names
}

// waitState polls the controller's stats until its state is want.
func waitState(t *testing.T, m *Manager, want string) CtrlrStats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := m.Stats()[0]
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("controller state %q (%+v), want %q within 30 s", st.State, st, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAttachIOReconnect: a namespace of the fake target becomes bdev
// Nvme0n1; data written from two reactors reads back; after the target
// drops every connection, IO submitted during the outage waits and succeeds
// once the controller reconnects, and the data is still there.
func TestAttachIOReconnect(t *testing.T) {
	ft := hosttest.New(t)
	ft.Start()
	s := bdevtest.NewStack(t, 2, reactors.Options{})
	m, names := attach(t, s, fakeTRID(ft), Recovery{ReconnectDelay: 50 * time.Millisecond, CtrlrLossTimeout: 10 * time.Second})
	if len(names) != 1 || names[0] != "Nvme0n1" {
		t.Fatalf("bdevs %v, want [Nvme0n1]", names)
	}
	b, _ := s.Reg.Lookup("Nvme0n1")
	if b.BlockSize() != 512 || b.Blocks() != 2048 || b.Driver() != Name {
		t.Fatalf("bdev %s: %d blocks of %d, driver %q", b.Name(), b.Blocks(), b.BlockSize(), b.Driver())
	}
	h := s.Open(t, "Nvme0n1")
	for i := range 2 {
		copy(h.Buf(i), bytes.Repeat([]byte{byte(0xA0 + i)}, 8192))
		if st, detail := h.Do(t, i, bdev.IOWrite, uint64(i*64), 16); st != bdev.StatusSuccess {
			t.Fatalf("write on reactor %d: %v %s", i, st, detail)
		}
	}
	ft.DropAll()
	// Submitted while the connection is down or coming back: it waits.
	for i := range 2 {
		clear(h.Buf(i)[:8192])
		if st, detail := h.Do(t, i, bdev.IORead, uint64(i*64), 16); st != bdev.StatusSuccess {
			t.Fatalf("read on reactor %d across the reconnect: %v %s", i, st, detail)
		}
		if !bytes.Equal(h.Buf(i)[:8192], bytes.Repeat([]byte{byte(0xA0 + i)}, 8192)) {
			t.Errorf("reactor %d: data read after the reconnect differs from what was written", i)
		}
	}
	st := waitState(t, m, "connected")
	if st.Reconnects < 1 || len(st.Qpairs) != 2 {
		t.Errorf("stats after the outage: %+v, want a reconnect and two qpairs", st)
	}
	for _, typ := range []bdev.IOType{bdev.IOFlush, bdev.IOUnmap, bdev.IOWriteZeroes} {
		if st, detail := h.Do(t, 0, typ, 0, 8); st != bdev.StatusSuccess {
			t.Errorf("%v: %v %s", typ, st, detail)
		}
	}
}

// TestFastFailThenGiveUp: with the target down, IO waits until
// fast_io_fail_timeout_sec, then fails retryable; after
// ctrlr_loss_timeout_sec the controller is failed and IO fails for good.
func TestFastFailThenGiveUp(t *testing.T) {
	ft := hosttest.New(t)
	ft.Start()
	s := bdevtest.NewStack(t, 1, reactors.Options{})
	m, _ := attach(t, s, fakeTRID(ft), Recovery{ReconnectDelay: 100 * time.Millisecond,
		CtrlrLossTimeout: 2 * time.Second, FastIOFailTimeout: 500 * time.Millisecond})
	h := s.Open(t, "Nvme0n1")
	if st, _ := h.Do(t, 0, bdev.IORead, 0, 1); st != bdev.StatusSuccess {
		t.Fatalf("read before the outage: %v", st)
	}
	ft.Stop()
	start := time.Now()
	st, _ := h.Do(t, 0, bdev.IORead, 0, 1) // waits, then fast-fails
	waited := time.Since(start)
	if st != bdev.StatusRetry {
		t.Errorf("read during the outage: %v, want %v after fast_io_fail_timeout_sec", st, bdev.StatusRetry)
	}
	t.Logf("read during the outage ended after %v", waited.Round(time.Millisecond))
	waitState(t, m, "failed")
	if st, _ := h.Do(t, 0, bdev.IORead, 0, 1); st != bdev.StatusFailed {
		t.Errorf("read after ctrlr_loss_timeout_sec: %v, want %v", st, bdev.StatusFailed)
	}
	if err := ft.Resume(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if st := m.Stats()[0]; st.State != "failed" {
		t.Errorf("a given-up controller came back: %+v", st)
	}
}

// TestDetach: detach is refused while a bdev is open, then deletes the
// bdevs and disconnects.
func TestDetach(t *testing.T) {
	ft := hosttest.New(t)
	ft.Start()
	s := bdevtest.NewStack(t, 1, reactors.Options{})
	m, _ := attach(t, s, fakeTRID(ft), Recovery{})
	d, err := s.Reg.Open("Nvme0n1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Detach("Nvme0"); err == nil {
		t.Error("detach succeeded with Nvme0n1 open")
	}
	d.Close()
	if err := m.Detach("Nvme0"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Reg.Lookup("Nvme0n1"); ok {
		t.Error("Nvme0n1 still registered after detach")
	}
	if len(m.Stats()) != 0 {
		t.Errorf("controllers after detach: %+v", m.Stats())
	}
	if err := m.Detach("Nvme0"); err == nil {
		t.Error("second detach succeeded")
	}
}

// TestRPC: bdev_nvme_attach_controller answers SPDK's bdev name list,
// bad parameters name what is wrong, get_controllers shows the state and
// detach ends it.
func TestRPC(t *testing.T) {
	ft := hosttest.New(t)
	ft.Start()
	s := bdevtest.NewStack(t, 1, reactors.Options{})
	m := NewManager(s.Reg, testLogger(t))
	t.Cleanup(func() { m.Close() })
	methods := map[string]func(context.Context, json.RawMessage) (any, error){}
	for _, md := range Methods(m) {
		methods[md.Name] = md.Handler
	}
	addr, port, nqn := ft.Addr()
	call := func(name, params string) (string, error) {
		res, err := methods[name](t.Context(), json.RawMessage(params))
		b, _ := json.Marshal(res)
		return string(b), err
	}
	if _, err := call("bdev_nvme_attach_controller", `{"name":"Nvme0","trtype":"TCP","traddr":"`+addr+
		`","trsvcid":"`+port+`","reconnect_delay_sec":5,"ctrlr_loss_timeout_sec":2}`); err == nil ||
		!strings.Contains(err.Error(), "subnqn is required") {
		t.Errorf("attach without subnqn: %v", err)
	}
	if _, err := call("bdev_nvme_attach_controller", `{"name":"Nvme0","traddr":"x","subnqn":"`+nqn+
		`","reconnect_delay_sec":5,"ctrlr_loss_timeout_sec":2}`); err == nil ||
		!strings.Contains(err.Error(), "want at most ctrlr_loss_timeout_sec") {
		t.Errorf("attach with delay > loss timeout: %v", err)
	}
	got, err := call("bdev_nvme_attach_controller", `{"name":"Nvme0","trtype":"TCP","adrfam":"IPv4","traddr":"`+addr+
		`","trsvcid":"`+port+`","subnqn":"`+nqn+`","reconnect_delay_sec":1,"ctrlr_loss_timeout_sec":-1}`)
	if err != nil || got != `["Nvme0n1"]` {
		t.Fatalf("attach: %s, %v; want [\"Nvme0n1\"]", got, err)
	}
	if _, err := call("bdev_nvme_attach_controller", `{"name":"Nvme0","traddr":"`+addr+`","trsvcid":"`+port+
		`","subnqn":"`+nqn+`"}`); err == nil || !strings.Contains(err.Error(), "code -17") {
		t.Errorf("second attach of Nvme0: %v, want -EEXIST", err)
	}
	saved, _ := json.Marshal(m.SaveConfig())
	if want := `"ctrlr_loss_timeout_sec":-1`; !strings.Contains(string(saved), want) || !strings.Contains(string(saved), `"name":"Nvme0"`) {
		t.Errorf("SaveConfig %s: want the attach parameters, %s among them", saved, want)
	}
	again, err := AttachOptionsFromRPC(json.RawMessage(mustJSON(t, m.SaveConfig()[0])))
	if err != nil || again.Name != "Nvme0" || again.Recovery.CtrlrLossTimeout != -time.Second {
		t.Errorf("SaveConfig does not round-trip through the RPC's parameters: %+v, %v", again, err)
	}
	got, err = call("bdev_nvme_get_controllers", `{"name":"Nvme0"}`)
	if err != nil || !strings.Contains(got, `"state":"enabled"`) || !strings.Contains(got, `"trtype":"TCP"`) {
		t.Errorf("get_controllers: %s, %v", got, err)
	}
	if got, err := call("bdev_nvme_detach_controller", `{"name":"Nvme0"}`); err != nil || got != "true" {
		t.Errorf("detach: %s, %v", got, err)
	}
	if _, err := call("bdev_nvme_detach_controller", `{"name":"Nvme0"}`); err == nil || !strings.Contains(err.Error(), "code -19") {
		t.Errorf("detach of a detached controller: %v, want -ENODEV", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
