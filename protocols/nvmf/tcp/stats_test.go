package tcp

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-storage/sluice/actors"
	"github.com/sluice-storage/sluice/protocols/nvme"
	"github.com/sluice-storage/sluice/protocols/nvmf"
)

// TestStatsSource: the debug source shows per-subsystem, per-controller and per-qpair
// counters after I/O, and /metrics has the families; nvmf_get_stats counts the qpairs.
func TestStatsSource(t *testing.T) {
	tt := newTestTarget(t, targetConfig{})
	h := adminSession(t, tt.addr, testNQN, false, false)
	ioq := ioSession(t, tt.addr, testNQN, h.cntlid, 1, false, false, true)
	buf := make([]byte, 8*testBlockSize)
	for i := 0; i < 10; i++ {
		ioq.mustOK(first(ioq.rw(nvme.IOWrite, 1, uint64(i*8), 8, buf, 0)), "write")
		ioq.mustOK(first(ioq.rw(nvme.IORead, 1, uint64(i*8), 8, nil, len(buf))), "read")
	}
	ioq.rw(nvme.IORead, 1, testBlocks, 1, nil, testBlockSize) // an error

	src := tt.target.Source()
	src.Snapshot() // the first snapshot sets the rate marks
	views := src.Snapshot().([]nvmf.SubsystemView)
	if len(views) != 1 || views[0].NQN != testNQN {
		t.Fatalf("views %+v", views)
	}
	sv := views[0]
	if sv.Stats.ReadOps != 10 || sv.Stats.WriteOps != 10 || sv.Stats.BytesWritten != 10*uint64(len(buf)) || sv.Stats.Errors != 1 {
		t.Errorf("subsystem stats %+v", sv.Stats.IOStats)
	}
	if len(sv.Controllers) != 1 || len(sv.Controllers[0].Qpairs) != 2 {
		t.Fatalf("controllers %+v", sv.Controllers)
	}
	q := sv.Controllers[0].Qpairs[1]
	if q.QID != 1 || q.Stats.ReadOps != 10 || q.Stats.LatencyP99 == "0s" {
		t.Errorf("I/O qpair view %+v", q)
	}
	if _, err := json.Marshal(src.Snapshot()); err != nil {
		t.Errorf("snapshot does not marshal: %v", err)
	}
	sys := actors.NewSystem(tt.set, actors.Options{Logger: testLogger(t)})
	t.Cleanup(func() { sys.Shutdown(stopTimeout) })
	dbg := actors.NewDebug(sys)
	if err := dbg.Register(src); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dbg.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`sluice_nvmf_commands_total{subsys="` + testNQN + `",op="read"} 10`,
		`sluice_nvmf_qpairs{subsys="` + testNQN + `"} 2`,
		`sluice_nvmf_io_latency_seconds_bucket{subsys="` + testNQN + `",le="+Inf"} 20`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	var admins, ios uint64
	for _, g := range tt.target.Stats().PollGroups {
		admins += g.CurrentAdminQpairs
		ios += g.CurrentIOQpairs
	}
	if admins != 1 || ios != 1 {
		t.Errorf("poll groups count %d admin and %d I/O qpairs, want 1 and 1", admins, ios)
	}
}
