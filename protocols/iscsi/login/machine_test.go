package login

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// Test fixtures: a directory of targets with each authentication policy.
const (
	aliceSecret  = "alice-secret-12"
	bobSecret    = "bob-secret-3456"
	targetSecret = "target-secret-42"
)

type fakeDir struct {
	targets  map[string]*Target
	denied   map[string]bool
	sessions map[uint16]bool
	nextTSIH uint16
	tsihFull bool
}

func newFakeDir() *fakeDir {
	alice := Secret{Name: "alice", Secret: []byte(aliceSecret)}
	bob := Secret{Name: "bob", Secret: []byte(bobSecret)}
	us := &Secret{Name: "sluice-target", Secret: []byte(targetSecret)}
	d := &fakeDir{targets: map[string]*Target{}, denied: map[string]bool{}, sessions: map[uint16]bool{7: true}}
	for _, t := range []*Target{
		{Name: "iqn.2024-01.io.sluice:open", Alias: "open disk"},
		{Name: "iqn.2024-01.io.sluice:optional", Auth: Auth{Initiators: []Secret{alice}}},
		{Name: "iqn.2024-01.io.sluice:chap", Auth: Auth{Required: true, Initiators: []Secret{alice, bob}}},
		{Name: "iqn.2024-01.io.sluice:mutual", Auth: Auth{Required: true, Initiators: []Secret{alice}, Target: us, MutualRequired: true}},
		{Name: "iqn.2024-01.io.sluice:mutual-optional", Auth: Auth{Required: true, Initiators: []Secret{alice}, Target: us}},
		{Name: "iqn.2024-01.io.sluice:denied"},
	} {
		if err := t.Validate(); err != nil {
			panic(err)
		}
		d.targets[t.Name] = t
	}
	d.denied["iqn.2024-01.io.sluice:denied"] = true
	return d
}

func (d *fakeDir) Target(name string) (*Target, bool) {
	t, ok := d.targets[strings.ToLower(name)]
	return t, ok
}
func (d *fakeDir) Permit(_, target string) bool { return !d.denied[target] }
func (d *fakeDir) SessionExists(_ string, _ ISID, tsih uint16) bool {
	return d.sessions[tsih]
}
func (d *fakeDir) NewTSIH() (uint16, bool) {
	if d.tsihFull {
		return 0, false
	}
	d.nextTSIH++
	return d.nextTSIH, true
}

// counter is a deterministic Rand: 1, 2, 3, … so CHAP_I and CHAP_C are predictable.
type counter struct{ n byte }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = c.n
	}
	return len(p), nil
}

type failingRand struct{}

func (failingRand) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

// refCHAP is the plain reference: one hash over the concatenation id ‖ secret ‖ challenge.
func refCHAP(alg string, id byte, secret string, challenge []byte) []byte {
	msg := append(append([]byte{id}, secret...), challenge...)
	switch alg {
	case "5":
		s := md5.Sum(msg)
		return s[:]
	case "6":
		s := sha1.Sum(msg)
		return s[:]
	case "7":
		s := sha256.Sum256(msg)
		return s[:]
	}
	panic("algorithm " + alg)
}

type harness struct {
	dir    *fakeDir
	cfg    *Config
	m      *Machine
	last   map[string]string // keys of the last response
	pieces []byte            // a response continued with the C bit, so far
}

func TestLoginScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/login", func(t *testing.T, path string) {
		h := &harness{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "new":
				return h.newMachine(t, d)
			case "login":
				return h.login(t, d)
			case "params":
				return formatParams(h.m.Params())
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

func (h *harness) newMachine(t *testing.T, d *datadriven.TestData) string {
	h.dir = newFakeDir()
	h.cfg = &Config{
		Limits:         DefaultLimits(),
		PortalGroupTag: 1,
		CHAPAlgorithms: []CHAPAlgorithm{CHAPMD5, CHAPSHA1, CHAPSHA256},
		Rand:           &counter{},
	}
	lim := &h.cfg.Limits
	for _, arg := range d.CmdArgs {
		v := ""
		if len(arg.Vals) > 0 {
			v = arg.Vals[0]
		}
		num := func() uint64 {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				t.Fatalf("%s: %v", arg.Key, err)
			}
			return n
		}
		switch arg.Key {
		case "algs":
			h.cfg.CHAPAlgorithms = nil
			for _, a := range arg.Vals {
				n, _ := strconv.Atoi(a)
				h.cfg.CHAPAlgorithms = append(h.cfg.CHAPAlgorithms, CHAPAlgorithm(n))
			}
		case "hd", "dd":
			p := map[string]DigestPolicy{"none": DigestNone, "allow": DigestAllow, "require": DigestRequire}[v]
			if arg.Key == "hd" {
				lim.HeaderDigest = p
			} else {
				lim.DataDigest = p
			}
		case "mrdsl":
			lim.MaxRecvDataSegmentLength = uint32(num())
		case "mbl":
			lim.MaxBurstLength = uint32(num())
		case "fbl":
			lim.FirstBurstLength = uint32(num())
		case "r2t":
			lim.MaxOutstandingR2T = uint16(num())
		case "conns":
			lim.MaxConnections = uint16(num())
		case "t2w":
			lim.DefaultTime2Wait = uint16(num())
		case "t2r":
			lim.DefaultTime2Retain = uint16(num())
		case "initialr2t":
			lim.InitialR2T = v == "true"
		case "immediate":
			lim.ImmediateData = v == "true"
		case "inorder":
			lim.DataPDUInOrder, lim.DataSequenceInOrder = v == "true", v == "true"
		case "discovery-chap":
			h.cfg.DiscoveryAuth = Auth{Required: true, Initiators: []Secret{{Name: "alice", Secret: []byte(aliceSecret)}}}
		case "tsih-full":
			h.dir.tsihFull = true
		case "rand-fails":
			h.cfg.Rand = failingRand{}
		default:
			t.Fatalf("new: unknown argument %q", arg.Key)
		}
	}
	if err := h.cfg.Validate(); err != nil {
		return "invalid config: " + err.Error()
	}
	h.m = New(h.cfg, h.dir)
	return "ok"
}

var stageNames = map[string]Stage{"sec": StageSecurity, "op": StageOperational, "ffp": StageFullFeature, "2": 2}

func (h *harness) login(t *testing.T, d *datadriven.TestData) string {
	req := Request{ISID: ISID{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a}, CID: 1}
	quiet := false
	for _, arg := range d.CmdArgs {
		v := ""
		if len(arg.Vals) > 0 {
			v = arg.Vals[0]
		}
		n, _ := strconv.ParseUint(v, 0, 16)
		switch arg.Key {
		case "t":
			req.Transit = true
		case "c":
			req.Continue = true
		case "csg":
			req.CSG = stageNames[v]
		case "nsg":
			req.NSG = stageNames[v]
		case "tsih":
			req.TSIH = uint16(n)
		case "cid":
			req.CID = uint16(n)
		case "isid":
			req.ISID[5] = byte(n)
		case "vmax":
			req.VersionMax = uint8(n)
		case "vmin":
			req.VersionMin = uint8(n)
		case "quiet":
			quiet = true
		default:
			t.Fatalf("login: unknown argument %q", arg.Key)
		}
	}
	sent := map[string]string{}
	req.Data = h.requestText(t, d.Input, sent)
	resp, action := h.m.Step(req)

	var b strings.Builder
	fmt.Fprintf(&b, "status=%s t=%d c=%d csg=%s nsg=%s tsih=%d versions=%d/%d action=%s\n",
		resp.Status, b2i(resp.Transit), b2i(resp.Continue), resp.CSG, resp.NSG, resp.TSIH,
		resp.VersionMax, resp.VersionActive, action)
	// Like an initiator, collect the pieces of a continued response and parse the whole.
	h.pieces = append(h.pieces, resp.Data...)
	var pairs []Pair
	if !resp.Continue {
		var err error
		if pairs, err = ParseKeys(h.pieces); err != nil {
			fmt.Fprintf(&b, "response text error: %v\n", err)
		}
		h.pieces = nil
	}
	h.last = map[string]string{}
	for _, p := range pairs {
		h.last[p.Key] = p.Value
	}
	if quiet {
		fmt.Fprintf(&b, "%d bytes of text", len(resp.Data))
		if !resp.Continue {
			fmt.Fprintf(&b, ", %d keys in the whole response", len(pairs))
		}
		b.WriteString("\n")
	} else {
		for _, p := range pairs {
			fmt.Fprintf(&b, "%s=%s\n", p.Key, p.Value)
		}
	}
	if r, ok := h.last[keyCHAPR]; ok {
		// We sent CHAP_I/CHAP_C: check the target's answer with the reference.
		id, _ := parseNumber(sent[keyCHAPI])
		chal, _ := decodeBinary(sent[keyCHAPC])
		want := encodeHex(refCHAP(sent["alg"], byte(id), targetSecret, chal))
		fmt.Fprintf(&b, "mutual CHAP_R matches reference: %v\n", r == want)
	}
	if action == ActionClose {
		fmt.Fprintf(&b, "failure: %v\n", h.m.Failure())
	}
	return b.String()
}

// requestText builds a request's data segment from the script lines: key=value lines
// end with NUL; `!raw "…"` appends Go-quoted bytes as they are; `!keys N M` appends
// unknown keys N..M-1; `!long K N` appends K=aaa… (N bytes). Placeholders: CHAP_R=<chap SECRET> is the reference response to
// the last challenge; CHAP_C=<reflect> is our last challenge sent back.
func (h *harness) requestText(t *testing.T, input string, sent map[string]string) []byte {
	var data []byte
	sent["alg"] = h.last[keyCHAPA]
	for _, line := range strings.Split(input, "\n") {
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "!raw "):
			s, err := strconv.Unquote(strings.TrimPrefix(line, "!raw "))
			if err != nil {
				t.Fatalf("bad !raw line %q: %v", line, err)
			}
			data = append(data, s...)
			continue
		case strings.HasPrefix(line, "!long "):
			var key string
			var n int
			fmt.Sscanf(line, "!long %s %d", &key, &n)
			data = AppendPair(data, key, strings.Repeat("a", n))
			continue
		case strings.HasPrefix(line, "!keys "):
			var from, to int
			fmt.Sscanf(line, "!keys %d %d", &from, &to)
			for i := from; i < to; i++ {
				data = AppendPair(data, fmt.Sprintf("X-sluice-test-key-%04d-padded-to-sixty-characters-long-xx", i), "v")
			}
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		switch {
		case strings.HasPrefix(v, "<chap "):
			secret := strings.TrimSuffix(strings.TrimPrefix(v, "<chap "), ">")
			id, _ := parseNumber(h.last[keyCHAPI])
			chal, _ := decodeBinary(h.last[keyCHAPC])
			v = "0x00" // no challenge to answer
			if h.last[keyCHAPA] != "" {
				v = encodeHex(refCHAP(h.last[keyCHAPA], byte(id), secret, chal))
			}
		case v == "<reflect>":
			v = h.last[keyCHAPC]
		}
		sent[k] = v
		data = AppendPair(data, k, v)
	}
	return data
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func formatParams(p *Params) string {
	var b strings.Builder
	fmt.Fprintf(&b, "session=%s initiator=%s alias=%q target=%s tsih=%d cid=%d leading=%v\n",
		p.SessionType, p.InitiatorName, p.InitiatorAlias, p.TargetName, p.TSIH, p.CID, p.Leading)
	chap := "-"
	if p.CHAPAlgorithm != 0 {
		chap = p.CHAPAlgorithm.String()
	}
	fmt.Fprintf(&b, "auth=%q chap=%s name=%q mutual=%v\n", p.AuthMethod, chap, p.CHAPName, p.MutualCHAP)
	fmt.Fprintf(&b, "digests header=%v data=%v recv=%d send=%d\n",
		p.HeaderDigest, p.DataDigest, p.MaxRecvDataSegmentLength, p.MaxSendDataSegmentLength)
	fmt.Fprintf(&b, "bursts max=%d first=%d initialr2t=%v immediate=%v r2t=%d\n",
		p.MaxBurstLength, p.FirstBurstLength, p.InitialR2T, p.ImmediateData, p.MaxOutstandingR2T)
	fmt.Fprintf(&b, "order pdu=%v seq=%v time2wait=%d time2retain=%d erl=%d conns=%d\n",
		p.DataPDUInOrder, p.DataSequenceInOrder, p.DefaultTime2Wait, p.DefaultTime2Retain,
		p.ErrorRecoveryLevel, p.MaxConnections)
	return b.String()
}

// TestCHAPVectors pins chapResponse to digests computed outside Go (Python hashlib) for
// id 0x01, secret "alice-secret-12", challenge 02 03 … 11 (16 bytes).
func TestCHAPVectors(t *testing.T) {
	chal := make([]byte, 16)
	for i := range chal {
		chal[i] = byte(i + 2)
	}
	for _, tc := range []struct {
		alg  CHAPAlgorithm
		want string
	}{
		{CHAPMD5, chapVectorMD5},
		{CHAPSHA1, chapVectorSHA1},
		{CHAPSHA256, chapVectorSHA256},
	} {
		got := hex.EncodeToString(chapResponse(tc.alg, 1, []byte(aliceSecret), chal))
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.alg, got, tc.want)
		}
		ref := refCHAP(strconv.Itoa(int(tc.alg)), 1, aliceSecret, chal)
		if !bytes.Equal(ref, chapResponse(tc.alg, 1, []byte(aliceSecret), chal)) {
			t.Errorf("%s: disagrees with the plain reference", tc.alg)
		}
	}
}
