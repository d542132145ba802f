package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/streamkit/stream"
)

// sinkKind is how the sink of a WriteChunk benchmark completes.
type sinkKind int

const (
	sinkSync  sinkKind = iota // done called before the WriteFunc returns
	sinkAsync                 // done called by a worker goroutine
)

// writeChunkCase is one sub-benchmark of BenchmarkWriteChunk.
type writeChunkCase struct {
	name     string
	sink     sinkKind
	writev   bool // Options.Writev set
	callback bool // a (no-op, counting) callback per write
	size     int
}

// BenchmarkWriteChunk is Node's manywrites.js and bigchunks.js noop: many
// WriteChunk calls of one reused chunk into a sink that counts bytes.
// One iteration is one write.
//
//	sync/16B          node manywrites.js N sync 16
//	sync-cb/16B       node manywrites.js N sync 16 yes
//	sync-writev/16B   node manywrites.js N writev-sync 16
//	async/16B         node manywrites.js N async 16
//	async-writev/16B  node manywrites.js N writev-async 16
//	sync/64KiB        node bigchunks.js N*64K noop 64K
//
// Node's writev variants define only _writev, which Node then calls with
// one chunk when one is buffered; here Options.Writev gets 2+ chunks and
// the WriteFunc single ones, the same work.
func BenchmarkWriteChunk(b *testing.B) {
	for _, tc := range []writeChunkCase{
		{name: "sync/16B", sink: sinkSync, size: 16},
		{name: "sync-cb/16B", sink: sinkSync, callback: true, size: 16},
		{name: "sync-writev/16B", sink: sinkSync, writev: true, size: 16},
		{name: "async/16B", sink: sinkAsync, size: 16},
		{name: "async-writev/16B", sink: sinkAsync, writev: true, size: 16},
		{name: "sync/1KiB", sink: sinkSync, size: 1 << 10},
		{name: "sync/64KiB", sink: sinkSync, size: 64 << 10},
		{name: "async/64KiB", sink: sinkAsync, size: 64 << 10},
	} {
		b.Run(tc.name, func(b *testing.B) { benchWriteChunk(b, tc) })
	}
}

func benchWriteChunk(b *testing.B, tc writeChunkCase) {
	b.ReportAllocs()
	chunk := filled(tc.size)
	var (
		opts   stream.Options
		write  stream.WriteFunc
		cs     *countSink
		as     *asyncSink
		called = new(paddedCounter) // apart from the sink's counter
		cb     stream.Callback
	)
	switch tc.sink {
	case sinkSync:
		cs = &countSink{}
		write = cs.write
		if tc.writev {
			opts.Writev = cs.writev
		}
	case sinkAsync:
		as = newAsyncSink()
		write = as.write
		if tc.writev {
			opts.Writev = as.writev
		}
	}
	if tc.callback {
		// Made once: a closure per write would be an allocation per write
		// that Node's benchmark does not have either (it passes one function).
		cb = func(err error) {
			if err == nil {
				called.Add(1)
			}
		}
	}
	w := stream.NewWritable(write, opts)

	var writes int64
	allocs := startAllocs()
	start := time.Now()
	for b.Loop() {
		writes++
		if !w.WriteChunk(chunk, cb) {
			<-w.Ready()
		}
	}
	endAndWait(b, w)
	reportRate(b, start, writes, writes*int64(tc.size))
	allocs.report(b, writes)

	var got int64
	if as != nil {
		got = as.stop()
	} else {
		got = cs.n
	}
	checkBytes(b, got, writes*int64(tc.size))
	if tc.callback && called.Load() != writes {
		b.Fatalf("%d callbacks succeeded, want %d", called.Load(), writes)
	}
}

// BenchmarkCork16 is Node's cork.js: batches of 16 writes between Cork and
// Uncork into a sink with Options.Writev, so each batch reaches the sink as
// one Writev call. If a write of a batch returned false, the producer waits
// on Ready after Uncork. One iteration is one write (16 per batch).
//
//	sync/16B   node cork.js N sync 16 16
//	async/16B  node cork.js N async 16 16
func BenchmarkCork16(b *testing.B) {
	for _, kind := range []struct {
		name string
		sink sinkKind
	}{{"sync", sinkSync}, {"async", sinkAsync}} {
		b.Run(kind.name+"/16B", func(b *testing.B) { benchCork(b, kind.sink, 16, 16) })
	}
}

func benchCork(b *testing.B, kind sinkKind, size, batch int) {
	b.ReportAllocs()
	chunk := filled(size)
	var (
		cs   *countSink
		as   *asyncSink
		opts stream.Options
		w    *stream.Writable
	)
	if kind == sinkSync {
		cs = &countSink{}
		opts.Writev = cs.writev
		w = stream.NewWritable(cs.write, opts)
	} else {
		as = newAsyncSink()
		opts.Writev = as.writev
		w = stream.NewWritable(as.write, opts)
	}

	var writes int64
	inBatch := 0
	ok := true
	allocs := startAllocs()
	start := time.Now()
	for b.Loop() {
		if inBatch == 0 {
			w.Cork()
		}
		writes++
		if !w.WriteChunk(chunk, nil) {
			ok = false
		}
		if inBatch++; inBatch == batch {
			inBatch = 0
			w.Uncork()
			if !ok {
				<-w.Ready()
				ok = true
			}
		}
	}
	if inBatch > 0 {
		w.Uncork()
	}
	endAndWait(b, w)
	reportRate(b, start, writes, writes*int64(size))
	allocs.report(b, writes)

	var got int64
	if as != nil {
		got = as.stop()
	} else {
		got = cs.n
	}
	checkBytes(b, got, writes*int64(size))
}

// BenchmarkWriteChunkParallel has several producer goroutines write 16 B
// chunks with WriteChunk into one stream with a sync sink, each calling
// Wait when WriteChunk returned false (the producer loop the package
// documents: Wait wakes its callers one at a time as room appears, where
// every goroutine on <-Ready() would wake at each drain). Its writes/s is
// the aggregate of all producers; bench/compare compares 64 producers with
// one, the same code, in the same round.
//
// The benchmark starts exactly the named number of producers itself
// (RunParallel cannot start fewer than GOMAXPROCS goroutines) and splits
// the b.N writes evenly between them; they all start at once, and the
// clock runs until the last of them is done and the stream has closed.
// One iteration is one write.
func BenchmarkWriteChunkParallel(b *testing.B) {
	for _, producers := range []int{1, 2, 8, 64} {
		b.Run("producers="+strconv.Itoa(producers)+"/16B", func(b *testing.B) {
			benchWriteChunkParallel(b, producers)
		})
	}
}

func benchWriteChunkParallel(b *testing.B, producers int) {
	b.ReportAllocs()
	cs := &countSink{}
	w := stream.NewWritable(cs.write, stream.Options{})
	writes := int64(b.N)
	var allocs allocCounter
	var begin time.Time
	runProducers(producers, writes, func() {
		allocs = startAllocs()
		b.ResetTimer()
		begin = time.Now()
	}, func(_ int, n int64) {
		for range n {
			if !w.WriteChunk(chunk16, nil) {
				if err := w.Wait(context.Background()); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.StopTimer()
	endAndWait(b, w)
	reportRate(b, begin, writes, writes*16)
	allocs.report(b, writes)
	b.ReportMetric(float64(producers), "producers")
	checkBytes(b, cs.n, writes*16)
}
