package login

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
)

// CHAPAlgorithm is a CHAP_A value: an IANA PPP authentication algorithm number
// (RFC 7143 §12.1.3 names 5, MD5; SHA-1 and SHA-256 are IANA's 6 and 7, which Linux,
// open-iscsi and SCST use for iSCSI).
type CHAPAlgorithm uint8

// CHAP algorithms.
const (
	CHAPMD5    CHAPAlgorithm = 5
	CHAPSHA1   CHAPAlgorithm = 6
	CHAPSHA256 CHAPAlgorithm = 7
)

// Size is the digest size: the length of CHAP_R and of the challenges we send.
func (a CHAPAlgorithm) Size() int {
	switch a {
	case CHAPMD5:
		return md5.Size
	case CHAPSHA1:
		return sha1.Size
	case CHAPSHA256:
		return sha256.Size
	}
	return 0
}

func (a CHAPAlgorithm) newHash() hash.Hash {
	switch a {
	case CHAPMD5:
		return md5.New()
	case CHAPSHA1:
		return sha1.New()
	case CHAPSHA256:
		return sha256.New()
	}
	panic(fmt.Sprintf("login: CHAP algorithm %d", a))
}

func (a CHAPAlgorithm) String() string {
	switch a {
	case CHAPMD5:
		return "MD5"
	case CHAPSHA1:
		return "SHA1"
	case CHAPSHA256:
		return "SHA256"
	}
	return fmt.Sprintf("CHAP_A-%d", uint8(a))
}

// Secret is a CHAP name and secret.
type Secret struct {
	Name   string
	Secret []byte
}

// Auth is the authentication policy of a target, or of discovery sessions.
type Auth struct {
	// Required refuses AuthMethod=None.
	Required bool
	// Initiators are the CHAP names and secrets an initiator may authenticate with;
	// none means CHAP is not offered.
	Initiators []Secret
	// Target is the name and secret we answer mutual CHAP with; nil refuses mutual CHAP.
	Target *Secret
	// MutualRequired refuses a CHAP exchange in which the initiator does not
	// authenticate us.
	MutualRequired bool
}

// chapSecretSizeMax bounds secrets; RFC 7143 §12.1.3 wants support for at least 128-bit
// secrets, 255 bytes leaves any practical passphrase.
const chapSecretSizeMax = 255

// validate reports every problem in a, prefixed by path.
func (a *Auth) validate(path string) []error {
	var errs []error
	if a.Required && len(a.Initiators) == 0 {
		errs = append(errs, fmt.Errorf("%s: authentication required but no CHAP secrets", path))
	}
	if a.MutualRequired && a.Target == nil {
		errs = append(errs, fmt.Errorf("%s: mutual CHAP required but no target secret", path))
	}
	check := func(where string, s Secret) {
		if s.Name == "" || len(s.Name) > ValueSizeMax {
			errs = append(errs, fmt.Errorf("%s: CHAP name %q, want 1..%d bytes", where, s.Name, ValueSizeMax))
		}
		if len(s.Secret) == 0 || len(s.Secret) > chapSecretSizeMax {
			errs = append(errs, fmt.Errorf("%s: CHAP secret of %d bytes, want 1..%d", where, len(s.Secret), chapSecretSizeMax))
		}
	}
	for i, s := range a.Initiators {
		check(fmt.Sprintf("%s.initiators[%d]", path, i), s)
	}
	if a.Target != nil {
		check(path+".target", *a.Target)
		for i, s := range a.Initiators {
			// RFC 7143 §12.1.3: a secret that authenticates initiators MUST NOT also
			// authenticate a target.
			if string(s.Secret) == string(a.Target.Secret) {
				errs = append(errs, fmt.Errorf("%s.target: secret equals initiators[%d]'s; one secret per direction", path, i))
			}
		}
	}
	return errs
}

// DigestPolicy is what we accept for HeaderDigest or DataDigest.
type DigestPolicy uint8

// Digest policies.
const (
	DigestNone    DigestPolicy = iota // only None
	DigestAllow                       // CRC32C or None, in the initiator's order
	DigestRequire                     // only CRC32C
)

// Limits are our side of the operational keys (RFC 7143 §13).
type Limits struct {
	// MaxRecvDataSegmentLength is what we declare we can receive.
	MaxRecvDataSegmentLength uint32
	MaxBurstLength           uint32
	FirstBurstLength         uint32
	MaxOutstandingR2T        uint16
	MaxConnections           uint16
	DefaultTime2Wait         uint16
	DefaultTime2Retain       uint16
	// InitialR2T true demands an R2T before unsolicited data (the result is an OR).
	InitialR2T bool
	// ImmediateData false refuses data in SCSI Command PDUs (the result is an AND).
	ImmediateData bool
	// DataPDUInOrder and DataSequenceInOrder true demand ordered data (ORs).
	DataPDUInOrder      bool
	DataSequenceInOrder bool
	HeaderDigest        DigestPolicy
	DataDigest          DigestPolicy
}

// RFC 7143 §13 ranges and defaults.
const (
	dataLengthMin      = 512
	dataLengthMax      = 1<<24 - 1
	defaultRecvLength  = 8192
	defaultMaxBurst    = 262144
	defaultFirstBurst  = 65536
	defaultTime2Wait   = 2
	defaultTime2Retain = 20
	time2Max           = 3600
	r2tMax             = 65535
	connectionsMax     = 65535
	errorRecoveryMax   = 2
	errorRecoveryLevel = 0 // Sluice implements ErrorRecoveryLevel 0 only
)

// DefaultLimits are the RFC defaults, with digests allowed.
func DefaultLimits() Limits {
	return Limits{
		MaxRecvDataSegmentLength: defaultRecvLength,
		MaxBurstLength:           defaultMaxBurst,
		FirstBurstLength:         defaultFirstBurst,
		MaxOutstandingR2T:        1,
		MaxConnections:           1,
		DefaultTime2Wait:         defaultTime2Wait,
		DefaultTime2Retain:       defaultTime2Retain,
		InitialR2T:               true,
		ImmediateData:            true,
		DataPDUInOrder:           true,
		DataSequenceInOrder:      true,
		HeaderDigest:             DigestAllow,
		DataDigest:               DigestAllow,
	}
}

func (l *Limits) validate() []error {
	var errs []error
	for _, f := range []struct {
		name     string
		v        uint32
		min, max uint32
	}{
		{"MaxRecvDataSegmentLength", l.MaxRecvDataSegmentLength, dataLengthMin, dataLengthMax},
		{"MaxBurstLength", l.MaxBurstLength, dataLengthMin, dataLengthMax},
		{"FirstBurstLength", l.FirstBurstLength, dataLengthMin, dataLengthMax},
		{"MaxOutstandingR2T", uint32(l.MaxOutstandingR2T), 1, r2tMax},
		{"MaxConnections", uint32(l.MaxConnections), 1, connectionsMax},
		{"DefaultTime2Wait", uint32(l.DefaultTime2Wait), 0, time2Max},
		{"DefaultTime2Retain", uint32(l.DefaultTime2Retain), 0, time2Max},
	} {
		if f.v < f.min || f.v > f.max {
			errs = append(errs, fmt.Errorf("limits.%s: %d, want %d..%d", f.name, f.v, f.min, f.max))
		}
	}
	if l.FirstBurstLength > l.MaxBurstLength {
		// RFC 7143 §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength.
		errs = append(errs, fmt.Errorf("limits.FirstBurstLength: %d, want <= MaxBurstLength %d", l.FirstBurstLength, l.MaxBurstLength))
	}
	if l.HeaderDigest > DigestRequire || l.DataDigest > DigestRequire {
		errs = append(errs, errors.New("limits: unknown digest policy"))
	}
	return errs
}

// Target is a target node as the Directory describes it.
type Target struct {
	Name  string
	Alias string
	Auth  Auth
}

// Config is the target side of every login on a portal group; shared and read-only.
type Config struct {
	Limits         Limits
	PortalGroupTag uint16
	// DiscoveryAuth is the policy for discovery sessions.
	DiscoveryAuth Auth
	// CHAPAlgorithms are the CHAP_A values we accept; the initiator's order decides
	// among them (RFC 7143 §6.2.1).
	CHAPAlgorithms []CHAPAlgorithm
	// Rand supplies CHAP identifiers and challenges: crypto/rand.Reader in production,
	// a fixed stream in tests.
	Rand io.Reader
}

// Validate reports every problem in c at once.
func (c *Config) Validate() error {
	errs := c.Limits.validate()
	errs = append(errs, c.DiscoveryAuth.validate("discovery_auth")...)
	if len(c.CHAPAlgorithms) == 0 {
		errs = append(errs, errors.New("chap_algorithms: empty, want some of 5 (MD5), 6 (SHA1), 7 (SHA256)"))
	}
	for i, a := range c.CHAPAlgorithms {
		if a.Size() == 0 {
			errs = append(errs, fmt.Errorf("chap_algorithms[%d]: %d, want 5, 6 or 7", i, a))
		}
	}
	if c.Rand == nil {
		errs = append(errs, errors.New("rand: nil"))
	}
	return errors.Join(errs...)
}

// Validate reports every problem in t's definition.
func (t *Target) Validate() error {
	var errs []error
	if !validISCSIName(t.Name) {
		errs = append(errs, fmt.Errorf("target %q: not an iqn., eui. or naa. name of at most %d bytes", t.Name, iscsiNameSizeMax))
	}
	errs = append(errs, t.Auth.validate(fmt.Sprintf("target %q auth", t.Name))...)
	return errors.Join(errs...)
}

// ISID is the initiator part of a session identifier (RFC 7143 §11.12.5).
type ISID [6]byte

// Directory answers the questions a login asks about the world outside the
// connection. Calls come from the reactor that owns the connection and must not block.
type Directory interface {
	// Target returns the target node named name on this portal group.
	Target(name string) (*Target, bool)
	// Permit reports whether initiator may log in to target ("" for discovery).
	Permit(initiator, target string) bool
	// SessionExists reports whether initiator has a session with isid and tsih, for a
	// connection joining it.
	SessionExists(initiator string, isid ISID, tsih uint16) bool
	// NewTSIH reserves a TSIH for a new session; false when none is free.
	NewTSIH() (uint16, bool)
}

// iscsiNameSizeMax is the longest iSCSI name (RFC 7143, iSCSI Names: 223 bytes).
const iscsiNameSizeMax = 223

// validISCSIName checks the shape of an iSCSI name: a type prefix and no characters
// outside the stringprep output set (RFC 3722 stringprep profile); it does not normalize.
func validISCSIName(s string) bool {
	if len(s) < 5 || len(s) > iscsiNameSizeMax {
		return false
	}
	switch s[:4] {
	case "iqn.", "eui.", "naa.", "IQN.", "EUI.", "NAA.":
	default:
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c == 0x7f || c == '/' || c == ',' {
			return false
		}
	}
	return true
}
