package login

import (
	"strconv"
	"strings"
)

// Portal is one network portal of a target: an address the initiator can connect to
// and its portal group tag.
type Portal struct {
	Host     string // IPv4 or IPv6 literal, or a DNS name
	Port     uint16
	GroupTag uint16
}

// TargetRecord is what SendTargets reports about one target.
type TargetRecord struct {
	Name    string
	Portals []Portal
}

// AppendSendTargets appends the answer to a SendTargets=value text request (RFC 7143
// §13.3, Appendix C) and returns it. targets are the targets this initiator may see on
// this portal group, already filtered by the caller's access rules.
//
//   - SendTargets=All, in a discovery session: every target.
//   - SendTargets=<name>: that target, or nothing when there is none such.
//   - SendTargets= (empty), in a normal session: the session's target, sessionTarget.
//
// All in a normal session, or an empty value in a discovery session, is answered
// SendTargets=Reject. Each target is TargetName=<name>, then one
// TargetAddress=<host>:<port>,<tag> per portal (IPv6 hosts in brackets).
func AppendSendTargets(dst []byte, value string, session SessionType, sessionTarget string, targets []TargetRecord) []byte {
	switch {
	case value == "All" && session == SessionDiscovery:
		for _, t := range targets {
			dst = appendTarget(dst, t)
		}
	case value == "All" || value == "" && session == SessionDiscovery:
		dst = AppendPair(dst, keySendTargets, valueReject)
	default:
		name := value
		if name == "" {
			name = sessionTarget
		}
		for _, t := range targets {
			// iSCSI names compare case-insensitively: the RFC 3722 stringprep profile lowercases them.
			if strings.EqualFold(t.Name, name) {
				dst = appendTarget(dst, t)
				break
			}
		}
	}
	return dst
}

func appendTarget(dst []byte, t TargetRecord) []byte {
	dst = AppendPair(dst, keyTargetName, t.Name)
	for _, p := range t.Portals {
		dst = AppendPair(dst, keyTargetAddress, TargetAddress(p))
	}
	return dst
}

// TargetAddress formats a portal as the TargetAddress key's value (RFC 7143 §13.8):
// domainname[:port][,portal-group-tag], an IPv6 literal in brackets (RFC 3986 §3.2.2).
func TargetAddress(p Portal) string {
	host := p.Host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]" // an IPv6 literal, IPv4-mapped ones included
	}
	return host + ":" + strconv.Itoa(int(p.Port)) + "," + strconv.Itoa(int(p.GroupTag))
}
