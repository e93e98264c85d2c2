package conf

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"
)

// The targets.nvmf section: the NVMe-over-Fabrics target (SPDK's nvmf_* objects) on its TCP
// transport. Subsystems export bdevs of this file as namespaces; hosts find them through the
// discovery subsystem.
//
//	targets:
//	  nvmf:
//	    transport:                      # the TCP transport's options; every one optional
//	      max_queue_depth: 128          # entries per I/O queue (MQES+1), 2..1024
//	      max_aq_depth: 32              # entries per admin queue, 32..1024
//	      max_io_qpairs_per_ctrlr: 127  # 1..1023
//	      in_capsule_data_size: 8KiB    # write data a command capsule carries, 4KiB..64KiB
//	      max_io_size: 128KiB           # bytes one command moves (MDTS), a power of two in 4KiB..128KiB
//	      max_h2c_data: 128KiB          # MAXH2CDATA, 4KiB..128KiB
//	      header_digest: true           # grant a host's header digest request; false refuses it
//	      data_digest: true             # same for data digests
//	      c2h_success: true             # complete reads by C2HData SUCCESS when the host allows
//	      keep_alive_granularity: 1s    # KAS: KATOs round up to it; a multiple of 100ms
//	      keep_alive_timeout_min: 10s   # shorter KATOs are raised to it
//	      keep_alive_timeout_max: 1h    # longer KATOs are refused at Connect
//	      placement: round-robin        # reactor of each connection: round-robin | least-connections
//	    discovery:
//	      listeners: [{transport: tcp, address: 127.0.0.1, port: 4420}]
//	    subsystems:
//	      - nqn: nqn.2016-06.io.sluice:cnode1   # unique; not the discovery NQN
//	        serial_number: SLUICE0001     # printable ASCII, <= 20; default derived from the NQN
//	        model_number: Sluice NVMe-oF Controller   # <= 40
//	        allow_any_host: true          # or hosts: [host NQNs], not both
//	        max_namespaces: 32            # 1..1024
//	        listeners: [{transport: tcp, address: 127.0.0.1, port: 4420}]
//	        namespaces:
//	          - nsid: 1                   # 1..max_namespaces; default the lowest free
//	            bdev: Malloc0             # a bdev of this file
//	            uuid: …                   # default the bdev's, else derived from NQN and NSID
//	            nguid: 32 hex digits      # optional
//	            eui64: 16 hex digits      # optional

// NVMf is targets.nvmf.
type NVMf struct {
	Transport NVMfTransport
	// Discovery is where the discovery subsystem answers besides every subsystem's listeners.
	Discovery  NVMfDiscovery
	Subsystems []NVMfSubsystem
}

// NVMfTransport is the TCP transport's options (SPDK's nvmf_create_transport). Zero fields
// take their defaults (NVMfQueueDepthDefault…); the No* switches are the file's false.
type NVMfTransport struct {
	MaxQueueDepth        int
	MaxAdminQueueDepth   int
	MaxIOQpairsPerCtrlr  int
	InCapsuleDataSize    Size
	MaxIOSize            Size
	MaxH2CData           Size
	NoHeaderDigest       bool // header_digest: false
	NoDataDigest         bool // data_digest: false
	NoC2HSuccess         bool // c2h_success: false
	KeepAliveGranularity time.Duration
	KeepAliveTimeoutMin  time.Duration
	KeepAliveTimeoutMax  time.Duration
	Placement            NVMfPlacement
}

// NVMfPlacement picks the reactor of each accepted connection.
type NVMfPlacement string

const (
	NVMfPlacementRoundRobin       NVMfPlacement = "round-robin"
	NVMfPlacementLeastConnections NVMfPlacement = "least-connections"
)

// NVMfDiscovery is targets.nvmf.discovery.
type NVMfDiscovery struct {
	Listeners []NVMfListener
}

// NVMfListener is a listen address: the transport (tcp), an IP address and a port.
type NVMfListener struct {
	Transport string // "tcp"
	Address   string // an IP address, canonical
	Port      int    // 1..65535
}

// NVMfSubsystem is one NVM subsystem.
type NVMfSubsystem struct {
	NQN           string
	SerialNumber  string // default NVMfSerialOf(NQN)
	ModelNumber   string // default NVMfModelDefault
	AllowAnyHost  bool
	Hosts         []string
	MaxNamespaces int // default NVMfNamespacesDefault
	Listeners     []NVMfListener
	Namespaces    []NVMfNamespace
}

// NVMfNamespace attaches a bdev of the file under an NSID.
type NVMfNamespace struct {
	NSID  int       // default the lowest NSID free, in file order
	Bdev  string    //
	UUID  uuid.UUID // default the bdev's UUID, else derived from the NQN and NSID (a host reconnecting after a restart refuses a namespace whose UUID changed)
	NGUID [16]byte  // zero: none
	EUI64 [8]byte   // zero: none
}

// Limits and defaults of targets.nvmf. They are protocols/nvmf's and protocols/nvmf/tcp's
// (conf imports nothing of ours, so they are restated: TestNVMfLimitsMatch in cmd/sluice
// keeps them equal).
const (
	NVMfQueueDepthMin                    = 2
	NVMfQueueDepthMax                    = 1024 // request arrays per connection
	NVMfAdminQueueDepthMin               = 32   // NVMe-oF: an admin queue holds at least 32 entries
	NVMfIOQpairsMax                      = 1023
	NVMfInCapsuleMin                     = 4 << 10
	NVMfInCapsuleMax                     = 64 << 10
	NVMfIOSizeMin                        = 4 << 10
	NVMfIOSizeMax                        = 128 << 10 // one large bdev buffer per command
	NVMfH2CDataMin                       = 4 << 10   // NVMe/TCP: MAXH2CDATA at least 4096
	NVMfNamespacesMax                    = 1024      // one Active Namespace List
	NVMfSubsystemsMax                    = 1024
	NVMfListenersMax                     = 64
	NVMfHostsMax                         = 1024
	NVMfSerialLenMax                     = 20
	NVMfModelLenMax                      = 40
	NVMfNQNLenMax                        = 223
	NVMfQueueDepthDefault                = 128
	NVMfAdminQueueDepthDefault           = 32
	NVMfIOQpairsDefault                  = 127
	NVMfInCapsuleDefault            Size = 8 << 10
	NVMfIOSizeDefault               Size = 128 << 10
	NVMfH2CDataDefault              Size = 128 << 10
	NVMfNamespacesDefault                = 32 // SPDK's default max_namespaces
	NVMfModelDefault                     = "Sluice NVMe-oF Controller"
	NVMfDiscoveryNQN                     = "nqn.2014-08.org.nvmexpress.discovery"
	NVMfKeepAliveGranularityDefault      = time.Second
	NVMfKeepAliveMinDefault              = 10 * time.Second
	NVMfKeepAliveMaxDefault              = time.Hour
	nvmfKeepAliveUnit                    = 100 * time.Millisecond
)

const (
	wantNVMfTransport = "tcp"
	wantNQN           = "an NQN such as nqn.2016-06.io.sluice:cnode1 (nqn.yyyy-mm.reverse.domain:name, at most 223 bytes)"
	wantHostNQN       = "a host NQN such as nqn.2014-08.org.nvmexpress:uuid:<UUID>"
	wantIPAddress     = "an IP address such as 127.0.0.1 or ::1"
	wantPort          = "a port in 1..65535"
	wantPlacement     = "round-robin or least-connections"
	wantNVMfDuration  = "a duration such as 10s"
	wantNGUID         = "32 hex digits"
	wantEUI64         = "16 hex digits"
)

var (
	nvmfKeys          = []string{"transport", "discovery", "subsystems"}
	nvmfTransportKeys = []string{"max_queue_depth", "max_aq_depth", "max_io_qpairs_per_ctrlr", "in_capsule_data_size",
		"max_io_size", "max_h2c_data", "header_digest", "data_digest", "c2h_success", "keep_alive_granularity",
		"keep_alive_timeout_min", "keep_alive_timeout_max", "placement"}
	nvmfDiscoveryKeys = []string{"listeners"}
	nvmfSubsystemKeys = []string{"nqn", "serial_number", "model_number", "allow_any_host", "hosts", "max_namespaces",
		"listeners", "namespaces"}
	nvmfListenerKeys  = []string{"transport", "address", "port"}
	nvmfNamespaceKeys = []string{"nsid", "bdev", "uuid", "nguid", "eui64"}
)

// nvmf decodes targets.nvmf.
func (d *decoder) nvmf(path string, n *yaml.Node, s *NVMf) {
	d.fields(path, n, nvmfKeys, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "transport":
			d.nvmfTransport(p, v, &s.Transport)
		case "discovery":
			d.fields(p, v, nvmfDiscoveryKeys, func(key string, k, v *yaml.Node) {
				s.Discovery.Listeners = d.nvmfListeners(joinPath(p, key), v)
			})
		case "subsystems":
			s.Subsystems = listOf(d, p, v, d.nvmfSubsystem)
		}
	})
}

func (d *decoder) nvmfTransport(path string, n *yaml.Node, o *NVMfTransport) {
	d.fields(path, n, nvmfTransportKeys, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "max_queue_depth":
			o.MaxQueueDepth = d.integer(p, v)
		case "max_aq_depth":
			o.MaxAdminQueueDepth = d.integer(p, v)
		case "max_io_qpairs_per_ctrlr":
			o.MaxIOQpairsPerCtrlr = d.integer(p, v)
		case "in_capsule_data_size":
			o.InCapsuleDataSize = d.size(p, v, sizeWantSyntax)
		case "max_io_size":
			o.MaxIOSize = d.size(p, v, sizeWantSyntax)
		case "max_h2c_data":
			o.MaxH2CData = d.size(p, v, sizeWantSyntax)
		case "header_digest":
			o.NoHeaderDigest = !d.boolean(p, v)
		case "data_digest":
			o.NoDataDigest = !d.boolean(p, v)
		case "c2h_success":
			o.NoC2HSuccess = !d.boolean(p, v)
		case "keep_alive_granularity":
			o.KeepAliveGranularity = d.nvmfDuration(p, v)
		case "keep_alive_timeout_min":
			o.KeepAliveTimeoutMin = d.nvmfDuration(p, v)
		case "keep_alive_timeout_max":
			o.KeepAliveTimeoutMax = d.nvmfDuration(p, v)
		case "placement":
			text, _ := d.scalar(p, v, wantPlacement)
			o.Placement = NVMfPlacement(text)
		}
	})
}

func (d *decoder) nvmfDuration(path string, n *yaml.Node) time.Duration {
	text, ok := d.scalar(path, n, wantNVMfDuration)
	if !ok {
		return 0
	}
	v, err := time.ParseDuration(text)
	if err != nil {
		d.report(path, n, Error{Value: text, Want: wantNVMfDuration})
	}
	return v
}

func (d *decoder) nvmfListeners(path string, n *yaml.Node) []NVMfListener {
	return listOf(d, path, n, func(p string, v *yaml.Node, l *NVMfListener) {
		d.fields(p, v, nvmfListenerKeys, func(key string, k, v *yaml.Node) {
			q := joinPath(p, key)
			switch key {
			case "transport":
				l.Transport, _ = d.scalar(q, v, wantNVMfTransport)
			case "address":
				l.Address, _ = d.scalar(q, v, wantIPAddress)
			case "port":
				l.Port = d.integer(q, v)
			}
		})
	})
}

func (d *decoder) nvmfSubsystem(path string, n *yaml.Node, s *NVMfSubsystem) {
	d.fields(path, n, nvmfSubsystemKeys, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "nqn":
			s.NQN, _ = d.scalar(p, v, wantNQN)
		case "serial_number":
			s.SerialNumber, _ = d.scalar(p, v, "printable ASCII of at most 20 bytes")
		case "model_number":
			s.ModelNumber, _ = d.scalar(p, v, "printable ASCII of at most 40 bytes")
		case "allow_any_host":
			s.AllowAnyHost = d.boolean(p, v)
		case "hosts":
			s.Hosts = d.strings(p, v, "host NQNs")
		case "max_namespaces":
			s.MaxNamespaces = d.integer(p, v)
		case "listeners":
			s.Listeners = d.nvmfListeners(p, v)
		case "namespaces":
			s.Namespaces = listOf(d, p, v, d.nvmfNamespace)
		}
	})
}

func (d *decoder) nvmfNamespace(path string, n *yaml.Node, ns *NVMfNamespace) {
	d.fields(path, n, nvmfNamespaceKeys, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "nsid":
			ns.NSID = d.integer(p, v)
		case "bdev":
			ns.Bdev, _ = d.scalar(p, v, wantName)
		case "uuid":
			ns.UUID = d.uuid(p, v)
		case "nguid":
			d.hexID(p, v, ns.NGUID[:], wantNGUID)
		case "eui64":
			d.hexID(p, v, ns.EUI64[:], wantEUI64)
		}
	})
}

// hexID decodes exactly len(dst) bytes of hex (either case) into dst.
func (d *decoder) hexID(path string, n *yaml.Node, dst []byte, want string) {
	text, ok := d.scalar(path, n, want)
	if !ok {
		return
	}
	b, err := hex.DecodeString(text)
	switch {
	case err != nil || len(b) != len(dst):
		d.report(path, n, Error{Value: text, Want: want})
	case isZero(b):
		d.report(path, n, Error{Value: text, Want: want + " not all zero (leave it out for none)"})
	default:
		copy(dst, b)
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// validateNVMf checks targets.nvmf against its rules and the bdevs of t.
func validateNVMf(c *checker, t *Topology) {
	s := t.Targets.NVMf
	if s == nil {
		return
	}
	const base = "targets.nvmf"
	validateNVMfTransport(c, base+".transport", &s.Transport)
	for i := range s.Discovery.Listeners {
		validateNVMfListener(c, itemPath(base+".discovery.listeners", i), &s.Discovery.Listeners[i])
	}
	checkNVMfListenersOnce(c, base+".discovery.listeners", s.Discovery.Listeners)
	if n := len(s.Subsystems); n > NVMfSubsystemsMax && c.ok(base+".subsystems") {
		c.problem(base+".subsystems", strconv.Itoa(n)+" subsystems", "at most "+strconv.Itoa(NVMfSubsystemsMax))
	}
	bdevs := t.exportable()
	nqns := map[string]string{}     // NQN -> path of the subsystem that has it
	uuids := map[uuid.UUID]string{} // namespace UUID -> path
	for i := range s.Subsystems {
		p := itemPath(base+".subsystems", i)
		sub := &s.Subsystems[i]
		if pn := p + ".nqn"; c.ok(pn) {
			switch want := checkNQN(sub.NQN); {
			case sub.NQN == "":
				c.missingOr(pn, wantNQN)
			case want != "":
				c.value(pn, sub.NQN, want)
			case sub.NQN == NVMfDiscoveryNQN:
				c.value(pn, sub.NQN, "an NVM subsystem NQN (the discovery subsystem always exists; give its listeners under discovery)")
			case nqns[sub.NQN] != "":
				c.value(pn, sub.NQN, "an NQN no other subsystem has ("+c.where(nqns[sub.NQN])+" has it)")
			default:
				nqns[sub.NQN] = p
			}
		}
		validateNVMfSubsystem(c, p, sub, bdevs, uuids)
	}
}

func validateNVMfTransport(c *checker, path string, o *NVMfTransport) {
	ints := []struct {
		key    string
		v      int
		lo, hi int
	}{
		{"max_queue_depth", o.MaxQueueDepth, NVMfQueueDepthMin, NVMfQueueDepthMax},
		{"max_aq_depth", o.MaxAdminQueueDepth, NVMfAdminQueueDepthMin, NVMfQueueDepthMax},
		{"max_io_qpairs_per_ctrlr", o.MaxIOQpairsPerCtrlr, 1, NVMfIOQpairsMax},
	}
	for _, f := range ints {
		if p := path + "." + f.key; c.ok(p) && (f.v != 0 || c.given(p)) && (f.v < f.lo || f.v > f.hi) {
			c.value(p, c.src.text(p, strconv.Itoa(f.v)), strconv.Itoa(f.lo)+".."+strconv.Itoa(f.hi))
		}
	}
	sizes := []struct {
		key  string
		v    Size
		ok   func(Size) bool
		want string
	}{
		{"in_capsule_data_size", o.InCapsuleDataSize, func(s Size) bool { return s >= NVMfInCapsuleMin && s <= NVMfInCapsuleMax && s%16 == 0 },
			"a multiple of 16 in 4KiB..64KiB"},
		{"max_io_size", o.MaxIOSize, func(s Size) bool { return s >= NVMfIOSizeMin && s <= NVMfIOSizeMax && s&(s-1) == 0 },
			"a power of two in 4KiB..128KiB"},
		{"max_h2c_data", o.MaxH2CData, func(s Size) bool { return s >= NVMfH2CDataMin && s <= NVMfIOSizeMax && s%4 == 0 },
			"a multiple of 4 in 4KiB..128KiB"},
	}
	for _, f := range sizes {
		if p := path + "." + f.key; c.ok(p) && (f.v != 0 || c.given(p)) && !f.ok(f.v) {
			c.value(p, c.src.text(p, f.v.String()), f.want)
		}
	}
	g, lo, hi := o.KeepAliveGranularity, o.KeepAliveTimeoutMin, o.KeepAliveTimeoutMax
	if p := path + ".keep_alive_granularity"; c.ok(p) && (g != 0 || c.given(p)) && (g < nvmfKeepAliveUnit || g%nvmfKeepAliveUnit != 0 || g > 0xFFFF*nvmfKeepAliveUnit) {
		c.value(p, c.src.text(p, g.String()), "a multiple of 100ms up to 6553.5s")
	}
	if p := path + ".keep_alive_timeout_min"; c.ok(p) && (lo != 0 || c.given(p)) && lo <= 0 {
		c.value(p, c.src.text(p, lo.String()), "a positive duration such as 10s")
	}
	if p := path + ".keep_alive_timeout_max"; c.ok(p) && (hi != 0 || c.given(p)) && (hi <= 0 || hi > 0xFFFFFFFF*time.Millisecond) {
		c.value(p, c.src.text(p, hi.String()), "a positive duration of at most 4294967295ms (the KATO field)")
	}
	if lo == 0 {
		lo = NVMfKeepAliveMinDefault
	}
	if hi == 0 {
		hi = NVMfKeepAliveMaxDefault
	}
	if p := path + ".keep_alive_timeout_min"; c.ok(p, path+".keep_alive_timeout_max") && lo > hi {
		c.value(p, c.src.text(p, lo.String()), "at most keep_alive_timeout_max "+hi.String())
	}
	if p := path + ".placement"; c.ok(p) && (o.Placement != "" || c.given(p)) &&
		o.Placement != NVMfPlacementRoundRobin && o.Placement != NVMfPlacementLeastConnections {
		c.value(p, string(o.Placement), wantPlacement)
	}
}

func validateNVMfListener(c *checker, path string, l *NVMfListener) {
	if p := path + ".transport"; c.ok(p) {
		switch strings.ToLower(l.Transport) {
		case "tcp":
		case "":
			c.missingOr(p, wantNVMfTransport)
		case "rdma":
			c.problem(p, l.Transport+": not supported yet", wantNVMfTransport)
		default:
			c.value(p, l.Transport, wantNVMfTransport)
		}
	}
	if p := path + ".address"; c.ok(p) {
		if a, err := netip.ParseAddr(l.Address); l.Address == "" {
			c.missingOr(p, wantIPAddress)
		} else if err != nil || a.Zone() != "" {
			c.value(p, l.Address, wantIPAddress)
		}
	}
	if p := path + ".port"; c.ok(p) && (l.Port < 1 || l.Port > 65535) {
		if l.Port == 0 && !c.given(p) {
			c.problem(p, "missing", wantPort+" (4420 is NVMe/TCP's)")
		} else {
			c.value(p, c.src.text(p, strconv.Itoa(l.Port)), wantPort)
		}
	}
}

// checkNVMfListenersOnce reports a listener listed twice in one list.
func checkNVMfListenersOnce(c *checker, path string, ls []NVMfListener) {
	seen := map[string]string{}
	for i, l := range ls {
		p := itemPath(path, i)
		if !c.ok(p) {
			continue
		}
		key := l.key()
		if first, dup := seen[key]; dup {
			c.problem(p, "the listener of "+c.where(first)+" again", "each listener once")
			continue
		}
		seen[key] = p
	}
}

// key is the listener's identity: transport, canonical address, port.
func (l NVMfListener) key() string {
	a := l.Address
	if ip, err := netip.ParseAddr(a); err == nil {
		a = ip.Unmap().String()
	}
	return strings.ToLower(l.Transport) + "|" + a + "|" + strconv.Itoa(l.Port)
}

func validateNVMfSubsystem(c *checker, p string, s *NVMfSubsystem, bdevs map[string]uuid.UUID, uuids map[uuid.UUID]string) {
	if q := p + ".serial_number"; c.ok(q) && (len(s.SerialNumber) > NVMfSerialLenMax || !printableASCIIOnly(s.SerialNumber)) {
		c.value(q, s.SerialNumber, "printable ASCII of at most 20 bytes")
	}
	if q := p + ".model_number"; c.ok(q) && (len(s.ModelNumber) > NVMfModelLenMax || !printableASCIIOnly(s.ModelNumber)) {
		c.value(q, s.ModelNumber, "printable ASCII of at most 40 bytes")
	}
	if q := p + ".allow_any_host"; c.ok(q, p+".hosts") && s.AllowAnyHost && len(s.Hosts) > 0 {
		c.value(q, "true", "false with a hosts list (hosts or allow_any_host, not both)")
	}
	if q := p + ".hosts"; c.ok(q) {
		if len(s.Hosts) > NVMfHostsMax {
			c.problem(q, strconv.Itoa(len(s.Hosts))+" hosts", "at most "+strconv.Itoa(NVMfHostsMax))
		}
		seen := map[string]bool{}
		for i, h := range s.Hosts {
			hp := itemPath(q, i)
			switch want := checkNQN(h); {
			case !c.ok(hp):
			case want != "":
				c.value(hp, h, wantHostNQN)
			case seen[h]:
				c.value(hp, h, "each host once")
			}
			seen[h] = true
		}
	}
	maxNS := s.MaxNamespaces
	if q := p + ".max_namespaces"; c.ok(q) && (maxNS != 0 || c.given(q)) && (maxNS < 1 || maxNS > NVMfNamespacesMax) {
		c.value(q, c.src.text(q, strconv.Itoa(maxNS)), "1.."+strconv.Itoa(NVMfNamespacesMax))
		maxNS = NVMfNamespacesMax
	}
	if maxNS == 0 {
		maxNS = NVMfNamespacesDefault
	}
	if len(s.Listeners) > NVMfListenersMax {
		c.problem(p+".listeners", strconv.Itoa(len(s.Listeners))+" listeners", "at most "+strconv.Itoa(NVMfListenersMax))
	}
	for i := range s.Listeners {
		validateNVMfListener(c, itemPath(p+".listeners", i), &s.Listeners[i])
	}
	checkNVMfListenersOnce(c, p+".listeners", s.Listeners)
	if len(s.Namespaces) > maxNS {
		c.problem(p+".namespaces", strconv.Itoa(len(s.Namespaces))+" namespaces", "at most max_namespaces "+strconv.Itoa(maxNS))
	}
	nsids := map[int]string{}
	for i := range s.Namespaces {
		q := itemPath(p+".namespaces", i)
		ns := &s.Namespaces[i]
		if r := q + ".nsid"; c.ok(r) && (ns.NSID != 0 || c.given(r)) {
			switch {
			case ns.NSID < 1 || ns.NSID > maxNS:
				c.value(r, c.src.text(r, strconv.Itoa(ns.NSID)), "1.."+strconv.Itoa(maxNS)+" (max_namespaces)")
			case nsids[ns.NSID] != "":
				c.value(r, strconv.Itoa(ns.NSID), "an NSID used once ("+c.where(nsids[ns.NSID])+" uses it)")
			default:
				nsids[ns.NSID] = q
			}
		}
		if r := q + ".bdev"; c.ok(r) {
			if _, ok := bdevs[ns.Bdev]; ns.Bdev == "" {
				c.missingOr(r, wantName)
			} else if !ok {
				c.value(r, ns.Bdev, "the name of a bdev or stage of this file")
			}
		}
		if r := q + ".uuid"; ns.UUID != uuid.Nil && c.ok(r) {
			if first, dup := uuids[ns.UUID]; dup {
				c.value(r, c.src.text(r, ns.UUID.String()), "a UUID no other namespace has ("+c.where(first)+" has it)")
			} else {
				uuids[ns.UUID] = q
			}
		}
	}
}

func printableASCIIOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// checkNQN returns "" for a valid NQN, else what is wanted: the rules of protocols/nvme's
// ValidateNQN (NVMe Base 2.0, "NVMe Qualified Names"), restated since conf imports nothing of
// ours.
func checkNQN(s string) string {
	const uuidPrefix = "nqn.2014-08.org.nvmexpress:uuid:"
	if s == "" || len(s) > NVMfNQNLenMax || strings.IndexByte(s, 0) >= 0 {
		return wantNQN
	}
	if s == NVMfDiscoveryNQN {
		return ""
	}
	if rest, ok := strings.CutPrefix(s, uuidPrefix); ok {
		if _, err := uuid.Parse(rest); err != nil || len(rest) != 36 {
			return wantNQN
		}
		return ""
	}
	rest, ok := strings.CutPrefix(s, "nqn.")
	if !ok || len(rest) < 8 || digitsEnd(rest, 0) != 4 || rest[4] != '-' || digitsEnd(rest, 5) != 7 || rest[7] != '.' {
		return wantNQN
	}
	if m, _ := strconv.Atoi(rest[5:7]); m < 1 || m > 12 {
		return wantNQN
	}
	domain, user, ok := strings.Cut(rest[8:], ":")
	if !ok || user == "" || domain == "" || !validHostname(domain) {
		return wantNQN
	}
	return ""
}

// NVMfSerialOf is the serial number of a subsystem that names none: the first 20 hex digits of
// the NQN's name-based UUID, so it stays the same across restarts (hosts key on it).
func NVMfSerialOf(nqn string) string {
	u := uuid.NewSHA1(uuid.NameSpaceURL, []byte(nqn))
	return hex.EncodeToString(u[:NVMfSerialLenMax/2])
}

// NVMfNamespaceUUIDOf is the UUID of namespace nsid of subsystem nqn whose bdev has none.
func NVMfNamespaceUUIDOf(nqn string, nsid int) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(nqn+"/ns/"+strconv.Itoa(nsid)))
}

// fillNVMfDefaults fills what targets.nvmf leaves out (C1).
func fillNVMfDefaults(t *Topology) {
	s := t.Targets.NVMf
	if s == nil {
		return
	}
	o := &s.Transport
	for _, f := range []struct {
		v   *int
		def int
	}{{&o.MaxQueueDepth, NVMfQueueDepthDefault}, {&o.MaxAdminQueueDepth, NVMfAdminQueueDepthDefault},
		{&o.MaxIOQpairsPerCtrlr, NVMfIOQpairsDefault}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	for _, f := range []struct {
		v   *Size
		def Size
	}{{&o.InCapsuleDataSize, NVMfInCapsuleDefault}, {&o.MaxIOSize, NVMfIOSizeDefault}, {&o.MaxH2CData, NVMfH2CDataDefault}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&o.KeepAliveGranularity, NVMfKeepAliveGranularityDefault}, {&o.KeepAliveTimeoutMin, NVMfKeepAliveMinDefault},
		{&o.KeepAliveTimeoutMax, NVMfKeepAliveMaxDefault}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if o.Placement == "" {
		o.Placement = NVMfPlacementRoundRobin
	}
	for i := range s.Discovery.Listeners {
		s.Discovery.Listeners[i].canonical()
	}
	bdevUUIDs := t.exportable()
	for i := range s.Subsystems {
		sub := &s.Subsystems[i]
		if sub.SerialNumber == "" {
			sub.SerialNumber = NVMfSerialOf(sub.NQN)
		}
		if sub.ModelNumber == "" {
			sub.ModelNumber = NVMfModelDefault
		}
		if sub.MaxNamespaces == 0 {
			sub.MaxNamespaces = NVMfNamespacesDefault
		}
		for j := range sub.Listeners {
			sub.Listeners[j].canonical()
		}
		used := map[int]bool{}
		for _, ns := range sub.Namespaces {
			used[ns.NSID] = true
		}
		next := 1
		for j := range sub.Namespaces {
			ns := &sub.Namespaces[j]
			if ns.NSID == 0 {
				for used[next] {
					next++
				}
				ns.NSID = next
				used[next] = true
			}
			if ns.UUID == uuid.Nil {
				ns.UUID = bdevUUIDs[ns.Bdev]
			}
			if ns.UUID == uuid.Nil {
				ns.UUID = NVMfNamespaceUUIDOf(sub.NQN, ns.NSID)
			}
		}
	}
}

// canonical writes the transport lower case and the address in its canonical form.
func (l *NVMfListener) canonical() {
	l.Transport = strings.ToLower(l.Transport)
	if a, err := netip.ParseAddr(l.Address); err == nil {
		l.Address = a.Unmap().String()
	}
}

// node writes targets.nvmf, or nil when there is none.
func (s *NVMf) node() *yaml.Node {
	if s == nil {
		return nil
	}
	n := mappingNode()
	o := &s.Transport
	tr := mappingNode()
	for _, f := range []struct {
		key string
		v   int
	}{{"max_queue_depth", o.MaxQueueDepth}, {"max_aq_depth", o.MaxAdminQueueDepth}, {"max_io_qpairs_per_ctrlr", o.MaxIOQpairsPerCtrlr}} {
		if f.v != 0 {
			addField(tr, f.key, intNode(uint64(f.v)))
		}
	}
	for _, f := range []struct {
		key string
		v   Size
	}{{"in_capsule_data_size", o.InCapsuleDataSize}, {"max_io_size", o.MaxIOSize}, {"max_h2c_data", o.MaxH2CData}} {
		if f.v != 0 {
			addField(tr, f.key, sizeNode(f.v))
		}
	}
	addField(tr, "header_digest", boolNode(!o.NoHeaderDigest))
	addField(tr, "data_digest", boolNode(!o.NoDataDigest))
	addField(tr, "c2h_success", boolNode(!o.NoC2HSuccess))
	for _, f := range []struct {
		key string
		v   time.Duration
	}{{"keep_alive_granularity", o.KeepAliveGranularity}, {"keep_alive_timeout_min", o.KeepAliveTimeoutMin},
		{"keep_alive_timeout_max", o.KeepAliveTimeoutMax}} {
		if f.v != 0 {
			addField(tr, f.key, stringNode(f.v.String()))
		}
	}
	if o.Placement != "" {
		addField(tr, "placement", stringNode(string(o.Placement)))
	}
	addField(n, "transport", tr)
	if len(s.Discovery.Listeners) > 0 {
		d := mappingNode()
		addField(d, "listeners", nvmfListenersNode(s.Discovery.Listeners))
		addField(n, "discovery", d)
	}
	if len(s.Subsystems) > 0 {
		l := seqNode()
		for i := range s.Subsystems {
			l.Content = append(l.Content, nvmfSubsystemNode(&s.Subsystems[i]))
		}
		addField(n, "subsystems", l)
	}
	return n
}

func nvmfListenersNode(ls []NVMfListener) *yaml.Node {
	l := seqNode()
	for _, x := range ls {
		m := mappingNode()
		m.Style = yaml.FlowStyle
		addField(m, "transport", stringNode(x.Transport))
		addField(m, "address", stringNode(x.Address))
		addField(m, "port", intNode(uint64(x.Port)))
		l.Content = append(l.Content, m)
	}
	return l
}

func nvmfSubsystemNode(s *NVMfSubsystem) *yaml.Node {
	m := mappingNode()
	addField(m, "nqn", stringNode(s.NQN))
	if s.SerialNumber != "" {
		addField(m, "serial_number", stringNode(s.SerialNumber))
	}
	if s.ModelNumber != "" {
		addField(m, "model_number", stringNode(s.ModelNumber))
	}
	addField(m, "allow_any_host", boolNode(s.AllowAnyHost))
	if len(s.Hosts) > 0 {
		addField(m, "hosts", stringsNode(s.Hosts))
	}
	if s.MaxNamespaces != 0 {
		addField(m, "max_namespaces", intNode(uint64(s.MaxNamespaces)))
	}
	if len(s.Listeners) > 0 {
		addField(m, "listeners", nvmfListenersNode(s.Listeners))
	}
	if len(s.Namespaces) > 0 {
		l := seqNode()
		for _, ns := range s.Namespaces {
			x := mappingNode()
			if ns.NSID != 0 {
				addField(x, "nsid", intNode(uint64(ns.NSID)))
			}
			addField(x, "bdev", stringNode(ns.Bdev))
			if ns.UUID != uuid.Nil {
				addField(x, "uuid", stringNode(ns.UUID.String()))
			}
			if ns.NGUID != [16]byte{} {
				addField(x, "nguid", stringNode(strings.ToUpper(hex.EncodeToString(ns.NGUID[:]))))
			}
			if ns.EUI64 != [8]byte{} {
				addField(x, "eui64", stringNode(strings.ToUpper(hex.EncodeToString(ns.EUI64[:]))))
			}
			l.Content = append(l.Content, x)
		}
		addField(m, "namespaces", l)
	}
	return m
}
