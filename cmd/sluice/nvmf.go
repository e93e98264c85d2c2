package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
	nvmftgt "github.com/sluice-storage/sluice/protocols/nvmf"
	nvmftcp "github.com/sluice-storage/sluice/protocols/nvmf/tcp"
	"github.com/sluice-storage/sluice/protocols/nvmf/tcp/pdu"
)

// conf and protocols/nvmf state the same limits; these fail to compile when they drift apart.
const (
	_ uint = conf.NVMfQueueDepthMax - nvmftgt.QueueDepthLimit
	_ uint = nvmftgt.QueueDepthLimit - conf.NVMfQueueDepthMax
	_ uint = conf.NVMfAdminQueueDepthMin - nvmftgt.AdminQueueDepthMin
	_ uint = nvmftgt.AdminQueueDepthMin - conf.NVMfAdminQueueDepthMin
	_ uint = conf.NVMfIOQpairsMax - nvmftgt.IOQpairsPerCtrlrMax
	_ uint = nvmftgt.IOQpairsPerCtrlrMax - conf.NVMfIOQpairsMax
	_ uint = conf.NVMfInCapsuleMin - nvmftgt.InCapsuleDataMin
	_ uint = nvmftgt.InCapsuleDataMin - conf.NVMfInCapsuleMin
	_ uint = conf.NVMfInCapsuleMax - nvmftgt.InCapsuleDataMax
	_ uint = nvmftgt.InCapsuleDataMax - conf.NVMfInCapsuleMax
	_ uint = conf.NVMfIOSizeMax - nvmftgt.MaxIOSizeLimit
	_ uint = nvmftgt.MaxIOSizeLimit - conf.NVMfIOSizeMax
	_ uint = conf.NVMfH2CDataMin - pdu.MAXH2CDataMin
	_ uint = pdu.MAXH2CDataMin - conf.NVMfH2CDataMin
	_ uint = conf.NVMfNamespacesMax - nvmftgt.NamespacesMax
	_ uint = nvmftgt.NamespacesMax - conf.NVMfNamespacesMax
	_ uint = conf.NVMfSerialLenMax - nvmftgt.SerialNumberLenMax
	_ uint = nvmftgt.SerialNumberLenMax - conf.NVMfSerialLenMax
	_ uint = conf.NVMfListenersMax - nvmftgt.ListenersPerSubsystemMax
	_ uint = nvmftgt.ListenersPerSubsystemMax - conf.NVMfListenersMax
)

// nvmfPart is the NVMe-oF target of a running daemon. It always runs once the bdevs do, so
// the nvmf_* RPCs work on a topology without targets.nvmf (SPDK's target exists from start;
// nvmf_create_transport adds its transport).
type nvmfPart struct {
	d      *daemon
	target *nvmftgt.Target
}

func (p *nvmfPart) name() string { return "nvmf" }

// stop stops listening, lets every connection finish its in-flight commands and close,
// tears the controllers down and detaches the namespaces, within the deadline.
func (p *nvmfPart) stop(deadline time.Time) error {
	p.d.debug.Unregister("nvmf_target")
	return p.target.Close(deadline)
}

// startNVMf makes the target and the topology's targets.nvmf: the TCP transport, the discovery
// listeners, then each subsystem with its hosts, namespaces and listeners. A listener that
// cannot be bound is logged and skipped: the others, and every subsystem, still serve.
func startNVMf(d *daemon) (part, error) {
	if d.bdevs == nil {
		return nil, errors.New("nvmf: the bdev layer did not start")
	}
	t, err := nvmftgt.NewTarget(nvmftgt.Options{Set: d.set, Bdevs: d.bdevs, Logger: d.log.With("part", "nvmf")})
	if err != nil {
		return nil, fmt.Errorf("nvmf: %w", err)
	}
	p := &nvmfPart{d: d, target: t}
	if err := d.debug.Register(t.Source()); err != nil {
		t.Close(time.Now().Add(shutdownTimeoutDefault))
		return nil, fmt.Errorf("nvmf: %w", err)
	}
	if err := p.configure(d.top.Targets.NVMf); err != nil {
		p.stop(time.Now().Add(shutdownTimeoutDefault))
		return nil, fmt.Errorf("targets.nvmf: %w", err)
	}
	return p, nil
}

// configure creates what the topology declares.
func (p *nvmfPart) configure(c *conf.NVMf) error {
	if c == nil {
		return nil
	}
	if _, err := nvmftcp.New(p.target, tcpOptions(&c.Transport)); err != nil {
		return fmt.Errorf("transport: %w", err)
	}
	for _, l := range c.Discovery.Listeners {
		p.listen("discovery", l)
	}
	for i := range c.Subsystems {
		s := &c.Subsystems[i]
		if _, err := p.target.CreateSubsystem(nvmftgt.SubsystemConfig{NQN: s.NQN, SerialNumber: s.SerialNumber,
			ModelNumber: s.ModelNumber, AllowAnyHost: s.AllowAnyHost, Hosts: s.Hosts, MaxNamespaces: uint32(s.MaxNamespaces)}); err != nil {
			return err
		}
		for _, ns := range s.Namespaces {
			if _, err := p.target.AddNamespace(s.NQN, nvmftgt.NamespaceConfig{NSID: uint32(ns.NSID), Bdev: ns.Bdev,
				UUID: ns.UUID, NGUID: ns.NGUID, EUI64: ns.EUI64}); err != nil {
				return err
			}
		}
		for _, l := range s.Listeners {
			p.listen(s.NQN, l)
		}
	}
	return nil
}

// listen adds a listener, logging a failure rather than failing the start: one address that
// is taken or gone must not take the target's other listeners down.
func (p *nvmfPart) listen(nqn string, l conf.NVMfListener) {
	addr := nvmftgt.ListenAddress{TrType: strings.ToUpper(l.Transport), TrAddr: l.Address, TrSvcID: strconv.Itoa(l.Port)}
	if err := p.target.AddListener(nqn, addr); err != nil {
		p.d.log.Error("nvmf listener not started; the other listeners serve", "subsys", nqn, "listen", addr.String(), "err", err)
	}
}

// tcpOptions converts the topology's transport options.
func tcpOptions(c *conf.NVMfTransport) nvmftcp.Options {
	o := nvmftcp.Options{MaxH2CData: uint32(c.MaxH2CData), NoHeaderDigest: c.NoHeaderDigest,
		NoDataDigest: c.NoDataDigest, NoC2HSuccess: c.NoC2HSuccess}
	o.MaxQueueDepth = uint16(c.MaxQueueDepth)
	o.MaxAdminQueueDepth = uint16(c.MaxAdminQueueDepth)
	o.MaxIOQpairsPerCtrlr = uint16(c.MaxIOQpairsPerCtrlr)
	o.InCapsuleDataSize = uint32(c.InCapsuleDataSize)
	o.MaxIOSize = uint32(c.MaxIOSize)
	o.KeepAliveGranularity = c.KeepAliveGranularity
	o.KeepAliveTimeoutMin = c.KeepAliveTimeoutMin
	o.KeepAliveTimeoutMax = c.KeepAliveTimeoutMax
	if c.Placement == conf.NVMfPlacementLeastConnections {
		o.Placement = nvmftcp.PlacementLeastConnections
	}
	return o
}

// nvmfTarget is the running target, for the RPC handlers (which run only once startDaemon
// has started every part, so d.parts no longer changes).
// nvmfParams is the start of every nvmf_* handler: the running target, and raw decoded
// strictly into p (an unknown or mistyped field is -32602 naming it).
func (d *daemon) nvmfParams(raw json.RawMessage, p any) (*nvmftgt.Target, error) {
	t, err := d.nvmfTarget()
	if err != nil {
		return nil, err
	}
	if err := jsonrpc.DecodeParams(raw, p); err != nil {
		return nil, err
	}
	return t, nil
}

func (d *daemon) nvmfTarget() (*nvmftgt.Target, error) {
	for _, p := range d.parts {
		if np, ok := p.(*nvmfPart); ok {
			return np.target, nil
		}
	}
	return nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "NVMe-oF target not running")
}

// nvmfMethods are SPDK's nvmf_* methods with SPDK's parameter names and result shapes, plus
// sluice_nvmf_disconnect_controller.
func nvmfMethods(d *daemon) []jsonrpc.Method {
	return []jsonrpc.Method{
		{Name: "nvmf_create_transport", Params: "trtype, max_queue_depth, max_aq_depth, max_io_qpairs_per_ctrlr, " +
			"in_capsule_data_size, max_io_size, c2h_success, kas, min_kato, max_kato, max_h2c_data, header_digest, " +
			"data_digest, placement (io_unit_size, num_shared_buffers, buf_cache_size, sock_priority, " +
			"abort_timeout_sec, acceptor_poll_rate: accepted, unused)", Handler: d.nvmfCreateTransport},
		{Name: "nvmf_get_transports", Params: "trtype (optional)", Handler: d.nvmfGetTransports},
		{Name: "nvmf_create_subsystem", Params: "nqn, serial_number, model_number, allow_any_host, max_namespaces, " +
			"min_cntlid, max_cntlid", Handler: d.nvmfCreateSubsystem},
		{Name: "nvmf_delete_subsystem", Params: "nqn", Handler: d.nvmfDeleteSubsystem},
		{Name: "nvmf_get_subsystems", Params: "nqn (optional)", Handler: d.nvmfGetSubsystems},
		{Name: "nvmf_subsystem_add_listener", Params: "nqn, listen_address {trtype, adrfam, traddr, trsvcid}",
			Handler: d.nvmfListener(true)},
		{Name: "nvmf_subsystem_remove_listener", Params: "nqn, listen_address {trtype, adrfam, traddr, trsvcid}",
			Handler: d.nvmfListener(false)},
		{Name: "nvmf_subsystem_add_ns", Params: "nqn, namespace {nsid, bdev_name, uuid, nguid, eui64}",
			Handler: d.nvmfAddNamespace},
		{Name: "nvmf_subsystem_remove_ns", Params: "nqn, nsid", Handler: d.nvmfRemoveNamespace},
		{Name: "nvmf_subsystem_add_host", Params: "nqn, host", Handler: d.nvmfHost(true)},
		{Name: "nvmf_subsystem_remove_host", Params: "nqn, host", Handler: d.nvmfHost(false)},
		{Name: "nvmf_subsystem_allow_any_host", Params: "nqn, allow_any_host", Handler: d.nvmfAllowAnyHost},
		{Name: "nvmf_subsystem_get_controllers", Params: "nqn", Handler: d.nvmfGetControllers},
		{Name: "nvmf_subsystem_get_qpairs", Params: "nqn", Handler: d.nvmfGetQpairs},
		{Name: "nvmf_get_stats", Params: "", Handler: d.nvmfGetStats},
		{Name: "sluice_nvmf_disconnect_controller", Params: "nqn, cntlid", Handler: d.nvmfDisconnectController},
	}
}

// nvmfError turns a control-plane error into the RPC's answer.
func nvmfError(err error) error {
	if err == nil {
		return nil
	}
	return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: %v", err)
}

// nvmfCreateTransportParams are nvmf_create_transport's, SPDK's names. The pointer fields are
// optional; the last group is SPDK's buffer and socket tuning, taken so scripts work and not
// used (buffers are the bdev layer's pools).
type nvmfCreateTransportParams struct {
	TrType              string  `json:"trtype"`
	TgtName             string  `json:"tgt_name"`
	MaxQueueDepth       *uint16 `json:"max_queue_depth"`
	MaxAQDepth          *uint16 `json:"max_aq_depth"`
	MaxIOQpairsPerCtrlr *uint16 `json:"max_io_qpairs_per_ctrlr"`
	InCapsuleDataSize   *uint32 `json:"in_capsule_data_size"`
	MaxIOSize           *uint32 `json:"max_io_size"`
	C2HSuccess          *bool   `json:"c2h_success"`
	KAS                 *uint16 `json:"kas"`
	MinKATO             *uint32 `json:"min_kato"`
	MaxKATO             *uint32 `json:"max_kato"`
	MaxH2CData          *uint32 `json:"max_h2c_data"`
	HeaderDigest        *bool   `json:"header_digest"`
	DataDigest          *bool   `json:"data_digest"`
	Placement           string  `json:"placement"`

	IOUnitSize       uint32 `json:"io_unit_size"`
	NumSharedBuffers uint32 `json:"num_shared_buffers"`
	BufCacheSize     uint32 `json:"buf_cache_size"`
	SockPriority     uint32 `json:"sock_priority"`
	AbortTimeoutSec  uint32 `json:"abort_timeout_sec"`
	AcceptorPollRate uint32 `json:"acceptor_poll_rate"`
	Zcopy            bool   `json:"zcopy"`
	DIFInsertOrStrip bool   `json:"dif_insert_or_strip"`
}

func (d *daemon) nvmfCreateTransport(_ context.Context, raw json.RawMessage) (any, error) {
	var p nvmfCreateTransportParams
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	switch {
	case !strings.EqualFold(p.TrType, nvmftcp.Name):
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: trtype %q, want TCP (RDMA: not supported yet)", p.TrType)
	case p.Zcopy || p.DIFInsertOrStrip:
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: zcopy and dif_insert_or_strip are not supported")
	}
	var o nvmftcp.Options
	set16 := func(dst *uint16, v *uint16) {
		if v != nil {
			*dst = *v
		}
	}
	set32 := func(dst *uint32, v *uint32) {
		if v != nil {
			*dst = *v
		}
	}
	set16(&o.MaxQueueDepth, p.MaxQueueDepth)
	set16(&o.MaxAdminQueueDepth, p.MaxAQDepth)
	set16(&o.MaxIOQpairsPerCtrlr, p.MaxIOQpairsPerCtrlr)
	set32(&o.InCapsuleDataSize, p.InCapsuleDataSize)
	set32(&o.MaxIOSize, p.MaxIOSize)
	set32(&o.MaxH2CData, p.MaxH2CData)
	if p.KAS != nil {
		o.KeepAliveGranularity = time.Duration(*p.KAS) * 100 * time.Millisecond
	}
	if p.MinKATO != nil {
		o.KeepAliveTimeoutMin = time.Duration(*p.MinKATO) * time.Millisecond
	}
	if p.MaxKATO != nil {
		o.KeepAliveTimeoutMax = time.Duration(*p.MaxKATO) * time.Millisecond
	}
	o.NoC2HSuccess = p.C2HSuccess != nil && !*p.C2HSuccess
	o.NoHeaderDigest = p.HeaderDigest != nil && !*p.HeaderDigest
	o.NoDataDigest = p.DataDigest != nil && !*p.DataDigest
	switch p.Placement {
	case "", string(conf.NVMfPlacementRoundRobin):
	case string(conf.NVMfPlacementLeastConnections):
		o.Placement = nvmftcp.PlacementLeastConnections
	default:
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: placement %q, want round-robin or least-connections", p.Placement)
	}
	if _, err := nvmftcp.New(t, o); err != nil {
		return nil, nvmfError(err)
	}
	return true, nil
}

// nvmfTransportView is one transport in nvmf_get_transports, SPDK's shape.
type nvmfTransportView struct {
	TrType              string `json:"trtype"`
	MaxQueueDepth       uint16 `json:"max_queue_depth"`
	MaxIOQpairsPerCtrlr uint16 `json:"max_io_qpairs_per_ctrlr"`
	InCapsuleDataSize   uint32 `json:"in_capsule_data_size"`
	MaxIOSize           uint32 `json:"max_io_size"`
	MaxAQDepth          uint16 `json:"max_aq_depth"`
	C2HSuccess          bool   `json:"c2h_success"`
	KAS                 uint16 `json:"kas"`
	MinKATO             int64  `json:"min_kato"`
	MaxKATO             int64  `json:"max_kato"`
	MaxH2CData          uint32 `json:"max_h2c_data"`
	HeaderDigest        bool   `json:"header_digest"`
	DataDigest          bool   `json:"data_digest"`
	Placement           string `json:"placement"`
}

func (d *daemon) nvmfGetTransports(_ context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		TrType  string `json:"trtype"`
		TgtName string `json:"tgt_name"`
	}
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	out := []nvmfTransportView{}
	for _, tr := range t.Transports() {
		tt, ok := tr.(*nvmftcp.Transport)
		if !ok || (p.TrType != "" && !strings.EqualFold(p.TrType, tr.Name())) {
			continue
		}
		o := tt.TCPOptions()
		out = append(out, nvmfTransportView{TrType: tr.Name(), MaxQueueDepth: o.MaxQueueDepth,
			MaxIOQpairsPerCtrlr: o.MaxIOQpairsPerCtrlr, InCapsuleDataSize: o.InCapsuleDataSize, MaxIOSize: o.MaxIOSize,
			MaxAQDepth: o.MaxAdminQueueDepth, C2HSuccess: !o.NoC2HSuccess, KAS: uint16(o.KeepAliveGranularity / (100 * time.Millisecond)),
			MinKATO: o.KeepAliveTimeoutMin.Milliseconds(), MaxKATO: o.KeepAliveTimeoutMax.Milliseconds(),
			MaxH2CData: o.MaxH2CData, HeaderDigest: !o.NoHeaderDigest, DataDigest: !o.NoDataDigest, Placement: o.Placement.String()})
	}
	if p.TrType != "" && len(out) == 0 {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: transport %q not created", p.TrType)
	}
	return out, nil
}

func (d *daemon) nvmfCreateSubsystem(_ context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		NQN           string `json:"nqn"`
		TgtName       string `json:"tgt_name"`
		SerialNumber  string `json:"serial_number"`
		ModelNumber   string `json:"model_number"`
		AllowAnyHost  bool   `json:"allow_any_host"`
		MaxNamespaces uint32 `json:"max_namespaces"`
		MinCNTLID     uint16 `json:"min_cntlid"`
		MaxCNTLID     uint16 `json:"max_cntlid"`
		ANAReporting  bool   `json:"ana_reporting"`
	}
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	if p.ANAReporting {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: ana_reporting is not supported")
	}
	if p.SerialNumber == "" {
		p.SerialNumber = conf.NVMfSerialOf(p.NQN) // stable, as the topology's default
	}
	if p.MaxNamespaces == 0 {
		p.MaxNamespaces = conf.NVMfNamespacesDefault // SPDK's default, and the topology's
	}
	_, err = t.CreateSubsystem(nvmftgt.SubsystemConfig{NQN: p.NQN, SerialNumber: p.SerialNumber, ModelNumber: p.ModelNumber,
		AllowAnyHost: p.AllowAnyHost, MaxNamespaces: p.MaxNamespaces, MinCNTLID: p.MinCNTLID, MaxCNTLID: p.MaxCNTLID})
	return true, nvmfError(err)
}

type nvmfNQNParam struct {
	NQN     string `json:"nqn"`
	TgtName string `json:"tgt_name"`
}

func (d *daemon) nvmfDeleteSubsystem(_ context.Context, raw json.RawMessage) (any, error) {
	var p nvmfNQNParam
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	return true, nvmfError(t.DeleteSubsystem(p.NQN, time.Now().Add(shutdownTimeoutDefault)))
}

func (d *daemon) nvmfGetSubsystems(_ context.Context, raw json.RawMessage) (any, error) {
	var p nvmfNQNParam
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	out := []nvmftgt.SubsystemInfo{}
	for _, s := range t.Subsystems() {
		if p.NQN == "" || p.NQN == s.NQN() {
			info := s.Info()
			info.Stats = nil // SPDK's shape; the counters are on the debug endpoint and nvmf_get_stats
			out = append(out, info)
		}
	}
	if p.NQN != "" && len(out) == 0 {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: subsystem %q not found", p.NQN)
	}
	return out, nil
}

func (d *daemon) nvmfListener(add bool) jsonrpc.Handler {
	return func(_ context.Context, raw json.RawMessage) (any, error) {
		var p struct {
			NQN           string                `json:"nqn"`
			TgtName       string                `json:"tgt_name"`
			ListenAddress nvmftgt.ListenAddress `json:"listen_address"`
			SecureChannel bool                  `json:"secure_channel"`
			ANAState      string                `json:"ana_state"`
			SockImpl      string                `json:"sock_impl"`
		}
		t, err := d.nvmfParams(raw, &p)
		if err != nil {
			return nil, err
		}
		if p.SecureChannel {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: secure_channel (TLS) is not supported")
		}
		if add {
			return true, nvmfError(t.AddListener(p.NQN, p.ListenAddress))
		}
		return true, nvmfError(t.RemoveListener(p.NQN, p.ListenAddress))
	}
}

func (d *daemon) nvmfAddNamespace(_ context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		NQN       string `json:"nqn"`
		TgtName   string `json:"tgt_name"`
		Namespace struct {
			NSID     uint32 `json:"nsid"`
			BdevName string `json:"bdev_name"`
			UUID     string `json:"uuid"`
			NGUID    string `json:"nguid"`
			EUI64    string `json:"eui64"`
			PTPLFile string `json:"ptpl_file"`
			ANAGrpID uint32 `json:"anagrpid"`
		} `json:"namespace"`
	}
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	ns := p.Namespace
	cfg := nvmftgt.NamespaceConfig{NSID: ns.NSID, Bdev: ns.BdevName}
	if ns.UUID != "" {
		if cfg.UUID, err = uuid.Parse(ns.UUID); err != nil {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: namespace.uuid %q: %v", ns.UUID, err)
		}
	}
	if err := hexField("namespace.nguid", ns.NGUID, cfg.NGUID[:]); err != nil {
		return nil, err
	}
	if err := hexField("namespace.eui64", ns.EUI64, cfg.EUI64[:]); err != nil {
		return nil, err
	}
	if ns.PTPLFile != "" || ns.ANAGrpID != 0 {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: reservations (ptpl_file) and ANA groups are not supported")
	}
	nsid, err := t.AddNamespace(p.NQN, cfg)
	if err != nil {
		return nil, nvmfError(err)
	}
	return nsid, nil
}

// hexField decodes an optional hex identifier of exactly len(dst) bytes; SPDK writes them in
// upper case and lets dashes group the digits.
func hexField(name, s string, dst []byte) error {
	if s == "" {
		return nil
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != len(dst) {
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: %s %q, want %d hex digits", name, s, 2*len(dst))
	}
	copy(dst, b)
	return nil
}

func (d *daemon) nvmfRemoveNamespace(_ context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		NQN     string `json:"nqn"`
		TgtName string `json:"tgt_name"`
		NSID    uint32 `json:"nsid"`
	}
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	return true, nvmfError(t.RemoveNamespace(p.NQN, p.NSID))
}

func (d *daemon) nvmfHost(add bool) jsonrpc.Handler {
	return func(_ context.Context, raw json.RawMessage) (any, error) {
		var p struct {
			NQN     string `json:"nqn"`
			TgtName string `json:"tgt_name"`
			Host    string `json:"host"`
			PSK     string `json:"psk"`
		}
		t, err := d.nvmfParams(raw, &p)
		if err != nil {
			return nil, err
		}
		if p.PSK != "" {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: psk (TLS) is not supported")
		}
		if add {
			return true, nvmfError(t.AddHost(p.NQN, p.Host))
		}
		return true, nvmfError(t.RemoveHost(p.NQN, p.Host))
	}
}

func (d *daemon) nvmfAllowAnyHost(_ context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		NQN          string `json:"nqn"`
		TgtName      string `json:"tgt_name"`
		AllowAnyHost bool   `json:"allow_any_host"`
	}
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	return true, nvmfError(t.SetAllowAnyHost(p.NQN, p.AllowAnyHost))
}

func (d *daemon) nvmfSubsystemParam(raw json.RawMessage) (*nvmftgt.Subsystem, error) {
	var p nvmfNQNParam
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	s, err := t.Subsystem(p.NQN)
	return s, nvmfError(err)
}

func (d *daemon) nvmfGetControllers(_ context.Context, raw json.RawMessage) (any, error) {
	s, err := d.nvmfSubsystemParam(raw)
	if err != nil {
		return nil, err
	}
	return s.Controllers(), nil
}

func (d *daemon) nvmfGetQpairs(_ context.Context, raw json.RawMessage) (any, error) {
	s, err := d.nvmfSubsystemParam(raw)
	if err != nil {
		return nil, err
	}
	return s.Qpairs(), nil
}

// nvmfPollGroupView is one poll group of nvmf_get_stats: SPDK's counters and its transports
// entry, with ours.
type nvmfPollGroupView struct {
	nvmftgt.PollGroupStats
	Transports []map[string]any `json:"transports"`
}

func (d *daemon) nvmfGetStats(_ context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		TgtName string `json:"tgt_name"`
	}
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	st := t.Stats()
	groups := make([]nvmfPollGroupView, len(st.PollGroups))
	for i, g := range st.PollGroups {
		groups[i] = nvmfPollGroupView{PollGroupStats: g, Transports: []map[string]any{}}
	}
	for _, tr := range t.Transports() {
		if tt, ok := tr.(*nvmftcp.Transport); ok {
			gs, terms := tt.Stats()
			for _, g := range gs {
				if g.Reactor < len(groups) {
					groups[g.Reactor].Transports = append(groups[g.Reactor].Transports, map[string]any{
						"trtype": tr.Name(), "connections": g.Connections, "accepted": g.Accepted, "terminations": terms,
						"pdus_in": g.PDUsIn, "pdus_out": g.PDUsOut, "send_blocked": g.SendBlocked, "buffer_waits": g.BufferWaits})
				}
			}
		}
	}
	return map[string]any{"tick_rate": st.TickRate, "poll_groups": groups}, nil
}

func (d *daemon) nvmfDisconnectController(_ context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		NQN    string `json:"nqn"`
		CNTLID uint16 `json:"cntlid"`
	}
	t, err := d.nvmfParams(raw, &p)
	if err != nil {
		return nil, err
	}
	return true, nvmfError(t.DisconnectController(p.NQN, p.CNTLID))
}

// saveTopology writes the running target as targets.nvmf (saver), runtime changes included.
func (p *nvmfPart) saveTopology(top *conf.Topology) {
	var tcpTr *nvmftcp.Transport
	for _, tr := range p.target.Transports() {
		if tt, ok := tr.(*nvmftcp.Transport); ok {
			tcpTr = tt
		}
	}
	subs := p.target.Subsystems()
	if tcpTr == nil && len(subs) <= 1 {
		return // nothing beyond the discovery subsystem
	}
	c := &conf.NVMf{}
	if tcpTr != nil {
		o := tcpTr.TCPOptions()
		c.Transport = conf.NVMfTransport{MaxQueueDepth: int(o.MaxQueueDepth), MaxAdminQueueDepth: int(o.MaxAdminQueueDepth),
			MaxIOQpairsPerCtrlr: int(o.MaxIOQpairsPerCtrlr), InCapsuleDataSize: conf.Size(o.InCapsuleDataSize),
			MaxIOSize: conf.Size(o.MaxIOSize), MaxH2CData: conf.Size(o.MaxH2CData), NoHeaderDigest: o.NoHeaderDigest,
			NoDataDigest: o.NoDataDigest, NoC2HSuccess: o.NoC2HSuccess, KeepAliveGranularity: o.KeepAliveGranularity,
			KeepAliveTimeoutMin: o.KeepAliveTimeoutMin, KeepAliveTimeoutMax: o.KeepAliveTimeoutMax,
			Placement: conf.NVMfPlacement(o.Placement.String())}
	}
	for _, s := range subs {
		info := s.Info()
		listeners := confListeners(info.ListenAddresses)
		if info.Subtype == "Discovery" {
			c.Discovery.Listeners = listeners
			continue
		}
		sub := conf.NVMfSubsystem{NQN: info.NQN, SerialNumber: info.SerialNumber, ModelNumber: info.ModelNumber,
			AllowAnyHost: info.AllowAnyHost, MaxNamespaces: int(info.MaxNamespaces), Listeners: listeners}
		for _, h := range info.Hosts {
			sub.Hosts = append(sub.Hosts, h.NQN)
		}
		for _, ns := range info.Namespaces {
			cn := conf.NVMfNamespace{NSID: int(ns.NSID), Bdev: ns.BdevName}
			cn.UUID, _ = uuid.Parse(ns.UUID)
			hex.Decode(cn.NGUID[:], []byte(ns.NGUID))
			hex.Decode(cn.EUI64[:], []byte(ns.EUI64))
			sub.Namespaces = append(sub.Namespaces, cn)
		}
		c.Subsystems = append(c.Subsystems, sub)
	}
	top.Targets.NVMf = c
}

func confListeners(addrs []nvmftgt.ListenAddress) []conf.NVMfListener {
	var out []conf.NVMfListener
	for _, a := range addrs {
		port, _ := strconv.Atoi(a.TrSvcID)
		out = append(out, conf.NVMfListener{Transport: strings.ToLower(a.TrType), Address: a.TrAddr, Port: port})
	}
	return out
}

// saveCalls emits the nvmf subsystem's calls (saver): the transport, then each subsystem with
// its listeners, namespaces and hosts, as load_config replays them.
func (p *nvmfPart) saveCalls(out []spdkSubsystem) []spdkSubsystem {
	sub := spdkSubsystem{Subsystem: "nvmf", Config: []spdkCall{}}
	for _, tr := range p.target.Transports() {
		tt, ok := tr.(*nvmftcp.Transport)
		if !ok {
			continue
		}
		o := tt.TCPOptions()
		sub.Config = append(sub.Config, spdkCall{Method: "nvmf_create_transport", Params: map[string]any{
			"trtype": tr.Name(), "max_queue_depth": o.MaxQueueDepth, "max_aq_depth": o.MaxAdminQueueDepth,
			"max_io_qpairs_per_ctrlr": o.MaxIOQpairsPerCtrlr, "in_capsule_data_size": o.InCapsuleDataSize,
			"max_io_size": o.MaxIOSize, "c2h_success": !o.NoC2HSuccess, "kas": uint16(o.KeepAliveGranularity / (100 * time.Millisecond)),
			"min_kato": o.KeepAliveTimeoutMin.Milliseconds(), "max_kato": o.KeepAliveTimeoutMax.Milliseconds(),
			"max_h2c_data": o.MaxH2CData, "header_digest": !o.NoHeaderDigest, "data_digest": !o.NoDataDigest,
			"placement": o.Placement.String()}})
	}
	for _, s := range p.target.Subsystems() {
		info := s.Info()
		if info.Subtype != "Discovery" {
			sub.Config = append(sub.Config, spdkCall{Method: "nvmf_create_subsystem", Params: map[string]any{
				"nqn": info.NQN, "serial_number": info.SerialNumber, "model_number": info.ModelNumber,
				"allow_any_host": info.AllowAnyHost, "max_namespaces": info.MaxNamespaces,
				"min_cntlid": info.MinCNTLID, "max_cntlid": info.MaxCNTLID}})
			for _, ns := range info.Namespaces {
				n := map[string]any{"nsid": ns.NSID, "bdev_name": ns.BdevName, "uuid": ns.UUID}
				if ns.NGUID != "" {
					n["nguid"] = ns.NGUID
				}
				if ns.EUI64 != "" {
					n["eui64"] = ns.EUI64
				}
				sub.Config = append(sub.Config, spdkCall{Method: "nvmf_subsystem_add_ns", Params: map[string]any{
					"nqn": info.NQN, "namespace": n}})
			}
			for _, h := range info.Hosts {
				sub.Config = append(sub.Config, spdkCall{Method: "nvmf_subsystem_add_host", Params: map[string]any{
					"nqn": info.NQN, "host": h.NQN}})
			}
		}
		for _, a := range info.ListenAddresses {
			sub.Config = append(sub.Config, spdkCall{Method: "nvmf_subsystem_add_listener", Params: map[string]any{
				"nqn": info.NQN, "listen_address": a}})
		}
	}
	return append(out, sub)
}
