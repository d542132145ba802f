package stream_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// Spec I1-I4 and DESIGN rule 6 (experiments 07/A, 07/B, 03/I;
// test-stream-writable-write-cb-error, test-stream-writable-write-writev-
// finish, priority cases 24, 27): a sink error goes to the failing write's
// callback, then to every buffered callback, then "error", then "close";
// Final and "finish" never happen; Err and Close return it.
func TestSinkError(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		desc    string
		setup   func(sink *streamtest.Sink) stream.Options
		act     func(t *testing.T, w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder)
		wantLog []string
	}{
		{
			desc: "synchronous write error",
			setup: func(sink *streamtest.Sink) stream.Options {
				sink.FailCall(streamtest.Write, 1, boom)
				return stream.Options{}
			},
			act: func(t *testing.T, w *stream.Writable, _ *streamtest.Sink, rec *streamtest.Recorder) {
				assert.False(t, w.WriteChunk(chunk("a"), rec.Callback("a")), "WriteChunk that fails synchronously")
				w.End()
			},
			wantLog: []string{"cb a boom", "error boom", "close"},
		},
		{
			desc: "asynchronous write error with buffered writes",
			setup: func(sink *streamtest.Sink) stream.Options {
				sink.SetMode(streamtest.Hold, streamtest.Write)
				return stream.Options{}
			},
			act: func(t *testing.T, w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder) {
				for _, c := range []string{"a", "b", "c"} {
					w.WriteChunk(chunk(c), rec.Callback(c))
				}
				w.End()
				sink.Next(t).Done(boom)
			},
			wantLog: []string{"cb a boom", "cb b boom", "cb c boom", "error boom", "close"},
		},
		{
			desc: "asynchronous writev error",
			setup: func(sink *streamtest.Sink) stream.Options {
				sink.SetMode(streamtest.Hold, streamtest.Writes...)
				return stream.Options{Writev: sink.Writev}
			},
			act: func(t *testing.T, w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder) {
				for _, c := range []string{"a", "b", "c"} {
					w.WriteChunk(chunk(c), rec.Callback(c))
				}
				w.End()
				sink.Next(t).Done(nil)
				batch := sink.Next(t)
				require.Equal(t, "writev [b c]", batch.String(), "second sink call")
				batch.Done(boom)
			},
			wantLog: []string{"cb a <nil>", "cb b boom", "cb c boom", "error boom", "close"},
		},
		{
			desc: "synchronous error of a corked writev",
			setup: func(sink *streamtest.Sink) stream.Options {
				sink.FailCall(streamtest.Writev, 1, boom)
				return stream.Options{Writev: sink.Writev}
			},
			act: func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink, rec *streamtest.Recorder) {
				w.Cork()
				w.WriteChunk(chunk("a"), rec.Callback("a"))
				w.WriteChunk(chunk("b"), rec.Callback("b"))
				w.Uncork()
				w.End()
			},
			wantLog: []string{"cb a boom", "cb b boom", "error boom", "close"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink()
			opts := tt.setup(sink)
			opts.Final = sink.Final
			w, rec := open(t, sink, opts)

			tt.act(t, w, sink, rec)
			streamtest.WaitDone(t, w)

			assert.Equal(t, tt.wantLog, rec.Log(), "events")
			assert.Equal(t, 0, sink.Count(streamtest.Final), "Final calls after a sink error")
			assert.ErrorIs(t, w.Err(), boom, "Err")
			assert.ErrorIs(t, w.Close(), boom, "Close")
			assert.Equal(t, 0, w.State().Length, "Length after close")
		})
	}
}

// Spec C6 (experiment 01/J; test-stream-writable-write-cb-error, priority
// case 24): a write loop against a sink that fails synchronously stops at
// the first write instead of spinning.
func TestSyncErrorStopsWriteLoop(t *testing.T) {
	boom := errors.New("boom")
	sink := streamtest.NewSink().FailCall(streamtest.Write, 1, boom)
	w, _ := open(t, sink, stream.Options{})

	trues := 0
	for trues < 100 && w.WriteChunk(chunk("x"), nil) {
		trues++
	}

	assert.Zero(t, trues, "WriteChunk calls that returned true")
	assert.False(t, w.WriteChunk(chunk("y"), nil), "WriteChunk on the errored stream")
	streamtest.WaitDone(t, w)
	assert.ErrorIs(t, w.Err(), boom, "Err")
}

// Spec I5 and DESIGN rule 6 (experiment 07/G; test-stream-writable-destroy,
// priority case 17): the first error is sticky, whichever comes first of a
// sink error and a Destroy(err); "error" fires once, with it.
func TestFirstErrorSticky(t *testing.T) {
	first, second := errors.New("first"), errors.New("second")
	tests := []struct {
		desc    string
		act     func(w *stream.Writable, inFlight *streamtest.Call)
		wantLog []string
	}{
		{
			desc: "Destroy(err) after a sink error",
			act: func(w *stream.Writable, inFlight *streamtest.Call) {
				inFlight.Done(first)
				w.Destroy(second)
			},
			wantLog: []string{"cb a first", "error first", "close"},
		},
		{
			desc: "sink error after Destroy(err)",
			act: func(w *stream.Writable, inFlight *streamtest.Call) {
				w.Destroy(first)
				inFlight.Done(second)
			},
			wantLog: []string{"cb a second", "error first", "close"},
		},
		{
			desc: "second Destroy(err)",
			act: func(w *stream.Writable, inFlight *streamtest.Call) {
				w.Destroy(first)
				w.Destroy(second)
				inFlight.Done(nil)
			},
			wantLog: []string{"cb a <nil>", "error first", "close"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
			w, rec := open(t, sink, stream.Options{})

			w.WriteChunk(chunk("a"), rec.Callback("a"))
			tt.act(w, sink.Next(t))
			streamtest.WaitDone(t, w)

			assert.Equal(t, tt.wantLog, rec.Log(), "events")
			assert.ErrorIs(t, w.Err(), first, "Err")
			assert.ErrorIs(t, w.Close(), first, "Close")
			w.Destroy(second)
			assert.ErrorIs(t, w.Err(), first, "Err after a Destroy(err) on the closed stream")
		})
	}
}

// Spec J1, E2 and DESIGN rule 8 (experiments 08/A-08/D;
// test-stream-writable-write-cb-twice, priority case 25): done called when
// no write is in flight, or a stale done called while a later write is in
// flight, destroys the stream with ErrMultipleCallback; the first call
// counts, so the write's callback gets its result.
func TestMultipleCallback(t *testing.T) {
	tests := []struct {
		desc    string
		mode    streamtest.Mode
		onCall  func(c *streamtest.Call)
		act     func(t *testing.T, w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder)
		wantLog []string
	}{
		{
			desc:   "twice synchronously",
			mode:   streamtest.Sync,
			onCall: func(c *streamtest.Call) { c.Done(nil) }, // the sink calls it again
			act: func(_ *testing.T, w *stream.Writable, _ *streamtest.Sink, rec *streamtest.Recorder) {
				w.WriteChunk(chunk("a"), rec.Callback("a"))
			},
			wantLog: []string{"cb a <nil>", "error ErrMultipleCallback", "close"},
		},
		{
			desc:   "synchronously, then later",
			mode:   streamtest.Sync,
			onCall: func(*streamtest.Call) {},
			act: func(t *testing.T, w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder) {
				w.WriteChunk(chunk("a"), rec.Callback("a"))
				rec.WaitFor(t, "cb a <nil>")
				sink.Calls()[0].Done(nil)
			},
			wantLog: []string{"cb a <nil>", "error ErrMultipleCallback", "close"},
		},
		{
			desc:   "twice later",
			mode:   streamtest.Hold,
			onCall: func(*streamtest.Call) {},
			act: func(t *testing.T, w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder) {
				w.WriteChunk(chunk("a"), rec.Callback("a"))
				a := sink.Next(t)
				a.Done(nil)
				a.Done(nil)
			},
			wantLog: []string{"cb a <nil>", "error ErrMultipleCallback", "close"},
		},
		{
			desc:   "stale done while a later write is in flight",
			mode:   streamtest.Hold,
			onCall: func(*streamtest.Call) {},
			act: func(t *testing.T, w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder) {
				w.WriteChunk(chunk("a"), rec.Callback("a"))
				w.WriteChunk(chunk("b"), rec.Callback("b"))
				a := sink.Next(t)
				a.Done(nil)
				b := sink.Next(t)
				require.Equal(t, "write b", b.String(), "second sink call")
				a.Done(nil)
				b.Done(nil)
			},
			wantLog: []string{"cb a <nil>", "cb b <nil>", "error ErrMultipleCallback", "close"},
		},
		{
			// decisions "Errors": a stale done is caught for the last 7 calls.
			desc:   "stale done from five writes back",
			mode:   streamtest.Hold,
			onCall: func(*streamtest.Call) {},
			act: func(t *testing.T, w *stream.Writable, sink *streamtest.Sink, rec *streamtest.Recorder) {
				for _, c := range []string{"a", "b", "c", "d", "e", "f"} {
					w.WriteChunk(chunk(c), rec.Callback(c))
				}
				a := sink.Next(t)
				a.Done(nil)
				for range 4 {
					sink.Next(t).Done(nil)
				}
				f := sink.Next(t)
				require.Equal(t, "write f", f.String(), "sixth sink call")
				a.Done(nil)
				f.Done(nil)
			},
			wantLog: []string{
				"cb a <nil>", "cb b <nil>", "cb c <nil>", "cb d <nil>", "cb e <nil>", "cb f <nil>",
				"error ErrMultipleCallback", "close",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			sink := streamtest.NewSink().SetMode(tt.mode, streamtest.Write).OnCall(tt.onCall)
			w, rec := open(t, sink, stream.Options{})

			tt.act(t, w, sink, rec)
			streamtest.WaitDone(t, w)

			assert.Equal(t, tt.wantLog, rec.Log(), "events")
			assert.ErrorIs(t, w.Err(), stream.ErrMultipleCallback, "Err")
		})
	}
}

// DESIGN "Where Go improves" (spec Q2 deviation): no "error" handler is
// needed; a sink error without any handler reaches Err and Close and nothing
// panics.
func TestErrorWithoutHandlers(t *testing.T) {
	boom := errors.New("boom")
	sink := streamtest.NewSink().FailCall(streamtest.Write, 1, boom)
	w := stream.NewWritable(sink.Write, stream.Options{})
	streamtest.Cleanup(t, w, sink)

	w.WriteChunk(chunk("a"), nil)

	assert.ErrorIs(t, w.Close(), boom, "Close")
	assert.ErrorIs(t, w.Err(), boom, "Err")
}
