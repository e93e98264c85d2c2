package stage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/perf"
	"github.com/sluice-storage/sluice/services/bdev"
	"github.com/sluice-storage/sluice/services/crypto"
	"github.com/sluice-storage/sluice/services/errinject"
	"github.com/sluice-storage/sluice/services/replica"
	"github.com/sluice-storage/sluice/services/stage"
)

// stageDriver builds stages as the registry creates the topology's bdevs in
// order: a bdev whose driver is "stage" is made by the builder of its name,
// over bases created before it. It records each stage in list.
type stageDriver struct {
	reg      **bdev.Registry
	list     *stage.List
	builders map[string]func(reg *bdev.Registry) (stage.Backend, error)
}

func (d stageDriver) Create(spec bdev.Spec) (bdev.Backend, error) {
	build, ok := d.builders[spec.Name]
	if !ok {
		return nil, fmt.Errorf("no stage builder for %q", spec.Name)
	}
	s, err := build(*d.reg)
	if err != nil {
		return nil, err
	}
	if got := s.Spec(); got.Blocks != spec.Blocks || got.BlockSize != spec.BlockSize {
		s.Close()
		return nil, fmt.Errorf("stage %q is %d blocks of %d, the topology says %d of %d",
			spec.Name, got.Blocks, got.BlockSize, spec.Blocks, spec.BlockSize)
	}
	return s, d.list.Add(s)
}

// progressEvents turns perf's one-line-a-second progress into events the
// test waits on: the run's own clock, never a sleep of the test's.
type progressEvents chan string

func (p progressEvents) Write(b []byte) (int, error) {
	select {
	case p <- string(b):
	default: // nobody waiting: the line is not needed
	}
	return len(b), nil
}

// TestVerifyThroughMemberFailureAndRebuild is the issue's proof: `sluice
// perf bdev -w verify` through crypto over a three-way replica whose third
// member is an error stage. Mid-run the error stage fails every IO: zero
// verify errors and zero failed IOs, and the member is reported faulty. It
// is replaced by a fresh malloc and rebuilt (throttled) while the run goes
// on; then the two original members are failed too, so every read comes
// from the rebuilt one, and the verify run still finds nothing wrong.
func TestVerifyThroughMemberFailureAndRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	const size = 32 << 20
	var reg *bdev.Registry
	list := &stage.List{}
	key := testKey(t, "proof", 256)
	var e0, e1, e2 *errinject.Stage
	var rep *replica.Stage
	builders := map[string]func(*bdev.Registry) (stage.Backend, error){
		"C": func(r *bdev.Registry) (stage.Backend, error) {
			return crypto.New(r, crypto.Config{Name: "C", Base: "R", Key: key})
		},
		"R": func(r *bdev.Registry) (stage.Backend, error) {
			s, err := replica.New(r, replica.Config{Name: "R", Members: []string{"E0", "E1", "E2"},
				RebuildRate: 64 << 20})
			rep = s
			return s, err
		},
	}
	for i, p := range []**errinject.Stage{&e0, &e1, &e2} {
		name := fmt.Sprintf("E%d", i)
		builders[name] = func(r *bdev.Registry) (stage.Backend, error) {
			s, err := errinject.New(r, errinject.Config{Name: name, Base: fmt.Sprintf("M%d", i)})
			*p = s
			return s, err
		}
	}
	top := &conf.Topology{}
	for _, n := range []string{"M0", "M1", "M2"} {
		top.Bdevs = append(top.Bdevs, conf.Bdev{Name: n, Driver: conf.DriverMalloc, BlockSize: 4096, Blocks: size / 4096})
	}
	for _, n := range []string{"E0", "E1", "E2", "R", "C"} {
		top.Bdevs = append(top.Bdevs, conf.Bdev{Name: n, Driver: "stage", BlockSize: 4096, Blocks: size / 4096})
	}
	register := func(r *bdev.Registry) error {
		reg = r
		return errors.Join(r.RegisterDriver(malloc.Name, malloc.Driver{}),
			r.RegisterDriver("stage", stageDriver{reg: &reg, list: list, builders: builders}))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ticks := make(progressEvents)
	var mu sync.Mutex
	var story []string
	say := func(format string, args ...any) {
		mu.Lock()
		story = append(story, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	control := make(chan error, 1)
	go func() {
		control <- func() error {
			tick := func(n int) {
				for range n {
					<-ticks
				}
			}
			tick(1)
			say("inject: E2 fails every IO")
			failAll(e2)
			tick(1)
			st := rep.Status().(replica.Status)
			if st.Members[2].State != "faulty" || st.Members[2].Failures == 0 {
				return fmt.Errorf("after a second of E2 failing: %+v", st.Members)
			}
			if !strings.Contains(fmt.Sprint(list.Source().Snapshot()), "faulty") {
				return errors.New("the debug endpoint's stages view does not show the faulty member")
			}
			say("reported: %s faulty after %d failures, %d dirty regions", st.Members[2].Name, st.Members[2].Failures, st.DirtyRegions)
			if _, err := reg.Create(bdev.Spec{Name: "M3", Driver: malloc.Name, BlockSize: 4096, Blocks: size / 4096}); err != nil {
				return err
			}
			if err := rep.Replace("E2", "M3"); err != nil {
				return err
			}
			say("replaced E2 with M3: rebuild started")
			if err := rep.WaitRebuild(time.Minute); err != nil {
				return err
			}
			st = rep.Status().(replica.Status)
			say("rebuilt: %d of %d regions, members %+v", st.Rebuild.RegionsDone, st.Rebuild.Regions, st.Members)
			if st.InSync != 3 {
				return fmt.Errorf("after the rebuild %d members in sync, want 3", st.InSync)
			}
			failAll(e0)
			failAll(e1)
			say("inject: E0 and E1 fail every IO; reads come from M3 alone")
			tick(2)
			st = rep.Status().(replica.Status)
			if st.InSync != 1 || st.Members[2].State != "in-sync" {
				return fmt.Errorf("with E0 and E1 failing: %+v", st.Members)
			}
			say("verified on M3 alone for two more seconds")
			return nil
		}()
		cancel()
	}()
	rep0, err := perf.RunBdev(ctx, perf.BdevOptions{Topology: top, Bdev: "C", Workload: perf.WorkloadVerify,
		QueueDepth: 32, IOSize: 4096, Duration: 5 * time.Minute, Register: register, Progress: ticks})
	if cerr := <-control; cerr != nil {
		t.Fatalf("control: %v\n%s", cerr, strings.Join(story, "\n"))
	}
	if err != nil {
		t.Fatalf("verify run: %v\n%s", err, strings.Join(story, "\n"))
	}
	if rep0.Errors != 0 || rep0.Total.IOs == 0 {
		t.Fatalf("%d errors in %d IOs", rep0.Errors, rep0.Total.IOs)
	}
	t.Logf("%s\nverify: %d IOs, %.0f IOPS, 0 errors", strings.Join(story, "\n"), rep0.Total.IOs, rep0.Total.IOPS)
}

func failAll(s *errinject.Stage) {
	s.Inject(errinject.Rule{Types: bdev.IOTypesOf(bdev.IORead, bdev.IOWrite, bdev.IOFlush, bdev.IOUnmap, bdev.IOWriteZeroes),
		Count: errinject.CountUnlimited})
}
