package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/actors"
	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/drivers/null"
	"github.com/sluice-storage/sluice/drivers/nvmf"
	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/drivers/uring"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
	"github.com/sluice-storage/sluice/perf"
	"github.com/sluice-storage/sluice/services/bdev"
)

// registerDrivers registers every back end by name, explicitly (no init()).
// The null driver zeroes read buffers, as conf documents: a host reading a
// null namespace sees zeros, never bytes of an earlier I/O.
func registerDrivers(reg *bdev.Registry) error {
	return errors.Join(
		reg.RegisterDriver(null.Name, null.Driver{}),
		reg.RegisterDriver(malloc.Name, malloc.Driver{}),
		reg.RegisterDriver(uring.Name, uring.Driver{}),
	)
}

// bdevsPart is the block layer of a running daemon.
type bdevsPart struct {
	d   *daemon
	reg *bdev.Registry
}

func (p *bdevsPart) name() string { return "bdevs" }

// stop closes every bdev: channels on their reactors, then the back ends
// (files flushed and closed, memory unmapped). Targets stopped first, so no
// I/O is in flight.
func (p *bdevsPart) stop(time.Time) error {
	p.d.debug.Unregister("bdevs")
	p.d.debug.Unregister("nvmf_controllers")
	err := p.reg.Close() // the registry first: it closes the nvmf bdevs' channels
	return errors.Join(err, p.d.nvmf.Close())
}

// startBdevs makes the registry on the daemon's reactors and creates the
// topology's bdevs in file order. An nvmf bdev attaches its controller here,
// before the stages and targets start (attachAtStart), so what they name
// among its namespaces exists or the start fails saying which is missing
// (checkRemoteNamespaces): a daemon never serves half a topology.
func startBdevs(d *daemon) (part, error) {
	reg, err := bdev.NewRegistry(d.set, bdev.Options{})
	if err != nil {
		return nil, err
	}
	p := &bdevsPart{d: d, reg: reg}
	d.nvmf = nvmf.NewManager(reg, d.log)
	fail := func(err error) (part, error) {
		reg.Close() // the registry first: it closes the nvmf bdevs' channels
		d.nvmf.Close()
		return nil, err
	}
	if err := registerDrivers(reg); err != nil {
		return fail(err)
	}
	attached := map[string][]string{} // nvmf bdev -> its namespaces' bdevs
	for i, b := range d.top.Bdevs {
		if b.Driver == conf.DriverNVMf {
			names, err := attachAtStart(d, b)
			if err != nil {
				return fail(fmt.Errorf("bdevs[%d] %s: %w", i, b.Name, err))
			}
			attached[b.Name] = names
			d.log.Info("nvmf bdev attached", "bdev", b.Name, "trid", attachOptionsOf(b).TransportID.String(),
				"namespaces", strings.Join(names, ","))
			continue
		}
		if _, err := reg.Create(perf.SpecOf(b)); err != nil {
			return fail(fmt.Errorf("bdevs: %w", err))
		}
		d.log.Info("bdev created", "bdev", b.Name, "driver", string(b.Driver), "size", b.Size.String(),
			"block_size", uint64(b.BlockSize))
	}
	if err := checkRemoteNamespaces(d.top, attached); err != nil {
		return fail(err)
	}
	if err := errors.Join(d.debug.Register(reg.Source()), d.debug.Register(nvmfSource{d.nvmf})); err != nil {
		return fail(err)
	}
	d.bdevs = reg
	return p, nil
}

// Limits of attaching a topology's nvmf bdevs at start.
const (
	// attachWaitMax bounds the time the start spends on one controller: a
	// target started beside this daemon (by the same service manager) has
	// time to come up, and a wrong address still fails the start well
	// within a service manager's patience.
	attachWaitMax = 30 * time.Second
	// attachAttemptTimeout bounds one attempt: a target that accepts the
	// connection and then says nothing must not hold the start (the
	// driver's own reconnect attempts use the same bound).
	attachAttemptTimeout = 15 * time.Second
)

// conf restates drivers/nvmf's and its host's limits; these fail to compile when they drift apart.
const (
	_ uint = conf.NVMfIOQueueSizeDefault - host.IOQueueDepthDefault
	_ uint = host.IOQueueDepthDefault - conf.NVMfIOQueueSizeDefault
	_ uint = conf.NVMfIOQueueSizeMax - host.QueueDepthMax
	_ uint = host.QueueDepthMax - conf.NVMfIOQueueSizeMax
	_ uint = conf.NVMfNumIOQueuesDefault - host.IOQueuesDefault
	_ uint = host.IOQueuesDefault - conf.NVMfNumIOQueuesDefault
	_ uint = conf.NVMfControllerNameLenMax - (bdev.NameLenMax - 6) // drivers/nvmf's Manager.validate
	_ uint = (bdev.NameLenMax - 6) - conf.NVMfControllerNameLenMax
	_ uint = conf.NameLenMax - bdev.NameLenMax
	_ uint = bdev.NameLenMax - conf.NameLenMax
)

// attachOptionsOf converts an nvmf bdev of the topology to the driver's
// options, as bdev_nvme_attach_controller's handler does its parameters.
func attachOptionsOf(b conf.Bdev) nvmf.AttachOptions {
	r := b.Remote
	if r == nil { // conf's C1: never for a validated topology
		r = &conf.NVMfRemote{}
	}
	return nvmf.AttachOptions{
		Name: b.Name,
		TransportID: host.TransportID{TrType: r.TrType, AdrFam: r.AdrFam, TrAddr: r.TrAddr,
			TrSvcID: strconv.Itoa(r.TrSvcID), SubNQN: r.SubNQN, HostNQN: r.HostNQN},
		Host:         host.ControllerOptions{HeaderDigest: r.HeaderDigest, DataDigest: r.DataDigest, IOQueues: r.NumIOQueues},
		IOQueueDepth: r.IOQueueSize,
		Recovery: nvmf.Recovery{ReconnectDelay: r.ReconnectDelay, CtrlrLossTimeout: r.CtrlrLossTimeout,
			FastIOFailTimeout: r.FastIOFailTimeout},
	}
}

// attachAtStart attaches an nvmf bdev's controller and returns its
// namespaces' bdev names. The first connection follows the policy that
// governs a lost one: attempts every reconnect_delay_sec while
// ctrlr_loss_timeout_sec allows (0: one attempt; -1: until attachWaitMax),
// and never past attachWaitMax; then the start fails with the last error.
// SPDK's load_config fails the same way when an attach in it cannot
// connect; waiting in the background instead would start the stages and
// targets on it without their bases.
func attachAtStart(d *daemon, b conf.Bdev) ([]string, error) {
	o := attachOptionsOf(b)
	rec := o.Recovery
	limit := attachWaitMax
	if rec.CtrlrLossTimeout >= 0 {
		limit = min(limit, rec.CtrlrLossTimeout)
	}
	begun := time.Now()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), attachAttemptTimeout)
		names, err := d.nvmf.Attach(ctx, o)
		cancel()
		if err == nil {
			return names, nil
		}
		if rec.ReconnectDelay <= 0 || time.Since(begun)+rec.ReconnectDelay > limit {
			what := "attach failed"
			if trid := o.TransportID.String(); !strings.Contains(err.Error(), trid) {
				what += " (" + trid + ")"
			}
			return nil, fmt.Errorf("%s after %d attempt(s) in %v (ctrlr_loss_timeout_sec %d, reconnect_delay_sec %d, at most %v at start): %w",
				what, attempt, time.Since(begun).Round(time.Millisecond), int64(rec.CtrlrLossTimeout/time.Second),
				int64(rec.ReconnectDelay/time.Second), attachWaitMax, err)
		}
		d.log.Warn("nvmf bdev: attach failed; retrying", "bdev", b.Name, "attempt", attempt,
			"retry_in", rec.ReconnectDelay.String(), "err", err)
		time.Sleep(rec.ReconnectDelay) // the control plane's start, not a reactor
	}
}

// checkRemoteNamespaces reports every name the topology uses of a namespace
// of an nvmf bdev that its controller, now attached, does not have: conf
// accepts any NSID in range, since it cannot know (conf's C2).
func checkRemoteNamespaces(top *conf.Topology, attached map[string][]string) error {
	type ref struct{ path, name string }
	var refs []ref
	for i, s := range top.Stages {
		for j, base := range s.Bases {
			p := fmt.Sprintf("stages[%d].base", i)
			if len(s.Bases) > 1 {
				p = fmt.Sprintf("stages[%d].bases[%d]", i, j)
			}
			refs = append(refs, ref{p, base})
		}
		if s.Metadata != "" {
			refs = append(refs, ref{fmt.Sprintf("stages[%d].metadata", i), s.Metadata})
		}
	}
	if n := top.Targets.NVMf; n != nil {
		for i, sub := range n.Subsystems {
			for j, ns := range sub.Namespaces {
				refs = append(refs, ref{fmt.Sprintf("targets.nvmf.subsystems[%d].namespaces[%d].bdev", i, j), ns.Bdev})
			}
		}
	}
	if is := top.Targets.ISCSI; is != nil {
		for i, node := range is.Nodes {
			for j, l := range node.LUNs {
				refs = append(refs, ref{fmt.Sprintf("targets.iscsi.target_nodes[%d].luns[%d].bdev", i, j), l.Bdev})
			}
		}
	}
	var errs []error
	for _, r := range refs {
		ctrl, _, ok := conf.NVMfNamespaceOf(r.name)
		names, isRemote := attached[ctrl]
		if !ok || !isRemote || slices.Contains(names, r.name) {
			continue
		}
		has := "no namespace"
		if len(names) > 0 {
			has = "namespaces " + strings.Join(names, ", ")
		}
		errs = append(errs, fmt.Errorf("%s: %s: not a namespace of nvmf bdev %s, whose controller has %s",
			r.path, r.name, ctrl, has))
	}
	return errors.Join(errs...)
}

// bdevMethods are SPDK's bdev methods for the back ends that exist.
func bdevMethods(d *daemon) []jsonrpc.Method {
	return []jsonrpc.Method{
		{Name: "bdev_get_bdevs", Params: "name (optional), timeout (ms, ignored)", Handler: d.bdevGetBdevs},
		{Name: "bdev_get_iostat", Params: "name (optional)", Handler: d.bdevGetIOStat},
		{Name: "bdev_malloc_create", Params: "name, num_blocks, block_size, uuid", Handler: d.bdevCreate(malloc.Name, "Malloc")},
		{Name: "bdev_malloc_delete", Params: "name", Handler: d.bdevDelete},
		{Name: "bdev_null_create", Params: "name, num_blocks, block_size, uuid", Handler: d.bdevCreate(null.Name, "Null")},
		{Name: "bdev_null_delete", Params: "name", Handler: d.bdevDelete},
		{Name: "bdev_uring_create", Params: "filename, name, block_size, uuid", Handler: d.bdevUringCreate},
		{Name: "bdev_uring_delete", Params: "name", Handler: d.bdevDelete},
	}
}

// bdevView is one bdev in bdev_get_bdevs, in SPDK's shape.
type bdevView struct {
	Name           string          `json:"name"`
	Aliases        []string        `json:"aliases"`
	ProductName    string          `json:"product_name"`
	BlockSize      uint32          `json:"block_size"`
	NumBlocks      uint64          `json:"num_blocks"`
	UUID           string          `json:"uuid"`
	Claimed        bool            `json:"claimed"`
	Zoned          bool            `json:"zoned"`
	SupportedTypes map[string]bool `json:"supported_io_types"`
	DriverSpecific map[string]any  `json:"driver_specific"`
}

// productNames are SPDK's product_name strings, so tools keyed on them work.
var productNames = map[string]string{
	malloc.Name: "Malloc disk", null.Name: "Null disk", uring.Name: "URING bdev", nvmf.Name: nvmf.ProductName,
}

// stageProductNames are SPDK's product_name strings of its virtual bdevs,
// by our service name (raid0, concat and replica are SPDK's raid levels;
// qos is a bdev of its own here, a property of a bdev in SPDK).
var stageProductNames = map[string]string{
	"passthru": "passthru", "delay": "delay", "error": "Error Injection Disk", "crypto": "crypto",
	"raid0": "Raid Volume", "concat": "Raid Volume", "replica": "Raid Volume", "qos": "QoS disk",
}

// productName is b's product_name: its driver's, or its stage service's.
func productName(b *bdev.Bdev) string {
	if b.Driver() != "" {
		return productNames[b.Driver()]
	}
	if s, ok := b.Backend().(interface{ Service() string }); ok {
		return stageProductNames[s.Service()]
	}
	return ""
}

func (d *daemon) bdevGetBdevs(_ context.Context, p json.RawMessage) (any, error) {
	var params struct {
		Name    string `json:"name"`
		Timeout int    `json:"timeout"`
	}
	if err := jsonrpc.DecodeParams(p, &params); err != nil {
		return nil, err
	}
	out := []bdevView{}
	for _, b := range d.bdevs.Bdevs() {
		if params.Name != "" && b.Name() != params.Name && b.UUID().String() != params.Name {
			continue
		}
		types := b.IOTypes()
		v := bdevView{
			Name: b.Name(), Aliases: []string{}, ProductName: productName(b),
			BlockSize: b.BlockSize(), NumBlocks: b.Blocks(), UUID: b.UUID().String(),
			Claimed: d.bdevs.Claimer(b) != "",
			SupportedTypes: map[string]bool{
				"read": types.Has(bdev.IORead), "write": types.Has(bdev.IOWrite),
				"unmap": types.Has(bdev.IOUnmap), "flush": types.Has(bdev.IOFlush),
				"reset": types.Has(bdev.IOReset), "write_zeroes": types.Has(bdev.IOWriteZeroes),
				"compare": types.Has(bdev.IOCompare), "compare_and_write": types.Has(bdev.IOCompareAndWrite),
			},
			DriverSpecific: map[string]any{},
		}
		if b.Driver() == uring.Name {
			v.DriverSpecific["uring"] = map[string]any{"filename": d.bdevPaths[b.Name()]}
		}
		out = append(out, v)
	}
	if params.Name != "" && len(out) == 0 {
		return nil, jsonrpc.Errorf(-19, "No such device") // SPDK answers -ENODEV
	}
	return out, nil
}

// bdevCreateParams are bdev_malloc_create's and bdev_null_create's.
type bdevCreateParams struct {
	Name      string `json:"name"`
	NumBlocks uint64 `json:"num_blocks"`
	BlockSize uint32 `json:"block_size"`
	UUID      string `json:"uuid"`
}

// bdevCreate answers bdev_malloc_create and bdev_null_create: the new
// bdev's name, as SPDK does. A missing name gets prefix and the next free
// number (Malloc0, Malloc1, …).
func (d *daemon) bdevCreate(driver, prefix string) jsonrpc.Handler {
	return func(_ context.Context, p json.RawMessage) (any, error) {
		var params bdevCreateParams
		if err := jsonrpc.DecodeParams(p, &params); err != nil {
			return nil, err
		}
		spec := bdev.Spec{Name: params.Name, Driver: driver, BlockSize: params.BlockSize, Blocks: params.NumBlocks}
		if spec.Name == "" {
			spec.Name = d.freeBdevName(prefix)
		}
		if err := parseUUID(params.UUID, &spec); err != nil {
			return nil, err
		}
		if spec.BlockSize == 0 {
			spec.BlockSize = 512
		}
		return d.createBdev(spec)
	}
}

func (d *daemon) bdevUringCreate(_ context.Context, p json.RawMessage) (any, error) {
	var params struct {
		Filename  string `json:"filename"`
		Name      string `json:"name"`
		BlockSize uint32 `json:"block_size"`
		UUID      string `json:"uuid"`
	}
	if err := jsonrpc.DecodeParams(p, &params); err != nil {
		return nil, err
	}
	if params.Filename == "" || params.Name == "" {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: filename and name are required")
	}
	if params.BlockSize == 0 {
		params.BlockSize = 4096
	}
	st, err := os.Stat(params.Filename)
	if err != nil {
		return nil, fmt.Errorf("bdev_uring_create: filename %q: %w", params.Filename, err)
	}
	size := st.Size()
	if st.Mode()&os.ModeDevice != 0 {
		f, err := os.Open(params.Filename)
		if err != nil {
			return nil, fmt.Errorf("bdev_uring_create: filename %q: %w", params.Filename, err)
		}
		size, err = f.Seek(0, 2)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("bdev_uring_create: filename %q: size: %w", params.Filename, err)
		}
	}
	if size < int64(params.BlockSize) {
		return nil, fmt.Errorf("bdev_uring_create: filename %q holds %d bytes, less than one %d-byte block",
			params.Filename, size, params.BlockSize)
	}
	spec := bdev.Spec{Name: params.Name, Driver: uring.Name, BlockSize: params.BlockSize,
		Blocks: uint64(size) / uint64(params.BlockSize), Path: params.Filename}
	if err := parseUUID(params.UUID, &spec); err != nil {
		return nil, err
	}
	return d.createBdev(spec)
}

func parseUUID(s string, spec *bdev.Spec) error {
	if s == "" {
		return nil
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: uuid %q: %v", s, err)
	}
	spec.UUID = u
	return nil
}

func (d *daemon) createBdev(spec bdev.Spec) (any, error) {
	if _, err := d.bdevs.Create(spec); err != nil {
		if errors.Is(err, bdev.ErrExists) {
			return nil, jsonrpc.Errorf(-17, "%v", err) // SPDK answers -EEXIST
		}
		return nil, err
	}
	if spec.Path != "" {
		d.bdevPathsMu.Lock()
		d.bdevPaths[spec.Name] = spec.Path
		d.bdevPathsMu.Unlock()
	}
	d.log.Info("bdev created by rpc", "bdev", spec.Name, "driver", spec.Driver, "blocks", spec.Blocks,
		"block_size", spec.BlockSize)
	return spec.Name, nil
}

func (d *daemon) freeBdevName(prefix string) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		if _, taken := d.bdevs.Lookup(name); !taken {
			return name
		}
	}
}

func (d *daemon) bdevDelete(_ context.Context, p json.RawMessage) (any, error) {
	var params struct {
		Name string `json:"name"`
	}
	if err := jsonrpc.DecodeParams(p, &params); err != nil {
		return nil, err
	}
	if strings.TrimSpace(params.Name) == "" {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: name is required")
	}
	if err := d.bdevs.Delete(params.Name); err != nil {
		if errors.Is(err, bdev.ErrNotFound) {
			return nil, jsonrpc.Errorf(-19, "No such device: %s", params.Name)
		}
		if errors.Is(err, bdev.ErrInUse) || errors.Is(err, bdev.ErrRemoving) {
			return nil, jsonrpc.Errorf(-16, "Device or resource busy: %v", err) // SPDK's -EBUSY
		}
		return nil, err
	}
	d.bdevPathsMu.Lock()
	delete(d.bdevPaths, params.Name)
	d.bdevPathsMu.Unlock()
	d.log.Info("bdev deleted by rpc", "bdev", params.Name)
	return true, nil
}

// bdevGetIOStat answers in SPDK's shape: tick_rate and ticks (nanoseconds
// here) and one entry per bdev with its counters.
func (d *daemon) bdevGetIOStat(_ context.Context, p json.RawMessage) (any, error) {
	var params struct {
		Name string `json:"name"`
	}
	if err := jsonrpc.DecodeParams(p, &params); err != nil {
		return nil, err
	}
	type entry struct {
		Name string `json:"name"`
		bdev.IOStat
	}
	out := []entry{}
	for _, b := range d.bdevs.Bdevs() {
		if params.Name != "" && b.Name() != params.Name {
			continue
		}
		st, err := d.bdevs.IOStat(b)
		if err != nil {
			return nil, err
		}
		out = append(out, entry{Name: b.Name(), IOStat: st})
	}
	if params.Name != "" && len(out) == 0 {
		return nil, jsonrpc.Errorf(-19, "No such device")
	}
	return map[string]any{"tick_rate": 1_000_000_000, "ticks": time.Since(d.started).Nanoseconds(), "bdevs": out}, nil
}

// nvmfSource shows the attached NVMe/TCP controllers on the debug endpoint
// (/debug/nvmf_controllers): drivers may not import actors, so the adapter
// lives here.
type nvmfSource struct{ m *nvmf.Manager }

func (s nvmfSource) Name() string                       { return "nvmf_controllers" }
func (s nvmfSource) Snapshot() any                      { return s.m.Stats() }
func (s nvmfSource) WriteMetrics(*actors.MetricsWriter) {}
