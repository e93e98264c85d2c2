package passthru

import (
	"github.com/google/uuid"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/stage"
)

// Service is the stage's service name in conf and on the debug endpoint.
const Service = "passthru"

// Config makes one passthru stage.
type Config struct {
	Name string
	Base string
	UUID uuid.UUID // uuid.Nil: the registry picks one
}

// Stage is one passthru stage: a stage.Backend.
type Stage struct {
	stage.Filter
	cfg Config
}

// New opens and claims cfg.Base; stage.Add registers the result.
func New(reg *bdev.Registry, cfg Config) (*Stage, error) {
	f, err := stage.OpenFilter(reg, Service, cfg.Name, cfg.UUID, cfg.Base)
	if err != nil {
		return nil, err
	}
	return &Stage{Filter: f, cfg: cfg}, nil
}

func (s *Stage) Service() string { return Service }
func (s *Stage) Status() any     { return struct{}{} }

// NewChannel opens the base's channel on this reactor.
func (s *Stage) NewChannel(l *bdev.Local) (bdev.ChannelBackend, error) {
	base, err := s.BaseChannel(l.Reactor())
	if err != nil {
		return nil, err
	}
	return &channel{base: base}, nil
}

// channel is the stage on one reactor. Owner: that reactor.
type channel struct {
	base *bdev.Channel
}

// Submit sends io down as one child (P1), or answers no resources (S4).
func (c *channel) Submit(io *bdev.IO) {
	child := stage.Child(c.base, io, c)
	if child == nil {
		io.Complete(bdev.StatusNoResources)
		return
	}
	c.base.Submit(child)
}

// Complete ends the upper IO with the child's status (P1).
func (c *channel) Complete(child *bdev.IO) { stage.Finish(child) }

func (c *channel) Close() error { return nil }
