package stage_test

import (
	"testing"
	"time"

	"github.com/sluice-storage/sluice/drivers/null"
	"github.com/sluice-storage/sluice/reactors"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/delay"
	"github.com/sluice-storage/sluice/services/passthru"
	"github.com/sluice-storage/sluice/services/qos"
	"github.com/sluice-storage/sluice/services/stage"
	"github.com/sluice-storage/sluice/services/stage/stagetest"
)

// benchDepth IOs outstanding per core: enough that the loop never waits on
// the layer's deferred completions, as a real queue would.
const benchDepth = 32

// BenchmarkNullStages is a null bdev's IOPS on one core with 0, 1 and 3
// stages in front (passthru, qos without limits, delay at 0): 4 KiB reads,
// a closed loop of benchDepth on the reactor. ns/op is per IO.
func BenchmarkNullStages(b *testing.B) {
	for _, tc := range []struct {
		name   string
		stages []string
	}{
		{"0-stages", nil},
		{"1-passthru", []string{"passthru"}},
		{"1-qos", []string{"qos"}},
		{"1-delay", []string{"delay"}},
		{"3-stages", []string{"passthru", "qos", "delay"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := stagetest.NewStack(b, 1, null.Driver{ReadsUntouched: true}, reactors.Options{Mode: reactors.ModePoll})
			s.Disks(b, 512, 1<<21, "N0")
			top := "N0"
			for i, kind := range tc.stages {
				name := kind + string(rune('0'+i))
				var st stage.Backend
				var err error
				switch kind {
				case "passthru":
					st, err = passthru.New(s.Reg, passthru.Config{Name: name, Base: top})
				case "qos":
					st, err = qos.New(s.Reg, qos.Config{Name: name, Base: top})
				case "delay":
					st, err = delay.New(s.Reg, delay.Config{Name: name, Base: top})
				}
				s.Add(b, st, err)
				top = name
			}
			runLoop(b, s, top, bdev.IORead, 8)
		})
	}
}

// runLoop drives top with a closed loop on reactor 0 and reports IOPS.
func runLoop(b *testing.B, s *stagetest.Stack, top string, typ bdev.IOType, blocks uint64) {
	b.Helper()
	d, err := s.Reg.Open(top, true)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	r := s.Set.Get(0)
	ch := stagetest.Channel(b, r, d)
	var elapsed time.Duration
	var failed int
	b.ReportAllocs()
	err = r.Call(func() {
		lp := stagetest.NewLoop(ch, typ, benchDepth, blocks)
		lp.Run(4*benchDepth, nil)
		b.ResetTimer()
		start := time.Now()
		failed, _ = lp.Run(b.N, nil)
		elapsed = time.Since(start)
		b.StopTimer()
		lp.Free()
	})
	if err != nil || failed != 0 {
		b.Fatalf("%v, %d IOs failed", err, failed)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "IOPS")
}
