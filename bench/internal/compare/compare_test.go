package main

import (
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const goOutput = `goos: linux
goarch: amd64
pkg: github.com/streamkit/stream/bench
cpu: Intel(R) Xeon(R) Processor
BenchmarkWriteChunk/sync/16B-2   	20000000	        25.10 ns/op	 640.00 MB/s	         0.0000050 allocs/write	  39800000 writes/s	       0 B/op	       0 allocs/op
BenchmarkWriteChunk/sync/16B-extra-2   	 1	        1 ns/op
PASS
`

func TestParseGo(t *testing.T) {
	m, err := parseGo(goOutput, "BenchmarkWriteChunk/sync/16B")
	require.NoError(t, err, "the result line is there")
	assert.Equal(t, 39800000.0, m[writesPerSec], "writes/s")
	assert.Equal(t, 640.0, m[mbPerSec], "MB/s")
	assert.Equal(t, 25.10, m["ns/op"], "ns/op")
	assert.Equal(t, 0.0000050, m[allocsPerWr], "allocs/write")
	assert.Equal(t, 0.0, m[allocsPerOp], "allocs/op")

	_, err = parseGo(goOutput, "BenchmarkWriteChunk/async/16B")
	assert.Error(t, err, "another benchmark's line is not taken")
	_, err = parseGo("panic: unimplemented\n", "BenchmarkWriteChunk/sync/16B")
	assert.Error(t, err, "no result line")
}

func TestSameBenchmark(t *testing.T) {
	tests := []struct {
		desc string
		give string
		want bool
	}{
		{desc: "no suffix", give: "BenchmarkX/a", want: true},
		{desc: "GOMAXPROCS suffix", give: "BenchmarkX/a-16", want: true},
		{desc: "longer name", give: "BenchmarkX/ab-2", want: false},
		{desc: "name with a dash", give: "BenchmarkX/a-b-2", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			assert.Equal(t, tt.want, sameBenchmark(tt.give, "BenchmarkX/a"), "sameBenchmark(%q)", tt.give)
		})
	}
}

func TestParseNode(t *testing.T) {
	out := "some warning\nmanywrites-sync-16B-n20000000 50189066 803.0 heap_peak_MiB=3.5 rss_peak_MiB=45.8 " +
		"ext_peak_MiB=0.1 ops=20000000 bytes=320000000 secs=0.3985 hwm=16384 drains=0\n"
	m, err := parseNode(out)
	require.NoError(t, err, "a result line")
	assert.Equal(t, 50189066.0, m[writesPerSec], "ops/s is writes/s")
	assert.Equal(t, 803.0, m[mbPerSec], "MB/s")
	assert.Equal(t, 3.5, m[peakHeapMiB], "heap_peak_MiB is the peak heap")
	assert.Equal(t, 16384.0, m["hwm"], "extra k=v fields are kept")

	_, err = parseNode("received 1 bytes, want 2\n")
	assert.Error(t, err, "a failure message is no result")
}

func TestBenchRegexp(t *testing.T) {
	re := regexp.MustCompile(strings.Split(benchRegexp("BenchmarkFileCopy/io.Copy"), "/")[1])
	assert.True(t, re.MatchString("io.Copy"), "matches itself")
	assert.False(t, re.MatchString("ioxCopy"), "the dot is literal")
	assert.Equal(t, "^BenchmarkX$/^producers=64$/^16B$", benchRegexp("BenchmarkX/producers=64/16B"), "one anchored part per level")
}

func TestFailureSummary(t *testing.T) {
	tests := []struct {
		desc string
		give string
		want string
	}{
		{desc: "panic", give: "goos: linux\npanic: unimplemented\n\ngoroutine 1 [running]:\n", want: "panic: unimplemented"},
		{desc: "b.Fatal", give: "--- FAIL: BenchmarkX\n    helpers_test.go:150: sink received 1 bytes, want 2\nFAIL\n", want: "helpers_test.go:150: sink received 1 bytes, want 2"},
		{desc: "node", give: "received 1 bytes, want 2\n", want: "received 1 bytes, want 2"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			assert.Equal(t, tt.want, failureSummary(tt.give), "summary")
		})
	}
}

func TestMedian(t *testing.T) {
	assert.Equal(t, 2.0, median([]float64{3, 1, 2}), "odd count")
	assert.Equal(t, 2.5, median([]float64{4, 1, 2, 3}), "even count: mean of the middle two")
	assert.True(t, math.IsNaN(median(nil)), "none")
}

// fakeResults makes results of one metric per measurement and round.
func fakeResults(rounds int, values map[string][]float64, metric string) *results {
	var ms []measurement
	for id := range values {
		ms = append(ms, measurement{id: id})
	}
	res := newResults(ms, rounds)
	for id, vs := range values {
		for round, v := range vs {
			o := outcome{metrics: map[string]float64{metric: v, allocsPerWr: 0}}
			if math.IsNaN(v) {
				o = outcome{err: errors.New("boom")}
			}
			res.add(id, round, o)
		}
	}
	return res
}

func TestEvaluate(t *testing.T) {
	rw := row{ours: "a", node: "n", floor: "f", metric: writesPerSec, minVsNode: 2, minVsFloor: 0.5, zeroAllocs: true}

	// Ratios are taken pair by pair: round 2's slow machine slows both.
	res := fakeResults(3, map[string][]float64{
		"a": {100, 50, 110},
		"n": {40, 20, 60},
		"f": {150, 80, 200},
	}, writesPerSec)
	e := evaluate(rw, res)
	assert.Equal(t, 100.0, e.ours, "median of ours")
	assert.Equal(t, 2.5, e.vsNode, "median of 2.5, 2.5, 1.83")
	assert.InDelta(t, 0.625, e.vsFloor, 1e-9, "median of 0.667, 0.625, 0.55")
	assert.Equal(t, "yes", e.met, "both ratios and allocs within target")

	rw.minVsNode = 3
	assert.True(t, strings.HasPrefix(evaluate(rw, res).met, "no (2.50× Node"), "ratio below target: %q", evaluate(rw, res).met)

	failed := fakeResults(2, map[string][]float64{"a": {math.NaN(), math.NaN()}, "n": {1, 1}, "f": {1, 1}}, writesPerSec)
	assert.Equal(t, "error", evaluate(rw, failed).met, "ours never ran")

	noNode := fakeResults(2, map[string][]float64{"a": {1, 1}, "n": {math.NaN(), math.NaN()}, "f": {1, 1}}, writesPerSec)
	rw.minVsNode = 0.5
	assert.True(t, strings.HasPrefix(evaluate(rw, noNode).met, "?"), "unknown without Node")

	mem := row{ours: "a", node: "n", metric: peakHeapMiB, lowerWins: true, maxOurs: 2}
	memRes := fakeResults(1, map[string][]float64{"a": {2.5}, "n": {4}}, peakHeapMiB)
	assert.Equal(t, "no (2.50 MiB)", evaluate(mem, memRes).met, "absolute ceiling")
}

func TestSuiteOnly(t *testing.T) {
	s := newSuite(fullSizes, "/tmp", "/repo")
	ids := map[string]bool{}
	for _, m := range s.measurements {
		assert.False(t, ids[m.id], "measurement id %s is unique", m.id)
		ids[m.id] = true
	}
	for _, r := range s.rows {
		for _, id := range []string{r.ours, r.node, r.floor} {
			assert.True(t, id == "" || ids[id], "row %s refers to a measurement %q that exists", r.key, id)
		}
	}

	got := s.only(regexp.MustCompile("^producers64$"))
	require.Len(t, got.rows, 1, "one row")
	var kept []string
	for _, m := range got.measurements {
		kept = append(kept, m.id)
	}
	assert.Equal(t, []string{"node-sync16", "go-producers1", "go-producers64"}, kept, "the row's measurements, Node and its floor included, in suite order")
	assert.Empty(t, got.baselines, "no baseline has both its runs")
}
