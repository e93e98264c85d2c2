package scsi

import (
	"encoding/binary"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
)

// Mode pages served (SPC-4 7.5, SBC-3 6.5).
const (
	pageCaching    = 0x08
	pageControl    = 0x0a
	pageInfoExcept = 0x1c
	pageAll        = 0x3f
	subpageAll     = 0xff
)

// Page control values of MODE SENSE (SPC-4 6.11).
const (
	pcCurrent    = 0
	pcChangeable = 1
	pcDefault    = 2
	pcSaved      = 3
)

// modeState is the current value of each changeable mode parameter.
type modeState struct {
	wce    bool // Caching: write cache enable
	dSense bool // Control: descriptor-format sense
	swp    bool // Control: software write protect
}

func defaultMode(cfg Config) modeState { return modeState{wce: !cfg.WriteCacheOff} }

// modePage appends page code's page (pc: current, changeable or default).
func (l *LUN) modePage(p []byte, code uint8, pc uint8) []byte {
	m := l.mode
	if pc == pcDefault {
		m = defaultMode(l.cfg)
	}
	switch code {
	case pageCaching: // SBC-3 6.5.5: 20 bytes
		b := [20]byte{0: pageCaching, 1: 0x12}
		if pc == pcChangeable {
			b[2] = 0x04
		} else if m.wce {
			b[2] = 0x04 // WCE
		}
		return append(p, b[:]...)
	case pageControl: // SPC-4 7.5.8: 12 bytes
		b := [12]byte{0: pageControl, 1: 0x0a}
		if pc == pcChangeable {
			b[2] = 0x04 // D_SENSE
			b[4] = 0x08 // SWP
			return append(p, b[:]...)
		}
		b[2] = 0x02             // GLTSD: log parameters are not saved
		b[3] = 0x10             // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
		b[8], b[9] = 0xff, 0xff // BUSY TIMEOUT PERIOD: unlimited
		if m.dSense {
			b[2] |= 0x04
		}
		if m.swp {
			b[4] |= 0x08
		}
		return append(p, b[:]...)
	case pageInfoExcept: // SPC-4 7.5.12: 12 bytes, exceptions disabled
		b := [12]byte{0: pageInfoExcept, 1: 0x0a}
		if pc != pcChangeable {
			b[2] = 0x08 // DEXCPT
		}
		return append(p, b[:]...)
	}
	return p
}

// modeSense answers MODE SENSE(6) and (10) (SPC-4 6.11, 6.12).
func (l *LUN) modeSense(t *Task) Progress {
	c := &t.Cmd
	ten := c.Opcode == cdb.OpModeSense10
	if c.PageControl == pcSaved {
		t.checkCondition(senseOf(cdb.KeyIllegalRequest, cdb.ASCSavingParametersNotSupported))
		return l.done(t)
	}
	hdr := 4
	if ten {
		hdr = 8
	}
	p := l.dev.param[:hdr]
	clear(p)
	if !l.writable || l.mode.swp {
		p[hdrDeviceSpecific(ten)] = 0x80 // WP
	}
	p[hdrDeviceSpecific(ten)] |= 0x10 // DPOFUA
	if !c.Has(cdb.FlagDBD) {
		p = l.blockDescriptor(p, ten && c.Has(cdb.FlagLLBAA))
	}
	bdLen := len(p) - hdr
	switch {
	case c.SubpageCode != 0 && c.SubpageCode != subpageAll:
		t.fail(newFieldError(3, -1, true))
		return l.done(t)
	case c.PageCode == pageAll:
		for _, code := range []uint8{pageCaching, pageControl, pageInfoExcept} {
			p = l.modePage(p, code, c.PageControl)
		}
	case c.PageCode == pageCaching || c.PageCode == pageControl || c.PageCode == pageInfoExcept:
		if c.SubpageCode == subpageAll {
			t.fail(newFieldError(3, -1, true))
			return l.done(t)
		}
		p = l.modePage(p, c.PageCode, c.PageControl)
	default:
		t.fail(newFieldError(2, 5, true))
		return l.done(t)
	}
	if ten {
		binary.BigEndian.PutUint16(p, uint16(len(p)-2))
		binary.BigEndian.PutUint16(p[6:], uint16(bdLen))
		if bdLen == 16 {
			p[4] = 0x01 // LONGLBA
		}
	} else {
		p[0] = byte(len(p) - 1)
		p[3] = byte(bdLen)
	}
	return l.dataIn(t, p)
}

func hdrDeviceSpecific(ten bool) int {
	if ten {
		return 3
	}
	return 2
}

// blockDescriptor appends the short (8-byte) or long (16-byte) block
// descriptor (SPC-4 7.5.5; SBC-3 6.5.2).
func (l *LUN) blockDescriptor(p []byte, long bool) []byte {
	if long {
		var d [16]byte
		binary.BigEndian.PutUint64(d[0:], l.blocks)
		binary.BigEndian.PutUint32(d[12:], l.blockSize)
		return append(p, d[:]...)
	}
	var d [8]byte
	n := l.blocks
	if n > 0xffffffff {
		n = 0xffffffff
	}
	binary.BigEndian.PutUint32(d[0:], uint32(n))
	d[5], d[6], d[7] = byte(l.blockSize>>16), byte(l.blockSize>>8), byte(l.blockSize)
	return append(p, d[:]...)
}

// modeSelect applies a MODE SELECT parameter list (SPC-4 6.9, 6.10): only
// changeable bits may differ from the current values; every page is
// checked before any is applied.
func (l *LUN) modeSelect(t *Task, p []byte) Progress {
	c := &t.Cmd
	ten := c.Opcode == cdb.OpModeSelect10
	if c.Has(cdb.FlagSP) {
		// SPC-4 6.9: saving pages is not supported.
		t.checkCondition(senseOf(cdb.KeyIllegalRequest, cdb.ASCSavingParametersNotSupported))
		return l.done(t)
	}
	if len(p) == 0 {
		t.good(0)
		return l.done(t)
	}
	if !c.Has(cdb.FlagPF) {
		t.fail(newFieldError(1, 4, true))
		return l.done(t)
	}
	hdr, bdLen := 4, 0
	if ten {
		hdr = 8
	}
	if len(p) < hdr {
		t.fail(cdb.ErrParameterListLength)
		return l.done(t)
	}
	if ten {
		bdLen = int(binary.BigEndian.Uint16(p[6:]))
	} else {
		bdLen = int(p[3])
	}
	if hdr+bdLen > len(p) {
		t.fail(cdb.ErrParameterListLength)
		return l.done(t)
	}
	if err := l.checkBlockDescriptors(p[hdr:hdr+bdLen], hdr, ten && p[4]&0x01 != 0); err != nil {
		t.fail(err)
		return l.done(t)
	}
	next := l.mode
	for off := hdr + bdLen; off < len(p); {
		if err := l.selectPage(p, off, &next); err != nil {
			t.fail(err)
			return l.done(t)
		}
		off += 2 + int(p[off+1])
	}
	if next != l.mode {
		l.mode = next
		for _, n := range l.dev.nexuses {
			if n != t.Nexus {
				n.ua[l.id].add(uaModeParametersChanged) // SPC-4 5.14 table 48
			}
		}
	}
	t.good(0)
	return l.done(t)
}

// checkBlockDescriptors accepts descriptors that repeat the current block
// length (a number of blocks of 0 means "unchanged"); changing the format
// is not supported.
func (l *LUN) checkBlockDescriptors(d []byte, off int, long bool) error {
	size := 8
	if long {
		size = 16
	}
	if len(d)%size != 0 {
		return cdb.ErrParameterListLength
	}
	for i := 0; i < len(d); i += size {
		var bl uint32
		if long {
			bl = binary.BigEndian.Uint32(d[i+12:])
		} else {
			bl = uint32(d[i+5])<<16 | uint32(d[i+6])<<8 | uint32(d[i+7])
		}
		if bl != l.blockSize {
			return newFieldError(off+i+size-3, -1, false)
		}
	}
	return nil
}

// selectPage checks the page at p[off:] against the changeable mask and
// records its values in next.
func (l *LUN) selectPage(p []byte, off int, next *modeState) error {
	if off+2 > len(p) {
		return cdb.ErrParameterListLength
	}
	code := p[off] & 0x3f
	if p[off]&0x40 != 0 { // SPF: no subpages here
		return newFieldError(off, 6, false)
	}
	n := int(p[off+1])
	if off+2+n > len(p) {
		return cdb.ErrParameterListLength
	}
	cur := l.modePage(nil, code, pcCurrent)
	if cur == nil {
		return newFieldError(off, 5, false)
	}
	if n != len(cur)-2 {
		return newFieldError(off+1, -1, false)
	}
	mask := l.modePage(nil, code, pcChangeable)
	got := p[off : off+2+n]
	for i := 2; i < len(cur); i++ {
		if (got[i]^cur[i])&^mask[i] != 0 {
			return newFieldError(off+i, -1, false)
		}
	}
	switch code {
	case pageCaching:
		next.wce = got[2]&0x04 != 0
	case pageControl:
		next.dSense = got[2]&0x04 != 0
		next.swp = got[4]&0x08 != 0
	}
	return nil
}
