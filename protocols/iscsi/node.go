package iscsi

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-storage/sluice/protocols/scsi"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
)

// Node is a target node: its configuration, its SCSI device and its
// sessions. Owner: the reactor it was given (owner); the control plane
// reaches it by Call.
type Node struct {
	srv   *Server
	cfg   NodeConfig
	owner *reactors.Reactor
	descs []*bdev.Desc
	ready bool   // Server.mu: open finished
	gone  []bool // Server.mu: LUN i (of cfg.LUNs) was removed with its bdev

	// Owner-only.
	dev      *scsi.Device
	sessions []*Session
	closing  bool

	// Written by the owner, read by logins on any reactor (a bound, not a
	// count that must be exact: a race admits at most one extra login).
	sessionCount atomic.Int32
}

// Config is the node's configuration with its defaults filled.
func (n *Node) Config() NodeConfig { return n.cfg }

// liveConfig is the configuration without the LUNs removed with their bdevs.
// Server.mu held.
func (n *Node) liveConfig() NodeConfig {
	cfg := n.cfg
	cfg.LUNs = nil
	for i, l := range n.cfg.LUNs {
		if i >= len(n.gone) || !n.gone[i] {
			cfg.LUNs = append(cfg.LUNs, l)
		}
	}
	return cfg
}

// watchRemovals asks for a hot-remove notice on each LUN's bdev (bdev B12):
// deleting the bdev removes the LUN, as SPDK does. Control plane, after open.
func (n *Node) watchRemovals() {
	n.gone = make([]bool, len(n.descs))
	for i, d := range n.descs {
		d.OnRemove(func() { n.lunRemoved(i) })
	}
}

// lunRemoved takes LUN i out of the device (new commands to it get LOGICAL
// UNIT NOT SUPPORTED, and every nexus a REPORTED LUNS DATA HAS CHANGED unit
// attention), waits until no task started on it is left on any connection
// (its IO is done: nothing uses the channel), then closes its bdev, which
// lets the deletion finish. Control plane, on the notice's goroutine.
func (n *Node) lunRemoved(i int) {
	s := n.srv
	id := n.cfg.LUNs[i].ID
	var lun *scsi.LUN
	if err := n.owner.Call(func() {
		if n.dev != nil {
			lun = n.dev.RemoveLUN(id)
		}
	}); err != nil {
		s.log.Warn("iscsi: bdev deleted: LUN not removed", "target", n.cfg.Name, "lun", id, "err", err)
		return
	}
	s.mu.Lock()
	n.gone[i] = true
	s.mu.Unlock()
	if lun != nil && s.tasksHold(lun) {
		tick := time.NewTicker(lunDrainPoll) // control plane: this goroutine is the notice's own
		for s.tasksHold(lun) {
			<-tick.C
		}
		tick.Stop()
	}
	n.descs[i].Close()
	s.log.Info("iscsi: bdev deleted: LUN removed", "target", n.cfg.Name, "lun", id, "bdev", n.cfg.LUNs[i].Bdev)
}

// Reactor is the node's owner.
func (n *Node) Reactor() *reactors.Reactor { return n.owner }

// open opens the bdevs (control plane) and makes the device and LUNs on
// the owner.
func (n *Node) open(reg *bdev.Registry) error {
	var errs []error
	for _, l := range n.cfg.LUNs {
		d, err := reg.Open(l.Bdev, !l.SCSI.ReadOnly)
		if err != nil {
			errs = append(errs, fmt.Errorf("target node %q LUN %d: %w", n.cfg.Name, l.ID, err))
			continue
		}
		n.descs = append(n.descs, d)
	}
	if len(errs) == 0 {
		if callErr := n.owner.Call(func() { errs = append(errs, n.makeDevice(reg)) }); callErr != nil {
			errs = append(errs, callErr)
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, d := range n.descs {
			d.Close()
		}
		n.descs = nil
		return err
	}
	return nil
}

// makeDevice runs on the owner: channels, LUNs, device.
func (n *Node) makeDevice(reg *bdev.Registry) error {
	dev := scsi.NewDevice(n.cfg.Name, reg.Local(n.owner))
	for i, l := range n.cfg.LUNs {
		ch, err := n.descs[i].Channel(n.owner)
		if err != nil {
			return fmt.Errorf("target node %q LUN %d: %w", n.cfg.Name, l.ID, err)
		}
		lun, err := scsi.NewLUN(ch, l.SCSI)
		if err != nil {
			return fmt.Errorf("target node %q LUN %d: %w", n.cfg.Name, l.ID, err)
		}
		if err := dev.AddLUN(l.ID, lun); err != nil {
			return err
		}
	}
	n.dev = dev
	return nil
}

// close drops every session, waits for their I/O and closes the bdevs.
// Control plane.
func (n *Node) close() error {
	var conns []*Conn
	if err := n.owner.Call(func() {
		n.closing = true
		for _, s := range n.sessions {
			if s.conn != nil {
				conns = append(conns, s.conn)
			}
		}
	}); err != nil {
		return err
	}
	for _, c := range conns {
		c.closeFromOutside("target node deleted")
		<-c.closed // control plane: the connection's teardown on the owner signals it
	}
	var errs []error
	for _, d := range n.descs {
		d.Close()
	}
	n.descs = nil
	return errors.Join(errs...)
}

// Session is one iSCSI session of a node (or a discovery session, node
// nil). With MaxConnections 1 it has one connection. Owner: the node's
// reactor (the portal's for discovery).
type Session struct {
	node      *Node
	conn      *Conn
	initiator string
	isid      [6]byte
	tsih      uint16
	discovery bool
	nexus     *scsi.Nexus
	// The command window (I2).
	expCmdSN uint32
	maxCmdSN uint32
	depth    int
}

// attach makes the session of c on the node, reinstating (closing) an
// older session of the same initiator port (RFC 7143 §6.3.5). Owner only.
func (n *Node) attach(c *Conn, s *Session) error {
	n.owner.AssertCurrent()
	if n.closing {
		return fmt.Errorf("target node %q is closing", n.cfg.Name)
	}
	for _, old := range n.sessions {
		if old.isid == s.isid && strings.EqualFold(old.initiator, s.initiator) && old.conn != nil {
			old.conn.close("session reinstated")
		}
	}
	tpgt := c.pgTag
	port := fmt.Sprintf("%s,i,0x%02x%02x%02x%02x%02x%02x", strings.ToLower(s.initiator),
		s.isid[0], s.isid[1], s.isid[2], s.isid[3], s.isid[4], s.isid[5])
	s.nexus = n.dev.Nexus(scsi.NexusID{
		InitiatorName: s.initiator,
		InitiatorPort: port,
		TargetPort:    fmt.Sprintf("%s,t,0x%04x", n.cfg.Name, tpgt),
		RelativePort:  tpgt,
		TransportID:   scsi.ISCSITransportID(s.initiator, s.isid),
	})
	n.sessions = append(n.sessions, s)
	n.sessionCount.Store(int32(len(n.sessions)))
	return nil
}

// detach ends s: its nexus loses a session. Owner only.
func (n *Node) detach(s *Session) {
	for i, o := range n.sessions {
		if o == s {
			n.sessions = append(n.sessions[:i], n.sessions[i+1:]...)
			break
		}
	}
	n.sessionCount.Store(int32(len(n.sessions)))
	if s.nexus != nil {
		n.dev.Detach(s.nexus)
		s.nexus = nil
	}
}
