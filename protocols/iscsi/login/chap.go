package login

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"strconv"
)

// CHAP over iSCSI (RFC 7143 §12.1.3, RFC 1994 §4.1):
//
//	I->T  CHAP_A=<A1,A2,…>
//	T->I  CHAP_A=<A> CHAP_I=<I> CHAP_C=<C>
//	I->T  CHAP_N=<N> CHAP_R=<R>  [CHAP_I=<I'> CHAP_C=<C'> for mutual CHAP]
//	T->I  [CHAP_N=<N'> CHAP_R=<R'>]
//
// R = H(I ‖ secret ‖ C), where I is one octet.

type chapState uint8

const (
	chapIdle          chapState = iota // AuthMethod=CHAP not chosen
	chapWaitAlgorithm                  // AuthMethod=CHAP answered; CHAP_A next
	chapWaitResponse                   // challenge sent; CHAP_N and CHAP_R next
	chapDone
)

// chapChallengeSizeMax is RFC 7143 §12.1.3's bound on a binary challenge.
const chapChallengeSizeMax = 1024

type chapExchange struct {
	state     chapState
	alg       CHAPAlgorithm
	id        byte
	challenge []byte
}

// chapResponse computes R = H(id ‖ secret ‖ challenge) (RFC 1994 §4.1).
func chapResponse(alg CHAPAlgorithm, id byte, secret, challenge []byte) []byte {
	h := alg.newHash()
	h.Write([]byte{id})
	h.Write(secret)
	h.Write(challenge)
	return h.Sum(nil)
}

// negotiateAuthMethod answers the AuthMethod list with the first method the policy
// allows (§6.2.1): CHAP when we hold initiator secrets, None unless authentication is
// required. Nothing acceptable fails the login as an authentication failure.
func (m *Machine) negotiateAuthMethod(value string) (Status, string) {
	items, _ := splitList(value)
	for _, it := range items {
		switch {
		case it == valueCHAP && len(m.auth.Initiators) > 0:
			m.chap.state = chapWaitAlgorithm
		case it == valueNone && !m.auth.Required:
			m.authDone = true
		default:
			continue
		}
		m.params.AuthMethod = it
		m.answer(keyAuthMethod, it)
		return StatusSuccess, ""
	}
	return StatusAuthenticationFailure, fmt.Sprintf("AuthMethod=%q: none acceptable (CHAP configured %v, required %v)",
		value, len(m.auth.Initiators) > 0, m.auth.Required)
}

// chapStep runs the CHAP exchange with the CHAP keys of one request.
func (m *Machine) chapStep(sec map[string]string) (Status, string) {
	switch m.chap.state {
	case chapWaitAlgorithm:
		list, ok := sec[keyCHAPA]
		if !ok || len(sec) != 1 {
			return StatusAuthenticationFailure, "expected CHAP_A alone"
		}
		return m.chapChallenge(list)
	case chapWaitResponse:
		if _, ok := sec[keyCHAPA]; ok {
			return StatusAuthenticationFailure, "CHAP_A sent twice"
		}
		return m.chapVerify(sec)
	case chapDone:
		return StatusInitiatorError, "CHAP keys after CHAP completed"
	}
	return StatusInitiatorError, fmt.Sprintf("CHAP keys with AuthMethod=%q", m.params.AuthMethod)
}

// chapChallenge picks the first algorithm of the initiator's CHAP_A list that we allow
// and sends an identifier and a challenge as long as the digest.
func (m *Machine) chapChallenge(list string) (Status, string) {
	items, _ := splitList(list)
	var alg CHAPAlgorithm
	for _, it := range items {
		v, ok := parseNumber(it)
		if !ok || v > 255 {
			continue
		}
		for _, allowed := range m.cfg.CHAPAlgorithms {
			if CHAPAlgorithm(v) == allowed {
				alg = allowed
				break
			}
		}
		if alg != 0 {
			break
		}
	}
	if alg == 0 {
		return StatusAuthenticationFailure, fmt.Sprintf("CHAP_A=%q: no algorithm we allow", list)
	}
	buf := make([]byte, 1+alg.Size())
	if _, err := io.ReadFull(m.cfg.Rand, buf); err != nil {
		return StatusTargetError, fmt.Sprintf("CHAP challenge: %v", err)
	}
	m.chap = chapExchange{state: chapWaitResponse, alg: alg, id: buf[0], challenge: buf[1:]}
	m.params.CHAPAlgorithm = alg
	m.answer(keyCHAPA, strconv.Itoa(int(alg)))
	m.answer(keyCHAPI, strconv.Itoa(int(buf[0])))
	m.answer(keyCHAPC, encodeHex(buf[1:]))
	return StatusSuccess, ""
}

// chapVerify checks CHAP_N/CHAP_R against the policy's secrets in constant time and,
// when the initiator sends its own CHAP_I/CHAP_C, answers them (mutual CHAP).
func (m *Machine) chapVerify(sec map[string]string) (Status, string) {
	name, okN := sec[keyCHAPN]
	resp, okR := sec[keyCHAPR]
	if !okN || !okR {
		return StatusAuthenticationFailure, "CHAP_N or CHAP_R missing"
	}
	got, ok := decodeBinary(resp)
	if !ok {
		return StatusAuthenticationFailure, fmt.Sprintf("CHAP_R=%q is not a binary value", resp)
	}
	var secret []byte
	for _, s := range m.auth.Initiators {
		if s.Name == name {
			secret = s.Secret
			break
		}
	}
	if secret == nil {
		return StatusAuthenticationFailure, fmt.Sprintf("CHAP_N=%q unknown", name)
	}
	want := chapResponse(m.chap.alg, m.chap.id, secret, m.chap.challenge)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return StatusAuthenticationFailure, fmt.Sprintf("CHAP_R mismatch for CHAP_N=%q", name)
	}
	m.params.CHAPName = name

	idStr, hasI := sec[keyCHAPI]
	chalStr, hasC := sec[keyCHAPC]
	switch {
	case hasI != hasC:
		return StatusAuthenticationFailure, "mutual CHAP needs both CHAP_I and CHAP_C"
	case !hasI && m.auth.MutualRequired:
		return StatusAuthenticationFailure, "mutual CHAP required"
	case !hasI:
		m.chapDone()
		return StatusSuccess, ""
	case m.auth.Target == nil:
		return StatusAuthenticationFailure, "mutual CHAP requested but not configured"
	}
	id, ok := parseNumber(idStr)
	if !ok || id > 255 {
		return StatusAuthenticationFailure, fmt.Sprintf("CHAP_I=%q, want 0..255", idStr)
	}
	chal, ok := decodeBinary(chalStr)
	if !ok || len(chal) == 0 || len(chal) > chapChallengeSizeMax {
		return StatusAuthenticationFailure, fmt.Sprintf("CHAP_C of %d bytes, want 1..%d", len(chal), chapChallengeSizeMax)
	}
	if bytes.Equal(chal, m.chap.challenge) {
		// RFC 7143 §12.1.3: the initiator MUST NOT reuse our challenge; we MUST check.
		return StatusAuthenticationFailure, "CHAP_C reflects our challenge"
	}
	if subtle.ConstantTimeCompare(m.auth.Target.Secret, secret) == 1 {
		// §12.1.3: one secret per direction; answering would let a reflection succeed.
		return StatusAuthenticationFailure, "target secret equals the initiator's"
	}
	m.answer(keyCHAPN, m.auth.Target.Name)
	m.answer(keyCHAPR, encodeHex(chapResponse(m.chap.alg, byte(id), m.auth.Target.Secret, chal)))
	m.params.MutualCHAP = true
	m.chapDone()
	return StatusSuccess, ""
}

func (m *Machine) chapDone() {
	m.chap.state = chapDone
	m.authDone = true
}
