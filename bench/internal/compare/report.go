package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// results holds every run, by measurement and round.
type results struct {
	rounds int
	runs   map[string][]outcome // [round]; a zero outcome was not run
	errs   map[string]error     // the first failure of each measurement
}

func newResults(ms []measurement, rounds int) *results {
	r := &results{rounds: rounds, runs: map[string][]outcome{}, errs: map[string]error{}}
	for _, m := range ms {
		r.runs[m.id] = make([]outcome, rounds)
	}
	return r
}

func (r *results) add(id string, round int, o outcome) {
	r.runs[id][round] = o
	if o.err != nil && r.errs[id] == nil {
		r.errs[id] = o.err
	}
}

// failed reports whether a run of measurement id has failed: it is not run
// again.
func (r *results) failed(id string) bool { return r.errs[id] != nil }

// value returns measurement id's metric in a round, and whether it has one.
func (r *results) value(id, metric string, round int) (float64, bool) {
	runs, ok := r.runs[id]
	if !ok || runs[round].err != nil || runs[round].metrics == nil {
		return 0, false
	}
	v, ok := runs[round].metrics[metric]
	return v, ok
}

// values returns the metric of every round that has it.
func (r *results) values(id, metric string) []float64 {
	var vs []float64
	for round := 0; round < r.rounds; round++ {
		if v, ok := r.value(id, metric, round); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

// ratios returns a/b round by round, for the rounds where both ran.
func (r *results) ratios(a, b, metric string) []float64 {
	var rs []float64
	for round := 0; round < r.rounds; round++ {
		x, ok1 := r.value(a, metric, round)
		y, ok2 := r.value(b, metric, round)
		if ok1 && ok2 && y != 0 {
			rs = append(rs, x/y)
		}
	}
	return rs
}

// median returns the median of vs (the mean of the middle two for an even
// count), or NaN for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// rowResult is a row's medians and verdict.
type rowResult struct {
	ours, node, floor     float64 // medians; NaN when missing
	allocs                float64 // ours' median allocs/write (else allocs/op); NaN when not reported
	vsNode, vsFloor       float64 // medians of the per-round ratios; NaN when missing
	nVsNode, nVsFloor     int     // how many rounds those ratios come from
	met                   string  // yes, no (reasons), error, ?
	oursErr, nodeErr, flE error
}

func evaluate(rw row, res *results) rowResult {
	out := rowResult{
		ours: median(res.values(rw.ours, rw.metric)), node: math.NaN(), floor: math.NaN(),
		allocs: oursAllocs(rw, res), vsNode: math.NaN(), vsFloor: math.NaN(),
		oursErr: res.errs[rw.ours],
	}
	if rw.node != "" {
		out.node = median(res.values(rw.node, rw.metric))
		rs := res.ratios(rw.ours, rw.node, rw.metric)
		out.vsNode, out.nVsNode = median(rs), len(rs)
		out.nodeErr = res.errs[rw.node]
	}
	if rw.floor != "" {
		out.floor = median(res.values(rw.floor, rw.metric))
		rs := res.ratios(rw.ours, rw.floor, rw.metric)
		out.vsFloor, out.nVsFloor = median(rs), len(rs)
		out.flE = res.errs[rw.floor]
	}

	if math.IsNaN(out.ours) {
		out.met = "error"
		return out
	}
	var misses []string
	unknown := false
	check := func(v, limit float64, ok func(v, limit float64) bool, what string) {
		switch {
		case math.IsNaN(v):
			unknown = true
		case !ok(v, limit):
			misses = append(misses, what)
		}
	}
	atLeast := func(v, limit float64) bool { return v >= limit }
	atMost := func(v, limit float64) bool { return v <= limit }
	if rw.minVsNode > 0 {
		check(out.vsNode, rw.minVsNode, atLeast, fmt.Sprintf("%.2f× Node", out.vsNode))
	}
	if rw.minVsFloor > 0 {
		check(out.vsFloor, rw.minVsFloor, atLeast, fmt.Sprintf("%.2f× floor", out.vsFloor))
	}
	if rw.maxOurs > 0 {
		check(out.ours, rw.maxOurs, atMost, fmt.Sprintf("%.2f MiB", out.ours))
	}
	if rw.zeroAllocs {
		check(out.allocs, zeroAllocsMax, atMost, fmt.Sprintf("%.4f allocs/write", out.allocs))
	}
	switch {
	case len(misses) > 0:
		out.met = "no (" + strings.Join(misses, ", ") + ")"
	case unknown:
		out.met = "? (a run it needs failed)"
	default:
		out.met = "yes"
	}
	return out
}

// markdown renders the report.
func markdown(s suite, res *results, mi machine, rounds int, sz sizes, wall time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## bench/compare, %s\n\n", mi.date)
	fmt.Fprintf(&b, "- machine: nproc %s, %s; %s; node %s\n", mi.cpus, mi.cpu, mi.goVersion, mi.nodeVersion)
	fmt.Fprintf(&b, "- rounds: %d, interleaved (every round runs each workload's ours, Node and floor back to back)\n", rounds)
	fmt.Fprintf(&b, "- sizes: %s\n", sz)
	fmt.Fprintf(&b, "- ours, Node, floor: medians over the rounds; ratios: medians of the per-round ratios; wall time %s\n\n",
		wall.Round(time.Second))

	b.WriteString("| workload | ours | Node | Go floor | ours/Node | ours/floor | target | met |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, rw := range s.rows {
		e := evaluate(rw, res)
		ours := cell(rw.metric, e.ours, e.oursErr)
		if rw.zeroAllocs && !math.IsNaN(e.allocs) {
			ours += fmt.Sprintf(", %.4f allocs/write", e.allocs)
		}
		node, floor := "—", "—"
		if rw.node != "" {
			node = cell(rw.metric, e.node, e.nodeErr)
		}
		if rw.floor != "" {
			floor = rw.floorName + " " + cell(rw.metric, e.floor, e.flE)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			rw.name, ours, node, floor, ratioCell(e.vsNode, rw.node != ""), ratioCell(e.vsFloor, rw.floor != ""),
			rw.target(), e.met)
	}

	if len(s.baselines) > 0 {
		b.WriteString("\nGo baselines against Node doing the same work (same rounds):\n\n")
		b.WriteString("| Go baseline | figure | Node | Node figure | baseline/Node |\n|---|---|---|---|---|\n")
		for _, bl := range s.baselines {
			m := s.find(bl.id)
			n := s.find(bl.node)
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", bl.name,
				cell(m.metric, median(res.values(bl.id, m.metric)), res.errs[bl.id]),
				n.label, cell(m.metric, median(res.values(bl.node, m.metric)), res.errs[bl.node]),
				ratioCell(median(res.ratios(bl.id, bl.node, m.metric)), true))
		}
	}

	b.WriteString("\nEvery run (the metric each is compared on; max/min is the spread over the rounds):\n\n")
	b.WriteString("| run | what | metric |")
	for i := 1; i <= rounds; i++ {
		fmt.Fprintf(&b, " %d |", i)
	}
	b.WriteString(" median | max/min |\n|---|---|---|")
	b.WriteString(strings.Repeat("---|", rounds+2) + "\n")
	for _, m := range s.measurements {
		fmt.Fprintf(&b, "| %s | %s | %s |", m.id, m.label, m.metric)
		for round := 0; round < rounds; round++ {
			o := res.runs[m.id][round]
			switch {
			case o.err != nil:
				b.WriteString(" error |")
			case o.metrics == nil:
				b.WriteString(" |")
			default:
				fmt.Fprintf(&b, " %s |", number(m.metric, o.metrics[m.metric]))
			}
		}
		vs := res.values(m.id, m.metric)
		spread := "—"
		if len(vs) > 1 && slices.Min(vs) > 0 {
			spread = fmt.Sprintf("%.2f", slices.Max(vs)/slices.Min(vs))
		}
		fmt.Fprintf(&b, " %s | %s |\n", number(m.metric, median(vs)), spread)
	}

	var errs []string
	for _, m := range s.measurements {
		if err := res.errs[m.id]; err != nil {
			errs = append(errs, fmt.Sprintf("- %s: %s", m.id, firstLine(err.Error())))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nErrors (a failed run is not retried in later rounds):\n\n")
		b.WriteString(strings.Join(errs, "\n") + "\n")
	}
	return b.String()
}

// find returns the measurement with the given id.
func (s suite) find(id string) measurement {
	for _, m := range s.measurements {
		if m.id == id {
			return m
		}
	}
	return measurement{id: id, label: id}
}

// cell formats a median with its unit, or "error".
func cell(metric string, v float64, err error) string {
	if math.IsNaN(v) {
		if err != nil {
			return "error"
		}
		return "—"
	}
	return formatMetric(metric, v)
}

func ratioCell(v float64, applies bool) string {
	if !applies {
		return "—"
	}
	if math.IsNaN(v) {
		return "error"
	}
	return fmt.Sprintf("%.2f×", v)
}

// formatMetric formats v with its unit, e.g. "41.2M writes/s".
func formatMetric(metric string, v float64) string {
	switch metric {
	case writesPerSec:
		return number(metric, v) + " writes/s"
	case mbPerSec:
		return number(metric, v) + " MB/s"
	case peakHeapMiB:
		return number(metric, v) + " MiB"
	}
	return number(metric, v) + " " + metric
}

// number formats v for metric without its unit.
func number(metric string, v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case metric == writesPerSec && v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case metric == writesPerSec && v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case metric == mbPerSec:
		return fmt.Sprintf("%.0f", v)
	case metric == peakHeapMiB:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// count formats a count of writes, e.g. "20M".
func count(n int64) string {
	if n%1_000_000 == 0 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprint(n)
}

// bytesIEC formats a byte count in KiB/MiB/GiB when exact.
func bytesIEC(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// oursAllocs returns the median allocs/write of the row's ours, or its
// allocs/op when the benchmark does not report allocs/write; NaN if none.
func oursAllocs(rw row, res *results) float64 {
	if v := median(res.values(rw.ours, allocsPerWr)); !math.IsNaN(v) {
		return v
	}
	return median(res.values(rw.ours, allocsPerOp))
}
