package iscsi

import "github.com/sluice-storage/sluice/actors"

// Source is the server's view for the debug endpoint (/debug/iscsi): its
// connections, and on /metrics the connections per state, PDUs and
// supervised panics. cmd/sluice registers it with actors.Debug.Register.
func (s *Server) Source() actors.Source { return serverSource{s} }

type serverSource struct{ s *Server }

func (v serverSource) Name() string { return "iscsi" }

// Snapshot lists the connections. Control plane: it takes the server's
// lock and reads each connection's atomics, never a reactor's state.
func (v serverSource) Snapshot() any { return v.s.Connections() }

// WriteMetrics writes connection counts by state and PDU totals.
func (v serverSource) WriteMetrics(w *actors.MetricsWriter) {
	conns := v.s.Connections()
	var byState [connStateCount]int
	var in, out uint64
	for _, c := range conns {
		for st := connState(0); st < connStateCount; st++ {
			if st.String() == c.State {
				byState[st]++
			}
		}
		in += c.PDUsIn
		out += c.PDUsOut
	}
	w.Family("sluice_iscsi_connections", "Connections, by state.", true)
	for st := connState(0); st < connStateCount; st++ {
		w.Sample(float64(byState[st]), "state", st.String())
	}
	w.Family("sluice_iscsi_pdus_total", "PDUs received and sent by the live connections.", false)
	w.Sample(float64(in), "direction", "in")
	w.Sample(float64(out), "direction", "out")
	w.Family("sluice_iscsi_connection_panics_total", "Connection pollers that panicked (each ended its connection).", false)
	w.Sample(float64(v.s.panics.Load()))
	w.Family("sluice_iscsi_target_nodes", "Target nodes.", true)
	w.Sample(float64(len(v.s.snap.Load().order)))
}
