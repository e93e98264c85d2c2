package scsi

import (
	"encoding/binary"

	"github.com/sluice-storage/sluice/protocols/scsi/cdb"
)

// VPD page codes served (SPC-4 7.8, SBC-3 6.6).
const (
	vpdSupported        = 0x00
	vpdSerial           = 0x80
	vpdDeviceID         = 0x83
	vpdBlockLimits      = 0xb0
	vpdCharacteristics  = 0xb1
	vpdProvisioning     = 0xb2
	vpdBlockLimitsSize  = 0x3c // page length after the 4-byte header
	vpdCharacteristicsN = 0x3c
)

// vpdPages lists the pages in ascending order, as page 00h reports them.
var vpdPages = []byte{vpdSupported, vpdSerial, vpdDeviceID, vpdBlockLimits, vpdCharacteristics, vpdProvisioning}

// Version descriptors (SPC-4 Table 29): SAM-5, iSCSI, SPC-4, SBC-3.
var versionDescriptors = []uint16{0x00a0, 0x0960, 0x0460, 0x04c0}

// inquiry answers INQUIRY (SPC-4 6.6): standard data or a VPD page.
func (l *LUN) inquiry(t *Task) Progress {
	c := &t.Cmd
	if !c.Has(cdb.FlagEVPD) {
		return l.dataIn(t, l.standardInquiry(l.dev.param[:0]))
	}
	p := l.dev.param[:4]
	clear(p)
	p[1] = c.PageCode
	switch c.PageCode {
	case vpdSupported:
		p = append(p, vpdPages...)
	case vpdSerial:
		p = append(p, l.cfg.Serial...)
	case vpdDeviceID:
		p = l.deviceIdentification(p, t.Nexus)
	case vpdBlockLimits:
		p = l.blockLimits(p)
	case vpdCharacteristics:
		p = append(p, make([]byte, vpdCharacteristicsN)...)
		p[5] = 1 // MEDIUM ROTATION RATE 0001h: a non-rotating medium
	case vpdProvisioning:
		p = l.provisioningPage(p)
	default:
		t.fail(cdbFieldError(2))
		return l.done(t)
	}
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)-4))
	return l.dataIn(t, p)
}

// standardInquiry appends the standard INQUIRY data (SPC-4 6.6.2): 96 bytes
// with the version descriptors.
func (l *LUN) standardInquiry(p []byte) []byte {
	p = append(p, make([]byte, 96)...)
	p[0] = 0x00 // PERIPHERAL QUALIFIER 000b, DIRECT ACCESS BLOCK DEVICE
	if l.cfg.Removable {
		p[1] = 0x80
	}
	p[2] = 0x06        // VERSION: SPC-4
	p[3] = 0x10 | 0x02 // HISUP, RESPONSE DATA FORMAT 2
	p[4] = byte(len(p) - 5)
	p[5] = 0x00 // TPGS 00b: no ALUA
	p[7] = 0x02 // CMDQUE
	copy(p[8:16], pad(l.cfg.Vendor, 8))
	copy(p[16:32], pad(l.cfg.Product, 16))
	copy(p[32:36], pad(l.cfg.Revision, 4))
	for i, v := range versionDescriptors {
		binary.BigEndian.PutUint16(p[58+2*i:], v)
	}
	return p
}

// pad returns s padded with spaces to n bytes (SPC-4 4.4.1).
func pad(s string, n int) []byte {
	var b [32]byte
	copy(b[:n], s)
	for i := len(s); i < n; i++ {
		b[i] = ' '
	}
	return b[:n]
}

// deviceIdentification appends the designators of VPD 83h (SPC-4 7.8.6):
// the LU's NAA and T10 vendor ID designators, then the target port's
// relative port and SCSI name string, then the target device's name.
func (l *LUN) deviceIdentification(p []byte, n *Nexus) []byte {
	// NAA, binary, associated with the LU.
	p = append(p, 0x01, 0x03, 0, 16)
	p = append(p, l.naa[:]...)
	// T10 vendor identification, ASCII: vendor then the serial number.
	p = append(p, 0x02, 0x01, 0, byte(8+len(l.cfg.Serial)))
	p = append(p, pad(l.cfg.Vendor, 8)...)
	p = append(p, l.cfg.Serial...)
	if n == nil {
		return p
	}
	id := n.id
	const piv = 0x80
	proto := byte(cdb.ProtocolISCSI << 4)
	// Relative target port identifier, associated with the target port.
	p = append(p, proto|0x01, piv|0x10|0x04, 0, 4, 0, 0, byte(id.RelativePort>>8), byte(id.RelativePort))
	// SCSI name string of the target port (UTF-8, NUL-terminated, 4-byte padded).
	p = appendNameDesignator(p, proto, piv|0x10, id.TargetPort)
	// SCSI name string of the target device.
	if name := l.dev.name; name != "" {
		p = appendNameDesignator(p, proto, piv|0x20, name)
	}
	return p
}

func appendNameDesignator(p []byte, proto, assoc byte, name string) []byte {
	n := len(name) + 1
	n += -n & 3
	if n > 252 {
		n = 252
		name = name[:251]
	}
	p = append(p, proto|0x03, assoc|0x08, 0, byte(n))
	start := len(p)
	p = append(p, make([]byte, n)...)
	copy(p[start:], name)
	return p
}

// blockLimits appends the Block Limits page body (SBC-3 6.6.4).
func (l *LUN) blockLimits(p []byte) []byte {
	start := len(p)
	p = append(p, make([]byte, vpdBlockLimitsSize)...)
	b := p[start-4:]
	b[5] = byte(l.cawBlocksMax()) // MAXIMUM COMPARE AND WRITE LENGTH
	binary.BigEndian.PutUint16(b[6:], 1)
	binary.BigEndian.PutUint32(b[8:], l.transferBlocksMax())  // MAXIMUM TRANSFER LENGTH
	binary.BigEndian.PutUint32(b[12:], l.transferBlocksMax()) // OPTIMAL TRANSFER LENGTH
	binary.BigEndian.PutUint32(b[16:], l.transferBlocksMax()) // MAXIMUM PREFETCH LENGTH
	if l.cfg.Thin {
		binary.BigEndian.PutUint32(b[20:], unmapBlocksMax)
		binary.BigEndian.PutUint32(b[24:], unmapDescriptorsMax)
		binary.BigEndian.PutUint32(b[28:], 1)          // OPTIMAL UNMAP GRANULARITY
		binary.BigEndian.PutUint32(b[32:], 0x80000000) // UGAVALID, alignment 0
	}
	binary.BigEndian.PutUint64(b[36:], writeSameBlocksMax)
	binary.BigEndian.PutUint32(b[44:], l.transferBlocksMax()) // MAXIMUM ATOMIC TRANSFER LENGTH (SBC-4)
	binary.BigEndian.PutUint32(b[48:], 1)                     // ATOMIC ALIGNMENT
	binary.BigEndian.PutUint32(b[52:], 1)                     // ATOMIC TRANSFER LENGTH GRANULARITY
	return p
}

// provisioningPage appends the Logical Block Provisioning page body
// (SBC-3 6.6.5): UNMAP and both WRITE SAMEs unmap on a thin LUN.
func (l *LUN) provisioningPage(p []byte) []byte {
	p = append(p, 0, 0, 0, 0)
	b := p[len(p)-4:]
	if l.cfg.Thin {
		b[1] = 0x80 | 0x40 | 0x20 // LBPU, LBPWS, LBPWS10
		if l.lbprz {
			b[1] |= 0x04 // LBPRZ
		}
		b[2] = 0x02 // PROVISIONING TYPE: thin
	}
	return p
}

// transferBlocksMax is the MAXIMUM TRANSFER LENGTH in blocks.
func (l *LUN) transferBlocksMax() uint32 { return uint32(TransferSizeMax) >> l.blockShift }

// cawBlocksMax is the MAXIMUM COMPARE AND WRITE LENGTH: both halves of the
// data-out in one segment (the layer's compare bounce buffer is one large
// pool buffer), and no more than the one-byte field holds.
func (l *LUN) cawBlocksMax() uint32 { return min(255, uint32(segSize/2)>>l.blockShift) }

// readCapacity10 answers READ CAPACITY(10) (SBC-3 5.14).
func (l *LUN) readCapacity10(t *Task) Progress {
	p := l.dev.param[:8]
	last := l.blocks - 1
	if last > 0xffffffff {
		last = 0xffffffff // SBC-3: the client must use READ CAPACITY(16)
	}
	binary.BigEndian.PutUint32(p, uint32(last))
	binary.BigEndian.PutUint32(p[4:], l.blockSize)
	return l.dataIn(t, p)
}

// readCapacity16 answers READ CAPACITY(16) (SBC-3 5.15).
func (l *LUN) readCapacity16(t *Task) Progress {
	p := l.dev.param[:32]
	clear(p)
	binary.BigEndian.PutUint64(p, l.blocks-1)
	binary.BigEndian.PutUint32(p[8:], l.blockSize)
	if l.cfg.Thin {
		p[14] = 0x80 // LBPME
		if l.lbprz {
			p[14] |= 0x40 // LBPRZ
		}
	}
	return l.dataIn(t, p)
}

// requestSense answers REQUEST SENSE (SPC-4 6.29): a pending unit attention
// (cleared by the report, S6), else NO SENSE, or NOT READY when stopped.
func (l *LUN) requestSense(t *Task) Progress {
	s := senseOf(cdb.KeyNoSense, cdb.ASCNoAdditionalSense)
	if u, ok := t.Nexus.ua[l.id].take(); ok {
		s = senseOf(cdb.KeyUnitAttention, uaSense[u])
	} else if l.ejected {
		s = senseOf(cdb.KeyNotReady, cdb.ASCMediumNotPresent)
	} else if l.stopped {
		s = senseOf(cdb.KeyNotReady, cdb.ASCNotReadyInitializingRequired)
	}
	n := s.Put(l.dev.param[:cdb.DescriptorSenseSizeMax], t.Cmd.Has(cdb.FlagDesc))
	return l.dataIn(t, l.dev.param[:n])
}

// getLBAStatus answers GET LBA STATUS (SBC-3 5.19): runs of mapped and
// deallocated blocks from the starting LBA, as many as fit.
func (l *LUN) getLBAStatus(t *Task) Progress {
	c := &t.Cmd
	if c.LBA >= l.blocks {
		t.fail(cdb.ErrLBAOutOfRange)
		return l.done(t)
	}
	if c.AllocationLength < 24 {
		// Room for the header and one descriptor is what the command promises.
		t.good(0)
		return l.done(t)
	}
	p := l.dev.param[:8]
	clear(p)
	room := (min(int(c.AllocationLength), paramSizeMax) - 8) / 16
	lba := c.LBA
	for i := 0; i < room && lba < l.blocks; i++ {
		n, dealloc := l.provisioningRun(lba)
		d := make16()
		binary.BigEndian.PutUint64(d[:], lba)
		binary.BigEndian.PutUint32(d[8:], uint32(n))
		if dealloc {
			d[12] = 1 // DEALLOCATED
		}
		p = append(p, d[:]...)
		lba += n
	}
	binary.BigEndian.PutUint32(p, uint32(len(p)-4))
	return l.dataIn(t, p)
}

func make16() (d [16]byte) { return }

// provisioningRun is the length (at most 2^32-1) of the run of blocks from
// lba that share its state, and whether they are deallocated.
func (l *LUN) provisioningRun(lba uint64) (uint64, bool) {
	limit := min(l.blocks-lba, 0xffffffff)
	if l.deallocated == nil {
		return limit, false
	}
	state := l.isDeallocated(lba)
	n := uint64(1)
	for n < limit && l.isDeallocated(lba+n) == state {
		n++
	}
	return n, state
}

func (l *LUN) isDeallocated(lba uint64) bool {
	return l.deallocated[lba/64]&(1<<(lba%64)) != 0
}

// setProvisioning marks [lba, lba+n) deallocated or mapped.
func (l *LUN) setProvisioning(lba, n uint64, dealloc bool) {
	if l.deallocated == nil {
		return
	}
	for b := lba; b < lba+n; {
		w := &l.deallocated[b/64]
		if b%64 == 0 && lba+n-b >= 64 {
			if dealloc {
				*w = ^uint64(0)
			} else {
				*w = 0
			}
			b += 64
			continue
		}
		if dealloc {
			*w |= 1 << (b % 64)
		} else {
			*w &^= 1 << (b % 64)
		}
		b++
	}
}
