package pdu

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// The datadriven scripts in testdata/framer build a Framer and feed it byte streams made of PDU
// lines, printing what Next returns: each PDU, the data landed for direct types, or the error
// and the termination request it implies. Every feed runs under the chunking it names and again
// under many others (1..13 bytes, large, seeded random): all must print the same.
//
//	framer role=controller|host [hdgst] [ddgst] [pda=N] [capsule-data=N] [data=N]
//	       [direct=(h2c-data,capsule-cmd,c2h-data)] [buf=N] [start=ic-done]
//	    The limits are what the IC exchange settles; the Framer starts before it (unless
//	    start=ic-done) and the harness installs them when the IC PDU comes out, as a
//	    connection would. PDU lines are encoded with the same digests and PDA.
//	feed [chunks=(n,...)] [discard] [send=(hdgst,ddgst,pdaN,none)]
//	    one PDU per input line:
//	      icreq [hpda=N] [hdgst] [ddgst] [maxr2t=N]   icresp [cpda=N] [hdgst] [ddgst] [maxh2cdata=N]
//	      cmd [cid=N] [opc=N] [data=N]                resp [cid=N] [status=N]
//	      h2c [cccid=N] [ttag=N] [datao=N] data=N [last]
//	      c2h [cccid=N] [datao=N] data=N [last] [success]
//	      r2t [cccid=N] [ttag=N] [r2to=N] r2tl=N      term type=h2c|c2h fes=N [fei=N] [hdr=N]
//	      hex <bytes>
//	    and after any line: poke=OFF:HEX (overwrite encoded bytes), reseal (recompute the
//	    header digest after the pokes), cut=N (keep N bytes), corrupt=hdgst|ddgst (flip a
//	    digest byte).
func TestFramerScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/framer", func(t *testing.T, path string) {
		h := &harness{}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "framer":
				return h.setup(t, td)
			case "feed":
				return h.feed(t, td)
			}
			td.Fatalf(t, "unknown command %q", td.Cmd)
			return ""
		})
	})
}

type harness struct {
	cfg     FramerConfig
	neg     Limits // applied when the IC PDU comes out, or at start
	startIC bool
	send    Sender
}

func (h *harness) setup(t *testing.T, td *datadriven.TestData) string {
	*h = harness{}
	var role string
	td.ScanArgs(t, "role", &role)
	switch role {
	case "controller":
		h.cfg.Role = Controller
	case "host":
		h.cfg.Role = Host
	default:
		td.Fatalf(t, "role %q", role)
	}
	h.neg = Limits{ICDone: true, HeaderDigest: td.HasArg("hdgst"), DataDigest: td.HasArg("ddgst"),
		CapsuleDataMax: 8192, DataMax: 65536}
	var n int
	if td.MaybeScanArgs(t, "pda", &n) {
		h.neg.PDA = uint8(n)
	}
	if td.MaybeScanArgs(t, "capsule-data", &n) {
		h.neg.CapsuleDataMax = uint32(n)
	}
	if td.MaybeScanArgs(t, "data", &n) {
		h.neg.DataMax = uint32(n)
	}
	if arg, ok := td.Arg("direct"); ok {
		for _, v := range arg.Vals {
			h.cfg.Direct |= Types(typeByName(t, v))
		}
	}
	td.MaybeScanArgs(t, "buf", &h.cfg.BufferSize)
	var start string
	td.MaybeScanArgs(t, "start", &start)
	h.startIC = start == "ic-done"
	h.cfg.Limits = h.neg
	h.send = Sender{HeaderDigest: h.neg.HeaderDigest, DataDigest: h.neg.DataDigest, PDA: h.neg.PDA}
	f, err := NewFramer(h.cfg)
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("buffer=%d", len(f.buf))
}

func typeByName(t testing.TB, name string) Type {
	for i, n := range typeNames {
		if n == name {
			return Type(i)
		}
	}
	t.Fatalf("no PDU type %q", name)
	return 0
}

func (h *harness) feed(t *testing.T, td *datadriven.TestData) string {
	send := h.send
	if arg, ok := td.Arg("send"); ok {
		send = Sender{}
		for _, v := range arg.Vals {
			switch {
			case v == "hdgst":
				send.HeaderDigest = true
			case v == "ddgst":
				send.DataDigest = true
			case strings.HasPrefix(v, "pda"):
				n, _ := strconv.Atoi(v[3:])
				send.PDA = uint8(n)
			}
		}
	}
	var stream []byte
	for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			stream = append(stream, encodeLine(t, send, line)...)
		}
	}
	chunks := []int{len(stream) + 1}
	if arg, ok := td.Arg("chunks"); ok {
		chunks = chunks[:0]
		for _, v := range arg.Vals {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				td.Fatalf(t, "chunks: %q", v)
			}
			chunks = append(chunks, n)
		}
	}
	discard := td.HasArg("discard")
	out := h.run(t, stream, chunks, discard)

	// Metamorphic: the same stream cut any other way reads the same.
	others := [][]int{{1}, {2}, {3}, {4}, {5}, {7}, {8}, {13}, {64}, {1 << 20}, {1, 2, 3, 5, 8, 13}}
	rng := rand.New(rand.NewSource(int64(len(stream))))
	for i := 0; i < 8; i++ {
		c := make([]int, 12)
		for j := range c {
			c[j] = 1 + rng.Intn(300)
		}
		others = append(others, c)
	}
	for _, c := range others {
		if got := h.run(t, stream, c, discard); got != out {
			t.Fatalf("%s: chunks %v read differently:\n%s\nthan chunks %v:\n%s", td.Pos, c, got, chunks, out)
		}
	}
	return out
}

// run feeds stream to a fresh Framer in chunks, draining Next after each, and reports.
func (h *harness) run(t *testing.T, stream []byte, chunks []int, discard bool) string {
	f, err := NewFramer(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if h.startIC {
		if err := f.SetLimits(h.neg); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	pos, ci := 0, 0
	for {
		for {
			fr, err := f.Next()
			var fe *FieldError
			if errors.As(err, &fe) {
				fmt.Fprintf(&out, "error: %v\n", err)
				hdr := f.FailedHeader()
				b := make([]byte, TermReqPDUSizeMax)
				if n := fe.TermReq(b, h.cfg.Role, hdr); n > 0 {
					tr := TermReqOf(b)
					fmt.Fprintf(&out, "=> %v fes=%v fei=%d hdr=%x\n", tr.Common().Type(), tr.FES(), tr.FEI(), b[TermReqHeaderSize:n])
				} else {
					fmt.Fprintf(&out, "=> close without a termination request (hdr=%x)\n", hdr)
				}
				return out.String()
			}
			if fr.Kind == KindNeedMore {
				break
			}
			out.WriteString(describe(&fr))
			if err == ErrDataDigest {
				out.WriteString(" data-digest-error")
			} else if err != nil {
				t.Fatalf("Next: %v", err)
			}
			out.WriteString("\n")
			switch fr.Kind {
			case KindDataHeader:
				if discard {
					f.Discard()
				} else {
					f.DataInto(make([]byte, fr.DataLen))
				}
			case KindPDU:
				if typ := fr.Type(); typ == TypeICReq || typ == TypeICResp {
					if err := f.SetLimits(h.neg); err != nil {
						fmt.Fprintf(&out, "set limits: %v\n", err)
					}
				}
			}
		}
		if pos == len(stream) {
			break
		}
		n := f.Feed(stream[pos:min(len(stream), pos+chunks[ci%len(chunks)])])
		ci++
		if n == 0 {
			t.Fatalf("stuck: Next wants more but Feed takes nothing (F2); %d buffered", f.Buffered())
		}
		pos += n
	}
	if f.st != stCommon || f.Buffered() > 0 {
		fmt.Fprintf(&out, "incomplete: %d bytes buffered, waiting in state %v\n", f.Buffered(), f.st)
	}
	return out.String()
}

// describe prints a frame's PDU: the header fields a reader needs and the data's length and
// CRC32C (so the scripts pin the bytes without dumping them).
func describe(fr *Frame) string {
	var s string
	switch t := fr.Type(); t {
	case TypeICReq:
		p := ICReqOf(fr.Header)
		s = fmt.Sprintf("icreq pfv=%d hpda=%d dgst=%#x maxr2t=%d", p.PFV(), p.HPDA(), p.DGST(), p.MAXR2T())
	case TypeICResp:
		p := ICRespOf(fr.Header)
		s = fmt.Sprintf("icresp pfv=%d cpda=%d dgst=%#x maxh2cdata=%d", p.PFV(), p.CPDA(), p.DGST(), p.MAXH2CData())
	case TypeCapsuleCmd:
		sqe := CapsuleCmdOf(fr.Header).SQE()
		s = fmt.Sprintf("capsule-cmd cid=%d opc=%#02x", le16(sqe[:], 2), sqe[0])
	case TypeCapsuleResp:
		cqe := CapsuleRespOf(fr.Header).CQE()
		s = fmt.Sprintf("capsule-resp cid=%d status=%#04x", le16(cqe[:], 12), le16(cqe[:], 14))
	case TypeH2CData, TypeC2HData:
		p := DataHeaderOf(fr.Header)
		s = fmt.Sprintf("%v cccid=%d ttag=%d datao=%d datal=%d", t, p.CCCID(), p.TTAG(), p.DataOffset(), p.DataLen())
		if fl := p.Common().Flags(); fl&FlagLastPDU != 0 {
			s += " last"
		}
		if p.Common().Flags()&FlagSuccess != 0 {
			s += " success"
		}
	case TypeR2T:
		p := R2THeaderOf(fr.Header)
		s = fmt.Sprintf("r2t cccid=%d ttag=%d r2to=%d r2tl=%d", p.CCCID(), p.TTAG(), p.R2TOffset(), p.R2TLen())
	case TypeH2CTermReq, TypeC2HTermReq:
		p := TermReqOf(fr.Header)
		s = fmt.Sprintf("%v fes=%v fei=%d hdr=%x", t, p.FES(), p.FEI(), fr.Data)
		return s
	}
	switch fr.Kind {
	case KindPDU:
		if fr.Data != nil {
			s += fmt.Sprintf(" data=%d crc=%08x", len(fr.Data), crc32cRef(fr.Data))
		}
	case KindDataHeader:
		s += " (direct)"
	case KindDataDone:
		if fr.Data == nil {
			s = fmt.Sprintf("  discarded %d bytes", fr.DataLen)
		} else {
			s = fmt.Sprintf("  landed %d bytes crc=%08x", len(fr.Data), crc32cRef(fr.Data))
		}
	}
	return s
}

// encodeLine turns one script line into wire bytes.
func encodeLine(t *testing.T, s Sender, line string) []byte {
	fields := strings.Fields(line)
	kind := fields[0]
	args := map[string]string{}
	var pokes []string
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		if k == "poke" {
			pokes = append(pokes, v)
			continue
		}
		args[k] = v
	}
	num := func(k string, def uint32) uint32 {
		v, ok := args[k]
		if !ok {
			return def
		}
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			t.Fatalf("%q: %s=%q", line, k, v)
		}
		return uint32(n)
	}
	_, last := args["last"]
	_, success := args["success"]
	pattern := func(n, seed uint32) []byte {
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(uint32(i)*31 + seed)
		}
		return d
	}
	b := make([]byte, 512)
	var data []byte
	var n int
	switch kind {
	case "hex":
		raw, err := hex.DecodeString(strings.Join(fields[1:], ""))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		return raw
	case "icreq":
		_, hd := args["hdgst"]
		_, dd := args["ddgst"]
		n = EncodeICReq(b, ICReqFields{HPDA: uint8(num("hpda", 0)), HeaderDigest: hd, DataDigest: dd, MAXR2T: num("maxr2t", 0)})
	case "icresp":
		_, hd := args["hdgst"]
		_, dd := args["ddgst"]
		n = EncodeICResp(b, ICRespFields{CPDA: uint8(num("cpda", 0)), HeaderDigest: hd, DataDigest: dd, MAXH2CData: num("maxh2cdata", 8192)})
	case "cmd":
		var sqe [SQESize]byte
		sqe[0] = byte(num("opc", 1))
		putLE16(sqe[:], 2, uint16(num("cid", 1)))
		data = pattern(num("data", 0), num("cid", 1))
		n = s.EncodeCapsuleCmd(b, &sqe, uint32(len(data)))
	case "resp":
		var cqe [CQESize]byte
		putLE16(cqe[:], 12, uint16(num("cid", 1)))
		putLE16(cqe[:], 14, uint16(num("status", 0)))
		n = s.EncodeCapsuleResp(b, &cqe)
	case "h2c", "c2h":
		data = pattern(num("data", 1), num("cccid", 1)+num("datao", 0))
		f := DataFields{CCCID: uint16(num("cccid", 1)), TTAG: uint16(num("ttag", 1)), DataOffset: num("datao", 0),
			DataLen: uint32(len(data)), Last: last, Success: success}
		if kind == "h2c" {
			n = s.EncodeH2CData(b, f)
		} else {
			n = s.EncodeC2HData(b, f)
		}
	case "r2t":
		n = s.EncodeR2T(b, R2TFields{CCCID: uint16(num("cccid", 1)), TTAG: uint16(num("ttag", 1)),
			R2TOffset: num("r2to", 0), R2TLen: num("r2tl", 4096)})
	case "term":
		typ := TypeH2CTermReq
		if args["type"] == "c2h" {
			typ = TypeC2HTermReq
		}
		n = EncodeTermReq(b, typ, FES(num("fes", 1)), num("fei", 0), pattern(num("hdr", 8), 4))
	default:
		t.Fatalf("unknown PDU line %q", line)
	}
	if n == 0 {
		t.Fatalf("%q did not encode", line)
	}
	hlen := int(HeaderOf(b).HeaderLen())
	pdu := append(b[:n:n], data...)
	if len(data) > 0 && s.DataDigest && kind != "term" {
		pdu = append(pdu, 0, 0, 0, 0)
		PutDigest(pdu[len(pdu)-DigestSize:], DigestUpdate(0, data))
	}
	switch args["corrupt"] {
	case "hdgst":
		pdu[hlen] ^= 0xFF
	case "ddgst":
		pdu[len(pdu)-1] ^= 0xFF
	}
	for _, p := range pokes {
		off, hx, _ := strings.Cut(p, ":")
		o, err1 := strconv.Atoi(off)
		v, err2 := hex.DecodeString(hx)
		if err1 != nil || err2 != nil || o+len(v) > len(pdu) {
			t.Fatalf("%q: poke %q", line, p)
		}
		copy(pdu[o:], v)
	}
	if _, ok := args["reseal"]; ok && s.HeaderDigest {
		SetHeaderDigest(pdu)
	}
	if c, ok := args["cut"]; ok {
		k, _ := strconv.Atoi(c)
		pdu = pdu[:k]
	}
	return pdu
}
