package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/internal/jsonrpc"
	"github.com/sluice-storage/sluice/protocols/iscsi"
	"github.com/sluice-storage/sluice/protocols/scsi"
)

// conf and protocols/iscsi state the same limits; these fail to compile
// when they drift apart.
const (
	_ uint = conf.ISCSIQueueDepthMax - iscsi.QueueDepthMax
	_ uint = iscsi.QueueDepthMax - conf.ISCSIQueueDepthMax
	_ uint = conf.ISCSISessionsMax - iscsi.SessionsMax
	_ uint = iscsi.SessionsMax - conf.ISCSISessionsMax
	_ uint = conf.ISCSILUNMax + 1 - scsi.LUNsMax
	_ uint = scsi.LUNsMax - conf.ISCSILUNMax - 1
)

// iscsiStopTimeout bounds the wait for connections to finish their I/O
// when the daemon stops (within its own deadline).
const iscsiStopTimeout = 5 * time.Second

// iscsiPart is the iSCSI target of a running daemon. It always runs once
// the bdevs do, so the iscsi_* RPCs work on a topology without targets.
type iscsiPart struct {
	d   *daemon
	srv *iscsi.Server
	// secretsFiles are the files the topology's auth groups came from, by
	// tag, for saving the topology back (secrets never go into it).
	secretsFiles map[uint16]string
}

func (p *iscsiPart) name() string { return "iscsi" }

func (p *iscsiPart) stop(deadline time.Time) error {
	if p.d.debug != nil {
		p.d.debug.Unregister("iscsi")
	}
	return p.srv.Close(min(time.Until(deadline), iscsiStopTimeout))
}

// startISCSI makes the target and the topology's targets.iscsi objects:
// auth groups (their secrets files read now), discovery auth, portal
// groups, initiator groups, then target nodes.
func startISCSI(d *daemon) (part, error) {
	if d.bdevs == nil {
		return nil, errors.New("iscsi: the bdev layer did not start")
	}
	s := d.top.Targets.ISCSI
	opts := iscsi.Options{Logger: d.log}
	if s != nil {
		opts.NodeBase, opts.NopInInterval, opts.NopTimeout = s.NodeBase, s.NopInInterval, s.NopTimeout
	}
	p := &iscsiPart{d: d, srv: iscsi.New(d.set, d.bdevs, opts), secretsFiles: map[uint16]string{}}
	if d.debug != nil {
		if err := d.debug.Register(p.srv.Source()); err != nil {
			p.srv.Close(iscsiStopTimeout)
			return nil, err
		}
	}
	if s == nil {
		return p, nil
	}
	if err := p.apply(s); err != nil {
		p.stop(time.Now().Add(iscsiStopTimeout))
		return nil, fmt.Errorf("targets.iscsi: %w", err)
	}
	for _, n := range p.srv.Nodes() {
		d.log.Info("iscsi target node", "target", n.Name, "luns", len(n.LUNs))
	}
	for _, g := range p.srv.PortalGroups() {
		for _, pt := range g.Portals {
			d.log.Info("iscsi portal listening", "portal_group", g.Tag, "portal", pt.String())
		}
	}
	return p, nil
}

// apply makes the topology's objects in dependency order.
func (p *iscsiPart) apply(s *conf.ISCSI) error {
	for _, g := range s.AuthGroups {
		data, err := os.ReadFile(g.SecretsFile)
		if err != nil {
			return fmt.Errorf("auth group %d: %w", g.Tag, err)
		}
		secrets, err := conf.ParseCHAPSecrets(g.SecretsFile, data)
		if err != nil {
			return fmt.Errorf("auth group %d: %w", g.Tag, err)
		}
		ag := iscsi.AuthGroup{Tag: uint16(g.Tag)}
		for _, c := range secrets {
			ag.Secrets = append(ag.Secrets, iscsi.CHAPSecret{User: c.User, Secret: c.Secret,
				MutualUser: c.MutualUser, MutualSecret: c.MutualSecret})
		}
		if err := p.srv.AddAuthGroup(ag); err != nil {
			return err
		}
		p.secretsFiles[ag.Tag] = g.SecretsFile
	}
	if err := p.srv.SetDiscoveryAuth(chapOf(s.Discovery)); err != nil {
		return err
	}
	for _, g := range s.PortalGroups {
		pg := iscsi.PortalGroup{Tag: uint16(g.Tag), Private: g.Private}
		for _, a := range g.Portals {
			host, port, _ := net.SplitHostPort(a) // conf checked the form
			n, _ := strconv.Atoi(port)
			pg.Portals = append(pg.Portals, iscsi.Portal{Host: host, Port: uint16(n)})
		}
		if err := p.srv.AddPortalGroup(pg); err != nil {
			return err
		}
	}
	for _, g := range s.InitiatorGroups {
		if err := p.srv.AddInitiatorGroup(iscsi.InitiatorGroup{Tag: uint16(g.Tag),
			Initiators: g.Initiators, Netmasks: g.Netmasks}); err != nil {
			return err
		}
	}
	for _, n := range s.Nodes {
		cfg := iscsi.NodeConfig{Name: n.Name, Alias: n.Alias, QueueDepth: n.QueueDepth,
			MaxSessions: n.MaxSessions, CHAP: chapOf(n.Auth),
			HeaderDigest: n.HeaderDigest, DataDigest: n.DataDigest}
		for _, l := range n.LUNs {
			cfg.LUNs = append(cfg.LUNs, iscsi.LUNConfig{ID: l.LUN, Bdev: l.Bdev,
				SCSI: scsi.Config{Thin: l.Thin, ReadOnly: l.ReadOnly, Removable: l.Removable}})
		}
		for _, m := range n.Maps {
			cfg.Maps = append(cfg.Maps, iscsi.Mapping{PortalGroup: uint16(m.PortalGroup), InitiatorGroup: uint16(m.InitiatorGroup)})
		}
		if err := p.srv.AddNode(cfg); err != nil {
			return err
		}
	}
	return nil
}

func chapOf(a conf.ISCSIAuth) iscsi.CHAP {
	c := iscsi.CHAP{Group: uint16(a.AuthGroup)}
	switch a.CHAP {
	case conf.CHAPOneWay:
		c.Require = true
	case conf.CHAPMutual:
		c.Require, c.Mutual = true, true
	default:
		c.Disable = true
	}
	return c
}

func authOf(c iscsi.CHAP) conf.ISCSIAuth {
	a := conf.ISCSIAuth{CHAP: conf.CHAPNone}
	switch {
	case c.Mutual:
		a.CHAP = conf.CHAPMutual
	case c.Require:
		a.CHAP = conf.CHAPOneWay
	}
	if a.CHAP != conf.CHAPNone {
		a.AuthGroup = int(c.Group)
	}
	return a
}

// iscsiServer is the running target, for the RPC handlers (which run only
// once startDaemon has started every part).
func (d *daemon) iscsiServer() (*iscsi.Server, error) {
	for _, p := range d.parts {
		if ip, ok := p.(*iscsiPart); ok {
			return ip.srv, nil
		}
	}
	return nil, jsonrpc.Errorf(-1, "iSCSI target not running")
}

// iscsiMethods are SPDK's iscsi_* methods with SPDK's parameter names.
func iscsiMethods(d *daemon) []jsonrpc.Method {
	return []jsonrpc.Method{
		{Name: "iscsi_create_portal_group", Params: "tag, portals [{host, port}], private, wait", Handler: d.iscsiCreatePortalGroup},
		{Name: "iscsi_delete_portal_group", Params: "tag", Handler: d.iscsiDeleteTag((*iscsi.Server).DeletePortalGroup)},
		{Name: "iscsi_get_portal_groups", Params: "", Handler: d.iscsiGetPortalGroups},
		{Name: "iscsi_create_initiator_group", Params: "tag, initiators, netmasks", Handler: d.iscsiCreateInitiatorGroup},
		{Name: "iscsi_delete_initiator_group", Params: "tag", Handler: d.iscsiDeleteTag((*iscsi.Server).DeleteInitiatorGroup)},
		{Name: "iscsi_get_initiator_groups", Params: "", Handler: d.iscsiGetInitiatorGroups},
		{Name: "iscsi_create_auth_group", Params: "tag, secrets [{user, secret, muser, msecret}]", Handler: d.iscsiCreateAuthGroup},
		{Name: "iscsi_delete_auth_group", Params: "tag", Handler: d.iscsiDeleteTag((*iscsi.Server).DeleteAuthGroup)},
		{Name: "iscsi_get_auth_groups", Params: "", Handler: d.iscsiGetAuthGroups},
		{Name: "iscsi_set_discovery_auth", Params: "disable_chap, require_chap, mutual_chap, chap_group", Handler: d.iscsiSetDiscoveryAuth},
		{Name: "iscsi_get_discovery_auth", Params: "", Handler: d.iscsiGetDiscoveryAuth},
		{Name: "iscsi_create_target_node", Params: "name, alias_name, pg_ig_maps [{pg_tag, ig_tag}], luns [{bdev_name, lun_id}], " +
			"queue_depth, disable_chap, require_chap, mutual_chap, chap_group, header_digest, data_digest", Handler: d.iscsiCreateTargetNode},
		{Name: "iscsi_delete_target_node", Params: "name", Handler: d.iscsiDeleteTargetNode},
		{Name: "iscsi_get_target_nodes", Params: "", Handler: d.iscsiGetTargetNodes},
		{Name: "iscsi_get_connections", Params: "", Handler: d.iscsiGetConnections},
	}
}

// rpcError turns a control-plane error into the RPC's answer.
func rpcError(err error) error {
	if err == nil {
		return nil
	}
	return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: %v", err)
}

type spdkPortal struct {
	Host string `json:"host"`
	Port string `json:"port"`
}

func (d *daemon) iscsiCreatePortalGroup(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Tag     uint16       `json:"tag"`
		Portals []spdkPortal `json:"portals"`
		Private bool         `json:"private"`
		Wait    bool         `json:"wait"`
	}
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	pg := iscsi.PortalGroup{Tag: params.Tag, Private: params.Private}
	for i, p := range params.Portals {
		n, err := strconv.ParseUint(p.Port, 10, 16)
		if err != nil {
			return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "Invalid parameters: portals[%d].port %q, want 0..65535", i, p.Port)
		}
		pg.Portals = append(pg.Portals, iscsi.Portal{Host: p.Host, Port: uint16(n)})
	}
	return true, rpcError(srv.AddPortalGroup(pg))
}

func (d *daemon) iscsiDeleteTag(del func(*iscsi.Server, uint16) error) jsonrpc.Handler {
	return func(_ context.Context, raw json.RawMessage) (any, error) {
		var params struct {
			Tag uint16 `json:"tag"`
		}
		if err := jsonrpc.DecodeParams(raw, &params); err != nil {
			return nil, err
		}
		srv, err := d.iscsiServer()
		if err != nil {
			return nil, err
		}
		return true, rpcError(del(srv, params.Tag))
	}
}

type spdkPortalGroup struct {
	Tag     uint16       `json:"tag"`
	Portals []spdkPortal `json:"portals"`
	Private bool         `json:"private"`
}

func (d *daemon) iscsiGetPortalGroups(_ context.Context, raw json.RawMessage) (any, error) {
	if err := jsonrpc.DecodeParams(raw, &struct{}{}); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	out := []spdkPortalGroup{}
	for _, g := range srv.PortalGroups() {
		v := spdkPortalGroup{Tag: g.Tag, Private: g.Private, Portals: []spdkPortal{}}
		for _, p := range g.Portals {
			v.Portals = append(v.Portals, spdkPortal{Host: p.Host, Port: strconv.Itoa(int(p.Port))})
		}
		out = append(out, v)
	}
	return out, nil
}

type spdkInitiatorGroup struct {
	Tag        uint16   `json:"tag"`
	Initiators []string `json:"initiators"`
	Netmasks   []string `json:"netmasks"`
}

func (d *daemon) iscsiCreateInitiatorGroup(_ context.Context, raw json.RawMessage) (any, error) {
	var params spdkInitiatorGroup
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	return true, rpcError(srv.AddInitiatorGroup(iscsi.InitiatorGroup{Tag: params.Tag,
		Initiators: params.Initiators, Netmasks: params.Netmasks}))
}

func (d *daemon) iscsiGetInitiatorGroups(_ context.Context, raw json.RawMessage) (any, error) {
	if err := jsonrpc.DecodeParams(raw, &struct{}{}); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	out := []spdkInitiatorGroup{}
	for _, g := range srv.InitiatorGroups() {
		out = append(out, spdkInitiatorGroup{Tag: g.Tag, Initiators: g.Initiators, Netmasks: g.Netmasks})
	}
	return out, nil
}

type spdkSecret struct {
	User    string `json:"user"`
	Secret  string `json:"secret"`
	MUser   string `json:"muser,omitempty"`
	MSecret string `json:"msecret,omitempty"`
}

type spdkAuthGroup struct {
	Tag     uint16       `json:"tag"`
	Secrets []spdkSecret `json:"secrets"`
}

func (d *daemon) iscsiCreateAuthGroup(_ context.Context, raw json.RawMessage) (any, error) {
	var params spdkAuthGroup
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	ag := iscsi.AuthGroup{Tag: params.Tag}
	for _, s := range params.Secrets {
		ag.Secrets = append(ag.Secrets, iscsi.CHAPSecret{User: s.User, Secret: s.Secret, MutualUser: s.MUser, MutualSecret: s.MSecret})
	}
	return true, rpcError(srv.AddAuthGroup(ag))
}

// iscsiGetAuthGroups answers as SPDK does, secrets included: the RPC
// socket is the operator's (mode 0600).
func (d *daemon) iscsiGetAuthGroups(_ context.Context, raw json.RawMessage) (any, error) {
	if err := jsonrpc.DecodeParams(raw, &struct{}{}); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	return spdkAuthGroups(srv), nil
}

func spdkAuthGroups(srv *iscsi.Server) []spdkAuthGroup {
	out := []spdkAuthGroup{}
	for _, g := range srv.AuthGroups() {
		v := spdkAuthGroup{Tag: g.Tag, Secrets: []spdkSecret{}}
		for _, s := range g.Secrets {
			v.Secrets = append(v.Secrets, spdkSecret{User: s.User, Secret: s.Secret, MUser: s.MutualUser, MSecret: s.MutualSecret})
		}
		out = append(out, v)
	}
	return out
}

// spdkCHAP is SPDK's four CHAP parameters.
type spdkCHAP struct {
	DisableCHAP bool   `json:"disable_chap"`
	RequireCHAP bool   `json:"require_chap"`
	MutualCHAP  bool   `json:"mutual_chap"`
	CHAPGroup   uint16 `json:"chap_group"`
}

func (c spdkCHAP) chap() iscsi.CHAP {
	return iscsi.CHAP{Disable: c.DisableCHAP, Require: c.RequireCHAP, Mutual: c.MutualCHAP, Group: c.CHAPGroup}
}

func spdkCHAPOf(c iscsi.CHAP) spdkCHAP {
	return spdkCHAP{DisableCHAP: c.Disable, RequireCHAP: c.Require, MutualCHAP: c.Mutual, CHAPGroup: c.Group}
}

func (d *daemon) iscsiSetDiscoveryAuth(_ context.Context, raw json.RawMessage) (any, error) {
	var params spdkCHAP
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	return true, rpcError(srv.SetDiscoveryAuth(params.chap()))
}

func (d *daemon) iscsiGetDiscoveryAuth(_ context.Context, raw json.RawMessage) (any, error) {
	if err := jsonrpc.DecodeParams(raw, &struct{}{}); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	return spdkCHAPOf(srv.DiscoveryAuth()), nil
}

type spdkMap struct {
	PGTag uint16 `json:"pg_tag"`
	IGTag uint16 `json:"ig_tag"`
}

type spdkLUN struct {
	BdevName string `json:"bdev_name"`
	LUNID    int    `json:"lun_id"`
	// Sluice's additions (SPDK has no per-LUN provisioning settings).
	Thin      bool `json:"thin,omitempty"`
	ReadOnly  bool `json:"read_only,omitempty"`
	Removable bool `json:"removable,omitempty"`
}

type spdkTargetNode struct {
	Name         string    `json:"name"`
	AliasName    string    `json:"alias_name"`
	PGIGMaps     []spdkMap `json:"pg_ig_maps"`
	LUNs         []spdkLUN `json:"luns"`
	QueueDepth   int       `json:"queue_depth"`
	HeaderDigest bool      `json:"header_digest"`
	DataDigest   bool      `json:"data_digest"`
	spdkCHAP
}

func (d *daemon) iscsiCreateTargetNode(_ context.Context, raw json.RawMessage) (any, error) {
	var params spdkTargetNode
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	cfg := iscsi.NodeConfig{Name: params.Name, Alias: params.AliasName, QueueDepth: params.QueueDepth,
		CHAP: params.chap(), HeaderDigest: params.HeaderDigest, DataDigest: params.DataDigest}
	for _, m := range params.PGIGMaps {
		cfg.Maps = append(cfg.Maps, iscsi.Mapping{PortalGroup: m.PGTag, InitiatorGroup: m.IGTag})
	}
	for _, l := range params.LUNs {
		cfg.LUNs = append(cfg.LUNs, iscsi.LUNConfig{ID: l.LUNID, Bdev: l.BdevName,
			SCSI: scsi.Config{Thin: l.Thin, ReadOnly: l.ReadOnly, Removable: l.Removable}})
	}
	return true, rpcError(srv.AddNode(cfg))
}

func (d *daemon) iscsiDeleteTargetNode(_ context.Context, raw json.RawMessage) (any, error) {
	var params struct {
		Name string `json:"name"`
	}
	if err := jsonrpc.DecodeParams(raw, &params); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	return true, rpcError(srv.DeleteNode(params.Name))
}

func spdkNodeOf(n iscsi.NodeConfig) spdkTargetNode {
	v := spdkTargetNode{Name: n.Name, AliasName: n.Alias, QueueDepth: n.QueueDepth,
		HeaderDigest: n.HeaderDigest, DataDigest: n.DataDigest, spdkCHAP: spdkCHAPOf(n.CHAP),
		PGIGMaps: []spdkMap{}, LUNs: []spdkLUN{}}
	for _, m := range n.Maps {
		v.PGIGMaps = append(v.PGIGMaps, spdkMap{PGTag: m.PortalGroup, IGTag: m.InitiatorGroup})
	}
	for _, l := range n.LUNs {
		v.LUNs = append(v.LUNs, spdkLUN{BdevName: l.Bdev, LUNID: l.ID, Thin: l.SCSI.Thin,
			ReadOnly: l.SCSI.ReadOnly, Removable: l.SCSI.Removable})
	}
	return v
}

func (d *daemon) iscsiGetTargetNodes(_ context.Context, raw json.RawMessage) (any, error) {
	if err := jsonrpc.DecodeParams(raw, &struct{}{}); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	out := []spdkTargetNode{}
	for _, n := range srv.Nodes() {
		out = append(out, spdkNodeOf(n))
	}
	return out, nil
}

func (d *daemon) iscsiGetConnections(_ context.Context, raw json.RawMessage) (any, error) {
	if err := jsonrpc.DecodeParams(raw, &struct{}{}); err != nil {
		return nil, err
	}
	srv, err := d.iscsiServer()
	if err != nil {
		return nil, err
	}
	return srv.Connections(), nil
}

// saveTopology writes targets.iscsi as it runs now. Auth groups made by
// RPC have no secrets file: they (and the nodes using them) are written
// only by saveCalls, since secrets never go into a topology.
func (p *iscsiPart) saveTopology(t *conf.Topology) {
	srv := p.srv
	s := &conf.ISCSI{Discovery: authOf(srv.DiscoveryAuth())}
	if top := p.d.top.Targets.ISCSI; top != nil {
		s.NodeBase, s.NopInInterval, s.NopTimeout = top.NodeBase, top.NopInInterval, top.NopTimeout
	}
	for _, g := range srv.AuthGroups() {
		if f, ok := p.secretsFiles[g.Tag]; ok {
			s.AuthGroups = append(s.AuthGroups, conf.ISCSIAuthGroup{Tag: int(g.Tag), SecretsFile: f})
		}
	}
	for _, g := range srv.PortalGroups() {
		cg := conf.ISCSIPortalGroup{Tag: int(g.Tag), Private: g.Private}
		for _, pt := range g.Portals {
			cg.Portals = append(cg.Portals, net.JoinHostPort(strings.Trim(pt.Host, "[]"), strconv.Itoa(int(pt.Port))))
		}
		s.PortalGroups = append(s.PortalGroups, cg)
	}
	for _, g := range srv.InitiatorGroups() {
		s.InitiatorGroups = append(s.InitiatorGroups, conf.ISCSIInitiatorGroup{Tag: int(g.Tag),
			Initiators: slices.Clone(g.Initiators), Netmasks: slices.Clone(g.Netmasks)})
	}
	for _, n := range srv.Nodes() {
		cn := conf.ISCSINode{Name: n.Name, Alias: n.Alias, Auth: authOf(n.CHAP), QueueDepth: n.QueueDepth,
			MaxSessions: n.MaxSessions, HeaderDigest: n.HeaderDigest, DataDigest: n.DataDigest}
		if _, ok := p.secretsFiles[n.CHAP.Group]; cn.Auth.CHAP != conf.CHAPNone && !ok {
			continue // its secrets exist only in memory
		}
		for _, l := range n.LUNs {
			cn.LUNs = append(cn.LUNs, conf.ISCSILUN{LUN: l.ID, Bdev: l.Bdev, Thin: l.SCSI.Thin,
				ReadOnly: l.SCSI.ReadOnly, Removable: l.SCSI.Removable})
		}
		for _, m := range n.Maps {
			cn.Maps = append(cn.Maps, conf.ISCSIMap{PortalGroup: int(m.PortalGroup), InitiatorGroup: int(m.InitiatorGroup)})
		}
		s.Nodes = append(s.Nodes, cn)
	}
	if s.Discovery.CHAP != conf.CHAPNone {
		if _, ok := p.secretsFiles[uint16(s.Discovery.AuthGroup)]; !ok {
			s.Discovery = conf.ISCSIAuth{CHAP: conf.CHAPNone}
		}
	}
	if len(s.PortalGroups)+len(s.Nodes)+len(s.InitiatorGroups)+len(s.AuthGroups) > 0 {
		t.Targets.ISCSI = s
	}
}

// saveCalls writes the iscsi subsystem as SPDK's calls, in replay order.
func (p *iscsiPart) saveCalls(out []spdkSubsystem) []spdkSubsystem {
	srv := p.srv
	sub := spdkSubsystem{Subsystem: "iscsi", Config: []spdkCall{}}
	add := func(method string, v any) {
		b, _ := json.Marshal(v)
		var params map[string]any
		json.Unmarshal(b, &params)
		sub.Config = append(sub.Config, spdkCall{Method: method, Params: params})
	}
	for _, g := range spdkAuthGroups(srv) {
		add("iscsi_create_auth_group", g)
	}
	if c := srv.DiscoveryAuth(); c.Require || c.Mutual || c.Group != 0 {
		add("iscsi_set_discovery_auth", spdkCHAPOf(c))
	}
	for _, g := range srv.PortalGroups() {
		v := spdkPortalGroup{Tag: g.Tag, Private: g.Private, Portals: []spdkPortal{}}
		for _, pt := range g.Portals {
			v.Portals = append(v.Portals, spdkPortal{Host: pt.Host, Port: strconv.Itoa(int(pt.Port))})
		}
		add("iscsi_create_portal_group", v)
	}
	for _, g := range srv.InitiatorGroups() {
		add("iscsi_create_initiator_group", spdkInitiatorGroup{Tag: g.Tag, Initiators: g.Initiators, Netmasks: g.Netmasks})
	}
	for _, n := range srv.Nodes() {
		add("iscsi_create_target_node", spdkNodeOf(n))
	}
	return append(out, sub)
}
