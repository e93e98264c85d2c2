package conf

import (
	"github.com/google/uuid"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The targets: section. Its iscsi: part is the iSCSI target (SPDK's
// iscsi_* objects): portal groups, initiator groups, auth groups and target
// nodes whose LUNs are bdevs of this file.
//
//	targets:
//	  iscsi:
//	    node_base: iqn.2016-06.io.spdk   # prefix of short node names; this default
//	    nop_in_interval: 30s             # ping a silent initiator after this; 1s..1h
//	    nop_timeout: 60s                 # drop it when the ping is unanswered this long; 1s..1h
//	    discovery: {chap: none, auth_group: 1}   # discovery sessions' CHAP: none | one-way | mutual
//	    portal_groups:
//	      - tag: 1                       # 1..65535, unique
//	        portals: [127.0.0.1:3260]    # IP:port, [v6]:port; port 0 takes any
//	        private: false               # true: not shown by SendTargets
//	    initiator_groups:
//	      - tag: 1
//	        initiators: [ANY]            # iSCSI names, ANY, or !name to refuse one
//	        netmasks: [ANY]              # CIDR prefixes, addresses, or ANY
//	    auth_groups:
//	      - tag: 1
//	        secrets_file: /etc/sluice/chap.secrets   # lines "user secret [muser msecret]"
//	    target_nodes:
//	      - name: disk0                  # full iqn./eui./naa. name, or short (node_base:name)
//	        alias: Disk 0                # optional
//	        luns: [{lun: 0, bdev: Malloc0, thin: false, read_only: false, removable: false}]
//	        maps: [{portal_group: 1, initiator_group: 1}]
//	        chap: none                   # none | one-way | mutual (these need auth_group)
//	        auth_group: 1
//	        queue_depth: 64              # commands per session, 1..128
//	        max_sessions: 128            # 1..4096
//	        header_digest: false         # true requires CRC32C
//	        data_digest: false

// Targets is the targets: section: the front ends that serve bdevs.
type Targets struct {
	// NVMf is the NVMe-oF target (nvmf.go); nil when the file has none.
	NVMf *NVMf
	// ISCSI is the iSCSI target; nil when the file has none.
	ISCSI *ISCSI
}

// ISCSI is targets.iscsi.
type ISCSI struct {
	// NodeBase prefixes short node names; default ISCSINodeBaseDefault.
	NodeBase string
	// NopInInterval and NopTimeout: see ISCSINopInIntervalDefault.
	NopInInterval time.Duration
	NopTimeout    time.Duration
	// Discovery is the CHAP policy of discovery sessions.
	Discovery       ISCSIAuth
	PortalGroups    []ISCSIPortalGroup
	InitiatorGroups []ISCSIInitiatorGroup
	AuthGroups      []ISCSIAuthGroup
	Nodes           []ISCSINode
}

// CHAPMode is how a login authenticates.
type CHAPMode string

const (
	// CHAPNone: AuthMethod None only.
	CHAPNone CHAPMode = "none"
	// CHAPOneWay: the initiator proves itself with CHAP.
	CHAPOneWay CHAPMode = "one-way"
	// CHAPMutual: and the target proves itself back.
	CHAPMutual CHAPMode = "mutual"
)

// ISCSIAuth is a CHAP mode and the auth group with its secrets.
type ISCSIAuth struct {
	CHAP      CHAPMode // default CHAPNone
	AuthGroup int      // required unless CHAP is none; 0 when none
}

// ISCSIPortalGroup is one portal group.
type ISCSIPortalGroup struct {
	Tag     int
	Portals []string // IP:port, [IPv6]:port
	Private bool
}

// ISCSIInitiatorGroup is one initiator group.
type ISCSIInitiatorGroup struct {
	Tag        int
	Initiators []string
	Netmasks   []string
}

// ISCSIAuthGroup is one auth group: its secrets come from a file read when
// the target starts (ParseCHAPSecrets), so they stay out of the topology.
type ISCSIAuthGroup struct {
	Tag         int
	SecretsFile string
}

// ISCSINode is one target node.
type ISCSINode struct {
	Name         string
	Alias        string
	LUNs         []ISCSILUN
	Maps         []ISCSIMap
	Auth         ISCSIAuth
	QueueDepth   int // default ISCSIQueueDepthDefault
	MaxSessions  int // default ISCSISessionsDefault
	HeaderDigest bool
	DataDigest   bool
}

// ISCSILUN is one LUN of a node.
type ISCSILUN struct {
	LUN       int
	Bdev      string
	Thin      bool // thin provisioned: UNMAP, LBPME (the bdev must unmap)
	ReadOnly  bool
	Removable bool
}

// ISCSIMap lets an initiator group in through a portal group.
type ISCSIMap struct {
	PortalGroup    int
	InitiatorGroup int
}

// Limits and defaults of targets.iscsi; protocols/iscsi has the same
// numbers (cmd/sluice checks they agree at compile time).
const (
	// ISCSITagMax: tags are 16-bit (the portal group tag is on the wire).
	ISCSITagMax = 65535
	// ISCSIGroupsMax portal, initiator or auth groups; ISCSINodesMax nodes.
	ISCSIGroupsMax = 1024
	ISCSINodesMax  = 1024
	// ISCSIPortalsMax portals per group: every address of a big host.
	ISCSIPortalsMax = 64
	// ISCSILUNMax is the highest LUN: the single-level peripheral format.
	ISCSILUNMax = 255
	// ISCSIQueueDepthMax commands per session: the target's command pool.
	ISCSIQueueDepthMax     = 128
	ISCSIQueueDepthDefault = 64
	// ISCSISessionsMax sessions per node; ISCSISessionsDefault when unset.
	ISCSISessionsMax     = 4096
	ISCSISessionsDefault = 128
	// ISCSINopMin and ISCSINopMax bound the NOP-In interval and timeout:
	// under a second floods a slow link with pings, over an hour never
	// notices a dead initiator.
	ISCSINopMin = time.Second
	ISCSINopMax = time.Hour
	// ISCSINopInIntervalDefault and ISCSINopTimeoutDefault are SPDK's.
	ISCSINopInIntervalDefault = 30 * time.Second
	ISCSINopTimeoutDefault    = 60 * time.Second
	// ISCSINodeBaseDefault is SPDK's node_base, so its scripts' names work.
	ISCSINodeBaseDefault = "iqn.2016-06.io.spdk"
	// iscsiNameLenMax is RFC 7143's limit on an iSCSI name.
	iscsiNameLenMax = 223
)

const (
	wantTag        = "a tag in 1..65535"
	wantPortal     = "IP:port such as 127.0.0.1:3260 or [::1]:3260"
	wantNetmask    = "a CIDR prefix such as 10.0.0.0/8, an address, or ANY"
	wantInitiator  = "an iSCSI name (iqn., eui., naa.), ANY, or !name"
	wantNodeName   = "a full iSCSI name (iqn., eui., naa.) or a short name of printable characters"
	wantCHAP       = "none, one-way or mutual"
	wantBool       = "true or false"
	wantInt        = "a whole number"
	wantNopSeconds = "a duration in 1s..1h such as 30s"
)

var (
	targetsKeys   = []string{"nvmf", "iscsi", "vhost"}
	iscsiKeys     = []string{"node_base", "nop_in_interval", "nop_timeout", "discovery", "portal_groups", "initiator_groups", "auth_groups", "target_nodes"}
	authKeys      = []string{"chap", "auth_group"}
	portalGrpKeys = []string{"tag", "portals", "private"}
	initGrpKeys   = []string{"tag", "initiators", "netmasks"}
	authGrpKeys   = []string{"tag", "secrets_file"}
	nodeKeys      = []string{"name", "alias", "luns", "maps", "chap", "auth_group", "queue_depth", "max_sessions", "header_digest", "data_digest"}
	lunKeys       = []string{"lun", "bdev", "thin", "read_only", "removable"}
	mapKeys       = []string{"portal_group", "initiator_group"}
)

// targets decodes the targets: section.
func (d *decoder) targets(path string, n *yaml.Node, t *Targets) {
	d.fields(path, n, targetsKeys, func(key string, k, v *yaml.Node) {
		switch key {
		case "nvmf":
			t.NVMf = &NVMf{}
			d.nvmf(joinPath(path, key), v, t.NVMf)
		case "iscsi":
			t.ISCSI = &ISCSI{}
			d.iscsi(joinPath(path, key), v, t.ISCSI)
		default:
			d.report(joinPath(path, key), k, Error{Msg: "not supported yet: this build has no " + key + " target; remove it"})
		}
	})
}

func (d *decoder) iscsi(path string, n *yaml.Node, s *ISCSI) {
	d.fields(path, n, iscsiKeys, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "node_base":
			s.NodeBase, _ = d.scalar(p, v, wantNodeName)
		case "nop_in_interval":
			s.NopInInterval = d.duration(p, v)
		case "nop_timeout":
			s.NopTimeout = d.duration(p, v)
		case "discovery":
			d.fields(p, v, authKeys, func(key string, k, v *yaml.Node) { d.auth(joinPath(p, key), key, v, &s.Discovery) })
		case "portal_groups":
			s.PortalGroups = listOf(d, p, v, func(p string, v *yaml.Node, g *ISCSIPortalGroup) {
				d.fields(p, v, portalGrpKeys, func(key string, k, v *yaml.Node) {
					q := joinPath(p, key)
					switch key {
					case "tag":
						g.Tag = d.integer(q, v)
					case "portals":
						g.Portals = d.strings(q, v, wantPortal)
					case "private":
						g.Private = d.boolean(q, v)
					}
				})
			})
		case "initiator_groups":
			s.InitiatorGroups = listOf(d, p, v, func(p string, v *yaml.Node, g *ISCSIInitiatorGroup) {
				d.fields(p, v, initGrpKeys, func(key string, k, v *yaml.Node) {
					q := joinPath(p, key)
					switch key {
					case "tag":
						g.Tag = d.integer(q, v)
					case "initiators":
						g.Initiators = d.strings(q, v, wantInitiator)
					case "netmasks":
						g.Netmasks = d.strings(q, v, wantNetmask)
					}
				})
			})
		case "auth_groups":
			s.AuthGroups = listOf(d, p, v, func(p string, v *yaml.Node, g *ISCSIAuthGroup) {
				d.fields(p, v, authGrpKeys, func(key string, k, v *yaml.Node) {
					q := joinPath(p, key)
					switch key {
					case "tag":
						g.Tag = d.integer(q, v)
					case "secrets_file":
						g.SecretsFile, _ = d.scalar(q, v, wantPath)
					}
				})
			})
		case "target_nodes":
			s.Nodes = listOf(d, p, v, d.node)
		}
	})
}

func (d *decoder) node(path string, n *yaml.Node, t *ISCSINode) {
	d.fields(path, n, nodeKeys, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "name":
			t.Name, _ = d.scalar(p, v, wantNodeName)
		case "alias":
			t.Alias, _ = d.scalar(p, v, "printable text")
		case "luns":
			t.LUNs = listOf(d, p, v, func(p string, v *yaml.Node, l *ISCSILUN) {
				d.fields(p, v, lunKeys, func(key string, k, v *yaml.Node) {
					q := joinPath(p, key)
					switch key {
					case "lun":
						l.LUN = d.integer(q, v)
					case "bdev":
						l.Bdev, _ = d.scalar(q, v, wantName)
					case "thin":
						l.Thin = d.boolean(q, v)
					case "read_only":
						l.ReadOnly = d.boolean(q, v)
					case "removable":
						l.Removable = d.boolean(q, v)
					}
				})
			})
		case "maps":
			t.Maps = listOf(d, p, v, func(p string, v *yaml.Node, m *ISCSIMap) {
				d.fields(p, v, mapKeys, func(key string, k, v *yaml.Node) {
					q := joinPath(p, key)
					switch key {
					case "portal_group":
						m.PortalGroup = d.integer(q, v)
					case "initiator_group":
						m.InitiatorGroup = d.integer(q, v)
					}
				})
			})
		case "chap", "auth_group":
			d.auth(p, key, v, &t.Auth)
		case "queue_depth":
			t.QueueDepth = d.integer(p, v)
		case "max_sessions":
			t.MaxSessions = d.integer(p, v)
		case "header_digest":
			t.HeaderDigest = d.boolean(p, v)
		case "data_digest":
			t.DataDigest = d.boolean(p, v)
		}
	})
}

func (d *decoder) auth(p, key string, v *yaml.Node, a *ISCSIAuth) {
	switch key {
	case "chap":
		text, _ := d.scalar(p, v, wantCHAP)
		a.CHAP = CHAPMode(text)
	case "auth_group":
		a.AuthGroup = d.integer(p, v)
	}
}

// listOf decodes a list of mappings at path with item.
func listOf[T any](d *decoder, path string, n *yaml.Node, item func(path string, n *yaml.Node, v *T)) []T {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.wrong(path, n, "a list")
		return nil
	}
	if len(n.Content) == 0 {
		return nil
	}
	out := make([]T, len(n.Content))
	for i, it := range n.Content {
		p := itemPath(path, i)
		d.src.positions[p] = at(it)
		item(p, it, &out[i])
	}
	return out
}

// strings decodes a list of scalars.
func (d *decoder) strings(path string, n *yaml.Node, want string) []string {
	if n.Kind != yaml.SequenceNode {
		d.wrong(path, n, "a list of "+want)
		return nil
	}
	var out []string
	for i, it := range n.Content {
		p := itemPath(path, i)
		d.src.positions[p] = at(it)
		text, ok := d.scalar(p, it, want)
		if ok {
			out = append(out, text)
		}
	}
	return out
}

// integer decodes decimal digits (range checks are validate's).
func (d *decoder) integer(path string, n *yaml.Node) int {
	text, ok := d.scalar(path, n, wantInt)
	if !ok {
		return 0
	}
	if text == "" || digitsEnd(text, 0) != len(text) || len(text) > 9 {
		d.report(path, n, Error{Value: text, Want: wantInt + " (at most 9 digits)"})
		return 0
	}
	v, _ := strconv.Atoi(text)
	return v
}

func (d *decoder) boolean(path string, n *yaml.Node) bool {
	text, ok := d.scalar(path, n, wantBool)
	switch {
	case !ok:
	case text == "true":
		return true
	case text != "false":
		d.report(path, n, Error{Value: text, Want: wantBool})
	}
	return false
}

func (d *decoder) duration(path string, n *yaml.Node) time.Duration {
	text, ok := d.scalar(path, n, wantNopSeconds)
	if !ok {
		return 0
	}
	v, err := time.ParseDuration(text)
	if err != nil {
		d.report(path, n, Error{Value: text, Want: wantNopSeconds})
		return 0
	}
	return v
}

// validateTargets checks targets: against the rules and the bdevs of t.
func validateTargets(c *checker, t *Topology) {
	s := t.Targets.ISCSI
	if s == nil {
		return
	}
	const base = "targets.iscsi"
	if p := base + ".node_base"; s.NodeBase != "" && c.ok(p) && !validISCSIName(s.NodeBase) {
		c.value(p, s.NodeBase, "a full iSCSI name (iqn., eui., naa.)")
	}
	for _, f := range []struct {
		key string
		v   time.Duration
	}{{"nop_in_interval", s.NopInInterval}, {"nop_timeout", s.NopTimeout}} {
		if p := base + "." + f.key; c.ok(p) && (f.v != 0 || c.given(p)) && (f.v < ISCSINopMin || f.v > ISCSINopMax) {
			c.value(p, c.src.text(p, f.v.String()), wantNopSeconds)
		}
	}
	auths := map[int]bool{}
	for i, g := range s.AuthGroups {
		p := itemPath(base+".auth_groups", i)
		checkTag(c, p+".tag", g.Tag, auths, "auth")
		if q := p + ".secrets_file"; c.ok(q) && !validFilePath(g.SecretsFile) {
			c.missingOr(q, wantPath)
		}
	}
	validateAuth(c, base+".discovery", s.Discovery, auths)
	pgs := map[int]bool{}
	for i, g := range s.PortalGroups {
		p := itemPath(base+".portal_groups", i)
		checkTag(c, p+".tag", g.Tag, pgs, "portal")
		if q := p + ".portals"; c.ok(q) && (len(g.Portals) == 0 || len(g.Portals) > ISCSIPortalsMax) {
			c.problem(q, strconv.Itoa(len(g.Portals))+" portals", "1.."+strconv.Itoa(ISCSIPortalsMax))
		}
		for j, portal := range g.Portals {
			if q := itemPath(p+".portals", j); c.ok(q) && !validPortal(portal) {
				c.value(q, portal, wantPortal)
			}
		}
	}
	igs := map[int]bool{}
	for i, g := range s.InitiatorGroups {
		p := itemPath(base+".initiator_groups", i)
		checkTag(c, p+".tag", g.Tag, igs, "initiator")
		for _, f := range []struct {
			key   string
			items []string
			ok    func(string) bool
			want  string
		}{{"initiators", g.Initiators, validInitiator, wantInitiator}, {"netmasks", g.Netmasks, validNetmask, wantNetmask}} {
			q := p + "." + f.key
			if c.ok(q) && len(f.items) == 0 {
				c.problem(q, "missing or empty", "at least one: "+f.want)
			}
			for j, it := range f.items {
				if r := itemPath(q, j); c.ok(r) && !f.ok(it) {
					c.value(r, it, f.want)
				}
			}
		}
	}
	for _, f := range []struct {
		path string
		n    int
	}{{"portal_groups", len(s.PortalGroups)}, {"initiator_groups", len(s.InitiatorGroups)},
		{"auth_groups", len(s.AuthGroups)}, {"target_nodes", len(s.Nodes)}} {
		if f.n > ISCSIGroupsMax {
			c.problem(base+"."+f.path, strconv.Itoa(f.n)+" entries", "at most "+strconv.Itoa(ISCSIGroupsMax))
		}
	}
	bdevs := t.exportable()
	names := map[string]string{}
	for i := range s.Nodes {
		validateNode(c, itemPath(base+".target_nodes", i), s, &s.Nodes[i], names, bdevs, pgs, igs, auths)
	}
}

func validateNode(c *checker, p string, s *ISCSI, n *ISCSINode, names map[string]string,
	bdevs map[string]uuid.UUID, pgs, igs, auths map[int]bool) {
	if q := p + ".name"; c.ok(q) && (hasISCSIPrefix(n.Name) || c.ok("targets.iscsi.node_base")) {
		full := n.Name
		if !hasISCSIPrefix(full) {
			base := s.NodeBase
			if base == "" {
				base = ISCSINodeBaseDefault
			}
			full = base + ":" + n.Name
		}
		switch {
		case n.Name == "":
			c.missingOr(q, wantNodeName)
		case !validISCSIName(full):
			c.value(q, n.Name, wantNodeName+", at most "+strconv.Itoa(iscsiNameLenMax)+" bytes in all")
		default:
			key := strings.ToLower(full)
			if first, dup := names[key]; dup {
				c.value(q, n.Name, "a name no other node has ("+c.where(first)+" has it)")
			} else {
				names[key] = p
			}
		}
	}
	if q := p + ".alias"; c.ok(q) && (len(n.Alias) > 255 || !printable(n.Alias)) {
		c.value(q, n.Alias, "at most 255 printable bytes")
	}
	if q := p + ".luns"; c.ok(q) && len(n.LUNs) == 0 {
		c.problem(q, "missing or empty", "at least one LUN")
	}
	seen := map[int]string{}
	for i, l := range n.LUNs {
		q := itemPath(p+".luns", i)
		if r := q + ".lun"; c.ok(r) {
			if l.LUN < 0 || l.LUN > ISCSILUNMax {
				c.value(r, c.src.text(r, strconv.Itoa(l.LUN)), "0.."+strconv.Itoa(ISCSILUNMax))
			} else if first, dup := seen[l.LUN]; dup {
				c.value(r, strconv.Itoa(l.LUN), "a LUN number used once ("+c.where(first)+" uses it)")
			} else {
				seen[l.LUN] = q
			}
		}
		if r := q + ".bdev"; c.ok(r) {
			switch {
			case l.Bdev == "":
				c.missingOr(r, "the name of a bdev or stage of this file")
			case !hasName(bdevs, l.Bdev):
				c.value(r, l.Bdev, "the name of a bdev or stage of this file")
			}
		}
	}
	if q := p + ".maps"; c.ok(q) && len(n.Maps) == 0 {
		c.problem(q, "missing or empty", "at least one {portal_group, initiator_group}")
	}
	for i, m := range n.Maps {
		q := itemPath(p+".maps", i)
		checkRef(c, q+".portal_group", m.PortalGroup, pgs, "portal")
		checkRef(c, q+".initiator_group", m.InitiatorGroup, igs, "initiator")
	}
	validateAuth(c, p, n.Auth, auths)
	checkRange(c, p+".queue_depth", n.QueueDepth, ISCSIQueueDepthMax)
	checkRange(c, p+".max_sessions", n.MaxSessions, ISCSISessionsMax)
}

// checkTag checks a group's tag and that no other group of the kind has it.
func checkTag(c *checker, p string, tag int, seen map[int]bool, kind string) {
	switch {
	case !c.ok(p):
	case tag < 1 || tag > ISCSITagMax:
		c.value(p, c.src.text(p, strconv.Itoa(tag)), wantTag)
	case seen[tag]:
		c.value(p, strconv.Itoa(tag), "a tag no other "+kind+" group has")
	default:
		seen[tag] = true
	}
}

// checkRef checks a reference to a group of kind.
func checkRef(c *checker, p string, tag int, groups map[int]bool, kind string) {
	if c.ok(p) && !groups[tag] {
		c.value(p, c.src.text(p, strconv.Itoa(tag)), "the tag of a "+kind+" group of targets.iscsi")
	}
}

// checkRange checks an optional count in 1..max (0: the default).
func checkRange(c *checker, p string, v, max int) {
	if c.ok(p) && (v != 0 || c.given(p)) && (v < 1 || v > max) {
		c.value(p, c.src.text(p, strconv.Itoa(v)), "1.."+strconv.Itoa(max))
	}
}

// validateAuth checks chap and auth_group under p.
func validateAuth(c *checker, p string, a ISCSIAuth, groups map[int]bool) {
	pc, pg := p+".chap", p+".auth_group"
	switch a.CHAP {
	case "", CHAPNone:
		if c.ok(pg) && a.AuthGroup != 0 {
			c.value(pg, strconv.Itoa(a.AuthGroup), "no auth_group with chap none")
		}
	case CHAPOneWay, CHAPMutual:
		switch {
		case !c.ok(pg):
		case a.AuthGroup == 0 && !c.given(pg):
			c.problem(pg, "missing", "the tag of the auth group with the secrets, for chap "+string(a.CHAP))
		default:
			checkRef(c, pg, a.AuthGroup, groups, "auth")
		}
	default:
		if c.ok(pc) {
			c.value(pc, string(a.CHAP), wantCHAP)
		}
	}
}

func hasISCSIPrefix(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "iqn.") || strings.HasPrefix(l, "eui.") || strings.HasPrefix(l, "naa.")
}

// validISCSIName: a type prefix and RFC 3722's characters, at most 223
// bytes (as protocols/iscsi/login checks a TargetName).
func validISCSIName(s string) bool {
	if len(s) < 5 || len(s) > iscsiNameLenMax || !hasISCSIPrefix(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch <= ' ' || ch >= 0x7f || ch == '/' || ch == ',' {
			return false
		}
	}
	return true
}

func validInitiator(s string) bool {
	if strings.EqualFold(s, "ANY") {
		return true
	}
	return validISCSIName(strings.TrimPrefix(s, "!"))
}

func validNetmask(s string) bool {
	if strings.EqualFold(s, "ANY") {
		return true
	}
	s = strings.Trim(s, "[]")
	if strings.Contains(s, "/") {
		_, err := netip.ParsePrefix(s)
		return err == nil
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func validPortal(s string) bool {
	ap, err := netip.ParseAddrPort(s)
	return err == nil && ap.Addr().Zone() == ""
}

// fillTargetDefaults fills what targets: leaves out (C1).
func fillTargetDefaults(t *Topology) {
	s := t.Targets.ISCSI
	if s == nil {
		return
	}
	if s.NodeBase == "" {
		s.NodeBase = ISCSINodeBaseDefault
	}
	if s.NopInInterval == 0 {
		s.NopInInterval = ISCSINopInIntervalDefault
	}
	if s.NopTimeout == 0 {
		s.NopTimeout = ISCSINopTimeoutDefault
	}
	if s.Discovery.CHAP == "" {
		s.Discovery.CHAP = CHAPNone
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if n.Auth.CHAP == "" {
			n.Auth.CHAP = CHAPNone
		}
		if n.QueueDepth == 0 {
			n.QueueDepth = ISCSIQueueDepthDefault
		}
		if n.MaxSessions == 0 {
			n.MaxSessions = ISCSISessionsDefault
		}
	}
}

// node writes targets:, or nil when it is empty.
func (t *Targets) node() *yaml.Node {
	s := t.ISCSI
	if s == nil {
		return nil
	}
	n := mappingNode()
	if s.NodeBase != "" {
		addField(n, "node_base", stringNode(s.NodeBase))
	}
	if s.NopInInterval != 0 {
		addField(n, "nop_in_interval", stringNode(s.NopInInterval.String()))
	}
	if s.NopTimeout != 0 {
		addField(n, "nop_timeout", stringNode(s.NopTimeout.String()))
	}
	if a := authNode(mappingNode(), s.Discovery); len(a.Content) > 0 {
		addField(n, "discovery", a)
	}
	if len(s.PortalGroups) > 0 {
		l := seqNode()
		for _, g := range s.PortalGroups {
			m := mappingNode()
			addField(m, "tag", intNode(uint64(g.Tag)))
			addField(m, "portals", stringsNode(g.Portals))
			addField(m, "private", boolNode(g.Private))
			l.Content = append(l.Content, m)
		}
		addField(n, "portal_groups", l)
	}
	if len(s.InitiatorGroups) > 0 {
		l := seqNode()
		for _, g := range s.InitiatorGroups {
			m := mappingNode()
			addField(m, "tag", intNode(uint64(g.Tag)))
			addField(m, "initiators", stringsNode(g.Initiators))
			addField(m, "netmasks", stringsNode(g.Netmasks))
			l.Content = append(l.Content, m)
		}
		addField(n, "initiator_groups", l)
	}
	if len(s.AuthGroups) > 0 {
		l := seqNode()
		for _, g := range s.AuthGroups {
			m := mappingNode()
			addField(m, "tag", intNode(uint64(g.Tag)))
			addField(m, "secrets_file", stringNode(g.SecretsFile))
			l.Content = append(l.Content, m)
		}
		addField(n, "auth_groups", l)
	}
	if len(s.Nodes) > 0 {
		l := seqNode()
		for i := range s.Nodes {
			l.Content = append(l.Content, iscsiNodeNode(&s.Nodes[i]))
		}
		addField(n, "target_nodes", l)
	}
	top := mappingNode()
	addField(top, "iscsi", n)
	return top
}

func iscsiNodeNode(t *ISCSINode) *yaml.Node {
	m := mappingNode()
	addField(m, "name", stringNode(t.Name))
	if t.Alias != "" {
		addField(m, "alias", stringNode(t.Alias))
	}
	if len(t.LUNs) > 0 {
		l := seqNode()
		for _, u := range t.LUNs {
			x := mappingNode()
			x.Style = yaml.FlowStyle
			addField(x, "lun", intNode(uint64(u.LUN)))
			addField(x, "bdev", stringNode(u.Bdev))
			addField(x, "thin", boolNode(u.Thin))
			addField(x, "read_only", boolNode(u.ReadOnly))
			addField(x, "removable", boolNode(u.Removable))
			l.Content = append(l.Content, x)
		}
		addField(m, "luns", l)
	}
	if len(t.Maps) > 0 {
		l := seqNode()
		for _, u := range t.Maps {
			x := mappingNode()
			x.Style = yaml.FlowStyle
			addField(x, "portal_group", intNode(uint64(u.PortalGroup)))
			addField(x, "initiator_group", intNode(uint64(u.InitiatorGroup)))
			l.Content = append(l.Content, x)
		}
		addField(m, "maps", l)
	}
	authNode(m, t.Auth)
	if t.QueueDepth != 0 {
		addField(m, "queue_depth", intNode(uint64(t.QueueDepth)))
	}
	if t.MaxSessions != 0 {
		addField(m, "max_sessions", intNode(uint64(t.MaxSessions)))
	}
	addField(m, "header_digest", boolNode(t.HeaderDigest))
	addField(m, "data_digest", boolNode(t.DataDigest))
	return m
}

// authNode adds chap and auth_group to m.
func authNode(m *yaml.Node, a ISCSIAuth) *yaml.Node {
	if a.CHAP != "" {
		addField(m, "chap", stringNode(string(a.CHAP)))
	}
	if a.AuthGroup != 0 {
		addField(m, "auth_group", intNode(uint64(a.AuthGroup)))
	}
	return m
}

func seqNode() *yaml.Node { return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"} }

func stringsNode(items []string) *yaml.Node {
	n := seqNode()
	n.Style = yaml.FlowStyle
	for _, s := range items {
		n.Content = append(n.Content, stringNode(s))
	}
	return n
}

func boolNode(v bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
}

// CHAPSecret is one line of an auth group's secrets file.
type CHAPSecret struct {
	User, Secret             string
	MutualUser, MutualSecret string // empty for one-way CHAP
}

// chapSecretLenMax bounds a secret (protocols/iscsi/login takes 255 bytes);
// chapSecretLenMin is what RFC 7143 §12.1.3 wants at least (96 bits, 12
// bytes of text).
const (
	chapSecretLenMax = 255
	chapSecretLenMin = 12
)

// ParseCHAPSecrets reads an auth group's secrets file: one secret per line,
// "user secret" or "user secret muser msecret" separated by blanks; blank
// lines and lines starting with # are skipped. Every problem is reported
// at once as *Errors naming file and line (secrets never appear in them).
func ParseCHAPSecrets(file string, data []byte) ([]CHAPSecret, error) {
	c := newChecker(newSource(file))
	var out []CHAPSecret
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		at := position{line: i + 1}
		f := strings.Fields(line)
		if len(f) != 2 && len(f) != 4 {
			c.addAt("", at, Error{Msg: strconv.Itoa(len(f)) + " fields", Want: "user secret, or user secret muser msecret"})
			continue
		}
		s := CHAPSecret{User: f[0], Secret: f[1]}
		if len(f) == 4 {
			s.MutualUser, s.MutualSecret = f[2], f[3]
		}
		for _, sec := range []string{s.Secret, s.MutualSecret} {
			if sec != "" && (len(sec) < chapSecretLenMin || len(sec) > chapSecretLenMax) {
				c.addAt("", at, Error{Msg: "a secret of " + strconv.Itoa(len(sec)) + " bytes",
					Want: strconv.Itoa(chapSecretLenMin) + ".." + strconv.Itoa(chapSecretLenMax) + " bytes"})
			}
		}
		if s.MutualSecret != "" && s.MutualSecret == s.Secret {
			c.addAt("", at, Error{Msg: "the same secret both ways", Want: "a different secret for the target (RFC 7143 12.1.3)"})
		}
		out = append(out, s)
	}
	if len(out) == 0 && len(c.errs) == 0 {
		c.addAt("", position{}, Error{Msg: "no secrets", Want: "at least one line \"user secret\""})
	}
	if err := c.result(); err != nil {
		return nil, err
	}
	return out, nil
}

func hasName(names map[string]uuid.UUID, name string) bool {
	_, ok := names[name]
	return ok
}
