package conf

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"
)

// An nvmf bdev attaches a controller of a remote NVMe/TCP subsystem through our host
// (drivers/nvmf), with bdev_nvme_attach_controller's parameters under SPDK's names:
//
//	bdevs:
//	  - name: Nvme0                 # the controller; 1..58 characters (room for n and the NSID)
//	    driver: nvmf
//	    trtype: tcp                 # default tcp, the only transport
//	    adrfam: ipv4                # ipv4 | ipv6; default: the address's
//	    traddr: 192.0.2.7           # required: an IP address or host name
//	    trsvcid: 4420               # port, default 4420
//	    subnqn: nqn.2016-06.io.spdk:cnode1   # required: an NVM subsystem
//	    hostnqn: nqn.2014-08.org.nvmexpress:uuid:…   # optional: default one per connection
//	    hdgst: false                # header digest
//	    ddgst: false                # data digest
//	    io_queue_size: 128          # commands per I/O qpair (one per reactor), 1..1023
//	    num_io_queues: 64           # I/O queues asked of the controller, 1..65535
//	    reconnect_delay_sec: 1      # SPDK's reconnect policy; all three 0 by default:
//	    ctrlr_loss_timeout_sec: 30  # -1 reconnects forever, 0 never
//	    fast_io_fail_timeout_sec: 5
//
// The bdev itself is no block device: the controller's namespaces are, named as SPDK names
// them, <name>n<NSID> (Nvme0n1, Nvme0n2…). How many there are is known only once the
// controller connects, so the file may name any <name>n<N> with N in 1..NVMfNamespacesMax
// wherever it names a block device (a stage's base or metadata, an nvmf namespace, an iSCSI
// LUN); `sluice run` attaches every nvmf bdev before the stages and targets start, and a name
// the controller does not have is a start error that names it. No other bdev or stage may take
// a name of that form, and nothing may name the controller itself where a block device is
// wanted. block_size, size, blocks, uuid and path are other drivers' fields (each namespace has
// the remote's); the fields above are nvmf's only.

// DriverNVMf attaches a remote NVMe/TCP controller (Bdev.Remote); its namespaces become
// the bdevs <name>n<NSID>.
const DriverNVMf Driver = "nvmf"

// NVMfRemote is an nvmf bdev's controller and how to reach and keep it: SPDK's
// bdev_nvme_attach_controller parameters. Fields a file leaves out get their defaults (C1).
type NVMfRemote struct {
	// TrType is the transport, "tcp" (default; written lower case).
	TrType string
	// AdrFam is "ipv4" or "ipv6"; "" takes the family of TrAddr.
	AdrFam string
	// TrAddr is the controller's IP address (in netip's canonical form, an IPv4-mapped one
	// kept mapped) or host name. Required.
	TrAddr string
	// TrSvcID is the TCP port; default NVMfPortDefault.
	TrSvcID int
	// SubNQN is the NVM subsystem to attach. Required; not the discovery NQN.
	SubNQN string
	// HostNQN is this host's NQN; "" means one made from a random host ID at each connect.
	HostNQN string
	// HeaderDigest and DataDigest ask for CRC32C digests (hdgst, ddgst).
	HeaderDigest bool
	DataDigest   bool
	// IOQueueSize is the commands of each reactor's I/O qpair (io_queue_size), within
	// 1..NVMfIOQueueSizeMax and capped at what the controller grants; default
	// NVMfIOQueueSizeDefault.
	IOQueueSize int
	// NumIOQueues is how many I/O queues Set Features asks for (num_io_queues), within
	// 1..NVMfNumIOQueuesMax; default NVMfNumIOQueuesDefault.
	NumIOQueues int
	// ReconnectDelay, CtrlrLossTimeout and FastIOFailTimeout are SPDK's reconnect policy in
	// whole seconds (reconnect_delay_sec, ctrlr_loss_timeout_sec, fast_io_fail_timeout_sec;
	// drivers/nvmf's Recovery): the wait between attempts after a loss; how long attempts go
	// on (-1s forever, 0 none); when queued I/O starts failing (0 never). All zero by default,
	// as in SPDK. The start of `sluice run` retries its first connection by the same policy.
	ReconnectDelay    time.Duration
	CtrlrLossTimeout  time.Duration
	FastIOFailTimeout time.Duration
}

// Limits and defaults of nvmf bdevs. The host's are drivers/nvmf/host's, restated (conf
// imports nothing of ours): cmd/sluice fails to compile when they drift apart.
const (
	// NVMfControllerNameLenMax leaves room in NameLenMax for "n" and a 5-digit NSID, as
	// drivers/nvmf requires of a controller name.
	NVMfControllerNameLenMax = NameLenMax - 6
	// NVMfPortDefault is NVMe/TCP's IANA port for I/O controllers.
	NVMfPortDefault = 4420
	// NVMfIOQueueSizeDefault is SPDK's io_queue_size default and our host's.
	NVMfIOQueueSizeDefault = 128
	// NVMfIOQueueSizeMax is the deepest qpair our host makes (Linux's nvmet grants 1024
	// entries, MQES 1023).
	NVMfIOQueueSizeMax = 1023
	// NVMfNumIOQueuesDefault is our host's: one per core of any machine we run on, with room.
	NVMfNumIOQueuesDefault = 64
	// NVMfNumIOQueuesMax: Number of Queues counts queues in 16 bits (NVMe Base 2.0, Set
	// Features, Number of Queues).
	NVMfNumIOQueuesMax = 65535
	// NVMfRecoverySecondsMax bounds the three reconnect settings: SPDK decodes them as
	// 32-bit integers, so a larger value would not load there either.
	NVMfRecoverySecondsMax = 1<<31 - 1
)

const (
	wantTrType       = "tcp"
	wantAdrFam       = "ipv4 or ipv6"
	wantTrAddr       = "an IP address or host name"
	wantRecoverySecs = "whole seconds in 0..2147483647"
	wantLossTimeout  = "-1 (reconnect forever), 0 (never) or whole seconds up to 2147483647"
)

// nvmfBdevKeys are the keys only an nvmf bdev has, in the schema's order.
var nvmfBdevKeys = []string{"trtype", "adrfam", "traddr", "trsvcid", "subnqn", "hostnqn", "hdgst", "ddgst",
	"io_queue_size", "num_io_queues", "reconnect_delay_sec", "ctrlr_loss_timeout_sec", "fast_io_fail_timeout_sec"}

// bdevNVMf decodes key, one of nvmfBdevKeys, into b.Remote (made on the first). Which
// driver may have it is validate's question.
func (d *decoder) bdevNVMf(key, path string, n *yaml.Node, b *Bdev) {
	if b.Remote == nil {
		b.Remote = &NVMfRemote{}
	}
	r := b.Remote
	switch key {
	case "trtype":
		r.TrType, _ = d.scalar(path, n, wantTrType)
	case "adrfam":
		r.AdrFam, _ = d.scalar(path, n, wantAdrFam)
	case "traddr":
		r.TrAddr, _ = d.scalar(path, n, wantTrAddr)
	case "trsvcid":
		r.TrSvcID = d.integer(path, n)
	case "subnqn":
		r.SubNQN, _ = d.scalar(path, n, wantNQN)
	case "hostnqn":
		r.HostNQN, _ = d.scalar(path, n, wantHostNQN)
	case "hdgst":
		r.HeaderDigest = d.boolean(path, n)
	case "ddgst":
		r.DataDigest = d.boolean(path, n)
	case "io_queue_size":
		r.IOQueueSize = d.integer(path, n)
	case "num_io_queues":
		r.NumIOQueues = d.integer(path, n)
	case "reconnect_delay_sec":
		r.ReconnectDelay = d.seconds(path, n, wantRecoverySecs)
	case "ctrlr_loss_timeout_sec":
		r.CtrlrLossTimeout = d.seconds(path, n, wantLossTimeout)
	case "fast_io_fail_timeout_sec":
		r.FastIOFailTimeout = d.seconds(path, n, wantRecoverySecs)
	}
}

// seconds decodes a whole, possibly negative, number of seconds of at most
// NVMfRecoverySecondsMax (the sign and range rules of each field are validate's).
func (d *decoder) seconds(path string, n *yaml.Node, want string) time.Duration {
	text, ok := d.scalar(path, n, want)
	if !ok {
		return 0
	}
	digits := strings.TrimPrefix(text, "-")
	if digits == "" || digitsEnd(digits, 0) != len(digits) || len(digits) > 10 {
		d.report(path, n, Error{Value: text, Want: want})
		return 0
	}
	v, _ := strconv.ParseInt(digits, 10, 64) // at most 10 digits: cannot fail
	if v > NVMfRecoverySecondsMax {
		d.report(path, n, Error{Value: text, Want: want})
		return 0
	}
	if digits != text {
		v = -v
	}
	return time.Duration(v) * time.Second
}

// validateBdevNVMf checks an nvmf bdev at path: no field of another driver, and its
// controller's fields.
func validateBdevNVMf(c *checker, path string, b *Bdev) {
	if p := path + ".name"; c.ok(p) && validName(b.Name) && len(b.Name) > NVMfControllerNameLenMax {
		c.value(p, b.Name, "at most "+strconv.Itoa(NVMfControllerNameLenMax)+
			" characters for an nvmf bdev (its namespaces add n and the NSID)")
	}
	for _, f := range []struct {
		key string
		set bool
	}{{"block_size", b.BlockSize != 0}, {"size", b.Size != 0}, {"blocks", b.Blocks != 0}, {"uuid", b.UUID != uuid.Nil}} {
		if p := path + "." + f.key; c.ok(p) && (f.set || c.given(p)) {
			c.problem(p, "given for driver nvmf", "no "+f.key+" (each namespace has the remote's)")
		}
	}
	validateBdevPath(c, path+".path", b)
	r := b.Remote
	if r == nil { // built in code without one
		r = &NVMfRemote{}
	}
	validateNVMfRemoteAddress(c, path, r)
	if p := path + ".subnqn"; c.ok(p) {
		switch want := checkNQN(r.SubNQN); {
		case r.SubNQN == "":
			c.missingOr(p, wantNQN)
		case want != "":
			c.value(p, r.SubNQN, want)
		case r.SubNQN == NVMfDiscoveryNQN:
			c.value(p, r.SubNQN, "an NVM subsystem NQN (the discovery subsystem has no namespaces)")
		}
	}
	if p := path + ".hostnqn"; c.ok(p) && (r.HostNQN != "" || c.given(p)) &&
		(checkNQN(r.HostNQN) != "" || r.HostNQN == NVMfDiscoveryNQN) {
		c.value(p, r.HostNQN, wantHostNQN)
	}
	for _, f := range []struct {
		key string
		v   int
		max int
	}{{"io_queue_size", r.IOQueueSize, NVMfIOQueueSizeMax}, {"num_io_queues", r.NumIOQueues, NVMfNumIOQueuesMax}} {
		if p := path + "." + f.key; c.ok(p) && (f.v != 0 || c.given(p)) && (f.v < 1 || f.v > f.max) {
			c.value(p, c.src.text(p, strconv.Itoa(f.v)), "1.."+strconv.Itoa(f.max))
		}
	}
	validateNVMfRecovery(c, path, r)
}

// validateNVMfRemoteAddress checks trtype, adrfam, traddr and trsvcid.
func validateNVMfRemoteAddress(c *checker, path string, r *NVMfRemote) {
	if p := path + ".trtype"; c.ok(p) && (r.TrType != "" || c.given(p)) {
		switch strings.ToLower(r.TrType) {
		case "tcp":
		case "rdma":
			c.problem(p, r.TrType+": not supported yet", wantTrType)
		default:
			c.value(p, r.TrType, wantTrType)
		}
	}
	family := strings.ToLower(r.AdrFam)
	pf := path + ".adrfam"
	if c.ok(pf) && (r.AdrFam != "" || c.given(pf)) && family != "ipv4" && family != "ipv6" {
		c.value(pf, r.AdrFam, wantAdrFam)
	}
	if p := path + ".traddr"; c.ok(p) {
		a, err := netip.ParseAddr(r.TrAddr)
		switch {
		case r.TrAddr == "":
			c.missingOr(p, wantTrAddr)
		case err == nil && a.Zone() != "":
			c.value(p, r.TrAddr, wantTrAddr+" (no zone)")
		case err != nil && !validHostname(r.TrAddr):
			c.value(p, r.TrAddr, wantTrAddr)
		// An IPv4-mapped IPv6 address is either family's: it stays as written
		// (fillNVMfRemoteDefaults keeps it mapped), so the check reads the same after a save.
		case err == nil && c.ok(pf) && family == "ipv4" && !a.Unmap().Is4():
			c.value(pf, r.AdrFam, "ipv6 for the IPv6 address "+r.TrAddr)
		case err == nil && c.ok(pf) && family == "ipv6" && a.Is4():
			c.value(pf, r.AdrFam, "ipv4 for the IPv4 address "+r.TrAddr)
		}
	}
	if p := path + ".trsvcid"; c.ok(p) && (r.TrSvcID != 0 || c.given(p)) && (r.TrSvcID < 1 || r.TrSvcID > 65535) {
		c.value(p, c.src.text(p, strconv.Itoa(r.TrSvcID)), wantPort+" (4420 is NVMe/TCP's)")
	}
}

// validateNVMfRecovery checks the reconnect policy as SPDK's
// bdev_nvme_check_io_error_resiliency_params (and drivers/nvmf's Recovery.Validate) do.
func validateNVMfRecovery(c *checker, path string, r *NVMfRemote) {
	pd, pl, pf := path+".reconnect_delay_sec", path+".ctrlr_loss_timeout_sec", path+".fast_io_fail_timeout_sec"
	delay, loss, fast := r.ReconnectDelay, r.CtrlrLossTimeout, r.FastIOFailTimeout
	text := func(p string, v time.Duration) string { // as written, or as seconds (a Topology built in code)
		if v%time.Second != 0 {
			return c.src.text(p, v.String())
		}
		return c.src.text(p, strconv.FormatInt(int64(v/time.Second), 10))
	}
	wholeIn := func(v, lo time.Duration) bool {
		return v%time.Second == 0 && v >= lo && v <= NVMfRecoverySecondsMax*time.Second
	}
	okDelay := !c.ok(pd) || wholeIn(delay, 0)
	if !okDelay {
		c.value(pd, text(pd, delay), wantRecoverySecs)
	}
	okFast := !c.ok(pf) || wholeIn(fast, 0)
	if !okFast {
		c.value(pf, text(pf, fast), wantRecoverySecs)
	}
	okLoss := !c.ok(pl) || wholeIn(loss, 0) || loss == -time.Second
	if !okLoss {
		c.value(pl, text(pl, loss), wantLossTimeout)
	}
	if !c.ok(pd, pl, pf) {
		return
	}
	lossText := text(pl, loss)
	switch {
	case loss == 0 && delay != 0:
		c.value(pd, text(pd, delay), "0 with ctrlr_loss_timeout_sec 0 (no reconnects to wait between)")
	case loss == 0 && fast != 0:
		c.value(pf, text(pf, fast), "0 with ctrlr_loss_timeout_sec 0 (no reconnects to wait for)")
	case loss == 0:
	case delay == 0 && !c.given(pd):
		c.problem(pd, "missing", "seconds > 0 between reconnects when ctrlr_loss_timeout_sec is "+lossText)
	case delay == 0:
		c.value(pd, text(pd, delay), "seconds > 0 between reconnects when ctrlr_loss_timeout_sec is "+lossText)
	case loss > 0 && delay > loss:
		c.value(pd, text(pd, delay), "at most ctrlr_loss_timeout_sec "+lossText)
	case loss > 0 && fast > loss:
		c.value(pf, text(pf, fast), "at most ctrlr_loss_timeout_sec "+lossText)
	case fast > 0 && fast < delay:
		c.value(pf, text(pf, fast), "0 or at least reconnect_delay_sec "+text(pd, delay))
	}
}

// checkNVMfFieldsAbsent reports nvmf's fields on a bdev of another (valid) driver.
func checkNVMfFieldsAbsent(c *checker, path string, b *Bdev) {
	for _, key := range nvmfBdevKeys {
		if p := path + "." + key; c.ok(p) && (c.given(p) || b.Remote != nil && b.Remote.set(key)) {
			c.problem(p, "given for driver "+string(b.Driver), "no "+key+" (driver nvmf has it)")
		}
	}
}

// set reports whether r has key set (a Bdev built in code has no source texts).
func (r *NVMfRemote) set(key string) bool {
	switch key {
	case "trtype":
		return r.TrType != ""
	case "adrfam":
		return r.AdrFam != ""
	case "traddr":
		return r.TrAddr != ""
	case "trsvcid":
		return r.TrSvcID != 0
	case "subnqn":
		return r.SubNQN != ""
	case "hostnqn":
		return r.HostNQN != ""
	case "hdgst":
		return r.HeaderDigest
	case "ddgst":
		return r.DataDigest
	case "io_queue_size":
		return r.IOQueueSize != 0
	case "num_io_queues":
		return r.NumIOQueues != 0
	case "reconnect_delay_sec":
		return r.ReconnectDelay != 0
	case "ctrlr_loss_timeout_sec":
		return r.CtrlrLossTimeout != 0
	case "fast_io_fail_timeout_sec":
		return r.FastIOFailTimeout != 0
	}
	return false
}

// NVMfNamespaceOf splits name as an nvmf bdev's namespace, <ctrl>n<NSID>, the way
// drivers/nvmf names them (decimal, no leading zero). ok is false when name has no such
// form; nsid is then 0, and it is -1 for more digits than an NSID has. Whether ctrl is an
// nvmf bdev, and nsid in range, is the caller's question.
func NVMfNamespaceOf(name string) (ctrl string, nsid int, ok bool) {
	i := strings.LastIndexByte(name, 'n')
	if i <= 0 || i == len(name)-1 {
		return "", 0, false
	}
	digits := name[i+1:]
	if digitsEnd(digits, 0) != len(digits) || digits[0] == '0' && len(digits) > 1 {
		return "", 0, false
	}
	if len(digits) > 10 {
		return name[:i], -1, true
	}
	v, _ := strconv.ParseInt(digits, 10, 64)
	return name[:i], int(v), true
}

// nvmfControllers maps the name of every nvmf bdev of t to its path ("bdevs[0]").
func (t *Topology) nvmfControllers() map[string]string {
	out := map[string]string{}
	for i, b := range t.Bdevs {
		if b.Driver == DriverNVMf && b.Name != "" {
			if _, dup := out[b.Name]; !dup {
				out[b.Name] = itemPath("bdevs", i)
			}
		}
	}
	return out
}

// nvmfTargetRef is one place a target names a block device.
type nvmfTargetRef struct {
	path string // "targets.nvmf.subsystems[0].namespaces[1].bdev"
	name string
}

// targetRefs lists every block device name the targets: section uses, with its path.
func (t *Topology) targetRefs() []nvmfTargetRef {
	var refs []nvmfTargetRef
	if s := t.Targets.NVMf; s != nil {
		for i := range s.Subsystems {
			for j, ns := range s.Subsystems[i].Namespaces {
				p := itemPath(itemPath("targets.nvmf.subsystems", i)+".namespaces", j) + ".bdev"
				refs = append(refs, nvmfTargetRef{p, ns.Bdev})
			}
		}
	}
	if s := t.Targets.ISCSI; s != nil {
		for i := range s.Nodes {
			for j, l := range s.Nodes[i].LUNs {
				p := itemPath(itemPath("targets.iscsi.target_nodes", i)+".luns", j) + ".bdev"
				refs = append(refs, nvmfTargetRef{p, l.Bdev})
			}
		}
	}
	return refs
}

// nvmfNamespaceRefs are the names of remote namespaces the targets use, each a namespace of
// an nvmf bdev of t with an NSID in range: exportable adds them, since they cannot be listed
// before the controllers connect.
func (t *Topology) nvmfNamespaceRefs() []string {
	ctrls := t.nvmfControllers()
	var names []string
	for _, r := range t.targetRefs() {
		if ctrl, nsid, ok := NVMfNamespaceOf(r.name); ok && ctrls[ctrl] != "" && nsid >= 1 && nsid <= NVMfNamespacesMax {
			names = append(names, r.name)
		}
	}
	return names
}

// checkNVMfTargetRefs reports a namespace or LUN that names an nvmf bdev itself (a
// controller, not a block device) or a namespace of one with an NSID out of range; the
// targets' own checks then skip those fields.
func checkNVMfTargetRefs(c *checker, t *Topology) {
	ctrls := t.nvmfControllers()
	if len(ctrls) == 0 {
		return
	}
	for _, r := range t.targetRefs() {
		if !c.ok(r.path) {
			continue
		}
		if first, ok := ctrls[r.name]; ok {
			c.value(r.path, r.name, nvmfWantNamespace(r.name, c.where(first)))
			continue
		}
		if ctrl, nsid, ok := NVMfNamespaceOf(r.name); ok && ctrls[ctrl] != "" && (nsid < 1 || nsid > NVMfNamespacesMax) {
			c.value(r.path, r.name, nvmfWantNSID(ctrl))
		}
	}
}

// nvmfWantNamespace is what a reference to nvmf bdev ctrl (at where) should have named.
func nvmfWantNamespace(ctrl, where string) string {
	return "a block device: a namespace of the nvmf bdev such as " + ctrl + "n1 (" + where +
		" attaches a controller)"
}

// nvmfWantNSID is what a reference to a namespace of ctrl with a bad NSID should have named.
func nvmfWantNSID(ctrl string) string {
	return "a namespace of nvmf bdev " + ctrl + " with an NSID in 1.." + strconv.Itoa(NVMfNamespacesMax) +
		" such as " + ctrl + "n1"
}

// fillNVMfRemoteDefaults fills what an nvmf bdev leaves out and writes its transport,
// address family and IP address in canonical form (C1).
func fillNVMfRemoteDefaults(b *Bdev) {
	if b.Remote == nil {
		b.Remote = &NVMfRemote{}
	}
	r := b.Remote
	r.TrType = strings.ToLower(r.TrType)
	if r.TrType == "" {
		r.TrType = "tcp"
	}
	r.AdrFam = strings.ToLower(r.AdrFam)
	if a, err := netip.ParseAddr(r.TrAddr); err == nil {
		r.TrAddr = a.String() // not unmapped: adrfam ipv6 may go with ::ffff:a.b.c.d
	}
	if r.TrSvcID == 0 {
		r.TrSvcID = NVMfPortDefault
	}
	if r.IOQueueSize == 0 {
		r.IOQueueSize = NVMfIOQueueSizeDefault
	}
	if r.NumIOQueues == 0 {
		r.NumIOQueues = NVMfNumIOQueuesDefault
	}
}

// addFields writes an nvmf bdev's fields into its mapping n: every one, defaults included,
// but an unset address family and host NQN.
func (r *NVMfRemote) addFields(n *yaml.Node) {
	addField(n, "trtype", stringNode(r.TrType))
	if r.AdrFam != "" {
		addField(n, "adrfam", stringNode(r.AdrFam))
	}
	addField(n, "traddr", stringNode(r.TrAddr))
	if r.TrSvcID != 0 {
		addField(n, "trsvcid", intNode(uint64(r.TrSvcID)))
	}
	addField(n, "subnqn", stringNode(r.SubNQN))
	if r.HostNQN != "" {
		addField(n, "hostnqn", stringNode(r.HostNQN))
	}
	addField(n, "hdgst", boolNode(r.HeaderDigest))
	addField(n, "ddgst", boolNode(r.DataDigest))
	if r.IOQueueSize != 0 {
		addField(n, "io_queue_size", intNode(uint64(r.IOQueueSize)))
	}
	if r.NumIOQueues != 0 {
		addField(n, "num_io_queues", intNode(uint64(r.NumIOQueues)))
	}
	for _, f := range []struct {
		key string
		v   time.Duration
	}{{"reconnect_delay_sec", r.ReconnectDelay}, {"ctrlr_loss_timeout_sec", r.CtrlrLossTimeout},
		{"fast_io_fail_timeout_sec", r.FastIOFailTimeout}} {
		addField(n, f.key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int",
			Value: strconv.FormatInt(int64(f.v/time.Second), 10)})
	}
}
