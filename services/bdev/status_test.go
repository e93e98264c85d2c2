package bdev

import (
	"strings"
	"testing"
)

// TestStatusWalk walks every Status: each has its own name, is valid, and
// is in exactly one class (success, pending, retryable, final failure), the
// way front ends' translation tables must cover them.
func TestStatusWalk(t *testing.T) {
	seen := map[string]Status{}
	for s := Status(0); s < StatusCount; s++ {
		name := s.String()
		if name == "" || strings.HasPrefix(name, "Status(") {
			t.Errorf("Status %d has no name", uint8(s))
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("Status %d and %d share the name %q", uint8(prev), uint8(s), name)
		}
		seen[name] = s
		if !s.Valid() {
			t.Errorf("%v: Valid() = false", s)
		}
		classes := 0
		for _, in := range []bool{s == StatusSuccess, s == StatusPending, s.Retryable(),
			s != StatusSuccess && s != StatusPending && !s.Retryable()} {
			if in {
				classes++
			}
		}
		if classes != 1 {
			t.Errorf("%v is in %d classes, want 1", s, classes)
		}
	}
	if StatusCount.Valid() || StatusCount.String() != "Status(13)" {
		t.Errorf("StatusCount: Valid %t, String %q; want false, Status(13)", StatusCount.Valid(), StatusCount.String())
	}
	if StatusPending != 0 {
		t.Errorf("StatusPending = %d, want the zero value", StatusPending)
	}
}

func TestStatusDetailString(t *testing.T) {
	tests := []struct {
		set  func(io *IO)
		want string
	}{
		{func(io *IO) { io.Status = StatusSuccess }, "success"},
		{func(io *IO) { io.Status, io.NVMe = StatusNVMe, NVMeStatus{SCT: 2, SC: 0x81, DNR: true} }, "nvme sct=0x2 sc=0x81 dnr=true"},
		{func(io *IO) {
			io.Status, io.SCSI = StatusSCSI, SCSIStatus{Status: 2, SenseKey: 3, ASC: 0x11, ASCQ: 0}
		}, "scsi status=0x02 key=0x3 asc=0x11 ascq=0x00"},
		{func(io *IO) { io.Status, io.Errno = StatusErrno, 5 }, "errno 5 (input/output error)"},
		{func(io *IO) { io.Status, io.MiscompareOffset = StatusMiscompare, 4097 }, "miscompare at byte 4097"},
	}
	for _, tc := range tests {
		var io IO
		tc.set(&io)
		if got := io.StatusString(); got != tc.want {
			t.Errorf("StatusString = %q, want %q", got, tc.want)
		}
	}
}

func TestIOTypes(t *testing.T) {
	tests := []struct {
		t            IOType
		writes, data bool
	}{
		{IORead, false, true},
		{IOWrite, true, true},
		{IOFlush, false, false},
		{IOUnmap, true, false},
		{IOWriteZeroes, true, false},
		{IOReset, false, false},
		{IOCompare, false, true},
		{IOCompareAndWrite, true, true},
	}
	if len(tests) != int(IOTypeCount)-1 {
		t.Fatalf("table has %d types, want all %d", len(tests), IOTypeCount-1)
	}
	for _, tc := range tests {
		if tc.t.Writes() != tc.writes || tc.t.HasData() != tc.data {
			t.Errorf("%v: Writes %t HasData %t, want %t %t", tc.t, tc.t.Writes(), tc.t.HasData(), tc.writes, tc.data)
		}
		if s := IOTypesOf(tc.t); !s.Has(tc.t) || s.String() != tc.t.String() {
			t.Errorf("IOTypesOf(%v) = %v", tc.t, s)
		}
	}
	if IOTypesOf(IORead).Has(IOInvalid) || IOTypeSet(0xffff).Has(IOTypeCount) {
		t.Error("a set has a type outside IORead..IOCompareAndWrite")
	}
}
