package bench

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/streamkit/stream"
)

// event is the small struct of the object-mode rows (24 bytes).
type event struct {
	ID  int64
	TS  int64
	Val float64
}

// Batches of the object-mode rows: at most ofMaxBatch items per Writev
// call; WriteChunk returns false at two batches (one in flight, the next
// filling up) and "drain" comes once one is done.
const (
	ofMaxBatch      = 500
	ofHighWaterMark = 2 * ofMaxBatch
)

// eventJob is one Writev call handed to the worker of an eventSink.
type eventJob struct {
	items []event
	done  stream.Callback
}

// eventSink is a Writev sink that completes on its own goroutine: the
// WritevFuncOf hands (items, done) to a worker goroutine, which "inserts"
// the batch (sums its values) and calls done. The channel has room for
// one job, as asyncSink's: the stream makes one sink call at a time.
type eventSink struct {
	jobs    chan eventJob
	stopped chan struct{}
	n       int64 // owned by the worker until stopped is closed
	sum     float64
}

func newEventSink() *eventSink {
	s := &eventSink{jobs: make(chan eventJob, 1), stopped: make(chan struct{})}
	go s.work()
	return s
}

func (s *eventSink) writev(items []event, done stream.Callback) {
	s.jobs <- eventJob{items: items, done: done}
}

func (s *eventSink) work() {
	defer close(s.stopped)
	for j := range s.jobs {
		s.insert(j.items)
		j.done(nil)
	}
}

func (s *eventSink) insert(items []event) {
	for i := range items {
		s.sum += items[i].Val
	}
	s.n += int64(len(items))
}

// stop ends the worker and returns the items it got. Call it after Done.
func (s *eventSink) stop() int64 {
	close(s.jobs)
	<-s.stopped
	return s.n
}

// batcher is the Go baseline of the object-mode rows: what a Go engineer
// writes without this package. Producers send items on a buffered
// channel; one worker goroutine takes what is there, up to max, into a
// slice, inserts the batch, and calls ack for every item of it. Send
// blocks while the channel is full: that is its backpressure.
type batcher struct {
	items  chan event
	insert func([]event) error
	ack    func(event, error)
	max    int
	done   chan struct{}
}

func newBatcher(capacity, max int, insert func([]event) error, ack func(event, error)) *batcher {
	b := &batcher{items: make(chan event, capacity), insert: insert, ack: ack, max: max, done: make(chan struct{})}
	go b.run()
	return b
}

// Write queues ev, waiting while the channel is full.
func (b *batcher) Write(ev event) { b.items <- ev }

// Close flushes what is queued and waits for the worker.
func (b *batcher) Close() {
	close(b.items)
	<-b.done
}

func (b *batcher) run() {
	defer close(b.done)
	batch := make([]event, 0, b.max)
	for ev := range b.items {
		batch = append(batch[:0], ev)
	fill:
		for len(batch) < b.max {
			select {
			case ev, ok := <-b.items:
				if !ok {
					break fill
				}
				batch = append(batch, ev)
			default:
				break fill
			}
		}
		err := b.insert(batch)
		for _, ev := range batch {
			b.ack(ev, err)
		}
	}
}

// BenchmarkObjectMode is bench/node/objectmode.js: WriteChunk of a small
// struct into a WritableOf with OnWritten (a per-item ack, no closure),
// Writev batches of up to 500 into a sink that completes on its own
// goroutine, HighWaterMark 1000 items, LowWaterMark 500; producers Wait
// when WriteChunk returns false. One iteration is one item.
//
//	WritableOf/producers=N          ours, N producer goroutines
//	WritableOf-closure/producers=1  a closure callback per item instead of OnWritten
//	batcher/producers=N             the Go baseline: a buffered channel of 1000
//	                                items, a worker, a slice, an ack per item
//
// The 16-producer rows use RunParallel, which starts p×GOMAXPROCS
// goroutines: p is the smallest that gives at least 16 (the "producers"
// metric says how many ran).
func BenchmarkObjectMode(b *testing.B) {
	for _, producers := range []int{1, 16} {
		n := "/producers=" + strconv.Itoa(producers)
		b.Run("WritableOf"+n, func(b *testing.B) { benchWritableOf(b, producers, false) })
		b.Run("batcher"+n, func(b *testing.B) { benchBatcher(b, producers) })
	}
	b.Run("WritableOf-closure/producers=1", func(b *testing.B) { benchWritableOf(b, 1, true) })
}

// produce runs write(i) b.N times in all, from producers goroutines, and
// returns how many items were written and how many producers ran.
func produce(b *testing.B, producers int, write func(i int64)) (items int64, ran int) {
	if producers == 1 {
		for b.Loop() {
			write(items)
			items++
		}
		return items, 1
	}
	procs := runtime.GOMAXPROCS(0)
	p := (producers + procs - 1) / procs
	b.SetParallelism(p)
	var total atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var n int64
		for pb.Next() {
			write(n)
			n++
		}
		total.Add(n)
	})
	b.StopTimer()
	return total.Load(), p * procs
}

func benchWritableOf(b *testing.B, producers int, closure bool) {
	b.ReportAllocs()
	s := newEventSink()
	var acked, failed int64 // OnWritten and callbacks run one at a time
	opts := stream.OptionsOf[event]{
		Writev:        s.writev,
		MaxBatch:      ofMaxBatch,
		HighWaterMark: ofHighWaterMark,
		LowWaterMark:  ofMaxBatch,
	}
	if !closure {
		opts.OnWritten = func(_ event, err error) {
			if err != nil {
				failed++
			}
			acked++
		}
	}
	w := stream.NewWritableOf(nil, opts)
	ctx := context.Background()

	allocs := startAllocs()
	start := time.Now()
	items, ran := produce(b, producers, func(i int64) {
		ev := event{ID: i, TS: i, Val: 1}
		var cb stream.Callback
		if closure {
			cb = func(err error) { // captures ev: one allocation per item
				if err != nil || ev.Val != 1 {
					failed++
				}
				acked++
			}
		}
		if !w.WriteChunk(ev, cb) {
			if err := w.Wait(ctx); err != nil {
				b.Errorf("Wait: %v", err)
			}
		}
	})
	w.End()
	waitDone(b, w)
	reportRate(b, start, items, items*int64(unsafe.Sizeof(event{})))
	allocs.report(b, items)
	b.ReportMetric(float64(ran), "producers")
	checkItems(b, s.stop(), s.sum, acked, failed, items)
}

func benchBatcher(b *testing.B, producers int) {
	b.ReportAllocs()
	var n, acked, failed int64 // owned by the worker
	var sum float64
	bt := newBatcher(ofHighWaterMark, ofMaxBatch,
		func(items []event) error {
			for i := range items {
				sum += items[i].Val
			}
			n += int64(len(items))
			return nil
		},
		func(_ event, err error) {
			if err != nil {
				failed++
			}
			acked++
		})

	allocs := startAllocs()
	start := time.Now()
	items, ran := produce(b, producers, func(i int64) {
		bt.Write(event{ID: i, TS: i, Val: 1})
	})
	bt.Close()
	reportRate(b, start, items, items*int64(unsafe.Sizeof(event{})))
	allocs.report(b, items)
	b.ReportMetric(float64(ran), "producers")
	checkItems(b, n, sum, acked, failed, items)
}

// checkItems fails b unless the sink got want items (each of value 1,
// summed into sum) and every one was acknowledged once, with nil.
func checkItems(b *testing.B, got int64, sum float64, acked, failed, want int64) {
	b.Helper()
	if got != want || sum != float64(want) || acked != want || failed != 0 {
		b.Fatalf("sink got %d items (sum %g), %d acks (%d failed), want %d", got, sum, acked, failed, want)
	}
}

// BenchmarkOverflowOf measures memory under a hard cap: 64 producers
// WriteChunk small structs as fast as they can, ignoring the return value,
// into a WritableOf whose sink stalls (the first batch never completes
// until the end), MaxBuffered 1000 items, with each Overflow policy. One
// iteration is one WriteChunk; nearly all are dropped.
//
// peak-heap-MiB is the peak of heap objects (as in BenchmarkSlowSink),
// peak-length the highest State().Length a producer saw (every 64th
// write), which must not exceed MaxBuffered.
func BenchmarkOverflowOf(b *testing.B) {
	for _, policy := range []stream.Overflow{stream.DropNewest, stream.DropOldest} {
		b.Run(policy.String()+"/producers=64", func(b *testing.B) { benchOverflowOf(b, policy, 64) })
	}
}

func benchOverflowOf(b *testing.B, policy stream.Overflow, producers int) {
	const maxBuffered = 1000
	b.ReportAllocs()
	release := make(chan struct{})
	var sinkWG sync.WaitGroup
	var delivered atomic.Int64
	w := stream.NewWritableOf(nil, stream.OptionsOf[event]{
		Writev: func(items []event, done stream.Callback) {
			sinkWG.Add(1)
			go func() {
				defer sinkWG.Done()
				<-release
				delivered.Add(int64(len(items)))
				done(nil)
			}()
		},
		MaxBatch:      ofMaxBatch,
		HighWaterMark: maxBuffered / 2,
		MaxBuffered:   maxBuffered,
		Overflow:      policy,
	})

	runtime.GC()
	h := startHeapPeak()
	base := h.peak.Load()
	var peakLen atomic.Int64
	items, ran := produce(b, producers, func(i int64) {
		w.WriteChunk(event{ID: i, TS: i, Val: 1}, nil)
		if i%64 == 0 {
			storeMax(&peakLen, int64(w.State().Length))
		}
	})
	peak := h.end()
	dropped := w.State().Dropped
	close(release)
	w.End()
	waitDone(b, w)
	sinkWG.Wait()

	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(base)/(1<<20), "base-heap-MiB")
	b.ReportMetric(float64(peakLen.Load()), "peak-length")
	b.ReportMetric(float64(ran), "producers")
	if peakLen.Load() > maxBuffered {
		b.Fatalf("State().Length reached %d, above MaxBuffered %d", peakLen.Load(), maxBuffered)
	}
	if got := delivered.Load() + int64(dropped); got != items {
		b.Fatalf("%d items delivered + %d dropped, want %d written", delivered.Load(), dropped, items)
	}
}

// storeMax sets a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		p := a.Load()
		if v <= p || a.CompareAndSwap(p, v) {
			return
		}
	}
}
