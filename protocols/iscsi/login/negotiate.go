package login

import (
	"fmt"
	"strconv"
)

// Key names (RFC 7143 §12, §13).
const (
	keyInitiatorName            = "InitiatorName"
	keyInitiatorAlias           = "InitiatorAlias"
	keyTargetName               = "TargetName"
	keyTargetAlias              = "TargetAlias"
	keyTargetAddress            = "TargetAddress"
	keyTargetPortalGroupTag     = "TargetPortalGroupTag"
	keySessionType              = "SessionType"
	keySendTargets              = "SendTargets"
	keyAuthMethod               = "AuthMethod"
	keyCHAPA                    = "CHAP_A"
	keyCHAPI                    = "CHAP_I"
	keyCHAPC                    = "CHAP_C"
	keyCHAPN                    = "CHAP_N"
	keyCHAPR                    = "CHAP_R"
	keyHeaderDigest             = "HeaderDigest"
	keyDataDigest               = "DataDigest"
	keyMaxRecvDataSegmentLength = "MaxRecvDataSegmentLength"
	keyMaxBurstLength           = "MaxBurstLength"
	keyFirstBurstLength         = "FirstBurstLength"
	keyInitialR2T               = "InitialR2T"
	keyImmediateData            = "ImmediateData"
	keyMaxOutstandingR2T        = "MaxOutstandingR2T"
	keyDataPDUInOrder           = "DataPDUInOrder"
	keyDataSequenceInOrder      = "DataSequenceInOrder"
	keyDefaultTime2Wait         = "DefaultTime2Wait"
	keyDefaultTime2Retain       = "DefaultTime2Retain"
	keyErrorRecoveryLevel       = "ErrorRecoveryLevel"
	keyMaxConnections           = "MaxConnections"
	keyIFMarker                 = "IFMarker"
	keyOFMarker                 = "OFMarker"
	keyIFMarkInt                = "IFMarkInt"
	keyOFMarkInt                = "OFMarkInt"
	keyTaskReporting            = "TaskReporting"
)

// Reserved values (RFC 7143 §6.2).
const (
	valueNone          = "None"
	valueReject        = "Reject"
	valueIrrelevant    = "Irrelevant"
	valueNotUnderstood = "NotUnderstood"
	valueCRC32C        = "CRC32C"
	valueCHAP          = "CHAP"
	valueRFC3720       = "RFC3720" // TaskReporting without ResponseFence or FastAbort
)

type keyClass uint8

const (
	classIdentity    keyClass = iota + 1 // declared by the initiator, in any stage
	classSecurity                        // SecurityNegotiation only
	classOperational                     // LoginOperationalNegotiation only
	classTargetOnly                      // only a target sends these
	classFullFeature                     // text requests in Full Feature Phase only
)

type keyInfo struct {
	class keyClass
	// leadingOnly: Use LO, negotiated on the leading connection only (RFC 7143 §13).
	leadingOnly bool
	// discoveryIrrelevant: "Irrelevant when: SessionType=Discovery".
	discoveryIrrelevant bool
}

// keyTable is every key Sluice understands.
var keyTable = map[string]keyInfo{
	keyInitiatorName:            {class: classIdentity},
	keyInitiatorAlias:           {class: classIdentity},
	keyTargetName:               {class: classIdentity},
	keySessionType:              {class: classIdentity, leadingOnly: true},
	keyTargetAlias:              {class: classTargetOnly},
	keyTargetAddress:            {class: classTargetOnly},
	keyTargetPortalGroupTag:     {class: classTargetOnly},
	keySendTargets:              {class: classFullFeature},
	keyAuthMethod:               {class: classSecurity},
	keyCHAPA:                    {class: classSecurity},
	keyCHAPI:                    {class: classSecurity},
	keyCHAPC:                    {class: classSecurity},
	keyCHAPN:                    {class: classSecurity},
	keyCHAPR:                    {class: classSecurity},
	keyHeaderDigest:             {class: classOperational},
	keyDataDigest:               {class: classOperational},
	keyMaxRecvDataSegmentLength: {class: classOperational},
	keyMaxBurstLength:           {class: classOperational, leadingOnly: true, discoveryIrrelevant: true},
	keyFirstBurstLength:         {class: classOperational, leadingOnly: true, discoveryIrrelevant: true},
	keyInitialR2T:               {class: classOperational, leadingOnly: true, discoveryIrrelevant: true},
	keyImmediateData:            {class: classOperational, leadingOnly: true, discoveryIrrelevant: true},
	keyMaxOutstandingR2T:        {class: classOperational, leadingOnly: true, discoveryIrrelevant: true},
	keyDataPDUInOrder:           {class: classOperational, leadingOnly: true, discoveryIrrelevant: true},
	keyDataSequenceInOrder:      {class: classOperational, leadingOnly: true, discoveryIrrelevant: true},
	keyMaxConnections:           {class: classOperational, leadingOnly: true, discoveryIrrelevant: true},
	keyDefaultTime2Wait:         {class: classOperational, leadingOnly: true},
	keyDefaultTime2Retain:       {class: classOperational, leadingOnly: true},
	keyErrorRecoveryLevel:       {class: classOperational, leadingOnly: true},
	keyTaskReporting:            {class: classOperational, leadingOnly: true, discoveryIrrelevant: true},
	keyIFMarker:                 {class: classOperational},
	keyOFMarker:                 {class: classOperational},
	keyIFMarkInt:                {class: classOperational},
	keyOFMarkInt:                {class: classOperational},
}

// result functions (RFC 7143 §6.2.2).
type resultFunc uint8

const (
	resultMin resultFunc = iota + 1
	resultMax
)

// negotiateOperational answers one operational key offered by the initiator, by the
// rule RFC 7143 §13 gives it. A value outside the key's range or syntax is answered
// Reject and leaves the default; only a declarative key we cannot answer fails.
func (m *Machine) negotiateOperational(p Pair) (Status, string) {
	info := keyTable[p.Key]
	switch {
	case m.params.SessionType == SessionDiscovery && info.discoveryIrrelevant,
		!m.params.Leading && info.leadingOnly:
		m.answer(p.Key, valueIrrelevant)
		return StatusSuccess, ""
	}
	lim := &m.cfg.Limits
	par := &m.params
	switch p.Key {
	case keyHeaderDigest: // §13.1: list; None or CRC32C
		return m.negotiateDigest(p, lim.HeaderDigest, &par.HeaderDigest)
	case keyDataDigest:
		return m.negotiateDigest(p, lim.DataDigest, &par.DataDigest)
	case keyMaxRecvDataSegmentLength: // §13.12: declarative, per direction
		v, ok := parseNumber(p.Value)
		if !ok || v < dataLengthMin || v > dataLengthMax {
			return StatusInitiatorError, fmt.Sprintf("%s=%q, want %d..%d", p.Key, p.Value, dataLengthMin, dataLengthMax)
		}
		par.MaxSendDataSegmentLength = uint32(v)
		m.answer(p.Key, "")
		m.declareRecvLength()
	case keyMaxBurstLength: // §13.13: minimum
		if v, ok := m.negotiateNumber(p, dataLengthMin, dataLengthMax, uint64(lim.MaxBurstLength), resultMin); ok {
			par.MaxBurstLength = uint32(v)
		}
	case keyFirstBurstLength: // §13.14: minimum, never above MaxBurstLength
		if par.InitialR2T && !par.ImmediateData {
			m.answer(p.Key, valueIrrelevant) // irrelevant when InitialR2T=Yes and ImmediateData=No
			break
		}
		ours := min(lim.FirstBurstLength, par.MaxBurstLength)
		if v, ok := m.negotiateNumber(p, dataLengthMin, dataLengthMax, uint64(ours), resultMin); ok {
			par.FirstBurstLength = uint32(v)
		}
	case keyMaxOutstandingR2T: // §13.17: minimum
		if v, ok := m.negotiateNumber(p, 1, r2tMax, uint64(lim.MaxOutstandingR2T), resultMin); ok {
			par.MaxOutstandingR2T = uint16(v)
		}
	case keyMaxConnections: // §13.2: minimum
		if v, ok := m.negotiateNumber(p, 1, connectionsMax, uint64(lim.MaxConnections), resultMin); ok {
			par.MaxConnections = uint16(v)
		}
	case keyDefaultTime2Wait: // §13.15: maximum
		if v, ok := m.negotiateNumber(p, 0, time2Max, uint64(lim.DefaultTime2Wait), resultMax); ok {
			par.DefaultTime2Wait = uint16(v)
		}
	case keyDefaultTime2Retain: // §13.16: minimum
		if v, ok := m.negotiateNumber(p, 0, time2Max, uint64(lim.DefaultTime2Retain), resultMin); ok {
			par.DefaultTime2Retain = uint16(v)
		}
	case keyErrorRecoveryLevel: // §13.20: minimum; we implement level 0 only
		if v, ok := m.negotiateNumber(p, 0, errorRecoveryMax, errorRecoveryLevel, resultMin); ok {
			par.ErrorRecoveryLevel = uint8(v)
		}
	case keyInitialR2T: // §13.10: OR
		m.negotiateBool(p, lim.InitialR2T, true, &par.InitialR2T)
	case keyImmediateData: // §13.11: AND
		m.negotiateBool(p, lim.ImmediateData, false, &par.ImmediateData)
	case keyDataPDUInOrder: // §13.18: OR
		m.negotiateBool(p, lim.DataPDUInOrder, true, &par.DataPDUInOrder)
	case keyDataSequenceInOrder: // §13.19: OR
		m.negotiateBool(p, lim.DataSequenceInOrder, true, &par.DataSequenceInOrder)
	case keyTaskReporting: // §13: list; we implement RFC 3720 task reporting only
		items, _ := splitList(p.Value)
		answer := valueReject
		for _, it := range items {
			if it == valueRFC3720 {
				answer = it
				break
			}
		}
		m.answer(p.Key, answer)
	case keyIFMarker, keyOFMarker:
		// Obsoleted by RFC 7143 (§13): a compliant implementation SHOULD answer Reject and MAY
		// answer No. No is what RFC 3720 initiators expect from a target without markers.
		if _, ok := parseBool(p.Value); ok {
			m.answer(p.Key, "No")
		} else {
			m.answer(p.Key, valueReject)
		}
	case keyIFMarkInt, keyOFMarkInt: // obsoleted by RFC 7143 (§13): MUST answer Reject
		m.answer(p.Key, valueReject)
	default:
		panic(fmt.Sprintf("login: operational key %q has no rule", p.Key))
	}
	return StatusSuccess, ""
}

// negotiateDigest answers a HeaderDigest or DataDigest list with its first value our
// policy allows (list negotiation, §6.2.1). Answering Reject leaves None, which fails
// a policy that requires CRC32C.
func (m *Machine) negotiateDigest(p Pair, policy DigestPolicy, result *bool) (Status, string) {
	items, ok := splitList(p.Value)
	if ok {
		for _, it := range items {
			if (it == valueNone && policy != DigestRequire) || (it == valueCRC32C && policy != DigestNone) {
				m.answer(p.Key, it)
				*result = it == valueCRC32C
				return StatusSuccess, ""
			}
		}
	}
	m.answer(p.Key, valueReject)
	if policy == DigestRequire {
		return StatusInitiatorError, fmt.Sprintf("%s=%q: CRC32C is required", p.Key, p.Value)
	}
	return StatusSuccess, ""
}

// negotiateNumber answers a numerical key by its result function; out of [lo, hi] or
// not a number is answered Reject and reported !ok.
func (m *Machine) negotiateNumber(p Pair, lo, hi, ours uint64, f resultFunc) (uint64, bool) {
	v, ok := parseNumber(p.Value)
	if !ok || v < lo || v > hi {
		m.answer(p.Key, valueReject)
		return 0, false
	}
	if f == resultMin {
		v = min(v, ours)
	} else {
		v = max(v, ours)
	}
	m.answer(p.Key, strconv.FormatUint(v, 10))
	return v, true
}

// negotiateBool answers a boolean key: orFunc selects OR, otherwise AND.
func (m *Machine) negotiateBool(p Pair, ours, orFunc bool, result *bool) {
	v, ok := parseBool(p.Value)
	if !ok {
		m.answer(p.Key, valueReject)
		return
	}
	if orFunc {
		v = v || ours
	} else {
		v = v && ours
	}
	*result = v
	m.answer(p.Key, formatBool(v))
}

// offers lists the keys we must propose ourselves before leaving LoginOperational-
// Negotiation: keys the initiator did not mention whose RFC default our limits cannot
// live with (we are then the originator, RFC 7143 §6.2). unmet names such a key the
// initiator did send but with a value we answered Reject: its default now stands and
// the key cannot be negotiated again, so the login must fail.
func (m *Machine) offers() (o []Pair, unmet string) {
	lim := &m.cfg.Limits
	par := &m.params
	want := func(key, value string) {
		if _, done := m.offered[key]; done {
			return
		}
		if _, seen := m.received[key]; !seen {
			o = append(o, Pair{key, value})
		} else if m.answers[key] == valueReject && unmet == "" {
			unmet = fmt.Sprintf("%s=%q answered Reject; its default breaks our limit %s", key, m.received[key], value)
		}
	}
	if lim.HeaderDigest == DigestRequire {
		want(keyHeaderDigest, valueCRC32C)
	}
	if lim.DataDigest == DigestRequire {
		want(keyDataDigest, valueCRC32C)
	}
	if !par.Leading {
		return o, unmet
	}
	if lim.DefaultTime2Wait > defaultTime2Wait {
		want(keyDefaultTime2Wait, strconv.Itoa(int(lim.DefaultTime2Wait)))
	}
	if lim.DefaultTime2Retain < defaultTime2Retain {
		want(keyDefaultTime2Retain, strconv.Itoa(int(lim.DefaultTime2Retain)))
	}
	if par.SessionType == SessionDiscovery {
		return o, unmet
	}
	if lim.MaxBurstLength < par.MaxBurstLength {
		want(keyMaxBurstLength, strconv.Itoa(int(lim.MaxBurstLength)))
	}
	if !lim.ImmediateData && par.ImmediateData {
		want(keyImmediateData, "No")
	}
	// FirstBurstLength is irrelevant with InitialR2T=Yes and ImmediateData=No, counting
	// the ImmediateData=No we may be offering; otherwise it must not exceed either
	// MaxBurstLength, ours or the one the initiator answered (§13.14).
	immediate := par.ImmediateData && lim.ImmediateData
	fbl := min(lim.FirstBurstLength, lim.MaxBurstLength, par.MaxBurstLength)
	if (!par.InitialR2T || immediate) && fbl < par.FirstBurstLength {
		want(keyFirstBurstLength, strconv.Itoa(int(fbl)))
	}
	return o, unmet
}

// answerOffer takes the initiator's answer to a key we offered and checks it against
// the key's result function (RFC 7143 §6.2.2).
func (m *Machine) answerOffer(p Pair, offered string) (Status, string) {
	par := &m.params
	bad := func() (Status, string) {
		return StatusInitiatorError, fmt.Sprintf("answer %s=%s to our offer %s", p.Key, p.Value, offered)
	}
	off, _ := parseNumber(offered)
	v, num := parseNumber(p.Value)
	switch p.Key {
	case keyHeaderDigest, keyDataDigest:
		if p.Value != valueCRC32C {
			return bad()
		}
		if p.Key == keyHeaderDigest {
			par.HeaderDigest = true
		} else {
			par.DataDigest = true
		}
	case keyImmediateData:
		if p.Value != "No" {
			return bad()
		}
		par.ImmediateData = false
	case keyFirstBurstLength:
		if p.Value == valueIrrelevant && par.InitialR2T && !par.ImmediateData {
			break // our ImmediateData=No made it irrelevant meanwhile
		}
		fallthrough
	case keyMaxBurstLength:
		if !num || v < dataLengthMin || v > off {
			return bad()
		}
		if p.Key == keyMaxBurstLength {
			par.MaxBurstLength = uint32(v)
		} else {
			par.FirstBurstLength = uint32(v)
		}
	case keyDefaultTime2Wait:
		if !num || v < off || v > time2Max {
			return bad()
		}
		par.DefaultTime2Wait = uint16(v)
	case keyDefaultTime2Retain:
		if !num || v > off {
			return bad()
		}
		par.DefaultTime2Retain = uint16(v)
	default:
		return bad()
	}
	return StatusSuccess, ""
}

// declareRecvLength declares our MaxRecvDataSegmentLength once (§13.12).
func (m *Machine) declareRecvLength() {
	if m.declaredRecvLength {
		return
	}
	m.declaredRecvLength = true
	m.params.MaxRecvDataSegmentLength = m.cfg.Limits.MaxRecvDataSegmentLength
	m.out = AppendPair(m.out, keyMaxRecvDataSegmentLength, strconv.Itoa(int(m.cfg.Limits.MaxRecvDataSegmentLength)))
}
