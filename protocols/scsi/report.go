package scsi

import (
	"encoding/binary"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
)

// opDesc is one supported command as REPORT SUPPORTED OPERATION CODES
// shows it (SPC-4 6.35): its service action if it has one, and the CDB
// usage data, a mask of the bits the device server looks at (byte 0 the
// opcode itself).
type opDesc struct {
	sa    cdb.ServiceAction
	hasSA bool
	thin  bool // only on thin-provisioned LUNs
	usage []byte
}

// supportedOps is every command dispatch serves, in opcode order. The
// masks follow the CDB layouts cdb.Parse decodes.
var supportedOps = []opDesc{
	{usage: []byte{0x00, 0, 0, 0, 0, 0x00}},                            // TEST UNIT READY
	{usage: []byte{0x03, 0x01, 0, 0, 0xff, 0x00}},                      // REQUEST SENSE
	{usage: []byte{0x08, 0x1f, 0xff, 0xff, 0xff, 0x00}},                // READ(6)
	{usage: []byte{0x0a, 0x1f, 0xff, 0xff, 0xff, 0x00}},                // WRITE(6)
	{usage: []byte{0x12, 0x01, 0xff, 0xff, 0xff, 0x00}},                // INQUIRY
	{usage: []byte{0x15, 0x11, 0, 0, 0xff, 0x00}},                      // MODE SELECT(6)
	{usage: []byte{0x16, 0, 0, 0, 0, 0x00}},                            // RESERVE(6)
	{usage: []byte{0x17, 0, 0, 0, 0, 0x00}},                            // RELEASE(6)
	{usage: []byte{0x1a, 0x08, 0xff, 0xff, 0xff, 0x00}},                // MODE SENSE(6)
	{usage: []byte{0x1b, 0x01, 0, 0x0f, 0xf7, 0x00}},                   // START STOP UNIT
	{usage: []byte{0x1e, 0, 0, 0, 0x03, 0x00}},                         // PREVENT ALLOW MEDIUM REMOVAL
	{usage: []byte{0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, 0x00}}, // READ CAPACITY(10)
	{usage: []byte{0x28, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00}},
	{usage: []byte{0x2a, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00}},
	{usage: []byte{0x2e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00}}, // WRITE AND VERIFY(10)
	{usage: []byte{0x2f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00}}, // VERIFY(10)
	{usage: []byte{0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00}}, // PRE-FETCH(10)
	{usage: []byte{0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00}}, // SYNCHRONIZE CACHE(10)
	{usage: []byte{0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0x00}},                // READ DEFECT DATA(10)
	{usage: []byte{0x41, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00}}, // WRITE SAME(10)
	{thin: true, usage: []byte{0x42, 0x01, 0, 0, 0, 0, 0x3f, 0xff, 0xff, 0x00}}, // UNMAP
	{usage: []byte{0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0x00}},                // MODE SELECT(10)
	{usage: []byte{0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0x00}},                         // RESERVE(10)
	{usage: []byte{0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0x00}},                         // RELEASE(10)
	{usage: []byte{0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0x00}},          // MODE SENSE(10)
	{sa: cdb.PRInReadKeys, hasSA: true, usage: prInUsage(0)},
	{sa: cdb.PRInReadReservation, hasSA: true, usage: prInUsage(1)},
	{sa: cdb.PRInReportCapabilities, hasSA: true, usage: prInUsage(2)},
	{sa: cdb.PRInReadFullStatus, hasSA: true, usage: prInUsage(3)},
	{sa: cdb.PROutRegister, hasSA: true, usage: prOutUsage(0)},
	{sa: cdb.PROutReserve, hasSA: true, usage: prOutUsage(1)},
	{sa: cdb.PROutRelease, hasSA: true, usage: prOutUsage(2)},
	{sa: cdb.PROutClear, hasSA: true, usage: prOutUsage(3)},
	{sa: cdb.PROutPreempt, hasSA: true, usage: prOutUsage(4)},
	{sa: cdb.PROutPreemptAndAbort, hasSA: true, usage: prOutUsage(5)},
	{sa: cdb.PROutRegisterAndIgnore, hasSA: true, usage: prOutUsage(6)},
	{sa: cdb.PROutRegisterAndMove, hasSA: true, usage: prOutUsage(7)},
	{usage: rw16Usage(0x88, 0xf8)}, // READ(16)
	{usage: []byte{0x89, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0x3f, 0x00}},
	{usage: rw16Usage(0x8a, 0xf8)}, // WRITE(16)
	{usage: rw16Usage(0x8b, 0xf8)}, // ORWRITE(16)
	{usage: rw16Usage(0x8e, 0xf2)}, // WRITE AND VERIFY(16)
	{usage: rw16Usage(0x8f, 0xf6)}, // VERIFY(16)
	{usage: rw16Usage(0x90, 0x02)}, // PRE-FETCH(16)
	{usage: rw16Usage(0x91, 0x02)}, // SYNCHRONIZE CACHE(16)
	{usage: rw16Usage(0x93, 0xf9)}, // WRITE SAME(16)
	{usage: rw16Usage(0x9c, 0x18)}, // WRITE ATOMIC(16)
	{sa: cdb.SAReadCapacity16, hasSA: true,
		usage: []byte{0x9e, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00}},
	{sa: cdb.SAGetLBAStatus, hasSA: true,
		usage: []byte{0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x00}},
	{usage: []byte{0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x00}}, // REPORT LUNS
	{sa: cdb.SAReportSupportedOperationCodes, hasSA: true,
		usage: []byte{0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x00}},
	{sa: cdb.SAReportSupportedTaskManagementFunc, hasSA: true,
		usage: []byte{0xa3, 0x0d, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x00}},
	{usage: []byte{0xa8, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00}}, // READ(12)
	{usage: []byte{0xaa, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00}}, // WRITE(12)
	{usage: []byte{0xae, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00}}, // WRITE AND VERIFY(12)
	{usage: []byte{0xaf, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00}}, // VERIFY(12)
	{usage: []byte{0xb7, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x00}},                // READ DEFECT DATA(12)
}

func prInUsage(sa byte) []byte  { return []byte{0x5e, sa, 0, 0, 0, 0, 0, 0xff, 0xff, 0x00} }
func prOutUsage(sa byte) []byte { return []byte{0x5f, sa, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00} }

func rw16Usage(op, b1 byte) []byte {
	return []byte{op, b1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00}
}

// Nominal and recommended command timeouts reported with RCTD, in seconds.
const (
	timeoutNominal     = 1
	timeoutRecommended = 30
)

// reportOpcodes answers REPORT SUPPORTED OPERATION CODES (SPC-4 6.35).
func (l *LUN) reportOpcodes(t *Task) Progress {
	c := &t.Cmd
	rctd := c.Has(cdb.FlagRCTD)
	p := l.dev.param[:4]
	clear(p)
	if c.ReportingOptions == 0 {
		for _, d := range supportedOps {
			if d.thin && !l.cfg.Thin {
				continue
			}
			var e [8]byte
			e[0] = d.usage[0]
			binary.BigEndian.PutUint16(e[2:], uint16(d.sa))
			if d.hasSA {
				e[5] |= 0x01 // SERVACTV
			}
			if rctd {
				e[5] |= 0x02 // CTDP
			}
			binary.BigEndian.PutUint16(e[6:], uint16(len(d.usage)))
			p = append(p, e[:]...)
			if rctd {
				p = appendTimeouts(p)
			}
		}
		binary.BigEndian.PutUint32(p, uint32(len(p)-4))
		return l.dataIn(t, p)
	}
	// One command: 1 by opcode (no service action), 2 by opcode and
	// service action, 3 either (SPC-4r37).
	var found *opDesc
	hasSA := false
	for i := range supportedOps {
		d := &supportedOps[i]
		if d.usage[0] != byte(c.RequestedOpcode) || (d.thin && !l.cfg.Thin) {
			continue
		}
		hasSA = d.hasSA
		if !d.hasSA || d.sa == c.RequestedServiceAction {
			found = d
			break
		}
	}
	switch {
	case c.ReportingOptions == 1 && hasSA:
		t.fail(cdbFieldError(2))
		return l.done(t)
	case c.ReportingOptions == 2 && found != nil && !hasSA:
		t.fail(cdbFieldError(2))
		return l.done(t)
	}
	if found == nil {
		p[1] = 0x01 // SUPPORT 001b: not supported
		return l.dataIn(t, p)
	}
	p[1] = 0x03 // SUPPORT 011b: supported as the standard says
	if rctd {
		p[1] |= 0x80
	}
	binary.BigEndian.PutUint16(p[2:], uint16(len(found.usage)))
	p = append(p, found.usage...)
	if rctd {
		p = appendTimeouts(p)
	}
	return l.dataIn(t, p)
}

// appendTimeouts appends a command timeouts descriptor (SPC-4 6.35.4).
func appendTimeouts(p []byte) []byte {
	var d [12]byte
	binary.BigEndian.PutUint16(d[0:], 0x0a)
	binary.BigEndian.PutUint32(d[4:], timeoutNominal)
	binary.BigEndian.PutUint32(d[8:], timeoutRecommended)
	return append(p, d[:]...)
}

// reportTMFs answers REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-4
// 6.36): ABORT TASK, ABORT TASK SET, CLEAR TASK SET and LOGICAL UNIT RESET
// are what the iSCSI target serves.
func (l *LUN) reportTMFs(t *Task) Progress {
	p := l.dev.param[:4]
	clear(p)
	p[0] = 0x80 | 0x40 | 0x10 | 0x08 // ATS ATSS CTSS LURS
	if t.Cmd.Has(cdb.FlagREPD) {
		p = p[:16]
		clear(p[4:])
		p[3] = 0x0c // ADDITIONAL DATA LENGTH
	}
	return l.dataIn(t, p)
}
