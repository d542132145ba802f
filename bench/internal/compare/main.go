// Command compare runs the Go benchmarks of package stream (bench/*_test.go)
// and the same work in Node (bench/node/*.js) interleaved, round after
// round, takes the ratios pair by pair, and prints a Markdown table of the
// medians with each row's target and whether it is met.
//
// Run it with bench/compare from anywhere in the repository:
//
//	bench/compare                 # full sizes, 5 rounds
//	bench/compare -quick          # smaller sizes
//	bench/compare -rounds 9 -only 'sync16|tcp' -o /tmp/result.md
//
// A round runs every measurement once, in a fixed order that keeps each
// workload's runs together (ours, Node, the Go floor): A B A B … across
// rounds. The test binary is built once (go test -c). A run that fails (a
// panic of an unfinished library, a failed check, a timeout) makes its
// measurement "error" and is not retried in later rounds; the others go on.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

func main() {
	var (
		rounds  = flag.Int("rounds", 5, "rounds of interleaved runs (at least 1; targets want 5 or more)")
		quick   = flag.Bool("quick", false, "smaller sizes: "+quickSizes.String())
		only    = flag.String("only", "", "run only the rows whose key matches this regexp (keys: sync16 async16 cb16 writev-async16 cork16-sync cork16-async write16 chunks64k filecopy tcp tcp-hwm256k producers64 memory pipe-chunk16k pipe-write16k pipe-ring16k pipe-chunk256k pipe-write256k pipe-ring256k)")
		timeout = flag.Duration("timeout", 5*time.Minute, "limit of one run (one benchmark or one script)")
		out     = flag.String("o", "", "also write the Markdown report to this file")
		tmp     = flag.String("tmpdir", os.TempDir(), "where the file rows keep their source and destination files")
		verbose = flag.Bool("v", false, "print each run's command and output to stderr")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: bench/compare [flags]\n\n"+
			"Runs the Go benchmarks of package stream and the same work in Node, interleaved,\n"+
			"and prints a Markdown table of ratios and targets. See bench/README.md.\n\n"+
			"full sizes: %v\n\nflags:\n", fullSizes)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *rounds < 1 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	var onlyRE *regexp.Regexp
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fatalf("bad -only: %v", err)
		}
		onlyRE = re
	}
	sz := fullSizes
	if *quick {
		sz = quickSizes
	}

	root, err := moduleRoot()
	if err != nil {
		fatalf("%v", err)
	}
	s := newSuite(sz, *tmp, root).only(onlyRE)
	if len(s.rows) == 0 {
		fatalf("-only %q matches no row", *only)
	}

	r := &runner{root: root, timeout: *timeout, verbose: *verbose}
	started := time.Now()
	info := machineInfo()
	logf("compare: %d rounds, %s; %s", *rounds, sz, info.oneLine())

	work, err := os.MkdirTemp("", "bench-compare-")
	if err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(work)
	r.binary = filepath.Join(work, "bench.test")
	if err := r.build(); err != nil {
		logf("building the Go benchmarks failed; every Go run is an error:\n%v", err)
		r.buildErr = err
	}
	if needsFiles(s) {
		src := filepath.Join(*tmp, "bench-src-"+strings.ToLower(sz.fileSize)+".bin")
		logf("preparing %s (untimed)", src)
		if err := ensureRandomFile(src, sz.fileBytes()); err != nil {
			fatalf("%v", err)
		}
	}

	res := newResults(s.measurements, *rounds)
	for round := 0; round < *rounds; round++ {
		for _, m := range s.measurements {
			if res.failed(m.id) {
				continue
			}
			got := r.run(m)
			res.add(m.id, round, got)
			if got.err != nil {
				logf("[round %d/%d] %-20s error: %v", round+1, *rounds, m.id, firstLine(got.err.Error()))
			} else {
				logf("[round %d/%d] %-20s %s (%.1fs)", round+1, *rounds, m.id, formatMetric(m.metric, got.metrics[m.metric]), got.wall.Seconds())
			}
		}
	}

	report := markdown(s, res, info, *rounds, sz, time.Since(started))
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
}

// runner runs measurements.
type runner struct {
	root     string
	binary   string
	buildErr error
	timeout  time.Duration
	verbose  bool
}

// outcome is one run of a measurement.
type outcome struct {
	metrics map[string]float64
	err     error
	wall    time.Duration
}

func (r *runner) build() error {
	cmd := exec.Command("go", "test", "-c", "-o", r.binary, "./bench")
	cmd.Dir = r.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -c ./bench: %v\n%s", err, out)
	}
	return nil
}

func (r *runner) run(m measurement) outcome {
	var name string
	var args []string
	dir := filepath.Join(r.root, "bench")
	if m.node {
		name = "node"
		args = m.args
	} else {
		if r.buildErr != nil {
			return outcome{err: errors.New("build failed: " + firstLine(r.buildErr.Error()))}
		}
		name = r.binary
		args = append([]string{
			"-test.run=^$",
			"-test.bench=" + benchRegexp(m.bench),
			"-test.benchtime=" + m.btime,
			"-test.benchmem",
			"-test.count=1",
			"-test.timeout=" + r.timeout.String(),
		}, m.args...)
	}
	if r.verbose {
		logf("$ %s %s", name, strings.Join(args, " "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	killGroupOnCancel(cmd)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	o := outcome{wall: time.Since(start)}
	if r.verbose {
		logf("%s%s", stdout.String(), stderr.String())
	}
	switch {
	case ctx.Err() != nil:
		o.err = fmt.Errorf("timed out after %v", r.timeout)
		return o
	case err != nil:
		o.err = fmt.Errorf("%v: %s", err, failureSummary(stdout.String()+"\n"+stderr.String()))
		return o
	}
	if m.node {
		o.metrics, o.err = parseNode(stdout.String())
	} else {
		o.metrics, o.err = parseGo(stdout.String(), m.bench)
	}
	if o.err == nil {
		if _, ok := o.metrics[m.metric]; !ok {
			o.err = fmt.Errorf("no %s in the output", m.metric)
		}
	}
	return o
}

// benchRegexp turns a benchmark's full name into a -test.bench pattern
// that matches it alone.
func benchRegexp(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// needsFiles reports whether a measurement of s uses the source file.
func needsFiles(s suite) bool {
	for _, m := range s.measurements {
		for _, a := range m.args {
			if strings.HasPrefix(a, "-srcfile=") || strings.HasSuffix(a, ".bin") {
				return true
			}
		}
	}
	return false
}

// moduleRoot returns the directory of the main module (the repository).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m (run from the repository): %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "bench", "node", "common.js")); err != nil {
		return "", fmt.Errorf("%s is not the stream repository: %v", dir, err)
	}
	return dir, nil
}

// machine describes where the figures were taken.
type machine struct {
	date, cpus, cpu, goVersion, nodeVersion string
}

func machineInfo() machine {
	m := machine{
		date:        time.Now().UTC().Format("2006-01-02 15:04 MST"),
		cpus:        fmt.Sprint(runtime.NumCPU()),
		cpu:         "unknown CPU",
		goVersion:   commandLine("go", "version"),
		nodeVersion: commandLine("node", "--version"),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.cpu = cpuModel(string(b))
	}
	if n := commandLine("nproc"); n != "" && !strings.HasPrefix(n, "(") {
		m.cpus = n
	}
	return m
}

func (m machine) oneLine() string {
	return fmt.Sprintf("nproc %s, %s, %s, node %s", m.cpus, m.cpu, m.goVersion, m.nodeVersion)
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo string) string {
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// commandLine returns the first line a command prints, or "(…)" if it fails.
func commandLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return fmt.Sprintf("(%s: %v)", name, err)
	}
	return firstLine(strings.TrimSpace(string(out)))
}

// ensureRandomFile makes path hold size random bytes (a random 1 MiB block
// repeated, as the benchmarks on both sides would) unless it has that size.
func ensureRandomFile(path string, size int64) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() == size {
		return nil
	}
	block := make([]byte, 1<<20)
	if _, err := rand.Read(block); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	for left := size; left > 0; left -= int64(len(block)) {
		if _, err := out.Write(block[:min(left, int64(len(block)))]); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func fatalf(format string, args ...any) {
	logf("compare: "+format, args...)
	os.Exit(1)
}
