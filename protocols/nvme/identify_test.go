package nvme

import (
	"slices"
	"strings"
	"testing"
)

// A controller as a fabrics target fills it, read back field by field, with golden bytes at the
// offsets of NVMe Base 2.0 "Identify Controller Data Structure" and NVMe-oF 1.1's bytes
// 2047:1792.
func TestIdentifyController(t *testing.T) {
	var c IdentifyController
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	c.SetVID(0x1B36)
	c.SetSSVID(0x1AF4)
	must(c.SetSN("SLC0001"))
	must(c.SetMN("Sluice Controller"))
	must(c.SetFR("0.1"))
	c.SetRAB(6)
	c.SetIEEE(0x002538)
	c.SetCMIC(CMICMultiPort | CMICMultiController)
	c.SetMDTS(5)
	c.SetCNTLID(0x0011)
	c.SetVER(Version1_4)
	c.SetOAES(OAESNSAttribute)
	c.SetCTRATT(CTRATTHostID128)
	c.SetCNTRLTYPE(ControllerTypeIO)
	c.SetOACS(0)
	c.SetACL(3)
	c.SetAERL(3)
	c.SetFRMW(1<<1 | 1) // one slot, read-only
	c.SetLPA(LPACommandsEffects | LPAExtendedData)
	c.SetELPE(127)
	c.SetNPSS(0)
	c.SetKAS(10)
	c.SetSQES(SQES64)
	c.SetCQES(CQES16)
	c.SetMAXCMD(128)
	c.SetNN(32)
	c.SetONCS(ONCSDatasetManagement | ONCSWriteZeroes)
	c.SetFUSES(0)
	c.SetFNA(0)
	c.SetVWC(VWCPresent | VWCFlushAllSupport)
	c.SetAWUN(0)
	c.SetAWUPF(0)
	c.SetACWU(0)
	c.SetSGLS(SGLSSupported | SGLSAddressOffset | SGLSTransportBlock)
	c.SetMNAN(0)
	must(c.SetSubNQN("nqn.2016-06.io.sluice:disk1"))
	c.SetIOCCSZ((64 + 8192) / 16)
	c.SetIORCSZ(1)
	c.SetICDOFF(0)
	c.SetFCATT(0)
	c.SetMSDBD(1)
	c.SetOFCS(OFCSDisconnect)

	wantBytes(t, "vid/ssvid", c[:], 0, "361b f41a")
	wantBytes(t, "sn", c[:], 4, "534c4330303031"+strings.Repeat("20", 13))
	wantBytes(t, "mn start", c[:], 24, "536c75696365")
	if c[63] != ' ' || c[64] != '0' || c[71] != ' ' {
		t.Error("MN/FR padding")
	}
	wantBytes(t, "rab/ieee/cmic/mdts/cntlid", c[:], 72, "06 382500 03 05 1100")
	wantBytes(t, "ver", c[:], 80, "00040100")
	wantBytes(t, "oaes", c[:], 92, "00010000")
	wantBytes(t, "ctratt", c[:], 96, "01000000")
	wantBytes(t, "cntrltype", c[:], 111, "01")
	wantBytes(t, "acl..npss", c[:], 258, "03 03 03 06 7f 00")
	wantBytes(t, "kas", c[:], 320, "0a00")
	wantBytes(t, "sqes..nn", c[:], 512, "66 44 8000 20000000")
	wantBytes(t, "oncs/fuses/fna/vwc", c[:], 520, "0c00 0000 00 07")
	wantBytes(t, "sgls", c[:], 536, "01003000")
	wantBytes(t, "subnqn", c[:], 768, "6e716e2e")
	wantBytes(t, "ioccsz/iorcsz/icdoff/fcatt/msdbd/ofcs", c[:], 1792, "04020000 01000000 0000 00 01 0100")

	if c.VID() != 0x1B36 || c.SSVID() != 0x1AF4 || c.SN() != "SLC0001" || c.MN() != "Sluice Controller" ||
		c.FR() != "0.1" || c.RAB() != 6 || c.IEEE() != 0x002538 || c.CMIC() != 3 || c.MDTS() != 5 ||
		c.CNTLID() != 0x11 || c.VER() != Version1_4 || c.OAES() != OAESNSAttribute ||
		c.CTRATT() != CTRATTHostID128 || c.CNTRLTYPE() != ControllerTypeIO || c.OACS() != 0 ||
		c.ACL() != 3 || c.AERL() != 3 || c.FRMW() != 3 || c.LPA() != 6 || c.ELPE() != 127 ||
		c.NPSS() != 0 || c.KAS() != 10 || c.SQES() != 0x66 || c.CQES() != 0x44 || c.MAXCMD() != 128 ||
		c.NN() != 32 || c.ONCS() != 0xC || c.FUSES() != 0 || c.FNA() != 0 || c.VWC() != 7 ||
		c.AWUN() != 0 || c.AWUPF() != 0 || c.ACWU() != 0 || c.SGLS() != 0x300001 || c.MNAN() != 0 ||
		c.IOCCSZ() != 516 || c.IORCSZ() != 1 || c.ICDOFF() != 0 || c.FCATT() != 0 || c.MSDBD() != 1 ||
		c.OFCS() != 1 {
		t.Errorf("identify controller read back wrong")
	}
	if nqn, err := c.SubNQN(); err != nil || nqn != "nqn.2016-06.io.sluice:disk1" {
		t.Errorf("SubNQN = %q, %v", nqn, err)
	}
	if got := c.MaxTransferSize(0); got != 128<<10 {
		t.Errorf("MaxTransferSize = %d", got)
	}
	c.SetMDTS(0)
	if c.MaxTransferSize(0) != 0 {
		t.Error("MDTS 0 means no limit")
	}
	if QueueEntrySizes(6, 6) != SQES64 || QueueEntrySizes(4, 4) != CQES16 {
		t.Error("QueueEntrySizes")
	}

	// Rejected rather than truncated (N4).
	if err := c.SetSN(strings.Repeat("x", 21)); err == nil {
		t.Error("21-byte SN accepted")
	}
	if err := c.SetMN("tab\there"); err == nil {
		t.Error("control byte accepted in MN")
	}
	for i := 768; i < 1024; i++ {
		c[i] = 'q'
	}
	if _, err := c.SubNQN(); err == nil {
		t.Error("unterminated SUBNQN accepted")
	}
	c.Reset()
	if c != (IdentifyController{}) {
		t.Error("Reset")
	}
}

// A namespace as a fabrics target fills it (NVM Command Set "Identify Namespace Data
// Structure"): NSZE 7:0, NCAP 15:8, NUSE 23:16, NSFEAT 24, NLBAF 25, FLBAS 26, DLFEAT 33,
// NPWG 65:64, NOWS 73:72, NGUID 119:104, EUI64 127:120, LBAF0 131:128.
func TestIdentifyNamespace(t *testing.T) {
	var n IdentifyNamespace
	n.SetNSZE(1 << 21)
	n.SetNCAP(1 << 21)
	n.SetNUSE(1 << 20)
	n.SetNSFEAT(NSFEATThinProvisioning | NSFEATOptPerf)
	n.SetNLBAF(1)
	n.SetFLBAS(1)
	n.SetMC(0)
	n.SetNMIC(NMICShared)
	n.SetRESCAP(0)
	n.SetDLFEAT(DLFEATReadZeroes | DLFEATWriteZeroesDeallocates)
	n.SetNAWUN(7)
	n.SetNAWUPF(7)
	n.SetNACWU(0)
	n.SetNOIOB(256)
	n.SetNVMCAP(Uint128{Lo: 1 << 30})
	n.SetNPWG(7)
	n.SetNPWA(7)
	n.SetNPDG(7)
	n.SetNPDA(7)
	n.SetNOWS(255)
	n.SetANAGRPID(1)
	n.SetNSATTR(0)
	nguid := [16]byte{0x11, 0x22, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0xFF}
	eui := [8]byte{0x00, 0x25, 0x38, 1, 2, 3, 4, 5}
	n.SetNGUID(nguid)
	n.SetEUI64(eui)
	n.SetLBAF(0, LBAFormat{LBADS: 9})
	n.SetLBAF(1, LBAFormat{LBADS: 12, RP: 1})

	wantBytes(t, "nsze/ncap/nuse", n[:], 0, "0000200000000000 0000200000000000 0000100000000000")
	wantBytes(t, "nsfeat/nlbaf/flbas", n[:], 24, "11 01 01")
	wantBytes(t, "nmic", n[:], 30, "01")
	wantBytes(t, "dlfeat", n[:], 33, "09")
	wantBytes(t, "nvmcap", n[:], 48, "00000040000000000000000000000000")
	wantBytes(t, "npwg..nows", n[:], 64, "0700 0700 0700 0700 ff00")
	wantBytes(t, "anagrpid", n[:], 92, "01000000")
	wantBytes(t, "nguid", n[:], 104, "1122030405060708090a0b0c0d0e0fff")
	wantBytes(t, "eui64", n[:], 120, "0025380102030405")
	wantBytes(t, "lbaf0/1", n[:], 128, "00000900 00000c01")

	if n.NSZE() != 1<<21 || n.NCAP() != 1<<21 || n.NUSE() != 1<<20 || n.NSFEAT() != 0x11 || n.NLBAF() != 1 ||
		n.FLBAS() != 1 || n.MC() != 0 || n.DPC() != 0 || n.DPS() != 0 || n.NMIC() != 1 || n.RESCAP() != 0 ||
		n.FPI() != 0 || n.DLFEAT() != 9 || n.NAWUN() != 7 || n.NAWUPF() != 7 || n.NACWU() != 0 ||
		n.NOIOB() != 256 || n.NVMCAP() != (Uint128{Lo: 1 << 30}) || n.NPWG() != 7 || n.NPWA() != 7 ||
		n.NPDG() != 7 || n.NPDA() != 7 || n.NOWS() != 255 || n.ANAGRPID() != 1 || n.NSATTR() != 0 ||
		n.NVMSETID() != 0 || n.ENDGID() != 0 || n.NGUID() != nguid || n.EUI64() != eui {
		t.Error("identify namespace read back wrong")
	}
	if n.LBAF(1) != (LBAFormat{LBADS: 12, RP: 1}) || n.FormatIndex() != 1 || n.BlockSize() != 4096 {
		t.Errorf("format: %+v index %d size %d", n.LBAF(1), n.FormatIndex(), n.BlockSize())
	}
	// NVMe 2.0: with more than 16 formats FLBAS bits 6:5 extend the index.
	n.SetNLBAF(20)
	n.SetFLBAS(0x1 | 1<<5) // index 17
	n.SetLBAF(17, LBAFormat{LBADS: 13})
	if n.FormatIndex() != 17 || n.BlockSize() != 8192 {
		t.Errorf("extended index %d size %d", n.FormatIndex(), n.BlockSize())
	}
	n.SetLBAF(17, LBAFormat{LBADS: 3})
	if n.BlockSize() != 0 {
		t.Error("LBADS below 9 must report no block size")
	}
	n.Reset()
	if n != (IdentifyNamespace{}) {
		t.Error("Reset")
	}
}

// Namespace List (Identify CNS 02h; Changed Namespace List log 04h).
func TestNSList(t *testing.T) {
	var l NSList
	if err := l.Set([]uint32{1, 2, 9}); err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "ns list", l[:], 0, "01000000 02000000 09000000 00000000")
	if got := l.NSIDs(nil); !slices.Equal(got, []uint32{1, 2, 9}) || l.Overflowed() {
		t.Errorf("NSIDs = %v", got)
	}
	full := make([]uint32, NSListCountMax)
	for i := range full {
		full[i] = uint32(i + 1)
	}
	if err := l.Set(full); err != nil {
		t.Fatal(err)
	}
	if got := l.NSIDs(nil); len(got) != NSListCountMax || got[1023] != 1024 {
		t.Errorf("full list: %d entries", len(got))
	}
	if err := l.Set([]uint32{5}); err != nil || len(l.NSIDs(nil)) != 1 {
		t.Error("Set must clear the old tail")
	}
	for name, bad := range map[string][]uint32{
		"too many":   make([]uint32, NSListCountMax+1),
		"zero":       {0},
		"decreasing": {3, 2},
		"repeated":   {2, 2},
		"all":        {NSIDAll},
	} {
		if err := l.Set(bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	l.SetOverflow()
	if !l.Overflowed() {
		t.Error("overflow marker")
	}
	wantBytes(t, "overflow", l[:], 0, "ffffffff 00000000")
}

// Namespace Identification Descriptor list (Identify CNS 03h): NIDT, NIDL, 2 reserved, NID.
func TestNSDescList(t *testing.T) {
	eui := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	uuid := []byte{0xA0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xAF}
	var l NSDescList
	if err := l.Set(NSDescriptor{NIDTEUI64, eui}, NSDescriptor{NIDTUUID, uuid}, NSDescriptor{NIDTCSI, []byte{0}}); err != nil {
		t.Fatal(err)
	}
	wantBytes(t, "eui64 desc", l[:], 0, "01 08 0000 0102030405060708")
	wantBytes(t, "uuid desc", l[:], 12, "03 10 0000 a0")
	wantBytes(t, "csi desc", l[:], 32, "04 01 0000 00 00")
	got, err := l.Descriptors()
	if err != nil || len(got) != 3 || got[0].Type != NIDTEUI64 || string(got[0].ID) != string(eui) ||
		got[1].Type != NIDTUUID || string(got[1].ID) != string(uuid) || got[2].Type != NIDTCSI {
		t.Fatalf("Descriptors = %+v, %v", got, err)
	}
	if err := l.Set(NSDescriptor{NIDTNGUID, eui}); err == nil {
		t.Error("NGUID with 8 bytes accepted")
	}
	if err := l.Set(NSDescriptor{9, []byte{1}}); err == nil {
		t.Error("unknown NIDT accepted by Set")
	}

	// Peer-supplied lists (N6).
	var bad NSDescList
	copy(bad[:], []byte{byte(NIDTNGUID), 8, 0, 0})
	if _, err := bad.Descriptors(); err == nil {
		t.Error("NGUID with NIDL 8 accepted")
	}
	skip := NSDescList{}
	skip[0], skip[1] = 0x7, 4 // unknown type, skipped by its NIDL
	skip[8], skip[9] = byte(NIDTCSI), 1
	got, err = skip.Descriptors()
	if err != nil || len(got) != 1 || got[0].Type != NIDTCSI {
		t.Errorf("unknown type not skipped: %+v %v", got, err)
	}
	run := NSDescList{}
	run[4090], run[4091] = 0x7, 200
	for i := 0; i < 4090; i += 5 {
		run[i], run[i+1] = 0x7, 1
	}
	if _, err := run.Descriptors(); err == nil {
		t.Error("descriptor running past the list accepted")
	}
}
