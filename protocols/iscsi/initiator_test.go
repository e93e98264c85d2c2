package iscsi

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/protocols/iscsi/login"
	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
)

// ini is a minimal iSCSI initiator for protocol tests: one connection,
// no digests, everything in the test goroutine.
type ini struct {
	t         testing.TB
	lun       uint64 // the LUN field of the commands it sends (SAM-5 format)
	c         net.Conn
	cmdSN     uint32
	expStatSN uint32
	itt       uint32
	maxCmdSN  uint32
}

// iniOptions are the keys a test changes from dial's defaults.
type iniOptions struct {
	name      string // initiator name
	isid      byte
	discovery bool
	keys      [][2]string // extra key=value pairs
}

// dial connects to tt and logs in (operational stage only, AuthMethod None).
func dial(t testing.TB, tt *testTarget, o iniOptions) *ini {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(int(tt.port)), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	i := &ini{t: t, c: c, cmdSN: 1, itt: 0x100}
	if o.name == "" {
		o.name = "iqn.2024-01.io.sluice:test-initiator"
	}
	var text []byte
	text = login.AppendPair(text, "InitiatorName", o.name)
	if o.discovery {
		text = login.AppendPair(text, "SessionType", "Discovery")
	} else {
		text = login.AppendPair(text, "TargetName", tt.iqn)
		text = login.AppendPair(text, "SessionType", "Normal")
	}
	for _, kv := range append([][2]string{{"AuthMethod", "None"}}, o.keys...) {
		text = login.AppendPair(text, kv[0], kv[1])
	}
	// Security stage, then operational, then Full Feature Phase.
	h, _ := i.loginStep(o.isid, pdu.StageSecurityNegotiation, pdu.StageOperationalNegotiation, text)
	if st := h.LoginResponse().Status(); st != 0 {
		t.Fatalf("login (security): status %#04x", uint16(st))
	}
	var op []byte
	for _, kv := range [][2]string{{"HeaderDigest", "None"}, {"DataDigest", "None"}, {"ImmediateData", "Yes"},
		{"InitialR2T", "No"}, {"MaxRecvDataSegmentLength", "65536"}, {"MaxBurstLength", "262144"},
		{"FirstBurstLength", "65536"}} {
		op = login.AppendPair(op, kv[0], kv[1])
	}
	for range 4 {
		var data []byte
		h, data = i.loginStep(o.isid, pdu.StageOperationalNegotiation, pdu.StageFullFeature, op)
		lr := h.LoginResponse()
		if st := lr.Status(); st != 0 {
			t.Fatalf("login (operational): status %#04x", uint16(st))
		}
		if lr.Transit() && lr.NSG() == pdu.StageFullFeature {
			return i
		}
		// The target offered keys of its own: accept them as offered.
		sent, _ := login.ParseKeys(op)
		got, _ := login.ParseKeys(data)
		op = op[:0]
		for _, kv := range got {
			offered := true
			for _, s := range sent {
				offered = offered && s.Key != kv.Key
			}
			if offered {
				op = login.AppendPair(op, kv.Key, kv.Value)
			}
		}
	}
	t.Fatal("login: no transit to Full Feature Phase")
	return nil
}

func (i *ini) loginStep(isid byte, csg, nsg pdu.Stage, text []byte) (*pdu.BHS, []byte) {
	var h pdu.BHS
	lr := h.InitLoginRequest()
	lr.SetTransit(true)
	lr.SetStages(csg, nsg)
	lr.SetISID([6]byte{0x80, 0, 0, 0, 0, isid})
	lr.SetCID(1)
	lr.SetCmdSN(i.cmdSN)
	lr.SetExpStatSN(i.expStatSN)
	h.SetITT(i.itt)
	i.send(&h, text)
	return i.recvOp(pdu.OpLoginResponse)
}

// send writes a PDU, its data padded.
func (i *ini) send(h *pdu.BHS, data []byte) {
	i.t.Helper()
	h.SetDataSegmentLength(uint32(len(data)))
	buf := append(append(h[:0:0], h[:]...), data...)
	buf = append(buf, pdu.Pad(uint32(len(data)))...)
	i.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := i.c.Write(buf); err != nil {
		i.t.Fatalf("send %v: %v", h.Opcode(), err)
	}
}

// recv reads one PDU; err io.EOF or a timeout when none comes.
func (i *ini) recv(wait time.Duration) (*pdu.BHS, []byte, error) {
	i.c.SetReadDeadline(time.Now().Add(wait))
	var h pdu.BHS
	if _, err := io.ReadFull(i.c, h[:]); err != nil {
		return nil, nil, err
	}
	n := h.PaddedDataSize()
	data := make([]byte, n)
	if _, err := io.ReadFull(i.c, data); err != nil {
		return nil, nil, err
	}
	if err := h.Check(pdu.RoleInitiator, pdu.Limits{MaxRecvDataSegmentLength: 1 << 20}); err != nil {
		i.t.Fatalf("target sent a bad %v: %v", h.Opcode(), err)
	}
	if h.Opcode() != pdu.OpDataIn && h.Opcode() != pdu.OpR2T {
		if sn := binary.BigEndian.Uint32(h[24:]); h.Opcode() != pdu.OpNOPIn || h.ITT() != pdu.ReservedTag {
			i.expStatSN = sn + 1
		}
	}
	if h.Opcode() != pdu.OpLoginResponse {
		i.maxCmdSN = binary.BigEndian.Uint32(h[32:])
	}
	return &h, data[:h.DataSegmentLength()], nil
}

// recvOp reads PDUs until one of op arrives (NOP-In pings are answered).
func (i *ini) recvOp(op pdu.Opcode) (*pdu.BHS, []byte) {
	i.t.Helper()
	for {
		h, data, err := i.recv(waitTimeout)
		if err != nil {
			i.t.Fatalf("waiting for %v: %v", op, err)
		}
		if h.Opcode() == op {
			return h, data
		}
	}
}

// expectNothing fails if a PDU arrives within wait.
func (i *ini) expectNothing(wait time.Duration) {
	i.t.Helper()
	h, _, err := i.recv(wait)
	var ne net.Error
	if err == nil {
		i.t.Fatalf("unexpected %v (ITT %#x)", h.Opcode(), h.ITT())
	}
	if !errors.As(err, &ne) || !ne.Timeout() {
		i.t.Fatalf("connection ended: %v", err)
	}
}

// command sends a SCSI Command with immediate data; it returns the ITT.
func (i *ini) command(cdb []byte, edtl uint32, read, write bool, imm []byte, final bool) uint32 {
	var h pdu.BHS
	sc := h.InitSCSICommand()
	h.SetFinal(final)
	sc.SetRead(read)
	sc.SetWrite(write)
	sc.SetAttr(pdu.AttrSimple)
	sc.SetExpectedDataTransferLength(edtl)
	sc.SetCmdSN(i.cmdSN)
	sc.SetExpStatSN(i.expStatSN)
	sc.SetCDB(cdb)
	h.SetLUN(i.lun)
	i.itt++
	h.SetITT(i.itt)
	i.cmdSN++
	i.send(&h, imm)
	return i.itt
}

// dataOut sends one Data-Out.
func (i *ini) dataOut(itt, ttt, dataSN, offset uint32, final bool, data []byte) {
	var h pdu.BHS
	do := h.InitDataOut()
	h.SetFinal(final)
	h.SetITT(itt)
	do.SetTTT(ttt)
	do.SetDataSN(dataSN)
	do.SetBufferOffset(offset)
	do.SetExpStatSN(i.expStatSN)
	i.send(&h, data)
}

// response waits for the status of itt: a SCSI Response or a Data-In with
// S; it returns the status and the data-in gathered.
func (i *ini) response(itt uint32) (status uint8, data []byte, h *pdu.BHS) {
	i.t.Helper()
	for {
		h, seg, err := i.recv(waitTimeout)
		if err != nil {
			i.t.Fatalf("waiting for ITT %#x: %v", itt, err)
		}
		switch {
		case h.Opcode() == pdu.OpDataIn && h.ITT() == itt:
			data = append(data, seg...)
			if h.DataIn().HasStatus() {
				return h.DataIn().Status(), data, h
			}
		case h.Opcode() == pdu.OpSCSIResponse && h.ITT() == itt:
			return h.SCSIResponse().Status(), data, h
		case h.Opcode() == pdu.OpReject:
			i.t.Fatalf("rejected: reason %v", h.Reject().Reason())
		}
	}
}

// nop sends a NOP-Out ping (ITT set, wants a NOP-In).
func (i *ini) nop(ttt uint32, immediate bool) uint32 {
	var h pdu.BHS
	no := h.InitNOPOut()
	h.SetImmediate(immediate)
	no.SetTTT(ttt)
	no.SetCmdSN(i.cmdSN)
	no.SetExpStatSN(i.expStatSN)
	if ttt != pdu.ReservedTag {
		h.SetITT(pdu.ReservedTag)
		i.send(&h, nil)
		return pdu.ReservedTag
	}
	i.itt++
	h.SetITT(i.itt)
	if !immediate {
		i.cmdSN++
	}
	i.send(&h, []byte("ping"))
	return i.itt
}
