package perf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-storage/sluice/conf"
	"github.com/sluice-storage/sluice/drivers/malloc"
	"github.com/sluice-storage/sluice/drivers/null"
	"github.com/sluice-storage/sluice/services/bdev"
)

func register(extra map[string]bdev.Driver) func(*bdev.Registry) error {
	return func(reg *bdev.Registry) error {
		if err := reg.RegisterDriver(null.Name, null.Driver{}); err != nil {
			return err
		}
		if err := reg.RegisterDriver(malloc.Name, malloc.Driver{}); err != nil {
			return err
		}
		for name, d := range extra {
			if err := reg.RegisterDriver(name, d); err != nil {
				return err
			}
		}
		return nil
	}
}

func topology(t testing.TB, yaml string) *conf.Topology {
	t.Helper()
	top, err := conf.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return top
}

const testTopology = `
bdevs:
  - name: Null0
    driver: "null"
    size: 1GiB
  - name: Malloc0
    driver: malloc
    size: 32MiB
`

// testCores are the cores the tests run jobs on: two when the machine
// allows, so the cross-core paths run too.
func testCores(t testing.TB) []int {
	t.Helper()
	m := conf.HostMachine()
	return m.CPUs[:min(2, len(m.CPUs))]
}

func TestRunBdevWorkloads(t *testing.T) {
	top := topology(t, testTopology)
	for _, b := range []string{"Null0", "Malloc0"} {
		for _, w := range Workloads {
			if w == WorkloadVerify && b == "Null0" {
				continue // null keeps nothing: TestVerifyCatches
			}
			t.Run(b+"/"+string(w), func(t *testing.T) {
				rep, err := RunBdev(context.Background(), BdevOptions{Topology: top, Bdev: b, Workload: w,
					QueueDepth: 8, Duration: 50 * time.Millisecond, Cores: testCores(t), Register: register(nil)})
				if err != nil {
					t.Fatal(err)
				}
				checkReport(t, rep, len(testCores(t)))
			})
		}
	}
}

func checkReport(t *testing.T, rep *Report, cores int) {
	t.Helper()
	if len(rep.Cores) != cores || rep.Errors != 0 || rep.Total.IOs == 0 || rep.Total.IOPS <= 0 {
		t.Fatalf("report: %d cores (want %d), %d errors, %d IOs, %.0f IOPS", len(rep.Cores), cores, rep.Errors,
			rep.Total.IOs, rep.Total.IOPS)
	}
	var sum uint64
	for _, c := range append([]Stats{rep.Total}, statsOf(rep.Cores)...) {
		l := c.Latency
		if !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Avg <= l.Max) {
			t.Errorf("latency %+v is not ordered 0 < p50 <= p99 <= p999 <= max", l)
		}
		sum += c.IOs
	}
	if sum != 2*rep.Total.IOs {
		t.Errorf("cores' IOs add up to %d, total says %d", sum-rep.Total.IOs, rep.Total.IOs)
	}
}

func statsOf(cs []CoreReport) []Stats {
	var out []Stats
	for _, c := range cs {
		out = append(out, c.Stats)
	}
	return out
}

func TestReportJSON(t *testing.T) {
	rep, err := RunBdev(context.Background(), BdevOptions{Duration: 20 * time.Millisecond, Register: register(nil)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil || strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("not one JSON object and a newline: %v\n%s", err, buf.String())
	}
	total := got["total"].(map[string]any)
	lat := total["latency_us"].(map[string]any)
	for _, k := range []string{"avg", "p50", "p99", "p999", "max"} {
		if _, ok := lat[k].(float64); !ok {
			t.Errorf("total.latency_us.%s missing in %s", k, buf.String())
		}
	}
	for _, k := range []string{"iops", "mibps"} {
		if _, ok := total[k].(float64); !ok {
			t.Errorf("total.%s missing", k)
		}
	}
	if _, ok := got["errors"].(float64); !ok || len(got["cores"].([]any)) != 1 {
		t.Errorf("errors or cores missing: %s", buf.String())
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !strings.Contains(text.String(), "total") || !strings.Contains(text.String(), "p99.9 us") {
		t.Errorf("text report:\n%s", text.String())
	}
}

func TestVerifyPasses(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		top := topology(t, fmt.Sprintf("bdevs:\n  - name: M\n    driver: malloc\n    block_size: %d\n    size: 8MiB\n", bs))
		for _, size := range []int{4096, 16384} {
			rep, err := RunBdev(context.Background(), BdevOptions{Topology: top, Workload: WorkloadVerify, IOSize: size,
				QueueDepth: 16, Duration: 100 * time.Millisecond, Cores: testCores(t), Register: register(nil)})
			if err != nil {
				t.Fatalf("block %d IO %d: %v", bs, size, err)
			}
			checkReport(t, rep, len(testCores(t)))
		}
	}
}

// lossy is malloc that drops writes to one block after the first: a later
// read finds an older generation there.
type lossy struct {
	bdev.Backend
	lba uint64
}

func (l *lossy) NewChannel(loc *bdev.Local) (bdev.ChannelBackend, error) {
	c, err := l.Backend.NewChannel(loc)
	return &lossyChannel{c, l, false}, err
}

type lossyChannel struct {
	bdev.ChannelBackend
	l       *lossy
	written bool
}

func (c *lossyChannel) Submit(io *bdev.IO) {
	if io.Type == bdev.IOWrite && io.OffsetBlocks <= c.l.lba && c.l.lba < io.OffsetBlocks+io.Blocks {
		if c.written {
			io.Complete(bdev.StatusSuccess) // lost
			return
		}
		c.written = true
	}
	c.ChannelBackend.Submit(io)
}

func TestVerifyCatches(t *testing.T) {
	lossyDriver := bdev.DriverFunc(func(s bdev.Spec) (bdev.Backend, error) {
		b, err := malloc.Driver{}.Create(s)
		return &lossy{b, 3}, err
	})
	tests := []struct {
		driver, field string
		lba           uint64
	}{
		{"null", "magic", noSlot}, // reads zeros: any LBA
		{"lossy", "generation", 3},
	}
	for _, tc := range tests {
		// Built in code: conf knows no lossy driver.
		top := &conf.Topology{Bdevs: []conf.Bdev{{Name: "B", Driver: conf.Driver(tc.driver), BlockSize: 512, Size: 64 << 10, Blocks: 128}}}
		_, err := RunBdev(context.Background(), BdevOptions{Topology: top, Workload: WorkloadVerify, IOSize: 512,
			QueueDepth: 4, Duration: 2 * time.Second, Register: register(map[string]bdev.Driver{"lossy": lossyDriver})})
		var ve *VerifyError
		if !errors.As(err, &ve) || !errors.Is(err, ErrVerify) || ve.Field != tc.field || (tc.lba != noSlot && ve.LBA != tc.lba) {
			t.Errorf("%s: %v, want a %s mismatch at LBA %d", tc.driver, err, tc.field, tc.lba)
		}
	}
}

func TestVerifyBlock(t *testing.T) {
	b := make([]byte, 512)
	stampBlock(b, 77, 5)
	if f, _, _ := checkBlock(b, 77, 5); f != "" {
		t.Fatalf("fresh block fails %s", f)
	}
	tests := []struct {
		flip     int
		lba, gen uint64
		field    string
	}{
		{-1, 78, 5, "lba"},
		{-1, 77, 6, "generation"},
		{offVerifyMagic, 77, 5, "magic"},
		{offVerifyLBA + 7, 77, 5, "lba"},
		{offVerifyGen, 77, 5, "generation"},
		{offVerifyHash + 3, 77, 5, "hash"},
		{VerifyHeaderSize, 77, 5, "hash"},
		{511, 77, 5, "hash"},
	}
	for _, tc := range tests {
		c := slices.Clone(b)
		if tc.flip >= 0 {
			c[tc.flip] ^= 0x40
		}
		if f, _, _ := checkBlock(c, tc.lba, tc.gen); f != tc.field {
			t.Errorf("flip byte %d, expect LBA %d gen %d: blamed %q, want %q", tc.flip, tc.lba, tc.gen, f, tc.field)
		}
	}
	if testing.AllocsPerRun(100, func() { stampBlock(b, 1, 2); checkBlock(b, 1, 2) }) != 0 {
		t.Error("stamp and check allocate")
	}
}

// TestHistogram compares quantiles with exact ones over seeded samples: a
// bucket is at most 1/histSubCount of its value wide.
func TestHistogram(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, spread := range []float64{100, 1e4, 1e7} {
		var h histogram
		vals := make([]uint64, 100000)
		for i := range vals {
			vals[i] = uint64(rnd.ExpFloat64() * spread)
			h.record(vals[i])
		}
		slices.Sort(vals)
		for _, q := range []float64{0.5, 0.99, 0.999, 1} {
			exact := float64(vals[max(0, int(q*float64(len(vals)))-1)])
			got := h.quantile(q)
			if d := got - exact; d < -exact/histSubCount-1 || d > exact/histSubCount+1 {
				t.Errorf("spread %g q %g: %g, exact %g", spread, q, got, exact)
			}
		}
		if h.max != vals[len(vals)-1] {
			t.Errorf("max %d, want %d", h.max, vals[len(vals)-1])
		}
	}
	for i := 0; i < histBuckets-1; i++ {
		if lo := histLow(i); histBucket(lo) != i || histBucket(histLow(i+1)-1) != i {
			t.Fatalf("bucket %d: low %d maps to %d", i, lo, histBucket(lo))
		}
	}
}

func TestParseCores(t *testing.T) {
	tests := []struct {
		in   string
		want []int
	}{
		{"0x1", []int{0}}, {"0x3", []int{0, 1}}, {"0XA", []int{1, 3}}, {"0", []int{0}},
		{"0,2", []int{0, 2}}, {"1-3", []int{1, 2, 3}}, {"[0,2-3]", []int{0, 2, 3}},
		{"", nil}, {"0x0", nil}, {"3-1", nil}, {"1,1", nil}, {"a", nil}, {"-1", nil}, {"0,1024", nil},
	}
	for _, tc := range tests {
		got, err := ParseCores(tc.in)
		if !slices.Equal(got, tc.want) || (err == nil) != (tc.want != nil) {
			t.Errorf("ParseCores(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseIOSize(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"4096", 4096}, {"4k", 4096}, {"4K", 4096}, {"128k", 131072}, {"1M", 1 << 20}, {"4KiB", 4096},
		{"16MiB", 16 << 20}, {"17M", 0}, {"4 k", 0}, {"k", 0}, {"-4k", 0}, {"1.5k", 0},
	}
	for _, tc := range tests {
		got, err := ParseIOSize(tc.in)
		if got != tc.want || (err == nil) != (tc.want != 0) {
			t.Errorf("ParseIOSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// TestMainBdev runs the command line end to end and checks exit codes and
// that every bad flag is reported at once.
func TestMainBdev(t *testing.T) {
	var out, errOut bytes.Buffer
	code := MainBdev(context.Background(), []string{"-t", "0.05", "--json", "-q", "4", "-o", "4k"}, &out, &errOut, register(nil), nil)
	if code != 0 || !strings.HasPrefix(out.String(), `{"cores":[`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code = MainBdev(context.Background(), []string{"-w", "sideways", "-q", "0", "-o", "3x", "-m", "z", "-b", "Nope"}, &out, &errOut, register(nil), nil)
	for _, want := range []string{"-q 0", "-o:", "-m:", "workload sideways", `bdev "Nope"`} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	if code != 2 || out.Len() != 0 {
		t.Errorf("bad flags: exit %d, stdout %q; want 2 and nothing", code, out.String())
	}
}
