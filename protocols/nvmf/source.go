package nvmf

import (
	"strconv"
	"sync"
	"time"

	"github.com/sluice-storage/sluice/actors"
)

// Source is the target's view on the debug endpoint (/debug/nvmf) and /metrics: per
// subsystem, per controller and per qpair counters, rates since the previous snapshot and
// latency percentiles. cmd/sluice registers it with actors.Debug.Register.
func (t *Target) Source() actors.Source { return &source{t: t, prev: map[string]rateMark{}} }

type source struct {
	t *Target

	// lock: the previous snapshot's counters, for rates; taken per HTTP request only.
	mu   sync.Mutex
	prev map[string]rateMark
}

// rateMark is what a rate is computed from.
type rateMark struct {
	at    time.Time
	ios   uint64
	bytes uint64
}

func (s *source) Name() string { return "nvmf_target" }

// StatsView is one subsystem, controller or qpair on the debug endpoint.
type StatsView struct {
	IOStats
	IOPS       float64 `json:"iops"`         // read and write commands per second since the last snapshot
	BytesPerS  float64 `json:"bytes_per_s"`  // bytes read and written per second since the last snapshot
	LatencyP50 string  `json:"latency_p50"`  // upper bound (power-of-two buckets)
	LatencyP99 string  `json:"latency_p99"`  //
	LatencyAvg string  `json:"latency_mean"` //
}

// SubsystemView is a subsystem with its controllers and qpairs.
type SubsystemView struct {
	NQN         string           `json:"nqn"`
	State       string           `json:"state"`
	Namespaces  int              `json:"namespaces"`
	Stats       StatsView        `json:"stats"`
	Controllers []ControllerView `json:"controllers"`
}

// ControllerView is one controller.
type ControllerView struct {
	CNTLID  uint16      `json:"cntlid"`
	HostNQN string      `json:"hostnqn"`
	Reactor int         `json:"reactor"`
	Stats   StatsView   `json:"stats"`
	Qpairs  []QpairView `json:"qpairs"`
}

// QpairView is one queue pair.
type QpairView struct {
	QID     uint16    `json:"qid"`
	Reactor int       `json:"reactor"`
	Peer    string    `json:"peer"`
	State   string    `json:"state"`
	Stats   StatsView `json:"stats"`
}

// Snapshot lists every NVM subsystem with its controllers and qpairs. Control plane.
func (s *source) Snapshot() any {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]rateMark{}
	view := func(key string, st IOStats) StatsView {
		v := StatsView{IOStats: st, LatencyP50: st.LatencyPercentile(50).String(),
			LatencyP99: st.LatencyPercentile(99).String(), LatencyAvg: st.LatencyMean().String()}
		m := rateMark{at: now, ios: st.IOs(), bytes: st.BytesRead + st.BytesWritten}
		if p, ok := s.prev[key]; ok && now.After(p.at) && m.ios >= p.ios {
			secs := now.Sub(p.at).Seconds()
			v.IOPS = float64(m.ios-p.ios) / secs
			v.BytesPerS = float64(m.bytes-p.bytes) / secs
		}
		seen[key] = m
		return v
	}
	out := []SubsystemView{}
	for _, sub := range s.t.Subsystems() {
		if sub.discovery {
			continue
		}
		info := sub.Info()
		sv := SubsystemView{NQN: info.NQN, State: info.State, Namespaces: len(info.Namespaces),
			Stats: view(info.NQN, *info.Stats), Controllers: []ControllerView{}}
		qpairs := sub.Qpairs()
		for _, c := range sub.Controllers() {
			key := info.NQN + "/" + strconv.Itoa(int(c.CNTLID))
			cv := ControllerView{CNTLID: c.CNTLID, HostNQN: c.HostNQN, Reactor: c.Reactor,
				Stats: view(key, c.Stats), Qpairs: []QpairView{}}
			for _, q := range qpairs {
				if q.CNTLID == c.CNTLID {
					cv.Qpairs = append(cv.Qpairs, QpairView{QID: q.QID, Reactor: q.Reactor, Peer: q.PeerAddress,
						State: q.State, Stats: view(key+"/"+strconv.Itoa(int(q.QID)), q.Stats)})
				}
			}
			sv.Controllers = append(sv.Controllers, cv)
		}
		out = append(out, sv)
	}
	s.prev = seen
	return out
}

// WriteMetrics writes per-subsystem counters, gauges and the latency histogram (cumulative
// power-of-two buckets with an le label, as Prometheus histograms have).
func (s *source) WriteMetrics(w *actors.MetricsWriter) {
	type sub struct {
		nqn        string
		st         IOStats
		ctrlrs, qp int
	}
	var subs []sub
	for _, ss := range s.t.Subsystems() {
		if ss.discovery {
			continue
		}
		info := ss.Info()
		subs = append(subs, sub{info.NQN, *info.Stats, len(ss.Controllers()), len(ss.Qpairs())})
	}
	w.Family("sluice_nvmf_commands_total", "Commands completed, by kind.", false)
	for _, x := range subs {
		w.Sample(float64(x.st.ReadOps), "subsys", x.nqn, "op", "read")
		w.Sample(float64(x.st.WriteOps), "subsys", x.nqn, "op", "write")
		w.Sample(float64(x.st.OtherOps), "subsys", x.nqn, "op", "other")
	}
	w.Family("sluice_nvmf_bytes_total", "Data bytes moved, by direction.", false)
	for _, x := range subs {
		w.Sample(float64(x.st.BytesRead), "subsys", x.nqn, "dir", "read")
		w.Sample(float64(x.st.BytesWritten), "subsys", x.nqn, "dir", "write")
	}
	w.Family("sluice_nvmf_errors_total", "Commands completed with an error status.", false)
	for _, x := range subs {
		w.Sample(float64(x.st.Errors), "subsys", x.nqn)
	}
	w.Family("sluice_nvmf_controllers", "Controllers connected.", true)
	for _, x := range subs {
		w.Sample(float64(x.ctrlrs), "subsys", x.nqn)
	}
	w.Family("sluice_nvmf_qpairs", "Queue pairs connected.", true)
	for _, x := range subs {
		w.Sample(float64(x.qp), "subsys", x.nqn)
	}
	w.Family("sluice_nvmf_io_latency_seconds_bucket", "Read and write latency, cumulative buckets.", false)
	for _, x := range subs {
		var cum uint64
		for i, n := range x.st.Latency {
			cum += n
			le := strconv.FormatFloat(float64(uint64(1)<<(i+1))/1e9, 'g', -1, 64)
			w.Sample(float64(cum), "subsys", x.nqn, "le", le)
		}
		w.Sample(float64(cum), "subsys", x.nqn, "le", "+Inf")
	}
	w.Family("sluice_nvmf_io_latency_seconds_sum", "Read and write latency, total.", false)
	for _, x := range subs {
		w.Sample(float64(x.st.LatencySumNS)/1e9, "subsys", x.nqn)
	}
	w.Family("sluice_nvmf_io_latency_seconds_count", "Read and write commands timed.", false)
	for _, x := range subs {
		w.Sample(float64(x.st.IOs()), "subsys", x.nqn)
	}
	groups := s.t.Stats().PollGroups
	w.Family("sluice_nvmf_poll_group_qpairs", "Queue pairs on each reactor's poll group.", true)
	for _, g := range groups {
		w.Sample(float64(g.CurrentAdminQpairs), "group", g.Name, "queue", "admin")
		w.Sample(float64(g.CurrentIOQpairs), "group", g.Name, "queue", "io")
	}
	w.Family("sluice_nvmf_poll_group_nomem_total", "Commands that waited for a bdev IO (backpressure).", false)
	for _, g := range groups {
		w.Sample(float64(g.NomemRetries), "group", g.Name)
	}
}
