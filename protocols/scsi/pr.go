package scsi

import (
	"encoding/binary"
	"strings"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
)

// Persistent reservations (SPC-4 5.9): registrations per I_T nexus, one
// reservation, a generation counter. Kept in memory: APTPL is refused
// (PTPL_C 0), so nothing has to survive a power loss.

type registration struct {
	nexus *Nexus
	key   uint64
}

type prState struct {
	generation uint32
	regs       []registration
	// The reservation: typ 0 when there is none. holder is the reserving
	// nexus; for the all-registrants types every registrant holds it.
	typ    cdb.PRType
	holder *Nexus
}

// ASCs of reservation handling (SPC-4 Annex D).
const (
	ascInvalidReleaseOfPR cdb.ASC = 0x2604 // INVALID RELEASE OF PERSISTENT RESERVATION
)

func (s *prState) find(n *Nexus) int {
	for i := range s.regs {
		if s.regs[i].nexus == n {
			return i
		}
	}
	return -1
}

func allRegistrants(t cdb.PRType) bool {
	return t == cdb.PRWriteExclusiveAllRegistrants || t == cdb.PRExclusiveAccessAllRegistrants
}

func registrantsOnly(t cdb.PRType) bool {
	return t == cdb.PRWriteExclusiveRegistrants || t == cdb.PRExclusiveAccessRegistrants
}

// holds reports whether n is a reservation holder (SPC-4 5.9.10).
func (s *prState) holds(n *Nexus) bool {
	if s.typ == 0 {
		return false
	}
	if allRegistrants(s.typ) {
		return s.find(n) >= 0
	}
	return s.holder == n
}

// conflicts applies SPC-4 5.9.1 (table 66) for persistent reservations and
// SPC-2 7.21 for RESERVE(6)/(10).
func (l *LUN) conflicts(n *Nexus, c *cdb.Command, cls opClass) bool {
	if l.reserved != nil && l.reserved != n {
		switch c.Opcode {
		case cdb.OpInquiry, cdb.OpReportLUNs, cdb.OpRequestSense:
		case cdb.OpRelease6, cdb.OpRelease10:
			// SPC-2 7.19: another nexus's release succeeds and does nothing.
		default:
			return true
		}
	}
	if cls == classAlways {
		return false
	}
	s := &l.pr
	if cls == classPROut || cls == classPRIn {
		return false
	}
	if cls == classReserve {
		// SPC-4 5.9.1: RESERVE/RELEASE conflict while registrations exist.
		return len(s.regs) > 0
	}
	if s.typ == 0 || s.holds(n) {
		return false
	}
	registered := s.find(n) >= 0
	switch s.typ {
	case cdb.PRWriteExclusive:
		return cls == classWrite
	case cdb.PRExclusiveAccess:
		return true
	case cdb.PRWriteExclusiveRegistrants, cdb.PRWriteExclusiveAllRegistrants:
		return cls == classWrite && !registered
	case cdb.PRExclusiveAccessRegistrants, cdb.PRExclusiveAccessAllRegistrants:
		return !registered
	}
	return false
}

// reserve runs RESERVE(6)/(10) (SPC-2 7.21).
func (l *LUN) reserve(t *Task) Progress {
	l.reserved = t.Nexus
	t.good(0)
	return l.done(t)
}

// release runs RELEASE(6)/(10) (SPC-2 7.19): only the holder's releases.
func (l *LUN) release(t *Task) Progress {
	if l.reserved == t.Nexus {
		l.reserved = nil
	}
	t.good(0)
	return l.done(t)
}

// prIn answers PERSISTENT RESERVE IN (SPC-4 6.14).
func (l *LUN) prIn(t *Task) Progress {
	s := &l.pr
	p := l.dev.param[:8]
	clear(p)
	binary.BigEndian.PutUint32(p, s.generation)
	switch t.Cmd.ServiceAction {
	case cdb.PRInReadKeys:
		for _, r := range s.regs {
			p = binary.BigEndian.AppendUint64(p, r.key)
		}
		binary.BigEndian.PutUint32(p[4:], uint32(len(p)-8))
	case cdb.PRInReadReservation:
		if s.typ != 0 {
			var d [16]byte
			if !allRegistrants(s.typ) {
				binary.BigEndian.PutUint64(d[:], s.regs[s.find(s.holder)].key)
			}
			d[13] = byte(s.typ) // SCOPE 0 (LU_SCOPE)
			p = append(p, d[:]...)
		}
		binary.BigEndian.PutUint32(p[4:], uint32(len(p)-8))
	case cdb.PRInReportCapabilities:
		p = p[:8]
		clear(p)
		p[1] = 8
		p[2] = 0x10 // CRH: RESERVE/RELEASE handled as SPC-4 5.9.1 says
		p[3] = 0x80 // TMV: the type mask is valid
		// SPC-4 6.14.4 PERSISTENT RESERVATION TYPE MASK: every type.
		p[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02 // WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX
		p[5] = 0x01                             // EX_AC_AR
	case cdb.PRInReadFullStatus:
		for _, r := range s.regs {
			tid := r.nexus.id.TransportID
			var d [24]byte
			binary.BigEndian.PutUint64(d[:], r.key)
			if s.holds(r.nexus) {
				d[12] = 0x01 // R_HOLDER
				d[13] = byte(s.typ)
			}
			binary.BigEndian.PutUint16(d[18:], r.nexus.id.RelativePort)
			binary.BigEndian.PutUint32(d[20:], uint32(len(tid)))
			p = append(p, d[:]...)
			p = append(p, tid...)
		}
		binary.BigEndian.PutUint32(p[4:], uint32(len(p)-8))
	}
	return l.dataIn(t, p)
}

// prOut runs PERSISTENT RESERVE OUT (SPC-4 6.15) on its parameter list.
func (l *LUN) prOut(t *Task, p []byte) Progress {
	c := &t.Cmd
	if uint32(len(p)) != c.ParameterListLength {
		t.fail(cdb.ErrParameterListLength)
		return l.done(t)
	}
	params, err := cdb.ParsePROutParameters(c.ServiceAction, p)
	if err != nil {
		t.fail(err)
		return l.done(t)
	}
	switch {
	case params.APTPL:
		// PTPL_C is 0: persisting through power loss is not supported.
		t.fail(newFieldError(20, 0, false))
		return l.done(t)
	case params.SpecIPT:
		// SIP_C is 0.
		t.fail(newFieldError(20, 3, false))
		return l.done(t)
	case params.AllTgPt:
		// ATP_C is 0.
		t.fail(newFieldError(20, 2, false))
		return l.done(t)
	}
	n := t.Nexus
	s := &l.pr
	i := s.find(n)
	switch c.ServiceAction {
	case cdb.PROutRegister, cdb.PROutRegisterAndIgnore:
		return l.prRegister(t, i, params, c.ServiceAction == cdb.PROutRegisterAndIgnore)
	case cdb.PROutReplaceLost:
		t.fail(newFieldError(1, 4, true))
		return l.done(t)
	}
	// Every other action needs a registered nexus with its key (5.9.7).
	if i < 0 || s.regs[i].key != params.ReservationKey {
		t.conflict()
		return l.done(t)
	}
	switch c.ServiceAction {
	case cdb.PROutReserve:
		return l.prReserve(t, c.PRType)
	case cdb.PROutRelease:
		return l.prRelease(t, c.PRType)
	case cdb.PROutClear:
		for _, r := range s.regs {
			if r.nexus != n {
				r.nexus.ua[l.id].add(uaReservationsPreempted)
			}
		}
		s.regs = s.regs[:0]
		s.typ, s.holder = 0, nil
		s.generation++
		t.good(0)
		return l.done(t)
	case cdb.PROutPreempt, cdb.PROutPreemptAndAbort:
		return l.prPreempt(t, c.PRType, params.ServiceActionKey)
	case cdb.PROutRegisterAndMove:
		return l.prRegisterAndMove(t, c.PRType, params)
	}
	t.fail(newFieldError(1, 4, true))
	return l.done(t)
}

// prRegister is REGISTER and REGISTER AND IGNORE EXISTING KEY (SPC-4 5.9.7).
func (l *LUN) prRegister(t *Task, i int, params cdb.PROutParameters, ignore bool) Progress {
	s := &l.pr
	n := t.Nexus
	if i < 0 {
		if !ignore && params.ReservationKey != 0 {
			t.conflict()
			return l.done(t)
		}
		if params.ServiceActionKey != 0 {
			if len(s.regs) >= registrationsMax {
				t.checkCondition(senseOf(cdb.KeyIllegalRequest, cdb.ASCInsufficientResources))
				return l.done(t)
			}
			s.regs = append(s.regs, registration{nexus: n, key: params.ServiceActionKey})
		}
		s.generation++
		t.good(0)
		return l.done(t)
	}
	if !ignore && s.regs[i].key != params.ReservationKey {
		t.conflict()
		return l.done(t)
	}
	if params.ServiceActionKey != 0 {
		s.regs[i].key = params.ServiceActionKey
		s.generation++
		t.good(0)
		return l.done(t)
	}
	l.unregister(i)
	s.generation++
	t.good(0)
	return l.done(t)
}

// unregister removes registration i and what it held (SPC-4 5.9.11.2).
func (l *LUN) unregister(i int) {
	s := &l.pr
	n := s.regs[i].nexus
	wasHolder := s.holds(n)
	s.regs = append(s.regs[:i], s.regs[i+1:]...)
	if !wasHolder {
		return
	}
	if allRegistrants(s.typ) && len(s.regs) > 0 {
		return // the others still hold it
	}
	typ := s.typ
	s.typ, s.holder = 0, nil
	if registrantsOnly(typ) {
		for _, r := range s.regs {
			r.nexus.ua[l.id].add(uaReservationsReleased)
		}
	}
}

// prReserve is RESERVE (SPC-4 5.9.9).
func (l *LUN) prReserve(t *Task, typ cdb.PRType) Progress {
	s := &l.pr
	n := t.Nexus
	switch {
	case s.typ == 0:
		s.typ, s.holder = typ, n
	case !s.holds(n) || s.typ != typ:
		t.conflict()
		return l.done(t)
	}
	t.good(0)
	return l.done(t)
}

// prRelease is RELEASE (SPC-4 5.9.11.2).
func (l *LUN) prRelease(t *Task, typ cdb.PRType) Progress {
	s := &l.pr
	n := t.Nexus
	if s.typ == 0 || !s.holds(n) {
		t.good(0)
		return l.done(t)
	}
	if s.typ != typ {
		t.checkCondition(senseOf(cdb.KeyIllegalRequest, ascInvalidReleaseOfPR))
		return l.done(t)
	}
	old := s.typ
	s.typ, s.holder = 0, nil
	if registrantsOnly(old) || allRegistrants(old) {
		for _, r := range s.regs {
			if r.nexus != n {
				r.nexus.ua[l.id].add(uaReservationsReleased)
			}
		}
	}
	t.good(0)
	return l.done(t)
}

// prPreempt is PREEMPT and PREEMPT AND ABORT (SPC-4 5.9.11.4). Tasks of
// the preempted nexuses are the transport's to abort; on the RAM and file
// back ends they finish in microseconds anyway.
func (l *LUN) prPreempt(t *Task, typ cdb.PRType, sark uint64) Progress {
	s := &l.pr
	n := t.Nexus
	holderKey := uint64(0)
	if s.typ != 0 && !allRegistrants(s.typ) {
		holderKey = s.regs[s.find(s.holder)].key
	}
	switch {
	case s.typ != 0 && allRegistrants(s.typ) && sark == 0:
		// Preempt every other registrant, take the reservation.
		l.removeRegistrations(n, func(r registration) bool { return r.nexus != n })
		s.typ, s.holder = typ, n
	case s.typ != 0 && !allRegistrants(s.typ) && sark == holderKey:
		l.removeRegistrations(n, func(r registration) bool { return r.key == sark && r.nexus != n })
		s.typ, s.holder = typ, n
	default:
		if sark == 0 {
			t.fail(newFieldError(8, -1, false))
			return l.done(t)
		}
		if l.removeRegistrations(n, func(r registration) bool { return r.key == sark }) == 0 {
			t.conflict()
			return l.done(t)
		}
	}
	s.generation++
	t.good(0)
	return l.done(t)
}

// removeRegistrations drops those match picks, with REGISTRATIONS
// PREEMPTED to each; it returns how many went.
func (l *LUN) removeRegistrations(by *Nexus, match func(registration) bool) int {
	s := &l.pr
	kept := s.regs[:0]
	removed := 0
	for _, r := range s.regs {
		if match(r) {
			removed++
			if r.nexus != by {
				r.nexus.ua[l.id].add(uaRegistrationsPreempted)
			}
			if s.holder == r.nexus {
				s.typ, s.holder = 0, nil
			}
			continue
		}
		kept = append(kept, r)
	}
	clear(s.regs[len(kept):])
	s.regs = kept
	return removed
}

// prRegisterAndMove is REGISTER AND MOVE (SPC-4 5.9.8): register the nexus
// named by the TransportID on the given relative port and hand it the
// reservation.
func (l *LUN) prRegisterAndMove(t *Task, typ cdb.PRType, params cdb.PROutParameters) Progress {
	s := &l.pr
	n := t.Nexus
	if !s.holds(n) || allRegistrants(s.typ) {
		t.conflict()
		return l.done(t)
	}
	if params.ServiceActionKey == 0 {
		t.fail(newFieldError(8, -1, false))
		return l.done(t)
	}
	tid, _, err := cdb.NextTransportID(params.TransportIDs, cdb.PROutBasicSize)
	if err != nil {
		t.fail(err)
		return l.done(t)
	}
	name, isid, ok := tid.ISCSIName()
	if !ok || isid == "" {
		t.fail(newFieldError(cdb.PROutBasicSize, -1, false))
		return l.done(t)
	}
	var dest *Nexus
	for _, o := range l.dev.nexuses {
		if o.id.RelativePort == params.RelativeTargetPort &&
			strings.EqualFold(o.id.InitiatorPort, name+",i,0x"+isid) {
			dest = o
			break
		}
	}
	if dest == nil {
		t.fail(newFieldError(cdb.PROutBasicSize, -1, false))
		return l.done(t)
	}
	if dest == n {
		t.fail(newFieldError(cdb.PROutBasicSize, -1, false))
		return l.done(t)
	}
	if j := s.find(dest); j >= 0 {
		s.regs[j].key = params.ServiceActionKey
	} else {
		s.regs = append(s.regs, registration{nexus: dest, key: params.ServiceActionKey})
	}
	s.typ, s.holder = typ, dest
	if params.Unreg {
		if i := s.find(n); i >= 0 {
			s.regs = append(s.regs[:i], s.regs[i+1:]...)
		}
	}
	s.generation++
	t.good(0)
	return l.done(t)
}
