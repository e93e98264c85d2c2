package stage

import (
	"fmt"
	"slices"
	"sync"

	"github.com/sluice-storage/sluice/actors"
)

// Stage is one live stage as the control plane sees it.
type Stage interface {
	// Name is the stage's bdev name.
	Name() string
	// Service is what it does: passthru, delay, error, qos, raid0, concat,
	// replica, crypto.
	Service() string
	// Bases are the names of the bdevs it is built on, in order.
	Bases() []string
	// Status is its state for the debug endpoint and RPC replies: counters
	// read from atomics, never a reactor's owner-only fields. It never holds
	// a secret (crypto keys are not part of any status).
	Status() any
}

// List is the live stages of one registry, by bdev name. Control plane.
type List struct {
	// lock: the list; taken by RPC handlers and the debug endpoint, never on
	// the I/O path.
	mu      sync.Mutex
	entries []entry
}

// entry is a stage and the bdev name it is listed under: its own, or the
// base name its bdev took when another stage was put above it
// (bdev.Registry.InsertUnder).
type entry struct {
	s    Stage
	name string
}

// Add records s under its name; a second stage of one name is an error.
func (l *List) Add(s Stage) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.name == s.Name() {
			return fmt.Errorf("stage %q recorded twice", s.Name())
		}
	}
	l.entries = append(l.entries, entry{s, s.Name()})
	return nil
}

// Rename lists the stage called from under to: its bdev was renamed when a
// stage went above it.
func (l *List) Rename(from, to string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.entries {
		if l.entries[i].name == from {
			l.entries[i].name = to
			return
		}
	}
}

// Remove forgets the stage listed as name.
func (l *List) Remove(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = slices.DeleteFunc(l.entries, func(e entry) bool { return e.name == name })
}

// Get finds a stage by the bdev name it is listed under.
func (l *List) Get(name string) (Stage, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.name == name {
			return e.s, true
		}
	}
	return nil, false
}

// Named is a stage with the bdev name it is listed under.
type Named struct {
	Name  string
	Stage Stage
}

// All lists the stages in the order they were made.
func (l *List) All() []Named {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Named, len(l.entries))
	for i, e := range l.entries {
		out[i] = Named{e.name, e.s}
	}
	return out
}

// View is one stage on the debug endpoint (/debug/stages).
type View struct {
	Name    string   `json:"name"`
	Service string   `json:"service"`
	Bases   []string `json:"bases"`
	Status  any      `json:"status"`
}

// Source shows the stages on the debug endpoint; cmd/sluice registers it.
func (l *List) Source() actors.Source { return listSource{l} }

type listSource struct{ l *List }

func (s listSource) Name() string { return "stages" }

func (s listSource) Snapshot() any {
	all := s.l.All()
	views := make([]View, 0, len(all))
	for _, n := range all {
		st := n.Stage
		views = append(views, View{Name: n.Name, Service: st.Service(), Bases: st.Bases(), Status: st.Status()})
	}
	return views
}

// Metricser is a stage status that writes Prometheus samples of its own.
type Metricser interface {
	Metrics() []Metric
}

// Metric is one sample of a stage: sluice_stage_<Name>{stage=…,labels}.
type Metric struct {
	Name   string // without the sluice_stage_ prefix: "rebuild_blocks_done"
	Help   string
	Value  float64
	Labels []string // extra label pairs: "member", "m1"
}

func (s listSource) WriteMetrics(w *actors.MetricsWriter) {
	w.Family("sluice_stage_info", "1 for each stage, by service.", true)
	all := s.l.All()
	for _, n := range all {
		w.Sample(1, "stage", n.Name, "service", n.Stage.Service())
	}
	// Samples of one family must be written together: gather them by name.
	type sample struct {
		v      float64
		labels []string
	}
	var names []string
	help := map[string]string{}
	samples := map[string][]sample{}
	for _, n := range all {
		m, ok := n.Stage.Status().(Metricser)
		if !ok {
			continue
		}
		for _, x := range m.Metrics() {
			name := "sluice_stage_" + x.Name
			if _, seen := help[name]; !seen {
				names = append(names, name)
				help[name] = x.Help
			}
			samples[name] = append(samples[name], sample{x.Value, append([]string{"stage", n.Name}, x.Labels...)})
		}
	}
	for _, name := range names {
		w.Family(name, help[name], true)
		for _, x := range samples[name] {
			w.Sample(x.v, x.labels...)
		}
	}
}
