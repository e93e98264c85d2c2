package conf

import (
	"math/bits"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"
)

// Stage is one entry of stages:, a data service built on bases (bdevs or
// other stages) and exposed as a bdev of its own name. Fields after Bases
// belong to some services only; a field given for a service that has no
// use for it is an error, never ignored.
type Stage struct {
	// Name is the stage's bdev name: NameLenMax characters of A-Z a-z 0-9
	// _ . : -, one namespace with the bdevs (C2).
	Name string

	// Service is what the stage does.
	Service Service

	// Bases are what it is built on, in order: written as base: X for one,
	// or bases: [X, Y] (raid0, concat, replica take several). Each names a
	// bdev or a stage of the file.
	Bases []string

	// UUID identifies the stage's bdev to hosts; zero: one picked at start.
	UUID uuid.UUID

	// delay: the latency added to each read and write (avg, and the p99
	// one IO in a hundred gets; zero: the average).
	ReadLatency, ReadLatencyP99   time.Duration
	WriteLatency, WriteLatencyP99 time.Duration

	// qos: SPDK's bdev_set_qos_limit limits; 0 is unlimited. MBytes are
	// MiB (SPDK's megabytes).
	IOPS, MBytesPerSec, ReadMBytesPerSec, WriteMBytesPerSec uint64

	// raid0, concat: the strip; raid0 defaults to StripSizeDefault, concat
	// uses whole bases when zero.
	StripSize Size

	// replica: the bdev keeping member states and the dirty-region bitmap
	// (a base too: it must exist first); the region; the rebuild's rate in
	// bytes per second (0: unthrottled). crypto with convert: Metadata is
	// the bdev keeping the conversion's journal and record, so the stage
	// keeps its base's whole size (services/crypto's doc); without it they
	// take the base's tail.
	Metadata    string
	RegionSize  Size
	RebuildRate Size

	// crypto: the key's name and the file holding it (hex key then key2,
	// mode 0600); Convert encrypts a base that holds plaintext, online, at
	// ConvertRate bytes per second (0: unthrottled).
	KeyName     string
	KeyFile     string
	Convert     bool
	ConvertRate Size
}

// Service names a stage's data service.
type Service string

const (
	ServicePassthru Service = "passthru"
	ServiceDelay    Service = "delay"
	ServiceError    Service = "error"
	ServiceQoS      Service = "qos"
	ServiceRaid0    Service = "raid0"
	ServiceConcat   Service = "concat"
	ServiceReplica  Service = "replica"
	ServiceCrypto   Service = "crypto"
)

// Services lists every service, in the schema's order.
var Services = []Service{ServicePassthru, ServiceDelay, ServiceError, ServiceQoS, ServiceRaid0,
	ServiceConcat, ServiceReplica, ServiceCrypto}

// Limits of stages:, each with its reason.
const (
	// StagesMax bounds the stages of one file, as BdevsMax does the bdevs:
	// each gets a channel per reactor.
	StagesMax = 1024
	// StageBasesMax bounds a stage's bases: a raid wider than the bdev
	// layer's 32 children of one split gains nothing.
	StageBasesMax = 32
	// ReplicaMembersMax copies of a mirror (services/replica's limit).
	ReplicaMembersMax = 8
	// StageLatencyMax bounds a delay: past a minute an initiator has given
	// up on the IO, so it can only be a mistake.
	StageLatencyMax = time.Minute
	// StripSizeDefault is raid0's strip when none is given.
	StripSizeDefault Size = 64 << 10
	// StripSizeMax and RegionSizeMax: one strip or region is one IO or one
	// lock; a GiB is past any useful size.
	StripSizeMax  Size = 1 << 30
	RegionSizeMin Size = 4 << 10
	RegionSizeMax Size = 1 << 30
	// RegionSizeDefault is a replica's region when none is given.
	RegionSizeDefault Size = 1 << 20
	// qosLimitMax bounds each qos number: 2^40 IOs or MiB a second is no
	// device's; the bound keeps their products far from overflow.
	qosLimitMax = 1 << 40
)

const (
	wantService   = "passthru, delay, error, qos, raid0, concat, replica or crypto"
	wantLatency   = "a duration in 0..1m such as 100us"
	wantQoSLimit  = "a whole number, 0 for unlimited"
	wantStageBool = "true or false"
	wantRate      = "bytes per second such as 100MiB, 0 for unthrottled"
	wantKeyFile   = "an absolute path of a key file"
)

// stageKeys are the keys of one stage, in the schema's order.
var stageKeys = []string{"name", "service", "base", "bases", "uuid",
	"read_latency", "p99_read_latency", "write_latency", "p99_write_latency",
	"rw_ios_per_sec", "rw_mbytes_per_sec", "r_mbytes_per_sec", "w_mbytes_per_sec",
	"strip_size", "metadata", "region_size", "rebuild_rate",
	"key_name", "key_file", "convert", "convert_rate"}

// stageFieldServices says which service each optional key belongs to.
var stageFieldServices = map[string][]Service{
	"read_latency": {ServiceDelay}, "p99_read_latency": {ServiceDelay},
	"write_latency": {ServiceDelay}, "p99_write_latency": {ServiceDelay},
	"rw_ios_per_sec": {ServiceQoS}, "rw_mbytes_per_sec": {ServiceQoS},
	"r_mbytes_per_sec": {ServiceQoS}, "w_mbytes_per_sec": {ServiceQoS},
	"strip_size": {ServiceRaid0, ServiceConcat},
	"metadata":   {ServiceReplica, ServiceCrypto}, "region_size": {ServiceReplica}, "rebuild_rate": {ServiceReplica},
	"key_name": {ServiceCrypto}, "key_file": {ServiceCrypto}, "convert": {ServiceCrypto},
	"convert_rate": {ServiceCrypto},
}

// stages decodes the stages: section, a list of stages.
func (d *decoder) stages(path string, n *yaml.Node) []Stage {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.wrong(path, n, "a list of stages")
		return nil
	}
	items := n.Content
	if len(items) > StagesMax {
		d.report(path, n, Error{Msg: strconv.Itoa(len(items)) + " stages", Want: "at most " + strconv.Itoa(StagesMax)})
		items = items[:StagesMax]
	}
	if len(items) == 0 {
		return nil
	}
	out := make([]Stage, len(items))
	for i, item := range items {
		p := itemPath(path, i)
		d.src.positions[p] = at(item)
		d.stage(p, item, &out[i])
	}
	return out
}

// stage decodes one item of stages:. Which keys suit the service is
// validate's rule (validateStage).
func (d *decoder) stage(path string, n *yaml.Node, s *Stage) {
	var baseKey, basesKey *yaml.Node
	d.fields(path, n, stageKeys, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "name":
			s.Name, _ = d.scalar(p, v, wantName)
		case "service":
			text, _ := d.scalar(p, v, wantService)
			s.Service = Service(text)
		case "base":
			baseKey = k
			if name, ok := d.scalar(p, v, wantName); ok {
				s.Bases = []string{name}
			}
		case "bases":
			basesKey = k
			s.Bases = d.stageNames(p, v)
		case "uuid":
			s.UUID = d.uuid(p, v)
		case "read_latency":
			s.ReadLatency = d.stageDuration(p, v)
		case "p99_read_latency":
			s.ReadLatencyP99 = d.stageDuration(p, v)
		case "write_latency":
			s.WriteLatency = d.stageDuration(p, v)
		case "p99_write_latency":
			s.WriteLatencyP99 = d.stageDuration(p, v)
		case "rw_ios_per_sec":
			s.IOPS = d.stageUint(p, v)
		case "rw_mbytes_per_sec":
			s.MBytesPerSec = d.stageUint(p, v)
		case "r_mbytes_per_sec":
			s.ReadMBytesPerSec = d.stageUint(p, v)
		case "w_mbytes_per_sec":
			s.WriteMBytesPerSec = d.stageUint(p, v)
		case "strip_size":
			s.StripSize = d.size(p, v, sizeWantSyntax)
		case "metadata":
			s.Metadata, _ = d.scalar(p, v, wantName)
		case "region_size":
			s.RegionSize = d.size(p, v, sizeWantSyntax)
		case "rebuild_rate":
			s.RebuildRate = d.size(p, v, wantRate)
		case "key_name":
			s.KeyName, _ = d.scalar(p, v, wantName)
		case "key_file":
			s.KeyFile, _ = d.scalar(p, v, wantKeyFile)
		case "convert":
			s.Convert = d.stageBool(p, v)
		case "convert_rate":
			s.ConvertRate = d.size(p, v, wantRate)
		}
	})
	if baseKey != nil && basesKey != nil {
		d.report(joinPath(path, "bases"), basesKey, Error{Msg: "given with base", Want: "exactly one of base and bases"})
	}
}

// stageNames decodes a list of names (bases).
func (d *decoder) stageNames(path string, n *yaml.Node) []string {
	if n.Kind != yaml.SequenceNode {
		d.wrong(path, n, "a list of bdev or stage names such as [Malloc0, Malloc1]")
		return nil
	}
	if len(n.Content) > StageBasesMax {
		d.report(path, n, Error{Msg: strconv.Itoa(len(n.Content)) + " bases", Want: "at most " + strconv.Itoa(StageBasesMax)})
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		p := itemPath(path, i)
		d.src.positions[p] = at(item)
		name, _ := d.scalar(p, item, wantName)
		out = append(out, name)
	}
	return out
}

func (d *decoder) stageDuration(path string, n *yaml.Node) time.Duration {
	text, ok := d.scalar(path, n, wantLatency)
	if !ok {
		return 0
	}
	v, err := time.ParseDuration(text)
	if err != nil || v < 0 || v > StageLatencyMax {
		d.report(path, n, Error{Value: text, Want: wantLatency})
		return 0
	}
	return v
}

func (d *decoder) stageUint(path string, n *yaml.Node) uint64 {
	text, ok := d.scalar(path, n, wantQoSLimit)
	if !ok {
		return 0
	}
	v, err := strconv.ParseUint(text, 10, 64)
	if text == "" || digitsEnd(text, 0) != len(text) || err != nil || v > qosLimitMax {
		d.report(path, n, Error{Value: text, Want: wantQoSLimit + " up to " + strconv.FormatUint(qosLimitMax, 10)})
		return 0
	}
	return v
}

func (d *decoder) stageBool(path string, n *yaml.Node) bool {
	text, ok := d.scalar(path, n, wantStageBool)
	switch {
	case !ok:
	case text == "true":
		return true
	case text != "false":
		d.report(path, n, Error{Value: text, Want: wantStageBool})
	}
	return false
}

// stageNodes returns the stages as graph nodes: each base (and a replica's
// metadata bdev) an edge, so checkGraph finds missing names and cycles.
func stageNodes(stages []Stage) []graphNode {
	nodes := make([]graphNode, len(stages))
	for i := range stages {
		s := &stages[i]
		p := itemPath("stages", i)
		n := graphNode{path: p, name: s.Name}
		for j, b := range s.Bases {
			e := joinPath(p, "base")
			if len(s.Bases) > 1 {
				e = itemPath(joinPath(p, "bases"), j)
			}
			n.bases = append(n.bases, graphEdge{path: e, name: b})
		}
		if s.Metadata != "" {
			n.bases = append(n.bases, graphEdge{path: joinPath(p, "metadata"), name: s.Metadata})
		}
		nodes[i] = n
	}
	return nodes
}

// validateStages checks each stage's own rules; names and bases are
// checkGraph's (with the bdevs).
func validateStages(c *checker, t *Topology) {
	if n := len(t.Stages); n > StagesMax && c.ok("stages") { // decode truncates: code only
		c.problem("stages", strconv.Itoa(n)+" stages", "at most "+strconv.Itoa(StagesMax))
	}
	keyFiles := map[string]string{} // key name -> file
	for i := range t.Stages {
		validateStage(c, itemPath("stages", i), &t.Stages[i], keyFiles)
	}
	checkStageUUIDs(c, t)
}

// validateStage checks one stage at path ("stages[1]").
func validateStage(c *checker, path string, s *Stage, keyFiles map[string]string) {
	if p := path + ".name"; c.ok(p) {
		switch {
		case s.Name == "":
			c.missingOr(p, wantName)
		case !validName(s.Name):
			c.value(p, s.Name, wantName)
		}
	}
	p := path + ".service"
	known := false
	for _, sv := range Services {
		known = known || s.Service == sv
	}
	switch {
	case !c.ok(p):
		return
	case s.Service == "":
		c.missingOr(p, wantService)
		return
	case s.Service == "raid1":
		c.value(p, string(s.Service), wantService+" (raid1 is the replica service)")
		return
	case !known:
		c.value(p, string(s.Service), wantService)
		return
	}
	validateStageBases(c, path, s)
	validateStageFields(c, path, s)
	switch s.Service {
	case ServiceDelay:
		for _, f := range []struct {
			key string
			v   time.Duration
		}{{"read_latency", s.ReadLatency}, {"p99_read_latency", s.ReadLatencyP99},
			{"write_latency", s.WriteLatency}, {"p99_write_latency", s.WriteLatencyP99}} {
			if fp := path + "." + f.key; c.ok(fp) && (f.v < 0 || f.v > StageLatencyMax) {
				c.value(fp, c.src.text(fp, f.v.String()), wantLatency)
			}
		}
	case ServiceQoS:
		for _, f := range []struct {
			key string
			v   uint64
		}{{"rw_ios_per_sec", s.IOPS}, {"rw_mbytes_per_sec", s.MBytesPerSec},
			{"r_mbytes_per_sec", s.ReadMBytesPerSec}, {"w_mbytes_per_sec", s.WriteMBytesPerSec}} {
			if fp := path + "." + f.key; c.ok(fp) && f.v > qosLimitMax {
				c.value(fp, c.src.text(fp, strconv.FormatUint(f.v, 10)), wantQoSLimit+" up to "+strconv.FormatUint(qosLimitMax, 10))
			}
		}
	case ServiceRaid0, ServiceConcat:
		if fp := path + ".strip_size"; c.ok(fp) && (s.StripSize != 0 || c.given(fp)) && !powerOfTwoIn(s.StripSize, BlockSizeMin, StripSizeMax) {
			text := c.src.text(fp, s.StripSize.String())
			c.value(fp, text, "a power of two in 512B..1GiB"+bytesNote(text, s.StripSize))
		}
	case ServiceReplica:
		if fp := path + ".region_size"; c.ok(fp) && (s.RegionSize != 0 || c.given(fp)) && !powerOfTwoIn(s.RegionSize, RegionSizeMin, RegionSizeMax) {
			text := c.src.text(fp, s.RegionSize.String())
			c.value(fp, text, "a power of two in 4KiB..1GiB"+bytesNote(text, s.RegionSize))
		}
		if fp := path + ".metadata"; c.ok(fp) && s.Metadata != "" && !validName(s.Metadata) {
			c.value(fp, s.Metadata, wantName)
		}
		for j, b := range s.Bases {
			if b == s.Metadata && s.Metadata != "" && c.ok(path+".metadata") {
				c.value(path+".metadata", s.Metadata, "a bdev that is not also a member (bases["+strconv.Itoa(j)+"])")
			}
		}
	case ServiceCrypto:
		validateStageKey(c, path, s, keyFiles)
	}
}

// validateStageBases checks how many bases the service takes, and that
// each is a well-formed name given once.
func validateStageBases(c *checker, path string, s *Stage) {
	pb, pbs := path+".base", path+".bases"
	if !c.ok(pb, pbs) {
		return
	}
	lo, hi := 1, 1
	switch s.Service {
	case ServiceRaid0, ServiceConcat:
		hi = StageBasesMax
	case ServiceReplica:
		hi = ReplicaMembersMax
	}
	where := pb
	if c.given(pbs) || len(s.Bases) > 1 {
		where = pbs
	}
	switch n := len(s.Bases); {
	case n == 0 && !c.given(pb) && !c.given(pbs) && c.src.position(pbs) == c.src.position(path):
		c.problem(pb, "missing", "the bdev or stage it is built on")
		return
	case n < lo || n > hi:
		want := "1 base (base: X)"
		if hi > 1 {
			want = "1.." + strconv.Itoa(hi) + " bases"
		}
		c.problem(where, strconv.Itoa(n)+" bases", want+" for "+string(s.Service))
		return
	}
	seen := map[string]bool{}
	for j, b := range s.Bases {
		p := pb
		if len(s.Bases) > 1 || where == pbs {
			p = itemPath(pbs, j)
		}
		switch {
		case !c.ok(p):
		case !validName(b):
			c.value(p, b, wantName)
		case seen[b]:
			c.value(p, b, "each base once")
		}
		seen[b] = true
	}
}

// validateStageFields reports keys given for a service that has no use for
// them, naming the service that does.
func validateStageFields(c *checker, path string, s *Stage) {
	for _, key := range stageKeys {
		owners, ok := stageFieldServices[key]
		p := path + "." + key
		if !ok || !c.given(p) && !stageFieldSet(s, key) {
			continue
		}
		mine := false
		var names []string
		for _, o := range owners {
			mine = mine || o == s.Service
			names = append(names, string(o))
		}
		if !mine && c.ok(p) {
			verb := " has it)"
			if len(names) > 1 {
				verb = " have it)"
			}
			c.problem(p, "given for service "+string(s.Service), "no "+key+" ("+strings.Join(names, " and ")+verb)
		}
	}
}

// stageFieldSet reports whether s has key set (a Stage built in code has no
// source texts).
func stageFieldSet(s *Stage, key string) bool {
	switch key {
	case "read_latency":
		return s.ReadLatency != 0
	case "p99_read_latency":
		return s.ReadLatencyP99 != 0
	case "write_latency":
		return s.WriteLatency != 0
	case "p99_write_latency":
		return s.WriteLatencyP99 != 0
	case "rw_ios_per_sec":
		return s.IOPS != 0
	case "rw_mbytes_per_sec":
		return s.MBytesPerSec != 0
	case "r_mbytes_per_sec":
		return s.ReadMBytesPerSec != 0
	case "w_mbytes_per_sec":
		return s.WriteMBytesPerSec != 0
	case "strip_size":
		return s.StripSize != 0
	case "metadata":
		return s.Metadata != ""
	case "region_size":
		return s.RegionSize != 0
	case "rebuild_rate":
		return s.RebuildRate != 0
	case "key_name":
		return s.KeyName != ""
	case "key_file":
		return s.KeyFile != ""
	case "convert":
		return s.Convert
	case "convert_rate":
		return s.ConvertRate != 0
	}
	return false
}

// validateStageKey checks a crypto stage's key: a file, absolute, and one
// file per key name across the stages.
func validateStageKey(c *checker, path string, s *Stage, keyFiles map[string]string) {
	pf, pn := path+".key_file", path+".key_name"
	switch {
	case !c.ok(pf):
		return
	case s.KeyFile == "":
		c.missingOr(pf, wantKeyFile+" (hex key then key2, mode 0600)")
		return
	case !validFilePath(s.KeyFile):
		c.value(pf, s.KeyFile, wantKeyFile+" of at most "+strconv.Itoa(PathLenMax)+" printable bytes")
		return
	}
	name := s.KeyName
	if name == "" {
		name = s.Name
	} else if !validName(name) {
		if c.ok(pn) {
			c.value(pn, name, wantName)
		}
		return
	}
	file := filepath.Clean(s.KeyFile)
	if first, dup := keyFiles[name]; dup && first != file && c.ok(pn) {
		c.value(pf, s.KeyFile, "the file key "+name+" was given before ("+first+"): one key, one file")
		return
	}
	keyFiles[name] = file
	if c.ok(path+".convert_rate") && s.ConvertRate != 0 && !s.Convert {
		c.problem(path+".convert_rate", "given without convert: true", "convert: true, or no convert_rate")
	}
	pm := path + ".metadata"
	switch {
	case s.Metadata == "" || !c.ok(pm):
	case !validName(s.Metadata):
		c.value(pm, s.Metadata, wantName)
	case len(s.Bases) == 1 && s.Bases[0] == s.Metadata:
		c.value(pm, s.Metadata, "a bdev that is not also the base")
	case !s.Convert:
		c.problem(pm, "given without convert: true", "convert: true (it keeps the conversion's journal and record), or no metadata")
	}
}

// checkStageUUIDs: no two bdevs or stages share a UUID.
func checkStageUUIDs(c *checker, t *Topology) {
	uuids := map[uuid.UUID]string{}
	for i := range t.Bdevs {
		if u := t.Bdevs[i].UUID; u != uuid.Nil {
			uuids[u] = itemPath("bdevs", i)
		}
	}
	for i := range t.Stages {
		p := itemPath("stages", i) + ".uuid"
		u := t.Stages[i].UUID
		if u == uuid.Nil || !c.ok(p) {
			continue
		}
		if first, dup := uuids[u]; dup {
			c.value(p, c.src.text(p, u.String()), "a UUID no other bdev or stage has ("+c.where(first)+" has it)")
			continue
		}
		uuids[u] = itemPath("stages", i)
	}
}

func powerOfTwoIn(v, lo, hi Size) bool {
	return v >= lo && v <= hi && bits.OnesCount64(uint64(v)) == 1
}

// fillStageDefaults fills what a stage may leave out (C1): raid0's strip,
// a replica's region, a crypto key's name.
func fillStageDefaults(t *Topology) {
	for i := range t.Stages {
		s := &t.Stages[i]
		switch s.Service {
		case ServiceRaid0:
			if s.StripSize == 0 {
				s.StripSize = StripSizeDefault
			}
		case ServiceReplica:
			if s.RegionSize == 0 {
				s.RegionSize = RegionSizeDefault
			}
		case ServiceCrypto:
			if s.KeyName == "" {
				s.KeyName = s.Name
			}
		}
	}
}

// stagesNode writes the stages; a field the service does not use is never
// set on a valid stage, and zero values stay out.
func stagesNode(stages []Stage) *yaml.Node {
	list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for i := range stages {
		s := &stages[i]
		n := mappingNode()
		addField(n, "name", stringNode(s.Name))
		addField(n, "service", stringNode(string(s.Service)))
		if len(s.Bases) == 1 {
			addField(n, "base", stringNode(s.Bases[0]))
		} else if len(s.Bases) > 1 {
			bases := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
			for _, b := range s.Bases {
				bases.Content = append(bases.Content, stringNode(b))
			}
			addField(n, "bases", bases)
		}
		if s.UUID != uuid.Nil {
			addField(n, "uuid", stringNode(s.UUID.String()))
		}
		for _, f := range []struct {
			key string
			v   time.Duration
		}{{"read_latency", s.ReadLatency}, {"p99_read_latency", s.ReadLatencyP99},
			{"write_latency", s.WriteLatency}, {"p99_write_latency", s.WriteLatencyP99}} {
			if f.v != 0 {
				addField(n, f.key, stringNode(f.v.String()))
			}
		}
		for _, f := range []struct {
			key string
			v   uint64
		}{{"rw_ios_per_sec", s.IOPS}, {"rw_mbytes_per_sec", s.MBytesPerSec},
			{"r_mbytes_per_sec", s.ReadMBytesPerSec}, {"w_mbytes_per_sec", s.WriteMBytesPerSec}} {
			if f.v != 0 {
				addField(n, f.key, intNode(f.v))
			}
		}
		if s.StripSize != 0 {
			addField(n, "strip_size", sizeNode(s.StripSize))
		}
		if s.Metadata != "" {
			addField(n, "metadata", stringNode(s.Metadata))
		}
		if s.RegionSize != 0 {
			addField(n, "region_size", sizeNode(s.RegionSize))
		}
		if s.RebuildRate != 0 {
			addField(n, "rebuild_rate", sizeNode(s.RebuildRate))
		}
		if s.KeyName != "" {
			addField(n, "key_name", stringNode(s.KeyName))
		}
		if s.KeyFile != "" {
			addField(n, "key_file", stringNode(s.KeyFile))
		}
		if s.Convert {
			addField(n, "convert", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		}
		if s.ConvertRate != 0 {
			addField(n, "convert_rate", sizeNode(s.ConvertRate))
		}
		list.Content = append(list.Content, n)
	}
	return list
}

// exportable maps every name a target may export (a bdev or a stage: both
// are block devices) to its UUID, zero when none was given. The nvmf and
// iscsi sections check their namespaces and LUNs against it. An nvmf bdev
// is a controller, not a block device: the namespaces of it that the
// targets name stand in for it, with no UUID (nvmf_bdev.go).
func (t *Topology) exportable() map[string]uuid.UUID {
	out := make(map[string]uuid.UUID, len(t.Bdevs)+len(t.Stages))
	for _, b := range t.Bdevs {
		if b.Driver != DriverNVMf {
			out[b.Name] = b.UUID
		}
	}
	for _, name := range t.nvmfNamespaceRefs() {
		out[name] = uuid.Nil
	}
	for _, s := range t.Stages {
		out[s.Name] = s.UUID
	}
	return out
}
