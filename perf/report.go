package perf

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Report is a run's result; its JSON is what `sluice perf bdev --json`
// prints: {"cores":[…], "total":{…}, "errors":N}.
type Report struct {
	Cores  []CoreReport `json:"cores"`
	Total  Stats        `json:"total"`
	Errors uint64       `json:"errors"`
	// VerifyState is --verify-state's read-back and save; nil without it.
	VerifyState *StateReport `json:"verify_state,omitempty"`
}

// CoreReport is one core's job.
type CoreReport struct {
	Core int `json:"core"`
	Stats
}

// Stats are the figures of one job or of all.
type Stats struct {
	IOPS    float64 `json:"iops"`
	MiBps   float64 `json:"mibps"`
	Latency Latency `json:"latency_us"`
	IOs     uint64  `json:"ios"`
	Errors  uint64  `json:"errors"`
	Seconds float64 `json:"seconds"`
}

// Latency is in microseconds, from submit to completion as the job saw it.
type Latency struct {
	Avg  float64 `json:"avg"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func report(jobs []*job, o *BdevOptions) *Report {
	rep := &Report{Cores: []CoreReport{}}
	var all histogram
	var maxSeconds float64
	for _, j := range jobs {
		if !isDone(j) {
			continue // hung: its fields are its reactor's (runError says so)
		}
		secs := time.Duration(j.ended - j.started).Seconds()
		st := stats(&j.hist, j.ios, j.errors, secs, o.IOSize)
		rep.Cores = append(rep.Cores, CoreReport{Core: j.core, Stats: st})
		rep.Total.IOPS += st.IOPS
		rep.Total.MiBps += st.MiBps
		rep.Total.IOs += j.ios
		rep.Errors += j.errors
		maxSeconds = max(maxSeconds, secs)
		all.merge(&j.hist)
	}
	tot := stats(&all, rep.Total.IOs, rep.Errors, maxSeconds, o.IOSize)
	rep.Total.Latency, rep.Total.Errors, rep.Total.Seconds = tot.Latency, rep.Errors, maxSeconds
	return rep
}

func stats(h *histogram, ios, errors uint64, secs float64, ioSize int) Stats {
	st := Stats{IOs: ios, Errors: errors, Seconds: secs}
	if secs > 0 {
		st.IOPS = float64(ios) / secs
		st.MiBps = st.IOPS * float64(ioSize) / (1 << 20)
	}
	us := func(ns float64) float64 { return ns / 1e3 }
	st.Latency = Latency{Avg: us(h.mean()), P50: us(h.quantile(0.5)), P99: us(h.quantile(0.99)),
		P999: us(h.quantile(0.999)), Max: us(float64(h.max))}
	return st
}

// WriteJSON writes the report as one JSON object and a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the report as a table, one row per core and a total,
// after a line on the verify state. A run that ended in its read-back has
// only that line.
func (r *Report) WriteText(w io.Writer) error {
	if r.VerifyState != nil {
		if _, err := fmt.Fprintln(w, r.VerifyState.summary()); err != nil {
			return err
		}
		if len(r.Cores) == 0 {
			return nil
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "core\tIOPS\tMiB/s\tavg us\tp50 us\tp99 us\tp99.9 us\tmax us\terrors\t")
	row := func(name string, s Stats) {
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", name, s.IOPS, s.MiBps,
			s.Latency.Avg, s.Latency.P50, s.Latency.P99, s.Latency.P999, s.Latency.Max, s.Errors)
	}
	for _, c := range r.Cores {
		row(fmt.Sprint(c.Core), c.Stats)
	}
	row("total", r.Total)
	return tw.Flush()
}
