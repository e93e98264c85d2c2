package scsi

import (
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
	"github.com/sluice-storage/sluice/services/bdev"
)

const (
	// TransferSizeMax bytes move in one command: 1 MiB, what Linux asks
	// for at most by default and libiscsi's largest test write, in segments
	// of large pool buffers (segs) that the transport lands data-out into
	// directly. Block Limits reports it as the MAXIMUM TRANSFER LENGTH.
	TransferSizeMax = 1 << 20
	// writeSameBlocksMax is the MAXIMUM WRITE SAME LENGTH: what WRITE
	// SAME(10)'s 16-bit field names, so one command's chunk writes end in
	// well under a second.
	writeSameBlocksMax = 0xffff
	// unmapBlocksMax is the MAXIMUM UNMAP LBA COUNT of one descriptor: 1 Mi
	// blocks (libiscsi wants at most that); the bdev layer splits larger
	// unmaps on the back end's limit.
	unmapBlocksMax = 1 << 20
	// unmapDescriptorsMax is the MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT:
	// descriptors run one after another, so this bounds a command's length.
	unmapDescriptorsMax = 256
	// registrationsMax persistent registrations per LUN: a cluster's
	// initiator ports, with room.
	registrationsMax = 128
)

// Fails to compile unless an UNMAP list of the most descriptors fits the
// parameter buffer.
const _ uint = paramSizeMax - (cdb.UnmapHeaderSize + unmapDescriptorsMax*cdb.UnmapDescriptorSize)

// Config is what a LUN shows of itself beyond its bdev's geometry.
type Config struct {
	// Vendor (8), Product (16) and Revision (4) are the INQUIRY
	// identification, ASCII, padded with spaces; defaults "SLUICE",
	// "Sluice disk" and "0001".
	Vendor, Product, Revision string
	// Serial is the unit serial number (VPD 80h); default the bdev's UUID
	// in hex.
	Serial string
	// Thin makes the LUN thin provisioned (SBC-3 4.7.3): LBPME set, UNMAP,
	// WRITE SAME with UNMAP and GET LBA STATUS report deallocated blocks.
	// It needs a bdev that does IOUnmap.
	Thin bool
	// ReadOnly write-protects the LUN (also when its descriptor is read-only).
	ReadOnly bool
	// Removable sets RMB: START STOP UNIT can eject and load the medium,
	// PREVENT ALLOW MEDIUM REMOVAL locks it.
	Removable bool
	// WriteCacheOff starts with the Caching mode page's WCE clear: every
	// write is flushed before it completes.
	WriteCacheOff bool
}

// LUN is one logical unit on one bdev. Owner: its device's reactor.
type LUN struct {
	// Set in NewLUN, never changed.
	ch         *bdev.Channel
	b          *bdev.Bdev
	cfg        Config
	blockSize  uint32
	blockShift uint8
	blocks     uint64
	lbprz      bool // unmapped blocks read as zeros
	canUnmap   bool
	writable   bool
	naa        [16]byte // NAA IEEE Registered Extended designator
	id         int      // set by Device.AddLUN
	dev        *Device

	// Owner-only.
	mode         modeState
	reserved     *Nexus // SPC-2 RESERVE holder
	pr           prState
	deallocated  []uint64 // thin: bit set = block deallocated since last write
	stopped      bool     // START STOP UNIT START=0
	ejected      bool     // removable medium unloaded
	preventCount int      // PREVENT ALLOW MEDIUM REMOVAL holders
	resetGen     uint32
	runHead      *Task // tasks at the bdev, for resets
	runTail      *Task
	running      int

	// Written by the owner, read by the debug endpoint.
	stats Stats
}

// Stats counts a LUN's commands; read from any goroutine.
type Stats struct {
	Commands       atomic.Uint64
	Reads          atomic.Uint64
	Writes         atomic.Uint64
	BytesRead      atomic.Uint64
	BytesWritten   atomic.Uint64
	CheckCondition atomic.Uint64
	Conflicts      atomic.Uint64
}

// NewLUN makes a LUN over ch's bdev. It runs on ch's reactor.
func NewLUN(ch *bdev.Channel, cfg Config) (*LUN, error) {
	ch.Reactor().AssertCurrent()
	b := ch.Bdev()
	info := b.Info()
	if cfg.Thin && !b.IOTypes().Has(bdev.IOUnmap) {
		return nil, fmt.Errorf("LUN on bdev %q: thin provisioning needs unmap, which the bdev does not do", b.Name())
	}
	if b.BlockSize() > segSize/2 {
		return nil, fmt.Errorf("LUN on bdev %q: block size %d, want at most %d", b.Name(), b.BlockSize(), segSize/2)
	}
	l := &LUN{ch: ch, b: b, cfg: cfg, blockSize: b.BlockSize(), blocks: b.Blocks(),
		lbprz: info.UnmapZeroes, canUnmap: b.IOTypes().Has(bdev.IOUnmap),
		writable: ch.Desc().Writable() && !cfg.ReadOnly}
	for s := b.BlockSize(); s > 1; s >>= 1 {
		l.blockShift++
	}
	l.cfg.Vendor = asciiField(cfg.Vendor, "SLUICE", 8)
	l.cfg.Product = asciiField(cfg.Product, "Sluice disk", 16)
	l.cfg.Revision = asciiField(cfg.Revision, "0001", 4)
	if cfg.Serial == "" {
		u := b.UUID()
		l.cfg.Serial = hex.EncodeToString(u[:])
	}
	l.cfg.Serial = asciiField(l.cfg.Serial, "", serialSizeMax)
	l.naa = naaOf(b.UUID())
	l.mode = defaultMode(cfg)
	if cfg.Thin {
		l.deallocated = make([]uint64, (l.blocks+63)/64)
	}
	return l, nil
}

// serialSizeMax bytes of unit serial number we report.
const serialSizeMax = 32

// asciiField trims s to printable ASCII of at most n bytes, def when empty.
func asciiField(s, def string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
	if s == "" {
		s = def
	}
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// naaOf is an NAA 6 (IEEE Registered Extended) designator from a UUID: the
// OUI field is a locally administered value and the rest the UUID's bits,
// so each bdev's designator is as unique as its UUID.
func naaOf(u [16]byte) [16]byte {
	var d [16]byte
	d[0] = 0x60 | u[0]>>4&0x0f // NAA 6, then 4 bits of (vendor) OUI
	copy(d[1:], u[:15])
	d[1] = d[1]&0x0f | 0x20 // keep a fixed, locally administered OUI nibble
	return d
}

// Bdev is the LUN's bdev.
func (l *LUN) Bdev() *bdev.Bdev { return l.b }

// Config is the LUN's configuration with its defaults filled.
func (l *LUN) Config() Config { return l.cfg }

// Stats is the LUN's counters.
func (l *LUN) Stats() *Stats { return &l.stats }

// ID is the LUN number in its device.
func (l *LUN) ID() int { return l.id }

// refers reports whether the LUN's reservation state names n.
func (l *LUN) refers(n *Nexus) bool {
	if l.reserved == n || l.pr.holder == n {
		return true
	}
	for _, r := range l.pr.regs {
		if r.nexus == n {
			return true
		}
	}
	return false
}

// reset is a LOGICAL UNIT RESET's effect on the LUN (SAM-5 5.7, SPC-4
// 5.9.3): the SPC-2 reservation goes, persistent ones stay, mode
// parameters keep their current values, every nexus sees a unit attention.
func (l *LUN) reset() {
	l.reserved = nil
	l.stopped = false
	l.preventCount = 0
	l.resetGen++
	if l.dev == nil {
		return
	}
	for _, n := range l.dev.nexuses {
		n.ua[l.id].add(uaLUNReset)
	}
}

// opClass says how a command meets reservations and readiness.
type opClass uint8

const (
	classAlways  opClass = iota // never conflicts, works when stopped
	classRead                   // reads the medium or its state
	classWrite                  // changes the medium or the LU's state
	classPROut                  // PERSISTENT RESERVE OUT: its own rules
	classPRIn                   // PERSISTENT RESERVE IN
	classReserve                // SPC-2 RESERVE/RELEASE
)

// classOf classifies c for SPC-4 5.9.1 (table 66) and SBC-3 4.17.
func classOf(c *cdb.Command) opClass {
	switch c.Opcode {
	case cdb.OpInquiry, cdb.OpReportLUNs, cdb.OpRequestSense, cdb.OpReadCapacity10,
		cdb.OpTestUnitReady, cdb.OpMaintenanceIn:
		return classAlways
	case cdb.OpServiceActionIn16:
		if c.ServiceAction == cdb.SAReadCapacity16 {
			return classAlways
		}
		return classRead
	case cdb.OpRead6, cdb.OpRead10, cdb.OpRead12, cdb.OpRead16, cdb.OpVerify10, cdb.OpVerify12,
		cdb.OpVerify16, cdb.OpModeSense6, cdb.OpModeSense10, cdb.OpPreFetch10, cdb.OpPreFetch16,
		cdb.OpReadDefectData10, cdb.OpReadDefectData12:
		return classRead
	case cdb.OpPersistentReserveOut:
		return classPROut
	case cdb.OpPersistentReserveIn:
		return classPRIn
	case cdb.OpReserve6, cdb.OpReserve10, cdb.OpRelease6, cdb.OpRelease10:
		return classReserve
	}
	return classWrite
}

// mediaAccess reports whether c needs the medium present and the LU started
// (SBC-3 4.19: the others work in any power condition).
func mediaAccess(c *cdb.Command) bool {
	switch c.Opcode {
	case cdb.OpRead6, cdb.OpRead10, cdb.OpRead12, cdb.OpRead16, cdb.OpWrite6, cdb.OpWrite10,
		cdb.OpWrite12, cdb.OpWrite16, cdb.OpVerify10, cdb.OpVerify12, cdb.OpVerify16,
		cdb.OpWriteAndVerify10, cdb.OpWriteAndVerify12, cdb.OpWriteAndVerify16,
		cdb.OpORWrite16, cdb.OpCompareAndWrite, cdb.OpWriteSame10, cdb.OpWriteSame16, cdb.OpUnmap,
		cdb.OpPreFetch10, cdb.OpPreFetch16, cdb.OpSynchronizeCache10, cdb.OpSynchronizeCache16,
		cdb.OpReadCapacity10, cdb.OpTestUnitReady, cdb.OpWriteAtomic16:
		return true
	case cdb.OpServiceActionIn16:
		return true
	}
	return false
}

// start runs the ordered checks of S2 and dispatches t.
func (l *LUN) start(t *Task) Progress {
	t.resetGen = l.resetGen
	l.stats.Commands.Add(1)
	if len(t.CDB) == 0 {
		t.fail(cdb.ErrParameterListLength)
		return l.done(t)
	}
	op := cdb.Opcode(t.CDB[0])
	// SPC-4 5.14: a pending unit attention fails every command but these.
	if op != cdb.OpInquiry && op != cdb.OpReportLUNs && op != cdb.OpRequestSense {
		if u, ok := t.Nexus.ua[l.id].take(); ok {
			t.checkCondition(senseOf(cdb.KeyUnitAttention, uaSense[u]))
			return l.done(t)
		}
	}
	c, err := cdb.Parse(t.CDB)
	t.Cmd = c
	if err != nil {
		t.fail(err)
		return l.done(t)
	}
	cls := classOf(&c)
	if l.conflicts(t.Nexus, &c, cls) {
		l.stats.Conflicts.Add(1)
		t.conflict()
		return l.done(t)
	}
	if mediaAccess(&c) {
		switch {
		case l.ejected:
			t.checkCondition(senseOf(cdb.KeyNotReady, cdb.ASCMediumNotPresent))
			return l.done(t)
		case l.stopped && c.Opcode != cdb.OpTestUnitReady && c.Opcode != cdb.OpReadCapacity10 &&
			c.Opcode != cdb.OpServiceActionIn16:
			t.checkCondition(senseOf(cdb.KeyNotReady, cdb.ASCNotReadyInitializingRequired))
			return l.done(t)
		case l.stopped && c.Opcode == cdb.OpTestUnitReady:
			t.checkCondition(senseOf(cdb.KeyNotReady, cdb.ASCNotReadyInitializingRequired))
			return l.done(t)
		}
	}
	if cls == classWrite && writesMedium(&c) && (!l.writable || l.mode.swp) {
		t.checkCondition(senseOf(cdb.KeyDataProtect, cdb.ASCWriteProtected))
		return l.done(t)
	}
	return l.dispatch(t)
}

// writesMedium reports whether c changes stored data (the commands write
// protection refuses).
func writesMedium(c *cdb.Command) bool {
	switch c.Opcode {
	case cdb.OpWrite6, cdb.OpWrite10, cdb.OpWrite12, cdb.OpWrite16, cdb.OpWriteAndVerify10,
		cdb.OpWriteAndVerify12, cdb.OpWriteAndVerify16, cdb.OpORWrite16, cdb.OpCompareAndWrite,
		cdb.OpWriteSame10, cdb.OpWriteSame16, cdb.OpUnmap, cdb.OpWriteAtomic16:
		return true
	}
	return false
}

// dispatch is the one switch from a checked command to its handler.
func (l *LUN) dispatch(t *Task) Progress {
	c := &t.Cmd
	switch c.Opcode {
	case cdb.OpTestUnitReady:
		t.good(0)
		return l.done(t)
	case cdb.OpRequestSense:
		return l.requestSense(t)
	case cdb.OpInquiry:
		return l.inquiry(t)
	case cdb.OpReportLUNs:
		return l.dev.reportLUNs(t)
	case cdb.OpReadCapacity10:
		return l.readCapacity10(t)
	case cdb.OpServiceActionIn16:
		if c.ServiceAction == cdb.SAReadCapacity16 {
			return l.readCapacity16(t)
		}
		return l.getLBAStatus(t)
	case cdb.OpMaintenanceIn:
		if c.ServiceAction == cdb.SAReportSupportedOperationCodes {
			return l.reportOpcodes(t)
		}
		return l.reportTMFs(t)
	case cdb.OpModeSense6, cdb.OpModeSense10:
		return l.modeSense(t)
	case cdb.OpModeSelect6, cdb.OpModeSelect10, cdb.OpUnmap, cdb.OpPersistentReserveOut,
		cdb.OpReserve10, cdb.OpRelease10:
		return l.paramOut(t)
	case cdb.OpPersistentReserveIn:
		return l.prIn(t)
	case cdb.OpReserve6:
		return l.reserve(t)
	case cdb.OpRelease6:
		return l.release(t)
	case cdb.OpStartStopUnit:
		return l.startStop(t)
	case cdb.OpPreventAllowMediumRemoval:
		return l.preventAllow(t)
	case cdb.OpReadDefectData10, cdb.OpReadDefectData12:
		return l.readDefectData(t)
	}
	return l.media(t)
}

// paramOut asks for a parameter list (MODE SELECT, UNMAP, PR OUT,
// RESERVE/RELEASE(10)) and handles it in resumeParam.
func (l *LUN) paramOut(t *Task) Progress {
	c := &t.Cmd
	n := c.ParameterListLength
	if c.Opcode == cdb.OpReserve10 || c.Opcode == cdb.OpRelease10 {
		// SPC-2 7.21: the parameter list is only for third-party reservations, refused in Parse.
		if c.Opcode == cdb.OpReserve10 {
			return l.reserve(t)
		}
		return l.release(t)
	}
	if n > paramSizeMax {
		t.fail(cdb.ErrParameterListLength)
		return l.done(t)
	}
	if c.Opcode == cdb.OpUnmap {
		if c.Has(cdb.FlagAnchor) {
			t.fail(newFieldError(1, 0, true)) // ANC_SUP is 0
			return l.done(t)
		}
		if !l.cfg.Thin {
			// SBC-3 5.28: UNMAP on an LU without LBPU is an invalid opcode.
			t.checkCondition(senseOf(cdb.KeyIllegalRequest, cdb.ASCInvalidCommandOperationCode))
			return l.done(t)
		}
	}
	t.DataSize = n
	if n == 0 {
		return l.resumeParam(t, nil)
	}
	t.DataOut = min(n, t.TransferLength)
	if t.DataOut == 0 {
		return l.resumeParam(t, nil)
	}
	if !t.data.alloc(l.dev.local, t.DataOut) {
		return l.busy(t)
	}
	t.state = taskDataOut
	return ProgressDataOut
}

// Resume goes on with a task after its DataOut bytes of data-out landed.
func (t *Task) Resume() Progress {
	if t.state != taskDataOut {
		panic(fmt.Sprintf("scsi: resume of %s task %#x", t.state, t.Tag))
	}
	l := t.lun
	if t.op != opNone {
		return l.mediaResume(t)
	}
	return l.resumeParam(t, t.data.s[0][:t.DataOut]) // paramSizeMax: one segment
}

// resumeParam handles a parameter list (p may be nil: length 0).
func (l *LUN) resumeParam(t *Task, p []byte) Progress {
	switch t.Cmd.Opcode {
	case cdb.OpModeSelect6, cdb.OpModeSelect10:
		return l.modeSelect(t, p)
	case cdb.OpPersistentReserveOut:
		return l.prOut(t, p)
	case cdb.OpUnmap:
		return l.unmap(t, p)
	}
	panic(fmt.Sprintf("scsi: parameter list for opcode %#02x", uint8(t.Cmd.Opcode)))
}

// done marks t complete: status final, nothing at the bdev.
func (l *LUN) done(t *Task) Progress {
	if t.Status == cdb.StatusCheckCondition {
		l.stats.CheckCondition.Add(1)
	}
	t.state = taskComplete
	return ProgressDone
}

// busy undoes what Start took and reports ProgressBusy.
func (l *LUN) busy(t *Task) Progress {
	t.freeResources()
	t.state = taskFree
	return ProgressBusy
}

// dataIn copies p (clamped to the allocation length) into a pool buffer and
// ends t GOOD.
func (l *LUN) dataIn(t *Task, p []byte) Progress {
	if l.dev.dataIn(t, p) == ProgressBusy {
		return l.busy(t)
	}
	return l.done(t)
}

// readDefectData answers READ DEFECT DATA (SBC-3 5.15, 5.16) with an empty
// list: memory and files have no grown defects to report.
func (l *LUN) readDefectData(t *Task) Progress {
	c := &t.Cmd
	p := l.dev.param[:0]
	if c.Opcode == cdb.OpReadDefectData10 {
		p = append(p, 0, c.DefectListFormat|c.DefectRequest, 0, 0)
	} else {
		p = append(p, 0, c.DefectListFormat|c.DefectRequest, 0, 0, 0, 0, 0, 0)
	}
	return l.dataIn(t, p)
}

// startStop runs START STOP UNIT (SBC-3 5.25). A power condition other than
// START_VALID only changes the power condition, which has no effect here.
func (l *LUN) startStop(t *Task) Progress {
	c := &t.Cmd
	if c.PowerCondition != 0 {
		t.good(0)
		return l.done(t)
	}
	if c.Has(cdb.FlagLoEj) && l.cfg.Removable {
		if !c.Has(cdb.FlagStart) && l.preventCount > 0 {
			// SBC-3 5.25: ejecting a medium whose removal is prevented.
			t.checkCondition(senseOf(cdb.KeyIllegalRequest, ascMediumRemovalPrevented))
			return l.done(t)
		}
		l.ejected = !c.Has(cdb.FlagStart)
	}
	l.stopped = !c.Has(cdb.FlagStart)
	if !l.cfg.Removable && c.Has(cdb.FlagLoEj) {
		l.stopped = false // a fixed medium cannot be unloaded: LOEJ only asks to stay ready
	}
	t.good(0)
	return l.done(t)
}

// ascMediumRemovalPrevented is MEDIUM REMOVAL PREVENTED (SPC-4 Annex D).
const ascMediumRemovalPrevented cdb.ASC = 0x5302

// preventAllow runs PREVENT ALLOW MEDIUM REMOVAL (SPC-4 6.13; SBC-3 5.11):
// counted per command, cleared by a LUN reset.
func (l *LUN) preventAllow(t *Task) Progress {
	if t.Cmd.Prevent&1 != 0 {
		l.preventCount = 1
	} else {
		l.preventCount = 0
	}
	t.good(0)
	return l.done(t)
}

// listRunning puts t on the LUN's list of tasks at the bdev.
func (l *LUN) listRunning(t *Task) {
	t.state = taskRunning
	t.listed = true
	t.next = nil
	t.prev = l.runTail
	if l.runTail == nil {
		l.runHead = t
	} else {
		l.runTail.next = t
	}
	l.runTail = t
	l.running++
}

func (l *LUN) unlistRunning(t *Task) {
	if !t.listed {
		return
	}
	if t.prev == nil {
		l.runHead = t.next
	} else {
		t.prev.next = t.next
	}
	if t.next == nil {
		l.runTail = t.prev
	} else {
		t.next.prev = t.prev
	}
	t.prev, t.next, t.listed = nil, nil, false
	l.running--
}

// Running is how many of the LUN's tasks are at the bdev.
func (l *LUN) Running() int { return l.running }

// senseErr is a CHECK CONDITION this package builds beyond cdb's shared
// errors (parameter-list and limit errors).
type senseErr struct{ s cdb.Sense }

func (e *senseErr) Error() string {
	return fmt.Sprintf("scsi: sense key %#x, ASC %s", uint8(e.s.Key), e.s.ASC)
}

func senseError(s cdb.Sense) *senseErr { return &senseErr{s} }
