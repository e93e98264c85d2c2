package nvme

import (
	"reflect"
	"testing"
	"unicode/utf8"
)

// Decoders of peer-supplied structures never panic and never read past their input (N6); what
// they accept, the builders reproduce.

func FuzzNSDescList(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var l NSDescList
		copy(l[:], b)
		descs, err := l.Descriptors()
		if err != nil {
			return
		}
		var again NSDescList
		if err := again.Set(descs...); err != nil {
			t.Fatalf("parsed descriptors %+v do not rebuild: %v", descs, err)
		}
		back, err := again.Descriptors()
		if err != nil || !reflect.DeepEqual(back, descs) {
			t.Fatalf("round trip: %+v -> %+v, %v", descs, back, err)
		}
	})
}

func FuzzDiscoveryLog(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		genctr, entries, err := ParseDiscoveryLog(b)
		if err != nil {
			return
		}
		if uint64(len(entries)) != (*DiscoveryLogHeader)(b[:DiscoveryLogHeaderSize]).NUMREC() {
			t.Fatalf("accepted %d entries, NUMREC says otherwise", len(entries))
		}
		page := make([]byte, DiscoveryLogSize(len(entries)))
		if _, err := BuildDiscoveryLog(page, genctr, entries); err != nil {
			return // a peer's ASCII field may hold bytes we would never send
		}
		g2, e2, err := ParseDiscoveryLog(page)
		if err != nil || g2 != genctr || !reflect.DeepEqual(e2, entries) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzValidateNQN(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateNQN(s) != nil {
			return
		}
		if len(s) > NQNSizeMax || !utf8.ValidString(s) {
			t.Fatalf("accepted %q", s)
		}
		var d ConnectData
		if err := d.SetHostNQN(s); err != nil {
			t.Fatalf("valid NQN %q does not fit Connect data: %v", s, err)
		}
		if got, err := d.HostNQN(); err != nil || got != s {
			t.Fatalf("round trip %q -> %q, %v", s, got, err)
		}
	})
}
