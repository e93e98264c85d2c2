package pdu

import (
	"testing"
)

// FuzzBHS checks that no header makes Check, CheckAHS or the accessors panic, and that an
// accepted header obeys the rules Check claims to enforce. Seeds: testdata/fuzz/FuzzBHS.
func FuzzBHS(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < BHSSize {
			return
		}
		h := BHSOf(b)
		ahs := b[BHSSize:]
		if n := h.AHSSize(); n < len(ahs) {
			ahs = ahs[:n]
		}
		_ = CheckAHS(ahs)
		_, _ = ExtendedCDB(ahs)
		_, _ = BidiReadDataLength(ahs)
		for _, role := range []Role{RoleTarget, RoleInitiator} {
			err := h.Check(role, checkLimits)
			if err != nil {
				if fe, ok := err.(*FieldError); !ok || fe.Offset < 0 || fe.Offset >= BHSSize {
					t.Fatalf("Check error %v: not a FieldError inside the BHS", err)
				}
				continue
			}
			op := h.Opcode()
			if !op.Defined() || op.FromTarget() != (role == RoleInitiator) {
				t.Fatalf("accepted opcode %s for role %d", op, role)
			}
			if h.DataSegmentLength() > checkLimits.MaxRecvDataSegmentLength {
				t.Fatalf("accepted DSL %d", h.DataSegmentLength())
			}
			if h.TotalAHSLength() != 0 && op != OpSCSICommand {
				t.Fatalf("accepted AHS on %s", op)
			}
		}
	})
}

// FuzzFramer feeds an arbitrary byte stream in chunks of chunk+1 bytes, with digests
// chosen by mode, landing or discarding some data segments. It must never panic, and
// every PDU it returns must have exactly DataSegmentLength bytes of data.
// Seeds: testdata/fuzz/FuzzFramer.
func FuzzFramer(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8, mode uint8) {
		fr := NewFramer(FramerConfig{DataSegmentSizeMax: 4096})
		fr.SetDigests(mode&1 != 0, mode&2 != 0)
		pos := 0
		for steps := 0; steps < 4*len(stream)+16; steps++ {
			ev, err := fr.Next()
			if err != nil && (err.(*FieldError)).Fatal() {
				return
			}
			switch ev {
			case EventNeedMore:
				if pos == len(stream) {
					return
				}
				space := fr.Space()
				n := min(len(space), len(stream)-pos, int(chunk)+1)
				copy(space, stream[pos:pos+n])
				fr.Commit(n)
				pos += n
			case EventHeader:
				dsl := fr.Header().DataSegmentLength()
				switch {
				case dsl > 4096 && dsl <= 1<<16 && mode&4 != 0:
					fr.LandData(make([]byte, dsl))
				case dsl > 4096 || mode&8 != 0:
					fr.Discard()
				}
			case EventPDU:
				if got, want := len(fr.Data()), int(fr.Header().DataSegmentLength()); got != want {
					t.Fatalf("PDU data %d bytes, DSL %d", got, want)
				}
			}
		}
		t.Fatalf("framer made no progress over %d bytes", len(stream))
	})
}
