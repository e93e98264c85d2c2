package nvmf

import (
	"errors"
	"fmt"
	"math/bits"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/protocols/nvme"
)

// ErrConfig is wrapped by every error about a malformed option, subsystem, namespace or
// listener: input from the control plane, answered with the field, the value and the rule.
var ErrConfig = errors.New("nvmf config")

// TransportOptions are the options every transport takes (SPDK's spdk_nvmf_transport_opts,
// with its RPC names in the comments). A zero field takes its default in Fill.
type TransportOptions struct {
	MaxQueueDepth        uint16        // max_queue_depth: entries per I/O queue (MQES+1); 128
	MaxAdminQueueDepth   uint16        // max_aq_depth: entries per admin queue; 32
	MaxIOQpairsPerCtrlr  uint16        // max_io_qpairs_per_ctrlr; 127
	InCapsuleDataSize    uint32        // in_capsule_data_size: I/O queue in-capsule bytes; 8192
	MaxIOSize            uint32        // max_io_size: bytes one command moves (MDTS); 131072
	KeepAliveGranularity time.Duration // kas (x 100 ms): KATO granularity; 1 s
	KeepAliveTimeoutMin  time.Duration // min_kato: shorter KATOs are raised to it; 10 s
	KeepAliveTimeoutMax  time.Duration // longer KATOs are refused at Connect; 1 h
}

// Defaults of TransportOptions.
const (
	MaxQueueDepthDefault       = 128
	MaxAdminQueueDepthDefault  = 32
	MaxIOQpairsPerCtrlrDefault = 127
	InCapsuleDataSizeDefault   = 8192
	MaxIOSizeDefault           = 128 << 10
)

// Fill sets every zero field to its default.
func (o *TransportOptions) Fill() {
	if o.MaxQueueDepth == 0 {
		o.MaxQueueDepth = MaxQueueDepthDefault
	}
	if o.MaxAdminQueueDepth == 0 {
		o.MaxAdminQueueDepth = MaxAdminQueueDepthDefault
	}
	if o.MaxIOQpairsPerCtrlr == 0 {
		o.MaxIOQpairsPerCtrlr = MaxIOQpairsPerCtrlrDefault
	}
	if o.InCapsuleDataSize == 0 {
		o.InCapsuleDataSize = InCapsuleDataSizeDefault
	}
	if o.MaxIOSize == 0 {
		o.MaxIOSize = MaxIOSizeDefault
	}
	if o.KeepAliveGranularity == 0 {
		o.KeepAliveGranularity = KeepAliveGranularityDefault
	}
	if o.KeepAliveTimeoutMin == 0 {
		o.KeepAliveTimeoutMin = KeepAliveTimeoutMinDefault
	}
	if o.KeepAliveTimeoutMax == 0 {
		o.KeepAliveTimeoutMax = KeepAliveTimeoutMaxDefault
	}
}

// Validate reports every problem with filled options at once.
func (o *TransportOptions) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("transport option %s: %v, want %s: %w", field, v, want, ErrConfig))
	}
	if d := o.MaxQueueDepth; d < QueueDepthMin || d > QueueDepthLimit {
		bad("max_queue_depth", d, fmt.Sprintf("%d..%d", QueueDepthMin, QueueDepthLimit))
	}
	if d := o.MaxAdminQueueDepth; d < AdminQueueDepthMin || d > QueueDepthLimit {
		bad("max_aq_depth", d, fmt.Sprintf("%d..%d", AdminQueueDepthMin, QueueDepthLimit))
	}
	if n := o.MaxIOQpairsPerCtrlr; n < 1 || n > IOQpairsPerCtrlrMax {
		bad("max_io_qpairs_per_ctrlr", n, fmt.Sprintf("1..%d", IOQpairsPerCtrlrMax))
	}
	if n := o.InCapsuleDataSize; n < InCapsuleDataMin || n > InCapsuleDataMax || n%16 != 0 {
		bad("in_capsule_data_size", n, fmt.Sprintf("a multiple of 16 in %d..%d", InCapsuleDataMin, InCapsuleDataMax))
	}
	if n := o.MaxIOSize; n < MaxIOSizeMin || n > MaxIOSizeLimit || bits.OnesCount32(n) != 1 {
		bad("max_io_size", n, fmt.Sprintf("a power of two in %d..%d", MaxIOSizeMin, MaxIOSizeLimit))
	}
	if g := o.KeepAliveGranularity; g < kasUnit || g%kasUnit != 0 || g > 0xFFFF*kasUnit {
		bad("kas", g, "a multiple of 100ms up to 6553.5s")
	}
	if o.KeepAliveTimeoutMin <= 0 || o.KeepAliveTimeoutMin > o.KeepAliveTimeoutMax {
		bad("min_kato", o.KeepAliveTimeoutMin, fmt.Sprintf("> 0 and at most the maximum %v", o.KeepAliveTimeoutMax))
	}
	if o.KeepAliveTimeoutMax > time.Duration(0xFFFFFFFF)*time.Millisecond {
		bad("max_kato", o.KeepAliveTimeoutMax, "at most 2^32-1 ms (the KATO field)")
	}
	return errors.Join(errs...)
}

// MDTS is the Identify Controller MDTS for MaxIOSize: log2 of the size in 4 KiB pages.
func (o *TransportOptions) MDTS() uint8 {
	return uint8(bits.TrailingZeros32(o.MaxIOSize / mdtsPageSize))
}

// ListenAddress is where a transport accepts connections (SPDK's listen_address object):
// TrType "TCP", AdrFam "IPv4" or "IPv6", TrAddr an IP address, TrSvcID a port.
type ListenAddress struct {
	TrType  string `json:"trtype"`
	AdrFam  string `json:"adrfam"`
	TrAddr  string `json:"traddr"`
	TrSvcID string `json:"trsvcid"`
}

func (a ListenAddress) String() string {
	return strings.ToLower(a.TrType) + "://" + net.JoinHostPort(a.TrAddr, a.TrSvcID)
}

// Normalize returns a with TrType upper case (SPDK accepts "tcp" and "TCP"), AdrFam in its
// canonical spelling (inferred from TrAddr when empty) and TrAddr canonical, so two spellings of
// one address compare equal, or an error naming the bad field.
func (a ListenAddress) Normalize() (ListenAddress, error) {
	out := a
	out.TrType = strings.ToUpper(a.TrType)
	if out.TrType == "" {
		return a, fmt.Errorf("listen address %v: trtype empty, want TCP: %w", a, ErrConfig)
	}
	ip := net.ParseIP(a.TrAddr)
	if ip == nil {
		return a, fmt.Errorf("listen address %v: traddr %q, want an IPv4 or IPv6 address: %w", a, a.TrAddr, ErrConfig)
	}
	fam := "IPv6"
	if ip.To4() != nil {
		fam, ip = "IPv4", ip.To4()
	}
	out.TrAddr = ip.String()
	switch strings.ToLower(a.AdrFam) {
	case "", strings.ToLower(fam):
		out.AdrFam = fam
	default:
		return a, fmt.Errorf("listen address %v: adrfam %q does not match traddr %s, want %s: %w",
			a, a.AdrFam, a.TrAddr, fam, ErrConfig)
	}
	port, err := strconv.Atoi(a.TrSvcID)
	if err != nil || port < 1 || port > 65535 || strconv.Itoa(port) != a.TrSvcID {
		return a, fmt.Errorf("listen address %v: trsvcid %q, want a port in 1..65535: %w", a, a.TrSvcID, ErrConfig)
	}
	return out, nil
}

// adrfamCode is the discovery log ADRFAM of a normalized address.
func (a ListenAddress) adrfamCode() uint8 {
	if a.AdrFam == "IPv6" {
		return nvme.AddrFamilyIPv6
	}
	return nvme.AddrFamilyIPv4
}

// SubsystemConfig creates an NVM subsystem (SPDK's nvmf_create_subsystem).
type SubsystemConfig struct {
	NQN           string
	SerialNumber  string // Identify SN: printable ASCII, at most 20 bytes; default derived from the NQN
	ModelNumber   string // Identify MN: printable ASCII, at most 40 bytes; default ModelNumberDefault
	AllowAnyHost  bool
	Hosts         []string // host NQNs allowed when !AllowAnyHost
	MaxNamespaces uint32   // 0: NamespacesMax
	MinCNTLID     uint16   // 0: CNTLIDMin
	MaxCNTLID     uint16   // 0: CNTLIDMax
}

// ModelNumberDefault is what Identify Controller MN says when a subsystem names none.
const ModelNumberDefault = "Sluice NVMe-oF Controller"

// Validate reports every problem with c at once.
func (c *SubsystemConfig) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("subsystem %q: %s %v, want %s: %w", c.NQN, field, v, want, ErrConfig))
	}
	if err := nvme.ValidateNQN(c.NQN); err != nil {
		errs = append(errs, fmt.Errorf("subsystem: %w: %w", err, ErrConfig))
	} else if c.NQN == nvme.DiscoveryNQN {
		bad("nqn", c.NQN, "an NVM subsystem NQN, not the discovery NQN (it always exists)")
	}
	if !printableASCII(c.SerialNumber) || len(c.SerialNumber) > SerialNumberLenMax {
		bad("serial_number", strconv.Quote(c.SerialNumber), fmt.Sprintf("printable ASCII of at most %d bytes", SerialNumberLenMax))
	}
	if !printableASCII(c.ModelNumber) || len(c.ModelNumber) > ModelNumberLenMax {
		bad("model_number", strconv.Quote(c.ModelNumber), fmt.Sprintf("printable ASCII of at most %d bytes", ModelNumberLenMax))
	}
	if len(c.Hosts) > HostsPerSubsystemMax {
		bad("hosts", len(c.Hosts), fmt.Sprintf("at most %d", HostsPerSubsystemMax))
	}
	seen := map[string]bool{}
	for i, h := range c.Hosts {
		if err := nvme.ValidateNQN(h); err != nil {
			bad(fmt.Sprintf("hosts[%d]", i), strconv.Quote(h), "a host NQN ("+err.Error()+")")
		} else if seen[h] {
			bad(fmt.Sprintf("hosts[%d]", i), h, "each host once")
		}
		seen[h] = true
	}
	if c.MaxNamespaces > NamespacesMax {
		bad("max_namespaces", c.MaxNamespaces, fmt.Sprintf("0..%d", NamespacesMax))
	}
	lo, hi := c.cntlidRange()
	if lo < CNTLIDMin || hi > CNTLIDMax || lo > hi {
		bad("min_cntlid..max_cntlid", fmt.Sprintf("%d..%d", lo, hi), fmt.Sprintf("a range inside %d..%d", CNTLIDMin, CNTLIDMax))
	}
	return errors.Join(errs...)
}

func (c *SubsystemConfig) cntlidRange() (uint16, uint16) {
	lo, hi := c.MinCNTLID, c.MaxCNTLID
	if lo == 0 {
		lo = CNTLIDMin
	}
	if hi == 0 {
		hi = CNTLIDMax
	}
	return lo, hi
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// NamespaceConfig attaches a bdev to a subsystem as a namespace (SPDK's namespace object).
type NamespaceConfig struct {
	NSID  uint32    // 1..MaxNamespaces; 0 picks the lowest free
	Bdev  string    // bdev name
	UUID  uuid.UUID // namespace UUID; the nil UUID takes the bdev's
	NGUID [16]byte  // zero: none reported
	EUI64 [8]byte   // zero: none reported
}
