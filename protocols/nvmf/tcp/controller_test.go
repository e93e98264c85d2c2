package tcp

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf"
	"github.com/sluice-storage/sluice/services/bdev"
)

// TestNamespaceChangeAER: adding and removing a namespace at runtime, or deleting its bdev,
// completes a held Asynchronous Event Request with the Namespace Attribute Changed notice, and the Changed
// Namespace List names it (NVMe Base 2.0, "Asynchronous Event Request command").
func TestNamespaceChangeAER(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	if _, err := tt.reg.Create(bdev.Spec{Name: "Malloc1", Driver: "malloc", BlockSize: 4096, Blocks: 256}); err != nil {
		t.Fatal(err)
	}
	h := adminSession(t, tt.addr, testNQN, false, false)
	h.mustOK(h.features(true, nvme.FeatureAsyncEventConfig, nvme.OAESNSAttribute), "set AEC")
	io := ioSession(t, tt.addr, testNQN, h.cntlid, 1, false, false, true)

	for _, step := range []struct {
		name   string
		change func() error
		active []uint32
	}{
		{"add", func() error {
			nsid, err := tt.target.AddNamespace(testNQN, nvmf.NamespaceConfig{Bdev: "Malloc1"})
			if err == nil && nsid != 2 {
				t.Errorf("AddNamespace picked NSID %d, want the lowest free, 2", nsid)
			}
			return err
		}, []uint32{1, 2}},
		{"remove", func() error { return tt.target.RemoveNamespace(testNQN, 2) }, []uint32{1}},
		{"re-add", func() error {
			_, err := tt.target.AddNamespace(testNQN, nvmf.NamespaceConfig{Bdev: "Malloc1", NSID: 2})
			return err
		}, []uint32{1, 2}},
		// SPDK's hot remove: deleting the bdev takes its namespace out, with the notice.
		{"bdev deleted", func() error { return tt.reg.Delete("Malloc1") }, []uint32{1}},
	} {
		var aer nvme.SQE
		aer.SetOpcode(uint8(nvme.AdminAsyncEventReq))
		cid := h.submit(&aer, 0)
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		cqe, _, _ := h.await(cid)
		h.mustOK(cqe, step.name+": AER")
		typ, info, lid := nvme.ParseAsyncEvent(cqe.DW0())
		if typ != nvme.AsyncEventNotice || info != nvme.AsyncNoticeNSAttributeChanged || lid != nvme.LogChangedNSList {
			t.Errorf("%s: AER event %d/%#x/%#x, want notice / NS attribute changed / log 04h", step.name, typ, info, lid)
		}
		data, cqe := h.getLogPage(nvme.LogChangedNSList, 0, nvme.NSListSize, 0)
		h.mustOK(cqe, "changed namespace list")
		if ids := (*nvme.NSList)(data).NSIDs(nil); len(ids) != 1 || ids[0] != 2 {
			t.Errorf("%s: changed namespace list %v, want [2]", step.name, ids)
		}
		data, cqe = h.identify(nvme.CNSActiveNSList, 0)
		h.mustOK(cqe, "active namespaces")
		if ids := (*nvme.NSList)(data).NSIDs(nil); len(ids) != len(step.active) {
			t.Errorf("%s: active namespaces %v, want %v", step.name, ids, step.active)
		}
	}
	// The removed namespace answers Invalid Namespace; the other still works.
	if cqe, _ := io.rw(nvme.IORead, 2, 0, 1, nil, 4096); cqe.Status() != nvme.StatusInvalidNamespaceOrFormat {
		t.Errorf("read of removed NSID 2: %v, want invalid namespace", cqe.Status())
	}
	io.mustOK(first(io.rw(nvme.IORead, 1, 0, 1, nil, testBlockSize)), "read NSID 1")
}

// TestKeepAliveExpiry: a host that connects with a KATO and then falls silent has its
// controller torn down: admin and I/O connections close, the CNTLID is freed.
func TestKeepAliveExpiry(t *testing.T) {
	opts := Options{}
	opts.KeepAliveGranularity = 100 * time.Millisecond
	opts.KeepAliveTimeoutMin = 200 * time.Millisecond
	tt := newTestTarget(t, targetConfig{opts: opts})
	h := dialHost(t, tt.addr, false, false)
	h.mustOK(h.connect(0, 32, testNQN, nvme.CNTLIDDynamic, 150*time.Millisecond), "admin connect")
	h.enable()
	cqe := h.features(false, nvme.FeatureKeepAliveTimer, 0)
	if cqe.DW0() != 200 {
		t.Errorf("KATO %d ms after asking 150, want the minimum 200", cqe.DW0())
	}
	io := ioSession(t, tt.addr, testNQN, h.cntlid, 1, false, false, true)
	s, _ := tt.target.Subsystem(testNQN)
	if n := len(s.Controllers()); n != 1 {
		t.Fatalf("%d controllers, want 1", n)
	}
	// Silence: no Keep Alive. Both connections must close.
	if _, err := h.expectClosed(); err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	if _, err := io.expectClosed(); err != nil {
		t.Fatalf("I/O connection: %v", err)
	}
	waitFor(t, "controller freed", func() bool { return len(s.Controllers()) == 0 })
}

// TestAbort: Abort of a held AER aborts it; of a command that is not queued, reports "not
// aborted"; past ACL+1 outstanding is not reachable one at a time.
func TestAbort(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	h := adminSession(t, tt.addr, testNQN, false, false)
	ioSession(t, tt.addr, testNQN, h.cntlid, 1, false, false, true)
	var aer nvme.SQE
	aer.SetOpcode(uint8(nvme.AdminAsyncEventReq))
	aerCID := h.submit(&aer, 0)
	var abort nvme.SQE
	abort.SetOpcode(uint8(nvme.AdminAbort))
	abort.SetAbort(0, aerCID)
	abortCID := h.submit(&abort, 0)
	cqe, _, others := h.await(abortCID)
	h.mustOK(cqe, "abort")
	if cqe.DW0()&1 != 0 {
		t.Errorf("abort of a held AER: DW0 %#x, want bit 0 clear (aborted)", cqe.DW0())
	}
	if len(others) != 1 || others[0].CID() != aerCID || others[0].Status() != nvme.StatusAbortRequested {
		t.Errorf("the AER's completion %v, want cid %d with abort requested", others, aerCID)
	}
	abort.SetAbort(1, 999) // an I/O command that is not there
	cqe, _ = h.exec(&abort, nil, 0)
	h.mustOK(cqe, "abort of a missing command")
	if cqe.DW0()&1 == 0 {
		t.Errorf("abort of a missing command: DW0 %#x, want bit 0 set (not aborted)", cqe.DW0())
	}
}

// TestConnectChecks: each ordered check of Connect ends in its status.
func TestConnectChecks(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	h := adminSession(t, tt.addr, testNQN, false, false)
	for _, tc := range []struct {
		name    string
		qid     uint16
		depth   uint16
		subnqn  string
		cntlid  uint16
		want    nvme.Status
		ipo     uint16
		ipoData bool
	}{
		{"unknown subsystem", 0, 32, "nqn.2016-06.io.sluice:nothing", nvme.CNTLIDDynamic, nvme.StatusConnectInvalidParameters, 256, true},
		{"sqsize 0", 0, 1, testNQN, nvme.CNTLIDDynamic, nvme.StatusConnectInvalidParameters, 44, false},
		{"admin deeper than max_aq_depth", 0, 33, testNQN, nvme.CNTLIDDynamic, nvme.StatusConnectInvalidParameters, 44, false},
		{"I/O deeper than max_queue_depth", 1, 129, testNQN, h.cntlid, nvme.StatusConnectInvalidParameters, 44, false},
		{"static controller ID", 0, 32, testNQN, 5, nvme.StatusConnectInvalidParameters, 16, true},
		{"unknown controller", 1, 32, testNQN, 77, nvme.StatusConnectInvalidParameters, 16, true},
		{"QID beyond Number of Queues", 200, 32, testNQN, h.cntlid, nvme.StatusInvalidQueueIdentifier, 0, false},
	} {
		c := dialHost(t, tt.addr, false, false)
		cqe := c.connect(tc.qid, tc.depth, tc.subnqn, tc.cntlid, 0)
		if cqe.Status() != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, cqe.Status(), tc.want)
			continue
		}
		if tc.want == nvme.StatusConnectInvalidParameters {
			if ipo, inData := cqe.ConnectInvalidParam(); ipo != tc.ipo || inData != tc.ipoData {
				t.Errorf("%s: IPO %d in data %v, want %d, %v", tc.name, ipo, inData, tc.ipo, tc.ipoData)
			}
		}
	}
	// A command before Connect, and a second Connect.
	c := dialHost(t, tt.addr, false, false)
	if _, cqe := c.identify(nvme.CNSController, 0); cqe.Status() != nvme.StatusCommandSequenceError {
		t.Errorf("identify before connect: %v, want command sequence error", cqe.Status())
	}
	io := ioSession(t, tt.addr, testNQN, h.cntlid, 1, false, false, true)
	if cqe := io.connect(1, 32, testNQN, h.cntlid, 0); cqe.Status() != nvme.StatusCommandSequenceError {
		t.Errorf("second connect on a queue: %v, want command sequence error", cqe.Status())
	}
	if cqe := dialHost(t, tt.addr, false, false).connect(1, 32, testNQN, h.cntlid, 0); cqe.Status() != nvme.StatusInvalidQueueIdentifier {
		t.Errorf("QID 1 twice: %v, want invalid queue identifier", cqe.Status())
	}
	// An I/O queue to a controller that is not enabled yet.
	d := dialHost(t, tt.addr, false, false)
	d.mustOK(d.connect(0, 32, testNQN, nvme.CNTLIDDynamic, 0), "admin connect")
	if cqe := dialHost(t, tt.addr, false, false).connect(1, 32, testNQN, d.cntlid, 0); cqe.Status() != nvme.StatusConnectInvalidParameters {
		t.Errorf("I/O connect before CC.EN: %v, want connect invalid parameters", cqe.Status())
	}
}

// TestHostAllowList: with allow_any_host off only listed hosts connect, and only through the
// subsystem's listeners; removing a host drops its controllers.
func TestHostAllowList(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	const nqn2 = "nqn.2016-06.io.sluice:restricted"
	if _, err := tt.target.CreateSubsystem(nvmf.SubsystemConfig{NQN: nqn2}); err != nil {
		t.Fatal(err)
	}
	if cqe := dialHost(t, tt.addr, false, false).connect(0, 32, nqn2, nvme.CNTLIDDynamic, 0); cqe.Status() != nvme.StatusConnectInvalidHost {
		t.Errorf("connect without a listener: %v, want connect invalid host", cqe.Status())
	}
	if err := tt.target.AddListener(nqn2, tt.listen); err != nil {
		t.Fatal(err)
	}
	if err := tt.target.AddListener(nqn2, tt.listen); !errors.Is(err, nvmf.ErrExists) {
		t.Errorf("duplicate listener: %v, want ErrExists", err)
	}
	if cqe := dialHost(t, tt.addr, false, false).connect(0, 32, nqn2, nvme.CNTLIDDynamic, 0); cqe.Status() != nvme.StatusConnectInvalidHost {
		t.Errorf("connect of an unlisted host: %v, want connect invalid host", cqe.Status())
	}
	if err := tt.target.AddHost(nqn2, testHostNQN); err != nil {
		t.Fatal(err)
	}
	// An empty host NQN (spdk_nvme_perf sends none unless told) matches no allow list...
	if cqe := dialHost(t, tt.addr, false, false).connectAs("", 0, 32, nqn2, nvme.CNTLIDDynamic, 0); cqe.Status() != nvme.StatusConnectInvalidHost {
		t.Errorf("connect with no host NQN to a subsystem with an allow list: %v, want connect invalid host", cqe.Status())
	}
	// ...and is let in where any host may connect, as SPDK's and Linux's targets do.
	anon := dialHost(t, tt.addr, false, false)
	anon.mustOK(anon.connectAs("", 0, 32, testNQN, nvme.CNTLIDDynamic, 0), "connect with no host NQN, any host allowed")
	h := dialHost(t, tt.addr, false, false)
	h.mustOK(h.connect(0, 32, nqn2, nvme.CNTLIDDynamic, 0), "connect of a listed host")
	if err := tt.target.RemoveHost(nqn2, testHostNQN); err != nil {
		t.Fatal(err)
	}
	if _, err := h.expectClosed(); err != nil {
		t.Errorf("after remove_host: %v", err)
	}
}

// TestDisconnectController: the target drops a controller on request; its queues close.
func TestDisconnectController(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	h := adminSession(t, tt.addr, testNQN, false, false)
	io := ioSession(t, tt.addr, testNQN, h.cntlid, 1, false, false, true)
	if err := tt.target.DisconnectController(testNQN, h.cntlid); err != nil {
		t.Fatal(err)
	}
	if _, err := h.expectClosed(); err != nil {
		t.Errorf("admin: %v", err)
	}
	if _, err := io.expectClosed(); err != nil {
		t.Errorf("I/O: %v", err)
	}
	s, _ := tt.target.Subsystem(testNQN)
	waitFor(t, "controller freed", func() bool { return len(s.Controllers()) == 0 })
	if err := tt.target.DisconnectController(testNQN, h.cntlid); !errors.Is(err, nvmf.ErrNotFound) {
		t.Errorf("second disconnect: %v, want ErrNotFound", err)
	}
}

// TestDiscovery: the discovery controller answers Identify and the discovery log page, read
// in two steps as Linux does (header, then all), and its generation moves on a change.
func TestDiscovery(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	h := adminSession(t, tt.addr, nvme.DiscoveryNQN, false, false)
	data, cqe := h.identify(nvme.CNSController, 0)
	h.mustOK(cqe, "identify")
	if id := (*nvme.IdentifyController)(data); id.CNTRLTYPE() != nvme.ControllerTypeDiscovery {
		t.Errorf("CNTRLTYPE %d, want discovery", id.CNTRLTYPE())
	}
	if _, cqe := h.identify(nvme.CNSNamespace, 1); cqe.Status().Success() {
		t.Errorf("identify namespace on a discovery controller succeeded")
	}
	hdr, cqe := h.getLogPage(nvme.LogDiscovery, 0, nvme.DiscoveryLogHeaderSize, 0)
	h.mustOK(cqe, "discovery log header")
	gen1, _, _ := nvme.ParseDiscoveryLog(hdr)
	numrec := (*nvme.DiscoveryLogHeader)(hdr).NUMREC()
	page, cqe := h.getLogPage(nvme.LogDiscovery, 0, uint32(nvme.DiscoveryLogSize(int(numrec))), 0)
	h.mustOK(cqe, "discovery log")
	gen2, entries, err := nvme.ParseDiscoveryLog(page)
	if err != nil || gen1 != gen2 || len(entries) != 1 {
		t.Fatalf("discovery log: gen %d/%d, %d entries, %v", gen1, gen2, len(entries), err)
	}
	e := entries[0]
	if e.SUBNQN != testNQN || e.TRTYPE != nvme.TransportTCP || e.TRADDR != "127.0.0.1" || e.TRSVCID != tt.listen.TrSvcID ||
		e.CNTLID != nvme.CNTLIDDynamic || e.SUBTYPE != nvme.SubsystemNVM || e.ASQSZ != 32 {
		t.Errorf("discovery entry %+v", e)
	}
	// An entry read from its offset (LPO) is the same entry.
	tail, cqe := h.getLogPage(nvme.LogDiscovery, 0, nvme.DiscoveryLogEntrySize, nvme.DiscoveryLogHeaderSize)
	h.mustOK(cqe, "discovery log at an offset")
	if string(tail) != string(page[nvme.DiscoveryLogHeaderSize:]) {
		t.Errorf("entry read at offset 1024 differs from the whole page's")
	}
	if err := tt.target.SetAllowAnyHost(testNQN, false); err != nil {
		t.Fatal(err)
	}
	hdr, _ = h.getLogPage(nvme.LogDiscovery, 0, nvme.DiscoveryLogHeaderSize, 0)
	if gen3, _, _ := nvme.ParseDiscoveryLog(hdr); gen3 == gen2 || (*nvme.DiscoveryLogHeader)(hdr).NUMREC() != 0 {
		t.Errorf("after allow_any_host false: generation %d (was %d), %d records, want a new generation and none",
			gen3, gen2, (*nvme.DiscoveryLogHeader)(hdr).NUMREC())
	}
}

// waitFor polls cond until it holds or a deadline passes (state changed by reactors).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hostTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, hostTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}
