package nvme

import (
	"errors"
	"strings"
	"testing"
)

// Connect command (NVMe-oF 1.1, "Connect Command – Submission Queue Entry"): FCTYPE byte 4,
// SGL1 at 24, RECFMT 41:40, QID 43:42, SQSIZE 45:44, CATTR 46, KATO 51:48.
func TestConnectCommand(t *testing.T) {
	var s SQE
	s.SetFabrics(FabricsConnect)
	s.SetCID(9)
	s.SGL1().SetInCapsule(ConnectDataSize)
	c := s.Connect()
	c.SetRECFMT(ConnectRECFMT0)
	c.SetQID(3)
	c.SetSQSIZE(127)
	c.SetCATTR(ConnectAttrDisableSQFlow)
	c.SetKATO(120000)
	wantBytes(t, "cdw0", s[:], 0, "7f 40 0900 01")
	wantBytes(t, "sgl1", s[:], 24, "0000000000000000 00040000 000000 01")
	wantBytes(t, "connect fields", s[:], 40, "0000 0300 7f00 04 00 c0d40100")
	if s.FCType() != FabricsConnect || c.RECFMT() != 0 || c.QID() != 3 || c.SQSIZE() != 127 ||
		c.QueueDepth() != 128 || c.CATTR() != ConnectAttrDisableSQFlow || c.KATO() != 120000 || c.SQE() != &s {
		t.Error("connect read back")
	}
}

// Connect data (NVMe-oF 1.1, "Connect Command – Data"): HOSTID 15:0, CNTLID 17:16, SUBNQN at 256,
// HOSTNQN at 512, each NQN NUL-terminated in 256 bytes.
func TestConnectData(t *testing.T) {
	var d ConnectData
	hostID := [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	d.SetHostID(hostID)
	d.SetCNTLID(CNTLIDDynamic)
	sub, host := "nqn.2016-06.io.sluice:disk1", UUIDNQN(hostID)
	if err := d.SetSubNQN(sub); err != nil {
		t.Fatal(err)
	}
	if err := d.SetHostNQN(host); err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "hostid", d[:], 0, "deadbeef0102030405060708090a0b0c")
	wantBytes(t, "cntlid", d[:], 16, "ffff")
	if string(d[256:256+len(sub)]) != sub || d[256+len(sub)] != 0 || string(d[512:512+len(host)]) != host {
		t.Error("NQNs not at 256 and 512")
	}
	gotSub, err1 := d.SubNQN()
	gotHost, err2 := d.HostNQN()
	if gotSub != sub || gotHost != host || err1 != nil || err2 != nil || d.HostID() != hostID || d.CNTLID() != 0xFFFF {
		t.Errorf("read back: %q %v %q %v", gotSub, err1, gotHost, err2)
	}
	if ConnectDataOf(d[:]) != &d {
		t.Error("ConnectDataOf does not view in place")
	}

	// An NQN field without a NUL is refused with the IPO and IATTR a completion needs.
	for i := 512; i < 768; i++ {
		d[i] = 'a'
	}
	_, err := d.HostNQN()
	var pe *ConnectParamError
	if !errors.As(err, &pe) || pe.Offset != 512 || !pe.InData || pe.Field != "hostnqn" {
		t.Fatalf("unterminated hostnqn: %v", err)
	}
	var c CQE
	c.SetConnectInvalidParam(pe)
	wantBytes(t, "connect invalid param dw0", c[:], 0, "0002 01 00")
	if ipo, inData := c.ConnectInvalidParam(); ipo != 512 || !inData || c.Status() != StatusConnectInvalidParameters || !c.DNR() {
		t.Errorf("invalid param cqe: ipo %d inData %v status %v", ipo, inData, c.Status())
	}
	if !strings.Contains(pe.Error(), "data hostnqn (byte 512)") {
		t.Errorf("error text %q", pe.Error())
	}
	pe2 := &ConnectParamError{Field: "qid", Offset: 42, Reason: "no such queue"}
	c.SetConnectInvalidParam(pe2)
	if ipo, inData := c.ConnectInvalidParam(); ipo != 42 || inData || !strings.Contains(pe2.Error(), "command qid") {
		t.Error("SQE invalid param")
	}

	c.Reset()
	c.SetConnectSuccess(0x0042, 0)
	if c.ConnectCNTLID() != 0x42 || c.ConnectAUTHREQ() != 0 || c.Status() != StatusSuccess {
		t.Error("connect success")
	}

	// Setters reject what the field cannot carry (N4).
	for _, bad := range []string{strings.Repeat("n", 256), "nqn\x00x", "\xff\xfe"} {
		if err := d.SetSubNQN(bad); err == nil {
			t.Errorf("SetSubNQN(%q) accepted", bad)
		}
	}
	if err := d.SetSubNQN(strings.Repeat("n", 255)); err != nil {
		t.Errorf("255-byte NQN refused: %v", err)
	}
}

// Property Get/Set (NVMe-oF 1.1): ATTRIB byte 40 (size in 2:0), OFST 47:44, VALUE 55:48.
func TestPropertyCommand(t *testing.T) {
	var s SQE
	s.SetFabrics(FabricsPropertySet)
	p := s.Property()
	p.SetSize(8)
	p.SetOffset(PropCAP)
	p.SetValue(0x0102030405060708)
	wantBytes(t, "prop set", s[:], 40, "01 000000 00000000 0807060504030201")
	if p.Size() != 8 || p.Offset() != PropCAP || p.Value() != 0x0102030405060708 || p.SQE() != &s {
		t.Error("property read back")
	}
	p.SetSize(4)
	if p.Size() != 4 || s[40] != 0 {
		t.Error("size 4")
	}
	s[40] = 5
	if p.Size() != 0 {
		t.Error("reserved ATTRIB size decoded")
	}
	for ofst, want := range map[uint32]int{PropCAP: 8, PropVS: 4, PropCC: 4, PropCSTS: 4, PropNSSR: 4, 0x24: 0, 0x18: 0} {
		if got := PropertySize(ofst); got != want {
			t.Errorf("PropertySize(%#x) = %d, want %d", ofst, got, want)
		}
	}

	var a SQE
	a.SetFabrics(FabricsAuthSend)
	a.Auth().SetSECP(0xE9)
	a.Auth().SetSPSP(0x0201)
	a.Auth().SetLength(512)
	wantBytes(t, "auth", a[:], 41, "01 02 e9 00020000")
	if a.Auth().SECP() != 0xE9 || a.Auth().SPSP() != 0x0201 || a.Auth().Length() != 512 || a.Auth().SQE() != &a {
		t.Error("auth read back")
	}
	var dc SQE
	dc.SetFabrics(FabricsDisconnect)
	dc.Disconnect().SetRECFMT(0)
	if dc.Disconnect().RECFMT() != 0 || dc.FCType() != FabricsDisconnect || dc.Disconnect().SQE() != &dc {
		t.Error("disconnect")
	}
}

// Controller properties (NVMe Base 2.0, "Controller Properties"). The golden CAP is what a
// fabrics controller with 128-entry queues, a 7.5 s timeout, NVM command set and 4 KiB pages
// reports: MQES 7Fh, CQR bit 16, TO 15 in 31:24, CSS bit 37.
func TestProperties(t *testing.T) {
	capf := CAPFields{MQES: 127, CQR: true, TO: 15, CSS: CAPCSSNVM}
	if v := capf.CAP(); v != 0x200F01007F {
		t.Errorf("CAP = %#x", uint64(v))
	}
	full := CAPFields{MQES: 0xFFFF, CQR: true, AMS: 3, TO: 0xFF, DSTRD: 0xF, NSSRS: true, CSS: 0xFF,
		BPS: true, MPSMIN: 0xF, MPSMAX: 0xF, CMBS: true}
	if got := full.CAP().Fields(); got != full {
		t.Errorf("CAP round trip %+v", got)
	}
	if got := capf.CAP().Fields(); got != capf {
		t.Errorf("CAP round trip %+v", got)
	}

	// CC a Linux host writes to enable: EN, IOSQES 6, IOCQES 4 = 0x00460001.
	cc := CCFields{EN: true, IOSQES: 6, IOCQES: 4}
	if v := cc.CC(); v != 0x00460001 {
		t.Errorf("CC = %#x", uint32(v))
	}
	ccs := []CCFields{cc, {SHN: ShutdownNormal, CSS: CCCSSAllIOCS, MPS: 3, AMS: 7, CRIME: true}}
	for _, f := range ccs {
		if got := f.CC().Fields(); got != f {
			t.Errorf("CC round trip %+v -> %+v", f, got)
		}
	}
	if CC(0x4000).Fields().SHN != ShutdownNormal {
		t.Error("SHN bit position")
	}
	st := CSTSFields{RDY: true, SHST: ShutdownStatusComplete}
	if v := st.CSTS(); v != 0x9 {
		t.Errorf("CSTS = %#x", uint32(v))
	}
	for _, f := range []CSTSFields{st, {CFS: true, NSSRO: true, PP: true, ST: true, SHST: 1}} {
		if got := f.CSTS().Fields(); got != f {
			t.Errorf("CSTS round trip %+v", got)
		}
	}
	v := MakeVersion(1, 4, 0)
	if v != Version1_4 || v.Major() != 1 || v.Minor() != 4 || v.Tertiary() != 0 || Version2_0.Major() != 2 {
		t.Errorf("Version %#x", uint32(v))
	}
}
