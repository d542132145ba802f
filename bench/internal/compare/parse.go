package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// parseGo reads the result line of benchmark name from go test -bench
// output:
//
//	BenchmarkWriteChunk/sync/16B-2   20000000   25.1 ns/op   41000000 writes/s   0 B/op   0 allocs/op
//
// and returns its metrics by unit ("ns/op", "writes/s", "allocs/op", …).
func parseGo(out, name string) (map[string]float64, error) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !sameBenchmark(f[0], name) {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue // a log line that starts with the name
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("bad value %q in %q", f[i], line)
			}
			m[f[i+1]] = v
		}
		return m, nil
	}
	return nil, fmt.Errorf("no result line for %s in the output", name)
}

// sameBenchmark reports whether got, a name as go test prints it (maybe
// with a -GOMAXPROCS suffix), is benchmark name.
func sameBenchmark(got, name string) bool {
	if got == name {
		return true
	}
	rest, ok := strings.CutPrefix(got, name+"-")
	if !ok {
		return false
	}
	_, err := strconv.Atoi(rest)
	return err == nil
}

// parseNode reads the result line of a bench/node script:
//
//	<name> <ops/s> <MB/s> heap_peak_MiB=<x> rss_peak_MiB=<y> … ops=<n> bytes=<b> secs=<t> [k=v …]
//
// ops/s becomes "writes/s", heap_peak_MiB also "peak-heap-MiB"; every k=v
// with a numeric v is kept under k.
func parseNode(out string) (map[string]float64, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	f := strings.Fields(line)
	if len(f) < 3 {
		return nil, fmt.Errorf("no result line in %q", line)
	}
	ops, err1 := strconv.ParseFloat(f[1], 64)
	mbs, err2 := strconv.ParseFloat(f[2], 64)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("bad result line %q: %v", line, err)
	}
	m := map[string]float64{writesPerSec: ops, mbPerSec: mbs}
	for _, kv := range f[3:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			m[k] = x
		}
	}
	if h, ok := m["heap_peak_MiB"]; ok {
		m[peakHeapMiB] = h
	}
	return m, nil
}

// failureSummary picks the line that says why a run failed: a panic, a
// b.Fatal message (file_test.go:NN: …), else the last line.
func failureSummary(out string) string {
	var last, fatal string
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		if strings.HasPrefix(t, "panic:") {
			return t
		}
		if fatal == "" && strings.Contains(t, "_test.go:") && !strings.HasPrefix(t, "/") {
			fatal = t
		}
		if t != "FAIL" && t != "exit status 1" {
			last = t
		}
	}
	if fatal != "" {
		return fatal
	}
	return last
}
