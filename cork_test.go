package stream_test

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// Spec F1, F2, F4 (experiment 03/A; test-stream-writableState-uncorked-
// bufferedRequestCount, priority case 35): Cork nests, only the last Uncork
// flushes (synchronously, in one Writev), and an extra Uncork is a no-op.
func TestCorkNests(t *testing.T) {
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{Writev: sink.Writev})

	w.Cork()
	w.Cork()
	assert.Equal(t, 2, w.State().Corked, "Corked after two Corks")
	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.WriteChunk(chunk("b"), rec.Callback("b"))

	w.Uncork()
	st := w.State()
	assert.Equal(t, 1, st.Corked, "Corked after the first Uncork")
	assert.Equal(t, 2, st.Buffered, "Buffered after the first Uncork")
	assert.Empty(t, sink.Log(), "no sink call while still corked")

	w.Uncork()
	st = w.State()
	assert.Equal(t, 0, st.Corked, "Corked after the second Uncork")
	assert.Equal(t, 0, st.Buffered, "Buffered after the second Uncork")
	assert.Equal(t, []string{"writev [a b]"}, sink.Log(), "the last Uncork flushes both chunks in one Writev before returning")

	w.Uncork()
	w.Uncork()
	assert.Equal(t, 0, w.State().Corked, "Corked after extra Uncorks")

	w.End()
	streamtest.WaitDone(t, w)
	assert.Equal(t, []string{"cb a <nil>", "cb b <nil>", "finish", "close"}, rec.Log(), "events")
}

// Spec E7, F2 (experiment 02/F; test-stream3-cork-uncork, priority case
// 36): without Writev, Uncork writes the buffered chunks one by one, in
// order, before it returns; the callbacks follow in order, and no "finish"
// without End.
func TestUncorkFlushesInOrder(t *testing.T) {
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{})

	w.Cork()
	for _, c := range []string{"a", "b", "c"} {
		w.WriteChunk(chunk(c), rec.Callback(c))
	}
	assert.Empty(t, sink.Log(), "no sink call while corked")
	w.Uncork()
	assert.Equal(t, []string{"write a", "write b", "write c"}, sink.Log(), "sink calls when Uncork returned")

	rec.WaitFor(t, "cb c <nil>")
	assert.Equal(t, []string{"cb a <nil>", "cb b <nil>", "cb c <nil>"}, rec.Log(), "events")
}

// Spec F4, F6, A8 (test-stream-writev, priority case 34): two or more
// buffered chunks go to Writev in one call, a single one goes to the
// WriteFunc, and without Writev they go one by one; every callback runs in
// order before "finish".
func TestWritevBatches(t *testing.T) {
	tests := []struct {
		desc     string
		writev   func(*streamtest.Sink) stream.WritevFunc
		chunks   []string
		wantSink []string
	}{
		{
			desc:     "Writev gets every buffered chunk",
			writev:   func(s *streamtest.Sink) stream.WritevFunc { return s.Writev },
			chunks:   []string{"a", "b", "c"},
			wantSink: []string{"writev [a b c]"},
		},
		{
			desc:     "a single buffered chunk goes to the WriteFunc",
			writev:   func(s *streamtest.Sink) stream.WritevFunc { return s.Writev },
			chunks:   []string{"only"},
			wantSink: []string{"write only"},
		},
		{
			desc:     "without Writev the chunks go one by one",
			writev:   func(*streamtest.Sink) stream.WritevFunc { return nil },
			chunks:   []string{"a", "b", "c"},
			wantSink: []string{"write a", "write b", "write c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink()
			w, rec := open(t, sink, stream.Options{Writev: tt.writev(sink)})

			var wantLog []string
			w.Cork()
			for _, c := range tt.chunks {
				w.WriteChunk(chunk(c), rec.Callback(c))
				wantLog = append(wantLog, "cb "+c+" <nil>")
			}
			w.Uncork()
			w.End()
			streamtest.WaitDone(t, w)

			assert.Equal(t, tt.wantSink, sink.Log(), "sink calls")
			assert.Equal(t, append(wantLog, "finish", "close"), rec.Log(), "events")
		})
	}
}

// Spec F5, F6 (experiment 03/H): chunks buffered behind a write in flight
// flush through Writev without any Cork; the batch is one write in flight
// whose Length is the sum of its chunks.
func TestWritevAfterWriteInFlight(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Writes...)
	w, rec := open(t, sink, stream.Options{Writev: sink.Writev})

	for _, c := range []string{"a", "bb", "c", "d"} {
		w.WriteChunk(chunk(c), rec.Callback(c))
	}
	first := sink.Next(t)
	require.Equal(t, "write a", first.String(), "first sink call")
	first.Done(nil)
	batch := sink.Next(t)
	require.Equal(t, "writev [bb c d]", batch.String(), "second sink call")
	st := w.State()
	assert.Equal(t, 4, st.Length, "Length while the batch is in flight")
	assert.Equal(t, 0, st.Buffered, "Buffered while the batch is in flight")
	batch.Done(nil)
	w.End()
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"cb a <nil>", "cb bb <nil>", "cb c <nil>", "cb d <nil>", "finish", "close"}, rec.Log(), "events")
}

// Spec F6, I4 (experiment 03/I; test-stream-writable-write-writev-finish,
// priority case 27): a failed Writev gives its error to every chunk's
// callback, then "error" and "close", never "finish".
func TestWritevErrorReachesEveryCallback(t *testing.T) {
	boom := errors.New("boom")
	sink := streamtest.NewSink().FailCall(streamtest.Writev, 1, boom)
	w, rec := open(t, sink, stream.Options{Writev: sink.Writev, Final: sink.Final})

	w.Cork()
	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.WriteChunk(chunk("b"), rec.Callback("b"))
	w.End()
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"cb a boom", "cb b boom", "error boom", "close"}, rec.Log(), "events")
	assert.Equal(t, 0, sink.Count(streamtest.Final), "Final calls after a sink error")
	assert.ErrorIs(t, w.Close(), boom, "Close after a Writev error")
}

// Spec F3 (experiment 03/J): a Cork while a write is in flight keeps the
// later chunks buffered after that write completes, until Uncork.
func TestCorkDuringWriteInFlight(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.Cork()
	w.WriteChunk(chunk("b"), rec.Callback("b"))
	sink.Next(t).Done(nil)
	rec.WaitFor(t, "cb a <nil>")

	assert.Equal(t, []string{"write a"}, sink.Log(), "sink calls while corked")
	assert.Equal(t, 1, w.State().Buffered, "Buffered while corked")

	w.Uncork()
	c := sink.Next(t)
	assert.Equal(t, "write b", c.String(), "sink call after Uncork")
	c.Done(nil)
	rec.WaitFor(t, "cb b <nil>")
}

// Spec F7, G1 (experiment 03/G; test-stream3-cork-end and
// test-stream-writableState-uncorked-bufferedRequestCount, priority cases
// 35, 36): End uncorks fully whatever the nesting and flushes before it
// returns; "finish" comes later.
func TestEndUncorksFully(t *testing.T) {
	tests := []struct {
		desc     string
		corks    int
		chunks   []string
		wantSink []string
	}{
		{
			desc:     "three Corks, three chunks",
			corks:    3,
			chunks:   []string{"a", "b", "c"},
			wantSink: []string{"writev [a b c]"},
		},
		{
			desc:     "one Cork, one chunk",
			corks:    1,
			chunks:   []string{"a"},
			wantSink: []string{"write a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink()
			w, rec := open(t, sink, stream.Options{Writev: sink.Writev})

			var wantLog []string
			for range tt.corks {
				w.Cork()
			}
			for _, c := range tt.chunks {
				w.WriteChunk(chunk(c), rec.Callback(c))
				wantLog = append(wantLog, "cb "+c+" <nil>")
			}
			w.End()
			st := w.State()
			assert.Equal(t, 0, st.Corked, "Corked after End")
			assert.Equal(t, 0, st.Buffered, "Buffered after End")
			assert.Equal(t, tt.wantSink, sink.Log(), "sink calls when End returned")

			streamtest.WaitDone(t, w)
			assert.Equal(t, append(wantLog, "finish", "close"), rec.Log(), "events")
		})
	}
}

// DESIGN "Details": a Cork after End counts until the next End, which
// uncorks fully again.
func TestCorkAfterEnd(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Final)
	w, _ := open(t, sink, stream.Options{Final: sink.Final})

	w.End()
	final := sink.Next(t)
	w.Cork()
	assert.Equal(t, 1, w.State().Corked, "Corked after a Cork after End")
	w.End()
	assert.Equal(t, 0, w.State().Corked, "Corked after a second End")

	final.Done(nil)
	assert.NoError(t, w.Close(), "Close")
}

// frames returns the depth of the caller's stack, capped at 1024.
func frames() int {
	var pcs [1024]uintptr
	return runtime.Callers(1, pcs[:])
}

// DESIGN rule 10: a million corked chunks flush through a synchronous sink
// on Uncork in constant stack: the sink is never re-entered and neither the
// sink nor the callbacks see the stack grow.
func TestMillionCorkedChunksConstantStack(t *testing.T) {
	n := 1 << 20
	if testing.Short() {
		n = 1 << 16
	}
	const sample = 4096 // measure the stack every sample calls
	var (
		depth, maxDepth   atomic.Int32
		writes, callbacks atomic.Int64
		mu                sync.Mutex
		sinkFrames        []int
		cbFrames          []int
	)
	write := func(_ []byte, done stream.Callback) {
		maxDepth.Store(max(maxDepth.Load(), depth.Add(1)))
		if writes.Add(1)%sample == 1 {
			mu.Lock()
			sinkFrames = append(sinkFrames, frames())
			mu.Unlock()
		}
		done(nil)
		depth.Add(-1)
	}
	cb := func(error) {
		if callbacks.Add(1)%sample == 1 {
			mu.Lock()
			cbFrames = append(cbFrames, frames())
			mu.Unlock()
		}
	}
	w := stream.NewWritable(write, stream.Options{})
	streamtest.Cleanup(t, w)

	one := []byte{'x'}
	w.Cork()
	for range n {
		w.WriteChunk(one, cb)
	}
	require.Equal(t, n, w.State().Buffered, "Buffered while corked")
	w.Uncork()
	require.NoError(t, w.Close(), "Close")

	assert.Equal(t, int64(n), writes.Load(), "sink calls")
	assert.Equal(t, int64(n), callbacks.Load(), "callbacks")
	assert.Equal(t, int32(1), maxDepth.Load(), "deepest nesting of sink calls")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, sinkFrames, "stack samples in the sink")
	require.NotEmpty(t, cbFrames, "stack samples in the callbacks")
	assert.Less(t, slices.Max(sinkFrames), 200, "stack frames in the sink (first sample %d)", sinkFrames[0])
	assert.Less(t, slices.Max(cbFrames), 200, "stack frames in the callbacks (first sample %d)", cbFrames[0])
}
