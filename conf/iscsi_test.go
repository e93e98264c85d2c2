package conf

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCHAPSecrets(t *testing.T) {
	tests := []struct {
		name, text string
		want       []CHAPSecret
		errs       []string
	}{
		{"one-way and mutual", "# comment\n\nalice  secret-of-alice\nbob secret-of-bob tgt secret-of-target\n",
			[]CHAPSecret{{User: "alice", Secret: "secret-of-alice"},
				{User: "bob", Secret: "secret-of-bob", MutualUser: "tgt", MutualSecret: "secret-of-target"}}, nil},
		{"problems", "alice short\nbob\ncarol same-secret-1 tgt same-secret-1\n", nil, []string{
			"chap.secrets:1: a secret of 5 bytes, want 12..255 bytes",
			"chap.secrets:2: 1 fields, want user secret, or user secret muser msecret",
			"chap.secrets:3: the same secret both ways, want a different secret for the target (RFC 7143 12.1.3)",
		}},
		{"empty", "# nothing\n", nil, []string{"chap.secrets: no secrets, want at least one line \"user secret\""}},
	}
	for _, tc := range tests {
		got, err := ParseCHAPSecrets("chap.secrets", []byte(tc.text))
		var errs []string
		if err != nil {
			errs = strings.Split(err.Error(), "\n")
		}
		if !slices.Equal(got, tc.want) || !slices.Equal(errs, tc.errs) {
			t.Errorf("%s: got %+v %q, want %+v %q", tc.name, got, errs, tc.want, tc.errs)
		}
		if err != nil && strings.Contains(err.Error(), "same-secret") {
			t.Errorf("%s: an error shows a secret: %v", tc.name, err)
		}
	}
}

// TestDefaultISCSI: the default topology serves Malloc0 as LUN 0 of one
// node on 127.0.0.1:3260.
func TestDefaultISCSI(t *testing.T) {
	s := Default().Targets.ISCSI
	if s == nil || len(s.Nodes) != 1 || len(s.PortalGroups) != 1 {
		t.Fatalf("default targets.iscsi: %+v", s)
	}
	n := s.Nodes[0]
	if s.PortalGroups[0].Portals[0] != "127.0.0.1:3260" || n.LUNs[0].Bdev != "Malloc0" || n.LUNs[0].LUN != 0 ||
		s.NodeBase+":"+n.Name != "iqn.2016-06.io.spdk:disk0" || n.Auth.CHAP != CHAPNone || n.QueueDepth != ISCSIQueueDepthDefault {
		t.Errorf("default node %+v in %+v", n, s)
	}
}

// TestISCSIRoundTrip: a Topology with an iSCSI target built in code
// validates, fills its defaults and reads back from Marshal unchanged (C3).
func TestISCSIRoundTrip(t *testing.T) {
	top := &Topology{
		Bdevs: []Bdev{{Name: "Malloc0", Driver: DriverMalloc, Size: 1 << 20}},
		Targets: Targets{ISCSI: &ISCSI{
			NopInInterval:   5 * time.Second,
			PortalGroups:    []ISCSIPortalGroup{{Tag: 7, Portals: []string{"0.0.0.0:0"}, Private: true}},
			InitiatorGroups: []ISCSIInitiatorGroup{{Tag: 9, Initiators: []string{"ANY"}, Netmasks: []string{"ANY"}}},
			AuthGroups:      []ISCSIAuthGroup{{Tag: 1, SecretsFile: "/x y/secrets"}},
			Nodes: []ISCSINode{{Name: "iqn.2024-01.io.sluice:x", LUNs: []ISCSILUN{{LUN: 3, Bdev: "Malloc0", Removable: true}},
				Maps: []ISCSIMap{{7, 9}}, Auth: ISCSIAuth{CHAP: CHAPOneWay, AuthGroup: 1}, DataDigest: true}},
		}},
	}
	if err := top.Validate(testMachine); err != nil {
		t.Fatal(err)
	}
	if top.Targets.ISCSI.NopTimeout != ISCSINopTimeoutDefault || top.Targets.ISCSI.Nodes[0].MaxSessions != ISCSISessionsDefault {
		t.Errorf("defaults not filled: %+v", top.Targets.ISCSI)
	}
	b, err := Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("saved.yaml", b)
	if err != nil || !sameTopology(top, back) {
		t.Fatalf("round trip: %v\n%s", err, b)
	}
}
