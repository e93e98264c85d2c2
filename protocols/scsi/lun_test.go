package scsi

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
)

const (
	good  = cdb.StatusGood
	check = cdb.StatusCheckCondition
	rcon  = cdb.StatusReservationConflict
	ill   = cdb.KeyIllegalRequest
)

// step is one command of a script, and what it must end with.
type step struct {
	name string
	who  int // 0: the first nexus, 1: the second
	cdb  string
	edtl uint32
	out  []byte
	st   cdb.Status
	key  cdb.SenseKey
	asc  cdb.ASC
	data func(t *testing.T, d []byte) // checks the data-in, when set
}

// run plays steps against a fresh rig with two clear nexuses.
func run(t *testing.T, cfg Config, steps []step) *rig {
	t.Helper()
	g := newRig(t, 4096, 512, cfg)
	ns := []*Nexus{g.nexus(t, "iqn.2024-01.test:a", 1), g.nexus(t, "iqn.2024-01.test:b", 2)}
	for _, n := range ns {
		g.clearUA(t, n)
	}
	for _, s := range steps {
		r := g.do(t, ns[s.who], s.cdb, s.edtl, s.out)
		expect(t, s.name, r, s.st, s.key, s.asc)
		if s.data != nil && r.status == good {
			s.data(t, r.data)
		}
	}
	return g
}

func wantLen(n int) func(t *testing.T, d []byte) {
	return func(t *testing.T, d []byte) {
		t.Helper()
		if len(d) != n {
			t.Errorf("data-in %d bytes, want %d", len(d), n)
		}
	}
}

func wantBytes(want []byte) func(t *testing.T, d []byte) {
	return func(t *testing.T, d []byte) {
		t.Helper()
		if !bytes.Equal(d, want) {
			t.Errorf("data-in % x, want % x", d[:min(len(d), 32)], want[:min(len(want), 32)])
		}
	}
}

func TestUnitAttentionFirst(t *testing.T) {
	g := newRig(t, 1024, 512, Config{})
	n := g.nexus(t, "iqn.2024-01.test:a", 1)
	// SPC-4 5.14: INQUIRY is served despite the pending power-on UA…
	expect(t, "inquiry", g.do(t, n, "12 00 00 00 24 00", 36, nil), good, 0, 0)
	// …TEST UNIT READY reports it once, then works.
	expect(t, "tur 1", g.do(t, n, "00 00 00 00 00 00", 0, nil), check, cdb.KeyUnitAttention, cdb.ASCPowerOnOrReset)
	expect(t, "tur 2", g.do(t, n, "00 00 00 00 00 00", 0, nil), good, 0, 0)
	// A LUN reset raises a new one.
	g.call(t, func() { g.dev.ResetLUN(0) })
	r := g.do(t, n, "03 00 00 00 12 00", 18, nil) // REQUEST SENSE reports and clears it
	if r.status != good || cdb.SenseKey(r.data[2]) != cdb.KeyUnitAttention || r.data[12] != 0x29 || r.data[13] != 0x03 {
		t.Errorf("request sense after reset: %v % x", r, r.data)
	}
	expect(t, "tur 3", g.do(t, n, "00 00 00 00 00 00", 0, nil), good, 0, 0)
}

func TestInquiryAndCapacity(t *testing.T) {
	run(t, Config{}, []step{
		{name: "standard", cdb: "12 00 00 00 ff 00", edtl: 255, st: good, data: func(t *testing.T, d []byte) {
			if len(d) != 96 || d[0] != 0 || d[2] != 6 || d[3]&0x0f != 2 || int(d[4]) != len(d)-5 {
				t.Errorf("standard inquiry % x", d[:8])
			}
			if string(d[8:16]) != "SLUICE  " || !bytes.Contains(d[58:74], []byte{0x04, 0xc0}) {
				t.Errorf("vendor %q, version descriptors % x", d[8:16], d[58:74])
			}
		}},
		{name: "allocation length clamps", cdb: "12 00 00 00 05 00", edtl: 5, st: good, data: wantLen(5)},
		{name: "page without evpd", cdb: "12 00 80 00 ff 00", edtl: 255, st: check, key: ill, asc: cdb.ASCInvalidFieldInCDB},
		{name: "supported pages", cdb: "12 01 00 00 ff 00", edtl: 255, st: good,
			data: wantBytes([]byte{0, 0, 0, 6, 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2})},
		{name: "unknown page", cdb: "12 01 c7 00 ff 00", edtl: 255, st: check, key: ill, asc: cdb.ASCInvalidFieldInCDB},
		{name: "device identification", cdb: "12 01 83 00 ff 00", edtl: 255, st: good, data: func(t *testing.T, d []byte) {
			// The first designator: NAA, binary, LU association, 16 bytes.
			if d[1] != 0x83 || d[4] != 0x01 || d[5] != 0x03 || d[7] != 16 || d[8]>>4 != 6 {
				t.Errorf("device identification % x", d[:12])
			}
			if !bytes.Contains(d, []byte("iqn.2024-01.io.sluice:test,t,0x0001")) {
				t.Errorf("no target port name in % x", d)
			}
		}},
		{name: "block limits", cdb: "12 01 b0 00 ff 00", edtl: 255, st: good, data: func(t *testing.T, d []byte) {
			if len(d) != 64 || binary.BigEndian.Uint32(d[8:]) != TransferSizeMax/512 || d[5] != 128 {
				t.Errorf("block limits % x", d[:16])
			}
		}},
		{name: "read capacity 10", cdb: "25 00 00 00 00 00 00 00 00 00", edtl: 8, st: good,
			data: wantBytes([]byte{0, 0, 0x0f, 0xff, 0, 0, 2, 0})},
		{name: "read capacity 16", cdb: "9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00", edtl: 32, st: good,
			data: func(t *testing.T, d []byte) {
				if binary.BigEndian.Uint64(d) != 4095 || d[14] != 0 {
					t.Errorf("read capacity 16 % x", d[:16])
				}
			}},
		{name: "report luns", cdb: "a0 00 00 00 00 00 00 00 01 00 00 00", edtl: 256, st: good,
			data: wantBytes([]byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})},
		{name: "unknown opcode", cdb: "04 00 00 00 00 00", st: check, key: ill, asc: cdb.ASCInvalidCommandOperationCode},
	})
}

func TestReadWriteRoundTrip(t *testing.T) {
	data := make([]byte, 8*512)
	for i := range data {
		data[i] = byte(i * 7)
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i>>9) ^ byte(i)
	}
	run(t, Config{}, []step{
		{name: "write 10", cdb: "2a 00 00 00 00 10 00 00 08 00", edtl: 4096, out: data, st: good},
		{name: "read 10", cdb: "28 00 00 00 00 10 00 00 08 00", edtl: 4096, st: good, data: wantBytes(data)},
		{name: "read 6", cdb: "08 00 00 10 08 00", edtl: 4096, st: good, data: wantBytes(data)},
		{name: "read 16", cdb: "88 00 00 00 00 00 00 00 00 12 00 00 00 02 00 00", edtl: 1024, st: good,
			data: wantBytes(data[1024:2048])},
		{name: "read 12 fua", cdb: "a8 08 00 00 00 10 00 00 00 01 00 00", edtl: 512, st: good, data: wantBytes(data[:512])},
		{name: "read beyond end", cdb: "28 00 00 00 0f ff 00 00 02 00", edtl: 1024, st: check, key: ill, asc: cdb.ASCLBAOutOfRange},
		{name: "read 0 blocks past end", cdb: "28 00 00 00 10 01 00 00 00 00", st: check, key: ill, asc: cdb.ASCLBAOutOfRange},
		{name: "read 0 blocks", cdb: "28 00 00 00 00 00 00 00 00 00", st: good, data: wantLen(0)},
		{name: "rdprotect", cdb: "28 20 00 00 00 00 00 00 01 00", edtl: 512, st: check, key: ill, asc: cdb.ASCInvalidFieldInCDB},
		{name: "beyond max transfer", cdb: "28 00 00 00 00 00 00 08 01 00", edtl: 2049 * 512, st: check, key: ill, asc: cdb.ASCInvalidFieldInCDB},
		// 1 MiB: eight segments of the pool's large buffers.
		{name: "write 1 MiB", cdb: "2a 00 00 00 01 00 00 08 00 00", edtl: 1 << 20, out: big, st: good},
		{name: "read 1 MiB", cdb: "28 00 00 00 01 00 00 08 00 00", edtl: 1 << 20, st: good, data: wantBytes(big)},
		{name: "verify 1 MiB", cdb: "2f 02 00 00 01 00 00 08 00 00", edtl: 1 << 20, out: big, st: good},
		// A short EDTL writes only the whole blocks sent (libiscsi iSCSIResiduals).
		{name: "write 2 blocks with 1 sent", cdb: "2a 00 00 00 00 20 00 00 02 00", edtl: 512, out: fill(512, 0xbb), st: good},
		{name: "first written", cdb: "28 00 00 00 00 20 00 00 02 00", edtl: 1024, st: good,
			data: wantBytes(append(fill(512, 0xbb), make([]byte, 512)...))},
		{name: "write fua", cdb: "2a 08 00 00 00 30 00 00 01 00", edtl: 512, out: fill(512, 1), st: good},
		{name: "write atomic 16", cdb: "9c 00 00 00 00 00 00 00 00 31 00 00 00 01 00 00", edtl: 512, out: fill(512, 2), st: good},
		{name: "read atomic", cdb: "28 00 00 00 00 31 00 00 01 00", edtl: 512, st: good, data: wantBytes(fill(512, 2))},
	})
}

func TestVerifyAndCompare(t *testing.T) {
	a, b := fill(1024, 0xa1), fill(1024, 0xb2)
	caw := append(append([]byte{}, a...), b...)
	run(t, Config{}, []step{
		{name: "write", cdb: "2a 00 00 00 00 40 00 00 02 00", edtl: 1024, out: a, st: good},
		{name: "verify medium", cdb: "2f 00 00 00 00 40 00 00 02 00", st: good},
		{name: "verify bytes", cdb: "2f 02 00 00 00 40 00 00 02 00", edtl: 1024, out: a, st: good},
		{name: "verify mismatch", cdb: "2f 02 00 00 00 40 00 00 02 00", edtl: 1024, out: b, st: check,
			key: cdb.KeyMiscompare, asc: cdb.ASCMiscompareDuringVerify},
		{name: "verify 12 one block", cdb: "af 06 00 00 00 40 00 00 00 02 00 00", edtl: 512, out: a[:512], st: good},
		{name: "write and verify", cdb: "2e 02 00 00 00 50 00 00 02 00", edtl: 1024, out: b, st: good},
		{name: "compare and write", cdb: "89 00 00 00 00 00 00 00 00 40 00 00 00 02 00 00", edtl: 2048, out: caw, st: good},
		{name: "written by caw", cdb: "28 00 00 00 00 40 00 00 02 00", edtl: 1024, st: good, data: wantBytes(b)},
		{name: "caw miscompare", cdb: "89 00 00 00 00 00 00 00 00 40 00 00 00 02 00 00", edtl: 2048, out: caw, st: check,
			key: cdb.KeyMiscompare, asc: cdb.ASCMiscompareDuringVerify},
		{name: "caw too long", cdb: "89 00 00 00 00 00 00 00 00 40 00 00 00 ff 00 00", edtl: 2 * 255 * 512, st: check,
			key: ill, asc: cdb.ASCInvalidFieldInCDB},
		{name: "orwrite", cdb: "8b 00 00 00 00 00 00 00 00 40 00 00 00 02 00 00", edtl: 1024, out: a, st: good},
		{name: "or of b and a", cdb: "28 00 00 00 00 40 00 00 02 00", edtl: 1024, st: good, data: wantBytes(fill(1024, 0xa1|0xb2))},
	})
}

func TestCompareAndWriteInformation(t *testing.T) {
	g := newRig(t, 1024, 512, Config{})
	n := g.nexus(t, "iqn.2024-01.test:a", 1)
	g.clearUA(t, n)
	g.do(t, n, "2a 00 00 00 00 00 00 00 01 00", 512, fill(512, 5))
	cmp := fill(512, 5)
	cmp[300] = 6
	r := g.do(t, n, "89 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00", 1024, append(cmp, fill(512, 9)...))
	// SBC-3 5.2: INFORMATION is the offset of the first differing byte.
	if r.key() != cdb.KeyMiscompare || r.sense[0]&0x80 == 0 || binary.BigEndian.Uint32(r.sense[3:]) != 300 {
		t.Errorf("miscompare sense % x, want INFORMATION 300", r.sense)
	}
	if d := g.do(t, n, "28 00 00 00 00 00 00 00 01 00", 512, nil); !bytes.Equal(d.data, fill(512, 5)) {
		t.Error("COMPARE AND WRITE wrote after a miscompare")
	}
}

func TestThinProvisioning(t *testing.T) {
	unmapList := func(lba uint64, n uint32) []byte {
		p := make([]byte, 24)
		binary.BigEndian.PutUint16(p, 22)
		binary.BigEndian.PutUint16(p[2:], 16)
		binary.BigEndian.PutUint64(p[8:], lba)
		binary.BigEndian.PutUint32(p[16:], n)
		return p
	}
	lbaStatus := func(dealloc byte, blocks uint32) func(t *testing.T, d []byte) {
		return func(t *testing.T, d []byte) {
			t.Helper()
			if len(d) < 24 || d[20] != dealloc || binary.BigEndian.Uint32(d[16:]) != blocks {
				t.Errorf("GET LBA STATUS % x, want provisioning %d over %d blocks", d[:min(len(d), 24)], dealloc, blocks)
			}
		}
	}
	run(t, Config{Thin: true}, []step{
		{name: "lbpme", cdb: "9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00", edtl: 32, st: good,
			data: func(t *testing.T, d []byte) {
				if d[14]&0xc0 != 0xc0 {
					t.Errorf("LBPME/LBPRZ byte %#x", d[14])
				}
			}},
		{name: "lbp page", cdb: "12 01 b2 00 ff 00", edtl: 255, st: good, data: wantBytes([]byte{0, 0xb2, 0, 4, 0, 0xe4, 2, 0})},
		{name: "write", cdb: "2a 00 00 00 00 00 00 00 10 00", edtl: 8192, out: fill(8192, 0xcc), st: good},
		{name: "mapped", cdb: "9e 12 00 00 00 00 00 00 00 00 00 00 00 18 00 00", edtl: 24, st: good, data: lbaStatus(0, 4096)},
		{name: "unmap 4 at 2", cdb: "42 00 00 00 00 00 00 00 18 00", edtl: 24, out: unmapList(2, 4), st: good},
		{name: "deallocated", cdb: "9e 12 00 00 00 00 00 00 00 02 00 00 00 18 00 00", edtl: 24, st: good, data: lbaStatus(1, 4)},
		{name: "reads zeros", cdb: "28 00 00 00 00 02 00 00 01 00", edtl: 512, st: good, data: wantBytes(make([]byte, 512))},
		{name: "unmap past end", cdb: "42 00 00 00 00 00 00 00 18 00", edtl: 24, out: unmapList(4095, 2), st: check,
			key: ill, asc: cdb.ASCLBAOutOfRange},
		{name: "write same unmap", cdb: "41 08 00 00 00 08 00 00 04 00", edtl: 512, out: make([]byte, 512), st: good},
		{name: "deallocated by write same", cdb: "9e 12 00 00 00 00 00 00 00 08 00 00 00 18 00 00", edtl: 24, st: good,
			data: lbaStatus(1, 4)},
		{name: "write same pattern", cdb: "93 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00", edtl: 512, out: fill(512, 0x5a), st: good},
		{name: "pattern", cdb: "28 00 00 00 01 00 00 01 00 00", edtl: 256 * 512, st: good, data: wantBytes(fill(256*512, 0x5a))},
		{name: "anchor refused", cdb: "41 18 00 00 00 00 00 00 01 00", edtl: 512, st: check, key: ill, asc: cdb.ASCInvalidFieldInCDB},
		{name: "get lba status past end", cdb: "9e 12 00 00 00 00 00 00 10 00 00 00 00 18 00 00", edtl: 24, st: check,
			key: ill, asc: cdb.ASCLBAOutOfRange},
	})
}

func TestThickRefusesUnmap(t *testing.T) {
	run(t, Config{}, []step{
		{name: "unmap", cdb: "42 00 00 00 00 00 00 00 18 00", edtl: 24, st: check, key: ill, asc: cdb.ASCInvalidCommandOperationCode},
		{name: "write same unmap", cdb: "41 08 00 00 00 08 00 00 04 00", edtl: 512, st: check, key: ill, asc: cdb.ASCInvalidFieldInCDB},
		{name: "write same to end", cdb: "41 00 00 00 0f 00 00 00 00 00", edtl: 512, out: fill(512, 3), st: good},
		{name: "pattern at end", cdb: "28 00 00 00 0f fe 00 00 02 00", edtl: 1024, st: good, data: wantBytes(fill(1024, 3))},
	})
}

func TestModePages(t *testing.T) {
	g := run(t, Config{}, []step{
		{name: "all pages", cdb: "1a 00 3f 00 ff 00", edtl: 255, st: good, data: func(t *testing.T, d []byte) {
			// Header, block descriptor, caching (20), control (12), IE (12).
			if int(d[0]) != len(d)-1 || d[3] != 8 || len(d) != 4+8+20+12+12 {
				t.Errorf("mode sense(6) all pages: % x", d[:12])
			}
		}},
		{name: "saved", cdb: "1a 00 ca 00 ff 00", edtl: 255, st: check, key: ill, asc: cdb.ASCSavingParametersNotSupported},
		{name: "mode sense 10 control", cdb: "5a 08 0a 00 00 00 00 00 ff 00", edtl: 255, st: good,
			data: wantBytes([]byte{0, 18, 0, 0x10, 0, 0, 0, 0, 0x0a, 0x0a, 0x02, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0})},
		// Turn D_SENSE on: a later error comes in descriptor format.
		{name: "select d_sense", cdb: "15 10 00 00 10 00", edtl: 16,
			out: []byte{0, 0, 0, 0, 0x0a, 0x0a, 0x06, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0}, st: good},
		{name: "select unchangeable", cdb: "15 10 00 00 10 00", edtl: 16,
			out: []byte{0, 0, 0, 0, 0x0a, 0x0a, 0x06, 0x30, 0, 0, 0, 0, 0xff, 0xff, 0, 0}, st: check, key: ill,
			asc: cdb.ASCInvalidFieldInParameterList},
		{name: "set swp", cdb: "15 10 00 00 10 00", edtl: 16,
			out: []byte{0, 0, 0, 0, 0x0a, 0x0a, 0x06, 0x10, 0x08, 0, 0, 0, 0xff, 0xff, 0, 0}, st: good},
		{name: "write protected", cdb: "2a 00 00 00 00 00 00 00 01 00", edtl: 512, st: check, key: cdb.KeyDataProtect,
			asc: cdb.ASCWriteProtected},
	})
	n := g.nexus(t, "iqn.2024-01.test:a", 1)
	r := g.do(t, n, "28 00 ff 00 00 00 00 00 01 00", 512, nil)
	if r.status != check || r.sense[0] != 0x72 {
		t.Errorf("with D_SENSE: sense % x, want descriptor format", r.sense)
	}
	// The other nexus was told the parameters changed.
	m := g.nexus(t, "iqn.2024-01.test:b", 2)
	expect(t, "other nexus", g.do(t, m, "00 00 00 00 00 00", 0, nil), check, cdb.KeyUnitAttention, cdb.ASCModeParametersChanged)
}

func TestPersistentReservations(t *testing.T) {
	prOut := func(key, sark uint64) []byte {
		p := make([]byte, 24)
		binary.BigEndian.PutUint64(p, key)
		binary.BigEndian.PutUint64(p[8:], sark)
		return p
	}
	const reg, reserveWE, reserveEA = "5f 00 00 00 00 00 00 00 18 00", "5f 01 01 00 00 00 00 00 18 00", "5f 01 03 00 00 00 00 00 18 00"
	run(t, Config{}, []step{
		{name: "register a", cdb: reg, edtl: 24, out: prOut(0, 0xa), st: good},
		{name: "register with a wrong key", who: 1, cdb: reg, edtl: 24, out: prOut(5, 0xb), st: rcon},
		{name: "register b", who: 1, cdb: reg, edtl: 24, out: prOut(0, 0xb), st: good},
		{name: "read keys", cdb: "5e 00 00 00 00 00 00 00 ff 00", edtl: 255, st: good,
			data: wantBytes([]byte{0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0xa, 0, 0, 0, 0, 0, 0, 0, 0xb})},
		{name: "reserve write exclusive", cdb: reserveWE, edtl: 24, out: prOut(0xa, 0), st: good},
		{name: "b reads", who: 1, cdb: "28 00 00 00 00 00 00 00 01 00", edtl: 512, st: good},
		{name: "b write conflicts", who: 1, cdb: "2a 00 00 00 00 00 00 00 01 00", edtl: 512, st: rcon},
		{name: "a writes", cdb: "2a 00 00 00 00 00 00 00 01 00", edtl: 512, out: fill(512, 1), st: good},
		{name: "b cannot reserve", who: 1, cdb: reserveWE, edtl: 24, out: prOut(0xb, 0), st: rcon},
		{name: "read reservation", cdb: "5e 01 00 00 00 00 00 00 ff 00", edtl: 255, st: good,
			data: func(t *testing.T, d []byte) {
				if len(d) != 24 || binary.BigEndian.Uint64(d[8:]) != 0xa || d[21] != 1 {
					t.Errorf("read reservation % x", d)
				}
			}},
		{name: "release wrong type", cdb: "5f 02 03 00 00 00 00 00 18 00", edtl: 24, out: prOut(0xa, 0), st: check,
			key: ill, asc: ascInvalidReleaseOfPR},
		{name: "reserve(6) conflicts with registrations", cdb: "16 00 00 00 00 00", st: rcon},
		{name: "b preempts a", who: 1, cdb: "5f 04 03 00 00 00 00 00 18 00", edtl: 24, out: prOut(0xb, 0xa), st: good},
		{name: "a is gone", cdb: "2a 00 00 00 00 00 00 00 01 00", edtl: 512, st: check, key: cdb.KeyUnitAttention,
			asc: cdb.ASCRegistrationsPreempted},
		{name: "a exclusive access conflict", cdb: "28 00 00 00 00 00 00 00 01 00", edtl: 512, st: rcon},
		{name: "full status", who: 1, cdb: "5e 03 00 00 00 00 00 00 ff 00", edtl: 255, st: good,
			data: func(t *testing.T, d []byte) {
				if binary.BigEndian.Uint32(d[4:]) < 24 || d[20] != 1 || d[21] != 3 {
					t.Errorf("read full status % x", d[:min(len(d), 32)])
				}
			}},
		{name: "report capabilities", cdb: "5e 02 00 00 00 00 00 00 08 00", edtl: 8, st: good,
			data: wantBytes([]byte{0, 8, 0x10, 0x80, 0xea, 0x01, 0, 0})},
		{name: "clear", who: 1, cdb: "5f 03 00 00 00 00 00 00 18 00", edtl: 24, out: prOut(0xb, 0), st: good},
		{name: "a reads again", cdb: "28 00 00 00 00 00 00 00 01 00", edtl: 512, st: good},
		{name: "aptpl refused", cdb: reg, edtl: 24, out: append(prOut(0, 1)[:20], 1, 0, 0, 0), st: check, key: ill,
			asc: cdb.ASCInvalidFieldInParameterList},
	})
}

func TestReserveRelease6(t *testing.T) {
	g := run(t, Config{}, []step{
		{name: "a reserves", cdb: "16 00 00 00 00 00", st: good},
		{name: "b conflicts", who: 1, cdb: "28 00 00 00 00 00 00 00 01 00", edtl: 512, st: rcon},
		{name: "b inquiry works", who: 1, cdb: "12 00 00 00 24 00", edtl: 36, st: good},
		{name: "b release is a no-op", who: 1, cdb: "17 00 00 00 00 00", st: good},
		{name: "b still conflicts", who: 1, cdb: "00 00 00 00 00 00", st: rcon},
	})
	// The holder's nexus loss releases it (SPC-2 7.21).
	a := g.nexus(t, "iqn.2024-01.test:a", 1)
	g.call(t, func() { g.dev.Detach(a); g.dev.Detach(a) })
	b := g.nexus(t, "iqn.2024-01.test:b", 2)
	expect(t, "after loss", g.do(t, b, "00 00 00 00 00 00", 0, nil), good, 0, 0)
}

func TestReportSupportedOpcodes(t *testing.T) {
	run(t, Config{Thin: true}, []step{
		{name: "all", cdb: "a3 0c 00 00 00 00 00 00 ff ff 00 00", edtl: 65535, st: good, data: func(t *testing.T, d []byte) {
			if n := binary.BigEndian.Uint32(d); int(n) != len(d)-4 || n%8 != 0 || n/8 != uint32(len(supportedOps)) {
				t.Errorf("all commands: length %d for %d bytes", n, len(d))
			}
		}},
		{name: "read(10) one", cdb: "a3 0c 01 28 00 00 00 00 ff ff 00 00", edtl: 65535, st: good, data: func(t *testing.T, d []byte) {
			if d[1]&7 != 3 || binary.BigEndian.Uint16(d[2:]) != 10 || d[4] != 0x28 {
				t.Errorf("read(10): % x", d)
			}
		}},
		{name: "service action needed", cdb: "a3 0c 01 9e 00 10 00 00 ff ff 00 00", edtl: 65535, st: check, key: ill,
			asc: cdb.ASCInvalidFieldInCDB},
		{name: "by service action", cdb: "a3 0c 02 9e 00 10 00 00 ff ff 00 00", edtl: 65535, st: good,
			data: func(t *testing.T, d []byte) {
				if d[1]&7 != 3 || d[4] != 0x9e || d[5] != 0x10 {
					t.Errorf("read capacity(16): % x", d)
				}
			}},
		{name: "rctd", cdb: "a3 0c 81 28 00 00 00 00 ff ff 00 00", edtl: 65535, st: good, data: wantLen(4 + 10 + 12)},
		{name: "not supported", cdb: "a3 0c 01 04 00 00 00 00 ff ff 00 00", edtl: 65535, st: good,
			data: wantBytes([]byte{0, 1, 0, 0})},
		{name: "tmfs", cdb: "a3 0d 00 00 00 00 00 00 00 04 00 00", edtl: 4, st: good, data: wantBytes([]byte{0xd8, 0, 0, 0})},
	})
}

func TestStartStopAndRemoval(t *testing.T) {
	run(t, Config{Removable: true}, []step{
		{name: "stop", cdb: "1b 00 00 00 00 00", st: good},
		{name: "not ready", cdb: "00 00 00 00 00 00", st: check, key: cdb.KeyNotReady, asc: cdb.ASCNotReadyInitializingRequired},
		{name: "start", cdb: "1b 00 00 00 01 00", st: good},
		{name: "prevent", cdb: "1e 00 00 00 01 00", st: good},
		{name: "eject prevented", cdb: "1b 00 00 00 02 00", st: check, key: ill, asc: ascMediumRemovalPrevented},
		{name: "allow", cdb: "1e 00 00 00 00 00", st: good},
		{name: "eject", cdb: "1b 00 00 00 02 00", st: good},
		{name: "no medium", cdb: "28 00 00 00 00 00 00 00 01 00", edtl: 512, st: check, key: cdb.KeyNotReady, asc: cdb.ASCMediumNotPresent},
		{name: "load", cdb: "1b 00 00 00 03 00", st: good},
		{name: "ready", cdb: "00 00 00 00 00 00", st: good},
		{name: "defect list", cdb: "37 00 08 00 00 00 00 00 04 00", edtl: 4, st: good, data: wantBytes([]byte{0, 8, 0, 0})},
	})
}

func TestMissingLUN(t *testing.T) {
	g := newRig(t, 64, 512, Config{})
	n := g.nexus(t, "iqn.2024-01.test:a", 1)
	lun1 := EncodeLUN(1)
	r := g.doCDB(t, n, lun1, []byte{0x12, 0, 0, 0, 36, 0}, 36, nil)
	if r.status != good || r.data[0] != 0x7f {
		t.Errorf("inquiry of a missing LUN: %v % x", r, r.data)
	}
	r = g.doCDB(t, n, lun1, []byte{0x00, 0, 0, 0, 0, 0}, 0, nil)
	expect(t, "tur of a missing LUN", r, check, ill, cdb.ASCLogicalUnitNotSupported)
	r = g.doCDB(t, n, lun1, []byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 256, nil)
	expect(t, "report luns through a missing LUN", r, good, 0, 0)
}

func TestEncodeDecodeLUN(t *testing.T) {
	for _, id := range []int{0, 1, 255, 256, 1000, LUNsMax - 1} {
		if got := decodeLUN(EncodeLUN(id)); got != id {
			t.Errorf("decodeLUN(EncodeLUN(%d)) = %d", id, got)
		}
	}
	for _, f := range []uint64{0x0001000000000000 | 0x01, 0x8000000000000000, 0x0100000000000000} {
		if got := decodeLUN(f); got != -1 {
			t.Errorf("decodeLUN(%#x) = %d, want -1", f, got)
		}
	}
}

// TestTaskReuse: a Task object reused for the next command starts clean
// (an UNMAP after a WRITE must not deallocate the WRITE's range).
func TestTaskReuse(t *testing.T) {
	g := newRig(t, 1024, 512, Config{Thin: true})
	n := g.nexus(t, "iqn.2024-01.test:a", 1)
	g.clearUA(t, n)
	task := &Task{Nexus: n, Completer: g}
	run := func(c []byte, edtl uint32, out []byte) {
		task.CDB, task.TransferLength = append(c, make([]byte, 16-len(c))...), edtl
		var p Progress
		g.call(t, func() {
			for p = g.dev.Start(task); p == ProgressDataOut; p = task.Resume() {
				task.CopyDataOut(0, out)
			}
		})
		if p == ProgressRunning {
			<-g.done
		}
		g.call(t, task.Release)
	}
	run([]byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 8, 0}, 4096, fill(4096, 1))
	list := []byte{0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}
	run([]byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, 24, list) // unmap LBA 0 only
	r := g.do(t, n, "9e 12 00 00 00 00 00 00 00 01 00 00 00 18 00 00", 24, nil)
	if r.status != good || r.data[20] != 0 {
		t.Errorf("LBA 1 after unmapping LBA 0 with a reused task: % x, want mapped", r.data)
	}
}
