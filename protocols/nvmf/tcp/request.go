package tcp

import (
	"fmt"

	"github.com/sluice-storage/sluice/protocols/nvmf"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
)

// reqState is where a request is on its connection (SPDK's spdk_nvmf_tcp_req_state, fewer of
// them: parsing is synchronous here). Every change goes through Conn.setState, which keeps the
// per-state counts that teardown checks (K2 in doc.go).
type reqState uint8

const (
	reqFree        reqState = iota // on the free stack
	reqNew                         // its capsule is arriving or being parsed
	reqNeedBuffer                  // waiting for a data buffer from the reactor's pool
	reqTransferH2C                 // R2T queued or sent; H2CData arriving into its buffer
	reqExecuting                   // with the core (Qpair.Exec .. QpairOps.Complete)
	reqResponding                  // C2HData and/or the response capsule queued to send
	reqStateCount
)

var reqStateNames = [reqStateCount]string{"free", "new", "need-buffer", "transfer-h2c", "executing", "responding"}

func (s reqState) String() string {
	if s < reqStateCount {
		return reqStateNames[s]
	}
	return fmt.Sprintf("reqState(%d)", uint8(s))
}

// pduHeaderRoom holds the header part of any PDU a request sends (C2HData or R2T): a 24-byte
// header, its digest and padding up to the host's data alignment, at most 128 bytes (HPDA 31).
const pduHeaderRoom = (pdu.PDAMax + 1) * 4

// Fails to compile unless a data PDU header with digest fits before the largest alignment.
const _ uint = pduHeaderRoom - (pdu.DataHeaderSize + pdu.DigestSize)

// request is one command slot of a connection: the core's Request plus the transport's state.
// Owner: the connection's reactor. The slots are an array made at connection setup; Tag is
// the index, and the TTAG of its R2T.
type request struct {
	nvmf.Request

	state    reqState
	buf      []byte // a pool buffer (FreeBuf at free), or nil: in-capsule data or none
	h2cGot   uint32 // R2T data received so far
	h2cLen   uint32 // R2T length
	ddgstBad bool   // a data digest failed: answer Transient Transport Error
	// Send-side storage: nothing is allocated per PDU.
	hdr   [pduHeaderRoom]byte                        // C2HData or R2T header part
	rsp   [pdu.CapsuleRespSize + pdu.DigestSize]byte // response capsule
	ddgst [pdu.DigestSize]byte                       // C2HData data digest
}
