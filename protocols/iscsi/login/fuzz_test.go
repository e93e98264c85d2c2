package login

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"testing"
)

// FuzzKeys checks the text parser: no panic, and whatever it accepts obeys the key and
// value rules, round-trips through AppendPair, and reassembles the same from any split.
// Seeds: testdata/fuzz/FuzzKeys.
func FuzzKeys(f *testing.F) {
	f.Fuzz(func(t *testing.T, text []byte, split uint16) {
		pairs, err := ParseKeys(text)
		var r Reassembler
		at := int(split) % (len(text) + 1)
		if _, err := r.Add(text[:at], false); err != nil {
			return // only when text exceeds TextSizeMax
		}
		whole, err2 := r.Add(text[at:], true)
		if err2 == nil && !bytes.Equal(whole, text) {
			t.Fatalf("reassembly at %d changed the text", at)
		}
		if err != nil {
			if _, ok := err.(*KeyError); !ok {
				t.Fatalf("error %T", err)
			}
			return
		}
		seen := map[string]bool{}
		var out []byte
		for _, p := range pairs {
			if !validKeyName(p.Key) || len(p.Key) > KeySizeMax || seen[p.Key] {
				t.Fatalf("accepted key %q", p.Key)
			}
			if len(p.Value) > valueSizeMax(p.Key) {
				t.Fatalf("accepted %d-byte value for %s", len(p.Value), p.Key)
			}
			seen[p.Key] = true
			out = AppendPair(out, p.Key, p.Value)
		}
		again, err := ParseKeys(out)
		if err != nil || len(again) != len(pairs) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range again {
			if again[i] != pairs[i] {
				t.Fatalf("round trip changed pair %d: %v -> %v", i, pairs[i], again[i])
			}
		}
	})
}

// Fuzz login records: flags (T, C, CSG, NSG as in the PDU's byte 1), a byte of header
// variations, a 2-byte data length, then the data. "CHAP_R=@" in the data is replaced
// by the right response to the machine's last challenge, so the fuzzer can get past
// authentication and explore what follows.
const (
	recFlagT    = 0x80
	recFlagC    = 0x40
	recVMin1    = 0x01
	recTSIH7    = 0x02
	recTSIH9    = 0x04
	recISIDMove = 0x08
	recHeader   = 4
)

// FuzzLogin drives a Machine with random request sequences: it must never panic, and
// every response must obey L1, L2 and L4. Seeds: testdata/fuzz/FuzzLogin.
func FuzzLogin(f *testing.F) {
	f.Fuzz(func(t *testing.T, records []byte, config uint8) {
		cfg := &Config{
			Limits:         DefaultLimits(),
			PortalGroupTag: 1,
			CHAPAlgorithms: []CHAPAlgorithm{CHAPMD5, CHAPSHA1, CHAPSHA256},
			Rand:           &counter{},
		}
		if config&1 != 0 {
			cfg.Limits.MaxBurstLength, cfg.Limits.FirstBurstLength = 65536, 16384
			cfg.Limits.ImmediateData = false
		}
		if config&2 != 0 {
			cfg.Limits.HeaderDigest = DigestRequire
		}
		if config&4 != 0 {
			cfg.DiscoveryAuth = Auth{Required: true, Initiators: []Secret{{Name: "alice", Secret: []byte(aliceSecret)}}}
		}
		m := New(cfg, newFakeDir())
		var lastChallenge map[string]string
		closed := false
		var closedWith Response
		for len(records) >= recHeader {
			flags, vary := records[0], records[1]
			n := min(int(binary.BigEndian.Uint16(records[2:])), len(records)-recHeader)
			data := records[recHeader : recHeader+n]
			records = records[recHeader+n:]
			data = fillCHAP(data, lastChallenge)
			req := Request{
				Transit: flags&recFlagT != 0, Continue: flags&recFlagC != 0,
				CSG: Stage(flags >> 2 & 3), NSG: Stage(flags & 3),
				ISID: ISID{0x80, 0, 0, 0, 0, 1}, CID: 1, Data: data,
			}
			if vary&recVMin1 != 0 {
				req.VersionMin, req.VersionMax = 1, 1
			}
			if vary&recTSIH7 != 0 {
				req.TSIH = 7
			}
			if vary&recTSIH9 != 0 {
				req.TSIH = 9
			}
			if vary&recISIDMove != 0 {
				req.ISID[5] = 2
			}
			resp, action := m.Step(req)
			switch {
			case closed:
				// L2: a failed login answers the same failure for ever.
				if action != ActionClose || resp.Status != closedWith.Status || len(resp.Data) != 0 {
					t.Fatalf("after failure: %v %v", resp.Status, action)
				}
			case action == ActionClose:
				// L1: failures carry class 2 or 3 and no text.
				if c := resp.Status.Class(); (c != 2 && c != 3) || len(resp.Data) != 0 || resp.Transit {
					t.Fatalf("close with status %v, %d bytes, T %v", resp.Status, len(resp.Data), resp.Transit)
				}
				if m.Failure() == nil {
					t.Fatal("closed without a failure reason")
				}
				closed, closedWith = true, resp
			case resp.Status != StatusSuccess:
				t.Fatalf("status %v without closing", resp.Status)
			case resp.Continue && resp.Transit:
				t.Fatal("response with C and T")
			case action == ActionFullFeature:
				checkFullFeature(t, m, resp)
			}
			if len(resp.Data) > loginDataSizeMax {
				t.Fatalf("response of %d bytes", len(resp.Data))
			}
			if pairs, err := ParseKeys(resp.Data); err == nil && !resp.Continue {
				lastChallenge = map[string]string{}
				for _, p := range pairs {
					lastChallenge[p.Key] = p.Value
				}
			}
		}
	})
}

// checkFullFeature asserts L4 and L5 on a login that reached Full Feature Phase.
func checkFullFeature(t *testing.T, m *Machine, resp Response) {
	t.Helper()
	p := m.Params()
	if !resp.Transit || resp.NSG != StageFullFeature || p.TSIH == 0 {
		t.Fatalf("full feature with T %v NSG %v TSIH %d", resp.Transit, resp.NSG, p.TSIH)
	}
	if m.auth.Required && (p.AuthMethod != valueCHAP || p.CHAPName == "") {
		t.Fatalf("authentication required, reached Full Feature Phase with %q", p.AuthMethod)
	}
	if m.auth.MutualRequired && !p.MutualCHAP {
		t.Fatal("mutual CHAP required, not done")
	}
	lim := &m.cfg.Limits
	if p.Leading && p.SessionType == SessionNormal {
		if p.MaxBurstLength > lim.MaxBurstLength || p.MaxOutstandingR2T > lim.MaxOutstandingR2T ||
			p.MaxConnections > lim.MaxConnections || p.ErrorRecoveryLevel != 0 ||
			(!lim.ImmediateData && p.ImmediateData) {
			t.Fatalf("negotiated past our limits: %+v", p)
		}
		if (!p.InitialR2T || p.ImmediateData) && (p.FirstBurstLength > p.MaxBurstLength || p.FirstBurstLength > lim.FirstBurstLength) {
			t.Fatalf("FirstBurstLength %d, MaxBurstLength %d", p.FirstBurstLength, p.MaxBurstLength)
		}
	}
	if lim.HeaderDigest == DigestRequire && !p.HeaderDigest {
		t.Fatal("header digest required, not negotiated")
	}
}

// fillCHAP replaces CHAP_R=@ with the response to the last challenge, for alice.
func fillCHAP(data []byte, last map[string]string) []byte {
	i := bytes.Index(data, []byte("CHAP_R=@"))
	if i < 0 || last[keyCHAPA] == "" {
		return data
	}
	id, _ := parseNumber(last[keyCHAPI])
	chal, _ := decodeBinary(last[keyCHAPC])
	alg, _ := strconv.Atoi(last[keyCHAPA])
	if CHAPAlgorithm(alg).Size() == 0 {
		return data
	}
	r := encodeHex(refCHAP(strconv.Itoa(alg), byte(id), aliceSecret, chal))
	out := append([]byte(nil), data[:i+len("CHAP_R=")]...)
	out = append(out, r...)
	return append(out, data[i+len("CHAP_R=@"):]...)
}
