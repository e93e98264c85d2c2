package nvmf

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/sluice-storage/sluice/drivers/nvmf/host"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Methods are SPDK's bdev_nvme methods for fabrics controllers, with SPDK's
// parameter names and result shapes, for cmd/sluice to register.
func Methods(m *Manager) []jsonrpc.Method {
	return []jsonrpc.Method{
		{Name: "bdev_nvme_attach_controller",
			Params: "name, trtype, traddr, adrfam, trsvcid, subnqn, hostnqn, hdgst, ddgst, num_io_queues, " +
				"io_queue_size, reconnect_delay_sec, ctrlr_loss_timeout_sec, fast_io_fail_timeout_sec",
			Handler: m.rpcAttach},
		{Name: "bdev_nvme_detach_controller", Params: "name", Handler: m.rpcDetach},
		{Name: "bdev_nvme_get_controllers", Params: "name (optional)", Handler: m.rpcGetControllers},
	}
}

// attachParams are bdev_nvme_attach_controller's parameters (SPDK's
// rpc_bdev_nvme_attach_controller decoders). Durations are whole seconds.
type attachParams struct {
	Name                 string `json:"name"`
	TrType               string `json:"trtype"`
	TrAddr               string `json:"traddr"`
	AdrFam               string `json:"adrfam"`
	TrSvcID              string `json:"trsvcid"`
	SubNQN               string `json:"subnqn"`
	HostNQN              string `json:"hostnqn"`
	HeaderDigest         bool   `json:"hdgst"`
	DataDigest           bool   `json:"ddgst"`
	NumIOQueues          int    `json:"num_io_queues"`
	IOQueueSize          int    `json:"io_queue_size"`
	ReconnectDelaySec    int64  `json:"reconnect_delay_sec"`
	CtrlrLossTimeoutSec  int64  `json:"ctrlr_loss_timeout_sec"`
	FastIOFailTimeoutSec int64  `json:"fast_io_fail_timeout_sec"`
}

// AttachOptionsFromRPC turns bdev_nvme_attach_controller's parameters into
// AttachOptions; conf's nvmf bdevs use the same names.
func AttachOptionsFromRPC(raw json.RawMessage) (AttachOptions, error) {
	var p attachParams
	if err := jsonrpc.DecodeParams(raw, &p); err != nil {
		return AttachOptions{}, err
	}
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if p.TrAddr == "" {
		errs = append(errs, errors.New("traddr is required"))
	}
	if p.SubNQN == "" {
		errs = append(errs, errors.New("subnqn is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return AttachOptions{}, err
	}
	sec := func(n int64) time.Duration { return time.Duration(n) * time.Second }
	return AttachOptions{
		Name: p.Name,
		TransportID: host.TransportID{TrType: strings.ToLower(p.TrType), AdrFam: strings.ToLower(p.AdrFam),
			TrAddr: p.TrAddr, TrSvcID: p.TrSvcID, SubNQN: p.SubNQN, HostNQN: p.HostNQN},
		Host:         host.ControllerOptions{HeaderDigest: p.HeaderDigest, DataDigest: p.DataDigest, IOQueues: p.NumIOQueues},
		IOQueueDepth: p.IOQueueSize,
		Recovery: Recovery{ReconnectDelay: sec(p.ReconnectDelaySec), CtrlrLossTimeout: sec(p.CtrlrLossTimeoutSec),
			FastIOFailTimeout: sec(p.FastIOFailTimeoutSec)},
	}, nil
}

// rpcAttach answers with the new bdevs' names, as SPDK does.
func (m *Manager) rpcAttach(ctx context.Context, raw json.RawMessage) (any, error) {
	o, err := AttachOptionsFromRPC(raw)
	if err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: %v", err)
	}
	if o.TransportID.TrType == "" {
		o.TransportID.TrType = "tcp"
	}
	// A bad address is the caller's parameter, not our internal error:
	// check it before dialing anything.
	if err := o.TransportID.Validate(); err != nil {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: %v", err)
	}
	names, err := m.Attach(ctx, o)
	switch {
	case errors.Is(err, ErrControllerExists), errors.Is(err, bdev.ErrExists):
		return nil, jsonrpc.Errorf(-17, "%v", err) // SPDK answers -EEXIST
	case err != nil:
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "%v", err)
	}
	if names == nil {
		names = []string{}
	}
	return names, nil
}

func (m *Manager) rpcDetach(_ context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		Name    string `json:"name"`
		TrType  string `json:"trtype"`
		TrAddr  string `json:"traddr"`
		AdrFam  string `json:"adrfam"`
		TrSvcID string `json:"trsvcid"`
		SubNQN  string `json:"subnqn"`
	}
	if err := jsonrpc.DecodeParams(raw, &p); err != nil {
		return nil, err
	}
	if p.Name == "" {
		return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: name is required")
	}
	switch err := m.Detach(p.Name); {
	case errors.Is(err, ErrNoController):
		return nil, jsonrpc.Errorf(-19, "No such device: %s", p.Name) // -ENODEV
	case errors.Is(err, bdev.ErrInUse):
		return nil, jsonrpc.Errorf(-16, "%v", err) // -EBUSY
	case err != nil:
		return nil, jsonrpc.Errorf(jsonrpc.CodeInternalError, "%v", err)
	}
	return true, nil
}

// rpcGetControllers answers in SPDK's shape (name, ctrlrs[].trid, state),
// with our recovery and qpair figures beside.
func (m *Manager) rpcGetControllers(_ context.Context, raw json.RawMessage) (any, error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := jsonrpc.DecodeParams(raw, &p); err != nil {
		return nil, err
	}
	type trid struct {
		TrType  string `json:"trtype"`
		AdrFam  string `json:"adrfam,omitempty"`
		TrAddr  string `json:"traddr"`
		TrSvcID string `json:"trsvcid"`
		SubNQN  string `json:"subnqn"`
	}
	type ctrlr struct {
		State  string     `json:"state"`
		TrID   trid       `json:"trid"`
		CNTLID uint16     `json:"cntlid"`
		Stats  CtrlrStats `json:"sluice"`
	}
	type entry struct {
		Name   string  `json:"name"`
		Ctrlrs []ctrlr `json:"ctrlrs"`
	}
	out := []entry{}
	for _, st := range m.Stats() {
		if p.Name != "" && st.Name != p.Name {
			continue
		}
		c, ok := m.Controller(st.Name)
		if !ok {
			continue
		}
		t := c.opts.TransportID
		state := map[string]string{"connected": "enabled", "connecting": "resetting", "waiting": "resetting", "failed": "failed"}[st.State]
		out = append(out, entry{Name: st.Name, Ctrlrs: []ctrlr{{State: state, CNTLID: st.CNTLID, Stats: st,
			TrID: trid{TrType: strings.ToUpper(t.TrType), AdrFam: t.AdrFam, TrAddr: t.TrAddr, TrSvcID: t.TrSvcID, SubNQN: t.SubNQN}}}})
	}
	if p.Name != "" && len(out) == 0 {
		return nil, jsonrpc.Errorf(-19, "No such device: %s", p.Name)
	}
	return out, nil
}

// SaveConfig returns, for each attached controller, the parameters of the
// bdev_nvme_attach_controller call that recreates it (SPDK's save_config
// writes the same), sorted by name. Control plane.
func (m *Manager) SaveConfig() []map[string]any {
	var out []map[string]any
	for _, st := range m.Stats() {
		c, ok := m.Controller(st.Name)
		if !ok {
			continue
		}
		o := c.opts
		t := o.TransportID
		p := map[string]any{"name": o.Name, "trtype": strings.ToUpper(t.TrType), "traddr": t.TrAddr,
			"trsvcid": t.TrSvcID, "subnqn": t.SubNQN, "hdgst": o.Host.HeaderDigest, "ddgst": o.Host.DataDigest,
			"reconnect_delay_sec":      int64(o.Recovery.ReconnectDelay / time.Second),
			"ctrlr_loss_timeout_sec":   int64(o.Recovery.CtrlrLossTimeout / time.Second),
			"fast_io_fail_timeout_sec": int64(o.Recovery.FastIOFailTimeout / time.Second)}
		if t.AdrFam != "" {
			p["adrfam"] = t.AdrFam
		}
		if n := t.HostNQN; n != "" {
			p["hostnqn"] = n
		} else if o.Host.HostNQN != "" {
			p["hostnqn"] = o.Host.HostNQN
		}
		if o.IOQueueDepth != 0 {
			p["io_queue_size"] = o.IOQueueDepth
		}
		if o.Host.IOQueues != 0 {
			p["num_io_queues"] = o.Host.IOQueues
		}
		out = append(out, p)
	}
	return out
}

// ProductName is what bdev_get_bdevs says an nvmf bdev is (SPDK's
// product_name for bdev_nvme bdevs), so tools keyed on it work.
const ProductName = "NVMe disk"
