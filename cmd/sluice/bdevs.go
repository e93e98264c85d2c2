package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/actors"
	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/drivers/null"
	"github.com/sluice-storage/sluice/drivers/nvmf"
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
// topology's bdevs in file order.
func startBdevs(d *daemon) (part, error) {
	reg, err := bdev.NewRegistry(d.set, bdev.Options{})
	if err != nil {
		return nil, err
	}
	p := &bdevsPart{d: d, reg: reg}
	d.nvmf = nvmf.NewManager(reg, d.log)
	if err := registerDrivers(reg); err != nil {
		reg.Close()
		return nil, err
	}
	for _, b := range d.top.Bdevs {
		if _, err := reg.Create(perf.SpecOf(b)); err != nil {
			reg.Close()
			return nil, fmt.Errorf("bdevs: %w", err)
		}
		d.log.Info("bdev created", "bdev", b.Name, "driver", string(b.Driver), "size", b.Size.String(),
			"block_size", uint64(b.BlockSize))
	}
	if err := errors.Join(d.debug.Register(reg.Source()), d.debug.Register(nvmfSource{d.nvmf})); err != nil {
		reg.Close()
		return nil, err
	}
	d.bdevs = reg
	return p, nil
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
			Name: b.Name(), Aliases: []string{}, ProductName: productNames[b.Driver()],
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
