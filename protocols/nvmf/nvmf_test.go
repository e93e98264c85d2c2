package nvmf

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/services/bdev"
	"golang.org/x/sys/unix"
)

// TestIOStatusEveryValue walks every bdev.Status (and one past the end) through the one
// translator to NVMe: each has its status, and only retryable ones leave DNR clear.
func TestIOStatusEveryValue(t *testing.T) {
	want := map[bdev.Status]struct {
		st  nvme.Status
		dnr bool
	}{
		bdev.StatusPending:     {nvme.StatusInternalError, true},
		bdev.StatusSuccess:     {nvme.StatusSuccess, false},
		bdev.StatusFailed:      {nvme.StatusInternalError, true},
		bdev.StatusNVMe:        {nvme.MakeStatus(2, 0x81), true}, // passed through, detail below
		bdev.StatusSCSI:        {nvme.StatusUnrecoveredReadError, true},
		bdev.StatusErrno:       {nvme.StatusUnrecoveredReadError, true},
		bdev.StatusAborted:     {nvme.StatusAbortRequested, false},
		bdev.StatusMiscompare:  {nvme.StatusCompareFailure, true},
		bdev.StatusNoResources: {nvme.StatusNamespaceNotReady, false},
		bdev.StatusOutOfRange:  {nvme.StatusLBAOutOfRange, true},
		bdev.StatusUnsupported: {nvme.StatusInvalidOpcode, true},
		bdev.StatusInvalid:     {nvme.StatusInvalidField, true},
		bdev.StatusRetry:       {nvme.StatusNamespaceNotReady, false},
		bdev.StatusCount:       {nvme.StatusInternalError, true}, // not a status: never success
	}
	for s := bdev.Status(0); s <= bdev.StatusCount; s++ {
		w, ok := want[s]
		if !ok {
			t.Errorf("status %v has no expectation: add it here and to ioStatus", s)
			continue
		}
		io := &bdev.IO{Status: s, NVMe: bdev.NVMeStatus{SCT: 2, SC: 0x81, DNR: true},
			SCSI: bdev.SCSIStatus{Status: 2, SenseKey: 3}, Errno: unix.EIO}
		st, dnr := ioStatus(io, bdev.IORead)
		if st != w.st || dnr != w.dnr {
			t.Errorf("%v: %v dnr %v, want %v dnr %v", s, st, dnr, w.st, w.dnr)
		}
		detail := s == bdev.StatusNVMe || s == bdev.StatusSCSI || s == bdev.StatusErrno // DNR decided per detail
		if s.Valid() && s != bdev.StatusSuccess && s != bdev.StatusPending && !detail && dnr == s.Retryable() {
			t.Errorf("%v: DNR %v but Retryable %v", s, dnr, s.Retryable())
		}
	}
}

// TestErrnoStatus: the errnos a file back end reports.
func TestErrnoStatus(t *testing.T) {
	for _, tc := range []struct {
		e    unix.Errno
		t    bdev.IOType
		want nvme.Status
	}{
		{unix.EIO, bdev.IORead, nvme.StatusUnrecoveredReadError},
		{unix.EIO, bdev.IOWrite, nvme.StatusWriteFault},
		{unix.ENOSPC, bdev.IOWrite, nvme.StatusCapacityExceeded},
		{unix.EROFS, bdev.IOWrite, nvme.StatusNamespaceWriteProtected},
		{unix.EAGAIN, bdev.IORead, nvme.StatusNamespaceNotReady},
		{unix.EFAULT, bdev.IORead, nvme.StatusInternalError},
	} {
		if got, _ := errnoStatus(tc.e, tc.t); got != tc.want {
			t.Errorf("%v on %v: %v, want %v", tc.e, tc.t, got, tc.want)
		}
	}
}

// TestKeepAliveExpired is the pure rule the keep-alive timer applies.
func TestKeepAliveExpired(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		kato, last, now time.Duration
		want            bool
	}{
		{0, 0, 100 * s, false},         // no KATO: never
		{10 * s, 0, 10 * s, false},     // exactly KATO since: not yet
		{10 * s, 0, 10*s + 1, true},    // past it
		{10 * s, 5 * s, 14 * s, false}, // a keep alive moved it
		{10 * s, 5 * s, 16 * s, true},
	} {
		if got := keepAliveExpired(tc.kato, tc.last, tc.now); got != tc.want {
			t.Errorf("kato %v last %v now %v: %v, want %v", tc.kato, tc.last, tc.now, got, tc.want)
		}
	}
}

// TestKATOFor: the keep-alive limits applied to what a host asks.
func TestKATOFor(t *testing.T) {
	o := TransportOptions{}
	o.Fill()
	for _, tc := range []struct {
		asked     time.Duration
		discovery bool
		want      time.Duration
		ok        bool
	}{
		{0, false, 0, true},
		{0, true, discoveryKATO, true},
		{5 * time.Second, false, 10 * time.Second, true}, // Linux's default, raised to min_kato
		{12300 * time.Millisecond, false, 13 * time.Second, true},
		{time.Hour, false, time.Hour, true},
		{time.Hour + time.Millisecond, false, 0, false},
	} {
		got, ok := katoFor(&o, tc.asked, tc.discovery)
		if got != tc.want || ok != tc.ok {
			t.Errorf("katoFor(%v, discovery %v) = %v %v, want %v %v", tc.asked, tc.discovery, got, ok, tc.want, tc.ok)
		}
	}
}

// TestTransportOptionsValidate: every bad option is reported, each naming its field.
func TestTransportOptionsValidate(t *testing.T) {
	o := TransportOptions{MaxQueueDepth: 1, MaxAdminQueueDepth: 8, InCapsuleDataSize: 100, MaxIOSize: 3 << 16,
		KeepAliveGranularity: 50 * time.Millisecond}
	o.Fill()
	err := o.Validate()
	for _, field := range []string{"max_queue_depth", "max_aq_depth", "in_capsule_data_size", "max_io_size", "kas"} {
		if err == nil || !contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want a problem with %s", err, field)
		}
	}
	if !errors.Is(err, ErrConfig) {
		t.Errorf("Validate() = %v, want ErrConfig", err)
	}
	good := TransportOptions{}
	good.Fill()
	if err := good.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if good.MDTS() != 5 {
		t.Errorf("MDTS of 128 KiB: %d, want 5", good.MDTS())
	}
}

// TestListenAddressNormalize: spellings of one address compare equal after Normalize; bad
// ones name their field.
func TestListenAddressNormalize(t *testing.T) {
	a, err := ListenAddress{TrType: "tcp", TrAddr: "127.0.0.1", TrSvcID: "4420"}.Normalize()
	if err != nil || a != (ListenAddress{TrType: "TCP", AdrFam: "IPv4", TrAddr: "127.0.0.1", TrSvcID: "4420"}) {
		t.Errorf("Normalize = %+v, %v", a, err)
	}
	for _, tc := range []struct {
		a     ListenAddress
		field string
	}{
		{ListenAddress{TrAddr: "127.0.0.1", TrSvcID: "4420"}, "trtype"},
		{ListenAddress{TrType: "TCP", TrAddr: "host.example", TrSvcID: "4420"}, "traddr"},
		{ListenAddress{TrType: "TCP", AdrFam: "IPv6", TrAddr: "127.0.0.1", TrSvcID: "4420"}, "adrfam"},
		{ListenAddress{TrType: "TCP", TrAddr: "::1", TrSvcID: "0"}, "trsvcid"},
		{ListenAddress{TrType: "TCP", TrAddr: "::1", TrSvcID: "04420"}, "trsvcid"},
	} {
		if _, err := tc.a.Normalize(); err == nil || !contains(err.Error(), tc.field) {
			t.Errorf("Normalize(%+v) = %v, want a problem with %s", tc.a, err, tc.field)
		}
	}
}

// TestSubsystemConfigValidate reports every problem at once.
func TestSubsystemConfigValidate(t *testing.T) {
	c := SubsystemConfig{NQN: "nqn.2016-06.io.sluice:x", SerialNumber: "0123456789012345678901",
		ModelNumber: "bad\x01model", Hosts: []string{"not-an-nqn", "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000001",
			"nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000001"},
		MaxNamespaces: 5000, MinCNTLID: 10, MaxCNTLID: 5}
	err := c.Validate()
	for _, field := range []string{"serial_number", "model_number", "hosts[0]", "hosts[2]", "max_namespaces", "min_cntlid"} {
		if err == nil || !contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want a problem with %s", err, field)
		}
	}
	for _, nqn := range []string{"", "nqn.2014-08.org.nvmexpress.discovery", "nqn.20160-6.io.x:y"} {
		if err := (&SubsystemConfig{NQN: nqn}).Validate(); err == nil {
			t.Errorf("NQN %q accepted", nqn)
		}
	}
}

// TestLatencyHistogram: percentiles are the top of their power-of-two bucket.
func TestLatencyHistogram(t *testing.T) {
	var s ioStats
	for i := 0; i < 99; i++ {
		s.record(opRead, 4096, false, 10*time.Microsecond) // bucket [8192, 16384) ns
	}
	s.record(opWrite, 4096, true, 3*time.Millisecond) // bucket [2^21, 2^22) ns
	snap := s.snapshot()
	if snap.ReadOps != 99 || snap.WriteOps != 1 || snap.Errors != 1 || snap.BytesRead != 99*4096 {
		t.Errorf("counters %+v", snap)
	}
	if p := snap.LatencyPercentile(50); p != 16384 {
		t.Errorf("p50 %v, want 16.384µs", p)
	}
	if p := snap.LatencyPercentile(100); p != 1<<22 {
		t.Errorf("p100 %v, want %v", p, time.Duration(1<<22))
	}
	if m := snap.LatencyMean(); m < 10*time.Microsecond || m > 50*time.Microsecond {
		t.Errorf("mean %v", m)
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || index(s, sub) >= 0) }

func index(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
