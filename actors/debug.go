package actors

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/pprof"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Source is a part of the daemon that shows itself on the debug endpoint:
// bdevs, connections, stages. cmd/sluice registers each one.
type Source interface {
	// Name is the path under /debug/ and must be unique: [a-z0-9_]+.
	Name() string
	// Snapshot is the JSON view; a slice of structs also renders as an HTML
	// table for a browser.
	Snapshot() any
	// WriteMetrics writes the source's series; names start with "sluice_".
	WriteMetrics(w *MetricsWriter)
}

// Debug serves the debug endpoint: /debug/actors, /debug/reactors, each
// registered source, /metrics (Prometheus text) and /debug/pprof/.
type Debug struct {
	sys *System

	// lock: the registered sources; written at startup and when a part is
	// added at runtime, read per HTTP request. Never on the I/O path.
	mu      sync.Mutex
	sources map[string]Source
}

// NewDebug makes the endpoint for sys.
func NewDebug(sys *System) *Debug {
	return &Debug{sys: sys, sources: map[string]Source{}}
}

// Register adds a source; a duplicate or malformed name is an error.
func (d *Debug) Register(src Source) error {
	name := src.Name()
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return fmt.Errorf("debug source name %q, want [a-z0-9_]+", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.sources[name]; dup || name == "actors" || name == "reactors" || name == "pprof" {
		return fmt.Errorf("debug source %q registered twice", name)
	}
	d.sources[name] = src
	return nil
}

// Unregister removes a source by name.
func (d *Debug) Unregister(name string) {
	d.mu.Lock()
	delete(d.sources, name)
	d.mu.Unlock()
}

// Handler is the HTTP handler with every route.
func (d *Debug) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/actors", func(w http.ResponseWriter, r *http.Request) {
		writeView(w, r, "actors", d.sys.Stats())
	})
	mux.HandleFunc("/debug/reactors", func(w http.ResponseWriter, r *http.Request) {
		writeView(w, r, "reactors", d.sys.Reactors().Stats())
	})
	mux.HandleFunc("/debug/{source}", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		src, ok := d.sources[r.PathValue("source")]
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		writeView(w, r, src.Name(), src.Snapshot())
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		mw := &MetricsWriter{w: w}
		d.writeMetrics(mw)
	})
	// Go's profiler on our mux, not http.DefaultServeMux.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>sluice</title><h1>sluice debug</h1><ul>")
		for _, p := range append([]string{"debug/actors", "debug/reactors"}, d.sourcePaths()...) {
			fmt.Fprintf(w, `<li><a href="/%s">/%s</a>`, p, p)
		}
		fmt.Fprint(w, `<li><a href="/metrics">/metrics</a><li><a href="/debug/pprof/">/debug/pprof/</a></ul>`)
	})
	return mux
}

func (d *Debug) sourcePaths() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for name := range d.sources {
		out = append(out, "debug/"+name)
	}
	sort.Strings(out)
	return out
}

// writeView answers JSON, or an HTML table when a browser asks for HTML.
func writeView(w http.ResponseWriter, r *http.Request, title string, v any) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		writeHTMLTable(w, title, v)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writeHTMLTable renders a slice of structs as a table, one column per JSON
// field; anything else is shown as indented JSON.
func writeHTMLTable(w io.Writer, title string, v any) {
	fmt.Fprintf(w, "<!doctype html><title>%s</title><h1>%s</h1>", html.EscapeString(title),
		html.EscapeString(title))
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice || rv.Type().Elem().Kind() != reflect.Struct {
		b, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintf(w, "<pre>%s</pre>", html.EscapeString(string(b)))
		return
	}
	et := rv.Type().Elem()
	fmt.Fprint(w, "<table border=1 cellpadding=3><tr>")
	for i := 0; i < et.NumField(); i++ {
		fmt.Fprintf(w, "<th>%s</th>", html.EscapeString(jsonName(et.Field(i))))
	}
	fmt.Fprint(w, "</tr>")
	for i := 0; i < rv.Len(); i++ {
		fmt.Fprint(w, "<tr>")
		row := rv.Index(i)
		for j := 0; j < et.NumField(); j++ {
			f := row.Field(j).Interface()
			cell := ""
			switch x := f.(type) {
			case time.Duration:
				cell = x.String()
			case string:
				cell = x
			default:
				b, _ := json.Marshal(x)
				cell = string(b)
			}
			fmt.Fprintf(w, "<td>%s</td>", html.EscapeString(cell))
		}
		fmt.Fprint(w, "</tr>")
	}
	fmt.Fprint(w, "</table>")
}

func jsonName(f reflect.StructField) string {
	if tag := f.Tag.Get("json"); tag != "" && tag != "-" {
		return strings.Split(tag, ",")[0]
	}
	return f.Name
}

// writeMetrics writes the reactor and actor series, then every source's.
func (d *Debug) writeMetrics(w *MetricsWriter) {
	reactors := d.sys.Reactors().Stats()
	type counter struct {
		name, help string
		get        func(i int) float64
		gauge      bool
	}
	for _, c := range []counter{
		{"sluice_reactor_busy_seconds_total", "Time in loop turns that did work.",
			func(i int) float64 { return reactors[i].Busy.Seconds() }, false},
		{"sluice_reactor_idle_seconds_total", "Time in loop turns that did none, polling or asleep.",
			func(i int) float64 { return reactors[i].Idle.Seconds() }, false},
		{"sluice_reactor_loops_total", "Loop turns.",
			func(i int) float64 { return float64(reactors[i].Loops) }, false},
		{"sluice_reactor_sleeps_total", "Times the reactor slept in epoll_wait.",
			func(i int) float64 { return float64(reactors[i].Sleeps) }, false},
		{"sluice_reactor_sleeping", "1 while the reactor sleeps.",
			func(i int) float64 { return b2f(reactors[i].State == "sleeping") }, true},
		{"sluice_reactor_ring_depth", "Messages queued on the reactor's ring.",
			func(i int) float64 { return float64(reactors[i].RingDepth) }, true},
		{"sluice_reactor_posted_total", "Messages posted to the reactor.",
			func(i int) float64 { return float64(reactors[i].Posted) }, false},
		{"sluice_reactor_ring_full_total", "Posts refused because the ring was full.",
			func(i int) float64 { return float64(reactors[i].RingFull) }, false},
		{"sluice_reactor_overflowed_total", "Posts that spilled to the overflow list.",
			func(i int) float64 { return float64(reactors[i].Overflowed) }, false},
		{"sluice_reactor_panics_total", "Panics recovered in messages and pollers.",
			func(i int) float64 { return float64(reactors[i].Panics) }, false},
	} {
		w.Family(c.name, c.help, c.gauge)
		for i, st := range reactors {
			w.Sample(c.get(i), "reactor", strconv.Itoa(st.Index), "core", strconv.Itoa(st.Core))
		}
	}
	w.Family("sluice_reactor_poller_runs_total", "Poller runs.", false)
	for _, st := range reactors {
		for _, p := range st.Pollers {
			w.Sample(float64(p.Runs), "reactor", strconv.Itoa(st.Index), "poller", p.Name)
		}
	}
	w.Family("sluice_reactor_poller_work_total", "Work reported by pollers.", false)
	for _, st := range reactors {
		for _, p := range st.Pollers {
			w.Sample(float64(p.Work), "reactor", strconv.Itoa(st.Index), "poller", p.Name)
		}
	}

	actors := d.sys.Stats()
	type actorSeries struct {
		name, help string
		get        func(a *ActorStats) float64
		gauge      bool
	}
	for _, c := range []actorSeries{
		{"sluice_actor_mailbox_depth", "Messages in the mailbox now.",
			func(a *ActorStats) float64 { return float64(a.Depth) }, true},
		{"sluice_actor_mailbox_high_water", "Most messages ever in the mailbox.",
			func(a *ActorStats) float64 { return float64(a.HighWater) }, true},
		{"sluice_actor_mailbox_overflowed_total", "Messages that spilled past the mailbox ring.",
			func(a *ActorStats) float64 { return float64(a.Overflowed) }, false},
		{"sluice_actor_processed_total", "Messages handled.",
			func(a *ActorStats) float64 { return float64(a.Processed) }, false},
		{"sluice_actor_handler_seconds_total", "Time spent in the handler.",
			func(a *ActorStats) float64 { return a.Handler.Seconds() }, false},
		{"sluice_actor_restarts_total", "Restarts by the supervisor.",
			func(a *ActorStats) float64 { return float64(a.Restarts) }, false},
	} {
		w.Family(c.name, c.help, c.gauge)
		for i := range actors {
			w.Sample(c.get(&actors[i]), "actor", actors[i].Name, "core", strconv.Itoa(actors[i].Core))
		}
	}

	d.mu.Lock()
	srcs := make([]Source, 0, len(d.sources))
	for _, s := range d.sources {
		srcs = append(srcs, s)
	}
	d.mu.Unlock()
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].Name() < srcs[j].Name() })
	for _, s := range srcs {
		s.WriteMetrics(w)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// MetricsWriter writes the Prometheus text exposition format (0.0.4): a
// family's HELP and TYPE lines, then its samples.
type MetricsWriter struct {
	w    io.Writer
	name string
}

// Family starts a metric family; gauge false means counter.
func (m *MetricsWriter) Family(name, help string, gauge bool) {
	m.name = name
	kind := "counter"
	if gauge {
		kind = "gauge"
	}
	fmt.Fprintf(m.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
}

// Sample writes one sample of the current family; labels are name, value
// pairs.
func (m *MetricsWriter) Sample(v float64, labels ...string) {
	var b strings.Builder
	b.WriteString(m.name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString(`="`)
			b.WriteString(escapeLabel(labels[i+1]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	b.WriteByte('\n')
	io.WriteString(m.w, b.String())
}

// escapeLabel escapes a label value as the text format requires.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
