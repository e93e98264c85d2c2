package tcp

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
)

// Each class of malformed, oversized or out-of-sequence PDU, sent over a real socket, ends
// that connection with the C2HTermReq its rule implies (NVMe/TCP 1.0, "Connection
// Termination": FES, and FEI the byte offset of the bad field for an invalid header field or
// unsupported parameter) carrying the offending header, and then a close; nothing else is
// sent after it. A connection that behaves keeps working throughout.

// malformed is one class: the PDUs to send once the connection is in the given stage, and
// the termination expected.
type malformed struct {
	name   string
	stage  stage
	digest bool // negotiate header and data digests first
	pdu    func(h *testHost, ttag uint16) []byte
	fes    pdu.FES
	fei    uint32
}

type stage uint8

const (
	stageNone stage = iota // nothing sent yet
	stageIC                // IC exchange done
	stageR2T               // IC done and a Connect sent with its data by R2T: ttag outstanding
)

// capsuleHeader is a CapsuleCmd of an Identify (no data) with the header fields to break.
func capsuleHeader(h *testHost) []byte {
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(nvme.AdminIdentify))
	sqe.SetCID(77)
	sqe.SetPSDT(nvme.PSDTSGL)
	sqe.SGL1().SetTransport(0)
	b := make([]byte, pdu.CapsuleCmdSize+pdu.DigestSize)
	n := h.send.EncodeCapsuleCmd(b, (*[pdu.SQESize]byte)(&sqe), 0)
	return b[:n]
}

// h2cData is an H2CData PDU with one data byte per dataLen.
func h2cData(h *testHost, cccid, ttag uint16, datao, dataLen uint32, last bool) []byte {
	b := make([]byte, 128)
	n := h.send.EncodeH2CData(b, pdu.DataFields{CCCID: cccid, TTAG: ttag, DataOffset: datao, DataLen: dataLen, Last: last})
	out := append(b[:n:n], make([]byte, dataLen)...)
	if h.send.DataDigest {
		out = binary.LittleEndian.AppendUint32(out, pdu.Digest(make([]byte, dataLen)))
	}
	return out
}

const connectCID = 1 // the CID of the Connect whose data an R2T asks for

var malformedClasses = []malformed{
	{"undefined pdu type", stageIC, false, func(h *testHost, _ uint16) []byte {
		b := capsuleHeader(h)
		b[0] = 0x0A
		return b
	}, pdu.FESInvalidHeaderField, 0},
	{"controller-to-host type", stageIC, false, func(h *testHost, _ uint16) []byte {
		b := make([]byte, pdu.CapsuleRespSize)
		pdu.Sender{}.EncodeCapsuleResp(b, &[pdu.CQESize]byte{})
		return b
	}, pdu.FESInvalidHeaderField, 0},
	{"capsule before ICReq", stageNone, false, func(h *testHost, _ uint16) []byte {
		return capsuleHeader(h)
	}, pdu.FESPDUSequenceError, 0},
	{"second ICReq", stageIC, false, func(h *testHost, _ uint16) []byte {
		b := make([]byte, pdu.ICReqSize)
		pdu.EncodeICReq(b, pdu.ICReqFields{})
		return b
	}, pdu.FESPDUSequenceError, 0},
	{"ICReq PFV 1", stageNone, false, func(h *testHost, _ uint16) []byte {
		b := make([]byte, pdu.ICReqSize)
		pdu.EncodeICReq(b, pdu.ICReqFields{})
		b[8] = 1
		return b
	}, pdu.FESUnsupportedParameter, 8},
	{"ICReq reserved byte", stageNone, false, func(h *testHost, _ uint16) []byte {
		b := make([]byte, pdu.ICReqSize)
		pdu.EncodeICReq(b, pdu.ICReqFields{})
		b[100] = 1
		return b
	}, pdu.FESInvalidHeaderField, 100},
	{"capsule flags undefined", stageIC, false, func(h *testHost, _ uint16) []byte {
		b := capsuleHeader(h)
		b[1] = uint8(pdu.FlagLastPDU)
		return b
	}, pdu.FESInvalidHeaderField, 1},
	{"header digest flag without digests", stageIC, false, func(h *testHost, _ uint16) []byte {
		b := capsuleHeader(h)
		b[1] = uint8(pdu.FlagHDGSTF)
		return b
	}, pdu.FESInvalidHeaderField, 1},
	{"capsule hlen", stageIC, false, func(h *testHost, _ uint16) []byte {
		b := capsuleHeader(h)
		b[2] = 64
		return b
	}, pdu.FESInvalidHeaderField, 2},
	{"capsule pdo unaligned", stageIC, false, func(h *testHost, _ uint16) []byte {
		var sqe nvme.SQE
		sqe.SetOpcode(uint8(nvme.AdminIdentify))
		b := make([]byte, 200)
		n := h.send.EncodeCapsuleCmd(b, (*[pdu.SQESize]byte)(&sqe), 4)
		b[3] = 73
		return b[:n+4]
	}, pdu.FESInvalidHeaderField, 3},
	{"in-capsule data over the limit", stageIC, false, func(h *testHost, _ uint16) []byte {
		var sqe nvme.SQE
		sqe.SetOpcode(uint8(nvme.IOWrite))
		b := make([]byte, 200)
		n := h.send.EncodeCapsuleCmd(b, (*[pdu.SQESize]byte)(&sqe), 64<<10)
		return b[:n] // the header alone is judged: PLEN promises too much data
	}, pdu.FESDataLimitExceeded, 0},
	{"header digest mismatch", stageIC, true, func(h *testHost, _ uint16) []byte {
		b := capsuleHeader(h)
		b[len(b)-1] ^= 0xFF
		return b
	}, pdu.FESHeaderDigestError, 0},
	{"H2CData unknown TTAG", stageR2T, false, func(h *testHost, ttag uint16) []byte {
		return h2cData(h, connectCID, ttag+100, 0, 16, false)
	}, pdu.FESInvalidHeaderField, offTTAG},
	{"H2CData wrong CCCID", stageR2T, false, func(h *testHost, ttag uint16) []byte {
		return h2cData(h, connectCID+5, ttag, 0, 16, false)
	}, pdu.FESInvalidHeaderField, offCCCID},
	{"H2CData out of order", stageR2T, false, func(h *testHost, ttag uint16) []byte {
		return h2cData(h, connectCID, ttag, 512, 16, false)
	}, pdu.FESDataOutOfRange, 0},
	{"H2CData beyond the R2T", stageR2T, false, func(h *testHost, ttag uint16) []byte {
		return h2cData(h, connectCID, ttag, 0, 2048, true)
	}, pdu.FESDataOutOfRange, 0},
	{"H2CData LAST_PDU early", stageR2T, false, func(h *testHost, ttag uint16) []byte {
		return h2cData(h, connectCID, ttag, 0, 16, true)
	}, pdu.FESInvalidHeaderField, offFlags},
	{"H2CData DATAL disagrees with PLEN", stageR2T, false, func(h *testHost, ttag uint16) []byte {
		b := h2cData(h, connectCID, ttag, 0, 16, false)
		binary.LittleEndian.PutUint32(b[16:], 15)
		return b
	}, pdu.FESInvalidHeaderField, 16},
}

func TestMalformedPDUs(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	good := adminSession(t, tt.addr, testNQN, false, false)
	goodIO := ioSession(t, tt.addr, testNQN, good.cntlid, 1, false, false, true)
	for _, tc := range malformedClasses {
		t.Run(tc.name, func(t *testing.T) {
			h := rawHost(t, tt.addr, tc.stage, tc.digest)
			var ttag uint16
			if tc.stage == stageR2T {
				ttag = connectByR2T(t, h)
			}
			bad := tc.pdu(h, ttag)
			h.write(bad)
			term, err := h.expectClosed()
			if err != nil {
				t.Fatal(err)
			}
			if term == nil {
				t.Fatalf("closed without a C2HTermReq, want FES %v", tc.fes)
			}
			if term.FES() != tc.fes || term.FEI() != tc.fei {
				t.Errorf("C2HTermReq FES %v FEI %d, want FES %v FEI %d", term.FES(), term.FEI(), tc.fes, tc.fei)
			}
			// Its data is the header in error (at least its common header).
			if got := term[:pdu.TermReqHeaderSize]; got[0] != byte(pdu.TypeC2HTermReq) {
				t.Errorf("termination request type %#x", got[0])
			}
		})
		// The well-behaved connections are unaffected.
		goodIO.mustOK(first(goodIO.rw(nvme.IOWrite, 1, 0, 1, make([]byte, testBlockSize), 0)), tc.name+": write on the good connection")
		var ka nvme.SQE
		ka.SetOpcode(uint8(nvme.AdminKeepAlive))
		good.mustOK(first(good.exec(&ka, nil, 0)), tc.name+": keep alive on the good admin queue")
	}
	if n := tt.tr.terminations.load(); n != uint64(len(malformedClasses)) {
		t.Errorf("transport counted %d terminations, want %d", n, len(malformedClasses))
	}
}

// TestTermReqCarriesHeader: the C2HTermReq's data is the offending PDU's header as received.
func TestTermReqCarriesHeader(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	h := rawHost(t, tt.addr, stageIC, false)
	bad := capsuleHeader(h)
	bad[2] = 64 // hlen
	h.write(bad)
	var termData []byte
	for {
		fr, err := h.nextErr()
		if err != nil {
			break
		}
		if fr.Type() == pdu.TypeC2HTermReq {
			termData = fr.Data
		}
	}
	// The common header was at fault, so its 8 bytes are what is carried (HLEN is not trusted).
	if !bytes.Equal(termData, bad[:pdu.CommonHeaderSize]) {
		t.Errorf("termination data % x, want the common header % x", termData, bad[:pdu.CommonHeaderSize])
	}
}

// rawHost dials and does the IC exchange unless st is stageNone.
func rawHost(t *testing.T, addr string, st stage, digest bool) *testHost {
	t.Helper()
	if st == stageNone {
		return dialRaw(t, addr)
	}
	return dialHost(t, addr, digest, digest)
}

// connectByR2T sends a Connect whose 1024 bytes of data go by R2T and returns the R2T's TTAG.
func connectByR2T(t *testing.T, h *testHost) uint16 {
	t.Helper()
	var sqe nvme.SQE
	sqe.SetFabrics(nvme.FabricsConnect)
	sqe.Connect().SetSQSIZE(31)
	sqe.SetCID(connectCID)
	h.capsule(&sqe, nil, false, nvme.ConnectDataSize)
	fr := h.next()
	if fr.Type() != pdu.TypeR2T {
		t.Fatalf("after a Connect without in-capsule data got %v, want r2t", fr.Type())
	}
	r := pdu.R2THeaderOf(fr.Header)
	if r.CCCID() != connectCID || r.R2TOffset() != 0 || r.R2TLen() != nvme.ConnectDataSize {
		t.Fatalf("R2T cccid %d offset %d len %d", r.CCCID(), r.R2TOffset(), r.R2TLen())
	}
	return r.TTAG()
}

// TestDataDigestError: in-capsule data whose digest is wrong fails that command with
// Transient Transport Error (the framing is intact, as SPDK does) and the connection goes on.
func TestDataDigestError(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	admin := adminSession(t, tt.addr, testNQN, true, true)
	h := ioSession(t, tt.addr, testNQN, admin.cntlid, 1, true, true, true)
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(nvme.IOWrite))
	sqe.SetNSID(1)
	sqe.SetBlockCount(1)
	sqe.SetCID(500)
	sqe.SetPSDT(nvme.PSDTSGL)
	sqe.SGL1().SetInCapsule(testBlockSize)
	b := make([]byte, 256)
	n := h.send.EncodeCapsuleCmd(b, (*[pdu.SQESize]byte)(&sqe), testBlockSize)
	out := append(b[:n:n], make([]byte, testBlockSize)...)
	out = binary.LittleEndian.AppendUint32(out, 0xBADBAD) // not the CRC32C of zeros
	h.write(out)
	cqe, _, _ := h.await(500)
	if cqe.Status() != nvme.StatusTransientTransportError || cqe.DNR() {
		t.Errorf("write with a bad data digest: %v (dnr %v), want transient transport error, retryable", cqe.Status(), cqe.DNR())
	}
	h.mustOK(first(h.rw(nvme.IOWrite, 1, 0, 1, make([]byte, testBlockSize), 0)), "write after the digest error")
}

// TestHostTermReq: a host's H2CTermReq closes the connection without an answer.
func TestHostTermReq(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	h := dialHost(t, tt.addr, false, false)
	b := make([]byte, pdu.TermReqPDUSizeMax)
	n := pdu.EncodeTermReq(b, pdu.TypeH2CTermReq, pdu.FESPDUSequenceError, 0, make([]byte, 24))
	h.write(b[:n])
	term, err := h.expectClosed()
	if err != nil {
		t.Fatal(err)
	}
	if term != nil {
		t.Errorf("the target answered an H2CTermReq with a C2HTermReq (fes %v)", term.FES())
	}
}
