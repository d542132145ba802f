package stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// waitGroup waits for wg, failing the test after streamtest.Timeout.
func waitGroup(t testing.TB, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	streamtest.Recv(t, done, what)
}

// waitReady waits on w.Ready from any goroutine; false after a timeout.
func waitReady(w *stream.Writable) bool {
	select {
	case <-w.Ready():
		return true
	case <-time.After(streamtest.Timeout):
		return false
	}
}

// DESIGN rules 2, 9: WriteChunk from many goroutines: every chunk arrives
// once, each goroutine's chunks in the order it wrote them, whole (one chunk
// per WriteChunk, also inside a Writev), and the callbacks run once each, in
// the order the chunks reached the sink. State and Err may be read meanwhile.
func TestConcurrentWriteChunk(t *testing.T) {
	const goroutines, perGoroutine = 8, 500
	sink := streamtest.NewSink().SetMode(streamtest.Async, streamtest.Writes...)
	w, _ := open(t, sink, stream.Options{Writev: sink.Writev})
	var (
		mu      sync.Mutex
		cbOrder []string // chunks, in the order their callbacks ran
	)

	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() { // a reader of State and Err, for the race detector
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			default:
				st := w.State()
				_ = w.Err()
				if st.Length < 0 || st.Buffered < 0 || st.PendingCallbacks < 0 {
					t.Errorf("negative counter in %+v", st)
					return
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				c := fmt.Sprintf("g%d:%04d;", g, i)
				w.WriteChunk(chunk(c), func(err error) {
					if err != nil {
						t.Errorf("callback of %s: %v", c, err)
					}
					mu.Lock()
					cbOrder = append(cbOrder, c)
					mu.Unlock()
				})
			}
		})
	}
	waitGroup(t, &wg, "the writers")
	close(stop)
	streamtest.Recv(t, polled, "the State reader")
	require.NoError(t, w.Close(), "Close")

	next := make([]int, goroutines)
	var sinkOrder []string
	for _, c := range sink.Calls() {
		for _, ch := range c.Chunks {
			sinkOrder = append(sinkOrder, string(ch))
			var g, i int
			_, err := fmt.Sscanf(string(ch), "g%d:%04d;", &g, &i)
			require.NoError(t, err, "a chunk is one WriteChunk's chunk: %q", ch)
			require.Less(t, g, goroutines, "goroutine number in %q", ch)
			require.Equal(t, next[g], i, "next chunk of goroutine %d", g)
			next[g]++
		}
	}
	for g := range goroutines {
		assert.Equal(t, perGoroutine, next[g], "chunks of goroutine %d", g)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, cbOrder, goroutines*perGoroutine, "callbacks")
	assert.True(t, slices.Equal(sinkOrder, cbOrder), "callbacks run in the order the chunks reached the sink")
}

// DESIGN rule 3 ("however the goroutines interleave"): producers that wait
// on Ready whenever WriteChunk returns false are never stranded.
func TestReadyNeverStrandsProducers(t *testing.T) {
	const producers, perProducer = 8, 1000
	sink := streamtest.NewSink().SetMode(streamtest.Async, streamtest.Writes...)
	w, _ := open(t, sink, stream.Options{HighWaterMark: 64, Writev: sink.Writev})

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for range perProducer {
				if !w.WriteChunk([]byte{byte('a' + p)}, nil) && !waitReady(w) {
					t.Errorf("producer %d: Ready not closed within %v", p, streamtest.Timeout)
					return
				}
			}
		})
	}
	waitGroup(t, &wg, "the producers")
	require.NoError(t, w.Close(), "Close")

	data := sink.Data()
	for p := range producers {
		assert.Equal(t, perProducer, strings.Count(data, string(rune('a'+p))), "bytes of producer %d", p)
	}
}

// io.Writer from many goroutines: every byte arrives, and memory stays
// bounded by the backpressure of each Write.
func TestConcurrentWrite(t *testing.T) {
	const writers, writes, size = 8, 20, 1024
	sink := streamtest.NewSink().SetMode(streamtest.Async, streamtest.Writes...)
	w, _ := open(t, sink, stream.Options{HighWaterMark: 4096, Writev: sink.Writev})

	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			p := bytes.Repeat([]byte{byte('a' + g)}, size)
			for range writes {
				if n, err := w.Write(p); err != nil || n != size {
					t.Errorf("writer %d: Write = %d, %v", g, n, err)
					return
				}
			}
		})
	}
	waitGroup(t, &wg, "the writers")
	require.NoError(t, w.Close(), "Close")

	data := sink.Data()
	for g := range writers {
		assert.Equal(t, writes*size, strings.Count(data, string(rune('a'+g))), "bytes of writer %d", g)
	}
}

// DESIGN rule 9: callbacks and events run one at a time per stream, in
// order, however many goroutines complete writes.
func TestCallbacksNeverOverlap(t *testing.T) {
	const n = 500
	sink := streamtest.NewSink().SetMode(streamtest.Async, streamtest.Write)
	w, _ := open(t, sink, stream.Options{HighWaterMark: 8})
	var (
		active   atomic.Int32
		overlaps atomic.Int32
		mu       sync.Mutex
		order    []int
	)
	enter := func() {
		if active.Add(1) != 1 {
			overlaps.Add(1)
		}
	}
	leave := func() { active.Add(-1) }
	w.OnDrain(func() {
		enter()
		leave()
	})

	for i := range n {
		ok := w.WriteChunk(chunk("x"), func(error) {
			enter()
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			leave()
		})
		if !ok {
			streamtest.Recv(t, w.Ready(), "Ready")
		}
	}
	require.NoError(t, w.Close(), "Close")

	assert.Zero(t, overlaps.Load(), "handlers that ran while another one was running")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, order, n, "callbacks")
	for i, got := range order {
		if !assert.Equal(t, i, got, "callback #%d", i) {
			break
		}
	}
}

// Decisions "Errors": Close is idempotent and safe from many goroutines;
// they all get the same result.
func TestConcurrentClose(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc   string
		result error // of the write in flight
		want   error
	}{
		{desc: "clean", result: nil, want: nil},
		{desc: "sink error", result: boom, want: boom},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			const closers = 16
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, _ := open(t, sink, stream.Options{})
			w.WriteChunk(chunk("a"), nil)

			results := make([]<-chan error, closers)
			for i := range results {
				results[i] = closeAsync(w)
			}
			sink.Next(t).Done(tt.result)

			for i, ch := range results {
				assert.ErrorIs(t, streamtest.Recv(t, ch, "Close to return"), tt.want, "Close #%d", i)
			}
		})
	}
}

// DESIGN rules 6, 9: a Destroy racing with writers from many goroutines:
// every callback runs exactly once, also for writes made after close.
func TestConcurrentDestroyCallsEveryCallbackOnce(t *testing.T) {
	const writers, perWriter = 8, 300
	boom := errors.New("boom")
	sink := streamtest.NewSink().SetMode(streamtest.Async, streamtest.Writes...)
	w, _ := open(t, sink, stream.Options{Writev: sink.Writev})
	var (
		calls [writers * perWriter]atomic.Int32
		total atomic.Int64
		all   = make(chan struct{})
	)

	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				k := g*perWriter + i
				w.WriteChunk(chunk("x"), func(error) {
					calls[k].Add(1)
					if total.Add(1) == writers*perWriter {
						close(all)
					}
				})
				if g == 0 && i == perWriter/2 {
					w.Destroy(boom)
				}
			}
		})
	}
	waitGroup(t, &wg, "the writers")
	streamtest.Recv(t, all, "every callback")
	streamtest.WaitDone(t, w)

	for k := range calls {
		if !assert.Equal(t, int32(1), calls[k].Load(), "calls of callback %d", k) {
			break
		}
	}
	assert.ErrorIs(t, w.Err(), boom, "Err")
}

// DESIGN rule 11: every goroutine the library started has ended once Done
// is closed, however the stream closed.
func TestNoGoroutineAfterDone(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc string
		opts func(t *testing.T, sink *streamtest.Sink) stream.Options
		act  func(w *stream.Writable)
	}{
		{
			desc: "clean end",
			opts: func(_ *testing.T, sink *streamtest.Sink) stream.Options {
				return stream.Options{Final: sink.Final, Destroy: sink.Destroy}
			},
			act: func(w *stream.Writable) {
				w.WriteChunk(chunk("a"), func(error) {})
				w.End()
			},
		},
		{
			desc: "Destroy with buffered writes",
			opts: func(_ *testing.T, sink *streamtest.Sink) stream.Options { return stream.Options{Writev: sink.Writev} },
			act: func(w *stream.Writable) {
				w.Cork()
				w.WriteChunk(chunk("a"), func(error) {})
				w.WriteChunk(chunk("b"), func(error) {})
				w.Destroy(boom)
			},
		},
		{
			desc: "sink error",
			opts: func(_ *testing.T, sink *streamtest.Sink) stream.Options {
				sink.FailCall(streamtest.Write, 1, boom)
				return stream.Options{}
			},
			act: func(w *stream.Writable) { w.WriteChunk(chunk("a"), func(error) {}) },
		},
		{
			desc: "Construct",
			opts: func(_ *testing.T, sink *streamtest.Sink) stream.Options {
				return stream.Options{Construct: sink.Construct}
			},
			act: func(w *stream.Writable) { w.End() },
		},
		{
			desc: "Context never done, StallTimeout set",
			opts: func(t *testing.T, _ *streamtest.Sink) stream.Options {
				return stream.Options{Context: t.Context(), StallTimeout: time.Hour}
			},
			act: func(w *stream.Writable) {
				w.WriteChunk(chunk("a"), func(error) {})
				w.End()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			sink := streamtest.NewSink()
			w := stream.NewWritable(sink.Write, tt.opts(t, sink))
			streamtest.Cleanup(t, w, sink)

			tt.act(w)
			streamtest.WaitDone(t, w)

			goleak.VerifyNone(t, ignore)
		})
	}
}
