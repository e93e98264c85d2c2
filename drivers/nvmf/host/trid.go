package host

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/sluice-storage/sluice/protocols/nvme"
)

// TransportID says where a controller is, in SPDK's transport ID form
// (spdk_nvme_transport_id_parse): "trtype:tcp adrfam:ipv4 traddr:127.0.0.1
// trsvcid:4420 subnqn:nqn.2014-08.org.nvmexpress.discovery hostnqn:…".
type TransportID struct {
	TrType  string // "tcp", the only transport this host speaks
	AdrFam  string // "ipv4" or "ipv6"; "" means from TrAddr
	TrAddr  string // IP address or host name
	TrSvcID string // TCP port; "" means 4420
	SubNQN  string // "" means the discovery NQN
	HostNQN string // "" means the host's own (ControllerOptions.HostNQN)
}

// ErrTransportID is wrapped by every ParseTransportID and Validate error.
var ErrTransportID = errors.New("transport ID")

// PortDefault is the IANA port of NVMe/TCP I/O controllers (NVMe/TCP 1.0,
// "Transport Service Identifier"); 8009 is the discovery port.
const PortDefault = "4420"

// ParseTransportID reads "key:value" pairs separated by spaces (or commas),
// keys case-insensitive as SPDK's parser takes them; a value may itself hold
// colons (an NQN, an IPv6 address). Every problem is reported at once.
func ParseTransportID(s string) (TransportID, error) {
	var t TransportID
	var errs []error
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
	if len(fields) == 0 {
		return t, fmt.Errorf("%q: empty, want trtype:tcp traddr:ADDR trsvcid:PORT subnqn:NQN: %w", s, ErrTransportID)
	}
	seen := map[string]bool{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, ":")
		if !ok {
			k, v, ok = strings.Cut(f, "=")
		}
		key := strings.ToLower(k)
		if !ok || v == "" {
			errs = append(errs, fmt.Errorf("%q: want key:value: %w", f, ErrTransportID))
			continue
		}
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s given twice: %w", key, ErrTransportID))
			continue
		}
		seen[key] = true
		switch key {
		case "trtype":
			t.TrType = strings.ToLower(v)
		case "adrfam":
			t.AdrFam = strings.ToLower(v)
		case "traddr":
			t.TrAddr = v
		case "trsvcid":
			t.TrSvcID = v
		case "subnqn":
			t.SubNQN = v
		case "hostnqn":
			t.HostNQN = v
		default:
			errs = append(errs, fmt.Errorf("key %q, want trtype, adrfam, traddr, trsvcid, subnqn or hostnqn: %w", k, ErrTransportID))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return t, err
	}
	return t, t.Validate()
}

// Validate fills the defaults (trsvcid 4420, the discovery NQN) and checks
// every field, all problems at once.
func (t *TransportID) Validate() error {
	if t.TrSvcID == "" {
		t.TrSvcID = PortDefault
	}
	if t.SubNQN == "" {
		t.SubNQN = nvme.DiscoveryNQN
	}
	var errs []error
	bad := func(field, value, want string) {
		errs = append(errs, fmt.Errorf("%s %q, want %s: %w", field, value, want, ErrTransportID))
	}
	if t.TrType != "tcp" {
		bad("trtype", t.TrType, "tcp")
	}
	switch t.AdrFam {
	case "", "ipv4", "ipv6":
	default:
		bad("adrfam", t.AdrFam, "ipv4 or ipv6")
	}
	if t.TrAddr == "" {
		bad("traddr", t.TrAddr, "an IP address or host name")
	}
	if p, err := strconv.Atoi(t.TrSvcID); err != nil || p < 1 || p > 65535 {
		bad("trsvcid", t.TrSvcID, "a TCP port 1..65535")
	}
	if err := nvme.ValidateNQN(t.SubNQN); err != nil {
		errs = append(errs, fmt.Errorf("subnqn: %w", err))
	}
	if t.HostNQN != "" {
		if err := nvme.ValidateNQN(t.HostNQN); err != nil {
			errs = append(errs, fmt.Errorf("hostnqn: %w", err))
		}
	}
	return errors.Join(errs...)
}

// String is the SPDK form, which ParseTransportID reads back.
func (t TransportID) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trtype:%s", t.TrType)
	if t.AdrFam != "" {
		fmt.Fprintf(&b, " adrfam:%s", t.AdrFam)
	}
	fmt.Fprintf(&b, " traddr:%s trsvcid:%s subnqn:%s", t.TrAddr, t.TrSvcID, t.SubNQN)
	if t.HostNQN != "" {
		fmt.Fprintf(&b, " hostnqn:%s", t.HostNQN)
	}
	return b.String()
}

// Discovery reports whether t names the well-known discovery subsystem.
func (t TransportID) Discovery() bool { return t.SubNQN == nvme.DiscoveryNQN }

// resolve turns TrAddr and TrSvcID into a socket address. Control plane: it
// may ask the resolver for a host name.
func (t TransportID) resolve() (*net.TCPAddr, error) {
	network := "tcp"
	switch t.AdrFam {
	case "ipv4":
		network = "tcp4"
	case "ipv6":
		network = "tcp6"
	}
	a, err := net.ResolveTCPAddr(network, net.JoinHostPort(t.TrAddr, t.TrSvcID))
	if err != nil {
		return nil, fmt.Errorf("resolve %s:%s: %w", t.TrAddr, t.TrSvcID, err)
	}
	return a, nil
}

// FromDiscovery makes the transport ID of one Discovery log entry, keeping
// the host NQN of the discovery controller's ID. ok is false for entries this
// host cannot reach (another transport, a referral).
func FromDiscovery(e nvme.DiscoveryEntry, hostNQN string) (t TransportID, ok bool) {
	if e.TRTYPE != nvme.TransportTCP || e.SUBTYPE != nvme.SubsystemNVM {
		return t, false
	}
	t = TransportID{TrType: "tcp", TrAddr: e.TRADDR, TrSvcID: e.TRSVCID, SubNQN: e.SUBNQN, HostNQN: hostNQN}
	switch e.ADRFAM {
	case nvme.AddrFamilyIPv4:
		t.AdrFam = "ipv4"
	case nvme.AddrFamilyIPv6:
		t.AdrFam = "ipv6"
	}
	return t, t.Validate() == nil
}
