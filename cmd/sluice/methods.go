package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/sluice-storage/sluice/drivers/nvmf"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
)

// registerMethods registers the JSON-RPC methods of what exists, each with
// SPDK's name, parameters and result shape where SPDK has the method.
func registerMethods(d *daemon) error {
	methods := []jsonrpc.Method{
		{Name: "rpc_get_methods", Params: "current (bool), include_aliases (bool)", Handler: d.rpcGetMethods},
		{Name: "sluice_get_methods", Params: "", Handler: d.sluiceGetMethods},
		{Name: "spdk_get_version", Params: "", Handler: d.spdkGetVersion},
		{Name: "framework_wait_init", Params: "", Handler: func(context.Context, json.RawMessage) (any, error) {
			return true, nil // the server listens only once init is done
		}},
		{Name: "framework_get_reactors", Params: "", Handler: d.frameworkGetReactors},
	}
	methods = append(methods, bdevMethods(d)...)
	methods = append(methods, stageMethods(d)...)
	methods = append(methods, nvmf.Methods(d.nvmf)...)
	methods = append(methods, configMethods(d)...)
	methods = append(methods, iscsiMethods(d)...)
	methods = append(methods, nvmfMethods(d)...)
	for _, m := range methods {
		if err := d.rpc.Register(m); err != nil {
			return err
		}
	}
	return nil
}

func (d *daemon) rpcGetMethods(_ context.Context, p json.RawMessage) (any, error) {
	var params struct {
		Current        bool `json:"current"`
		IncludeAliases bool `json:"include_aliases"`
	}
	if err := jsonrpc.DecodeParams(p, &params); err != nil {
		return nil, err
	}
	var names []string
	for _, m := range d.rpc.Methods() {
		names = append(names, m.Name)
	}
	return names, nil
}

func (d *daemon) sluiceGetMethods(_ context.Context, p json.RawMessage) (any, error) {
	if err := jsonrpc.DecodeParams(p, &struct{}{}); err != nil {
		return nil, err
	}
	type method struct {
		Name   string `json:"name"`
		Params string `json:"params"`
	}
	var out []method
	for _, m := range d.rpc.Methods() {
		out = append(out, method{m.Name, m.Params})
	}
	return out, nil
}

// spdkGetVersion answers in SPDK's shape, so scripts that parse it work;
// the version is ours.
func (d *daemon) spdkGetVersion(_ context.Context, p json.RawMessage) (any, error) {
	if err := jsonrpc.DecodeParams(p, &struct{}{}); err != nil {
		return nil, err
	}
	return map[string]any{
		"version": "Sluice " + versionString(),
		"fields":  map[string]any{"major": 0, "minor": 1, "patch": 0, "suffix": "-" + versionString()},
	}, nil
}

// frameworkGetReactors answers in SPDK's shape: ticks are nanoseconds here.
func (d *daemon) frameworkGetReactors(_ context.Context, p json.RawMessage) (any, error) {
	if err := jsonrpc.DecodeParams(p, &struct{}{}); err != nil {
		return nil, err
	}
	type thread struct {
		Name string `json:"name"`
		ID   int    `json:"id"`
	}
	type reactor struct {
		Lcore       int      `json:"lcore"`
		Busy        int64    `json:"busy"`
		Idle        int64    `json:"idle"`
		InInterrupt bool     `json:"in_interrupt"`
		Threads     []thread `json:"lw_threads"`
	}
	var rs []reactor
	for _, st := range d.set.Stats() {
		r := reactor{Lcore: st.Core, Busy: st.Busy.Nanoseconds(), Idle: st.Idle.Nanoseconds(),
			InInterrupt: st.State == "sleeping", Threads: []thread{}}
		for i, p := range st.Pollers {
			r.Threads = append(r.Threads, thread{Name: p.Name, ID: i})
		}
		rs = append(rs, r)
	}
	return map[string]any{"tick_rate": 1_000_000_000, "pid": os.Getpid(), "reactors": rs}, nil
}
