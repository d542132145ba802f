package bench

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/bench/internal/size"
)

// Flags of the test binary (after -args with go test, or directly on a
// binary built with go test -c). bench/compare sets them.
var (
	fileSizeFlag = flag.String("filesize", "1G",
		"bytes copied by BenchmarkFileCopy and BenchmarkSlowSink (suffix K, M or G: powers of 1024)")
	srcFileFlag = flag.String("srcfile", "",
		"source file of BenchmarkFileCopy and BenchmarkSlowSink; made (untimed) if it does not hold -filesize bytes (default $TMPDIR/bench-src-SIZE.bin)")
	dstFileFlag = flag.String("dstfile", "",
		"destination of BenchmarkFileCopy, rewritten in place; made (untimed) if it does not hold -filesize bytes (default $TMPDIR/bench-ow-go-SIZE.bin)")
	closeTimeout = flag.Duration("closetimeout", 2*time.Minute,
		"how long a benchmark waits for Done after End before it fails")
)

// chunk16 is the 16-byte chunk of the small-write benchmarks. Like the Node
// scripts, every write passes the same slice: the stream may keep it until
// the write's callback, and nobody modifies it.
var chunk16 = filled(16)

// filled returns n bytes of 'a', like Node's Buffer.alloc(n, 0x61).
func filled(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = 'a'
	}
	return p
}

// cacheLine is the size of a CPU cache line on amd64 and arm64 (the
// prefetcher of some x86 parts pairs lines: 64 is the unit of sharing).
const cacheLine = 64

// countSink is a sink that completes each write before returning (Node's
// _write calling its callback synchronously) and counts the bytes it got.
// The stream makes at most one sink call at a time, so n needs no lock; read
// it after Done. n has a cache line of its own: a stream that runs the sink
// and the write callbacks on different goroutines must not be measured
// fighting over a line the benchmark happens to share between its
// counters.
type countSink struct {
	_ [cacheLine]byte
	n int64
	_ [cacheLine - 8]byte
}

// paddedCounter is an atomic counter on a cache line of its own, like
// countSink.n.
type paddedCounter struct {
	_ [cacheLine]byte
	atomic.Int64
	_ [cacheLine - 8]byte
}

func (s *countSink) write(chunk []byte, done stream.Callback) {
	s.n += int64(len(chunk))
	done(nil)
}

func (s *countSink) writev(chunks [][]byte, done stream.Callback) {
	for _, c := range chunks {
		s.n += int64(len(c))
	}
	done(nil)
}

// asyncJob is one sink call handed to the worker of an asyncSink.
type asyncJob struct {
	chunk  []byte
	chunks [][]byte // set for a writev call
	done   stream.Callback
}

// asyncSink is a sink that completes later on its own goroutine: the
// WriteFunc hands (chunk, done) to a worker goroutine, which counts the
// bytes and calls done. It is the Go form of a Node _write that calls back
// via process.nextTick.
//
// The channel has room for one job because the stream makes at most one
// sink call at a time; the worker's done may start the next call on the
// worker itself, and that send must not block.
type asyncSink struct {
	jobs    chan asyncJob
	stopped chan struct{}
	// passes is how many times the worker reads every byte (a checksum in
	// sum, so that the loop is not optimised away) before it completes
	// the call: a sink call then takes time in proportion to its bytes,
	// on the worker's core, like one that compresses or encrypts.
	passes int
	n      int64  // owned by the worker until stopped is closed
	sum    uint64 // the same
}

func newAsyncSink() *asyncSink { return newWorkSink(0) }

// newWorkSink returns an asyncSink whose worker reads every byte passes
// times: a slow consumer whose producers wait.
func newWorkSink(passes int) *asyncSink {
	s := &asyncSink{jobs: make(chan asyncJob, 1), stopped: make(chan struct{}), passes: passes}
	go s.work()
	return s
}

func (s *asyncSink) write(chunk []byte, done stream.Callback) {
	s.jobs <- asyncJob{chunk: chunk, done: done}
}

func (s *asyncSink) writev(chunks [][]byte, done stream.Callback) {
	s.jobs <- asyncJob{chunks: chunks, done: done}
}

func (s *asyncSink) work() {
	defer close(s.stopped)
	for j := range s.jobs {
		if j.chunks != nil {
			for _, c := range j.chunks {
				s.take(c)
			}
		} else {
			s.take(j.chunk)
		}
		j.done(nil)
	}
}

func (s *asyncSink) take(c []byte) {
	s.n += int64(len(c))
	for range s.passes {
		for _, x := range c {
			s.sum = s.sum*31 + uint64(x)
		}
	}
}

// runProducers starts producers goroutines that split writes between
// them (producer i gets n of them), waits until all are running, then
// starts them at once, and returns when the last returned; it calls
// started just before the start, so the clock can start there.
func runProducers(producers int, writes int64, started func(), produce func(i int, n int64)) {
	var (
		ready sync.WaitGroup // every producer is running
		start = make(chan struct{})
		done  sync.WaitGroup
	)
	for i := range producers {
		n := writes / int64(producers)
		if int64(i) < writes%int64(producers) {
			n++
		}
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			produce(i, n)
		}()
	}
	ready.Wait()
	started()
	close(start)
	done.Wait()
}

// stop ends the worker and returns the bytes it got. Call it after Done.
func (s *asyncSink) stop() int64 {
	close(s.jobs)
	<-s.stopped
	return s.n
}

// endAndWait ends w, waits for Done and fails b if the stream reports an
// error or does not close in time.
func endAndWait(b *testing.B, w *stream.Writable) {
	b.Helper()
	w.End()
	waitDone(b, w)
}

// closing is what waitDone needs of a Writable or a WritableOf.
type closing interface {
	Done() <-chan struct{}
	Err() error
	State() stream.State
}

// waitDone waits for w's Done and fails b if the stream has an error.
func waitDone(b *testing.B, w closing) {
	b.Helper()
	t := time.NewTimer(*closeTimeout)
	defer t.Stop()
	select {
	case <-w.Done():
	case <-t.C:
		b.Fatalf("stream not closed %v after End: %+v", *closeTimeout, w.State())
	}
	if err := w.Err(); err != nil {
		b.Fatalf("stream error: %v", err)
	}
}

// checkBytes fails b unless the sink got want bytes.
func checkBytes(b *testing.B, got, want int64) {
	b.Helper()
	if got != want {
		b.Fatalf("sink received %d bytes, want %d", got, want)
	}
}

// reportRate reports writes/s and MB/s (decimal, like go test's own and the
// Node scripts') from start until now. They cover the whole run, the flush
// after the last write included, which ns/op leaves out.
func reportRate(b *testing.B, start time.Time, writes, bytes int64) {
	b.Helper()
	secs := time.Since(start).Seconds()
	if secs <= 0 {
		return
	}
	b.ReportMetric(float64(writes)/secs, "writes/s")
	b.ReportMetric(float64(bytes)/secs/1e6, "MB/s")
}

// fileSize returns -filesize in bytes, failing b on a bad value.
func fileSize(b *testing.B) int64 {
	b.Helper()
	n, err := size.Parse(*fileSizeFlag)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// defaultPath returns flagValue, or $TMPDIR/prefix-SIZE.bin when it is empty.
func defaultPath(flagValue, prefix string) string {
	if flagValue != "" {
		return flagValue
	}
	return filepath.Join(os.TempDir(), prefix+"-"+strings.ToLower(*fileSizeFlag)+".bin")
}

// sizeOf returns the size of the file at path, or -1.
func sizeOf(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// allocCounter counts the heap allocations of a whole run (the flush after
// the last write and the stream's goroutines included) to report
// allocs/write as a fraction: go test's allocs/op is an integer division,
// which shows 0 for anything under one allocation per write.
type allocCounter struct {
	mallocs uint64
}

func startAllocs() allocCounter {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return allocCounter{mallocs: ms.Mallocs}
}

// report reports allocs/write for the given number of writes.
func (a allocCounter) report(b *testing.B, writes int64) {
	b.Helper()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if writes > 0 {
		b.ReportMetric(float64(ms.Mallocs-a.mallocs)/float64(writes), "allocs/write")
	}
}
