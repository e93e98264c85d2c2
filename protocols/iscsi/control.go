package iscsi

import (
	"strings"

	"github.com/sluice-storage/sluice/protocols/iscsi/login"
	"github.com/sluice-storage/sluice/protocols/iscsi/pdu"
)

// queueControl queues a control PDU (its header built by build) with data,
// which must stay valid until written (inline, or a fresh slice).
func (c *Conn) queueControl(build func(h *pdu.BHS), data []byte) {
	if c.sq.free() == 0 {
		c.close("send queue full: the initiator does not read")
		return
	}
	o := c.sq.push()
	h := pdu.BHSOf(o.hdr[:])
	build(h)
	c.sq.seal(o, data)
	c.pdusOut.Add(1)
}

// reject queues a Reject carrying the rejected header (RFC 7143 §11.17).
func (c *Conn) reject(h *pdu.BHS, reason pdu.RejectReason) {
	if c.sq.free() == 0 {
		c.close("send queue full: the initiator does not read")
		return
	}
	o := c.sq.push()
	copy(o.inline[:], h[:])
	r := pdu.BHSOf(o.hdr[:]).InitReject()
	r.SetReason(reason)
	var exp, max uint32
	if c.sess != nil {
		exp, max = c.sns()
	}
	r.SetSNs(c.nextStatSN(), exp, max)
	c.sq.seal(o, o.inline[:pdu.BHSSize])
	c.pdusOut.Add(1)
}

// loginRequest runs one Login Request through the login machine (RFC 7143
// §6, §11.12) and queues its response.
func (c *Conn) loginRequest(h *pdu.BHS, data []byte) {
	lr := h.LoginRequest()
	if !c.loginSeen {
		// RFC 7143 §11.13.3: the first Login Response starts StatSN; take
		// the value the initiator expects.
		c.loginSeen = true
		c.statSN = lr.ExpStatSN()
	}
	req := login.Request{
		Transit: lr.Transit(), Continue: lr.Continue(),
		CSG: login.Stage(lr.CSG()), NSG: login.Stage(lr.NSG()),
		VersionMax: lr.VersionMax(), VersionMin: lr.VersionMin(),
		ISID: login.ISID(lr.ISID()), TSIH: lr.TSIH(), CID: lr.CID(), Data: data,
	}
	resp, action := c.machine.Step(req)
	var s *Session
	if action == login.ActionFullFeature {
		var st login.Status
		s, st = c.admit(lr)
		if st != login.StatusSuccess {
			resp = login.Response{Status: st, CSG: resp.CSG, VersionMax: resp.VersionMax,
				VersionActive: resp.VersionActive}
			action = login.ActionClose
		}
	}
	// The response's data belongs to the machine until its next Step: copy
	// it (login is the control path).
	out := append([]byte(nil), resp.Data...)
	cmdSN := lr.CmdSN()
	c.queueControl(func(b *pdu.BHS) {
		r := b.InitLoginResponse()
		r.SetTransit(resp.Transit)
		r.SetContinue(resp.Continue)
		r.SetStages(pdu.Stage(resp.CSG), pdu.Stage(resp.NSG))
		r.SetVersions(resp.VersionMax, resp.VersionActive)
		r.SetISID(lr.ISID())
		r.SetTSIH(resp.TSIH)
		b.SetITT(h.ITT())
		r.SetStatus(pdu.LoginStatus(resp.Status))
		depth := QueueDepthDefault
		if s != nil {
			depth = s.depth
		}
		r.SetSNs(c.nextStatSN(), cmdSN, cmdSN+uint32(depth)-1)
	}, out)
	switch action {
	case login.ActionClose:
		if err := c.machine.Failure(); err != nil {
			c.srv.log.Info("iscsi login failed", "conn", c.id, "peer", c.peer.String(), "err", err)
		}
		c.closeAfterSend("login failed")
	case login.ActionFullFeature:
		c.fullFeature(s)
	}
}

// loginFailed answers a malformed Login Request with a failure response
// (RFC 7143 §11.13.5: 0x0200) and closes.
func (c *Conn) loginFailed(h *pdu.BHS, st pdu.LoginStatus) {
	lr := h.LoginRequest()
	c.queueControl(func(b *pdu.BHS) {
		r := b.InitLoginResponse()
		r.SetVersions(0, 0)
		r.SetISID(lr.ISID())
		b.SetITT(h.ITT())
		r.SetStatus(st)
		r.SetSNs(c.nextStatSN(), lr.CmdSN(), lr.CmdSN())
	}, nil)
	c.closeAfterSend("malformed login")
}

// admit makes the session of a login that is about to succeed, or says
// why it may not: a node's session limit or digest requirements.
func (c *Conn) admit(lr *pdu.LoginRequest) (*Session, login.Status) {
	p := c.machine.Params()
	s := &Session{initiator: p.InitiatorName, isid: p.ISID, tsih: p.TSIH,
		expCmdSN: lr.CmdSN(), depth: QueueDepthDefault}
	if p.SessionType == login.SessionDiscovery {
		s.discovery = true
		s.depth = QueueDepthMax
	} else {
		n := c.dir.snap.nodes[strings.ToLower(p.TargetName)]
		switch {
		case n == nil:
			return nil, login.StatusNotFound
		case int(n.sessionCount.Load()) >= n.cfg.MaxSessions:
			return nil, login.StatusOutOfResources
		case n.cfg.HeaderDigest && !p.HeaderDigest, n.cfg.DataDigest && !p.DataDigest:
			return nil, login.StatusAuthorizationFailure
		}
		s.node = n
		s.depth = n.cfg.QueueDepth
	}
	s.maxCmdSN = s.expCmdSN + uint32(s.depth) - 1
	return s, login.StatusSuccess
}

// fullFeature enters Full Feature Phase with the negotiated values, and
// moves a normal session's connection to its node's reactor.
func (c *Conn) fullFeature(s *Session) {
	c.params = *c.machine.Params()
	p := &c.params
	c.limits = pdu.Limits{MaxRecvDataSegmentLength: p.MaxRecvDataSegmentLength,
		ImmediateData: p.ImmediateData, FirstBurstLength: p.FirstBurstLength}
	// Digests start with the first PDU after the final login response
	// (RFC 7143 §13.1); that response is already queued without them.
	c.framer.SetDigests(p.HeaderDigest, p.DataDigest)
	c.sq.hdrDigest, c.sq.dataDigest = p.HeaderDigest, p.DataDigest
	c.machine = nil
	c.cid.Store(uint32(p.CID))
	c.tsihView.Store(uint32(p.TSIH))
	name := p.InitiatorName
	c.initiator.Store(&name)
	s.conn = c
	c.sess = s
	if s.discovery {
		c.setState(connFull)
		return
	}
	c.node = s.node
	target := s.node.cfg.Name
	c.target.Store(&target)
	if c.node.owner == c.owner {
		c.enterNode()
		return
	}
	// Move, once this poll is over (Poll calls move): the queued login
	// response and any pipelined PDUs in the framer go along.
	c.setState(connMoving)
}

// move hands the connection to its node's reactor; nothing of it runs here
// after the post. It runs at the end of the poll that saw the login end.
func (c *Conn) move() {
	c.send()
	c.detachFromReactor()
	to := c.node.owner
	c.reactorID.Store(int32(to.Index()))
	if err := to.PostFunc(func() {
		c.owner = to
		c.attach()
		c.enterNode()
	}); err != nil {
		from := c.owner
		c.reactorID.Store(int32(from.Index()))
		from.PostFunc(func() { c.attach(); c.close("node reactor stopping") })
	}
}

// enterNode attaches the session to its node, on the node's reactor.
func (c *Conn) enterNode() {
	if err := c.node.attach(c, c.sess); err != nil {
		c.sess.node = nil
		c.node = nil
		c.close(err.Error())
		return
	}
	c.setState(connFull)
}

// nopOut answers a NOP-Out (RFC 7143 §11.18): a ping gets a NOP-In with
// its data; the answer to our ping clears it.
func (c *Conn) nopOut(h *pdu.BHS, data []byte) {
	no := h.NOPOut()
	if !c.commandSN(h, no.CmdSN()) {
		return
	}
	if no.TTT() != pdu.ReservedTag {
		if c.pinging && no.TTT() == c.pingTTT {
			c.pinging = false
		}
		return
	}
	if h.ITT() == pdu.ReservedTag {
		return // no answer wanted
	}
	var echo []byte
	if len(data) > 0 {
		echo = append([]byte(nil), data[:min(len(data), int(c.params.MaxSendDataSegmentLength))]...)
	}
	exp, max := c.sns()
	c.queueControl(func(b *pdu.BHS) {
		ni := b.InitNOPIn()
		b.SetITT(h.ITT())
		b.SetLUN(h.LUN())
		ni.SetTTT(pdu.ReservedTag)
		ni.SetSNs(c.nextStatSN(), exp, max)
	}, echo)
}

// textRequest answers a Text Request (RFC 7143 §11.10): SendTargets, and
// NotUnderstood for keys that negotiate nothing in Full Feature Phase.
func (c *Conn) textRequest(h *pdu.BHS, data []byte) {
	tr := h.TextRequest()
	if !c.commandSN(h, tr.CmdSN()) {
		return
	}
	if tr.TTT() != pdu.ReservedTag && c.textRest != nil && tr.TTT() == c.textTTT {
		c.textReply(h, nil) // the next piece of a long answer
		return
	}
	text, err := c.text.Add(data, !tr.Continue())
	if err != nil {
		c.text.Reset()
		c.reject(h, pdu.ReasonProtocolError)
		return
	}
	if tr.Continue() {
		c.textReply(h, []byte{}) // RFC 7143 §11.10.2: an empty answer asks for the rest
		return
	}
	pairs, err := login.ParseKeys(text)
	c.text.Reset()
	if err != nil {
		c.reject(h, pdu.ReasonProtocolError)
		return
	}
	var out []byte
	for _, kv := range pairs {
		switch kv.Key {
		case "SendTargets":
			st := login.SessionNormal
			if c.sess.discovery {
				st = login.SessionDiscovery
			}
			snap := c.srv.snap.Load()
			records := snap.sendTargets(c.sess.initiator, c.peer.Addr(), c.local.Addr())
			var target string
			if c.node != nil {
				target = c.node.cfg.Name
			}
			out = login.AppendSendTargets(out, kv.Value, st, target, records)
		default:
			out = login.AppendPair(out, kv.Key, "NotUnderstood")
		}
	}
	c.textRest = out
	c.textReply(h, nil)
}

// textReply sends the next piece of c.textRest (or empty, for a C-bit
// request), with C and a TTT while more is left.
func (c *Conn) textReply(h *pdu.BHS, empty []byte) {
	rest := c.textRest
	var piece []byte
	more := false
	if empty == nil {
		piece, rest = login.SplitText(rest, int(c.params.MaxSendDataSegmentLength))
		more = len(rest) > 0
		if more {
			c.textRest = rest
			c.textTTT++
			if c.textTTT == pdu.ReservedTag {
				c.textTTT = 1
			}
		} else {
			c.textRest = nil
		}
	}
	ttt := uint32(pdu.ReservedTag)
	if more {
		ttt = c.textTTT
	}
	exp, max := c.sns()
	c.queueControl(func(b *pdu.BHS) {
		tr := b.InitTextResponse()
		b.SetITT(h.ITT())
		b.SetFinal(!more && empty == nil)
		tr.SetContinue(more)
		tr.SetTTT(ttt)
		tr.SetSNs(c.nextStatSN(), exp, max)
	}, piece)
}

// logoutRequest answers a Logout Request (RFC 7143 §11.14, §11.15) and
// closes the connection once the answer is written.
func (c *Conn) logoutRequest(h *pdu.BHS) {
	lo := h.LogoutRequest()
	if !c.commandSN(h, lo.CmdSN()) {
		return
	}
	code := pdu.LogoutClosed
	switch lo.Reason() {
	case pdu.LogoutCloseConnection:
		if lo.CID() != c.params.CID {
			code = pdu.LogoutCIDNotFound
		}
	case pdu.LogoutRecovery:
		code = pdu.LogoutRecoveryNotSupported // ErrorRecoveryLevel 0
	}
	exp, max := c.sns()
	c.queueControl(func(b *pdu.BHS) {
		r := b.InitLogoutResponse()
		b.SetITT(h.ITT())
		r.SetResponse(code)
		r.SetSNs(c.nextStatSN(), exp, max)
	}, nil)
	if code == pdu.LogoutClosed {
		c.closeAfterSend("logout")
	}
}
