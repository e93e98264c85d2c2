package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/crypto"
	"github.com/sluice-storage/sluice/services/delay"
	"github.com/sluice-storage/sluice/services/errinject"
	"github.com/sluice-storage/sluice/services/passthru"
	"github.com/sluice-storage/sluice/services/qos"
	"github.com/sluice-storage/sluice/services/raid"
	"github.com/sluice-storage/sluice/services/replica"
	"github.com/sluice-storage/sluice/services/stage"
)

// insertTimeout bounds the drain when a stage goes under a live bdev: the
// IO in flight finishes in milliseconds unless a device hangs.
const insertTimeout = 10 * time.Second

// stagesPart is the daemon's stages: made from the topology after the
// bdevs, in dependency order, and by RPC at runtime.
type stagesPart struct {
	d    *daemon
	reg  *bdev.Registry
	list *stage.List
	keys *crypto.Keys

	// lock: the tables below, and one stage change at a time (create,
	// delete, insert) so dependency checks see a settled registry; RPC
	// handlers only, never the I/O path.
	mu       sync.Mutex
	configs  map[string]conf.Stage // by stage name: what recreates it (save_config)
	inserted map[string]*bdev.Inserted
	keyFiles map[string]string // key name -> file it came from
}

func (p *stagesPart) name() string { return "stages" }

// stop stops rebuilds and conversions, so the bdevs part closes a quiet
// registry (which closes the stages' back ends, stages first).
func (p *stagesPart) stop(time.Time) error {
	if p.d.debug != nil {
		p.d.debug.Unregister("stages")
	}
	for _, n := range p.list.All() {
		switch st := n.Stage.(type) {
		case *replica.Stage:
			st.StopRebuild()
		case *crypto.Stage:
			st.StopConversion()
		}
	}
	return nil
}

// startStages makes the topology's stages over the bdevs startBdevs made:
// keys from their files first, then each stage once its bases exist. It
// returns the part even when the topology has no stages: RPCs add them.
func startStages(d *daemon) (part, error) {
	p, err := makeStages(d, d.bdevs, d.top.Stages)
	if err != nil {
		return nil, err
	}
	if d.debug != nil {
		if err := d.debug.Register(p.list.Source()); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// makeStages makes stages on reg in dependency order (also what a `sluice
// perf bdev` over a topology with stages needs, once perf takes a hook for
// it). d gives the logger; its other fields are not used.
func makeStages(d *daemon, reg *bdev.Registry, stages []conf.Stage) (*stagesPart, error) {
	p := &stagesPart{d: d, reg: reg, list: &stage.List{}, keys: &crypto.Keys{},
		configs: map[string]conf.Stage{}, inserted: map[string]*bdev.Inserted{}, keyFiles: map[string]string{}}
	for _, s := range stages {
		if s.Service != conf.ServiceCrypto || p.keyFiles[s.KeyName] != "" {
			continue
		}
		k, err := crypto.LoadKeyFile(s.KeyName, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("stages: %s: %w", s.Name, err)
		}
		if err := p.keys.Add(k); err != nil {
			return nil, err
		}
		p.keyFiles[s.KeyName] = s.KeyFile
	}
	pending := slices.Clone(stages)
	for len(pending) > 0 {
		var waiting []conf.Stage
		for _, s := range pending {
			if p.missing(s) != "" {
				waiting = append(waiting, s)
				continue
			}
			if err := p.create(s); err != nil {
				return nil, fmt.Errorf("stages: %w", err)
			}
			d.log.Info("stage created", "stage", s.Name, "service", string(s.Service), "bases", strings.Join(s.Bases, ","))
		}
		if len(waiting) == len(pending) { // conf's graph check makes this unreachable for a parsed file
			return nil, fmt.Errorf("stages: %q: base %q does not exist", waiting[0].Name, p.missing(waiting[0]))
		}
		pending = waiting
	}
	return p, nil
}

// missing names a base (or metadata bdev) of s that is not a bdev yet.
func (p *stagesPart) missing(s conf.Stage) string {
	for _, b := range append(slices.Clone(s.Bases), s.Metadata) {
		if _, ok := p.reg.Lookup(b); b != "" && !ok {
			return b
		}
	}
	return ""
}

// build makes the stage s describes (not registered).
func (p *stagesPart) build(s conf.Stage) (stage.Backend, error) {
	base := ""
	if len(s.Bases) > 0 {
		base = s.Bases[0]
	}
	switch s.Service {
	case conf.ServicePassthru:
		return passthru.New(p.reg, passthru.Config{Name: s.Name, Base: base, UUID: s.UUID})
	case conf.ServiceDelay:
		cfg := delay.Config{Name: s.Name, Base: base, UUID: s.UUID}
		cfg.Latencies[bdev.IORead] = delay.Latency{Avg: s.ReadLatency, P99: s.ReadLatencyP99}
		cfg.Latencies[bdev.IOWrite] = delay.Latency{Avg: s.WriteLatency, P99: s.WriteLatencyP99}
		return delay.New(p.reg, cfg)
	case conf.ServiceError:
		return errinject.New(p.reg, errinject.Config{Name: s.Name, Base: base, UUID: s.UUID})
	case conf.ServiceQoS:
		return qos.New(p.reg, qos.Config{Name: s.Name, Base: base, UUID: s.UUID, Limits: qosLimits(s)})
	case conf.ServiceRaid0, conf.ServiceConcat:
		return raid.New(p.reg, raid.Config{Name: s.Name, Level: raid.Level(s.Service), Bases: s.Bases,
			StripSize: uint64(s.StripSize), UUID: s.UUID})
	case conf.ServiceReplica:
		return replica.New(p.reg, replica.Config{Name: s.Name, Members: s.Bases, Metadata: s.Metadata,
			RegionSize: uint64(s.RegionSize), RebuildRate: uint64(s.RebuildRate), UUID: s.UUID, Logger: p.d.log})
	case conf.ServiceCrypto:
		return p.buildCrypto(s, false)
	}
	return nil, fmt.Errorf("stage %q: service %q, want one of %v: %w", s.Name, s.Service, conf.Services, stage.ErrConfig)
}

// buildCrypto makes a crypto stage; fresh: its base is a live bdev's
// plaintext (insert), so a record already on the metadata bdev is refused.
func (p *stagesPart) buildCrypto(s conf.Stage, fresh bool) (stage.Backend, error) {
	base := ""
	if len(s.Bases) > 0 {
		base = s.Bases[0]
	}
	k, err := p.keys.Use(s.KeyName)
	if err != nil {
		return nil, err
	}
	st, err := crypto.New(p.reg, crypto.Config{Name: s.Name, Base: base, UUID: s.UUID, Key: k,
		Convert: s.Convert, ConvertRate: uint64(s.ConvertRate), Metadata: s.Metadata, ConvertFresh: fresh, Logger: p.d.log})
	if err != nil {
		p.keys.Release(k)
	}
	return st, err
}

func qosLimits(s conf.Stage) qos.Limits {
	return qos.Limits{IOPS: s.IOPS, BPS: s.MBytesPerSec * qos.MBytes,
		ReadBPS: s.ReadMBytesPerSec * qos.MBytes, WriteBPS: s.WriteMBytesPerSec * qos.MBytes}
}

// create builds and registers s and records how to make it again.
func (p *stagesPart) create(s conf.Stage) error {
	st, err := p.build(s)
	if err != nil {
		return err
	}
	if _, err := stage.Add(p.reg, p.list, st); err != nil {
		if c, ok := st.(*crypto.Stage); ok {
			p.keys.Release(c.Key())
		}
		return err
	}
	p.mu.Lock()
	p.configs[s.Name] = s
	p.mu.Unlock()
	return nil
}

// remove deletes the stage called name if it is of service want (refused
// while anything uses it, with the registry's reason).
func (p *stagesPart) remove(name string, want ...conf.Service) error {
	st, ok := p.list.Get(name)
	if !ok {
		return jsonrpc.Errorf(-19, "No such device: %s is not a stage", name)
	}
	p.mu.Lock()
	_, live := p.inserted[name]
	p.mu.Unlock()
	if live && st.Service() == crypto.Service {
		return jsonrpc.Errorf(-16, "%s has a crypto stage put under it while in use: its data is encrypted below it; it stays", name)
	}
	if live {
		return jsonrpc.Errorf(-16, "%s has a %s stage put under it while in use: take it out with sluice_stage_remove", name, st.Service())
	}
	if !slices.Contains(want, conf.Service(st.Service())) {
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: %s is a %s stage, want %v", name, st.Service(), want)
	}
	if err := stage.Delete(p.reg, p.list, name); err != nil {
		return stageRPCError(err)
	}
	if c, ok := st.(*crypto.Stage); ok {
		p.keys.Release(c.Key())
	}
	p.mu.Lock()
	delete(p.configs, name)
	p.mu.Unlock()
	p.d.log.Info("stage deleted by rpc", "stage", name, "service", st.Service())
	return nil
}

// stageRPCError gives a stage or registry error SPDK's code for it.
func stageRPCError(err error) error {
	var je *jsonrpc.Error
	switch {
	case errors.As(err, &je):
		return err
	case errors.Is(err, bdev.ErrNotFound):
		return jsonrpc.Errorf(-19, "No such device: %v", err) // -ENODEV
	case errors.Is(err, bdev.ErrExists):
		return jsonrpc.Errorf(-17, "%v", err) // -EEXIST
	case errors.Is(err, bdev.ErrInUse), errors.Is(err, bdev.ErrClaimed):
		return jsonrpc.Errorf(-16, "%v", err) // -EBUSY
	case errors.Is(err, stage.ErrConfig), errors.Is(err, crypto.ErrKey), errors.Is(err, bdev.ErrSpec),
		errors.Is(err, bdev.ErrSwap):
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: %v", err)
	}
	return err
}

// stagesOf finds the daemon's stages part, for the RPC handlers.
func stagesOf(d *daemon) *stagesPart {
	for _, p := range d.parts {
		if sp, ok := p.(*stagesPart); ok {
			return sp
		}
	}
	return nil
}

// stageMethods are SPDK's methods for the stages, with SPDK's parameters
// and results, and sluice_ methods for what SPDK has no method for.
func stageMethods(d *daemon) []jsonrpc.Method {
	h := &stageRPC{d: d}
	return []jsonrpc.Method{
		{Name: "bdev_passthru_create", Params: "name, base_bdev_name, uuid", Handler: h.passthruCreate},
		{Name: "bdev_passthru_delete", Params: "name", Handler: h.deleter(conf.ServicePassthru)},
		{Name: "bdev_delay_create", Params: "name, base_bdev_name, avg_read_latency, p99_read_latency, avg_write_latency, p99_write_latency (µs), uuid",
			Handler: h.delayCreate},
		{Name: "bdev_delay_delete", Params: "name", Handler: h.deleter(conf.ServiceDelay)},
		{Name: "bdev_delay_update_latency", Params: "delay_bdev_name, latency_type (avg_read, p99_read, avg_write, p99_write), latency_us",
			Handler: h.delayUpdate},
		{Name: "bdev_error_create", Params: "base_name, uuid", Handler: h.errorCreate},
		{Name: "bdev_error_delete", Params: "name", Handler: h.deleter(conf.ServiceError)},
		{Name: "bdev_error_inject_error", Params: "name, io_type (clear, read, write, unmap, flush, all), error_type (failure, nvme_failure, nomem, corrupt_data), num, nvme_sct, nvme_sc, corrupt_offset, corrupt_value; sluice: probability, seed",
			Handler: h.errorInject},
		{Name: "bdev_raid_create", Params: "name, raid_level (raid0, 0, concat, raid1, 1: the replica stage), base_bdevs, strip_size_kb, uuid; sluice: metadata, region_size_kb, rebuild_rate_mbytes_per_sec",
			Handler: h.raidCreate},
		{Name: "bdev_raid_delete", Params: "name", Handler: h.deleter(conf.ServiceRaid0, conf.ServiceConcat, conf.ServiceReplica)},
		{Name: "bdev_raid_get_bdevs", Params: "category (all, online, configuring, offline)", Handler: h.raidGet},
		{Name: "bdev_raid_add_base_bdev", Params: "raid_bdev, base_bdev (raid1: fills a faulty slot, or adds a member; rebuilt in the background)",
			Handler: h.raidAddBase},
		{Name: "bdev_raid_remove_base_bdev", Params: "name (a raid1 member: marked faulty)", Handler: h.raidRemoveBase},
		{Name: "bdev_set_qos_limit", Params: "name, rw_ios_per_sec, rw_mbytes_per_sec, r_mbytes_per_sec, w_mbytes_per_sec (a bdev without a qos stage gets one put under it, live)",
			Handler: h.setQoS},
		{Name: "bdev_crypto_create", Params: "base_bdev_name, name, key_name (or cipher, key, key2; crypto_pmd ignored); sluice: convert, convert_rate_mbytes_per_sec, metadata (with convert: the journal and record's bdev; the stage keeps the base's size)",
			Handler: h.cryptoCreate},
		{Name: "bdev_crypto_delete", Params: "name", Handler: h.deleter(conf.ServiceCrypto)},
		{Name: "accel_crypto_key_create", Params: "cipher (AES_XTS), key, key2 (hex), tweak_mode (SIMPLE_LBA), name", Handler: h.keyCreate},
		{Name: "accel_crypto_key_destroy", Params: "key_name", Handler: h.keyDestroy},
		{Name: "accel_crypto_keys_get", Params: "key_name (optional); never returns key bytes", Handler: h.keysGet},
		{Name: "sluice_stage_insert", Params: "name (a live bdev), service (passthru, delay, error, qos, replica, crypto), and the service's fields as in bdev_*_create; crypto: metadata (required), key_name and/or key_file (absolute; loaded, and saved by save_config), convert_rate_mbytes_per_sec: encrypts the bdev's data online",
			Handler: h.insert},
		{Name: "sluice_stage_remove", Params: "name (a bdev a stage was put under)", Handler: h.uninsert},
		{Name: "sluice_get_stages", Params: "name (optional)", Handler: h.getStages},
		{Name: "sluice_stage_create", Params: "name, service, base or bases, uuid, and the service's fields as stages: writes them (durations like 100us, sizes like 64KiB)",
			Handler: h.stageCreate},
		{Name: "sluice_stage_delete", Params: "name (a stage of any service; refused while something uses it)",
			Handler: h.deleter(conf.Services...)},
	}
}

// stageRPC holds the stage handlers; the part is looked up per call, as
// the handlers are registered after the parts start.
type stageRPC struct{ d *daemon }

// partParams decodes raw strictly into params (an unknown or mistyped field
// is -32602 naming it), then finds the running stages: the start of most
// stage handlers.
func (h *stageRPC) partParams(raw json.RawMessage, params any) (*stagesPart, error) {
	if err := jsonrpc.DecodeParams(raw, params); err != nil {
		return nil, err
	}
	return h.part()
}

func (h *stageRPC) part() (*stagesPart, error) {
	p := stagesOf(h.d)
	if p == nil {
		return nil, jsonrpc.Errorf(-1, "stages are not running")
	}
	return p, nil
}

// microseconds is SPDK's latency parameter: a number, or a number in a
// string (SPDK's own example sends "15").
type microseconds uint64

func (m *microseconds) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("latency %s, want microseconds as a whole number", b)
	}
	*m = microseconds(v)
	return nil
}

func (m microseconds) duration() time.Duration { return time.Duration(m) * time.Microsecond }

func parseUUIDParam(s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, nil
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: uuid %q: %v", s, err)
	}
	return u, nil
}

// createStage checks the names, makes s, and answers like SPDK: the name,
// or true.
func (h *stageRPC) createStage(s conf.Stage, result any) (any, error) {
	p, err := h.part()
	if err != nil {
		return nil, err
	}
	if s.Name == "" {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: name is required")
	}
	if _, taken := p.reg.Lookup(s.Name); taken {
		return nil, jsonrpc.Errorf(-17, "bdev %q: name taken", s.Name)
	}
	if m := p.missing(s); m != "" {
		return nil, jsonrpc.Errorf(-19, "No such device: %s (a base of %s)", m, s.Name)
	}
	if err := p.create(s); err != nil {
		return nil, stageRPCError(err)
	}
	h.d.log.Info("stage created by rpc", "stage", s.Name, "service", string(s.Service), "bases", strings.Join(s.Bases, ","))
	return result, nil
}

func (h *stageRPC) deleter(services ...conf.Service) jsonrpc.Handler {
	return func(_ context.Context, raw json.RawMessage) (any, error) {
		var params struct {
			Name    string `json:"name"`
			ClearSB bool   `json:"clear_sb"` // bdev_raid_delete's: we keep no superblock on the bases
		}
		p, err := h.partParams(raw, &params)
		if err != nil {
			return nil, err
		}
		if err := p.remove(params.Name, services...); err != nil {
			return nil, err
		}
		return true, nil
	}
}

func (h *stageRPC) passthruCreate(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name     string `json:"name"`
		BaseName string `json:"base_bdev_name"`
		UUID     string `json:"uuid"`
	}
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	u, err := parseUUIDParam(params.UUID)
	if err != nil {
		return nil, err
	}
	return h.createStage(conf.Stage{Name: params.Name, Service: conf.ServicePassthru, Bases: []string{params.BaseName}, UUID: u}, params.Name)
}

// delayParams are bdev_delay_create's, and sluice_stage_insert's for delay.
type delayParams struct {
	AvgRead  microseconds `json:"avg_read_latency"`
	P99Read  microseconds `json:"p99_read_latency"`
	AvgWrite microseconds `json:"avg_write_latency"`
	P99Write microseconds `json:"p99_write_latency"`
}

func (q delayParams) fill(s *conf.Stage) {
	s.ReadLatency, s.ReadLatencyP99 = q.AvgRead.duration(), q.P99Read.duration()
	s.WriteLatency, s.WriteLatencyP99 = q.AvgWrite.duration(), q.P99Write.duration()
}

func (h *stageRPC) delayCreate(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name     string `json:"name"`
		BaseName string `json:"base_bdev_name"`
		UUID     string `json:"uuid"`
		delayParams
	}
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	u, err := parseUUIDParam(params.UUID)
	if err != nil {
		return nil, err
	}
	s := conf.Stage{Name: params.Name, Service: conf.ServiceDelay, Bases: []string{params.BaseName}, UUID: u}
	params.fill(&s)
	return h.createStage(s, params.Name)
}

func (h *stageRPC) delayUpdate(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name    string       `json:"delay_bdev_name"`
		Type    string       `json:"latency_type"`
		Latency microseconds `json:"latency_us"`
	}
	p, err := h.partParams(raw, &params)
	if err != nil {
		return nil, err
	}
	s, ok := p.list.Get(params.Name)
	st, isDelay := s.(*delay.Stage)
	if !ok || !isDelay {
		return nil, jsonrpc.Errorf(-19, "No such device: %s is not a delay bdev", params.Name)
	}
	t := bdev.IORead
	if strings.HasSuffix(params.Type, "_write") {
		t = bdev.IOWrite
	}
	l := st.Latency(t)
	switch params.Type {
	case "avg_read", "avg_write":
		l.Avg = params.Latency.duration()
	case "p99_read", "p99_write":
		l.P99 = params.Latency.duration()
	default:
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: latency_type %q, want avg_read, p99_read, avg_write or p99_write", params.Type)
	}
	if err := st.SetLatency(t, l); err != nil {
		return nil, stageRPCError(err)
	}
	p.mu.Lock()
	c := p.configs[params.Name]
	if t == bdev.IORead {
		c.ReadLatency, c.ReadLatencyP99 = l.Avg, l.P99
	} else {
		c.WriteLatency, c.WriteLatencyP99 = l.Avg, l.P99
	}
	p.configs[params.Name] = c
	p.mu.Unlock()
	return true, nil
}

func (h *stageRPC) errorCreate(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		BaseName string `json:"base_name"`
		UUID     string `json:"uuid"`
	}
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	u, err := parseUUIDParam(params.UUID)
	if err != nil {
		return nil, err
	}
	return h.createStage(conf.Stage{Name: "EE_" + params.BaseName, Service: conf.ServiceError, Bases: []string{params.BaseName}, UUID: u}, true)
}

// ioTypesByName are bdev_error_inject_error's io_type values.
var ioTypesByName = map[string]bdev.IOTypeSet{
	"read": bdev.IOTypesOf(bdev.IORead), "write": bdev.IOTypesOf(bdev.IOWrite),
	"unmap": bdev.IOTypesOf(bdev.IOUnmap), "flush": bdev.IOTypesOf(bdev.IOFlush),
	"all": bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOUnmap, bdev.IOFlush, bdev.IOWriteZeroes,
		bdev.IOCompare, bdev.IOReset),
}

func (h *stageRPC) errorInject(_ context.Context, raw json.RawMessage) (any, error) {
	params := struct {
		Name          string   `json:"name"`
		IOType        string   `json:"io_type"`
		ErrorType     string   `json:"error_type"`
		Num           *int64   `json:"num"`
		NVMeSCT       uint8    `json:"nvme_sct"`
		NVMeSC        uint8    `json:"nvme_sc"`
		QueueDepth    uint64   `json:"queue_depth"`
		CorruptOffset uint64   `json:"corrupt_offset"`
		CorruptValue  uint8    `json:"corrupt_value"`
		Probability   *float64 `json:"probability"`
		Seed          uint64   `json:"seed"`
	}{}
	p, err := h.partParams(raw, &params)
	if err != nil {
		return nil, err
	}
	s, ok := p.list.Get(params.Name)
	st, isError := s.(*errinject.Stage)
	if !ok || !isError {
		return nil, jsonrpc.Errorf(-19, "No such device: %s is not an error bdev", params.Name)
	}
	if params.IOType == "clear" {
		st.Clear(ioTypesByName["all"])
		return true, nil
	}
	types, ok := ioTypesByName[params.IOType]
	if !ok {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: io_type %q, want clear, read, write, unmap, flush or all", params.IOType)
	}
	if params.QueueDepth != 0 {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: queue_depth: not supported; use num or probability")
	}
	r := errinject.Rule{Types: types, Count: 1, Seed: params.Seed}
	if params.Num != nil {
		r.Count = *params.Num
	}
	if params.Probability != nil {
		r.Probability = *params.Probability
		if params.Num == nil {
			r.Count = errinject.CountUnlimited
		}
	}
	switch params.ErrorType {
	case "failure":
		r.Status = bdev.StatusFailed
	case "nvme_failure":
		r.Status, r.NVMe = bdev.StatusNVMe, bdev.NVMeStatus{SCT: params.NVMeSCT, SC: params.NVMeSC}
	case "nomem":
		r.Status = bdev.StatusNoResources
	case "corrupt_data":
		if params.CorruptValue == 0 {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: corrupt_value 0, want 1..255")
		}
		r.Status, r.CorruptOffset, r.CorruptValue = bdev.StatusFailed, params.CorruptOffset, params.CorruptValue
	default:
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: error_type %q, want failure, nvme_failure, nomem or corrupt_data (pending is not supported)", params.ErrorType)
	}
	if err := st.Inject(r); err != nil {
		return nil, stageRPCError(err)
	}
	return true, nil
}

func (h *stageRPC) raidCreate(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name        string   `json:"name"`
		Level       string   `json:"raid_level"`
		Bases       []string `json:"base_bdevs"`
		StripSizeKB uint64   `json:"strip_size_kb"`
		UUID        string   `json:"uuid"`
		Superblock  bool     `json:"superblock"`
		Metadata    string   `json:"metadata"`
		RegionKB    uint64   `json:"region_size_kb"`
		RebuildMBps uint64   `json:"rebuild_rate_mbytes_per_sec"`
	}
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	u, err := parseUUIDParam(params.UUID)
	if err != nil {
		return nil, err
	}
	if params.Superblock {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: superblock: not supported; a raid1 keeps its state on a metadata bdev (metadata)")
	}
	s := conf.Stage{Name: params.Name, Bases: params.Bases, UUID: u}
	switch params.Level {
	case "raid0", "0":
		s.Service, s.StripSize = conf.ServiceRaid0, conf.Size(params.StripSizeKB<<10)
	case "concat":
		s.Service, s.StripSize = conf.ServiceConcat, conf.Size(params.StripSizeKB<<10)
	case "raid1", "1":
		s.Service, s.Metadata = conf.ServiceReplica, params.Metadata
		s.RegionSize, s.RebuildRate = conf.Size(params.RegionKB<<10), conf.Size(params.RebuildMBps<<20)
	default:
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: raid_level %q, want raid0, concat or raid1", params.Level)
	}
	if s.Service != conf.ServiceReplica && (params.Metadata != "" || params.RegionKB != 0 || params.RebuildMBps != 0) {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: metadata, region_size_kb and rebuild_rate_mbytes_per_sec are raid1's")
	}
	if s.Service == conf.ServiceReplica && params.StripSizeKB != 0 {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: strip_size_kb: raid1 has no strips")
	}
	if s.Service == conf.ServiceRaid0 && s.StripSize == 0 {
		s.StripSize = conf.StripSizeDefault
	}
	return h.createStage(s, true)
}

// raidBdev is one raid in bdev_raid_get_bdevs's shape.
type raidBdev struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
	raid.Status
}

func (h *stageRPC) raidGet(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Category string `json:"category"`
	}
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	switch params.Category {
	case "", "all", "online", "configuring", "offline":
	default:
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: category %q, want all, online, configuring or offline", params.Category)
	}
	p, err := h.part()
	if err != nil {
		return nil, err
	}
	out := []raidBdev{}
	for _, n := range p.list.All() {
		var st raid.Status
		switch x := n.Stage.(type) {
		case *raid.Stage:
			st = x.Status().(raid.Status)
		case *replica.Stage:
			rs := x.Status().(replica.Status)
			st = raid.Status{State: "online", RaidLevel: "raid1", NumBase: len(rs.Members), NumDiscovered: len(rs.Members),
				NumOperational: rs.InSync}
			if rs.InSync == 0 {
				st.State = "offline"
			}
			b, _ := p.reg.Lookup(n.Name)
			for _, m := range rs.Members {
				st.BaseBdevsList = append(st.BaseBdevsList, raid.BaseStatus{Name: m.Name, UUID: m.UUID,
					IsConfigured: m.State != "faulty", DataSize: b.Blocks()})
			}
		default:
			continue
		}
		if c := params.Category; c != "" && c != "all" && c != st.State {
			continue
		}
		b, _ := p.reg.Lookup(n.Name)
		out = append(out, raidBdev{Name: n.Name, UUID: b.UUID().String(), Status: st})
	}
	return out, nil
}

func (h *stageRPC) replicaNamed(name string) (*stagesPart, *replica.Stage, error) {
	p, err := h.part()
	if err != nil {
		return nil, nil, err
	}
	s, ok := p.list.Get(name)
	r, isReplica := s.(*replica.Stage)
	if !ok || !isReplica {
		return nil, nil, jsonrpc.Errorf(-19, "No such device: %s is not a raid1 bdev", name)
	}
	return p, r, nil
}

// raidAddBase fills a faulty slot of a raid1 with base_bdev (rebuilt whole
// in the background), or adds it as a new member.
func (h *stageRPC) raidAddBase(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Raid string `json:"raid_bdev"`
		Base string `json:"base_bdev"`
	}
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	p, r, err := h.replicaNamed(params.Raid)
	if err != nil {
		return nil, err
	}
	st := r.Status().(replica.Status)
	var faulty string
	for _, m := range st.Members {
		if m.Name == params.Base && m.State == "faulty" {
			// The member removed earlier comes back (bdev_raid_remove_base_bdev,
			// then add): it keeps its slot and a resync copies only the
			// regions it missed.
			if err := r.ReAdd(params.Base); err != nil {
				return nil, stageRPCError(err)
			}
			return true, nil
		}
		if m.State == "faulty" && faulty == "" {
			faulty = m.Name
		}
	}
	if faulty != "" {
		err = r.Replace(faulty, params.Base)
	} else {
		err = r.AddMember(params.Base)
	}
	if err != nil {
		return nil, stageRPCError(err)
	}
	p.mu.Lock()
	c := p.configs[params.Raid]
	if faulty != "" {
		c.Bases[slices.Index(c.Bases, faulty)] = params.Base
	} else {
		c.Bases = append(slices.Clone(c.Bases), params.Base)
	}
	p.configs[params.Raid] = c
	p.mu.Unlock()
	return true, nil
}

// raidRemoveBase marks the member called name faulty in the raid1 that has
// it (the slot stays, for bdev_raid_add_base_bdev).
func (h *stageRPC) raidRemoveBase(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name string `json:"name"`
	}
	p, err := h.partParams(raw, &params)
	if err != nil {
		return nil, err
	}
	for _, n := range p.list.All() {
		if r, ok := n.Stage.(*replica.Stage); ok && slices.Contains(r.Bases(), params.Name) {
			if err := r.Fail(params.Name); err != nil {
				return nil, stageRPCError(err)
			}
			return true, nil
		}
	}
	return nil, jsonrpc.Errorf(-19, "No such device: %s is no raid1 member", params.Name)
}

// qosParams are bdev_set_qos_limit's limits; nil leaves a limit as it is.
type qosParams struct {
	IOPS  *uint64 `json:"rw_ios_per_sec"`
	MBps  *uint64 `json:"rw_mbytes_per_sec"`
	RMBps *uint64 `json:"r_mbytes_per_sec"`
	WMBps *uint64 `json:"w_mbytes_per_sec"`
}

func (q qosParams) fill(s *conf.Stage) {
	for _, f := range []struct {
		v   *uint64
		dst *uint64
	}{{q.IOPS, &s.IOPS}, {q.MBps, &s.MBytesPerSec}, {q.RMBps, &s.ReadMBytesPerSec}, {q.WMBps, &s.WriteMBytesPerSec}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
}

// setQoS sets a qos stage's limits; on any other bdev it puts a qos stage
// under it first, live (sluice_stage_insert), as SPDK's QoS needs no setup.
func (h *stageRPC) setQoS(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name string `json:"name"`
		qosParams
	}
	p, err := h.partParams(raw, &params)
	if err != nil {
		return nil, err
	}
	if s, ok := p.list.Get(params.Name); ok {
		if q, isQoS := s.(*qos.Stage); isQoS {
			p.mu.Lock()
			c := p.configs[params.Name]
			params.fill(&c)
			p.configs[params.Name] = c
			p.mu.Unlock()
			q.SetLimits(qosLimits(c))
			return true, nil
		}
	}
	s := conf.Stage{Name: params.Name, Service: conf.ServiceQoS}
	params.fill(&s)
	if _, err := p.insert(s); err != nil {
		return nil, err
	}
	return true, nil
}

func (h *stageRPC) cryptoCreate(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		BaseName    string `json:"base_bdev_name"`
		Name        string `json:"name"`
		CryptoPMD   string `json:"crypto_pmd"`
		Key         string `json:"key"`
		Cipher      string `json:"cipher"`
		Key2        string `json:"key2"`
		KeyName     string `json:"key_name"`
		Convert     bool   `json:"convert"`
		ConvertMBps uint64 `json:"convert_rate_mbytes_per_sec"`
		Metadata    string `json:"metadata"`
	}
	p, err := h.partParams(raw, &params)
	if err != nil {
		return nil, err
	}
	if params.Metadata != "" && !params.Convert {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams,
			"Invalid parameters: metadata %q without convert: it keeps a conversion's journal and record; give convert: true", params.Metadata)
	}
	keyName := params.KeyName
	switch {
	case keyName != "" && params.Key != "":
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: key_name or key, not both")
	case keyName == "" && params.Key == "":
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: key_name (accel_crypto_key_create) is required")
	case keyName == "": // SPDK's older form: the key inline, kept under the bdev's name
		keyName = params.Name + "_key"
		k, err := crypto.ParseHexKey(keyName, params.Cipher, params.Key, params.Key2)
		if err != nil {
			return nil, stageRPCError(err)
		}
		if err := p.keys.Add(k); err != nil {
			return nil, stageRPCError(err)
		}
	}
	s := conf.Stage{Name: params.Name, Service: conf.ServiceCrypto, Bases: []string{params.BaseName}, KeyName: keyName,
		Convert: params.Convert, ConvertRate: conf.Size(params.ConvertMBps << 20), Metadata: params.Metadata}
	return h.createStage(s, params.Name)
}

func (h *stageRPC) keyCreate(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Cipher    string `json:"cipher"`
		Key       string `json:"key"`
		Key2      string `json:"key2"`
		TweakMode string `json:"tweak_mode"`
		Name      string `json:"name"`
	}
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	if params.TweakMode != "" && params.TweakMode != "SIMPLE_LBA" {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: tweak_mode %q, want SIMPLE_LBA (the tweak is the LBA)", params.TweakMode)
	}
	p, err := h.part()
	if err != nil {
		return nil, err
	}
	k, err := crypto.ParseHexKey(params.Name, params.Cipher, params.Key, params.Key2)
	if err != nil {
		return nil, stageRPCError(err)
	}
	if err := p.keys.Add(k); err != nil {
		return nil, stageRPCError(err)
	}
	h.d.log.Info("crypto key created by rpc", "key", params.Name) // the name only (C4)
	return true, nil
}

func (h *stageRPC) keyDestroy(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name string `json:"key_name"`
	}
	p, err := h.partParams(raw, &params)
	if err != nil {
		return nil, err
	}
	if err := p.keys.Destroy(params.Name); err != nil {
		return nil, stageRPCError(err)
	}
	return true, nil
}

// keysGet answers accel_crypto_keys_get without the key and key2 SPDK
// returns: the name, cipher and size only (C4).
func (h *stageRPC) keysGet(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name string `json:"key_name"`
	}
	p, err := h.partParams(raw, &params)
	if err != nil {
		return nil, err
	}
	out := []crypto.KeyInfo{}
	for _, k := range p.keys.List() {
		if params.Name == "" || k.Name == params.Name {
			out = append(out, k)
		}
	}
	if params.Name != "" && len(out) == 0 {
		return nil, jsonrpc.Errorf(-19, "No such key: %s", params.Name)
	}
	return out, nil
}

// insert puts the stage s describes under the live bdev s.Name (bdev B10,
// B11): the bdev keeps its name and descriptors; its old back end becomes
// the bdev <name>.base (then .base1, …). Services that pass IO through
// unchanged, replica (the old back end its one in-sync member), and crypto
// with a metadata bdev: it keeps the bdev's size and shape and encrypts
// the data in place in the background (services/crypto's "Online
// encryption of a live bdev").
func (p *stagesPart) insert(s conf.Stage) (string, error) {
	switch s.Service {
	case conf.ServicePassthru, conf.ServiceDelay, conf.ServiceError, conf.ServiceQoS, conf.ServiceReplica, conf.ServiceCrypto:
	default:
		return "", jsonrpc.Errorf(jsonrpc.CodeInvalidParams,
			"Invalid parameters: service %q cannot go under a live bdev (it changes what reads return or the bdev's size); want passthru, delay, error, qos, replica or crypto", s.Service)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	live, ok := p.reg.Lookup(s.Name)
	if !ok {
		return "", jsonrpc.Errorf(-19, "No such device: %s", s.Name)
	}
	if _, ok := p.inserted[s.Name]; ok {
		return "", jsonrpc.Errorf(-16, "%s already has a stage put under it: take it out first (sluice_stage_remove)", s.Name)
	}
	old, wasStage := p.list.Get(s.Name)
	if wasStage && (old.Service() == replica.Service || old.Service() == crypto.Service) {
		// They take range locks on their own bdev by name, which would
		// then be the stage above them.
		return "", jsonrpc.Errorf(jsonrpc.CodeInvalidParams,
			"Invalid parameters: %s is a %s stage: nothing goes between it and what uses it; put the stage under its base instead",
			s.Name, old.Service())
	}
	var addedKey string
	if s.Service == conf.ServiceCrypto {
		var err error
		if addedKey, err = p.insertCryptoCheck(live, &s); err != nil {
			return "", err
		}
	}
	base := s.Name + ".base"
	for k := 1; ; k++ {
		if _, taken := p.reg.Lookup(base); !taken {
			break
		}
		base = s.Name + ".base" + strconv.Itoa(k)
	}
	var made stage.Backend
	in, err := p.reg.InsertUnder(s.Name, base, insertTimeout, func(b string) (bdev.Backend, error) {
		c := s
		c.Bases = []string{b}
		var st stage.Backend
		var err error
		if c.Service == conf.ServiceCrypto {
			st, err = p.buildCrypto(c, true)
		} else {
			st, err = p.build(c)
		}
		made = st
		return st, err
	})
	if err != nil {
		if addedKey != "" { // loaded for this stage only, and unused now
			p.keys.Destroy(addedKey)
			delete(p.keyFiles, addedKey)
		}
		return "", stageRPCError(err)
	}
	if wasStage { // its bdev is the base now
		p.list.Rename(s.Name, base)
		c := p.configs[s.Name]
		c.Name = base
		p.configs[base] = c
	} else { // a driver's bdev: its file is base's now, for save_config
		p.d.bdevPathsMu.Lock()
		if path, ok := p.d.bdevPaths[s.Name]; ok {
			p.d.bdevPaths[base] = path
		}
		p.d.bdevPathsMu.Unlock()
	}
	if err := p.list.Add(made); err != nil {
		return "", err
	}
	s.Bases = []string{base}
	if b, ok := p.reg.Lookup(s.Name); ok {
		s.UUID = b.UUID()
	}
	p.configs[s.Name] = s
	p.inserted[s.Name] = in
	p.d.log.Info("stage put under a live bdev", "bdev", s.Name, "service", string(s.Service), "base", base)
	if st, ok := made.(stage.Starter); ok { // a crypto stage's conversion
		if err := st.Start(); err != nil {
			return "", fmt.Errorf("%s is under %s, but did not start: %w", s.Service, s.Name, err)
		}
	}
	return base, nil
}

// insertCryptoCheck checks a crypto stage for the live bdev live and
// loads its key file when one is given; it returns the name of a key it
// added (to drop if the insertion fails). Under p.mu.
func (p *stagesPart) insertCryptoCheck(live *bdev.Bdev, s *conf.Stage) (string, error) {
	bad := func(format string, args ...any) error {
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: "+format, args...)
	}
	switch {
	case s.Metadata == "":
		return "", bad("metadata: required for crypto under a live bdev: %s cannot change size, so the conversion's journal and record go on a metadata bdev (at least 1 MiB and 2 blocks, %s's block size)",
			s.Name, s.Name)
	case s.Metadata == s.Name:
		return "", bad("metadata %q: the bdev the stage goes under, want another", s.Metadata)
	case !s.Convert:
		return "", bad("convert false: a crypto stage under a live bdev always converts (%s holds plaintext)", s.Name)
	}
	if _, ok := p.reg.Lookup(s.Metadata); !ok {
		return "", jsonrpc.Errorf(-19, "No such device: metadata %s", s.Metadata)
	}
	if extra := live.Info().IOTypes &^ crypto.IOTypes(); extra != 0 { // its back end's own, not what the layer emulates
		return "", bad("%s does %v itself, which a crypto stage cannot pass (it would see ciphertext), and a live bdev keeps its IO types", s.Name, extra)
	}
	if s.KeyName == "" {
		s.KeyName = s.Name // as a topology's stage
	}
	if s.KeyFile == "" {
		return "", nil // a key made before (accel_crypto_key_create, or a topology's file); Use checks
	}
	if !filepath.IsAbs(s.KeyFile) {
		return "", bad("key_file %q, want an absolute path", s.KeyFile)
	}
	file := filepath.Clean(s.KeyFile)
	if have, ok := p.keyFiles[s.KeyName]; ok && have == file {
		return "", nil // already loaded from this file
	}
	for _, k := range p.keys.List() {
		if k.Name == s.KeyName {
			return "", jsonrpc.Errorf(-17, "key_name %q: a key of that name exists (not from %s): give another key_name, or no key_file", s.KeyName, file)
		}
	}
	k, err := crypto.LoadKeyFile(s.KeyName, file)
	if err != nil {
		return "", stageRPCError(err)
	}
	if err := p.keys.Add(k); err != nil {
		return "", stageRPCError(err)
	}
	p.keyFiles[s.KeyName] = file
	s.KeyFile = file
	return s.KeyName, nil
}

// cryptoInsertParams are sluice_stage_insert's fields for crypto.
type cryptoInsertParams struct {
	KeyName     string `json:"key_name"`
	KeyFile     string `json:"key_file"`
	Metadata    string `json:"metadata"`
	Convert     *bool  `json:"convert"`
	ConvertMBps uint64 `json:"convert_rate_mbytes_per_sec"`
}

// fill sets s's crypto fields, or names the first one given for another
// service.
func (q cryptoInsertParams) fill(s *conf.Stage) error {
	if s.Service != conf.ServiceCrypto {
		for _, f := range []struct {
			key   string
			given bool
		}{{"key_name", q.KeyName != ""}, {"key_file", q.KeyFile != ""}, {"metadata", q.Metadata != ""},
			{"convert", q.Convert != nil}, {"convert_rate_mbytes_per_sec", q.ConvertMBps != 0}} {
			if f.given {
				return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: %s: given for service %s, want it for crypto only", f.key, s.Service)
			}
		}
		return nil
	}
	if q.ConvertMBps > convertRateMBpsMax {
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: convert_rate_mbytes_per_sec %d, want at most %d (0: unthrottled)",
			q.ConvertMBps, uint64(convertRateMBpsMax))
	}
	s.KeyName, s.KeyFile, s.Metadata = q.KeyName, q.KeyFile, q.Metadata
	s.Convert = q.Convert == nil || *q.Convert
	s.ConvertRate = conf.Size(q.ConvertMBps << 20)
	return nil
}

// convertRateMBpsMax bounds a conversion's rate: 2^24 MiB/s is 16 TiB/s,
// no device's, and keeps the bytes per second far from overflowing.
const convertRateMBpsMax = 1 << 24

func (h *stageRPC) insert(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name    string `json:"name"`
		Service string `json:"service"`
		delayParams
		qosParams
		cryptoInsertParams
	}
	p, err := h.partParams(raw, &params)
	if err != nil {
		return nil, err
	}
	s := conf.Stage{Name: params.Name, Service: conf.Service(params.Service)}
	switch s.Service {
	case conf.ServiceDelay:
		params.delayParams.fill(&s)
	case conf.ServiceQoS:
		params.qosParams.fill(&s)
	}
	if err := params.cryptoInsertParams.fill(&s); err != nil {
		return nil, err
	}
	base, err := p.insert(s)
	if err != nil {
		return nil, err
	}
	return map[string]string{"name": params.Name, "base": base}, nil
}

// uninsert takes a stage put under a live bdev out again.
func (h *stageRPC) uninsert(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name string `json:"name"`
	}
	p, err := h.partParams(raw, &params)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	in, ok := p.inserted[params.Name]
	if !ok {
		return nil, jsonrpc.Errorf(-19, "No such device: no stage was put under %s", params.Name)
	}
	if r, isReplica := in.Stage().(*replica.Stage); isReplica && len(r.Bases()) > 1 {
		return nil, jsonrpc.Errorf(-16, "%s is a mirror of %d members now: remove it only with its first member alone", params.Name, len(r.Bases()))
	}
	if _, isCrypto := in.Stage().(*crypto.Stage); isCrypto {
		return nil, jsonrpc.Errorf(-1, "%s has a crypto stage under it: the data below is encrypted (or being encrypted); it stays", params.Name)
	}
	if err := in.Remove(insertTimeout); err != nil {
		return nil, stageRPCError(err)
	}
	p.list.Remove(params.Name)
	delete(p.inserted, params.Name)
	delete(p.configs, params.Name)
	p.d.bdevPathsMu.Lock()
	delete(p.d.bdevPaths, in.Base().Name()) // the file is the bdev's own again
	p.d.bdevPathsMu.Unlock()
	if c, wasStage := p.configs[in.Base().Name()]; wasStage { // the stage below takes its name back
		p.list.Rename(in.Base().Name(), params.Name)
		delete(p.configs, in.Base().Name())
		c.Name = params.Name
		p.configs[params.Name] = c
	}
	p.d.log.Info("stage taken out from under a live bdev", "bdev", params.Name)
	return true, nil
}

func (h *stageRPC) getStages(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name string `json:"name"`
	}
	p, err := h.partParams(raw, &params)
	if err != nil {
		return nil, err
	}
	views := p.list.Source().Snapshot().([]stage.View)
	if params.Name == "" {
		return views, nil
	}
	for _, v := range views {
		if v.Name == params.Name {
			return []stage.View{v}, nil
		}
	}
	return nil, jsonrpc.Errorf(-19, "No such device: %s is not a stage", params.Name)
}

// saveTopology writes the stages as they run now. A bdev a stage was put
// under is that stage now: its driver entry is dropped (the old back end is
// saved under its base name by the bdevs part).
func (p *stagesPart) saveTopology(t *conf.Topology) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Bdevs = slices.DeleteFunc(t.Bdevs, func(b conf.Bdev) bool { return p.inserted[b.Name] != nil })
	for _, n := range p.list.All() {
		c, ok := p.configs[n.Name]
		if !ok {
			continue
		}
		if c.Service == conf.ServiceCrypto {
			c.KeyFile = p.keyFiles[c.KeyName] // "" for an RPC key: its bytes are never saved (C4)
		}
		if b, ok := p.reg.Lookup(c.Name); ok && c.UUID == uuid.Nil {
			c.UUID = b.UUID()
		}
		t.Stages = append(t.Stages, c)
	}
}

// saveCalls appends each stage as the call that makes it (SPDK's
// bdev_*_create, or sluice_stage_create where SPDK has none), after the
// bdev calls, in creation order. Keys are not saved
// (their bytes never leave the process): create them before load_config.
func (p *stagesPart) saveCalls(out []spdkSubsystem) []spdkSubsystem {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.IndexFunc(out, func(s spdkSubsystem) bool { return s.Subsystem == "bdev" })
	if i < 0 {
		out = append(out, spdkSubsystem{Subsystem: "bdev", Config: []spdkCall{}})
		i = len(out) - 1
	}
	sub := &out[i]
	sub.Config = slices.DeleteFunc(sub.Config, func(c spdkCall) bool {
		name, _ := c.Params["name"].(string)
		return p.inserted[name] != nil
	})
	for _, n := range p.list.All() {
		c, ok := p.configs[n.Name]
		if !ok {
			continue
		}
		b, _ := p.reg.Lookup(c.Name)
		if b != nil && c.UUID == uuid.Nil {
			c.UUID = b.UUID()
		}
		if call, ok := createCall(c); ok {
			sub.Config = append(sub.Config, call)
		}
	}
	return out
}

// createCall is the SPDK call that makes c.
func createCall(c conf.Stage) (spdkCall, bool) {
	us := func(d time.Duration) uint64 { return uint64(d / time.Microsecond) }
	base := ""
	if len(c.Bases) > 0 {
		base = c.Bases[0]
	}
	params := map[string]any{"name": c.Name}
	if c.UUID != uuid.Nil {
		params["uuid"] = c.UUID.String()
	}
	switch c.Service {
	case conf.ServicePassthru:
		params["base_bdev_name"] = base
		return spdkCall{Method: "bdev_passthru_create", Params: params}, true
	case conf.ServiceDelay:
		params["base_bdev_name"] = base
		params["avg_read_latency"], params["p99_read_latency"] = us(c.ReadLatency), us(c.ReadLatencyP99)
		params["avg_write_latency"], params["p99_write_latency"] = us(c.WriteLatency), us(c.WriteLatencyP99)
		return spdkCall{Method: "bdev_delay_create", Params: params}, true
	case conf.ServiceError:
		if c.Name != "EE_"+base { // SPDK names it EE_<base>; another name needs ours
			return stageCreateCall(c), true
		}
		delete(params, "name")
		params["base_name"] = base
		return spdkCall{Method: "bdev_error_create", Params: params}, true
	case conf.ServiceRaid0, conf.ServiceConcat, conf.ServiceReplica:
		params["base_bdevs"] = c.Bases
		switch c.Service {
		case conf.ServiceReplica:
			params["raid_level"] = "raid1"
			if c.Metadata != "" {
				params["metadata"] = c.Metadata
			}
			if c.RegionSize != 0 {
				params["region_size_kb"] = uint64(c.RegionSize) >> 10
			}
			if c.RebuildRate != 0 {
				params["rebuild_rate_mbytes_per_sec"] = uint64(c.RebuildRate) >> 20
			}
		default:
			params["raid_level"] = string(c.Service)
			params["strip_size_kb"] = uint64(c.StripSize) >> 10
		}
		return spdkCall{Method: "bdev_raid_create", Params: params}, true
	case conf.ServiceQoS: // SPDK sets QoS on a bdev; here it is a stage of its own
		return stageCreateCall(c), true
	case conf.ServiceCrypto:
		params["base_bdev_name"] = base
		params["key_name"] = c.KeyName
		if c.Convert {
			params["convert"] = true
			params["convert_rate_mbytes_per_sec"] = uint64(c.ConvertRate) >> 20
		}
		if c.Metadata != "" {
			params["metadata"] = c.Metadata
		}
		return spdkCall{Method: "bdev_crypto_create", Params: params}, true
	}
	return spdkCall{}, false
}

// stageParams are sluice_stage_create's: a topology stage as JSON, the
// keys as stages: writes them (durations like "100us", sizes like "64KiB"
// or a number of bytes).
type stageParams struct {
	Name         string          `json:"name"`
	Service      string          `json:"service"`
	Base         string          `json:"base"`
	Bases        []string        `json:"bases"`
	UUID         string          `json:"uuid"`
	ReadLatency  string          `json:"read_latency"`
	ReadP99      string          `json:"p99_read_latency"`
	WriteLatency string          `json:"write_latency"`
	WriteP99     string          `json:"p99_write_latency"`
	IOPS         uint64          `json:"rw_ios_per_sec"`
	MBps         uint64          `json:"rw_mbytes_per_sec"`
	RMBps        uint64          `json:"r_mbytes_per_sec"`
	WMBps        uint64          `json:"w_mbytes_per_sec"`
	StripSize    json.RawMessage `json:"strip_size"`
	Metadata     string          `json:"metadata"`
	RegionSize   json.RawMessage `json:"region_size"`
	RebuildRate  json.RawMessage `json:"rebuild_rate"`
	KeyName      string          `json:"key_name"`
	Convert      bool            `json:"convert"`
	ConvertRate  json.RawMessage `json:"convert_rate"`
}

// stageCreateCall is sluice_stage_create for c.
func stageCreateCall(c conf.Stage) spdkCall {
	params := map[string]any{"name": c.Name, "service": string(c.Service), "bases": c.Bases}
	if c.UUID != uuid.Nil {
		params["uuid"] = c.UUID.String()
	}
	for k, d := range map[string]time.Duration{"read_latency": c.ReadLatency, "p99_read_latency": c.ReadLatencyP99,
		"write_latency": c.WriteLatency, "p99_write_latency": c.WriteLatencyP99} {
		if d != 0 {
			params[k] = d.String()
		}
	}
	for k, v := range map[string]uint64{"rw_ios_per_sec": c.IOPS, "rw_mbytes_per_sec": c.MBytesPerSec,
		"r_mbytes_per_sec": c.ReadMBytesPerSec, "w_mbytes_per_sec": c.WriteMBytesPerSec} {
		if v != 0 {
			params[k] = v
		}
	}
	for k, v := range map[string]conf.Size{"strip_size": c.StripSize, "region_size": c.RegionSize,
		"rebuild_rate": c.RebuildRate, "convert_rate": c.ConvertRate} {
		if v != 0 {
			params[k] = v.String()
		}
	}
	if c.Metadata != "" {
		params["metadata"] = c.Metadata
	}
	if c.KeyName != "" {
		params["key_name"] = c.KeyName
	}
	if c.Convert {
		params["convert"] = true
	}
	return spdkCall{Method: "sluice_stage_create", Params: params}
}

// stageCreate makes any stage from the topology's fields: what SPDK has no
// create call for (a qos stage of its own name, error stages named freely,
// replica options), and what save_config writes for those.
func (h *stageRPC) stageCreate(_ context.Context, raw json.RawMessage) (any, error) {
	var q stageParams
	if err := jsonrpc.DecodeParams(raw, &q); err != nil {
		return nil, err
	}
	bad := func(field, value, want string) error {
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: %s %q, want %s", field, value, want)
	}
	s := conf.Stage{Name: q.Name, Service: conf.Service(q.Service), Bases: q.Bases, Metadata: q.Metadata,
		IOPS: q.IOPS, MBytesPerSec: q.MBps, ReadMBytesPerSec: q.RMBps, WriteMBytesPerSec: q.WMBps,
		KeyName: q.KeyName, Convert: q.Convert}
	switch {
	case q.Base != "" && len(q.Bases) > 0:
		return nil, bad("base", q.Base, "base or bases, not both")
	case q.Base != "":
		s.Bases = []string{q.Base}
	}
	u, err := parseUUIDParam(q.UUID)
	if err != nil {
		return nil, err
	}
	s.UUID = u
	for _, f := range []struct {
		key, text string
		dst       *time.Duration
	}{{"read_latency", q.ReadLatency, &s.ReadLatency}, {"p99_read_latency", q.ReadP99, &s.ReadLatencyP99},
		{"write_latency", q.WriteLatency, &s.WriteLatency}, {"p99_write_latency", q.WriteP99, &s.WriteLatencyP99}} {
		if f.text == "" {
			continue
		}
		d, err := time.ParseDuration(f.text)
		if err != nil || d < 0 || d > conf.StageLatencyMax {
			return nil, bad(f.key, f.text, "a duration in 0..1m such as 100us")
		}
		*f.dst = d
	}
	for _, f := range []struct {
		key string
		raw json.RawMessage
		dst *conf.Size
	}{{"strip_size", q.StripSize, &s.StripSize}, {"region_size", q.RegionSize, &s.RegionSize},
		{"rebuild_rate", q.RebuildRate, &s.RebuildRate}, {"convert_rate", q.ConvertRate, &s.ConvertRate}} {
		if len(f.raw) == 0 {
			continue
		}
		text := strings.Trim(string(f.raw), `"`)
		v, err := conf.ParseSize(text)
		if err != nil {
			return nil, bad(f.key, text, "a size such as 64KiB, or bytes")
		}
		*f.dst = v
	}
	if s.Service == conf.ServiceRaid0 && s.StripSize == 0 {
		s.StripSize = conf.StripSizeDefault
	}
	return h.createStage(s, q.Name)
}
