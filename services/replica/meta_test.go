package replica

import (
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	m := &meta{seq: 7, flags: metaFlagActive, regionBlocks: 2048, capacity: 1 << 20, names: []string{"M0", "E_M1", "a-very-long-name-" + strings.Repeat("x", 47)},
		states: []uint8{persistInSync, persistStale, persistEmpty}, bitmap: []byte{1, 2, 3, 0, 0, 0, 0, 0x80}}
	buf := make([]byte, metaCopySize(uint64(len(m.bitmap)), 512))
	encodeMeta(buf, m)
	got, err := decodeMeta(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.seq != 7 || got.flags != metaFlagActive || got.regionBlocks != 2048 || got.capacity != 1<<20 || len(got.names) != 3 ||
		got.names[2] != m.names[2] || got.states[1] != persistStale || string(got.bitmap) != string(m.bitmap) {
		t.Fatalf("decoded %+v, want %+v", got, m)
	}
}

// TestMetaChecks: each broken field is named by its byte offset.
func TestMetaChecks(t *testing.T) {
	good := make([]byte, 1024)
	encodeMeta(good, &meta{seq: 1, regionBlocks: 8, capacity: 64, names: []string{"A"}, states: []uint8{persistInSync}, bitmap: []byte{0, 0, 0, 0, 0, 0, 0, 0}})
	for _, tc := range []struct {
		name  string
		at    int
		value byte
		want  string
	}{
		{"magic", offMagic, 'X', "magic"},
		{"version", offVersion, 9, "version"},
		{"payload", 900, 1, "checksum"},
		{"bitmap", metaHeaderSize + 3, 1, "checksum"},
		{"flags", offFlags, 2, "flags"},
	} {
		b := append([]byte(nil), good...)
		b[tc.at] = tc.value
		if tc.name == "flags" { // a well-formed copy with a flag this version does not know
			le.PutUint64(b[offChecksum:], metaChecksum(b))
		}
		if _, err := decodeMeta(b); !errors.Is(err, ErrMeta) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an ErrMeta naming %s", tc.name, err, tc.want)
		}
	}
}

// TestNewestMeta: the valid copy with the higher seq wins; a torn newer
// copy leaves the older one (M1).
func TestNewestMeta(t *testing.T) {
	mk := func(seq uint64) []byte {
		b := make([]byte, 1024)
		encodeMeta(b, &meta{seq: seq, regionBlocks: 8, capacity: 64, names: []string{"A"}, states: []uint8{persistInSync}})
		return b
	}
	a, b := mk(4), mk(5)
	if m, err := newestMeta(a, b); err != nil || m.seq != 5 {
		t.Fatalf("newest of 4 and 5: %+v, %v", m, err)
	}
	b[700] ^= 1 // torn
	if m, err := newestMeta(a, b); err != nil || m.seq != 4 {
		t.Fatalf("torn 5: %+v, %v, want 4", m, err)
	}
	a[10] ^= 1
	if _, err := newestMeta(a, b); !errors.Is(err, ErrMeta) {
		t.Fatalf("both broken: %v", err)
	}
}
