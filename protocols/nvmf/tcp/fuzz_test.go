package tcp

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
)

// One target per fuzzing process: each input gets fresh connections to it.
var (
	fuzzOnce   sync.Once
	fuzzTarget *testTarget
)

// fuzzSetup starts the shared target. Its reactors live until the process exits (a fuzz
// worker runs inputs until killed), so it is not stopped by t.Cleanup of the first input.
func fuzzSetup(f *testing.F) *testTarget {
	fuzzOnce.Do(func() { fuzzTarget = newTestTarget(&noCleanup{f}, targetConfig{}) })
	return fuzzTarget
}

// noCleanup runs a testing.TB without cleanups, for state that outlives one fuzz input.
type noCleanup struct{ *testing.F }

func (noCleanup) Cleanup(func()) {}

// FuzzConnStream feeds arbitrary bytes to a fresh connection, then half-closes it. Whatever
// the bytes, the target must not panic, must send only well-framed controller-to-host PDUs
// (nothing after a C2HTermReq), must close the connection, and must release it (no
// connection, qpair or request leaks).
func FuzzConnStream(f *testing.F) {
	tt := fuzzSetup(f)
	for _, seed := range streamSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		conn, err := net.DialTimeout("tcp", tt.addr, hostTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(hostTimeout))
		go func() {
			conn.Write(stream)
			conn.(*net.TCPConn).CloseWrite()
		}()
		checkControllerStream(t, conn)
		waitNoConnections(t, tt)
	})
}

// checkControllerStream reads until the target closes, checking every PDU.
func checkControllerStream(t *testing.T, conn net.Conn) {
	t.Helper()
	f, err := pdu.NewFramer(pdu.FramerConfig{Role: pdu.Host,
		Limits: pdu.Limits{ICDone: false, DataMax: 1 << 20}, BufferSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	terminated, icDone := false, false
	for {
		n, err := conn.Read(buf)
		for off := 0; off < n; {
			off += f.Feed(buf[off:n])
			for {
				fr, err := f.Next()
				var fe *pdu.FieldError
				if errors.As(err, &fe) {
					t.Fatalf("the target sent a malformed PDU: %v", fe)
				}
				if fr.Kind == pdu.KindNeedMore {
					break
				}
				if terminated {
					t.Fatalf("%v after the C2HTermReq", fr.Type())
				}
				switch fr.Type() {
				case pdu.TypeICResp:
					ic := pdu.ICRespOf(fr.Header)
					icDone = true
					lim := pdu.Limits{ICDone: true, HeaderDigest: ic.DGST()&pdu.DGSTHeader != 0,
						DataDigest: ic.DGST()&pdu.DGSTData != 0, DataMax: 1 << 20}
					if err := f.SetLimits(lim); err != nil {
						t.Fatal(err)
					}
				case pdu.TypeC2HTermReq:
					terminated = true
				default:
					if !icDone {
						t.Fatalf("%v before the ICResp", fr.Type())
					}
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || !isTimeout(err) {
				return // closed (or reset): the target let go of the connection
			}
			t.Fatalf("connection still open after %v", hostTimeout)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// waitNoConnections waits until the target holds no connection (each input's is released).
func waitNoConnections(t *testing.T, tt *testTarget) {
	t.Helper()
	deadline := time.Now().Add(hostTimeout)
	for {
		n := int32(0)
		for _, g := range tt.tr.groups {
			n += g.connCount.Load()
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections not released", n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// streamSeeds are valid sessions and near misses: IC, Connect, enable, Identify, a write in
// capsule and one by R2T, with and without digests.
func streamSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, dg := range []bool{false, true} {
		s := pdu.Sender{HeaderDigest: dg, DataDigest: dg}
		var out []byte
		ic := make([]byte, pdu.ICReqSize)
		pdu.EncodeICReq(ic, pdu.ICReqFields{HeaderDigest: dg, DataDigest: dg})
		out = append(out, ic...)
		seeds = append(seeds, append([]byte(nil), out...))
		capsule := func(sqe *nvme.SQE, data []byte, sgl uint32) {
			sqe.SetPSDT(nvme.PSDTSGL)
			if data != nil {
				sqe.SGL1().SetInCapsule(uint32(len(data)))
			} else {
				sqe.SGL1().SetTransport(sgl)
			}
			b := make([]byte, 256)
			n := s.EncodeCapsuleCmd(b, (*[pdu.SQESize]byte)(sqe), uint32(len(data)))
			out = append(out, b[:n]...)
			out = append(out, data...)
			if dg && len(data) > 0 {
				d := make([]byte, 4)
				pdu.PutDigest(d, pdu.Digest(data))
				out = append(out, d...)
			}
		}
		var c nvme.SQE
		c.SetFabrics(nvme.FabricsConnect)
		c.SetCID(1)
		c.Connect().SetSQSIZE(31)
		var d nvme.ConnectData
		d.SetCNTLID(nvme.CNTLIDDynamic)
		d.SetSubNQN(testNQN)
		d.SetHostNQN(testHostNQN)
		capsule(&c, d[:], 0)
		seeds = append(seeds, append([]byte(nil), out...))
		var p nvme.SQE
		p.SetFabrics(nvme.FabricsPropertySet)
		p.SetCID(2)
		p.Property().SetOffset(nvme.PropCC)
		p.Property().SetValue(uint64(nvme.CCFields{EN: true, IOSQES: 6, IOCQES: 4}.CC()))
		capsule(&p, nil, 0)
		var id nvme.SQE
		id.SetOpcode(uint8(nvme.AdminIdentify))
		id.SetCID(3)
		id.SetCNS(nvme.CNSController)
		capsule(&id, nil, nvme.IdentifySize)
		seeds = append(seeds, append([]byte(nil), out...))
		var c2 nvme.SQE // a Connect whose data goes by R2T, answered
		c2.SetFabrics(nvme.FabricsConnect)
		c2.SetCID(4)
		c2.Connect().SetSQSIZE(31)
		capsule(&c2, nil, nvme.ConnectDataSize)
		b := make([]byte, 256)
		n := s.EncodeH2CData(b, pdu.DataFields{CCCID: 4, TTAG: 0, DataLen: nvme.ConnectDataSize, Last: true})
		out = append(out, b[:n]...)
		out = append(out, d[:]...)
		seeds = append(seeds, append([]byte(nil), out...))
	}
	seeds = append(seeds, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), nil)
	return seeds
}

// FuzzCommand sends one arbitrary command (SQE and in-capsule data) on an admin or an I/O queue
// of an enabled controller. Whatever the command, the target answers it with a response
// capsule for its CID (after C2HData for a successful read, or an R2T for data it wants), never
// panics and never terminates the connection: a command's contents are never a transport error.
func FuzzCommand(f *testing.F) {
	tt := fuzzSetup(f)
	var id nvme.SQE
	id.SetOpcode(uint8(nvme.AdminIdentify))
	id.SetCNS(nvme.CNSController)
	f.Add(id[:], []byte(nil), false, uint32(4096))
	var rd nvme.SQE
	rd.SetOpcode(uint8(nvme.IORead))
	rd.SetNSID(1)
	rd.SetBlockCount(8)
	f.Add(rd[:], []byte(nil), true, uint32(4096))
	var wr nvme.SQE
	wr.SetOpcode(uint8(nvme.IOWrite))
	wr.SetNSID(1)
	f.Add(wr[:], make([]byte, 512), true, uint32(0))
	var dsm nvme.SQE
	dsm.SetOpcode(uint8(nvme.IODatasetManagement))
	dsm.SetNSID(1)
	dsm.SetDSMDeallocate(true)
	f.Add(dsm[:], make([]byte, 16), true, uint32(0))
	var gl nvme.SQE
	gl.SetOpcode(uint8(nvme.AdminGetLogPage))
	gl.SetGetLogPage(nvme.LogErrorInfo, 64, 0)
	f.Add(gl[:], []byte(nil), false, uint32(64))
	f.Fuzz(func(t *testing.T, sqeBytes, data []byte, ioQueue bool, sglLen uint32) {
		if len(sqeBytes) < nvme.SQESize || len(data) > 8192 {
			return
		}
		admin := adminSession(t, tt.addr, testNQN, false, false)
		h := admin
		if ioQueue {
			h = ioSession(t, tt.addr, testNQN, admin.cntlid, 1, false, false, true)
		}
		sqe := nvme.SQE(sqeBytes[:nvme.SQESize])
		sqe.SetCID(0xBEEF)
		// The capsule is well formed; only the command is arbitrary. Its SGL is the one
		// the capsule's data needs (in capsule), or a transport SGL of sglLen.
		h.capsule(&sqe, data, len(data) > 0, sglLen%(256<<10))
		for {
			fr, err := h.nextErr()
			if err != nil {
				// A Disconnect command, or a reset/shutdown through Property Set on the
				// admin queue, may close the connection: that is the command working.
				if fc := sqe.FCType(); sqe.Opcode() == nvme.OpcodeFabrics && (fc == nvme.FabricsDisconnect || fc == nvme.FabricsPropertySet) {
					return
				}
				t.Fatalf("connection ended without a response: %v", err)
			}
			switch fr.Type() {
			case pdu.TypeCapsuleResp:
				if cqe := (*nvme.CQE)(pdu.CapsuleRespOf(fr.Header).CQE()); cqe.CID() != 0xBEEF {
					t.Fatalf("response for cid %d", cqe.CID())
				}
				return
			case pdu.TypeC2HData:
				if pdu.DataHeaderOf(fr.Header).CCCID() != 0xBEEF {
					t.Fatalf("C2HData for cid %d", pdu.DataHeaderOf(fr.Header).CCCID())
				}
				if fr.Common().Flags()&pdu.FlagSuccess != 0 {
					t.Fatalf("C2HData SUCCESS with SQ flow control on")
				}
			case pdu.TypeR2T:
				return // the command waits for its data; the connection closes with the test
			case pdu.TypeC2HTermReq:
				tr := pdu.TermReqOf(fr.Header)
				t.Fatalf("a command terminated the connection: fes %v fei %d", tr.FES(), tr.FEI())
			default:
				t.Fatalf("unexpected %v", fr.Type())
			}
		}
	})
}
