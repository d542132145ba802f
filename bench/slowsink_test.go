package bench

import (
	"context"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamkit/stream"
)

// Pacing of slowSink: it sleeps this long each time it has received another
// slowEvery bytes, which caps it near 1 GB/s, slower than reading a cached
// file, so the stream's backpressure is what keeps memory bounded.
const (
	slowEvery = 1 << 20
	slowSleep = time.Millisecond
)

// heapObjectsMetric is the heap memory taken by objects, live ones and dead
// ones not yet swept: what a stream that buffers too much, or allocates
// garbage per chunk, makes grow.
const heapObjectsMetric = "/memory/classes/heap/objects:bytes"

// heapPeak tracks the peak of heapObjectsMetric, sampled every millisecond
// by a goroutine of its own and by the sink at each chunk.
type heapPeak struct {
	peak atomic.Uint64
	mu   sync.Mutex // mu guards sample, the sink's sample buffer
	s    []metrics.Sample
	stop chan struct{}
	done chan struct{}
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{
		s:    []metrics.Sample{{Name: heapObjectsMetric}},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	h.sample()
	go h.loop()
	return h
}

func (h *heapPeak) loop() {
	defer close(h.done)
	s := []metrics.Sample{{Name: heapObjectsMetric}}
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			metrics.Read(s)
			h.record(s[0].Value.Uint64())
		}
	}
}

// sample reads the metric now (from the sink).
func (h *heapPeak) sample() {
	h.mu.Lock()
	metrics.Read(h.s)
	v := h.s[0].Value.Uint64()
	h.mu.Unlock()
	h.record(v)
}

func (h *heapPeak) record(v uint64) {
	for {
		p := h.peak.Load()
		if v <= p || h.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// end stops the sampler and returns the peak in bytes.
func (h *heapPeak) end() uint64 {
	h.sample()
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// slowSink copies each chunk into a fixed 64 KiB buffer, counts it, and
// sleeps slowSleep per slowEvery bytes received. In the stream it runs on
// a worker goroutine of its own and completes from there (like the async
// sink of BenchmarkWriteChunk); as an io.Writer it does the same work
// synchronously.
type slowSink struct {
	heap    *heapPeak
	buf     [64 << 10]byte
	n       int64
	jobs    chan asyncJob
	stopped chan struct{}
}

func (s *slowSink) consume(p []byte) {
	s.heap.sample()
	before := s.n
	for len(p) > 0 {
		k := copy(s.buf[:], p)
		p = p[k:]
		s.n += int64(k)
	}
	for i := before / slowEvery; i < s.n/slowEvery; i++ {
		time.Sleep(slowSleep)
	}
}

// Write is the io.Writer form, for the io.CopyBuffer floor.
func (s *slowSink) Write(p []byte) (int, error) {
	s.consume(p)
	return len(p), nil
}

func (s *slowSink) start() {
	s.jobs = make(chan asyncJob, 1)
	s.stopped = make(chan struct{})
	go func() {
		defer close(s.stopped)
		for j := range s.jobs {
			if j.chunks != nil {
				for _, c := range j.chunks {
					s.consume(c)
				}
			} else {
				s.consume(j.chunk)
			}
			j.done(nil)
		}
	}()
}

func (s *slowSink) write(chunk []byte, done stream.Callback) {
	s.jobs <- asyncJob{chunk: chunk, done: done}
}

func (s *slowSink) writev(chunks [][]byte, done stream.Callback) {
	s.jobs <- asyncJob{chunks: chunks, done: done}
}

func (s *slowSink) stop() int64 {
	close(s.jobs)
	<-s.stopped
	return s.n
}

// BenchmarkSlowSink measures memory: -filesize bytes (1 GiB by default) of
// a cached file copied into a sink slower than the file (slowSink). The
// figure is peak-heap-MiB, the peak of runtime/metrics
// "/memory/classes/heap/objects:bytes" (live and not yet swept objects of
// the whole test binary, so it includes garbage awaiting GC), sampled every
// millisecond and at every sink call; base-heap-MiB is its value at the
// start. One iteration is one whole copy.
//
//	Pipeline-HWM16KiB   stream.Pipeline(file, NewWritable(slow sink, HighWaterMark 16 KiB,
//	                    Writev set)); target: peak ≤ 2 MiB
//	                    (node slowsink.js: pipeline(createReadStream, Writable{hwm 16 KiB}))
//	io.CopyBuffer-64KiB the Go floor: io.CopyBuffer(slow sink, file, 64 KiB buffer)
func BenchmarkSlowSink(b *testing.B) {
	for _, tc := range []struct {
		name string
		copy func(b *testing.B, s *slowSink, src io.Reader)
	}{
		{"Pipeline-HWM16KiB", slowPipeline},
		{"io.CopyBuffer-64KiB", slowCopyBuffer},
	} {
		b.Run(tc.name, func(b *testing.B) {
			size := fileSize(b)
			src := defaultPath(*srcFileFlag, "bench-src")
			if err := ensureRandomFile(src, size); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(size)
			var peak, base uint64
			for b.Loop() {
				// Untimed: collect the garbage of the set-up (and of the
				// previous iteration), so that the peak is this copy's.
				b.StopTimer()
				runtime.GC()
				in, err := os.Open(src)
				if err != nil {
					b.Fatal(err)
				}
				h := startHeapPeak()
				b.StartTimer()
				base = h.peak.Load()
				s := &slowSink{heap: h}
				tc.copy(b, s, in)
				in.Close()
				peak = max(peak, h.end())
				checkBytes(b, s.n, size)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(base)/(1<<20), "base-heap-MiB")
		})
	}
}

func slowPipeline(b *testing.B, s *slowSink, src io.Reader) {
	s.start()
	w := stream.NewWritable(s.write, stream.Options{HighWaterMark: 16 << 10, Writev: s.writev})
	err := stream.Pipeline(context.Background(), w, src)
	s.stop()
	if err != nil {
		b.Fatal(err)
	}
}

func slowCopyBuffer(b *testing.B, s *slowSink, src io.Reader) {
	if _, err := io.CopyBuffer(s, src, make([]byte, 64<<10)); err != nil {
		b.Fatal(err)
	}
}
