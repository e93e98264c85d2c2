package nvme

import (
	"errors"
	"strings"
	"testing"
)

// Error Information entry (NVMe Base 2.0 "Error Information Log Entry Data Structure"): error
// count 7:0, SQID 9:8, CID 11:10, status 13:12 (phase in bit 0), location 15:14, LBA 23:16, NSID
// 27:24, TRTYPE 29, command specific 39:32, transport specific 41:40.
func TestErrorInfo(t *testing.T) {
	var e ErrorInfo
	e.SetErrorCount(5)
	e.SetSQID(1)
	e.SetCID(0x20)
	e.SetStatus(StatusLBAOutOfRange)
	e.SetErrorLocation(40, 0)
	e.SetLBA(0x1000)
	e.SetNSID(1)
	e.SetTRTYPE(TransportTCP)
	e.SetCommandInfo(7)
	e.SetTransportInfo(9)
	wantBytes(t, "entry", e[:], 0, "0500000000000000 0100 2000 0001 2800 0010000000000000 01000000 00 03")
	wantBytes(t, "csi/ttsi", e[:], 32, "0700000000000000 0900")
	b, bit := e.ErrorLocation()
	if e.ErrorCount() != 5 || e.SQID() != 1 || e.CID() != 0x20 || e.Status() != StatusLBAOutOfRange ||
		b != 40 || bit != 0 || e.LBA() != 0x1000 || e.NSID() != 1 || e.TRTYPE() != TransportTCP ||
		e.CommandInfo() != 7 || e.TransportInfo() != 9 {
		t.Error("error info read back")
	}
}

// SMART / Health log (NVMe Base 2.0 "SMART / Health Information Log Page").
func TestSMARTLog(t *testing.T) {
	var s SMARTLog
	s.SetCriticalWarning(CriticalReadOnly)
	s.SetCompositeTemperature(300)
	s.SetAvailableSpare(100)
	s.SetAvailableSpareThreshold(10)
	s.SetPercentageUsed(1)
	s.SetDataUnitsRead(Uint128{Lo: 1000})
	s.SetDataUnitsWritten(Uint128{Lo: 2000, Hi: 1})
	s.SetHostReadCommands(Uint128{Lo: 3})
	s.SetHostWriteCommands(Uint128{Lo: 4})
	s.SetControllerBusyTime(Uint128{Lo: 5})
	s.SetPowerCycles(Uint128{Lo: 6})
	s.SetPowerOnHours(Uint128{Lo: 7})
	s.SetUnsafeShutdowns(Uint128{Lo: 8})
	s.SetMediaErrors(Uint128{Lo: 9})
	s.SetErrorLogEntries(Uint128{Lo: 10})
	s.SetWarningTempTime(11)
	s.SetCriticalTempTime(12)
	s.SetTemperatureSensor(1, 301)
	s.SetTemperatureSensor(8, 308)
	wantBytes(t, "head", s[:], 0, "08 2c01 64 0a 01")
	wantBytes(t, "data units read", s[:], 32, "e803000000000000 0000000000000000")
	wantBytes(t, "data units written", s[:], 48, "d007000000000000 0100000000000000")
	wantBytes(t, "media errors", s[:], 160, "09")
	wantBytes(t, "error entries", s[:], 176, "0a")
	wantBytes(t, "temp times", s[:], 192, "0b000000 0c000000 2d01")
	wantBytes(t, "sensor 8", s[:], 214, "3401")
	if s.CriticalWarning() != CriticalReadOnly || s.CompositeTemperature() != 300 || s.AvailableSpare() != 100 ||
		s.AvailableSpareThreshold() != 10 || s.PercentageUsed() != 1 ||
		s.DataUnitsRead() != (Uint128{Lo: 1000}) || s.DataUnitsWritten() != (Uint128{2000, 1}) ||
		s.HostReadCommands().Lo != 3 || s.HostWriteCommands().Lo != 4 || s.ControllerBusyTime().Lo != 5 ||
		s.PowerCycles().Lo != 6 || s.PowerOnHours().Lo != 7 || s.UnsafeShutdowns().Lo != 8 ||
		s.MediaErrors().Lo != 9 || s.ErrorLogEntries().Lo != 10 || s.WarningTempTime() != 11 ||
		s.CriticalTempTime() != 12 || s.TemperatureSensor(1) != 301 || s.TemperatureSensor(8) != 308 {
		t.Error("smart read back")
	}
}

// Firmware Slot log: AFI byte 0, slot n's revision at 8n.
func TestFirmwareSlotLog(t *testing.T) {
	var f FirmwareSlotLog
	f.SetAFI(1, 0)
	if err := f.SetRevision(1, "0.1"); err != nil {
		t.Fatal(err)
	}
	if err := f.SetRevision(7, "7.7.7"); err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "afi", f[:], 0, "01")
	wantBytes(t, "frs1", f[:], 8, "302e312020202020")
	wantBytes(t, "frs7", f[:], 56, "372e372e37202020")
	if f.ActiveSlot() != 1 || f.NextSlot() != 0 || f.Revision(1) != "0.1" || f.Revision(2) != "" || f.Revision(7) != "7.7.7" {
		t.Error("firmware read back")
	}
	f.SetAFI(2, 3)
	if f.ActiveSlot() != 2 || f.NextSlot() != 3 || f[0] != 0x32 {
		t.Error("AFI next slot in bits 6:4")
	}
	if err := f.SetRevision(1, "123456789"); err == nil {
		t.Error("9-byte revision accepted")
	}
}

// Commands Supported and Effects: admin entry n at 4n, I/O entry n at 1024+4n.
func TestCommandsEffectsLog(t *testing.T) {
	var l CommandsEffectsLog
	l.SetAdmin(AdminIdentify, EffectCSUPP)
	l.SetIO(IOWrite, EffectCSUPP|EffectLBCC)
	l.SetIO(IOFabrics, EffectCSUPP)
	wantBytes(t, "admin identify", l[:], 24, "01000000")
	wantBytes(t, "io write", l[:], 1028, "03000000")
	if l.Admin(AdminIdentify) != EffectCSUPP || l.IO(IOWrite) != 3 || l.IO(IORead) != 0 || l.Admin(AdminAbort) != 0 {
		t.Error("effects read back")
	}
}

// Discovery log page (NVMe-oF 1.1 "Discovery Log Page"): GENCTR 7:0, NUMREC 15:8, RECFMT 17:16;
// entries from 1024 with TRTYPE 0, ADRFAM 1, SUBTYPE 2, TREQ 3, PORTID 5:4, CNTLID 7:6, ASQSZ
// 9:8, TRSVCID 63:32, SUBNQN 511:256, TRADDR 767:512, TSAS 1023:768.
func TestDiscoveryLog(t *testing.T) {
	entries := []DiscoveryEntry{
		{TRTYPE: TransportTCP, ADRFAM: AddrFamilyIPv4, SUBTYPE: SubsystemNVM, TREQ: TREQSecureNotRequired,
			PORTID: 1, CNTLID: CNTLIDDynamic, ASQSZ: 32, TRSVCID: "4420", TRADDR: "192.0.2.7",
			SUBNQN: "nqn.2016-06.io.sluice:disk1"},
		{TRTYPE: TransportTCP, ADRFAM: AddrFamilyIPv6, SUBTYPE: SubsystemCurrentDiscovery,
			PORTID: 2, CNTLID: CNTLIDDynamic, ASQSZ: 32, TRSVCID: "8009", TRADDR: "2001:db8::7",
			SUBNQN: DiscoveryNQN},
	}
	page := make([]byte, DiscoveryLogSize(len(entries)))
	for i := range page {
		page[i] = 0xEE // stale bytes must not leak (N3)
	}
	n, err := BuildDiscoveryLog(page, 42, entries)
	if err != nil || n != 3072 {
		t.Fatalf("BuildDiscoveryLog = %d, %v", n, err)
	}
	wantBytes(t, "header", page, 0, "2a00000000000000 0200000000000000 0000 0000")
	wantBytes(t, "entry 0 head", page, 1024, "03 01 02 02 0100 ffff 2000 0000")
	wantBytes(t, "entry 0 trsvcid", page, 1024+32, "34343230"+strings.Repeat("20", 28))
	wantBytes(t, "entry 0 subnqn", page, 1024+256, "6e716e2e")
	wantBytes(t, "entry 0 traddr", page, 1024+512, "3139322e302e322e3720")
	if page[1023] != 0 || page[1024+256+27] != 0 || page[2047] != 0 {
		t.Error("reserved or padding bytes not zeroed")
	}
	genctr, got, err := ParseDiscoveryLog(page)
	if err != nil || genctr != 42 || len(got) != 2 {
		t.Fatalf("ParseDiscoveryLog = %d, %d entries, %v", genctr, len(got), err)
	}
	for i := range entries {
		if got[i] != entries[i] {
			t.Errorf("entry %d: got %+v\nwant %+v", i, got[i], entries[i])
		}
	}

	// A host that read only the header and one entry learns NUMREC and re-reads.
	g, part, err := ParseDiscoveryLog(page[:2048])
	if err == nil || g != 42 || len(part) != 1 {
		t.Errorf("short page: %d entries, %v", len(part), err)
	}
	if _, _, err := ParseDiscoveryLog(page[:100]); err == nil {
		t.Error("page shorter than the header accepted")
	}
	if _, err := BuildDiscoveryLog(page[:2048], 1, entries); err == nil {
		t.Error("small buffer accepted")
	}
	bad := entries[0]
	bad.TRADDR = strings.Repeat("a", 257)
	if _, err := BuildDiscoveryLog(page, 1, []DiscoveryEntry{bad}); err == nil {
		t.Error("long TRADDR accepted")
	}
	bad = entries[0]
	bad.TRSVCID = "44\x0020"
	if _, err := BuildDiscoveryLog(page, 1, []DiscoveryEntry{bad}); err == nil {
		t.Error("NUL in TRSVCID accepted")
	}
	bad = entries[0]
	bad.SUBNQN = strings.Repeat("n", 256)
	if _, err := BuildDiscoveryLog(page, 1, []DiscoveryEntry{bad}); err == nil {
		t.Error("long SUBNQN accepted")
	}

	// Peer bytes: an unterminated SUBNQN and a record format we do not know.
	n, _ = BuildDiscoveryLog(page, 42, entries)
	for i := 1024 + 256; i < 1024+512; i++ {
		page[i] = 'x'
	}
	if _, got, err := ParseDiscoveryLog(page[:n]); err == nil || len(got) != 0 {
		t.Error("unterminated SUBNQN accepted")
	}
	page[16] = 1
	if _, _, err := ParseDiscoveryLog(page[:n]); err == nil {
		t.Error("RECFMT 1 accepted")
	}
	// Entries padded with NULs rather than spaces (some targets do) still parse.
	var e DiscoveryLogEntry
	if err := e.Set(&entries[0]); err != nil {
		t.Fatal(err)
	}
	for i := 32 + 4; i < 64; i++ {
		e[i] = 0
	}
	if got, err := e.Entry(); err != nil || got.TRSVCID != "4420" {
		t.Errorf("NUL-padded TRSVCID: %q %v", got.TRSVCID, err)
	}
}

func TestValidateNQN(t *testing.T) {
	tests := []struct{ nqn, rule string }{ // rule "": valid; else a substring of the error
		{DiscoveryNQN, ""},
		{"nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", ""},
		{"nqn.2014-08.org.nvmexpress:uuid:F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6", ""},
		{"nqn.2016-06.io.spdk:cnode1", ""},
		{"nqn.2014-08.com.163:storage:disk-é", ""}, // digit-led label (RFC 1123), UTF-8 user string
		{"nqn.2014-08.org.nvmexpress:NVMf:uuid:anything", ""},
		{"nqn.2016-06.io.sluice:" + strings.Repeat("x", NQNSizeMax-22), ""},
		{"nqn.2016-06.io.sluice:" + strings.Repeat("x", NQNSizeMax-21), "want at most 223"},
		{"nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf", "UUID"},
		{"nqn.2014-08.org.nvmexpress:uuid:f81d4fae_7dec-11d0-a765-00a0c91e6bf6", "UUID"},
		{"nqn.2014-08.org.nvmexpress:uuid:g81d4fae-7dec-11d0-a765-00a0c91e6bf6", "UUID"},
		{"iqn.2016-06.io.spdk:cnode1", `prefix "nqn."`},
		{"nqn.16-06.io.spdk:cnode1", "date code"},
		{"nqn.2016-6.io.spdk:cnode1", "date code"},
		{"nqn.2016-13.io.spdk:cnode1", "month 13"},
		{"nqn.2016-00.io.spdk:cnode1", "month 00"},
		{"nqn.2016-06.io.spdk", `want ":"`},
		{"nqn.2016-06.io.spdk:", "empty user"},
		{"nqn.2016-06.:x", "empty reverse domain"},
		{"nqn.2016-06.io..spdk:x", `label "": empty`},
		{"nqn.2016-06.io.-spdk:x", "starts or ends"},
		{"nqn.2016-06.io.spdk-:x", "starts or ends"},
		{"nqn.2016-06.io.sp_dk:x", "letters, digits"},
		{"nqn.2016-06.io." + strings.Repeat("a", 64) + ":x", "at most 63"},
		{"nqn.2016-06.io.spdk:x\x00y", "NUL"},
		{"nqn.2016-06.io.spdk:\xff", "UTF-8"},
		{"", `prefix "nqn."`},
	}
	for _, tc := range tests {
		err := ValidateNQN(tc.nqn)
		switch {
		case tc.rule == "" && err != nil:
			t.Errorf("ValidateNQN(%q) = %v, want valid", tc.nqn, err)
		case tc.rule != "" && (err == nil || !strings.Contains(err.Error(), tc.rule) || !errors.Is(err, ErrInvalidNQN)):
			t.Errorf("ValidateNQN(%q) = %v, want an ErrInvalidNQN naming %q", tc.nqn, err, tc.rule)
		}
	}
	id := [16]byte{0xf8, 0x1d, 0x4f, 0xae, 0x7d, 0xec, 0x11, 0xd0, 0xa7, 0x65, 0x00, 0xa0, 0xc9, 0x1e, 0x6b, 0xf6}
	if got := UUIDNQN(id); got != "nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6" || ValidateNQN(got) != nil {
		t.Errorf("UUIDNQN = %q", got)
	}
}
