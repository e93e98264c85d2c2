package scsi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

const (
	// LUNsMax LUNs per device, numbered 0..LUNsMax-1: what SPDK allows, and
	// what the single-level peripheral and flat LUN formats reach cheaply.
	LUNsMax = 256
	// NexusesMax I_T nexuses a device remembers: beyond it, a nexus that no
	// session uses and no registration names is forgotten first.
	NexusesMax = 1024
	// paramSizeMax bytes of parameter data (MODE SELECT, UNMAP, PR OUT
	// lists) or generated data-in (INQUIRY, REPORT LUNS, PR IN…) one command
	// moves: a pool's large buffer holds it, and a PR IN READ FULL STATUS of
	// every registration fits.
	paramSizeMax = 64 << 10
)

// Device is a SCSI target device: the LUNs one transport target exposes
// (SPDK's spdk_scsi_dev). It routes each Task to its LUN, answers REPORT
// LUNS and commands to LUNs it does not have. Owner: its reactor (see the
// package comment).
type Device struct {
	name  string
	owner *reactors.Reactor
	local *bdev.Local

	// Owner-only.
	luns    [LUNsMax]*LUN
	nexuses []*Nexus          // index: Nexus.index
	byID    map[string]*Nexus // key: initiator port + "\x00" + target port
	param   []byte            // scratch for data-in built before copying (paramSizeMax)
}

// NewDevice makes an empty device owned by local's reactor.
func NewDevice(name string, local *bdev.Local) *Device {
	return &Device{name: name, owner: local.Reactor(), local: local,
		byID: make(map[string]*Nexus), param: make([]byte, 0, paramSizeMax)}
}

// Name is the device's name (the target's).
func (d *Device) Name() string { return d.name }

// Reactor is the device's owner.
func (d *Device) Reactor() *reactors.Reactor { return d.owner }

// Errors of AddLUN.
var (
	ErrLUNExists = errors.New("LUN already used")
	ErrLUNRange  = errors.New("LUN out of range")
)

// AddLUN makes l the device's LUN id. Owner only.
func (d *Device) AddLUN(id int, l *LUN) error {
	d.owner.AssertCurrent()
	if id < 0 || id >= LUNsMax {
		return fmt.Errorf("device %q: LUN %d, want 0..%d: %w", d.name, id, LUNsMax-1, ErrLUNRange)
	}
	if d.luns[id] != nil {
		return fmt.Errorf("device %q: LUN %d: %w", d.name, id, ErrLUNExists)
	}
	if l.ch.Reactor() != d.owner {
		return fmt.Errorf("device %q: LUN %d's channel is on reactor %d, want %d",
			d.name, id, l.ch.Reactor().Index(), d.owner.Index())
	}
	l.id, l.dev = id, d
	d.luns[id] = l
	for _, n := range d.nexuses {
		n.ua[id] = 0
		n.ua[id].add(uaPowerOn)
		if id != 0 {
			n.ua[0].add(uaReportedLUNsChanged)
		}
	}
	return nil
}

// RemoveLUN takes LUN id out of the device and returns it; nil when there is
// none. Tasks still at the bdev complete normally. Owner only.
func (d *Device) RemoveLUN(id int) *LUN {
	d.owner.AssertCurrent()
	if id < 0 || id >= LUNsMax || d.luns[id] == nil {
		return nil
	}
	l := d.luns[id]
	d.luns[id] = nil
	for _, n := range d.nexuses {
		n.ua[0].add(uaReportedLUNsChanged)
	}
	return l
}

// LUN returns LUN id, or nil.
func (d *Device) LUN(id int) *LUN {
	if id < 0 || id >= LUNsMax {
		return nil
	}
	return d.luns[id]
}

// LUNs lists the device's LUN numbers, ascending.
func (d *Device) LUNs() []int {
	var ids []int
	for i, l := range d.luns {
		if l != nil {
			ids = append(ids, i)
		}
	}
	return ids
}

// Nexus returns the device's nexus for id, making it when new (with a POWER
// ON unit attention on every LUN, SPC-4 5.14), and counts one more session
// using it. Pair with Detach. Owner only; control path (it may allocate).
func (d *Device) Nexus(id NexusID) *Nexus {
	d.owner.AssertCurrent()
	n := d.lookupNexus(id)
	if n.attached == 0 {
		// A nexus (re)established: POWER ON, RESET, OR BUS DEVICE RESET
		// OCCURRED, the highest-priority condition, stands for whatever
		// happened while it was gone (SPC-4 5.14: it may replace the others).
		for i := range n.ua {
			n.ua[i] = 0
			n.ua[i].add(uaPowerOn)
		}
	}
	n.attached++
	return n
}

func (d *Device) lookupNexus(id NexusID) *Nexus {
	key := id.InitiatorPort + "\x00" + id.TargetPort
	if n, ok := d.byID[key]; ok {
		return n
	}
	if len(d.nexuses) >= NexusesMax {
		d.forgetNexus()
	}
	if id.TransportID == nil {
		id.TransportID = plainTransportID(id.InitiatorPort)
	}
	n := &Nexus{id: id, index: len(d.nexuses), ua: make([]uaSet, LUNsMax)}
	for i := range n.ua {
		n.ua[i].add(uaPowerOn)
	}
	d.nexuses = append(d.nexuses, n)
	d.byID[key] = n
	return n
}

// forgetNexus drops one nexus no session uses and no LUN refers to.
func (d *Device) forgetNexus() {
	for i, n := range d.nexuses {
		if n.attached > 0 || d.referenced(n) {
			continue
		}
		delete(d.byID, n.id.InitiatorPort+"\x00"+n.id.TargetPort)
		d.nexuses = slices.Delete(d.nexuses, i, i+1)
		for j := i; j < len(d.nexuses); j++ {
			d.nexuses[j].index = j
		}
		return
	}
}

func (d *Device) referenced(n *Nexus) bool {
	for _, l := range d.luns {
		if l != nil && l.refers(n) {
			return true
		}
	}
	return false
}

// plainTransportID is an iSCSI device-name TransportID (FORMAT CODE 00b)
// for a transport that gave none.
func plainTransportID(port string) []byte {
	n := len(port) + 1
	n += -n & 3
	if n < 20 {
		n = 20
	}
	b := make([]byte, 4+n)
	b[0] = cdb.ProtocolISCSI
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	copy(b[4:], port)
	return b
}

// Detach ends one session's use of n. When none is left the I_T nexus is
// lost (SAM-5 6.3.4): SPC-2 reservations it held are released and its next
// command sees I_T NEXUS LOSS OCCURRED. Persistent registrations stay.
// Owner only.
func (d *Device) Detach(n *Nexus) {
	d.owner.AssertCurrent()
	if n.attached <= 0 {
		panic(fmt.Sprintf("scsi: detach of nexus %s with no session", n))
	}
	n.attached--
	if n.attached > 0 {
		return
	}
	for i, l := range d.luns {
		if l == nil {
			continue
		}
		if l.reserved == n {
			l.reserved = nil
		}
		n.ua[i].add(uaNexusLoss) // replaced by POWER ON at the next attach
	}
}

// ResetLUN is a LOGICAL UNIT RESET (SAM-5 5.7): the LUN's SPC-2 reservation
// is released and every nexus sees a reset unit attention. Tasks in flight
// are the transport's to abort. NotFound when there is no such LUN. Owner
// only.
func (d *Device) ResetLUN(lunField uint64) bool {
	l := d.LUN(decodeLUN(lunField))
	if l == nil {
		return false
	}
	l.reset()
	return true
}

// ResetTarget is a TARGET WARM RESET (or COLD): every LUN is reset.
func (d *Device) ResetTarget() {
	for _, l := range d.luns {
		if l != nil {
			l.reset()
		}
	}
}

// HasLUN reports whether the LUN field names one of the device's LUNs.
func (d *Device) HasLUN(lunField uint64) bool { return d.LUN(decodeLUN(lunField)) != nil }

// decodeLUN reads a SAM-5 LUN field in the peripheral (00b) or flat (01b)
// single-level format; -1 for anything else.
func decodeLUN(f uint64) int {
	if f&0x0000ffffffffffff != 0 {
		return -1 // a second level
	}
	hi := byte(f >> 56)
	lo := int(byte(f >> 48))
	switch hi >> 6 {
	case 0:
		if hi != 0 { // bus identifier
			return -1
		}
		return lo
	case 1:
		return int(hi&0x3f)<<8 | lo
	}
	return -1
}

// EncodeLUN is the SAM-5 LUN field of LUN id: peripheral format below 256,
// flat above.
func EncodeLUN(id int) uint64 {
	if id < 256 {
		return uint64(id) << 48
	}
	return (0x4000 | uint64(id&0x3fff)) << 48
}

// Start begins t; see the package comment for what each Progress asks of
// the transport. Owner only.
func (d *Device) Start(t *Task) Progress {
	if t.state != taskFree {
		panic(fmt.Sprintf("scsi: start of %s task %#x", t.state, t.Tag))
	}
	t.dev = d
	t.lun = nil
	t.Status, t.SenseLen, t.DataIn, t.DataOut, t.DataSize = cdb.StatusGood, 0, 0, 0, 0
	t.Cmd = cdb.Command{}
	t.op, t.step, t.index, t.lba, t.blocks, t.lock = opNone, 0, 0, 0, 0, nil
	id := decodeLUN(t.LUN)
	l := d.LUN(id)
	if l == nil {
		return d.noLUN(t)
	}
	t.lun = l
	return l.start(t)
}

// noLUN answers a command to a LUN the device does not have (SPC-4 4.6.4?,
// SAM-5 5.9.6): INQUIRY says "not connected", REPORT LUNS works, REQUEST
// SENSE reports the condition, everything else fails.
func (d *Device) noLUN(t *Task) Progress {
	if len(t.CDB) == 0 {
		t.fail(cdb.ErrParameterListLength)
		return d.finish(t)
	}
	switch cdb.Opcode(t.CDB[0]) {
	case cdb.OpInquiry:
		c, err := cdb.Parse(t.CDB)
		if err != nil {
			t.fail(err)
			return d.finish(t)
		}
		t.Cmd = c
		if c.Has(cdb.FlagEVPD) {
			t.checkCondition(senseOf(cdb.KeyIllegalRequest, cdb.ASCLogicalUnitNotSupported))
			return d.finish(t)
		}
		// SPC-4 6.4.2: PERIPHERAL QUALIFIER 011b, DEVICE TYPE 1Fh: no LU here.
		p := d.param[:36]
		clear(p)
		p[0] = 0x7f
		p[2], p[3], p[4] = 0x06, 0x12, 31
		return d.dataIn(t, p)
	case cdb.OpReportLUNs:
		c, err := cdb.Parse(t.CDB)
		if err != nil {
			t.fail(err)
			return d.finish(t)
		}
		t.Cmd = c
		return d.reportLUNs(t)
	case cdb.OpRequestSense:
		c, err := cdb.Parse(t.CDB)
		if err != nil {
			t.fail(err)
			return d.finish(t)
		}
		t.Cmd = c
		s := senseOf(cdb.KeyIllegalRequest, cdb.ASCLogicalUnitNotSupported)
		n := s.Put(d.param[:cdb.DescriptorSenseSizeMax], c.Has(cdb.FlagDesc))
		return d.dataIn(t, d.param[:n])
	}
	t.checkCondition(senseOf(cdb.KeyIllegalRequest, cdb.ASCLogicalUnitNotSupported))
	return d.finish(t)
}

// reportLUNs answers REPORT LUNS (SPC-4 6.33): every LUN for SELECT REPORT
// 00h, 02h and the well-known-free ones; none for 01h (well known only).
func (d *Device) reportLUNs(t *Task) Progress {
	if t.Cmd.AllocationLength < 16 {
		// SPC-4 6.33: an allocation length under 16 is an invalid field.
		t.fail(cdbFieldError(6))
		return d.finish(t)
	}
	p := d.param[:8]
	clear(p)
	if t.Cmd.SelectReport != 0x01 {
		for i, l := range d.luns {
			if l == nil {
				continue
			}
			var e [8]byte
			binary.BigEndian.PutUint64(e[:], EncodeLUN(i))
			p = append(p, e[:]...)
		}
	}
	binary.BigEndian.PutUint32(p, uint32(len(p)-8))
	return d.dataIn(t, p)
}

// dataIn copies p (clamped to the allocation length) into a pool buffer as
// t's data-in and ends it GOOD.
func (d *Device) dataIn(t *Task, p []byte) Progress {
	n := min(len(p), int(t.Cmd.AllocationLength))
	t.DataSize = t.Cmd.AllocationLength
	if n > 0 {
		if !t.data.alloc(d.local, uint32(n)) {
			t.state = taskFree
			return ProgressBusy
		}
		t.data.copyIn(0, p[:n])
	}
	t.good(n)
	return d.finish(t)
}

func (d *Device) finish(t *Task) Progress {
	t.state = taskComplete
	return ProgressDone
}

// cdbFieldError is INVALID FIELD IN CDB at byte b (no bit pointer).
func cdbFieldError(b int) *senseErr {
	return fieldErrors[b]
}

// fieldErrors are INVALID FIELD IN CDB errors for whole bytes, made once so
// a rejection does not allocate (S3).
var fieldErrors = func() (t [16]*senseErr) {
	for i := range t {
		t[i] = newFieldError(i, -1, true)
	}
	return t
}()

// newFieldError makes an INVALID FIELD IN CDB (inCDB) or IN PARAMETER LIST
// error with a field pointer.
func newFieldError(b, bit int, inCDB bool) *senseErr {
	asc := cdb.ASCInvalidFieldInParameterList
	if inCDB {
		asc = cdb.ASCInvalidFieldInCDB
	}
	return senseError(cdb.Sense{Key: cdb.KeyIllegalRequest, ASC: asc, SenseKeySpecific: cdb.FieldPointer(b, bit, inCDB)})
}
