package tcp

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
)

// testHost is a minimal NVMe/TCP host for tests: blocking, one command at a time unless the
// test pipelines raw PDUs itself. It is built on the same codec as the target but shares none
// of the target's logic, and checks every PDU it receives.
type testHost struct {
	t       testing.TB
	conn    net.Conn
	framer  *pdu.Framer
	send    pdu.Sender
	maxH2C  uint32
	icd     uint32 // in-capsule data this queue may send
	cid     uint16
	cntlid  uint16
	sqFlow  bool // SQ flow control on (CATTR bit 2 clear)
	lastCQE nvme.CQE
	// successReads counts reads completed by a C2HData with SUCCESS (no response capsule).
	successReads int
}

const (
	testHostNQN = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000001"
	hostTimeout = 10 * time.Second
)

// dialRaw connects without the IC exchange.
func dialRaw(t testing.TB, addr string) *testHost {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, hostTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f, err := pdu.NewFramer(pdu.FramerConfig{Role: pdu.Host,
		Limits: pdu.Limits{ICDone: true, HeaderDigest: true, DataDigest: true, DataMax: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	return &testHost{t: t, conn: conn, framer: f, icd: 8192, sqFlow: true}
}

// dialHost connects and does the IC exchange with the digests asked for.
func dialHost(t testing.TB, addr string, hd, dd bool) *testHost {
	t.Helper()
	h := dialRaw(t, addr)
	f := h.framer
	var b [pdu.ICReqSize]byte
	n := pdu.EncodeICReq(b[:], pdu.ICReqFields{HeaderDigest: hd, DataDigest: dd})
	h.write(b[:n])
	fr := h.next()
	if fr.Type() != pdu.TypeICResp {
		t.Fatalf("after ICReq got %v, want icresp", fr.Type())
	}
	ic := pdu.ICRespOf(fr.Header)
	gotHD, gotDD := ic.DGST()&pdu.DGSTHeader != 0, ic.DGST()&pdu.DGSTData != 0
	if ic.CPDA() != 0 {
		t.Fatalf("ICResp CPDA %d, want 0 (Linux refuses others)", ic.CPDA())
	}
	h.maxH2C = ic.MAXH2CData()
	h.send = pdu.Sender{HeaderDigest: gotHD, DataDigest: gotDD}
	if err := f.SetLimits(pdu.Limits{ICDone: true, HeaderDigest: gotHD, DataDigest: gotDD, DataMax: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *testHost) write(b []byte) {
	h.t.Helper()
	h.conn.SetWriteDeadline(time.Now().Add(hostTimeout))
	if _, err := h.conn.Write(b); err != nil {
		h.t.Fatalf("host write: %v", err)
	}
}

// next returns the next whole PDU (C2HData data included), failing the test on a bad one.
func (h *testHost) next() pdu.Frame {
	h.t.Helper()
	fr, err := h.nextErr()
	if err != nil {
		h.t.Fatalf("host receive: %v", err)
	}
	return fr
}

// nextErr returns the next PDU or the error that ended the stream (io.EOF when the target
// closed it).
func (h *testHost) nextErr() (pdu.Frame, error) {
	for {
		fr, err := h.framer.Next()
		if err != nil {
			return fr, err
		}
		if fr.Kind == pdu.KindPDU {
			// Copy: the frame aliases the framer's buffer.
			fr.Header = append([]byte(nil), fr.Header...)
			fr.Data = append([]byte(nil), fr.Data...)
			return fr, nil
		}
		_, buf := h.framer.Space()
		h.conn.SetReadDeadline(time.Now().Add(hostTimeout))
		n, err := h.conn.Read(buf)
		if n > 0 {
			h.framer.Commit(n)
			continue
		}
		if err != nil {
			return pdu.Frame{}, err
		}
	}
}

// capsule sends sqe, with data in capsule when inCapsule, else announcing a transport SGL of
// sglLen bytes.
func (h *testHost) capsule(sqe *nvme.SQE, data []byte, inCapsule bool, sglLen uint32) {
	h.t.Helper()
	sqe.SetPSDT(nvme.PSDTSGL)
	if inCapsule {
		sqe.SGL1().SetInCapsule(uint32(len(data)))
	} else {
		sqe.SGL1().SetTransport(sglLen)
	}
	var b [pdu.CapsuleCmdSize + 2*pdu.DigestSize + 128]byte
	icd := uint32(0)
	if inCapsule {
		icd = uint32(len(data))
	}
	n := h.send.EncodeCapsuleCmd(b[:], (*[pdu.SQESize]byte)(sqe), icd)
	out := append([]byte(nil), b[:n]...)
	if inCapsule && len(data) > 0 {
		out = append(out, data...)
		if h.send.DataDigest {
			var d [4]byte
			pdu.PutDigest(d[:], pdu.Digest(data))
			out = append(out, d[:]...)
		}
	}
	h.write(out)
}

// exec runs one command: data to send (write), or readLen bytes to receive. It returns the
// completion and the data read.
func (h *testHost) exec(sqe *nvme.SQE, data []byte, readLen int) (nvme.CQE, []byte) {
	h.t.Helper()
	h.cid++
	sqe.SetCID(h.cid)
	switch {
	case len(data) > 0 && uint32(len(data)) <= h.icd:
		h.capsule(sqe, data, true, 0)
	case len(data) > 0:
		h.capsule(sqe, nil, false, uint32(len(data)))
	default:
		h.capsule(sqe, nil, false, uint32(readLen))
	}
	var got []byte
	for {
		fr := h.next()
		switch fr.Type() {
		case pdu.TypeR2T:
			r := pdu.R2THeaderOf(fr.Header)
			if r.CCCID() != h.cid {
				h.t.Fatalf("R2T for cid %d, want %d", r.CCCID(), h.cid)
			}
			h.h2c(r, data)
		case pdu.TypeC2HData:
			d := pdu.DataHeaderOf(fr.Header)
			if d.CCCID() != h.cid || d.DataOffset() != uint32(len(got)) {
				h.t.Fatalf("C2HData cccid %d datao %d, want %d and %d", d.CCCID(), d.DataOffset(), h.cid, len(got))
			}
			got = append(got, fr.Data...)
			if d.Common().Flags()&pdu.FlagSuccess != 0 {
				h.successReads++
				var cqe nvme.CQE
				cqe.SetCID(h.cid)
				return cqe, got
			}
		case pdu.TypeCapsuleResp:
			cqe := nvme.CQE(*pdu.CapsuleRespOf(fr.Header).CQE())
			if cqe.CID() != h.cid {
				h.t.Fatalf("response for cid %d, want %d", cqe.CID(), h.cid)
			}
			h.lastCQE = cqe
			return cqe, got
		case pdu.TypeC2HTermReq:
			tr := pdu.TermReqOf(fr.Header)
			h.t.Fatalf("target terminated: fes %v fei %d", tr.FES(), tr.FEI())
		default:
			h.t.Fatalf("unexpected %v", fr.Type())
		}
	}
}

// h2c answers an R2T with H2CData PDUs of at most MAXH2CDATA.
func (h *testHost) h2c(r *pdu.R2THeader, data []byte) {
	h.t.Helper()
	off, end := r.R2TOffset(), r.R2TOffset()+r.R2TLen()
	if int(end) > len(data) {
		h.t.Fatalf("R2T for %d..%d of a %d-byte write", off, end, len(data))
	}
	for off < end {
		n := min(end-off, h.maxH2C)
		var b [pdu.DataHeaderSize + 2*pdu.DigestSize + 128]byte
		k := h.send.EncodeH2CData(b[:], pdu.DataFields{CCCID: r.CCCID(), TTAG: r.TTAG(), DataOffset: off,
			DataLen: n, Last: off+n == end})
		out := append(append([]byte(nil), b[:k]...), data[off:off+n]...)
		if h.send.DataDigest {
			var d [4]byte
			pdu.PutDigest(d[:], pdu.Digest(data[off:off+n]))
			out = append(out, d[:]...)
		}
		h.write(out)
		off += n
	}
}

// mustOK fails the test unless cqe succeeded.
func (h *testHost) mustOK(cqe nvme.CQE, what string) {
	h.t.Helper()
	if !cqe.Status().Success() {
		h.t.Fatalf("%s: status %v (dnr %v)", what, cqe.Status(), cqe.DNR())
	}
}

// connect sends a Connect for qid and returns the completion.
func (h *testHost) connect(qid, depth uint16, subnqn string, cntlid uint16, kato time.Duration) nvme.CQE {
	h.t.Helper()
	return h.connectAs(testHostNQN, qid, depth, subnqn, cntlid, kato)
}

// connectAs is connect with hostnqn as the host NQN.
func (h *testHost) connectAs(hostnqn string, qid, depth uint16, subnqn string, cntlid uint16, kato time.Duration) nvme.CQE {
	h.t.Helper()
	var sqe nvme.SQE
	sqe.SetFabrics(nvme.FabricsConnect)
	c := sqe.Connect()
	c.SetQID(qid)
	c.SetSQSIZE(depth - 1)
	c.SetKATO(uint32(kato / time.Millisecond))
	if !h.sqFlow {
		c.SetCATTR(nvme.ConnectAttrDisableSQFlow)
	}
	var d nvme.ConnectData
	d.SetHostID([16]byte{1, 2, 3})
	d.SetCNTLID(cntlid)
	if err := d.SetSubNQN(subnqn); err != nil {
		h.t.Fatal(err)
	}
	if err := d.SetHostNQN(hostnqn); err != nil {
		h.t.Fatal(err)
	}
	cqe, _ := h.exec(&sqe, d[:], 0)
	if cqe.Status().Success() {
		h.cntlid = cqe.ConnectCNTLID()
	}
	return cqe
}

func (h *testHost) propGet(off uint32, size int) (uint64, nvme.CQE) {
	var sqe nvme.SQE
	sqe.SetFabrics(nvme.FabricsPropertyGet)
	sqe.Property().SetOffset(off)
	sqe.Property().SetSize(size)
	cqe, _ := h.exec(&sqe, nil, 0)
	return cqe.Result64(), cqe
}

func (h *testHost) propSet(off uint32, v uint64) nvme.CQE {
	var sqe nvme.SQE
	sqe.SetFabrics(nvme.FabricsPropertySet)
	sqe.Property().SetOffset(off)
	sqe.Property().SetSize(4)
	sqe.Property().SetValue(v)
	cqe, _ := h.exec(&sqe, nil, 0)
	return cqe
}

// enable sets CC.EN as Linux does (NVM command set, 4 KiB pages, 64/16-byte entries) and
// checks CSTS.RDY.
func (h *testHost) enable() {
	h.t.Helper()
	cc := nvme.CCFields{EN: true, IOSQES: 6, IOCQES: 4}.CC()
	h.mustOK(h.propSet(nvme.PropCC, uint64(cc)), "property set CC")
	v, cqe := h.propGet(nvme.PropCSTS, 4)
	h.mustOK(cqe, "property get CSTS")
	if !nvme.CSTS(v).Fields().RDY {
		h.t.Fatalf("CSTS %#x after enable, want RDY", v)
	}
}

func (h *testHost) identify(cns nvme.CNS, nsid uint32) ([]byte, nvme.CQE) {
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(nvme.AdminIdentify))
	sqe.SetCNS(cns)
	sqe.SetNSID(nsid)
	cqe, data := h.exec(&sqe, nil, nvme.IdentifySize)
	return data, cqe
}

func (h *testHost) getLogPage(lid nvme.LogPageID, nsid uint32, size uint32, off uint64) ([]byte, nvme.CQE) {
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(nvme.AdminGetLogPage))
	sqe.SetNSID(nsid)
	sqe.SetGetLogPage(lid, size, off)
	cqe, data := h.exec(&sqe, nil, int(size))
	return data, cqe
}

func (h *testHost) features(set bool, fid nvme.FeatureID, cdw11 uint32) nvme.CQE {
	var sqe nvme.SQE
	op := nvme.AdminGetFeatures
	if set {
		op = nvme.AdminSetFeatures
	}
	sqe.SetOpcode(uint8(op))
	sqe.SetFID(fid)
	sqe.SetCDW11(cdw11)
	cqe, _ := h.exec(&sqe, nil, 0)
	return cqe
}

// rw reads or writes blocks at lba of namespace nsid.
func (h *testHost) rw(op nvme.IOOpcode, nsid uint32, lba uint64, blocks uint32, data []byte, readLen int) (nvme.CQE, []byte) {
	var sqe nvme.SQE
	sqe.SetOpcode(uint8(op))
	sqe.SetNSID(nsid)
	sqe.SetSLBA(lba)
	sqe.SetBlockCount(blocks)
	return h.exec(&sqe, data, readLen)
}

// adminSession dials, connects an admin queue to subnqn and enables the controller.
func adminSession(t testing.TB, addr, subnqn string, hd, dd bool) *testHost {
	t.Helper()
	h := dialHost(t, addr, hd, dd)
	h.mustOK(h.connect(0, 32, subnqn, nvme.CNTLIDDynamic, 30*time.Second), "admin connect")
	h.enable()
	return h
}

// ioSession dials and connects I/O queue qid to controller cntlid.
func ioSession(t testing.TB, addr, subnqn string, cntlid, qid uint16, hd, dd, sqFlow bool) *testHost {
	t.Helper()
	h := dialHost(t, addr, hd, dd)
	h.sqFlow = sqFlow
	h.mustOK(h.connect(qid, 128, subnqn, cntlid, 0), fmt.Sprintf("I/O connect qid %d", qid))
	return h
}

// expectClosed reads until the target closes the connection, returning the termination
// request if one came first.
func (h *testHost) expectClosed() (term *pdu.TermReq, err error) {
	for {
		fr, err := h.nextErr()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return term, fmt.Errorf("connection still open after %v", hostTimeout)
			}
			return term, nil // EOF or reset: closed
		}
		if fr.Type() == pdu.TypeC2HTermReq {
			term = pdu.TermReqOf(fr.Header)
		}
	}
}

// submit sends sqe (no data, or a transport SGL of readLen) without waiting, and returns its CID.
func (h *testHost) submit(sqe *nvme.SQE, readLen int) uint16 {
	h.t.Helper()
	h.cid++
	sqe.SetCID(h.cid)
	h.capsule(sqe, nil, false, uint32(readLen))
	return h.cid
}

// await reads PDUs until the response to cid, returning it and any data read for it; other
// responses that arrive first are returned in others.
func (h *testHost) await(cid uint16) (cqe nvme.CQE, data []byte, others []nvme.CQE) {
	h.t.Helper()
	for {
		fr := h.next()
		switch fr.Type() {
		case pdu.TypeC2HData:
			if pdu.DataHeaderOf(fr.Header).CCCID() == cid {
				data = append(data, fr.Data...)
			}
		case pdu.TypeCapsuleResp:
			c := nvme.CQE(*pdu.CapsuleRespOf(fr.Header).CQE())
			if c.CID() == cid {
				return c, data, others
			}
			others = append(others, c)
		default:
			h.t.Fatalf("awaiting cid %d: unexpected %v", cid, fr.Type())
		}
	}
}
