package stream_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// DESIGN rule 5 and decisions "Order of the life cycle" (spec G8, G9): a
// clean end runs every write callback, then "finish" (with Finished set and
// nothing pending), then the Destroy hook with nil after the finish handlers
// returned, then "close", then Done is closed; Close returns nil.
func TestEndLifecycleOrder(t *testing.T) {
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{Final: sink.Final, Destroy: sink.Destroy})
	type observed struct {
		hooks      int // Destroy hook calls seen by the finish handler
		state      stream.State
		atClose    int  // Destroy hook calls seen by the close handler
		doneClosed bool // Done closed when the close handler ran
	}
	seen := make(chan observed, 1)
	var inHandlers observed // written by the handlers only
	w.OnFinish(func() {
		inHandlers.hooks = sink.Count(streamtest.Destroy)
		inHandlers.state = w.State()
	})
	w.OnClose(func() {
		inHandlers.atClose = sink.Count(streamtest.Destroy)
		inHandlers.doneClosed = isClosed(w.Done())
		seen <- inHandlers
	})

	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.WriteChunk(chunk("b"), rec.Callback("b"))
	w.End()
	streamtest.WaitDone(t, w)
	got := streamtest.Recv(t, seen, "the close handler")

	assert.Equal(t, []string{"cb a <nil>", "cb b <nil>", "finish", "close"}, rec.Log(), "events")
	assert.Equal(t, []string{"write a", "write b", "final", "destroy <nil>"}, sink.Log(), "sink calls")
	assert.Equal(t, 0, got.hooks, "Destroy hook calls when the finish handlers ran")
	assert.Equal(t, 1, got.atClose, "Destroy hook calls when the close handlers ran")
	assert.False(t, got.doneClosed, "Done closed before the close handlers returned")
	assert.True(t, got.state.Finished, "Finished in the finish handler")
	assert.Equal(t, 0, got.state.PendingCallbacks, "PendingCallbacks in the finish handler")
	assert.NoError(t, w.Close(), "Close after a clean end")
	assert.NoError(t, w.Err(), "Err after a clean end")
}

// Spec G6, G7 (experiment 04/M; test-stream2-writable, priority case 4):
// Final starts only after every write completed, and "finish" waits for
// Final's done. State().Writing is false while Final runs.
func TestFinalAfterWritesBeforeFinish(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write, streamtest.Final)
	w, rec := open(t, sink, stream.Options{Final: sink.Final})

	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.WriteChunk(chunk("b"), rec.Callback("b"))
	w.End()
	for _, want := range []string{"write a", "write b"} {
		c := sink.Next(t)
		require.Equal(t, want, c.String(), "next sink call")
		assert.Equal(t, 0, sink.Count(streamtest.Final), "Final calls while %s is in flight", want)
		c.Done(nil)
	}
	final := sink.Next(t)
	require.Equal(t, "final", final.String(), "sink call after the writes")
	assert.False(t, w.State().Writing, "Writing while Final runs")
	assert.Zero(t, rec.Count("finish"), "finish before Final's done")
	final.Done(nil)
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"cb a <nil>", "cb b <nil>", "finish", "close"}, rec.Log(), "events")
	assert.NoError(t, w.Close(), "Close")
}

// Spec G7 (experiments 04/G, 04/L; test-stream2-writable, priority cases 2,
// 3): "finish" waits for every write callback, also those of writes the sink
// completed synchronously.
func TestFinishAfterAllCallbacks(t *testing.T) {
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{})

	var want []string
	for i := range 20 {
		name := fmt.Sprint(i)
		w.WriteChunk(chunk(name), rec.Callback(name))
		want = append(want, "cb "+name+" <nil>")
	}
	w.End()
	streamtest.WaitDone(t, w)

	assert.Equal(t, append(want, "finish", "close"), rec.Log(), "events")
}

// Spec G1, G2, G8 (experiment 12/F; test-stream-writableState-ending,
// test-stream-writable-ended-state, test-stream-writable-finished, priority
// cases 8, 9, 10): Ending and Ended turn true inside End, Finished only at
// "finish"; Finished is false while a write is in flight.
func TestEndStateFlags(t *testing.T) {
	var (
		w        *stream.Writable
		inSink   stream.State
		inFinish = make(chan stream.State, 1)
	)
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	sink.OnCall(func(*streamtest.Call) { inSink = w.State() })
	w, _ = open(t, sink, stream.Options{})
	w.OnFinish(func() { inFinish <- w.State() })

	w.WriteChunk(chunk("a"), nil)
	w.End()
	st := w.State()
	assert.True(t, st.Ending, "Ending after End")
	assert.True(t, st.Ended, "Ended after End")
	assert.False(t, st.Finished, "Finished after End, write in flight")
	assert.False(t, inSink.Finished, "Finished inside the sink call")

	sink.Next(t).Done(nil)
	st = streamtest.Recv(t, inFinish, "the finish handler")
	assert.True(t, st.Finished, "Finished in the finish handler")
	assert.True(t, st.Ended, "Ended in the finish handler")
	assert.False(t, st.Destroyed, "Destroyed in the finish handler")

	streamtest.WaitDone(t, w)
	st = w.State()
	assert.True(t, st.Finished, "Finished after close")
	assert.True(t, st.Destroyed, "Destroyed after close")
	assert.True(t, st.Closed, "Closed after close")
}

// Spec H3, H5 (test-stream-writable-end-multiple, priority case 30): End and
// Close are idempotent; a second End or Close, also after close, changes
// nothing.
func TestEndAndCloseIdempotent(t *testing.T) {
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.End()
	w.End()
	assert.NoError(t, w.Close(), "first Close")
	assert.NoError(t, w.Close(), "second Close")
	w.End()
	assert.NoError(t, w.Close(), "Close after End after close")

	assert.Equal(t, []string{"cb a <nil>", "finish", "close"}, rec.Log(), "events")
	assert.Equal(t, []string{"write a"}, sink.Log(), "sink calls")
}

// Spec H1, H4 (experiment 05/A; test-stream-writable-write-error,
// test-stream2-writable "end(chunk) twice", test-stream-writable-end-cb-
// error, priority cases 5, 26, 29) as DESIGN rule 7 changes them: WriteChunk
// after End returns false and its callback gets ErrWriteAfterEnd, and that
// is all. Node would destroy the stream and drop what it buffered; here the
// write in flight completes, Final runs, the stream finishes without an
// "error", and Close returns nil.
func TestWriteAfterEnd(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{Final: sink.Final})

	w.WriteChunk(chunk("a"), rec.Callback("a"))
	w.WriteChunk(chunk("a2"), rec.Callback("a2"))
	w.End()
	assert.False(t, w.WriteChunk(chunk("b"), rec.Callback("b")), "WriteChunk after End")
	assert.False(t, w.State().Destroyed, "Destroyed after a write after End")
	rec.WaitFor(t, "cb b ErrWriteAfterEnd")
	sink.Next(t).Done(nil)
	sink.Next(t).Done(nil)
	streamtest.WaitDone(t, w)

	assert.Equal(t, []string{"cb b ErrWriteAfterEnd", "cb a <nil>", "cb a2 <nil>", "finish", "close"}, rec.Log(), "events")
	assert.ErrorIs(t, rec.Err("b"), stream.ErrWriteAfterEnd, "callback of the late write")
	assert.NoError(t, w.Err(), "Err")
	assert.NoError(t, w.Close(), "Close")
	assert.Equal(t, []string{"write a", "write a2", "final"}, sink.Log(), "sink calls: everything accepted before End, then Final")
}

// Spec H2 (experiment 05/D; test-stream-error-once, priority case 38) under
// rule 7: several writes after End each get ErrWriteAfterEnd, and none
// of them makes an "error".
func TestWriteAfterEndErrorsOnce(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), nil)
	w.End()
	for _, name := range []string{"late1", "late2", "late3"} {
		w.WriteChunk(chunk(name), rec.Callback(name))
	}
	sink.Next(t).Done(nil)
	streamtest.WaitDone(t, w)

	for _, name := range []string{"late1", "late2", "late3"} {
		assert.ErrorIs(t, rec.Err(name), stream.ErrWriteAfterEnd, "callback of %s", name)
	}
	assert.Equal(t, 0, rec.Count("error ErrWriteAfterEnd"), "error events; log %q", rec.Log())
	assert.NoError(t, w.Close(), "Close")
}

// Spec H9 (experiment 05/L; test-stream-writable-write-writev-finish,
// priority case 28) under rule 7: a write from a "finish" handler gets
// ErrWriteAfterEnd and the stream still closes cleanly.
func TestWriteFromFinishHandler(t *testing.T) {
	sink := streamtest.NewSink()
	w, rec := open(t, sink, stream.Options{})
	returned := make(chan bool, 1)
	w.OnFinish(func() { returned <- w.WriteChunk(chunk("late"), rec.Callback("late")) })

	w.End()
	streamtest.WaitDone(t, w)

	assert.False(t, streamtest.Recv(t, returned, "the finish handler"), "WriteChunk from the finish handler")
	assert.Equal(t, []string{"finish", "cb late ErrWriteAfterEnd", "close"}, rec.Log(), "events")
	assert.NoError(t, w.Close(), "Close")
	assert.Empty(t, sink.Log(), "sink calls")
}

// Spec H6, H7 and decisions "Errors": End on a stream that already has an
// error does not set Ending/Ended; after a Destroy(nil) it does.
func TestEndAfterDestroy(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc      string
		destroy   error
		wantEnded bool
	}{
		{desc: "after Destroy(err)", destroy: boom, wantEnded: false},
		{desc: "after Destroy(nil)", destroy: nil, wantEnded: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			w, _ := open(t, streamtest.NewSink(), stream.Options{})
			w.Destroy(tt.destroy)
			streamtest.WaitDone(t, w)

			w.End()

			st := w.State()
			assert.Equal(t, tt.wantEnded, st.Ending, "Ending")
			assert.Equal(t, tt.wantEnded, st.Ended, "Ended")
		})
	}
}

// Spec I4, G6 (experiment 09/A, 09/B; test-stream2-writable "_final error",
// priority case 6): a Final error fires "error" once, never "finish", and is
// what Close returns.
func TestFinalError(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc string
		mode streamtest.Mode
	}{
		{desc: "synchronous", mode: streamtest.Sync},
		{desc: "asynchronous", mode: streamtest.Async},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(tt.mode, streamtest.Final).FailCall(streamtest.Final, 1, boom)
			w, rec := open(t, sink, stream.Options{Final: sink.Final})

			w.WriteChunk(chunk("a"), rec.Callback("a"))
			w.End()
			streamtest.WaitDone(t, w)

			assert.Equal(t, []string{"cb a <nil>", "error boom", "close"}, rec.Log(), "events")
			assert.ErrorIs(t, w.Err(), boom, "Err")
			assert.ErrorIs(t, w.Close(), boom, "Close")
		})
	}
}

// Close's result (DESIGN rule 5, decisions "Errors"): nil only if the stream
// finished and has no error; else its error, or ErrDestroyed after a
// Destroy(nil) that cut it short. Err and the "error" event agree.
func TestCloseResult(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc    string
		setup   func(w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder)
		want    error // from Close
		wantErr error // from Err
		wantLog []string
	}{
		{
			desc:    "clean finish",
			setup:   func(*stream.Writable, *streamtest.Sink, *streamtest.Recorder) {},
			want:    nil,
			wantErr: nil,
			wantLog: []string{"finish", "close"},
		},
		{
			desc: "sink error",
			setup: func(w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder) {
				sink.FailCall(streamtest.Write, 1, boom)
				w.WriteChunk(chunk("a"), rec.Callback("a"))
			},
			want:    boom,
			wantErr: boom,
			wantLog: []string{"cb a boom", "error boom", "close"},
		},
		{
			desc: "Final error",
			setup: func(_ *stream.Writable, sink *streamtest.Sink, _ *streamtest.Recorder) {
				sink.FailCall(streamtest.Final, 1, boom)
			},
			want:    boom,
			wantErr: boom,
			wantLog: []string{"error boom", "close"},
		},
		{
			desc:    "Destroy(nil) before finish",
			setup:   func(w *stream.Writable, _ *streamtest.Sink, _ *streamtest.Recorder) { w.Destroy(nil) },
			want:    stream.ErrDestroyed,
			wantErr: nil,
			wantLog: []string{"close"},
		},
		{
			desc:    "Destroy(err)",
			setup:   func(w *stream.Writable, _ *streamtest.Sink, _ *streamtest.Recorder) { w.Destroy(boom) },
			want:    boom,
			wantErr: boom,
			wantLog: []string{"error boom", "close"},
		},
		{
			desc: "Destroy hook error after a clean finish",
			setup: func(_ *stream.Writable, sink *streamtest.Sink, _ *streamtest.Recorder) {
				sink.FailCall(streamtest.Destroy, 1, boom)
			},
			want:    boom,
			wantErr: boom,
			wantLog: []string{"finish", "error boom", "close"},
		},
		{
			desc: "Destroy(err) after close",
			setup: func(w *stream.Writable, _ *streamtest.Sink, _ *streamtest.Recorder) {
				w.Close()
				w.Destroy(boom)
			},
			want:    nil,
			wantErr: nil,
			wantLog: []string{"finish", "close"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink()
			w, rec := open(t, sink, stream.Options{Final: sink.Final, Destroy: sink.Destroy})

			tt.setup(w, sink, rec)
			err := w.Close()

			assert.ErrorIs(t, err, tt.want, "Close")
			assert.ErrorIs(t, w.Close(), tt.want, "Close again")
			assert.ErrorIs(t, w.Err(), tt.wantErr, "Err")
			assert.ErrorIs(t, w.State().Err, tt.wantErr, "State().Err")
			assert.Equal(t, tt.wantLog, rec.Log(), "events")
		})
	}
}

// DESIGN: Close waits for "close": when it returns, Done is closed and the
// close handlers have run.
func TestCloseWaitsForClose(t *testing.T) {
	sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
	w, rec := open(t, sink, stream.Options{})

	w.WriteChunk(chunk("a"), nil)
	closed := closeAsync(w)
	sink.Next(t).Done(nil)
	err := streamtest.Recv(t, closed, "Close to return")

	assert.NoError(t, err, "Close")
	assert.True(t, isClosed(w.Done()), "Done when Close returned")
	assert.Equal(t, []string{"finish", "close"}, rec.Log(), "events when Close returned")
}
