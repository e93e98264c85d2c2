package login

import (
	"fmt"
	"strconv"
)

// Stage is a login stage, the CSG and NSG fields (RFC 7143 §11.12).
type Stage uint8

// Login stages; 2 is reserved.
const (
	StageSecurity    Stage = 0
	StageOperational Stage = 1
	StageFullFeature Stage = 3
)

func (s Stage) String() string {
	switch s {
	case StageSecurity:
		return "security"
	case StageOperational:
		return "operational"
	case StageFullFeature:
		return "full-feature"
	}
	return fmt.Sprintf("stage-%d", uint8(s))
}

// Status is Status-Class (high byte) and Status-Detail (low byte) of a Login Response
// (RFC 7143 §11.13).
type Status uint16

// Login statuses.
const (
	StatusSuccess                 Status = 0x0000
	StatusInitiatorError          Status = 0x0200
	StatusAuthenticationFailure   Status = 0x0201
	StatusAuthorizationFailure    Status = 0x0202 // forbidden
	StatusNotFound                Status = 0x0203
	StatusTargetRemoved           Status = 0x0204
	StatusUnsupportedVersion      Status = 0x0205
	StatusTooManyConnections      Status = 0x0206
	StatusMissingParameter        Status = 0x0207
	StatusCannotIncludeInSession  Status = 0x0208
	StatusSessionTypeNotSupported Status = 0x0209
	StatusSessionDoesNotExist     Status = 0x020a
	StatusInvalidDuringLogin      Status = 0x020b
	StatusTargetError             Status = 0x0300
	StatusServiceUnavailable      Status = 0x0301
	StatusOutOfResources          Status = 0x0302
)

// Class returns Status-Class.
func (s Status) Class() uint8 { return uint8(s >> 8) }

// Detail returns Status-Detail.
func (s Status) Detail() uint8 { return uint8(s) }

func (s Status) String() string { return fmt.Sprintf("%#04x", uint16(s)) }

// SessionType is the SessionType key.
type SessionType uint8

// Session types.
const (
	SessionNormal SessionType = iota
	SessionDiscovery
)

func (s SessionType) String() string {
	if s == SessionDiscovery {
		return "Discovery"
	}
	return "Normal"
}

// VersionSupported is the only iSCSI version (RFC 7143 §11.12: 0x00).
const VersionSupported = 0x00

// loginDataSizeMax bounds a Login Response's data segment: the RFC default
// MaxRecvDataSegmentLength, which holds until Full Feature Phase (§13.12).
const loginDataSizeMax = defaultRecvLength

// Request is what the state machine needs of a Login Request PDU.
type Request struct {
	Transit, Continue bool
	CSG, NSG          Stage
	VersionMax        uint8
	VersionMin        uint8
	ISID              ISID
	TSIH              uint16
	CID               uint16
	// Data is the request's data segment; Step reads it and keeps no reference.
	Data []byte
}

// Response is the Login Response to send. The caller adds ISID, ITT and the sequence
// numbers (StatSN, ExpCmdSN, MaxCmdSN), which belong to the connection.
type Response struct {
	Transit, Continue bool
	CSG, NSG          Stage
	VersionMax        uint8
	VersionActive     uint8
	TSIH              uint16
	Status            Status
	// Data is the key=value text to send; valid until the next Step.
	Data []byte
}

// Action is what the caller does after sending the Response.
type Action uint8

// Actions.
const (
	// ActionContinue: wait for the next Login Request.
	ActionContinue Action = iota
	// ActionFullFeature: the connection is in Full Feature Phase with Params; turn on
	// the negotiated digests and data segment limits from the next PDU.
	ActionFullFeature
	// ActionClose: the login failed; close the connection after sending.
	ActionClose
)

func (a Action) String() string {
	switch a {
	case ActionContinue:
		return "continue"
	case ActionFullFeature:
		return "full-feature"
	case ActionClose:
		return "close"
	}
	return fmt.Sprintf("action-%d", uint8(a))
}

// Params is the outcome of a login: identities, authentication and the operational
// values in force (RFC defaults for keys nobody negotiated).
type Params struct {
	SessionType    SessionType
	InitiatorName  string
	InitiatorAlias string
	TargetName     string
	ISID           ISID
	TSIH           uint16
	CID            uint16
	// Leading is set for the first connection of a new session (the request's TSIH was
	// 0). On another connection only connection-scope keys are negotiated: the
	// session-wide values come from the session.
	Leading bool

	AuthMethod    string // "None", "CHAP", or "" when none was negotiated
	CHAPAlgorithm CHAPAlgorithm
	CHAPName      string
	MutualCHAP    bool

	HeaderDigest bool
	DataDigest   bool
	// MaxRecvDataSegmentLength is ours: the most the initiator may send in one PDU.
	MaxRecvDataSegmentLength uint32
	// MaxSendDataSegmentLength is the initiator's declaration: the most we may send.
	MaxSendDataSegmentLength uint32
	MaxBurstLength           uint32
	FirstBurstLength         uint32
	InitialR2T               bool
	ImmediateData            bool
	MaxOutstandingR2T        uint16
	DataPDUInOrder           bool
	DataSequenceInOrder      bool
	DefaultTime2Wait         uint16
	DefaultTime2Retain       uint16
	ErrorRecoveryLevel       uint8
	MaxConnections           uint16
}

func defaultParams() Params {
	return Params{
		MaxRecvDataSegmentLength: defaultRecvLength,
		MaxSendDataSegmentLength: defaultRecvLength,
		MaxBurstLength:           defaultMaxBurst,
		FirstBurstLength:         defaultFirstBurst,
		InitialR2T:               true,
		ImmediateData:            true,
		MaxOutstandingR2T:        1,
		DataPDUInOrder:           true,
		DataSequenceInOrder:      true,
		DefaultTime2Wait:         defaultTime2Wait,
		DefaultTime2Retain:       defaultTime2Retain,
		MaxConnections:           1,
	}
}

type machineState uint8

const (
	stateLogin machineState = iota
	stateFullFeature
	stateFailed
)

// Machine is the target side of one connection's login (RFC 7143 §6, §12, §13): a pure
// state machine fed Login Requests, returning Login Responses and what to do next. It
// owns no socket, goroutine or timer (login timeouts are the caller's). Owner: the
// reactor that owns the connection; not safe for concurrent use.
type Machine struct {
	cfg *Config
	dir Directory

	state   machineState
	stage   Stage
	started bool // the first request fixed ISID, TSIH, CID and the starting stage
	isid    ISID
	tsih    uint16
	cid     uint16

	identified bool    // identities checked and the target looked up
	auth       *Auth   // the target's policy, or discovery's
	target     *Target // nil for discovery

	params Params
	reasm  Reassembler
	out    []byte // the response being built

	// received maps each key the initiator sent in this login to its value, answers to
	// our answer ("" for none): a key sent again with the same value gets the same
	// answer, a different value fails the login (L3).
	received map[string]string
	answers  map[string]string
	// offered maps keys we proposed to our value; awaiting holds those not answered.
	offered  map[string]string
	awaiting map[string]string

	authDone           bool
	authNegotiated     bool
	chap               chapExchange
	declaredRecvLength bool

	// A response larger than loginDataSizeMax goes out in pieces with the C bit.
	pending       []byte
	pendingResp   Response
	pendingAction Action
	pendingStage  Stage

	failed  Response
	failure error
}

// New returns the login state machine for one connection. cfg must be valid (conf/
// validates it at boot); an invalid one is a bug.
func New(cfg *Config, dir Directory) *Machine {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("login: invalid config: %v", err))
	}
	return &Machine{
		cfg:      cfg,
		dir:      dir,
		params:   defaultParams(),
		received: make(map[string]string),
		answers:  make(map[string]string),
		offered:  make(map[string]string),
		awaiting: make(map[string]string),
	}
}

// Params returns the negotiated values: complete once Step returned ActionFullFeature.
func (m *Machine) Params() *Params { return &m.params }

// Failure says why the login failed (for the log), or nil.
func (m *Machine) Failure() error { return m.failure }

// Stage returns the current login stage.
func (m *Machine) Stage() Stage { return m.stage }

// Step handles one Login Request. Every call returns the response to send; the
// machine's state moves only by Step (L1).
func (m *Machine) Step(req Request) (Response, Action) {
	switch m.state {
	case stateFailed:
		return m.failed, ActionClose
	case stateFullFeature:
		return m.fail(StatusInvalidDuringLogin, "Login Request in Full Feature Phase")
	}
	if m.pending != nil {
		return m.continueResponse(req)
	}
	if st, why := m.checkRequest(req); st != StatusSuccess {
		return m.fail(st, why)
	}
	text, err := m.reasm.Add(req.Data, !req.Continue)
	if err != nil {
		return m.fail(StatusInitiatorError, err.Error())
	}
	m.out = m.out[:0]
	if req.Continue {
		// RFC 7143 §11.12 (C bit): answer each partial text with an empty response.
		return m.respond(Response{CSG: m.stage}, ActionContinue, m.stage)
	}
	pairs, err := ParseKeys(text)
	if err != nil {
		return m.fail(StatusInitiatorError, err.Error())
	}
	if st, why := m.identify(pairs); st != StatusSuccess {
		return m.fail(st, why)
	}
	var st Status
	var why string
	if m.stage == StageSecurity {
		st, why = m.securityStage(pairs)
	} else {
		st, why = m.operationalStage(pairs)
	}
	if st != StatusSuccess {
		return m.fail(st, why)
	}
	return m.transit(req)
}

// checkRequest applies the header rules of RFC 7143 §11.12: C excludes T, the version
// range includes ours, the stage is the one we are in, a transit goes forward, and
// ISID, TSIH and CID stay put for the whole login.
func (m *Machine) checkRequest(req Request) (Status, string) {
	switch {
	case req.Continue && req.Transit:
		return StatusInitiatorError, "C and T both set"
	case req.VersionMin > VersionSupported || req.VersionMax < req.VersionMin:
		return StatusUnsupportedVersion, fmt.Sprintf("versions %d..%d, we support %d", req.VersionMin, req.VersionMax, VersionSupported)
	}
	if !m.started {
		if req.CSG != StageSecurity && req.CSG != StageOperational {
			return StatusInitiatorError, fmt.Sprintf("first request in stage %s", req.CSG)
		}
		m.started = true
		m.stage = req.CSG
		m.isid, m.tsih, m.cid = req.ISID, req.TSIH, req.CID
		m.params.ISID, m.params.CID, m.params.Leading = req.ISID, req.CID, req.TSIH == 0
	} else {
		switch {
		case req.CSG != m.stage:
			return StatusInitiatorError, fmt.Sprintf("CSG %s, login is in %s", req.CSG, m.stage)
		case req.ISID != m.isid || req.TSIH != m.tsih || req.CID != m.cid:
			return StatusInitiatorError, "ISID, TSIH or CID changed during login"
		}
	}
	if req.Transit && (req.NSG <= req.CSG || req.NSG == 2 || req.NSG > StageFullFeature) {
		return StatusInitiatorError, fmt.Sprintf("transit from %s to %s", req.CSG, req.NSG)
	}
	return StatusSuccess, ""
}

// identify records the identity keys (InitiatorName, InitiatorAlias, TargetName,
// SessionType) and, after the first complete text, checks them: names present and
// well formed, the target exists, the initiator is permitted, a joined session exists,
// and authentication is not skipped when required.
func (m *Machine) identify(pairs []Pair) (Status, string) {
	for _, p := range pairs {
		if keyTable[p.Key].class != classIdentity {
			continue
		}
		if prev, ok := m.received[p.Key]; ok {
			if prev != p.Value {
				return StatusInitiatorError, fmt.Sprintf("%s changed from %q to %q", p.Key, prev, p.Value)
			}
			continue // libiscsi repeats its names in each stage; the same value is harmless
		}
		m.received[p.Key] = p.Value
		if st, why := m.identityKey(p); st != StatusSuccess {
			return st, why
		}
	}
	if m.identified {
		return StatusSuccess, ""
	}
	m.identified = true
	return m.checkIdentity()
}

func (m *Machine) identityKey(p Pair) (Status, string) {
	late := m.identified // first seen after the first text: must not change anything
	par := &m.params
	switch p.Key {
	case keyInitiatorName:
		if late || !validISCSIName(p.Value) {
			return StatusInitiatorError, fmt.Sprintf("InitiatorName=%q", p.Value)
		}
		par.InitiatorName = p.Value
	case keyInitiatorAlias:
		par.InitiatorAlias = p.Value
	case keyTargetName:
		if late && p.Value != par.TargetName || !validISCSIName(p.Value) {
			return StatusInitiatorError, fmt.Sprintf("TargetName=%q", p.Value)
		}
		par.TargetName = p.Value
	case keySessionType:
		var t SessionType
		switch p.Value {
		case "Normal":
			t = SessionNormal
		case "Discovery":
			t = SessionDiscovery
		default:
			return StatusSessionTypeNotSupported, fmt.Sprintf("SessionType=%q", p.Value)
		}
		if late && t != par.SessionType {
			return StatusInitiatorError, "SessionType declared after the first request"
		}
		par.SessionType = t
	}
	return StatusSuccess, ""
}

func (m *Machine) checkIdentity() (Status, string) {
	par := &m.params
	if par.InitiatorName == "" {
		return StatusMissingParameter, "no InitiatorName"
	}
	if par.SessionType == SessionDiscovery {
		m.auth = &m.cfg.DiscoveryAuth
		if !m.dir.Permit(par.InitiatorName, "") {
			return StatusAuthorizationFailure, fmt.Sprintf("%s may not discover", par.InitiatorName)
		}
	} else {
		if par.TargetName == "" {
			return StatusMissingParameter, "no TargetName for a Normal session"
		}
		t, ok := m.dir.Target(par.TargetName)
		if !ok {
			return StatusNotFound, fmt.Sprintf("no target %q", par.TargetName)
		}
		m.target, m.auth = t, &t.Auth
		if !m.dir.Permit(par.InitiatorName, t.Name) {
			return StatusAuthorizationFailure, fmt.Sprintf("%s may not log in to %s", par.InitiatorName, t.Name)
		}
	}
	if !par.Leading && !m.dir.SessionExists(par.InitiatorName, m.isid, m.tsih) {
		return StatusSessionDoesNotExist, fmt.Sprintf("no session with TSIH %d", m.tsih)
	}
	if m.stage == StageOperational && m.auth.Required {
		return StatusAuthenticationFailure, "authentication required, security negotiation skipped"
	}
	if m.target != nil {
		// RFC 7143 §13.6, §13.9: the target declares its alias and portal group tag in
		// the first response of a Normal session.
		if m.target.Alias != "" {
			m.out = AppendPair(m.out, keyTargetAlias, m.target.Alias)
		}
		m.out = AppendPair(m.out, keyTargetPortalGroupTag, strconv.Itoa(int(m.cfg.PortalGroupTag)))
	}
	return StatusSuccess, ""
}

// securityStage answers the keys of a SecurityNegotiation request.
func (m *Machine) securityStage(pairs []Pair) (Status, string) {
	sec := make(map[string]string)
	for _, p := range pairs {
		info, known := keyTable[p.Key]
		switch {
		case !known:
			if st, why := m.unknownKey(p); st != StatusSuccess {
				return st, why
			}
		case info.class == classIdentity:
		case info.class == classSecurity:
			if _, ok := m.received[p.Key]; ok {
				return StatusInitiatorError, fmt.Sprintf("%s sent twice", p.Key)
			}
			m.received[p.Key] = p.Value
			sec[p.Key] = p.Value
		case info.class == classOperational:
			return StatusInitiatorError, fmt.Sprintf("operational key %s in SecurityNegotiation", p.Key)
		case info.class == classTargetOnly:
			return StatusInitiatorError, fmt.Sprintf("%s is sent only by targets", p.Key)
		case info.class == classFullFeature:
			m.answer(p.Key, valueReject)
		}
	}
	if v, ok := sec[keyAuthMethod]; ok {
		delete(sec, keyAuthMethod)
		m.authNegotiated = true
		if st, why := m.negotiateAuthMethod(v); st != StatusSuccess {
			return st, why
		}
	}
	if len(sec) > 0 {
		return m.chapStep(sec)
	}
	return StatusSuccess, ""
}

// operationalStage answers the keys of a LoginOperationalNegotiation request. Answers
// to keys we offered are checked against our offer; FirstBurstLength goes last so that
// it sees MaxBurstLength, InitialR2T and ImmediateData from the same text.
func (m *Machine) operationalStage(pairs []Pair) (Status, string) {
	if !m.declaredRecvLength {
		m.declareRecvLength()
	}
	var firstBurst *Pair
	for i, p := range pairs {
		info, known := keyTable[p.Key]
		switch {
		case !known:
			if st, why := m.unknownKey(p); st != StatusSuccess {
				return st, why
			}
			continue
		case info.class == classIdentity:
			continue
		case info.class == classSecurity:
			return StatusInitiatorError, fmt.Sprintf("security key %s in LoginOperationalNegotiation", p.Key)
		case info.class == classTargetOnly:
			return StatusInitiatorError, fmt.Sprintf("%s is sent only by targets", p.Key)
		case info.class == classFullFeature:
			m.answer(p.Key, valueReject)
			continue
		}
		if offer, ok := m.awaiting[p.Key]; ok {
			delete(m.awaiting, p.Key)
			m.received[p.Key] = p.Value
			if st, why := m.answerOffer(p, offer); st != StatusSuccess {
				return st, why
			}
			continue
		}
		if again, st, why := m.repeated(p); again {
			if st != StatusSuccess {
				return st, why
			}
			continue
		}
		m.received[p.Key] = p.Value
		if p.Key == keyFirstBurstLength {
			firstBurst = &pairs[i]
			continue
		}
		if st, why := m.negotiateOperational(p); st != StatusSuccess {
			return st, why
		}
	}
	if firstBurst != nil {
		return m.negotiateOperational(*firstBurst)
	}
	return StatusSuccess, ""
}

// unknownKey answers a key we do not implement NotUnderstood (RFC 7143 §6.2), once.
func (m *Machine) unknownKey(p Pair) (Status, string) {
	if again, st, why := m.repeated(p); again {
		return st, why
	}
	m.received[p.Key] = p.Value
	m.answer(p.Key, valueNotUnderstood)
	return StatusSuccess, ""
}

// repeated handles a key sent earlier in this login (RFC 7143 §6.2: renegotiation is
// an error the target must detect): the same value gets the same answer again, a
// different one fails the login (L3).
func (m *Machine) repeated(p Pair) (bool, Status, string) {
	prev, ok := m.received[p.Key]
	if !ok {
		return false, StatusSuccess, ""
	}
	if prev != p.Value {
		return true, StatusInitiatorError, fmt.Sprintf("%s renegotiated: %q, then %q", p.Key, prev, p.Value)
	}
	if a := m.answers[p.Key]; a != "" {
		m.out = AppendPair(m.out, p.Key, a)
	}
	return true, StatusSuccess, ""
}

// answer appends key=value to the response ("" answers nothing, for declarations) and
// remembers it for a repeat of the key.
func (m *Machine) answer(key, value string) {
	m.answers[key] = value
	if value != "" {
		m.out = AppendPair(m.out, key, value)
	}
}

// transit decides the T bit and next stage (RFC 7143 §6.3, §11.13): we go where the
// initiator asks only when our side of the current stage is complete.
func (m *Machine) transit(req Request) (Response, Action) {
	resp := Response{CSG: m.stage}
	if !req.Transit {
		return m.respond(resp, ActionContinue, m.stage)
	}
	if m.stage == StageSecurity {
		if !m.authDone {
			switch {
			case m.authNegotiated:
				return m.respond(resp, ActionContinue, m.stage) // CHAP under way
			case m.auth.Required:
				return m.fail(StatusAuthenticationFailure, "transit without AuthMethod, authentication required")
			}
			m.authDone = true // no AuthMethod offered and none needed
		}
		next := req.NSG
		if offers, _ := m.offers(); next == StageFullFeature && len(offers) > 0 {
			next = StageOperational // we have keys to propose first
		}
		resp.Transit, resp.NSG = true, next
		if next == StageFullFeature {
			return m.finish(resp)
		}
		return m.respond(resp, ActionContinue, next)
	}
	if len(m.awaiting) > 0 {
		return m.fail(StatusInitiatorError, fmt.Sprintf("transit before answering %d offered keys", len(m.awaiting)))
	}
	offers, unmet := m.offers()
	if unmet != "" {
		return m.fail(StatusInitiatorError, unmet)
	}
	if len(offers) > 0 {
		for _, o := range offers {
			m.offered[o.Key], m.awaiting[o.Key] = o.Value, o.Value
			m.out = AppendPair(m.out, o.Key, o.Value)
		}
		return m.respond(resp, ActionContinue, m.stage)
	}
	resp.Transit, resp.NSG = true, StageFullFeature
	return m.finish(resp)
}

// finish builds the final Login Response: our MaxRecvDataSegmentLength declared, the
// burst lengths consistent, and a TSIH for a new session (RFC 7143 §11.13).
func (m *Machine) finish(resp Response) (Response, Action) {
	m.declareRecvLength()
	par := &m.params
	if (!par.InitialR2T || par.ImmediateData) && par.FirstBurstLength > par.MaxBurstLength {
		return m.fail(StatusInitiatorError, fmt.Sprintf("FirstBurstLength %d exceeds MaxBurstLength %d",
			m.params.FirstBurstLength, m.params.MaxBurstLength))
	}
	if m.params.Leading {
		tsih, ok := m.dir.NewTSIH()
		if !ok {
			return m.fail(StatusOutOfResources, "no free TSIH")
		}
		m.params.TSIH = tsih
	} else {
		m.params.TSIH = m.tsih
	}
	resp.TSIH = m.params.TSIH
	return m.respond(resp, ActionFullFeature, StageFullFeature)
}

// respond sends m.out with resp, splitting it with the C bit when it exceeds what the
// initiator can receive during login; the state moves to next with the last piece.
func (m *Machine) respond(resp Response, action Action, next Stage) (Response, Action) {
	resp.VersionMax, resp.VersionActive = VersionSupported, VersionSupported
	if len(m.out) > loginDataSizeMax {
		m.pending = m.out
		m.pendingResp, m.pendingAction, m.pendingStage = resp, action, next
		return m.sendPiece()
	}
	resp.Data = m.out
	m.moveTo(action, next)
	return resp, action
}

// continueResponse answers the empty Login Request that asks for the next piece.
func (m *Machine) continueResponse(req Request) (Response, Action) {
	if len(req.Data) != 0 || req.Continue {
		return m.fail(StatusInitiatorError, "text sent while our response continues")
	}
	return m.sendPiece()
}

func (m *Machine) sendPiece() (Response, Action) {
	chunk, rest := SplitText(m.pending, loginDataSizeMax)
	if rest != nil {
		m.pending = rest
		return Response{
			Continue: true, CSG: m.stage,
			VersionMax: VersionSupported, VersionActive: VersionSupported,
			Data: chunk,
		}, ActionContinue
	}
	resp, action := m.pendingResp, m.pendingAction
	resp.Data = chunk
	m.pending = nil
	m.moveTo(action, m.pendingStage)
	return resp, action
}

func (m *Machine) moveTo(action Action, next Stage) {
	m.stage = next
	if action == ActionFullFeature {
		m.state = stateFullFeature
	}
}

// fail ends the login with status st: the response carries no text, and every later
// Step returns it again (L2).
func (m *Machine) fail(st Status, why string) (Response, Action) {
	m.state = stateFailed
	m.failure = fmt.Errorf("login %s: %s", st, why)
	m.pending = nil
	m.failed = Response{
		CSG: m.stage, TSIH: m.tsih, Status: st,
		VersionMax: VersionSupported, VersionActive: VersionSupported,
	}
	return m.failed, ActionClose
}
