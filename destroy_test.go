package stream_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// Spec K1, K2, K4 (experiments 06/A, 06/B; test-stream-writable-destroy,
// priority cases 14, 15): Destroy marks the stream destroyed at once, calls
// the Destroy hook with its error, fires "error" (if any) then "close", and
// never "finish".
func TestDestroy(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc      string
		err       error
		wantLog   []string
		wantSink  []string
		wantClose error
	}{
		{
			desc:      "without error",
			err:       nil,
			wantLog:   []string{"close"},
			wantSink:  []string{"destroy <nil>"},
			wantClose: stream.ErrDestroyed,
		},
		{
			desc:      "with error",
			err:       boom,
			wantLog:   []string{"error boom", "close"},
			wantSink:  []string{"destroy boom"},
			wantClose: boom,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink()
			w, rec := open(t, sink, stream.Options{Destroy: sink.Destroy})

			w.Destroy(tt.err)
			st := w.State()
			assert.True(t, st.Destroyed, "Destroyed when Destroy returned")
			assert.False(t, st.Finished, "Finished when Destroy returned")
			streamtest.WaitDone(t, w)

			assert.Equal(t, tt.wantLog, rec.Log(), "events")
			assert.Equal(t, tt.wantSink, sink.Log(), "sink calls")
			assert.ErrorIs(t, w.Err(), tt.err, "Err")
			assert.ErrorIs(t, w.Close(), tt.wantClose, "Close")
		})
	}
}

// Spec K2 with the Go deviation of decisions "Order of the life cycle": the
// Destroy hook's error becomes the stream's error only if it had none; a
// hook cannot swallow or replace an earlier error.
func TestDestroyHookResult(t *testing.T) {
	first := errors.New("first")
	fromHook := errors.New("from hook")
	tests := []struct {
		desc    string
		destroy error
		hook    error
		wantErr error
		wantLog []string
	}{
		{desc: "no error anywhere", destroy: nil, hook: nil, wantErr: nil, wantLog: []string{"close"}},
		{desc: "hook error after Destroy(nil)", destroy: nil, hook: fromHook, wantErr: fromHook, wantLog: []string{"error from hook", "close"}},
		{desc: "hook cannot swallow the error", destroy: first, hook: nil, wantErr: first, wantLog: []string{"error first", "close"}},
		{desc: "hook cannot replace the error", destroy: first, hook: fromHook, wantErr: first, wantLog: []string{"error first", "close"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().FailCall(streamtest.Destroy, 1, tt.hook)
			w, rec := open(t, sink, stream.Options{Destroy: sink.Destroy})

			w.Destroy(tt.destroy)
			streamtest.WaitDone(t, w)

			assert.ErrorIs(t, w.Err(), tt.wantErr, "Err")
			assert.Equal(t, tt.wantLog, rec.Log(), "events")
		})
	}
}

// Spec K3, I5 (experiment 06/F; test-stream-writable-destroy, priority case
// 17): a second Destroy is a no-op; the first error stays and "error" fires
// once.
func TestDestroyTwiceKeepsFirstError(t *testing.T) {
	first, second := errors.New("first"), errors.New("second")
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{Destroy: sink.Destroy})

	w.Destroy(first)
	w.Destroy(second)
	assert.ErrorIs(t, w.Err(), first, "Err right after the second Destroy")
	streamtest.WaitDone(t, w)

	assert.ErrorIs(t, w.Err(), first, "Err after close")
	assert.Equal(t, []string{"error first", "close"}, rec.Log(), "events")
	assert.Equal(t, []string{"destroy first"}, sink.Log(), "the Destroy hook runs once")
}

// DESIGN "Where Go deliberately improves on Node" and "Details" (spec K5
// deviation; priority cases 13, 21): Destroy waits for the sink call in
// flight; while it waits Length and Buffered still count the buffered
// chunks. Then the hook runs, then the callbacks (the in-flight write's with
// its real result, then the buffered ones with the error), then "error" (if
// any), then "close".
func TestDestroyWaitsForWriteInFlight(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc    string
		err     error
		wantLog []string
	}{
		{
			desc:    "Destroy(nil)",
			err:     nil,
			wantLog: []string{"destroy <nil>", "cb a <nil>", "cb b ErrDestroyed", "cb c ErrDestroyed", "close"},
		},
		{
			desc:    "Destroy(err)",
			err:     boom,
			wantLog: []string{"destroy boom", "cb a <nil>", "cb b boom", "cb c boom", "error boom", "close"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var (
				rec         = streamtest.NewRecorder()
				aCompleted  atomic.Bool
				hookTooSoon atomic.Bool
			)
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			sink.OnCall(func(c *streamtest.Call) {
				if c.Kind == streamtest.Destroy {
					hookTooSoon.Store(!aCompleted.Load())
					rec.Add(c.String())
				}
			})
			w := stream.NewWritable(sink.Write, stream.Options{Destroy: sink.Destroy})
			streamtest.Cleanup(t, w, sink)
			rec.Attach(w)

			for _, c := range []string{"a", "b", "c"} {
				w.WriteChunk(chunk(c), rec.Callback(c))
			}
			a := sink.Next(t)
			w.Destroy(tt.err)
			st := w.State()
			assert.True(t, st.Destroyed, "Destroyed while waiting for the write in flight")
			assert.True(t, st.Writing, "Writing while waiting for the write in flight")
			assert.Equal(t, 3, st.Length, "Length while waiting for the write in flight")
			assert.Equal(t, 2, st.Buffered, "Buffered while waiting for the write in flight")
			assert.Equal(t, 0, sink.Count(streamtest.Destroy), "Destroy hook calls while a write is in flight")

			aCompleted.Store(true)
			a.Done(nil)
			streamtest.WaitDone(t, w)

			assert.False(t, hookTooSoon.Load(), "the Destroy hook ran before the write in flight completed")
			assert.Equal(t, tt.wantLog, rec.Log(), "events")
			assert.Equal(t, []string{"write a", "destroy " + streamtest.Label(tt.err)}, sink.Log(), "sink calls")
		})
	}
}

// DESIGN "Details": a sink call in flight that fails after Destroy(nil) is a
// sink error like any other: it becomes Err, and "error" fires before
// "close".
func TestWriteInFlightFailsAfterDestroy(t *testing.T) {
	fail := errors.New("fail")
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.WriteChunk(chunk("b"), rec.Callback("b"))
	a := sink.Next(t)
	w.Destroy(nil)
	a.Done(fail)
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"cb a fail", "cb b fail", "error fail", "close"}, rec.Log(), "events")
	assert.ErrorIs(t, w.Err(), fail, "Err")
	assert.ErrorIs(t, w.Close(), fail, "Close")
}

// test-stream-write-destroy (priority cases 13, 32; spec K5, K6, D5): with
// HighWaterMark 1 and a write in flight, Destroy with or without buffered
// data, before or after End: the write in flight succeeds, buffered writes
// get ErrDestroyed, no "drain", no Final, no "finish".
func TestDestroyWithWriteInFlight(t *testing.T) {
	tests := []struct {
		desc    string
		chunks  []string
		act     func(w *stream.Writable)
		wantLog []string
	}{
		{
			desc:    "nothing buffered",
			chunks:  []string{"a"},
			act:     func(w *stream.Writable) { w.Destroy(nil) },
			wantLog: []string{"cb a <nil>", "close"},
		},
		{
			desc:    "data buffered",
			chunks:  []string{"a", "b"},
			act:     func(w *stream.Writable) { w.Destroy(nil) },
			wantLog: []string{"cb a <nil>", "cb b ErrDestroyed", "close"},
		},
		{
			desc:   "End, then Destroy",
			chunks: []string{"a"},
			act: func(w *stream.Writable) {
				w.End()
				w.Destroy(nil)
			},
			wantLog: []string{"cb a <nil>", "close"},
		},
		{
			desc:   "data buffered, End, then Destroy",
			chunks: []string{"a", "b"},
			act: func(w *stream.Writable) {
				w.End()
				w.Destroy(nil)
			},
			wantLog: []string{"cb a <nil>", "cb b ErrDestroyed", "close"},
		},
		{
			desc:   "Destroy, then End",
			chunks: []string{"a"},
			act: func(w *stream.Writable) {
				w.Destroy(nil)
				w.End()
			},
			wantLog: []string{"cb a <nil>", "close"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, rec := open(t, sink, stream.Options{HighWaterMark: 1, Final: sink.Final})

			for _, c := range tt.chunks {
				w.WriteChunk(chunk(c), rec.Callback(c))
			}
			a := sink.Next(t)
			tt.act(w)
			a.Done(nil)
			streamtest.WaitDone(t, w)

			assert.Equal(t, tt.wantLog, rec.Log(), "events")
			assert.Equal(t, []string{"write a"}, sink.Log(), "sink calls")
			assert.ErrorIs(t, w.Close(), stream.ErrDestroyed, "Close")
		})
	}
}

// Spec K6 with DESIGN "A Destroy before finish cancels finish, also after
// Final" (test-stream-writable-final-destroy, test-stream-writable-destroy,
// priority cases 23, 31): Destroy while Final runs waits for Final, then no
// "finish"; Close returns the Destroy error.
func TestDestroyDuringFinal(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc      string
		err       error
		wantLog   []string
		wantClose error
	}{
		{desc: "Destroy(nil)", err: nil, wantLog: []string{"close"}, wantClose: stream.ErrDestroyed},
		{desc: "Destroy(err)", err: boom, wantLog: []string{"error boom", "close"}, wantClose: boom},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Final)
			w, rec := open(t, sink, stream.Options{Final: sink.Final, Destroy: sink.Destroy})

			closed := closeAsync(w)
			final := sink.Next(t)
			require.Equal(t, "final", final.String(), "sink call after End")
			w.Destroy(tt.err)
			assert.Equal(t, 0, sink.Count(streamtest.Destroy), "Destroy hook calls while Final is in flight")
			final.Done(nil)

			assert.ErrorIs(t, streamtest.Recv(t, closed, "Close to return"), tt.wantClose, "Close")
			assert.Equal(t, tt.wantLog, rec.Log(), "events")
			assert.Equal(t, []string{"final", "destroy " + streamtest.Label(tt.err)}, sink.Log(), "sink calls")
		})
	}
}

// Spec H8 (experiment 05/J; test-stream-writable-destroy, priority case 18):
// a write after Destroy returns false, its callback gets ErrDestroyed (at
// once, not after the write in flight), and no "error" fires.
func TestWriteAfterDestroy(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), rec.Callback("a"))
	a := sink.Next(t)
	w.Destroy(nil)
	assert.False(t, w.WriteChunk(chunk("b"), rec.Callback("b")), "WriteChunk after Destroy")
	rec.WaitFor(t, "cb b ErrDestroyed")
	a.Done(nil)
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"cb b ErrDestroyed", "cb a <nil>", "close"}, rec.Log(), "events")
	assert.NoError(t, w.Err(), "Err")
}

// DESIGN rule 9 and "Where Go improves": nothing runs after "close" except
// the callbacks of writes made after it; End, Destroy, Cork and Uncork
// change nothing, and the Destroy hook does not run again.
func TestNothingAfterClose(t *testing.T) {
	boom := errors.New("boom")
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{Destroy: sink.Destroy})

	w.WriteChunk(chunk("a"), rec.Callback("a"))
	require.NoError(t, w.Close(), "Close")
	atClose := rec.Log()
	sinkAtClose := sink.Log()

	w.End()
	w.Destroy(boom)
	w.Cork()
	w.Uncork()
	assert.False(t, w.WriteChunk(chunk("late"), rec.Callback("late")), "WriteChunk after close")
	rec.WaitFor(t, "cb late ErrWriteAfterEnd")

	assert.Equal(t, append(atClose, "cb late ErrWriteAfterEnd"), rec.Log(), "events after close")
	assert.Equal(t, sinkAtClose, sink.Log(), "sink calls after close")
	assert.NoError(t, w.Err(), "Err after Destroy(err) on a closed stream")
	assert.NoError(t, w.Close(), "Close after Destroy(err) on a closed stream")
}

// DESIGN rule 9: every callback pending at "close" runs before it, also with
// many buffered writes.
func TestCallbacksBeforeClose(t *testing.T) {
	boom := errors.New("boom")
	w, rec := open(t, streamtest.NewSink(), stream.Options{})

	w.Cork()
	for range 100 {
		w.WriteChunk(chunk("x"), rec.Callback("x"))
	}
	w.Destroy(boom)
	streamtest.WaitDone(t, w)

	log := rec.Log()
	require.NotEmpty(t, log, "events")
	assert.Equal(t, 100, rec.Count("cb x boom"), "callbacks of the buffered writes")
	assert.Equal(t, []string{"error boom", "close"}, log[len(log)-2:], "the last events")
}
