package login

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		want   string // pairs as k=v joined by "|"
		kind   KeyErrorKind
		offset int
	}{
		{"two pairs", "A=1\x00B=two\x00", "A=1|B=two", 0, 0},
		{"empty value", "HeaderDigest=\x00", "HeaderDigest=", 0, 0},
		{"value holds =", "X-a=b=c\x00", "X-a=b=c", 0, 0},
		{"all key characters", "Ab9.-+@_z=v\x00", "Ab9.-+@_z=v", 0, 0},
		{"utf-8 alias", "InitiatorAlias=höst\x00", "InitiatorAlias=höst", 0, 0},
		{"trailing NULs", "A=1\x00\x00\x00", "A=1", 0, 0},
		{"empty text", "", "", 0, 0},
		{"no equals", "A=1\x00B\x00", "", KeyNoEquals, 4},
		{"empty key", "=v\x00", "", KeyEmpty, 0},
		{"empty entry between pairs", "A=1\x00\x00B=2\x00", "", KeyEmpty, 4},
		{"lowercase start", "a=1\x00", "", KeyBadChar, 0},
		{"digit start", "1A=1\x00", "", KeyBadChar, 0},
		{"space in key", "A B=1\x00", "", KeyBadChar, 0},
		{"key 64 bytes", strings.Repeat("K", 64) + "=1\x00", "", KeyTooLong, 0},
		{"unterminated", "A=1\x00B=2", "", KeyUnterminated, 4},
		{"duplicate", "A=1\x00B=2\x00A=1\x00", "", KeyDuplicate, 8},
		{"simple value 256", "TargetName=" + strings.Repeat("v", 256) + "\x00", "", KeyValueTooLong, 11},
		{"not utf-8", "X-a=\xc3\x28\x00", "", KeyValueNotUTF8, 4},
		{"rfc 7144 key", "iSCSIProtocolLevel=1\x00", "iSCSIProtocolLevel=1", 0, 0},
	}
	for _, tc := range tests {
		pairs, err := ParseKeys([]byte(tc.text))
		if tc.kind != 0 {
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Kind != tc.kind || ke.Offset != tc.offset {
				t.Errorf("%s: ParseKeys = %v, want %s at %d", tc.name, err, tc.kind, tc.offset)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, p := range pairs {
			got = append(got, p.Key+"="+p.Value)
		}
		if strings.Join(got, "|") != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, strings.Join(got, "|"), tc.want)
		}
	}
}

func TestValueSizes(t *testing.T) {
	// CHAP_C/CHAP_R carry up to 1024 bytes of binary, 2050 characters in hex.
	big := "0x" + strings.Repeat("ab", 1024)
	if _, err := ParseKeys([]byte("CHAP_C=" + big + "\x00")); err != nil {
		t.Fatalf("1024-byte challenge: %v", err)
	}
	if _, err := ParseKeys([]byte("CHAP_R=" + strings.Repeat("a", LargeValueSizeMax+1) + "\x00")); err == nil {
		t.Fatal("value over LargeValueSizeMax accepted")
	}
	var text []byte
	for i := range PairsMax + 1 {
		text = AppendPair(text, fmt.Sprintf("X-%d", i), "")
	}
	var ke *KeyError
	if _, err := ParseKeys(text); !errors.As(err, &ke) || ke.Kind != KeyTooMany {
		t.Fatalf("%d pairs: %v", PairsMax+1, err)
	}
}

func TestReassembler(t *testing.T) {
	var r Reassembler
	whole := []byte("InitiatorName=iqn.1994-05.com.redhat:init1\x00AuthMethod=None\x00")
	for split := 0; split <= len(whole); split++ {
		if text, err := r.Add(whole[:split], false); text != nil || err != nil {
			t.Fatalf("partial returned %q, %v", text, err)
		}
		if !r.Pending() && split > 0 {
			t.Fatal("not pending after a partial")
		}
		text, err := r.Add(whole[split:], true)
		if err != nil || !bytes.Equal(text, whole) {
			t.Fatalf("split %d: %q, %v", split, text, err)
		}
		if r.Pending() {
			t.Fatal("pending after the final PDU")
		}
	}
	chunk := make([]byte, 8192)
	for range TextSizeMax / len(chunk) {
		if _, err := r.Add(chunk, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Add([]byte{0}, true); err == nil {
		t.Fatalf("text over %d bytes accepted", TextSizeMax)
	}
	if r.Pending() {
		t.Fatal("overflow did not reset")
	}
}

func TestSplitText(t *testing.T) {
	text := bytes.Repeat([]byte("x"), 20)
	chunk, rest := SplitText(text, 8)
	if len(chunk) != 8 || len(rest) != 12 {
		t.Fatalf("%d/%d", len(chunk), len(rest))
	}
	if chunk, rest = SplitText(text, 20); len(chunk) != 20 || rest != nil {
		t.Fatal("exact fit split")
	}
}

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		s  string
		v  uint64
		ok bool
	}{
		{"0", 0, true}, {"8192", 8192, true}, {"0x2000", 8192, true}, {"0X2000", 8192, true},
		{"", 0, false}, {"0x", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"12a", 0, false},
		{"18446744073709551615", 1<<64 - 1, true}, {"18446744073709551616", 0, false},
	} {
		if v, ok := parseNumber(tc.s); v != tc.v || ok != tc.ok {
			t.Errorf("parseNumber(%q) = %d %v", tc.s, v, ok)
		}
	}
	for _, tc := range []struct {
		s    string
		want string
		ok   bool
	}{
		{"0x0102", "0102", true},
		{"0x102", "0102", true}, // odd digit count: implied leading zero (RFC 7143 §6.1)
		{"0XaB", "ab", true},
		{"0bAQI=", "0102", true},
		{"0BAQI", "0102", true}, // missing padding tolerated
		{"0x", "", false},
		{"0xzz", "", false},
		{"0b!!", "", false},
		{"1234", "", false},
	} {
		b, ok := decodeBinary(tc.s)
		if ok != tc.ok || ok && fmt.Sprintf("%x", b) != tc.want {
			t.Errorf("decodeBinary(%q) = %x %v", tc.s, b, ok)
		}
	}
	if _, ok := splitList("CRC32C,,None"); ok {
		t.Error("empty list item accepted")
	}
	if items, ok := splitList("CRC32C,None"); !ok || len(items) != 2 {
		t.Error("list split")
	}
	if _, ok := splitList("CRC32C,No ne"); ok {
		t.Error("space in a text-value accepted")
	}
	if _, ok := splitList("a.b-c+d@e_f/g[h]:i,0"); !ok {
		t.Error("text-value characters refused")
	}
}

func TestSendTargets(t *testing.T) {
	targets := []TargetRecord{
		{Name: "iqn.2024-01.io.sluice:disk1", Portals: []Portal{
			{Host: "192.0.2.10", Port: 3260, GroupTag: 1},
			{Host: "2001:db8::10", Port: 3260, GroupTag: 2},
		}},
		{Name: "iqn.2024-01.io.sluice:disk2", Portals: []Portal{{Host: "storage.example", Port: 3261, GroupTag: 1}}},
	}
	tests := []struct {
		name    string
		value   string
		session SessionType
		want    string
	}{
		{"all in discovery", "All", SessionDiscovery,
			"TargetName=iqn.2024-01.io.sluice:disk1|TargetAddress=192.0.2.10:3260,1|TargetAddress=[2001:db8::10]:3260,2|" +
				"TargetName=iqn.2024-01.io.sluice:disk2|TargetAddress=storage.example:3261,1"},
		{"one target by name", "IQN.2024-01.IO.SLUICE:DISK2", SessionDiscovery,
			"TargetName=iqn.2024-01.io.sluice:disk2|TargetAddress=storage.example:3261,1"},
		{"unknown target", "iqn.2024-01.io.sluice:nonesuch", SessionDiscovery, ""},
		{"session target", "", SessionNormal,
			"TargetName=iqn.2024-01.io.sluice:disk1|TargetAddress=192.0.2.10:3260,1|TargetAddress=[2001:db8::10]:3260,2"},
		{"all in a normal session", "All", SessionNormal, "SendTargets=Reject"},
		{"empty in discovery", "", SessionDiscovery, "SendTargets=Reject"},
	}
	for _, tc := range tests {
		out := AppendSendTargets(nil, tc.value, tc.session, "iqn.2024-01.io.sluice:disk1", targets)
		// TargetName and TargetAddress repeat in an answer (RFC 7143 Appendix C), so
		// split it by hand rather than with ParseKeys, which refuses repeats.
		var got []string
		if len(out) > 0 {
			if out[len(out)-1] != 0 {
				t.Fatalf("%s: unterminated %q", tc.name, out)
			}
			got = strings.Split(string(out[:len(out)-1]), "\x00")
		}
		if strings.Join(got, "|") != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, strings.Join(got, "|"), tc.want)
		}
	}
	out := AppendSendTargets([]byte("prefix\x00"), "All", SessionDiscovery, "", targets[:1])
	want := "prefix\x00TargetName=iqn.2024-01.io.sluice:disk1\x00TargetAddress=192.0.2.10:3260,1\x00TargetAddress=[2001:db8::10]:3260,2\x00"
	if string(out) != want {
		t.Fatalf("%q", out)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Limits: DefaultLimits(), CHAPAlgorithms: []CHAPAlgorithm{CHAPMD5}, Rand: &counter{}}
	if err := good.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := good
	bad.Rand = nil
	bad.CHAPAlgorithms = nil
	bad.Limits.MaxBurstLength = 100
	bad.DiscoveryAuth = Auth{Required: true, MutualRequired: true}
	err := bad.Validate()
	for _, want := range []string{"rand: nil", "chap_algorithms: empty", "limits.MaxBurstLength: 100",
		"authentication required but no CHAP secrets", "mutual CHAP required but no target secret"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	same := Target{Name: "iqn.2024-01.io.sluice:t", Auth: Auth{
		Initiators: []Secret{{Name: "a", Secret: []byte("same-secret")}},
		Target:     &Secret{Name: "t", Secret: []byte("same-secret")},
	}}
	if err := same.Validate(); err == nil || !strings.Contains(err.Error(), "one secret per direction") {
		t.Errorf("shared secret: %v", err)
	}
	if err := (&Target{Name: "disk1"}).Validate(); err == nil {
		t.Error("target name without a type prefix accepted")
	}
}

func TestTargetAddress(t *testing.T) {
	for _, tc := range []struct {
		p    Portal
		want string
	}{
		{Portal{"10.0.0.1", 3260, 1}, "10.0.0.1:3260,1"},
		{Portal{"fe80::1", 3260, 7}, "[fe80::1]:3260,7"},
		{Portal{"::ffff:10.0.0.1", 3260, 1}, "[::ffff:10.0.0.1]:3260,1"},
		{Portal{"[2001:db8::1]", 3260, 1}, "[2001:db8::1]:3260,1"},
		{Portal{"host.example", 860, 2}, "host.example:860,2"},
	} {
		if got := TargetAddress(tc.p); got != tc.want {
			t.Errorf("TargetAddress(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}
