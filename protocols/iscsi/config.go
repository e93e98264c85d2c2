package iscsi

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sluice-storage/sluice/protocols/iscsi/login"
	"github.com/sluice-storage/sluice/protocols/scsi"
)

const (
	// QueueDepthMax commands a session may have outstanding: the CmdSN
	// window and the per-connection command pool (Linux open-iscsi asks for
	// 128, libiscsi for 64).
	QueueDepthMax = 128
	// QueueDepthDefault is a node's queue depth when none is given: what
	// SPDK's target offers.
	QueueDepthDefault = 64
	// immediateSlots commands beyond the window may be immediate (a TMF, a
	// NOP-Out with a reply, an immediate SCSI command) at once.
	immediateSlots = 4
	// SessionsMaxDefault sessions per target node when none is given.
	SessionsMaxDefault = 128
	// SessionsMax is the most a node may be given.
	SessionsMax = 4096
	// recvDataSegmentMax is the MaxRecvDataSegmentLength we declare: the
	// largest PDU data segment the framer buffers in place, 64 KiB, half a
	// transfer (scsi.TransferSizeMax), so a write arrives in two PDUs.
	recvDataSegmentMax = 64 << 10
	// firstBurstMax and burstMax are the FirstBurstLength and MaxBurstLength
	// we accept: a whole transfer.
	firstBurstMax = 64 << 10
	burstMax      = scsi.TransferSizeMax
	// NopInIntervalDefault is how long a connection may be silent before we
	// ping it with a NOP-In; NopTimeoutDefault how long we wait for the
	// NOP-Out answer before dropping the connection (SPDK's 30 s and 60 s).
	NopInIntervalDefault = 30 * time.Second
	NopTimeoutDefault    = 60 * time.Second
	// loginTimeout bounds a login: a connection that has not reached Full
	// Feature Phase by then is dropped.
	loginTimeout = 15 * time.Second
	// PortalsMax, NodesMax and GroupsMax bound the tables.
	PortalsMax = 64
	NodesMax   = 1024
	GroupsMax  = 1024
)

// Fails to compile unless the queue fits the 16-bit slot part of a TTT.
const _ uint = 1<<16 - (QueueDepthMax + immediateSlots)

// Portal is one address a portal group listens on.
type Portal struct {
	Host string // IP literal; "0.0.0.0" or "::" for all
	Port uint16 // 0 picks a free port (tests)
}

func (p Portal) String() string { return net.JoinHostPort(p.Host, fmt.Sprint(p.Port)) }

// PortalGroup is SPDK's portal group: portals a node is reached through.
type PortalGroup struct {
	Tag     uint16
	Portals []Portal
	// Private hides the group's portals from SendTargets (SPDK: private).
	Private bool
}

// InitiatorGroup admits initiators by name and address (SPDK's initiator
// group): "ANY" matches every name or address; a name may be written
// "!name" to refuse it.
type InitiatorGroup struct {
	Tag        uint16
	Initiators []string // iSCSI names, "ANY", or "!name"
	Netmasks   []string // CIDR such as 10.0.0.0/8, a single address, or "ANY"
}

// CHAPSecret is one entry of an auth group.
type CHAPSecret struct {
	User, Secret             string // the initiator's name and secret
	MutualUser, MutualSecret string // ours, for mutual CHAP; empty for one-way
}

// AuthGroup is SPDK's auth group: CHAP secrets, chosen by tag.
type AuthGroup struct {
	Tag     uint16
	Secrets []CHAPSecret
}

// CHAP is an authentication policy (SPDK's disable/require/mutual/group).
type CHAP struct {
	Disable bool   // AuthMethod None only
	Require bool   // CHAP only
	Mutual  bool   // mutual CHAP required (implies Require)
	Group   uint16 // auth group with the secrets; 0 uses the server's default group
}

// Mapping allows a portal group's initiators of an initiator group.
type Mapping struct {
	PortalGroup    uint16
	InitiatorGroup uint16
}

// LUNConfig is one LUN of a node.
type LUNConfig struct {
	ID   int
	Bdev string
	SCSI scsi.Config
}

// NodeConfig is a target node.
type NodeConfig struct {
	Name  string // full iSCSI name, or a short one the server prefixes with Options.NodeBase
	Alias string
	LUNs  []LUNConfig
	Maps  []Mapping
	// QueueDepth is the session's command window; QueueDepthDefault when 0.
	QueueDepth int
	CHAP       CHAP
	// HeaderDigest and DataDigest require CRC32C.
	HeaderDigest, DataDigest bool
	// MaxSessions bounds the node's sessions; SessionsMaxDefault when 0.
	MaxSessions int
}

// Errors of the control plane; returned errors wrap one and name the object.
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
	ErrInUse    = errors.New("in use")
	ErrInvalid  = errors.New("invalid")
	ErrClosed   = errors.New("server closed")
)

func invalid(what string, value any, want string) error {
	return fmt.Errorf("%s %v, want %s: %w", what, value, want, ErrInvalid)
}

// validate reports every problem with pg.
func (pg *PortalGroup) validate() error {
	var errs []error
	if pg.Tag == 0 {
		errs = append(errs, invalid("portal group tag", pg.Tag, "1..65535"))
	}
	if len(pg.Portals) == 0 || len(pg.Portals) > PortalsMax {
		errs = append(errs, invalid(fmt.Sprintf("portal group %d: portals", pg.Tag), len(pg.Portals),
			fmt.Sprintf("1..%d", PortalsMax)))
	}
	for i, p := range pg.Portals {
		if _, err := netip.ParseAddr(strings.Trim(p.Host, "[]")); err != nil {
			errs = append(errs, invalid(fmt.Sprintf("portal group %d: portals[%d].host", pg.Tag, i),
				fmt.Sprintf("%q", p.Host), "an IPv4 or IPv6 address"))
		}
	}
	return errors.Join(errs...)
}

// validate reports every problem with ig.
func (ig *InitiatorGroup) validate() error {
	var errs []error
	if ig.Tag == 0 {
		errs = append(errs, invalid("initiator group tag", ig.Tag, "1..65535"))
	}
	if len(ig.Initiators) == 0 {
		errs = append(errs, invalid(fmt.Sprintf("initiator group %d: initiators", ig.Tag), "none",
			`iSCSI names or "ANY"`))
	}
	if len(ig.Netmasks) == 0 {
		errs = append(errs, invalid(fmt.Sprintf("initiator group %d: netmasks", ig.Tag), "none",
			`CIDR netmasks or "ANY"`))
	}
	for i, m := range ig.Netmasks {
		if _, ok := parseNetmask(m); !ok {
			errs = append(errs, invalid(fmt.Sprintf("initiator group %d: netmasks[%d]", ig.Tag, i),
				fmt.Sprintf("%q", m), `a CIDR prefix such as 10.0.0.0/8, an address, or "ANY"`))
		}
	}
	return errors.Join(errs...)
}

// parseNetmask reads a netmask; the zero prefix with ok means ANY.
func parseNetmask(m string) (netip.Prefix, bool) {
	if strings.EqualFold(m, "ANY") {
		return netip.Prefix{}, true
	}
	m = strings.Trim(m, "[]")
	if strings.Contains(m, "/") {
		p, err := netip.ParsePrefix(m)
		return p.Masked(), err == nil
	}
	a, err := netip.ParseAddr(m)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// permits reports whether the group admits initiator from addr.
func (ig *InitiatorGroup) permits(initiator string, addr netip.Addr) bool {
	nameOK := false
	for _, n := range ig.Initiators {
		if neg, ok := strings.CutPrefix(n, "!"); ok {
			if strings.EqualFold(neg, initiator) {
				return false
			}
			continue
		}
		if strings.EqualFold(n, "ANY") || strings.EqualFold(n, initiator) {
			nameOK = true
		}
	}
	if !nameOK {
		return false
	}
	for _, m := range ig.Netmasks {
		p, _ := parseNetmask(m)
		if !p.IsValid() || p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// validate reports every problem with ag.
func (ag *AuthGroup) validate() error {
	var errs []error
	if ag.Tag == 0 {
		errs = append(errs, invalid("auth group tag", ag.Tag, "1..65535"))
	}
	for i, s := range ag.Secrets {
		where := fmt.Sprintf("auth group %d: secrets[%d]", ag.Tag, i)
		if s.User == "" || s.Secret == "" {
			errs = append(errs, invalid(where, "without user or secret", "both"))
		}
		if (s.MutualUser == "") != (s.MutualSecret == "") {
			errs = append(errs, invalid(where+" mutual", "half given", "muser and msecret together"))
		}
		if s.MutualSecret != "" && s.MutualSecret == s.Secret {
			// RFC 7143 §12.1.3: one secret per direction.
			errs = append(errs, invalid(where+" msecret", "equal to secret", "a different secret"))
		}
	}
	return errors.Join(errs...)
}

// auth builds the login package's policy from a CHAP setting and its group.
func (c CHAP) auth(group *AuthGroup) login.Auth {
	a := login.Auth{Required: c.Require || c.Mutual, MutualRequired: c.Mutual}
	if c.Disable || group == nil {
		a.Required, a.MutualRequired = false, false
		return a
	}
	for _, s := range group.Secrets {
		a.Initiators = append(a.Initiators, login.Secret{Name: s.User, Secret: []byte(s.Secret)})
		if a.Target == nil && s.MutualUser != "" {
			a.Target = &login.Secret{Name: s.MutualUser, Secret: []byte(s.MutualSecret)}
		}
	}
	return a
}

// validate reports every problem with n's own fields (not its references).
func (n *NodeConfig) validate() error {
	var errs []error
	t := login.Target{Name: n.Name}
	if err := t.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("target node %q: name: %w", n.Name, ErrInvalid))
	}
	if len(n.LUNs) == 0 {
		errs = append(errs, invalid(fmt.Sprintf("target node %q: luns", n.Name), "none", "at least one"))
	}
	seen := map[int]bool{}
	for i, l := range n.LUNs {
		if l.ID < 0 || l.ID >= scsi.LUNsMax {
			errs = append(errs, invalid(fmt.Sprintf("target node %q: luns[%d].lun_id", n.Name, i), l.ID,
				fmt.Sprintf("0..%d", scsi.LUNsMax-1)))
		}
		if seen[l.ID] {
			errs = append(errs, invalid(fmt.Sprintf("target node %q: luns[%d].lun_id", n.Name, i), l.ID, "unique"))
		}
		seen[l.ID] = true
		if l.Bdev == "" {
			errs = append(errs, invalid(fmt.Sprintf("target node %q: luns[%d].bdev_name", n.Name, i), `""`, "a bdev"))
		}
	}
	if len(n.Maps) == 0 {
		errs = append(errs, invalid(fmt.Sprintf("target node %q: pg_ig_maps", n.Name), "none", "at least one"))
	}
	if n.QueueDepth < 0 || n.QueueDepth > QueueDepthMax {
		errs = append(errs, invalid(fmt.Sprintf("target node %q: queue_depth", n.Name), n.QueueDepth,
			fmt.Sprintf("1..%d", QueueDepthMax)))
	}
	if n.MaxSessions < 0 || n.MaxSessions > SessionsMax {
		errs = append(errs, invalid(fmt.Sprintf("target node %q: max_sessions", n.Name), n.MaxSessions,
			fmt.Sprintf("1..%d", SessionsMax)))
	}
	if n.CHAP.Disable && (n.CHAP.Require || n.CHAP.Mutual) {
		errs = append(errs, invalid(fmt.Sprintf("target node %q: chap", n.Name), "disabled and required",
			"one of them"))
	}
	return errors.Join(errs...)
}
