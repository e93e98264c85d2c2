package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/drivers/nvmf"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
)

// saver is a part that can write what it runs now — including what was
// added at runtime — back out, both as topology sections and as the SPDK
// method calls that recreate it (SPDK's save_config model: each object
// emits the RPC that makes it).
type saver interface {
	// saveTopology fills the part's sections of t.
	saveTopology(t *conf.Topology)
	// saveCalls appends the part's subsystem with its calls, in the order
	// load_config must replay them.
	saveCalls(out []spdkSubsystem) []spdkSubsystem
}

// spdkSubsystem is one entry of save_config's "subsystems" list.
type spdkSubsystem struct {
	Subsystem string     `json:"subsystem"`
	Config    []spdkCall `json:"config"`
}

// spdkCall is one method call of a subsystem's config.
type spdkCall struct {
	Method string         `json:"method"`
	Params map[string]any `json:"params,omitempty"`
}

type spdkConfig struct {
	Subsystems []spdkSubsystem `json:"subsystems"`
}

func configMethods(d *daemon) []jsonrpc.Method {
	return []jsonrpc.Method{
		{Name: "save_config", Params: "format (json: SPDK's load_config form, the default; yaml: a topology for sluice run -c)",
			Handler: d.saveConfig},
		{Name: "load_config", Params: "subsystems (save_config's json form)", Handler: d.loadConfig},
	}
}

// runningTopology is the topology that recreates what runs now.
func (d *daemon) runningTopology() *conf.Topology {
	t := &conf.Topology{
		Reactors: d.top.Reactors,
		RPC:      d.top.RPC,
		Debug:    d.top.Debug,
	}
	t.Reactors.Cores = slices.Clone(t.Reactors.Cores)
	for _, p := range d.parts {
		if s, ok := p.(saver); ok {
			s.saveTopology(t)
		}
	}
	return t
}

func (d *daemon) saveConfig(_ context.Context, p json.RawMessage) (any, error) {
	var params struct {
		Format string `json:"format"`
	}
	if err := jsonrpc.DecodeParams(p, &params); err != nil {
		return nil, err
	}
	switch params.Format {
	case "", "json":
		cfg := spdkConfig{Subsystems: []spdkSubsystem{}}
		for _, part := range d.parts {
			if s, ok := part.(saver); ok {
				cfg.Subsystems = s.saveCalls(cfg.Subsystems)
			}
		}
		return cfg, nil
	case "yaml":
		b, err := conf.Marshal(d.runningTopology())
		if err != nil {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "save_config: %v", err)
		}
		return string(b), nil
	}
	return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: format %q, want json or yaml", params.Format)
}

// loadConfig replays save_config's calls in order, as SPDK's rpc.py
// load_config does, stopping at the first that fails and naming it.
// Methods that only read state are skipped.
func (d *daemon) loadConfig(ctx context.Context, p json.RawMessage) (any, error) {
	var cfg struct {
		Subsystems []struct {
			Subsystem string `json:"subsystem"`
			Config    []struct {
				Method string          `json:"method"`
				Params json.RawMessage `json:"params"`
			} `json:"config"`
		} `json:"subsystems"`
	}
	if err := jsonrpc.DecodeParams(p, &cfg); err != nil {
		return nil, err
	}
	methods := map[string]jsonrpc.Method{}
	for _, m := range d.rpc.Methods() {
		methods[m.Name] = m
	}
	calls := 0
	for i, sub := range cfg.Subsystems {
		for j, c := range sub.Config {
			m, ok := methods[c.Method]
			if !ok || c.Method == "load_config" || c.Method == "save_config" {
				return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams,
					"Invalid parameters: subsystems[%d].config[%d].method %q: not a method this daemon has", i, j, c.Method)
			}
			if _, err := m.Handler(ctx, c.Params); err != nil {
				return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams,
					"subsystems[%d] (%s).config[%d] %s: %v", i, sub.Subsystem, j, c.Method, err)
			}
			calls++
		}
	}
	d.log.Info("configuration loaded", "calls", calls)
	return true, nil
}

// saveTopology writes the driver-made bdevs (stages write their own): the
// attached NVMe/TCP controllers first, as nvmf bdevs (their namespaces'
// bdevs are theirs to make), then the others in creation order.
func (p *bdevsPart) saveTopology(t *conf.Topology) {
	for _, st := range p.d.nvmf.Stats() {
		if c, ok := p.d.nvmf.Controller(st.Name); ok {
			t.Bdevs = append(t.Bdevs, nvmfBdevOf(c.Options()))
		}
	}
	for _, b := range p.reg.Bdevs() {
		drv := conf.Driver(b.Driver())
		if drv != conf.DriverMalloc && drv != conf.DriverNull && drv != conf.DriverUring {
			continue
		}
		cb := conf.Bdev{Name: b.Name(), Driver: drv, BlockSize: conf.Size(b.BlockSize()),
			Blocks: b.Blocks(), Size: conf.Size(b.Size()), UUID: b.UUID()}
		if drv == conf.DriverUring {
			p.d.bdevPathsMu.Lock()
			cb.Path = p.d.bdevPaths[b.Name()]
			p.d.bdevPathsMu.Unlock()
		}
		t.Bdevs = append(t.Bdevs, cb)
	}
}

func (p *bdevsPart) saveCalls(out []spdkSubsystem) []spdkSubsystem {
	sub := spdkSubsystem{Subsystem: "bdev", Config: []spdkCall{}}
	// Remote controllers first: a stage may sit on their bdevs.
	for _, params := range p.d.nvmf.SaveConfig() {
		sub.Config = append(sub.Config, spdkCall{Method: "bdev_nvme_attach_controller", Params: params})
	}
	for _, b := range p.reg.Bdevs() {
		params := map[string]any{"name": b.Name(), "block_size": b.BlockSize()}
		if u := b.UUID(); u != uuid.Nil {
			params["uuid"] = u.String()
		}
		switch b.Driver() {
		case "malloc", "null":
			params["num_blocks"] = b.Blocks()
			sub.Config = append(sub.Config, spdkCall{Method: fmt.Sprintf("bdev_%s_create", b.Driver()), Params: params})
		case "uring":
			p.d.bdevPathsMu.Lock()
			params["filename"] = p.d.bdevPaths[b.Name()]
			p.d.bdevPathsMu.Unlock()
			sub.Config = append(sub.Config, spdkCall{Method: "bdev_uring_create", Params: params})
		}
	}
	return append(out, sub)
}

// nvmfBdevOf is the topology's nvmf bdev that attaches a controller as o
// does (attachOptionsOf's inverse); what o leaves to the driver's defaults
// stays unset, for conf to fill.
func nvmfBdevOf(o nvmf.AttachOptions) conf.Bdev {
	t := o.TransportID
	port, _ := strconv.Atoi(t.TrSvcID) // the driver checked it at attach
	hostNQN := t.HostNQN
	if hostNQN == "" {
		hostNQN = o.Host.HostNQN
	}
	return conf.Bdev{Name: o.Name, Driver: conf.DriverNVMf, Remote: &conf.NVMfRemote{
		TrType: t.TrType, AdrFam: t.AdrFam, TrAddr: t.TrAddr, TrSvcID: port, SubNQN: t.SubNQN, HostNQN: hostNQN,
		HeaderDigest: o.Host.HeaderDigest, DataDigest: o.Host.DataDigest,
		IOQueueSize: o.IOQueueDepth, NumIOQueues: o.Host.IOQueues,
		ReconnectDelay: o.Recovery.ReconnectDelay, CtrlrLossTimeout: o.Recovery.CtrlrLossTimeout,
		FastIOFailTimeout: o.Recovery.FastIOFailTimeout,
	}}
}
