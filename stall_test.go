package stream_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/streamkit/stream"
	"github.com/streamkit/stream/internal/streamtest"
)

// These tests run in a synctest bubble: time is fake and only advances when
// every goroutine of the bubble is blocked, so time.Sleep moves the clock
// deterministically.

// DESIGN "Details" and decisions "Errors": a write whose done is not called
// within StallTimeout destroys the stream with ErrStalled without waiting
// for it; its callback and the buffered ones get ErrStalled, Close returns
// it, and a done that arrives later is ignored.
func TestStallTimeoutFailsStalledWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = time.Second
		sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
		w, rec := open(t, sink, stream.Options{StallTimeout: timeout})
		start := time.Now()

		w.WriteChunk(chunk("a"), rec.Callback("a"))
		w.WriteChunk(chunk("b"), rec.Callback("b"))
		stalled := sink.Next(t)
		time.Sleep(timeout - time.Millisecond)
		synctest.Wait()
		require.False(t, w.State().Destroyed, "Destroyed just before StallTimeout")

		streamtest.WaitDone(t, w)
		assert.GreaterOrEqual(t, time.Since(start), timeout, "time until the stall was detected")
		want := []string{"cb a ErrStalled", "cb b ErrStalled", "error ErrStalled", "close"}
		assert.Equal(t, want, rec.Log(), "events")
		assert.ErrorIs(t, rec.Err("a"), stream.ErrStalled, "callback of the stalled write")
		assert.ErrorIs(t, w.Err(), stream.ErrStalled, "Err")
		assert.ErrorIs(t, w.Close(), stream.ErrStalled, "Close")

		stalled.Done(nil)
		synctest.Wait()
		assert.Equal(t, want, rec.Log(), "events after the late done")
		assert.ErrorIs(t, w.Err(), stream.ErrStalled, "Err after the late done")
		assert.Equal(t, []string{"write a"}, sink.Log(), "sink calls")
	})
}

// DESIGN "Details": StallTimeout covers every sink call and hook.
func TestStallTimeoutCoversEverySinkCall(t *testing.T) {
	tests := []struct {
		desc    string
		hold    streamtest.Kind
		trigger func(w *stream.Writable)
	}{
		{
			desc: "Writev",
			hold: streamtest.Writev,
			trigger: func(w *stream.Writable) {
				w.Cork()
				w.WriteChunk(chunk("a"), nil)
				w.WriteChunk(chunk("b"), nil)
				w.Uncork()
			},
		},
		{desc: "Final", hold: streamtest.Final, trigger: func(w *stream.Writable) { w.End() }},
		{desc: "Construct", hold: streamtest.Construct, trigger: func(*stream.Writable) {}},
		{desc: "Destroy hook", hold: streamtest.Destroy, trigger: func(w *stream.Writable) { w.Destroy(nil) }},
		{desc: "Destroy hook after a clean finish", hold: streamtest.Destroy, trigger: func(w *stream.Writable) { w.End() }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const timeout = time.Second
				sink := streamtest.NewSink().SetMode(streamtest.Hold, tt.hold)
				w, _ := open(t, sink, stream.Options{
					Writev:       sink.Writev,
					Final:        sink.Final,
					Destroy:      sink.Destroy,
					Construct:    sink.Construct,
					StallTimeout: timeout,
				})
				start := time.Now()

				tt.trigger(w)
				stalled := sink.Next(t)
				require.Equal(t, tt.hold, stalled.Kind, "the held sink call")
				streamtest.WaitDone(t, w)

				assert.GreaterOrEqual(t, time.Since(start), timeout, "time until the stall was detected")
				assert.ErrorIs(t, w.Err(), stream.ErrStalled, "Err")
				assert.ErrorIs(t, w.Close(), stream.ErrStalled, "Close")
			})
		})
	}
}

// StallTimeout bounds each sink call, not the sum of them: two writes that
// each take 0.9 of it do not stall the stream.
func TestStallTimeoutPerCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = time.Second
		sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
		w, rec := open(t, sink, stream.Options{StallTimeout: timeout})

		w.WriteChunk(chunk("a"), rec.Callback("a"))
		w.WriteChunk(chunk("b"), rec.Callback("b"))
		for range 2 {
			c := sink.Next(t)
			time.Sleep(timeout * 9 / 10)
			c.Done(nil)
		}

		assert.NoError(t, w.Close(), "Close")
		assert.Equal(t, []string{"cb a <nil>", "cb b <nil>", "finish", "close"}, rec.Log(), "events")
	})
}

// Decisions "Misc": StallTimeout 0 means no stall detection.
func TestStallTimeoutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := streamtest.NewSink().SetMode(streamtest.Hold, streamtest.Write)
		w, rec := open(t, sink, stream.Options{})

		w.WriteChunk(chunk("a"), rec.Callback("a"))
		c := sink.Next(t)
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.False(t, w.State().Destroyed, "Destroyed after an hour without StallTimeout")
		c.Done(nil)

		assert.NoError(t, w.Close(), "Close")
	})
}
