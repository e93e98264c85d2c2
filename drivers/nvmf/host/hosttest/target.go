package hosttest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
)

// Target is a small NVMe/TCP controller for unit tests: one namespace
// of memory, just enough of the admin command set for Connect, and reads and
// writes with every data path the host must handle (in-capsule, R2T with
// MAXH2CDATA chunks, C2HData split in pieces, SUCCESS flag, digests). It is
// NOT the project's target (protocols/nvmf is) and never a figure: it lets
// the host's tests run without the guest. Blocking I/O, a goroutine per
// connection: tests only.
// SubNQN is the fake controller's subsystem NQN.
const SubNQN = "nqn.2024-01.io.sluice:fake"

// Target is the fake controller; set its exported fields before Start.
type Target struct {
	t  testing.TB
	ln net.Listener
	// Behaviour, set before the first connection.
	CPDA        uint8
	MaxH2CData  uint32
	IOCCSZ      uint32 // 16-byte units; 4 means no in-capsule data
	C2HChunk    uint32 // split C2HData into pieces this big; 0 = one PDU
	C2HSuccess  bool   // end reads with C2HData SUCCESS instead of a response
	BlockSize   uint32
	Blocks      uint64
	GrantDigest bool // grant the digests asked for
	// hostile, when set, takes over a connection right after the ICResp.
	Hostile func(c net.Conn)

	mu     sync.Mutex // lock: the namespace's bytes and the connection list, shared by the connections' goroutines
	mem    []byte
	conns  []net.Conn
	exited []chan struct{} // closed as each goroutine ends; close waits for all
	cmds   int
}

// New listens on 127.0.0.1 and closes when t ends.
func New(t testing.TB) *Target {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ft := &Target{t: t, ln: ln, MaxH2CData: 8192, IOCCSZ: 4 + 8192/16, BlockSize: 512, Blocks: 2048, GrantDigest: true}
	t.Cleanup(ft.close)
	return ft
}

func (ft *Target) goroutine() chan struct{} {
	done := make(chan struct{})
	ft.mu.Lock()
	ft.exited = append(ft.exited, done)
	ft.mu.Unlock()
	return done
}

// Start accepts connections.
func (ft *Target) Start() {
	ft.mem = make([]byte, uint64(ft.BlockSize)*ft.Blocks)
	ft.accept(ft.ln)
}

// Stop closes the listener and every connection: the target is down, and
// connecting is refused, until Resume.
func (ft *Target) Stop() {
	ft.mu.Lock()
	ln := ft.ln
	ft.mu.Unlock()
	ln.Close()
	ft.DropAll()
}

// Resume listens again on the same port, with the namespace's data kept.
func (ft *Target) Resume() error {
	ft.mu.Lock()
	addr := ft.ln.Addr().String()
	ft.mu.Unlock()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ft.mu.Lock()
	ft.ln = ln
	ft.mu.Unlock()
	ft.accept(ln)
	return nil
}

func (ft *Target) accept(ln net.Listener) {
	done := ft.goroutine()
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ft.mu.Lock()
			ft.conns = append(ft.conns, c)
			ft.mu.Unlock()
			done := ft.goroutine()
			go func() {
				defer close(done)
				defer c.Close()
				(&conn{ft: ft, c: c}).serve()
			}()
		}
	}()
}

// DropAll closes every connection, as a target restart would.
func (ft *Target) DropAll() {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, c := range ft.conns {
		c.Close()
	}
	ft.conns = nil
}

func (ft *Target) close() {
	ft.mu.Lock()
	ln := ft.ln
	ft.mu.Unlock()
	ln.Close()
	ft.DropAll()
	ft.mu.Lock()
	exited := ft.exited
	ft.mu.Unlock()
	for _, done := range exited {
		<-done
	}
}

// Addr is where the target listens.
func (ft *Target) Addr() (addr, port, subnqn string) {
	a := ft.ln.Addr().(*net.TCPAddr)
	return "127.0.0.1", fmt.Sprint(a.Port), SubNQN
}

type conn struct {
	ft     *Target
	c      net.Conn
	framer *pdu.Framer
	send   pdu.Sender
	lim    pdu.Limits
	csts   uint32
	admin  bool
	// a write waiting for its data: CID, LBA, expected bytes, got so far
	pending map[uint16]*pendingWrite
	aers    []uint16
}

type pendingWrite struct {
	off  uint64
	data []byte
	got  uint32
}

func (fc *conn) serve() {
	ft := fc.ft
	lim := pdu.Limits{ICDone: true, HeaderDigest: true, DataDigest: true, CapsuleDataMax: 64 << 10, DataMax: ft.MaxH2CData}
	var err error
	fc.framer, err = pdu.NewFramer(pdu.FramerConfig{Role: pdu.Controller, Limits: lim})
	if err != nil {
		panic(err)
	}
	fc.pending = map[uint16]*pendingWrite{}
	buf := make([]byte, 64<<10)
	for {
		n, err := fc.c.Read(buf)
		if err != nil {
			return
		}
		rest := buf[:n] // Feed may take less than all: loop
		for len(rest) > 0 {
			k := fc.framer.Feed(rest)
			rest = rest[k:]
			if !fc.drain() {
				return
			}
			if k == 0 && len(rest) > 0 {
				panic("fake target: framer stuck")
			}
		}
		if !fc.drain() {
			return
		}
	}
}

// drain handles every complete PDU; false ends the connection.
func (fc *conn) drain() bool {
	for {
		fr, err := fc.framer.Next()
		if err != nil {
			return false
		}
		if fr.Kind == pdu.KindNeedMore {
			return true
		}
		switch fr.Type() {
		case pdu.TypeICReq:
			p := pdu.ICReqOf(fr.Header)
			hd, dd := p.DGST()&pdu.DGSTHeader != 0, p.DGST()&pdu.DGSTData != 0
			if !fc.ft.GrantDigest {
				hd, dd = false, false
			}
			out := make([]byte, pdu.ICRespSize)
			pdu.EncodeICResp(out, pdu.ICRespFields{CPDA: fc.ft.CPDA, HeaderDigest: hd, DataDigest: dd, MAXH2CData: fc.ft.MaxH2CData})
			fc.write(out)
			if fc.ft.Hostile != nil {
				fc.ft.Hostile(fc.c)
				return false
			}
			fc.send = pdu.Sender{HeaderDigest: hd, DataDigest: dd, PDA: p.HPDA()}
			fc.lim = pdu.Limits{ICDone: true, HeaderDigest: hd, DataDigest: dd, PDA: fc.ft.CPDA,
				CapsuleDataMax: 64 << 10, DataMax: fc.ft.MaxH2CData}
			if err := fc.framer.SetLimits(fc.lim); err != nil {
				panic(err)
			}
		case pdu.TypeCapsuleCmd:
			sqe := (*nvme.SQE)(pdu.CapsuleCmdOf(fr.Header).SQE())
			fc.ft.mu.Lock()
			fc.ft.cmds++
			fc.ft.mu.Unlock()
			fc.command(sqe, fr.Data)
		case pdu.TypeH2CData:
			p := pdu.DataHeaderOf(fr.Header)
			w := fc.pending[p.CCCID()]
			if w == nil || p.DataOffset() != w.got {
				fc.ft.t.Errorf("fake target: H2CData CCCID %d DATAO %d unexpected", p.CCCID(), p.DataOffset())
				return false
			}
			copy(w.data[w.got:], fr.Data)
			w.got += uint32(len(fr.Data))
			if w.got == uint32(len(w.data)) {
				fc.ft.mu.Lock()
				copy(fc.ft.mem[w.off:], w.data)
				fc.ft.mu.Unlock()
				delete(fc.pending, p.CCCID())
				fc.respond(p.CCCID(), nvme.StatusSuccess, 0)
			}
		case pdu.TypeH2CTermReq:
			return false
		}
	}
}

func (fc *conn) write(b []byte) {
	if _, err := fc.c.Write(b); err != nil && !errors.Is(err, net.ErrClosed) {
		// The host hung up: fine, the read loop ends.
		_ = err
	}
}

func (fc *conn) respond(cid uint16, st nvme.Status, dw0 uint32) {
	var cqe nvme.CQE
	cqe.SetCID(cid)
	cqe.SetStatus(st)
	cqe.SetDW0(dw0)
	b := make([]byte, 64)
	n := fc.send.EncodeCapsuleResp(b, (*[pdu.CQESize]byte)(&cqe))
	fc.write(b[:n])
}

// sendData sends data to the host as C2HData (in c2hChunk pieces), then the
// response unless SUCCESS ends it.
func (fc *conn) sendData(cid uint16, data []byte) {
	chunk := fc.ft.C2HChunk
	if chunk == 0 {
		chunk = uint32(len(data))
	}
	for off := uint32(0); off < uint32(len(data)); off += chunk {
		n := min(chunk, uint32(len(data))-off)
		last := off+n == uint32(len(data))
		f := pdu.DataFields{CCCID: cid, DataOffset: off, DataLen: n, Last: last, Success: last && fc.ft.C2HSuccess}
		hdr := make([]byte, 256)
		hn := fc.send.EncodeC2HData(hdr, f)
		out := append(hdr[:hn:hn], data[off:off+n]...)
		if fc.send.DataDigest {
			var d [4]byte
			pdu.PutDigest(d[:], pdu.Digest(data[off:off+n]))
			out = append(out, d[:]...)
		}
		fc.write(out)
	}
	if !fc.ft.C2HSuccess {
		fc.respond(cid, nvme.StatusSuccess, 0)
	}
}

func (fc *conn) command(sqe *nvme.SQE, icd []byte) {
	ft := fc.ft
	cid := sqe.CID()
	if sqe.Opcode() == nvme.OpcodeFabrics {
		switch sqe.FCType() {
		case nvme.FabricsConnect:
			fc.admin = sqe.Connect().QID() == 0
			fc.respond(cid, nvme.StatusSuccess, 1)
		case nvme.FabricsPropertyGet:
			var v uint64
			switch sqe.Property().Offset() {
			case nvme.PropCAP:
				v = uint64(nvme.CAPFields{MQES: 1023, CQR: true, TO: 1, CSS: nvme.CAPCSSNVM}.CAP())
			case nvme.PropVS:
				v = uint64(nvme.Version1_4)
			case nvme.PropCSTS:
				v = uint64(fc.csts)
			}
			var cqe nvme.CQE
			cqe.SetCID(cid)
			cqe.SetResult64(v)
			b := make([]byte, 64)
			n := fc.send.EncodeCapsuleResp(b, (*[pdu.CQESize]byte)(&cqe))
			fc.write(b[:n])
		case nvme.FabricsPropertySet:
			if sqe.Property().Offset() == nvme.PropCC && nvme.CC(sqe.Property().Value()).Fields().EN {
				fc.csts = 1
			}
			fc.respond(cid, nvme.StatusSuccess, 0)
		default:
			fc.respond(cid, nvme.StatusInvalidOpcode, 0)
		}
		return
	}
	if fc.admin {
		fc.adminCommand(sqe)
		return
	}
	switch sqe.Opcode() {
	case uint8(nvme.IORead):
		off, n := fc.rangeOf(sqe)
		data := make([]byte, n)
		ft.mu.Lock()
		copy(data, ft.mem[off:off+n])
		ft.mu.Unlock()
		fc.sendData(cid, data)
	case uint8(nvme.IOWrite):
		off, n := fc.rangeOf(sqe)
		if sqe.SGL1().Type() == nvme.SGLDataBlock {
			if uint64(len(icd)) != n {
				fc.respond(cid, nvme.StatusDataSGLLengthInvalid, 0)
				return
			}
			ft.mu.Lock()
			copy(ft.mem[off:], icd)
			ft.mu.Unlock()
			fc.respond(cid, nvme.StatusSuccess, 0)
			return
		}
		fc.pending[cid] = &pendingWrite{off: off, data: make([]byte, n)}
		b := make([]byte, 64)
		k := fc.send.EncodeR2T(b, pdu.R2TFields{CCCID: cid, TTAG: cid + 100, R2TOffset: 0, R2TLen: uint32(n)})
		fc.write(b[:k])
	case uint8(nvme.IOFlush), uint8(nvme.IOWriteZeroes), uint8(nvme.IODatasetManagement):
		fc.respond(cid, nvme.StatusSuccess, 0)
	default:
		fc.respond(cid, nvme.StatusInvalidOpcode, 0)
	}
}

func (fc *conn) adminCommand(sqe *nvme.SQE) {
	ft := fc.ft
	cid := sqe.CID()
	switch sqe.Opcode() {
	case uint8(nvme.AdminIdentify):
		var page [4096]byte
		switch sqe.CNS() {
		case nvme.CNSController:
			id := (*nvme.IdentifyController)(&page)
			id.SetIOCCSZ(ft.IOCCSZ)
			id.SetONCS(1<<2 | 1<<3)
			id.SetSubNQN(SubNQN)
		case nvme.CNSActiveNSList:
			if sqe.NSID() < 1 {
				binary.LittleEndian.PutUint32(page[:], 1)
			}
		case nvme.CNSNamespace:
			id := (*nvme.IdentifyNamespace)(&page)
			id.SetNSZE(ft.Blocks)
			id.SetNCAP(ft.Blocks)
			lbads := uint8(0)
			for v := ft.BlockSize; v > 1; v >>= 1 {
				lbads++
			}
			id.SetLBAF(0, nvme.LBAFormat{LBADS: lbads})
		}
		fc.sendData(cid, page[:])
	case uint8(nvme.AdminGetLogPage):
		fc.sendData(cid, make([]byte, sqe.LogDwords()*4))
	case uint8(nvme.AdminSetFeatures):
		fc.respond(cid, nvme.StatusSuccess, nvme.NumberOfQueues(8, 8))
	case uint8(nvme.AdminKeepAlive):
		fc.respond(cid, nvme.StatusSuccess, 0)
	case uint8(nvme.AdminAsyncEventReq):
		fc.aers = append(fc.aers, cid) // held, as a real controller holds it
	default:
		fc.respond(cid, nvme.StatusInvalidOpcode, 0)
	}
}

func (fc *conn) rangeOf(sqe *nvme.SQE) (off, n uint64) {
	bs := uint64(fc.ft.BlockSize)
	return sqe.SLBA() * bs, uint64(sqe.BlockCount()) * bs
}
