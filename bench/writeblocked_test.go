package bench

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/wakecount"
)

// blockedSizes are the sizes of the Writes of BenchmarkWriteBlocked, in
// turn: 16 B to 1 KiB, 338 B on average.
var blockedSizes = [...]int{16, 1024, 100, 512, 37, 256, 700, 64}

// blockedMark is the high-water mark of BenchmarkWriteBlocked: about a
// dozen of its Writes fit, so most producers wait at any time.
const blockedMark = 4 << 10

// BenchmarkWriteBlocked has the named number of producers Write 16 B to
// 1 KiB each (blockedSizes) into one stream over a sink that completes on
// its own goroutine, with a 4 KiB high-water mark, so that producers block
// in Write waiting for "drain". The sink is a worker that completes at
// once (drain comes so fast that few producers get to park), or a slow
// one that reads every byte 4 times (workSink: most producers are parked
// at any time); slow-wait has the producers call WriteChunk, then Wait
// when it returned false. One iteration is one write; writes/s is the
// aggregate.
//
// wakeups/drain is how many goroutines resumed from a wait for room inside
// the stream per drain, drains/write how often the stream drained
// (internal/wakecount counts both, in every stream of the process: this
// benchmark runs one at a time). A stream that wakes every waiter at drain
// shows as many as were parked; one that hands the room on from waiter to
// waiter, only as many as the room takes (plus the one that finds it
// gone).
func BenchmarkWriteBlocked(b *testing.B) {
	for _, tc := range []struct {
		name   string
		passes int  // workSink's
		wait   bool // WriteChunk, then Wait when it returns false
	}{{"worker", 0, false}, {"slow", 4, false}, {"slow-wait", 4, true}} {
		for _, producers := range []int{8, 64} {
			b.Run(tc.name+"/producers="+strconv.Itoa(producers), func(b *testing.B) {
				benchWriteBlocked(b, producers, tc.passes, tc.wait)
			})
		}
	}
}

func benchWriteBlocked(b *testing.B, producers, passes int, wait bool) {
	b.ReportAllocs()
	as := newWorkSink(passes)
	w := stream.NewWritable(as.write, stream.Options{HighWaterMark: blockedMark, Writev: as.writev})
	src := filled(blockedSizes[1])
	writes := int64(b.N)
	sent := make([]int64, producers)
	var allocs allocCounter
	var begin time.Time
	runProducers(producers, writes, func() {
		allocs = startAllocs()
		wakecount.Start()
		b.ResetTimer()
		begin = time.Now()
	}, func(i int, n int64) {
		for j := range n {
			size := blockedSizes[(int64(i)+j)%int64(len(blockedSizes))]
			var err error
			if !wait {
				_, err = w.Write(src[:size])
			} else if !w.WriteChunk(src[:size], nil) {
				err = w.Wait(context.Background())
			}
			if err != nil {
				b.Error(err)
				return
			}
			sent[i] += int64(size)
		}
	})
	b.StopTimer()
	drains, wakeups := wakecount.Stop()
	endAndWait(b, w)
	var bytes int64
	for _, n := range sent {
		bytes += n
	}
	reportRate(b, begin, writes, bytes)
	allocs.report(b, writes)
	if drains > 0 {
		b.ReportMetric(float64(wakeups)/float64(drains), "wakeups/drain")
	}
	b.ReportMetric(float64(drains)/float64(writes), "drains/write")
	checkBytes(b, as.stop(), bytes)
}
